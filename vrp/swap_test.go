package vrp

import (
	"math/rand/v2"
	"reflect"
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

// TestLightSameSearch checks that light routes (light.go) make the same
// decisions as full segments: for a fixed seed and iteration count, Solve
// returns the same routes either way on random problems of the label path
// (breaks, several windows, skills, limits, open routes, several
// dimensions, pickup-only dimensions, granular reinsertion).
func TestLightSameSearch(t *testing.T) {
	r := rand.New(rand.NewPCG(41, 42))
	light := 0
	for it := 0; it < 26; it++ {
		o := genOpts{jobs: 20 + r.IntN(40), vehicles: 2 + r.IntN(4), tw: true, multiTW: it%2 == 0, breaks: true,
			skills: it%3 == 0, limits: it%4 == 1, open: it%5 == 2, dims: 1 + r.IntN(3), prio: it%6 == 3}
		if it >= 24 {
			// above granularMin: the granular reinsertion
			o.jobs, o.vehicles, o.horizon = granularMin+20, 8, 60000
		}
		p := genProblem(r, o)
		for v := range p.Vehicles {
			for b := range p.Vehicles[v].Breaks {
				p.Vehicles[v].Breaks[b].MaxLoad = nil
			}
			p.Vehicles[v].Breaks = p.Vehicles[v].Breaks[:min(1, len(p.Vehicles[v].Breaks))]
		}
		if it%3 == 2 {
			// a pickup-only problem
			for j := range p.Jobs {
				p.Jobs[j].Pickup, p.Jobs[j].Delivery = p.Jobs[j].Delivery, nil
			}
		}
		m, err := compile(p)
		if err != nil {
			t.Fatal(err)
		}
		if !m.light {
			t.Fatalf("instance %d: not on the light path (brk %v)", it, m.brk)
		}
		light++
		opt := Options{Iterations: 3000, Seed: int64(it), EpochIterations: 700}
		a := solveAndCheck(t, p, opt)
		opt.segments = true
		b := solveAndCheck(t, p, opt)
		if a.Summary.Cost != b.Summary.Cost || !reflect.DeepEqual(a.Routes, b.Routes) {
			t.Fatalf("instance %d: light routes cost %d, segments %d", it, a.Summary.Cost, b.Summary.Cost)
		}
	}
	t.Logf("%d light instances", light)
}

// TestLightUpdates: on light states, the incremental updates after an
// insertion (insertAtLight) and after a ruin (refreshRemovedLight) equal a
// full recomputation of arc costs, locations, totals, cost, labels and
// positions, and ensureSegs gives the segments of a full refresh.
func TestLightUpdates(t *testing.T) {
	r := rand.New(rand.NewPCG(51, 52))
	checked := 0
	for it := 0; it < 40; it++ {
		p := genProblem(r, genOpts{jobs: 30, vehicles: 3, tw: true, multiTW: it%2 == 0, breaks: true, open: it%3 == 0, dims: 1 + it%3, limits: it%4 == 1, horizon: 30000})
		oneBreak(p)
		m, err := compile(p)
		if err != nil {
			t.Fatal(err)
		}
		if !m.light {
			t.Fatalf("it %d: not light", it)
		}
		s := newState(m)
		s.setLight(true)
		snap := func(v int) (ac []int64, rl []int32, tot seg, rc int64, bt []bpt) {
			return append([]int64(nil), s.acost[v]...), append([]int32(nil), s.rloc[v]...), s.tot[v], s.rcost[v], append([]bpt(nil), s.bt[v]...)
		}
		same := func(what string, v int) {
			t.Helper()
			ac, rl, tot, rc, bt := snap(v)
			pos := append([]int32(nil), s.pos...)
			s.refreshLight(v)
			ac2, rl2, tot2, rc2, bt2 := snap(v)
			if !reflect.DeepEqual(ac, ac2) || !reflect.DeepEqual(rl, rl2) || tot != tot2 || rc != rc2 || !reflect.DeepEqual(bt, bt2) || !reflect.DeepEqual(pos, s.pos) {
				t.Fatalf("it %d: light state after %s differs from a full recomputation", it, what)
			}
			if rc2 != m.routeCost(v, s.routes[v]) && len(s.routes[v]) > 0 {
				t.Fatalf("it %d: light cost %d, route cost %d", it, rc2, m.routeCost(v, s.routes[v]))
			}
			checked++
		}
		for _, n := range r.Perm(m.nNodes) {
			v := r.IntN(len(m.veh))
			s.insertAt(v, r.IntN(len(s.routes[v])+1), int32(n))
			same("an insertion", v)
		}
		for k := 0; k < 10; k++ {
			v := r.IntN(len(m.veh))
			del := map[int32]bool{}
			for _, x := range s.routes[v] {
				if r.IntN(4) == 0 {
					del[x] = true
				}
			}
			a, b, cnt := s.removeFrom(v, func(n int32) bool { return del[n] })
			s.refreshRemoved(v, a, b, cnt)
			same("a removal", v)
		}
		for v := range s.routes {
			if !s.stale[v] {
				continue
			}
			s.ensureSegs(v)
			fw, bw := append([]seg(nil), s.fw[v]...), append([]seg(nil), s.bw[v]...)
			s.setLight(false)
			s.refresh(v)
			if !reflect.DeepEqual(fw, s.fw[v]) || !reflect.DeepEqual(bw, s.bw[v]) {
				t.Fatalf("it %d: segments rebuilt by ensureSegs differ from a full refresh", it)
			}
			s.setLight(true)
		}
	}
	if checked < 1000 {
		t.Fatalf("only %d updates checked", checked)
	}
}
