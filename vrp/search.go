package vrp

import (
	"math"
	"sort"
)

// rng is splitmix64: small, fast and deterministic per seed. gap and gapP
// hold the pending geometric gap of blink.
type rng struct {
	s    uint64
	gap  int64
	gapP float64
}

func (r *rng) next() uint64 {
	r.s += 0x9e3779b97f4a7c15
	z := r.s
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// intn returns a uniform int in [0, n).
func (r *rng) intn(n int) int { return int(r.next() % uint64(n)) }

// float returns a uniform float in [0, 1).
func (r *rng) float() float64 { return float64(r.next()>>11) / (1 << 53) }

// blink reports true with probability p, independently per call (SISR's
// blinks, Christiaens & Vanden Berghe 2020, Section 4.2). Instead of one
// uniform draw per call it draws the number of calls until the next true
// from the geometric distribution, one draw per blink: with p = 0.01 the
// insertion loops call it for most positions, and the per-call draw was a
// sixth of their time.
func (r *rng) blink(p float64) bool {
	if p <= 0 {
		return false
	}
	if p != r.gapP {
		r.gapP, r.gap = p, r.geometric(p)
	}
	if r.gap == 0 {
		r.gap = r.geometric(p)
		return true
	}
	r.gap--
	return false
}

// geometric returns the number of failures before the first success of
// independent trials with success probability p: P(G >= k) = (1-p)^k.
func (r *rng) geometric(p float64) int64 {
	if p >= 1 {
		return 0
	}
	u := 1 - r.float() // in (0, 1]
	g := math.Log(u) / math.Log1p(-p)
	if !(g < 1<<62) {
		return 1 << 62
	}
	return int64(g)
}

// objective is lexicographic as in VROOM: unassigned priority, then number
// of unassigned tasks, then internal cost (all to be minimised).
type objective struct {
	prio, count, cost int64
}

func (a objective) less(b objective) bool {
	if a.prio != b.prio {
		return a.prio < b.prio
	}
	if a.count != b.count {
		return a.count < b.count
	}
	return a.cost < b.cost
}

// state is a solution under construction or search.
type state struct {
	m       *model
	routes  [][]int32 // per vehicle
	rcost   []int64   // internal cost per route
	routeOf []int32   // vehicle per node, -1 when unassigned
	fw, bw  [][]seg   // fast path: prefix/suffix segments per route
	bt      [][]bpt   // when m.brk: time labels per route (brk.go)
	// removable marks nodes the solver may plan (false for nodes no vehicle
	// can serve alone).
	plannable []bool
	w         *work
	// scratch
	buf      []int32
	clsStamp []int32
	stamp    int32
	skipV    int // vehicle excluded from insertion searches (-1 none)
	onlyV    int // when >= 0, insertion searches consider this vehicle only
	// pos is each assigned node's index in its route.
	pos []int32
	// gnb, when set, restricts insertion positions to those next to the
	// first gK neighbours of the task (granular insertion for large
	// instances) plus one empty vehicle per class.
	gnb [][]int32
	gK  int
	// cands and gl are scratch buffers of the insertion searches.
	cands []cand
	gl    []int64
	// light is true for a state with light routes (light.go): fw and bw of
	// route v are valid only while stale[v] is false; acost[v] holds the
	// cost of each arc of route v (start → first … last → end) and tot[v]
	// its totals (loads, travel time, distance, arc cost, tasks), rloc[v]
	// the location of each of its tasks.
	light bool
	stale []bool
	acost [][]int64
	rloc  [][]int32
	tot   []seg
}

func newState(m *model) *state {
	nV := len(m.veh)
	s := &state{m: m, routes: make([][]int32, nV), rcost: make([]int64, nV), routeOf: make([]int32, m.nNodes), w: newWork(m), clsStamp: make([]int32, nV), skipV: -1, onlyV: -1, pos: make([]int32, m.nNodes)}
	for i := range s.routeOf {
		s.routeOf[i] = -1
	}
	if m.segs {
		s.fw = make([][]seg, nV)
		s.bw = make([][]seg, nV)
		if m.brk {
			s.bt = make([][]bpt, nV)
		}
		for v := 0; v < nV; v++ {
			s.refresh(v)
		}
	}
	return s
}

// copyFrom makes s an independent copy of o.
func (s *state) copyFrom(o *state) {
	for v := range o.routes {
		s.routes[v] = append(s.routes[v][:0], o.routes[v]...)
		s.rcost[v] = o.rcost[v]
		if s.m.segs && !(s.light && o.light && o.stale[v]) {
			// (stale segments of a light route are not worth copying)
			s.fw[v] = append(s.fw[v][:0], o.fw[v]...)
			s.bw[v] = append(s.bw[v][:0], o.bw[v]...)
		}
		if s.m.brk {
			s.bt[v] = append(s.bt[v][:0], o.bt[v]...)
		}
	}
	copy(s.routeOf, o.routeOf)
	copy(s.pos, o.pos)
	switch {
	case s.light && o.light:
		for v := range o.routes {
			s.acost[v] = append(s.acost[v][:0], o.acost[v]...)
			s.rloc[v] = append(s.rloc[v][:0], o.rloc[v]...)
		}
		copy(s.tot, o.tot)
		copy(s.stale, o.stale)
	case s.light:
		for v := range o.routes {
			s.lightRoute(v)
			s.stale[v] = false
		}
	case o.light:
		for v := range o.routes {
			if o.stale[v] {
				s.refreshSegs(v)
			}
		}
	}
}

// refresh recomputes cached data of route v after a change.
func (s *state) refresh(v int) {
	if s.light {
		s.refreshLight(v)
		return
	}
	m := s.m
	seq := s.routes[v]
	if !m.segs {
		s.rcost[v] = m.routeCost(v, seq)
	}
	for i, n := range seq {
		s.routeOf[n] = int32(v)
		s.pos[n] = int32(i)
	}
	if !m.segs {
		return
	}
	s.refreshSegs(v)
	if m.brk {
		s.refreshLabels(v)
	}
}

// refreshSegs recomputes the prefix/suffix segments and the cost of route
// v (segment path).
func (s *state) refreshSegs(v int) {
	m := s.m
	seq := s.routes[v]
	t := &m.types[m.veh[v].typ]
	n := len(seq)
	fw := s.fw[v][:0]
	bw := s.bw[v][:0]
	if cap(fw) < n+2 {
		fw = make([]seg, 0, 2*(n+2))
		bw = make([]seg, 0, 2*(n+2))
	}
	fw = fw[:n+2]
	bw = bw[:n+2]
	fw[0] = m.depotSeg(v, false)
	for i := 1; i <= n; i++ {
		m.concatTo(&fw[i], t, &fw[i-1], &m.nseg[seq[i-1]])
	}
	end := m.depotSeg(v, true)
	fw[n+1] = m.concat(t, &fw[n], &end)
	bw[n+1] = end
	for i := n; i >= 1; i-- {
		m.concatTo(&bw[i], t, &m.nseg[seq[i-1]], &bw[i+1])
	}
	st := m.depotSeg(v, false)
	bw[0] = m.concat(t, &st, &bw[1])
	s.fw[v], s.bw[v] = fw, bw
	s.rcost[v] = 0
	if n > 0 {
		s.rcost[v] = fw[n+1].cost + m.veh[v].fixed
	}
}

func (s *state) obj() objective {
	var o objective
	for v := range s.routes {
		o.cost += s.rcost[v]
	}
	for n, r := range s.routeOf {
		if r < 0 {
			o.prio += s.m.prio[n]
			o.count++
		}
	}
	return o
}

// arcCost is the internal travel cost between the locations of two route
// positions (-1 = virtual, free).
func (m *model) arcCost(t *vtype, a, b int32) int64 {
	if a < 0 || b < 0 {
		return 0
	}
	return t.cost[int(a)*m.nLoc+int(b)]
}

// posLoc returns the location at position k of route v (0 = start,
// len+1 = end).
func (s *state) posLoc(v, k int) int32 {
	seq := s.routes[v]
	if k == 0 {
		return s.m.veh[v].start
	}
	if k == len(seq)+1 {
		return s.m.veh[v].end
	}
	return s.m.loc[seq[k-1]]
}

// insertTarget reports whether route v may receive add more tasks
// including node u in this insertion round: the vehicle is allowed and
// compatible with u, it is the first empty route of its vehicle class (the
// others would give the same answer), and max_tasks is not exceeded. It
// returns the vehicle, its type and the cost of using it when its route is
// empty (an empty route costs nothing).
func (s *state) insertTarget(v int, u int32, add int) (vi *vinfo, t *vtype, extra int64, ok bool) {
	m := s.m
	if v == s.skipV || (s.onlyV >= 0 && v != s.onlyV) || !m.compat[v*m.nNodes+int(u)] {
		return nil, nil, 0, false
	}
	seq := s.routes[v]
	if len(seq) == 0 {
		c := m.vclass[v]
		if s.clsStamp[c] == s.stamp {
			return nil, nil, 0, false
		}
		s.clsStamp[c] = s.stamp
	}
	vi = &m.veh[v]
	if len(seq)+add > vi.maxTasks {
		return nil, nil, 0, false
	}
	t = &m.types[vi.typ]
	if len(seq) == 0 {
		extra = vi.fixed + m.arcCost(t, vi.start, vi.end)
	}
	return vi, t, extra, true
}

// bestInsert finds the cheapest feasible insertion of job node u (not a
// shipment half) over all vehicles, skipping each position with probability
// blink (SISR's blinks). It returns vehicle, position (insert before seq[pos])
// and cost delta; v = -1 when none is feasible.
func (s *state) bestInsert(u int32, r *rng, blink float64) (bv, bpos int, bdelta int64) {
	if s.gnb != nil && s.m.segs {
		return s.bestInsertGranular(u, r, blink)
	}
	if s.light {
		return s.bestInsertLight(u, r, blink)
	}
	m := s.m
	bv, bdelta = -1, math.MaxInt64
	s.stamp++
	s.cands = s.cands[:0]
	lu := m.loc[u]
	var useg seg
	if m.segs {
		useg = m.nodeSeg(u)
	}
	for v := range s.routes {
		vi, t, extra, ok := s.insertTarget(v, u, 1)
		if !ok {
			continue
		}
		seq := s.routes[v]
		if m.segs {
			// necessary condition: the start load (all deliveries) fits
			if !m.totalsFit(vi, &s.fw[v][len(seq)+1], &useg) {
				continue
			}
		}
		prev := vi.start
		var fwv []seg
		var pc int64
		if m.segs {
			fwv = s.fw[v]
		}
		cin, cout := t.costRows(lu, m.nLoc)
		for k := 0; k <= len(seq); k++ {
			var d int64
			if fwv != nil {
				// the prefix segments give the next location and the cost
				// of the arc the insertion replaces
				f := &fwv[k+1]
				next := f.last
				d = extra - (f.cost - pc)
				if prev >= 0 {
					d += cin[prev]
				}
				if next >= 0 {
					d += cout[next]
				}
				pc = f.cost
				prev = next
			} else {
				next := vi.end
				if k < len(seq) {
					next = m.loc[seq[k]]
				}
				d = extra + m.arcCost(t, prev, lu) + m.arcCost(t, lu, next) - m.arcCost(t, prev, next)
				prev = next
			}
			if d >= bdelta {
				continue
			}
			if r.blink(blink) {
				continue
			}
			ok := true
			if m.segs {
				ok = m.insertOK(t, vi, &s.fw[v][k], &useg, &s.bw[v][k+1])
				if ok && m.brk {
					ok = s.labelInsertOK(v, k, u)
				}
			}
			if !ok {
				continue
			}
			if !m.fast && !m.brk {
				// exact check deferred: simulate candidates cheapest first
				s.cands = append(s.cands, cand{d, int32(v), int32(k), 0})
				continue
			}
			bv, bpos, bdelta = v, k, d
		}
	}
	if !m.fast && !m.brk {
		s.heapCands()
		for len(s.cands) > 0 {
			c := s.popCand()
			seq := s.routes[c.v]
			buf := append(s.buf[:0], seq[:c.i]...)
			buf = append(buf, u)
			buf = append(buf, seq[c.i:]...)
			s.buf = buf
			if m.feasible(int(c.v), buf, s.w) {
				return int(c.v), int(c.i), c.d
			}
		}
	}
	return
}

// cand is a candidate insertion (vehicle v, positions i and j) with its
// cost delta d, for exact checks in increasing order of d.
type cand struct {
	d    int64
	v    int32
	i, j int32
}

func candLess(a, b *cand) bool {
	if a.d != b.d {
		return a.d < b.d
	}
	if a.v != b.v {
		return a.v < b.v
	}
	if a.i != b.i {
		return a.i < b.i
	}
	return a.j < b.j
}

// heapCands turns s.cands into a binary min-heap (by d, then v, i, j) so
// that candidates can be popped cheapest first; usually only a few are
// popped before a feasible one, which is far cheaper than sorting.
func (s *state) heapCands() {
	h := s.cands
	for i := len(h)/2 - 1; i >= 0; i-- {
		siftDown(h, i)
	}
}

func siftDown(h []cand, i int) {
	n := len(h)
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		m := l
		if r := l + 1; r < n && candLess(&h[r], &h[l]) {
			m = r
		}
		if !candLess(&h[m], &h[i]) {
			return
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
}

// popCand removes and returns the cheapest candidate.
func (s *state) popCand() cand {
	h := s.cands
	c := h[0]
	n := len(h) - 1
	h[0] = h[n]
	s.cands = h[:n]
	siftDown(s.cands, 0)
	return c
}

// bestInsertPair finds the cheapest feasible insertion of shipment pickup p
// and delivery q (pickup at position i, delivery after it) over all vehicles,
// using the general simulation.
func (s *state) bestInsertPair(p, q int32, r *rng, blink float64) (bv, bi, bj int, bdelta int64) {
	m := s.m
	bv, bdelta = -1, math.MaxInt64
	s.stamp++
	s.cands = s.cands[:0]
	for v := range s.routes {
		vi, t, extra, ok := s.insertTarget(v, p, 2)
		if !ok {
			continue
		}
		seq := s.routes[v]
		lp, lq := m.loc[p], m.loc[q]
		at := func(k int) int32 { // location before position k's task
			if k == 0 {
				return vi.start
			}
			return m.loc[seq[k-1]]
		}
		nx := func(k int) int32 {
			if k == len(seq) {
				return vi.end
			}
			return m.loc[seq[k]]
		}
		// load on board in each gap of the current route (gap g precedes seq[g])
		D := m.dims
		gl := s.gapLoads(seq)
		for i := 0; i <= len(seq); i++ {
			a, b := at(i), nx(i)
			di := m.arcCost(t, a, lp) + m.arcCost(t, lp, b) - m.arcCost(t, a, b)
			for j := i; j <= len(seq); j++ {
				// the shipment is on board over original gaps i..j
				over := false
				for d := 0; d < D; d++ {
					if gl[j*D+d]+m.pick[int(p)*D+d] > vi.cap[d] {
						over = true
					}
				}
				if over {
					break
				}
				// candidate: seq[:i] p seq[i:j] q seq[j:]
				var d int64
				if i == j {
					d = extra + m.arcCost(t, a, lp) + m.arcCost(t, lp, lq) + m.arcCost(t, lq, b) - m.arcCost(t, a, b)
				} else {
					c, e := at(j), nx(j)
					d = extra + di + m.arcCost(t, c, lq) + m.arcCost(t, lq, e) - m.arcCost(t, c, e)
				}
				if r.blink(blink) {
					continue
				}
				s.cands = append(s.cands, cand{d, int32(v), int32(i), int32(j)})
			}
		}
	}
	s.heapCands()
	for len(s.cands) > 0 {
		c := s.popCand()
		seq := s.routes[c.v]
		buf := append(s.buf[:0], seq[:c.i]...)
		buf = append(buf, p)
		buf = append(buf, seq[c.i:c.j]...)
		buf = append(buf, q)
		buf = append(buf, seq[c.j:]...)
		s.buf = buf
		if m.feasible(int(c.v), buf, s.w) {
			return int(c.v), int(c.i), int(c.j), c.d
		}
	}
	return
}

// gapLoads returns the load on board in each gap of seq (gap g precedes
// seq[g], gap len(seq) precedes the end), dims values per gap.
func (s *state) gapLoads(seq []int32) []int64 {
	m := s.m
	D := m.dims
	need := (len(seq) + 1) * D
	if cap(s.gl) < need {
		s.gl = make([]int64, 2*need)
	}
	gl := s.gl[:need]
	for d := 0; d < D; d++ {
		gl[d] = 0
	}
	for _, n := range seq {
		for d := 0; d < D; d++ {
			gl[d] += m.del[int(n)*D+d]
		}
	}
	for g, n := range seq {
		for d := 0; d < D; d++ {
			gl[(g+1)*D+d] = gl[g*D+d] - m.del[int(n)*D+d] + m.pick[int(n)*D+d]
		}
	}
	return gl
}

func (s *state) insertAt(v, pos int, u int32) {
	if s.light {
		s.insertAtLight(v, pos, u)
		return
	}
	seq := s.routes[v]
	seq = append(seq, 0)
	copy(seq[pos+1:], seq[pos:])
	seq[pos] = u
	s.routes[v] = seq
	if !s.m.segs || len(s.fw[v]) != len(seq)+1 {
		s.refresh(v)
		return
	}
	// Incremental update: prefixes before pos and suffixes after it keep
	// their values (shifted by one for suffixes).
	m := s.m
	t := &m.types[m.veh[v].typ]
	n := len(seq)
	for i := pos; i < n; i++ {
		s.routeOf[seq[i]] = int32(v)
		s.pos[seq[i]] = int32(i)
	}
	fw := append(s.fw[v], seg{})
	bw := append(s.bw[v], seg{})
	copy(bw[pos+2:], bw[pos+1:n+1])
	for i := pos + 1; i <= n; i++ {
		m.concatTo(&fw[i], t, &fw[i-1], &m.nseg[seq[i-1]])
	}
	fw[n+1] = m.concat(t, &fw[n], &bw[n+1])
	for i := pos + 1; i >= 1; i-- {
		m.concatTo(&bw[i], t, &m.nseg[seq[i-1]], &bw[i+1])
	}
	bw[0] = m.concat(t, &fw[0], &bw[1])
	s.fw[v], s.bw[v] = fw, bw
	s.rcost[v] = fw[n+1].cost + m.veh[v].fixed
	if m.brk {
		s.labelsAfterInsert(v, pos)
	}
}

func (s *state) insertPairAt(v, i, j int, p, q int32) {
	seq := s.routes[v]
	out := make([]int32, 0, len(seq)+2)
	out = append(out, seq[:i]...)
	out = append(out, p)
	out = append(out, seq[i:j]...)
	out = append(out, q)
	out = append(out, seq[j:]...)
	s.routes[v] = out
	s.refresh(v)
}

// removeFrom deletes the nodes for which del is true from route v (no
// refresh) and returns the first and last index removed (in the old route)
// and how many were removed.
func (s *state) removeFrom(v int, del func(int32) bool) (first, last, removed int) {
	seq := s.routes[v]
	k := 0
	first, last = -1, -1
	for i, n := range seq {
		if del(n) {
			s.routeOf[n] = -1
			if first < 0 {
				first = i
			}
			last = i
			continue
		}
		seq[k] = n
		k++
	}
	s.routes[v] = seq[:k]
	return first, last, len(seq) - k
}

// refreshRemoved updates the cached data of route v after removeFrom took
// out r tasks whose old indices spanned [a, b]: prefixes before a and
// suffixes after b keep their values (suffixes shifted by r), so only the
// segments and labels across the removed span are recomputed.
func (s *state) refreshRemoved(v, a, b, r int) {
	m := s.m
	if r == 0 {
		return
	}
	if s.light {
		s.refreshRemovedLight(v, a, b, r)
		return
	}
	if !m.segs || len(s.fw[v]) != len(s.routes[v])+r+2 {
		s.refresh(v)
		return
	}
	seq := s.routes[v]
	n := len(seq)
	for i := a; i < n; i++ {
		s.pos[seq[i]] = int32(i)
	}
	t := &m.types[m.veh[v].typ]
	fw, bw := s.fw[v], s.bw[v]
	// old positions b+2 .. n+r+1 move to b+2-r .. n+1
	copy(bw[b+2-r:], bw[b+2:n+r+2])
	fw, bw = fw[:n+2], bw[:n+2]
	for i := a + 1; i <= n; i++ {
		m.concatTo(&fw[i], t, &fw[i-1], &m.nseg[seq[i-1]])
	}
	fw[n+1] = m.concat(t, &fw[n], &bw[n+1])
	for i := b + 1 - r; i >= 1; i-- {
		m.concatTo(&bw[i], t, &m.nseg[seq[i-1]], &bw[i+1])
	}
	bw[0] = m.concat(t, &fw[0], &bw[1])
	s.fw[v], s.bw[v] = fw, bw
	s.rcost[v] = 0
	if n > 0 {
		s.rcost[v] = fw[n+1].cost + m.veh[v].fixed
	}
	if m.brk {
		s.labelsAfterRemoval(v, a, b, r)
	}
}

// insertNode inserts an unassigned node (job or shipment pickup/delivery,
// the sibling going with it) at its best position; reports success.
func (s *state) insertNode(u int32, r *rng, blink float64) bool {
	m := s.m
	if m.sib[u] >= 0 {
		p, q := u, m.sib[u]
		if m.kind[u] == kindDelivery {
			p, q = q, p
		}
		v, i, j, _ := s.bestInsertPair(p, q, r, blink)
		if v < 0 {
			return false
		}
		s.insertPairAt(v, i, j, p, q)
		return true
	}
	v, pos, _ := s.bestInsert(u, r, blink)
	if v < 0 {
		return false
	}
	s.insertAt(v, pos, u)
	return true
}

// buildNeighbours computes, per node, the other nodes sorted by travel cost
// (first vehicle type), truncated to k: the granular neighbourhood used by
// the string removals and local search (Toth & Vigo 2003).
func (m *model) buildNeighbours(k int) [][]int32 {
	t := &m.types[0]
	nb := make([][]int32, m.nNodes)
	idx := make([]int32, 0, m.nNodes)
	for i := 0; i < m.nNodes; i++ {
		idx = idx[:0]
		for j := 0; j < m.nNodes; j++ {
			if j != i {
				idx = append(idx, int32(j))
			}
		}
		li := m.loc[i]
		sort.Slice(idx, func(a, b int) bool {
			ca := t.cost[int(li)*m.nLoc+int(m.loc[idx[a]])] + t.cost[int(m.loc[idx[a]])*m.nLoc+int(li)]
			cb := t.cost[int(li)*m.nLoc+int(m.loc[idx[b]])] + t.cost[int(m.loc[idx[b]])*m.nLoc+int(li)]
			if ca != cb {
				return ca < cb
			}
			return idx[a] < idx[b]
		})
		n := min(k, len(idx))
		nb[i] = append([]int32(nil), idx[:n]...)
	}
	return nb
}

// totalsFit reports whether a route whose totals are tot can take task
// segment u within vehicle vi's capacity: the sums of deliveries and of
// pickups each fit. Necessary for any insertion; exact on light routes
// (no dimension mixes the two, so the peak load is a total).
func (m *model) totalsFit(vi *vinfo, tot, u *seg) bool {
	for d := 0; d < m.dims; d++ {
		if tot.del[d]+u.del[d] > vi.cap[d] || tot.pick[d]+u.pick[d] > vi.cap[d] {
			return false
		}
	}
	return true
}

// insertOK is the specialised form of segOK(f ⊕ u ⊕ b) for a single-node
// insertion between two feasible segments (time warp of f and b is zero):
// the two Vidal concatenations reduced to the fields that decide
// feasibility, plus loads and travel limits.
func (m *model) insertOK(t *vtype, vi *vinfo, f, u, b *seg) bool {
	var t1, t2 int64
	lu := u.first
	if f.last >= 0 {
		t1 = t.arcs[int(f.last)*m.nLoc+int(lu)].dur
	}
	if b.first >= 0 {
		t2 = t.arcs[int(lu)*m.nLoc+int(b.first)].dur
	}
	delta1 := f.dur - f.tw + t1
	if f.e+delta1 > u.l {
		return false
	}
	dWT1 := max(u.e-delta1-f.l, 0)
	xdur := f.dur + u.dur + t1 + dWT1
	xe := max(u.e-delta1, f.e) - dWT1
	if xe+xdur+t2 > b.l {
		return false
	}
	for d := 0; d < m.dims; d++ {
		pk := max(f.peak[d]+u.del[d]+b.del[d], f.pick[d]+u.peak[d]+b.del[d], f.pick[d]+u.pick[d]+b.peak[d])
		if pk > vi.cap[d] {
			return false
		}
	}
	if vi.maxTravel < math.MaxInt64 && f.tt+t1+t2+b.tt > vi.maxTravel {
		return false
	}
	if vi.maxDist < math.MaxInt64 {
		var d1, d2 int64
		if f.last >= 0 {
			d1 = t.arcs[int(f.last)*m.nLoc+int(lu)].dist
		}
		if b.first >= 0 {
			d2 = t.arcs[int(lu)*m.nLoc+int(b.first)].dist
		}
		if f.dist+d1+d2+b.dist > vi.maxDist {
			return false
		}
	}
	return true
}

// bestInsertGranular is bestInsert restricted to the positions before and
// after each of u's gK nearest assigned neighbours, plus one empty vehicle
// per class (fast path only).
func (s *state) bestInsertGranular(u int32, r *rng, blink float64) (bv, bpos int, bdelta int64) {
	m := s.m
	bv, bdelta = -1, math.MaxInt64
	s.stamp++
	nn := m.nNodes
	lu := m.loc[u]
	useg := &m.nseg[u]
	try := func(v, k int) {
		seq := s.routes[v]
		vi := &m.veh[v]
		t := &m.types[vi.typ]
		var extra int64
		if len(seq) == 0 {
			extra = vi.fixed + m.arcCost(t, vi.start, vi.end) // an empty route costs nothing
		}
		prev, next := vi.start, vi.end
		if k > 0 {
			prev = m.loc[seq[k-1]]
		}
		if k < len(seq) {
			next = m.loc[seq[k]]
		}
		d := extra + m.arcCost(t, prev, lu) + m.arcCost(t, lu, next) - m.arcCost(t, prev, next)
		if d >= bdelta {
			return
		}
		if r.blink(blink) {
			return
		}
		if s.light {
			if !s.lightLimitsOK(v, prev, next, lu) {
				return
			}
		} else if !m.insertOK(t, vi, &s.fw[v][k], useg, &s.bw[v][k+1]) {
			return
		}
		if m.brk {
			if !s.labelInsertOK(v, k, u) {
				return
			}
		} else if !m.fast {
			buf := append(s.buf[:0], seq[:k]...)
			buf = append(buf, u)
			buf = append(buf, seq[k:]...)
			s.buf = buf
			if !m.feasible(v, buf, s.w) {
				return
			}
		}
		bv, bpos, bdelta = v, k, d
	}
	routeOK := func(v int) bool {
		if !m.compat[v*nn+int(u)] {
			return false
		}
		vi := &m.veh[v]
		seq := s.routes[v]
		if len(seq)+1 > vi.maxTasks {
			return false
		}
		if s.light {
			return m.totalsFit(vi, &s.tot[v], useg)
		}
		return m.totalsFit(vi, &s.fw[v][len(seq)+1], useg)
	}
	for k, x := range s.gnb[u] {
		if k >= s.gK {
			break
		}
		v := int(s.routeOf[x])
		if v < 0 || v == s.skipV || !routeOK(v) {
			continue
		}
		p := int(s.pos[x])
		try(v, p)
		try(v, p+1)
	}
	for v := range s.routes {
		if len(s.routes[v]) != 0 || v == s.skipV {
			continue
		}
		c := m.vclass[v]
		if s.clsStamp[c] == s.stamp {
			continue
		}
		s.clsStamp[c] = s.stamp
		if routeOK(v) {
			try(v, 0)
		}
	}
	return
}
