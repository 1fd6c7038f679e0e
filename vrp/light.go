package vrp

import "math"

// Light routes for the ruin-and-recreate search on the label path.
//
// On the label path (brk.go) the time labels decide the timing of an
// insertion exactly, so the prefix/suffix segments are only needed for
// loads, travel limits and costs. When no load dimension mixes pickups and
// deliveries, a route's peak load in each dimension is its total, and
// travel limits and costs of an insertion follow from route totals and the
// arcs it replaces. SISR workers on such problems ("light" states) then
// keep per route only the costs of its arcs, its task locations and its
// totals, next to the labels, instead of re-concatenating both segment arrays after every
// insertion and removal (that re-concatenation was a third of the search
// time on porto-200-tw). The segments of a route are rebuilt on demand
// (ensureSegs) before the local search reads them. Insertion decisions are
// the same as with segments (TestLightSameSearch).

// lightEligible reports whether light states are exact for m: the label
// path, and in every load dimension either no task picks up or no task
// delivers.
func (m *model) lightEligible() bool {
	if !m.brk {
		return false
	}
	D := m.dims
	for d := 0; d < D; d++ {
		var del, pick bool
		for n := 0; n < m.nNodes; n++ {
			del = del || m.del[n*D+d] != 0
			pick = pick || m.pick[n*D+d] != 0
		}
		if del && pick {
			return false
		}
	}
	return true
}

// setLight switches s to light routes (on) or back to full segments (off,
// rebuilding every stale segment array).
func (s *state) setLight(on bool) {
	m := s.m
	if on == s.light {
		return
	}
	if !on {
		for v := range s.routes {
			s.ensureSegs(v)
		}
		s.light = false
		return
	}
	nV := len(m.veh)
	if s.stale == nil {
		s.stale = make([]bool, nV)
		s.acost = make([][]int64, nV)
		s.rloc = make([][]int32, nV)
		s.tot = make([]seg, nV)
	}
	s.light = true
	for v := range s.routes {
		s.lightRoute(v)
	}
}

// lightRoute recomputes the arc costs, totals and cost of route v from its
// sequence (not its positions or labels).
func (s *state) lightRoute(v int) {
	m := s.m
	seq := s.routes[v]
	vi := &m.veh[v]
	t := &m.types[vi.typ]
	ac := s.acost[v][:0]
	rl := s.rloc[v][:0]
	tot := seg{n: int32(len(seq))}
	prev := vi.start
	D := m.dims
	for _, u := range seq {
		l := m.loc[u]
		rl = append(rl, l)
		du, ds, c := m.travel(t, prev, l)
		ac = append(ac, c)
		tot.tt, tot.dist, tot.cost = tot.tt+du, tot.dist+ds, tot.cost+c
		for d := 0; d < D; d++ {
			tot.del[d] += m.del[int(u)*D+d]
			tot.pick[d] += m.pick[int(u)*D+d]
		}
		prev = l
	}
	du, ds, c := m.travel(t, prev, vi.end)
	ac = append(ac, c)
	tot.tt, tot.dist, tot.cost = tot.tt+du, tot.dist+ds, tot.cost+c
	s.acost[v], s.rloc[v], s.tot[v] = ac, rl, tot
	s.rcost[v] = 0
	if len(seq) > 0 {
		s.rcost[v] = tot.cost + vi.fixed
	}
}

// refreshLight is refresh for a light state: indices, arc costs, totals
// and labels; the segments go stale.
func (s *state) refreshLight(v int) {
	for i, n := range s.routes[v] {
		s.routeOf[n] = int32(v)
		s.pos[n] = int32(i)
	}
	s.lightRoute(v)
	s.refreshLabels(v)
	s.stale[v] = true
}

// ensureSegs rebuilds the segments of route v if they are stale.
func (s *state) ensureSegs(v int) {
	if s.stale == nil || !s.stale[v] {
		return
	}
	s.stale[v] = false
	s.refreshSegs(v)
}

// insertAtLight is insertAt for a light state: u goes before seq[pos].
func (s *state) insertAtLight(v, pos int, u int32) {
	m := s.m
	seq := s.routes[v]
	seq = append(seq, 0)
	copy(seq[pos+1:], seq[pos:])
	seq[pos] = u
	s.routes[v] = seq
	n := len(seq)
	for i := pos; i < n; i++ {
		s.routeOf[seq[i]] = int32(v)
		s.pos[seq[i]] = int32(i)
	}
	vi := &m.veh[v]
	t := &m.types[vi.typ]
	prev, next := vi.start, vi.end
	if pos > 0 {
		prev = m.loc[seq[pos-1]]
	}
	if pos < n-1 {
		next = m.loc[seq[pos+1]]
	}
	lu := m.loc[u]
	d1, s1, c1 := m.travel(t, prev, lu)
	d2, s2, c2 := m.travel(t, lu, next)
	d0, s0, c0 := m.travel(t, prev, next)
	ac := append(s.acost[v], 0)
	copy(ac[pos+2:], ac[pos+1:n])
	ac[pos], ac[pos+1] = c1, c2
	s.acost[v] = ac
	rl := append(s.rloc[v], 0)
	copy(rl[pos+1:], rl[pos:n-1])
	rl[pos] = lu
	s.rloc[v] = rl
	tot := &s.tot[v]
	tot.n++
	tot.tt += d1 + d2 - d0
	tot.dist += s1 + s2 - s0
	tot.cost += c1 + c2 - c0
	D := m.dims
	for d := 0; d < D; d++ {
		tot.del[d] += m.del[int(u)*D+d]
		tot.pick[d] += m.pick[int(u)*D+d]
	}
	s.rcost[v] = tot.cost + vi.fixed
	s.labelsAfterInsert(v, pos)
	s.stale[v] = true
}

// refreshRemovedLight is refreshRemoved for a light state.
func (s *state) refreshRemovedLight(v, a, b, r int) {
	seq := s.routes[v]
	for i := a; i < len(seq); i++ {
		s.pos[seq[i]] = int32(i)
	}
	s.lightRoute(v)
	s.labelsAfterRemoval(v, a, b, r)
	s.stale[v] = true
}

// bestInsertLight is bestInsert for a light state (job node u, no
// shipment): the cost delta from the route's arc costs and the task's cost
// rows, loads from the route totals, travel limits from the totals and the
// replaced arc, timing from the labels. The scan over the positions is
// kept tight (locations from rloc, no branch for virtual ends inside the
// route); the few positions cheaper than the best so far go to lightCand.
func (s *state) bestInsertLight(u int32, r *rng, blink float64) (bv, bpos int, bdelta int64) {
	m := s.m
	bv, bdelta = -1, math.MaxInt64
	s.stamp++
	lu := m.loc[u]
	useg := &m.nseg[u]
	for v := range s.routes {
		vi, t, extra, ok := s.insertTarget(v, u, 1)
		if !ok || !m.totalsFit(vi, &s.tot[v], useg) {
			continue
		}
		locs := s.rloc[v]
		ac := s.acost[v]
		n := len(locs)
		ac = ac[:n+1]
		cin, cout := t.costRows(lu, m.nLoc)
		// first position: from the start (maybe virtual)
		next := vi.end
		if n > 0 {
			next = locs[0]
		}
		d := extra - ac[0]
		if vi.start >= 0 {
			d += cin[vi.start]
		}
		if next >= 0 {
			d += cout[next]
		}
		if d < bdelta && s.lightCand(v, 0, u, vi.start, next, r, blink) {
			bv, bpos, bdelta = v, 0, d
		}
		if n == 0 {
			continue
		}
		// between two tasks
		for k := 1; k < n; k++ {
			d := extra - ac[k] + cin[locs[k-1]] + cout[locs[k]]
			if d < bdelta && s.lightCand(v, k, u, locs[k-1], locs[k], r, blink) {
				bv, bpos, bdelta = v, k, d
			}
		}
		// last position: to the end (maybe virtual)
		d = extra - ac[n] + cin[locs[n-1]]
		if vi.end >= 0 {
			d += cout[vi.end]
		}
		if d < bdelta && s.lightCand(v, n, u, locs[n-1], vi.end, r, blink) {
			bv, bpos, bdelta = v, n, d
		}
	}
	return
}

// lightCand decides a position of bestInsertLight cheaper than the best so
// far: the blink, travel limits and the exact time labels.
func (s *state) lightCand(v, k int, u int32, prev, next int32, r *rng, blink float64) bool {
	if r.blink(blink) {
		return false
	}
	if !s.lightLimitsOK(v, prev, next, s.m.loc[u]) {
		return false
	}
	return s.labelInsertOK(v, k, u)
}

// lightLimitsOK reports whether route v of a light state stays within its
// vehicle's travel time and distance limits with location lu inserted
// between locations prev and next (-1: a virtual end).
func (s *state) lightLimitsOK(v int, prev, next, lu int32) bool {
	m := s.m
	vi := &m.veh[v]
	if vi.maxTravel == math.MaxInt64 && vi.maxDist == math.MaxInt64 {
		return true
	}
	t := &m.types[vi.typ]
	tot := &s.tot[v]
	d1, s1, _ := m.travel(t, prev, lu)
	d2, s2, _ := m.travel(t, lu, next)
	d0, s0, _ := m.travel(t, prev, next)
	return tot.tt+d1+d2-d0 <= vi.maxTravel && tot.dist+s1+s2-s0 <= vi.maxDist
}
