package pod

import (
	"bytes"
	"encoding/binary"
)

// Exif and JPEG constants. Orientation values (Exif tag 0x0112, TIFF 6.0
// tag 274) say how the stored pixels must be turned to be shown upright: 1
// is upright, 2-8 are the seven other combinations of rotation and
// mirroring.
const (
	orientUpright      = 1
	orientMaxValue     = 8
	exifOrientationTag = 0x0112
	exifHeader         = "Exif\x00\x00" // starts an Exif APP1 segment
	tiffMagic          = 42
	tiffTypeShort      = 3
	tiffTypeLong       = 4
	jpegMarkerSOS      = 0xda
	jpegMarkerEOI      = 0xd9
	jpegMarkerAPP1     = 0xe1
	// maxJPEGScans bounds the scans of a progressive JPEG: each scan
	// makes the decoder walk the whole image again, so a small file of
	// thousands of near-empty scans would take seconds. Encoders write
	// about ten.
	maxJPEGScans = 100
)

// orientation returns the Exif orientation recorded in an image's
// metadata, or 1 if there is none or it cannot be read. JPEG keeps Exif in
// an APP1 segment, PNG in an eXIf chunk, WebP in an EXIF chunk; browsers
// apply it when they show the file, so the phone's preview was turned.
func orientation(f format, data []byte) int {
	var tiff []byte
	switch f {
	case formatJPEG:
		tiff, _ = jpegExif(data)
	case formatPNG:
		tiff = pngExif(data)
	case formatWebP:
		tiff = webpExif(data)
	}
	return tiffOrientation(bytes.TrimPrefix(tiff, []byte(exifHeader)))
}

// jpegExif walks the segments of a JPEG file and returns the TIFF data of
// its first Exif APP1 segment (nil if none) and the number of scans (SOS
// segments) in the file, which bounds the decoding work of a progressive
// JPEG. It stops at the first malformed segment; the decoder reports the
// damage.
func jpegExif(data []byte) (tiff []byte, scans int) {
	if len(data) < 2 || data[0] != 0xff || data[1] != 0xd8 {
		return nil, 0
	}
	i := 2
	for i+1 < len(data) {
		if data[i] != 0xff {
			return tiff, scans
		}
		m := data[i+1]
		i += 2
		switch {
		case m == 0xff: // fill byte: the marker follows
			i--
			continue
		case m == 0xd8, m == 0x01, 0xd0 <= m && m <= 0xd7: // no length
			continue
		case m == jpegMarkerEOI:
			return tiff, scans
		}
		if i+2 > len(data) {
			return tiff, scans
		}
		n := int(binary.BigEndian.Uint16(data[i:]))
		if n < 2 || i+n > len(data) {
			return tiff, scans
		}
		seg := data[i+2 : i+n]
		i += n
		switch m {
		case jpegMarkerAPP1:
			if tiff == nil && bytes.HasPrefix(seg, []byte(exifHeader)) {
				tiff = seg[len(exifHeader):]
			}
		case jpegMarkerSOS:
			scans++
			i = skipEntropyCoded(data, i)
		}
	}
	return tiff, scans
}

// skipEntropyCoded returns the offset of the first marker at or after i
// that ends entropy-coded data: a 0xff followed by a byte that is neither a
// stuffed zero nor a restart marker.
func skipEntropyCoded(data []byte, i int) int {
	for {
		j := bytes.IndexByte(data[i:], 0xff)
		if j < 0 || i+j+1 >= len(data) {
			return len(data)
		}
		i += j
		if m := data[i+1]; m != 0 && !(0xd0 <= m && m <= 0xd7) && m != 0xff {
			return i
		}
		i++
	}
}

// pngExif returns the payload of a PNG file's eXIf chunk, or nil.
func pngExif(data []byte) []byte {
	i := 8 // after the signature
	for i+8 <= len(data) {
		n := int64(binary.BigEndian.Uint32(data[i:]))
		typ := string(data[i+4 : i+8])
		end := int64(i) + 8 + n
		if end > int64(len(data)) {
			return nil
		}
		switch typ {
		case "eXIf":
			return data[i+8 : end]
		case "IDAT", "IEND":
			return nil // eXIf must come before the image data
		}
		i = int(end) + 4 // skip the CRC
	}
	return nil
}

// webpExif returns the payload of a WebP file's EXIF chunk, or nil.
func webpExif(data []byte) []byte {
	i := 12 // after "RIFF", the size and "WEBP"
	for i+8 <= len(data) {
		n := int64(binary.LittleEndian.Uint32(data[i+4:]))
		end := int64(i) + 8 + n
		if end > int64(len(data)) {
			return nil
		}
		if string(data[i:i+4]) == "EXIF" {
			return data[i+8 : end]
		}
		i = int(end + end&1) // chunks are padded to an even length
	}
	return nil
}

// tiffOrientation reads the Orientation tag from the first IFD of TIFF
// data (the body of an Exif block). It returns 1 if the data is malformed,
// has no Orientation tag, or holds a value outside 1..8.
func tiffOrientation(t []byte) int {
	const headerLen, entryLen = 8, 12
	if len(t) < headerLen {
		return orientUpright
	}
	var bo binary.ByteOrder
	switch string(t[:2]) {
	case "II":
		bo = binary.LittleEndian
	case "MM":
		bo = binary.BigEndian
	default:
		return orientUpright
	}
	if bo.Uint16(t[2:]) != tiffMagic {
		return orientUpright
	}
	ifd := int64(bo.Uint32(t[4:]))
	if ifd < headerLen || ifd+2 > int64(len(t)) {
		return orientUpright
	}
	n := int64(bo.Uint16(t[ifd:]))
	for k := range n {
		e := ifd + 2 + k*entryLen
		if e+entryLen > int64(len(t)) {
			return orientUpright
		}
		if bo.Uint16(t[e:]) != exifOrientationTag {
			continue
		}
		if bo.Uint32(t[e+4:]) == 0 { // value count
			return orientUpright
		}
		var v uint32
		switch bo.Uint16(t[e+2:]) {
		case tiffTypeShort:
			v = uint32(bo.Uint16(t[e+8:]))
		case tiffTypeLong:
			v = bo.Uint32(t[e+8:])
		default:
			return orientUpright
		}
		if v < orientUpright || v > orientMaxValue {
			return orientUpright
		}
		return int(v)
	}
	return orientUpright
}
