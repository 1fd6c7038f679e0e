package engine

import (
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseLonLat(t *testing.T) {
	cases := []struct {
		in   string
		want LonLat
		err  string
	}{
		{"7.4,43.7", LonLat{7.4, 43.7}, ""},
		{" -8.61 , 41.15 ", LonLat{-8.61, 41.15}, ""},
		{"180,-90", LonLat{180, -90}, ""},
		{"-180,90", LonLat{-180, 90}, ""},
		{"1e1,2e-1", LonLat{10, 0.2}, ""},
		{"7.4", LonLat{}, "want lon,lat"},
		{"", LonLat{}, "want lon,lat"},
		{"a,1", LonLat{}, "two numbers"},
		{"1,2,3", LonLat{}, "two numbers"},
		{"180.0001,0", LonLat{}, "longitude"},
		{"0,90.5", LonLat{}, "latitude"},
		{"NaN,0", LonLat{}, "longitude"},
		{"0,-Inf", LonLat{}, "latitude"},
	}
	for _, c := range cases {
		got, err := ParseLonLat(c.in)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%q: err %v, want %q", c.in, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("%q: got %v, %v; want %v", c.in, got, err, c.want)
		}
	}
}

func FuzzParseLonLat(f *testing.F) {
	for _, s := range []string{"7.4,43.7", "-180,90", ",", "1,", "0x1p-2,1", "1_0,2", "+1,-1", "Inf,0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParseLonLat(s)
		if err != nil {
			return
		}
		if p.Check() != nil {
			t.Fatalf("%q accepted as %v", s, p)
		}
	})
}

// TestRouterRouteAgainstQuery checks Router.Route's legs, totals and
// geometry against graph queries on the snapped endpoints.
func TestRouterRouteAgainstQuery(t *testing.T) {
	r := monaco(t)
	q := r.G.NewQuery()
	pts := roadPoints(r, 90, 11)
	for i := 0; i+3 <= len(pts); i += 3 {
		way := pts[i : i+3]
		eps, wps, err := r.Snap(way)
		if err != nil {
			t.Fatal(err)
		}
		full, err := r.Route(way, RouteOptions{Overview: "full", Geometries: "polyline6"})
		if err != nil {
			t.Fatal(err)
		}
		rt := full.Routes[0]
		var dur, dist float64
		for k := range 2 {
			leg, err := q.Route(eps[k], eps[k+1])
			if err != nil {
				t.Fatal(err)
			}
			dur += leg.Duration
			dist += leg.Distance
			if got := rt.Legs[k].Duration; got != round(leg.Duration, 1) {
				t.Errorf("leg %d: duration %v, query %v", k, got, leg.Duration)
			}
			if got := rt.Legs[k].Distance; got != round(leg.Distance, 1) {
				t.Errorf("leg %d: distance %v, query %v", k, got, leg.Distance)
			}
		}
		if rt.Duration != round(dur, 1) || rt.Distance != round(dist, 1) || rt.Weight != rt.Duration {
			t.Errorf("totals %v s %v m, query %v s %v m", rt.Duration, rt.Distance, dur, dist)
		}
		// The full geometry runs from the first snapped point to the last.
		line, ok := DecodePolyline(rt.Geometry.(string), 6)
		if !ok || len(line) < 2 {
			t.Fatalf("geometry %q", rt.Geometry)
		}
		near := func(a, b [2]float64) bool { return math.Abs(a[0]-b[0]) < 2e-6 && math.Abs(a[1]-b[1]) < 2e-6 }
		if !near(line[0], wps[0].Location) || !near(line[len(line)-1], wps[2].Location) {
			t.Errorf("geometry %v .. %v, waypoints %v .. %v", line[0], line[len(line)-1], wps[0].Location, wps[2].Location)
		}
		// The simplified overview keeps a subsequence with the same ends.
		simp, err := r.Route(way, RouteOptions{Geometries: "polyline6"})
		if err != nil {
			t.Fatal(err)
		}
		sl, _ := DecodePolyline(simp.Routes[0].Geometry.(string), 6)
		if len(sl) > len(line) || !near(sl[0], line[0]) || !near(sl[len(sl)-1], line[len(line)-1]) {
			t.Errorf("simplified %d points, full %d", len(sl), len(line))
		}
		none, err := r.Route(way, RouteOptions{Overview: "false"})
		if err != nil || none.Routes[0].Geometry != nil {
			t.Errorf("overview=false: geometry %v, %v", none.Routes[0].Geometry, err)
		}
	}
}

func TestRouterErrors(t *testing.T) {
	r := monaco(t)
	pts := roadPoints(r, 2, 12)
	sea := LonLat{7.5, 43.68}
	cases := []struct {
		name string
		pts  []LonLat
		opt  RouteOptions
		code string
	}{
		{"one point", pts[:1], RouteOptions{}, "InvalidQuery"},
		{"bad geometries", pts, RouteOptions{Geometries: "wkt"}, "InvalidValue"},
		{"bad overview", pts, RouteOptions{Overview: "yes"}, "InvalidValue"},
		{"out of range", []LonLat{pts[0], {0, 91}}, RouteOptions{}, "InvalidValue"},
		{"in the sea", []LonLat{sea, pts[0]}, RouteOptions{}, "NoSegment"},
	}
	for _, c := range cases {
		_, err := r.Route(c.pts, c.opt)
		var e *Error
		if !errors.As(err, &e) || e.Code != c.code {
			t.Errorf("%s: %v, want code %s", c.name, err, c.code)
		}
	}
}

func TestRouterTableAgainstQuery(t *testing.T) {
	r := monaco(t)
	q := r.G.NewQuery()
	pts := roadPoints(r, 9, 13)
	eps, _, err := r.Snap(pts)
	if err != nil {
		t.Fatal(err)
	}
	src, dst := []int{0, 2, 4, 8}, []int{1, 3, 5, 7, 8}
	tab, err := r.Table(pts, src, dst, 2)
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range src {
		for j, d := range dst {
			dur, dist, err := q.Cost(eps[s], eps[d])
			if err != nil {
				t.Fatal(err)
			}
			if got := tab.Durations[i][j]; got == nil || *got != round(dur, 1) {
				t.Errorf("duration %d->%d: table %v, query %v", s, d, got, dur)
			}
			if got := tab.Distances[i][j]; got == nil || *got != round(dist, 1) {
				t.Errorf("distance %d->%d: table %v, query %v", s, d, got, dist)
			}
		}
	}
	if _, err := r.Table(pts, []int{9}, nil, 2); err == nil {
		t.Error("source index 9 of 9 accepted")
	}
	if _, err := r.Table(nil, nil, nil, 2); err == nil {
		t.Error("empty table accepted")
	}
}

// TestSimplify checks the Douglas-Peucker property: ends kept, kept points
// a subsequence, and every dropped point within tol of the segment of kept
// points around it.
func TestSimplify(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	const m = 6371008.8 * math.Pi / 180
	for range 300 {
		n := rng.IntN(40)
		line := make([][2]float64, n)
		lon, lat := 7.4, 43.7
		for i := range line {
			lon += (rng.Float64() - 0.5) * 2e-4
			lat += (rng.Float64() - 0.3) * 1e-4
			line[i] = [2]float64{lon, lat}
		}
		tol := rng.Float64() * 10
		out := Simplify(line, tol)
		if n < 3 {
			if len(out) != n {
				t.Fatalf("%d points became %d", n, len(out))
			}
			continue
		}
		if out[0] != line[0] || out[len(out)-1] != line[n-1] {
			t.Fatal("ends not kept")
		}
		kx, ky := m*math.Cos(line[0][1]*math.Pi/180), m
		k := 0
		for i, p := range line {
			if k < len(out) && out[k] == p {
				k++
				continue
			}
			a, b := out[k-1], out[k]
			ax, ay, bx, by := a[0]*kx, a[1]*ky, b[0]*kx, b[1]*ky
			px, py := p[0]*kx-ax, p[1]*ky-ay
			dx, dy := bx-ax, by-ay
			tt := 0.0
			if l2 := dx*dx + dy*dy; l2 > 0 {
				tt = math.Max(0, math.Min(1, (px*dx+py*dy)/l2))
			}
			if d := math.Hypot(px-tt*dx, py-tt*dy); d > tol+1e-9 {
				t.Fatalf("point %d dropped %.3f m from the simplified line (tol %.3f)", i, d, tol)
			}
		}
		if k != len(out) {
			t.Fatal("simplified points are not a subsequence")
		}
	}
}

// BenchmarkRouterParts splits one route's cost into snapping, the CH
// query and the overview geometry, on Porto when LASTMILE_DATA has it
// (else the committed Monaco extract).
func BenchmarkRouterParts(b *testing.B) {
	r := monaco(b)
	data := os.Getenv("LASTMILE_DATA")
	if data == "" {
		data = filepath.Join("..", "..", "shared", "datasets")
	}
	if p := filepath.Join(data, "osm", "porto.osm.pbf"); fileExists(p) {
		g, _, err := Prepare(p, PrepareOptions{Workers: 2})
		if err != nil {
			b.Fatal(err)
		}
		r = NewRouter(g, 1000)
		b.Logf("graph: %s", p)
	}
	pts := roadPoints(r, 512, 9)
	eps, _, err := r.Snap(pts)
	if err != nil {
		b.Fatal(err)
	}
	q := r.G.NewQuery()
	b.Run("snap-1", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			if _, _, err := r.Snap(pts[i%len(pts) : i%len(pts)+1]); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("ch-query", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			k := 2 * (i % (len(eps) / 2))
			if _, err := q.Route(eps[k], eps[k+1]); err != nil {
				b.Fatal(err)
			}
		}
	})
	for _, ov := range []string{"false", "simplified", "full"} {
		b.Run("route-overview-"+ov, func(b *testing.B) {
			for i := 0; b.Loop(); i++ {
				k := 2 * (i % (len(pts) / 2))
				if _, err := r.Route(pts[k:k+2], RouteOptions{Overview: ov}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
