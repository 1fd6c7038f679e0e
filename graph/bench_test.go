package graph

import (
	"math/rand/v2"
	"sync"
	"testing"
	"time"
)

// benchOptions gives a synthetic network of about 100k directed road edges
// with arterial roads every 8 rows and columns.
var benchOptions = genOptions{W: 180, H: 180, Components: 1, Link: 0.92, Oneway: 0.2, Restrict: 0.02, Shape: true,
	Spurs: 200, Parallel: 50, Loops: 5, Arterial: 8}

var benchGraph = sync.OnceValues(func() (*Graph, error) {
	return Build(genNetwork(42, benchOptions), BuildOptions{Workers: 2})
})

func loadBench(b *testing.B) *Graph {
	b.Helper()
	t0 := time.Now()
	g, err := benchGraph()
	if err != nil {
		b.Fatal(err)
	}
	if d := time.Since(t0); d > time.Second {
		st := g.Stats()
		b.Logf("built in %v: road edges %d, CH nodes %d, turns %d, up arcs %d, shortcuts %d, contraction %v",
			d, st.RoadEdges, st.CHNodes, st.TurnArcs, st.UpArcs, st.Shortcuts, st.ContractTime)
	}
	return g
}

// benchPairs returns random endpoint pairs (mid-edge, both directions of
// two-way roads).
func benchPairs(g *Graph, k int) [][2]Endpoint {
	rev := reverseEdges(g.Road)
	rng := rand.New(rand.NewPCG(1, 2))
	p := make([][2]Endpoint, k)
	for i := range p {
		p[i] = [2]Endpoint{randomEndpoint(rng, g, rev), randomEndpoint(rng, g, rev)}
	}
	return p
}

// BenchmarkQuery times the CH route, the CH cost-only search and both
// reference Dijkstras on the same 1000 random pairs.
func BenchmarkQuery(b *testing.B) {
	g := loadBench(b)
	pairs := benchPairs(g, 1000)
	q := g.NewQuery()
	cost := func(s, t Endpoint) (Route, error) {
		_, _, err := q.Cost(s, t)
		return Route{}, err
	}
	for _, bc := range []struct {
		name string
		f    func(s, t Endpoint) (Route, error)
	}{{"Route", q.Route}, {"Cost", cost}, {"Dijkstra", q.Dijkstra}, {"BidirDijkstra", q.BidirDijkstra}} {
		b.Run(bc.name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				p := pairs[i%len(pairs)]
				if _, err := bc.f(p[0], p[1]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkMatrix100(b *testing.B) {
	g := loadBench(b)
	pairs := benchPairs(g, 100)
	src, dst := make([]Endpoint, len(pairs)), make([]Endpoint, len(pairs))
	for i, p := range pairs {
		src[i], dst[i] = p[0], p[1]
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := g.Matrix(src, dst, 2); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkBuild(b *testing.B) {
	n := genNetwork(42, benchOptions)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := Build(n, BuildOptions{Workers: 2}); err != nil {
			b.Fatal(err)
		}
	}
}
