package eta

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/lastmile/lastmile/datasets"
	"github.com/lastmile/lastmile/graph"
	"github.com/lastmile/lastmile/osmimport"
)

// mmDataDir returns the shared data folder: $LASTMILE_DATA, else the
// datasets folder beside the repository.
func mmDataDir() string {
	if d := os.Getenv("LASTMILE_DATA"); d != "" {
		return d
	}
	return filepath.Join("..", "..", "shared", "datasets")
}

var (
	mmGraphsMu sync.Mutex
	mmGraphs   = map[string]*graph.Graph{}
)

// mmLoadGraph imports and builds the graph of an OSM extract once per test
// binary, skipping the test when the file is missing.
func mmLoadGraph(tb testing.TB, path string) *graph.Graph {
	tb.Helper()
	mmGraphsMu.Lock()
	defer mmGraphsMu.Unlock()
	if g, ok := mmGraphs[path]; ok {
		return g
	}
	if _, err := os.Stat(path); err != nil {
		tb.Skipf("OSM extract %s not available (set LASTMILE_DATA): %v", path, err)
	}
	net, _, err := osmimport.ReadFile(path, osmimport.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	g, err := graph.Build(net, graph.BuildOptions{})
	if err != nil {
		tb.Fatal(err)
	}
	mmGraphs[path] = g
	return g
}

func mmMonaco(tb testing.TB) *graph.Graph {
	return mmLoadGraph(tb, filepath.Join("..", "datasets", "osm", "monaco.osm.pbf"))
}

func mmPorto(tb testing.TB) *graph.Graph {
	return mmLoadGraph(tb, filepath.Join(mmDataDir(), "osm", "porto.osm.pbf"))
}

func mmNewMatcher(tb testing.TB, g *graph.Graph, opt MatchOptions) *Matcher {
	tb.Helper()
	m, err := NewMatcher(g, opt)
	if err != nil {
		tb.Fatal(err)
	}
	return m
}

// mmTrip is a simulated drive: the pings and the edges truly driven
// between the first and the last ping.
type mmTrip struct {
	pings []Ping
	truth []uint32
	route graph.Route
}

var mmT0 = time.Date(2026, 1, 5, 8, 0, 0, 0, time.UTC)

// mmSimulate drives a random shortest route of at least minLen metres at
// free-flow speed (each edge at its Distance/Duration) and records a ping
// every interval seconds along the edge shapes, with Gaussian noise of
// sigma metres on each axis.
func mmSimulate(tb testing.TB, m *Matcher, q *graph.Query, rng *rand.Rand, interval, sigma, minLen float64) mmTrip {
	tb.Helper()
	n := m.net
	pick := func() uint32 {
		for {
			e := uint32(rng.IntN(len(n.Edges)))
			if m.g.Routable(e) {
				return e
			}
		}
	}
	for try := 0; try < 1000; try++ {
		src := graph.Endpoint{Points: []graph.EdgePoint{{Edge: pick(), Fraction: rng.Float64()}}}
		dst := graph.Endpoint{Points: []graph.EdgePoint{{Edge: pick(), Fraction: rng.Float64()}}}
		r, err := q.Route(src, dst)
		if err != nil || r.Distance < minLen {
			continue
		}
		var trip mmTrip
		trip.route = r
		// Time spent on each edge of the route.
		t := 0.0
		next := 0.0
		for i, e := range r.Edges {
			ed := &n.Edges[e]
			a, b := 0.0, 1.0
			if i == 0 {
				a = r.SrcFraction
			}
			if i == len(r.Edges)-1 {
				b = r.DstFraction
			}
			dur := (b - a) * ed.Duration
			if dur < 0 {
				dur = 0
			}
			for next <= t+dur {
				f := a
				if dur > 0 {
					f = a + (b-a)*(next-t)/dur
				}
				lat, lon := mmPointAt(m, e, f)
				kx := mmEarthRadius * mmDegToRad * math.Cos(lat*mmDegToRad)
				lat += rng.NormFloat64() * sigma / (mmEarthRadius * mmDegToRad)
				lon += rng.NormFloat64() * sigma / kx
				trip.pings = append(trip.pings, Ping{Time: mmT0.Add(time.Duration(next * float64(time.Second))),
					Lat: lat, Lon: lon, Speed: math.NaN(), Heading: math.NaN()})
				next += interval
			}
			t += dur
		}
		// The truth is the edges driven between the first and the last
		// ping: edges after the last ping are not observable, and an edge
		// left or entered right at the first or last ping is
		// indistinguishable from its neighbour at the shared node.
		trip.truth = mmCutTruth(m, trip, interval)
		if len(trip.pings) >= 3 {
			return trip
		}
	}
	tb.Fatal("no route found for the simulation")
	return mmTrip{}
}

// mmCutTruth keeps the route edges driven between the first and the last
// ping, less an edge left within half a second after the first ping or
// entered within half a second before the last.
func mmCutTruth(m *Matcher, trip mmTrip, interval float64) []uint32 {
	r := trip.route
	last := float64(len(trip.pings)-1) * interval
	var out []uint32
	t := 0.0
	for i, e := range r.Edges {
		ed := &m.net.Edges[e]
		a, b := 0.0, 1.0
		if i == 0 {
			a = r.SrcFraction
		}
		if i == len(r.Edges)-1 {
			b = r.DstFraction
		}
		t1 := t + max(0, (b-a)*ed.Duration)
		if t1 > 0.5 && t < last-0.5 {
			out = append(out, e)
		}
		t = t1
	}
	return out
}

// mmPointAt is the point at fraction f of edge e's polyline length.
func mmPointAt(m *Matcher, e uint32, f float64) (lat, lon float64) {
	ed := &m.net.Edges[e]
	k := int(ed.ShapeEnd-ed.ShapeStart) + 2
	target := f * m.edgeLen[e]
	acc := 0.0
	plat, plon := m.point(e, 0)
	for i := 1; i < k; i++ {
		qlat, qlon := m.point(e, i)
		l := mmPlanarDist(plat, plon, qlat, qlon)
		if acc+l >= target || i == k-1 {
			t := 0.0
			if l > 0 {
				t = min(1, max(0, (target-acc)/l))
			}
			return plat + t*(qlat-plat), plon + t*(qlon-plon)
		}
		acc += l
		plat, plon = qlat, qlon
	}
	return plat, plon
}

// mmClock measures the wall and CPU time spent in timed calls.
type mmClock struct {
	wall, cpu time.Duration
	cpuOK     bool
}

func (c *mmClock) time(f func()) {
	c0, ok0 := mmCPUTime()
	t0 := time.Now()
	f()
	c.wall += time.Since(t0)
	c1, ok1 := mmCPUTime()
	c.cpu += c1 - c0
	c.cpuOK = ok0 && ok1
}

// rate formats n items over the measured times.
func (c *mmClock) rate(n int) string {
	s := fmt.Sprintf("%.0f pings/s wall", float64(n)/c.wall.Seconds())
	if c.cpuOK && c.cpu > 0 {
		s += fmt.Sprintf(", %.0f pings per CPU second", float64(n)/c.cpu.Seconds())
	}
	return s
}

// mmScore counts the true edges found in the matched path and the matched
// edges that are true (edge sets per trip).
type mmScore struct {
	truth, truthHit, matched, matchedHit, pings, breaks int
}

func (s *mmScore) add(truth, matched []uint32, pings, breaks int) {
	ts := map[uint32]bool{}
	for _, e := range truth {
		ts[e] = true
	}
	ms := map[uint32]bool{}
	for _, e := range matched {
		ms[e] = true
	}
	for e := range ts {
		s.truth++
		if ms[e] {
			s.truthHit++
		}
	}
	for e := range ms {
		s.matched++
		if ts[e] {
			s.matchedHit++
		}
	}
	s.pings += pings
	s.breaks += breaks
}

func (s mmScore) recall() float64    { return float64(s.truthHit) / float64(max(1, s.truth)) }
func (s mmScore) precision() float64 { return float64(s.matchedHit) / float64(max(1, s.matched)) }

// mmEvaluate matches trips simulated on g and returns the score and the
// matching throughput (pings per second on this goroutine).
func mmEvaluate(tb testing.TB, g *graph.Graph, opt MatchOptions, trips int, interval, sigma float64, seed uint64) (mmScore, string) {
	return mmEvaluateM(tb, mmNewMatcher(tb, g, opt), trips, interval, sigma, seed)
}

func mmEvaluateM(tb testing.TB, m *Matcher, trips int, interval, sigma float64, seed uint64) (mmScore, string) {
	q := m.g.NewQuery()
	rng := rand.New(rand.NewPCG(seed, 7))
	all := make([]mmTrip, trips)
	for i := range all {
		all[i] = mmSimulate(tb, m, q, rng, interval, sigma, 1500)
	}
	var sc mmScore
	var clock mmClock
	for _, tr := range all {
		var res MatchResult
		var err error
		clock.time(func() { res, err = m.Match(tr.pings) })
		if err != nil {
			tb.Fatal(err)
		}
		mmCheckResult(tb, m, tr.pings, res)
		sc.add(tr.truth, res.Edges, len(tr.pings), res.Breaks)
	}
	return sc, clock.rate(sc.pings)
}

// mmCheckResult checks the invariants of a result: one point per ping,
// rejection counts, joined edges within pieces, traversals in path order
// with times that never go backwards.
func mmCheckResult(tb testing.TB, m *Matcher, pings []Ping, res MatchResult) {
	tb.Helper()
	if len(res.Points) != len(pings) {
		tb.Fatalf("%d points for %d pings", len(res.Points), len(pings))
	}
	rejected := 0
	for _, c := range res.Rejected {
		rejected += c
	}
	notOK := 0
	for i, p := range res.Points {
		if !p.OK {
			notOK++
			if res.Rejected[p.Reason] == 0 {
				tb.Fatalf("point %d rejected for %q, not counted", i, p.Reason)
			}
			continue
		}
		if int(p.Edge) >= len(m.net.Edges) || !m.g.Routable(p.Edge) || !(p.Fraction >= 0 && p.Fraction <= 1) {
			tb.Fatalf("point %d: bad match %+v", i, p)
		}
		if d := graph.Haversine(p.Lat, p.Lon, pings[i].Lat, pings[i].Lon); d > m.opt.Radius+1 {
			tb.Fatalf("point %d matched %.1f m away, radius %v", i, d, m.opt.Radius)
		}
	}
	if notOK != rejected {
		tb.Fatalf("%d points not OK, %d counted as rejected", notOK, rejected)
	}
	if notOK == len(pings) {
		if len(res.Edges) != 0 || len(res.Traversals) != 0 {
			tb.Fatalf("no ping matched but a path of %d edges", len(res.Edges))
		}
		return
	}
	if len(res.Pieces) != res.Breaks+1 || res.Pieces[0] != 0 {
		tb.Fatalf("pieces %v for %d breaks", res.Pieces, res.Breaks)
	}
	piece := 1
	for i := 1; i < len(res.Edges); i++ {
		if piece < len(res.Pieces) && res.Pieces[piece] == i {
			piece++
			continue
		}
		if m.net.Edges[res.Edges[i-1]].To != m.net.Edges[res.Edges[i]].From {
			tb.Fatalf("edges %d and %d of the path are not joined", i-1, i)
		}
	}
	// No forbidden turn in the path.
	for _, r := range m.net.Restrictions {
		for i := 1; i < len(res.Edges); i++ {
			if res.Edges[i-1] != r.From || (i < len(res.Edges) && slices.Contains(res.Pieces, i)) {
				continue
			}
			if (!r.Only && res.Edges[i] == r.To) || (r.Only && !mmOnlyAllows(m, r.From, res.Edges[i])) {
				tb.Fatalf("path turns from edge %d onto %d against a restriction", r.From, res.Edges[i])
			}
		}
	}
	if len(res.Traversals) != len(res.Edges) {
		tb.Fatalf("%d traversals for %d path edges", len(res.Traversals), len(res.Edges))
	}
	for i, tr := range res.Traversals {
		if tr.Edge != res.Edges[i] {
			tb.Fatalf("traversal %d on edge %d, path edge %d", i, tr.Edge, res.Edges[i])
		}
		if tr.Exit.Before(tr.Enter) || (i > 0 && tr.Enter.Before(res.Traversals[i-1].Exit)) {
			tb.Fatalf("traversal %d times go backwards: %+v after %+v", i, tr, res.Traversals[max(0, i-1)])
		}
	}
}

// mmOnlyAllows reports whether the only_* restrictions on edge from allow
// turning onto to.
func mmOnlyAllows(m *Matcher, from, to uint32) bool {
	for _, r := range m.net.Restrictions {
		if r.From == from && r.Only && r.To == to {
			return true
		}
	}
	return false
}

func TestMatchAccuracy(t *testing.T) {
	// Sigma as the matcher's option: the noise level itself (as Newson &
	// Krumm estimate it from the data) or the default.
	cases := []struct {
		name         string
		load         func(testing.TB) *graph.Graph
		trips        int
		noise, sigma float64
		minRecall    float64
		minPrecision float64
	}{
		{"monaco/noise5/sigma5", mmMonaco, 150, 5, 5, 0.97, 0.98},
		{"monaco/noise5/default", mmMonaco, 150, 5, 0, 0.95, 0.97},
		{"monaco/noise10/default", mmMonaco, 150, 10, 0, 0.93, 0.92},
		{"porto/noise5/sigma5", mmPorto, 150, 5, 5, 0.99, 0.99},
		{"porto/noise5/default", mmPorto, 150, 5, 0, 0.98, 0.98},
		{"porto/noise10/default", mmPorto, 150, 10, 0, 0.97, 0.97},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g := c.load(t)
			sc, pps := mmEvaluate(t, g, MatchOptions{Sigma: c.sigma}, c.trips, 10, c.noise, 1)
			t.Logf("%d trips, %d pings, 10 s sampling, noise %v m, Sigma %v (0 = default): true edges matched %.2f%% (%d/%d), matched edges true %.2f%% (%d/%d), breaks %d, %s",
				c.trips, sc.pings, c.noise, c.sigma, 100*sc.recall(), sc.truthHit, sc.truth, 100*sc.precision(), sc.matchedHit, sc.matched, sc.breaks, pps)
			if sc.recall() < c.minRecall {
				t.Errorf("true edges matched %.3f, want >= %.2f", sc.recall(), c.minRecall)
			}
			if sc.precision() < c.minPrecision {
				t.Errorf("matched edges true %.3f, want >= %.2f", sc.precision(), c.minPrecision)
			}
		})
	}
}

// TestMatchNoiseless: pings exactly on the road must be matched onto the
// road where they are, and give the true path but for the ambiguity at the
// ends of a trace (a ping at a node is on every edge that meets there).
func TestMatchNoiseless(t *testing.T) {
	g := mmMonaco(t)
	m := mmNewMatcher(t, g, MatchOptions{Sigma: 3})
	q := g.NewQuery()
	rng := rand.New(rand.NewPCG(3, 3))
	var sc mmScore
	far, total := 0, 0
	for range 100 {
		tr := mmSimulate(t, m, q, rng, 10, 0, 1500)
		res, err := m.Match(tr.pings)
		if err != nil {
			t.Fatal(err)
		}
		mmCheckResult(t, m, tr.pings, res)
		sc.add(tr.truth, res.Edges, len(tr.pings), res.Breaks)
		for i, p := range res.Points {
			total++
			if !p.OK || graph.Haversine(p.Lat, p.Lon, tr.pings[i].Lat, tr.pings[i].Lon) > 1 {
				far++
			}
		}
	}
	t.Logf("noiseless: true edges matched %.2f%%, matched edges true %.2f%%, %d/%d pings matched more than 1 m away, %d breaks",
		100*sc.recall(), 100*sc.precision(), far, total, sc.breaks)
	if sc.recall() < 0.97 || sc.precision() < 0.99 {
		t.Errorf("noiseless: recall %.3f precision %.3f, want >= 0.97 and 0.99", sc.recall(), sc.precision())
	}
	if far > total/50 {
		t.Errorf("%d of %d noiseless pings matched more than 1 m away", far, total)
	}
}

// TestMatchTraversalTimes: at free-flow speed, the interpolated time of a
// full edge traversal is close to the edge's free-flow duration.
func TestMatchTraversalTimes(t *testing.T) {
	g := mmMonaco(t)
	m := mmNewMatcher(t, g, MatchOptions{})
	q := g.NewQuery()
	rng := rand.New(rand.NewPCG(5, 5))
	var sumAbs, sumDur float64
	full := 0
	for range 50 {
		tr := mmSimulate(t, m, q, rng, 10, 5, 1500)
		res, err := m.Match(tr.pings)
		if err != nil {
			t.Fatal(err)
		}
		var covered time.Duration
		for _, x := range res.Traversals {
			covered += x.Exit.Sub(x.Enter)
			if !x.Full {
				continue
			}
			full++
			d := x.Exit.Sub(x.Enter).Seconds()
			sumAbs += math.Abs(d - m.net.Edges[x.Edge].Duration)
			sumDur += m.net.Edges[x.Edge].Duration
		}
		span := tr.pings[len(tr.pings)-1].Time.Sub(tr.pings[0].Time)
		if res.Breaks == 0 && covered != span {
			t.Errorf("traversals cover %v of a %v trace", covered, span)
		}
	}
	if full == 0 {
		t.Fatal("no full traversal")
	}
	rel := sumAbs / sumDur
	t.Logf("%d full traversals, mean abs time error %.1f%% of the free-flow time", full, 100*rel)
	if rel > 0.25 {
		t.Errorf("traversal time error %.2f of the duration, want <= 0.25", rel)
	}
}

// mmOffMapPoint returns a point within maxDist metres of (lat, lon) with no
// road within the matcher's radius.
func mmOffMapPoint(m *Matcher, lat, lon, maxDist float64) (float64, float64, bool) {
	kx := mmEarthRadius * mmDegToRad * math.Cos(lat*mmDegToRad)
	ky := mmEarthRadius * mmDegToRad
	for r := 60.0; r <= maxDist; r += 20 {
		for a := 0.0; a < 2*math.Pi; a += math.Pi / 16 {
			la, lo := lat+r*math.Sin(a)/ky, lon+r*math.Cos(a)/kx
			if len(m.candidates(nil, la, lo)) == 0 {
				return la, lo, true
			}
		}
	}
	return 0, 0, false
}

func TestMatchBadPings(t *testing.T) {
	g := mmMonaco(t)
	m := mmNewMatcher(t, g, MatchOptions{})
	q := g.NewQuery()
	rng := rand.New(rand.NewPCG(11, 11))
	var tr mmTrip
	var offLat, offLon float64
	for {
		tr = mmSimulate(t, m, q, rng, 10, 5, 2000)
		var ok bool
		if len(tr.pings) >= 12 {
			if offLat, offLon, ok = mmOffMapPoint(m, tr.pings[6].Lat, tr.pings[6].Lon, 400); ok {
				break
			}
		}
	}
	clean, err := m.Match(tr.pings)
	if err != nil {
		t.Fatal(err)
	}
	// Insert bad pings; keep the good ones in order.
	p := tr.pings
	mid := func(i int) time.Time { return p[i].Time.Add(5 * time.Second) }
	bad := []struct {
		after int
		ping  Ping
		why   string
	}{
		{1, Ping{Time: mid(1), Lat: math.NaN(), Lon: p[1].Lon}, RejectBadCoordinate},
		{2, Ping{Time: mid(2), Lat: 100, Lon: p[2].Lon}, RejectBadCoordinate},
		{3, Ping{Time: p[0].Time, Lat: p[3].Lat, Lon: p[3].Lon}, RejectOutOfOrder},
		{4, Ping{Time: mid(4), Lat: p[4].Lat + 0.05, Lon: p[4].Lon}, RejectTeleport},
		{6, Ping{Time: mid(6), Lat: offLat, Lon: offLon}, RejectOffMap},
		{8, Ping{Time: mid(8), Lat: p[8].Lat, Lon: math.Inf(1)}, RejectBadCoordinate},
	}
	var pings []Ping
	var want []string
	k := 0
	for i := range p {
		pings = append(pings, p[i])
		want = append(want, "")
		for k < len(bad) && bad[k].after == i {
			pings = append(pings, bad[k].ping)
			want = append(want, bad[k].why)
			k++
		}
	}
	res, err := m.Match(pings)
	if err != nil {
		t.Fatal(err)
	}
	mmCheckResult(t, m, pings, res)
	wantCount := map[string]int{}
	for i, w := range want {
		pt := res.Points[i]
		if w == "" && !pt.OK {
			t.Errorf("good ping %d rejected: %s", i, pt.Reason)
		}
		if w != "" {
			wantCount[w]++
			if pt.OK || pt.Reason != w {
				t.Errorf("bad ping %d: OK %v reason %q, want %q", i, pt.OK, pt.Reason, w)
			}
		}
	}
	for r, c := range wantCount {
		if res.Rejected[r] != c {
			t.Errorf("Rejected[%s] = %d, want %d", r, res.Rejected[r], c)
		}
	}
	if !slicesEqualU32(res.Edges, clean.Edges) {
		var a, b mmScore
		a.add(tr.truth, clean.Edges, 0, 0)
		b.add(tr.truth, res.Edges, 0, 0)
		t.Logf("path with bad pings differs from the clean one: recall %.3f vs %.3f", b.recall(), a.recall())
		if b.recall() < a.recall()-0.05 {
			t.Errorf("bad pings degrade the match: recall %.3f vs %.3f", b.recall(), a.recall())
		}
	}

	// A jump at the start is rejected too.
	first := append([]Ping{{Time: p[0].Time.Add(-5 * time.Second), Lat: p[0].Lat + 0.05, Lon: p[0].Lon}}, p...)
	res, err = m.Match(first)
	if err != nil {
		t.Fatal(err)
	}
	mmCheckResult(t, m, first, res)
	if res.Points[0].OK || res.Points[0].Reason != RejectTeleport || res.Rejected[RejectTeleport] != 1 || res.Breaks != clean.Breaks {
		t.Errorf("first-ping jump: %+v, rejected %v, %d breaks", res.Points[0], res.Rejected, res.Breaks)
	}

	// A lasting jump is not a teleport: the trace splits.
	jump := slicesCloneP(p[:6])
	for _, x := range p[6:] {
		x.Time = x.Time.Add(time.Hour)
		jump = append(jump, x)
	}
	far := mmSimulate(t, m, q, rng, 10, 5, 500)
	for _, x := range far.pings {
		x.Time = jump[len(jump)-1].Time.Add(10 * time.Second)
		jump = append(jump, x)
	}
	res, err = m.Match(jump)
	if err != nil {
		t.Fatal(err)
	}
	mmCheckResult(t, m, jump, res)
	if res.Rejected[RejectTeleport] != 0 {
		t.Logf("rejected %v", res.Rejected)
	}
}

func slicesEqualU32(a, b []uint32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func slicesCloneP(p []Ping) []Ping { return append([]Ping(nil), p...) }

// TestMatchTeleportRun: a far jump that persists splits the trace into two
// pieces instead of rejecting everything after it.
func TestMatchTeleportRun(t *testing.T) {
	g := mmMonaco(t)
	m := mmNewMatcher(t, g, MatchOptions{})
	q := g.NewQuery()
	rng := rand.New(rand.NewPCG(2, 9))
	var a, b mmTrip
	for {
		a = mmSimulate(t, m, q, rng, 10, 5, 1000)
		b = mmSimulate(t, m, q, rng, 10, 5, 1000)
		if graph.Haversine(a.pings[len(a.pings)-1].Lat, a.pings[len(a.pings)-1].Lon, b.pings[0].Lat, b.pings[0].Lon) > 1500 {
			break
		}
	}
	pings := slicesCloneP(a.pings)
	last := pings[len(pings)-1].Time
	for i, x := range b.pings {
		x.Time = last.Add(time.Duration(i+1) * 10 * time.Second)
		pings = append(pings, x)
	}
	res, err := m.Match(pings)
	if err != nil {
		t.Fatal(err)
	}
	mmCheckResult(t, m, pings, res)
	if res.Breaks < 1 {
		t.Errorf("breaks = %d, want >= 1 at the jump", res.Breaks)
	}
	if n := res.Rejected[RejectTeleport]; n != 0 {
		t.Errorf("%d pings rejected as teleports after a lasting jump", n)
	}
	var sc mmScore
	sc.add(append(slicesCloneU32(a.truth), b.truth...), res.Edges, 0, 0)
	if sc.recall() < 0.9 {
		t.Errorf("recall %.3f across a jump", sc.recall())
	}
}

func slicesCloneU32(s []uint32) []uint32 { return append([]uint32(nil), s...) }

func TestMatchErrors(t *testing.T) {
	g := mmMonaco(t)
	m := mmNewMatcher(t, g, MatchOptions{})
	if _, err := m.Match(nil); err == nil {
		t.Error("Match(nil): no error")
	}
	if _, err := NewMatcher(nil, MatchOptions{}); err == nil {
		t.Error("NewMatcher(nil): no error")
	}
	for _, o := range []MatchOptions{
		{Sigma: -1}, {Beta: math.NaN()}, {Radius: math.Inf(1)}, {MaxCandidates: -2}, {MaxCandidates: 1000}, {MaxSpeed: -5},
	} {
		if _, err := NewMatcher(g, o); err == nil {
			t.Errorf("NewMatcher(%+v): no error", o)
		}
	}
	// Only bad pings: every one flagged, no path.
	res, err := m.Match([]Ping{{Lat: math.NaN()}, {Lat: 0, Lon: 0}, {Lat: 91}})
	if err != nil {
		t.Fatal(err)
	}
	mmCheckResult(t, m, []Ping{{Lat: math.NaN()}, {Lat: 0, Lon: 0}, {Lat: 91}}, res)
	if res.Rejected[RejectBadCoordinate] != 2 || res.Rejected[RejectOffMap] != 1 || len(res.Edges) != 0 {
		t.Errorf("got %v and %d edges", res.Rejected, len(res.Edges))
	}
}

// TestMatchConcurrent: one Matcher shared by goroutines gives the same
// results as sequential calls.
func TestMatchConcurrent(t *testing.T) {
	g := mmMonaco(t)
	m := mmNewMatcher(t, g, MatchOptions{})
	q := g.NewQuery()
	rng := rand.New(rand.NewPCG(4, 4))
	trips := make([]mmTrip, 8)
	want := make([]MatchResult, len(trips))
	for i := range trips {
		trips[i] = mmSimulate(t, m, q, rng, 10, 8, 1000)
		want[i], _ = m.Match(trips[i].pings)
	}
	var wg sync.WaitGroup
	errs := make(chan error, len(trips))
	for i := range trips {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 5 {
				got, _ := m.Match(trips[i].pings)
				if !slicesEqualU32(got.Edges, want[i].Edges) {
					errs <- errors.New("concurrent match differs")
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestMatchPortoTraces matches the real Porto taxi traces (15 s sampling,
// no ground truth) and reports throughput, matched share and breaks.
func TestMatchPortoTraces(t *testing.T) {
	path := filepath.Join(mmDataDir(), "traces", "normalised", "porto_taxi_train-1000.csv")
	if _, err := os.Stat(path); err != nil {
		t.Skipf("traces %s not available (set LASTMILE_DATA): %v", path, err)
	}
	g := mmPorto(t)
	traces, err := datasets.ReadTracesFile(path)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	m := mmNewMatcher(t, g, MatchOptions{})
	t.Logf("NewMatcher on Porto: %v, %d edges, %d shape segments indexed, %d turn arcs",
		time.Since(t0).Round(time.Millisecond), len(m.net.Edges), len(m.segEdge), len(m.turnHead))
	var pings, ok, breaks, edges int
	rejected := map[string]int{}
	var clock mmClock
	buf := []Ping{}
	for _, tr := range traces {
		buf = buf[:0]
		for _, p := range tr.Points {
			buf = append(buf, Ping{Time: time.Unix(p.Time, 0), Lat: p.Lat, Lon: p.Lon, Speed: math.NaN(), Heading: math.NaN()})
		}
		var res MatchResult
		var err error
		clock.time(func() { res, err = m.Match(buf) })
		if err != nil {
			t.Fatal(err)
		}
		mmCheckResult(t, m, buf, res)
		pings += len(buf)
		breaks += res.Breaks
		edges += len(res.Edges)
		for _, p := range res.Points {
			if p.OK {
				ok++
			}
		}
		for r, c := range res.Rejected {
			rejected[r] += c
		}
	}
	share := float64(ok) / float64(pings)
	t.Logf("Porto taxi: %d traces, %d pings, %.1f%% matched, rejected %v, %d breaks (%.2f per 100 pings), %d path edges, %s",
		len(traces), pings, 100*share, rejected, breaks, 100*float64(breaks)/float64(pings), edges, clock.rate(pings))
	if share < 0.9 {
		t.Errorf("only %.1f%% of the pings matched", 100*share)
	}
}

// FuzzMatch feeds random ping sequences around Monaco: Match must never
// panic and its result must keep its invariants.
func FuzzMatch(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte("\x00\x10\x20\x30\x40\x50\x60\x70\x80\x90\xa0\xb0"))
	f.Add(make([]byte, 64))
	seed := make([]byte, 0, 120)
	for i := range 10 {
		seed = binary.LittleEndian.AppendUint32(seed, uint32(i*1000))
		seed = binary.LittleEndian.AppendUint32(seed, uint32(i*40000))
		seed = binary.LittleEndian.AppendUint32(seed, uint32(i*10))
	}
	f.Add(seed)
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	g := mmMonaco(f)
	m := mmNewMatcher(f, g, MatchOptions{})
	f.Fuzz(func(t *testing.T, data []byte) {
		var pings []Ping
		for len(data) >= 12 {
			a := binary.LittleEndian.Uint32(data)
			b := binary.LittleEndian.Uint32(data[4:])
			c := binary.LittleEndian.Uint32(data[8:])
			data = data[12:]
			p := Ping{
				// Around Monaco (43.72-43.76, 7.40-7.44), some far away
				// or invalid.
				Lat:  43.72 + float64(a%1000000)*4e-8,
				Lon:  7.40 + float64(b%1000000)*4e-8,
				Time: mmT0.Add(time.Duration(int32(c)) * time.Millisecond),
			}
			switch a >> 28 {
			case 15:
				p.Lat = math.NaN()
			case 14:
				p.Lon = 200
			case 13:
				p.Lat = -89.9
			}
			pings = append(pings, p)
		}
		res, err := m.Match(pings)
		if len(pings) == 0 {
			if err == nil {
				t.Fatal("no error for empty input")
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		mmCheckResult(t, m, pings, res)
	})
}

// BenchmarkMatch reports matching throughput in pings/s on one goroutine
// for simulated 10 s traces with 5 m noise, per wall second and per CPU
// second of the process (GC included), the latter being the per-core rate
// when the machine is shared. Run with -cpu 1 for one core.
func BenchmarkMatch(b *testing.B) {
	for _, c := range []struct {
		name string
		load func(testing.TB) *graph.Graph
	}{{"monaco", mmMonaco}, {"porto", mmPorto}} {
		b.Run(c.name, func(b *testing.B) {
			g := c.load(b)
			m := mmNewMatcher(b, g, MatchOptions{})
			q := g.NewQuery()
			rng := rand.New(rand.NewPCG(9, 9))
			trips := make([]mmTrip, 100)
			n := 0
			for i := range trips {
				trips[i] = mmSimulate(b, m, q, rng, 10, 5, 1500)
				n += len(trips[i].pings)
			}
			b.ResetTimer()
			c0, ok0 := mmCPUTime()
			for i := 0; i < b.N; i++ {
				for _, tr := range trips {
					if _, err := m.Match(tr.pings); err != nil {
						b.Fatal(err)
					}
				}
			}
			c1, ok1 := mmCPUTime()
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "pings/s")
			if ok0 && ok1 && c1 > c0 {
				b.ReportMetric(float64(n)*float64(b.N)/(c1-c0).Seconds(), "pings/cpu-s")
			}
		})
	}
}

// mmGrid builds a size×size grid of two-way streets spaced 100 m apart
// (each row and each column one way id, 10 m/s), with the given extra
// restrictions, and returns it with the id of the edge from node a to b.
func mmGrid(t *testing.T, size int, restrict func(edge func(a, b int) uint32) []graph.TurnRestriction) (*graph.Graph, func(a, b int) uint32) {
	t.Helper()
	const lat0, lon0, step = 41.15, -8.61, 100.0
	n := &graph.Network{}
	ky := mmEarthRadius * mmDegToRad
	kx := ky * math.Cos(lat0*mmDegToRad)
	for r := range size {
		for c := range size {
			n.Lat = append(n.Lat, lat0+float64(r)*step/ky)
			n.Lon = append(n.Lon, lon0+float64(c)*step/kx)
			n.OSMNode = append(n.OSMNode, int64(r*size+c+1))
		}
	}
	ids := map[[2]int]uint32{}
	add := func(a, b int, way int64) {
		for _, p := range [][2]int{{a, b}, {b, a}} {
			ids[p] = uint32(len(n.Edges))
			n.Edges = append(n.Edges, graph.Edge{From: uint32(p[0]), To: uint32(p[1]), Distance: step, Duration: step / 10,
				WayID: way, Class: graph.ClassResidential})
		}
	}
	for r := range size {
		for c := range size - 1 {
			add(r*size+c, r*size+c+1, int64(1+r))
			add(c*size+r, (c+1)*size+r, int64(1000+r))
		}
	}
	edge := func(a, b int) uint32 {
		e, ok := ids[[2]int{a, b}]
		if !ok {
			t.Fatalf("no edge %d->%d in the grid", a, b)
		}
		return e
	}
	if restrict != nil {
		n.Restrictions = restrict(edge)
	}
	g, err := graph.Build(n, graph.BuildOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return g, edge
}

// mmDrive returns pings every 5 s along the polyline of grid nodes at
// 10 m/s without noise, from 30 m into the first edge to 70 m into the
// last one (a ping exactly at a node would lie on every edge there).
func mmDrive(g *graph.Graph, nodes []int) []Ping {
	n := g.Road
	var pings []Ping
	end := float64(len(nodes)-2)*10 + 7
	for t := 3.0; t <= end; t += 5 {
		i := min(int(t/10), len(nodes)-2)
		a, b := nodes[i], nodes[i+1]
		f := t/10 - float64(i)
		pings = append(pings, Ping{Time: mmT0.Add(time.Duration(t * float64(time.Second))),
			Lat: n.Lat[a] + f*(n.Lat[b]-n.Lat[a]), Lon: n.Lon[a] + f*(n.Lon[b]-n.Lon[a])})
	}
	return pings
}

// TestMatchGrid checks turns on a synthetic grid: a plain route, a U-turn
// in the middle of a street (allowed at a penalty rather than a break) and
// a forbidden turn that the matched path must go around.
func TestMatchGrid(t *testing.T) {
	// Nodes of a 4×4 grid: r*4+c.
	t.Run("route", func(t *testing.T) {
		g, edge := mmGrid(t, 4, nil)
		m := mmNewMatcher(t, g, MatchOptions{})
		nodes := []int{0, 1, 2, 6, 10}
		pings := mmDrive(g, nodes)
		res, err := m.Match(pings)
		if err != nil {
			t.Fatal(err)
		}
		mmCheckResult(t, m, pings, res)
		want := []uint32{edge(0, 1), edge(1, 2), edge(2, 6), edge(6, 10)}
		if !slicesEqualU32(res.Edges, want) {
			t.Errorf("edges %v, want %v", res.Edges, want)
		}
		if res.Breaks != 0 {
			t.Errorf("%d breaks", res.Breaks)
		}
		// Every edge but the ends is traversed in full, in 10 s at 10 m/s.
		for _, tr := range res.Traversals {
			if d := tr.Exit.Sub(tr.Enter); tr.Full && (d < 9*time.Second || d > 11*time.Second) {
				t.Errorf("traversal of edge %d took %v, want 10 s", tr.Edge, d)
			}
		}
		full := 0
		for _, tr := range res.Traversals {
			if tr.Full {
				full++
			}
		}
		if full < 2 {
			t.Errorf("%d full traversals, want >= 2", full)
		}
	})
	t.Run("uturn", func(t *testing.T) {
		g, edge := mmGrid(t, 4, nil)
		m := mmNewMatcher(t, g, MatchOptions{})
		// East along row 1 (nodes 4..7) to node 6, then back west to 4.
		pings := mmDrive(g, []int{4, 5, 6, 5, 4})
		res, err := m.Match(pings)
		if err != nil {
			t.Fatal(err)
		}
		mmCheckResult(t, m, pings, res)
		if res.Breaks != 0 {
			t.Errorf("%d breaks at a U-turn", res.Breaks)
		}
		want := []uint32{edge(4, 5), edge(5, 6), edge(6, 5), edge(5, 4)}
		if !slicesEqualU32(res.Edges, want) {
			t.Errorf("edges %v, want %v", res.Edges, want)
		}
	})
	t.Run("restriction", func(t *testing.T) {
		// Pings on 1->5 (two, for the direction) and near the end of
		// 5->6: without restriction the path turns left at node 5.
		pingsOn := func(g *graph.Graph) []Ping {
			n := g.Road
			at := func(a, b int, f float64) Ping {
				return Ping{Lat: n.Lat[a] + f*(n.Lat[b]-n.Lat[a]), Lon: n.Lon[a] + f*(n.Lon[b]-n.Lon[a])}
			}
			p := []Ping{at(1, 5, 0.1), at(1, 5, 0.5), at(5, 6, 0.7)}
			p[1].Time, p[2].Time = mmT0.Add(4*time.Second), mmT0.Add(60*time.Second)
			p[0].Time = mmT0
			return p
		}
		g, edge := mmGrid(t, 4, nil)
		m := mmNewMatcher(t, g, MatchOptions{})
		res, err := m.Match(pingsOn(g))
		if err != nil {
			t.Fatal(err)
		}
		if want := []uint32{edge(1, 5), edge(5, 6)}; !slicesEqualU32(res.Edges, want) {
			t.Errorf("unrestricted: path %v, want %v", res.Edges, want)
		}
		// Forbid the turn 1->5 onto 5->6: the path must go another way
		// (mmCheckResult checks that no forbidden turn is taken).
		g, edge = mmGrid(t, 4, func(edge func(a, b int) uint32) []graph.TurnRestriction {
			return []graph.TurnRestriction{{From: edge(1, 5), To: edge(5, 6)}}
		})
		m = mmNewMatcher(t, g, MatchOptions{})
		pings := pingsOn(g)
		res, err = m.Match(pings)
		if err != nil {
			t.Fatal(err)
		}
		mmCheckResult(t, m, pings, res)
		if res.Breaks != 0 || len(res.Edges) < 3 || res.Edges[0] != edge(1, 5) {
			t.Errorf("restricted: path %v with %d breaks, want 1->5 then a detour", res.Edges, res.Breaks)
		}
	})
}

// TestMatchNoTimestamps matches the Andorra trace, a route drawn without
// timestamps (all Time zero): no speed check applies, the path must still
// be continuous and the traversals take no time.
func TestMatchNoTimestamps(t *testing.T) {
	path := filepath.Join(mmDataDir(), "traces", "normalised", "andorra_for_map_matching.csv")
	if _, err := os.Stat(path); err != nil {
		t.Skipf("trace %s not available (set LASTMILE_DATA): %v", path, err)
	}
	g := mmLoadGraph(t, filepath.Join(mmDataDir(), "osm", "andorra.osm.pbf"))
	traces, err := datasets.ReadTracesFile(path)
	if err != nil {
		t.Fatal(err)
	}
	m := mmNewMatcher(t, g, MatchOptions{})
	for _, tr := range traces {
		var pings []Ping
		for _, p := range tr.Points {
			if p.Time != 0 {
				t.Fatalf("trace %s has timestamps", tr.ID)
			}
			pings = append(pings, Ping{Lat: p.Lat, Lon: p.Lon, Speed: math.NaN(), Heading: math.NaN()})
		}
		res, err := m.Match(pings)
		if err != nil {
			t.Fatal(err)
		}
		mmCheckResult(t, m, pings, res)
		ok := 0
		for _, p := range res.Points {
			if p.OK {
				ok++
			}
		}
		t.Logf("trace %s: %d/%d pings matched, rejected %v, %d breaks, %d path edges", tr.ID, ok, len(pings), res.Rejected, res.Breaks, len(res.Edges))
		if ok < len(pings)*9/10 || res.Breaks > 1 {
			t.Errorf("trace %s: %d/%d pings matched, %d breaks", tr.ID, ok, len(pings), res.Breaks)
		}
		for _, x := range res.Traversals {
			if !x.Exit.Equal(x.Enter) {
				t.Errorf("traversal %+v takes time without timestamps", x)
			}
		}
	}
}

// TestMatchCached slides a window of pings over simulated Monaco trips,
// as live tracking does (20 kept, 10 new, a rejected teleport now and
// then), and checks that every call with the vehicle's cache gives the
// same result as Match without one, and that the cache keeps only the
// last window's pings.
func TestMatchCached(t *testing.T) {
	g := mmMonaco(t)
	m := mmNewMatcher(t, g, MatchOptions{})
	q := g.NewQuery()
	rng := rand.New(rand.NewPCG(5, 7))
	calls, reused := 0, 0
	for trip := range 12 {
		tr := mmSimulate(t, m, q, rng, 10, 5, 3000)
		pings := slices.Clone(tr.pings)
		if trip%3 == 0 && len(pings) > 15 {
			pings[12].Lat += 0.05 // a teleport, rejected
		}
		var c MatchCache
		for end := 10; end <= len(pings); end += 10 {
			window := pings[max(0, end-30):end]
			want, err1 := m.Match(window)
			got, err2 := m.MatchCached(window, &c)
			if err1 != nil || err2 != nil {
				t.Fatal(err1, err2)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("trip %d, pings %d-%d: cached result differs:\n%+v\nwant\n%+v", trip, max(0, end-30), end, got, want)
			}
			ps, pairs := c.Len()
			if ps > len(window) || pairs >= len(window) {
				t.Fatalf("cache holds %d pings and %d pairs for a window of %d", ps, pairs, len(window))
			}
			calls++
			if end > 10 {
				reused++
			}
		}
	}
	if reused == 0 {
		t.Fatal("no window reused the cache")
	}
	t.Logf("%d calls, %d with earlier pings cached", calls, reused)
}

// TestMMHeap checks the matcher's heap against sorting: random pushes
// and pops interleaved, ties included, pop the distances in order.
func TestMMHeap(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	var h []mmItem
	var ref []float64
	for step := range 20000 {
		if len(h) == 0 || rng.IntN(3) > 0 {
			d := float64(rng.IntN(500)) // ties
			h = mmPush(h, mmItem{d, uint32(step)})
			ref = append(ref, d)
			continue
		}
		var it mmItem
		h, it = mmPop(h)
		slices.Sort(ref)
		if it.dist != ref[0] {
			t.Fatalf("step %d: popped %v, want %v", step, it.dist, ref[0])
		}
		ref = ref[1:]
	}
	for len(h) > 0 {
		var it mmItem
		h, it = mmPop(h)
		slices.Sort(ref)
		if it.dist != ref[0] {
			t.Fatalf("drain: popped %v, want %v", it.dist, ref[0])
		}
		ref = ref[1:]
	}
}

// TestMatchSearchAgainstDijkstra checks the A* of the transition searches
// (mmGoal) against a plain Dijkstra over the same turn graph: from random
// candidate positions, toward the candidates of a point 20-400 m away,
// every target within the bound gets the same route distance, and none is
// found that Dijkstra does not find.
func TestMatchSearchAgainstDijkstra(t *testing.T) {
	for _, c := range []struct {
		name string
		load func(testing.TB) *graph.Graph
	}{{"monaco", mmMonaco}, {"porto", mmPorto}} {
		t.Run(c.name, func(t *testing.T) {
			m := mmNewMatcher(t, c.load(t), MatchOptions{})
			st := m.newState()
			n := len(m.edgeLen)
			ref := make([]float64, n)
			rng := rand.New(rand.NewPCG(11, 12))
			compared, found := 0, 0
			for trial := 0; trial < 300; trial++ {
				src := uint32(rng.IntN(n))
				if m.edgeLen[src] == 0 {
					continue
				}
				a := mmCand{edge: src, frac: rng.Float64()}
				a.lat, a.lon = m.tail[src][0], m.tail[src][1]
				// Targets: the candidates around a point near a.
				dist := 20 + 380*rng.Float64()
				ang := 2 * math.Pi * rng.Float64()
				plat := a.lat + dist*math.Cos(ang)/(mmEarthRadius*mmDegToRad)
				plon := a.lon + dist*math.Sin(ang)/(mmEarthRadius*mmDegToRad*math.Cos(a.lat*mmDegToRad))
				cands := m.candidates(nil, plat, plon)
				if len(cands) == 0 {
					continue
				}
				bound := m.bound(dist, 0)
				st.nextRound()
				goal := newGoal(plat, plon, 0)
				for _, cb := range cands {
					st.target[cb.edge] = st.cur
					goal.r = max(goal.r, goal.dist(cb.lat, cb.lon))
				}
				m.search(st, src, (1-a.frac)*m.edgeLen[src], bound, len(cands), &goal)
				mmDijkstra(m, ref, src, (1-a.frac)*m.edgeLen[src])
				for _, cb := range cands {
					want := ref[cb.edge] + cb.frac*m.edgeLen[cb.edge]
					got, ok := math.Inf(1), st.done[cb.edge] == st.cur
					if ok {
						got = st.dist[cb.edge] + cb.frac*m.edgeLen[cb.edge]
					}
					if want > bound && (!ok || got > bound) {
						continue // beyond the bound either way
					}
					compared++
					if !ok || math.Abs(got-want) > 1e-6*max(1, want) {
						t.Fatalf("trial %d: edge %d -> candidate on edge %d: A* %v (settled %v), Dijkstra %v, bound %v",
							trial, src, cb.edge, got, ok, want, bound)
					}
					found++
				}
			}
			if compared < 100 {
				t.Fatalf("only %d targets within the bound compared", compared)
			}
			t.Logf("%d targets within the bound, all at Dijkstra's distance", found)
		})
	}
}

// mmDijkstra fills dist with the route distance from the end of edge src
// (rem metres ahead) to the start of every edge: a plain Dijkstra over the
// matcher's turn graph, the reference of TestMatchSearchAgainstDijkstra.
func mmDijkstra(m *Matcher, dist []float64, src uint32, rem float64) {
	for i := range dist {
		dist[i] = math.Inf(1)
	}
	var h []mmItem
	// relax offers the edges that may follow u, d metres from the start.
	relax := func(u uint32, d float64) {
		for k := m.turnFirst[u]; k < m.turnFirst[u+1]; k++ {
			e, de := m.turnHead[k], d
			if m.turnU[k] {
				de += m.uTurnPenalty
			}
			if de < dist[e] {
				dist[e] = de
				h = mmPush(h, mmItem{de, e})
			}
		}
	}
	relax(src, rem)
	for len(h) > 0 {
		var it mmItem
		h, it = mmPop(h)
		if u := it.node; it.dist <= dist[u] && it.dist <= 5000 {
			relax(u, it.dist+m.edgeLen[u])
		}
	}
}
