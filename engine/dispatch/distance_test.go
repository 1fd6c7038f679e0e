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
	c := Config{}.withDefaults() // margin 0.2 of the time to go, shrinking to 0 over the last 2 min
	const end = 10_000
	tests := []struct {
		name            string
		eta, t, elapsed int64
		want            bool
	}{
		{"2 min late, 1 h to drive", end + 120, end + 120 - 3600, 0, false},
		{"15 min late, 1 h to drive", end + 900, end + 900 - 3600, 0, true},
		{"12 min late, exactly 20 % of 1 h", end + 720, end + 720 - 3600, 0, true},
		{"30 s late, window ends in 1 min (margin 0.2 of 1.5 min, halved)", end + 30, end - 60, 0, true},
		{"10 s late, window ends in 10 s", end + 10, end - 10, 0, true},
		{"20 s late, window ends in 2 min (0.2 of 2:20 is 28 s)", end + 20, end - 120, 0, false},
		{"45 s late, window ends in 2 min, 1:44 of a 4 min service passed", end + 45, end - 120, 104, false},
		{"30 s late, window ends in 3 min (0.2 of 3.5 min is 42 s)", end + 30, end - 180, 0, false},
		{"1 min late, window ends in 3 min (0.2 of 4 min is 48 s)", end + 60, end - 180, 0, true},
		{"past the window's end", end + 30, end + 10, 0, true},
		{"48 s late in 3:28, 2:22 of a 4 min service passed (0.2 of 5:50 is 70 s)", end + 48, end - 160, 142, false},
		{"48 s late in 3:28, no service in progress", end + 48, end - 160, 0, true},
		{"48 s late, service in progress, window ends in 20 s", end + 48, end - 20, 142, true},
	}
	for _, tc := range tests {
		if got := c.confidentlyLate(tc.eta, end, tc.t, tc.elapsed); got != tc.want {
			t.Errorf("%s: confidentlyLate = %v, want %v", tc.name, got, tc.want)
		}
	}
}
