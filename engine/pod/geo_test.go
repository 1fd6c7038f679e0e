package pod

import (
	"math"
	"testing"
)

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
			if got := Distance(tc.a, tc.b); math.Abs(got-tc.want) > tc.tol {
				t.Fatalf("Distance = %.3f m, want %.3f ± %g", got, tc.want, tc.tol)
			}
			if got, back := Distance(tc.a, tc.b), Distance(tc.b, tc.a); got != back {
				t.Fatalf("not symmetric: %v, %v", got, back)
			}
		})
	}
}

func TestFarFrom(t *testing.T) {
	stop := [2]float64{4.8952, 52.3702}
	// 0.001° of latitude is about 111 m.
	for _, tc := range []struct {
		name  string
		stop  [2]float64
		geo   [2]float64
		limit float64
		want  bool
	}{
		{"at the stop", stop, stop, 100, false},
		{"111 m away, limit 150", stop, [2]float64{stop[0], stop[1] + 0.001}, 150, false},
		{"111 m away, limit 100", stop, [2]float64{stop[0], stop[1] + 0.001}, 100, true},
		{"limit 0 at the stop", stop, stop, 0, false},
		{"NaN position", stop, [2]float64{math.NaN(), 52}, 100, true},
		{"infinite position", stop, [2]float64{math.Inf(1), 52}, 100, true},
		{"latitude out of range", stop, [2]float64{4.9, 95}, 1e9, true},
		{"lon and lat swapped", stop, [2]float64{stop[1], stop[0]}, 1000, true},
		{"invalid stop", [2]float64{0, math.NaN()}, stop, 100, true},
		{"NaN limit", stop, stop, math.NaN(), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := FarFrom(tc.stop, tc.geo, tc.limit); got != tc.want {
				t.Fatalf("FarFrom = %v, want %v (distance %.1f m)", got, tc.want, Distance(tc.stop, tc.geo))
			}
		})
	}
}
