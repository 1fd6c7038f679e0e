package graph

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

var testConfigs = []struct {
	name string
	seed uint64
	opt  genOptions
}{
	{"tiny", 1, genOptions{W: 4, H: 3, Components: 1, Link: 0.9, Oneway: 0.3, Restrict: 0.2, Spurs: 1, Parallel: 1, Loops: 1}},
	{"small-oneways", 2, genOptions{W: 10, H: 8, Components: 2, Link: 0.85, Oneway: 0.4, Restrict: 0.1, Shape: true, Spurs: 3, Parallel: 2, Loops: 1}},
	{"restricted", 3, genOptions{W: 15, H: 15, Components: 1, Link: 0.9, Oneway: 0.2, Restrict: 0.3, Spurs: 5, Parallel: 3, Loops: 2}},
	{"medium", 4, genOptions{W: 40, H: 30, Components: 3, Link: 0.8, Oneway: 0.25, Restrict: 0.05, Shape: true, Spurs: 20, Parallel: 10, Loops: 3}},
	{"sparse", 5, genOptions{W: 30, H: 30, Components: 1, Link: 0.6, Oneway: 0.5, Restrict: 0.1, Spurs: 10, Parallel: 5}},
}

func mustBuild(t testing.TB, n *Network) *Graph {
	t.Helper()
	g, err := Build(n, BuildOptions{Workers: 2})
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	return g
}

// randomEndpoint picks a random routable edge and fraction; with a two-way
// road it adds the reverse edge at the mirrored fraction, as snapping does.
func randomEndpoint(rng *rand.Rand, g *Graph, rev map[uint32]uint32) Endpoint {
	var e uint32
	for {
		e = uint32(rng.IntN(len(g.Road.Edges)))
		if g.Routable(e) {
			break
		}
	}
	f := rng.Float64()
	switch rng.IntN(8) {
	case 0:
		f = 0
	case 1:
		f = 1
	}
	ep := Endpoint{Points: []EdgePoint{{e, f}}}
	if r, ok := rev[e]; ok && rng.IntN(4) != 0 {
		ep.Points = append(ep.Points, EdgePoint{r, 1 - f})
	}
	return ep
}

// reverseEdges maps each edge to its reverse twin (same way, swapped ends).
func reverseEdges(n *Network) map[uint32]uint32 {
	type key struct {
		from, to uint32
		way      int64
	}
	idx := map[key]uint32{}
	for i, e := range n.Edges {
		idx[key{e.From, e.To, e.WayID}] = uint32(i)
	}
	rev := map[uint32]uint32{}
	for i, e := range n.Edges {
		if j, ok := idx[key{e.To, e.From, e.WayID}]; ok && j != uint32(i) {
			rev[uint32(i)] = j
		}
	}
	return rev
}

// checkRoute validates a route directly against the Network: connectivity,
// endpoints, turn restrictions, U-turns, and that the summed (partial) edge
// weights equal the reported figures.
func checkRoute(t *testing.T, g *Graph, src, dst Endpoint, r Route) {
	t.Helper()
	n := g.Road
	if len(r.Edges) == 0 {
		t.Fatalf("empty route")
	}
	if r.SrcPoint < 0 || r.SrcPoint >= len(src.Points) || src.Points[r.SrcPoint].Edge != r.Edges[0] || src.Points[r.SrcPoint].Fraction != r.SrcFraction {
		t.Fatalf("route starts on edge %d, not on source point %d %+v", r.Edges[0], r.SrcPoint, src.Points)
	}
	last := r.Edges[len(r.Edges)-1]
	if r.DstPoint < 0 || r.DstPoint >= len(dst.Points) || dst.Points[r.DstPoint].Edge != last || dst.Points[r.DstPoint].Fraction != r.DstFraction {
		t.Fatalf("route ends on edge %d, not on target point %d %+v", last, r.DstPoint, dst.Points)
	}
	if len(r.Edges) == 1 && r.SrcFraction > r.DstFraction {
		t.Fatalf("single-edge route goes backwards: %v > %v", r.SrcFraction, r.DstFraction)
	}
	allowed, uturn := turnRules(n)
	for i := 1; i < len(r.Edges); i++ {
		a, b := r.Edges[i-1], r.Edges[i]
		if n.Edges[a].To != n.Edges[b].From {
			t.Fatalf("edges %d and %d are not consecutive", a, b)
		}
		if r.Nodes[i-1] != n.Edges[a].To {
			t.Fatalf("node %d is %d, want %d", i-1, r.Nodes[i-1], n.Edges[a].To)
		}
		if !allowed(a, b) {
			t.Fatalf("restricted turn %d -> %d taken", a, b)
		}
		if uturn(a, b) {
			for c := range n.Edges {
				if n.Edges[c].From == n.Edges[a].To && !uturn(a, uint32(c)) && allowed(a, uint32(c)) {
					t.Fatalf("U-turn %d -> %d taken although %d is allowed", a, b, c)
				}
			}
		}
	}
	// Summed integer weights with the documented rounding.
	var sum int64
	w0 := g.weight[r.Edges[0]]
	if len(r.Edges) == 1 {
		sum = scaleWeight(w0, r.DstFraction) - scaleWeight(w0, r.SrcFraction)
	} else {
		sum = w0 - scaleWeight(w0, r.SrcFraction)
		for _, e := range r.Edges[1 : len(r.Edges)-1] {
			sum += g.weight[e]
		}
		sum += scaleWeight(g.weight[last], r.DstFraction)
	}
	if weightSeconds(sum) != r.Duration || weightMetres(sum) != r.Distance {
		t.Fatalf("route reports %v s %v m, edges sum to %v s %v m", r.Duration, r.Distance, weightSeconds(sum), weightMetres(sum))
	}
	// And roughly the float weights of the Network.
	var fd, fl float64
	for i, e := range r.Edges {
		a, b := 0.0, 1.0
		if i == 0 {
			a = r.SrcFraction
		}
		if i == len(r.Edges)-1 {
			b = r.DstFraction
		}
		fd += (b - a) * n.Edges[e].Duration
		fl += (b - a) * n.Edges[e].Distance
	}
	tol := 0.002 * float64(len(r.Edges)+1)
	if math.Abs(fd-r.Duration) > tol || math.Abs(fl-r.Distance) > tol*10 {
		t.Fatalf("route reports %v s %v m, float weights sum to %v s %v m", r.Duration, r.Distance, fd, fl)
	}
	if len(r.Geometry) < 2 {
		t.Fatalf("geometry has %d points", len(r.Geometry))
	}
	first, lastPt := r.Geometry[0], r.Geometry[len(r.Geometry)-1]
	e0, e1 := n.Edges[r.Edges[0]], n.Edges[last]
	if r.SrcFraction == 0 && (first.Lat != n.Lat[e0.From] || first.Lon != n.Lon[e0.From]) {
		t.Fatalf("geometry starts at %v, not at node %d", first, e0.From)
	}
	if r.DstFraction == 1 && (lastPt.Lat != n.Lat[e1.To] || lastPt.Lon != n.Lon[e1.To]) {
		t.Fatalf("geometry ends at %v, not at node %d", lastPt, e1.To)
	}
	// Every geometry point lies within the bounding box of the route's
	// edges (nodes and shape points).
	minLat, maxLat, minLon, maxLon := math.Inf(1), math.Inf(-1), math.Inf(1), math.Inf(-1)
	grow := func(lat, lon float64) {
		minLat, maxLat, minLon, maxLon = min(minLat, lat), max(maxLat, lat), min(minLon, lon), max(maxLon, lon)
	}
	for _, e := range r.Edges {
		ed := n.Edges[e]
		grow(n.Lat[ed.From], n.Lon[ed.From])
		grow(n.Lat[ed.To], n.Lon[ed.To])
		for k := ed.ShapeStart; k < ed.ShapeEnd; k++ {
			grow(n.ShapeLat[k], n.ShapeLon[k])
		}
	}
	for _, p := range r.Geometry {
		if p.Lat < minLat-1e-12 || p.Lat > maxLat+1e-12 || p.Lon < minLon-1e-12 || p.Lon > maxLon+1e-12 {
			t.Fatalf("geometry point %v outside the route's edges", p)
		}
	}
}

func TestEdgeGeometry(t *testing.T) {
	// One edge (0,0) -> (0,0.002) with a shape point at (0,0.001): the
	// middle of the edge is the shape point.
	n := &Network{Lat: []float64{0, 0}, Lon: []float64{0, 0.002}, ShapeLat: []float64{0}, ShapeLon: []float64{0.001},
		Edges: []Edge{{From: 0, To: 1, Distance: 222, Duration: 20, WayID: 1, ShapeStart: 0, ShapeEnd: 1},
			{From: 1, To: 0, Distance: 222, Duration: 20, WayID: 1, ShapeStart: 1, ShapeEnd: 1}}}
	g := &Graph{Road: n}
	tests := []struct {
		a, b float64
		want []LatLon
	}{
		{0, 1, []LatLon{{0, 0}, {0, 0.001}, {0, 0.002}}},
		{0.25, 0.75, []LatLon{{0, 0.0005}, {0, 0.001}, {0, 0.0015}}},
		{0.6, 0.8, []LatLon{{0, 0.0012}, {0, 0.0016}}},
		{0.5, 0.5, []LatLon{{0, 0.001}, {0, 0.001}}},
	}
	for _, tc := range tests {
		got := g.appendGeometry(nil, []uint32{0}, tc.a, tc.b)
		if len(got) != len(tc.want) {
			t.Fatalf("[%v,%v]: %v, want %v", tc.a, tc.b, got, tc.want)
		}
		for i := range got {
			if math.Abs(got[i].Lat-tc.want[i].Lat) > 1e-12 || math.Abs(got[i].Lon-tc.want[i].Lon) > 1e-12 {
				t.Fatalf("[%v,%v]: %v, want %v", tc.a, tc.b, got, tc.want)
			}
		}
	}
}

func TestBuildProgress(t *testing.T) {
	var stages []string
	var lastDone, lastTotal int64
	var logs bytes.Buffer
	_, err := Build(genNetwork(4, testConfigs[3].opt), BuildOptions{
		Workers: 1,
		Logger:  slog.New(slog.NewTextHandler(&logs, nil)),
		Progress: func(stage string, done, total int64) {
			if len(stages) == 0 || stages[len(stages)-1] != stage {
				stages = append(stages, stage)
			}
			if stage == "contract" {
				if done < lastDone || done > total {
					t.Errorf("contract progress %d/%d after %d", done, total, lastDone)
				}
				lastDone, lastTotal = done, total
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(stages) != "[turns scc contract]" || lastDone != lastTotal {
		t.Fatalf("stages %v, contract ended at %d/%d", stages, lastDone, lastTotal)
	}
	if !strings.Contains(logs.String(), "contraction hierarchy built") {
		t.Fatalf("logs: %s", logs.String())
	}
}

func TestRoutesMatchDijkstra(t *testing.T) {
	for _, tc := range testConfigs {
		t.Run(tc.name, func(t *testing.T) {
			n := genNetwork(tc.seed, tc.opt)
			g := mustBuild(t, n)
			st := g.Stats()
			t.Logf("road edges %d, routable %d, turns %d, up arcs %d, shortcuts %d", st.RoadEdges, st.CHNodes, st.TurnArcs, st.UpArcs, st.Shortcuts)
			rev := reverseEdges(n)
			rng := rand.New(rand.NewPCG(tc.seed, 99))
			q := g.NewQuery()
			pairs := 1500
			sameEdge := 0
			for k := 0; k < pairs; k++ {
				src := randomEndpoint(rng, g, rev)
				dst := randomEndpoint(rng, g, rev)
				if k%10 == 0 { // same edge, both orders of fractions
					dst = Endpoint{Points: []EdgePoint{{src.Points[0].Edge, rng.Float64()}}}
					sameEdge++
				}
				ch, err := q.Route(src, dst)
				if err != nil {
					t.Fatalf("pair %d: Route: %v", k, err)
				}
				dj, err := q.Dijkstra(src, dst)
				if err != nil {
					t.Fatalf("pair %d: Dijkstra: %v", k, err)
				}
				bd, err := q.BidirDijkstra(src, dst)
				if err != nil {
					t.Fatalf("pair %d: BidirDijkstra: %v", k, err)
				}
				if ch.Duration != dj.Duration || ch.Distance != dj.Distance || bd.Duration != dj.Duration || bd.Distance != dj.Distance {
					t.Fatalf("pair %d %+v -> %+v: CH %v s %v m, Dijkstra %v s %v m, bidirectional %v s %v m",
						k, src, dst, ch.Duration, ch.Distance, dj.Duration, dj.Distance, bd.Duration, bd.Distance)
				}
				d, l, err := q.Cost(src, dst)
				if err != nil || d != ch.Duration || l != ch.Distance {
					t.Fatalf("pair %d: Cost %v %v %v, Route %v %v", k, d, l, err, ch.Duration, ch.Distance)
				}
				for _, r := range []Route{ch, dj, bd} {
					checkRoute(t, g, src, dst, r)
				}
			}
		})
	}
}

func TestMatrixMatchesRoutes(t *testing.T) {
	for _, tc := range testConfigs {
		t.Run(tc.name, func(t *testing.T) {
			n := genNetwork(tc.seed, tc.opt)
			g := mustBuild(t, n)
			rev := reverseEdges(n)
			rng := rand.New(rand.NewPCG(tc.seed, 7))
			src := make([]Endpoint, 23)
			dst := make([]Endpoint, 31)
			for i := range src {
				src[i] = randomEndpoint(rng, g, rev)
			}
			for j := range dst {
				dst[j] = randomEndpoint(rng, g, rev)
			}
			dst[3] = Endpoint{Points: []EdgePoint{{src[0].Points[0].Edge, 0.5}}} // shared edges
			src[5] = Endpoint{Points: []EdgePoint{{dst[7].Points[0].Edge, 0.5}}}
			// An endpoint with no routable edge gives infinite entries.
			var dead uint32 = noNode
			for e := range n.Edges {
				if !g.Routable(uint32(e)) {
					dead = uint32(e)
					break
				}
			}
			if dead != noNode {
				dst[10] = Endpoint{Points: []EdgePoint{{dead, 0.3}}}
			}
			q := g.NewQuery()
			for _, workers := range []int{1, 2, 3} {
				m, err := g.Matrix(src, dst, workers)
				if err != nil {
					t.Fatal(err)
				}
				if m.Rows != len(src) || m.Cols != len(dst) {
					t.Fatalf("matrix is %dx%d", m.Rows, m.Cols)
				}
				for i := range src {
					for j := range dst {
						md, ml := m.At(i, j)
						r, err := q.Route(src[i], dst[j])
						if errors.Is(err, ErrNoRoute) {
							if !math.IsInf(md, 1) || !math.IsInf(ml, 1) {
								t.Fatalf("(%d,%d): matrix %v %v, want Inf", i, j, md, ml)
							}
							continue
						}
						if err != nil {
							t.Fatal(err)
						}
						if md != r.Duration || ml != r.Distance {
							t.Fatalf("(%d,%d): matrix %v s %v m, route %v s %v m", i, j, md, ml, r.Duration, r.Distance)
						}
					}
				}
			}
		})
	}
}

func TestBuildErrors(t *testing.T) {
	good := func() *Network { return genNetwork(1, testConfigs[0].opt) }
	tests := []struct {
		name   string
		mutate func(n *Network)
	}{
		{"no edges", func(n *Network) { n.Edges = nil; n.Restrictions = nil }},
		{"node out of range", func(n *Network) { n.Edges[0].To = uint32(len(n.Lat)) }},
		{"zero duration", func(n *Network) { n.Edges[1].Duration = 0 }},
		{"NaN distance", func(n *Network) { n.Edges[1].Distance = math.NaN() }},
		{"infinite duration", func(n *Network) { n.Edges[1].Duration = math.Inf(1) }},
		{"shape out of range", func(n *Network) { n.Edges[2].ShapeEnd = uint32(len(n.ShapeLat) + 1) }},
		{"lon missing", func(n *Network) { n.Lon = n.Lon[:1] }},
		{"restriction out of range", func(n *Network) {
			n.Restrictions = append(n.Restrictions, TurnRestriction{From: uint32(len(n.Edges)), To: 0})
		}},
		{"restriction not at a via node", func(n *Network) {
			for b := range n.Edges {
				if n.Edges[0].To != n.Edges[b].From {
					n.Restrictions = append(n.Restrictions, TurnRestriction{From: 0, To: uint32(b)})
					return
				}
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n := good()
			tc.mutate(n)
			if _, err := Build(n, BuildOptions{}); err == nil {
				t.Fatal("Build accepted an invalid network")
			}
		})
	}
	if _, err := Build(nil, BuildOptions{}); err == nil {
		t.Fatal("Build accepted nil")
	}
}

func TestQueryErrors(t *testing.T) {
	n := genNetwork(3, testConfigs[2].opt)
	g := mustBuild(t, n)
	q := g.NewQuery()
	var routable, dead uint32 = noNode, noNode
	for e := range n.Edges {
		if g.Routable(uint32(e)) && routable == noNode {
			routable = uint32(e)
		}
		if !g.Routable(uint32(e)) && dead == noNode {
			dead = uint32(e)
		}
	}
	ok := Endpoint{Points: []EdgePoint{{routable, 0.5}}}
	tests := []struct {
		name     string
		src, dst Endpoint
		noRoute  bool
	}{
		{"no points", Endpoint{}, ok, true},
		{"edge out of range", Endpoint{Points: []EdgePoint{{uint32(len(n.Edges)), 0}}}, ok, false},
		{"fraction NaN", ok, Endpoint{Points: []EdgePoint{{routable, math.NaN()}}}, false},
		{"fraction > 1", ok, Endpoint{Points: []EdgePoint{{routable, 1.5}}}, false},
		{"not routable", ok, Endpoint{Points: []EdgePoint{{dead, 0.5}}}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name == "not routable" && dead == noNode {
				t.Skip("every edge is routable")
			}
			for name, f := range map[string]func(Endpoint, Endpoint) (Route, error){"ch": q.Route, "dijkstra": q.Dijkstra, "bidir": q.BidirDijkstra} {
				_, err := f(tc.src, tc.dst)
				if err == nil || errors.Is(err, ErrNoRoute) != tc.noRoute {
					t.Fatalf("%s: err = %v, want error (ErrNoRoute: %v)", name, err, tc.noRoute)
				}
			}
		})
	}
	if _, err := g.Matrix([]Endpoint{ok}, []Endpoint{{Points: []EdgePoint{{routable, -1}}}}, 2); err == nil {
		t.Fatal("Matrix accepted a bad fraction")
	}
}

// TestTurnRules checks the edge-based construction on a hand-made
// crossing: no_* and only_* restrictions and the U-turn rule.
func TestTurnRules(t *testing.T) {
	// Node 0 in the centre, 1..3 around; two-way roads 0-1 (way 1),
	// 0-2 (way 2), 0-3 (way 3); node 3 is a dead end.
	n := &Network{Lat: []float64{0, 0.001, 0, -0.001}, Lon: []float64{0, 0, 0.001, 0}}
	road := func(a, b uint32, way int64) {
		n.Edges = append(n.Edges, Edge{From: a, To: b, Distance: 100, Duration: 10, WayID: way},
			Edge{From: b, To: a, Distance: 100, Duration: 10, WayID: way})
	}
	road(0, 1, 1) // edges 0 (0->1), 1 (1->0)
	road(0, 2, 2) // edges 2 (0->2), 3 (2->0)
	road(0, 3, 3) // edges 4 (0->3), 5 (3->0)
	n.Restrictions = []TurnRestriction{{From: 1, To: 2}, {From: 3, To: 4, Only: true}}
	first, head := buildTurnGraph(n)
	got := map[uint32][]uint32{}
	for a := range n.Edges {
		got[uint32(a)] = head[first[a]:first[a+1]]
	}
	want := map[uint32][]uint32{
		0: {1},    // dead end at 1: U-turn allowed
		1: {4},    // no_* forbids 1->2, U-turn 1->0 forbidden
		2: {3},    // dead end at 2
		3: {4},    // only_* 3->4
		4: {5},    // dead end at 3
		5: {0, 2}, // U-turn 5->4 forbidden
	}
	for a, w := range want {
		if fmt.Sprint(got[a]) != fmt.Sprint(w) {
			t.Errorf("turns from edge %d: %v, want %v", a, got[a], w)
		}
	}
}

// TestSingleEdge covers the smallest network: one oneway edge, where only
// forward movement along the edge is possible.
func TestSingleEdge(t *testing.T) {
	n := &Network{Lat: []float64{41.1, 41.101}, Lon: []float64{-8.6, -8.6},
		Edges: []Edge{{From: 0, To: 1, Distance: 100, Duration: 10, WayID: 7}}}
	g := mustBuild(t, n)
	q := g.NewQuery()
	at := func(f float64) Endpoint { return Endpoint{Points: []EdgePoint{{0, f}}} }
	for name, f := range map[string]func(Endpoint, Endpoint) (Route, error){"ch": q.Route, "dijkstra": q.Dijkstra, "bidir": q.BidirDijkstra} {
		r, err := f(at(0.2), at(0.7))
		if err != nil || r.Duration != 5 || r.Distance != 50 || len(r.Edges) != 1 {
			t.Fatalf("%s forward: %+v %v", name, r, err)
		}
		if _, err := f(at(0.7), at(0.2)); !errors.Is(err, ErrNoRoute) {
			t.Fatalf("%s backward: err = %v, want ErrNoRoute", name, err)
		}
	}
	m, err := g.Matrix([]Endpoint{at(0.2), at(0.7)}, []Endpoint{at(0.7), at(0.2)}, 2)
	if err != nil {
		t.Fatal(err)
	}
	// Row-major: 0.2->0.7, 0.2->0.2, 0.7->0.7, 0.7->0.2 (impossible).
	want := []float64{5, 0, 0, math.Inf(1)}
	if fmt.Sprint(m.Durations) != fmt.Sprint(want) {
		t.Fatalf("matrix durations %v, want %v", m.Durations, want)
	}
}

// oracleCost is an independent reference for the turn rules: Dijkstra over
// road edges of the Network itself, deciding every turn from
// Network.Restrictions and the U-turn rule directly (no edge-based graph),
// with the endpoint semantics of Endpoint. It returns the packed weight or
// -1 when there is no route.
// turnRules reads n's restrictions directly, independently of the
// edge-based graph: allowed(a, b) tells whether the turn from edge a to
// edge b is permitted, uturn(a, b) whether b reverses a on the same way.
func turnRules(n *Network) (allowed, uturn func(a, b uint32) bool) {
	noTurn := map[[2]uint32]bool{}
	only := map[uint32]map[uint32]bool{}
	for _, r := range n.Restrictions {
		if r.Only {
			if only[r.From] == nil {
				only[r.From] = map[uint32]bool{}
			}
			only[r.From][r.To] = true
		} else {
			noTurn[[2]uint32{r.From, r.To}] = true
		}
	}
	allowed = func(a, b uint32) bool {
		if noTurn[[2]uint32{a, b}] {
			return false
		}
		if o := only[a]; o != nil && !o[b] {
			return false
		}
		return true
	}
	uturn = func(a, b uint32) bool {
		ea, eb := n.Edges[a], n.Edges[b]
		return a != b && ea.WayID == eb.WayID && ea.From == eb.To && ea.To == eb.From
	}
	return allowed, uturn
}

func oracleCost(g *Graph, src, dst Endpoint) int64 {
	n := g.Road
	out := map[uint32][]uint32{}
	for i, e := range n.Edges {
		out[e.From] = append(out[e.From], uint32(i))
	}
	allowed, uturn := turnRules(n)
	next := func(a uint32) []uint32 {
		var res, ut []uint32
		for _, b := range out[n.Edges[a].To] {
			if !allowed(a, b) {
				continue
			}
			if uturn(a, b) {
				ut = append(ut, b)
			} else {
				res = append(res, b)
			}
		}
		if len(res) == 0 {
			return ut
		}
		return res
	}
	best := int64(math.MaxInt64)
	// Label = cost at the head of an edge. Sources start with the rest of
	// their edge; reaching a target edge t from a predecessor adds g·w(t).
	dist := map[uint32]int64{}
	var pq []heapItem
	push := func(e uint32, d int64) {
		if old, ok := dist[e]; ok && old <= d {
			return
		}
		dist[e] = d
		pq = append(pq, heapItem{d, e})
	}
	for _, sp := range src.Points {
		if !g.Routable(sp.Edge) {
			continue
		}
		w := g.weight[sp.Edge]
		for _, tp := range dst.Points {
			if tp.Edge == sp.Edge && g.Routable(tp.Edge) && sp.Fraction <= tp.Fraction {
				best = min(best, scaleWeight(w, tp.Fraction)-scaleWeight(w, sp.Fraction))
			}
		}
		push(sp.Edge, w-scaleWeight(w, sp.Fraction))
	}
	settled := map[uint32]bool{}
	for len(pq) > 0 {
		k := 0
		for i := range pq {
			if pq[i].key < pq[k].key {
				k = i
			}
		}
		it := pq[k]
		pq = append(pq[:k], pq[k+1:]...)
		if settled[it.node] || it.key != dist[it.node] {
			continue
		}
		settled[it.node] = true
		for _, b := range next(it.node) {
			for _, tp := range dst.Points {
				if tp.Edge == b && g.Routable(b) {
					best = min(best, it.key+scaleWeight(g.weight[b], tp.Fraction))
				}
			}
			push(b, it.key+g.weight[b])
		}
	}
	if best == math.MaxInt64 {
		return -1
	}
	return best
}

func TestTurnRulesOracle(t *testing.T) {
	for _, tc := range testConfigs[:3] {
		t.Run(tc.name, func(t *testing.T) {
			n := genNetwork(tc.seed, tc.opt)
			g := mustBuild(t, n)
			rev := reverseEdges(n)
			rng := rand.New(rand.NewPCG(tc.seed, 1234))
			q := g.NewQuery()
			for k := 0; k < 300; k++ {
				src, dst := randomEndpoint(rng, g, rev), randomEndpoint(rng, g, rev)
				if k%7 == 0 {
					dst = Endpoint{Points: []EdgePoint{{src.Points[0].Edge, rng.Float64()}}}
				}
				want := oracleCost(g, src, dst)
				r, err := q.Route(src, dst)
				if want < 0 {
					if !errors.Is(err, ErrNoRoute) {
						t.Fatalf("pair %d: oracle finds no route, Route: %+v %v", k, r, err)
					}
					continue
				}
				if err != nil {
					t.Fatalf("pair %d: %v", k, err)
				}
				if r.Duration != weightSeconds(want) || r.Distance != weightMetres(want) {
					t.Fatalf("pair %d %+v -> %+v: Route %v s %v m, oracle %v s %v m", k, src, dst,
						r.Duration, r.Distance, weightSeconds(want), weightMetres(want))
				}
			}
		})
	}
}
