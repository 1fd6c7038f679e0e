package pod

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"math/rand/v2"
	"testing"
)

// Colours of the quadrants test image, chosen far apart so that JPEG
// compression cannot blur one into another.
var (
	red   = color.RGBA{0xff, 0, 0, 0xff}
	green = color.RGBA{0, 0xff, 0, 0xff}
	blue  = color.RGBA{0, 0, 0xff, 0xff}
	white = color.RGBA{0xff, 0xff, 0xff, 0xff}
)

// quadrants returns a w×h image whose top-left quarter is red, top-right
// green, bottom-left blue and bottom-right white, so that any rotation or
// mirroring of it can be told apart.
func quadrants(w, h int) *image.RGBA {
	m := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			c := red
			switch {
			case x >= w/2 && y < h/2:
				c = green
			case x < w/2 && y >= h/2:
				c = blue
			case x >= w/2 && y >= h/2:
				c = white
			}
			m.SetRGBA(x, y, c)
		}
	}
	return m
}

// noisy returns a w×h opaque image of smooth gradients with some noise, as
// a camera's picture compresses: far worse than flat colour, far better
// than pure noise.
func noisy(w, h int, seed uint64) *image.YCbCr {
	rng := rand.New(rand.NewPCG(seed, 1))
	m := image.NewYCbCr(image.Rect(0, 0, w, h), image.YCbCrSubsampleRatio420)
	for y := range h {
		for x := range w {
			v := 60 + 120*x/w + 40*y/h + rng.IntN(25)
			m.Y[y*m.YStride+x] = uint8(v)
		}
	}
	for y := range (h + 1) / 2 {
		for x := range (w + 1) / 2 {
			i := y*m.CStride + x
			m.Cb[i] = uint8(100 + 50*x/w + rng.IntN(9))
			m.Cr[i] = uint8(140 - 40*y/h + rng.IntN(9))
		}
	}
	return m
}

func encodeJPEG(t testing.TB, m image.Image, quality int) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := jpeg.Encode(&b, m, &jpeg.Options{Quality: quality}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func encodePNG(t testing.TB, m image.Image) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := png.Encode(&b, m); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// jpegSegment returns a JPEG marker segment: 0xff, marker, length, payload.
func jpegSegment(marker byte, payload []byte) []byte {
	s := []byte{0xff, marker, 0, 0}
	binary.BigEndian.PutUint16(s[2:], uint16(len(payload)+2))
	return append(s, payload...)
}

// insertAfterSOI inserts segments right after a JPEG's start-of-image
// marker, where phones put their APP segments.
func insertAfterSOI(jpg []byte, segs ...[]byte) []byte {
	out := append([]byte{}, jpg[:2]...)
	for _, s := range segs {
		out = append(out, s...)
	}
	return append(out, jpg[2:]...)
}

// GPS position written into test Exif blocks: 48°51'24.12"N 2°21'7.99"E.
var (
	gpsLat = [6]uint32{48, 1, 51, 1, 2412, 100}
	gpsLon = [6]uint32{2, 1, 21, 1, 799, 100}
)

// secretDescription is the Exif ImageDescription of test files, which must
// not survive cleaning.
const secretDescription = "SECRET-EXIF-DESCRIPTION"

// exifTIFF returns the TIFF body of an Exif block as a phone writes it:
// IFD0 with ImageDescription, Orientation (unless orient is 0) and a GPS
// IFD pointer; the GPS IFD with latitude and longitude.
func exifTIFF(bo binary.ByteOrder, orient uint16) []byte {
	type entry struct {
		tag, typ uint16
		count    uint32
		value    []byte // inline (≤ 4 bytes) or placed in the data area
	}
	rationals := func(v [6]uint32) []byte {
		b := make([]byte, 24)
		for i, x := range v {
			bo.PutUint32(b[4*i:], x)
		}
		return b
	}
	short := func(v uint16) []byte { b := make([]byte, 2); bo.PutUint16(b, v); return b }
	desc := append([]byte(secretDescription), 0)

	ifd0 := []entry{{0x010e, 2, uint32(len(desc)), desc}}
	if orient != 0 {
		ifd0 = append(ifd0, entry{exifOrientationTag, tiffTypeShort, 1, short(orient)})
	}
	ifd0 = append(ifd0, entry{0x8825, tiffTypeLong, 1, nil}) // GPS IFD offset, set below
	gps := []entry{
		{0x0001, 2, 2, []byte("N\x00")},
		{0x0002, 5, 3, rationals(gpsLat)},
		{0x0003, 2, 2, []byte("E\x00")},
		{0x0004, 5, 3, rationals(gpsLon)},
	}

	ifdLen := func(es []entry) int { return 2 + 12*len(es) + 4 }
	ifd0Off := 8
	gpsOff := ifd0Off + ifdLen(ifd0)
	dataOff := gpsOff + ifdLen(gps)
	ifd0[len(ifd0)-1].value = make([]byte, 4)
	bo.PutUint32(ifd0[len(ifd0)-1].value, uint32(gpsOff))

	out := make([]byte, dataOff)
	if bo == binary.LittleEndian {
		copy(out, "II")
	} else {
		copy(out, "MM")
	}
	bo.PutUint16(out[2:], tiffMagic)
	bo.PutUint32(out[4:], uint32(ifd0Off))
	write := func(off int, es []entry) {
		bo.PutUint16(out[off:], uint16(len(es)))
		for i, e := range es {
			p := out[off+2+12*i:]
			bo.PutUint16(p[0:], e.tag)
			bo.PutUint16(p[2:], e.typ)
			bo.PutUint32(p[4:], e.count)
			if len(e.value) <= 4 {
				copy(p[8:12], e.value)
			} else {
				bo.PutUint32(p[8:], uint32(len(out)))
				out = append(out, e.value...)
				if len(out)%2 == 1 {
					out = append(out, 0)
				}
			}
		}
		// The next-IFD offset stays 0.
	}
	write(ifd0Off, ifd0)
	write(gpsOff, gps)
	return out
}

// exifAPP1 returns a JPEG APP1 Exif segment holding tiff.
func exifAPP1(tiff []byte) []byte {
	return jpegSegment(jpegMarkerAPP1, append([]byte(exifHeader), tiff...))
}

// jpegMarkers lists the markers of a JPEG file's segments up to and
// including the first SOS.
func jpegMarkers(t *testing.T, data []byte) []byte {
	t.Helper()
	if !bytes.HasPrefix(data, []byte{0xff, 0xd8}) {
		t.Fatalf("not a JPEG: % x", data[:min(len(data), 4)])
	}
	var ms []byte
	for i := 2; i+4 <= len(data); {
		if data[i] != 0xff {
			t.Fatalf("no marker at offset %d", i)
		}
		m := data[i+1]
		ms = append(ms, m)
		if m == jpegMarkerSOS {
			return ms
		}
		i += 2 + int(binary.BigEndian.Uint16(data[i+2:]))
	}
	t.Fatal("no SOS segment")
	return nil
}

// pngChunk returns a PNG chunk with its CRC.
func pngChunk(typ string, data []byte) []byte {
	c := binary.BigEndian.AppendUint32(nil, uint32(len(data)))
	c = append(c, typ...)
	c = append(c, data...)
	return binary.BigEndian.AppendUint32(c, crc32.ChecksumIEEE(c[4:]))
}

// insertAfterIHDR inserts chunks after a PNG's IHDR chunk.
func insertAfterIHDR(p []byte, chunks ...[]byte) []byte {
	const end = 8 + 8 + 13 + 4 // signature, IHDR header, IHDR data, CRC
	out := append([]byte{}, p[:end]...)
	for _, c := range chunks {
		out = append(out, c...)
	}
	return append(out, p[end:]...)
}

// pngChunks lists the chunk types of a PNG file.
func pngChunks(t *testing.T, data []byte) []string {
	t.Helper()
	var types []string
	for i := 8; i+8 <= len(data); {
		n := int(binary.BigEndian.Uint32(data[i:]))
		types = append(types, string(data[i+4:i+8]))
		i += 12 + n
	}
	return types
}

// setPNGSize rewrites the width and height in a PNG's IHDR and its CRC.
func setPNGSize(p []byte, w, h uint32) []byte {
	p = bytes.Clone(p)
	binary.BigEndian.PutUint32(p[16:], w)
	binary.BigEndian.PutUint32(p[20:], h)
	binary.BigEndian.PutUint32(p[29:], crc32.ChecksumIEEE(p[12:29]))
	return p
}

// setJPEGSize rewrites the height and width in a JPEG's SOF0 segment.
func setJPEGSize(t *testing.T, j []byte, w, h uint16) []byte {
	t.Helper()
	j = bytes.Clone(j)
	i := bytes.Index(j, []byte{0xff, 0xc0})
	if i < 0 {
		t.Fatal("no SOF0")
	}
	binary.BigEndian.PutUint16(j[i+5:], h)
	binary.BigEndian.PutUint16(j[i+7:], w)
	return j
}

// bitWriter writes the least significant bit first, as VP8L reads.
type bitWriter struct {
	out   []byte
	acc   uint64
	nbits uint
}

func (b *bitWriter) write(v uint64, n uint) {
	b.acc |= v << b.nbits
	b.nbits += n
	for b.nbits >= 8 {
		b.out = append(b.out, byte(b.acc))
		b.acc >>= 8
		b.nbits -= 8
	}
}

func (b *bitWriter) bytes() []byte {
	if b.nbits > 0 {
		return append(b.out, byte(b.acc))
	}
	return b.out
}

// vp8lSolid returns a lossless VP8L bitstream of a w×h image of one opaque
// colour: no transforms, no colour cache, and five one-symbol prefix codes
// (green, red, blue, alpha, distance), so that the pixels take no bits.
func vp8lSolid(w, h int, c color.RGBA) []byte {
	var b bitWriter
	b.write(0x2f, 8)
	b.write(uint64(w-1), 14)
	b.write(uint64(h-1), 14)
	b.write(0, 1) // alpha is not used
	b.write(0, 3) // version
	b.write(0, 1) // no transform
	b.write(0, 1) // no colour cache
	b.write(0, 1) // no meta prefix codes
	for _, v := range []uint8{c.G, c.R, c.B, c.A} {
		b.write(1, 1) // simple code
		b.write(0, 1) // one symbol
		b.write(1, 1) // 8-bit symbol
		b.write(uint64(v), 8)
	}
	b.write(1, 1) // distance: simple code
	b.write(0, 1) // one symbol
	b.write(0, 1) // 1-bit symbol
	b.write(0, 1) // symbol 0
	return b.bytes()
}

// riffChunk returns a RIFF chunk, padded to an even length.
func riffChunk(fourcc string, data []byte) []byte {
	c := append([]byte(fourcc), binary.LittleEndian.AppendUint32(nil, uint32(len(data)))...)
	c = append(c, data...)
	if len(data)%2 == 1 {
		c = append(c, 0)
	}
	return c
}

// webpFile wraps chunks in a RIFF WEBP container.
func webpFile(chunks ...[]byte) []byte {
	var body []byte
	for _, c := range chunks {
		body = append(body, c...)
	}
	out := append([]byte("RIFF"), binary.LittleEndian.AppendUint32(nil, uint32(4+len(body)))...)
	out = append(out, "WEBP"...)
	return append(out, body...)
}

// vp8x returns a VP8X chunk with the given flags and canvas size.
func vp8x(flags byte, w, h int) []byte {
	d := make([]byte, 10)
	d[0] = flags
	put24 := func(p []byte, v int) { p[0], p[1], p[2] = byte(v), byte(v>>8), byte(v>>16) }
	put24(d[4:], w-1)
	put24(d[7:], h-1)
	return riffChunk("VP8X", d)
}

// solidWebP returns a simple lossless WebP of one colour.
func solidWebP(w, h int, c color.RGBA) []byte {
	return webpFile(riffChunk("VP8L", vp8lSolid(w, h, c)))
}

// near reports whether two colours differ by at most tol in each channel.
func near(a, b color.Color, tol int) bool {
	ar, ag, ab, aa := a.RGBA()
	br, bg, bb, ba := b.RGBA()
	d := func(x, y uint32) bool { v := int(x>>8) - int(y>>8); return v >= -tol && v <= tol }
	return d(ar, br) && d(ag, bg) && d(ab, bb) && d(aa, ba)
}

// decodeOutput decodes a CleanImage result by its content type and checks
// its stated size.
func decodeOutput(t testing.TB, img Image) image.Image {
	t.Helper()
	var m image.Image
	var err error
	switch img.ContentType {
	case "image/jpeg":
		m, err = jpeg.Decode(bytes.NewReader(img.Data))
	case "image/png":
		m, err = png.Decode(bytes.NewReader(img.Data))
	default:
		t.Fatalf("content type %q", img.ContentType)
	}
	if err != nil {
		t.Fatalf("output does not decode as %s: %v", img.ContentType, err)
	}
	if b := m.Bounds(); b.Dx() != img.Width || b.Dy() != img.Height {
		t.Fatalf("output is %dx%d, Image says %dx%d", b.Dx(), b.Dy(), img.Width, img.Height)
	}
	return m
}
