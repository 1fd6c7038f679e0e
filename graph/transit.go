package graph

// Transit-node table on top of the contraction hierarchy, after Arz,
// Luxen and Sanders 2013, "Transit Node Routing Reconsidered" (§3): the
// k highest-ranked CH nodes are transit nodes and a k×k table holds the
// exact distances between them. A cost query then searches upward only
// below the transit nodes: every shortest path either stays below them
// (found where the two restricted searches meet) or has its highest node
// among them, and then its upward part from the source reaches a first
// transit node a through lower nodes only, as does its downward part to
// the target from a last transit node b; the answer is the least of the
// meetings and of d(s,a) + table[a][b] + d(b,t) over the transit nodes
// both searches reach ("access nodes"). On Porto the restricted searches
// settle about a quarter of the nodes of the full CH search.
//
// The table holds distances of one metric, so it is built only for the
// graph's own weights: customized snapshots (CCH) search without it. On
// Porto a table over the top of the nested-dissection order took 350-460
// ms to compute (the customization itself ~230 ms) and made the
// customized search only 1.3x faster, the upper separators being dense.

// transitMax caps the number of transit nodes (the table has k² entries
// of 8 bytes: 32 MiB at the cap).
const transitMax = 2048

// transitTable holds the distances between the transit nodes.
type transitTable struct {
	// first is the rank of the lowest transit node: node v is a transit
	// node when rank[v] >= first, with index rank[v]-first.
	first uint32
	k     int
	// dist[i*k+j] is the packed weight from transit node i to j.
	dist []int64
}

// access is a transit node reached by a restricted search.
type access struct {
	idx  uint32 // transit index
	dist int64
}

// transitCount is the number of transit nodes for a graph of n CH nodes:
// an eighth of the nodes up to transitMax (tiny graphs get none).
func transitCount(n int) int {
	if n < 64 {
		return 0
	}
	return min(transitMax, n/8)
}

// buildTransit makes the k highest nodes transit nodes and computes the
// table between them with the bucket many-to-many search.
func (g *Graph) buildTransit(k, workers int) {
	n := len(g.rank)
	k = min(k, n)
	if k <= 0 {
		g.transit = transitTable{}
		return
	}
	first := uint32(n - k)
	nodes := make([]uint32, k) // transit index -> CH node
	for v, r := range g.rank {
		if r >= first {
			nodes[r-first] = uint32(v)
		}
	}
	one := func(i int, buf []seed) []seed {
		return append(buf, seed{node: nodes[i], extra: noNode})
	}
	dist := make([]int64, k*k)
	g.seedTable(k, k, one, one, workers, func(i int, row []int64) {
		copy(dist[i*k:], row)
	})
	g.transit = transitTable{first: first, k: k, dist: dist}
}

// transitSearch is chSearch with the transit table: both searches are
// exhaustive below the transit nodes and collect the transit nodes they
// reach; the table joins them. It returns infWeight when no route exists
// apart from q.direct; it does not leave a path to unpack.
func (q *Query) transitSearch(src, dst Endpoint) (int64, error) {
	if err := q.prepare(src, dst); err != nil {
		return 0, err
	}
	g := q.g
	t := &g.transit
	q.fw.seed(q.ss)
	q.bw.seed(q.ts)
	best := int64(infWeight)
	q.Settled = 0
	q.accF, q.accB = q.accF[:0], q.accB[:0]
	// Forward first: its labels are final when the backward search checks
	// meetings against them. Labels from infWeight up (a closed road) are
	// never expanded, as in chSearch.
	for s := &q.fw; s.heap.len() > 0 && s.heap.minKey() < infWeight; {
		it := s.heap.pop()
		q.Settled++
		if r := g.rank[it.node]; r >= t.first {
			q.accF = append(q.accF, access{r - t.first, it.key})
			continue
		}
		g.relaxUp(s, it.node, it.key, 0)
	}
	// A backward label from best up improves neither a meeting nor a join.
	for s, o := &q.bw, &q.fw; s.heap.len() > 0 && s.heap.minKey() < best; {
		it := s.heap.pop()
		q.Settled++
		u, du := it.node, it.key
		if ou := &o.st[u]; ou.stamp == o.cur {
			best = min(best, du+ou.dist)
		}
		if r := g.rank[u]; r >= t.first {
			q.accB = append(q.accB, access{r - t.first, du})
			continue
		}
		g.relaxUp(s, u, du, 1)
	}
	k := t.k
	for _, a := range q.accF {
		if a.dist >= best {
			continue
		}
		row := t.dist[int(a.idx)*k : int(a.idx)*k+k]
		for _, b := range q.accB {
			best = min(best, a.dist+row[b.idx]+b.dist)
		}
	}
	return best, nil
}
