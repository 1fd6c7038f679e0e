package bench

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestTrafficMonaco runs the traffic benchmark on the committed extract:
// customized routes must equal Dijkstra's, updates must reach routing
// over HTTP, and the route load must see no error.
func TestTrafficMonaco(t *testing.T) {
	rep, err := Traffic(TrafficConfig{Graph: filepath.Join("..", "datasets", "osm", "monaco.osm.pbf"), Updates: 500,
		Rounds: 2, Pairs: 300, HTTPDuration: 600 * time.Millisecond, Concurrency: 2, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Mismatches != 0 || rep.Checked == 0 {
		t.Fatalf("%d mismatches of %d", rep.Mismatches, rep.Checked)
	}
	if len(rep.Update) != 2 || rep.UpdateRanks[0] == 0 || rep.IncP50 <= 0 {
		t.Fatalf("incremental updates: %v, %v ranks, query p50 %v", rep.Update, rep.UpdateRanks, rep.IncP50)
	}
	if len(rep.HTTPLags) != 3 {
		t.Fatalf("%d of 3 updates applied", len(rep.HTTPLags))
	}
	for _, p := range rep.HTTP {
		if p.Errors > 0 || p.Requests == 0 {
			t.Fatalf("phase %s: %d errors of %d requests (%s)", p.Name, p.Errors, p.Requests, p.FirstError)
		}
	}
	var out bytes.Buffer
	WriteTraffic(&out, rep)
	if !strings.Contains(out.String(), "traffic: customize-p50") {
		t.Fatalf("report:\n%s", out.String())
	}
	if rep.ContractTime <= 0 {
		t.Fatal("contraction time of the prepared graph not reported")
	}
}
