package vrp

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// TestSwapVehicles checks the vehicle exchange of the search on random
// heterogeneous fleets (capacities, skills, breaks, shipments, limits and
// costs): an accepted exchange swaps exactly the two routes, the result
// passes the independent checker (Validate) with route costs equal to a
// recomputation, a refused one changes nothing, and rollback restores the
// routes. Both outcomes must occur, so the test cannot pass vacuously.
func TestSwapVehicles(t *testing.T) {
	r := rand.New(rand.NewPCG(31, 32))
	swapped, refused := 0, 0
	for it := 0; it < 40; it++ {
		o := genOpts{jobs: 15 + r.IntN(20), vehicles: 3 + r.IntN(3), tw: r.IntN(2) == 0, dims: 1 + r.IntN(2),
			breaks: it%3 == 1, skills: it%4 == 2, limits: it%5 == 3}
		if it%3 == 0 {
			o.shipments = 4
		}
		p := genProblem(r, o)
		s := randomState(t, p)
		w := newWorker(s.m, s, int64(it), 0, s.m.buildNeighbours(20))
		if !w.swaps {
			continue
		}
		for k := 0; k < 30; k++ {
			before := make([][]int32, len(w.cur.routes))
			for v, seq := range w.cur.routes {
				before[v] = append([]int32(nil), seq...)
			}
			ok := w.swapVehicles()
			if !ok {
				refused++
				if !sameRoutes(before, w.cur.routes) {
					t.Fatalf("instance %d: refused exchange changed the routes", it)
				}
				w.commit()
				continue
			}
			swapped++
			var changed []int
			for v := range before {
				if !slices.Equal(before[v], w.cur.routes[v]) {
					changed = append(changed, v)
				}
			}
			if len(changed) != 2 || !slices.Equal(before[changed[0]], w.cur.routes[changed[1]]) || !slices.Equal(before[changed[1]], w.cur.routes[changed[0]]) {
				t.Fatalf("instance %d step %d: exchange changed routes %v, want two routes swapped\nbefore %v\nafter %v", it, k, changed, before, w.cur.routes)
			}
			for v, seq := range w.cur.routes {
				if got, want := w.cur.rcost[v], s.m.routeCost(v, seq); got != want {
					t.Fatalf("instance %d: route %d cost %d after the exchange, recomputed %d", it, v, got, want)
				}
			}
			reasons := make([]string, s.m.nNodes)
			for n, v := range w.cur.routeOf {
				if v < 0 {
					reasons[n] = "unassigned in the test state"
				}
			}
			sol, err := s.m.buildSolution(w.cur.routes, reasons)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := Validate(p, sol); err != nil {
				t.Fatalf("instance %d: exchange of vehicles %d and %d: %v", it, changed[0], changed[1], err)
			}
			if k%2 == 0 {
				w.rollback()
				if !sameRoutes(before, w.cur.routes) {
					t.Fatalf("instance %d: rollback did not restore the routes", it)
				}
			} else {
				w.commit()
			}
		}
	}
	if swapped == 0 || refused == 0 {
		t.Fatalf("swapped %d, refused %d: both must occur", swapped, refused)
	}
	t.Logf("swapped %d, refused %d", swapped, refused)
}

func sameRoutes(a, b [][]int32) bool {
	return slices.EqualFunc(a, b, func(x, y []int32) bool { return slices.Equal(x, y) })
}
