package eta

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/lastmile/lastmile/graph"
	"github.com/uber/h3-go/v4"
)

// etaToyEdge describes one edge of a test network: a straight road of
// length m metres heading east from (lat, lon).
type etaToyEdge struct {
	lat, lon float64
	m        float64
	ff       float64 // free-flow seconds
	class    graph.RoadClass
	way      int64
}

// etaToyNetwork builds a network with one separate two-node road per edge.
func etaToyNetwork(edges []etaToyEdge) *graph.Network {
	net := &graph.Network{}
	for _, e := range edges {
		n := uint32(len(net.Lat))
		dlon := e.m / (111320 * math.Cos(e.lat*math.Pi/180))
		net.Lat = append(net.Lat, e.lat, e.lat)
		net.Lon = append(net.Lon, e.lon, e.lon+dlon)
		net.OSMNode = append(net.OSMNode, 0, 0)
		net.Edges = append(net.Edges, graph.Edge{From: n, To: n + 1, Distance: e.m, Duration: e.ff, WayID: e.way, Class: e.class})
	}
	return net
}

// Porto, and a point about 5 km away (another resolution-8 cell).
const (
	etaLat, etaLon   = 41.1500, -8.6100
	etaLat2, etaLon2 = 41.1950, -8.6100
)

// etaCell returns the resolution-8 cell of edge e (test precondition checks).
func etaCell(net *graph.Network, e int) h3.Cell {
	lat, lon := edgeMid(net, e)
	return h3.LatLngToCell(h3.NewLatLng(lat, lon), DefaultH3Resolution)
}

// etaMonday is Monday 2026-01-05 00:00 UTC.
var etaMonday = time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)

func TestBinOf(t *testing.T) {
	plus1 := time.FixedZone("UTC+1", 3600)
	minus5 := time.FixedZone("UTC-5", -5*3600)
	tests := []struct {
		name string
		t    time.Time
		loc  *time.Location
		want int
	}{
		{"monday midnight", etaMonday, time.UTC, 0},
		{"monday 08:14:59", etaMonday.Add(8*time.Hour + 14*time.Minute + 59*time.Second), time.UTC, 32},
		{"monday 08:15", etaMonday.Add(8*time.Hour + 15*time.Minute), time.UTC, 33},
		{"friday 23:59", etaMonday.Add(4*24*time.Hour + 23*time.Hour + 59*time.Minute), time.UTC, 95},
		{"saturday 00:00", etaMonday.Add(5 * 24 * time.Hour), time.UTC, 96},
		{"sunday 23:59", etaMonday.Add(6*24*time.Hour + 23*time.Hour + 59*time.Minute), time.UTC, 191},
		{"monday 07:00 UTC is 08:00 at UTC+1", etaMonday.Add(7 * time.Hour), plus1, 32},
		{"sunday 23:30 UTC is monday 00:30 at UTC+1", etaMonday.Add(-30 * time.Minute), plus1, 2},
		{"monday 02:00 UTC is sunday 21:00 at UTC-5", etaMonday.Add(2 * time.Hour), minus5, 96 + 84},
		{"before 1970", time.Date(1969, 12, 27, 10, 0, 0, 0, time.UTC), time.UTC, 96 + 40}, // a Saturday
		{"other zone in time value", etaMonday.Add(8 * time.Hour).In(minus5), time.UTC, 32},
	}
	for _, tc := range tests {
		if got := binOf(tc.t, tc.loc); got != tc.want {
			t.Errorf("%s: binOf = %d, want %d", tc.name, got, tc.want)
		}
	}
}

// etaPattern is a synthetic time-of-day multiplier: rush hours on
// weekdays, a flat midday bump on weekends.
func etaPattern(bin int) float64 {
	q := float64(bin % BinsPerDay)
	if bin >= BinsPerDay {
		return 1.2 + 0.3*math.Exp(-(q-52)*(q-52)/200)
	}
	return 1.1 + 0.9*math.Exp(-(q-34)*(q-34)/20) + 0.7*math.Exp(-(q-72)*(q-72)/30)
}

// etaBinTime returns a time in bin b of the week starting at etaMonday
// (weekday bins on Monday to Friday, weekend bins on Saturday and Sunday),
// offset by k days (k weeks' worth of days cycling over the type).
func etaBinTime(b, k int, rng *rand.Rand) time.Time {
	day := k % 5
	if b >= BinsPerDay {
		day = 5 + k%2
	}
	q := b % BinsPerDay
	return etaMonday.Add(time.Duration(day)*24*time.Hour + time.Duration(q)*15*time.Minute + time.Duration(rng.IntN(900))*time.Second)
}

func TestFitProfileRecoversPattern(t *testing.T) {
	net := etaToyNetwork([]etaToyEdge{
		{etaLat, etaLon, 200, 20, graph.ClassPrimary, 1},
		{etaLat + 0.0005, etaLon, 200, 20, graph.ClassPrimary, 2},
		{etaLat + 0.001, etaLon, 300, 30, graph.ClassResidential, 3},
	})
	// Edge 0 follows the pattern, edge 1 is 1.5x slower, edge 2 has none.
	scale := []float64{1, 1.5}
	rng := rand.New(rand.NewPCG(1, 2))
	var obs []Observation
	for e := range 2 {
		for b := range NumBins {
			for k := range 20 {
				f := etaPattern(b) * scale[e] * math.Exp(0.1*rng.NormFloat64())
				if k%10 == 0 {
					f *= 20 // gross outliers: one in ten
				}
				obs = append(obs, Observation{Edge: uint32(e), Time: etaBinTime(b, k, rng), Duration: 20 * f})
			}
		}
	}
	p, err := FitProfile(net, obs, ProfileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	st := p.Stats()
	if st.Used+st.Implausible != len(obs) || st.Used < len(obs)*9/10 || st.Edges != 2 || st.Groups != 1 || st.Classes != 1 {
		t.Fatalf("stats %+v", st)
	}
	worst := 0.0
	for e := range 2 {
		for b := range NumBins {
			tm := etaBinTime(b, 0, rng)
			got := p.Factor(uint32(e), tm)
			want := etaPattern(b) * scale[e]
			worst = max(worst, math.Abs(got/want-1))
		}
	}
	// 18 inliers with 10 % noise: the midmean has a standard error of about
	// 3 %; shrinkage toward the pooled group costs a little more.
	if worst > 0.12 {
		t.Errorf("worst relative error %.3f", worst)
	}
	// Weekday and weekend differ where the pattern says so.
	if got := p.Factor(0, etaMonday.Add(8*time.Hour+30*time.Minute)); math.Abs(got-2.0) > 0.15 {
		t.Errorf("monday 08:30 factor %.3f, want about 2.0", got)
	}
	if got := p.Factor(0, etaMonday.Add(5*24*time.Hour+8*time.Hour+30*time.Minute)); math.Abs(got-1.2) > 0.1 {
		t.Errorf("saturday 08:30 factor %.3f, want about 1.2", got)
	}
	// The residential edge has no data and no residential aggregate.
	if got := p.Factor(2, etaMonday.Add(8*time.Hour)); got != 1 {
		t.Errorf("edge without data or aggregate: factor %v, want 1", got)
	}
}

// TestFitProfileShrinkage checks the hierarchy against the hand-computed
// estimates of a single observation (ratio 2 in bin 10) with MinSamples 1:
//
//	class: d = ln2/2;  bin 10: d + (ln2 - d)/2 = 0.75 ln2;  others 0.5 ln2
//	group: resid 0.25 ln2, d = 0.125 ln2;  bin 10: 0.875 + 0.0625 = 0.9375 ln2;  others 0.625 ln2
//	edge:  resid 0.0625 ln2, d = 0.03125 ln2;  bin 10: 0.96875 + 0.015625 = 0.984375 ln2;  others 0.65625 ln2
func TestFitProfileShrinkage(t *testing.T) {
	net := etaToyNetwork([]etaToyEdge{
		{etaLat, etaLon, 100, 10, graph.ClassSecondary, 1},            // observed
		{etaLat + 0.0003, etaLon, 100, 10, graph.ClassSecondary, 2},   // same cell and class
		{etaLat + 0.0003, etaLon, 100, 10, graph.ClassResidential, 3}, // same cell, other class
		{etaLat2, etaLon2, 100, 10, graph.ClassSecondary, 4},          // other cell, same class
	})
	if etaCell(net, 0) != etaCell(net, 1) || etaCell(net, 0) != etaCell(net, 2) || etaCell(net, 0) == etaCell(net, 3) {
		t.Fatal("test network cells are not as intended")
	}
	in10 := etaMonday.Add(10*15*time.Minute + time.Minute)
	other := etaMonday.Add(50 * 15 * time.Minute)
	p, err := FitProfile(net, []Observation{{Edge: 0, Time: in10, Duration: 20}}, ProfileOptions{MinSamples: 1})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		e    uint32
		t    time.Time
		exp  float64 // factor = 2^exp
	}{
		{"observed edge, observed bin", 0, in10, 0.984375},
		{"observed edge, other bin", 0, other, 0.65625},
		{"same cell and class, bin 10", 1, in10, 0.9375},
		{"same cell and class, other bin", 1, other, 0.625},
		{"other class", 2, in10, 0},
		{"other cell, same class", 3, in10, 0.75},
		{"other cell, same class, other bin", 3, other, 0.5},
		{"weekend bin 10 is another bin", 0, in10.Add(5 * 24 * time.Hour), 0.65625},
	}
	for _, tc := range tests {
		got := p.Factor(tc.e, tc.t)
		want := math.Pow(2, tc.exp)
		if math.Abs(got-want) > 1e-5 {
			t.Errorf("%s: factor %.6f, want %.6f", tc.name, got, want)
		}
	}
	var nilProfile *Profile
	if nilProfile.Factor(0, in10) != 1 || p.Factor(99, in10) != 1 {
		t.Error("nil profile or unknown edge: factor not 1")
	}
}

func TestFitProfileBadInput(t *testing.T) {
	net := etaToyNetwork([]etaToyEdge{{etaLat, etaLon, 100, 10, graph.ClassPrimary, 1}})
	net.Edges = append(net.Edges, graph.Edge{From: 0, To: 1, Distance: 100, Duration: 0}) // no free flow
	at := etaMonday.Add(time.Hour)
	obs := []Observation{
		{Edge: 0, Time: at, Duration: 15},          // good
		{Edge: 7, Time: at, Duration: 15},          // unknown edge
		{Edge: 1, Time: at, Duration: 15},          // edge without free flow
		{Edge: 0, Time: time.Time{}, Duration: 15}, // zero time
		{Edge: 0, Time: at, Duration: math.NaN()},
		{Edge: 0, Time: at, Duration: math.Inf(1)},
		{Edge: 0, Time: at, Duration: -3},
		{Edge: 0, Time: at, Duration: 0},
		{Edge: 0, Time: at, Duration: 1},    // 100 m/s
		{Edge: 0, Time: at, Duration: 1000}, // 100x free flow
	}
	p, err := FitProfile(net, obs, ProfileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := ProfileStats{Used: 1, UnknownEdge: 2, Invalid: 5, Implausible: 2, Edges: 1, Groups: 1, Classes: 1}
	if st := p.Stats(); st != want {
		t.Errorf("stats %+v, want %+v", st, want)
	}
	if _, err := FitProfile(nil, obs, ProfileOptions{}); err == nil {
		t.Error("nil network accepted")
	}
	if _, err := FitProfile(net, obs, ProfileOptions{MinSamples: -1}); err == nil {
		t.Error("negative MinSamples accepted")
	}
	if _, err := FitProfile(net, obs, ProfileOptions{H3Resolution: 16}); err == nil {
		t.Error("H3 resolution 16 accepted")
	}
	bad := etaToyNetwork([]etaToyEdge{{etaLat, etaLon, 100, 10, graph.ClassPrimary, 1}})
	bad.Edges[0].To = 9
	if _, err := FitProfile(bad, nil, ProfileOptions{}); err == nil {
		t.Error("edge to a missing node accepted")
	}
	// No observations: everything is free flow.
	p, err = FitProfile(net, nil, ProfileOptions{})
	if err != nil || p.Factor(0, at) != 1 {
		t.Errorf("empty fit: %v, factor %v", err, p.Factor(0, at))
	}
}
