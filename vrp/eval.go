package vrp

const inf = int64(1) << 62

// work holds reusable buffers for route simulation (one per goroutine).
type work struct {
	load    []int64
	gapLoad []int64 // (len+1)*dims: load while travelling into position g
	mark    []int32
	pos     []int32
	stamp   int32
	tin     []int64 // B+1
	pre     []int64
	post    []int64
	// recorded per gap (len+1)*(B+1) when rec
	preFrom  []bool
	postFrom []bool
	seqBuf   []int32
	seqBuf2  []int32
}

func newWork(m *model) *work {
	B := 0
	for _, v := range m.veh {
		B = max(B, len(v.breaks))
	}
	return &work{
		load: make([]int64, m.dims),
		mark: make([]int32, m.nNodes),
		pos:  make([]int32, m.nNodes),
		tin:  make([]int64, B+1),
		pre:  make([]int64, B+1),
		post: make([]int64, B+1),
	}
}

func (m *model) travel(t *vtype, a, b int32) (dur, dist, cost int64) {
	if a < 0 || b < 0 {
		return 0, 0, 0
	}
	k := int(a)*m.nLoc + int(b)
	x := &t.arcs[k]
	return x.dur, x.dist, x.cost
}

// routeCost returns the internal cost of serving seq with vehicle v (fixed
// cost included when seq is non-empty). It does not check feasibility.
func (m *model) routeCost(v int, seq []int32) int64 {
	if len(seq) == 0 {
		return 0
	}
	vi := &m.veh[v]
	t := &m.types[vi.typ]
	c := vi.fixed
	prev := vi.start
	for _, n := range seq {
		_, _, x := m.travel(t, prev, m.loc[n])
		c += x
		prev = m.loc[n]
	}
	_, _, x := m.travel(t, prev, vi.end)
	return c + x
}

// takeBreak returns the end of break k started at the earliest time >= t,
// or inf when impossible (no window left, or load over max_load).
func (m *model) takeBreak(br *Break, t int64, load []int64) int64 {
	if t >= inf {
		return inf
	}
	if br.MaxLoad != nil {
		for d, x := range load {
			if x > br.MaxLoad[d] {
				return inf
			}
		}
	}
	s, ok := earliest(br.TimeWindows, t)
	if !ok {
		return inf
	}
	return s + br.Service
}

// feasible simulates seq on vehicle v and reports whether every constraint
// holds: skills, precedence, loads, time windows, breaks (exact dynamic
// programme over where each break is taken, see simulate), max tasks,
// travel time and distance.
func (m *model) feasible(v int, seq []int32, w *work) bool {
	return m.simulate(v, seq, w, false)
}

// simulate is the exact, general route check. Breaks: a break scheduled in
// the gap between two stops is taken either at the previous stop's location
// (before travelling) or at the next stop's location (on arrival, before
// service). Because waiting is allowed, the earliest time at which a state
// (gap, number of breaks taken) can be reached dominates, so a forward
// dynamic programme over those states is exact. With rec, the choices are
// recorded in w.preFrom/w.postFrom for schedule reconstruction.
func (m *model) simulate(v int, seq []int32, w *work, rec bool) bool {
	if len(seq) == 0 {
		return true
	}
	vi := &m.veh[v]
	if len(seq) > vi.maxTasks {
		return false
	}
	D := m.dims
	nn := m.nNodes
	// skills and precedence
	w.stamp++
	if w.stamp == 1<<30 {
		for i := range w.mark {
			w.mark[i] = 0
		}
		w.stamp = 1
	}
	for i, n := range seq {
		if !m.compat[v*nn+int(n)] {
			return false
		}
		w.mark[n] = w.stamp
		w.pos[n] = int32(i)
	}
	for i, n := range seq {
		if s := m.sib[n]; s >= 0 {
			if w.mark[s] != w.stamp {
				return false
			}
			if m.kind[n] == kindPickup && w.pos[s] < int32(i) {
				return false
			}
		}
	}
	// loads
	G := len(seq) + 1
	if cap(w.gapLoad) < G*D {
		w.gapLoad = make([]int64, 2*G*D)
	}
	gl := w.gapLoad[:G*D]
	load := w.load
	for d := range load {
		load[d] = 0
	}
	for _, n := range seq {
		for d := 0; d < D; d++ {
			load[d] += m.del[int(n)*D+d]
		}
	}
	for d := 0; d < D; d++ {
		if load[d] > vi.cap[d] {
			return false
		}
		gl[d] = load[d]
	}
	for i, n := range seq {
		for d := 0; d < D; d++ {
			load[d] += m.pick[int(n)*D+d] - m.del[int(n)*D+d]
			if load[d] > vi.cap[d] || load[d] < 0 {
				return false
			}
			gl[(i+1)*D+d] = load[d]
		}
	}
	// travel limits
	t := &m.types[vi.typ]
	var tt, dist int64
	prev := vi.start
	for _, n := range seq {
		du, ds, _ := m.travel(t, prev, m.loc[n])
		tt += du
		dist += ds
		prev = m.loc[n]
	}
	du, ds, _ := m.travel(t, prev, vi.end)
	tt += du
	dist += ds
	if tt > vi.maxTravel || dist > vi.maxDist {
		return false
	}
	B := len(vi.breaks)
	if B == 0 && !rec {
		// plain forward pass
		tm := vi.tw.Start
		prev = vi.start
		for _, n := range seq {
			l := m.loc[n]
			du, _, _ := m.travel(t, prev, l)
			s, ok := earliest(m.tw(n), tm+du)
			if !ok {
				return false
			}
			tm = s + m.serv[n]
			if prev != l {
				tm += m.setup[n]
			}
			prev = l
		}
		du, _, _ := m.travel(t, prev, vi.end)
		return tm+du <= vi.tw.End
	}
	if rec {
		need := G * (B + 1)
		if cap(w.preFrom) < need {
			w.preFrom = make([]bool, 2*need)
			w.postFrom = make([]bool, 2*need)
		}
		w.preFrom = w.preFrom[:need]
		w.postFrom = w.postFrom[:need]
	}
	tin, pre, post := w.tin[:B+1], w.pre[:B+1], w.post[:B+1]
	for b := range tin {
		tin[b] = inf
	}
	tin[0] = vi.tw.Start
	prev = vi.start
	for g := 0; g < G; g++ {
		var l int32
		if g < len(seq) {
			l = m.loc[seq[g]]
		} else {
			l = vi.end
		}
		gload := gl[g*D : (g+1)*D]
		// breaks at the previous location
		for b := 0; b <= B; b++ {
			pre[b] = tin[b]
			from := false
			if b > 0 && prev >= 0 {
				if x := m.takeBreak(&vi.breaks[b-1], pre[b-1], gload); x < pre[b] {
					pre[b] = x
					from = true
				}
			}
			if rec {
				w.preFrom[g*(B+1)+b] = from
			}
		}
		dl := l
		if dl < 0 && g == len(seq) {
			dl = prev // open end: breaks at the last stop
		}
		du, _, _ := m.travel(t, prev, dl)
		for b := 0; b <= B; b++ {
			post[b] = inf
			if pre[b] < inf {
				post[b] = pre[b] + du
			}
			from := false
			if b > 0 {
				if x := m.takeBreak(&vi.breaks[b-1], post[b-1], gload); x < post[b] {
					post[b] = x
					from = true
				}
			}
			if rec {
				w.postFrom[g*(B+1)+b] = from
			}
		}
		if g == len(seq) {
			return post[B] <= vi.tw.End
		}
		n := seq[g]
		any := false
		for b := 0; b <= B; b++ {
			tin[b] = inf
			if post[b] >= inf {
				continue
			}
			s, ok := earliest(m.tw(n), post[b])
			if !ok {
				continue
			}
			e := s + m.serv[n]
			if prev != l {
				e += m.setup[n]
			}
			tin[b] = e
			any = true
		}
		if !any {
			return false
		}
		prev = l
	}
	return false
}

// breakPlan reconstructs, after a successful simulate(..., rec=true), how many
// breaks are taken before travel (nPre[g]) and after travel (nPost[g]) in
// each gap g (gap g precedes seq[g]; gap len(seq) precedes the end).
func (m *model) breakPlan(v int, nseq int, w *work, nPre, nPost []int) {
	B := len(m.veh[v].breaks)
	b := B
	for g := nseq; g >= 0; g-- {
		c := 0
		for b > 0 && w.postFrom[g*(B+1)+b] {
			b--
			c++
		}
		nPost[g] = c
		c = 0
		for b > 0 && w.preFrom[g*(B+1)+b] {
			b--
			c++
		}
		nPre[g] = c
	}
}
