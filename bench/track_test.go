package bench

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestTrackMonaco opens 50 tracking pages on 5 vans pinging every second
// for 4 s: every page must see every accepted ping, and the figures must
// follow from the latencies.
func TestTrackMonaco(t *testing.T) {
	if testing.Short() {
		t.Skip("opens a server and 50 live streams")
	}
	g := dispatchGraph(t, "monaco.osm.pbf")
	r, err := Track(TrackConfig{Graph: g, Pages: 50, Vans: 5, Period: time.Second, Duration: 4 * time.Second, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + r.String())
	if r.Connected != 50 || r.ConnectFailed != 0 || r.Ended != 0 {
		t.Fatalf("%d pages connected, %d failed, %d ended: %s", r.Connected, r.ConnectFailed, r.Ended, r.FirstError)
	}
	if r.Pings < 15 || r.Pings > 25 || r.Accepted != r.Pings {
		t.Errorf("%d pings posted, %d accepted; want 20 (5 vans, 4 s, 1 s apart), all accepted", r.Pings, r.Accepted)
	}
	if r.Expected != 10*r.Accepted || r.Seen != r.Expected || r.Missing != 0 {
		t.Errorf("expected %d updates (10 pages per van), seen %d, missing %d", r.Expected, r.Seen, r.Missing)
	}
	for i, n := range r.PerPage {
		if n != r.PerPageExpected[i] || n == 0 {
			t.Errorf("page %d saw %d of its %d updates", i, n, r.PerPageExpected[i])
		}
	}
	// The figures are the latencies'.
	if len(r.Latencies) != r.Seen || !slices.IsSorted(r.Latencies) {
		t.Fatalf("%d latencies (sorted: %v) for %d updates seen", len(r.Latencies), slices.IsSorted(r.Latencies), r.Seen)
	}
	n := len(r.Latencies)
	if r.P50 != r.Latencies[n/2] || r.P90 != r.Latencies[n*9/10] || r.P99 != r.Latencies[n*99/100] || r.Max != r.Latencies[n-1] {
		t.Errorf("quantiles %v/%v/%v/%v do not match the latencies", r.P50, r.P90, r.P99, r.Max)
	}
	within := 0
	for _, l := range r.Latencies {
		if l <= 0 {
			t.Fatalf("latency %v: an update seen before its ping was posted", l)
		}
		if l <= r.Target {
			within++
		}
	}
	if r.Within != within || r.Target != 2*time.Second {
		t.Errorf("within %v: %d, want %d", r.Target, r.Within, within)
	}
	if r.Frames < int64(r.Seen-r.Coalesced) || r.FramesPerSec != float64(r.Frames)/r.Elapsed.Seconds() || r.Elapsed < 4*time.Second {
		t.Errorf("%d frames in %v (%v/s) for %d updates seen", r.Frames, r.Elapsed, r.FramesPerSec, r.Seen)
	}
	if r.CPU <= 0 || r.RSS <= 0 || r.PingP50 <= 0 || r.PingP99 < r.PingP50 {
		t.Errorf("CPU %v, RSS %d, ping p50 %v p99 %v", r.CPU, r.RSS, r.PingP50, r.PingP99)
	}
	seen, pings := 0, 0
	for _, s := range r.Slots {
		seen += s.Seen
		pings += s.Pings
	}
	if len(r.Slots) != 4 || seen != r.Seen || pings != r.Accepted {
		t.Errorf("%d slots hold %d updates and %d pings, want 4 holding %d and %d", len(r.Slots), seen, pings, r.Seen, r.Accepted)
	}
	if want := fmt.Sprintf("updates %d/%d missing 0", r.Seen, r.Expected); !r.Met() || !strings.Contains(r.Summary(), want) {
		t.Errorf("target met %v, summary %q (want %q in it)", r.Met(), r.Summary(), want)
	}
}

func TestLatencyFigures(t *testing.T) {
	var lat []time.Duration
	for i := 100; i >= 1; i-- {
		lat = append(lat, time.Duration(i)*100*time.Millisecond) // 0.1 s .. 10 s
	}
	p50, p90, p99, mx, within := latencyFigures(lat, 2*time.Second)
	if p50 != 5100*time.Millisecond || p90 != 9100*time.Millisecond || p99 != 10*time.Second || mx != 10*time.Second || within != 20 {
		t.Errorf("got p50 %v p90 %v p99 %v max %v within %d", p50, p90, p99, mx, within)
	}
	if _, _, _, _, w := latencyFigures(nil, time.Second); w != 0 {
		t.Errorf("no latencies: within %d", w)
	}
}

func TestVanTime(t *testing.T) {
	for _, c := range []struct {
		line      string
		t         int64
		shown, ok bool
	}{
		{`data: {"status":"out_for_delivery","timeline":[{"label":"x","time":"10:00"}],"view":{"tracking":"T","time_window":[1,2],"van":{"location":[7.4,43.7],"time":1765000000,"path":[[7.4,43.7]]},"events":[{"type":"a","time":5}]}}`, 1765000000, true, true},
		{`data: {"status":"planned","view":{"tracking":"T","van":null,"events":[{"type":"a","time":5}]}}`, 0, false, true},
		{`data: {"status":"planned","view":{"tracking":"T","van":{"location":[7.4,43.7],"time":17650`, 0, false, false}, // cut
		{`data: {"headline":"\"van\":{\"time\":1}"}`, 0, false, false},
	} {
		tm, shown, ok := vanTime([]byte(c.line))
		if tm != c.t || shown != c.shown || ok != c.ok {
			t.Errorf("%s: got %d %v %v, want %d %v %v", c.line, tm, shown, ok, c.t, c.shown, c.ok)
		}
	}
}
