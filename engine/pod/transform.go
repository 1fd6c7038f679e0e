package pod

import (
	"image"
	"image/draw"
	"math"
	"slices"
)

// opaque reports whether every pixel of m is fully opaque, as far as m
// can tell (every standard image type can).
func opaque(m image.Image) bool {
	o, ok := m.(interface{ Opaque() bool })
	return ok && o.Opaque()
}

// fit returns the size of a w×h image scaled down so that its long side is
// at most maxSide, keeping the aspect ratio (each side at least 1 pixel);
// an image that already fits keeps its size.
func fit(w, h, maxSide int) (int, int) {
	if w <= maxSide && h <= maxSide {
		return w, h
	}
	if w >= h {
		return maxSide, max(1, int(math.Round(float64(h)*float64(maxSide)/float64(w))))
	}
	return max(1, int(math.Round(float64(w)*float64(maxSide)/float64(h)))), maxSide
}

// rowReader converts the rows of an image, one at a time, to
// alpha-premultiplied 8-bit RGBA, using image/draw's fast paths for the
// types the decoders return. With flatten, each row is composited over
// white and becomes opaque.
type rowReader struct {
	src     image.Image
	min     image.Point
	buf     *image.RGBA
	flatten bool
}

// newRowReader returns a rowReader for src.
func newRowReader(src image.Image, flatten bool) *rowReader {
	b := src.Bounds()
	return &rowReader{src: src, min: b.Min, buf: image.NewRGBA(image.Rect(0, 0, b.Dx(), 1)), flatten: flatten}
}

// row returns row y (counted from the top of the image, from 0) as 4 bytes
// per pixel. The slice is reused by the next call.
func (r *rowReader) row(y int) []uint8 {
	draw.Draw(r.buf, r.buf.Rect, r.src, image.Pt(r.min.X, r.min.Y+y), draw.Src)
	if r.flatten {
		flattenWhite(r.buf.Pix)
	}
	return r.buf.Pix
}

// flattenWhite composites premultiplied RGBA pixels over opaque white.
func flattenWhite(p []uint8) {
	for i := 0; i+3 < len(p); i += 4 {
		if a := p[i+3]; a != 0xff {
			k := int(0xff - a)
			p[i+0] = uint8(min(0xff, int(p[i+0])+k))
			p[i+1] = uint8(min(0xff, int(p[i+1])+k))
			p[i+2] = uint8(min(0xff, int(p[i+2])+k))
			p[i+3] = 0xff
		}
	}
}

// toRGBA returns a copy of src as an *image.RGBA with its origin at (0, 0),
// composited over white if flatten.
func toRGBA(src image.Image, flatten bool) *image.RGBA {
	b := src.Bounds()
	dst := image.NewRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
	draw.Draw(dst, dst.Rect, src, b.Min, draw.Src)
	if flatten {
		flattenWhite(dst.Pix)
	}
	return dst
}

// weightOne is the fixed-point 1 of box filter weights: 16 fraction bits.
const weightOne = 1 << 16

// span lists the source pixels that cover one destination pixel in one
// dimension, starting at first, with their weights in units of 1/weightOne
// (summing to exactly weightOne).
type span struct {
	first   int
	weights []uint32
}

// boxSpans returns, for each of dst output pixels, the source pixels of a
// src-long row that its box covers and the fraction of the box each covers
// (area averaging). With dst > src a box is smaller than a pixel and the
// pixels are repeated.
func boxSpans(src, dst int) []span {
	scale := float64(src) / float64(dst)
	spans := make([]span, dst)
	all := make([]uint32, 0, src+2*dst) // enough for all the weights
	for i := range spans {
		lo, hi := float64(i)*scale, min(float64(i+1)*scale, float64(src))
		first, last := int(lo), max(int(lo)+1, min(src, int(math.Ceil(hi))))
		start := len(all)
		var sum uint32
		for s := first; s < last; s++ {
			f := (min(hi, float64(s+1)) - max(lo, float64(s))) / scale
			w := uint32(math.Round(max(0, f) * weightOne))
			all = append(all, w)
			sum += w
		}
		ws := all[start:len(all):len(all)]
		// Rounding may leave the sum a little off: correct the largest
		// weight so that a flat area stays exactly flat.
		ws[slices.Index(ws, slices.Max(ws))] += weightOne - sum
		spans[i] = span{first, ws}
	}
	return spans
}

// resamplePlane scales an image plane down to dw×dh by area averaging (a
// box filter: each output pixel is the mean of the source area it covers,
// each source pixel weighted by the fraction of it inside that area), in
// fixed point with exact weights. The source is sw×sh pixels of n
// interleaved 8-bit channels whose row y (from 0) row returns; the output
// goes to dst with stride dstride. It keeps one row of sums in memory and
// asks for each source row once (the last row asked for is remembered, as
// a row on the boundary of two output rows is needed by both). dw ≤ sw and
// dh ≤ sh give a true average; larger sizes repeat pixels.
func resamplePlane(row func(y int) []uint8, n, sw, sh int, dst []uint8, dstride, dw, dh int) {
	cols, rows := boxSpans(sw, dw), boxSpans(sh, dh)
	// acc[i] ≤ 255·weightOne < 2^24: no overflow.
	acc := make([]uint32, n*sw)
	cached := -1
	var pix []uint8
	const half = 1 << 31 // rounding: a sum is in units of 2^-32
	for dy, rs := range rows {
		clear(acc)
		for k, w := range rs.weights {
			if y := rs.first + k; y != cached {
				pix, cached = row(y)[:n*sw], y
			}
			acc := acc[:len(pix)]
			for i, v := range pix {
				acc[i] += w * uint32(v)
			}
		}
		out := dst[dy*dstride : dy*dstride+n*dw]
		if n == 1 {
			for dx, cs := range cols {
				a := acc[cs.first : cs.first+len(cs.weights)]
				var sum uint64
				for k, w := range cs.weights {
					sum += uint64(w) * uint64(a[k])
				}
				out[dx] = uint8((sum + half) >> 32)
			}
			continue
		}
		for dx, cs := range cols {
			a := acc[n*cs.first : n*(cs.first+len(cs.weights))]
			for c := range n {
				var sum uint64
				for k, w := range cs.weights {
					sum += uint64(w) * uint64(a[n*k+c])
				}
				out[n*dx+c] = uint8((sum + half) >> 32)
			}
		}
	}
}

// resize scales src down to dw×dh by area averaging on premultiplied RGBA,
// so that transparent pixels do not bleed their colour; with flatten the
// result is composited over white. It converts src one row at a time, so it
// needs little memory beyond the output. dw and dh are at most src's width
// and height.
func resize(src image.Image, dw, dh int, flatten bool) *image.RGBA {
	b := src.Bounds()
	rr := newRowReader(src, flatten)
	dst := image.NewRGBA(image.Rect(0, 0, dw, dh))
	resamplePlane(rr.row, 4, b.Dx(), b.Dy(), dst.Pix, dst.Stride, dw, dh)
	// Rounding must not break the premultiplied invariant c ≤ a.
	for i := 0; i < len(dst.Pix); i += 4 {
		p := dst.Pix[i : i+4 : i+4]
		p[0], p[1], p[2] = min(p[0], p[3]), min(p[1], p[3]), min(p[2], p[3])
	}
	return dst
}

// chromaSize returns the size of the chroma planes of a w×h YCbCr image
// with its origin at (0, 0) and subsample ratio r.
func chromaSize(r image.YCbCrSubsampleRatio, w, h int) (int, int) {
	switch r {
	case image.YCbCrSubsampleRatio422:
		return (w + 1) / 2, h
	case image.YCbCrSubsampleRatio420:
		return (w + 1) / 2, (h + 1) / 2
	case image.YCbCrSubsampleRatio440:
		return w, (h + 1) / 2
	case image.YCbCrSubsampleRatio411:
		return (w + 3) / 4, h
	case image.YCbCrSubsampleRatio410:
		return (w + 3) / 4, (h + 1) / 2
	}
	return w, h
}

// resizeYCbCr scales a YCbCr image (a decoded JPEG or lossy WebP) to dw×dh
// with 4:2:0 chroma, averaging each plane by itself: no conversion to RGB,
// which the JPEG encoder would undo, and a third of the samples of RGBA.
// m's origin must be (0, 0); dw and dh are at most its width and height.
func resizeYCbCr(m *image.YCbCr, dw, dh int) *image.YCbCr {
	w, h := m.Rect.Dx(), m.Rect.Dy()
	cw, ch := chromaSize(m.SubsampleRatio, w, h)
	out := image.NewYCbCr(image.Rect(0, 0, dw, dh), image.YCbCrSubsampleRatio420)
	ocw, och := chromaSize(out.SubsampleRatio, dw, dh)
	resamplePlane(func(y int) []uint8 { return m.Y[y*m.YStride:] }, 1, w, h, out.Y, out.YStride, dw, dh)
	resamplePlane(func(y int) []uint8 { return m.Cb[y*m.CStride:] }, 1, cw, ch, out.Cb, out.CStride, ocw, och)
	resamplePlane(func(y int) []uint8 { return m.Cr[y*m.CStride:] }, 1, cw, ch, out.Cr, out.CStride, ocw, och)
	return out
}

// orientPlane returns a w×h plane of bpp-byte pixels (stride stride) turned
// upright for Exif orientation o (2..8), and its stride: the pixel at
// (x, y) goes where the orientation's transform puts it; for o ≥ 5 width
// and height swap.
func orientPlane(src []uint8, stride, w, h, bpp, o int) ([]uint8, int) {
	dw, dh := w, h
	if o >= 5 {
		dw, dh = h, w
	}
	s := dw * bpp
	out := make([]uint8, s*dh)
	// The destination offset of source pixel (x, y) is base + x*dx + y*dy.
	var base, dx, dy int
	switch o {
	case 2: // mirrored left-right
		base, dx, dy = bpp*(w-1), -bpp, s
	case 3: // turned 180°
		base, dx, dy = s*(h-1)+bpp*(w-1), -bpp, -s
	case 4: // mirrored top-bottom
		base, dx, dy = s*(h-1), bpp, -s
	case 5: // transposed: rows become columns
		base, dx, dy = 0, s, bpp
	case 6: // stored turned 90° anticlockwise: turn 90° clockwise
		base, dx, dy = bpp*(h-1), s, -bpp
	case 7: // transversed
		base, dx, dy = s*(w-1)+bpp*(h-1), -s, -bpp
	case 8: // stored turned 90° clockwise: turn 90° anticlockwise
		base, dx, dy = s*(w-1), -s, bpp
	default:
		base, dx, dy = 0, bpp, s
	}
	for y := range h {
		row := src[y*stride : y*stride+bpp*w]
		d := base + y*dy
		if bpp == 1 {
			for _, v := range row {
				out[d] = v
				d += dx
			}
			continue
		}
		for x := 0; x < len(row); x += bpp {
			copy(out[d:d+bpp], row[x:x+bpp])
			d += dx
		}
	}
	return out, s
}

// orient returns m turned upright for Exif orientation o; for o = 1 (or
// out of range) m itself. m's origin must be (0, 0).
func orient(m *image.RGBA, o int) *image.RGBA {
	if o <= orientUpright || o > orientMaxValue {
		return m
	}
	w, h := m.Rect.Dx(), m.Rect.Dy()
	out := &image.RGBA{Rect: image.Rect(0, 0, w, h)}
	if o >= 5 {
		out.Rect = image.Rect(0, 0, h, w)
	}
	out.Pix, out.Stride = orientPlane(m.Pix, m.Stride, w, h, 4, o)
	return out
}

// orientYCbCr is orient for a 4:2:0 or 4:4:4 YCbCr image (ratios that
// stay the same when turned), plane by plane. m's origin must be (0, 0).
func orientYCbCr(m *image.YCbCr, o int) *image.YCbCr {
	if o <= orientUpright || o > orientMaxValue {
		return m
	}
	w, h := m.Rect.Dx(), m.Rect.Dy()
	cw, ch := chromaSize(m.SubsampleRatio, w, h)
	out := &image.YCbCr{SubsampleRatio: m.SubsampleRatio, Rect: image.Rect(0, 0, w, h)}
	if o >= 5 {
		out.Rect = image.Rect(0, 0, h, w)
	}
	out.Y, out.YStride = orientPlane(m.Y, m.YStride, w, h, 1, o)
	out.Cb, out.CStride = orientPlane(m.Cb, m.CStride, cw, ch, 1, o)
	out.Cr, _ = orientPlane(m.Cr, m.CStride, cw, ch, 1, o)
	return out
}
