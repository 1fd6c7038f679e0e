package graph

import (
	"fmt"
	"slices"
)

// The routing graph is edge-based so that turn restrictions need no special
// case in any search: each node of the edge-based graph is a directed road
// edge of the Network, and an arc a→b exists when Edges[a].To ==
// Edges[b].From and the turn from a onto b is allowed:
//
//   - a no_* restriction (From a, To b) removes the arc;
//   - only_* restrictions on a keep only the arcs to their To edges;
//   - a U-turn (b is the reverse of a: b != a, same WayID, b.From == a.To and
//     b.To == a.From) is forbidden unless a has no other allowed exit (a dead
//     end), in which case it is allowed if restrictions allow it.
//
// The arc a→b weighs what b weighs, so a path's cost is the sum of its edge
// weights after the first edge (the first edge's cost is accounted by the
// source endpoint, see Endpoint).

// validateNetwork checks index ranges (nodes, shapes, names, restriction
// edges) and weights of a Network and returns the packed weight of every
// road edge.
func validateNetwork(n *Network) ([]int64, error) {
	if n == nil {
		return nil, fmt.Errorf("graph: nil network")
	}
	numNodes := len(n.Lat)
	if len(n.Lon) != numNodes {
		return nil, fmt.Errorf("graph: %d latitudes but %d longitudes", numNodes, len(n.Lon))
	}
	if len(n.OSMNode) != 0 && len(n.OSMNode) != numNodes {
		return nil, fmt.Errorf("graph: %d nodes but %d OSM node ids", numNodes, len(n.OSMNode))
	}
	if len(n.ShapeLat) != len(n.ShapeLon) {
		return nil, fmt.Errorf("graph: %d shape latitudes but %d shape longitudes", len(n.ShapeLat), len(n.ShapeLon))
	}
	if len(n.Edges) == 0 {
		return nil, fmt.Errorf("graph: network has no edges")
	}
	if uint64(len(n.Edges)) >= uint64(noNode) || uint64(numNodes) >= uint64(noNode) {
		return nil, fmt.Errorf("graph: network too large (%d nodes, %d edges)", numNodes, len(n.Edges))
	}
	if len(n.Names) > 0 && n.Names[0] != "" {
		return nil, fmt.Errorf("graph: name 0 is %q, want the empty string (unnamed)", n.Names[0])
	}
	names := max(len(n.Names), 1) // index 0 is unnamed even without a table
	w := make([]int64, len(n.Edges))
	for i := range n.Edges {
		e := &n.Edges[i]
		if int(e.From) >= numNodes || int(e.To) >= numNodes {
			return nil, fmt.Errorf("graph: edge %d: node %d->%d out of range [0,%d)", i, e.From, e.To, numNodes)
		}
		if e.ShapeStart > e.ShapeEnd || int(e.ShapeEnd) > len(n.ShapeLat) {
			return nil, fmt.Errorf("graph: edge %d: shape range [%d,%d) out of range [0,%d]", i, e.ShapeStart, e.ShapeEnd, len(n.ShapeLat))
		}
		if int(e.Name) >= names {
			return nil, fmt.Errorf("graph: edge %d: name %d out of range [0,%d)", i, e.Name, names)
		}
		var err error
		if w[i], err = edgeWeight(e); err != nil {
			return nil, fmt.Errorf("graph: edge %d: %w", i, err)
		}
	}
	for i, r := range n.Restrictions {
		if int(r.From) >= len(n.Edges) || int(r.To) >= len(n.Edges) {
			return nil, fmt.Errorf("graph: restriction %d: edge %d->%d out of range [0,%d)", i, r.From, r.To, len(n.Edges))
		}
		if n.Edges[r.From].To != n.Edges[r.To].From {
			return nil, fmt.Errorf("graph: restriction %d: edge %d ends at node %d but edge %d starts at node %d",
				i, r.From, n.Edges[r.From].To, r.To, n.Edges[r.To].From)
		}
	}
	return w, nil
}

// isUTurn reports whether turning from road edge a onto b reverses along
// the same way.
func isUTurn(n *Network, a, b uint32) bool {
	ea, eb := &n.Edges[a], &n.Edges[b]
	return a != b && ea.WayID == eb.WayID && eb.From == ea.To && eb.To == ea.From
}

// buildTurnGraph builds the edge-based graph over all road edges as CSR
// (first has len(Edges)+1 entries, heads are road edge ids), applying the
// turn rules documented above.
func buildTurnGraph(n *Network) (first, head []uint32) {
	numNodes, numEdges := len(n.Lat), len(n.Edges)
	// Out-edges of every road node, CSR.
	nFirst := make([]uint32, numNodes+1)
	for i := range n.Edges {
		nFirst[n.Edges[i].From+1]++
	}
	for i := 0; i < numNodes; i++ {
		nFirst[i+1] += nFirst[i]
	}
	nOut := make([]uint32, numEdges)
	fill := slices.Clone(nFirst[:numNodes])
	for i := range n.Edges {
		f := n.Edges[i].From
		nOut[fill[f]] = uint32(i)
		fill[f]++
	}
	// Restrictions grouped by their From edge.
	rs := slices.Clone(n.Restrictions)
	slices.SortFunc(rs, func(x, y TurnRestriction) int {
		if x.From != y.From {
			return int(x.From) - int(y.From)
		}
		return int(x.To) - int(y.To)
	})

	first = make([]uint32, numEdges+1)
	head = make([]uint32, 0, numEdges*3)
	ri := 0
	var uturns []uint32
	for a := 0; a < numEdges; a++ {
		for ri < len(rs) && int(rs[ri].From) < a {
			ri++
		}
		rj := ri
		hasOnly := false
		for rj < len(rs) && int(rs[rj].From) == a {
			hasOnly = hasOnly || rs[rj].Only
			rj++
		}
		myRs := rs[ri:rj]
		allowed := func(b uint32) bool {
			ok := !hasOnly
			for _, r := range myRs {
				if r.To == b {
					if !r.Only {
						return false
					}
					ok = true
				}
			}
			return ok
		}
		v := n.Edges[a].To
		uturns = uturns[:0]
		start := len(head)
		for _, b := range nOut[nFirst[v]:nFirst[v+1]] {
			if !allowed(b) {
				continue
			}
			if isUTurn(n, uint32(a), b) {
				uturns = append(uturns, b)
				continue
			}
			head = append(head, b)
		}
		if len(head) == start {
			head = append(head, uturns...)
		}
		first[a+1] = uint32(len(head))
	}
	return first, head
}

// LargestSCC returns, for each node of a CSR graph (first has one entry
// per node plus one, head the arc targets), whether it belongs to the
// largest strongly connected component, and the number of components. It
// runs Tarjan's algorithm (Tarjan 1972, "Depth-first search and linear
// graph algorithms", SIAM J. Comput. 1(2)) with an explicit stack so that
// graphs with millions of nodes cannot overflow the goroutine stack. Both
// the importer (on road nodes) and Build (on the edge-based graph) keep
// only that component, so that every point can reach every other.
func LargestSCC(first, head []uint32) (keep []bool, components int) {
	n := len(first) - 1
	const unvisited = ^uint32(0)
	index := make([]uint32, n)
	low := make([]uint32, n)
	onStack := make([]bool, n)
	comp := make([]uint32, n)
	for i := range index {
		index[i] = unvisited
	}
	var stack []uint32 // Tarjan's node stack
	type frame struct{ v, next uint32 }
	var call []frame // DFS call stack: node and next arc to scan
	var counter, numComp uint32
	var sizes []int
	for root := 0; root < n; root++ {
		if index[root] != unvisited {
			continue
		}
		call = append(call, frame{uint32(root), first[root]})
		index[root], low[root] = counter, counter
		counter++
		stack = append(stack, uint32(root))
		onStack[root] = true
		for len(call) > 0 {
			top := &call[len(call)-1]
			v := top.v
			if top.next < first[v+1] {
				w := head[top.next]
				top.next++
				if index[w] == unvisited {
					index[w], low[w] = counter, counter
					counter++
					stack = append(stack, w)
					onStack[w] = true
					call = append(call, frame{w, first[w]})
				} else if onStack[w] && index[w] < low[v] {
					low[v] = index[w]
				}
				continue
			}
			// v is finished.
			call = call[:len(call)-1]
			if len(call) > 0 {
				p := call[len(call)-1].v
				if low[v] < low[p] {
					low[p] = low[v]
				}
			}
			if low[v] == index[v] {
				size := 0
				for {
					w := stack[len(stack)-1]
					stack = stack[:len(stack)-1]
					onStack[w] = false
					comp[w] = numComp
					size++
					if w == v {
						break
					}
				}
				sizes = append(sizes, size)
				numComp++
			}
		}
	}
	best := 0
	for c, s := range sizes {
		if s > sizes[best] {
			best = c
		}
	}
	keep = make([]bool, n)
	for i := range keep {
		keep[i] = n > 0 && comp[i] == uint32(best)
	}
	return keep, int(numComp)
}
