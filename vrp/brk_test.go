package vrp

import (
	"math/rand/v2"
	"reflect"
	"testing"
)

// oneBreak keeps at most the first break of every vehicle, without
// max_load, so that the problem qualifies for the time-label checks.
func oneBreak(p *Problem) {
	for i := range p.Vehicles {
		v := &p.Vehicles[i]
		if len(v.Breaks) > 1 {
			v.Breaks = v.Breaks[:1]
		}
		for b := range v.Breaks {
			v.Breaks[b].MaxLoad = nil
		}
	}
}

// TestLabelInsert compares the O(1) insertion check of brk.go (time labels
// plus the segment check of loads and limits) with the exact simulation of
// the rebuilt route, for every task and position, on routes with zero or
// one break, several windows, open ends and travel limits.
func TestLabelInsert(t *testing.T) {
	r := rand.New(rand.NewPCG(71, 72))
	var agree, feas, relaxedOnly int
	for it := 0; it < 300; it++ {
		p := genProblem(r, genOpts{jobs: 14, vehicles: 3, tw: true, multiTW: it%2 == 0, breaks: it%5 != 4, pickups: it%3 == 0,
			open: it%2 == 1, limits: it%4 == 0, dims: 2, horizon: 8000 + r.Int64N(8000)})
		oneBreak(p)
		m, err := compile(p)
		if err != nil {
			t.Fatal(err)
		}
		if m.fast {
			continue
		}
		if !m.brk {
			t.Fatalf("it %d: expected the time-label path", it)
		}
		s := newState(m)
		for _, n := range r.Perm(m.nNodes) {
			v := r.IntN(len(m.veh))
			k := r.IntN(len(s.routes[v]) + 1)
			seq := s.routes[v]
			cand := append(append(append([]int32{}, seq[:k]...), int32(n)), seq[k:]...)
			if m.feasible(v, cand, s.w) {
				s.insertAt(v, k, int32(n))
				inc := append([]bpt(nil), s.bt[v]...)
				s.refreshLabels(v)
				if !reflect.DeepEqual(inc, s.bt[v]) {
					t.Fatalf("it %d: incremental labels after insert at %d differ from a full refresh:\n%v\n%v", it, k, inc, s.bt[v])
				}
			}
		}
		for v := range m.veh {
			seq := s.routes[v]
			vi := &m.veh[v]
			tt := &m.types[vi.typ]
			for u := int32(0); u < int32(m.nNodes); u++ {
				if s.routeOf[u] >= 0 || !m.compat[v*m.nNodes+int(u)] {
					continue
				}
				for k := 0; k <= len(seq); k++ {
					cand := append(append(append([]int32{}, seq[:k]...), u), seq[k:]...)
					want := m.feasible(v, cand, s.w)
					relaxed := m.insertOK(tt, vi, &s.fw[v][k], &m.nseg[u], &s.bw[v][k+1])
					got := relaxed && s.labelInsertOK(v, k, u)
					if len(cand) > vi.maxTasks {
						got = false
					}
					if got != want {
						t.Fatalf("it %d: vehicle %d (breaks %v, start %d end %d), insert %d at %d of %v: labels %v, simulation %v",
							it, v, vi.breaks, vi.start, vi.end, u, k, seq, got, want)
					}
					agree++
					if want {
						feas++
					}
					if relaxed && !want {
						relaxedOnly++
					}
				}
			}
		}
	}
	if feas < 500 || agree-feas < 500 || relaxedOnly < 100 {
		t.Fatalf("degenerate test: %d checks, %d feasible, %d rejected only by the labels", agree, feas, relaxedOnly)
	}
	t.Logf("%d checks, %d feasible, %d rejected only by the labels", agree, feas, relaxedOnly)
}

// TestLatestBefore checks the inverse of earliest on small cases.
func TestLatestBefore(t *testing.T) {
	tws := []TimeWindow{{10, 20}, {40, 50}}
	for _, c := range []struct {
		serv, bound, want int64
	}{
		{5, 100, 50}, {5, 55, 50}, {5, 50, 45}, {5, 44, 20}, {5, 25, 20}, {5, 24, 19}, {5, 15, 10}, {5, 14, negInf}, {0, negInf, negInf},
	} {
		if got := latestBefore(tws, c.serv, c.bound); got != c.want {
			t.Errorf("latestBefore(serv %d, bound %d) = %d, want %d", c.serv, c.bound, got, c.want)
		}
		// brute force: the latest t in [0, 100] with earliest(t)+serv <= bound
		want := negInf
		for x := int64(0); x <= 100; x++ {
			if s, ok := earliest(tws, x); ok && s+c.serv <= c.bound {
				want = x
			}
		}
		if c.want != want {
			t.Errorf("case serv %d bound %d: table says %d, brute force %d", c.serv, c.bound, c.want, want)
		}
	}
}

// TestLabelPieces checks the local-search evaluation off the fast path
// (segments as a filter, then time labels over prefix ⊕ middle ⊕ suffix)
// against rebuilding the route and simulating it, including pieces taken
// from other vehicles with the same or a different break.
func TestLabelPieces(t *testing.T) {
	r := rand.New(rand.NewPCG(81, 82))
	checked, feasible, labelOnly := 0, 0, 0
	for it := 0; it < 80; it++ {
		p := genProblem(r, genOpts{jobs: 40, vehicles: 5, tw: true, multiTW: it%3 == 0, breaks: true, open: it%4 == 1, limits: it%5 == 2, dims: 2, horizon: 12000})
		oneBreak(p)
		if it%2 == 0 {
			for i := range p.Vehicles {
				p.Vehicles[i].Breaks = p.Vehicles[0].Breaks
				p.Vehicles[i].Start, p.Vehicles[i].End = p.Vehicles[0].Start, p.Vehicles[0].End
				p.Vehicles[i].HasStart, p.Vehicles[i].HasEnd = p.Vehicles[0].HasStart, p.Vehicles[0].HasEnd
			}
		}
		s := randomState(t, p)
		m := s.m
		if !m.brk {
			t.Fatal("expected the time-label path")
		}
		used := usedRoutes(s)
		if len(used) < 2 {
			continue
		}
		for k := 0; k < 300; k++ {
			r1, r2 := used[r.IntN(len(used))], used[r.IntN(len(used))]
			n1, n2 := len(s.routes[r1]), len(s.routes[r2])
			i := r.IntN(n1 + 1)
			j := r.IntN(n2 + 1)
			L := min(1+r.IntN(3), n2-j)
			ps := []piece{{r1, 0, i, false}, {r2, j, j + L, r.IntN(2) == 0}, {r1, i, n1, false}}
			switch r.IntN(5) {
			case 0:
				ps = []piece{{r1, 0, i, false}, {r2, j, n2, false}}
			case 1:
				if a, b := r.IntN(n1), r.IntN(n1); n1 > 3 && a+L <= n1 && b >= a+L {
					ps = []piece{{r1, 0, a, false}, {r1, a + L, b + 1, false}, {r1, a, a + L, false}, {r1, b + 1, n1, false}}
				}
			case 2:
				if a, b := r.IntN(n1), r.IntN(n1); a < b {
					ps = []piece{{r1, 0, a + 1, false}, {r1, a + 1, b + 1, true}, {r1, b + 1, n1, false}}
				}
			case 3:
				ps = []piece{{r2, 0, j, false}, {r1, i, n1, false}}
			}
			target := r1
			if r.IntN(2) == 0 {
				target = r2
			}
			seq := s.buildPieces(nil, ps)
			if hasDuplicate(seq) {
				continue
			}
			c, ok := s.evalPieces(target, ps)
			wantOK := m.feasible(target, seq, s.w)
			if ok != wantOK {
				t.Fatalf("it %d: evalPieces feasible=%v, full simulation %v (pieces %+v, vehicle %d)", it, ok, wantOK, ps, target)
			}
			if _, cheap := s.evalPiecesCheap(target, ps); cheap && !wantOK {
				labelOnly++
			}
			if ok && c != m.routeCost(target, seq) {
				t.Fatalf("it %d: evalPieces cost %d, full recomputation %d", it, c, m.routeCost(target, seq))
			}
			checked++
			if ok {
				feasible++
			}
		}
	}
	if feasible < 300 || checked-feasible < 300 || labelOnly < 100 {
		t.Fatalf("unbalanced: %d checked, %d feasible, %d rejected only by the labels", checked, feasible, labelOnly)
	}
	t.Logf("%d checked, %d feasible, %d rejected only by the labels", checked, feasible, labelOnly)
}

// TestRefreshRemoved: the incremental update after removing tasks (ruin)
// equals a full refresh, on the fast path and on the label path.
func TestRefreshRemoved(t *testing.T) {
	r := rand.New(rand.NewPCG(91, 92))
	checked := 0
	for it := 0; it < 60; it++ {
		p := genProblem(r, genOpts{jobs: 40, vehicles: 4, tw: it%3 != 0, multiTW: it%3 == 1, breaks: it%2 == 0, open: it%4 == 1, dims: 2, horizon: 30000})
		oneBreak(p)
		s := randomState(t, p)
		m := s.m
		for k := 0; k < 20; k++ {
			v := r.IntN(len(m.veh))
			seq := s.routes[v]
			if len(seq) == 0 {
				continue
			}
			del := map[int32]bool{}
			for _, x := range seq {
				if r.IntN(4) == 0 {
					del[x] = true
				}
			}
			a, b, cnt := s.removeFrom(v, func(n int32) bool { return del[n] })
			if cnt != len(del) {
				t.Fatalf("removed %d, want %d", cnt, len(del))
			}
			s.refreshRemoved(v, a, b, cnt)
			fw := append([]seg(nil), s.fw[v]...)
			bw := append([]seg(nil), s.bw[v]...)
			var bt []bpt
			if m.brk {
				bt = append(bt, s.bt[v]...)
			}
			rc := s.rcost[v]
			pos := append([]int32(nil), s.pos...)
			s.refresh(v)
			if !reflect.DeepEqual(fw, s.fw[v]) || !reflect.DeepEqual(bw, s.bw[v]) || rc != s.rcost[v] || !reflect.DeepEqual(pos, s.pos) {
				t.Fatalf("it %d: incremental removal (span %d..%d, %d tasks) differs from a full refresh", it, a, b, cnt)
			}
			if m.brk && !reflect.DeepEqual(bt, s.bt[v]) {
				t.Fatalf("it %d: labels after removal differ from a full refresh:\n%v\n%v", it, bt, s.bt[v])
			}
			if cnt > 0 {
				checked++
			}
		}
	}
	if checked < 200 {
		t.Fatalf("only %d removals checked", checked)
	}
}

// TestInsertDeltasSegs: on the fast and label paths (prefix segments give
// the replaced arc), the delta of the best insertion equals the full
// recomputation of the route cost and the route stays feasible.
func TestInsertDeltasSegs(t *testing.T) {
	r := rand.New(rand.NewPCG(101, 102))
	n := 0
	for it := 0; it < 40; it++ {
		p := genProblem(r, genOpts{jobs: 30, vehicles: 4, tw: true, multiTW: it%4 == 1, breaks: it%2 == 0, open: it%3 == 0, limits: it%5 == 0, dims: 2, horizon: 30000})
		oneBreak(p)
		m, err := compile(p)
		if err != nil {
			t.Fatal(err)
		}
		if !m.segs || (!m.fast && !m.brk) {
			t.Fatal("expected the fast or label path")
		}
		s := newState(m)
		for _, x := range r.Perm(m.nNodes) {
			u := int32(x)
			before := append([]int64(nil), s.rcost...)
			v, k, d := s.bestInsert(u, nil, 0)
			// brute force: cheapest feasible position over all vehicles
			best, found := int64(0), false
			for bv := range m.veh {
				if !m.compat[bv*m.nNodes+int(u)] {
					continue
				}
				seq := s.routes[bv]
				for bk := 0; bk <= len(seq); bk++ {
					cand := append(append(append([]int32{}, seq[:bk]...), u), seq[bk:]...)
					if !m.feasible(bv, cand, s.w) {
						continue
					}
					if c := m.routeCost(bv, cand) - before[bv]; !found || c < best {
						best, found = c, true
					}
				}
			}
			if v < 0 {
				if found {
					t.Fatalf("it %d: no insertion found, brute force finds one of cost %d", it, best)
				}
				continue
			}
			if !found || d != best {
				vi := &m.veh[v]
				t.Fatalf("it %d: best insertion delta %d, brute force %d (v %d k %d route %v start %d end %d u %d loc %d)", it, d, best, v, k, s.routes[v], vi.start, vi.end, u, m.loc[u])
			}
			s.insertAt(v, k, u)
			if got := m.routeCost(v, s.routes[v]) - before[v]; got != d {
				t.Fatalf("it %d: delta %d, recomputed %d", it, d, got)
			}
			if !m.feasible(v, s.routes[v], s.w) {
				t.Fatalf("it %d: insertion made route infeasible", it)
			}
			n++
		}
	}
	if n < 300 {
		t.Fatalf("only %d insertions checked", n)
	}
}
