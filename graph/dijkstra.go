package graph

import "slices"

// Reference searches on the edge-based graph without the hierarchy. They
// use the same seeds, weights and rounding as Route, so their results must
// equal Route's exactly; they serve as test oracles and as the baseline of
// benchmarks.

// markTargets records the target seeds in side t (dist = offset,
// parentArc = seed index) without queueing them.
func markTargets(t *side, seeds []seed) int64 {
	t.reset()
	minOff := int64(infWeight)
	for i, sd := range seeds {
		if !t.reached(sd.node) || sd.off < t.st[sd.node].dist {
			t.st[sd.node].stamp, t.st[sd.node].dist, t.st[sd.node].parent, t.st[sd.node].parentArc = t.cur, sd.off, noNode, uint32(i)
		}
		minOff = min(minOff, sd.off)
	}
	return minOff
}

// Dijkstra computes the shortest route like Route with a plain
// unidirectional Dijkstra search on the edge-based graph (no hierarchy),
// stopping once no unsettled node can improve the best target.
func (q *Query) Dijkstra(src, dst Endpoint) (Route, error) {
	if err := q.prepare(src, dst); err != nil {
		return Route{}, err
	}
	g := q.g
	s := &q.fw
	s.seed(q.ss)
	minT := markTargets(&q.bw, q.ts)
	best, meet := int64(infWeight), noNode
	for s.heap.len() > 0 && s.heap.minKey()+minT < best {
		it := s.heap.pop()
		u, du := it.node, it.key
		if q.bw.reached(u) && du+q.bw.st[u].dist < best {
			best, meet = du+q.bw.st[u].dist, u
		}
		for _, h := range g.turnHead[g.turnFirst[u]:g.turnFirst[u+1]] {
			s.relax(h, du+g.nodeW[h], u, noNode)
		}
	}
	return q.finish(src, dst, best, meet, q.unpackChains)
}

// BidirDijkstra computes the shortest route like Route with a
// bidirectional Dijkstra search on the edge-based graph (no hierarchy),
// stopping when the two queue minima add up to the best route found.
func (q *Query) BidirDijkstra(src, dst Endpoint) (Route, error) {
	if err := q.prepare(src, dst); err != nil {
		return Route{}, err
	}
	g := q.g
	fw, bw := &q.fw, &q.bw
	fw.seed(q.ss)
	bw.seed(q.ts)
	best, meet := int64(infWeight), noNode
	for _, sd := range q.ss {
		if bw.reached(sd.node) && fw.st[sd.node].dist+bw.st[sd.node].dist < best {
			best, meet = fw.st[sd.node].dist+bw.st[sd.node].dist, sd.node
		}
	}
	forward := true
	for fw.heap.len() > 0 && bw.heap.len() > 0 && fw.heap.minKey()+bw.heap.minKey() < best {
		if forward {
			it := fw.heap.pop()
			u, du := it.node, it.key
			for _, h := range g.turnHead[g.turnFirst[u]:g.turnFirst[u+1]] {
				fw.relax(h, du+g.nodeW[h], u, noNode)
				if bw.reached(h) && fw.st[h].dist+bw.st[h].dist < best {
					best, meet = fw.st[h].dist+bw.st[h].dist, h
				}
			}
		} else {
			it := bw.heap.pop()
			u, du := it.node, it.key
			for _, p := range g.rturnHead[g.rturnFirst[u]:g.rturnFirst[u+1]] {
				bw.relax(p, du+g.nodeW[u], u, noNode)
				if fw.reached(p) && fw.st[p].dist+bw.st[p].dist < best {
					best, meet = fw.st[p].dist+bw.st[p].dist, p
				}
			}
		}
		forward = !forward
	}
	return q.finish(src, dst, best, meet, q.unpackChains)
}

// unpackChains writes to q.path the node path of a search without
// shortcuts: the forward parent chain to meet, then the backward one.
func (q *Query) unpackChains(meet uint32) (seed, seed, error) {
	q.path = q.path[:0]
	v := meet
	for {
		q.path = append(q.path, v)
		if q.fw.st[v].parent == noNode {
			break
		}
		v = q.fw.st[v].parent
	}
	sSeed := q.ss[q.fw.st[v].parentArc]
	slices.Reverse(q.path)
	v = meet
	for q.bw.st[v].parent != noNode {
		v = q.bw.st[v].parent
		q.path = append(q.path, v)
	}
	return sSeed, q.ts[q.bw.st[v].parentArc], nil
}
