package dispatch

import (
	"math"
	"testing"
)

// TestDistance checks the great-circle distance the rules and the proof
// geotags use, against known distances.
func TestDistance(t *testing.T) {
	const degree = 6371008.8 * math.Pi / 180 // one degree of a great circle
	for _, tc := range []struct {
		name string
		a, b [2]float64
		want float64
		tol  float64
	}{
		{"same point", [2]float64{2.35, 48.85}, [2]float64{2.35, 48.85}, 0, 1e-9},
		{"one degree of longitude on the equator", [2]float64{0, 0}, [2]float64{1, 0}, degree, 1e-6},
		{"one degree of latitude", [2]float64{13.4, 52.0}, [2]float64{13.4, 53.0}, degree, 1e-6},
		{"antimeridian", [2]float64{179.5, 0}, [2]float64{-179.5, 0}, degree, 1e-6},
		// Paris Notre-Dame to London Trafalgar Square, about 344 km.
		{"Paris-London", [2]float64{2.3499, 48.8530}, [2]float64{-0.1281, 51.5080}, 344_000, 1_000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := distance(tc.a, tc.b); math.Abs(got-tc.want) > tc.tol {
				t.Fatalf("distance = %.3f m, want %.3f ± %g", got, tc.want, tc.tol)
			}
			if got, back := distance(tc.a, tc.b), distance(tc.b, tc.a); got != back {
				t.Fatalf("not symmetric: %v, %v", got, back)
			}
		})
	}
}
