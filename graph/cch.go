package graph

import (
	"errors"
	"fmt"
	"math"
	"runtime"
	"slices"
	"sync"
	"time"
)

// CCH is a customizable contraction hierarchy (Dibbelt, Strasser, Wagner,
// "Customizable Contraction Hierarchies", ACM JEA 2016) over the
// edge-based graph of a built Graph: a contraction order that does not
// depend on the weights (nested dissection, nd.go) and the chordal
// supergraph it induces, computed once; Customize then computes exact
// shortcut weights for any new edge durations in a fraction of a second,
// which is how live traffic reaches routing without re-preprocessing.
//
// A CCH is immutable and safe for concurrent use; every Customize returns a
// new, independent Graph snapshot that shares the road network and the
// topology with the base graph, so a server can swap snapshots atomically
// while queries on the old one finish.
type CCH struct {
	base  *Graph
	rank  []uint32 // CH node id -> CCH rank
	order []uint32 // CCH rank -> CH node id

	// Upward arcs over ranks in CSR form, heads sorted by rank, and the
	// tail of every arc.
	first, head, tail []uint32
	// Triangles: for each rank x and each pair of its upward arcs x→v,
	// x→u (v before u in x's list), the index of the arc v→u, pairs in
	// list order from triFirst[x].
	triFirst []int64
	tri      []uint32
	// Lower neighbours of each rank: the tail rank and the arc index of
	// each arc x→v with x below v, grouped by v.
	dfirst, dtail, darc []uint32
	// turnArc maps each turn arc of the base graph (index into turnHead)
	// to the CCH arc it sets, with cchDown marking the downward direction;
	// noNode for a loop.
	turnArc []uint32
	// turnDirs marks, per arc, the directions an original turn sets
	// (arcTurnUp, arcTurnDown): an arc's weight before its triangles.
	turnDirs []uint8
	// level of each rank in the elimination tree (leaves 0), and the ranks
	// grouped by level, for parallel customization.
	levelFirst []uint32
	byLevel    []uint32

	// Stats of the preprocessing.
	OrderTime, BuildTime time.Duration
	Triangles            int64
}

const cchDown = 1 << 31

// Directions of an arc lo→hi that an original turn sets: upward the turn
// order[lo]→order[hi], which costs entering order[hi]; downward
// order[hi]→order[lo], which costs entering order[lo].
const (
	arcTurnUp   = 1
	arcTurnDown = 2
)

// NewCCH computes the metric-independent part of a customizable
// contraction hierarchy for g's edge-based graph: the nested dissection
// order and the chordal supergraph. It takes a few seconds on a city.
func NewCCH(g *Graph, workers int) (*CCH, error) {
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	n := len(g.edgeOfCH)
	if n == 0 {
		return nil, errors.New("graph: cch: empty graph")
	}
	t0 := time.Now()
	first, adj := g.turnAdjacency()
	order := g.cchOrder // saved with the graph (ComputeCCHOrder)
	if order == nil {
		order = g.dissect(first, adj, workers)
	}
	if len(order) != n {
		return nil, fmt.Errorf("graph: cch: order has %d nodes, want %d", len(order), n)
	}
	c := &CCH{base: g, order: order, rank: make([]uint32, n)}
	for r, v := range order {
		c.rank[v] = uint32(r)
	}
	t1 := time.Now()
	c.OrderTime = t1.Sub(t0)

	// Chordal supergraph by elimination in rank order: the upper
	// neighbours of v form a clique, which it suffices to add to the
	// lowest of them (its parent in the elimination tree).
	up := make([][]uint32, n)
	for v := range n {
		rv := c.rank[v]
		for _, h := range adj[first[v]:first[v+1]] {
			if rh := c.rank[h]; rh > rv {
				up[rv] = append(up[rv], rh)
			}
		}
	}
	parent := make([]uint32, n)
	c.first = make([]uint32, n+1)
	for r := range n {
		s := up[r]
		slices.Sort(s)
		s = slices.Compact(s)
		up[r] = s
		c.first[r+1] = c.first[r] + uint32(len(s))
		parent[r] = noNode
		if len(s) > 0 {
			p := s[0]
			parent[r] = p
			up[p] = append(up[p], s[1:]...)
		}
	}
	c.head = make([]uint32, 0, c.first[n])
	c.tail = make([]uint32, 0, c.first[n])
	for r := range n {
		c.head = append(c.head, up[r]...)
		for range up[r] {
			c.tail = append(c.tail, uint32(r))
		}
		up[r] = nil
	}
	// Lower neighbours, grouped by upper rank.
	c.dfirst = make([]uint32, n+1)
	for _, h := range c.head {
		c.dfirst[h+1]++
	}
	for i := range n {
		c.dfirst[i+1] += c.dfirst[i]
	}
	c.dtail = make([]uint32, len(c.head))
	c.darc = make([]uint32, len(c.head))
	fill := slices.Clone(c.dfirst[:n])
	for r := range n {
		for a := c.first[r]; a < c.first[r+1]; a++ {
			h := c.head[a]
			c.dtail[fill[h]], c.darc[fill[h]] = uint32(r), a
			fill[h]++
		}
	}
	// Turn arcs to CCH arcs.
	c.turnArc = make([]uint32, len(g.turnHead))
	c.turnDirs = make([]uint8, len(c.head))
	for v := range n {
		for k := g.turnFirst[v]; k < g.turnFirst[v+1]; k++ {
			h := g.turnHead[k]
			if h == uint32(v) {
				c.turnArc[k] = noNode
				continue
			}
			lo, hi, dir := c.rank[v], c.rank[h], uint32(0)
			if lo > hi {
				lo, hi, dir = hi, lo, cchDown
			}
			a, ok := c.findArc(lo, hi)
			if !ok {
				return nil, fmt.Errorf("graph: cch: turn %d->%d has no arc", v, h)
			}
			c.turnArc[k] = a | dir
			if dir == 0 {
				c.turnDirs[a] |= arcTurnUp
			} else {
				c.turnDirs[a] |= arcTurnDown
			}
		}
	}
	// Elimination tree levels for parallel customization: a rank depends
	// only on its descendants.
	level := make([]uint32, n)
	maxLevel := uint32(0)
	for r := range n {
		if p := parent[r]; p != noNode {
			level[p] = max(level[p], level[r]+1)
		}
		maxLevel = max(maxLevel, level[r])
	}
	c.levelFirst = make([]uint32, maxLevel+2)
	for _, l := range level {
		c.levelFirst[l+1]++
	}
	for i := range maxLevel + 1 {
		c.levelFirst[i+1] += c.levelFirst[i]
	}
	c.byLevel = make([]uint32, n)
	lf := slices.Clone(c.levelFirst)
	for r := range n {
		c.byLevel[lf[level[r]]] = uint32(r)
		lf[level[r]]++
	}
	// Triangles of each rank, found by merging x's list into v's (a
	// superset by chordality).
	c.triFirst = make([]int64, n+1)
	for x := range n {
		d := int64(c.first[x+1] - c.first[x])
		c.triFirst[x+1] = c.triFirst[x] + d*(d-1)/2
	}
	c.Triangles = c.triFirst[n]
	c.tri = make([]uint32, c.Triangles)
	k := 0
	for x := range n {
		for ai := c.first[x]; ai < c.first[x+1]; ai++ {
			v := c.head[ai]
			p, pe := c.first[v], c.first[v+1]
			for aj := ai + 1; aj < c.first[x+1]; aj++ {
				u := c.head[aj]
				for p < pe && c.head[p] < u {
					p++
				}
				if p == pe || c.head[p] != u {
					return nil, fmt.Errorf("graph: cch: supergraph not chordal at %d-%d-%d", x, v, u)
				}
				c.tri[k] = p
				k++
			}
		}
	}
	c.BuildTime = time.Since(t1)
	return c, nil
}

// turnAdjacency returns the edge-based graph made symmetric, without loops
// and duplicates, in CSR form.
func (g *Graph) turnAdjacency() (first, adj []uint32) {
	n := len(g.edgeOfCH)
	// Symmetric adjacency of the edge-based graph, without loops and
	// duplicates.
	first = make([]uint32, n+1)
	{
		deg := make([]uint32, n+1)
		for v := range n {
			for _, h := range g.turnHead[g.turnFirst[v]:g.turnFirst[v+1]] {
				if h != uint32(v) {
					deg[v+1]++
					deg[h+1]++
				}
			}
		}
		for i := range n {
			deg[i+1] += deg[i]
		}
		adj = make([]uint32, deg[n])
		fill := slices.Clone(deg[:n])
		for v := range n {
			for _, h := range g.turnHead[g.turnFirst[v]:g.turnFirst[v+1]] {
				if h != uint32(v) {
					adj[fill[v]] = h
					fill[v]++
					adj[fill[h]] = uint32(v)
					fill[h]++
				}
			}
		}
		k := uint32(0)
		for v := range n {
			s := adj[deg[v]:deg[v+1]]
			slices.Sort(s)
			s = slices.Compact(s)
			copy(adj[k:], s)
			first[v] = k
			k += uint32(len(s))
		}
		first[n] = k
		adj = adj[:k]
	}
	return first, adj
}

// dissect computes the nested-dissection order (rank -> CH node) of the
// symmetric edge-based graph (first, adj).
func (g *Graph) dissect(first, adj []uint32, workers int) []uint32 {
	n := len(g.edgeOfCH)
	// Planar coordinates of the CH nodes: edge midpoints, longitude scaled
	// by the cosine of the mean latitude.
	net := g.Road
	x, y := make([]float64, n), make([]float64, n)
	var latSum float64
	for _, e := range g.edgeOfCH {
		latSum += net.Lat[net.Edges[e].From]
	}
	cosLat := math.Cos(latSum / float64(n) * math.Pi / 180)
	for v, e := range g.edgeOfCH {
		ed := &net.Edges[e]
		x[v] = (net.Lon[ed.From] + net.Lon[ed.To]) / 2 * cosLat
		y[v] = (net.Lat[ed.From] + net.Lat[ed.To]) / 2
	}
	return nestedDissection(first, adj, x, y, workers)
}

// ComputeCCHOrder computes the metric-independent order of the
// customizable hierarchy (nested dissection, a few seconds on a city) and
// keeps it in g, so that WriteTo saves it and NewCCH, on g or on the
// loaded file, skips it. Call it before g is shared between goroutines.
func (g *Graph) ComputeCCHOrder(workers int) error {
	if len(g.edgeOfCH) == 0 {
		return errors.New("graph: cch: empty graph")
	}
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	first, adj := g.turnAdjacency()
	g.cchOrder = g.dissect(first, adj, workers)
	return nil
}

// findArc returns the index of the arc lo→hi (ranks, lo < hi).
func (c *CCH) findArc(lo, hi uint32) (uint32, bool) {
	s := c.head[c.first[lo]:c.first[lo+1]]
	i, ok := slices.BinarySearch(s, hi)
	return c.first[lo] + uint32(i), ok
}

// Arcs returns the number of arcs of the chordal supergraph.
func (c *CCH) Arcs() int { return len(c.head) }

// originalArc returns the weights of arc a's original turns upward and
// downward under the node weights nodeW, infWeight where a direction has
// no turn or enters a closed edge.
func (c *CCH) originalArc(nodeW []int64, a uint32) (up, down int64) {
	up, down = infWeight, infWeight
	if c.turnDirs[a]&arcTurnUp != 0 {
		up = min(nodeW[c.order[c.head[a]]], infWeight)
	}
	if c.turnDirs[a]&arcTurnDown != 0 {
		down = min(nodeW[c.order[c.tail[a]]], infWeight)
	}
	return up, down
}

// customization is the per-arc state of one customization: the weight of
// each direction and, for a weight that comes from a lower triangle, the
// two CCH arcs it is made of (left = the first part in travel direction).
type customization struct {
	up, down               []int64
	exUp, exDown           []int64 // exact weights (perfect customization)
	upL, upR, downL, downR []uint32
	// fwdIdx and bwdIdx are each arc's index in the snapshot's forward
	// and backward up graphs (noNode where infinite); fwdSearched and
	// bwdSearched each node's searched range's end when emit laid them
	// out, mirrors how many mirror slots it left and promoted how many of
	// them updates have made searched since (see emit).
	fwdIdx, bwdIdx           []uint32
	fwdSearched, bwdSearched []uint32
	mirrors, promoted        int
	workers                  int
	yield                    func()
	scratch                  sync.Pool
}

// Customize returns a new Graph for the base graph's topology with each
// road edge's duration replaced by dur[e] seconds (distances are kept):
// +Inf closes an edge, which can then neither be used nor snapped to.
// Every other value must be positive and finite. The result answers
// queries and matrices exactly like a graph built for these durations.
func (c *CCH) Customize(dur []float64, workers int) (*Graph, error) {
	return c.CustomizeYield(dur, workers, runtime.Gosched)
}

// CustomizeYield is Customize calling yield (from every worker) after
// each yieldRanks ranks, where the work may pause to let other goroutines
// run; Customize yields with runtime.Gosched.
func (c *CCH) CustomizeYield(dur []float64, workers int, yield func()) (*Graph, error) {
	z, err := c.NewCustomization(dur, workers, yield)
	if err != nil {
		return nil, err
	}
	return z.g, nil
}

// edgeWeights converts durations in seconds to packed edge weights,
// keeping each edge's distance; +Inf closes an edge.
func (c *CCH) edgeWeights(dur []float64) ([]int64, error) {
	g := c.base
	if len(dur) != len(g.weight) {
		return nil, fmt.Errorf("graph: customize: %d durations for %d edges", len(dur), len(g.weight))
	}
	weight := make([]int64, len(g.weight))
	for e, d := range dur {
		if math.IsInf(d, 1) {
			weight[e] = infWeight
			continue
		}
		ms := math.Round(d * 1000)
		if !(d > 0) || ms >= maxEdgeDurMs {
			return nil, fmt.Errorf("graph: customize: edge %d: duration %v s is not positive and finite", e, d)
		}
		_, cm := unpackWeight(g.weight[e])
		weight[e] = packWeight(max(int64(ms), 1), cm)
	}
	return weight, nil
}

// NewCustomization customizes the hierarchy for the durations dur, as
// CustomizeYield, and keeps every arc's weights so that Update can
// re-customize for later durations where they changed only.
func (c *CCH) NewCustomization(dur []float64, workers int, yield func()) (*Customization, error) {
	g := c.base
	weight, err := c.edgeWeights(dur)
	if err != nil {
		return nil, err
	}
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	n := len(c.rank)
	ng := &Graph{Road: g.Road, weight: weight, chOfEdge: g.chOfEdge, edgeOfCH: g.edgeOfCH,
		turnFirst: g.turnFirst, turnHead: g.turnHead, rturnFirst: g.rturnFirst, rturnHead: g.rturnHead}
	// Perfect customization leaves little for stall-on-demand to prune
	// (Porto: 290 settled nodes with it, 297 without) while scanning the
	// large separator cliques costs more: measured 1.4x against 1.9x the
	// static CH's query time without and with stalling.
	ng.noStall = true
	ng.rank = c.rank
	ng.nodeW = make([]int64, n)
	for v, e := range g.edgeOfCH {
		ng.nodeW[v] = weight[e]
	}
	na := len(c.head)
	cu := &customization{
		up: make([]int64, na), down: make([]int64, na),
		upL: make([]uint32, na), upR: make([]uint32, na), downL: make([]uint32, na), downR: make([]uint32, na),
		workers: workers, yield: yield,
	}
	// Original arcs: the turn v→h costs entering h.
	for a := range na {
		cu.up[a], cu.down[a] = c.originalArc(ng.nodeW, uint32(a))
		cu.upL[a], cu.downL[a] = noNode, noNode
	}
	c.lowerTriangles(cu)
	c.perfect(cu)
	c.emit(ng, cu)
	if err := ng.validateSnapshot(); err != nil {
		return nil, err
	}
	z := &Customization{c: c, cu: cu, g: ng, Last: UpdateStats{Edges: len(weight), Basic: n, Exact: n, Arcs: na, Full: true}}
	z.recycle(ng)
	return z, nil
}

// yieldRanks: customization yields its processor (its yield function;
// Customize: runtime.Gosched) after this many ranks (emit: eight times as
// many nodes), about every 0.1 ms. It runs beside a server's requests, and a goroutine that is not
// blocked otherwise keeps its processor for the scheduler's 10 ms time
// slice: with live traffic customized every 1.5-3 s under 10,000 pings/s,
// the requests' p99 in the second half of bench ingest's load was 42-88
// ms without yielding and 34-48 ms with it (4 alternating pairs).
const yieldRanks = 128

// lowerTriangles is the basic customization (Dibbelt et al. 2016, §5.1):
// in rank order, every arc v–u is improved by the paths v→x→u and u→x→v
// through each common lower neighbour x, whose arcs are final by then.
// Ranks of one elimination-tree level are independent and run in
// parallel.
func (c *CCH) lowerTriangles(cu *customization) {
	n := len(c.rank)
	c.byLevels(cu.workers, false, func(ranks []uint32) {
		idx, _ := cu.scratch.Get().([]uint32)
		if idx == nil {
			idx = make([]uint32, n)
		}
		for i, v := range ranks {
			c.relaxNode(cu, v, idx)
			if i%yieldRanks == yieldRanks-1 {
				cu.yield()
			}
		}
		cu.scratch.Put(idx)
	})
}

// byLevels calls f on the ranks of each elimination-tree level, bottom-up
// or top-down, splitting a level among workers goroutines (ranks of one
// level are independent: neither is an ancestor of the other).
func (c *CCH) byLevels(workers int, topDown bool, f func(ranks []uint32)) {
	levels := len(c.levelFirst) - 1
	for i := range levels {
		l := i
		if topDown {
			l = levels - 1 - i
		}
		ranks := c.byLevel[c.levelFirst[l]:c.levelFirst[l+1]]
		w := workers
		if len(ranks) < 256 {
			w = 1
		}
		if w == 1 {
			f(ranks)
			continue
		}
		var wg sync.WaitGroup
		chunk := (len(ranks) + w - 1) / w
		for k := range w {
			lo, hi := k*chunk, min((k+1)*chunk, len(ranks))
			if lo >= hi {
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				f(ranks[lo:hi])
			}()
		}
		wg.Wait()
	}
}

// relaxNode finalizes the upward arcs of rank v from its lower triangles.
func (c *CCH) relaxNode(cu *customization, v uint32, idx []uint32) {
	for a := c.first[v]; a < c.first[v+1]; a++ {
		idx[c.head[a]] = a
	}
	up, down, head := cu.up, cu.down, c.head
	for i := c.dfirst[v]; i < c.dfirst[v+1]; i++ {
		x, ax := c.dtail[i], c.darc[i]
		xv, vx := up[ax], down[ax]
		if xv >= infWeight && vx >= infWeight {
			continue
		}
		end := c.first[x+1]
		for a2 := ax + 1; a2 < end; a2++ {
			a := idx[head[a2]]
			if w := vx + up[a2]; w < up[a] {
				up[a], cu.upL[a], cu.upR[a] = w, ax, a2
			}
			if w := down[a2] + xv; w < down[a] {
				down[a], cu.downL[a], cu.downR[a] = w, a2, ax
			}
		}
	}
}

// perfect computes the exact distance of every arc's ends top-down
// (Dibbelt et al. 2016, §5.2, perfect customization): the shortest path
// from x to u leaves x by one of its arcs x→z with its basic weight and
// continues with the exact z→u, both ends above x. An arc whose basic
// weight exceeds the exact distance is never needed by a query: on every
// shortest path, the arcs between successive prefix maxima have exact
// weights. Such arcs leave the search graph (they stay for unpacking).
// Ranks of one elimination-tree level are independent.
func (c *CCH) perfect(cu *customization) {
	cu.exUp = slices.Clone(cu.up)
	cu.exDown = slices.Clone(cu.down)
	c.byLevels(cu.workers, true, func(ranks []uint32) {
		for i, x := range ranks {
			c.exactNode(cu, x)
			if i%yieldRanks == yieldRanks-1 {
				cu.yield()
			}
		}
	})
}

// exactNode computes the exact weights of the arcs of rank x.
func (c *CCH) exactNode(cu *customization, x uint32) {
	up, down, exUp, exDown := cu.up, cu.down, cu.exUp, cu.exDown
	k := c.triFirst[x]
	end := c.first[x+1]
	for ai := c.first[x]; ai < end; ai++ {
		for aj := ai + 1; aj < end; aj++ {
			a := c.tri[k]
			k++
			// x→u via v, u→x via v, x→v via u, v→x via u.
			exUp[aj] = min(exUp[aj], up[ai]+exUp[a])
			exDown[aj] = min(exDown[aj], exDown[a]+down[ai])
			exUp[ai] = min(exUp[ai], up[aj]+exDown[a])
			exDown[ai] = min(exDown[ai], exUp[a]+down[aj])
		}
	}
}

// emit writes the customized weights as the snapshot's upward forward and
// backward graphs over CH node ids, leaving out infinite arcs, and links
// every shortcut to its two parts. Each node's arcs are laid out as
// [searched | mirrors | unsearched]: the arcs queries search (exact
// weights), a copy of each unsearched arc in the same order, then the
// unsearched arcs, which only unpacking needs and which shortcuts' links
// refer to. When an update (Customization.Update) finds the k-th
// unsearched arc exact, the searched range grows over the mirrors up to
// its copy: every arc keeps its index and Head does not change; the other
// mirrors it takes in are searched too, harmless, as their weights are
// paths' (they are kept equal to their arcs'). The up graphs have no Mid:
// a snapshot is never saved, and Unpack holds the middle nodes.
func (c *CCH) emit(ng *Graph, cu *customization) {
	n := len(c.rank)
	na := len(c.head)
	cu.fwdIdx = make([]uint32, na)
	cu.bwdIdx = make([]uint32, na)
	// Slots of each graph: its arcs and their mirrors; and the shortcuts.
	var nf, nb, shortcuts int
	count := func(slots *int, w, ex int64, l uint32) {
		if w < infWeight {
			*slots++
			if ex != w {
				*slots++
			}
			if l != noNode {
				shortcuts++
			}
		}
	}
	for a := range na {
		count(&nf, cu.up[a], cu.exUp[a], cu.upL[a])
		count(&nb, cu.down[a], cu.exDown[a], cu.downL[a])
	}
	fwd := upGraph{First: make([]uint32, n+1), End: make([]uint32, n), Head: make([]uint32, 0, nf), Weight: make([]int64, 0, nf)}
	bwd := upGraph{First: make([]uint32, n+1), End: make([]uint32, n), Head: make([]uint32, 0, nb), Weight: make([]int64, 0, nb)}
	add := func(u *upGraph, idx []uint32, a uint32, h uint32, w int64) {
		idx[a] = uint32(len(u.Head))
		u.Head, u.Weight = append(u.Head, h), append(u.Weight, w)
	}
	grow := func(u *upGraph, k int) {
		m := len(u.Head) + k
		u.Head, u.Weight = u.Head[:m], u.Weight[:m]
	}
	mirrors := 0
	for v := range n {
		if v%(8*yieldRanks) == 8*yieldRanks-1 {
			cu.yield()
		}
		r := c.rank[v]
		sf, sb := 0, 0
		for a := c.first[r]; a < c.first[r+1]; a++ {
			cu.fwdIdx[a], cu.bwdIdx[a] = noNode, noNode
			if w := cu.up[a]; w < infWeight && cu.exUp[a] != w {
				sf++
			}
			if w := cu.down[a]; w < infWeight && cu.exDown[a] != w {
				sb++
			}
		}
		for pass := range 2 {
			for a := c.first[r]; a < c.first[r+1]; a++ {
				h := c.order[c.head[a]]
				if w := cu.up[a]; w < infWeight && (cu.exUp[a] == w) == (pass == 0) {
					add(&fwd, cu.fwdIdx, a, h, w)
				}
				if w := cu.down[a]; w < infWeight && (cu.exDown[a] == w) == (pass == 0) {
					add(&bwd, cu.bwdIdx, a, h, w)
				}
			}
			if pass == 0 {
				fwd.End[v], bwd.End[v] = uint32(len(fwd.Head)), uint32(len(bwd.Head))
				grow(&fwd, sf)
				grow(&bwd, sb)
				mirrors += sf + sb
			}
		}
		fwd.First[v+1], bwd.First[v+1] = uint32(len(fwd.Head)), uint32(len(bwd.Head))
	}
	cu.fwdSearched, cu.bwdSearched = slices.Clone(fwd.End), slices.Clone(bwd.End)
	cu.mirrors, cu.promoted = mirrors, 0
	// Children: an upward v→u via x is v→x (x's backward graph) then x→u
	// (x's forward graph); a downward u→v via x is u→x (backward) then x→v
	// (forward). The CCH arcs were recorded as (left, right) in travel
	// order.
	fwd.Unpack = make([]unpackInfo, len(fwd.Head))
	bwd.Unpack = make([]unpackInfo, len(bwd.Head))
	for a := range na {
		if i := cu.fwdIdx[a]; i != noNode {
			fwd.Unpack[i] = c.unpackOf(cu, cu.upL[a], cu.upR[a])
		}
		if i := cu.bwdIdx[a]; i != noNode {
			bwd.Unpack[i] = c.unpackOf(cu, cu.downL[a], cu.downR[a])
		}
	}
	fwd.fillMirrors()
	bwd.fillMirrors()
	ng.fwd, ng.bwd = fwd, bwd
	ng.stats = c.base.stats
	ng.stats.UpArcs, ng.stats.Shortcuts, ng.stats.TransitNodes = len(fwd.Head)+len(bwd.Head)-mirrors, shortcuts, 0
}

// unpackOf returns the unpacking links of an arc made of the CCH arcs left
// then right (left noNode: an original arc).
func (c *CCH) unpackOf(cu *customization, left, right uint32) unpackInfo {
	if left == noNode {
		return unpackInfo{noNode, noNode, noNode}
	}
	return unpackInfo{c.order[c.tail[right]], cu.bwdIdx[left], cu.fwdIdx[right]}
}

// fillMirrors copies each node's unsearched arcs into its mirror slots,
// which emit left as long as the unsearched range, just before it.
func (u *upGraph) fillMirrors() {
	for v := range u.End {
		k := (u.First[v+1] - u.End[v]) / 2
		lo, mid, hi := u.End[v], u.End[v]+k, u.First[v+1]
		copy(u.Head[lo:mid], u.Head[mid:hi])
		copy(u.Weight[lo:mid], u.Weight[mid:hi])
		copy(u.Unpack[lo:mid], u.Unpack[mid:hi])
	}
}

// validateSnapshot checks the children links of a customized graph.
func (g *Graph) validateSnapshot() error {
	for _, u := range []*upGraph{&g.fwd, &g.bwd} {
		for i, ui := range u.Unpack {
			if ui.mid != noNode && (ui.left == noNode || ui.right == noNode) {
				return fmt.Errorf("%w: customized arc %d", errBadShortcut, i)
			}
		}
	}
	return nil
}

// SearchArcs returns the number of arcs queries relax on a customized
// graph (after perfect customization) and the total stored.
func (g *Graph) SearchArcs() (search, total int) {
	for _, u := range []*upGraph{&g.fwd, &g.bwd} {
		for v := 0; v+1 < len(u.First); v++ {
			search += int(u.End[v] - u.First[v])
		}
		total += len(u.Head)
	}
	return search, total
}
