package pod

import (
	"bytes"
	"encoding/binary"
)

// format is an image format CleanImage can read.
type format int

const (
	formatNone format = iota
	formatJPEG
	formatPNG
	formatWebP
)

// MIME types of the formats CleanImage reads and writes.
const (
	typeJPEG = "image/jpeg"
	typePNG  = "image/png"
	typeWebP = "image/webp"
)

// sniff identifies data by its first bytes, never by what the client said
// it was. It returns the format if CleanImage can read it, and in every
// case a media type naming what the bytes look like, for error messages:
// a few common refusals are named (GIF, HEIC, PDF, HTML, ...), anything
// else is "application/octet-stream".
func sniff(data []byte) (format, string) {
	switch {
	case bytes.HasPrefix(data, []byte{0xff, 0xd8, 0xff}):
		return formatJPEG, typeJPEG
	case bytes.HasPrefix(data, []byte("\x89PNG\r\n\x1a\n")):
		return formatPNG, typePNG
	case len(data) >= 12 && string(data[0:4]) == "RIFF" && string(data[8:12]) == "WEBP":
		if webpAnimated(data) {
			return formatNone, "image/webp (animated)"
		}
		return formatWebP, typeWebP
	case bytes.HasPrefix(data, []byte("GIF87a")), bytes.HasPrefix(data, []byte("GIF89a")):
		return formatNone, "image/gif"
	case bytes.HasPrefix(data, []byte("%PDF-")):
		return formatNone, "application/pdf"
	case bytes.HasPrefix(data, []byte("BM")):
		return formatNone, "image/bmp"
	case bytes.HasPrefix(data, []byte("II*\x00")), bytes.HasPrefix(data, []byte("MM\x00*")):
		return formatNone, "image/tiff"
	case bytes.HasPrefix(data, []byte{0, 0, 1, 0}):
		return formatNone, "image/x-icon"
	case bytes.HasPrefix(data, []byte{0xff, 0x0a}), bytes.HasPrefix(data, []byte("\x00\x00\x00\x0cJXL \r\n\x87\n")):
		return formatNone, "image/jxl"
	case len(data) >= 12 && string(data[4:8]) == "ftyp":
		switch string(data[8:12]) {
		case "heic", "heix", "heim", "heis", "hevc", "hevx", "mif1", "msf1":
			return formatNone, "image/heic"
		case "avif", "avis":
			return formatNone, "image/avif"
		}
		return formatNone, "video/mp4"
	}
	if t := sniffText(data); t != "" {
		return formatNone, t
	}
	return formatNone, "application/octet-stream"
}

// sniffText recognises HTML, SVG and XML after optional whitespace and a
// UTF-8 byte order mark.
func sniffText(data []byte) string {
	s := bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	s = bytes.TrimLeft(s, " \t\r\n\f")
	if len(s) > 512 {
		s = s[:512]
	}
	lower := bytes.ToLower(s)
	for _, p := range []string{"<!doctype html", "<html", "<head", "<body", "<script", "<iframe", "<!--"} {
		if bytes.HasPrefix(lower, []byte(p)) {
			return "text/html"
		}
	}
	switch {
	case bytes.HasPrefix(lower, []byte("<svg")), bytes.Contains(lower, []byte("<svg")) && bytes.HasPrefix(lower, []byte("<?xml")):
		return "image/svg+xml"
	case bytes.HasPrefix(lower, []byte("<?xml")):
		return "text/xml"
	}
	return ""
}

// webpAnimated reports whether a WebP file's VP8X header (always the first
// chunk when present) sets the animation flag. Animated WebP is not a
// photo of a parcel, and the decoder cannot read it.
func webpAnimated(data []byte) bool {
	const animationBit = 1 << 1
	return len(data) >= 21 && string(data[12:16]) == "VP8X" &&
		binary.LittleEndian.Uint32(data[16:20]) >= 10 && data[20]&animationBit != 0
}
