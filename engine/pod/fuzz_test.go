package pod

import (
	"bytes"
	"encoding/binary"
	"errors"
	"image"
	"image/gif"
	"sync"
	"testing"
)

// FuzzCleanImage checks that CleanImage never panics and that it returns
// either one of its four errors or a decodable image of the stated type and
// size within the limits.
func FuzzCleanImage(f *testing.F) {
	q := quadrants(40, 30)
	jpg := encodeJPEG(f, q, 80)
	pngData := encodePNG(f, q)
	var g bytes.Buffer
	if err := gif.Encode(&g, q, nil); err != nil {
		f.Fatal(err)
	}
	for _, seed := range [][]byte{
		jpg,
		encodeJPEG(f, noisy(33, 17, 1), 60),
		encodeJPEG(f, image.NewGray(image.Rect(0, 0, 20, 20)), 50),
		insertAfterSOI(jpg, exifAPP1(exifTIFF(binary.BigEndian, 6))),
		insertAfterSOI(jpg, exifAPP1(exifTIFF(binary.LittleEndian, 7)), jpegSegment(0xfe, []byte("comment"))),
		jpg[:len(jpg)/2],
		pngData,
		encodePNG(f, noisy(24, 20, 2)),
		insertAfterIHDR(pngData, pngChunk("tEXt", []byte("Comment\x00x")), pngChunk("eXIf", exifTIFF(binary.BigEndian, 8))),
		solidWebP(40, 30, red),
		webpFile(vp8x(1<<3, 40, 30), riffChunk("VP8L", vp8lSolid(40, 30, blue)), riffChunk("EXIF", exifTIFF(binary.LittleEndian, 5))),
		g.Bytes(),
		[]byte("<html>"),
	} {
		f.Add(seed, false)
		f.Add(seed, true)
	}
	lim := Limits{MaxBytes: 1 << 20, MaxPixels: 1 << 20, MinSide: 1, MaxSide: 4096, MaxOutputSide: 32}
	f.Fuzz(func(t *testing.T, data []byte, signature bool) {
		kind := Photo
		if signature {
			kind = Signature
		}
		img, err := CleanImage(data, lim, kind)
		if err != nil {
			n := 0
			for _, e := range []error{ErrTooLarge, ErrUnsupportedType, ErrCorrupt, ErrDimensions} {
				if errors.Is(err, e) {
					n++
				}
			}
			if n != 1 {
				t.Fatalf("error %v wraps %d of the four errors", err, n)
			}
			return
		}
		want := map[Kind]string{Photo: "image/jpeg", Signature: "image/png"}[kind]
		if img.ContentType != want {
			t.Fatalf("content type %q for a %s", img.ContentType, kind)
		}
		if img.Width < 1 || img.Height < 1 || img.Width > lim.MaxOutputSide || img.Height > lim.MaxOutputSide {
			t.Fatalf("output %dx%d outside 1..%d", img.Width, img.Height, lim.MaxOutputSide)
		}
		decodeOutput(t, img)
	})
}

// FuzzMetadata runs the hand-written metadata parsers (JPEG segments, PNG
// and WebP chunks, TIFF IFD) on arbitrary bytes: they must not panic or
// loop, and an orientation is always 1..8.
func FuzzMetadata(f *testing.F) {
	tiff := exifTIFF(binary.BigEndian, 6)
	jpg := encodeJPEG(f, quadrants(16, 16), 80)
	f.Add(tiff)
	f.Add(exifTIFF(binary.LittleEndian, 3))
	f.Add(insertAfterSOI(jpg, exifAPP1(tiff)))
	f.Add(insertAfterIHDR(encodePNG(f, quadrants(16, 16)), pngChunk("eXIf", tiff)))
	f.Add(webpFile(vp8x(1<<3, 16, 16), riffChunk("VP8L", vp8lSolid(16, 16, red)), riffChunk("EXIF", tiff)))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, o := range []int{
			tiffOrientation(data),
			orientation(formatJPEG, data),
			orientation(formatPNG, data),
			orientation(formatWebP, data),
		} {
			if o < 1 || o > 8 {
				t.Fatalf("orientation %d", o)
			}
		}
		if tiff, scans := jpegExif(data); scans < 0 || scans > len(data) || len(tiff) > len(data) {
			t.Fatalf("jpegExif: %d bytes, %d scans", len(tiff), scans)
		}
		sniff(data)
	})
}

// BenchmarkCleanImage cleans a 12-megapixel camera JPEG (4000×3000, noisy
// gradients, quality 92, about what a phone writes): decode, scale to
// 2048×1536, encode at PhotoQuality; once upright and once with Exif
// orientation 6 (turned as well).
func BenchmarkCleanImage(b *testing.B) {
	camera := sync.OnceValue(func() []byte { return encodeJPEG(b, noisy(4000, 3000, 7), 92) })
	for _, bc := range []struct {
		name   string
		orient uint16
	}{{"12MP", 0}, {"12MP-orientation-6", 6}} {
		b.Run(bc.name, func(b *testing.B) {
			data := camera()
			if bc.orient != 0 {
				data = insertAfterSOI(data, exifAPP1(exifTIFF(binary.BigEndian, bc.orient)))
			}
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			var img Image
			for b.Loop() {
				var err error
				if img, err = CleanImage(data, Limits{}, Photo); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(data)), "in-bytes")
			b.ReportMetric(float64(len(img.Data)), "out-bytes")
			b.ReportMetric(float64(img.Width*img.Height), "out-px")
		})
	}
}
