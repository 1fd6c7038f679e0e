package vrp

import (
	"math"
	"sort"
)

// regretK is the k of the regret insertion.
const regretK = 3

// regretInsertion builds a solution by regret-k insertion (Potvin & Rousseau
// 1993, k = regretK): repeatedly insert the task with the largest regret
// sum_{i=2..k} (c_i - c_1), where c_i is its cheapest feasible insertion cost
// in its i-th best vehicle (identical empty vehicles count once). Insertion
// costs are cached per (task, vehicle) and only the changed vehicle's column
// is recomputed after each insertion. Above 1000 tasks (80 without segment
// data) tasks are instead inserted cheapest-first, farthest from the first
// vehicle's start first, to bound the construction time.
func regretInsertion(s *state, r *rng) {
	m := s.m
	var todo []int32
	for n := int32(0); n < int32(m.nNodes); n++ {
		if s.plannable[n] && m.kind[n] != kindDelivery && s.routeOf[n] < 0 {
			todo = append(todo, n)
		}
	}
	t := &m.types[0]
	if len(todo) > 1000 || (!m.segs && len(todo) > 80) {
		sort.SliceStable(todo, func(a, b int) bool {
			return m.arcCost(t, m.veh[0].start, m.loc[todo[a]]) > m.arcCost(t, m.veh[0].start, m.loc[todo[b]])
		})
		for _, u := range todo {
			s.insertNode(u, r, 0)
		}
		return
	}
	V := len(m.veh)
	n := len(todo)
	cost := make([]int64, n*V)
	done := make([]bool, n)
	active := make([]bool, V)
	classUsed := map[int]bool{}
	activate := func(v int) {
		active[v] = true
		s.onlyV = v
		for i, u := range todo {
			if done[i] {
				continue
			}
			_, d := s.probe(u)
			if d == math.MaxInt64 {
				d = -1 // infeasible
			}
			cost[i*V+v] = d
		}
		s.onlyV = -1
	}
	nextEmpty := func(c int) {
		for v := 0; v < V; v++ {
			if len(s.routes[v]) == 0 && m.vclass[v] == c && !active[v] {
				activate(v)
				return
			}
		}
	}
	for v := 0; v < V; v++ {
		if len(s.routes[v]) > 0 {
			activate(v)
		} else if c := m.vclass[v]; !classUsed[c] {
			classUsed[c] = true
			activate(v)
		}
	}
	const big = int64(1) << 60
	var best [regretK]int64
	for left := n; left > 0; left-- {
		bi, bv := -1, -1
		var bReg, bC1 int64
		for i := range todo {
			if done[i] {
				continue
			}
			for k := range best {
				best[k] = big
			}
			v1 := -1
			for v := 0; v < V; v++ {
				c := cost[i*V+v]
				if !active[v] || c < 0 {
					continue
				}
				if c < best[0] {
					v1 = v
				}
				for k := 0; k < regretK; k++ {
					if c < best[k] {
						copy(best[k+1:], best[k:regretK-1])
						best[k] = c
						break
					}
				}
			}
			if v1 < 0 {
				continue
			}
			var reg int64
			for k := 1; k < regretK; k++ {
				reg += best[k] - best[0]
			}
			if bi < 0 || reg > bReg || (reg == bReg && best[0] < bC1) {
				bi, bv, bReg, bC1 = i, v1, reg, best[0]
			}
		}
		if bi < 0 {
			break // nothing left is insertable
		}
		u := todo[bi]
		wasEmpty := len(s.routes[bv]) == 0
		s.onlyV = bv
		ok := s.insertNode(u, r, 0)
		s.onlyV = -1
		done[bi] = true
		if !ok {
			continue
		}
		activate(bv)
		if wasEmpty {
			nextEmpty(m.vclass[bv])
		}
	}
}

// probe returns the best vehicle and delta for inserting u (with its sibling).
func (s *state) probe(u int32) (int, int64) {
	m := s.m
	if q := m.sib[u]; q >= 0 {
		v, _, _, d := s.bestInsertPair(u, q, nil, 0)
		return v, d
	}
	v, _, d := s.bestInsert(u, nil, 0)
	return v, d
}

// savings is the parallel Clarke & Wright (1964) savings heuristic for
// problems on the fast path: routes are merged end-to-start in decreasing
// order of saving c(0,i)+c(j,0)-c(i,j) (0 = first vehicle's depot, pairs
// restricted to 40 nearest neighbours) while the merged route stays feasible
// for the first vehicle; routes are then given to vehicles, longest first.
// It reports false when it cannot be applied.
func savings(s *state, nbAll [][]int32) bool {
	m := s.m
	if m.nNodes == 0 {
		return false
	}
	v0 := 0
	t := &m.types[m.veh[v0].typ]
	start, end := m.veh[v0].start, m.veh[v0].end
	nb := nbAll
	type sv struct {
		i, j int32
		s    int64
	}
	var list []sv
	for i := int32(0); i < int32(m.nNodes); i++ {
		if !s.plannable[i] || !m.compat[v0*m.nNodes+int(i)] {
			continue
		}
		for k, j := range nb[i] {
			if k >= 40 {
				break
			}
			if !s.plannable[j] || !m.compat[v0*m.nNodes+int(j)] {
				continue
			}
			sav := m.arcCost(t, m.loc[i], end) + m.arcCost(t, start, m.loc[j]) - m.arcCost(t, m.loc[i], m.loc[j])
			list = append(list, sv{i, j, sav})
		}
	}
	sort.Slice(list, func(a, b int) bool {
		if list[a].s != list[b].s {
			return list[a].s > list[b].s
		}
		if list[a].i != list[b].i {
			return list[a].i < list[b].i
		}
		return list[a].j < list[b].j
	})
	// each plannable node starts alone in its own route
	rt := make([][]int32, m.nNodes)
	of := make([]int32, m.nNodes)
	for n := range of {
		of[n] = -1
		if s.plannable[n] && m.compat[v0*m.nNodes+n] && m.feasible(v0, []int32{int32(n)}, s.w) {
			rt[n] = []int32{int32(n)}
			of[n] = int32(n)
		}
	}
	var buf []int32
	for _, e := range list {
		if e.s <= 0 {
			break
		}
		a, b := of[e.i], of[e.j]
		if a < 0 || b < 0 || a == b {
			continue
		}
		ra, rb := rt[a], rt[b]
		if ra[len(ra)-1] != e.i || rb[0] != e.j {
			continue
		}
		buf = append(append(buf[:0], ra...), rb...)
		if !m.feasible(v0, buf, s.w) {
			continue
		}
		rt[a] = append(rt[a], rb...)
		for _, n := range rb {
			of[n] = a
		}
		rt[b] = nil
	}
	var routes [][]int32
	for _, r := range rt {
		if len(r) > 0 {
			routes = append(routes, r)
		}
	}
	sort.SliceStable(routes, func(a, b int) bool { return len(routes[a]) > len(routes[b]) })
	for _, r := range routes {
		for v := range s.routes {
			if len(s.routes[v]) == 0 && m.feasible(v, r, s.w) {
				s.routes[v] = append([]int32(nil), r...)
				s.refresh(v)
				break
			}
		}
	}
	return true
}
