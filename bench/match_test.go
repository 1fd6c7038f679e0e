package bench

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// TestMatchMonaco runs the matching benchmark on Monaco's dense streets
// (stacked roads, tunnels, hairpins) and fails when the accuracy
// collapses: at 10 s sampling and 5 m noise the matcher finds about 97 %
// of the true edges with as many of its edges true (eta's
// TestMatchAccuracy), so the floors leave room for seeds, not for a
// regression.
func TestMatchMonaco(t *testing.T) {
	g := etaGraph(t, "monaco.osm.pbf")
	start := time.Now()
	r, err := Match(MatchConfig{Graph: g, Trips: 120, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	WriteMatch(&buf, r)
	t.Logf("in %v:\n%s", time.Since(start), buf.String())
	if r.Trips != 120 || r.Pings < 120*5 {
		t.Fatalf("%d trips, %d pings", r.Trips, r.Pings)
	}
	if r.Recall() < 0.93 || r.Precision() < 0.93 {
		t.Errorf("true edges matched %.3f, matched edges true %.3f: want both >= 0.93", r.Recall(), r.Precision())
	}
	if r.Breaks > r.Trips/2 {
		t.Errorf("%d breaks in %d trips", r.Breaks, r.Trips)
	}
	last := strings.TrimSpace(buf.String())
	if i := strings.LastIndexByte(last, '\n'); i >= 0 {
		last = last[i+1:]
	}
	if !strings.HasPrefix(last, "match: edges-right ") || !strings.Contains(last, " pings/s ") {
		t.Errorf("last line %q", last)
	}
}

// TestMatchNoNoise: noiseless pings on the true roads must give nearly
// the true path. Measured 94.8 % of true edges matched, 99.3 % of matched
// edges true with the default matcher Sigma (10 m): the misses are short
// edges at junctions and the ambiguous ends of a trip (a ping at a node is
// on every edge that meets there).
func TestMatchNoNoise(t *testing.T) {
	g := etaGraph(t, "monaco.osm.pbf")
	r, err := Match(MatchConfig{Graph: g, Trips: 40, Sigma: -1, Seed: 2})
	if err != nil {
		t.Fatal(err)
	}
	if r.Recall() < 0.93 || r.Precision() < 0.97 {
		t.Errorf("noiseless: true edges matched %.3f, matched edges true %.3f", r.Recall(), r.Precision())
	}
}

func TestMatchBadConfig(t *testing.T) {
	if _, err := Match(MatchConfig{}); err == nil {
		t.Error("nil graph accepted")
	}
	g := etaGraph(t, "monaco.osm.pbf")
	for _, c := range []MatchConfig{
		{Graph: g, Trips: -1},
		{Graph: g, Interval: -time.Second},
		{Graph: g, Traces: "/nonexistent/traces.csv", Trips: 1},
		{Graph: g, Trips: 1, MinLength: 1e9},
	} {
		if _, err := Match(c); err == nil {
			t.Errorf("config %+v accepted", c)
		}
	}
}
