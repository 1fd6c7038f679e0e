package vrp

import (
	"math/rand/v2"
	"reflect"
	"testing"
)

// randomState builds a feasible solution of p by regret insertion.
func randomState(t *testing.T, p *Problem) *state {
	t.Helper()
	m, err := compile(p)
	if err != nil {
		t.Fatal(err)
	}
	s := newState(m)
	s.plannable = make([]bool, m.nNodes)
	for n := range s.plannable {
		s.plannable[n] = m.unservable(int32(n), s.w) == ""
	}
	r := rng{s: 1}
	regretInsertion(s, &r)
	return s
}

// TestEvalPieces checks the O(1)/O(piece) candidate evaluation used by every
// local-search operator against rebuilding the route and recomputing it in
// full (simulation + cost).
func TestEvalPieces(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 22))
	checked, feasible := 0, 0
	for it := 0; it < 60; it++ {
		p := genProblem(r, genOpts{jobs: 40, vehicles: 6, tw: it%2 == 0, pickups: it%3 == 0, limits: it%4 == 1, open: it%5 == 2})
		s := randomState(t, p)
		m := s.m
		if !m.fast {
			t.Fatal("expected fast path")
		}
		used := usedRoutes(s)
		if len(used) < 2 {
			continue
		}
		for k := 0; k < 200; k++ {
			r1, r2 := used[r.IntN(len(used))], used[r.IntN(len(used))]
			n1, n2 := len(s.routes[r1]), len(s.routes[r2])
			i := r.IntN(n1 + 1)
			j := r.IntN(n2 + 1)
			L := min(1+r.IntN(3), n2-j)
			// prefix of r1, a short (maybe reversed) piece of r2, suffix of r1
			ps := []piece{{r1, 0, i, false}, {r2, j, j + L, r.IntN(2) == 0}, {r1, i, n1, false}}
			switch r.IntN(5) {
			case 0:
				ps = []piece{{r1, 0, i, false}, {r2, j, n2, false}} // 2-opt* shape
			case 1: // intra-route or-opt: move seq[a:a+L] after position b
				if a, b := r.IntN(n1), r.IntN(n1); n1 > 3 && a+L <= n1 && b >= a+L {
					ps = []piece{{r1, 0, a, false}, {r1, a + L, b + 1, false}, {r1, a, a + L, false}, {r1, b + 1, n1, false}}
					r2 = r1
				}
			case 2: // intra-route 2-opt: reverse seq[a+1:b+1]
				if a, b := r.IntN(n1), r.IntN(n1); a < b {
					ps = []piece{{r1, 0, a + 1, false}, {r1, a + 1, b + 1, true}, {r1, b + 1, n1, false}}
					r2 = r1
				}
			}
			target := r1
			if r.IntN(2) == 0 {
				target = r2
			}
			seq := s.buildPieces(nil, ps)
			if hasDuplicate(seq) {
				continue // moves never duplicate tasks
			}
			c, ok := s.evalPieces(target, ps)
			wantOK := m.feasible(target, seq, s.w)
			if ok != wantOK {
				t.Fatalf("it %d: evalPieces feasible=%v, full simulation %v (pieces %+v)", it, ok, wantOK, ps)
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
	if feasible < 100 || checked-feasible < 100 {
		t.Fatalf("unbalanced: %d checked, %d feasible", checked, feasible)
	}
}

// TestLocalSearch: every applied move lowers the cost by exactly the
// evaluated delta (cached costs equal full recomputation), and the result is
// feasible, on fast and general (breaks, shipments, multi-TW) instances.
func TestLocalSearch(t *testing.T) {
	r := rand.New(rand.NewPCG(31, 32))
	for it := 0; it < 12; it++ {
		o := genOpts{jobs: 60, vehicles: 8, tw: true}
		if it%2 == 1 {
			o = genOpts{jobs: 40, shipments: 5, vehicles: 6, tw: true, multiTW: true, breaks: true, setup: true, skills: true}
		}
		p := genProblem(r, o)
		s := randomState(t, p)
		m := s.m
		before := s.obj()
		nb := m.buildNeighbours(20)
		order := make([]int32, m.nNodes)
		for i := range order {
			order[i] = int32(i)
		}
		s.localSearch(nb, 10, order, nil)
		after := s.obj()
		if after.count != before.count || after.cost > before.cost {
			t.Fatalf("it %d: local search worsened %+v -> %+v", it, before, after)
		}
		for v, seq := range s.routes {
			if c := m.routeCost(v, seq); c != s.rcost[v] {
				t.Fatalf("it %d: cached cost %d, recomputed %d", it, s.rcost[v], c)
			}
			if !m.feasible(v, seq, s.w) {
				t.Fatalf("it %d: route %d infeasible after local search", it, v)
			}
		}
		if after.cost == before.cost {
			t.Logf("it %d: no improvement", it)
		}
	}
}

// TestIncrementalInsert compares the incremental segment update of insertAt
// with a full recomputation.
func TestIncrementalInsert(t *testing.T) {
	r := rand.New(rand.NewPCG(41, 42))
	for it := 0; it < 50; it++ {
		p := genProblem(r, genOpts{jobs: 30, vehicles: 3, tw: it%2 == 0, pickups: true, open: it%3 == 0, dims: 2})
		m, err := compile(p)
		if err != nil {
			t.Fatal(err)
		}
		s := newState(m)
		for _, n := range r.Perm(m.nNodes) {
			v := r.IntN(len(m.veh))
			s.insertAt(v, r.IntN(len(s.routes[v])+1), int32(n))
			fw := append([]seg(nil), s.fw[v]...)
			bw := append([]seg(nil), s.bw[v]...)
			rc := s.rcost[v]
			s.refresh(v)
			if !reflect.DeepEqual(fw, s.fw[v]) || !reflect.DeepEqual(bw, s.bw[v]) || rc != s.rcost[v] {
				t.Fatalf("it %d: incremental insert differs from full refresh", it)
			}
			for i, x := range s.routes[v] {
				if s.pos[x] != int32(i) || s.routeOf[x] != int32(v) {
					t.Fatalf("it %d: stale position of node %d", it, x)
				}
			}
		}
	}
}

// TestInsertDeltas: the O(1) deltas of single and pair insertions equal the
// full recomputation of the route cost after the insertion.
func TestInsertDeltas(t *testing.T) {
	r := rand.New(rand.NewPCG(61, 62))
	n := 0
	for it := 0; it < 20; it++ {
		p := genProblem(r, genOpts{jobs: 15, shipments: 10, vehicles: 4, tw: true, open: it%2 == 0, limits: it%3 == 0})
		m, err := compile(p)
		if err != nil {
			t.Fatal(err)
		}
		s := newState(m)
		for _, x := range r.Perm(m.nNodes) {
			u := int32(x)
			if s.routeOf[u] >= 0 || m.kind[u] == kindDelivery {
				continue
			}
			var v int
			var d int64
			before := append([]int64(nil), s.rcost...)
			if q := m.sib[u]; q >= 0 {
				var i, j int
				v, i, j, d = s.bestInsertPair(u, q, nil, 0)
				if v < 0 {
					continue
				}
				s.insertPairAt(v, i, j, u, q)
			} else {
				var k int
				v, k, d = s.bestInsert(u, nil, 0)
				if v < 0 {
					continue
				}
				s.insertAt(v, k, u)
			}
			if got := m.routeCost(v, s.routes[v]) - before[v]; got != d {
				t.Fatalf("it %d: delta %d, recomputed %d (node %d kind %d, route %v, start %d end %d)", it, d, got, u, m.kind[u], s.routes[v], m.veh[v].start, m.veh[v].end)
			}
			if !m.feasible(v, s.routes[v], s.w) {
				t.Fatalf("it %d: insertion made route infeasible", it)
			}
			n++
		}
	}
	if n < 100 {
		t.Fatalf("only %d insertions checked", n)
	}
}

// usedRoutes returns the vehicles whose route is not empty.
func usedRoutes(s *state) []int {
	var used []int
	for v, seq := range s.routes {
		if len(seq) > 0 {
			used = append(used, v)
		}
	}
	return used
}

// hasDuplicate reports whether a task appears twice in seq (a move that
// copies a piece instead of moving it).
func hasDuplicate(seq []int32) bool {
	seen := map[int32]bool{}
	for _, x := range seq {
		if seen[x] {
			return true
		}
		seen[x] = true
	}
	return false
}
