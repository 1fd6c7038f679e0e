package engine

import (
	"math"
	"math/rand/v2"
	"testing"
)

func TestPolylineKnownValue(t *testing.T) {
	// The worked example of Google's format description:
	// (38.5, -120.2), (40.7, -120.95), (43.252, -126.453).
	pts := [][2]float64{{-120.2, 38.5}, {-120.95, 40.7}, {-126.453, 43.252}}
	got := string(AppendPolyline(nil, pts, 5))
	if want := "_p~iF~ps|U_ulLnnqC_mqNvxq`@"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func TestPolylineRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, prec := range []int{5, 6} {
		for range 200 {
			pts := make([][2]float64, rng.IntN(30))
			for i := range pts {
				pts[i] = [2]float64{rng.Float64()*360 - 180, rng.Float64()*180 - 90}
			}
			dec, ok := DecodePolyline(string(AppendPolyline(nil, pts, prec)), prec)
			if !ok || len(dec) != len(pts) {
				t.Fatalf("decode failed: ok=%v len %d want %d", ok, len(dec), len(pts))
			}
			tol := 0.5/math.Pow10(prec) + 1e-12
			for i := range pts {
				if math.Abs(dec[i][0]-pts[i][0]) > tol || math.Abs(dec[i][1]-pts[i][1]) > tol {
					t.Fatalf("point %d: %v != %v", i, dec[i], pts[i])
				}
			}
		}
	}
}

func FuzzDecodePolyline(f *testing.F) {
	f.Add("_p~iF~ps|U_ulLnnqC_mqNvxq`@", 5)
	f.Add("", 6)
	f.Add("\x00\xff", 5)
	f.Fuzz(func(t *testing.T, s string, prec int) {
		if prec < 0 || prec > 9 {
			return
		}
		pts, ok := DecodePolyline(s, prec)
		if !ok {
			return
		}
		// Re-encoding decoded points must decode to the same points.
		again, ok := DecodePolyline(string(AppendPolyline(nil, pts, prec)), prec)
		if !ok || len(again) != len(pts) {
			t.Fatalf("re-encode changed the point count")
		}
	})
}
