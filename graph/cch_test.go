package graph

import (
	"bytes"
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"sync/atomic"
	"testing"
	"time"
)

// namedMetric is a duration per road edge, named for test messages.
type namedMetric struct {
	name string
	dur  []float64
}

// testMetrics returns named duration vectors for n: the free-flow
// durations, random slow-downs and random slow-downs with closed edges.
func testMetrics(n *Network, seed uint64) []namedMetric {
	rng := rand.New(rand.NewPCG(seed, 7))
	free := make([]float64, len(n.Edges))
	slow := make([]float64, len(n.Edges))
	closed := make([]float64, len(n.Edges))
	for e, ed := range n.Edges {
		free[e] = ed.Duration
		slow[e] = ed.Duration * (0.5 + 2.5*rng.Float64())
		closed[e] = slow[e]
		if rng.IntN(20) == 0 {
			closed[e] = math.Inf(1)
		}
	}
	return []namedMetric{{"free", free}, {"slow", slow}, {"closed", closed}}
}

// TestCCHMatchesDijkstra customizes the hierarchy with several metrics and
// compares every route with a plain Dijkstra search on the same metric.
func TestCCHMatchesDijkstra(t *testing.T) {
	for _, tc := range testConfigs {
		t.Run(tc.name, func(t *testing.T) {
			n := genNetwork(tc.seed, tc.opt)
			g := mustBuild(t, n)
			c, err := NewCCH(g, 2)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("ch nodes %d, cch arcs %d, triangles %d", len(g.edgeOfCH), c.Arcs(), c.Triangles)
			rev := reverseEdges(n)
			// The customizations yield (CustomizeYield) with a sleep
			// now and then, so that the workers interleave.
			var yields atomic.Int64
			yield := func() {
				if yields.Add(1)%7 == 0 {
					time.Sleep(time.Microsecond)
				}
			}
			for _, m := range testMetrics(n, tc.seed) {
				ng, err := c.CustomizeYield(m.dur, 2, yield)
				if err != nil {
					t.Fatalf("%s: Customize: %v", m.name, err)
				}
				// checkRoute sums the road network's durations: give it
				// the metric's.
				net := *n
				net.Edges = append([]Edge(nil), n.Edges...)
				for e := range net.Edges {
					net.Edges[e].Duration = m.dur[e]
				}
				cg := &Graph{Road: &net, weight: ng.weight}
				rng := rand.New(rand.NewPCG(tc.seed, 11))
				q := ng.NewQuery()
				routes, noRoute := 0, 0
				for k := 0; k < 600; k++ {
					src := randomEndpoint(rng, g, rev)
					dst := randomEndpoint(rng, g, rev)
					ch, err1 := q.Route(src, dst)
					dj, err2 := q.Dijkstra(src, dst)
					if (err1 == nil) != (err2 == nil) {
						t.Fatalf("%s pair %d: CCH error %v, Dijkstra error %v", m.name, k, err1, err2)
					}
					// Cost takes its own path (chSearch without a transit table).
					if d, l, err := q.Cost(src, dst); (err == nil) != (err2 == nil) || d != dj.Duration || l != dj.Distance {
						t.Fatalf("%s pair %d: Cost %v s %v m (%v), Dijkstra %v s %v m (%v)", m.name, k, d, l, err, dj.Duration, dj.Distance, err2)
					}
					if err1 != nil {
						if !errors.Is(err1, ErrNoRoute) {
							t.Fatalf("%s pair %d: %v", m.name, k, err1)
						}
						noRoute++
						continue
					}
					routes++
					if ch.Duration != dj.Duration || ch.Distance != dj.Distance {
						t.Fatalf("%s pair %d: CCH %v s %v m, Dijkstra %v s %v m", m.name, k, ch.Duration, ch.Distance, dj.Duration, dj.Distance)
					}
					checkRoute(t, cg, src, dst, ch)
					for _, e := range ch.Edges {
						if math.IsInf(m.dur[e], 1) {
							t.Fatalf("%s pair %d: route uses closed edge %d", m.name, k, e)
						}
					}
				}
				if routes == 0 {
					t.Fatalf("%s: no route found", m.name)
				}
				if m.name != "closed" && noRoute > 0 {
					t.Fatalf("%s: %d pairs without route on an open graph", m.name, noRoute)
				}
				// Matrix entries equal the routes.
				var eps []Endpoint
				for len(eps) < 12 {
					eps = append(eps, randomEndpoint(rng, g, rev))
				}
				mx, err := ng.Matrix(eps, eps, 2)
				if err != nil {
					t.Fatalf("%s: Matrix: %v", m.name, err)
				}
				for i := range eps {
					for j := range eps {
						du, _ := mx.At(i, j)
						r, err := q.Route(eps[i], eps[j])
						if err != nil {
							if !math.IsInf(du, 1) {
								t.Fatalf("%s: matrix %d,%d = %v but route: %v", m.name, i, j, du, err)
							}
							continue
						}
						if du != r.Duration {
							t.Fatalf("%s: matrix %d,%d = %v, route %v", m.name, i, j, du, r.Duration)
						}
					}
				}
			}
			if len(g.edgeOfCH) >= 2*8*yieldRanks && yields.Load() == 0 {
				t.Errorf("%d nodes customized without a yield", len(g.edgeOfCH))
			}
		})
	}
}

func TestCustomizeErrors(t *testing.T) {
	n := genNetwork(1, testConfigs[0].opt)
	g := mustBuild(t, n)
	c, err := NewCCH(g, 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Customize(make([]float64, 1), 1); err == nil {
		t.Fatal("wrong length accepted")
	}
	for _, bad := range []float64{0, -1, math.NaN(), math.Inf(-1), 1e12} {
		dur := make([]float64, len(n.Edges))
		for i := range dur {
			dur[i] = 1
		}
		dur[0] = bad
		if _, err := c.Customize(dur, 1); err == nil {
			t.Fatalf("duration %v accepted", bad)
		}
	}
}

// TestCCHOrderSaved: a graph saved after ComputeCCHOrder loads with the
// order, NewCCH reuses it, and a damaged order is a corrupt file.
func TestCCHOrderSaved(t *testing.T) {
	n := genNetwork(4, testConfigs[3].opt)
	g := mustBuild(t, n)
	if err := g.ComputeCCHOrder(2); err != nil {
		t.Fatal(err)
	}
	c, err := NewCCH(g, 2)
	if err != nil {
		t.Fatal(err)
	}
	b := serialize(t, g)
	lg, err := Load(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	lc, err := NewCCH(lg, 2)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(lc.order, c.order) || lc.Arcs() != c.Arcs() {
		t.Fatalf("loaded order differs (arcs %d, want %d)", lc.Arcs(), c.Arcs())
	}
	// Swap two entries into a duplicate: not a permutation.
	bad := &Graph{Road: g.Road, weight: g.weight, chOfEdge: g.chOfEdge, rank: g.rank, edgeOfCH: g.edgeOfCH, nodeW: g.nodeW,
		turnFirst: g.turnFirst, turnHead: g.turnHead, fwd: g.fwd, bwd: g.bwd, stats: g.stats}
	bad.cchOrder = slices.Clone(c.order)
	bad.cchOrder[0] = bad.cchOrder[1]
	if _, err := Load(bytes.NewReader(serialize(t, bad))); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("duplicate in the CCH order: %v, want ErrCorrupt", err)
	}
}
