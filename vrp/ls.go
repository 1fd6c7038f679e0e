package vrp

// Local search with granular neighbourhoods (Toth & Vigo 2003, "The granular
// tabu search and its application to the vehicle-routing problem"): for each
// task u and each of its K nearest tasks v, the moves relocate, swap, or-opt
// (segments of 2-3), 2-opt*, cross-exchange (segments up to 3) and intra-route
// 2-opt are tried, first improvement. On the fast path a candidate route is
// evaluated in O(1) (plus the length of short middle pieces) by concatenating
// the cached prefix/suffix segments (Vidal et al. 2013); otherwise it is
// rebuilt and simulated.

// piece is a run of tasks seq_r[a:b] of the current solution, optionally
// reversed, used to describe a candidate route.
type piece struct {
	r, a, b int
	rev     bool
}

// segCompatible reports whether prefix/suffix segments cached for vehicle a
// are valid for vehicle b (same matrices, depots and shift).
func (m *model) segCompatible(a, b int) bool {
	va, vb := &m.veh[a], &m.veh[b]
	return va.typ == vb.typ && va.start == vb.start && va.end == vb.end && va.tw == vb.tw
}

// evalPieces returns the internal cost and feasibility of vehicle v serving
// the concatenation of pieces.
func (s *state) evalPieces(v int, ps []piece) (int64, bool) {
	c, ok := s.evalPiecesCheap(v, ps)
	return c, ok && s.confirmPieces(v, ps)
}

// evalPiecesCheap returns the cost of vehicle v serving the pieces and
// whether the segment check passes: exact on the fast path, a necessary
// condition otherwise (confirmPieces decides).
func (s *state) evalPiecesCheap(v int, ps []piece) (int64, bool) {
	m := s.m
	n := 0
	for _, p := range ps {
		n += p.b - p.a
	}
	if n == 0 {
		return 0, true
	}
	if !m.segs {
		// cost only; confirmPieces simulates
		buf := s.buildPieces(s.buf[:0], ps)
		s.buf = buf
		return m.routeCost(v, buf), true
	}
	return s.evalPiecesSeg(v, ps, n)
}

// confirmPieces completes evalPiecesCheap off the fast path: the time labels
// decide in O(1) plus the middle pieces when m.brk, otherwise the rebuilt
// route is simulated (skills, precedence, loads, windows, breaks, limits).
func (s *state) confirmPieces(v int, ps []piece) bool {
	m := s.m
	if m.fast {
		return true
	}
	n := 0
	for _, p := range ps {
		n += p.b - p.a
	}
	if n == 0 {
		return true
	}
	if m.brk {
		return s.labelPiecesOK(v, ps)
	}
	if n > m.veh[v].maxTasks {
		return false
	}
	buf := s.buildPieces(s.buf[:0], ps)
	s.buf = buf
	return m.feasible(v, buf, s.w)
}

// evalPiecesSeg is evalPieces by segment concatenation: exact on the fast
// path, a relaxation (necessary condition) otherwise.
func (s *state) evalPiecesSeg(v int, ps []piece, n int) (int64, bool) {
	m := s.m
	vi := &m.veh[v]
	if n > vi.maxTasks {
		return 0, false
	}
	t := &m.types[vi.typ]
	nn := m.nNodes
	var acc seg
	started := false
	last := len(ps) - 1
	for k, p := range ps {
		if p.b == p.a {
			if k == last && started {
				e := m.depotSeg(v, true)
				acc = m.concat(t, &acc, &e)
			}
			continue
		}
		seq := s.routes[p.r]
		if !started {
			started = true
			if !p.rev && p.a == 0 && m.segCompatible(p.r, v) {
				acc = s.fw[p.r][p.b]
				if k == last && p.b == len(seq) {
					acc = s.fw[p.r][p.b+1]
				} else if k == last {
					e := m.depotSeg(v, true)
					acc = m.concat(t, &acc, &e)
				}
				if p.r != v {
					for _, x := range seq[p.a:p.b] {
						if !m.compat[v*nn+int(x)] {
							return 0, false
						}
					}
				}
				continue
			}
			acc = m.depotSeg(v, false)
		}
		if p.r != v {
			for _, x := range seq[p.a:p.b] {
				if !m.compat[v*nn+int(x)] {
					return 0, false
				}
			}
		}
		if !p.rev && p.b == len(seq) && k == last && m.segCompatible(p.r, v) {
			acc = m.concat(t, &acc, &s.bw[p.r][p.a+1])
			break
		}
		if p.rev {
			for i := p.b - 1; i >= p.a; i-- {
				ns := m.nodeSeg(seq[i])
				acc = m.concat(t, &acc, &ns)
			}
		} else {
			for i := p.a; i < p.b; i++ {
				ns := m.nodeSeg(seq[i])
				acc = m.concat(t, &acc, &ns)
			}
		}
		if k == last {
			e := m.depotSeg(v, true)
			acc = m.concat(t, &acc, &e)
		}
	}
	if !m.segOK(v, &acc) {
		return 0, false
	}
	return acc.cost + vi.fixed, true
}

func (s *state) buildPieces(buf []int32, ps []piece) []int32 {
	for _, p := range ps {
		seq := s.routes[p.r]
		if p.rev {
			for i := p.b - 1; i >= p.a; i-- {
				buf = append(buf, seq[i])
			}
		} else {
			buf = append(buf, seq[p.a:p.b]...)
		}
	}
	return buf
}

// tryMove evaluates a move and applies it when it lowers the cost. Pieces
// of p1/p2 may reference both routes' current sequences.
func (s *state) tryMove(r1 int, p1 []piece, r2 int, p2 []piece) bool {
	old := s.rcost[r1]
	if r2 >= 0 {
		old += s.rcost[r2]
	}
	// cost and cheap checks first; the exact time check only for improving
	// moves
	c1, ok := s.evalPiecesCheap(r1, p1)
	if !ok {
		return false
	}
	c := c1
	if r2 >= 0 {
		c2, ok := s.evalPiecesCheap(r2, p2)
		if !ok {
			return false
		}
		c += c2
	}
	if c >= old {
		return false
	}
	if !s.confirmPieces(r1, p1) || (r2 >= 0 && !s.confirmPieces(r2, p2)) {
		return false
	}
	n1 := s.buildPieces(nil, p1)
	var n2 []int32
	if r2 >= 0 {
		n2 = s.buildPieces(nil, p2)
	}
	s.routes[r1] = n1
	if r2 >= 0 {
		s.routes[r2] = n2
	}
	s.refresh(r1)
	if r2 >= 0 {
		s.refresh(r2)
	}
	return true
}

// positions fills pos[node] with the node's index in its route.
func (s *state) positions(pos []int32) {
	for _, seq := range s.routes {
		for i, n := range seq {
			pos[n] = int32(i)
		}
	}
}

// localSearch improves s until no move of the granular neighbourhood (K
// nearest neighbours per task) lowers the cost or stop (optional) reports
// true. Shipment halves are left to
// ruin-and-recreate (moving one half alone would break precedence). It
// reports whether anything improved.
func (s *state) localSearch(nb [][]int32, K int, order []int32, stop func() bool) bool {
	m := s.m
	pos := make([]int32, m.nNodes)
	s.positions(pos)
	improvedAny := false
	var ps1, ps2 [6]piece
	for improved := true; improved; {
		improved = false
		for ui, u := range order {
			if stop != nil && ui&63 == 0 && stop() {
				return improvedAny
			}
			ru := int(s.routeOf[u])
			if ru < 0 || m.sib[u] >= 0 {
				continue
			}
			for k, v := range nb[u] {
				if k >= K {
					break
				}
				rv := int(s.routeOf[v])
				if rv < 0 || m.sib[v] >= 0 {
					continue
				}
				i, j := int(pos[u]), int(pos[v])
				su, sv := s.routes[ru], s.routes[rv]
				nu, nv := len(su), len(sv)
				moved := false
				if ru != rv {
					// relocate segment of length L starting at u to after v / before v
					for L := 1; L <= 3 && !moved && i+L <= nu; L++ {
						if segHasShipment(m, su[i:i+L]) {
							break
						}
						a := append(ps1[:0], piece{ru, 0, i, false}, piece{ru, i + L, nu, false})
						b := append(ps2[:0], piece{rv, 0, j + 1, false}, piece{ru, i, i + L, false}, piece{rv, j + 1, nv, false})
						if s.tryMove(ru, a, rv, b) {
							moved = true
							break
						}
						b = append(ps2[:0], piece{rv, 0, j, false}, piece{ru, i, i + L, false}, piece{rv, j, nv, false})
						if s.tryMove(ru, a, rv, b) {
							moved = true
						}
					}
					// swap / cross-exchange of segments (lengths 1..3 / 1..3)
					for L1 := 1; L1 <= 3 && !moved && i+L1 <= nu; L1++ {
						if segHasShipment(m, su[i:i+L1]) {
							break
						}
						for L2 := 1; L2 <= 3 && !moved && j+L2 <= nv; L2++ {
							if segHasShipment(m, sv[j:j+L2]) {
								break
							}
							a := append(ps1[:0], piece{ru, 0, i, false}, piece{rv, j, j + L2, false}, piece{ru, i + L1, nu, false})
							b := append(ps2[:0], piece{rv, 0, j, false}, piece{ru, i, i + L1, false}, piece{rv, j + L2, nv, false})
							moved = s.tryMove(ru, a, rv, b)
						}
					}
					// 2-opt*: u -> v (u's tail goes after v's predecessor) and u -> succ(v)
					if !moved && !routeHasShipment(m, su) && !routeHasShipment(m, sv) {
						a := append(ps1[:0], piece{ru, 0, i + 1, false}, piece{rv, j, nv, false})
						b := append(ps2[:0], piece{rv, 0, j, false}, piece{ru, i + 1, nu, false})
						moved = s.tryMove(ru, a, rv, b)
						if !moved {
							a = append(ps1[:0], piece{ru, 0, i + 1, false}, piece{rv, j + 1, nv, false})
							b = append(ps2[:0], piece{rv, 0, j + 1, false}, piece{ru, i + 1, nu, false})
							moved = s.tryMove(ru, a, rv, b)
						}
					}
				} else if i != j {
					// intra-route relocate (or-opt) of segments up to 3 and 2-opt
					for L := 1; L <= 3 && !moved && i+L <= nu; L++ {
						if segHasShipment(m, su[i:i+L]) {
							break
						}
						var a []piece
						if j > i+L-1 { // move after v, v after the segment
							if j < i+L {
								break
							}
							a = append(ps1[:0], piece{ru, 0, i, false}, piece{ru, i + L, j + 1, false}, piece{ru, i, i + L, false}, piece{ru, j + 1, nu, false})
						} else if j < i { // move before v... after v's position
							a = append(ps1[:0], piece{ru, 0, j + 1, false}, piece{ru, i, i + L, false}, piece{ru, j + 1, i, false}, piece{ru, i + L, nu, false})
						} else {
							break
						}
						moved = s.tryMove(ru, a, -1, nil)
					}
					if !moved && !routeHasShipment(m, su) {
						lo, hi := min(i, j), max(i, j)
						// reverse lo+1..hi so that seq[lo] is followed by seq[hi]
						a := append(ps1[:0], piece{ru, 0, lo + 1, false}, piece{ru, lo + 1, hi + 1, true}, piece{ru, hi + 1, nu, false})
						moved = s.tryMove(ru, a, -1, nil)
					}
				}
				if moved {
					improved, improvedAny = true, true
					s.positions(pos)
					break
				}
			}
		}
	}
	return improvedAny
}

func segHasShipment(m *model, seq []int32) bool {
	for _, n := range seq {
		if m.sib[n] >= 0 {
			return true
		}
	}
	return false
}

func routeHasShipment(m *model, seq []int32) bool { return segHasShipment(m, seq) }
