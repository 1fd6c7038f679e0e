package engine_test

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/paulmach/osm"
	"github.com/paulmach/osm/osmpbf"

	"github.com/lastmile/lastmile/bench"
	"github.com/lastmile/lastmile/datasets"
	"github.com/lastmile/lastmile/engine"
	"github.com/lastmile/lastmile/graph"
)

// rawOSM is what the reference checks read straight from the extract with
// the OSM library, independently of osmimport: node positions, oneway
// directions and via-node turn restrictions.
type rawOSM struct {
	coord     map[osm.NodeID][2]float64 // lat, lon of nodes of oneway ways
	wayNodes  map[int64][]osm.NodeID
	onewayDir map[int64]int // +1 forward only, -1 backward only
	// restr maps (from way, via node) to its restrictions.
	restr map[[2]int64][]rawRestriction
}

type rawRestriction struct {
	to   int64
	only bool
}

func readRawOSM(t *testing.T, path string) *rawOSM {
	t.Helper()
	raw := &rawOSM{coord: map[osm.NodeID][2]float64{}, wayNodes: map[int64][]osm.NodeID{},
		onewayDir: map[int64]int{}, restr: map[[2]int64][]rawRestriction{}}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := osmpbf.New(context.Background(), f, 2)
	sc.SkipNodes = true
	need := map[osm.NodeID]bool{}
	ways := map[int64]bool{}
	type pending struct {
		from, via, to int64
		only          bool
	}
	var restrictions []pending
	for sc.Scan() {
		switch o := sc.Object().(type) {
		case *osm.Way:
			ways[int64(o.ID)] = true
			tags := o.Tags
			dir := 0
			switch tags.Find("oneway") {
			case "yes", "1", "true":
				dir = 1
			case "-1", "reverse":
				dir = -1
			case "no", "false", "0":
				dir = 0
			default:
				if j := tags.Find("junction"); j == "roundabout" || j == "circular" || tags.Find("highway") == "motorway" || tags.Find("highway") == "motorway_link" {
					dir = 1
				}
			}
			if dir != 0 && tags.Find("highway") != "" {
				raw.onewayDir[int64(o.ID)] = dir
				ids := make([]osm.NodeID, len(o.Nodes))
				for i, n := range o.Nodes {
					ids[i] = n.ID
					need[n.ID] = true
				}
				raw.wayNodes[int64(o.ID)] = ids
			}
		case *osm.Relation:
			tags := o.Tags
			if tags.Find("type") != "restriction" {
				continue
			}
			kind := tags.Find("restriction:motorcar")
			if kind == "" {
				kind = tags.Find("restriction")
			}
			if ex := tags.Find("except"); strings.Contains(ex, "motorcar") || strings.Contains(ex, "motor_vehicle") {
				continue
			}
			var from, to, via []int64
			viaWay := false
			for _, m := range o.Members {
				switch {
				case m.Role == "from" && m.Type == osm.TypeWay:
					from = append(from, m.Ref)
				case m.Role == "to" && m.Type == osm.TypeWay:
					to = append(to, m.Ref)
				case m.Role == "via" && m.Type == osm.TypeNode:
					via = append(via, m.Ref)
				case m.Role == "via":
					viaWay = true
				}
			}
			if viaWay || len(from) != 1 || len(to) != 1 || len(via) != 1 {
				continue // via-way restrictions are not supported (README)
			}
			only := strings.HasPrefix(kind, "only_")
			if !only && !strings.HasPrefix(kind, "no_") {
				continue
			}
			restrictions = append(restrictions, pending{from[0], via[0], to[0], only})
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	// A restriction whose from or to way lies outside the extract cannot be
	// applied (an only_* towards a missing way would make its from way a
	// dead end); osmimport drops those, and so does the check.
	for _, r := range restrictions {
		if ways[r.from] && ways[r.to] {
			k := [2]int64{r.from, r.via}
			raw.restr[k] = append(raw.restr[k], rawRestriction{to: r.to, only: r.only})
		}
	}
	sc.Close()
	if _, err := f.Seek(0, 0); err != nil {
		t.Fatal(err)
	}
	sc = osmpbf.New(context.Background(), f, 2)
	sc.SkipWays, sc.SkipRelations = true, true
	for sc.Scan() {
		if n, ok := sc.Object().(*osm.Node); ok && need[n.ID] {
			raw.coord[n.ID] = [2]float64{n.Lat, n.Lon}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	sc.Close()
	return raw
}

// firstStep returns the position of edge e's From node and of its next
// polyline point.
func firstStep(n *graph.Network, e uint32) (a, b [2]float64) {
	ed := &n.Edges[e]
	a = [2]float64{n.Lat[ed.From], n.Lon[ed.From]}
	if ed.ShapeEnd > ed.ShapeStart {
		b = [2]float64{n.ShapeLat[ed.ShapeStart], n.ShapeLon[ed.ShapeStart]}
	} else {
		b = [2]float64{n.Lat[ed.To], n.Lon[ed.To]}
	}
	return a, b
}

// checkOneway reports whether edge e runs along its OSM way in an allowed
// direction, judged from the way's node list and the raw node positions.
func (raw *rawOSM) checkOneway(n *graph.Network, e uint32) bool {
	way := n.Edges[e].WayID
	dir, ok := raw.onewayDir[way]
	if !ok {
		return true
	}
	a, b := firstStep(n, e)
	ids := raw.wayNodes[way]
	for k := range ids {
		if raw.coord[ids[k]] != a {
			continue
		}
		if dir > 0 && k+1 < len(ids) && raw.coord[ids[k+1]] == b {
			return true
		}
		if dir < 0 && k > 0 && raw.coord[ids[k-1]] == b {
			return true
		}
	}
	return false
}

// checkTurn reports whether the turn from edge a to edge b is allowed by the
// raw restrictions at their shared node.
func (raw *rawOSM) checkTurn(n *graph.Network, a, b uint32) bool {
	v := n.Edges[a].To
	rs := raw.restr[[2]int64{n.Edges[a].WayID, n.OSMNode[v]}]
	if len(rs) == 0 {
		return true
	}
	from, to := n.Edges[a].WayID, n.Edges[b].WayID
	uTurn := n.Edges[b].To == n.Edges[a].From && from == to
	hasOnly, onlyOK := false, false
	for _, r := range rs {
		switch {
		case r.only:
			hasOnly = true
			if r.to == to && (r.to != from || uTurn) {
				onlyOK = true
			}
		case r.to == to && (from != to || uTurn):
			return false
		}
	}
	return !hasOnly || onlyOK
}

// integerCost recomputes a route's duration (ms) and distance (cm) from the
// road edges' seconds and metres with the rounding graph documents: each
// edge rounded to whole ms and cm (at least 1), partial first and last
// edges rounded per part.
func integerCost(n *graph.Network, r graph.Route) (durMs, distCm int64) {
	w := func(e uint32) (int64, int64) {
		ed := n.Edges[e]
		return max(int64(math.Round(ed.Duration*1000)), 1), max(int64(math.Round(ed.Distance*100)), 1)
	}
	for _, e := range r.Edges {
		d, l := w(e)
		durMs += d
		distCm += l
	}
	d0, l0 := w(r.Edges[0])
	durMs -= int64(math.Round(r.SrcFraction * float64(d0)))
	distCm -= int64(math.Round(r.SrcFraction * float64(l0)))
	d1, l1 := w(r.Edges[len(r.Edges)-1])
	durMs += int64(math.Round(r.DstFraction*float64(d1))) - d1
	distCm += int64(math.Round(r.DstFraction*float64(l1))) - l1
	return durMs, distCm
}

var prepared sync.Map // path -> *graph.Graph

func prepare(t *testing.T, path string) *graph.Graph {
	t.Helper()
	if g, ok := prepared.Load(path); ok {
		return g.(*graph.Graph)
	}
	g, _, err := engine.Prepare(path, engine.PrepareOptions{Workers: 2})
	if err != nil {
		t.Fatalf("prepare %s: %v", path, err)
	}
	prepared.Store(path, g)
	return g
}

// TestExtractsAgainstReference checks, on every shared OSM extract, that
// CH queries equal plain Dijkstra on 10,000 random pairs and that every
// returned path is a valid edge sequence whose weights sum to the reported
// figures and that breaks no oneway and no via-node turn restriction as
// read from the raw OSM data.
func TestExtractsAgainstReference(t *testing.T) {
	exts := datasets.OSMExtracts()
	if len(exts) == 0 {
		t.Skipf("no OSM extracts in %s: set LASTMILE_DATA", datasets.Dir())
	}
	pairs := 10000
	if testing.Short() {
		pairs = 500
	}
	for _, path := range exts {
		t.Run(filepath.Base(path), func(t *testing.T) {
			g := prepare(t, path)
			raw := readRawOSM(t, path)
			net := g.Road
			rng := rand.New(rand.NewPCG(42, uint64(len(path))))
			eps := bench.RandomEndpoints(g, rng, 2*pairs)
			var mu sync.Mutex
			var fails []string
			fail := func(format string, args ...any) {
				mu.Lock()
				defer mu.Unlock()
				if len(fails) < 10 {
					fails = append(fails, fmt.Sprintf(format, args...))
				}
			}
			var wg sync.WaitGroup
			var routes, restricted, onewayEdges int64
			for w := range 2 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					q := g.NewQuery()
					var nr, nrestr, none int64
					for i := w; i < pairs; i += 2 {
						s, d := eps[2*i], eps[2*i+1]
						ch, err1 := q.Route(s, d)
						ref, err2 := q.Dijkstra(s, d)
						if (err1 == nil) != (err2 == nil) {
							fail("pair %d: CH error %v, Dijkstra error %v", i, err1, err2)
							continue
						}
						if err1 != nil {
							continue
						}
						nr++
						if ch.Duration != ref.Duration || ch.Distance != ref.Distance {
							fail("pair %d: CH %.3f s %.2f m, Dijkstra %.3f s %.2f m", i, ch.Duration, ch.Distance, ref.Duration, ref.Distance)
						}
						// Cost searches below the transit table
						if d, l, err := q.Cost(s, d); err != nil || d != ref.Duration || l != ref.Distance {
							fail("pair %d: Cost %.3f s %.2f m (%v), Dijkstra %.3f s %.2f m", i, d, l, err, ref.Duration, ref.Distance)
						}
						if len(ch.Edges) == 0 {
							fail("pair %d: empty path", i)
							continue
						}
						for k, e := range ch.Edges {
							if !raw.checkOneway(net, e) {
								fail("pair %d: edge %d (way %d) against its oneway", i, e, net.Edges[e].WayID)
							}
							if _, ok := raw.onewayDir[net.Edges[e].WayID]; ok {
								none++
							}
							if k == 0 {
								continue
							}
							a := ch.Edges[k-1]
							if net.Edges[a].To != net.Edges[e].From {
								fail("pair %d: edges %d and %d do not connect", i, a, e)
							}
							if len(raw.restr[[2]int64{net.Edges[a].WayID, net.OSMNode[net.Edges[a].To]}]) > 0 {
								nrestr++
							}
							if !raw.checkTurn(net, a, e) {
								fail("pair %d: turn from way %d to way %d at node %d is restricted", i, net.Edges[a].WayID, net.Edges[e].WayID, net.OSMNode[net.Edges[a].To])
							}
						}
						if ch.Edges[0] != s.Points[ch.SrcPoint].Edge || ch.Edges[len(ch.Edges)-1] != d.Points[ch.DstPoint].Edge {
							fail("pair %d: path does not start and end on the endpoints' edges", i)
						}
						dur, dist := integerCost(net, ch)
						if float64(dur)/1000 != ch.Duration || float64(dist)/100 != ch.Distance {
							fail("pair %d: edges sum to %d ms %d cm, route reports %.3f s %.2f m", i, dur, dist, ch.Duration, ch.Distance)
						}
					}
					mu.Lock()
					routes += nr
					restricted += nrestr
					onewayEdges += none
					mu.Unlock()
				}()
			}
			wg.Wait()
			for _, f := range fails {
				t.Error(f)
			}
			t.Logf("%d pairs, %d routed; %d turns at restricted via nodes and %d oneway edges checked", pairs, routes, restricted, onewayEdges)
			if routes < int64(pairs)*9/10 {
				t.Errorf("only %d of %d random pairs routed: the graph should be strongly connected", routes, pairs)
			}

			// Matrix entries equal point-to-point queries.
			k := 40
			pts := eps[:k]
			m, err := g.Matrix(pts, pts, 2)
			if err != nil {
				t.Fatal(err)
			}
			q := g.NewQuery()
			for i := range k {
				for j := range k {
					r, err := q.Route(pts[i], pts[j])
					du, di := m.At(i, j)
					if err != nil {
						if !math.IsInf(du, 1) {
							t.Fatalf("matrix (%d,%d) = %v but the route fails: %v", i, j, du, err)
						}
						continue
					}
					if du != r.Duration || di != r.Distance {
						t.Fatalf("matrix (%d,%d) = %.3f s %.2f m, route %.3f s %.2f m", i, j, du, di, r.Duration, r.Distance)
					}
				}
			}
		})
	}
}
