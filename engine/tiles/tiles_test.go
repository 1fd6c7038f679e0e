package tiles

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/paulmach/orb"
	"github.com/paulmach/orb/encoding/mvt"
	"github.com/paulmach/orb/geojson"
	"github.com/paulmach/orb/maptile"

	"github.com/lastmile/lastmile/datasets"
	"github.com/lastmile/lastmile/graph"
	"github.com/lastmile/lastmile/osmimport"
)

// loadNetwork imports an OSM extract: the committed copy under the
// repository's datasets/osm when there is one, else the file in
// $LASTMILE_DATA/osm (skipping the test when it is missing).
func loadNetwork(tb testing.TB, name string) *graph.Network {
	tb.Helper()
	p := filepath.Join("..", "..", "datasets", "osm", name)
	if _, err := os.Stat(p); err != nil {
		p = datasets.Require(tb, "osm", name)
	}
	n, _, err := osmimport.ReadFile(p, osmimport.Options{})
	if err != nil {
		tb.Fatalf("import %s: %v", p, err)
	}
	return n
}

// monaco is imported once for all tests (about 50 ms); tests only read it.
var monaco = sync.OnceValue(func() *graph.Network {
	p := filepath.Join("..", "..", "datasets", "osm", "monaco.osm.pbf")
	if _, err := os.Stat(p); err != nil {
		p = datasets.Path("osm", "monaco.osm.pbf")
	}
	n, _, err := osmimport.ReadFile(p, osmimport.Options{})
	if err != nil {
		return nil
	}
	return n
})

func monacoNet(t *testing.T) *graph.Network {
	t.Helper()
	n := monaco()
	if n == nil {
		datasets.Require(t, "osm", "monaco.osm.pbf") // skips with the usual message
		t.Fatal("monaco.osm.pbf is present but could not be imported")
	}
	return n
}

func newTiler(t testing.TB, n *graph.Network, opt Options) *Tiler {
	t.Helper()
	tl, err := New(n, opt)
	if err != nil {
		t.Fatal(err)
	}
	return tl
}

// tileAt returns the tile of zoom z holding lon/lat, by the textbook
// formulas of the XYZ scheme (independent of mercator()).
func tileAt(lon, lat float64, z int) (x, y int) {
	fx, fy := worldXY(lon, lat)
	n := math.Ldexp(1, z)
	return int(fx * n), int(fy * n)
}

// worldXY is Web Mercator in [0,1]², y south: x = (lon+180)/360,
// y = (1 − ln(tan φ + sec φ)/π)/2.
func worldXY(lon, lat float64) (float64, float64) {
	phi := lat * math.Pi / 180
	return (lon + 180) / 360, (1 - math.Log(math.Tan(phi)+1/math.Cos(phi))/math.Pi) / 2
}

// decode gunzips and decodes a tile, checking the gzip framing itself too.
func decode(t *testing.T, b []byte) mvt.Layers {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("not gzip: %v", err)
	}
	if _, err := io.Copy(io.Discard, zr); err != nil {
		t.Fatalf("bad gzip stream: %v", err)
	}
	ls, err := mvt.UnmarshalGzipped(b)
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	return ls
}

// lines returns the line strings of a decoded feature geometry.
func lines(t *testing.T, g orb.Geometry) []orb.LineString {
	t.Helper()
	switch g := g.(type) {
	case orb.LineString:
		return []orb.LineString{g}
	case orb.MultiLineString:
		return g
	}
	t.Fatalf("geometry %T, want a line string", g)
	return nil
}

// twins pairs the edges of n independently of undirected(): by a map from
// (from, to, way, shape) to edge. canon[e] is the edge whose feature draws
// e (e itself or its twin), oneway[e] tells whether e has no twin.
func twins(n *graph.Network) (canon []uint32, oneway []bool) {
	key := func(from, to uint32, way int64, lat, lon []float64) string {
		return fmt.Sprint(from, to, way, lat, lon)
	}
	m := len(n.Edges)
	canon = make([]uint32, m)
	oneway = make([]bool, m)
	byKey := map[string][]uint32{}
	for i, e := range n.Edges {
		k := key(e.From, e.To, e.WayID, n.ShapeLat[e.ShapeStart:e.ShapeEnd], n.ShapeLon[e.ShapeStart:e.ShapeEnd])
		byKey[k] = append(byKey[k], uint32(i))
	}
	paired := make([]bool, m)
	for i, e := range n.Edges {
		canon[i], oneway[i] = uint32(i), true
		if paired[i] {
			continue
		}
		lat := slices.Clone(n.ShapeLat[e.ShapeStart:e.ShapeEnd])
		lon := slices.Clone(n.ShapeLon[e.ShapeStart:e.ShapeEnd])
		slices.Reverse(lat)
		slices.Reverse(lon)
		for _, j := range byKey[key(e.To, e.From, e.WayID, lat, lon)] {
			if int(j) != i && !paired[j] {
				paired[i], paired[j] = true, true
				break
			}
		}
	}
	// Second pass: find the partner again and pick the representative.
	for i, e := range n.Edges {
		if !paired[i] {
			continue
		}
		oneway[i] = false
		lat := slices.Clone(n.ShapeLat[e.ShapeStart:e.ShapeEnd])
		lon := slices.Clone(n.ShapeLon[e.ShapeStart:e.ShapeEnd])
		slices.Reverse(lat)
		slices.Reverse(lon)
		for _, j := range byKey[key(e.To, e.From, e.WayID, lat, lon)] {
			if int(j) != i && paired[j] {
				if e.From > e.To || (e.From == e.To && j < uint32(i)) {
					canon[i] = j
				}
				break
			}
		}
	}
	return canon, oneway
}

// edgePixels returns the points of edge e in tile units of tile z/x/y at
// the given extent (floating point, not rounded).
func edgePixels(n *graph.Network, e uint32, z, x, y int, extent float64) []orb.Point {
	ed := n.Edges[e]
	scale := math.Ldexp(extent, z)
	pt := func(lon, lat float64) orb.Point {
		wx, wy := worldXY(lon, lat)
		return orb.Point{wx*scale - float64(x)*extent, wy*scale - float64(y)*extent}
	}
	out := []orb.Point{pt(n.Lon[ed.From], n.Lat[ed.From])}
	for i := ed.ShapeStart; i < ed.ShapeEnd; i++ {
		out = append(out, pt(n.ShapeLon[i], n.ShapeLat[i]))
	}
	return append(out, pt(n.Lon[ed.To], n.Lat[ed.To]))
}

// clipSegment clips segment a-b to box by Liang-Barsky and reports whether
// anything is left.
func clipSegment(box orb.Bound, a, b orb.Point) (orb.Point, orb.Point, bool) {
	t0, t1 := 0.0, 1.0
	d := orb.Point{b[0] - a[0], b[1] - a[1]}
	for _, c := range [4][2]float64{{-d[0], a[0] - box.Min[0]}, {d[0], box.Max[0] - a[0]}, {-d[1], a[1] - box.Min[1]}, {d[1], box.Max[1] - a[1]}} {
		p, q := c[0], c[1]
		if p == 0 {
			if q < 0 {
				return a, b, false
			}
			continue
		}
		r := q / p
		if p < 0 {
			t0 = max(t0, r)
		} else {
			t1 = min(t1, r)
		}
	}
	if t0 > t1 {
		return a, b, false
	}
	return orb.Point{a[0] + t0*d[0], a[1] + t0*d[1]}, orb.Point{a[0] + t1*d[0], a[1] + t1*d[1]}, true
}

// bruteForce scans every edge of n against tile z/x/y. must holds the
// features the tile has to contain: an allowed class and a segment whose
// part inside the buffered box (shrunk by one unit against projection
// differences) is longer than 2·tol+4 units, so that neither
// simplification nor rounding can reduce it to a point. may holds every
// feature with an allowed class and a segment meeting the buffered box grown
// by one unit. Both are keyed by the feature id, the canonical edge.
func bruteForce(n *graph.Network, canon []uint32, z, x, y int, opt Options, tol float64) (must, may map[uint32]bool) {
	must, may = map[uint32]bool{}, map[uint32]bool{}
	ext, buf := float64(opt.Extent), float64(opt.Buffer)
	inner := orb.Bound{Min: orb.Point{-buf + 1, -buf + 1}, Max: orb.Point{ext + buf - 1, ext + buf - 1}}
	outer := orb.Bound{Min: orb.Point{-buf - 1, -buf - 1}, Max: orb.Point{ext + buf + 1, ext + buf + 1}}
	for e, ed := range n.Edges {
		if ed.Class > MaxClassAt(z) {
			continue
		}
		pts := edgePixels(n, uint32(e), z, x, y, ext)
		for i := 1; i < len(pts); i++ {
			if _, _, ok := clipSegment(outer, pts[i-1], pts[i]); ok {
				may[canon[e]] = true
			}
			if a, b, ok := clipSegment(inner, pts[i-1], pts[i]); ok && math.Hypot(b[0]-a[0], b[1]-a[1]) > 2*tol+4 {
				must[canon[e]] = true
			}
		}
	}
	return must, may
}

// checkTile decodes a tile and checks every invariant the package promises;
// it returns the feature ids.
func checkTile(t *testing.T, tl *Tiler, n *graph.Network, canon []uint32, oneway []bool, z, x, y int) map[uint32]bool {
	ids, _ := checkTileNames(t, tl, n, canon, oneway, z, x, y)
	return ids
}

// checkTileNames is checkTile that also returns the number of features
// with a name.
func checkTileNames(t *testing.T, tl *Tiler, n *graph.Network, canon []uint32, oneway []bool, z, x, y int) (ids map[uint32]bool, named int) {
	t.Helper()
	b, err := tl.Tile(z, x, y)
	if err != nil {
		t.Fatalf("%d/%d/%d: %v", z, x, y, err)
	}
	ls := decode(t, b)
	ids = map[uint32]bool{}
	if len(ls) == 0 {
		return ids, 0
	}
	if len(ls) != 1 || ls[0].Name != LayerName {
		t.Fatalf("%d/%d/%d: layers %d, first %q; want one %q", z, x, y, len(ls), ls[0].Name, LayerName)
	}
	l := ls[0]
	if l.Version != 2 || int(l.Extent) != tl.opt.Extent {
		t.Errorf("%d/%d/%d: version %d extent %d, want 2 and %d", z, x, y, l.Version, l.Extent, tl.opt.Extent)
	}
	if len(l.Features) == 0 {
		t.Errorf("%d/%d/%d: layer without features, want no layer", z, x, y)
	}
	lo, hi := -float64(tl.opt.Buffer), float64(tl.opt.Extent+tl.opt.Buffer)
	prevRank := -1
	for _, f := range l.Features {
		fid, ok := f.ID.(float64)
		if !ok || fid < 0 || int(fid) >= len(n.Edges) {
			t.Fatalf("%d/%d/%d: feature id %v is not an edge index", z, x, y, f.ID)
		}
		id := uint32(fid)
		if ids[id] {
			t.Errorf("%d/%d/%d: feature %d twice", z, x, y, id)
		}
		ids[id] = true
		ed := n.Edges[id]
		if canon[id] != id {
			t.Errorf("%d/%d/%d: feature %d drawn from edge %d->%d, want its twin %d", z, x, y, id, ed.From, ed.To, canon[id])
		}
		if cls, _ := f.Properties["class"].(string); cls != ed.Class.String() {
			t.Errorf("%d/%d/%d: feature %d class %q, want %q", z, x, y, id, cls, ed.Class)
		}
		if ed.Class > MaxClassAt(z) {
			t.Errorf("%d/%d/%d: feature %d of class %v drawn at zoom %d", z, x, y, id, ed.Class, z)
		}
		if rank := int(graph.NumClasses) - int(ed.Class); rank < prevRank {
			t.Errorf("%d/%d/%d: feature %d (%v) after a less important class", z, x, y, id, ed.Class)
		} else {
			prevRank = rank
		}
		ow, has := f.Properties["oneway"]
		switch {
		case oneway[id] && ow != 1.0:
			t.Errorf("%d/%d/%d: one-way feature %d has oneway=%v", z, x, y, id, ow)
		case !oneway[id] && has:
			t.Errorf("%d/%d/%d: two-way feature %d has oneway=%v", z, x, y, id, ow)
		}
		// The name, looked up by the feature id in the network's table.
		wantName := ""
		if ed.Name != 0 && z >= NameMinZoom(ed.Class) {
			wantName = n.Names[ed.Name]
		}
		name, hasName := f.Properties["name"]
		switch {
		case wantName != "" && name != wantName:
			t.Errorf("%d/%d/%d: feature %d (%v) name %q, want %q", z, x, y, id, ed.Class, name, wantName)
		case wantName == "" && hasName:
			t.Errorf("%d/%d/%d: feature %d (%v, name %d) has name %q at zoom %d", z, x, y, id, ed.Class, ed.Name, name, z)
		}
		if len(f.Properties) != 1+b2i(has)+b2i(hasName) {
			t.Errorf("%d/%d/%d: feature %d properties %v", z, x, y, id, f.Properties)
		}
		if hasName {
			named++
		}
		for _, ls := range lines(t, f.Geometry) {
			if len(ls) < 2 {
				t.Errorf("%d/%d/%d: feature %d has a line of %d points", z, x, y, id, len(ls))
			}
			for i, p := range ls {
				if p[0] < lo || p[0] > hi || p[1] < lo || p[1] > hi {
					t.Errorf("%d/%d/%d: feature %d point %v outside [%v, %v]", z, x, y, id, p, lo, hi)
				}
				if i > 0 && p == ls[i-1] {
					t.Errorf("%d/%d/%d: feature %d repeats point %v", z, x, y, id, p)
				}
			}
		}
	}
	return ids, named
}

func TestOptions(t *testing.T) {
	n := &graph.Network{Lat: []float64{43.73, 43.74}, Lon: []float64{7.42, 7.43}, Edges: []graph.Edge{{From: 0, To: 1}}}
	tests := []struct {
		name    string
		opt     Options
		wantErr bool
		want    Options
	}{
		{"defaults", Options{}, false, Options{MinZoom: 8, MaxZoom: 16, CacheBytes: 64 << 20, Extent: 4096, Buffer: 64, Tolerance: 8}},
		{"explicit", Options{MinZoom: 3, MaxZoom: 20, CacheBytes: -1, Extent: 512, Buffer: -1, Tolerance: -1}, false,
			Options{MinZoom: 3, MaxZoom: 20, CacheBytes: -1, Extent: 512, Buffer: 0, Tolerance: 0}},
		{"min above max", Options{MinZoom: 17}, true, Options{}},
		{"max too large", Options{MaxZoom: MaxZoomLimit + 1}, true, Options{}},
		{"negative zoom", Options{MinZoom: -1}, true, Options{}},
		{"extent too large", Options{Extent: 1 << 17}, true, Options{}},
		{"negative extent", Options{Extent: -4096}, true, Options{}},
		{"buffer above extent", Options{Extent: 256, Buffer: 300}, true, Options{}},
		{"tolerance NaN", Options{Tolerance: math.NaN()}, true, Options{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tl, err := New(n, tc.opt)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("New(%+v) succeeded, want an error", tc.opt)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tl.opt != tc.want {
				t.Errorf("options %+v, want %+v", tl.opt, tc.want)
			}
			if lo, hi := tl.Zooms(); lo != tc.want.MinZoom || hi != tc.want.MaxZoom {
				t.Errorf("Zooms() = %d, %d", lo, hi)
			}
			if (tl.cache == nil) != (tc.want.CacheBytes < 0) {
				t.Errorf("cache present = %v with CacheBytes %d", tl.cache != nil, tc.want.CacheBytes)
			}
		})
	}
}

func TestNewInvalidNetwork(t *testing.T) {
	base := func() *graph.Network {
		return &graph.Network{
			Lat: []float64{43.73, 43.74}, Lon: []float64{7.42, 7.43},
			ShapeLat: []float64{43.735}, ShapeLon: []float64{7.425},
			Edges: []graph.Edge{{From: 0, To: 1, ShapeStart: 0, ShapeEnd: 1}},
		}
	}
	tests := []struct {
		name   string
		mutate func(n *graph.Network) *graph.Network
	}{
		{"nil", func(*graph.Network) *graph.Network { return nil }},
		{"no edges", func(n *graph.Network) *graph.Network { n.Edges = nil; return n }},
		{"node out of range", func(n *graph.Network) *graph.Network { n.Edges[0].To = 2; return n }},
		{"shape out of range", func(n *graph.Network) *graph.Network { n.Edges[0].ShapeEnd = 2; return n }},
		{"shape reversed", func(n *graph.Network) *graph.Network { n.Edges[0].ShapeStart = 1; n.Edges[0].ShapeEnd = 0; return n }},
		{"invalid class", func(n *graph.Network) *graph.Network { n.Edges[0].Class = graph.NumClasses; return n }},
		{"NaN latitude", func(n *graph.Network) *graph.Network { n.Lat[1] = math.NaN(); return n }},
		{"shape longitude out of range", func(n *graph.Network) *graph.Network { n.ShapeLon[0] = 181; return n }},
		{"lat/lon lengths", func(n *graph.Network) *graph.Network { n.Lon = n.Lon[:1]; return n }},
		{"name without table", func(n *graph.Network) *graph.Network { n.Edges[0].Name = 1; return n }},
		{"name out of range", func(n *graph.Network) *graph.Network { n.Names = []string{"", "A"}; n.Edges[0].Name = 2; return n }},
		{"name 0 not empty", func(n *graph.Network) *graph.Network { n.Names = []string{"A"}; return n }},
	}
	if _, err := New(base(), Options{}); err != nil {
		t.Fatalf("valid network: %v", err)
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := New(tc.mutate(base()), Options{}); err == nil {
				t.Error("New succeeded, want an error")
			}
		})
	}
}

func TestTileOutOfRange(t *testing.T) {
	tl := newTiler(t, monacoNet(t), Options{})
	tests := []struct{ z, x, y int }{
		{7, 0, 0}, {17, 0, 0}, {-1, 0, 0},
		{12, -1, 0}, {12, 0, -1}, {12, 1 << 12, 0}, {12, 0, 1 << 12},
		{16, 1 << 16, 1 << 16}, {8, math.MaxInt, 0},
	}
	for _, tc := range tests {
		b, err := tl.Tile(tc.z, tc.x, tc.y)
		if !errors.Is(err, ErrOutOfRange) || b != nil {
			t.Errorf("Tile(%d, %d, %d) = %d bytes, %v; want ErrOutOfRange", tc.z, tc.x, tc.y, len(b), err)
		}
	}
	// The corners of the grid are in range.
	for _, z := range []int{8, 16} {
		for _, xy := range [][2]int{{0, 0}, {1<<z - 1, 1<<z - 1}} {
			if _, err := tl.Tile(z, xy[0], xy[1]); err != nil {
				t.Errorf("Tile(%d, %d, %d): %v", z, xy[0], xy[1], err)
			}
		}
	}
}

func TestEmptyTile(t *testing.T) {
	n := monacoNet(t)
	tl := newTiler(t, n, Options{})
	for _, z := range []int{8, 12, 16} {
		x, y := tileAt(-150, 0, z) // the Pacific
		b, err := tl.Tile(z, x, y)
		if err != nil {
			t.Fatal(err)
		}
		if ls := decode(t, b); len(ls) != 0 {
			t.Errorf("%d/%d/%d: %d layers far from the network, want none", z, x, y, len(ls))
		}
		if len(b) > 64 {
			t.Errorf("empty tile is %d bytes", len(b))
		}
	}
	// A tile next to the network, inside its bounds' tile range but on the
	// sea, is also empty: Monaco has no road south of 43.72°.
	z := 16
	x, y := tileAt(7.42, 43.70, z)
	canon, oneway := twins(n)
	if ids := checkTile(t, tl, n, canon, oneway, z, x, y); len(ids) != 0 {
		t.Errorf("sea tile has %d features", len(ids))
	}
}

// TestTileMatchesBruteForce compares the features of tiles with a scan of
// every edge: at zoom 16 all classes on tiles in the middle and at the edge
// of Monaco, at lower zooms with the class filter.
func TestTileMatchesBruteForce(t *testing.T) {
	n := monacoNet(t)
	tl := newTiler(t, n, Options{CacheBytes: -1})
	canon, oneway := twins(n)
	b := tl.Bounds()
	cLon, cLat := 7.4246, 43.7384 // Monte Carlo
	type tileCase struct {
		name    string
		z, x, y int
	}
	var cases []tileCase
	x, y := tileAt(cLon, cLat, 16)
	for dx := -1; dx <= 1; dx++ {
		for dy := -1; dy <= 1; dy++ {
			cases = append(cases, tileCase{fmt.Sprintf("z16 centre%+d%+d", dx, dy), 16, x + dx, y + dy})
		}
	}
	for _, corner := range [][2]float64{{b[0], b[1]}, {b[2], b[3]}, {b[0], b[3]}, {b[2], b[1]}} {
		x, y := tileAt(corner[0], corner[1], 16)
		cases = append(cases, tileCase{fmt.Sprintf("z16 corner %.4f,%.4f", corner[0], corner[1]), 16, x, y})
	}
	for _, z := range []int{10, 12, 13, 14, 15} {
		x, y := tileAt(cLon, cLat, z)
		cases = append(cases, tileCase{fmt.Sprintf("z%d centre", z), z, x, y})
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := checkTile(t, tl, n, canon, oneway, tc.z, tc.x, tc.y)
			tol := tl.opt.Tolerance
			if tc.z == tl.opt.MaxZoom {
				tol /= 4
			}
			must, may := bruteForce(n, canon, tc.z, tc.x, tc.y, tl.opt, tol)
			for id := range must {
				if !got[id] {
					e := n.Edges[id]
					t.Errorf("edge %d (%v, way %d) crosses the tile but is missing", id, e.Class, e.WayID)
				}
			}
			for id := range got {
				if !may[id] {
					t.Errorf("feature %d does not reach the tile", id)
				}
			}
			if tc.z >= 14 && len(must) == 0 && !strings.HasPrefix(tc.name, "z16 corner") {
				t.Errorf("no road must be drawn: the test tile misses Monaco")
			}
			t.Logf("%d/%d/%d: %d features, %d required, %d allowed", tc.z, tc.x, tc.y, len(got), len(must), len(may))
		})
	}
}

// TestDedupe draws every zoom-16 tile over Monaco: each undirected road
// piece is drawn (under one id only), and twins never both.
func TestDedupe(t *testing.T) {
	n := monacoNet(t)
	tl := newTiler(t, n, Options{CacheBytes: -1})
	canon, oneway := twins(n)
	pieces := map[uint32]bool{}
	pairs, oneways := 0, 0
	for e := range n.Edges {
		pieces[canon[e]] = true
		if oneway[e] {
			oneways++
		} else if canon[e] == uint32(e) {
			pairs++
		}
	}
	if 2*pairs+oneways != len(n.Edges) || len(pieces) != pairs+oneways {
		t.Fatalf("reference pairing: %d pairs, %d one-way, %d edges, %d pieces", pairs, oneways, len(n.Edges), len(pieces))
	}
	if tl.Pieces() != len(pieces) {
		t.Errorf("Pieces() = %d, want %d (%d two-way pairs + %d one-way edges of %d)", tl.Pieces(), len(pieces), pairs, oneways, len(n.Edges))
	}
	if pairs == 0 || oneways == 0 {
		t.Fatalf("Monaco should have both two-way and one-way roads: %d, %d", pairs, oneways)
	}

	const z = 16
	b := tl.Bounds()
	x0, y0 := tileAt(b[0], b[3], z)
	x1, y1 := tileAt(b[2], b[1], z)
	seen := map[uint32]bool{}
	named := 0
	for x := x0; x <= x1; x++ {
		for y := y0; y <= y1; y++ {
			ids, k := checkTileNames(t, tl, n, canon, oneway, z, x, y)
			for id := range ids {
				seen[id] = true
			}
			named += k
		}
	}
	// Most of Monaco's roads have a name (984 of 1454 edges): if the
	// features' names went missing, checkTile would not notice on its own.
	if named < len(seen)/2 {
		t.Errorf("%d named features over all zoom-16 tiles for %d pieces drawn", named, len(seen))
	}
	// Pieces whose points are all within a few units may vanish in
	// rounding; every other one must be drawn.
	tol := tl.opt.Tolerance / 4
	tiny := 0
	for id := range pieces {
		if seen[id] {
			continue
		}
		pts := edgePixels(n, id, z, 0, 0, float64(tl.opt.Extent))
		diam := 0.0
		for _, p := range pts {
			for _, q := range pts {
				diam = max(diam, math.Hypot(p[0]-q[0], p[1]-q[1]))
			}
		}
		if diam > 2*tol+4 {
			t.Errorf("piece %d (%v, %.1f units long) is in no zoom-16 tile", id, n.Edges[id].Class, diam)
		} else {
			tiny++
		}
	}
	if len(seen)+tiny != len(pieces) {
		t.Errorf("%d pieces drawn + %d too small = %d, want %d undirected pieces", len(seen), tiny, len(seen)+tiny, len(pieces))
	}
	t.Logf("%d directed edges -> %d pieces (%d two-way, %d one-way); %d drawn at z16 over %d tiles, %d too small",
		len(n.Edges), len(pieces), pairs, oneways, len(seen), (x1-x0+1)*(y1-y0+1), tiny)
}

// TestRoundTrip places a road at known coordinates and finds its vertices at
// the expected pixels, agreeing with orb's own projection and inverting to
// the original positions within one coordinate unit.
func TestRoundTrip(t *testing.T) {
	for _, z := range []int{12, 14, 16} {
		// The tile of Monte Carlo at zoom z, and a primary road inside it
		// with a sharp corner that simplification keeps (vertices at known
		// fractions of the tile), plus a one-way service road.
		x, y := tileAt(7.4246, 43.7384, z)
		at := func(fx, fy float64) [2]float64 {
			s := math.Ldexp(1, -z)
			wx, wy := (float64(x)+fx)*s, (float64(y)+fy)*s
			return [2]float64{wx*360 - 180, math.Atan(math.Sinh(math.Pi*(1-2*wy))) * 180 / math.Pi}
		}
		lonlat := [][2]float64{at(0.2, 0.7), at(0.31, 0.12), at(0.83, 0.6)}
		svc := [][2]float64{at(0.5, 0.9), at(0.9, 0.95)}
		n := &graph.Network{
			Lon:      []float64{lonlat[0][0], lonlat[2][0], svc[0][0], svc[1][0]},
			Lat:      []float64{lonlat[0][1], lonlat[2][1], svc[0][1], svc[1][1]},
			ShapeLon: []float64{lonlat[1][0]},
			ShapeLat: []float64{lonlat[1][1]},
			Edges: []graph.Edge{
				{From: 0, To: 1, WayID: 1, Class: graph.ClassPrimary, Name: 2, ShapeStart: 0, ShapeEnd: 1},
				{From: 1, To: 0, WayID: 1, Class: graph.ClassPrimary, Name: 2, ShapeStart: 0, ShapeEnd: 1}, // its twin (a one-point shape is its own reverse)
				{From: 2, To: 3, WayID: 2, Class: graph.ClassService, Name: 1},
			},
			Names: []string{"", "Travessa do Serviço", "Avenida da Boavista"},
		}
		tl := newTiler(t, n, Options{CacheBytes: -1})
		if tl.Pieces() != 2 {
			t.Fatalf("Pieces() = %d, want 2", tl.Pieces())
		}
		b, err := tl.Tile(z, x, y)
		if err != nil {
			t.Fatal(err)
		}
		ls := decode(t, b)
		if len(ls) != 1 {
			t.Fatalf("z%d: %d layers", z, len(ls))
		}
		var road orb.LineString
		service := false
		for _, f := range ls[0].Features {
			switch f.Properties["class"] {
			case "primary":
				road = lines(t, f.Geometry)[0]
				// Names of primary roads from zoom 13 on.
				if want := 1 + b2i(z >= 13); f.ID != 0.0 || len(f.Properties) != want {
					t.Errorf("z%d: primary road id %v properties %v, want edge 0 without oneway, %d properties", z, f.ID, f.Properties, want)
				}
				if name, ok := f.Properties["name"]; ok && name != "Avenida da Boavista" {
					t.Errorf("z%d: primary road named %q", z, name)
				}
			case "service":
				service = true
				if f.ID != 2.0 || f.Properties["oneway"] != 1.0 {
					t.Errorf("z%d: service road id %v properties %v, want edge 2, oneway 1", z, f.ID, f.Properties)
				}
				// Names of service roads from zoom 16 on.
				if name, ok := f.Properties["name"]; ok != (z >= 16) || ok && name != "Travessa do Serviço" {
					t.Errorf("z%d: service road name %q (present %v)", z, name, ok)
				}
			}
		}
		if service != (z >= 14) {
			t.Errorf("z%d: service road drawn = %v", z, service)
		}
		if len(road) != 3 {
			t.Fatalf("z%d: primary road %v, want 3 points", z, road)
		}
		// The known pixels: fractions times the extent, rounded down.
		ext := float64(tl.opt.Extent)
		for i, f := range [][2]float64{{0.2, 0.7}, {0.31, 0.12}, {0.83, 0.6}} {
			if math.Abs(road[i][0]-f[0]*ext) > 1 || math.Abs(road[i][1]-f[1]*ext) > 1 {
				t.Errorf("z%d: vertex %d at %v, want (%.2f, %.2f) within 1 unit", z, i, road[i], f[0]*ext, f[1]*ext)
			}
		}
		// orb's projection gives the very same integers.
		fc := geojson.NewFeatureCollection()
		fc.Append(geojson.NewFeature(orb.LineString{lonlat[0], lonlat[1], lonlat[2]}))
		ref := mvt.NewLayer("ref", fc)
		ref.ProjectToTile(maptile.New(uint32(x), uint32(y), maptile.Zoom(z)))
		if want := ref.Features[0].Geometry.(orb.LineString); !slices.Equal(road, want) {
			t.Errorf("z%d: road %v, orb's ProjectToTile gives %v", z, road, want)
		}
		// And back to WGS84 within a unit (Web Mercator is conformal: a
		// unit spans cos(lat) times fewer degrees of latitude than of longitude).
		ls.ProjectToWGS84(maptile.New(uint32(x), uint32(y), maptile.Zoom(z)))
		unit := 360 / math.Ldexp(ext, z)
		for _, f := range ls[0].Features {
			if f.Properties["class"] != "primary" {
				continue
			}
			back := lines(t, f.Geometry)[0]
			for i, p := range lonlat {
				if math.Abs(back[i][0]-p[0]) > unit || math.Abs(back[i][1]-p[1]) > unit*math.Cos(p[1]*math.Pi/180) {
					t.Errorf("z%d: vertex %d back at %v, want %v within %.2g°", z, i, back[i], p, unit)
				}
			}
		}
	}
}

// TestClipAndSimplify checks a long straight road across many tiles: each
// tile holds it clipped to the buffer, reduced to its two ends.
func TestClipAndSimplify(t *testing.T) {
	const k = 50
	n := &graph.Network{Lat: []float64{43.70, 43.70}, Lon: []float64{7.30, 7.50}}
	for i := 1; i < k; i++ { // collinear intermediate points
		n.ShapeLat = append(n.ShapeLat, 43.70)
		n.ShapeLon = append(n.ShapeLon, 7.30+0.2*float64(i)/k)
	}
	n.Edges = []graph.Edge{{From: 0, To: 1, Class: graph.ClassMotorway, ShapeStart: 0, ShapeEnd: k - 1}}
	tl := newTiler(t, n, Options{CacheBytes: -1})
	z := 15
	x, y := tileAt(7.40, 43.70, z)
	b, err := tl.Tile(z, x, y)
	if err != nil {
		t.Fatal(err)
	}
	ls := decode(t, b)
	if len(ls) != 1 || len(ls[0].Features) != 1 {
		t.Fatalf("want one feature, got %v", ls)
	}
	f := ls[0].Features[0]
	line := lines(t, f.Geometry)
	if len(line) != 1 || len(line[0]) != 2 {
		t.Fatalf("geometry %v, want one segment", f.Geometry)
	}
	lo, hi := -float64(tl.opt.Buffer), float64(tl.opt.Extent+tl.opt.Buffer)
	if a, b := line[0][0], line[0][1]; a[0] != lo || b[0] != hi || a[1] != b[1] {
		t.Errorf("segment %v, want from x=%v to x=%v at a constant y", line[0], lo, hi)
	}
	if f.Properties["oneway"] != 1.0 {
		t.Errorf("properties %v, want oneway 1", f.Properties)
	}
}

func TestBoundsCenter(t *testing.T) {
	n := monacoNet(t)
	tl := newTiler(t, n, Options{})
	b, c := tl.Bounds(), tl.Center()
	for i := range n.Lat {
		if n.Lon[i] < b[0] || n.Lat[i] < b[1] || n.Lon[i] > b[2] || n.Lat[i] > b[3] {
			t.Fatalf("node %d (%v, %v) outside bounds %v", i, n.Lon[i], n.Lat[i], b)
		}
	}
	if c[0] < b[0] || c[0] > b[2] || c[1] < b[1] || c[1] > b[3] {
		t.Errorf("centre %v outside bounds %v", c, b)
	}
	// Monaco is about 4 km wide: zoom 13 or 14 shows it on 1024 pixels.
	if c[2] < 12 || c[2] > 14 {
		t.Errorf("centre zoom %v, want 12..14", c[2])
	}
	if b[0] < 7.3 || b[2] > 7.6 || b[1] < 43.6 || b[3] > 43.8 {
		t.Errorf("bounds %v are not Monaco's", b)
	}
}

// TestConcurrent asks many goroutines for the same tiles in different
// orders: all get the bytes of an uncached render, and each tile is
// rendered once.
func TestConcurrent(t *testing.T) {
	n := monacoNet(t)
	ref := newTiler(t, n, Options{CacheBytes: -1})
	type key struct{ z, x, y int }
	var full, empty []key
	want := map[key][]byte{}
	for z := 13; z <= 16; z++ {
		x, y := tileAt(7.4246, 43.7384, z)
		for dx := -1; dx <= 1; dx++ {
			for _, k := range []key{{z, x + dx, y}, {z, x + dx, y + 3}} {
				b, err := ref.Tile(k.z, k.x, k.y)
				if err != nil {
					t.Fatal(err)
				}
				want[k] = b
				if sameSlice(b, ref.empty) {
					empty = append(empty, k)
				} else {
					full = append(full, k)
				}
			}
		}
	}
	if len(full) < 8 || len(empty) == 0 {
		t.Fatalf("%d tiles with roads, %d without: the test tiles miss Monaco", len(full), len(empty))
	}
	const workers = 16
	run := func(tl *Tiler, keys []key, rounds int) {
		t.Helper()
		var wg sync.WaitGroup
		errs := make(chan error, workers)
		for w := range workers {
			wg.Go(func() {
				for r := range rounds {
					for i := range keys {
						k := keys[(i*7+w+r)%len(keys)]
						b, err := tl.Tile(k.z, k.x, k.y)
						if err != nil {
							errs <- err
							return
						}
						if !bytes.Equal(b, want[k]) {
							errs <- fmt.Errorf("tile %v differs from the uncached render", k)
							return
						}
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
	}

	// Tiles with roads: each is rendered once and then cached.
	tl := newTiler(t, n, Options{})
	run(tl, full, 20)
	st := tl.CacheStats()
	if st.Misses != int64(len(full)) || st.Hits != int64(workers*20*len(full)-len(full)) {
		t.Errorf("%d renders for %d tiles: concurrent misses were not merged (%+v)", st.Misses, len(full), st)
	}
	if st.Entries != len(full) || st.Bytes > st.Budget {
		t.Errorf("cache stats %+v, want %d entries", st, len(full))
	}
	// Mixed with empty tiles, which are not cached, and without cache.
	run(newTiler(t, n, Options{}), append(full, empty...), 5)
	run(newTiler(t, n, Options{CacheBytes: -1}), append(full, empty...), 1)
	// A cache too small for all tiles keeps within its budget.
	total := int64(0)
	for _, k := range full {
		total += int64(len(want[k]))
	}
	small := newTiler(t, n, Options{CacheBytes: total / 2})
	run(small, full, 1)
	if st := small.CacheStats(); st.Bytes > total/2 || st.Entries >= len(full) {
		t.Errorf("cache of %d bytes for %d: stats %+v", total/2, total, st)
	}
}

func TestCacheLRU(t *testing.T) {
	c := newCache(3 * (100 + entryOverhead))
	renders := 0
	get := func(k uint64) {
		t.Helper()
		b, err := c.get(k, func() ([]byte, bool, error) {
			renders++
			return make([]byte, 100), true, nil
		})
		if err != nil || len(b) != 100 {
			t.Fatalf("get(%d) = %d bytes, %v", k, len(b), err)
		}
	}
	get(1)
	get(2)
	get(3)
	get(1) // 1 is now the most recent: 2 goes first
	get(4)
	if renders != 4 {
		t.Errorf("%d renders, want 4", renders)
	}
	for _, k := range []uint64{1, 3, 4} {
		if _, ok := c.entries[k]; !ok {
			t.Errorf("key %d evicted", k)
		}
	}
	if _, ok := c.entries[2]; ok {
		t.Error("least recently used key 2 kept")
	}
	st := c.stats()
	if st.Entries != 3 || st.Bytes != 3*(100+entryOverhead) || st.Hits != 1 || st.Misses != 4 {
		t.Errorf("stats %+v", st)
	}

	// Errors and oversized tiles are not kept.
	_, err := c.get(9, func() ([]byte, bool, error) { return nil, false, errors.New("boom") })
	if err == nil || c.entries[9] != nil {
		t.Errorf("error: %v, entry %v", err, c.entries[9])
	}
	if _, err := c.get(10, func() ([]byte, bool, error) { return make([]byte, 1000), true, nil }); err != nil || c.entries[10] != nil {
		t.Errorf("oversized tile kept or error %v", err)
	}

	// A panicking render releases the key: the next call renders again.
	func() {
		defer func() { _ = recover() }()
		_, _ = c.get(11, func() ([]byte, bool, error) { panic("render bug") })
	}()
	if len(c.inflight) != 0 {
		t.Errorf("in-flight calls left after a panic: %d", len(c.inflight))
	}
	b, err := c.get(11, func() ([]byte, bool, error) { return []byte("ok"), true, nil })
	if err != nil || string(b) != "ok" {
		t.Errorf("after panic: %q, %v", b, err)
	}
}

// TestCacheWaiters checks that callers waiting on a render share its
// result and its error.
func TestCacheWaiters(t *testing.T) {
	c := newCache(1 << 20)
	release := make(chan struct{})
	started := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		_, _ = c.get(1, func() ([]byte, bool, error) {
			close(started)
			<-release
			return nil, false, errors.New("failed once")
		})
	})
	<-started
	const waiters = 8
	results := make(chan error, waiters)
	for range waiters {
		wg.Go(func() {
			_, err := c.get(1, func() ([]byte, bool, error) { return []byte("second"), true, nil })
			results <- err
		})
	}
	// Let every waiter reach the in-flight call (each counts a hit) before
	// the render ends.
	for deadline := time.Now().Add(10 * time.Second); ; {
		c.mu.Lock()
		h := c.hits
		c.mu.Unlock()
		if h == waiters {
			break
		}
		if time.Now().After(deadline) {
			close(release)
			t.Fatalf("%d of %d callers wait on the render in progress", h, waiters)
		}
		runtime.Gosched()
	}
	close(release)
	wg.Wait()
	close(results)
	for err := range results {
		if err == nil || err.Error() != "failed once" {
			t.Errorf("waiter got %v, want the render's error", err)
		}
	}
}

// TestTileNames checks the zooms that carry names on Monaco's centre (none
// below 13, main roads from 13, more at 15 and 16) and that a render does
// not leak the names of one tile into the next one (the property maps are
// reused from render to render).
func TestTileNames(t *testing.T) {
	n := monacoNet(t)
	tl := newTiler(t, n, Options{CacheBytes: -1})
	canon, oneway := twins(n)
	perZoom := map[int]int{}
	for z := 11; z <= 16; z++ {
		x, y := tileAt(7.4246, 43.7384, z)
		for dx := -1; dx <= 1; dx++ {
			_, k := checkTileNames(t, tl, n, canon, oneway, z, x+dx, y)
			perZoom[z] += k
		}
	}
	t.Logf("named features in 3 tiles around Monte Carlo by zoom: %v", perZoom)
	if perZoom[11] != 0 || perZoom[12] != 0 {
		t.Errorf("names below zoom 13: %v", perZoom)
	}
	if perZoom[13] == 0 || perZoom[14] == 0 || perZoom[16] <= perZoom[13]/8 {
		t.Errorf("too few names from zoom 13 on: %v", perZoom)
	}

	x, y := tileAt(7.4246, 43.7384, 16)
	first, err := tl.Tile(16, x, y)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []tileKey{{16, x + 1, y}, {15, x / 2, y / 2}, {14, x / 4, y / 4}} {
		if _, err := tl.Tile(k.z, k.x, k.y); err != nil {
			t.Fatal(err)
		}
	}
	again, err := tl.Tile(16, x, y)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(first, again) {
		t.Error("the same tile rendered again after others differs")
	}
}
