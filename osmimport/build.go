package osmimport

import (
	"cmp"
	"errors"
	"log/slog"
	"math"
	"slices"

	"github.com/lastmile/lastmile/graph"
)

const (
	// earthRadius is the mean Earth radius in metres (IUGG R1).
	earthRadius = 6371008.8
	// minEdgeDistance is the length, metres, given to edges whose points
	// coincide, so that every edge has a positive length and duration.
	minEdgeDistance = 0.1
	noNode          = math.MaxUint32
)

func validCoord(lat, lon float64) bool {
	return lat >= -90 && lat <= 90 && lon >= -180 && lon <= 180
}

// part is a piece of a kept way between cuts (missing nodes, blocking
// barriers): pn[first:last] are node indices, at least two, no two
// consecutive ones equal, no blocking barrier inside.
type part struct {
	way         uint32
	first, last uint32
}

// build turns the collected ways, nodes and restrictions into a Network.
func build(c *collector, nt *nodeTable, st *Stats, opt Options, tm *stageTimer) (*graph.Network, error) {
	tm.next("cut")
	nn := len(nt.ids)
	st.NodesReferenced = int64(nn)
	if nn >= noNode/2 {
		return nil, errors.New("too many nodes")
	}
	for i := range nn {
		// A node without a usable position is treated as missing; (0, 0)
		// is what XML nodes without lat/lon attributes decode to.
		if nt.found[i] != 0 && (!validCoord(nt.lat[i], nt.lon[i]) || nt.lat[i] == 0 && nt.lon[i] == 0) {
			nt.found[i] = 0
		}
		if nt.found[i] != 0 && nt.barrier[i] {
			st.BarrierNodes++
		}
	}

	// Cut ways into parts at missing nodes and blocking barriers.
	pn := make([]uint32, 0, len(c.refs))
	parts := make([]part, 0, len(c.ways))
	for wi, w := range c.ways {
		start := len(pn)
		flush := func() {
			if len(pn)-start >= 2 {
				parts = append(parts, part{uint32(wi), uint32(start), uint32(len(pn))})
				start = len(pn)
			} else {
				pn = pn[:start]
			}
		}
		for _, id := range c.refs[w.first:w.last] {
			k, _ := slices.BinarySearch(nt.ids, id)
			if nt.found[k] == 0 {
				st.NodesMissing++
				flush()
				continue
			}
			u := uint32(k)
			if len(pn) > start && pn[len(pn)-1] == u {
				continue // repeated node: zero-length segment
			}
			pn = append(pn, u)
			if nt.barrier[k] && len(pn)-start >= 2 {
				flush()
				pn = append(pn, u) // the next part starts at the barrier
				start = len(pn) - 1
			}
		}
		flush()
	}

	// Node roles: kept nodes become graph nodes, the others are contracted
	// into shapes. A node is kept if it ends a part, is used more than once
	// (intersections, loops), is a barrier or a restriction via node.
	keep := make([]bool, nn)
	occ := make([]uint8, nn)
	for _, p := range parts {
		keep[pn[p.first]], keep[pn[p.last-1]] = true, true
		for _, u := range pn[p.first:p.last] {
			if occ[u] < 2 {
				occ[u]++
			}
		}
	}
	for i := range nn {
		if occ[i] >= 2 || nt.barrier[i] && occ[i] > 0 {
			keep[i] = true
		}
	}
	for _, r := range c.rests {
		if k, ok := slices.BinarySearch(nt.ids, r.via); ok && occ[k] > 0 {
			keep[k] = true
		}
	}
	// A closed chain (a -> ... -> a between kept nodes) would contract to a
	// self-loop: keep its middle node so that it becomes two edges.
	for _, p := range parts {
		prev := p.first
		for i := p.first + 1; i < p.last; i++ {
			if !keep[pn[i]] {
				continue
			}
			if pn[i] == pn[prev] && i-prev >= 2 {
				keep[pn[(prev+i)/2]] = true
			}
			prev = i
		}
	}

	// Each part end at a blocking barrier gets its own copy of the node, so
	// that no path passes through the barrier.
	copyOf := []uint32{}
	used := make([]bool, nn)
	for _, p := range parts {
		for _, pos := range [2]uint32{p.first, p.last - 1} {
			u := pn[pos]
			if u >= uint32(nn) || !nt.barrier[u] {
				continue
			}
			if !used[u] {
				used[u] = true
				continue
			}
			pn[pos] = uint32(nn + len(copyOf))
			copyOf = append(copyOf, u)
		}
	}
	st.BarrierCopies = int64(len(copyOf))

	// Graph node ids: kept nodes in OSM id order, then barrier copies.
	total := nn + len(copyOf)
	gid := make([]uint32, total)
	var nodes uint32
	for i := range nn {
		gid[i] = noNode
		if keep[i] {
			gid[i] = nodes
			nodes++
		}
	}
	for i := range copyOf {
		gid[nn+i] = nodes
		nodes++
	}
	orig := func(u uint32) uint32 {
		if u >= uint32(nn) {
			return copyOf[u-uint32(nn)]
		}
		return u
	}
	net := &graph.Network{
		Lat:     make([]float64, nodes),
		Lon:     make([]float64, nodes),
		OSMNode: make([]int64, nodes),
	}
	for u := range total {
		g := gid[u]
		if g == noNode {
			continue
		}
		o := orig(uint32(u))
		net.Lat[g], net.Lon[g] = nt.lat[o], nt.lon[o]
		if u < nn {
			net.OSMNode[g] = nt.ids[o]
		}
	}

	// Edges: split each part at kept nodes.
	tm.next("edges")
	wayEdges := make([]uint32, len(c.ways)+1) // edges of way w: [wayEdges[w], wayEdges[w+1])
	edges := make([]graph.Edge, 0, 2*len(parts))
	shapeLat := make([]float64, 0, len(pn))
	shapeLon := make([]float64, 0, len(pn))
	curWay := 0
	for _, p := range parts {
		for curWay < int(p.way) {
			curWay++
			wayEdges[curWay] = uint32(len(edges))
		}
		w := &c.ways[p.way]
		prev := p.first
		for i := p.first + 1; i < p.last; i++ {
			u := pn[i]
			if i != p.last-1 && !keep[u] {
				continue
			}
			from, to := gid[pn[prev]], gid[u]
			dist := 0.0
			for k := prev; k < i; k++ {
				a, b := orig(pn[k]), orig(pn[k+1])
				dist += graph.Haversine(nt.lat[a], nt.lon[a], nt.lat[b], nt.lon[b])
			}
			dist = max(dist, minEdgeDistance)
			st.ChainNodes += int64(i - prev - 1)
			if from == to {
				st.SelfLoops++
				prev = i
				continue
			}
			if w.prof.forward {
				s := uint32(len(shapeLat))
				for k := prev + 1; k < i; k++ {
					shapeLat = append(shapeLat, nt.lat[pn[k]])
					shapeLon = append(shapeLon, nt.lon[pn[k]])
				}
				edges = append(edges, graph.Edge{From: from, To: to, Distance: dist,
					Duration: dist / (w.prof.speedFwd / 3.6), WayID: w.id, Class: w.prof.class, Name: w.name,
					ShapeStart: s, ShapeEnd: uint32(len(shapeLat))})
			}
			if w.prof.back {
				s := uint32(len(shapeLat))
				for k := i - 1; k > prev; k-- {
					shapeLat = append(shapeLat, nt.lat[pn[k]])
					shapeLon = append(shapeLon, nt.lon[pn[k]])
				}
				edges = append(edges, graph.Edge{From: to, To: from, Distance: dist,
					Duration: dist / (w.prof.speedBack / 3.6), WayID: w.id, Class: w.prof.class, Name: w.name,
					ShapeStart: s, ShapeEnd: uint32(len(shapeLat))})
			}
			if len(edges) >= noNode || len(shapeLat) >= noNode {
				return nil, errors.New("too many edges")
			}
			prev = i
		}
	}
	for curWay < len(c.ways) {
		curWay++
		wayEdges[curWay] = uint32(len(edges))
	}
	net.Edges, net.ShapeLat, net.ShapeLon = edges, shapeLat, shapeLon
	c.intern("") // names[0] exists even when no way has a name
	net.Names = c.names

	tm.next("restrictions")
	applied := mapRestrictions(c, nt, st, net, gid, occ, wayEdges, opt.Logger)

	tm.next("scc")
	keepNode := largestSCC(int(nodes), net.Edges, st, opt)
	compact(net, keepNode, st, applied)
	compactNames(net)

	st.Nodes = int64(len(net.Lat))
	st.Edges = int64(len(net.Edges))
	st.ShapePoints = int64(len(net.ShapeLat))
	st.RestrictionRows = int64(len(net.Restrictions))
	st.Names = int64(len(net.Names) - 1)
	for i := range net.Edges {
		st.RoadLength += net.Edges[i].Distance
	}
	return net, nil
}

// mapRestrictions turns restriction relations into edge pairs (see
// graph.TurnRestriction). It returns, for each row in net.Restrictions, the
// index of its relation in c.rests, so that rows lost later can be
// attributed.
func mapRestrictions(c *collector, nt *nodeTable, st *Stats, net *graph.Network, gid []uint32, occ []uint8, wayEdges []uint32, log *slog.Logger) []uint32 {
	order := make([]uint32, len(c.ways))
	for i := range order {
		order[i] = uint32(i)
	}
	slices.SortFunc(order, func(a, b uint32) int { return cmp.Compare(c.ways[a].id, c.ways[b].id) })
	findWays := func(id int64, out []uint32) []uint32 {
		i, _ := slices.BinarySearchFunc(order, id, func(w uint32, id int64) int { return cmp.Compare(c.ways[w].id, id) })
		for ; i < len(order) && c.ways[order[i]].id == id; i++ {
			out = append(out, order[i])
		}
		return out
	}
	var rel []uint32
	var fromE, toE, ws []uint32
	for ri, r := range c.rests {
		drop := func(reason string) {
			st.drop(reason)
			log.Debug("osmimport: restriction dropped", "relation", r.id, "reason", reason)
		}
		k, ok := slices.BinarySearch(nt.ids, r.via)
		if !ok || occ[k] == 0 {
			drop(DropViaMissing)
			continue
		}
		if nt.barrier[k] {
			drop(DropViaBarrier)
			continue
		}
		via := gid[k]
		fromE, toE, ws = fromE[:0], toE[:0], ws[:0]
		missing := false
		for _, id := range r.from {
			n := len(ws)
			ws = findWays(id, ws)
			missing = missing || len(ws) == n
		}
		for _, w := range ws {
			for e := wayEdges[w]; e < wayEdges[w+1]; e++ {
				if net.Edges[e].To == via {
					fromE = append(fromE, e)
				}
			}
		}
		ws = ws[:0]
		for _, id := range r.to {
			n := len(ws)
			ws = findWays(id, ws)
			missing = missing || len(ws) == n
		}
		for _, w := range ws {
			for e := wayEdges[w]; e < wayEdges[w+1]; e++ {
				if net.Edges[e].From == via {
					toE = append(toE, e)
				}
			}
		}
		if missing && (len(fromE) == 0 || len(toE) == 0) {
			drop(DropNotRoad)
			continue
		}
		n := len(net.Restrictions)
		for _, f := range fromE {
			for _, t := range toE {
				if r.uturn && net.Edges[t].WayID == net.Edges[f].WayID && net.Edges[t].To != net.Edges[f].From {
					continue // a u-turn on one way goes back where it came from
				}
				net.Restrictions = append(net.Restrictions, graph.TurnRestriction{From: f, To: t, Only: r.only})
				rel = append(rel, uint32(ri))
			}
		}
		if len(net.Restrictions) == n {
			drop(DropNoTouch)
		}
	}
	return rel
}

// largestSCC returns, per node, whether it lies in the largest strongly
// connected component of the road graph (graph.LargestSCC on its CSR form).
func largestSCC(n int, edges []graph.Edge, st *Stats, opt Options) []bool {
	first := make([]uint32, n+1)
	for i := range edges {
		first[edges[i].From+1]++
	}
	for i := range n {
		first[i+1] += first[i]
	}
	head := make([]uint32, len(edges))
	pos := slices.Clone(first[:n])
	for i := range edges {
		f := edges[i].From
		head[pos[f]] = edges[i].To
		pos[f]++
	}
	prog := &progress{fn: opt.Progress}
	prog.report("scc", 0, int64(n))
	keep, comps := graph.LargestSCC(first, head)
	prog.report("scc", int64(n), int64(n))
	st.Components = int64(comps)
	return keep
}

// compact drops nodes not in keepNode, the edges touching them, their shape
// points and restriction rows, renumbering everything. rel gives each
// restriction row's relation, to count relations that lose all rows.
func compact(net *graph.Network, keepNode []bool, st *Stats, rel []uint32) {
	newID := make([]uint32, len(keepNode))
	var n uint32
	for v, k := range keepNode {
		newID[v] = noNode
		if k {
			newID[v] = n
			net.Lat[n], net.Lon[n], net.OSMNode[n] = net.Lat[v], net.Lon[v], net.OSMNode[v]
			n++
		}
	}
	st.SCCNodesRemoved = int64(len(keepNode)) - int64(n)
	net.Lat, net.Lon, net.OSMNode = net.Lat[:n], net.Lon[:n], net.OSMNode[:n]

	newEdge := make([]uint32, len(net.Edges))
	var m, sp uint32
	for i := range net.Edges {
		e := net.Edges[i]
		if newID[e.From] == noNode || newID[e.To] == noNode {
			newEdge[i] = noNode
			continue
		}
		newEdge[i] = m
		e.From, e.To = newID[e.From], newID[e.To]
		s := sp
		for k := e.ShapeStart; k < e.ShapeEnd; k++ {
			net.ShapeLat[sp], net.ShapeLon[sp] = net.ShapeLat[k], net.ShapeLon[k]
			sp++
		}
		e.ShapeStart, e.ShapeEnd = s, sp
		net.Edges[m] = e
		m++
	}
	st.SCCEdgesRemoved = int64(len(net.Edges)) - int64(m)
	net.Edges = net.Edges[:m]
	net.ShapeLat, net.ShapeLon = net.ShapeLat[:sp], net.ShapeLon[:sp]

	var k int
	lost := map[uint32]bool{}
	kept := map[uint32]bool{}
	// An only_* restriction whose permitted exits all left with the removed
	// part still binds its from edge: no remaining exit may be taken there.
	type fromOf struct{ rel, from uint32 }
	onlyKept := map[fromOf]bool{}
	var orphans []fromOf
	for i, r := range net.Restrictions {
		f, t := newEdge[r.From], newEdge[r.To]
		if r.Only && f != noNode {
			if t != noNode {
				onlyKept[fromOf{rel[i], f}] = true
			} else {
				orphans = append(orphans, fromOf{rel[i], f})
			}
		}
		if f == noNode || t == noNode {
			lost[rel[i]] = true
			continue
		}
		kept[rel[i]] = true
		net.Restrictions[k] = graph.TurnRestriction{From: f, To: t, Only: r.Only}
		k++
	}
	net.Restrictions = net.Restrictions[:k]
	if len(orphans) > 0 {
		exits := map[uint32][]uint32{} // via node -> edges leaving it
		for _, o := range orphans {
			exits[net.Edges[o.from].To] = nil
		}
		for e := range net.Edges {
			if x, ok := exits[net.Edges[e].From]; ok {
				exits[net.Edges[e].From] = append(x, uint32(e))
			}
		}
		for _, o := range orphans {
			if onlyKept[o] {
				continue
			}
			onlyKept[o] = true // once per relation and from edge
			for _, t := range exits[net.Edges[o.from].To] {
				net.Restrictions = append(net.Restrictions, graph.TurnRestriction{From: o.from, To: t})
			}
			kept[o.rel] = true
		}
	}
	for r := range lost {
		if !kept[r] {
			st.drop(DropOutsideLarge)
		}
	}
	st.RestrictionsApplied = int64(len(kept))
}

// compactNames drops the names no edge uses any more (those of ways cut
// away with the smaller components), keeping the others in their order
// and names[0] == "".
func compactNames(net *graph.Network) {
	newIdx := make([]uint32, len(net.Names))
	for i := range net.Edges {
		newIdx[net.Edges[i].Name] = 1
	}
	k := uint32(1)
	for i := 1; i < len(net.Names); i++ {
		if newIdx[i] != 0 {
			newIdx[i] = k
			net.Names[k] = net.Names[i]
			k++
		}
	}
	clear(net.Names[k:])
	net.Names = slices.Clip(net.Names[:k])
	newIdx[0] = 0
	for i := range net.Edges {
		net.Edges[i].Name = newIdx[net.Edges[i].Name]
	}
}
