package graph

import (
	"errors"
	"math"
	"sync"
)

// Matrix holds many-to-many route costs in row-major order: entry
// i*Cols+j is from source i to target j. Pairs without a route (an
// endpoint without a routable edge, or a target behind the source on the
// same oneway edge with no way around) hold math.Inf(1) in both slices.
type Matrix struct {
	Rows, Cols int
	// Durations in seconds and Distances in metres of the shortest routes
	// (by duration, then distance), as Route would report them.
	Durations, Distances []float64
}

// At returns the duration and distance from source i to target j.
func (m *Matrix) At(i, j int) (duration, distance float64) {
	return m.Durations[i*m.Cols+j], m.Distances[i*m.Cols+j]
}

type bucketEntry struct {
	node, target uint32
	dist         int64
}

// Matrix computes the costs of the shortest routes from every source to
// every target with the bucket algorithm of Knopp, Sanders, Schultes,
// Schulz and Wagner 2007, "Computing many-to-many shortest paths using
// highway hierarchies" (§3), on the contraction hierarchy: an upward
// backward search from each target leaves (target, distance) entries in
// buckets at the nodes it settles, then an upward forward search from each
// source scans the buckets of the nodes it settles. Both kinds of search
// use stall-on-demand and run on workers goroutines (≤ 0 means 2).
// Pairs whose endpoints share an edge are answered by point-to-point
// queries, which handle the same-edge cases. It returns an error for
// endpoints with out-of-range edges or fractions.
func (g *Graph) Matrix(src, dst []Endpoint, workers int) (*Matrix, error) {
	if workers <= 0 {
		workers = 2
	}
	srcOK := make([]bool, len(src))
	dstOK := make([]bool, len(dst))
	for i, ep := range src {
		err := g.checkEndpoint("source", ep)
		if err != nil && !errors.Is(err, ErrNoRoute) {
			return nil, err
		}
		srcOK[i] = err == nil
	}
	for j, ep := range dst {
		err := g.checkEndpoint("target", ep)
		if err != nil && !errors.Is(err, ErrNoRoute) {
			return nil, err
		}
		dstOK[j] = err == nil
	}
	m := &Matrix{Rows: len(src), Cols: len(dst),
		Durations: make([]float64, len(src)*len(dst)), Distances: make([]float64, len(src)*len(dst))}
	// Sources leave at their fraction, targets are entered up to theirs
	// (see Endpoint for the partial costs).
	endSeeds := func(eps []Endpoint, ok []bool, target bool) func(int, []seed) []seed {
		return func(i int, buf []seed) []seed {
			if !ok[i] {
				return buf
			}
			for k, p := range eps[i].Points {
				if v, ok := g.endNode(p.Edge); ok {
					wt := g.weight[p.Edge]
					off := wt - scaleWeight(wt, p.Fraction)
					if target {
						off = -off
					}
					buf = append(buf, seed{node: v, point: int32(k), extra: noNode, off: off})
				}
			}
			return buf
		}
	}
	g.seedTable(len(src), len(dst), endSeeds(src, srcOK, false), endSeeds(dst, dstOK, true), workers,
		func(i int, row []int64) {
			out := i * len(dst)
			for j, d := range row {
				if d >= infWeight || !dstOK[j] {
					m.Durations[out+j], m.Distances[out+j] = math.Inf(1), math.Inf(1)
				} else {
					m.Durations[out+j], m.Distances[out+j] = weightSeconds(d), weightMetres(d)
				}
			}
		})

	// Pairs sharing an edge: point-to-point queries.
	byEdge := map[uint32][]int{}
	for j, ep := range dst {
		for _, p := range ep.Points {
			if l := byEdge[p.Edge]; len(l) == 0 || l[len(l)-1] != j {
				byEdge[p.Edge] = append(l, j)
			}
		}
	}
	var q *Query
	for i, ep := range src {
		if !srcOK[i] {
			continue
		}
		for _, p := range ep.Points {
			for _, j := range byEdge[p.Edge] {
				if !dstOK[j] {
					continue
				}
				if q == nil {
					q = g.getQuery()
					defer g.queries.Put(q)
				}
				d, l, err := q.Cost(ep, dst[j])
				if err != nil {
					d, l = math.Inf(1), math.Inf(1)
				}
				m.Durations[i*len(dst)+j], m.Distances[i*len(dst)+j] = d, l
			}
		}
	}
	return m, nil
}

// seedTable runs the bucket algorithm of Matrix from rows sources to cols
// targets given as search seeds (srcSeeds and dstSeeds append the seeds of
// one source or target to buf; none means unreachable) and passes each
// row of packed weights (infWeight where there is no route) to row, from
// several goroutines at once. Rows are reused after row returns.
func (g *Graph) seedTable(rows, cols int, srcSeeds, dstSeeds func(i int, buf []seed) []seed, workers int, row func(i int, dist []int64)) {
	n := len(g.edgeOfCH)
	workers = min(workers, max(rows, cols, 1))

	// Backward searches fill per-worker entry lists.
	entries := make([][]bucketEntry, workers)
	g.runParallel(workers, cols, func(w int, s *side, j int) {
		var buf [4]seed
		ts := dstSeeds(j, buf[:0])
		if len(ts) == 0 {
			return
		}
		s.seed(ts)
		for s.heap.len() > 0 {
			u, du, stalled := g.upStep(s, 1)
			if !stalled {
				entries[w] = append(entries[w], bucketEntry{u, uint32(j), du})
			}
		}
	})
	// Buckets in CSR by node (counting sort), in pooled arrays.
	bk := g.getBuckets(n)
	defer g.buckets.Put(bk)
	bFirst, fill := bk.first, bk.fill
	total := 0
	for _, es := range entries {
		total += len(es)
		for _, e := range es {
			bFirst[e.node+1]++
		}
	}
	for i := 0; i < n; i++ {
		bFirst[i+1] += bFirst[i]
	}
	bTarget := make([]uint32, total)
	bDist := make([]int64, total)
	copy(fill, bFirst[:n])
	for _, es := range entries {
		for _, e := range es {
			k := fill[e.node]
			bTarget[k], bDist[k] = e.target, e.dist
			fill[e.node]++
		}
	}
	entries = nil

	// Forward searches scan the buckets.
	rowBuf := make([][]int64, workers)
	for w := range rowBuf {
		rowBuf[w] = make([]int64, cols)
	}
	g.runParallel(workers, rows, func(w int, s *side, i int) {
		r := rowBuf[w]
		for j := range r {
			r[j] = infWeight
		}
		var buf [4]seed
		if ss := srcSeeds(i, buf[:0]); len(ss) > 0 {
			s.seed(ss)
			for s.heap.len() > 0 {
				u, du, stalled := g.upStep(s, 0)
				if stalled {
					continue
				}
				for k := bFirst[u]; k < bFirst[u+1]; k++ {
					if d := du + bDist[k]; d < r[bTarget[k]] {
						r[bTarget[k]] = d
					}
				}
			}
		}
		row(i, r)
	})
}

// upStep settles the next node of s in direction dir with
// stall-on-demand, and reports whether it was stalled.
func (g *Graph) upStep(s *side, dir int) (uint32, int64, bool) {
	it := s.heap.pop()
	return it.node, it.key, !g.relaxUp(s, it.node, it.key, dir)
}

// runParallel calls f(worker, side, i) for i in [0, count) on workers
// goroutines, each with its own search side from the graph's pool.
func (g *Graph) runParallel(workers, count int, f func(w int, s *side, i int)) {
	var wg sync.WaitGroup
	var mu sync.Mutex
	next := 0
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			s := g.getSide()
			defer g.sides.Put(s)
			for {
				mu.Lock()
				i := next
				next += 16
				mu.Unlock()
				if i >= count {
					return
				}
				for k := i; k < min(i+16, count); k++ {
					f(w, s, k)
				}
			}
		}(w)
	}
	wg.Wait()
}

// bucketArrays are the node-indexed arrays of one Matrix call.
type bucketArrays struct{ first, fill []uint32 }

// getSide returns a search side over the graph's nodes from the pool:
// allocating and clearing graph-sized state per matrix would cost more
// than a small matrix's searches.
func (g *Graph) getSide() *side {
	if s, ok := g.sides.Get().(*side); ok {
		return s
	}
	s := newSide(len(g.edgeOfCH))
	return &s
}

func (g *Graph) getQuery() *Query {
	if q, ok := g.queries.Get().(*Query); ok {
		return q
	}
	return g.NewQuery()
}

// getBuckets returns zeroed bucket offsets and a fill array for n nodes.
func (g *Graph) getBuckets(n int) *bucketArrays {
	if b, ok := g.buckets.Get().(*bucketArrays); ok {
		clear(b.first)
		return b
	}
	return &bucketArrays{first: make([]uint32, n+1), fill: make([]uint32, n)}
}
