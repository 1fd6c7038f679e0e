// Package graph prepares a road Network for fast shortest-path queries with
// a contraction hierarchy over an edge-based graph (so that turn
// restrictions hold), and answers point-to-point routes and many-to-many
// matrices on it.
//
// Pipeline (Build): validate the Network and convert edge weights to
// integers (weight.go); build the edge-based graph of allowed turns and keep
// its largest strongly connected component (turns.go); contract it
// (contract.go, Geisberger et al. 2008) in parallel rounds of independent
// nodes; store upward forward and backward graphs in CSR form over node ids
// in a cache-friendly order. Queries (query.go) are bidirectional upward searches with
// stall-on-demand from weighted mid-edge endpoints; Matrix (matrix.go) is
// the bucket algorithm of Knopp et al. 2007; Dijkstra and BidirDijkstra
// (dijkstra.go) are plain searches on the edge-based graph used as
// references. WriteTo and Load (serialize.go) store everything, road
// network included, in a checksummed flat binary format.
package graph

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"runtime"
	"slices"
	"sync"
	"time"
)

// ErrNoRoute is returned when no route connects the endpoints.
var ErrNoRoute = errors.New("graph: no route")

// BuildOptions configures Build.
type BuildOptions struct {
	// Workers is the number of goroutines used for contraction; 0 means
	// runtime.GOMAXPROCS(0).
	Workers int
	// Logger receives progress and timing logs; nil discards them.
	Logger *slog.Logger
	// Progress, if set, is called with the stage name and its progress.
	Progress func(stage string, done, total int64)
}

// Stats describes a built graph.
type Stats struct {
	RoadNodes, RoadEdges int
	// CHNodes is the number of routable road edges, the nodes of the
	// edge-based graph kept in its largest strongly connected component.
	CHNodes int
	// TurnArcs is the number of allowed turns between routable edges.
	TurnArcs int
	// UpArcs is the number of arcs of the upward forward plus backward graphs,
	// Shortcuts how many of them are shortcuts.
	UpArcs, Shortcuts int
	// TransitNodes is the number of top nodes with a distance table for
	// cost queries (see transit.go).
	TransitNodes int
	// Build times per stage (zero for a loaded graph).
	TurnGraphTime, SCCTime, ContractTime, TotalTime time.Duration
}

// Graph is a road network prepared for routing. It is immutable after Build
// or Load and safe for concurrent use; each goroutine needs its own Query.
//
// Node ids of the hierarchy ("CH nodes") are the routable road edges in
// the order of a Hilbert curve over their midpoints (for cache locality);
// a separate array holds each node's contraction rank. Upward arcs go from
// lower to higher rank.
type Graph struct {
	// Road is the road network; edge indices in routes and endpoints refer
	// to Road.Edges.
	Road *Network

	// Metric, kept apart from the topology so that a later re-weighting
	// can replace it: packed weight of every road edge (see weight.go).
	weight []int64

	chOfEdge []uint32 // road edge -> CH node, noNode when not routable
	rank     []uint32 // CH node -> contraction rank (0 = contracted first)
	edgeOfCH []uint32 // CH node -> road edge
	nodeW    []int64  // CH node -> weight of its road edge

	// Edge-based graph over CH nodes, forward and reversed, CSR.
	turnFirst, turnHead   []uint32
	rturnFirst, rturnHead []uint32

	fwd, bwd upGraph
	// cchOrder is the nested-dissection order of the customizable
	// hierarchy when it was computed before saving (see ComputeCCHOrder).
	cchOrder []uint32
	// transit is the distance table between the top nodes that Cost
	// queries use (none on customized snapshots).
	transit transitTable
	// noStall turns stall-on-demand off (customized CCH snapshots).
	noStall bool

	// Pools of search state reused across Matrix calls.
	sides, queries, buckets sync.Pool

	stats Stats
}

// Routable reports whether road edge e belongs to the routable part of the
// graph (the largest strongly connected component of the edge-based graph):
// only routable edges can be endpoints.
func (g *Graph) Routable(e uint32) bool {
	return int(e) < len(g.chOfEdge) && g.chOfEdge[e] != noNode
}

// Stats returns sizes and build times of the graph.
func (g *Graph) Stats() Stats { return g.stats }

// Build prepares n for routing: it builds the edge-based graph, keeps its
// largest strongly connected component and contracts it. It returns an
// error for an empty or inconsistent network. The graph keeps n as Road.
func Build(n *Network, opt BuildOptions) (*Graph, error) {
	log := opt.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	workers := opt.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	report := func(stage string, done, total int64) {
		if opt.Progress != nil {
			opt.Progress(stage, done, total)
		}
	}
	t0 := time.Now()
	weight, err := validateNetwork(n)
	if err != nil {
		return nil, err
	}
	first, head := buildTurnGraph(n)
	t1 := time.Now()
	report("turns", 1, 1)
	log.Info("edge-based graph built", "road_nodes", len(n.Lat), "road_edges", len(n.Edges), "turns", len(head), "elapsed", t1.Sub(t0))

	keep, _ := LargestSCC(first, head)
	local := make([]uint32, len(n.Edges))
	var localEdge []uint32
	for e := range local {
		local[e] = noNode
		if keep[e] {
			local[e] = uint32(len(localEdge))
			localEdge = append(localEdge, uint32(e))
		}
	}
	if len(localEdge) == 0 {
		return nil, fmt.Errorf("graph: no routable edge")
	}
	nl := len(localEdge)
	lFirst := make([]uint32, nl+1)
	lHead := make([]uint32, 0, len(head))
	lW := make([]int64, nl)
	for i, e := range localEdge {
		lW[i] = weight[e]
		for _, b := range head[first[e]:first[e+1]] {
			if local[b] != noNode {
				lHead = append(lHead, local[b])
			}
		}
		lFirst[i+1] = uint32(len(lHead))
	}
	t2 := time.Now()
	report("scc", 1, 1)
	log.Info("largest strongly connected component kept", "edges", nl, "dropped", len(n.Edges)-nl, "elapsed", t2.Sub(t1))

	rank, fwd, bwd := contract(lFirst, lHead, lW, workers, func(done, total int64) { report("contract", done, total) })
	t3 := time.Now()

	// Renumber for locality: ids follow a Hilbert curve over the edges'
	// midpoints, so that a search's many low-level nodes near its start
	// share cache lines; rank keeps the contraction order.
	newOf := localityOrder(n, localEdge, rank) // rank -> id
	g := &Graph{Road: n, weight: weight, rank: make([]uint32, nl)}
	for r, id := range newOf {
		g.rank[id] = uint32(r)
	}
	g.fwd, g.bwd = permuteUp(&fwd, newOf, g.rank), permuteUp(&bwd, newOf, g.rank)
	g.chOfEdge = make([]uint32, len(n.Edges))
	for i := range g.chOfEdge {
		g.chOfEdge[i] = noNode
	}
	g.edgeOfCH = make([]uint32, nl)
	for i, e := range localEdge {
		id := newOf[rank[i]]
		g.edgeOfCH[id] = e
		g.chOfEdge[e] = id
	}
	// Turn graph over CH ids.
	g.turnFirst = make([]uint32, nl+1)
	g.turnHead = make([]uint32, 0, len(lHead))
	for v := 0; v < nl; v++ {
		l := local[g.edgeOfCH[v]]
		for _, h := range lHead[lFirst[l]:lFirst[l+1]] {
			g.turnHead = append(g.turnHead, newOf[rank[h]])
		}
		g.turnFirst[v+1] = uint32(len(g.turnHead))
	}
	if err := g.derive(); err != nil {
		return nil, err
	}
	g.stats = Stats{
		RoadNodes: len(n.Lat), RoadEdges: len(n.Edges), CHNodes: nl, TurnArcs: len(g.turnHead),
		TurnGraphTime: t1.Sub(t0), SCCTime: t2.Sub(t1), ContractTime: t3.Sub(t2),
	}
	g.countStats()
	g.stats.TotalTime = time.Since(t0)
	log.Info("contraction hierarchy built", "ch_nodes", nl, "up_arcs", g.stats.UpArcs, "shortcuts", g.stats.Shortcuts,
		"contract", t3.Sub(t2), "total", g.stats.TotalTime)
	return g, nil
}

// derive computes the arrays that follow from the stored ones: node
// weights, the reversed turn graph, the children of shortcuts and the
// transit table.
func (g *Graph) derive() error {
	n := len(g.edgeOfCH)
	g.nodeW = make([]int64, n)
	for v, e := range g.edgeOfCH {
		g.nodeW[v] = g.weight[e]
	}
	g.rturnFirst = make([]uint32, n+1)
	for _, h := range g.turnHead {
		g.rturnFirst[h+1]++
	}
	for i := 0; i < n; i++ {
		g.rturnFirst[i+1] += g.rturnFirst[i]
	}
	g.rturnHead = make([]uint32, len(g.turnHead))
	fill := make([]uint32, n)
	copy(fill, g.rturnFirst[:n])
	for v := 0; v < n; v++ {
		for _, h := range g.turnHead[g.turnFirst[v]:g.turnFirst[v+1]] {
			g.rturnHead[fill[h]] = uint32(v)
			fill[h]++
		}
	}
	g.fwd.End, g.bwd.End = g.fwd.First[1:], g.bwd.First[1:]
	if err := g.linkChildren(); err != nil {
		return err
	}
	g.buildTransit(transitCount(len(g.rank)), runtime.GOMAXPROCS(0))
	return nil
}

// countStats sets the size figures of the stats that follow from the
// arrays.
func (g *Graph) countStats() {
	g.stats.TransitNodes = g.transit.k
	g.stats.UpArcs = len(g.fwd.Head) + len(g.bwd.Head)
	g.stats.Shortcuts = 0
	for _, m := range g.fwd.Mid {
		if m != noNode {
			g.stats.Shortcuts++
		}
	}
	for _, m := range g.bwd.Mid {
		if m != noNode {
			g.stats.Shortcuts++
		}
	}
}

// localityOrder returns the new id of each rank: nodes sorted by the
// Hilbert curve index of their road edge's midpoint.
func localityOrder(n *Network, localEdge, rank []uint32) []uint32 {
	nl := len(localEdge)
	minLat, maxLat, minLon, maxLon := math.Inf(1), math.Inf(-1), math.Inf(1), math.Inf(-1)
	for i := range n.Lat {
		minLat, maxLat = min(minLat, n.Lat[i]), max(maxLat, n.Lat[i])
		minLon, maxLon = min(minLon, n.Lon[i]), max(maxLon, n.Lon[i])
	}
	const side = 1 << 16
	scale := func(x, lo, hi float64) uint32 {
		if !(hi > lo) {
			return 0
		}
		return uint32(min(max((x-lo)/(hi-lo)*(side-1), 0), side-1))
	}
	type keyed struct {
		key  uint64
		rank uint32
	}
	ks := make([]keyed, nl)
	for i, e := range localEdge {
		ed := &n.Edges[e]
		lat := (n.Lat[ed.From] + n.Lat[ed.To]) / 2
		lon := (n.Lon[ed.From] + n.Lon[ed.To]) / 2
		ks[i] = keyed{hilbert(side, scale(lon, minLon, maxLon), scale(lat, minLat, maxLat)), rank[i]}
		if int(rank[i]) >= nl-nl*topRankPercent/100 {
			ks[i].key = 1<<62 + uint64(rank[i])
		}
	}
	slices.SortFunc(ks, func(a, b keyed) int {
		if a.key != b.key {
			return cmp.Compare(a.key, b.key)
		}
		return cmp.Compare(a.rank, b.rank)
	})
	newOf := make([]uint32, nl)
	for id, k := range ks {
		newOf[k.rank] = uint32(id)
	}
	return newOf
}

// hilbert returns the index of cell (x, y) along the Hilbert curve filling
// a side×side grid (side a power of two), by the classic rotate-and-fold
// conversion.
func hilbert(side, x, y uint32) uint64 {
	var d uint64
	for s := side / 2; s > 0; s /= 2 {
		var rx, ry uint32
		if x&s != 0 {
			rx = 1
		}
		if y&s != 0 {
			ry = 1
		}
		d += uint64(s) * uint64(s) * uint64((3*rx)^ry)
		if ry == 0 {
			if rx == 1 {
				x, y = side-1-x, side-1-y
			}
			x, y = y, x
		}
	}
	return d
}

// permuteUp renumbers an up graph over ranks to node ids: newOf maps rank
// to id, rankOf id to rank.
func permuteUp(u *upGraph, newOf, rankOf []uint32) upGraph {
	n := len(rankOf)
	out := upGraph{First: make([]uint32, n+1), Head: make([]uint32, 0, len(u.Head)),
		Weight: make([]int64, 0, len(u.Head)), Mid: make([]uint32, 0, len(u.Head))}
	for id := 0; id < n; id++ {
		r := rankOf[id]
		for i := u.First[r]; i < u.First[r+1]; i++ {
			out.Head = append(out.Head, newOf[u.Head[i]])
			out.Weight = append(out.Weight, u.Weight[i])
			m := u.Mid[i]
			if m != noNode {
				m = newOf[m]
			}
			out.Mid = append(out.Mid, m)
		}
		out.First[id+1] = uint32(len(out.Head))
	}
	return out
}

// topRankPercent of the nodes, the top of the hierarchy that every query
// visits, keep their rank order at the end of the id range instead of the
// Hilbert order. On Porto, pure rank order, pure Hilbert order and this mix
// measured within noise of each other (±10%); the mix was never worse.
const topRankPercent = 5
