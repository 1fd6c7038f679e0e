// Package pod checks and cleans the proof-of-delivery (PoD) images a
// driver's phone sends when a stop is delivered: the photo of the parcel at
// the door and the signature drawn on screen. It has no HTTP in it: the PoD
// handler passes the uploaded bytes to CleanImage, stores the returned
// Image (package blob) and signs the short-lived links the tracking page
// shows the images by (SignURL, VerifyURL).
//
// # What CleanImage protects against
//
// The file's type is taken from its content, never from the client's
// Content-Type or file name. The dimensions are read from the header and
// checked before any pixel is decoded, so a small file claiming a huge
// image (a decompression bomb) is refused without allocating its pixels;
// the input size is bounded too. A damaged or hostile file gives an error,
// never a panic. The output is re-encoded from the decoded pixels only, so
// nothing of the original file survives: no Exif (GPS position, phone
// model, time), no comments, no XMP, no ICC profile, no trailing data, and
// no polyglot payload (a file that is also HTML or a script).
//
// Not done: colour management (an ICC profile is dropped, not applied,
// which is harmless for the sRGB that phones produce), animated images,
// HEIC/AVIF (phones' browsers upload JPEG).
package pod

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/jpeg"
	"image/png"

	"golang.org/x/image/webp"
)

// Kind says what a proof-of-delivery image is, which decides the formats
// CleanImage accepts and the format it writes.
type Kind int

const (
	// Photo is a camera picture of the delivered parcel: JPEG, PNG or WebP
	// in, JPEG out, turned upright and scaled down to Limits.MaxOutputSide.
	Photo Kind = iota + 1
	// Signature is a signature drawn on the phone's screen (a canvas
	// export): JPEG or PNG in, PNG out, transparency kept.
	Signature
)

// String returns "photo" or "signature".
func (k Kind) String() string {
	switch k {
	case Photo:
		return "photo"
	case Signature:
		return "signature"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// accepts reports whether a file of format f is accepted for k.
func (k Kind) accepts(f format) bool {
	switch f {
	case formatJPEG, formatPNG:
		return true
	case formatWebP:
		return k == Photo
	}
	return false
}

// want names the formats accepted for k, for error messages.
func (k Kind) want() string {
	if k == Photo {
		return "JPEG, PNG or WebP"
	}
	return "PNG or JPEG"
}

// Defaults of the Limits fields, used where a field is zero or negative.
const (
	DefaultMaxBytes      = 8 << 20    // 8 MiB
	DefaultMaxPixels     = 24_000_000 // 24 megapixels
	DefaultMinSide       = 16
	DefaultMaxSide       = 8192
	DefaultMaxOutputSide = 2048
)

// PhotoQuality is the JPEG quality CleanImage writes photos with.
const PhotoQuality = 85

// Limits bounds what CleanImage accepts and writes. A zero or negative
// field takes its default (DefaultMaxBytes and so on), so the zero Limits
// is the default policy.
type Limits struct {
	// MaxBytes is the largest input accepted, in bytes.
	MaxBytes int64
	// MaxPixels is the largest width × height accepted. It bounds the
	// memory a decode takes: about 1.5-3 bytes a pixel for a baseline
	// JPEG (what phones write), 4 for an 8-bit RGBA PNG, 8 for a 16-bit
	// one, and up to 15 for a progressive 4:4:4 JPEG, whose decoder keeps
	// every coefficient: about 360 MB at the default 24 megapixels.
	MaxPixels int64
	// MinSide is the smallest width or height accepted, in pixels.
	MinSide int
	// MaxSide is the largest width or height accepted, in pixels.
	MaxSide int
	// MaxOutputSide is the longest side of the output: a larger image is
	// scaled down to it (aspect ratio kept), a smaller one is never
	// scaled up.
	MaxOutputSide int
}

// withDefaults returns lim with its unset fields set to their defaults.
func (lim Limits) withDefaults() Limits {
	if lim.MaxBytes <= 0 {
		lim.MaxBytes = DefaultMaxBytes
	}
	if lim.MaxPixels <= 0 {
		lim.MaxPixels = DefaultMaxPixels
	}
	if lim.MinSide <= 0 {
		lim.MinSide = DefaultMinSide
	}
	if lim.MaxSide <= 0 {
		lim.MaxSide = DefaultMaxSide
	}
	if lim.MaxOutputSide <= 0 {
		lim.MaxOutputSide = DefaultMaxOutputSide
	}
	return lim
}

// Image is a cleaned proof-of-delivery image: Data is a complete JPEG
// (ContentType "image/jpeg", photos) or PNG ("image/png", signatures) file
// written by this package, holding nothing but pixels, Width × Height of
// them, upright.
type Image struct {
	Data          []byte
	ContentType   string
	Width, Height int
}

// Errors of CleanImage, for the caller to tell the client what was wrong
// (each is wrapped with the details; test with errors.Is). Every error
// CleanImage returns for a bad input wraps exactly one of them.
var (
	// ErrTooLarge: the input is larger than Limits.MaxBytes (HTTP 413).
	ErrTooLarge = errors.New("pod: image file too large")
	// ErrUnsupportedType: the content is not an accepted image format
	// for the kind; the error is a *TypeError naming what was found
	// (HTTP 415).
	ErrUnsupportedType = errors.New("pod: unsupported image type")
	// ErrCorrupt: the content starts like an accepted format but cannot
	// be decoded: truncated, damaged or malformed (HTTP 422).
	ErrCorrupt = errors.New("pod: corrupt image")
	// ErrDimensions: the width, height or pixel count is outside the
	// Limits (HTTP 422).
	ErrDimensions = errors.New("pod: image dimensions out of range")
)

// TypeError is the error CleanImage returns for content of a format it
// does not accept for the kind. It wraps ErrUnsupportedType.
type TypeError struct {
	// Sniffed is the media type the content looks like, from its first
	// bytes ("image/gif", "image/heic", "application/pdf", "text/html",
	// "application/octet-stream" if unknown, ...).
	Sniffed string
	// Kind is the kind of image that was expected.
	Kind Kind
	// Detail says more when the format is accepted but this file uses a
	// feature of it the decoder lacks (e.g. an arithmetic-coded JPEG).
	Detail string
}

// Error returns a message fit for the client.
func (e *TypeError) Error() string {
	if e.Detail != "" {
		return fmt.Sprintf("pod: %s %s not supported: %s", e.Sniffed, e.Kind, e.Detail)
	}
	return fmt.Sprintf("pod: %s is not accepted for a %s (want %s)", e.Sniffed, e.Kind, e.Kind.want())
}

// Unwrap returns ErrUnsupportedType.
func (e *TypeError) Unwrap() error { return ErrUnsupportedType }

// CleanImage checks an uploaded proof-of-delivery image and returns a
// clean re-encoding of it. In order, it:
//   - refuses input larger than lim.MaxBytes (ErrTooLarge);
//   - identifies the format by the content's magic bytes: JPEG and PNG,
//     and WebP for photos; anything else gives a *TypeError;
//   - reads the width and height from the header and refuses them if a
//     side is outside [lim.MinSide, lim.MaxSide] or the pixel count is
//     above lim.MaxPixels (ErrDimensions), before decoding any pixel;
//   - decodes the pixels (ErrCorrupt if that fails, for any reason,
//     including a decoder panic);
//   - for a photo: composites any transparency over white, scales the
//     image down to lim.MaxOutputSide on its long side if larger, turns it
//     upright according to its Exif orientation, and encodes it as JPEG at
//     PhotoQuality;
//   - for a signature: scales it down likewise, keeps its transparency,
//     turns it upright and encodes it as PNG.
//
// The output holds no metadata of the input. CleanImage is safe for
// concurrent use. It is CPU- and memory-heavy (a 12-megapixel photo takes
// most of a second of one core and tens of MB; see Limits.MaxPixels for the
// worst case), so the caller should bound how many run at once.
func CleanImage(data []byte, lim Limits, kind Kind) (Image, error) {
	if kind != Photo && kind != Signature {
		return Image{}, fmt.Errorf("pod: clean image: invalid kind %d", int(kind))
	}
	lim = lim.withDefaults()
	if int64(len(data)) > lim.MaxBytes {
		return Image{}, fmt.Errorf("%w: %d bytes, at most %d", ErrTooLarge, len(data), lim.MaxBytes)
	}
	if len(data) == 0 {
		return Image{}, fmt.Errorf("%w: empty file", ErrCorrupt)
	}
	f, sniffed := sniff(data)
	if !kind.accepts(f) {
		return Image{}, &TypeError{Sniffed: sniffed, Kind: kind}
	}

	cfg, err := decodeConfig(f, data)
	if err != nil {
		return Image{}, decodeError(sniffed, kind, err)
	}
	if err := checkDimensions(cfg.Width, cfg.Height, lim); err != nil {
		return Image{}, err
	}
	if f == formatJPEG {
		if _, scans := jpegExif(data); scans > maxJPEGScans {
			return Image{}, fmt.Errorf("%w: JPEG with %d scans, at most %d", ErrCorrupt, scans, maxJPEGScans)
		}
	}
	m, err := decode(f, data)
	if err != nil {
		return Image{}, decodeError(sniffed, kind, err)
	}
	if b := m.Bounds(); b.Dx() != cfg.Width || b.Dy() != cfg.Height {
		return Image{}, fmt.Errorf("%w: header says %dx%d, image data %dx%d",
			ErrCorrupt, cfg.Width, cfg.Height, b.Dx(), b.Dy())
	}

	out := prepare(m, kind, lim.MaxOutputSide, orientation(f, data))
	var buf bytes.Buffer
	img := Image{Width: out.Bounds().Dx(), Height: out.Bounds().Dy()}
	switch kind {
	case Photo:
		img.ContentType = typeJPEG
		err = jpeg.Encode(&buf, out, &jpeg.Options{Quality: PhotoQuality})
	case Signature:
		img.ContentType = typePNG
		err = (&png.Encoder{CompressionLevel: png.BestCompression}).Encode(&buf, out)
	}
	if err != nil {
		// The encoders fail only on an empty or absurdly large image,
		// which the checks above exclude.
		return Image{}, fmt.Errorf("pod: encode %s: %w", kind, err)
	}
	img.Data = buf.Bytes()
	return img, nil
}

// checkDimensions checks a header's width and height against lim.
func checkDimensions(w, h int, lim Limits) error {
	switch {
	case w < lim.MinSide || h < lim.MinSide:
		return fmt.Errorf("%w: %dx%d, each side at least %d pixels", ErrDimensions, w, h, lim.MinSide)
	case w > lim.MaxSide || h > lim.MaxSide:
		return fmt.Errorf("%w: %dx%d, each side at most %d pixels", ErrDimensions, w, h, lim.MaxSide)
	case int64(w)*int64(h) > lim.MaxPixels:
		return fmt.Errorf("%w: %dx%d is %.1f megapixels, at most %.1f",
			ErrDimensions, w, h, float64(w)*float64(h)/1e6, float64(lim.MaxPixels)/1e6)
	}
	return nil
}

// decodeConfig reads the header of an image in format f.
func decodeConfig(f format, data []byte) (cfg image.Config, err error) {
	defer recoverDecoder(&err)
	r := bytes.NewReader(data)
	switch f {
	case formatJPEG:
		return jpeg.DecodeConfig(r)
	case formatPNG:
		return png.DecodeConfig(r)
	case formatWebP:
		return webp.DecodeConfig(r)
	}
	return image.Config{}, errors.New("no decoder")
}

// decode decodes an image in format f. The format's decoder is called
// directly, not through image.Decode, so the set of formats does not
// depend on which packages the program happens to link.
func decode(f format, data []byte) (m image.Image, err error) {
	defer recoverDecoder(&err)
	r := bytes.NewReader(data)
	switch f {
	case formatJPEG:
		return jpeg.Decode(r)
	case formatPNG:
		return png.Decode(r)
	case formatWebP:
		return webp.Decode(r)
	}
	return nil, errors.New("no decoder")
}

// recoverDecoder turns a panic in a decoder into an error: a decoder bug
// triggered by a hostile file must cost one request, not the process.
func recoverDecoder(err *error) {
	if r := recover(); r != nil {
		*err = fmt.Errorf("decoder panic: %v", r)
	}
}

// decodeError classifies a decoder error: a feature the decoder lacks is
// an unsupported type, anything else a corrupt file.
func decodeError(sniffed string, kind Kind, err error) error {
	var ju jpeg.UnsupportedError
	var pu png.UnsupportedError
	switch {
	case errors.As(err, &ju), errors.As(err, &pu):
		return &TypeError{Sniffed: sniffed, Kind: kind, Detail: err.Error()}
	}
	return fmt.Errorf("%w: %s: %v", ErrCorrupt, sniffed, err)
}

// prepare returns the image to encode: m scaled down to maxSide, turned
// upright for orientation o and, for a photo, composited over white. A
// photo in YCbCr (JPEG, lossy WebP) stays in YCbCr, plane by plane; other
// images go through RGBA, and only when they have to (or when the encoder
// would be slow on m's type), so an image that needs nothing is encoded as
// decoded.
func prepare(m image.Image, kind Kind, maxSide, o int) image.Image {
	b := m.Bounds()
	dw, dh := fit(b.Dx(), b.Dy(), maxSide)
	scale := dw != b.Dx() || dh != b.Dy()
	if y, ok := m.(*image.YCbCr); ok && kind == Photo && b.Min == (image.Point{}) {
		turnable := y.SubsampleRatio == image.YCbCrSubsampleRatio420 || y.SubsampleRatio == image.YCbCrSubsampleRatio444
		if scale || o != orientUpright && !turnable {
			y = resizeYCbCr(y, dw, dh) // 4:2:0, turnable
		}
		return orientYCbCr(y, o)
	}
	flatten := kind == Photo && !opaque(m)
	var rgba *image.RGBA
	switch {
	case scale:
		rgba = resize(m, dw, dh, flatten)
	case flatten || o != orientUpright || !encodesFast(m, kind):
		rgba = toRGBA(m, flatten)
	default:
		return m
	}
	return orient(rgba, o)
}

// encodesFast reports whether the encoder for kind takes m's type
// directly and efficiently (the others are converted to RGBA first).
func encodesFast(m image.Image, kind Kind) bool {
	switch m.(type) {
	case *image.YCbCr:
		return kind == Photo // the PNG encoder would go pixel by pixel
	case *image.RGBA, *image.Gray:
		return true
	case *image.NRGBA, *image.Paletted:
		return kind == Signature
	}
	return false
}
