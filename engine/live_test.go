package engine

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lastmile/lastmile/eta"
	"github.com/lastmile/lastmile/graph"
)

// fakeClock is a settable clock for LiveConfig.Now.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// startLive starts a test server with live traffic on a fake clock and
// waits until traffic reaches routing.
func startLive(t *testing.T) (*testServer, *fakeClock) {
	t.Helper()
	clock := &fakeClock{t: time.Unix(1767261600, 0)}
	ts := startServer(t, ServerConfig{Live: LiveConfig{Now: clock.Now, Refresh: 20 * time.Millisecond,
		MinInterval: time.Millisecond, Horizon: 10 * time.Minute}})
	deadline := time.Now().Add(30 * time.Second)
	for !ts.live.Ready() {
		if time.Now().After(deadline) {
			t.Fatal("customizable hierarchy not built within 30 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	return ts, clock
}

// routeDuration asks GET /v1/route for the duration between two points.
func (ts *testServer) routeDuration(t *testing.T, a, b LonLat) float64 {
	t.Helper()
	ans := ts.do(t, "GET", "/v1/route/"+coordPath([]LonLat{a, b})+"?overview=false", nil)
	if ans.status != 200 {
		t.Fatalf("route: %d %s", ans.status, ans.body)
	}
	var rr struct {
		Routes []struct{ Duration float64 }
	}
	if err := json.Unmarshal(ans.body, &rr); err != nil || len(rr.Routes) != 1 {
		t.Fatalf("route answer %s: %v", ans.body, err)
	}
	return rr.Routes[0].Duration
}

// currentRoute returns the route the server's current graph takes.
func (ts *testServer) currentRoute(t *testing.T, a, b LonLat) graph.Route {
	t.Helper()
	eps, _, err := ts.R.Snap([]LonLat{a, b})
	if err != nil {
		t.Fatal(err)
	}
	r, err := ts.R.Current().NewQuery().Route(eps[0], eps[1])
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// waitUpdates waits until the update loop applied n more updates.
func (ts *testServer) waitUpdates(t *testing.T, n uint64) {
	t.Helper()
	target := ts.live.updates.Load() + n
	deadline := time.Now().Add(10 * time.Second)
	for ts.live.updates.Load() < target {
		if time.Now().After(deadline) {
			t.Fatal("traffic refresh did not run")
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// longRoute picks two road points whose route has at least 8 edges.
func longRoute(t *testing.T, ts *testServer) (LonLat, LonLat, graph.Route) {
	t.Helper()
	for seed := uint64(1); seed < 50; seed++ {
		pts := roadPoints(ts.R, 2, seed)
		r := ts.currentRoute(t, pts[0], pts[1])
		if len(r.Edges) >= 8 {
			return pts[0], pts[1], r
		}
	}
	t.Fatal("no long route found")
	return LonLat{}, LonLat{}, graph.Route{}
}

// TestLiveIncidentReroutesAndClears closes the roads of a route: the next
// query avoids them; once the closure ends and the live horizon has
// passed, the route returns to the free-flow one. The same for a jam
// reported as a speed.
func TestLiveIncidentReroutesAndClears(t *testing.T) {
	ts, clock := startLive(t)
	a, b, r0 := longRoute(t, ts)
	d0 := ts.routeDuration(t, a, b)
	if math.Abs(d0-r0.Duration) > 0.05 {
		t.Fatalf("free-flow route %v s over HTTP, %v s on the graph", d0, r0.Duration)
	}
	road := ts.R.G.Road
	mid := r0.Edges[len(r0.Edges)/2]
	way := road.Edges[mid].WayID
	wayEdges := map[uint32]bool{}
	for e, ed := range road.Edges {
		if ed.WayID == way {
			wayEdges[uint32(e)] = true
		}
	}

	for _, tc := range []struct {
		name string
		body string
		wait time.Duration // clock advance until normal again
	}{
		{"closure", fmt.Sprintf(`{"observations":[],"closures":[{"way_id":%d,"until":%d}]}`, way, clock.Now().Unix()+300), 6 * time.Minute},
		{"jam", fmt.Sprintf(`{"observations":[{"way_id":%d,"speed":1}]}`, way), 11 * time.Minute},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ans := ts.do(t, "POST", "/v1/traffic?wait=true", []byte(tc.body))
			if ans.status != 200 {
				t.Fatalf("traffic: %d %s", ans.status, ans.body)
			}
			var tr TrafficResponse
			if err := json.Unmarshal(ans.body, &tr); err != nil || tr.Accepted != 1 || !tr.Applied {
				t.Fatalf("traffic answer %s (%v)", ans.body, err)
			}
			d1 := ts.routeDuration(t, a, b)
			r1 := ts.currentRoute(t, a, b)
			for _, e := range r1.Edges[1 : len(r1.Edges)-1] {
				if wayEdges[e] {
					t.Fatalf("route still uses way %d (edge %d) after the %s", way, e, tc.name)
				}
			}
			if d1 <= d0 {
				t.Fatalf("route after the %s takes %v s, before %v s", tc.name, d1, d0)
			}
			clock.Advance(tc.wait)
			ts.waitUpdates(t, 2)
			if d2 := ts.routeDuration(t, a, b); d2 != d0 {
				t.Fatalf("after the %s cleared and the horizon passed: %v s, want the free-flow %v s", tc.name, d2, d0)
			}
		})
	}
	// The metrics report the updates.
	m := ts.do(t, "GET", "/metrics", nil)
	for _, name := range []string{"lastmile_traffic_updates_total", "lastmile_traffic_update_lag_seconds", "lastmile_traffic_ready 1"} {
		if !strings.Contains(string(m.body), name) {
			t.Errorf("metrics lack %s", name)
		}
	}
}

// pingsAlong returns pings every interval along a route's geometry at
// speed m/s.
func pingsAlong(r graph.Route, vehicle string, t0 time.Time, speed float64, interval time.Duration) []Position {
	var out []Position
	step := speed * interval.Seconds()
	travelled, next := 0.0, 0.0
	at := t0
	for i := 1; i < len(r.Geometry); i++ {
		p, q := r.Geometry[i-1], r.Geometry[i]
		seg := graph.Haversine(p.Lat, p.Lon, q.Lat, q.Lon)
		for next <= travelled+seg {
			f := 0.0
			if seg > 0 {
				f = (next - travelled) / seg
			}
			out = append(out, Position{Vehicle: vehicle, Time: float64(at.Unix()),
				Location: LonLat{p.Lon + f*(q.Lon-p.Lon), p.Lat + f*(q.Lat-p.Lat)}})
			at = at.Add(interval)
			next += step
		}
		travelled += seg
	}
	return out
}

// atNode reports whether p is one of the route's geometry points.
func atNode(r graph.Route, p LonLat) bool {
	for _, g := range r.Geometry {
		if graph.Haversine(g.Lat, g.Lon, p[1], p[0]) < 1 {
			return true
		}
	}
	return false
}

// standAt inserts, after the first ping within 15 m of each stop (in
// order), pings standing there for stand, every interval, moving the
// later pings on by as much.
func standAt(pings []Position, stops []LonLat, stand, interval time.Duration) []Position {
	var out []Position
	shift := 0.0
	k := 0
	for _, p := range pings {
		p.Time += shift
		out = append(out, p)
		if k < len(stops) && graph.Haversine(p.Location[1], p.Location[0], stops[k][1], stops[k][0]) < 15 {
			for t := interval; t <= stand; t += interval {
				q := p
				q.Time += t.Seconds()
				out = append(out, q)
			}
			shift += stand.Seconds()
			k++
		}
	}
	return out
}

func TestLivePositionsAndETA(t *testing.T) {
	ts, clock := startLive(t)
	a, b, r := longRoute(t, ts)
	now := clock.Now()
	pings := pingsAlong(r, "van-1", now.Add(-20*time.Minute), 8, 5*time.Second)
	if len(pings) < 6 {
		t.Fatalf("only %d pings along the route", len(pings))
	}
	post := func(ps []Position) PositionsResponse {
		t.Helper()
		ans := ts.do(t, "POST", "/v1/positions", mustJSON(PositionsRequest{Positions: ps}))
		if ans.status != 200 {
			t.Fatalf("positions: %d %s", ans.status, ans.body)
		}
		var pr PositionsResponse
		if err := json.Unmarshal(ans.body, &pr); err != nil {
			t.Fatal(err)
		}
		return pr
	}
	// The dispatcher asks for the van's ETAs at departure: a stop half way
	// and the end. Its pings then pass the first stop.
	mid := pings[len(pings)/2].Location // a point along an edge, mostly
	start := time.Unix(int64(pings[0].Time), 0)
	if a := ts.do(t, "POST", "/v1/eta", mustJSON(map[string]any{"vehicle": "van-1", "location": a, "time": start.Unix(),
		"stops": []any{map[string]any{"location": mid}, map[string]any{"location": b}}})); a.status != 200 {
		t.Fatalf("eta at departure: %d %s", a.status, a.body)
	}
	// The van stands at each stop for half a minute (a pass is no
	// arrival: Live waits for StopDwell).
	pings = standAt(pings, []LonLat{mid, b}, 30*time.Second, 5*time.Second)
	// Two batches, as a tracker would send them.
	half := len(pings) / 2
	p1, p2 := post(pings[:half]), post(pings[half:])
	if got := p1.Accepted + p2.Accepted; got < len(pings)*9/10 {
		t.Fatalf("accepted %d of %d clean pings (%+v %+v)", got, len(pings), p1, p2)
	}
	if p1.Traversals+p2.Traversals == 0 {
		t.Fatalf("no traversal observed from %d pings", len(pings))
	}
	if st := ts.live.traffic.Stats(); st.Accepted == 0 {
		t.Fatalf("traffic received nothing: %+v", st)
	}
	// Standing half a minute at the stop half way is service, not
	// traffic: that edge's traversal teaches the model nothing (unless
	// the ping the van stands at is a node).
	if n := p1.Rejected["traversal_stand"] + p2.Rejected["traversal_stand"]; n < 1 && !atNode(r, mid) {
		t.Errorf("%d traversals rejected as a stand, want the one of the stop half way (%+v %+v)", n, p1.Rejected, p2.Rejected)
	}
	if p1.Arrivals+p2.Arrivals != 2 {
		t.Fatalf("%d stops reached, want both", p1.Arrivals+p2.Arrivals)
	}
	if ts.live.cal.Len() == 0 {
		t.Fatal("the calibrator learned nothing from the arrivals")
	}
	ts.live.mu.Lock()
	legs := ts.live.vehicles["van-1"].progress.Len()
	ts.live.mu.Unlock()
	if legs != 1 {
		t.Fatalf("the van's progress holds %d legs, want the one predicted at departure", legs)
	}
	if a := ts.do(t, "GET", "/v1/eta/van-1", nil); a.status != 404 {
		t.Fatalf("re-estimate with every stop reached: %d %s, want 404", a.status, a.body)
	}

	// Bad pings are counted by reason, the good one in the batch kept.
	last := pings[len(pings)-1]
	bad := []Position{
		{Vehicle: "", Time: last.Time + 10, Location: last.Location},
		{Vehicle: "van-1", Time: last.Time + 10, Location: LonLat{7.42, 95}},
		{Vehicle: "van-1", Time: last.Time - 100, Location: last.Location},
		{Vehicle: "van-2", Time: last.Time, Location: LonLat{7.50, 43.70}}, // in the sea
		{Vehicle: "van-1", Time: last.Time + 20, Location: last.Location},
	}
	pr := post(bad)
	want := map[string]int{"unknown_vehicle": 1, "bad_coordinate": 1, "out_of_order": 1, "off_map": 1}
	for k, n := range want {
		if pr.Rejected[k] != n {
			t.Errorf("rejected[%s] = %d, want %d (%+v)", k, pr.Rejected[k], n, pr.Rejected)
		}
	}
	if pr.Accepted != 1 {
		t.Errorf("accepted %d of the batch, want 1: %+v", pr.Accepted, pr)
	}

	// ETA from an explicit location: arrivals follow the route durations.
	c := roadPoints(ts.R, 1, 77)[0]
	etaReq := map[string]any{"location": a, "time": now.Unix(), "stops": []any{
		map[string]any{"id": "s1", "location": b, "service": 120},
		map[string]any{"id": "s2", "location": c, "service": 60,
			"time_windows": [][2]int64{{now.Unix() + 7200, now.Unix() + 9000}}},
	}}
	ans := ts.do(t, "POST", "/v1/eta", mustJSON(etaReq))
	if ans.status != 200 {
		t.Fatalf("eta: %d %s", ans.status, ans.body)
	}
	var er ETAResponse
	if err := json.Unmarshal(ans.body, &er); err != nil || len(er.Stops) != 2 {
		t.Fatalf("eta answer %s: %v", ans.body, err)
	}
	s1, s2 := er.Stops[0], er.Stops[1]
	if d := float64(s1.Arrival - now.Unix()); math.Abs(d-r.Duration) > 1.5 {
		t.Errorf("first arrival %v s after now, route takes %v s", d, r.Duration)
	}
	if s1.Departure != s1.Arrival+120 {
		t.Errorf("departure %d, want arrival %d + 120", s1.Departure, s1.Arrival)
	}
	if start := float64(s2.Arrival) + s2.Waiting; s2.Waiting <= 0 || math.Abs(start-float64(now.Unix()+7200)) > 1 || s2.Departure != now.Unix()+7200+60 {
		t.Errorf("second stop: arrival %d + waiting %v s = %v, want the window start %d; departure %d", s2.Arrival, s2.Waiting, start, now.Unix()+7200, s2.Departure)
	}
	if s1.P10 > s1.Arrival || s1.P90 < s1.Arrival {
		t.Errorf("interval [%d, %d] does not hold arrival %d", s1.P10, s1.P90, s1.Arrival)
	}

	// By vehicle: its last matched position; then re-estimated by id.
	ans = ts.do(t, "POST", "/v1/eta", mustJSON(map[string]any{"vehicle": "van-1", "time": now.Unix(),
		"stops": []any{map[string]any{"id": "back", "location": a}}}))
	if ans.status != 200 {
		t.Fatalf("eta by vehicle: %d %s", ans.status, ans.body)
	}
	var byVehicle ETAResponse
	if err := json.Unmarshal(ans.body, &byVehicle); err != nil {
		t.Fatal(err)
	}
	// The vehicle and its last matched position: the same start, on the
	// matched edge; another location is snapped.
	ts.live.mu.Lock()
	v := ts.live.vehicles["van-1"]
	ts.live.mu.Unlock()
	v.mu.Lock()
	lastLL, pos := v.posLL, *v.pos
	ep, found := v.matchedAt(lastLL)
	_, other := v.matchedAt(LonLat{lastLL[0] + 1e-6, lastLL[1]})
	v.mu.Unlock()
	if !found || ep != pos {
		t.Errorf("matchedAt(last matched position) = %+v %v, want %+v", ep, found, pos)
	}
	if other {
		t.Error("matchedAt found a position the vehicle was not matched at")
	}
	ans = ts.do(t, "POST", "/v1/eta", mustJSON(map[string]any{"vehicle": "van-1", "location": lastLL, "time": now.Unix(),
		"stops": []any{map[string]any{"id": "back", "location": a}}}))
	var withLocation ETAResponse
	if err := json.Unmarshal(ans.body, &withLocation); ans.status != 200 || err != nil || len(withLocation.Stops) != 1 {
		t.Fatalf("eta by vehicle and its position: %d %s", ans.status, ans.body)
	}
	if withLocation.Stops[0].Arrival != byVehicle.Stops[0].Arrival {
		t.Errorf("eta from the vehicle's matched position: arrival %d, by the vehicle alone %d", withLocation.Stops[0].Arrival, byVehicle.Stops[0].Arrival)
	}
	ans = ts.do(t, "GET", "/v1/eta/van-1", nil)
	if ans.status != 200 {
		t.Fatalf("GET eta by vehicle: %d %s", ans.status, ans.body)
	}
	if err := json.Unmarshal(ans.body, &er); err != nil || len(er.Stops) != 1 || er.Stops[0].ID != "back" {
		t.Fatalf("re-estimate %s: %v", ans.body, err)
	}
	if a := ts.do(t, "GET", "/v1/eta/nobody", nil); a.status != 404 {
		t.Errorf("unknown vehicle: %d %s", a.status, a.body)
	}

	for _, tc := range []struct {
		body   any
		status int
		code   string
	}{
		{map[string]any{"location": a, "stops": []any{}}, 400, "InvalidQuery"},
		{map[string]any{"vehicle": "nobody", "stops": []any{map[string]any{"location": b}}}, 404, "NotFound"},
		{map[string]any{"location": a, "mode": "psychic", "stops": []any{map[string]any{"location": b}}}, 400, "InvalidValue"},
		{map[string]any{"location": a, "stops": []any{map[string]any{"location": []float64{7.50, 43.70}}}}, 422, "NoSegment"},
		{map[string]any{"location": a, "stops": []any{map[string]any{"location": b, "service": -1}}}, 400, "InvalidValue"},
		{map[string]any{"location": a, "stops": []any{map[string]any{"location": b, "time_windows": [][2]int{{10, 5}}}}}, 400, "InvalidValue"},
		{"not an object", 400, "InvalidQuery"},
	} {
		ans := ts.do(t, "POST", "/v1/eta", mustJSON(tc.body))
		var e Error
		_ = json.Unmarshal(ans.body, &e)
		if ans.status != tc.status || e.Code != tc.code {
			t.Errorf("eta %v: %d %s, want %d %s", tc.body, ans.status, ans.body, tc.status, tc.code)
		}
	}
}

func TestLiveTrafficErrors(t *testing.T) {
	ts, _ := startLive(t)
	for _, tc := range []struct {
		body   string
		status int
		code   string
	}{
		{`{"observations":[{"speed":10}]}`, 400, "InvalidQuery"},
		{`{"observations":[{"edge":1,"way_id":2,"speed":10}]}`, 400, "InvalidQuery"},
		{`{"observations":[{"edge":1}]}`, 400, "InvalidQuery"},
		{`{"observations":[{"way_id":1,"duration":10}]}`, 400, "InvalidQuery"},
		{`{"observations":[{"edge":1,"speed":10,"time":-5}]}`, 400, "InvalidValue"},
		{`{"observations":[{"edge":"one","speed":10}]}`, 400, "InvalidQuery"},
		{`{"observations":[],"closures":[{"edge":1}]}`, 400, "InvalidQuery"},
		{`{"observations":[],"closures":[{"edge":1,"until":1e300}]}`, 400, "InvalidValue"},
		{`{"observations":[], "extra": 1}`, 400, "InvalidQuery"},
		{`{"observations":[`, 400, "InvalidQuery"},
	} {
		ans := ts.do(t, "POST", "/v1/traffic", []byte(tc.body))
		var e Error
		_ = json.Unmarshal(ans.body, &e)
		if ans.status != tc.status || e.Code != tc.code {
			t.Errorf("traffic %s: %d %s, want %d %s", tc.body, ans.status, ans.body, tc.status, tc.code)
		}
	}
	// Entries the model rejects are counted, not fatal.
	ans := ts.do(t, "POST", "/v1/traffic", []byte(`{"observations":[{"edge":4000000000,"speed":10},{"way_id":-7,"speed":10},{"edge":0,"speed":0.0001},{"edge":0,"speed":30}]}`))
	if ans.status != 200 {
		t.Fatalf("traffic: %d %s", ans.status, ans.body)
	}
	var tr TrafficResponse
	if err := json.Unmarshal(ans.body, &tr); err != nil {
		t.Fatal(err)
	}
	if tr.Accepted != 1 || tr.Rejected["unknown_edge"] != 1 || tr.Rejected["unknown_way"] != 1 || tr.Rejected["implausible"] != 1 {
		t.Errorf("answer %+v", tr)
	}
}

func TestCarryPending(t *testing.T) {
	stop := func(name byte) ETAStop { return ETAStop{Location: LonLat{float64(name), 0}} }
	list := func(names string) []ETAStop {
		out := make([]ETAStop, len(names))
		for i := range names {
			out[i] = stop(names[i])
		}
		return out
	}
	t0 := time.Unix(1_767_600_000, 0)
	tests := []struct {
		name, old, req string
		want           []int // predictions carried per requested stop (the old stop at index i holds i+1)
	}{
		{"served stop gone from the front", "ABC", "BC", []int{2, 3}},
		{"the stop being served still listed first", "BC", "ABC", []int{0, 1, 2}},
		{"a stop added at the end", "AB", "ABE", []int{1, 2, 0}},
		{"re-route: B and C swapped", "ABCD", "ACBD", []int{1, 0, 0, 0}},
		{"re-route after a served stop", "ABCD", "BDC", []int{2, 0, 0}},
		{"nothing in common", "AB", "CD", []int{0, 0}},
	}
	for _, tc := range tests {
		old := list(tc.old)
		pend := make([]eta.Pending, len(old))
		for i := range pend {
			for k := range i + 1 {
				pend[i].Add(t0.Add(time.Duration(k)*time.Hour), t0.Add(48*time.Hour))
			}
		}
		got := carryPending(old, pend, list(tc.req))
		for j, p := range got {
			if p.Len() != tc.want[j] {
				t.Errorf("%s: stop %c carries %d predictions, want %d", tc.name, tc.req[j], p.Len(), tc.want[j])
			}
		}
	}
}

// TestStood checks which runs of pings make a stand: at a stop for the
// dwell, or anywhere for parkDwell within parkRadius, inside the
// traversal's time only.
func TestStood(t *testing.T) {
	t0 := time.Unix(1767261600, 0)
	stop := LonLat{7.4200, 43.7300}
	const mPerDegLat = 111_195.0
	// at returns a ping north of the stop by metres, s seconds after t0.
	at := func(s int, metres float64) eta.Ping {
		return eta.Ping{Time: t0.Add(time.Duration(s) * time.Second), Lat: stop[1] + metres/mPerDegLat, Lon: stop[0]}
	}
	// run returns pings every step seconds from s0 to s1 moving speed m/s
	// from metres north of the stop, with a ±jitter metre zigzag.
	run := func(s0, s1, step int, metres, speed, jitter float64) []eta.Ping {
		var out []eta.Ping
		for s, k := s0, 0; s <= s1; s, k = s+step, k+1 {
			j := jitter
			if k%2 == 1 {
				j = -jitter
			}
			out = append(out, at(s, metres+speed*float64(s-s0)+j))
		}
		return out
	}
	cat := func(parts ...[]eta.Ping) []eta.Ping { return slices.Concat(parts...) }
	stops := []LonLat{stop}
	for _, tc := range []struct {
		name        string
		pings       []eta.Ping
		enter, exit int
		want        bool
	}{
		{"drives past the stop", run(0, 120, 5, -600, 10, 3), 0, 120, false},
		{"serves the stop four minutes", cat(run(0, 55, 5, -400, 6, 0), run(60, 300, 10, 5, 0, 8), run(305, 360, 5, 60, 6, 0)), 0, 360, true},
		{"the stand is before the traversal", cat(run(0, 240, 10, 5, 0, 8), run(245, 400, 5, 60, 6, 0)), 250, 400, false},
		{"the stand is after the traversal", cat(run(0, 55, 5, -400, 6, 0), run(60, 300, 10, 5, 0, 8)), 0, 50, false},
		{"stands 15 s at the stop", cat(run(0, 55, 5, -400, 6, 0), run(60, 75, 5, 5, 0, 8), run(80, 140, 5, 60, 6, 0)), 0, 140, false},
		{"passes the stop at 5 m/s", run(0, 60, 5, -100, 5, 3), 0, 60, false},
		{"stands 20 s at the stop", cat(run(0, 55, 5, -400, 6, 0), run(60, 80, 5, 5, 0, 8), run(85, 140, 5, 60, 6, 0)), 0, 140, true},
		{"parked 3 min away from stops", cat(run(0, 55, 5, -900, 6, 0), run(60, 240, 10, -500, 0, 6), run(245, 300, 5, -490, 6, 0)), 0, 300, true},
		{"waits 2 min at a signal", cat(run(0, 55, 5, -900, 6, 0), run(60, 180, 10, -500, 0, 6), run(185, 300, 5, -490, 6, 0)), 0, 300, false},
		{"crawls in a jam", run(0, 300, 10, -900, 0.3, 4), 0, 300, false},
		{"no pings", nil, 0, 300, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := stood(tc.pings, t0.Add(time.Duration(tc.enter)*time.Second), t0.Add(time.Duration(tc.exit)*time.Second), stops, 45, 20*time.Second)
			if got != tc.want {
				t.Errorf("stood = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestMatchedAtRing checks that a vehicle keeps the matched positions of
// its latest recentPings pings only.
func TestMatchedAtRing(t *testing.T) {
	var v vehicle
	for i := range recentPings + 4 {
		v.recent[v.recentN%recentPings] = matchedPos{LonLat{float64(i), 1}, graph.EdgePoint{Edge: uint32(i), Fraction: 0.5}}
		v.recentN++
	}
	for i := range recentPings + 4 {
		ep, ok := v.matchedAt(LonLat{float64(i), 1})
		if want := i >= 4; ok != want || (ok && ep.Edge != uint32(i)) {
			t.Errorf("ping %d: matchedAt = %+v %v, want found %v", i, ep, ok, want)
		}
	}
}

// TestETATurnsRoundAtClosure closes every road leaving the end of the edge
// a van drives on but the way back: the edge-based graph forbids that
// U-turn (the node is no dead end), so no route leaves the van's matched
// edge in its direction. The ETA starts from the edges near the van in
// both directions instead, as a driver turning round would, and answers.
func TestETATurnsRoundAtClosure(t *testing.T) {
	ts, clock := startLive(t)
	road := ts.R.G.Road
	_, b, r := longRoute(t, ts)
	pings := pingsAlong(r, "van-1", clock.Now().Add(-10*time.Minute), 8, 5*time.Second)
	// The van stops part way, on a two-way edge whose end has other exits.
	var last Position
	var ep graph.EdgePoint
	var exits []uint32
	for k := len(pings) / 3; k < len(pings)*2/3 && exits == nil; k++ {
		if ans := ts.do(t, "POST", "/v1/positions", mustJSON(PositionsRequest{Positions: pings[:k+1]})); ans.status != 200 {
			t.Fatalf("positions: %d %s", ans.status, ans.body)
		}
		last = pings[k]
		ts.live.mu.Lock()
		v := ts.live.vehicles["van-1"]
		ts.live.mu.Unlock()
		v.mu.Lock()
		var ok bool
		ep, ok = v.matchedAt(last.Location)
		v.mu.Unlock()
		if !ok {
			continue
		}
		e := road.Edges[ep.Edge]
		back, others := false, []uint32(nil)
		for x, ed := range road.Edges {
			switch {
			case ed.From != e.To:
			case ed.To == e.From && ed.WayID == e.WayID:
				back = true
			default:
				others = append(others, uint32(x))
			}
		}
		if back && len(others) > 0 {
			exits = others
		}
	}
	if exits == nil {
		t.Skip("no two-way edge with other exits along the route")
	}
	eta := func() int {
		ans := ts.do(t, "POST", "/v1/eta", mustJSON(map[string]any{"vehicle": "van-1", "location": last.Location,
			"time": int64(last.Time), "stops": []any{map[string]any{"location": b}}}))
		return ans.status
	}
	if code := eta(); code != 200 {
		t.Fatalf("eta before the closure: %d", code)
	}
	until := float64(clock.Now().Unix() + 3600)
	var cl []TrafficClosure
	for _, x := range exits {
		cl = append(cl, TrafficClosure{Edge: &x, Until: &until})
	}
	if ans := ts.do(t, "POST", "/v1/traffic?wait=true", mustJSON(TrafficRequest{Observations: []TrafficObservation{}, Closures: cl})); ans.status != 200 {
		t.Fatalf("traffic: %d %s", ans.status, ans.body)
	}
	q := ts.R.Current().NewQuery()
	eps, _, err := ts.R.Snap([]LonLat{b})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := q.Route(graph.Endpoint{Points: []graph.EdgePoint{ep}}, eps[0]); err == nil {
		t.Fatalf("a route still leaves edge %d ahead of the closures", ep.Edge)
	}
	if code := eta(); code != 200 {
		t.Fatalf("eta after the closure ahead: %d, want 200 (turning round)", code)
	}
}

// TestUrgentTrafficSkipsDutyCap: with a duty cap that holds the next
// update back for a minute, a change from the pings' stream waits, and
// posted traffic, which is urgent, reaches routing at once, waking the
// waiting loop.
func TestUrgentTrafficSkipsDutyCap(t *testing.T) {
	r := monaco(t).fork()
	l, err := NewLive(r, LiveConfig{MinInterval: 10 * time.Millisecond, MaxDuty: 1e-6, MaxInterval: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	l.Start(nil)
	defer l.Close()
	for !l.Ready() {
		time.Sleep(10 * time.Millisecond)
	}
	edge := uint32(0)
	for !r.G.Routable(edge) {
		edge++
	}
	observe := func(speed float64) uint64 {
		t.Helper()
		_, seq, err := l.Observe(&TrafficRequest{Observations: []TrafficObservation{{Edge: &edge, Speed: &speed}}})
		if err != nil || seq == 0 {
			t.Fatalf("observe: seq %d, %v", seq, err)
		}
		return seq
	}
	if seq := observe(20); !l.WaitApplied(seq, 30*time.Second) {
		t.Fatal("first update not applied")
	}
	// The pings' stream: held back by the cap.
	if seq := l.changed(1, false); l.WaitApplied(seq, time.Second) {
		t.Fatal("a change from the pings was applied within 1 s under a cap of a minute")
	}
	t0 := time.Now()
	if seq := observe(30); !l.WaitApplied(seq, 10*time.Second) {
		t.Fatal("posted traffic waited for the duty cap")
	}
	t.Logf("posted traffic applied after %v", time.Since(t0))
}

// TestFirstLegCachedFromSnappedLocation: an ETA from a location that is
// not a vehicle's matched position (dispatch predicts from the stop a
// van serves, or from its depot) reuses its first leg like the legs
// between stops, and gives the same answer; from a matched position the
// first leg is routed each time.
func TestFirstLegCachedFromSnappedLocation(t *testing.T) {
	ts, clock := startLive(t)
	a, b, r := longRoute(t, ts)
	now := clock.Now()
	body := mustJSON(map[string]any{"location": a, "time": now.Unix(), "stops": []any{map[string]any{"location": b}}})
	first := ts.do(t, "POST", "/v1/eta", body)
	if first.status != 200 {
		t.Fatalf("eta: %d %s", first.status, first.body)
	}
	c, ok := ts.live.legs.get(legKey{a, b}, ts.live.closures.Load())
	if !ok {
		t.Fatal("the first leg from a snapped location is not cached")
	}
	if c.dist != r.Distance {
		t.Errorf("cached first leg of %.1f m, the route is %.1f m", c.dist, r.Distance)
	}
	if again := ts.do(t, "POST", "/v1/eta", body); again.status != 200 || string(again.body) != string(first.body) {
		t.Fatalf("eta again: %d %s, want %s", again.status, again.body, first.body)
	}
	// A van's matched position: routed from its edge, not cached.
	pings := pingsAlong(r, "van-1", now.Add(-10*time.Minute), 8, 5*time.Second)
	if ans := ts.do(t, "POST", "/v1/positions", mustJSON(PositionsRequest{Positions: pings})); ans.status != 200 {
		t.Fatalf("positions: %d %s", ans.status, ans.body)
	}
	for k := len(pings) - 1; k >= 0; k-- {
		if ts.live.matchedStart("van-1", pings[k].Location) == nil {
			continue
		}
		loc := pings[k].Location
		if ans := ts.do(t, "POST", "/v1/eta", mustJSON(map[string]any{"vehicle": "van-1", "location": loc, "time": int64(pings[k].Time),
			"stops": []any{map[string]any{"location": b}}})); ans.status != 200 {
			t.Fatalf("eta of the van: %d %s", ans.status, ans.body)
		}
		if _, ok := ts.live.legs.get(legKey{loc, b}, ts.live.closures.Load()); ok {
			t.Fatal("the first leg from a matched position was cached")
		}
		return
	}
	t.Fatal("no ping of the van was matched")
}
