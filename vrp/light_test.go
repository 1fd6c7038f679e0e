package vrp

import (
	"math/rand/v2"
	"reflect"
	"testing"
)

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
