package graph

import (
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"testing"
	"time"
)

// updateSteps returns a day of metrics for n, each from the one before:
// a few edges slower or faster, many, closures, the same closures lifted,
// every edge changed, no change at all, and free flow again.
func updateSteps(n *Network, seed uint64) []namedMetric {
	rng := rand.New(rand.NewPCG(seed, 99))
	free := make([]float64, len(n.Edges))
	for e, ed := range n.Edges {
		free[e] = ed.Duration
	}
	var steps []namedMetric
	add := func(name string, f func(dur []float64)) {
		dur := free
		if len(steps) > 0 {
			dur = steps[len(steps)-1].dur
		}
		dur = slices.Clone(dur)
		f(dur)
		steps = append(steps, namedMetric{name, dur})
	}
	perturb := func(share float64) func([]float64) {
		return func(dur []float64) {
			for e := range dur {
				if rng.Float64() < share && !math.IsInf(dur[e], 1) {
					dur[e] = free[e] * (0.6 + 1.4*rng.Float64())
				}
			}
		}
	}
	var closed []int
	add("few", perturb(0.01))
	add("few-again", perturb(0.01))
	add("few-third", perturb(0.01))
	add("many", perturb(0.2))
	add("closures", func(dur []float64) {
		for e := range dur {
			if rng.IntN(50) == 0 {
				dur[e] = math.Inf(1)
				closed = append(closed, e)
			}
		}
	})
	add("reopened", func(dur []float64) {
		for _, e := range closed {
			dur[e] = free[e] * 1.1
		}
	})
	add("few-after", perturb(0.01))
	add("few-after-again", perturb(0.01))
	add("all", perturb(1))
	add("unchanged", func([]float64) {})
	add("back-to-free", func(dur []float64) { copy(dur, free) })
	return steps
}

// TestCustomizationUpdate updates a customization through a day of
// metrics and compares, after every step, its arcs' weights and parts with
// a full customization of the same metric, and its routes and costs with a
// plain Dijkstra on that metric.
func TestCustomizationUpdate(t *testing.T) {
	for _, tc := range testConfigs {
		t.Run(tc.name, func(t *testing.T) {
			n := genNetwork(tc.seed, tc.opt)
			g := mustBuild(t, n)
			c, err := NewCCH(g, 2)
			if err != nil {
				t.Fatal(err)
			}
			steps := updateSteps(n, tc.seed)
			z, err := c.NewCustomization(steps[0].dur, 2, func() {})
			if err != nil {
				t.Fatal(err)
			}
			rev := reverseEdges(n)
			partial, recycled := 0, 0
			// A snapshot still referenced keeps its arrays: later
			// updates recycle only those of unreachable ones.
			kept, keptDur := z.Graph(), steps[0].dur
			// One query follows the snapshots (Query.For reuses its
			// buffers).
			q := kept.NewQuery()
			for _, s := range steps[1:] {
				// Unreachable snapshots' arrays to recycle: a graph's
				// query pools keep it until the second collection, and
				// cleanups run on a goroutine of their own.
				runtime.GC()
				runtime.GC()
				time.Sleep(time.Millisecond)
				ng, err := z.Update(s.dur, func() {})
				if err != nil {
					t.Fatalf("%s: %v", s.name, err)
				}
				if z.Graph() != ng {
					t.Fatalf("%s: Graph() is not the snapshot returned", s.name)
				}
				st := z.Last
				t.Logf("%s: %+v", s.name, st)
				if !st.Full {
					partial++
				}
				if st.Recycled {
					recycled++
				}
				if s.name == "unchanged" && (st.Edges != 0 || st.Basic != 0 || st.Exact != 0 || st.Arcs != 0) {
					t.Fatalf("unchanged metric recomputed: %+v", st)
				}
				ref, err := c.NewCustomization(s.dur, 2, func() {})
				if err != nil {
					t.Fatal(err)
				}
				compareCustomizations(t, s.name, z.cu, ref.cu)
				if q = q.For(ng); q.g != ng {
					t.Fatalf("%s: Query.For did not bind the snapshot", s.name)
				}
				compareWithDijkstra(t, s.name, n, g, q, s.dur, rev, tc.seed)
			}
			compareWithDijkstra(t, "kept", n, g, q.For(kept), keptDur, rev, tc.seed)
			if len(g.edgeOfCH) > 200 && (partial == 0 || recycled == 0) {
				t.Errorf("%d of %d updates patched, %d in recycled arrays", partial, len(steps)-1, recycled)
			}
		})
	}
}

// compareCustomizations fails t unless every arc of got has the weights
// and parts of want.
func compareCustomizations(t *testing.T, step string, got, want *customization) {
	t.Helper()
	for a := range want.up {
		if got.up[a] != want.up[a] || got.down[a] != want.down[a] ||
			got.exUp[a] != want.exUp[a] || got.exDown[a] != want.exDown[a] {
			t.Fatalf("%s: arc %d: up %d down %d exact %d %d, full customization %d %d exact %d %d", step, a,
				got.up[a], got.down[a], got.exUp[a], got.exDown[a], want.up[a], want.down[a], want.exUp[a], want.exDown[a])
		}
		if got.upL[a] != want.upL[a] || got.downL[a] != want.downL[a] ||
			(want.upL[a] != noNode && got.upR[a] != want.upR[a]) || (want.downL[a] != noNode && got.downR[a] != want.downR[a]) {
			t.Fatalf("%s: arc %d: parts differ from the full customization's", step, a)
		}
	}
}

// compareWithDijkstra fails t unless routes and costs on the customized
// snapshot ng equal a plain Dijkstra's under the durations dur.
func compareWithDijkstra(t *testing.T, step string, n *Network, g *Graph, q *Query, dur []float64, rev map[uint32]uint32, seed uint64) {
	t.Helper()
	ng := q.g
	net := *n
	net.Edges = slices.Clone(n.Edges)
	for e := range net.Edges {
		net.Edges[e].Duration = dur[e]
	}
	cg := &Graph{Road: &net, weight: ng.weight}
	rng := rand.New(rand.NewPCG(seed, 13))
	for k := range 300 {
		src, dst := randomEndpoint(rng, g, rev), randomEndpoint(rng, g, rev)
		ch, err1 := q.Route(src, dst)
		dj, err2 := q.Dijkstra(src, dst)
		if (err1 == nil) != (err2 == nil) {
			t.Fatalf("%s pair %d: CCH error %v, Dijkstra error %v", step, k, err1, err2)
		}
		if d, l, err := q.Cost(src, dst); (err == nil) != (err2 == nil) || d != dj.Duration || l != dj.Distance {
			t.Fatalf("%s pair %d: Cost %v s %v m (%v), Dijkstra %v s %v m (%v)", step, k, d, l, err, dj.Duration, dj.Distance, err2)
		}
		if err1 != nil {
			if !errors.Is(err1, ErrNoRoute) {
				t.Fatalf("%s pair %d: %v", step, k, err1)
			}
			continue
		}
		if ch.Duration != dj.Duration || ch.Distance != dj.Distance {
			t.Fatalf("%s pair %d: CCH %v s %v m, Dijkstra %v s %v m", step, k, ch.Duration, ch.Distance, dj.Duration, dj.Distance)
		}
		checkRoute(t, cg, src, dst, ch)
	}
}

// TestCustomizationUpdatePorto updates the customization of Porto's
// graph (bin/lastmile prepare's file, $LASTMILE_GRAPH) for a few thousand
// edges at a time, as live traffic does, and checks each step against a
// full customization; it logs how much of the hierarchy each recomputed.
func TestCustomizationUpdatePorto(t *testing.T) {
	path := os.Getenv("LASTMILE_GRAPH")
	if path == "" {
		path = filepath.Join(os.TempDir(), "lastmile-graphs", "porto.osm.pbf.lmg")
	}
	g, err := LoadFile(path)
	if err != nil {
		t.Skipf("prepared Porto graph %s not available (set LASTMILE_GRAPH): %v", path, err)
	}
	c, err := NewCCH(g, 2)
	if err != nil {
		t.Fatal(err)
	}
	free := make([]float64, len(g.Road.Edges))
	for e, ed := range g.Road.Edges {
		free[e] = ed.Duration
	}
	t0 := time.Now()
	z, err := c.NewCustomization(free, 2, func() {})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("full customization %v, %d arcs", time.Since(t0), c.Arcs())
	rng := rand.New(rand.NewPCG(1, 2))
	dur := slices.Clone(free)
	for _, k := range []int{1500, 3000, 6000, 6000, 6000} {
		for range k {
			e := rng.IntN(len(dur))
			dur[e] = free[e] * (0.7 + 0.8*rng.Float64())
		}
		t0 := time.Now()
		if _, err := z.Update(dur, func() {}); err != nil {
			t.Fatal(err)
		}
		took := time.Since(t0)
		t0 = time.Now()
		ref, err := c.NewCustomization(dur, 2, func() {})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%d edges: update %v (%+v), full %v", k, took, z.Last, time.Since(t0))
		compareCustomizations(t, "porto", z.cu, ref.cu)
	}
}
