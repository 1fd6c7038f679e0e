package osmimport

import (
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/lastmile/lastmile/graph"
)

// Hand-written OSM XML fixtures. Node n of a fixture sits on a grid:
// fxPos gives its position from (x, y) grid steps of 0.001 degree.

type fxNode struct {
	id   int64
	x, y float64
	tags []string
}

type fxWay struct {
	id    int64
	nodes []int64
	tags  []string
}

type fxMember struct {
	typ  string
	ref  int64
	role string
}

type fxRel struct {
	id      int64
	members []fxMember
	tags    []string
}

func fxPos(x, y float64) (lat, lon float64) {
	return 41.15 + y*0.001, -8.61 + x*0.001
}

func writeTags(b *strings.Builder, kv []string) {
	for i := 0; i+1 < len(kv); i += 2 {
		fmt.Fprintf(b, "    <tag k=%q v=%q/>\n", kv[i], kv[i+1])
	}
}

// fixtureXML renders nodes, ways and relations as an OSM XML document.
func fixtureXML(nodes []fxNode, ways []fxWay, rels []fxRel) string {
	var b strings.Builder
	b.WriteString("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<osm version=\"0.6\" generator=\"test\">\n")
	for _, n := range nodes {
		lat, lon := fxPos(n.x, n.y)
		fmt.Fprintf(&b, "  <node id=\"%d\" lat=\"%.7f\" lon=\"%.7f\">\n", n.id, lat, lon)
		writeTags(&b, n.tags)
		b.WriteString("  </node>\n")
	}
	for _, w := range ways {
		fmt.Fprintf(&b, "  <way id=\"%d\">\n", w.id)
		for _, n := range w.nodes {
			fmt.Fprintf(&b, "    <nd ref=\"%d\"/>\n", n)
		}
		writeTags(&b, w.tags)
		b.WriteString("  </way>\n")
	}
	for _, r := range rels {
		fmt.Fprintf(&b, "  <relation id=\"%d\">\n", r.id)
		for _, m := range r.members {
			fmt.Fprintf(&b, "    <member type=%q ref=\"%d\" role=%q/>\n", m.typ, m.ref, m.role)
		}
		writeTags(&b, r.tags)
		b.WriteString("  </relation>\n")
	}
	b.WriteString("</osm>\n")
	return b.String()
}

func importXML(t *testing.T, doc string) (*graph.Network, *Stats) {
	t.Helper()
	net, st, err := Read(strings.NewReader(doc), FormatXML, Options{})
	if err != nil {
		t.Fatalf("import: %v\n%s", err, doc)
	}
	checkInvariants(t, net)
	return net, st
}

// nodesOf returns the graph nodes that carry an OSM id.
func nodesOf(net *graph.Network, osmID int64) []uint32 {
	var out []uint32
	for i, id := range net.OSMNode {
		if id == osmID {
			out = append(out, uint32(i))
		}
	}
	return out
}

// edgesBetween returns the edges from the node with OSM id a to the node with OSM id b.
func edgesBetween(net *graph.Network, a, b int64) []uint32 {
	var out []uint32
	for i, e := range net.Edges {
		if net.OSMNode[e.From] == a && net.OSMNode[e.To] == b {
			out = append(out, uint32(i))
		}
	}
	return out
}

// reachable reports whether to can be reached from from without using
// edges for which skip returns true.
func reachable(net *graph.Network, from, to uint32, skip func(graph.Edge) bool) bool {
	seen := make([]bool, len(net.Lat))
	seen[from] = true
	queue := []uint32{from}
	for len(queue) > 0 {
		v := queue[0]
		queue = queue[1:]
		if v == to {
			return true
		}
		for _, e := range net.Edges {
			if e.From == v && !seen[e.To] && !skip(e) {
				seen[e.To] = true
				queue = append(queue, e.To)
			}
		}
	}
	return false
}

var res = []string{"highway", "residential"}

func TestFixtureChain(t *testing.T) {
	nodes := []fxNode{{1, 0, 0, nil}, {2, 1, 0.2, nil}, {3, 2, 0, nil}, {4, 3, 0.3, nil}, {5, 4, 0, nil}}
	net, st := importXML(t, fixtureXML(nodes, []fxWay{{10, []int64{1, 2, 3, 4, 5}, res}}, nil))
	if len(net.Lat) != 2 || len(net.Edges) != 2 {
		t.Fatalf("got %d nodes, %d edges; want 2, 2", len(net.Lat), len(net.Edges))
	}
	if st.ChainNodes != 3 {
		t.Errorf("ChainNodes = %d, want 3", st.ChainNodes)
	}
	var want float64
	for i := 0; i+1 < len(nodes); i++ {
		a1, o1 := fxPos(nodes[i].x, nodes[i].y)
		a2, o2 := fxPos(nodes[i+1].x, nodes[i+1].y)
		want += graph.Haversine(a1, o1, a2, o2)
	}
	// Independent check of the haversine sum against an equirectangular
	// approximation, which is within 0.1 % at this scale.
	if approx := equirect(nodes); math.Abs(approx-want) > want*1e-3 {
		t.Fatalf("haversine sum %v vs equirectangular %v", want, approx)
	}
	for _, dir := range []struct {
		from, to int64
		shape    []int // indices into nodes, in travel order
	}{{1, 5, []int{1, 2, 3}}, {5, 1, []int{3, 2, 1}}} {
		es := edgesBetween(net, dir.from, dir.to)
		if len(es) != 1 {
			t.Fatalf("%d->%d: %d edges", dir.from, dir.to, len(es))
		}
		e := net.Edges[es[0]]
		if math.Abs(e.Distance-want) > 1e-6 {
			t.Errorf("%d->%d: distance %v, want %v", dir.from, dir.to, e.Distance, want)
		}
		if wantDur := want / (25 / 3.6); math.Abs(e.Duration-wantDur) > 1e-6 {
			t.Errorf("%d->%d: duration %v, want %v", dir.from, dir.to, e.Duration, wantDur)
		}
		if e.WayID != 10 || e.Class != graph.ClassResidential {
			t.Errorf("%d->%d: way %d class %v", dir.from, dir.to, e.WayID, e.Class)
		}
		if int(e.ShapeEnd-e.ShapeStart) != len(dir.shape) {
			t.Fatalf("%d->%d: %d shape points, want %d", dir.from, dir.to, e.ShapeEnd-e.ShapeStart, len(dir.shape))
		}
		for k, ni := range dir.shape {
			lat, lon := fxPos(nodes[ni].x, nodes[ni].y)
			s := e.ShapeStart + uint32(k)
			if math.Abs(net.ShapeLat[s]-lat) > 1e-7 || math.Abs(net.ShapeLon[s]-lon) > 1e-7 {
				t.Errorf("%d->%d: shape point %d = %v,%v, want node %d at %v,%v",
					dir.from, dir.to, k, net.ShapeLat[s], net.ShapeLon[s], nodes[ni].id, lat, lon)
			}
		}
	}
}

func equirect(nodes []fxNode) float64 {
	var sum float64
	for i := 0; i+1 < len(nodes); i++ {
		a1, o1 := fxPos(nodes[i].x, nodes[i].y)
		a2, o2 := fxPos(nodes[i+1].x, nodes[i+1].y)
		x := (o2 - o1) * math.Pi / 180 * math.Cos((a1+a2)/2*math.Pi/180)
		y := (a2 - a1) * math.Pi / 180
		sum += earthRadius * math.Hypot(x, y)
	}
	return sum
}

func TestFixtureChainNotMergedAcrossWays(t *testing.T) {
	// Ways 10 and 11 meet at node 3, which has only two neighbours, but the
	// edges come from different ways: node 3 must stay.
	nodes := []fxNode{{1, 0, 0, nil}, {2, 1, 0, nil}, {3, 2, 0, nil}, {4, 3, 0, nil}, {5, 4, 0, nil}}
	net, _ := importXML(t, fixtureXML(nodes, []fxWay{
		{10, []int64{1, 2, 3}, res},
		{11, []int64{3, 4, 5}, res},
	}, nil))
	if len(net.Lat) != 3 || len(net.Edges) != 4 || len(nodesOf(net, 3)) != 1 {
		t.Fatalf("got %d nodes %v, %d edges; want nodes 1,3,5 and 4 edges", len(net.Lat), net.OSMNode, len(net.Edges))
	}
}

func TestFixtureOneway(t *testing.T) {
	nodes := []fxNode{{1, 0, 0, nil}, {2, 1, 0, nil}, {3, 1, 1, nil}, {4, 0.5, 0.5, nil}}
	net, _ := importXML(t, fixtureXML(nodes, []fxWay{
		{10, []int64{1, 2}, []string{"highway", "residential", "oneway", "yes"}},
		{11, []int64{2, 3}, []string{"highway", "residential", "oneway", "true"}},
		{12, []int64{1, 4, 3}, []string{"highway", "residential", "oneway", "-1"}},
	}, nil))
	want := map[[2]int64]int{{1, 2}: 1, {2, 3}: 1, {3, 1}: 1}
	if len(net.Edges) != len(want) {
		t.Fatalf("got %d edges, want %d", len(net.Edges), len(want))
	}
	for pair, n := range want {
		if got := len(edgesBetween(net, pair[0], pair[1])); got != n {
			t.Errorf("%d->%d: %d edges, want %d", pair[0], pair[1], got, n)
		}
	}
	// The reversed oneway keeps its shape point (node 4) in travel order.
	e := net.Edges[edgesBetween(net, 3, 1)[0]]
	if e.ShapeEnd-e.ShapeStart != 1 || e.WayID != 12 {
		t.Errorf("3->1: %+v", e)
	}
}

func TestFixtureRoundabout(t *testing.T) {
	nodes := []fxNode{
		{1, 0, -1, nil}, {2, 1, 0, nil}, {3, 0, 1, nil}, {4, -1, 0, nil},
		{5, 0, -3, nil}, {6, 0, 3, nil},
	}
	net, _ := importXML(t, fixtureXML(nodes, []fxWay{
		{10, []int64{1, 2, 3, 4, 1}, []string{"highway", "primary", "junction", "roundabout"}},
		{11, []int64{5, 1}, res},
		{12, []int64{3, 6}, res},
	}, nil))
	// Roundabout: 1 -> (2) -> 3 -> (4) -> 1, never the other way.
	if es := edgesBetween(net, 1, 3); len(es) != 1 || net.Edges[es[0]].ShapeEnd-net.Edges[es[0]].ShapeStart != 1 {
		t.Fatalf("1->3: %v", es)
	}
	if es := edgesBetween(net, 3, 1); len(es) != 1 {
		t.Fatalf("3->1: %v", es)
	}
	s := net.Edges[edgesBetween(net, 1, 3)[0]].ShapeStart
	if lat, lon := fxPos(1, 0); net.ShapeLat[s] != lat || net.ShapeLon[s] != lon {
		t.Errorf("1->3 should pass node 2")
	}
	if len(net.Edges) != 2+4 {
		t.Errorf("got %d edges, want 6", len(net.Edges))
	}
}

func TestFixtureIsolatedRoundabout(t *testing.T) {
	// A closed way touching nothing must not contract to a self-loop.
	nodes := []fxNode{{1, 0, -1, nil}, {2, 1, 0, nil}, {3, 0, 1, nil}, {4, -1, 0, nil}}
	net, st := importXML(t, fixtureXML(nodes, []fxWay{
		{10, []int64{1, 2, 3, 4, 1}, []string{"highway", "primary", "junction", "roundabout"}},
	}, nil))
	if len(net.Lat) != 2 || len(net.Edges) != 2 || st.SelfLoops != 0 {
		t.Fatalf("got %d nodes, %d edges, %d self-loops; want 2, 2, 0", len(net.Lat), len(net.Edges), st.SelfLoops)
	}
	var sum float64
	for _, e := range net.Edges {
		sum += e.Distance
	}
	want := haversineXY(0, -1, 1, 0) + haversineXY(1, 0, 0, 1) + haversineXY(0, 1, -1, 0) + haversineXY(-1, 0, 0, -1)
	if math.Abs(sum-want) > 1e-6 {
		t.Errorf("loop length %v, want %v", sum, want)
	}
}

func haversineXY(x1, y1, x2, y2 float64) float64 {
	a1, o1 := fxPos(x1, y1)
	a2, o2 := fxPos(x2, y2)
	return graph.Haversine(a1, o1, a2, o2)
}

// barrierFixture is a square: way 10 runs 1-2-3 along the bottom with
// node 2 tagged barrierTags, way 11 closes the square 3-4-5-1.
func barrierFixture(barrierTags []string) string {
	return barrierSpec(barrierTags).xml()
}

// fxSpec is a whole fixture, renderable as XML or PBF.
type fxSpec struct {
	nodes []fxNode
	ways  []fxWay
	rels  []fxRel
}

func (s fxSpec) xml() string         { return fixtureXML(s.nodes, s.ways, s.rels) }
func (s fxSpec) pbf(zip bool) []byte { return fixturePBF(s.nodes, s.ways, s.rels, zip) }

func barrierSpec(barrierTags []string) fxSpec {
	nodes := []fxNode{{1, 0, 0, nil}, {2, 1, 0, barrierTags}, {3, 2, 0, nil}, {4, 2, 1, nil}, {5, 0, 1, nil}}
	return fxSpec{nodes, []fxWay{
		{10, []int64{1, 2, 3}, res},
		{11, []int64{3, 4, 5, 1}, res},
	}, nil}
}

func TestFixtureBarriers(t *testing.T) {
	tests := []struct {
		name   string
		tags   []string
		blocks bool
	}{
		{"bollard", []string{"barrier", "bollard"}, true},
		{"block", []string{"barrier", "block"}, true},
		{"gate", []string{"barrier", "gate"}, false},
		{"lift_gate", []string{"barrier", "lift_gate"}, false},
		{"private gate", []string{"barrier", "gate", "access", "private"}, true},
		{"bollard open to cars", []string{"barrier", "bollard", "motorcar", "yes"}, false},
		{"crossing", []string{"highway", "crossing"}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			net, st := importXML(t, barrierFixture(tc.tags))
			one, three := nodesOf(net, 1)[0], nodesOf(net, 3)[0]
			// Is there a way from 1 to 3 (and back) along way 10 alone?
			notW10 := func(e graph.Edge) bool { return e.WayID != 10 }
			through := reachable(net, one, three, notW10) || reachable(net, three, one, notW10)
			if through == tc.blocks {
				t.Errorf("path 1<->3 along way 10: %v, want %v", through, !tc.blocks)
			}
			// Whatever the barrier, both sides of way 10 stay in the network.
			var w10 int
			for _, e := range net.Edges {
				if e.WayID == 10 {
					w10++
				}
			}
			if tc.blocks {
				if w10 != 4 || st.BarrierNodes != 1 || st.BarrierCopies != 1 {
					t.Errorf("blocking: %d edges on way 10, %d barriers, %d copies; want 4, 1, 1", w10, st.BarrierNodes, st.BarrierCopies)
				}
				copies := 0
				for _, id := range net.OSMNode {
					if id == 0 {
						copies++
					}
				}
				if len(nodesOf(net, 2)) != 1 || copies != 1 {
					t.Errorf("barrier node should be split in two: %v", net.OSMNode)
				}
			} else {
				if w10 != 2 || len(nodesOf(net, 2)) != 0 {
					t.Errorf("non-blocking: %d edges on way 10, node 2 present %v; want 2 edges, node contracted", w10, nodesOf(net, 2))
				}
			}
		})
	}
}

// crossFixture is a four-way intersection at node 5: way 11 from the south
// (node 1), 12 to the east (2), 13 to the north (3), 14 to the west (4), all
// two-way and drawn towards the centre.
func crossFixture(rels []fxRel) string {
	return crossSpec(rels).xml()
}

func crossSpec(rels []fxRel) fxSpec {
	nodes := []fxNode{{1, 0, -1, nil}, {2, 1, 0, nil}, {3, 0, 1, nil}, {4, -1, 0, nil}, {5, 0, 0, nil}}
	return fxSpec{nodes, []fxWay{
		{11, []int64{1, 5}, res}, {12, []int64{2, 5}, res}, {13, []int64{5, 3}, res}, {14, []int64{5, 4}, res},
	}, rels}
}

func restriction(id, from, via, to int64, kv ...string) fxRel {
	return fxRel{id, []fxMember{{"way", from, "from"}, {"node", via, "via"}, {"way", to, "to"}},
		append([]string{"type", "restriction"}, kv...)}
}

func TestFixtureRestrictions(t *testing.T) {
	type row struct {
		from, to [2]int64 // OSM node pairs of the edges
		only     bool
	}
	tests := []struct {
		name    string
		rel     fxRel
		want    []row
		dropped string
	}{
		{"no_left_turn", restriction(1, 11, 5, 14, "restriction", "no_left_turn"),
			[]row{{[2]int64{1, 5}, [2]int64{5, 4}, false}}, ""},
		{"only_straight_on", restriction(2, 12, 5, 14, "restriction", "only_straight_on"),
			[]row{{[2]int64{2, 5}, [2]int64{5, 4}, true}}, ""},
		{"restriction:motorcar wins", restriction(3, 11, 5, 13, "restriction", "no_straight_on", "restriction:motorcar", "only_right_turn"),
			[]row{{[2]int64{1, 5}, [2]int64{5, 3}, true}}, ""},
		{"except motorcar", restriction(4, 11, 5, 14, "restriction", "no_left_turn", "except", "bicycle;motorcar"),
			nil, DropExcept},
		{"via way", fxRel{5, []fxMember{{"way", 11, "from"}, {"way", 12, "via"}, {"way", 14, "to"}},
			[]string{"type", "restriction", "restriction", "no_left_turn"}}, nil, DropViaWay},
		{"not touching via", restriction(6, 11, 1, 14, "restriction", "no_left_turn"), nil, DropNoTouch},
		{"missing way", restriction(7, 99, 5, 14, "restriction", "no_left_turn"), nil, DropNotRoad},
		{"unknown value", restriction(8, 11, 5, 14, "restriction", "no_parking"), nil, DropUnknownType},
		{"missing to", fxRel{9, []fxMember{{"way", 11, "from"}, {"node", 5, "via"}},
			[]string{"type", "restriction", "restriction", "no_left_turn"}}, nil, DropMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			net, st := importXML(t, crossFixture([]fxRel{tc.rel}))
			if len(net.Lat) != 5 {
				t.Fatalf("want 5 nodes, got %v", net.OSMNode)
			}
			var got []row
			for _, r := range net.Restrictions {
				f, to := net.Edges[r.From], net.Edges[r.To]
				got = append(got, row{[2]int64{net.OSMNode[f.From], net.OSMNode[f.To]},
					[2]int64{net.OSMNode[to.From], net.OSMNode[to.To]}, r.Only})
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("rows %v, want %v", got, tc.want)
			}
			if tc.dropped != "" && st.RestrictionsDropped[tc.dropped] != 1 {
				t.Errorf("dropped %v, want one %q", st.RestrictionsDropped, tc.dropped)
			}
			if tc.dropped == "" && (st.RestrictionsApplied != 1 || len(st.RestrictionsDropped) != 0) {
				t.Errorf("applied %d dropped %v", st.RestrictionsApplied, st.RestrictionsDropped)
			}
		})
	}
}

func TestFixtureUturnViaKept(t *testing.T) {
	// no_u_turn at node 2 in the middle of way 10: node 2 must stay a graph
	// node (not contracted), and only the two u-turn pairs are forbidden.
	nodes := []fxNode{{1, 0, 0, nil}, {2, 1, 0, nil}, {3, 2, 0, nil}}
	net, _ := importXML(t, fixtureXML(nodes, []fxWay{{10, []int64{1, 2, 3}, res}},
		[]fxRel{restriction(1, 10, 2, 10, "restriction", "no_u_turn")}))
	if len(nodesOf(net, 2)) != 1 || len(net.Edges) != 4 {
		t.Fatalf("via node contracted: nodes %v, %d edges", net.OSMNode, len(net.Edges))
	}
	if len(net.Restrictions) != 2 {
		t.Fatalf("got %d rows, want 2", len(net.Restrictions))
	}
	for _, r := range net.Restrictions {
		f, to := net.Edges[r.From], net.Edges[r.To]
		if to.To != f.From || r.Only {
			t.Errorf("row %+v is not a u-turn ban", r)
		}
	}
}

func TestFixtureIslandAndPrivate(t *testing.T) {
	nodes := []fxNode{
		{1, 0, 0, nil}, {2, 1, 0, nil}, {3, 1, 1, nil}, // main triangle
		{7, 2, 2, nil},                     // reached only by a private road
		{8, 10, 10, nil}, {9, 11, 10, nil}, // island
		{20, 5, 5, nil}, {21, 6, 5, nil}, // oneway dead end: not strongly connected
	}
	net, st := importXML(t, fixtureXML(nodes, []fxWay{
		{10, []int64{1, 2, 3, 1}, res},
		{11, []int64{3, 7}, []string{"highway", "residential", "access", "private"}},
		{12, []int64{8, 9}, res},
		{13, []int64{2, 20, 21}, []string{"highway", "residential", "oneway", "yes"}},
		{14, []int64{21, 3}, []string{"highway", "footway"}},
	}, nil))
	for _, id := range []int64{7, 8, 9, 21} {
		if len(nodesOf(net, id)) != 0 {
			t.Errorf("node %d should be gone", id)
		}
	}
	if st.WaysKept != 3 {
		t.Errorf("WaysKept = %d, want 3 (private and footway skipped)", st.WaysKept)
	}
	if st.SCCNodesRemoved != 3 || st.Components != 3 {
		t.Errorf("SCC removed %d nodes in %d components, want 3 nodes (8, 9, 21) and 3 components", st.SCCNodesRemoved, st.Components)
	}
}

// TestFixtureNames checks that edges carry their way's name (or ref), that
// each name is stored once, and that names of ways dropped with a smaller
// component leave the table.
func TestFixtureNames(t *testing.T) {
	nodes := []fxNode{
		{1, 0, 0, nil}, {2, 1, 0, nil}, {3, 2, 0, nil}, {4, 2, 1, nil}, {5, 1, 1, nil},
		{8, 10, 10, nil}, {9, 11, 10, nil}, // island
	}
	net, st := importXML(t, fixtureXML(nodes, []fxWay{
		{10, []int64{1, 2, 3}, []string{"highway", "residential", "name", "Rua Álvares Cabral"}},
		{11, []int64{3, 4}, []string{"highway", "primary", "ref", "N13"}},
		{12, []int64{4, 5}, []string{"highway", "service"}},
		{13, []int64{5, 2}, []string{"highway", "residential", "name", "Rua Álvares Cabral", "oneway", "yes"}},
		{14, []int64{5, 1}, []string{"highway", "tertiary", "name", "Rua do Almada", "ref", "M1"}},
		{15, []int64{8, 9}, []string{"highway", "residential", "name", "Ilha"}},
	}, nil))
	want := map[int64]string{10: "Rua Álvares Cabral", 11: "N13", 12: "", 13: "Rua Álvares Cabral", 14: "Rua do Almada"}
	for i, e := range net.Edges {
		w, ok := want[e.WayID]
		if !ok {
			t.Fatalf("edge %d on way %d, which should be gone", i, e.WayID)
		}
		if got := net.EdgeName(uint32(i)); got != w {
			t.Errorf("edge %d of way %d: name %q, want %q", i, e.WayID, got, w)
		}
		if (e.Name == 0) != (w == "") {
			t.Errorf("edge %d of way %d: name index %d for %q", i, e.WayID, e.Name, w)
		}
	}
	if got := strings.Join(net.Names, "|"); got != "|Rua Álvares Cabral|N13|Rua do Almada" || st.Names != 3 {
		t.Errorf("names %q (Stats.Names %d), want the empty name, then each kept way's name once in way order", net.Names, st.Names)
	}

	// Without any name the table holds the empty name alone.
	net, st = importXML(t, fixtureXML(nodes[:3], []fxWay{{10, []int64{1, 2, 3}, res}}, nil))
	if len(net.Names) != 1 || net.Names[0] != "" || st.Names != 0 {
		t.Errorf("unnamed network: names %q, Stats.Names %d", net.Names, st.Names)
	}
}

func TestFixtureMissingNodes(t *testing.T) {
	// Way 10 references node 99, which the file lacks: the way is cut there.
	nodes := []fxNode{{1, 0, 0, nil}, {2, 1, 0, nil}, {3, 2, 0, nil}, {4, 3, 0, nil}}
	net, st := importXML(t, fixtureXML(nodes, []fxWay{{10, []int64{1, 2, 99, 3, 4}, res}}, nil))
	if st.NodesMissing != 1 || len(net.Edges) != 2 {
		t.Fatalf("missing %d, %d edges", st.NodesMissing, len(net.Edges))
	}
}

func TestReadErrors(t *testing.T) {
	noRoads := fixtureXML([]fxNode{{1, 0, 0, nil}, {2, 1, 0, nil}},
		[]fxWay{{10, []int64{1, 2}, []string{"highway", "footway"}}}, nil)
	tests := []struct {
		name   string
		in     string
		format Format
		want   string
	}{
		{"empty xml", "", FormatXML, "no OSM elements"},
		{"empty pbf", "", FormatPBF, "empty input"},
		{"empty auto", "", FormatAuto, "empty input"},
		{"no roads", noRoads, FormatAuto, "no routable roads"},
		{"garbage xml", "<osm><node id=", FormatXML, "xml"},
		{"garbage pbf", "\x00\x00\x00\x05hello", FormatPBF, "invalid pbf"},
		{"bad format", noRoads, Format(9), "unknown format"},
	}
	for _, tc := range tests {
		_, _, err := Read(strings.NewReader(tc.in), tc.format, Options{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want it to contain %q", tc.name, err, tc.want)
		}
	}
	if _, _, err := ReadFile("/nonexistent/x.osm.pbf", Options{}); err == nil {
		t.Errorf("missing file: no error")
	}
}
