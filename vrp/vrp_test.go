package vrp

import (
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
)

// directFeasible simulates a route without breaks step by step (independent
// of the segment algebra) and returns feasibility and internal cost.
func directFeasible(m *model, v int, seq []int32) (bool, int64) {
	vi := &m.veh[v]
	t := &m.types[vi.typ]
	ok := len(seq) <= vi.maxTasks
	D := m.dims
	load := make([]int64, D)
	for _, n := range seq {
		for d := 0; d < D; d++ {
			load[d] += m.del[int(n)*D+d]
		}
	}
	for d := 0; d < D; d++ {
		if load[d] > vi.cap[d] {
			ok = false
		}
	}
	tm := vi.tw.Start
	prev := vi.start
	var cost, tt, dist int64
	for _, n := range seq {
		du, ds, c := m.travel(t, prev, m.loc[n])
		tt, dist, cost = tt+du, dist+ds, cost+c
		tm += du
		w := m.tw(n)[0]
		if tm < w.Start {
			tm = w.Start
		}
		if tm > w.End {
			ok = false
		}
		tm += m.serv[n]
		for d := 0; d < D; d++ {
			load[d] += m.pick[int(n)*D+d] - m.del[int(n)*D+d]
			if load[d] > vi.cap[d] {
				ok = false
			}
		}
		prev = m.loc[n]
	}
	du, ds, c := m.travel(t, prev, vi.end)
	tt, dist, cost = tt+du, dist+ds, cost+c
	if tm+du > vi.tw.End || tt > vi.maxTravel || dist > vi.maxDist {
		ok = false
	}
	return ok, cost
}

// TestSegmentConcatenation checks the O(1) concatenation (prefix ⊕ node ⊕
// suffix) against a direct simulation for random routes and insertions.
func TestSegmentConcatenation(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	agreeFeasible := 0
	for it := 0; it < 300; it++ {
		p := genProblem(r, genOpts{jobs: 25, vehicles: 3, tw: true, pickups: it%2 == 0, open: it%3 == 0, limits: it%4 == 0, dims: 1 + it%3})
		m, err := compile(p)
		if err != nil {
			t.Fatal(err)
		}
		if !m.fast {
			t.Fatal("generated instance should be on the fast path")
		}
		s := newState(m)
		v := r.IntN(len(m.veh))
		perm := r.Perm(m.nNodes)
		k := r.IntN(8)
		for _, n := range perm[:k] {
			s.routes[v] = append(s.routes[v], int32(n))
		}
		s.refresh(v)
		seq := s.routes[v]
		full := s.fw[v][len(seq)+1]
		ok1, c1 := directFeasible(m, v, seq)
		if full.cost != c1 {
			t.Fatalf("it %d: segment cost %d, direct %d", it, full.cost, c1)
		}
		if got := m.segOK(v, &full); got != ok1 {
			t.Fatalf("it %d: whole-route segment feasible=%v, direct %v (seq %v)", it, got, ok1, seq)
		}
		if sim := m.feasible(v, seq, s.w); sim != ok1 {
			t.Fatalf("it %d: simulate %v, direct %v", it, sim, ok1)
		}
		u := int32(perm[k])
		tt := &m.types[m.veh[v].typ]
		us := m.nodeSeg(u)
		for pos := 0; pos <= len(seq); pos++ {
			a := m.concat(tt, &s.fw[v][pos], &us)
			b := m.concat(tt, &a, &s.bw[v][pos+1])
			cand := append(append(append([]int32{}, seq[:pos]...), u), seq[pos:]...)
			ok, c := directFeasible(m, v, cand)
			// insertOK presumes a feasible route (as in the solver)
			if got := m.insertOK(tt, &m.veh[v], &s.fw[v][pos], &us, &s.bw[v][pos+1]) && len(cand) <= m.veh[v].maxTasks; ok1 && got != ok {
				t.Fatalf("it %d pos %d: insertOK %v, direct %v", it, pos, got, ok)
			}
			if m.segOK(v, &b) != ok {
				t.Fatalf("it %d pos %d: concat feasible=%v, direct %v", it, pos, !ok, ok)
			}
			if b.cost != c {
				t.Fatalf("it %d pos %d: concat cost %d, direct %d", it, pos, b.cost, c)
			}
			if ok {
				agreeFeasible++
			}
		}
	}
	if agreeFeasible == 0 {
		t.Fatal("no feasible insertion was tested")
	}
}

// bruteBreaks decides feasibility of a route with breaks by enumerating every
// placement of every break (gap and before/after travel), independent of the
// dynamic programme in simulate.
func bruteBreaks(m *model, v int, seq []int32) bool {
	vi := &m.veh[v]
	B := len(vi.breaks)
	G := len(seq) + 1
	// slot index: gap*2 + (0 before travel, 1 after)
	slots := make([]int, B)
	var rec func(b, minSlot int) bool
	check := func() bool {
		t := &m.types[vi.typ]
		D := m.dims
		load := make([]int64, D)
		for _, n := range seq {
			for d := 0; d < D; d++ {
				load[d] += m.del[int(n)*D+d]
			}
		}
		tm := vi.tw.Start
		prev := vi.start
		bi := 0
		take := func(slot int) bool {
			for bi < B && slots[bi] == slot {
				br := &vi.breaks[bi]
				if br.MaxLoad != nil {
					for d := 0; d < D; d++ {
						if load[d] > br.MaxLoad[d] {
							return false
						}
					}
				}
				s, ok := earliest(br.TimeWindows, tm)
				if !ok {
					return false
				}
				tm = s + br.Service
				bi++
			}
			return true
		}
		for g := 0; g < G; g++ {
			if prev < 0 && bi < B && slots[bi] == 2*g {
				return false
			}
			if !take(2 * g) {
				return false
			}
			l := vi.end
			if g < len(seq) {
				l = m.loc[seq[g]]
			} else if l < 0 {
				l = prev
			}
			du, _, _ := m.travel(t, prev, l)
			tm += du
			if !take(2*g + 1) {
				return false
			}
			if g == len(seq) {
				return tm <= vi.tw.End
			}
			n := seq[g]
			s, ok := earliest(m.tw(n), tm)
			if !ok {
				return false
			}
			tm = s + m.serv[n]
			if prev != l {
				tm += m.setup[n]
			}
			for d := 0; d < D; d++ {
				load[d] += m.pick[int(n)*D+d] - m.del[int(n)*D+d]
			}
			prev = l
		}
		return false
	}
	rec = func(b, minSlot int) bool {
		if b == B {
			return check()
		}
		for sl := minSlot; sl < 2*G; sl++ {
			slots[b] = sl
			if rec(b+1, sl) {
				return true
			}
		}
		return false
	}
	return rec(0, 0)
}

// TestBreakDP compares the break dynamic programme with brute force.
func TestBreakDP(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	feas, infeas := 0, 0
	for it := 0; it < 400; it++ {
		p := genProblem(r, genOpts{jobs: 8, vehicles: 2, tw: true, multiTW: true, breaks: true, setup: true, open: true, horizon: 8000})
		m, err := compile(p)
		if err != nil {
			t.Fatal(err)
		}
		w := newWork(m)
		v := r.IntN(len(m.veh))
		perm := r.Perm(m.nNodes)[:1+r.IntN(5)]
		seq := make([]int32, len(perm))
		for i, n := range perm {
			seq[i] = int32(n)
		}
		got := m.feasible(v, seq, w)
		want := bruteBreaks(m, v, seq)
		if got != want {
			t.Fatalf("it %d: DP says %v, brute force %v (seq %v, breaks %+v)", it, got, want, seq, m.veh[v].breaks)
		}
		if got {
			feas++
			rt, err := m.buildRoute(v, seq, w)
			if err != nil {
				t.Fatal(err)
			}
			sol := &Solution{Routes: []Route{rt}}
			sol.Summary.Cost, sol.Summary.Routes, sol.Summary.Duration, sol.Summary.Distance = rt.Cost, 1, rt.Duration, rt.Distance
			sol.Summary.WaitingTime, sol.Summary.Priority = rt.WaitingTime, rt.Priority
			in := map[int32]bool{}
			for _, n := range seq {
				in[n] = true
			}
			for n := int32(0); n < int32(m.nNodes); n++ {
				if !in[n] {
					id, typ, _, _ := m.nodeInfo(n)
					sol.Unassigned = append(sol.Unassigned, Unassigned{ID: id, Type: typ})
				}
			}
			sol.Summary.Unassigned = len(sol.Unassigned)
			if _, err := Validate(p, sol); err != nil {
				t.Fatalf("it %d: route with breaks fails validation: %v", it, err)
			}
		} else {
			infeas++
		}
	}
	if feas < 20 || infeas < 20 {
		t.Fatalf("unbalanced test: %d feasible, %d infeasible", feas, infeas)
	}
}

// TestInfeasibleTasks: tasks no vehicle can serve are unassigned with a
// reason and the rest is planned.
func TestInfeasibleTasks(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	p := genProblem(r, genOpts{jobs: 20, vehicles: 3, tw: true, horizon: 50000})
	p.Jobs[0].TimeWindows = []TimeWindow{{60000, 70000}} // outside every shift
	p.Jobs[1].Delivery = []int64{1000}                   // over every capacity
	p.Jobs[2].Skills = []int{42}                         // nobody has it
	p.Jobs[3].TimeWindows = []TimeWindow{{0, 1}}         // unreachable in time
	p.Shipments = append(p.Shipments, Shipment{Pickup: ShipmentStep{ID: 7, Location: IndexLocation(5)}, Delivery: ShipmentStep{ID: 7, Location: IndexLocation(6)}, Amount: []int64{500}})
	s := solveAndCheck(t, p, Options{Iterations: 500, Seed: 1})
	want := map[uint64]string{p.Jobs[0].ID: "time", p.Jobs[1].ID: "capacity", p.Jobs[2].ID: "skills", p.Jobs[3].ID: "time", 7: "capacity"}
	got := map[uint64]string{}
	for _, u := range s.Unassigned {
		got[u.ID] = u.Reason
	}
	for id, w := range want {
		if !strings.HasPrefix(got[id], w) {
			t.Errorf("task %d: reason %q, want prefix %q", id, got[id], w)
		}
	}
	if len(s.Unassigned) != 6 { // 4 jobs + pickup + delivery
		t.Errorf("%d unassigned, want 6: %+v", len(s.Unassigned), s.Unassigned)
	}
}

// TestSolveGenerated solves generated instances with every feature and runs
// each solution through Validate.
func TestSolveGenerated(t *testing.T) {
	cases := []struct {
		name string
		o    genOpts
	}{
		{"cvrp", genOpts{jobs: 60, vehicles: 8}},
		{"vrptw", genOpts{jobs: 60, vehicles: 10, tw: true}},
		{"pickup-delivery-jobs", genOpts{jobs: 40, vehicles: 6, tw: true, pickups: true, dims: 2}},
		{"shipments", genOpts{jobs: 10, shipments: 15, vehicles: 6, tw: true}},
		{"breaks", genOpts{jobs: 30, vehicles: 5, tw: true, breaks: true}},
		{"multi-tw", genOpts{jobs: 30, vehicles: 5, tw: true, multiTW: true}},
		{"skills-setup-prio", genOpts{jobs: 40, vehicles: 5, tw: true, skills: true, setup: true, prio: true}},
		{"open-limits", genOpts{jobs: 40, vehicles: 6, tw: true, open: true, limits: true}},
		{"everything", genOpts{jobs: 30, shipments: 8, vehicles: 5, tw: true, multiTW: true, breaks: true, skills: true, setup: true, pickups: true, open: true, limits: true, prio: true, dims: 2}},
		{"five-dims", genOpts{jobs: 30, vehicles: 4, tw: true, pickups: true, dims: 5}},
		{"overloaded", genOpts{jobs: 80, vehicles: 2, tw: true, prio: true}},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(uint64(i), 99))
			p := genProblem(r, c.o)
			s := solveAndCheck(t, p, Options{Iterations: 400, Seed: 3})
			if len(s.Routes) == 0 {
				t.Fatal("no route planned")
			}
			// determinism under an iteration limit
			s2 := solveAndCheck(t, p, Options{Iterations: 400, Seed: 3})
			s.Summary.ComputingTimes, s2.Summary.ComputingTimes = ComputingTimes{}, ComputingTimes{}
			if !reflect.DeepEqual(s, s2) {
				t.Fatal("same seed and iterations gave different solutions")
			}
		})
	}
}

// TestSearchImproves: the metaheuristic must improve on the construction.
func TestSearchImproves(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	p := genProblem(r, genOpts{jobs: 80, vehicles: 12, tw: true})
	s0 := solveAndCheck(t, p, Options{Iterations: 1, Seed: 1, Workers: 1})
	s1 := solveAndCheck(t, p, Options{Iterations: 3000, Seed: 1})
	if s1.Summary.Unassigned > s0.Summary.Unassigned || (s1.Summary.Unassigned == s0.Summary.Unassigned && s1.Summary.Cost >= s0.Summary.Cost) {
		t.Fatalf("no improvement: construction %d/%d, search %d/%d", s0.Summary.Unassigned, s0.Summary.Cost, s1.Summary.Unassigned, s1.Summary.Cost)
	}
	t.Logf("construction cost %d, after search %d", s0.Summary.Cost, s1.Summary.Cost)
}

// TestValidateDetects corrupts valid solutions and expects Validate to fail.
func TestValidateDetects(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	p := genProblem(r, genOpts{jobs: 30, shipments: 3, vehicles: 5, tw: true, breaks: true})
	s := solveAndCheck(t, p, Options{Iterations: 200, Seed: 1})
	raw, _ := json.Marshal(s)
	fresh := func() *Solution {
		var c Solution
		if err := json.Unmarshal(raw, &c); err != nil {
			t.Fatal(err)
		}
		return &c
	}
	mutations := map[string]func(*Solution){
		"arrival":     func(s *Solution) { s.Routes[0].Steps[1].Arrival++ },
		"cost":        func(s *Solution) { s.Routes[0].Cost++ },
		"summary":     func(s *Solution) { s.Summary.Cost-- },
		"load":        func(s *Solution) { s.Routes[0].Steps[1].Load[0]++ },
		"drop task":   func(s *Solution) { r := &s.Routes[0]; r.Steps = append(r.Steps[:1], r.Steps[2:]...) },
		"swap steps":  func(s *Solution) { st := s.Routes[0].Steps; st[1], st[2] = st[2], st[1] },
		"waiting":     func(s *Solution) { s.Routes[0].Steps[1].WaitingTime += 1 << 40 },
		"dup vehicle": func(s *Solution) { s.Routes = append(s.Routes, s.Routes[0]) },
		"unassign dup": func(s *Solution) {
			st := s.Routes[0].Steps[1]
			s.Unassigned = append(s.Unassigned, Unassigned{ID: *st.ID, Type: st.Type})
		},
	}
	for name, mut := range mutations {
		c := fresh()
		if _, err := Validate(p, c); err != nil {
			t.Fatalf("unmutated copy invalid: %v", err)
		}
		mut(c)
		if _, err := Validate(p, c); err == nil {
			t.Errorf("mutation %q not detected", name)
		}
	}
}

// TestRelaxedFilter: off the fast path (breaks, setup, several windows) the
// segment check is a relaxation, so it must accept every insertion that the
// exact simulation accepts.
func TestRelaxedFilter(t *testing.T) {
	r := rand.New(rand.NewPCG(51, 52))
	exact, filtered := 0, 0
	for it := 0; it < 200; it++ {
		p := genProblem(r, genOpts{jobs: 12, vehicles: 2, tw: true, multiTW: true, breaks: true, setup: true, open: it%2 == 0, limits: it%3 == 0, horizon: 10000})
		m, err := compile(p)
		if err != nil {
			t.Fatal(err)
		}
		if m.fast || !m.segs {
			t.Fatal("expected the relaxed segment path")
		}
		s := newState(m)
		v := r.IntN(len(m.veh))
		for _, n := range r.Perm(m.nNodes)[:4] {
			cand := append(append([]int32{}, s.routes[v]...), int32(n))
			if m.feasible(v, cand, s.w) {
				s.routes[v] = cand
			}
		}
		s.refresh(v)
		seq := s.routes[v]
		tt := &m.types[m.veh[v].typ]
		for u := int32(0); u < int32(m.nNodes); u++ {
			if s.routeOf[u] >= 0 {
				continue
			}
			for k := 0; k <= len(seq); k++ {
				cand := append(append(append([]int32{}, seq[:k]...), u), seq[k:]...)
				ok := m.feasible(v, cand, s.w)
				relaxed := m.insertOK(tt, &m.veh[v], &s.fw[v][k], &m.nseg[u], &s.bw[v][k+1])
				if ok && !relaxed {
					t.Fatalf("it %d: relaxed filter rejects a feasible insertion", it)
				}
				if ok {
					exact++
				}
				if !relaxed {
					filtered++
				}
			}
		}
	}
	if exact == 0 || filtered == 0 {
		t.Fatalf("degenerate test: %d feasible, %d filtered", exact, filtered)
	}
}

// TestEmptyAndTiny covers degenerate inputs: no task, one task, no vehicle.
func TestEmptyAndTiny(t *testing.T) {
	mx := &Matrix{Durations: [][]int64{{0, 5}, {5, 0}}}
	p := &Problem{Vehicles: []Vehicle{{ID: 1, Start: IndexLocation(0), HasStart: true}}, Matrices: map[string]*Matrix{"car": mx}}
	s := solveAndCheck(t, p, Options{Iterations: 10})
	if len(s.Routes) != 0 || len(s.Unassigned) != 0 {
		t.Fatalf("empty problem: %+v", s)
	}
	p.Jobs = []Job{{ID: 7, Location: IndexLocation(1), Service: 3}}
	s = solveAndCheck(t, p, Options{Iterations: 10})
	if len(s.Routes) != 1 || s.Summary.Cost != 5 {
		t.Fatalf("one job: routes %d cost %d", len(s.Routes), s.Summary.Cost)
	}
	p.Vehicles = nil
	if _, err := Solve(p, Options{}); err == nil {
		t.Fatal("no vehicle accepted")
	}
}

// TestProfiles mixes vehicles on two profiles (different matrices), speed
// factors, depots and cost models; solutions must validate.
func TestProfiles(t *testing.T) {
	r := rand.New(rand.NewPCG(71, 72))
	for it := 0; it < 4; it++ {
		p := genProblem(r, genOpts{jobs: 50, vehicles: 6, tw: true, open: true})
		car := p.Matrices["car"]
		n := len(car.Durations)
		bike := &Matrix{Durations: make([][]int64, n), Distances: car.Distances, Costs: make([][]int64, n)}
		for i := range bike.Durations {
			bike.Durations[i] = make([]int64, n)
			bike.Costs[i] = make([]int64, n)
			for j := range bike.Durations[i] {
				bike.Durations[i][j] = 2 * car.Durations[i][j]
				bike.Costs[i][j] = car.Distances[i][j] / 3
			}
		}
		p.SetMatrix("bike", bike)
		for v := range p.Vehicles {
			switch v % 3 {
			case 0:
				p.Vehicles[v].Profile = "bike"
			case 1:
				p.Vehicles[v].SpeedFactor = 1.25
				p.Vehicles[v].Costs = Costs{Fixed: 500, PerKm: 1000}
			}
		}
		s := solveAndCheck(t, p, Options{Iterations: 1500, Seed: int64(it)})
		if len(s.Routes) == 0 {
			t.Fatal("no routes")
		}
	}
}
