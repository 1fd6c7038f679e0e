package bench

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"
)

// TestHTTPShort runs the HTTP load test briefly on the committed Monaco
// extract: every request must succeed and the report end with its stable
// line.
func TestHTTPShort(t *testing.T) {
	path := filepath.Join("..", "datasets", "osm", "monaco.osm.pbf")
	if _, err := os.Stat(path); err != nil {
		t.Skipf("committed Monaco extract missing: %v", err)
	}
	rep, err := HTTP(HTTPConfig{Graph: path, Duration: 300 * time.Millisecond, Concurrency: 4, MaxRequests: 3000, TableSize: 5,
		SolveStops: 20, SolveTime: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Phases) != 4 {
		t.Fatalf("%d phases", len(rep.Phases))
	}
	for _, p := range rep.Phases {
		if p.Requests == 0 || p.Errors != 0 || p.P50 <= 0 || p.P99 < p.P50 || p.Max < p.P99 {
			t.Errorf("phase %+v", p)
		}
		if p.Requests > 3000+4 {
			t.Errorf("phase %s: %d requests over the bound", p.Name, p.Requests)
		}
	}
	if rep.HeapStart == 0 || rep.HeapEnd == 0 {
		t.Error("no heap figures")
	}
	var out bytes.Buffer
	WriteHTTP(&out, rep)
	last := regexp.MustCompile(`\nhttp: route rps [0-9]+ p50 [0-9.]+µs p99 [0-9.]+µs errors 0\n$`)
	if !last.Match(out.Bytes()) {
		t.Fatalf("report does not end with the stable line:\n%s", out.String())
	}
	if _, err := HTTP(HTTPConfig{Graph: path, Duration: time.Millisecond, Phases: []string{"nope"}}); err == nil {
		t.Error("unknown phase accepted")
	}
}
