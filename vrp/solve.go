package vrp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"time"
)

// Options control Solve.
type Options struct {
	// TimeLimit bounds the search (0 = none). With a time limit the result
	// depends on machine speed: the number of completed epochs varies.
	TimeLimit time.Duration
	// Iterations is the number of SISR iterations per worker (0 = none).
	// When neither limit is set, Iterations defaults to 20000. With
	// Iterations > 0 and TimeLimit = 0 the result is deterministic for a
	// given Seed and Workers.
	Iterations int
	// Seed seeds the workers (worker i's stream is derived from Seed and i).
	Seed int64
	// Workers is the number of parallel searches (0 = 2). They exchange
	// their best solution every EpochIterations iterations.
	Workers int
	// EpochIterations is the synchronisation period (0 = 20000): at the end
	// of each epoch every worker continues from the best solution found.
	EpochIterations int
	// Logger receives progress logs; nil discards them.
	Logger *slog.Logger
	// Progress, when set, is called after every epoch with the iterations
	// done per worker and the best cost so far (VROOM cost units).
	Progress func(iterations int64, unassigned int, cost int64)
	// NoLocalSearch disables the local search applied to the initial and
	// to the final solution.
	NoLocalSearch bool
	// Context, when set, stops the search early when cancelled.
	Context context.Context
	// segments keeps the full route segments in the search where light
	// routes would do (light.go); tests compare both.
	segments bool
}

// Solve plans routes for p. Tasks no vehicle can serve (skills, capacity,
// time windows, travel limits) are returned in Unassigned with a reason; the
// rest is planned and improved by SISR ruin-and-recreate with simulated
// annealing until the iteration or time limit.
func Solve(p *Problem, opt Options) (*Solution, error) {
	t0 := time.Now()
	m, err := compile(p)
	if err != nil {
		return nil, fmt.Errorf("vrp: %w", err)
	}
	log := opt.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if opt.Workers <= 0 {
		opt.Workers = 2
	}
	if opt.Iterations < 0 || opt.TimeLimit < 0 {
		return nil, errors.New("vrp: negative Iterations or TimeLimit")
	}
	if opt.Iterations == 0 && opt.TimeLimit == 0 {
		opt.Iterations = 20000
	}
	epoch := opt.EpochIterations
	if epoch <= 0 {
		epoch = 20000
	}
	ctx := opt.Context
	if ctx == nil {
		ctx = context.Background()
	}
	loaded := time.Now()
	reasons := make([]string, m.nNodes)
	init := newState(m)
	init.plannable = make([]bool, m.nNodes)
	for n := int32(0); n < int32(m.nNodes); n++ {
		if r := m.unservable(n, init.w); r != "" {
			reasons[n] = r
		} else {
			init.plannable[n] = true
		}
	}
	nb := m.buildNeighbours(100)
	construct(init, opt.Seed, nb)
	if !opt.NoLocalSearch {
		order := make([]int32, m.nNodes)
		for i := range order {
			order[i] = int32(i)
		}
		init.localSearch(nb, lsK, order, nil)
	}
	workers := make([]*worker, opt.Workers)
	for i := range workers {
		workers[i] = newWorker(m, init, opt.Seed, i, nb)
		if m.light && !opt.segments {
			workers[i].cur.setLight(true)
			workers[i].best.setLight(true)
		}
	}
	deadline := time.Time{}
	if opt.TimeLimit > 0 {
		deadline = t0.Add(opt.TimeLimit)
	}
	var done int64
	stopped := func() bool {
		if ctx.Err() != nil {
			return true
		}
		return !deadline.IsZero() && time.Now().After(deadline)
	}
	plannable := 0
	for _, ok := range init.plannable {
		if ok {
			plannable++
		}
	}
	for plannable > 0 {
		if opt.Iterations > 0 && done >= int64(opt.Iterations) {
			break
		}
		if stopped() {
			break
		}
		n := int64(epoch)
		if opt.Iterations > 0 {
			n = min(n, int64(opt.Iterations)-done)
		}
		var wg sync.WaitGroup
		for _, w := range workers {
			wg.Add(1)
			go func(w *worker) {
				defer wg.Done()
				for k := int64(0); k < n; k++ {
					if k&31 == 0 && stopped() {
						return
					}
					var frac float64
					if opt.Iterations > 0 {
						frac = float64(done+k) / float64(opt.Iterations)
					} else {
						frac = float64(time.Since(t0)) / float64(opt.TimeLimit)
					}
					frac = min(max(frac, 0), 1)
					temp := w.t0 * pow(w.tf/w.t0, frac)
					w.step(temp)
				}
			}(w)
		}
		wg.Wait()
		done += n
		// synchronise: everyone continues from the best (lowest index on ties)
		bi := 0
		for i, w := range workers {
			if w.bestObj.less(workers[bi].bestObj) {
				bi = i
			}
		}
		b := workers[bi]
		for i, w := range workers {
			if i != bi {
				w.best.copyFrom(b.best)
				w.bestObj = b.bestObj
			}
			w.cur.copyFrom(b.best)
			w.curObj = b.bestObj
		}
		log.Debug("vrp epoch", "iterations", done, "unassigned", b.bestObj.count, "cost", roundDiv(b.bestObj.cost, costScale))
		if opt.Progress != nil {
			opt.Progress(workers[0].iters, int(b.bestObj.count), roundDiv(b.bestObj.cost, costScale))
		}
	}
	// The final polish may overrun the time limit by at most 10%.
	lsStop := func() bool {
		if ctx.Err() != nil {
			return true
		}
		return !deadline.IsZero() && time.Now().After(deadline.Add(opt.TimeLimit/10))
	}
	best := init
	if len(workers) > 0 {
		best = workers[0].best
		best.setLight(false)
		if !opt.NoLocalSearch {
			best.localSearch(nb, lsK, workers[0].shuffled(), lsStop)
		}
	}
	for n := 0; n < m.nNodes; n++ {
		if best.routeOf[n] < 0 && reasons[n] == "" {
			reasons[n] = "no room left in any route (capacity, time windows or fleet size)"
		}
	}
	sol, err := m.buildSolution(best.routes, reasons)
	if err != nil {
		return nil, fmt.Errorf("vrp: %w", err)
	}
	sol.Summary.ComputingTimes.Loading = loaded.Sub(t0).Milliseconds()
	sol.Summary.ComputingTimes.Solving = time.Since(loaded).Milliseconds()
	var its, acc int64
	for _, w := range workers {
		its += w.iters
		acc += w.accepted
	}
	log.Info("vrp solved", "iterations", its, "accepted", acc, "cost", sol.Summary.Cost, "routes", sol.Summary.Routes, "unassigned", sol.Summary.Unassigned)
	return sol, nil
}

func pow(a, b float64) float64 {
	if a <= 0 {
		return 0
	}
	return math.Pow(a, b)
}

// unservable returns why no vehicle can serve node n (with its sibling) on
// its own, or "" when some vehicle can.
func (m *model) unservable(n int32, w *work) string {
	seq := []int32{n}
	if s := m.sib[n]; s >= 0 {
		if m.kind[n] == kindPickup {
			seq = []int32{n, s}
		} else {
			seq = []int32{s, n}
		}
	}
	skill, capOK := false, false
	D := m.dims
	for v := range m.veh {
		if !m.compat[v*m.nNodes+int(n)] {
			continue
		}
		skill = true
		ok := true
		for d := 0; d < D; d++ {
			for _, x := range seq {
				if m.del[int(x)*D+d] > m.veh[v].cap[d] || m.pick[int(x)*D+d] > m.veh[v].cap[d] {
					ok = false
				}
			}
		}
		if !ok {
			continue
		}
		capOK = true
		if m.feasible(v, seq, w) {
			return ""
		}
	}
	switch {
	case !skill:
		return "skills: no vehicle has all required skills"
	case !capOK:
		return "capacity: amount exceeds the capacity of every compatible vehicle"
	default:
		return "time: no compatible vehicle can serve it within its time windows, shift, breaks, max_tasks or travel limits"
	}
}

// construct builds the initial solution: regret-k insertion and, when the
// problem allows O(1) checks, parallel Clarke-Wright savings (see savings);
// the better one is kept.
func construct(s *state, seed int64, nb [][]int32) {
	r := rng{s: uint64(seed) + 12345}
	a := newState(s.m)
	a.plannable = s.plannable
	regretInsertion(a, &r)
	best := a
	if s.m.fast {
		b := newState(s.m)
		b.plannable = s.plannable
		if savings(b, nb) {
			for n := 0; n < s.m.nNodes; n++ {
				if b.routeOf[n] < 0 && b.plannable[n] {
					b.insertNode(int32(n), &r, 0)
				}
			}
			if b.obj().less(a.obj()) {
				best = b
			}
		}
	}
	s.copyFrom(best)
}
