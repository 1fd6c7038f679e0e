package vrp

import (
	"math"
	"sort"
)

// SISR parameters (Christiaens & Vanden Berghe 2020, "Slack induction by
// string removals for vehicle routing problems", Section 4 / Table 5):
// average removed customers cbar, maximum string length lmax, blink rate.
const (
	sisrCbar  = 10
	sisrLmax  = 10
	sisrBlink = 0.01
	// sisrSwap is the share of iterations that exchange the routes of two
	// vehicles of different classes instead of ruining and recreating
	// (see swapVehicles).
	sisrSwap = 0.01
	// Start and final temperatures as multiples of the mean
	// nearest-neighbour arc cost (tuned on Solomon and X instances).
	sisrT0 = 10.0
	sisrTf = 0.1
	// Above granularMin tasks, reinsertion only considers positions next to
	// the granularK nearest neighbours (Toth & Vigo 2003).
	granularMin = 200
	granularK   = 40
)

// worker runs SISR on its own current/best states.
type worker struct {
	m        *model
	cur      *state
	best     *state
	curObj   objective
	bestObj  objective
	r        rng
	nb       [][]int32
	removed  []int32
	ruined   []bool
	saved    []savedRoute
	touched  []bool
	span     [][4]int // per ruined route: vehicle, first and last removed index, count
	demand   []int64
	depotC   []int64
	t0, tf   float64
	iters    int64
	accepted int64
	// prioSpread is true when tasks have different priorities.
	prioSpread bool
	order      []int32
	// swaps is true when the fleet has vehicles of more than one class.
	swaps bool
}

// lsK is the granular neighbourhood size of the local search.
const lsK = 10

func (w *worker) shuffled() []int32 {
	if w.order == nil {
		w.order = make([]int32, w.m.nNodes)
		for i := range w.order {
			w.order[i] = int32(i)
		}
	}
	o := w.order
	for i := len(o) - 1; i > 0; i-- {
		k := w.r.intn(i + 1)
		o[i], o[k] = o[k], o[i]
	}
	return o
}

type savedRoute struct {
	v   int
	seq []int32
}

func newWorker(m *model, init *state, seed int64, idx int, nb [][]int32) *worker {
	mix := rng{s: uint64(seed)}
	w := &worker{m: m, nb: nb, r: rng{s: mix.next() ^ (uint64(idx+1) * 0xd1b54a32d192ed03)}}
	w.cur = newState(m)
	w.cur.plannable = init.plannable
	w.cur.copyFrom(init)
	if m.nNodes > granularMin {
		w.cur.gnb, w.cur.gK = nb, granularK
	}
	w.best = newState(m)
	w.best.plannable = init.plannable
	w.best.copyFrom(init)
	w.curObj = w.cur.obj()
	w.bestObj = w.curObj
	for n := 1; n < m.nNodes; n++ {
		if m.prio[n] != m.prio[0] {
			w.prioSpread = true
		}
	}
	for v := range m.veh {
		if m.vclass[v] != m.vclass[0] {
			w.swaps = true
		}
	}
	w.ruined = make([]bool, len(m.veh))
	w.touched = make([]bool, len(m.veh))
	D := m.dims
	w.demand = make([]int64, m.nNodes)
	w.depotC = make([]int64, m.nNodes)
	t := &m.types[0]
	for n := 0; n < m.nNodes; n++ {
		for d := 0; d < D; d++ {
			w.demand[n] += m.del[n*D+d] + abs64(m.pick[n*D+d])
		}
		w.depotC[n] = m.arcCost(t, m.veh[0].start, m.loc[n])
	}
	// Temperatures relative to the typical neighbour arc cost, mirroring
	// SISR's T0 = 100, Tf = 1 on instances with unit-scale coordinates.
	var sum float64
	var cnt int
	for n := 0; n < m.nNodes; n++ {
		if len(nb[n]) > 0 {
			sum += float64(m.arcCost(t, m.loc[n], m.loc[nb[n][0]]))
			cnt++
		}
	}
	avg := 1.0
	if cnt > 0 && sum > 0 {
		avg = sum / float64(cnt)
	}
	w.t0 = sisrT0 * avg
	w.tf = sisrTf * avg
	return w
}

func abs64(x int64) int64 {
	if x < 0 {
		return -x
	}
	return x
}

func (w *worker) touch(v int) {
	if w.touched[v] {
		return
	}
	w.touched[v] = true
	// reuse the buffers of earlier iterations (no allocation in steady state)
	k := len(w.saved)
	if k < cap(w.saved) {
		w.saved = w.saved[:k+1]
		w.saved[k].v = v
		w.saved[k].seq = append(w.saved[k].seq[:0], w.cur.routes[v]...)
		return
	}
	w.saved = append(w.saved, savedRoute{v, append([]int32(nil), w.cur.routes[v]...)})
}

// rollback restores the routes saved since the last commit.
func (w *worker) rollback() {
	s := w.cur
	for _, sv := range w.saved {
		for _, n := range s.routes[sv.v] {
			s.routeOf[n] = -1
		}
	}
	for _, sv := range w.saved {
		s.routes[sv.v] = append(s.routes[sv.v][:0], sv.seq...)
		s.refresh(sv.v)
	}
	w.commit()
}

func (w *worker) commit() {
	for _, sv := range w.saved {
		w.touched[sv.v] = false
	}
	w.saved = w.saved[:0]
}

// ruin removes strings of consecutive customers from routes near a random
// seed customer (SISR Section 4.1, string and split-string removal).
func (w *worker) ruin() {
	s := w.cur
	m := w.m
	w.removed = w.removed[:0]
	used, assigned := 0, 0
	for _, seq := range s.routes {
		if len(seq) > 0 {
			used++
			assigned += len(seq)
		}
	}
	if assigned == 0 {
		return
	}
	avg := float64(assigned) / float64(used)
	lsMax := math.Min(sisrLmax, avg)
	ksMax := 4*sisrCbar/(1+lsMax) - 1
	ks := int(1 + w.r.float()*ksMax)
	// seed: a random assigned node
	var seed int32
	for {
		seed = int32(w.r.intn(m.nNodes))
		if s.routeOf[seed] >= 0 {
			break
		}
	}
	for i := range w.ruined {
		w.ruined[i] = false
	}
	nr := 0
	try := func(c int32) {
		v := int(s.routeOf[c])
		if v < 0 || w.ruined[v] {
			return
		}
		seq := s.routes[v]
		ltMax := math.Min(float64(len(seq)), lsMax)
		lt := int(1 + w.r.float()*ltMax)
		lt = min(lt, len(seq))
		idx := 0
		for i, n := range seq {
			if n == c {
				idx = i
				break
			}
		}
		w.touch(v)
		w.ruined[v] = true
		nr++
		if lt < len(seq) && w.r.float() < 0.5 {
			// split string: window of lt+keep, keep a random inner run
			keep := 1
			for lt+keep < len(seq) && w.r.float() < 0.5 {
				keep++
			}
			L := lt + keep
			lo := max(0, idx-L+1)
			hi := min(idx, len(seq)-L)
			st := lo + w.r.intn(hi-lo+1)
			ks := st + w.r.intn(L-keep+1)
			for i := st; i < st+L; i++ {
				if i >= ks && i < ks+keep {
					continue
				}
				w.removed = append(w.removed, seq[i])
			}
		} else {
			lo := max(0, idx-lt+1)
			hi := min(idx, len(seq)-lt)
			st := lo + w.r.intn(hi-lo+1)
			w.removed = append(w.removed, seq[st:st+lt]...)
		}
	}
	try(seed)
	for _, c := range w.nb[seed] {
		if nr >= ks {
			break
		}
		try(c)
	}
	// shipments leave with their sibling
	k := len(w.removed)
	for i := 0; i < k; i++ {
		if sb := m.sib[w.removed[i]]; sb >= 0 && s.routeOf[sb] >= 0 {
			w.touch(int(s.routeOf[sb]))
			w.removed = append(w.removed, sb)
		}
	}
	mark := s.w.mark
	s.w.stamp++
	st := s.w.stamp
	for _, n := range w.removed {
		mark[n] = st
	}
	span := w.span[:0]
	for i := range w.ruined {
		if w.touched[i] {
			a, b, r := s.removeFrom(i, func(n int32) bool { return mark[n] == st })
			span = append(span, [4]int{i, a, b, r})
		}
	}
	w.span = span
	// dedupe removed
	j := 0
	for _, n := range w.removed {
		if mark[n] == st {
			mark[n] = st - 1
			w.removed[j] = n
			j++
		}
	}
	w.removed = w.removed[:j]
	for _, x := range w.span {
		s.refreshRemoved(x[0], x[1], x[2], x[3])
	}
}

// recreate reinserts removed and previously unassigned plannable nodes one
// by one at their cheapest position with blinks (SISR Section 4.2), in one
// of four random orders (random, demand, far from depot, close to depot;
// weights 4:4:2:1).
func (w *worker) recreate() {
	s := w.cur
	m := w.m
	mark := s.w.mark
	s.w.stamp++
	st := s.w.stamp
	for _, n := range w.removed {
		mark[n] = st
	}
	for n := 0; n < m.nNodes; n++ {
		if s.routeOf[n] < 0 && s.plannable[n] && mark[n] != st {
			w.removed = append(w.removed, int32(n))
		}
	}
	// only one half of each shipment drives insertion
	j := 0
	for _, n := range w.removed {
		if m.kind[n] == kindDelivery {
			continue
		}
		w.removed[j] = n
		j++
	}
	rem := w.removed[:j]
	for i := len(rem) - 1; i > 0; i-- {
		k := w.r.intn(i + 1)
		rem[i], rem[k] = rem[k], rem[i]
	}
	switch x := w.r.intn(11); {
	case x < 4:
	case x < 8:
		sort.SliceStable(rem, func(a, b int) bool { return w.demand[rem[a]] > w.demand[rem[b]] })
	case x < 10:
		sort.SliceStable(rem, func(a, b int) bool { return w.depotC[rem[a]] > w.depotC[rem[b]] })
	default:
		sort.SliceStable(rem, func(a, b int) bool { return w.depotC[rem[a]] < w.depotC[rem[b]] })
	}
	if w.prioSpread {
		// higher priorities first, keeping the chosen order within a level
		sort.SliceStable(rem, func(a, b int) bool { return m.prio[rem[a]] > m.prio[rem[b]] })
	}
	for _, u := range rem {
		w.insertTracked(u)
	}
}

func (w *worker) insertTracked(u int32) {
	s := w.cur
	m := w.m
	if m.sib[u] >= 0 {
		p, q := u, m.sib[u]
		v, i, j, _ := s.bestInsertPair(p, q, &w.r, sisrBlink)
		if v < 0 {
			return
		}
		w.touch(v)
		s.insertPairAt(v, i, j, p, q)
		return
	}
	v, pos, _ := s.bestInsert(u, &w.r, sisrBlink)
	if v < 0 {
		return
	}
	w.touch(v)
	s.insertAt(v, pos, u)
}

// step performs one SISR iteration with simulated-annealing acceptance at
// temperature temp.
func (w *worker) step(temp float64) {
	w.iters++
	if w.swaps && w.r.float() < sisrSwap {
		if !w.swapVehicles() {
			return
		}
	} else {
		w.ruin()
		w.recreate()
	}
	o := w.cur.obj()
	accept := false
	switch {
	case o.prio != w.curObj.prio:
		accept = o.prio < w.curObj.prio
	case o.count != w.curObj.count:
		accept = o.count < w.curObj.count
	default:
		accept = float64(o.cost) < float64(w.curObj.cost)-temp*math.Log(w.r.float()+1e-300)
	}
	if !accept {
		w.rollback()
		return
	}
	w.commit()
	w.accepted++
	w.curObj = o
	if o.less(w.bestObj) {
		w.bestObj = o
		w.best.copyFrom(w.cur)
	}
}

// swapVehicles exchanges the routes of two random vehicles of different
// classes (one of them may be unused) when each route stays feasible on its
// new vehicle, and reports whether it did. Ruin and recreate moves tasks
// between routes but never a whole route to another vehicle: with a
// heterogeneous fleet (capacities, skills, shifts, costs) a route stuck on
// a small vehicle keeps the search from filling a larger one. Between
// vehicles of the same type the exchange costs nothing, so the annealing
// accepts it and the following ruins work with the other vehicle's room.
func (w *worker) swapVehicles() bool {
	s := w.cur
	m := w.m
	V := len(m.veh)
	a := w.r.intn(V)
	b := w.r.intn(V - 1)
	if b >= a {
		b++
	}
	if m.vclass[a] == m.vclass[b] || (len(s.routes[a]) == 0 && len(s.routes[b]) == 0) {
		return false
	}
	if !m.feasible(b, s.routes[a], s.w) || !m.feasible(a, s.routes[b], s.w) {
		return false
	}
	w.touch(a)
	w.touch(b)
	s.routes[a], s.routes[b] = s.routes[b], s.routes[a]
	s.refresh(a)
	s.refresh(b)
	return true
}
