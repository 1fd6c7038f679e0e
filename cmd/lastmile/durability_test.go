package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"sort"
	"syscall"
	"testing"
	"time"

	"github.com/lastmile/lastmile/datasets/sim"
	"github.com/lastmile/lastmile/engine"
	"github.com/lastmile/lastmile/engine/seal"
	"github.com/lastmile/lastmile/internal/pgtest"
	"github.com/lastmile/lastmile/internal/webhooktest"
)

// envAsCLI makes the test binary run as lastmile (for serve processes the
// tests start and kill).
const envAsCLI = "LASTMILE_TEST_AS_CLI"

func TestMain(m *testing.M) {
	if os.Getenv(envAsCLI) == "1" {
		os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
	}
	pgtest.Main(m)
}

// server is a `lastmile serve` process.
type server struct {
	cmd    *exec.Cmd
	url    string
	stderr *bytes.Buffer
}

// serveEnv is what every serve process of a test shares.
type serveEnv struct {
	lmg, data, db  string
	admin, dataKey string
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// start runs `lastmile serve` and waits until it is ready.
func (e serveEnv) start(t *testing.T) *server {
	t.Helper()
	addr := freeAddr(t)
	// Webhooks to the test's receiver on loopback; a short lease, so that
	// deliveries claimed by a killed process are taken over in seconds.
	args := []string{"serve", "--graph", e.lmg, "--addr", addr, "--state", e.data, "--log-level", "warn",
		"--webhook-allow-private", "--webhook-timeout", "2s", "--delivery-lease", "4s"}
	if e.db != "" {
		args = append(args, "--db", e.db)
	}
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), envAsCLI+"=1", "LASTMILE_ADMIN_KEY="+e.admin, seal.EnvVar+"="+e.dataKey)
	s := &server{cmd: cmd, url: "http://" + addr, stderr: &bytes.Buffer{}}
	cmd.Stderr = s.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.kill() })
	for t0 := time.Now(); ; time.Sleep(20 * time.Millisecond) {
		resp, err := http.Get(s.url + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return s
			}
		}
		if time.Since(t0) > 60*time.Second {
			t.Fatalf("serve not ready after 60 s: %s", s.stderr.String())
		}
	}
}

// kill sends SIGKILL and reaps the process.
func (s *server) kill() {
	if s.cmd.ProcessState == nil {
		s.cmd.Process.Signal(syscall.SIGKILL)
		s.cmd.Wait()
	}
}

var httpc = &http.Client{Timeout: 30 * time.Second}

// call sends one request; err is a transport failure (the server died).
func call(base, method, path, key string, body any) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, base+path, rd)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := httpc.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	return resp.StatusCode, out, err
}

// dayAction is one request of the simulated day: a van's pings or a
// driver's status update.
type dayAction struct {
	at     time.Time
	pings  []map[string]any
	stop   string // tracking number, for a status
	status map[string]any
}

// durableDay is a small simulated day on Monaco, driven the same way by
// every run: 3 vans, 24 shipments, the day's reference plan as a
// sequenced plan, pings every 10 s in batches of a minute per van, the
// drivers' statuses at the truth departures.
type durableDay struct {
	day     *sim.Day
	truth   *sim.DayTruth
	actions []dayAction
}

func newDurableDay(t *testing.T, lmg string) *durableDay {
	t.Helper()
	g, err := engine.Open(lmg, "", engine.PrepareOptions{})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)
	w, err := sim.NewWorld(g.Road, sim.DefaultConfig(start, 1, 3))
	if err != nil {
		t.Fatal(err)
	}
	day, err := sim.NewDay(w, g, sim.DayConfig{Seed: 5, Vans: 3, Shipments: 24, NoIncident: true, DriveBys: 2})
	if err != nil {
		t.Fatal(err)
	}
	truth, err := day.Run(day.Plan, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	d := &durableDay{day: day, truth: truth}
	for _, vt := range truth.Vans {
		for i := 0; i < len(vt.Pings); {
			j := i
			for j < len(vt.Pings) && vt.Pings[j].Time.Sub(vt.Pings[i].Time) < time.Minute {
				j++
			}
			var batch []map[string]any
			for _, p := range vt.Pings[i:j] {
				batch = append(batch, map[string]any{"vehicle": vt.ID, "time": float64(p.Time.UnixMilli()) / 1000, "location": []float64{p.Lon, p.Lat}})
			}
			d.actions = append(d.actions, dayAction{at: vt.Pings[j-1].Time, pings: batch})
			i = j
		}
	}
	for i, st := range truth.Shipments {
		if st.Van < 0 {
			continue
		}
		body := map[string]any{"status": "delivered", "time": st.Reported.Unix()}
		if st.Outcome == sim.Failed {
			body = map[string]any{"status": "failed", "reason": st.Reason, "time": st.Reported.Unix()}
		}
		d.actions = append(d.actions, dayAction{at: st.Reported, stop: day.Shipments[i].Tracking, status: body})
	}
	sort.SliceStable(d.actions, func(a, b int) bool { return d.actions[a].at.Before(d.actions[b].at) })
	return d
}

// setup creates the shipments and the sequenced plan; it returns the stop
// id of each tracking number.
func (d *durableDay) setup(t *testing.T, base, key string) map[string]int64 {
	t.Helper()
	for _, sh := range d.day.Shipments {
		body := map[string]any{"tracking": sh.Tracking, "recipient": map[string]any{"name": sh.Recipient.Name, "phone": sh.Recipient.Phone,
			"email": sh.Recipient.Email}, "location": []float64{sh.Lon, sh.Lat},
			"time_window": []int64{sh.WindowStart.Unix(), sh.WindowEnd.Unix()}, "service": sh.Service.Seconds()}
		if status, out, err := call(base, "POST", "/v1/shipments", key, body); err != nil || status != 201 {
			t.Fatalf("shipment %s: %d %v %s", sh.Tracking, status, err, out)
		}
	}
	depot := []float64{d.day.Depot.Lon, d.day.Depot.Lat}
	var vehicles, routes []any
	for v, van := range d.day.Vans {
		vehicles = append(vehicles, map[string]any{"id": v + 1, "vehicle": van.ID, "start": depot, "end": depot,
			"time_window": []int64{van.ShiftStart.Unix(), van.ShiftEnd.Unix()}})
		var tr []string
		for _, i := range d.day.Plan[v] {
			tr = append(tr, d.day.Shipments[i].Tracking)
		}
		routes = append(routes, map[string]any{"vehicle": van.ID, "shipments": tr})
	}
	status, out, err := call(base, "POST", "/v1/plans", key, map[string]any{"vehicles": vehicles, "routes": routes})
	if err != nil || status != 201 {
		t.Fatalf("plan: %d %v %s", status, err, out)
	}
	var plan struct {
		Routes []struct {
			Stops []struct {
				ID       int64
				Tracking string
			}
		}
	}
	if err := json.Unmarshal(out, &plan); err != nil {
		t.Fatal(err)
	}
	ids := map[string]int64{}
	for _, r := range plan.Routes {
		for _, s := range r.Stops {
			ids[s.Tracking] = s.ID
		}
	}
	return ids
}

// send posts one action; it reports whether the server acknowledged it
// (a transport error means it died: the caller restarts it and resends).
func (a *dayAction) send(t *testing.T, base, key string, stops map[string]int64) bool {
	var status int
	var out []byte
	var err error
	if a.pings != nil {
		status, out, err = call(base, "POST", "/v1/positions", key, map[string]any{"positions": a.pings})
	} else {
		status, out, err = call(base, "POST", fmt.Sprintf("/v1/stops/%d/status", stops[a.stop]), key, a.status)
	}
	if err != nil {
		return false
	}
	if status != 200 {
		t.Fatalf("action at %v: status %d: %s", a.at, status, out)
	}
	return true
}

// eventLog reads the whole event log.
func eventLog(t *testing.T, base, key string) []map[string]any {
	t.Helper()
	var all []map[string]any
	after := 0.0
	for {
		status, out, err := call(base, "GET", fmt.Sprintf("/v1/events?after=%d&limit=1000", int64(after)), key, nil)
		if err != nil || status != 200 {
			t.Fatalf("events: %d %v %s", status, err, out)
		}
		var page struct {
			Events []map[string]any
			Next   float64
		}
		json.Unmarshal(out, &page)
		all = append(all, page.Events...)
		if len(page.Events) < 1000 {
			return all
		}
		after = page.Next
	}
}

// timedEvent is an event's type and time.
type timedEvent struct {
	typ string
	at  int64
}

// timelines groups events per tracking number, checking that sequence
// numbers run 1, 2, 3... and no event id repeats.
func timelines(t *testing.T, evs []map[string]any) map[string][]timedEvent {
	t.Helper()
	out := map[string][]timedEvent{}
	seen := map[string]bool{}
	for _, e := range evs {
		id := e["id"].(string)
		if seen[id] {
			t.Errorf("event %s twice in the log", id)
		}
		seen[id] = true
		tr := e["tracking"].(string)
		if int(e["seq"].(float64)) != len(out[tr])+1 {
			t.Errorf("%s: event seq %v after %d events (a gap or a repeat)", tr, e["seq"], len(out[tr]))
		}
		out[tr] = append(out[tr], timedEvent{e["type"].(string), int64(e["time"].(float64))})
	}
	return out
}

// etaTimed are the events decided from ETA predictions, which rest on the
// server's in-memory traffic model and calibrator (per process, rebuilt
// from the pings after a restart): their moment may move by an ETA update
// or two, so their place among the other events may too.
var etaTimed = []string{"arriving_soon", "delayed", "eta_changed"}

// sameDay reports how one shipment's events differ from the reference's:
// the same events (eta_changed aside: it fires on prediction moves of 15
// min that a restart's colder model may or may not see), the others in the
// same order at the same times, and the ETA-timed ones within 5 minutes.
func sameDay(want, got []timedEvent) string {
	split := func(evs []timedEvent) (fixed, timed []timedEvent) {
		for _, e := range evs {
			switch {
			case e.typ == "eta_changed":
			case slices.Contains(etaTimed, e.typ):
				timed = append(timed, e)
			default:
				fixed = append(fixed, e)
			}
		}
		return fixed, timed
	}
	wf, wt := split(want)
	gf, gt := split(got)
	if !slices.Equal(wf, gf) {
		return fmt.Sprintf("events %v, want %v", gf, wf)
	}
	if len(wt) != len(gt) {
		return fmt.Sprintf("ETA events %v, want %v", gt, wt)
	}
	for i := range wt {
		if wt[i].typ != gt[i].typ || abs64(wt[i].at-gt[i].at) > 300 {
			return fmt.Sprintf("ETA events %v, want %v (within 300 s)", gt, wt)
		}
	}
	return ""
}

func abs64(v int64) int64 {
	if v < 0 {
		return -v
	}
	return v
}

// TestSurvivesSIGKILL runs the simulated day once without interruption,
// then again killing the server with SIGKILL at 20 random moments
// (between requests and in the middle of them) and restarting it on the
// same state: no acknowledged ping, status or event is lost, sequence
// numbers stay gapless, no event is emitted twice, and the day ends with
// the same events. On SQLite and on PostgreSQL; on PostgreSQL also with two
// replicas taking the requests in turn.
func TestSurvivesSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("starts and kills server processes")
	}
	lmg := preparedMonaco(t)
	day := newDurableDay(t, lmg)
	key, _ := seal.FormatKeys(seal.GenerateKey(1))
	admin, _, _ := seal.NewAPIKey()
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			env := func() serveEnv {
				e := serveEnv{lmg: lmg, data: t.TempDir(), admin: admin, dataKey: key}
				if backend == "postgres" {
					e.db = pgtest.DSN(t)
				}
				return e
			}
			// The reference: one uninterrupted run.
			refEnv := env()
			ref := refEnv.start(t)
			stops := day.setup(t, ref.url, admin)
			for i := range day.actions {
				if !day.actions[i].send(t, ref.url, admin, stops) {
					t.Fatalf("reference run: the server died: %s", ref.stderr.String())
				}
			}
			want := timelines(t, eventLog(t, ref.url, admin))
			ref.kill()
			if len(want) != len(day.day.Shipments) {
				t.Fatalf("reference run: events for %d of %d shipments", len(want), len(day.day.Shipments))
			}

			// Killed at 20 random moments, with a webhook subscribed to
			// every event.
			e := env()
			srv := e.start(t)
			rcv := webhooktest.New(t)
			var hook struct{ Secret string }
			if status, out, err := call(srv.url, "POST", "/v1/webhooks", admin, map[string]any{"url": rcv.URL, "events": []string{"*"}}); err != nil || status != 201 || json.Unmarshal(out, &hook) != nil {
				t.Fatalf("subscribe: %d %v %s", status, err, out)
			}
			rcv.SetSecret(hook.Secret)
			stops = day.setup(t, srv.url, admin)
			rng := rand.New(rand.NewPCG(11, 12))
			kills := map[int]bool{}
			for len(kills) < 20 {
				kills[rng.IntN(len(day.actions))] = true
			}
			acked := map[string]map[string]any{} // event id -> event seen before a kill
			restarts, cut := 0, 0
			for i := range day.actions {
				a := &day.actions[i]
				if kills[i] {
					// Kill during the request (after 0-3 ms) or just before.
					done := make(chan bool, 1)
					go func() { done <- a.send(t, srv.url, admin, stops) }()
					time.Sleep(time.Duration(rng.IntN(3000)) * time.Microsecond)
					for _, ev := range eventLog(t, srv.url, admin) {
						acked[ev["id"].(string)] = ev
					}
					srv.kill()
					if !<-done {
						cut++ // killed with the request in flight
					}
					srv = e.start(t)
					restarts++
					// Nothing acknowledged is lost.
					now := map[string]map[string]any{}
					for _, ev := range eventLog(t, srv.url, admin) {
						now[ev["id"].(string)] = ev
					}
					for id, ev := range acked {
						got, ok := now[id]
						if !ok || got["seq"] != ev["seq"] || got["type"] != ev["type"] || got["cursor"] != ev["cursor"] {
							t.Fatalf("restart %d: event %v lost or changed: %v", restarts, ev, got)
						}
					}
				}
				// At-least-once: resend until acknowledged (idempotent).
				for tries := 0; !a.send(t, srv.url, admin, stops); tries++ {
					if tries > 3 {
						t.Fatalf("action %d not acknowledged: %s", i, srv.stderr.String())
					}
					srv = e.start(t)
				}
			}
			final := eventLog(t, srv.url, admin)
			got := timelines(t, final)
			checkWebhooks(t, rcv, final)
			srv.kill()
			t.Logf("%d restarts after SIGKILL, %d of them with a request in flight; %d actions; %d webhook deliveries of %d events",
				restarts, cut, len(day.actions), len(rcv.Accepted()), len(final))
			compareTimelines(t, want, got)
			checkPings(t, e, day)

			if backend != "postgres" {
				return
			}
			// Two replicas on one database, requests in turn.
			e2 := env()
			a, b := e2.start(t), e2.start(t)
			stops = day.setup(t, a.url, admin)
			for i := range day.actions {
				base := a.url
				if i%2 == 1 {
					base = b.url
				}
				if !day.actions[i].send(t, base, admin, stops) {
					t.Fatalf("replica died: %s %s", a.stderr.String(), b.stderr.String())
				}
			}
			got = timelines(t, eventLog(t, b.url, admin))
			compareTimelines(t, want, got)
		})
	}
}

// compareTimelines checks every shipment's events against the
// reference's (sameDay).
func compareTimelines(t *testing.T, want, got map[string][]timedEvent) {
	t.Helper()
	diff := 0
	for tr, w := range want {
		if d := sameDay(w, got[tr]); d != "" {
			diff++
			t.Errorf("%s: %s", tr, d)
		}
	}
	if len(got) != len(want) {
		t.Errorf("events for %d shipments, want %d", len(got), len(want))
	}
	if diff > 0 {
		t.Errorf("%d of %d shipments differ from the uninterrupted run", diff, len(want))
	}
}

// checkPings opens the state the runs left and checks every ping of the
// day is stored once (every batch was acknowledged in the end).
func checkPings(t *testing.T, e serveEnv, d *durableDay) {
	t.Helper()
	st, err := engine.OpenStore(context.Background(), e.data, e.db, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for _, vt := range d.truth.Vans {
		got, err := st.PingsBetween(context.Background(), vt.ID, 0, 1<<62)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(vt.Pings) {
			t.Errorf("%s: %d pings stored, %d sent", vt.ID, len(got), len(vt.Pings))
		}
	}
}

// checkWebhooks waits (60 s at most) until the receiver accepted every
// event of the log, then checks that nothing else came, each shipment's
// events in seq order, and that duplicates (at least once, across the
// kills) carry the same webhook-id.
func checkWebhooks(t *testing.T, rcv *webhooktest.Receiver, log []map[string]any) {
	t.Helper()
	want := make([]webhooktest.Event, len(log))
	for i, ev := range log {
		b, _ := json.Marshal(ev)
		if err := json.Unmarshal(b, &want[i]); err != nil {
			t.Fatal(err)
		}
	}
	var err error
	for t0 := time.Now(); time.Since(t0) < 60*time.Second; time.Sleep(100 * time.Millisecond) {
		if err = webhooktest.CheckOrder(rcv.Accepted(), want); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("webhooks after the kills: %v", err)
	}
	if bad := rcv.BadSignatures(); len(bad) > 0 {
		t.Fatalf("%d deliveries with a bad signature", len(bad))
	}
	ids := map[string]int{}
	for _, d := range rcv.Accepted() {
		ids[d.ID]++
	}
	dups := 0
	for _, n := range ids {
		dups += n - 1
	}
	t.Logf("webhooks: %d events, %d deliveries accepted, %d duplicates (same webhook-id)", len(want), len(rcv.Accepted()), dups)
}
