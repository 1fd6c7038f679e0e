package graph

import (
	"errors"
	"fmt"
	"math"
	"slices"
)

// EdgePoint is a start or end point: a directed road edge and the fraction
// along it (0 = at Edges[Edge].From, 1 = at Edges[Edge].To).
type EdgePoint struct {
	Edge     uint32
	Fraction float64
}

// Endpoint is a snapped location: all directed edges it may be on (one for
// a oneway road, two for a two-way road) and the snapped position.
//
// Costs of partial edges: starting at fraction f on edge e costs the
// remaining (1-f)·w(e) to reach e's head; ending at fraction g on edge t
// costs g·w(t) after entering t; a source and a target on the same directed
// edge with f ≤ g give the direct cost (g-f)·w(e), and with f > g the route
// leaves e and comes back to it. Partial costs are computed as
// w(e) - round(f·w(e)) and round(g·w(e)) - w(e) per part (milliseconds and
// centimetres), so the direct case costs round(g·w) - round(f·w) exactly.
// Points on edges that are not Routable are ignored.
type Endpoint struct {
	Points   []EdgePoint
	Lat, Lon float64
}

// LatLon is a WGS84 position in degrees.
type LatLon struct{ Lat, Lon float64 }

// Route is a shortest route between two endpoints.
type Route struct {
	// Duration in seconds and Distance in metres (from the integer
	// milliseconds and centimetres the search uses).
	Duration, Distance float64
	// Edges is the road edge sequence, first and last possibly partial.
	Edges []uint32
	// Nodes are the road nodes passed between consecutive edges
	// (len(Edges)-1 of them).
	Nodes []uint32
	// Geometry is the polyline from the source position on the first edge
	// to the target position on the last edge, along the edge shapes.
	Geometry []LatLon
	// SrcFraction and DstFraction are the positions on the first and last
	// edge; SrcPoint and DstPoint index the Endpoint.Points used.
	SrcFraction, DstFraction float64
	SrcPoint, DstPoint       int
}

// seed is a weighted start node of a search.
type seed struct {
	node  uint32 // CH node
	point int32  // index into Endpoint.Points
	extra uint32 // road edge appended after node (target side), or noNode
	off   int64
}

// nodeState is the per-node state of one search direction, in one struct
// so that a node's label, stamp, parent and heap position share a cache
// line.
type nodeState struct {
	dist      int64
	stamp     uint32 // the state is valid only where stamp == side.cur
	parent    uint32 // previous node, noNode at a seed
	parentArc uint32 // arc index into the up graph, or seed index at a seed
	pos       int32  // heap index while queued
}

// side is the state of one search direction, reused across queries.
type side struct {
	st   []nodeState
	heap quadHeap
	cur  uint32
}

func newSide(n int) side {
	st := make([]nodeState, n)
	return side{st: st, heap: quadHeap{st: st}}
}

func (s *side) reset() {
	s.cur++
	if s.cur == 0 {
		clear(s.st)
		s.cur = 1
	}
	s.heap.reset()
}

func (s *side) reached(v uint32) bool { return s.st[v].stamp == s.cur }

// relax offers label d to v via parent p and arc a.
func (s *side) relax(v uint32, d int64, p, a uint32) {
	n := &s.st[v]
	if n.stamp != s.cur {
		n.stamp, n.dist, n.parent, n.parentArc = s.cur, d, p, a
		s.heap.push(v, d)
	} else if d < n.dist {
		n.dist, n.parent, n.parentArc = d, p, a
		s.heap.decrease(v, d)
	}
}

func (s *side) seed(seeds []seed) int64 {
	s.reset()
	minOff := int64(infWeight)
	for i, sd := range seeds {
		s.relax(sd.node, sd.off, noNode, uint32(i))
		minOff = min(minOff, sd.off)
	}
	return minOff
}

// Query holds the reusable state of route queries on one Graph. A Query
// must not be used by several goroutines at once.
type Query struct {
	g      *Graph
	fw, bw side
	ss, ts []seed
	// direct is the best same-edge candidate found by prepare.
	direct               int64
	directSrc, directDst int32
	minS, minT           int64
	path, stack          []uint32
	accF, accB           []access // transit nodes reached (transitSearch)
	// Settled counts the nodes settled by the last CH search (statistics).
	Settled int
	// NoTransit makes Cost search the whole hierarchy instead of stopping
	// below the transit table (to measure what the table gains).
	NoTransit bool
}

// NewQuery returns a Query for g. Its buffers are sized for the graph, so
// one query per goroutine should be kept and reused.
func (g *Graph) NewQuery() *Query {
	n := len(g.edgeOfCH)
	return &Query{g: g, fw: newSide(n), bw: newSide(n)}
}

// For returns a Query for g: q itself, its buffers reused, when g has as
// many CH nodes as q's graph (a customization of the same graph, or the
// graph it customizes), else a new Query. A server swaps in a customized
// snapshot every second or so under live traffic; a new Query per
// goroutine and snapshot cost 7 MB of cleared memory each on Porto.
func (q *Query) For(g *Graph) *Query {
	if q.g == g {
		return q
	}
	if len(q.g.edgeOfCH) != len(g.edgeOfCH) {
		return g.NewQuery()
	}
	q.g = g
	return q
}

// endNode returns the CH node of road edge e and whether a route may start
// or end on e: it must be routable and, in a customized graph, open.
func (g *Graph) endNode(e uint32) (uint32, bool) {
	v := g.chOfEdge[e]
	return v, v != noNode && g.weight[e] < infWeight
}

// checkEndpoint validates the points of an endpoint.
func (g *Graph) checkEndpoint(what string, ep Endpoint) error {
	usable := 0
	for i, p := range ep.Points {
		if int(p.Edge) >= len(g.chOfEdge) {
			return fmt.Errorf("graph: %s point %d: edge %d out of range [0,%d)", what, i, p.Edge, len(g.chOfEdge))
		}
		if !(p.Fraction >= 0 && p.Fraction <= 1) {
			return fmt.Errorf("graph: %s point %d: fraction %v not in [0,1]", what, i, p.Fraction)
		}
		if _, ok := g.endNode(p.Edge); ok {
			usable++
		}
	}
	if usable == 0 {
		return fmt.Errorf("%w: %s endpoint has no routable edge", ErrNoRoute, what)
	}
	return nil
}

// prepare turns the endpoints into search seeds (see Endpoint).
func (q *Query) prepare(src, dst Endpoint) error {
	g := q.g
	if err := g.checkEndpoint("source", src); err != nil {
		return err
	}
	if err := g.checkEndpoint("target", dst); err != nil {
		return err
	}
	q.ss, q.ts = q.ss[:0], q.ts[:0]
	q.direct, q.directSrc, q.directDst = infWeight, -1, -1
	for i, p := range src.Points {
		v, ok := g.endNode(p.Edge)
		if !ok {
			continue
		}
		w := g.weight[p.Edge]
		q.ss = append(q.ss, seed{node: v, point: int32(i), extra: noNode, off: w - scaleWeight(w, p.Fraction)})
	}
	for j, p := range dst.Points {
		v, ok := g.endNode(p.Edge)
		if !ok {
			continue
		}
		w := g.weight[p.Edge]
		gw := scaleWeight(w, p.Fraction)
		shared := false
		for i, sp := range src.Points {
			if sp.Edge != p.Edge {
				continue
			}
			shared = true
			if sp.Fraction <= p.Fraction {
				if c := gw - scaleWeight(w, sp.Fraction); c < q.direct {
					q.direct, q.directSrc, q.directDst = c, int32(i), int32(j)
				}
			}
		}
		if !shared {
			q.ts = append(q.ts, seed{node: v, point: int32(j), extra: noNode, off: gw - w})
			continue
		}
		// The target edge is also a source edge: reach it again through
		// one of its predecessors so that the search cannot use the
		// source position beyond the target position.
		for _, u := range g.rturnHead[g.rturnFirst[v]:g.rturnFirst[v+1]] {
			q.ts = append(q.ts, seed{node: u, point: int32(j), extra: p.Edge, off: gw})
		}
	}
	return nil
}

// Route computes the shortest route from src to dst with the contraction
// hierarchy: a bidirectional upward Dijkstra search with stall-on-demand
// (Geisberger et al. 2008, §5). It returns an error wrapping ErrNoRoute
// when no route exists.
func (q *Query) Route(src, dst Endpoint) (Route, error) {
	best, meet, err := q.chSearch(src, dst)
	if err != nil {
		return Route{}, err
	}
	return q.finish(src, dst, best, meet, q.unpackCH)
}

// Cost returns the duration (s) and distance (m) of the shortest route
// like Route, without building the path. On a graph with a transit table
// (see transit.go) it searches only below the transit nodes.
func (q *Query) Cost(src, dst Endpoint) (duration, distance float64, err error) {
	var best int64
	if q.g.transit.k > 0 && !q.NoTransit {
		best, err = q.transitSearch(src, dst)
	} else {
		best, _, err = q.chSearch(src, dst)
	}
	if err != nil {
		return 0, 0, err
	}
	best = min(best, q.direct)
	if best >= infWeight {
		return 0, 0, ErrNoRoute
	}
	return weightSeconds(best), weightMetres(best), nil
}

func (q *Query) chSearch(src, dst Endpoint) (best int64, meet uint32, err error) {
	if err := q.prepare(src, dst); err != nil {
		return 0, noNode, err
	}
	q.minS = q.fw.seed(q.ss)
	q.minT = q.bw.seed(q.ts)
	best, meet = infWeight, noNode
	fDone, bDone := len(q.ss) == 0, len(q.ts) == 0
	forward := true
	q.Settled = 0
	for {
		if !fDone && (q.fw.heap.len() == 0 || q.fw.heap.minKey()+q.minT >= best) {
			fDone = true
		}
		if !bDone && (q.bw.heap.len() == 0 || q.bw.heap.minKey()+q.minS >= best) {
			bDone = true
		}
		if fDone && bDone {
			break
		}
		if fDone {
			forward = false
		} else if bDone {
			forward = true
		}
		q.Settled++
		if forward {
			if m, d := q.chStep(&q.fw, &q.bw, 0); d < best {
				best, meet = d, m
			}
		} else {
			if m, d := q.chStep(&q.bw, &q.fw, 1); d < best {
				best, meet = d, m
			}
		}
		forward = !forward
	}
	return best, meet, nil
}

// chStep settles one node of side s (dir 0 = forward, 1 = backward) with
// stall-on-demand. It returns the settled node and the cost of the path
// meeting the other side o there.
func (q *Query) chStep(s, o *side, dir int) (uint32, int64) {
	it := s.heap.pop()
	u, du := it.node, it.key
	cand := int64(infWeight)
	if ou := &o.st[u]; ou.stamp == o.cur {
		cand = du + ou.dist
	}
	q.g.relaxUp(s, u, du, dir)
	return u, cand
}

// relaxUp relaxes the upward arcs of u (settled at du) in direction dir
// unless u is stalled, and reports whether it was not stalled.
//
// Stall-on-demand (Geisberger et al. 2008, §5.2): u's label is not exact
// when a higher node reached by this search has a shorter way down to u;
// then u's arcs need not be relaxed.
func (g *Graph) relaxUp(s *side, u uint32, du int64, dir int) bool {
	st, cur := s.st, s.cur
	up, down := &g.fwd, &g.bwd
	if dir == 1 {
		up, down = down, up
	}
	b, e := down.First[u], down.End[u]
	heads, ws := down.Head[b:e], down.Weight[b:e]
	ws = ws[:len(heads)]
	if !g.noStall {
		for k, x := range heads {
			if n := &st[x]; n.stamp == cur && n.dist+ws[k] < du {
				return false
			}
		}
	}
	b, e = up.First[u], up.End[u]
	heads, ws = up.Head[b:e], up.Weight[b:e]
	ws = ws[:len(heads)]
	for k, v := range heads {
		d := du + ws[k]
		n := &st[v]
		if n.stamp != cur {
			n.stamp, n.dist, n.parent, n.parentArc = cur, d, u, b+uint32(k)
			s.heap.push(v, d)
		} else if d < n.dist {
			n.dist, n.parent, n.parentArc = d, u, b+uint32(k)
			s.heap.decrease(v, d)
		}
	}
	return true
}

// unpackCH appends to q.path the CH node path from the forward seed to the
// backward seed through meet, unpacking shortcuts. It returns the seeds.
func (q *Query) unpackCH(meet uint32) (seed, seed, error) {
	g := q.g
	q.path = q.path[:0]
	// Forward half, collected backwards then reversed.
	v := meet
	for q.fw.st[v].parent != noNode {
		p, a := q.fw.st[v].parent, q.fw.st[v].parentArc
		start := len(q.path)
		if err := g.unpackArc(v, a, &q.path, &q.stack); err != nil {
			return seed{}, seed{}, err
		}
		slices.Reverse(q.path[start:])
		v = p
	}
	sSeed := q.ss[q.fw.st[v].parentArc]
	q.path = append(q.path, v)
	slices.Reverse(q.path)
	v = meet
	for q.bw.st[v].parent != noNode {
		p, a := q.bw.st[v].parent, q.bw.st[v].parentArc
		if err := g.unpackArc(p, a|bwdRef, &q.path, &q.stack); err != nil {
			return seed{}, seed{}, err
		}
		v = p
	}
	return sSeed, q.ts[q.bw.st[v].parentArc], nil
}

// bwdRef marks an arc reference into the backward up graph; without it a
// reference is an index into the forward up graph.
const bwdRef = 1 << 31

var errBadShortcut = errors.New("graph: shortcut cannot be unpacked")

// unpackArc appends the CH nodes after the tail of arc ref, whose head in
// travel direction is y, in path order, ending with y. A shortcut x→y with
// middle node m has children x→m (in m's backward up graph) and m→y (in m's
// forward up graph), precomputed in Left and Right.
func (g *Graph) unpackArc(y, ref uint32, out *[]uint32, stack *[]uint32) error {
	st := append((*stack)[:0], y, ref)
	limit := len(*out) + 2*len(g.edgeOfCH) // a simple path is shorter
	for len(st) > 0 {
		y, ref := st[len(st)-2], st[len(st)-1]
		st = st[:len(st)-2]
		u := &g.fwd
		if ref&bwdRef != 0 {
			u = &g.bwd
		}
		ui := u.Unpack[ref&^bwdRef]
		m := ui.mid
		if m == noNode {
			*out = append(*out, y)
			if len(*out) > limit {
				*stack = st
				return errBadShortcut
			}
			continue
		}
		st = append(st, y, ui.right, m, ui.left|bwdRef)
	}
	*stack = st
	return nil
}

// findArc returns the index of the arc of node v with head h.
func (u *upGraph) findArc(v, h uint32) (uint32, bool) {
	for i := u.First[v]; i < u.First[v+1]; i++ {
		if u.Head[i] == h {
			return i, true
		}
	}
	return 0, false
}

// linkChildren computes Left and Right of every shortcut of both up graphs.
func (g *Graph) linkChildren() error {
	for _, u := range []*upGraph{&g.fwd, &g.bwd} {
		isFwd := u == &g.fwd
		u.Unpack = make([]unpackInfo, len(u.Head))
		for v := 0; v+1 < len(u.First); v++ {
			for i := u.First[v]; i < u.First[v+1]; i++ {
				m := u.Mid[i]
				if m == noNode {
					u.Unpack[i] = unpackInfo{noNode, noNode, noNode}
					continue
				}
				x, y := uint32(v), u.Head[i]
				if !isFwd {
					x, y = y, x
				}
				l, ok1 := g.bwd.findArc(m, x)
				r, ok2 := g.fwd.findArc(m, y)
				if !ok1 || !ok2 {
					return fmt.Errorf("%w: arc %d->%d via %d", errBadShortcut, x, y, m)
				}
				u.Unpack[i] = unpackInfo{m, l, r}
			}
		}
	}
	return nil
}

// finish builds the Route from the best search result or the direct
// same-edge candidate.
func (q *Query) finish(src, dst Endpoint, best int64, meet uint32, unpack func(uint32) (seed, seed, error)) (Route, error) {
	g := q.g
	var r Route
	if q.direct <= best && q.direct != infWeight {
		sp, dp := src.Points[q.directSrc], dst.Points[q.directDst]
		r = Route{Edges: []uint32{sp.Edge}, SrcFraction: sp.Fraction, DstFraction: dp.Fraction,
			SrcPoint: int(q.directSrc), DstPoint: int(q.directDst)}
		best = q.direct
	} else {
		if meet == noNode {
			return Route{}, ErrNoRoute
		}
		ss, ts, err := unpack(meet)
		if err != nil {
			return Route{}, err
		}
		r.Edges = make([]uint32, 0, len(q.path)+1)
		for _, v := range q.path {
			r.Edges = append(r.Edges, g.edgeOfCH[v])
		}
		if ts.extra != noNode {
			r.Edges = append(r.Edges, ts.extra)
		}
		r.SrcPoint, r.DstPoint = int(ss.point), int(ts.point)
		r.SrcFraction, r.DstFraction = src.Points[ss.point].Fraction, dst.Points[ts.point].Fraction
	}
	r.Duration, r.Distance = weightSeconds(best), weightMetres(best)
	if len(r.Edges) > 1 {
		r.Nodes = make([]uint32, len(r.Edges)-1)
		for i := range r.Nodes {
			r.Nodes[i] = g.Road.Edges[r.Edges[i]].To
		}
	}
	np := 3 // start point, plus interpolated points of partial end edges
	for _, e := range r.Edges {
		ed := &g.Road.Edges[e]
		np += int(ed.ShapeEnd-ed.ShapeStart) + 1
	}
	r.Geometry = g.appendGeometry(make([]LatLon, 0, np), r.Edges, r.SrcFraction, r.DstFraction)
	return r, nil
}

// appendGeometry appends the polyline of an edge sequence starting at
// fraction f0 of the first edge and ending at fraction f1 of the last.
func (g *Graph) appendGeometry(dst []LatLon, edges []uint32, f0, f1 float64) []LatLon {
	n := g.Road
	for i, e := range edges {
		a, b := 0.0, 1.0
		if i == 0 {
			a = f0
		}
		if i == len(edges)-1 {
			b = f1
		}
		if a == 0 && b == 1 {
			ed := &n.Edges[e]
			if i == 0 {
				dst = append(dst, LatLon{n.Lat[ed.From], n.Lon[ed.From]})
			}
			for k := ed.ShapeStart; k < ed.ShapeEnd; k++ {
				dst = append(dst, LatLon{n.ShapeLat[k], n.ShapeLon[k]})
			}
			dst = append(dst, LatLon{n.Lat[ed.To], n.Lon[ed.To]})
			continue
		}
		dst = g.appendEdgePart(dst, e, a, b, i > 0)
	}
	return dst
}

// edgePoint returns point i of edge e's polyline (0 = From, np-1 = To).
func (n *Network) edgePoint(ed *Edge, i, np int) LatLon {
	switch {
	case i == 0:
		return LatLon{n.Lat[ed.From], n.Lon[ed.From]}
	case i == np-1:
		return LatLon{n.Lat[ed.To], n.Lon[ed.To]}
	}
	k := int(ed.ShapeStart) + i - 1
	return LatLon{n.ShapeLat[k], n.ShapeLon[k]}
}

// planarLen is the length of segment p-r in degrees of latitude, by the
// equirectangular approximation (enough to place a fraction on an edge).
func planarLen(p, r LatLon) float64 {
	x := (r.Lon - p.Lon) * math.Cos((p.Lat+r.Lat)*math.Pi/360)
	y := r.Lat - p.Lat
	return math.Sqrt(x*x + y*y)
}

// appendEdgePart appends the part of edge e's polyline between fractions a
// and b of its length, the first point omitted when skipFirst is set.
func (g *Graph) appendEdgePart(dst []LatLon, e uint32, a, b float64, skipFirst bool) []LatLon {
	n := g.Road
	ed := &n.Edges[e]
	np := int(ed.ShapeEnd-ed.ShapeStart) + 2
	total := 0.0
	for i := 1; i < np; i++ {
		total += planarLen(n.edgePoint(ed, i-1, np), n.edgePoint(ed, i, np))
	}
	// interp returns the point at fraction f and the index of the first
	// polyline point after it.
	interp := func(f float64) (LatLon, int) {
		target := f * total
		acc := 0.0
		for i := 1; i < np; i++ {
			p, r := n.edgePoint(ed, i-1, np), n.edgePoint(ed, i, np)
			l := planarLen(p, r)
			if acc+l >= target || i == np-1 {
				t := 0.0
				if l > 0 {
					t = min(max((target-acc)/l, 0), 1)
				}
				return LatLon{p.Lat + t*(r.Lat-p.Lat), p.Lon + t*(r.Lon-p.Lon)}, i
			}
			acc += l
		}
		return n.edgePoint(ed, 0, np), 1
	}
	start, i0 := interp(a)
	end, i1 := interp(b)
	if !skipFirst {
		dst = append(dst, start)
	}
	for i := i0; i < i1; i++ {
		dst = append(dst, n.edgePoint(ed, i, np))
	}
	return append(dst, end)
}
