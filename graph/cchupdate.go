package graph

import (
	"runtime"
	"slices"
)

// Customization is a customized hierarchy that can be brought up to date:
// every arc's basic and exact weights with the arcs they are made of
// (the state of CCH.NewCustomization) and the snapshot built from them.
// Update re-customizes it for new durations, recomputing only the ranks
// that the changed edges reach, into a snapshot that answers as a full
// customization's would.
//
// A Customization is not safe for concurrent use: one goroutine updates
// it. The snapshots it returns are immutable and safe for concurrent use;
// a later snapshot may share arrays with an earlier one.
type Customization struct {
	c  *CCH
	cu *customization
	g  *Graph

	// Scratch of Update, kept between calls: the ranks queued, the arcs
	// changed (by index into the CCH's arcs), and a mark per rank.
	queue   []uint32
	queued  []bool
	changed []uint32
	inSet   []bool
	heads   []bool
	old     []arcState

	// spare holds the arrays of snapshots no longer referenced, returned
	// by a cleanup (runtime.AddCleanup) for later patches to copy into.
	spare chan *upArrays

	// Last describes the last customization.
	Last UpdateStats
}

// upArrays are the arrays of a snapshot's up graphs that belong to it
// alone, Weight and Unpack (patch shares the others between snapshots).
type upArrays struct{ fwd, bwd upGraph }

// recycle registers g's own arrays for reuse once g is unreachable.
// Reuse is safe then: no other snapshot shares them (patch copies them),
// and nothing reaches them without g. Recycling matters because a patch
// copies about 30 MB on Porto: into fresh memory, the page faults made
// an update under bench ingest take 120-160 ms, into recycled arrays the
// copy takes a few ms.
func (z *Customization) recycle(g *Graph) {
	if z.spare == nil {
		z.spare = make(chan *upArrays, 3)
	}
	spare := z.spare
	runtime.AddCleanup(g, func(a *upArrays) {
		select {
		case spare <- a:
		default:
		}
	}, &upArrays{upGraph{Weight: g.fwd.Weight, Unpack: g.fwd.Unpack}, upGraph{Weight: g.bwd.Weight, Unpack: g.bwd.Unpack}})
}

// reuse copies src into dst when their lengths agree, else into a clone.
func reuse[T any](dst, src []T) []T {
	if len(dst) != len(src) {
		return slices.Clone(src)
	}
	copy(dst, src)
	return dst
}

// UpdateStats describes one customization.
type UpdateStats struct {
	// Edges is the number of road edges whose weight changed (every edge
	// for a full customization).
	Edges int
	// Basic and Exact are the ranks recomputed bottom-up (basic
	// customization) and top-down (perfect customization).
	Basic, Exact int
	// Arcs is the number of arcs whose weights or parts changed.
	Arcs int
	// Full reports that the snapshot's arcs were laid out afresh: the
	// first customization, or an arc appeared or vanished (an edge closed
	// or opened), or the searched ranges took in too many mirrors (see
	// CCH.emit).
	Full bool
	// Recycled reports that the snapshot's arrays are those of an
	// earlier, unreachable one.
	Recycled bool
}

// arcState is one arc's customized state, saved to see what changed.
type arcState struct {
	up, down, exUp, exDown int64
	upL, upR, downL, downR uint32
}

// Graph returns the snapshot of the last customization.
func (z *Customization) Graph() *Graph { return z.g }

// Update re-customizes for the durations dur (as CCH.Customize takes them)
// and returns the new snapshot, which answers every query as the one
// CCH.Customize returns for dur (without a change, the same snapshot). It
// follows the changes through the hierarchy (the partial updates of
// Dibbelt, Strasser and Wagner 2016): an edge's new weight
// changes the original arcs entering it; the basic customization is redone,
// in rank order, for the ranks whose lower triangles hold a changed arc,
// and the perfect one, top-down, for the ranks whose upper triangles do.
// The snapshot keeps the previous one's arc layout, with new weights and
// parts, unless an arc appears or vanishes (see CCH.emit for how an arc
// that becomes exact joins the searched ones); an arc that becomes
// inexact stays searched, where its weight, a path's, cannot make a query
// wrong. yield is called every yieldRanks ranks. Invalid durations leave
// z unchanged.
func (z *Customization) Update(dur []float64, yield func()) (*Graph, error) {
	c, g0, cu := z.c, z.g, z.cu
	weight, err := c.edgeWeights(dur)
	if err != nil {
		return nil, err
	}
	n := len(c.rank)
	if z.queued == nil {
		z.queued = make([]bool, n)
		z.inSet = make([]bool, len(c.head))
		z.heads = make([]bool, n)
	}
	st := UpdateStats{}
	nodeW := slices.Clone(g0.nodeW)
	for v, e := range c.base.edgeOfCH {
		if weight[e] == g0.weight[e] {
			continue
		}
		st.Edges++
		nodeW[v] = weight[e]
		// The arcs whose original turn enters v: downward ones of v's
		// rank, upward ones into it from below.
		r := c.rank[v]
		z.push(r)
		for i := c.dfirst[r]; i < c.dfirst[r+1]; i++ {
			if c.turnDirs[c.darc[i]]&arcTurnUp != 0 {
				z.push(c.dtail[i])
			}
		}
	}
	if st.Edges == 0 {
		z.Last = st
		return g0, nil
	}
	z.changed = z.changed[:0]
	idx, _ := cu.scratch.Get().([]uint32)
	if idx == nil {
		idx = make([]uint32, n)
	}
	// Basic customization, bottom-up: relaxNode(w) reads every arc x→u
	// of a lower neighbour x from w's own arc x→w on, so a changed arc
	// x→u is read by u and by every w below u next to x.
	step := 0
	for len(z.queue) > 0 {
		v := z.popMin()
		st.Basic++
		if step++; step%yieldRanks == 0 {
			yield()
		}
		lo, hi := c.first[v], c.first[v+1]
		z.save(lo, hi)
		for a := lo; a < hi; a++ {
			cu.up[a], cu.down[a] = c.originalArc(nodeW, a)
			cu.upL[a], cu.downL[a] = noNode, noNode
		}
		c.relaxNode(cu, v, idx)
		last := -1
		for a := lo; a < hi; a++ {
			o := &z.old[a-lo]
			if cu.up[a] != o.up || cu.down[a] != o.down {
				last = int(a)
				z.mark(a)
			} else if z.partsChanged(a, o) {
				z.mark(a)
			}
		}
		for a := lo; int(a) <= last; a++ {
			z.push(c.head[a])
		}
	}
	cu.scratch.Put(idx)
	// Perfect customization, top-down: exactNode(x) reads x's own basic
	// weights and the exact weight of every arc v→u between two upper
	// neighbours of x.
	for _, a := range z.changed {
		z.pushMax(c.tail[a])
	}
	heads := z.heads
	for len(z.queue) > 0 {
		x := z.popMax()
		st.Exact++
		if step++; step%yieldRanks == 0 {
			yield()
		}
		lo, hi := c.first[x], c.first[x+1]
		z.save(lo, hi)
		for a := lo; a < hi; a++ {
			cu.exUp[a], cu.exDown[a] = cu.up[a], cu.down[a]
		}
		c.exactNode(cu, x)
		moved := false
		for a := lo; a < hi; a++ {
			o := &z.old[a-lo]
			if cu.exUp[a] != o.exUp || cu.exDown[a] != o.exDown {
				z.mark(a)
				heads[c.head[a]] = true
				moved = true
			}
		}
		if !moved {
			continue
		}
		// The lower neighbours y of x with an arc to a changed head.
		for i := c.dfirst[x]; i < c.dfirst[x+1]; i++ {
			y := c.dtail[i]
			for a := c.darc[i] + 1; a < c.first[y+1]; a++ {
				if heads[c.head[a]] {
					z.pushMax(y)
					break
				}
			}
		}
		for a := lo; a < hi; a++ {
			heads[c.head[a]] = false
		}
	}
	st.Arcs = len(z.changed)
	ng := &Graph{Road: g0.Road, weight: weight, chOfEdge: g0.chOfEdge, edgeOfCH: g0.edgeOfCH,
		turnFirst: g0.turnFirst, turnHead: g0.turnHead, rturnFirst: g0.rturnFirst, rturnHead: g0.rturnHead,
		noStall: true, rank: g0.rank, nodeW: nodeW}
	// A layout whose searched ranges took in many mirrors is laid out
	// afresh, so that searches do not grow slower.
	if z.sameArcs() && cu.promoted <= cu.mirrors/maxPromotedShare {
		st.Recycled = z.patch(ng, g0)
	} else {
		st.Full = true
		cu.yield = yield
		c.emit(ng, cu)
		if err := ng.validateSnapshot(); err != nil {
			return nil, err
		}
	}
	for _, a := range z.changed {
		z.inSet[a] = false
	}
	z.recycle(ng)
	z.g, z.Last = ng, st
	return ng, nil
}

// push queues rank r for the basic customization (a min-heap).
func (z *Customization) push(r uint32) {
	if z.queued[r] {
		return
	}
	z.queued[r] = true
	z.queue = append(z.queue, r)
	heapUp(z.queue, len(z.queue)-1)
}

// pushMax queues rank r for the perfect customization (a max-heap, kept
// as a min-heap of complements).
func (z *Customization) pushMax(r uint32) {
	if z.queued[r] {
		return
	}
	z.queued[r] = true
	z.queue = append(z.queue, ^r)
	heapUp(z.queue, len(z.queue)-1)
}

func (z *Customization) popMin() uint32 {
	r := heapPop(&z.queue)
	z.queued[r] = false
	return r
}

func (z *Customization) popMax() uint32 {
	r := ^heapPop(&z.queue)
	z.queued[r] = false
	return r
}

// save copies the state of arcs [lo, hi) into z.old.
func (z *Customization) save(lo, hi uint32) {
	cu := z.cu
	z.old = slices.Grow(z.old[:0], int(hi-lo))[:hi-lo]
	for a := lo; a < hi; a++ {
		z.old[a-lo] = arcState{cu.up[a], cu.down[a], cu.exUp[a], cu.exDown[a],
			cu.upL[a], cu.upR[a], cu.downL[a], cu.downR[a]}
	}
}

// partsChanged reports whether arc a's parts differ from o's (a part
// counts only where the weight comes from a triangle).
func (z *Customization) partsChanged(a uint32, o *arcState) bool {
	cu := z.cu
	return cu.upL[a] != o.upL || cu.downL[a] != o.downL ||
		(cu.upL[a] != noNode && cu.upR[a] != o.upR) || (cu.downL[a] != noNode && cu.downR[a] != o.downR)
}

// mark records arc a as changed.
func (z *Customization) mark(a uint32) {
	if !z.inSet[a] {
		z.inSet[a] = true
		z.changed = append(z.changed, a)
	}
}

// maxPromotedShare: an update lays the arcs out afresh once more than
// 1/maxPromotedShare of the mirror slots have joined the searched ranges.
const maxPromotedShare = 8

// sameArcs reports whether the previous snapshot holds every changed arc
// in the same directions (none appeared or vanished).
func (z *Customization) sameArcs() bool {
	cu := z.cu
	for _, a := range z.changed {
		if (cu.fwdIdx[a] == noNode) != (cu.up[a] >= infWeight) || (cu.bwdIdx[a] == noNode) != (cu.down[a] >= infWeight) {
			return false
		}
	}
	return true
}

// patch builds ng's up graphs as g0's with the changed arcs' weights and
// links, in the arrays of an unreferenced snapshot when there is one. An
// unsearched arc that became exact extends its node's searched range over
// the mirrors to its copy (see CCH.emit); an arc that became inexact stays
// searched. First and Head are shared with g0, and End unless a range
// grew; Weight and Unpack are the snapshot's own, the arrays recycled.
func (z *Customization) patch(ng, g0 *Graph) (recycled bool) {
	c, cu := z.c, z.cu
	// Spare arrays of another layout (before an edge closed or opened)
	// are dropped.
	var dst upArrays
take:
	for len(dst.fwd.Weight) != len(g0.fwd.Weight) || len(dst.bwd.Weight) != len(g0.bwd.Weight) {
		select {
		case a := <-z.spare:
			dst = *a
		default:
			break take
		}
	}
	recycled = len(dst.fwd.Weight) == len(g0.fwd.Weight) && len(dst.bwd.Weight) == len(g0.bwd.Weight)
	own := func(dst, u upGraph) upGraph {
		return upGraph{First: u.First, End: u.End, Head: u.Head,
			Weight: reuse(dst.Weight, u.Weight), Unpack: reuse(dst.Unpack, u.Unpack)}
	}
	fwd, bwd := own(dst.fwd, g0.fwd), own(dst.bwd, g0.bwd)
	shortcuts := g0.stats.Shortcuts
	var fwdEnd, bwdEnd bool // End copied
	// side patches arc a in u (searched is cu's fwdSearched or
	// bwdSearched, owned whether u.End is a copy already).
	side := func(u *upGraph, owned *bool, searched, idx []uint32, a uint32, w, ex int64, l, r uint32) {
		i := idx[a]
		if i == noNode {
			return
		}
		if u.Unpack[i].mid != noNode {
			shortcuts--
		}
		if l != noNode {
			shortcuts++
		}
		ui := c.unpackOf(cu, l, r)
		u.Weight[i], u.Unpack[i] = w, ui
		v := c.order[c.tail[a]]
		if i < searched[v] {
			return
		}
		// An unsearched arc: its mirror too, and the searched range up
		// to it once exact.
		j := i - (u.First[v+1]-searched[v])/2
		u.Weight[j], u.Unpack[j] = w, ui
		if ex == w && j >= u.End[v] {
			if !*owned {
				u.End, *owned = slices.Clone(u.End), true
			}
			cu.promoted += int(j + 1 - u.End[v])
			u.End[v] = j + 1
		}
	}
	for _, a := range z.changed {
		side(&fwd, &fwdEnd, cu.fwdSearched, cu.fwdIdx, a, cu.up[a], cu.exUp[a], cu.upL[a], cu.upR[a])
		side(&bwd, &bwdEnd, cu.bwdSearched, cu.bwdIdx, a, cu.down[a], cu.exDown[a], cu.downL[a], cu.downR[a])
	}
	ng.fwd, ng.bwd = fwd, bwd
	ng.stats = g0.stats
	ng.stats.Shortcuts = shortcuts
	return recycled
}

// heapUp and heapPop keep a binary min-heap of uint32.
func heapUp(h []uint32, i int) {
	for i > 0 {
		p := (i - 1) / 2
		if h[p] <= h[i] {
			return
		}
		h[p], h[i] = h[i], h[p]
		i = p
	}
}

func heapPop(hp *[]uint32) uint32 {
	h := *hp
	top := h[0]
	last := len(h) - 1
	h[0] = h[last]
	h = h[:last]
	for i := 0; ; {
		l := 2*i + 1
		if l >= len(h) {
			break
		}
		m := l
		if r := l + 1; r < len(h) && h[r] < h[l] {
			m = r
		}
		if h[i] <= h[m] {
			break
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
	*hp = h
	return top
}
