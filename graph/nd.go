package graph

import (
	"cmp"
	"math"
	"slices"
	"sync"
)

// Nested dissection order for the customizable contraction hierarchy
// (cch.go). A metric-independent order must keep the fill-in of the
// contraction small for every metric; recursive balanced separators do
// this (Dibbelt, Strasser, Wagner 2016, §4: "nested dissection").
//
// Separators come from inertial flow (Schild & Sommer 2015): project the
// cell's nodes on a few lines through the plane, take the first and last
// quarter along the line as source and sink, and compute a minimum vertex
// cut between them with a unit-capacity maximum flow (Dinic's algorithm on
// the node-split graph). Of the lines tried, the smallest cut wins, ties
// broken by balance. Separator nodes are ranked after both sides of their
// cell, so they end up above them in the hierarchy.

// ndLeaf is the largest cell that is ordered without further dissection.
const ndLeaf = 24

// ndBalance is the share of the cell's nodes, at each end of the projection,
// fixed to the source and the sink sides.
const ndBalance = 0.33

// nestedDissection returns an elimination order (rank -> node) of the
// undirected graph given as symmetric CSR (first, adj) with node
// coordinates x, y (planar). It dissects cells in parallel with up to
// workers goroutines.
func nestedDissection(first, adj []uint32, x, y []float64, workers int) []uint32 {
	n := len(first) - 1
	d := &dissector{first: first, adj: adj, x: x, y: y, sem: make(chan struct{}, max(workers, 1)-1)}
	d.pool.New = func() any { return newNDWork(n) }
	all := make([]uint32, n)
	for i := range all {
		all[i] = uint32(i)
	}
	return d.cell(all)
}

type dissector struct {
	first, adj []uint32
	x, y       []float64
	sem        chan struct{} // extra goroutines allowed
	pool       sync.Pool     // *ndWork
}

// ndWork is the scratch space of one goroutine: local ids of the cell's
// nodes (-1 outside) and the flow network.
type ndWork struct {
	loc  []int32
	flow dinic
}

func newNDWork(n int) *ndWork {
	w := &ndWork{loc: make([]int32, n)}
	for i := range w.loc {
		w.loc[i] = -1
	}
	return w
}

// cell orders the nodes of one cell: its connected components separately,
// each by recursion on the two sides of a separator followed by the
// separator itself.
func (d *dissector) cell(nodes []uint32) []uint32 {
	if len(nodes) <= ndLeaf {
		return slices.Clone(nodes)
	}
	w := d.pool.Get().(*ndWork)
	comps := d.components(w, nodes, nil)
	if len(comps) > 1 {
		d.pool.Put(w)
		return d.all(comps, nil)
	}
	sep, rest := d.separate(w, nodes)
	var parts [][]uint32
	if len(rest) > 0 {
		parts = d.components(w, rest, nil)
	}
	d.pool.Put(w)
	return d.all(parts, sep)
}

// all orders the cells, in parallel when a goroutine is free, and appends
// the separator.
func (d *dissector) all(cells [][]uint32, sep []uint32) []uint32 {
	orders := make([][]uint32, len(cells))
	var wg sync.WaitGroup
	for i, c := range cells {
		if len(c) > 4096 {
			select {
			case d.sem <- struct{}{}:
				wg.Add(1)
				go func() {
					defer wg.Done()
					orders[i] = d.cell(c)
					<-d.sem
				}()
				continue
			default:
			}
		}
		orders[i] = d.cell(c)
	}
	wg.Wait()
	total := len(sep)
	for _, o := range orders {
		total += len(o)
	}
	out := make([]uint32, 0, total)
	for _, o := range orders {
		out = append(out, o...)
	}
	return append(out, sep...)
}

// components splits nodes into the connected components of the subgraph
// they induce, excluding nodes marked in skip (nil = none).
func (d *dissector) components(w *ndWork, nodes []uint32, skip []bool) [][]uint32 {
	for i, v := range nodes {
		w.loc[v] = int32(i)
	}
	seen := make([]bool, len(nodes))
	var comps [][]uint32
	var stack []uint32
	for i, v := range nodes {
		if seen[i] {
			continue
		}
		seen[i] = true
		comp := []uint32{v}
		stack = append(stack[:0], v)
		for len(stack) > 0 {
			u := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			for _, h := range d.adj[d.first[u]:d.first[u+1]] {
				if l := w.loc[h]; l >= 0 && !seen[l] {
					seen[l] = true
					comp = append(comp, h)
					stack = append(stack, h)
				}
			}
		}
		comps = append(comps, comp)
	}
	for _, v := range nodes {
		w.loc[v] = -1
	}
	return comps
}

// separate finds a small balanced vertex separator of a connected cell and
// returns it with the remaining nodes.
func (d *dissector) separate(w *ndWork, nodes []uint32) (sep, rest []uint32) {
	m := len(nodes)
	for i, v := range nodes {
		w.loc[v] = int32(i)
	}
	// Local symmetric adjacency.
	lfirst := make([]int32, m+1)
	ladj := make([]int32, 0, 4*m)
	for i, v := range nodes {
		for _, h := range d.adj[d.first[v]:d.first[v+1]] {
			if l := w.loc[h]; l >= 0 && l != int32(i) {
				ladj = append(ladj, l)
			}
		}
		lfirst[i+1] = int32(len(ladj))
	}
	for _, v := range nodes {
		w.loc[v] = -1
	}
	// Projection lines: east-west, north-south and the two diagonals.
	dirs := [][2]float64{{1, 0}, {0, 1}, {math.Sqrt2 / 2, math.Sqrt2 / 2}, {math.Sqrt2 / 2, -math.Sqrt2 / 2}}
	type keyed struct {
		key float64
		i   int32
	}
	ks := make([]keyed, m)
	side := make([]int8, m)
	var bestCut []int32
	bestBal := -1
	k := max(int(float64(m)*ndBalance), 1)
	for _, dir := range dirs {
		for i, v := range nodes {
			ks[i] = keyed{dir[0]*d.x[v] + dir[1]*d.y[v], int32(i)}
		}
		slices.SortFunc(ks, func(a, b keyed) int {
			if c := cmp.Compare(a.key, b.key); c != 0 {
				return c
			}
			return cmp.Compare(a.i, b.i)
		})
		clear(side)
		for _, e := range ks[:k] {
			side[e.i] = 1
		}
		for _, e := range ks[m-k:] {
			side[e.i] = 2
		}
		cut, reach := w.flow.minVertexCut(lfirst, ladj, side)
		srcSide := 0
		for i := range m {
			if reach[i] {
				srcSide++
			}
		}
		bal := min(srcSide, m-srcSide-len(cut))
		if bestCut == nil || len(cut) < len(bestCut) || (len(cut) == len(bestCut) && bal > bestBal) {
			bestCut, bestBal = slices.Clone(cut), bal
		}
	}
	if len(bestCut) == 0 {
		// No flow (every sink touched a source): fall back to the
		// boundary of a median split along the first line.
		for i, v := range nodes {
			ks[i] = keyed{d.x[v], int32(i)}
		}
		slices.SortFunc(ks, func(a, b keyed) int {
			if c := cmp.Compare(a.key, b.key); c != 0 {
				return c
			}
			return cmp.Compare(a.i, b.i)
		})
		half := make([]bool, m)
		for _, e := range ks[:m/2] {
			half[e.i] = true
		}
		for i := range m {
			if !half[i] {
				continue
			}
			for _, h := range ladj[lfirst[i]:lfirst[i+1]] {
				if !half[h] {
					bestCut = append(bestCut, int32(i))
					break
				}
			}
		}
	}
	inSep := make([]bool, m)
	for _, i := range bestCut {
		inSep[i] = true
	}
	sep = make([]uint32, 0, len(bestCut))
	rest = make([]uint32, 0, m-len(bestCut))
	for i, v := range nodes {
		if inSep[i] {
			sep = append(sep, v)
		} else {
			rest = append(rest, v)
		}
	}
	return sep, rest
}

// dinic computes unit vertex-capacity maximum flows (Dinic 1970) on the
// node-split graph of a cell. Source nodes collapse into the super source
// s and sink nodes into the super sink t; every other node i of the cell
// becomes in(i) and out(i) joined by an arc of capacity 1, and an edge
// {u, v} becomes out(u)→in(v) and out(v)→in(u), unbounded (s→in(v) when u
// is a source, out(u)→t when v is a sink).
type dinic struct {
	first []int32
	head  []int32
	rev   []int32
	cap   []int32
	level []int32
	iter  []int32
	queue []int32
	reach []bool
	cut   []int32
	split []int32 // cell node -> index among the split nodes, -1 for terminals
}

const flowInf = 1 << 30

func (f *dinic) addArc(u, v, c int32, fill []int32) {
	a, b := fill[u], fill[v]
	fill[u]++
	fill[v]++
	f.head[a], f.cap[a], f.rev[a] = v, c, b
	f.head[b], f.cap[b], f.rev[b] = u, 0, a
}

// minVertexCut returns a minimum set of nodes separating the nodes marked
// source (side 1) from those marked sink (side 2), and which nodes lie on
// the source side of it. A sink node adjacent to a source node is treated
// as an ordinary node (side is updated), so that a finite cut exists.
func (f *dinic) minVertexCut(lfirst, ladj []int32, side []int8) (cut []int32, reach []bool) {
	m := int32(len(lfirst) - 1)
	for i := range m {
		if side[i] == 1 {
			for _, h := range ladj[lfirst[i]:lfirst[i+1]] {
				if side[h] == 2 {
					side[h] = 0
				}
			}
		}
	}
	f.split = resize(f.split, int(m))
	ns := int32(0)
	for i := range m {
		f.split[i] = -1
		if side[i] == 0 {
			f.split[i] = ns
			ns++
		}
	}
	nn := 2*ns + 2
	s, t := 2*ns, 2*ns+1
	// Arcs per flow node (each arc and its reverse); tail and head of the
	// arc from cell node i to its neighbour h, or -1 when there is none.
	ends := func(i, h int32) (int32, int32) {
		si, sh := side[i], side[h]
		switch {
		case si == 0 && sh == 0:
			return 2*f.split[i] + 1, 2 * f.split[h]
		case si == 1 && sh == 0:
			return s, 2 * f.split[h]
		case si == 0 && sh == 2:
			return 2*f.split[i] + 1, t
		}
		return -1, -1
	}
	deg := make([]int32, nn+1)
	for i := range m {
		if side[i] == 0 {
			deg[2*f.split[i]+1]++
			deg[2*f.split[i]+1+1]++
		}
		for _, h := range ladj[lfirst[i]:lfirst[i+1]] {
			if u, v := ends(i, h); u >= 0 {
				deg[u+1]++
				deg[v+1]++
			}
		}
	}
	for i := range nn {
		deg[i+1] += deg[i]
	}
	na := deg[nn]
	f.first = deg
	f.head = resize(f.head, int(na))
	f.rev = resize(f.rev, int(na))
	f.cap = resize(f.cap, int(na))
	fill := slices.Clone(deg[:nn])
	for i := range m {
		if side[i] == 0 {
			f.addArc(2*f.split[i], 2*f.split[i]+1, 1, fill)
		}
		for _, h := range ladj[lfirst[i]:lfirst[i+1]] {
			if u, v := ends(i, h); u >= 0 {
				f.addArc(u, v, flowInf, fill)
			}
		}
	}
	f.level = resize(f.level, int(nn))
	f.iter = resize(f.iter, int(nn))
	for f.bfs(s, t) {
		copy(f.iter, f.first[:nn])
		for f.augment(s, t) {
		}
	}
	// Residual reachability from s; the cut is the split arcs leaving it.
	f.reach = resize(f.reach, int(nn))
	clear(f.reach)
	f.reach[s] = true
	q := append(f.queue[:0], s)
	for h := 0; h < len(q); h++ {
		u := q[h]
		for a := f.first[u]; a < f.first[u+1]; a++ {
			if v := f.head[a]; f.cap[a] > 0 && !f.reach[v] {
				f.reach[v] = true
				q = append(q, v)
			}
		}
	}
	f.queue = q
	f.cut = f.cut[:0]
	reach = make([]bool, m)
	for i := range m {
		switch {
		case side[i] == 1:
			reach[i] = true
		case side[i] == 0:
			in, out := 2*f.split[i], 2*f.split[i]+1
			if f.reach[in] && !f.reach[out] {
				f.cut = append(f.cut, i)
			} else if f.reach[in] {
				reach[i] = true
			}
		}
	}
	return f.cut, reach
}

// bfs computes the level graph up to the sink's level; it reports whether
// t is reachable.
func (f *dinic) bfs(s, t int32) bool {
	for i := range f.level {
		f.level[i] = -1
	}
	f.level[s] = 0
	q := append(f.queue[:0], s)
	for h := 0; h < len(q); h++ {
		u := q[h]
		if f.level[t] >= 0 && f.level[u] >= f.level[t] {
			break
		}
		for a := f.first[u]; a < f.first[u+1]; a++ {
			if v := f.head[a]; f.cap[a] > 0 && f.level[v] < 0 {
				f.level[v] = f.level[u] + 1
				q = append(q, v)
			}
		}
	}
	f.queue = q
	return f.level[t] >= 0
}

// augment pushes one unit along a shortest residual path found by an
// iterative depth-first search over the level graph, advancing the
// per-node arc iterators past dead ends. It reports whether a path existed.
func (f *dinic) augment(s, t int32) bool {
	path := f.queue[:0] // arcs of the current path
	u := s
	for {
		if u == t {
			for _, a := range path {
				f.cap[a]--
				f.cap[f.rev[a]]++
			}
			f.queue = path
			return true
		}
		advanced := false
		for ; f.iter[u] < f.first[u+1]; f.iter[u]++ {
			a := f.iter[u]
			if v := f.head[a]; f.cap[a] > 0 && f.level[v] == f.level[u]+1 {
				path = append(path, a)
				u = v
				advanced = true
				break
			}
		}
		if advanced {
			continue
		}
		// Dead end: retreat.
		f.level[u] = -1
		if len(path) == 0 {
			f.queue = path
			return false
		}
		a := path[len(path)-1]
		path = path[:len(path)-1]
		u = f.head[f.rev[a]]
		f.iter[u]++
	}
}

func resize[T any](s []T, n int) []T {
	if cap(s) >= n {
		return s[:n]
	}
	return make([]T, n)
}
