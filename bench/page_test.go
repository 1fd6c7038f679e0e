package bench

import (
	"bytes"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestPageShort loads the tracking page twice on the committed Monaco
// extract (once throttled, once not) and checks that every figure came:
// paints, the map drawn, the live stream, bytes of each kind, and only
// loopback requests. It skips without Chromium unless
// LASTMILE_TEST_BROWSER_REQUIRED is set.
func TestPageShort(t *testing.T) {
	if _, err := os.Stat(DefaultChromium); err != nil {
		if os.Getenv("LASTMILE_TEST_BROWSER_REQUIRED") != "" {
			t.Fatalf("chromium is required (LASTMILE_TEST_BROWSER_REQUIRED) but %s is missing", DefaultChromium)
		}
		t.Skipf("no browser: %s is missing (apt-get install chromium)", DefaultChromium)
	}
	g := dispatchGraph(t, "monaco.osm.pbf")
	fast := PhoneSlow4G
	fast.Name, fast.Latency, fast.Down, fast.Up = "phone-throttled-short", 40*time.Millisecond, 4e6/8, 1e6/8
	res, err := Page(PageConfig{Graph: g, Runs: 1, Profiles: []PageProfile{fast, PhoneUnthrottled}, Timeout: 20 * time.Second,
		Quiet: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	for _, pr := range res.Profiles {
		l := pr.Loads[0]
		if l.TimedOut || l.FCP <= 0 || l.DCL <= 0 || l.Load <= 0 || l.Tiles4 <= 0 || l.MapDone <= 0 || l.Live <= 0 {
			t.Errorf("%s: missing times: %+v", pr.Profile.Name, l)
		}
		for _, k := range []string{"document", "stylesheet", "script", "tiles", "live"} {
			if l.BytesByKind[k] <= 0 || l.RequestsKind[k] <= 0 {
				t.Errorf("%s: no %s bytes (%d) or requests (%d)", pr.Profile.Name, k, l.BytesByKind[k], l.RequestsKind[k])
			}
		}
		for h := range l.Hosts {
			if !strings.HasPrefix(h, "127.0.0.1:") && h != "data:" {
				t.Errorf("%s: request to %q", pr.Profile.Name, h)
			}
		}
		t.Logf("%s: FCP %.0f ms, map %.0f ms, live %.0f ms, %d B in %d requests", pr.Profile.Name, l.FCP, l.MapDone, l.Live, l.Bytes, l.Requests)
	}
	var out bytes.Buffer
	WritePage(&out, res)
	if !strings.Contains(out.String(), "target (phone-throttled-short): first render") {
		t.Errorf("no target lines in the report:\n%s", out.String())
	}
	if testing.Verbose() {
		t.Log("\n" + out.String())
	}
}

// TestPageTilesShort measures the tiles of Monaco's centre briefly: every
// tile answered, latencies ordered, and (with wrk installed) the wrk
// passes counted.
func TestPageTilesShort(t *testing.T) {
	g := dispatchGraph(t, "monaco.osm.pbf")
	res, err := PageTiles(PageTilesConfig{Graph: g, Zooms: []int{14, 16}, Conns: 8, Duration: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Index) < 2 || res.Index[0] <= 0 {
		t.Errorf("index times %v", res.Index)
	}
	if _, err := exec.LookPath("wrk"); err == nil && res.Seed <= 0 {
		t.Errorf("seed time %v with wrk installed", res.Seed)
	}
	_, wrkErr := exec.LookPath("wrk")
	for _, z := range res.Zooms {
		for name, l := range map[string]PageTileLatency{"cold x1": z.Cold1, "cold x8": z.ColdConns} {
			if l.Requests != z.Tiles || l.Errors != 0 || l.P50 <= 0 || l.P99 < l.P50 || l.Max < l.P99 || l.SizeMedian <= 0 {
				t.Errorf("z%d %s: %+v (%d tiles)", z.Z, name, l, z.Tiles)
			}
		}
		if wrkErr == nil && (z.ColdWrk.Requests < z.Tiles/2 || z.Seeded.Requests < z.Tiles/2 || z.Seeded.Errors != 0 ||
			z.Warm.Requests == 0 || z.Warm.Errors != 0 || z.Warm.RPS <= 0) {
			t.Errorf("z%d wrk: cold %+v seeded %+v warm %+v", z.Z, z.ColdWrk, z.Seeded, z.Warm)
		}
	}
	var out bytes.Buffer
	WritePageTiles(&out, res)
	if !strings.Contains(out.String(), "target: tile p99 < 20ms at z14-16") {
		t.Errorf("report:\n%s", out.String())
	}
}
