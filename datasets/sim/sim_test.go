package sim

import (
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/lastmile/lastmile/datasets"
	"github.com/lastmile/lastmile/graph"
	"github.com/lastmile/lastmile/osmimport"
)

// monday is a Monday midnight UTC used as day 0.
var monday = time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)

// builtGraph is a graph built once per test binary from an extract.
type builtGraph struct {
	once sync.Once
	g    *graph.Graph
	err  error
}

// get builds the graph of the extract at path the first time.
func (b *builtGraph) get(t testing.TB, path string) *graph.Graph {
	t.Helper()
	b.once.Do(func() {
		net, _, err := osmimport.ReadFile(path, osmimport.Options{})
		if err != nil {
			b.err = err
			return
		}
		b.g, b.err = graph.Build(net, graph.BuildOptions{})
	})
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.g
}

var monacoGraph, portoGraph builtGraph

// monaco returns the graph of the committed Monaco extract
// (datasets/osm/monaco.osm.pbf), else of $LASTMILE_DATA/osm/monaco.osm.pbf,
// skipping the test when neither exists.
func monaco(t testing.TB) *graph.Graph {
	t.Helper()
	p := filepath.Join("..", "osm", "monaco.osm.pbf")
	if _, err := os.Stat(p); err != nil {
		p = datasets.Require(t, "osm", "monaco.osm.pbf")
	}
	return monacoGraph.get(t, p)
}

// world draws a world over g with cfg modified by edit.
func world(t testing.TB, g *graph.Graph, days int, edit func(*Config)) *World {
	t.Helper()
	cfg := DefaultConfig(monday, days, 42)
	if edit != nil {
		edit(&cfg)
	}
	w, err := NewWorld(g.Road, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func TestDeterminism(t *testing.T) {
	g := monaco(t)
	a := world(t, g, 7, func(c *Config) { c.IncidentRate = 20 })
	b := world(t, g, 7, func(c *Config) { c.IncidentRate = 20 })
	c := world(t, g, 7, func(c *Config) { c.IncidentRate = 20; c.Seed = 43 })
	if len(a.Incidents()) == 0 || len(a.Incidents()) != len(b.Incidents()) {
		t.Fatalf("incidents: %d vs %d", len(a.Incidents()), len(b.Incidents()))
	}
	for i := range a.Incidents() {
		x, y := a.Incidents()[i], b.Incidents()[i]
		if !x.Start.Equal(y.Start) || !x.End.Equal(y.End) || x.Factor != y.Factor || len(x.Edges) != len(y.Edges) {
			t.Fatalf("incident %d differs: %+v vs %+v", i, x, y)
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	differ := 0
	for range 2000 {
		e := uint32(rng.IntN(len(g.Road.Edges)))
		at := monday.Add(time.Duration(rng.Int64N(int64(7 * day))))
		fa, fb := a.Factor(e, at), b.Factor(e, at)
		if fa != fb {
			t.Fatalf("Factor(%d, %v): %v vs %v", e, at, fa, fb)
		}
		if fa != c.Factor(e, at) {
			differ++
		}
	}
	if differ < 500 {
		t.Errorf("another seed changed only %d of 2000 factors", differ)
	}
	// Day d does not depend on the number of days drawn.
	long := world(t, g, 14, func(c *Config) { c.IncidentRate = 20 })
	for d := range 7 {
		for r := range a.Regions() {
			if a.Intensity(d, r) != long.Intensity(d, r) {
				t.Fatalf("day %d region %d intensity depends on Days", d, r)
			}
		}
	}
	// Drives and tours with equal rng seeds are equal.
	stops := RandomEndpoints(g, 6, rand.New(rand.NewPCG(5, 5)))
	t1, err := a.Tour(g, stops[0], stops[1:], 4*time.Minute, monday.Add(8*time.Hour), rand.New(rand.NewPCG(9, 9)))
	if err != nil {
		t.Fatal(err)
	}
	t2, err := b.Tour(g, stops[0], stops[1:], 4*time.Minute, monday.Add(8*time.Hour), rand.New(rand.NewPCG(9, 9)))
	if err != nil {
		t.Fatal(err)
	}
	for i := range t1.Arrive {
		if !t1.Arrive[i].Equal(t2.Arrive[i]) || !t1.Depart[i].Equal(t2.Depart[i]) {
			t.Fatalf("stop %d: %v/%v vs %v/%v", i, t1.Arrive[i], t1.Depart[i], t2.Arrive[i], t2.Depart[i])
		}
	}
}

func TestFactorBoundsAndPattern(t *testing.T) {
	g := monaco(t)
	w := world(t, g, 14, func(c *Config) { c.IncidentRate = 10 })
	rng := rand.New(rand.NewPCG(3, 4))
	for range 20000 {
		e := uint32(rng.IntN(len(g.Road.Edges)))
		// Include times before and after the simulated days.
		at := monday.Add(time.Duration(rng.Int64N(int64(16*day))) - day)
		f := w.Factor(e, at)
		if !(f >= 1) {
			t.Fatalf("Factor(%d, %v) = %v < 1", e, at, f)
		}
		if math.IsInf(f, 1) {
			if d := at.Sub(monday); d < 0 || d >= 14*day {
				t.Fatalf("closure outside the simulated days at %v", at)
			}
		} else if f > 1e3 {
			t.Fatalf("Factor(%d, %v) = %v", e, at, f)
		}
	}
	if f := w.Factor(uint32(len(g.Road.Edges)), monday); !math.IsNaN(f) {
		t.Errorf("Factor of an edge out of range = %v, want NaN", f)
	}
	// Weekly pattern: on a quiet world (no day variation, no incidents)
	// a primary road is slowest in the weekday rush hour, free at night,
	// and less congested at weekend mornings.
	q := world(t, g, 7, func(c *Config) { c.IncidentRate, c.DaySigma, c.RegionSigma, c.PeakShiftSigma = 0, 0, 0, 0 })
	var prim uint32
	for i, e := range g.Road.Edges {
		if e.Class == graph.ClassPrimary {
			prim = uint32(i)
			break
		}
	}
	cfg := q.Config()
	rush := q.Factor(prim, monday.Add(8*time.Hour))
	want := 1 + cfg.ClassWeight[graph.ClassPrimary]*(cfg.MorningPeak.Height+cfg.Daytime*0.98)
	if math.Abs(rush-want) > 0.02 {
		t.Errorf("Monday 08:00 primary factor %v, want about %v", rush, want)
	}
	if night := q.Factor(prim, monday.Add(3*time.Hour)); night > 1.01 {
		t.Errorf("Monday 03:00 factor %v, want about 1", night)
	}
	sat := q.Factor(prim, monday.Add(5*day+8*time.Hour))
	if sat >= rush {
		t.Errorf("Saturday 08:00 factor %v >= Monday's %v", sat, rush)
	}
	// Before the first day the weekly pattern continues: the Sunday before
	// is a weekend day, the Friday after the last day a weekday.
	if sun := q.Factor(prim, monday.Add(-16*time.Hour)); sun != sat {
		t.Errorf("Sunday before day 0 at 08:00: %v, want the weekend's %v", sun, sat)
	}
	if fri := q.Factor(prim, monday.Add(11*day+8*time.Hour)); fri != rush {
		t.Errorf("Friday after the last day at 08:00: %v, want the weekday's %v", fri, rush)
	}
	// Day intensities have mean 1 and log-σ sqrt(DaySigma²+RegionSigma²).
	var sum, sumLog, sumLog2 float64
	n := 0
	for d := range w.Days() {
		for r := range w.Regions() {
			m := w.Intensity(d, r)
			sum += m
			sumLog += math.Log(m)
			sumLog2 += math.Log(m) * math.Log(m)
			n++
		}
	}
	mean := sum / float64(n)
	sd := math.Sqrt(sumLog2/float64(n) - (sumLog/float64(n))*(sumLog/float64(n)))
	wantSD := math.Hypot(w.Config().DaySigma, w.Config().RegionSigma)
	t.Logf("%d day-region intensities: mean %.3f, log sd %.3f (want %.3f)", n, mean, sd, wantSD)
	if math.Abs(mean-1) > 0.2 || math.Abs(sd-wantSD) > 0.15 {
		t.Errorf("intensities: mean %v, log sd %v, want 1, %v", mean, sd, wantSD)
	}
}

// TestIncidents checks that every incident multiplies its edges' factor by
// its own factor inside its window and not outside, against a world drawn
// with the same seed and no incidents.
func TestIncidents(t *testing.T) {
	g := monaco(t)
	w := world(t, g, 5, func(c *Config) { c.IncidentRate = 30; c.ClosedShare = 0.3 })
	base := world(t, g, 5, func(c *Config) { c.IncidentRate = 0 })
	incs := w.Incidents()
	closed := 0
	for _, inc := range incs {
		if math.IsInf(inc.Factor, 1) {
			closed++
		}
	}
	t.Logf("%d incidents, %d closures", len(incs), closed)
	if len(incs) < 10 || closed == 0 || closed == len(incs) {
		t.Fatalf("%d incidents, %d closed: too few to test", len(incs), closed)
	}
	// activeMax is the largest factor of the incidents active on e at t.
	activeMax := func(e uint32, at time.Time) float64 {
		m := 1.0
		for _, inc := range incs {
			if at.Before(inc.Start) || !at.Before(inc.End) {
				continue
			}
			for _, x := range inc.Edges {
				if x == e {
					m = max(m, inc.Factor)
				}
			}
		}
		return m
	}
	for k, inc := range incs {
		if !inc.End.After(inc.Start) || len(inc.Edges) == 0 {
			t.Fatalf("incident %d: %+v", k, inc)
		}
		if !(inc.Factor >= w.Config().SlowMin) {
			t.Fatalf("incident %d factor %v", k, inc.Factor)
		}
		for _, e := range inc.Edges {
			for _, at := range []time.Time{inc.Start.Add(-time.Second), inc.Start, inc.Start.Add(inc.End.Sub(inc.Start) / 2), inc.End.Add(-time.Nanosecond), inc.End} {
				got, b := w.Factor(e, at), base.Factor(e, at)
				want := b * activeMax(e, at)
				inside := !at.Before(inc.Start) && at.Before(inc.End)
				if inside && got < b*inc.Factor {
					t.Fatalf("incident %d edge %d at %v: factor %v < base %v × %v", k, e, at, got, b, inc.Factor)
				}
				if got != want && !(math.IsInf(got, 1) && math.IsInf(want, 1)) {
					t.Fatalf("incident %d edge %d at %v (inside %v): factor %v, want %v", k, e, at, inside, got, want)
				}
			}
		}
	}
}

// TestDriveExact checks, with noise off, that each edge takes exactly its
// part of the free-flow time times the factor at entry, and that a
// vehicle meeting a closure waits until it ends.
func TestDriveExact(t *testing.T) {
	g := monaco(t)
	w := world(t, g, 3, func(c *Config) { c.IncidentRate = 30; c.ClosedShare = 0.5; c.NoiseSigma = 0 })
	q := g.NewQuery()
	eps := RandomEndpoints(g, 60, rand.New(rand.NewPCG(7, 7)))
	rng := rand.New(rand.NewPCG(8, 8))
	for i := 0; i+1 < len(eps); i += 2 {
		r, err := q.Route(eps[i], eps[i+1])
		if err != nil {
			t.Fatal(err)
		}
		t0 := monday.Add(time.Duration(rng.Int64N(int64(3 * day))))
		d, err := w.Drive(r.Edges, r.SrcFraction, r.DstFraction, t0, rng)
		if err != nil {
			t.Fatal(err)
		}
		if !d.Enter[0].Equal(t0) {
			t.Fatalf("departure %v, want %v", d.Enter[0], t0)
		}
		for k, e := range d.Edges {
			a, b := d.Part(k)
			move := d.Enter[k].Add(d.Wait[k])
			want := secs((b - a) * g.Road.Edges[e].Duration * w.Factor(e, move))
			if got := d.Exit(k).Sub(move); got != want {
				t.Fatalf("trip %d edge %d: %v, want %v", i, k, got, want)
			}
			if d.Wait[k] > 0 && (!math.IsInf(w.Factor(e, d.Enter[k]), 1) || math.IsInf(w.Factor(e, move), 1)) {
				t.Fatalf("trip %d edge %d waited %v without a closure", i, k, d.Wait[k])
			}
		}
	}
	// A vehicle entering a closed edge waits until the closure ends.
	for _, inc := range w.Incidents() {
		if !math.IsInf(inc.Factor, 1) {
			continue
		}
		e := inc.Edges[0]
		t0 := inc.Start.Add(inc.End.Sub(inc.Start) / 3)
		d, err := w.Drive([]uint32{e}, 0, 1, t0, nil)
		if err != nil {
			t.Fatal(err)
		}
		if d.Wait[0] < inc.End.Sub(t0) {
			t.Fatalf("closure until %v: waited only %v from %v", inc.End, d.Wait[0], t0)
		}
		if min := d.Enter[0].Add(d.Wait[0]).Add(secs(g.Road.Edges[e].Duration)); d.Arrive.Before(min) {
			t.Fatalf("arrived %v before %v", d.Arrive, min)
		}
		return
	}
	t.Fatal("no closure drawn")
}

// TestDriveNoise checks that the per-traversal noise has mean 1 and the
// configured log-σ.
func TestDriveNoise(t *testing.T) {
	g := monaco(t)
	w := world(t, g, 1, func(c *Config) { c.IncidentRate = 0 })
	rng := rand.New(rand.NewPCG(1, 1))
	var e uint32
	for i := range g.Road.Edges {
		if g.Road.Edges[i].Duration > 5 {
			e = uint32(i)
			break
		}
	}
	t0 := monday.Add(10 * time.Hour)
	want := g.Road.Edges[e].Duration * w.Factor(e, t0)
	const n = 20000
	var sum, sumLog, sumLog2 float64
	for range n {
		d, err := w.Drive([]uint32{e}, 0, 1, t0, rng)
		if err != nil {
			t.Fatal(err)
		}
		r := d.Arrive.Sub(t0).Seconds() / want
		sum += r
		sumLog += math.Log(r)
		sumLog2 += math.Log(r) * math.Log(r)
	}
	mean := sum / n
	sd := math.Sqrt(sumLog2/n - (sumLog/n)*(sumLog/n))
	if math.Abs(mean-1) > 0.01 || math.Abs(sd-w.Config().NoiseSigma) > 0.01 {
		t.Errorf("noise mean %v, log sd %v; want 1, %v", mean, sd, w.Config().NoiseSigma)
	}
}

// distM is the distance in metres between two nearby points.
func distM(lat1, lon1, lat2, lon2 float64) float64 {
	dy := (lat2 - lat1) * metresPerDegree
	dx := (lon2 - lon1) * metresPerDegree * math.Cos(lat1*math.Pi/180)
	return math.Hypot(dx, dy)
}

func TestPings(t *testing.T) {
	g := monaco(t)
	w := world(t, g, 1, nil)
	q := g.NewQuery()
	eps := RandomEndpoints(g, 40, rand.New(rand.NewPCG(11, 11)))
	rng := rand.New(rand.NewPCG(12, 12))
	const sigma = 5.0
	var sq float64
	count := 0
	for i := 0; i+1 < len(eps); i += 2 {
		r, err := q.Route(eps[i], eps[i+1])
		if err != nil {
			t.Fatal(err)
		}
		d, err := w.Drive(r.Edges, r.SrcFraction, r.DstFraction, monday.Add(9*time.Hour), rng)
		if err != nil {
			t.Fatal(err)
		}
		ps, err := w.Pings(d, "v", 15*time.Second, sigma, rng)
		if err != nil {
			t.Fatal(err)
		}
		if want := int(d.Arrive.Sub(d.Enter[0])/(15*time.Second)) + 1; len(ps) != want {
			t.Fatalf("%d pings, want %d", len(ps), want)
		}
		if !ps[0].Time.Equal(d.Enter[0]) || ps[0].Edge != d.Edges[0] || ps[0].Fraction != d.SrcFraction {
			t.Fatalf("first ping %+v, drive starts %v on %d at %v", ps[0], d.Enter[0], d.Edges[0], d.SrcFraction)
		}
		// Truth positions advance along the path; noisy ones lie near them.
		k := 0
		for j, p := range ps {
			for k < len(d.Edges) && d.Edges[k] != p.Edge {
				k++
			}
			if k == len(d.Edges) {
				t.Fatalf("ping %d on edge %d out of path order", j, p.Edge)
			}
			if j > 0 && ps[j-1].Edge == p.Edge && p.Fraction < ps[j-1].Fraction {
				t.Fatalf("ping %d moves back on edge %d", j, p.Edge)
			}
			lat, lon, _ := edgeAt(g.Road, p.Edge, p.Fraction)
			dm := distM(lat, lon, p.Lat, p.Lon)
			if dm > 6*sigma {
				t.Fatalf("ping %d is %.1f m from its truth position", j, dm)
			}
			sq += dm * dm
			count++
			if !(p.Speed >= 0 && p.Speed < 70) || !(p.Heading >= 0 && p.Heading < 360) {
				t.Fatalf("ping %d: speed %v heading %v", j, p.Speed, p.Heading)
			}
		}
	}
	// For a 2-D Gaussian of σ per axis, the mean squared distance is 2σ².
	if rms := math.Sqrt(sq / float64(count)); math.Abs(rms-sigma*math.Sqrt2) > 0.15*sigma*math.Sqrt2 {
		t.Errorf("rms ping error %.2f m over %d pings, want %.2f", rms, count, sigma*math.Sqrt2)
	}
	// The truth position at the start of the route equals the route's geometry.
	r, _ := q.Route(eps[0], eps[1])
	lat, lon, _ := edgeAt(g.Road, r.Edges[0], r.SrcFraction)
	if dm := distM(lat, lon, r.Geometry[0].Lat, r.Geometry[0].Lon); dm > 0.5 {
		t.Errorf("start position %.2f m from the route geometry", dm)
	}
}

func TestTour(t *testing.T) {
	g := monaco(t)
	eps := RandomEndpoints(g, 16, rand.New(rand.NewPCG(13, 13)))
	w := world(t, g, 1, func(c *Config) { c.IncidentRate = 10 })
	rng := rand.New(rand.NewPCG(14, 14))
	t0 := monday.Add(8 * time.Hour)
	tr, err := w.Tour(g, eps[0], eps[1:], 5*time.Minute, t0, rng)
	if err != nil {
		t.Fatal(err)
	}
	n := len(eps) - 1
	if len(tr.Legs) != n+1 || len(tr.Routes) != n+1 || len(tr.Arrive) != n || len(tr.Depart) != n {
		t.Fatalf("tour sizes: %d legs, %d routes, %d arrivals, %d departures", len(tr.Legs), len(tr.Routes), len(tr.Arrive), len(tr.Depart))
	}
	prev := t0
	for i := range n {
		if tr.Arrive[i].Before(prev) || tr.Depart[i].Before(tr.Arrive[i]) || !tr.Legs[i].Arrive.Equal(tr.Arrive[i]) || !tr.Legs[i].Enter[0].Equal(prev) {
			t.Fatalf("stop %d: arrive %v depart %v after %v", i, tr.Arrive[i], tr.Depart[i], prev)
		}
		if tr.Depart[i].Sub(tr.Arrive[i]) != tr.Service[i] {
			t.Fatalf("stop %d: service %v", i, tr.Service[i])
		}
		prev = tr.Depart[i]
	}
	// Reference: with no congestion, no incidents and no noise, every leg
	// takes exactly the route's free-flow duration (to the millisecond the
	// router rounds to) and service is exact.
	free := world(t, g, 1, func(c *Config) {
		c.IncidentRate, c.NoiseSigma, c.ServiceSigma = 0, 0, 0
		c.ClassWeight = [graph.NumClasses]float64{}
	})
	tr, err = free.Tour(g, eps[0], eps[1:], 5*time.Minute, t0, rng)
	if err != nil {
		t.Fatal(err)
	}
	for i, leg := range tr.Legs {
		got := leg.Arrive.Sub(leg.Enter[0]).Seconds()
		if math.Abs(got-tr.Routes[i].Duration) > 0.002*float64(len(leg.Edges))+1e-6 {
			t.Fatalf("leg %d: %v s, route says %v s", i, got, tr.Routes[i].Duration)
		}
		if i < n && tr.Service[i] != 5*time.Minute {
			t.Fatalf("stop %d service %v", i, tr.Service[i])
		}
	}
}

func TestProbeTrips(t *testing.T) {
	g := monaco(t)
	w := world(t, g, 2, nil)
	ds, err := w.ProbeTrips(g, 1, 500, rand.New(rand.NewPCG(15, 15)))
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 500 {
		t.Fatalf("%d trips", len(ds))
	}
	night, day := 0, 0
	for i, d := range ds {
		if err := w.checkPath(d.Edges, d.SrcFraction, d.DstFraction); err != nil {
			t.Fatalf("trip %d: %v", i, err)
		}
		off := d.Enter[0].Sub(monday)
		if off < 24*time.Hour || off >= 48*time.Hour {
			t.Fatalf("trip %d departs %v, not on day 1", i, d.Enter[0])
		}
		if i > 0 && d.Enter[0].Before(ds[i-1].Enter[0]) {
			t.Fatalf("trips not in departure order")
		}
		switch h := (off - 24*time.Hour) / time.Hour; {
		case h < 5:
			night++
		case h >= 8 && h < 13:
			day++
		}
	}
	if night*3 > day {
		t.Errorf("%d trips 00-05 h vs %d 08-13 h", night, day)
	}
}

func TestBadInput(t *testing.T) {
	g := monaco(t)
	cases := []struct {
		name string
		edit func(*Config)
	}{
		{"zero start", func(c *Config) { c.Start = time.Time{} }},
		{"no days", func(c *Config) { c.Days = 0 }},
		{"negative sigma", func(c *Config) { c.NoiseSigma = -1 }},
		{"NaN region sigma", func(c *Config) { c.RegionSigma = math.NaN() }},
		{"zero region size", func(c *Config) { c.RegionSize = 0 }},
		{"tiny region size", func(c *Config) { c.RegionSize = 0.01 }},
		{"slow below 1", func(c *Config) { c.SlowMin = 0.5 }},
		{"slow range reversed", func(c *Config) { c.SlowMax = 1.2 }},
		{"closed share above 1", func(c *Config) { c.ClosedShare = 2 }},
		{"incident durations reversed", func(c *Config) { c.IncidentMaxDuration = time.Minute }},
		{"zero peak width", func(c *Config) { c.MorningPeak.Width = 0 }},
		{"infinite class weight", func(c *Config) { c.ClassWeight[3] = math.Inf(1) }},
		{"daytime reversed", func(c *Config) { c.DaytimeFrom = 21 * time.Hour }},
	}
	for _, tc := range cases {
		cfg := DefaultConfig(monday, 2, 1)
		tc.edit(&cfg)
		if _, err := NewWorld(g.Road, cfg); !errors.Is(err, errConfig) {
			t.Errorf("%s: err %v", tc.name, err)
		}
	}
	if _, err := NewWorld(nil, DefaultConfig(monday, 1, 1)); err == nil {
		t.Error("nil network accepted")
	}
	if _, err := NewWorld(&graph.Network{}, DefaultConfig(monday, 1, 1)); err == nil {
		t.Error("empty network accepted")
	}
	bad := &graph.Network{Lat: []float64{0, 0}, Lon: []float64{0, 0.001}, Edges: []graph.Edge{{From: 0, To: 5, Distance: 100, Duration: 10}}}
	if _, err := NewWorld(bad, DefaultConfig(monday, 1, 1)); err == nil {
		t.Error("edge to a missing node accepted")
	}
	bad.Edges[0].To, bad.Edges[0].Duration = 1, 0
	if _, err := NewWorld(bad, DefaultConfig(monday, 1, 1)); err == nil {
		t.Error("zero duration accepted")
	}

	w := world(t, g, 2, nil)
	ne := uint32(len(g.Road.Edges))
	var e0, e1 uint32 // two consecutive edges
	for i, e := range g.Road.Edges {
		if e.To != e.From {
			for j, f := range g.Road.Edges {
				if f.From == e.To {
					e0, e1 = uint32(i), uint32(j)
					break
				}
			}
			break
		}
	}
	var e2 uint32 // an edge not following e0
	for i, e := range g.Road.Edges {
		if e.From != g.Road.Edges[e0].To {
			e2 = uint32(i)
			break
		}
	}
	paths := []struct {
		name     string
		edges    []uint32
		src, dst float64
	}{
		{"empty", nil, 0, 1},
		{"out of range", []uint32{ne}, 0, 1},
		{"not consecutive", []uint32{e0, e2}, 0, 1},
		{"fraction above 1", []uint32{e0, e1}, 0, 1.5},
		{"NaN fraction", []uint32{e0}, math.NaN(), 1},
		{"backwards on one edge", []uint32{e0}, 0.8, 0.2},
	}
	for _, p := range paths {
		if _, err := w.Drive(p.edges, p.src, p.dst, monday, nil); !errors.Is(err, errInput) {
			t.Errorf("Drive %s: err %v", p.name, err)
		}
	}
	d, err := w.Drive([]uint32{e0, e1}, 0.5, 0.5, monday, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Pings(d, "v", 0, 5, nil); !errors.Is(err, errInput) {
		t.Errorf("Pings with zero interval: %v", err)
	}
	if _, err := w.Pings(d, "v", time.Second, -1, nil); !errors.Is(err, errInput) {
		t.Errorf("Pings with negative sigma: %v", err)
	}
	if _, err := w.Pings(Drive{}, "v", time.Second, 1, nil); !errors.Is(err, errInput) {
		t.Errorf("Pings of an empty drive: %v", err)
	}
	eps := RandomEndpoints(g, 3, rand.New(rand.NewPCG(1, 1)))
	if _, err := w.Tour(g, eps[0], nil, time.Minute, monday, nil); !errors.Is(err, errInput) {
		t.Errorf("Tour without stops: %v", err)
	}
	if _, err := w.Tour(nil, eps[0], eps[1:], time.Minute, monday, nil); !errors.Is(err, errInput) {
		t.Errorf("Tour with nil graph: %v", err)
	}
	if _, err := w.Tour(g, eps[0], eps[1:], -time.Minute, monday, nil); !errors.Is(err, errInput) {
		t.Errorf("Tour with negative service: %v", err)
	}
	if _, err := w.Tour(g, graph.Endpoint{}, eps[1:], time.Minute, monday, nil); err == nil {
		t.Error("Tour from an empty endpoint accepted")
	}
	for _, day := range []int{-1, 2} {
		if _, err := w.ProbeTrips(g, day, 10, rand.New(rand.NewPCG(1, 1))); !errors.Is(err, errInput) {
			t.Errorf("ProbeTrips day %d: %v", day, err)
		}
	}
	if _, err := RandomEndpointsWithin(g, 5, 0, 0, 100, rand.New(rand.NewPCG(1, 1))); !errors.Is(err, errInput) {
		t.Errorf("RandomEndpointsWithin far from the network: %v", err)
	}
}

// FuzzDrive feeds arbitrary paths, fractions and times to Drive and Pings:
// they must return an error or a consistent drive, never panic.
func FuzzDrive(f *testing.F) {
	f.Add(uint32(0), uint32(1), 0.2, 0.7, int64(8*3600), int64(15))
	f.Add(uint32(5), uint32(5), 0.9, 0.1, int64(-3600), int64(0))
	f.Add(uint32(1<<31), uint32(3), math.NaN(), 1.0, int64(1<<40), int64(-4))
	f.Fuzz(func(t *testing.T, a, b uint32, src, dst float64, at, every int64) {
		g := monaco(t)
		w := world(t, g, 2, func(c *Config) { c.IncidentRate = 20 })
		t0 := monday.Add(time.Duration(at) * time.Second)
		edges := []uint32{a}
		if a != b {
			edges = append(edges, b)
		}
		d, err := w.Drive(edges, src, dst, t0, rand.New(rand.NewPCG(1, 2)))
		if err != nil {
			return
		}
		if d.Arrive.Before(t0) {
			t.Fatalf("arrive %v before departure %v", d.Arrive, t0)
		}
		ps, err := w.Pings(d, "f", time.Duration(every)*time.Second, 3, rand.New(rand.NewPCG(3, 4)))
		if err == nil && len(ps) == 0 {
			t.Fatal("no pings for a valid drive")
		}
	})
}
