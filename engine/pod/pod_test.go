package pod

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/gif"
	"math"
	"runtime"
	"slices"
	"strings"
	"testing"
)

func TestCleanImageFormats(t *testing.T) {
	q := quadrants(64, 48)
	for _, tc := range []struct {
		name     string
		data     []byte
		kind     Kind
		wantType string
	}{
		{"JPEG photo", encodeJPEG(t, q, 90), Photo, "image/jpeg"},
		{"PNG photo", encodePNG(t, q), Photo, "image/jpeg"},
		{"WebP photo", solidWebP(64, 48, green), Photo, "image/jpeg"},
		{"PNG signature", encodePNG(t, q), Signature, "image/png"},
		{"JPEG signature", encodeJPEG(t, q, 90), Signature, "image/png"},
		{"gray JPEG photo", encodeJPEG(t, image.NewGray(image.Rect(0, 0, 64, 48)), 90), Photo, "image/jpeg"},
		{"paletted PNG signature", encodePNG(t, image.NewPaletted(image.Rect(0, 0, 64, 48), color.Palette{white, blue})), Signature, "image/png"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			img, err := CleanImage(tc.data, Limits{}, tc.kind)
			if err != nil {
				t.Fatal(err)
			}
			if img.ContentType != tc.wantType || img.Width != 64 || img.Height != 48 {
				t.Fatalf("got %s %dx%d, want %s 64x48", img.ContentType, img.Width, img.Height, tc.wantType)
			}
			decodeOutput(t, img)
		})
	}
}

func TestCleanImageOrientation(t *testing.T) {
	// Where each quadrant of the stored picture (TL red, TR green, BL
	// blue, BR white) must appear once the orientation is applied, worked
	// out from the TIFF 6.0 definitions ("0th row is the visual ..., 0th
	// column is the visual ..."), in the order TL, TR, BL, BR.
	want := map[int][4]color.RGBA{
		1: {red, green, blue, white},
		2: {green, red, white, blue}, // mirrored left-right
		3: {white, blue, green, red}, // 180°
		4: {blue, white, red, green}, // mirrored top-bottom
		5: {red, blue, green, white}, // transposed
		6: {blue, red, white, green}, // 90° clockwise
		7: {white, green, blue, red}, // transversed
		8: {green, white, red, blue}, // 90° anticlockwise
		0: {red, green, blue, white}, // no Orientation tag
		9: {red, green, blue, white}, // out of range: ignored
	}
	const w, h = 64, 48
	plain := encodeJPEG(t, quadrants(w, h), 95)
	for o := range 10 {
		for _, bo := range []binary.ByteOrder{binary.BigEndian, binary.LittleEndian} {
			t.Run(fmt.Sprintf("%d/%s", o, bo), func(t *testing.T) {
				data := insertAfterSOI(plain, exifAPP1(exifTIFF(bo, uint16(o))))
				img, err := CleanImage(data, Limits{}, Photo)
				if err != nil {
					t.Fatal(err)
				}
				ww, wh := w, h
				if o >= 5 && o <= 8 {
					ww, wh = h, w
				}
				if img.Width != ww || img.Height != wh {
					t.Fatalf("got %dx%d, want %dx%d", img.Width, img.Height, ww, wh)
				}
				m := decodeOutput(t, img)
				checkQuadrants(t, m, want[o])
			})
		}
	}
}

// checkQuadrants checks the colour at the centre of each quadrant of m.
func checkQuadrants(t *testing.T, m image.Image, want [4]color.RGBA) {
	t.Helper()
	b := m.Bounds()
	pts := []image.Point{
		{b.Dx() / 4, b.Dy() / 4}, {3 * b.Dx() / 4, b.Dy() / 4},
		{b.Dx() / 4, 3 * b.Dy() / 4}, {3 * b.Dx() / 4, 3 * b.Dy() / 4},
	}
	for i, p := range pts {
		if got := m.At(b.Min.X+p.X, b.Min.Y+p.Y); !near(got, want[i], 40) {
			t.Errorf("quadrant %d at %v is %v, want %v", i, p, got, want[i])
		}
	}
}

func TestOrientationOtherContainers(t *testing.T) {
	tiff := exifTIFF(binary.LittleEndian, 6)
	q := quadrants(64, 48)
	for _, tc := range []struct {
		name string
		data []byte
		kind Kind
	}{
		{"PNG eXIf", insertAfterIHDR(encodePNG(t, q), pngChunk("eXIf", tiff)), Signature},
		{"PNG eXIf with Exif header", insertAfterIHDR(encodePNG(t, q), pngChunk("eXIf", append([]byte(exifHeader), tiff...))), Photo},
		{"WebP EXIF", webpFile(vp8x(1<<3, 64, 48), riffChunk("VP8L", vp8lSolid(64, 48, blue)), riffChunk("EXIF", tiff)), Photo},
	} {
		t.Run(tc.name, func(t *testing.T) {
			img, err := CleanImage(tc.data, Limits{}, tc.kind)
			if err != nil {
				t.Fatal(err)
			}
			if img.Width != 48 || img.Height != 64 {
				t.Fatalf("got %dx%d, want 48x64 (turned by orientation 6)", img.Width, img.Height)
			}
			m := decodeOutput(t, img)
			if strings.HasPrefix(tc.name, "PNG") {
				checkQuadrants(t, m, [4]color.RGBA{blue, red, white, green})
			}
		})
	}
}

func TestCleanImageStripsJPEGMetadata(t *testing.T) {
	tiff := exifTIFF(binary.BigEndian, 6)
	xmp := jpegSegment(jpegMarkerAPP1, []byte("http://ns.adobe.com/xap/1.0/\x00<x:xmpmeta>SECRET-XMP</x:xmpmeta>"))
	icc := jpegSegment(0xe2, []byte("ICC_PROFILE\x00\x01\x01SECRET-ICC"))
	com := jpegSegment(0xfe, []byte("SECRET-COMMENT"))
	jpg := encodeJPEG(t, quadrants(64, 48), 90)
	data := insertAfterSOI(jpg, exifAPP1(tiff), xmp, icc, com)
	data = append(data, "<script>SECRET-TRAILER</script>"...) // after EOI
	if !bytes.Contains(data, binary.BigEndian.AppendUint32(nil, gpsLat[4])) {
		t.Fatal("test file lacks its GPS bytes")
	}

	img, err := CleanImage(data, Limits{}, Photo)
	if err != nil {
		t.Fatal(err)
	}
	if img.Width != 48 || img.Height != 64 {
		t.Fatalf("got %dx%d, want 48x64: orientation 6 turns 64x48", img.Width, img.Height)
	}
	for _, m := range jpegMarkers(t, img.Data) {
		if 0xe0 <= m && m <= 0xef || m == 0xfe {
			t.Errorf("output has marker %#x (APPn or COM)", m)
		}
	}
	gpsBE := make([]byte, 24)
	for i, v := range gpsLat {
		binary.BigEndian.PutUint32(gpsBE[4*i:], v)
	}
	for _, s := range [][]byte{[]byte("Exif"), []byte("SECRET"), []byte("<script"), []byte("xmpmeta"), gpsBE} {
		if bytes.Contains(img.Data, s) {
			t.Errorf("output contains %q", s)
		}
	}
	if !bytes.HasSuffix(img.Data, []byte{0xff, 0xd9}) {
		t.Error("output does not end with EOI")
	}
	if o := orientation(formatJPEG, img.Data); o != 1 {
		t.Errorf("output orientation %d", o)
	}
	decodeOutput(t, img)
}

func TestCleanImageStripsPNGMetadata(t *testing.T) {
	sig := image.NewNRGBA(image.Rect(0, 0, 300, 100))
	for x := 20; x < 280; x++ { // a stroke on a transparent canvas
		sig.SetNRGBA(x, 50+x%7, color.NRGBA{0, 0, 0x80, 0xff})
	}
	data := insertAfterIHDR(encodePNG(t, sig),
		pngChunk("tEXt", []byte("Comment\x00SECRET-TEXT")),
		pngChunk("iTXt", []byte("XML:com.adobe.xmp\x00\x00\x00\x00\x00SECRET-XMP")),
		pngChunk("tIME", []byte{0x07, 0xe9, 1, 2, 3, 4, 5}),
		pngChunk("eXIf", exifTIFF(binary.BigEndian, 1)),
	)
	data = append(data, pngChunk("tEXt", []byte("After\x00SECRET-AFTER-IEND"))...)

	img, err := CleanImage(data, Limits{}, Signature)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range pngChunks(t, img.Data) {
		if !slices.Contains([]string{"IHDR", "PLTE", "tRNS", "IDAT", "IEND"}, c) {
			t.Errorf("output has chunk %s", c)
		}
	}
	if bytes.Contains(img.Data, []byte("SECRET")) {
		t.Error("output contains SECRET")
	}
	m := decodeOutput(t, img)
	// Transparency is kept.
	if _, _, _, a := m.At(5, 5).RGBA(); a != 0 {
		t.Errorf("background alpha %d, want 0", a)
	}
	if got := color.NRGBAModel.Convert(m.At(100, 50+100%7)); got != (color.NRGBA{0, 0, 0x80, 0xff}) {
		t.Errorf("stroke pixel %v", got)
	}
}

func TestPhotoTransparencyOnWhite(t *testing.T) {
	m := image.NewNRGBA(image.Rect(0, 0, 32, 32)) // transparent
	for x := range 16 {
		for y := range 32 {
			m.SetNRGBA(x, y, color.NRGBA{0, 0, 0xff, 0xff})
		}
	}
	img, err := CleanImage(encodePNG(t, m), Limits{}, Photo)
	if err != nil {
		t.Fatal(err)
	}
	out := decodeOutput(t, img)
	if got := out.At(24, 16); !near(got, white, 8) {
		t.Errorf("transparent area became %v, want white", got)
	}
	if got := out.At(4, 16); !near(got, blue, 8) {
		t.Errorf("opaque area became %v, want blue", got)
	}
}

func TestCleanImageDownscales(t *testing.T) {
	for _, tc := range []struct {
		name         string
		w, h         int
		kind         Kind
		lim          Limits
		wantW, wantH int
	}{
		{"default side", 2100, 100, Photo, Limits{}, 2048, 98},
		{"wide photo", 600, 200, Photo, Limits{MaxOutputSide: 410}, 410, 137},
		{"tall photo", 200, 600, Photo, Limits{MaxOutputSide: 410}, 137, 410},
		{"photo that fits is kept", 410, 300, Photo, Limits{MaxOutputSide: 410}, 410, 300},
		{"4:3 photo", 640, 480, Photo, Limits{MaxOutputSide: 100}, 100, 75},
		{"signature", 300, 100, Signature, Limits{MaxOutputSide: 150}, 150, 50},
		{"thin strip", 4000, 16, Photo, Limits{MaxOutputSide: 100}, 100, 1},
	} {
		for _, enc := range []string{"PNG", "JPEG"} {
			t.Run(tc.name+"/"+enc, func(t *testing.T) {
				data := encodePNG(t, quadrants(tc.w, tc.h))
				if enc == "JPEG" {
					data = encodeJPEG(t, quadrants(tc.w, tc.h), 90)
				}
				img, err := CleanImage(data, tc.lim, tc.kind)
				if err != nil {
					t.Fatal(err)
				}
				if img.Width != tc.wantW || img.Height != tc.wantH {
					t.Fatalf("got %dx%d, want %dx%d", img.Width, img.Height, tc.wantW, tc.wantH)
				}
				m := decodeOutput(t, img)
				if tc.wantH > 4 {
					checkQuadrants(t, m, [4]color.RGBA{red, green, blue, white})
				}
			})
		}
	}
}

func TestResizeAveragesArea(t *testing.T) {
	// A 1-pixel checkerboard of black and white halved in each direction
	// is mid grey everywhere; at another scale each output pixel is a mix
	// and the mean stays mid grey (area averaging keeps the mean). A
	// transparent column between opaque ones does not darken their colour
	// (premultiplied averaging): it halves the alpha.
	checker := image.NewRGBA(image.Rect(0, 0, 60, 40))
	for y := range 40 {
		for x := range 60 {
			if (x+y)%2 == 0 {
				checker.SetRGBA(x, y, white)
			} else {
				checker.SetRGBA(x, y, color.RGBA{0, 0, 0, 0xff})
			}
		}
	}
	half := image.NewNRGBA(image.Rect(10, 10, 70, 50)) // origin not at 0
	for y := 10; y < 50; y++ {
		for x := 10; x < 70; x += 2 {
			half.SetNRGBA(x, y, color.NRGBA{0xff, 0, 0, 0xff})
		}
	}
	for _, tc := range []struct {
		name     string
		src      image.Image
		dw, dh   int
		flatten  bool
		want     color.NRGBA
		tol      int
		wantMean float64
	}{
		{"checker 2:1", checker, 30, 20, false, color.NRGBA{0x80, 0x80, 0x80, 0xff}, 1, 127.5},
		{"checker 2.4:1", checker, 25, 17, false, color.NRGBA{0x80, 0x80, 0x80, 0xff}, 20, 127.5},
		{"half transparent", half, 30, 20, false, color.NRGBA{0xff, 0, 0, 0x80}, 1, 0xff},
		{"half transparent on white", half, 30, 20, true, color.NRGBA{0xff, 0x7f, 0x7f, 0xff}, 1, 0xff},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := resize(tc.src, tc.dw, tc.dh, tc.flatten)
			if m.Rect != image.Rect(0, 0, tc.dw, tc.dh) {
				t.Fatalf("bounds %v", m.Rect)
			}
			var sum float64
			for y := range tc.dh {
				for x := range tc.dw {
					got := color.NRGBAModel.Convert(m.At(x, y)).(color.NRGBA)
					if !near(got, tc.want, tc.tol) {
						t.Fatalf("pixel (%d,%d) = %v, want %v ± %d", x, y, got, tc.want, tc.tol)
					}
					sum += float64(got.R)
				}
			}
			if mean := sum / float64(tc.dw*tc.dh); math.Abs(mean-tc.wantMean) > 1 {
				t.Fatalf("mean red %.2f, want %.2f", mean, tc.wantMean)
			}
		})
	}
}

func TestPrepareYCbCr(t *testing.T) {
	// Decoded JPEGs come in every chroma subsampling; the YCbCr path must
	// scale and turn each of them right.
	ycbcrQuadrants := func(r image.YCbCrSubsampleRatio, w, h int) *image.YCbCr {
		q := quadrants(w, h)
		m := image.NewYCbCr(q.Rect, r)
		for y := range h {
			for x := range w {
				c := q.RGBAAt(x, y)
				yy, cb, cr := color.RGBToYCbCr(c.R, c.G, c.B)
				m.Y[m.YOffset(x, y)] = yy
				m.Cb[m.COffset(x, y)] = cb
				m.Cr[m.COffset(x, y)] = cr
			}
		}
		return m
	}
	upright := [4]color.RGBA{red, green, blue, white}
	turned6 := [4]color.RGBA{blue, red, white, green}
	for _, r := range []image.YCbCrSubsampleRatio{
		image.YCbCrSubsampleRatio444, image.YCbCrSubsampleRatio422, image.YCbCrSubsampleRatio420,
		image.YCbCrSubsampleRatio440, image.YCbCrSubsampleRatio411, image.YCbCrSubsampleRatio410,
	} {
		for _, tc := range []struct {
			name         string
			maxSide, o   int
			wantW, wantH int
			want         [4]color.RGBA
		}{
			{"as is", 2048, 1, 97, 61, upright},
			{"turned", 2048, 6, 61, 97, turned6},
			{"scaled", 50, 1, 50, 31, upright},
			{"scaled and turned", 50, 6, 31, 50, turned6},
		} {
			t.Run(r.String()+"/"+tc.name, func(t *testing.T) {
				m := prepare(ycbcrQuadrants(r, 97, 61), Photo, tc.maxSide, tc.o)
				if b := m.Bounds(); b != image.Rect(0, 0, tc.wantW, tc.wantH) {
					t.Fatalf("bounds %v, want %dx%d", b, tc.wantW, tc.wantH)
				}
				checkQuadrants(t, m, tc.want)
			})
		}
	}
}

func TestBoxSpans(t *testing.T) {
	for _, tc := range [][2]int{{4000, 2048}, {3000, 1536}, {7, 3}, {5, 5}, {8192, 1}, {3, 2}, {1000, 1024}, {1, 3}} {
		spans := boxSpans(tc[0], tc[1])
		perSource := make([]uint64, tc[0]) // total weight each source pixel gets
		for i, s := range spans {
			var sum uint32
			for k, w := range s.weights {
				sum += w
				perSource[s.first+k] += uint64(w)
			}
			if sum != weightOne || s.first < 0 || s.first+len(s.weights) > tc[0] || len(s.weights) == 0 {
				t.Fatalf("boxSpans(%d, %d)[%d] = %+v, weights sum to %d", tc[0], tc[1], i, s, sum)
			}
		}
		// Area averaging: every source pixel counts dst/src as much as
		// an output pixel, give or take the rounding of the weights.
		want := float64(weightOne) * float64(tc[1]) / float64(tc[0])
		for x, got := range perSource {
			if math.Abs(float64(got)-want) > 2+0.001*want {
				t.Fatalf("boxSpans(%d, %d): source %d weighs %d in all, want %.0f", tc[0], tc[1], x, got, want)
			}
		}
	}
}

func TestCleanImageRefusesDimensions(t *testing.T) {
	small := encodeJPEG(t, quadrants(16, 16), 90)
	smallPNG := encodePNG(t, quadrants(16, 16))
	for _, tc := range []struct {
		name string
		data []byte
		lim  Limits
	}{
		{"JPEG header claims 65000x65000", setJPEGSize(t, small, 65000, 65000), Limits{}},
		{"PNG header claims 100000x100000", setPNGSize(smallPNG, 100000, 100000), Limits{}},
		{"PNG header claims 2^31-1 wide", setPNGSize(smallPNG, 1<<31-1, 1), Limits{}},
		{"WebP canvas claims 16384x16384", webpFile(vp8x(0, 16384, 16384), riffChunk("VP8L", vp8lSolid(16, 16, red))), Limits{}},
		{"under MaxPixels sides, over pixels", setJPEGSize(t, small, 8000, 8000), Limits{}},
		{"too narrow", encodePNG(t, quadrants(8, 100)), Limits{}},
		{"too wide for MaxSide", encodePNG(t, quadrants(200, 20)), Limits{MaxSide: 100}},
		{"too many pixels", encodePNG(t, quadrants(100, 100)), Limits{MaxPixels: 9999}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			_, err := CleanImage(tc.data, tc.lim, Photo)
			runtime.ReadMemStats(&after)
			if !errors.Is(err, ErrDimensions) {
				t.Fatalf("error %v, want ErrDimensions", err)
			}
			if n := after.TotalAlloc - before.TotalAlloc; n > 1<<20 {
				t.Errorf("allocated %d bytes before refusing", n)
			}
		})
	}
}

func TestCleanImageCorrupt(t *testing.T) {
	jpg := encodeJPEG(t, noisy(64, 48, 1), 90)
	pngData := encodePNG(t, noisy(64, 48, 2))
	webp := solidWebP(64, 48, red)
	badCRC := bytes.Clone(pngData)
	badCRC[len(badCRC)-20] ^= 0xff
	manyScans := bytes.Clone(jpg[:len(jpg)-2])
	sos := bytes.LastIndex(jpg, []byte{0xff, jpegMarkerSOS})
	for range maxJPEGScans {
		manyScans = append(manyScans, jpg[sos:len(jpg)-2]...)
	}
	manyScans = append(manyScans, 0xff, jpegMarkerEOI)
	for _, tc := range []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"JPEG magic only", jpg[:3]},
		{"JPEG cut in header", jpg[:100]},
		{"JPEG cut in data", jpg[:len(jpg)/2]},
		{"JPEG without EOI", jpg[:len(jpg)-2]},
		{"JPEG with zeroed data", append(bytes.Clone(jpg[:sos+20]), make([]byte, len(jpg)-sos-20)...)},
		{"JPEG with too many scans", manyScans},
		{"PNG cut in header", pngData[:20]},
		{"PNG cut in data", pngData[:len(pngData)/2]},
		{"PNG without IEND", pngData[:len(pngData)-12]},
		{"PNG bad CRC", badCRC},
		{"WebP cut", webp[:len(webp)-3]},
		{"WebP header only", webp[:12]},
		{"WebP canvas and image disagree", webpFile(vp8x(0, 64, 64), riffChunk("VP8L", vp8lSolid(64, 48, red)))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := CleanImage(tc.data, Limits{}, Photo)
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v, want ErrCorrupt", err)
			}
			if tc.data != nil && bytes.Equal(tc.data, manyScans) && !strings.Contains(err.Error(), "scans") {
				t.Fatalf("error %v, want the scan limit", err)
			}
		})
	}
}

func TestCleanImageUnsupportedType(t *testing.T) {
	var gifData bytes.Buffer
	if err := gif.Encode(&gifData, quadrants(32, 32), nil); err != nil {
		t.Fatal(err)
	}
	heic := append([]byte("\x00\x00\x00\x18ftypheic"), make([]byte, 100)...)
	for _, tc := range []struct {
		name        string
		data        []byte
		kind        Kind
		wantSniffed string
	}{
		{"GIF", gifData.Bytes(), Photo, "image/gif"},
		{"PDF", []byte("%PDF-1.7\n1 0 obj\n<<>>\nendobj\n"), Photo, "application/pdf"},
		{"HTML", []byte("\n  <!DOCTYPE html><html><script>alert(1)</script>"), Signature, "text/html"},
		{"HTML with BOM", []byte("\xef\xbb\xbf<html><body>"), Photo, "text/html"},
		{"SVG", []byte(`<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"></svg>`), Signature, "image/svg+xml"},
		{"HEIC", heic, Photo, "image/heic"},
		{"BMP", append([]byte("BM"), make([]byte, 60)...), Photo, "image/bmp"},
		{"TIFF", []byte("II*\x00\x08\x00\x00\x00"), Photo, "image/tiff"},
		{"WebP signature", solidWebP(64, 48, red), Signature, "image/webp"},
		{"animated WebP", webpFile(vp8x(1<<1, 64, 48)), Photo, "image/webp (animated)"},
		{"random bytes", []byte{0x12, 0x34, 0x56, 0x78, 0x9a}, Photo, "application/octet-stream"},
		{"JPEG magic shortened", []byte{0xff, 0xd8}, Photo, "application/octet-stream"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := CleanImage(tc.data, Limits{}, tc.kind)
			if !errors.Is(err, ErrUnsupportedType) {
				t.Fatalf("error %v, want ErrUnsupportedType", err)
			}
			var te *TypeError
			if !errors.As(err, &te) || te.Sniffed != tc.wantSniffed || te.Kind != tc.kind {
				t.Fatalf("error %#v, want a TypeError for %s sniffed as %q", err, tc.kind, tc.wantSniffed)
			}
		})
	}
}

func TestCleanImageUnsupportedFeature(t *testing.T) {
	// An arithmetic-coded JPEG (SOF9): a real JPEG feature the decoder lacks.
	jpg := encodeJPEG(t, quadrants(16, 16), 90)
	i := bytes.Index(jpg, []byte{0xff, 0xc0})
	jpg[i+1] = 0xc9
	_, err := CleanImage(jpg, Limits{}, Photo)
	var te *TypeError
	if !errors.As(err, &te) || te.Detail == "" {
		t.Fatalf("error %v, want a TypeError with a detail", err)
	}
}

func TestCleanImageTooLarge(t *testing.T) {
	jpg := encodeJPEG(t, noisy(200, 200, 3), 90)
	for _, tc := range []struct {
		name    string
		data    []byte
		lim     Limits
		wantErr error
	}{
		{"one byte over", jpg, Limits{MaxBytes: int64(len(jpg) - 1)}, ErrTooLarge},
		{"exactly the limit", jpg, Limits{MaxBytes: int64(len(jpg))}, nil},
		{"over the default, checked before sniffing", make([]byte, DefaultMaxBytes+1), Limits{}, ErrTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := CleanImage(tc.data, tc.lim, Photo)
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil) != (err == nil) {
				t.Fatalf("error %v, want %v", err, tc.wantErr)
			}
		})
	}
}

func TestCleanImageInvalidKind(t *testing.T) {
	_, err := CleanImage(encodePNG(t, quadrants(16, 16)), Limits{}, Kind(0))
	if err == nil {
		t.Fatal("no error for kind 0")
	}
}

func TestLimitsDefaults(t *testing.T) {
	got := Limits{MaxBytes: -1, MinSide: 4}.withDefaults()
	want := Limits{MaxBytes: DefaultMaxBytes, MaxPixels: DefaultMaxPixels, MinSide: 4, MaxSide: DefaultMaxSide, MaxOutputSide: DefaultMaxOutputSide}
	if got != want {
		t.Fatalf("got %+v, want %+v", got, want)
	}
}

func TestTIFFOrientation(t *testing.T) {
	valid := exifTIFF(binary.LittleEndian, 6)
	long := bytes.Clone(valid) // the same tag written as a LONG
	for i := 10; i+12 <= len(long); i += 12 {
		if binary.LittleEndian.Uint16(long[i:]) == exifOrientationTag {
			binary.LittleEndian.PutUint16(long[i+2:], tiffTypeLong)
			binary.LittleEndian.PutUint32(long[i+8:], 8)
		}
	}
	ascii := bytes.Replace(bytes.Clone(valid), []byte{0x12, 0x01, 0x03, 0x00}, []byte{0x12, 0x01, 0x02, 0x00}, 1)
	for _, tc := range []struct {
		name string
		tiff []byte
		want int
	}{
		{"little-endian", valid, 6},
		{"big-endian", exifTIFF(binary.BigEndian, 3), 3},
		{"LONG value", long, 8},
		{"ASCII type", ascii, 1},
		{"no tag", exifTIFF(binary.BigEndian, 0), 1},
		{"empty", nil, 1},
		{"bad byte order", append([]byte("XX"), valid[2:]...), 1},
		{"bad magic", append([]byte("II\x2b\x00"), valid[4:]...), 1},
		{"IFD offset past end", append([]byte("II\x2a\x00\xff\xff\xff\x7f"), valid[8:]...), 1},
		{"IFD offset inside header", append([]byte("II\x2a\x00\x02\x00\x00\x00"), valid[8:]...), 1},
		{"IFD cut", valid[:20], 1},
		{"entry count too high", append(append(bytes.Clone(valid[:8]), 0xff, 0xff), valid[10:]...), 6},
		{"header only", valid[:8], 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tiffOrientation(tc.tiff); got != tc.want {
				t.Fatalf("tiffOrientation = %d, want %d", got, tc.want)
			}
		})
	}
}

func TestJPEGExifWalk(t *testing.T) {
	jpg := encodeJPEG(t, quadrants(16, 16), 90)
	tiff := exifTIFF(binary.BigEndian, 8)
	xmp := jpegSegment(jpegMarkerAPP1, []byte("http://ns.adobe.com/xap/1.0/\x00<x/>"))
	for _, tc := range []struct {
		name      string
		data      []byte
		wantTIFF  bool
		wantScans int
	}{
		{"plain", jpg, false, 1},
		{"Exif", insertAfterSOI(jpg, exifAPP1(tiff)), true, 1},
		{"XMP first, then Exif", insertAfterSOI(jpg, xmp, exifAPP1(tiff)), true, 1},
		{"fill bytes before a marker", insertAfterSOI(jpg, []byte{0xff, 0xff}, exifAPP1(tiff)), true, 1},
		{"segment length past the end", insertAfterSOI(jpg, []byte{0xff, 0xe1, 0xff, 0xf0}), false, 0},
		{"Exif after the image", append(bytes.Clone(jpg), exifAPP1(tiff)...), false, 1},
		{"not a JPEG", []byte("hello"), false, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, scans := jpegExif(tc.data)
			if (got != nil) != tc.wantTIFF || tc.wantTIFF && !bytes.Equal(got, tiff) {
				t.Errorf("TIFF = %d bytes, want %v", len(got), tc.wantTIFF)
			}
			if scans != tc.wantScans {
				t.Errorf("scans = %d, want %d", scans, tc.wantScans)
			}
		})
	}
}

func TestKindString(t *testing.T) {
	for k, want := range map[Kind]string{Photo: "photo", Signature: "signature", 7: "Kind(7)"} {
		if got := k.String(); got != want {
			t.Errorf("%d.String() = %q, want %q", int(k), got, want)
		}
	}
}
