package graph

import (
	"math/rand/v2"
	"testing"
)

// TestTransitCostMatchesDijkstra checks Cost with transit tables of
// several sizes (none, one node, a few, the default, most of the graph)
// against plain Dijkstra, including same-edge pairs.
func TestTransitCostMatchesDijkstra(t *testing.T) {
	for _, tc := range testConfigs {
		t.Run(tc.name, func(t *testing.T) {
			n := genNetwork(tc.seed, tc.opt)
			g := mustBuild(t, n)
			nl := len(g.rank)
			if g.transit.k != transitCount(nl) {
				t.Fatalf("built with %d transit nodes, want %d", g.transit.k, transitCount(nl))
			}
			rev := reverseEdges(n)
			for _, k := range []int{0, 1, 7, transitCount(nl), min(nl, 1500)} {
				g.buildTransit(k, 2)
				if g.transit.k != k {
					t.Fatalf("k=%d: table has %d nodes", k, g.transit.k)
				}
				rng := rand.New(rand.NewPCG(tc.seed, uint64(k)))
				q := g.NewQuery()
				settled := 0
				for p := 0; p < 400; p++ {
					src, dst := randomEndpoint(rng, g, rev), randomEndpoint(rng, g, rev)
					if p%10 == 0 {
						dst = Endpoint{Points: []EdgePoint{{src.Points[0].Edge, rng.Float64()}}}
					}
					dj, err := q.Dijkstra(src, dst)
					if err != nil {
						t.Fatalf("k=%d pair %d: Dijkstra: %v", k, p, err)
					}
					d, l, err := q.Cost(src, dst)
					if err != nil || d != dj.Duration || l != dj.Distance {
						t.Fatalf("k=%d pair %d: Cost %v s %v m (%v), Dijkstra %v s %v m", k, p, d, l, err, dj.Duration, dj.Distance)
					}
					settled += q.Settled
				}
				t.Logf("k=%d: %.1f nodes settled per Cost query", k, float64(settled)/400)
			}
		})
	}
}
