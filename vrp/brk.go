package vrp

// Constant-time insertion checks for routes with at most one break and
// tasks with several time windows (no setup, no shipments).
//
// Each route caches, per position, four scalars (the "break slack" of the
// route, in the spirit of the forward/backward time labels of Vidal et al.
// 2013, Section 3.2, and Kindervater & Savelsbergh 1997):
//
//   - e0[i], e1[i]: the earliest time at which service at position i is done
//     without / with the break taken (the break may be taken at location i
//     after its service, before travelling on). Position 0 is the start.
//   - l0[i], l1[i]: the latest arrival time at position i (n+1 is the end)
//     from which the rest of the route is feasible without / with the break
//     still to take (the break may be taken on arrival, before service).
//
// Arriving earlier never hurts (waiting is allowed), so feasibility of a
// suffix is a threshold on the arrival time and a single latest time per
// state is exact; likewise the earliest completion time per state is exact
// for prefixes (the dynamic programme of simulate with one break). A route
// prefix ⊕ middle ⊕ suffix is then feasible iff the labels meet: with
// (E0, E1) propagated over the middle tasks and d the travel time into the
// suffix, E1 + d ≤ l0 or E0 + d ≤ l1.

// bpt holds the time labels of one route position (see above).
type bpt struct {
	e0, e1, l0, l1 int64
}

// negInf is the "infeasible" latest time.
const negInf = -inf

// brkEligible reports whether insertions can be checked exactly with the
// time labels: no setup times, at most one break per vehicle and no break
// max_load (segments must be kept for loads and travel limits).
func (m *model) brkEligible() bool {
	if !m.segs {
		return false
	}
	for _, s := range m.setup {
		if s != 0 {
			return false
		}
	}
	for v := range m.veh {
		br := m.veh[v].breaks
		if len(br) > 1 {
			return false
		}
		if len(br) == 1 && br[0].MaxLoad != nil {
			return false
		}
	}
	return true
}

// latestBefore returns the latest arrival time t such that a stop with the
// given windows and service time started at the earliest window time >= t
// finishes by bound, or negInf when there is none. It is the inverse of
// earliest(tws, t) + serv <= bound: t <= max over windows w with
// w.Start <= min(w.End, bound-serv) of min(w.End, bound-serv).
func latestBefore(tws []TimeWindow, serv, bound int64) int64 {
	if bound <= negInf/2 {
		return negInf
	}
	best := negInf
	lim := bound - serv
	for _, w := range tws {
		x := min(w.End, lim)
		if w.Start <= x && x > best {
			best = x
		}
	}
	return best
}

// serveAt returns when service of node n arriving at t is done, or inf.
func (m *model) serveAt(n int32, t int64) int64 {
	if t >= inf {
		return inf
	}
	s, ok := earliest(m.tw(n), t)
	if !ok {
		return inf
	}
	return s + m.serv[n]
}

// breakAt returns the end of vehicle v's break started at the earliest time
// >= t, or inf (also when v has no break).
func (m *model) breakAt(vi *vinfo, t int64) int64 {
	if len(vi.breaks) == 0 || t >= inf {
		return inf
	}
	br := &vi.breaks[0]
	s, ok := earliest(br.TimeWindows, t)
	if !ok {
		return inf
	}
	return s + br.Service
}

// endTravel is the travel time from the last location to the end of v's
// route, as simulate counts it: with a break and an open end the trailing
// break happens at the last stop (travel from the stop to itself).
func (m *model) endTravel(vi *vinfo, t *vtype, last int32) int64 {
	dl := vi.end
	if dl < 0 && len(vi.breaks) > 0 {
		dl = last
	}
	du, _, _ := m.travel(t, last, dl)
	return du
}

// fwdStep returns the forward labels after serving node u, reached from
// labels (e0, e1) with travel time du.
func (m *model) fwdStep(vi *vinfo, u int32, du, e0, e1 int64) (int64, int64) {
	a0 := m.serveAt(u, e0+du)
	var a1 int64 = inf
	if e1 < inf {
		a1 = e1 + du
	}
	if e0 < inf {
		a1 = min(a1, m.breakAt(vi, e0+du))
	}
	a1 = m.serveAt(u, a1)
	return a0, min(a1, m.breakAt(vi, a0))
}

// bwdStep returns the backward labels on arrival at node u, followed by
// travel du to a position with labels (l0, l1).
func (m *model) bwdStep(vi *vinfo, u int32, du, l0, l1 int64) (int64, int64) {
	var brk []TimeWindow
	var bs int64
	if len(vi.breaks) > 0 {
		brk, bs = vi.breaks[0].TimeWindows, vi.breaks[0].Service
	}
	tws := m.tw(u)
	n0 := negInf
	if l0 > negInf/2 {
		n0 = latestBefore(tws, m.serv[u], l0-du)
	}
	if brk == nil {
		return n0, negInf
	}
	// after service of u: break at u then travel, or break later
	f := negInf
	if l0 > negInf/2 {
		f = latestBefore(brk, bs, l0-du)
	}
	if l1 > negInf/2 {
		f = max(f, l1-du)
	}
	n1 := latestBefore(tws, m.serv[u], f)
	// or break on arrival at u, then serve u and continue without break
	return n0, max(n1, latestBefore(brk, bs, n0))
}

// refreshLabels recomputes the time labels of route v.
func (s *state) refreshLabels(v int) {
	m := s.m
	seq := s.routes[v]
	vi := &m.veh[v]
	t := &m.types[vi.typ]
	n := len(seq)
	bp := s.bt[v]
	if cap(bp) < n+2 {
		bp = make([]bpt, n+2, 2*(n+2))
	}
	bp = bp[:n+2]
	// forward
	e0 := vi.tw.Start
	e1 := inf
	if vi.start >= 0 {
		e1 = m.breakAt(vi, e0)
	}
	bp[0].e0, bp[0].e1 = e0, e1
	prev := vi.start
	for i, u := range seq {
		l := m.loc[u]
		du, _, _ := m.travel(t, prev, l)
		e0, e1 = m.fwdStep(vi, u, du, e0, e1)
		bp[i+1].e0, bp[i+1].e1 = e0, e1
		prev = l
	}
	bp[n+1].e0, bp[n+1].e1 = inf, inf // unused
	// backward
	l0 := vi.tw.End
	var l1 int64 = negInf
	if len(vi.breaks) > 0 {
		l1 = latestBefore(vi.breaks[0].TimeWindows, vi.breaks[0].Service, vi.tw.End)
	}
	bp[n+1].l0, bp[n+1].l1 = l0, l1
	for i := n - 1; i >= 0; i-- {
		bp[i+1].l0, bp[i+1].l1 = m.bwdStep(vi, seq[i], s.nextTravel(v, i), bp[i+2].l0, bp[i+2].l1)
	}
	bp[0].l0, bp[0].l1 = negInf, negInf // unused
	s.bt[v] = bp
}

// nextTravel is the travel time from seq[i] of route v to the next position.
func (s *state) nextTravel(v, i int) int64 {
	m := s.m
	seq := s.routes[v]
	vi := &m.veh[v]
	t := &m.types[vi.typ]
	if i == len(seq)-1 {
		return m.endTravel(vi, t, m.loc[seq[i]])
	}
	du, _, _ := m.travel(t, m.loc[seq[i]], m.loc[seq[i+1]])
	return du
}

// labelsAfterRemoval updates the labels of route v after r tasks whose old
// indices spanned [a, b] were removed: forward labels before a and backward
// labels after b (shifted by r) are kept. Beyond the span, a recomputed
// label equal to the task's old one ends its pass, as in
// labelsAfterInsert (the entries moved with their tasks).
func (s *state) labelsAfterRemoval(v, a, b, r int) {
	m := s.m
	seq := s.routes[v]
	vi := &m.veh[v]
	t := &m.types[vi.typ]
	n := len(seq)
	bp := s.bt[v]
	copy(bp[b+2-r:], bp[b+2:n+r+2])
	bp = bp[:n+2]
	s.bt[v] = bp
	prev := vi.start
	if a > 0 {
		prev = m.loc[seq[a-1]]
	}
	for i := a; i < n; i++ {
		u := seq[i]
		du, _, _ := m.travel(t, prev, m.loc[u])
		e0, e1 := m.fwdStep(vi, u, du, bp[i].e0, bp[i].e1)
		if i > b-r && e0 == bp[i+1].e0 && e1 == bp[i+1].e1 {
			break
		}
		bp[i+1].e0, bp[i+1].e1 = e0, e1
		prev = m.loc[u]
	}
	bp[n+1].e0, bp[n+1].e1 = inf, inf
	for i := b - r; i >= 0; i-- {
		l0, l1 := m.bwdStep(vi, seq[i], s.nextTravel(v, i), bp[i+2].l0, bp[i+2].l1)
		if i < a && l0 == bp[i+1].l0 && l1 == bp[i+1].l1 {
			break
		}
		bp[i+1].l0, bp[i+1].l1 = l0, l1
	}
}

// labelsAfterInsert updates the labels of route v after a task was inserted
// at index pos (labels valid for the route without it). Forward labels are
// recomputed from the new task on and backward labels from it down, each
// stopping as soon as a label equals its old value (waiting absorbed the
// change, so the rest is unchanged).
func (s *state) labelsAfterInsert(v, pos int) {
	m := s.m
	seq := s.routes[v]
	vi := &m.veh[v]
	t := &m.types[vi.typ]
	n := len(seq)
	bp := append(s.bt[v], bpt{})
	copy(bp[pos+2:n+2], bp[pos+1:n+1])
	s.bt[v] = bp
	prev := vi.start
	if pos > 0 {
		prev = m.loc[seq[pos-1]]
	}
	for i := pos; i < n; i++ {
		u := seq[i]
		du, _, _ := m.travel(t, prev, m.loc[u])
		e0, e1 := m.fwdStep(vi, u, du, bp[i].e0, bp[i].e1)
		if i > pos && e0 == bp[i+1].e0 && e1 == bp[i+1].e1 {
			break
		}
		bp[i+1].e0, bp[i+1].e1 = e0, e1
		prev = m.loc[u]
	}
	for i := pos; i >= 0; i-- {
		l0, l1 := m.bwdStep(vi, seq[i], s.nextTravel(v, i), bp[i+2].l0, bp[i+2].l1)
		if i < pos && l0 == bp[i+1].l0 && l1 == bp[i+1].l1 {
			break
		}
		bp[i+1].l0, bp[i+1].l1 = l0, l1
	}
}

// labelInsertOK reports exactly whether inserting job node u before
// position k of route v (k = len means last) keeps the route's times
// feasible (windows, shift, break). Loads and travel limits are checked
// separately (insertOK).
func (s *state) labelInsertOK(v, k int, u int32) bool {
	m := s.m
	seq := s.routes[v]
	vi := &m.veh[v]
	t := &m.types[vi.typ]
	bp := s.bt[v]
	lu := m.loc[u]
	a := vi.start
	if k > 0 {
		a = m.loc[seq[k-1]]
	}
	d1, _, _ := m.travel(t, a, lu)
	var d2 int64
	if k == len(seq) {
		d2 = m.endTravel(vi, t, lu)
	} else {
		d2, _, _ = m.travel(t, lu, m.loc[seq[k]])
	}
	p, q := &bp[k], &bp[k+1]
	// Necessary conditions first (most candidates fail them): u cannot
	// be reached before the earlier of the two completion times at k, nor
	// served before or after the hull of its windows, and the next
	// position must still be reached by its later latest arrival; a break
	// only adds time.
	hull := &m.nseg[u] // e, l: the hull of u's windows
	lo := min(p.e0, p.e1)
	if lo >= inf || lo+d1 > hull.l || max(lo+d1, hull.e)+m.serv[u]+d2 > max(q.l0, q.l1) {
		return false
	}
	f0 := inf
	if p.e0 < inf {
		f0 = m.serveAt(u, p.e0+d1)
	}
	if len(vi.breaks) == 0 {
		return f0 < inf && f0+d2 <= q.l0
	}
	// break still to take after u (at u before leaving, or later)
	if f0 < inf && (f0+d2 <= q.l1 || m.breakAt(vi, f0)+d2 <= q.l0) {
		return true
	}
	// break before u: already taken, or on arrival at u
	var arr int64 = inf
	if p.e1 < inf {
		arr = p.e1 + d1
	}
	if p.e0 < inf {
		arr = min(arr, m.breakAt(vi, p.e0+d1))
	}
	f1 := m.serveAt(u, arr)
	return f1 < inf && f1+d2 <= q.l0
}

// labelCompatible reports whether the time labels cached for vehicle a's
// route are valid for vehicle b (same matrices, depots, shift and break).
func (m *model) labelCompatible(a, b int) bool {
	if a == b {
		return true
	}
	if !m.segCompatible(a, b) {
		return false
	}
	ba, bb := m.veh[a].breaks, m.veh[b].breaks
	if len(ba) != len(bb) {
		return false
	}
	for i := range ba {
		if ba[i].Service != bb[i].Service || len(ba[i].TimeWindows) != len(bb[i].TimeWindows) {
			return false
		}
		for k, w := range ba[i].TimeWindows {
			if bb[i].TimeWindows[k] != w {
				return false
			}
		}
	}
	return true
}

// labelPiecesOK reports exactly whether vehicle v can serve the
// concatenation of pieces on time (windows, shift, break): forward labels
// are taken from a leading route prefix (or the start), propagated over the
// middle tasks and joined with the backward labels of a trailing route
// suffix (or the end). Loads and limits are checked by the segments.
func (s *state) labelPiecesOK(v int, ps []piece) bool {
	m := s.m
	vi := &m.veh[v]
	t := &m.types[vi.typ]
	e0 := vi.tw.Start
	e1 := inf
	if vi.start >= 0 {
		e1 = m.breakAt(vi, e0)
	}
	prev := vi.start
	started := false
	last := len(ps) - 1
	for last >= 0 && ps[last].a == ps[last].b {
		last--
	}
	for k := 0; k <= last; k++ {
		p := ps[k]
		if p.a == p.b {
			continue
		}
		seq := s.routes[p.r]
		first := !started
		started = true
		if first && !p.rev && p.a == 0 && m.labelCompatible(p.r, v) {
			// leading prefix: its labels are cached
			bp := &s.bt[p.r][p.b]
			e0, e1 = bp.e0, bp.e1
			prev = m.loc[seq[p.b-1]]
			continue
		}
		if k == last && !p.rev && p.b == len(seq) && m.labelCompatible(p.r, v) {
			// trailing suffix: join with its cached backward labels
			du, _, _ := m.travel(t, prev, m.loc[seq[p.a]])
			q := &s.bt[p.r][p.a+1]
			return (e1 < inf && e1+du <= q.l0) || (e0 < inf && e0+du <= q.l1)
		}
		step := func(u int32) {
			l := m.loc[u]
			du, _, _ := m.travel(t, prev, l)
			e0, e1 = m.fwdStep(vi, u, du, e0, e1)
			prev = l
		}
		if p.rev {
			for i := p.b - 1; i >= p.a; i-- {
				step(seq[i])
			}
		} else {
			for i := p.a; i < p.b; i++ {
				step(seq[i])
			}
		}
		if e0 >= inf && e1 >= inf {
			return false
		}
	}
	du := m.endTravel(vi, t, prev)
	if len(vi.breaks) == 0 {
		return e0 < inf && e0+du <= vi.tw.End
	}
	if e1 < inf && e1+du <= vi.tw.End {
		return true
	}
	l1 := latestBefore(vi.breaks[0].TimeWindows, vi.breaks[0].Service, vi.tw.End)
	return e0 < inf && e0+du <= l1
}
