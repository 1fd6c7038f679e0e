package vrp

// maxFastDims is the largest amount dimension handled by the O(1) segment
// path; larger problems use the general simulation.
const maxFastDims = 4

// seg is the concatenable summary of a route segment (Vidal et al. 2013,
// "A hybrid genetic algorithm with adaptive diversity management for a large
// class of vehicle routing problems with time-windows", Section 3.2 and
// Kindervater & Savelsbergh 1997): total duration incl. service and waiting
// (dur), time warp (tw), earliest/latest start of the first service (e, l);
// additive travel time, distance and cost; and loads: del (sum of amounts
// dropped), pick (sum of amounts taken) and peak (largest load on the segment
// relative to its entry, i.e. max over points k of dropped-after-k + taken-up-to-k).
type seg struct {
	dur, tw, e, l  int64
	tt, dist, cost int64
	n              int32
	first, last    int32 // locations, -1 for a virtual (open) end
	del, pick      [maxFastDims]int64
	peak           [maxFastDims]int64
}

// nodeSeg is the segment made of task node i alone (cached on the fast path).
func (m *model) nodeSeg(i int32) seg {
	if m.nseg != nil {
		return m.nseg[i]
	}
	return m.makeNodeSeg(i)
}

func (m *model) makeNodeSeg(i int32) seg {
	// Several windows are relaxed to their hull; setup is ignored (it only
	// adds time), so off the fast path the segment is a relaxation.
	tws := m.tw(i)
	w := tws[0]
	for _, x := range tws[1:] {
		w.End = max(w.End, x.End)
	}
	s := seg{dur: m.serv[i], e: w.Start, l: w.End, n: 1, first: m.loc[i], last: m.loc[i]}
	D := m.dims
	for d := 0; d < D; d++ {
		s.del[d] = m.del[int(i)*D+d]
		s.pick[d] = m.pick[int(i)*D+d]
		s.peak[d] = max(s.del[d], s.pick[d])
	}
	return s
}

// depotSeg is the start (or end) of vehicle v's route.
func (m *model) depotSeg(v int, end bool) seg {
	vi := &m.veh[v]
	l := vi.start
	if end {
		l = vi.end
	}
	return seg{e: vi.tw.Start, l: vi.tw.End, first: l, last: l}
}

// concat returns a ⊕ b for a vehicle of type t.
func (m *model) concat(t *vtype, a, b *seg) seg {
	var r seg
	m.concatTo(&r, t, a, b)
	return r
}

// concatTo stores a ⊕ b in *r (which must not alias a or b); hot loops use
// it to avoid copying the result.
func (m *model) concatTo(r *seg, t *vtype, a, b *seg) {
	var du, ds, c int64
	la, fb := a.last, b.first
	if la >= 0 && fb >= 0 {
		k := int(la)*m.nLoc + int(fb)
		a := &t.arcs[k]
		du, ds, c = a.dur, a.dist, a.cost
	}
	delta := a.dur - a.tw + du
	dWT := max(b.e-delta-a.l, 0)
	dTW := max(a.e+delta-b.l, 0)
	r.dur = a.dur + b.dur + du + dWT
	r.tw = a.tw + b.tw + dTW
	r.e = max(b.e-delta, a.e) - dWT
	r.l = min(b.l-delta, a.l) + dTW
	r.tt = a.tt + b.tt + du
	r.dist = a.dist + b.dist + ds
	r.cost = a.cost + b.cost + c
	r.n = a.n + b.n
	// an open (virtual) start stays virtual
	r.first = a.first
	r.last = b.last
	if b.n == 0 && b.last < 0 {
		r.last = -1
	}
	// Dimensions beyond m.dims are zero in every segment of the model
	// (node and depot segments are built so, and concatenations of zeros
	// stay zero), so only the first m.dims are combined; one and two
	// dimensions, the common cases, without a loop.
	switch m.dims {
	case 0:
	case 1:
		r.del[0] = a.del[0] + b.del[0]
		r.pick[0] = a.pick[0] + b.pick[0]
		r.peak[0] = max(a.peak[0]+b.del[0], a.pick[0]+b.peak[0])
	case 2:
		r.del[0] = a.del[0] + b.del[0]
		r.pick[0] = a.pick[0] + b.pick[0]
		r.peak[0] = max(a.peak[0]+b.del[0], a.pick[0]+b.peak[0])
		r.del[1] = a.del[1] + b.del[1]
		r.pick[1] = a.pick[1] + b.pick[1]
		r.peak[1] = max(a.peak[1]+b.del[1], a.pick[1]+b.peak[1])
	default:
		for d := range m.dims {
			r.del[d] = a.del[d] + b.del[d]
			r.pick[d] = a.pick[d] + b.pick[d]
			r.peak[d] = max(a.peak[d]+b.del[d], a.pick[d]+b.peak[d])
		}
	}
}

// segOK reports whether a complete route segment (start ... end) is
// feasible for vehicle v.
func (m *model) segOK(v int, s *seg) bool {
	if s.tw > 0 {
		return false
	}
	vi := &m.veh[v]
	if int(s.n) > vi.maxTasks || s.tt > vi.maxTravel || s.dist > vi.maxDist {
		return false
	}
	for d := 0; d < m.dims; d++ {
		if s.peak[d] > vi.cap[d] {
			return false
		}
	}
	return true
}
