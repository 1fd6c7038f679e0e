package eta

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/lastmile/lastmile/graph"
	"github.com/tidwall/rtree"
)

// Map matching: a hidden Markov model in the manner of Newson & Krumm,
// "Hidden Markov Map Matching Through Noise and Sparseness" (ACM GIS 2009).
// The hidden states of a ping are its candidate positions on nearby road
// edges; emissions are Gaussian in the distance from the ping to the
// candidate (§4.1) and transitions exponential in the difference between
// the route distance and the great-circle distance of consecutive pings
// (§4.2). The Viterbi algorithm picks the most likely sequence of positions
// (§4.3); where no candidate or no transition exists the model "breaks"
// (§4.4) and the trace is matched as separate pieces.
//
// Route distances come from a bounded Dijkstra search over an edge-based
// graph of the routable edges (turn restrictions applied, U-turns
// penalised), one search per candidate of a ping to all candidates of the
// next, with timestamped buffers reused across searches. Candidates come
// from an R-tree over the edges' shape segments.

// Reasons under which MatchResult.Rejected counts rejected pings (and
// MatchedPing.Reason names them).
const (
	// RejectOutOfOrder: the timestamp is before the last accepted ping's.
	RejectOutOfOrder = "out_of_order"
	// RejectTeleport: the ping is an isolated jump: it implies a speed
	// above MatchOptions.MaxSpeed from the previous accepted ping and to
	// one of the next three pings, which is itself reachable from the
	// previous accepted ping within MaxSpeed (or, for the first ping, to
	// the next two pings, which agree with each other).
	RejectTeleport = "teleport"
	// RejectOffMap: no routable road lies within MatchOptions.Radius.
	RejectOffMap = "off_map"
	// RejectBadCoordinate: latitude or longitude not a number or out of the
	// WGS84 range.
	RejectBadCoordinate = "bad_coordinate"
)

// MatchOptions configures a Matcher. Zero fields take the defaults.
type MatchOptions struct {
	// Sigma is the standard deviation in metres of the GPS noise, the
	// emission model's scale (Newson & Krumm §4.1). Default 10.
	Sigma float64
	// Beta is the scale in metres of the exponential transition model on
	// |route distance - great-circle distance| (Newson & Krumm §4.2).
	// Default 10. Newson & Krumm estimate beta from ground truth as the
	// median of that difference over ln 2. On routes simulated at 10 s
	// sampling (as in TestMatchAccuracy) beta from 5 to 40 m gave true-edge
	// shares within 1.5 points of each other: larger values helped on
	// Monaco's dense streets and loops, smaller ones on Porto with 10 m
	// noise, and 10 m was within 0.5 point of the best on both.
	Beta float64
	// Radius in metres around a ping within which candidates are searched.
	// Default 50.
	Radius float64
	// MaxCandidates is the number of nearest directed edges kept per ping
	// (the two directions of a two-way road count as two). Default 8:
	// with 6, stacked and parallel roads in Monaco often pushed the true
	// edge out of the list, and breaks at 10 m noise were 4-5 times as
	// many (84 against 18 on 150 simulated Porto trips).
	MaxCandidates int
	// MaxSpeed in m/s: a ping implying a faster move from the previous
	// ping is a teleport, and no transition may imply it. Default 55.
	MaxSpeed float64
}

func (o *MatchOptions) setDefaults() error {
	def := func(v *float64, d float64, name string) error {
		if *v == 0 {
			*v = d
		}
		if !(*v > 0) || math.IsInf(*v, 0) {
			return fmt.Errorf("eta: match option %s = %v: must be a positive finite number", name, *v)
		}
		return nil
	}
	if err := def(&o.Sigma, 10, "Sigma"); err != nil {
		return err
	}
	if err := def(&o.Beta, 10, "Beta"); err != nil {
		return err
	}
	if err := def(&o.Radius, 50, "Radius"); err != nil {
		return err
	}
	if err := def(&o.MaxSpeed, 55, "MaxSpeed"); err != nil {
		return err
	}
	if o.MaxCandidates == 0 {
		o.MaxCandidates = 8
	}
	if o.MaxCandidates < 1 || o.MaxCandidates > 64 {
		return fmt.Errorf("eta: match option MaxCandidates = %d: must be in [1, 64]", o.MaxCandidates)
	}
	return nil
}

// Ping is one raw GPS fix of a vehicle.
type Ping struct {
	Time     time.Time
	Lat, Lon float64
	// Speed (m/s) and Heading (degrees) as reported by the device; NaN when
	// unknown. The matcher does not use them yet.
	Speed, Heading float64
}

// Traversal is the passage of the matched path over one road edge, with
// times interpolated along the path (see Matcher.Match).
type Traversal struct {
	Edge        uint32
	Enter, Exit time.Time
	// Full is set when the whole edge was traversed, so that both Enter and
	// Exit are interpolated between matched pings; it is false for the
	// first and last edges of a matched piece, where the vehicle was first
	// or last seen in the middle of the edge (Enter or Exit is then the
	// time of that ping).
	Full bool
}

// MatchedPing is the matched position of one input ping.
type MatchedPing struct {
	// Edge and Fraction give the position on the road (fraction of the
	// edge's length from its From node); Lat and Lon the matched point.
	Edge               uint32
	Fraction, Lat, Lon float64
	// OK is false for a rejected ping; Reason then says why (one of the
	// Reject* constants).
	OK     bool
	Reason string
}

// MatchResult is the outcome of Matcher.Match.
type MatchResult struct {
	// Points has one entry per input ping, in input order.
	Points []MatchedPing
	// Edges is the matched path: consecutive edges are joined
	// (Edges[i].To == Edges[i+1].From) within a piece; at an HMM break the
	// path jumps to the next piece, whose first edge index is listed in
	// Pieces.
	Edges []uint32
	// Pieces holds the index in Edges where each matched piece starts.
	Pieces []int
	// Traversals lists the edges of the matched path in order with their
	// entry and exit times.
	Traversals []Traversal
	// Breaks counts the HMM breaks: places where no candidate of a ping
	// could be reached from any candidate of the previous accepted ping.
	Breaks int
	// Rejected counts the rejected pings by reason (the Reject* constants).
	Rejected map[string]int
}

// Matcher matches GPS traces onto the routable part of a road graph. It is
// immutable after NewMatcher and safe for concurrent use; each call takes
// its scratch buffers from a pool.
type Matcher struct {
	g   *graph.Graph
	net *graph.Network
	opt MatchOptions

	// Candidate index: an R-tree over the bounding boxes, in degrees
	// ([lon, lat]), of the shape segments of routable edges; item i is
	// segment i: segment segIdx[i] (from polyline point segIdx[i] to
	// segIdx[i]+1) of edge segEdge[i], starting segAlong[i] metres along it.
	tree     rtree.RTreeG[uint32]
	segEdge  []uint32
	segIdx   []uint32
	segAlong []float64

	// edgeLen is the length of each edge's polyline in metres (the same
	// measure as segAlong, so that fractions are consistent).
	edgeLen []float64
	// tail is the position (lat, lon) of each edge's start: the goal
	// distance of the searches (mmGoal) is measured from it.
	tail [][2]float64

	// Edge-based graph of the allowed turns between routable edges, CSR:
	// the edges that may follow edge e are turnHead[turnFirst[e]:turnFirst[e+1]].
	// Turn restrictions apply as in the routing graph (graph/turns.go). A
	// U-turn onto the reverse of an edge is free where the edge has no
	// other exit; elsewhere it costs uTurnPenalty metres of route distance
	// (turnU marks those arcs), so that a noisy fix is not explained by
	// turning around in the middle of the road, while a vehicle that
	// really turns (taxis do) still gets a path instead of an HMM break.
	turnFirst    []uint32
	turnHead     []uint32
	turnU        []bool
	uTurnPenalty float64

	// Search bound (see bound): factor on the great-circle distance and
	// slack in metres.
	boundFactor, boundSlack float64

	pool sync.Pool // *mmState
}

// NewMatcher indexes the routable edges of g for matching.
func NewMatcher(g *graph.Graph, opt MatchOptions) (*Matcher, error) {
	if g == nil || g.Road == nil {
		return nil, errors.New("eta: NewMatcher: nil graph")
	}
	if err := opt.setDefaults(); err != nil {
		return nil, err
	}
	n := g.Road
	m := &Matcher{g: g, net: n, opt: opt, edgeLen: make([]float64, len(n.Edges)), tail: make([][2]float64, len(n.Edges))}
	nodes := len(n.Lat)
	if len(n.Lon) != nodes {
		return nil, fmt.Errorf("eta: NewMatcher: %d latitudes, %d longitudes", nodes, len(n.Lon))
	}
	// Routable out-edges of every node, CSR.
	out := make([]uint32, nodes+1)
	for e := range n.Edges {
		ed := &n.Edges[e]
		if int(ed.From) >= nodes || int(ed.To) >= nodes || ed.ShapeStart > ed.ShapeEnd ||
			int(ed.ShapeEnd) > len(n.ShapeLat) || int(ed.ShapeEnd) > len(n.ShapeLon) {
			return nil, fmt.Errorf("eta: NewMatcher: edge %d refers to a missing node or shape point", e)
		}
		if g.Routable(uint32(e)) {
			out[ed.From+1]++
		}
	}
	for v := 0; v < nodes; v++ {
		out[v+1] += out[v]
	}
	outEdge := make([]uint32, out[nodes])
	fill := slices.Clone(out[:nodes])
	for e := range n.Edges {
		if !g.Routable(uint32(e)) {
			continue
		}
		ed := &n.Edges[e]
		k := int(ed.ShapeEnd-ed.ShapeStart) + 2
		along := 0.0
		plat, plon := m.point(uint32(e), 0)
		for i := 1; i < k; i++ {
			qlat, qlon := m.point(uint32(e), i)
			l := mmPlanarDist(plat, plon, qlat, qlon)
			m.segEdge = append(m.segEdge, uint32(e))
			m.segIdx = append(m.segIdx, uint32(i-1))
			m.segAlong = append(m.segAlong, along)
			m.tree.Insert([2]float64{min(plon, qlon), min(plat, qlat)}, [2]float64{max(plon, qlon), max(plat, qlat)},
				uint32(len(m.segEdge)-1))
			along += l
			plat, plon = qlat, qlon
		}
		m.edgeLen[e] = along
		m.tail[e] = [2]float64{n.Lat[ed.From], n.Lon[ed.From]}
		outEdge[fill[ed.From]] = uint32(e)
		fill[ed.From]++
	}
	if len(m.segEdge) == 0 {
		return nil, errors.New("eta: NewMatcher: no routable edge")
	}
	m.buildTurns(out, outEdge)
	m.uTurnPenalty = mmUTurnPenalty
	m.boundFactor, m.boundSlack = mmBoundFactor, mmBoundSlack
	m.pool.New = func() any { return m.newState() }
	return m, nil
}

// buildTurns fills the turn graph from the routable out-edges of every node
// (CSR out/outEdge) and the network's turn restrictions.
func (m *Matcher) buildTurns(out, outEdge []uint32) {
	n := m.net
	ne := len(n.Edges)
	// Restrictions grouped by their From edge.
	byFrom := make(map[uint32][]graph.TurnRestriction)
	for _, r := range n.Restrictions {
		if int(r.From) < ne && int(r.To) < ne {
			byFrom[r.From] = append(byFrom[r.From], r)
		}
	}
	m.turnFirst = make([]uint32, ne+1)
	var uturns []uint32
	for a := range ne {
		if m.g.Routable(uint32(a)) {
			rs := byFrom[uint32(a)]
			only := false
			for _, r := range rs {
				only = only || r.Only
			}
			allowed := func(b uint32) bool {
				if only {
					for _, r := range rs {
						if r.Only && r.To == b {
							return true
						}
					}
					return false
				}
				for _, r := range rs {
					if r.To == b {
						return false
					}
				}
				return true
			}
			ea := &n.Edges[a]
			v := ea.To
			uturns = uturns[:0]
			start := len(m.turnHead)
			for _, b := range outEdge[out[v]:out[v+1]] {
				if !allowed(b) {
					continue
				}
				if eb := &n.Edges[b]; b != uint32(a) && eb.WayID == ea.WayID && eb.To == ea.From {
					uturns = append(uturns, b)
					continue
				}
				m.turnHead = append(m.turnHead, b)
				m.turnU = append(m.turnU, false)
			}
			deadEnd := len(m.turnHead) == start
			for _, b := range uturns {
				m.turnHead = append(m.turnHead, b)
				m.turnU = append(m.turnU, !deadEnd)
			}
		}
		m.turnFirst[a+1] = uint32(len(m.turnHead))
	}
}

// point returns polyline point i of edge e (0 = From node).
func (m *Matcher) point(e uint32, i int) (lat, lon float64) {
	n := m.net
	ed := &n.Edges[e]
	inner := int(ed.ShapeEnd - ed.ShapeStart)
	switch {
	case i == 0:
		return n.Lat[ed.From], n.Lon[ed.From]
	case i == inner+1:
		return n.Lat[ed.To], n.Lon[ed.To]
	}
	k := int(ed.ShapeStart) + i - 1
	return n.ShapeLat[k], n.ShapeLon[k]
}

// mmBoundFactor and mmBoundSlack define the longest route considered
// between two pings (see Matcher.bound).
const (
	mmBoundFactor = 2
	mmBoundSlack  = 100
)

// mmUTurnPenalty is the route distance in metres added for a U-turn where
// the road goes on.
const mmUTurnPenalty = 100

const (
	mmEarthRadius = 6371008.8 // mean Earth radius in metres (IUGG)
	mmDegToRad    = math.Pi / 180
)

// mmPlanarDist is the distance in metres between two close points by the
// equirectangular approximation.
func mmPlanarDist(lat1, lon1, lat2, lon2 float64) float64 {
	x := (lon2 - lon1) * mmDegToRad * math.Cos((lat1+lat2)*mmDegToRad/2)
	y := (lat2 - lat1) * mmDegToRad
	return mmEarthRadius * math.Sqrt(x*x+y*y)
}

// mmCand is a candidate position of a ping on an edge.
type mmCand struct {
	edge     uint32
	frac     float64
	dist     float64 // metres from the ping
	lat, lon float64
}

// mmItem is a heap entry of the bounded Dijkstra search.
type mmItem struct {
	dist float64
	node uint32
}

// mmState holds the scratch buffers of one Match call.
type mmState struct {
	// Dijkstra over edges, with timestamped entries so that a search
	// resets in O(1): dist[e] is the route distance to the start of edge e.
	dist   []float64
	parent []uint32 // edge before e on the route
	stamp  []uint32
	done   []uint32  // stamp of settled nodes
	target []uint32  // stamp of target nodes
	h      []float64 // goal distance of e (mmGoal.h), set with stamp
	cur    uint32
	heap   []mmItem

	// Viterbi lattice: candidates of step s are cands[cfirst[s]:cfirst[s+1]].
	cands  []mmCand
	cfirst []int
	score  []float64
	back   []int32
	step   []int // step -> ping index
	broken []bool

	// cache, during MatchCached, keeps candidates and routes across calls.
	cache *MatchCache

	// per-step scratch
	routes   []float32 // Matcher.routes without a cache
	tgtEdges []uint32
	route    []uint32
	chosen   []int
	valid    []int
}

func (m *Matcher) newState() *mmState {
	n := len(m.net.Edges)
	return &mmState{dist: make([]float64, n), parent: make([]uint32, n), stamp: make([]uint32, n),
		done: make([]uint32, n), target: make([]uint32, n), h: make([]float64, n)}
}

// candidates appends to dst the MaxCandidates nearest edge positions within
// Radius of (lat, lon), nearest first.
func (m *Matcher) candidates(dst []mmCand, lat, lon float64) []mmCand {
	base := len(dst)
	kx := mmEarthRadius * mmDegToRad * math.Cos(lat*mmDegToRad)
	ky := mmEarthRadius * mmDegToRad
	r := m.opt.Radius
	dLat, dLon := r/ky, r/max(kx, 1e-9)
	k := m.opt.MaxCandidates
	m.tree.Search([2]float64{lon - dLon, lat - dLat}, [2]float64{lon + dLon, lat + dLat},
		func(_, _ [2]float64, s uint32) bool {
			e, i := m.segEdge[s], int(m.segIdx[s])
			plat, plon := m.point(e, i)
			qlat, qlon := m.point(e, i+1)
			px, py := (plon-lon)*kx, (plat-lat)*ky
			dx, dy := (qlon-plon)*kx, (qlat-plat)*ky
			seg2 := dx*dx + dy*dy
			t := 0.0
			if seg2 > 0 {
				t = min(1, max(0, -(px*dx+py*dy)/seg2))
			}
			cx, cy := px+t*dx, py+t*dy
			d := math.Sqrt(cx*cx + cy*cy)
			if d > r {
				return true
			}
			// Keep the nearest segment per edge.
			for j := base; j < len(dst); j++ {
				if dst[j].edge == e {
					if d < dst[j].dist {
						dst[j] = m.candAt(e, s, t, d, plat, plon, qlat, qlon)
					}
					return true
				}
			}
			dst = append(dst, m.candAt(e, s, t, d, plat, plon, qlat, qlon))
			return true
		})
	c := dst[base:]
	slices.SortFunc(c, func(a, b mmCand) int {
		if a.dist != b.dist {
			if a.dist < b.dist {
				return -1
			}
			return 1
		}
		return int(a.edge) - int(b.edge)
	})
	if len(c) > k {
		dst = dst[:base+k]
	}
	return dst
}

func (m *Matcher) candAt(e, s uint32, t, d, plat, plon, qlat, qlon float64) mmCand {
	along := m.segAlong[s] + t*mmPlanarDist(plat, plon, qlat, qlon)
	f := 0.0
	if l := m.edgeLen[e]; l > 0 {
		f = min(1, max(0, along/l))
	}
	return mmCand{edge: e, frac: f, dist: d, lat: plat + t*(qlat-plat), lon: plon + t*(qlon-plon)}
}

// mmGoal is where a search heads: every position it looks for lies within
// r metres of (lat, lon). Its h is a lower bound on the route distance from
// the start of an edge to any of them, so that the searches run as A*
// (Hart, Nilsson and Raphael 1968) and explore an ellipse around the two
// pings instead of a disc of the whole bound; the distances they settle
// are the same.
type mmGoal struct {
	lat, lon, kx, r float64
}

// newGoal is the goal around (lat, lon) within r metres.
func newGoal(lat, lon, r float64) mmGoal {
	return mmGoal{lat: lat, lon: lon, kx: math.Cos(lat * mmDegToRad), r: r}
}

// mmGoalSlack scales the straight-line distance of mmGoal.h down, so that
// it stays below the route distance the edges' lengths give: those are
// measured per segment at the segment's own latitude (mmPlanarDist), h at
// the goal's, which differ by far less than this over a search's extent.
const mmGoalSlack = 0.995

// dist is the planar distance in metres from (lat, lon) to the goal's
// centre, at the goal's latitude.
func (g *mmGoal) dist(lat, lon float64) float64 {
	x := (lon - g.lon) * g.kx
	y := lat - g.lat
	return mmEarthRadius * mmDegToRad * math.Sqrt(x*x+y*y)
}

// h is the lower bound from a position to the goal's positions: the
// straight line to its centre, scaled by mmGoalSlack, less r.
func (g *mmGoal) h(ll [2]float64) float64 {
	return max(0, g.dist(ll[0], ll[1])*mmGoalSlack-g.r)
}

// search runs A* over the turn graph from the end of edge src, rem metres
// ahead, toward goal, until every edge marked as target in this round is
// reached or no route within bound is left. The distance to the start of
// an edge e is left in st.dist[e] for edges with st.done[e] == st.cur
// (exact: h is consistent, see mmGoal); src itself is only reached again
// through a loop. A target position on edge t at fraction f is at most
// f·edgeLen[t] beyond the start of t and within goal.r of its centre, so
// h(t) is at most that f·edgeLen[t]: no target route within bound is
// cut off by the A* order or by the pruning on dist + h.
func (m *Matcher) search(st *mmState, src uint32, rem, bound float64, targets int, goal *mmGoal) {
	st.heap = st.heap[:0]
	cur := st.cur
	if rem > bound {
		return
	}
	for k := m.turnFirst[src]; k < m.turnFirst[src+1]; k++ {
		e, d := m.turnHead[k], rem
		if m.turnU[k] {
			d += m.uTurnPenalty
		}
		m.push(st, e, d, src, bound, goal)
	}
	for len(st.heap) > 0 && targets > 0 {
		var it mmItem
		st.heap, it = mmPop(st.heap)
		u := it.node
		if st.done[u] == cur || it.dist > st.dist[u]+st.h[u] {
			continue
		}
		if it.dist > bound {
			break
		}
		st.done[u] = cur
		if st.target[u] == cur {
			targets--
		}
		d := st.dist[u] + m.edgeLen[u]
		if d > bound {
			continue
		}
		for k := m.turnFirst[u]; k < m.turnFirst[u+1]; k++ {
			e, de := m.turnHead[k], d
			if m.turnU[k] {
				de += m.uTurnPenalty
			}
			m.push(st, e, de, u, bound, goal)
		}
	}
}

// push offers edge e at route distance d, reached from edge from, to the
// search: kept when it improves e and its dist + h is within bound.
func (m *Matcher) push(st *mmState, e uint32, d float64, from uint32, bound float64, goal *mmGoal) {
	cur := st.cur
	if st.stamp[e] != cur {
		st.h[e] = goal.h(m.tail[e])
	} else if d >= st.dist[e] {
		return
	}
	f := d + st.h[e]
	if f > bound {
		return // not entered (an entered e had a larger d within bound)
	}
	st.stamp[e], st.dist[e], st.parent[e] = cur, d, from
	st.heap = mmPush(st.heap, mmItem{f, e})
}

func (st *mmState) nextRound() {
	st.cur++
	if st.cur == 0 { // wrapped: clear the stamps once every 2^32 rounds
		clear(st.stamp)
		clear(st.done)
		clear(st.target)
		st.cur = 1
	}
}

func mmPush(h []mmItem, it mmItem) []mmItem {
	h = append(h, it)
	i := len(h) - 1
	for i > 0 {
		p := (i - 1) / 2
		if h[p].dist <= h[i].dist {
			break
		}
		h[p], h[i] = h[i], h[p]
		i = p
	}
	return h
}

func mmPop(h []mmItem) ([]mmItem, mmItem) {
	top := h[0]
	n := len(h) - 1
	h[0] = h[n]
	h = h[:n]
	i := 0
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		c := l
		if r := l + 1; r < n && h[r].dist < h[l].dist {
			c = r
		}
		if h[i].dist <= h[c].dist {
			break
		}
		h[i], h[c] = h[c], h[i]
		i = c
	}
	return h, top
}

// sameEdgeBack is how far back (metres) a candidate may lie behind the
// previous one on the same edge and still count as not having moved: GPS
// noise on a slow or stopped vehicle makes consecutive projections jitter.
func (m *Matcher) sameEdgeBack() float64 { return 2 * m.opt.Sigma }

// direct returns the along-edge distance from a to b when both lie on the
// same edge with b ahead of a (or behind by noise only), and ok = false
// otherwise.
func (m *Matcher) direct(a, b *mmCand) (float64, bool) {
	if a.edge != b.edge {
		return 0, false
	}
	d := (b.frac - a.frac) * m.edgeLen[a.edge]
	if d >= 0 {
		return d, true
	}
	if -d <= m.sameEdgeBack() {
		return -d, true
	}
	return 0, false
}

// bound is the longest route distance considered between two pings gc
// metres and dt seconds apart: a detour of more than gc plus twice the
// search radius plus 100 m would cost at least that many metres over beta
// in the transition model, and no route may imply more than MaxSpeed.
func (m *Matcher) bound(gc, dt float64) float64 {
	b := m.boundFactor*gc + 2*m.opt.Radius + m.boundSlack
	if dt > 0 {
		b = min(b, m.opt.MaxSpeed*dt+2*m.opt.Radius)
	}
	return b
}

// Match matches a vehicle's pings, in time order, onto the road graph. It
// returns an error only for an empty input: bad pings are flagged in the
// result, counted in Rejected and left out of the matching.
//
// Rejections, in this order: coordinates not numbers or outside WGS84
// (bad_coordinate); a timestamp earlier than the last accepted ping's
// (out_of_order); an isolated jump, i.e. a ping that implies a speed above
// MaxSpeed from the previous accepted ping while one of the next three
// valid pings is reachable within MaxSpeed from that previous ping but not
// from the jumping one, or a first ping too far from the next two, which
// agree (teleport; a lasting jump instead splits the trace, counted in
// Breaks);
// no routable road within Radius (off_map).
//
// Traversal times are interpolated linearly by distance along the matched
// path between consecutive matched pings: an edge entered d metres after
// the ping at time t0 on a path of D metres to the next ping at t1 is
// entered at t0 + (t1-t0)·d/D. Pings without timestamps (zero Time) give
// zero-length traversals.
func (m *Matcher) Match(pings []Ping) (MatchResult, error) {
	return m.MatchCached(pings, nil)
}

// MatchCache keeps what MatchCached worked out for a vehicle's pings that
// does not depend on the other pings of the call: each ping's candidate
// roads and the route distances between the candidates of consecutive
// pings. A vehicle matched over a sliding window of its recent pings then
// searches routes only for its new pings. Entries not used by a call are
// dropped at its end. The zero value is ready; one vehicle's calls must
// not run at once.
type MatchCache struct {
	gen    uint32
	cands  map[pingKey]candEntry
	routes map[pairKey]routeEntry
}

// pingKey identifies a ping by its time and position.
type pingKey struct {
	t        int64
	lat, lon float64
}

func keyOf(p *Ping) pingKey { return pingKey{p.Time.UnixNano(), p.Lat, p.Lon} }

// pairKey identifies two consecutive matched pings.
type pairKey struct{ a, b pingKey }

type candEntry struct {
	gen   uint32
	cands []mmCand
}

type routeEntry struct {
	gen    uint32
	routes []float32 // Matcher.routes of the pair, from every candidate
}

// Len reports the pings and ping pairs the cache holds.
func (c *MatchCache) Len() (pings, pairs int) { return len(c.cands), len(c.routes) }

// MatchCached is Match with a cache of the vehicle's earlier calls (nil:
// none); the result is the same as Match's.
func (m *Matcher) MatchCached(pings []Ping, cache *MatchCache) (MatchResult, error) {
	if len(pings) == 0 {
		return MatchResult{}, errors.New("eta: match: no pings")
	}
	st := m.pool.Get().(*mmState)
	defer m.pool.Put(st)
	st.cache = cache
	defer func() { st.cache = nil }()
	if cache != nil {
		cache.gen++
		if cache.cands == nil {
			cache.cands, cache.routes = map[pingKey]candEntry{}, map[pairKey]routeEntry{}
		}
		defer cache.prune()
	}
	res := MatchResult{Points: make([]MatchedPing, len(pings)), Rejected: map[string]int{}}
	reject := func(i int, why string) {
		res.Points[i] = MatchedPing{Reason: why}
		res.Rejected[why]++
	}

	// Pass 1: coordinates and time order.
	st.valid = st.valid[:0]
	var last time.Time
	haveLast := false
	for i := range pings {
		p := &pings[i]
		if math.IsNaN(p.Lat) || math.IsNaN(p.Lon) || p.Lat < -90 || p.Lat > 90 || p.Lon < -180 || p.Lon > 180 {
			reject(i, RejectBadCoordinate)
			continue
		}
		if haveLast && p.Time.Before(last) {
			reject(i, RejectOutOfOrder)
			continue
		}
		last, haveLast = p.Time, true
		st.valid = append(st.valid, i)
	}

	// Pass 2: isolated jumps, then candidates.
	st.cands, st.cfirst, st.step = st.cands[:0], st.cfirst[:0], st.step[:0]
	st.cfirst = append(st.cfirst, 0)
	prev := -1
	for vi, i := range st.valid {
		p := &pings[i]
		if prev >= 0 && m.tooFast(&pings[prev], p) {
			isolated := false
			for _, j := range st.valid[vi+1 : min(vi+4, len(st.valid))] {
				if !m.tooFast(&pings[prev], &pings[j]) && m.tooFast(p, &pings[j]) {
					isolated = true
					break
				}
			}
			if isolated {
				reject(i, RejectTeleport)
				continue
			}
		}
		if prev < 0 && vi+2 < len(st.valid) {
			// A jump at the start: the next two pings agree with each other
			// but not with this one.
			j1, j2 := &pings[st.valid[vi+1]], &pings[st.valid[vi+2]]
			if m.tooFast(p, j1) && m.tooFast(p, j2) && !m.tooFast(j1, j2) {
				reject(i, RejectTeleport)
				continue
			}
		}
		n0 := len(st.cands)
		if cache == nil {
			st.cands = m.candidates(st.cands, p.Lat, p.Lon)
		} else {
			k := keyOf(p)
			e, ok := cache.cands[k]
			if !ok {
				st.cands = m.candidates(st.cands, p.Lat, p.Lon)
				e.cands = slices.Clone(st.cands[n0:])
			} else {
				st.cands = append(st.cands, e.cands...)
			}
			e.gen = cache.gen
			cache.cands[k] = e
		}
		if len(st.cands) == n0 {
			reject(i, RejectOffMap)
			continue
		}
		prev = i
		st.step = append(st.step, i)
		st.cfirst = append(st.cfirst, len(st.cands))
	}

	m.viterbi(st, pings, &res)
	m.buildPath(st, pings, &res)
	return res, nil
}

// prune drops the entries the last call did not use.
func (c *MatchCache) prune() {
	for k, e := range c.cands {
		if e.gen != c.gen {
			delete(c.cands, k)
		}
	}
	for k, e := range c.routes {
		if e.gen != c.gen {
			delete(c.routes, k)
		}
	}
}

// tooFast reports whether moving from a to b implies a speed above
// MaxSpeed, allowing three sigmas of noise on the distance.
func (m *Matcher) tooFast(a, b *Ping) bool {
	dt := b.Time.Sub(a.Time).Seconds()
	if dt <= 0 {
		return false
	}
	gc := graph.Haversine(a.Lat, a.Lon, b.Lat, b.Lon)
	return gc-3*m.opt.Sigma > m.opt.MaxSpeed*dt
}

// viterbi fills st.score and st.back over the lattice of candidates
// (Newson & Krumm §4.3), in log probabilities without the constant terms:
// emission -0.5·(d/sigma)², transition -|route - gc|/beta.
func (m *Matcher) viterbi(st *mmState, pings []Ping, res *MatchResult) {
	nc := len(st.cands)
	st.score = slices.Grow(st.score[:0], nc)[:nc]
	st.back = slices.Grow(st.back[:0], nc)[:nc]
	st.broken = slices.Grow(st.broken[:0], len(st.step))[:len(st.step)]
	inv2s2 := 0.5 / (m.opt.Sigma * m.opt.Sigma)
	for s := range st.step {
		cb := st.cands[st.cfirst[s]:st.cfirst[s+1]]
		sc := st.score[st.cfirst[s]:st.cfirst[s+1]]
		bk := st.back[st.cfirst[s]:st.cfirst[s+1]]
		for j := range cb {
			sc[j], bk[j] = math.Inf(-1), -1
		}
		st.broken[s] = true
		if s > 0 && m.transitions(st, pings, s, inv2s2) {
			st.broken[s] = false
		}
		if st.broken[s] {
			if s > 0 {
				res.Breaks++
			}
			for j := range cb {
				sc[j], bk[j] = -inv2s2*cb[j].dist*cb[j].dist, -1
			}
		}
	}
}

// transitions scores step s from step s-1 and reports whether any
// candidate of s was reached.
func (m *Matcher) transitions(st *mmState, pings []Ping, s int, inv2s2 float64) bool {
	pa, pb := &pings[st.step[s-1]], &pings[st.step[s]]
	gc := graph.Haversine(pa.Lat, pa.Lon, pb.Lat, pb.Lon)
	a0, a1 := st.cfirst[s-1], st.cfirst[s]
	b0, b1 := st.cfirst[s], st.cfirst[s+1]
	nb := b1 - b0
	var routes []float32
	if c := st.cache; c != nil {
		k := pairKey{keyOf(pa), keyOf(pb)}
		e, ok := c.routes[k]
		if !ok {
			e.routes = m.routes(st, pings, s, nil, nil)
		}
		e.gen = c.gen
		c.routes[k] = e
		routes = e.routes
	} else {
		st.routes = m.routes(st, pings, s, st.score[a0:a1], st.routes)
		routes = st.routes
	}
	reached := false
	invBeta := 1 / m.opt.Beta
	for ia := a0; ia < a1; ia++ {
		if math.IsInf(st.score[ia], -1) {
			continue
		}
		row := routes[(ia-a0)*nb : (ia-a0+1)*nb]
		for jb := b0; jb < b1; jb++ {
			route := float64(row[jb-b0])
			if math.IsInf(route, 1) {
				continue
			}
			cb := &st.cands[jb]
			v := st.score[ia] - math.Abs(route-gc)*invBeta - inv2s2*cb.dist*cb.dist
			if v > st.score[jb] {
				st.score[jb], st.back[jb] = v, int32(ia-a0)
				reached = true
			}
		}
	}
	return reached
}

// routes returns the route distances from each candidate of step s-1 to
// each of step s (row-major, +Inf where there is none within the bound),
// searching from the sources whose score is finite (every source with a
// nil score), in dst grown as needed (nil: a new slice, to cache).
func (m *Matcher) routes(st *mmState, pings []Ping, s int, score []float64, dst []float32) []float32 {
	pa, pb := &pings[st.step[s-1]], &pings[st.step[s]]
	gc := graph.Haversine(pa.Lat, pa.Lon, pb.Lat, pb.Lon)
	dt := pb.Time.Sub(pa.Time).Seconds()
	bound := m.bound(gc, dt)
	a0, a1 := st.cfirst[s-1], st.cfirst[s]
	b0, b1 := st.cfirst[s], st.cfirst[s+1]
	nb := b1 - b0
	out := slices.Grow(dst[:0], (a1-a0)*nb)[:(a1-a0)*nb]
	for i := range out {
		out[i] = float32(math.Inf(1))
	}
	// Targets: the candidate edges of s, all within goal.r of its ping.
	st.nextRound()
	st.tgtEdges = st.tgtEdges[:0]
	goal := newGoal(pb.Lat, pb.Lon, 0)
	for j := b0; j < b1; j++ {
		c := &st.cands[j]
		st.target[c.edge] = st.cur
		st.tgtEdges = append(st.tgtEdges, c.edge)
		goal.r = max(goal.r, goal.dist(c.lat, c.lon))
	}
	// One search per candidate of s-1 (they lie on distinct edges); its
	// distances are read before the next search.
	searched := false
	for ia := a0; ia < a1; ia++ {
		if score != nil && math.IsInf(score[ia-a0], -1) {
			continue
		}
		ca := &st.cands[ia]
		if searched {
			m.retarget(st)
		}
		searched = true
		m.search(st, ca.edge, (1-ca.frac)*m.edgeLen[ca.edge], bound, len(st.tgtEdges), &goal)
		row := out[(ia-a0)*nb : (ia-a0+1)*nb]
		for jb := b0; jb < b1; jb++ {
			cb := &st.cands[jb]
			route, ok := m.direct(ca, cb)
			if !ok {
				if st.done[cb.edge] != st.cur {
					continue
				}
				route = st.dist[cb.edge] + cb.frac*m.edgeLen[cb.edge]
			}
			if route <= bound {
				row[jb-b0] = float32(route)
			}
		}
	}
	return out
}

// retarget starts a new search round keeping the current targets marked.
func (m *Matcher) retarget(st *mmState) {
	st.nextRound()
	for _, e := range st.tgtEdges {
		st.target[e] = st.cur
	}
}

// routeEdges appends to out the edges of the shortest route from candidate
// a to candidate b (a's edge first, b's edge last, once if they are the
// same edge and b is ahead of a) and returns it with the route length.
func (m *Matcher) routeEdges(st *mmState, out []uint32, a, b *mmCand, bound float64) ([]uint32, float64, bool) {
	if d, ok := m.direct(a, b); ok {
		return append(out, a.edge), d, true
	}
	st.nextRound()
	st.target[b.edge] = st.cur
	goal := newGoal(b.lat, b.lon, 0)
	m.search(st, a.edge, (1-a.frac)*m.edgeLen[a.edge], bound, 1, &goal)
	if st.done[b.edge] != st.cur {
		return out, 0, false
	}
	start := len(out)
	for x := b.edge; ; {
		out = append(out, x)
		x = st.parent[x]
		if x == a.edge {
			break
		}
	}
	out = append(out, a.edge)
	slices.Reverse(out[start:])
	// The length, without U-turn penalties.
	d := (1-a.frac)*m.edgeLen[a.edge] + b.frac*m.edgeLen[b.edge]
	for _, e := range out[start+1 : len(out)-1] {
		d += m.edgeLen[e]
	}
	return out, d, true
}

// buildPath backtracks the best candidate of every step, fills Points,
// Edges, Pieces and Traversals.
func (m *Matcher) buildPath(st *mmState, pings []Ping, res *MatchResult) {
	ns := len(st.step)
	st.chosen = slices.Grow(st.chosen[:0], ns)[:ns]
	// Backtrack each piece from its best final candidate.
	for end := ns - 1; end >= 0; {
		best, bv := -1, math.Inf(-1)
		for j := st.cfirst[end]; j < st.cfirst[end+1]; j++ {
			if st.score[j] > bv || best < 0 {
				best, bv = j-st.cfirst[end], st.score[j]
			}
		}
		s := end
		for {
			st.chosen[s] = best
			if st.broken[s] {
				break
			}
			best = int(st.back[st.cfirst[s]+best])
			s--
		}
		end = s - 1
	}
	for s, i := range st.step {
		c := &st.cands[st.cfirst[s]+st.chosen[s]]
		res.Points[i] = MatchedPing{Edge: c.edge, Fraction: c.frac, Lat: c.lat, Lon: c.lon, OK: true}
	}
	// Path and traversals, piece by piece.
	var open Traversal
	openKnown := false
	closeOpen := func(exit time.Time, full bool) {
		open.Exit, open.Full = exit, full && openKnown
		res.Traversals = append(res.Traversals, open)
	}
	for s := 0; s < ns; s++ {
		c := &st.cands[st.cfirst[s]+st.chosen[s]]
		t := pings[st.step[s]].Time
		if st.broken[s] {
			if s > 0 {
				closeOpen(pings[st.step[s-1]].Time, false)
			}
			res.Pieces = append(res.Pieces, len(res.Edges))
			res.Edges = append(res.Edges, c.edge)
			open, openKnown = Traversal{Edge: c.edge, Enter: t}, false
			continue
		}
		a := &st.cands[st.cfirst[s-1]+st.chosen[s-1]]
		pa := &pings[st.step[s-1]]
		gc := graph.Haversine(pa.Lat, pa.Lon, pings[st.step[s]].Lat, pings[st.step[s]].Lon)
		var d float64
		var ok bool
		st.route, d, ok = m.routeEdges(st, st.route[:0], a, c, m.bound(gc, t.Sub(pa.Time).Seconds()))
		if !ok || len(st.route) == 0 {
			// Cannot happen: Viterbi found this transition within the same
			// bound. Treat it as a break rather than emit a disjoint path.
			closeOpen(pa.Time, false)
			res.Breaks++
			res.Pieces = append(res.Pieces, len(res.Edges))
			res.Edges = append(res.Edges, c.edge)
			open, openKnown = Traversal{Edge: c.edge, Enter: t}, false
			continue
		}
		r := st.route
		if len(r) == 1 {
			continue // still on the same edge
		}
		t0 := pa.Time
		span := t.Sub(t0)
		at := func(x float64) time.Time {
			if d <= 0 {
				return t0
			}
			return t0.Add(time.Duration(float64(span) * min(1, x/d)))
		}
		x := (1 - a.frac) * m.edgeLen[a.edge]
		closeOpen(at(x), true)
		for _, e := range r[1 : len(r)-1] {
			res.Edges = append(res.Edges, e)
			enter := at(x)
			x += m.edgeLen[e]
			res.Traversals = append(res.Traversals, Traversal{Edge: e, Enter: enter, Exit: at(x), Full: true})
		}
		res.Edges = append(res.Edges, c.edge)
		open, openKnown = Traversal{Edge: c.edge, Enter: at(x)}, true
	}
	if ns > 0 {
		closeOpen(pings[st.step[ns-1]].Time, false)
	}
}
