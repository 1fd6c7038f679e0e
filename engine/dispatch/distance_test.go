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

func TestConfidentlyLate(t *testing.T) {
	c := Config{}.withDefaults() // margin 0.2 of the time to drive, any lateness in the last 2 min
	const end = 10_000
	tests := []struct {
		name   string
		eta, t int64
		want   bool
	}{
		{"2 min late, 1 h to drive", end + 120, end + 120 - 3600, false},
		{"15 min late, 1 h to drive", end + 900, end + 900 - 3600, true},
		{"12 min late, exactly 20 % of 1 h", end + 720, end + 720 - 3600, true},
		{"30 s late, window ends in 2 min", end + 30, end - 120, true},
		{"30 s late, window ends in 3 min (0.2 of 3.5 min is 42 s)", end + 30, end - 180, false},
		{"1 min late, window ends in 3 min (0.2 of 4 min is 48 s)", end + 60, end - 180, true},
		{"past the window's end", end + 30, end + 10, true},
	}
	for _, tc := range tests {
		if got := c.confidentlyLate(tc.eta, end, tc.t); got != tc.want {
			t.Errorf("%s: confidentlyLate = %v, want %v", tc.name, got, tc.want)
		}
	}
}
