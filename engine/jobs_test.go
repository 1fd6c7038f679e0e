package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lastmile/lastmile/graph"
	"github.com/lastmile/lastmile/vrp"
)

// submitDocumentedJob posts the documented example of POST /v1/solve with
// ?async=true, checks the 202 answer against the documented schema and
// the Location header, and returns the job's id.
func submitDocumentedJob(t *testing.T, ts *testServer, doc *apiDoc) string {
	t.Helper()
	media, _ := doc.get("paths", "/v1/solve", "post", "requestBody", "content", "application/json").(map[string]any)
	if media == nil {
		t.Fatal("POST /v1/solve documents no JSON body")
	}
	a := ts.do(t, "POST", "/v1/solve?async=true&time=0.1", mustJSON(media["example"]))
	if a.status != 202 {
		t.Fatalf("async solve: status %d: %s", a.status, a.body)
	}
	schema := doc.get("paths", "/v1/solve", "post", "responses", "202", "content", "application/json", "schema")
	if schema == nil {
		t.Fatal("POST /v1/solve documents no 202 answer")
	}
	v := decodeAny(t, a.body)
	if err := doc.validate(schema, v, "202 answer"); err != nil {
		t.Fatalf("202 answer does not match the schema: %v", err)
	}
	id := v.(map[string]any)["id"].(string)
	if loc := a.header.Get("Location"); loc != jobsPath+id {
		t.Fatalf("Location %q, want %s", loc, jobsPath+id)
	}
	return id
}

// submit posts body (with query) and returns the job id of the 202 answer.
func submit(t *testing.T, ts *testServer, query, body string) string {
	t.Helper()
	a := ts.do(t, "POST", "/v1/solve"+query, []byte(body))
	if a.status != 202 {
		t.Fatalf("POST /v1/solve%s: status %d: %s", query, a.status, a.body)
	}
	var acc jobAccepted
	if err := json.Unmarshal(a.body, &acc); err != nil {
		t.Fatal(err)
	}
	if acc.Status != "queued" || acc.Location != jobsPath+acc.ID || len(acc.ID) != 32 {
		t.Fatalf("202 answer %s", a.body)
	}
	return acc.ID
}

// getJob returns the decoded GET /v1/jobs/{id} answer (status 200).
func getJob(t *testing.T, ts *testServer, id string) map[string]any {
	t.Helper()
	a := ts.do(t, "GET", jobsPath+id, nil)
	if a.status != 200 {
		t.Fatalf("GET job %s: status %d: %s", id, a.status, a.body)
	}
	return decodeAny(t, a.body).(map[string]any)
}

// waitJob polls the job until it is done or failed.
func waitJob(t *testing.T, ts *testServer, id string, within time.Duration) map[string]any {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		j := getJob(t, ts, id)
		if st := j["status"]; st == "done" || st == "failed" {
			return j
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %s not finished within %v: %v", id, within, j)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitStatus polls until the job has the status.
func waitStatus(t *testing.T, ts *testServer, id, status string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		j := getJob(t, ts, id)
		if j["status"] == status {
			return j
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %s never %s: %v", id, status, j)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// withTop adds top-level fields to a JSON object.
func withTop(body, fields string) string {
	return "{" + fields + "," + strings.TrimPrefix(strings.TrimSpace(body), "{")
}

// checkSolution decodes a VROOM solution and checks it with vrp.Validate
// against the problem with matrices from the same graph.
func checkSolution(t *testing.T, r *Router, problem string, raw []byte) *vrp.Solution {
	t.Helper()
	var sol vrp.Solution
	if err := json.Unmarshal(raw, &sol); err != nil {
		t.Fatalf("solution: %v: %s", err, clip(raw, 200))
	}
	p, err := vrp.ParseProblem([]byte(problem))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.FillMatrices(p); err != nil {
		t.Fatal(err)
	}
	if _, err := vrp.Validate(p, &sol); err != nil {
		t.Fatalf("solution fails the checker: %v", err)
	}
	return &sol
}

func TestServerAsyncSolve(t *testing.T) {
	ts := startServer(t, ServerConfig{})
	for _, tc := range []struct{ name, query, body string }{
		{"body field", "?time=0.3&seed=2", withTop(monacoProblem, `"async":true`)},
		{"query parameter", "?async=true&time=0.3", monacoProblem},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := submit(t, ts, tc.query, tc.body)
			j := waitJob(t, ts, id, 20*time.Second)
			if j["status"] != "done" || j["error"] != nil || j["progress"] != nil {
				t.Fatalf("job: %v", j)
			}
			for _, k := range []string{"created", "started", "finished", "expires"} {
				s, _ := j[k].(string)
				if _, err := time.Parse(time.RFC3339Nano, s); err != nil {
					t.Errorf("%s %q: %v", k, s, err)
				}
			}
			sol := checkSolution(t, ts.R, monacoProblem, mustJSON(j["solution"]))
			if len(sol.Unassigned) != 1 || sol.Unassigned[0].ID != 5 {
				t.Fatalf("unassigned %+v, want job 5", sol.Unassigned)
			}
		})
	}
	// "async": false is a plain synchronous solve.
	if a := ts.do(t, "POST", "/v1/solve?time=0.1", []byte(withTop(monacoProblem, `"async":false`))); a.status != 200 {
		t.Fatalf("async false: %d %s", a.status, a.body)
	}
}

// TestServerJobProgressAndCancel runs a long job, watches its progress
// while running, cancels it with DELETE, then forgets it with a second
// DELETE.
func TestServerJobProgressAndCancel(t *testing.T) {
	ts := startServer(t, ServerConfig{})
	id := submit(t, ts, "?async=true&time=30", monacoProblem)
	j := waitStatus(t, ts, id, "running")
	p, _ := j["progress"].(map[string]any)
	if p == nil || p["time_limit"] != 30.0 || j["started"] == nil || j["finished"] != nil {
		t.Fatalf("running job: %v", j)
	}
	// The search reports after every epoch (20000 iterations).
	deadline := time.Now().Add(10 * time.Second)
	for p["iterations"] == nil && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		j = getJob(t, ts, id)
		p, _ = j["progress"].(map[string]any)
	}
	if p["iterations"] == nil || p["cost"].(float64) <= 0 || p["elapsed"].(float64) <= 0 {
		t.Errorf("no progress after 10 s: %v", j)
	}
	t0 := time.Now()
	if a := ts.do(t, "DELETE", jobsPath+id, nil); a.status != 200 {
		t.Fatalf("DELETE: %d %s", a.status, a.body)
	}
	j = waitJob(t, ts, id, 5*time.Second)
	if el := time.Since(t0); el > 2*time.Second {
		t.Errorf("cancellation took %v", el)
	}
	e, _ := j["error"].(map[string]any)
	if j["status"] != "failed" || e["code"] != "Cancelled" || !strings.Contains(e["message"].(string), "DELETE") || j["solution"] != nil {
		t.Fatalf("cancelled job: %v", j)
	}
	// A finished job is forgotten by DELETE.
	if a := ts.do(t, "DELETE", jobsPath+id, nil); a.status != 200 {
		t.Fatalf("second DELETE: %d %s", a.status, a.body)
	}
	if a := ts.do(t, "GET", jobsPath+id, nil); a.status != 404 {
		t.Fatalf("GET after DELETE: %d %s", a.status, a.body)
	}
}

func TestServerJobErrors(t *testing.T) {
	ts := startServer(t, ServerConfig{MaxJobSolveTime: time.Minute})
	tests := []struct {
		name, method, path, body string
		status                   int
		code, msg                string
	}{
		{"unknown job", "GET", jobsPath + "0123456789abcdef0123456789abcdef", "", 404, "NotFound", "no job"},
		{"unknown job delete", "DELETE", jobsPath + "0123456789abcdef0123456789abcdef", "", 404, "NotFound", "no job"},
		{"malformed id", "GET", jobsPath + "not-an-id", "", 404, "NotFound", "32 hexadecimal"},
		{"upper-case id", "GET", jobsPath + "0123456789ABCDEF0123456789ABCDEF", "", 404, "NotFound", "32 hexadecimal"},
		{"job query parameter", "GET", jobsPath + "0123456789abcdef0123456789abcdef?x=1", "", 400, "InvalidOptions", "unknown parameter"},
		{"jobs list", "GET", "/v1/jobs/", "", 404, "InvalidUrl", "no service"},
		{"async not a boolean", "POST", "/v1/solve", withTop(monacoProblem, `"async":"yes"`), 400, "InvalidQuery", "async"},
		{"async null", "POST", "/v1/solve", withTop(monacoProblem, `"async":null`), 400, "InvalidQuery", "async"},
		{"async query value", "POST", "/v1/solve?async=maybe", monacoProblem, 400, "InvalidOptions", "async"},
		{"async bad problem", "POST", "/v1/solve?async=true", `{"vehicles":[{"id":1,"start":[7.42,43.73]}],"jobs":[{"id":1,"location":[7.42,43.74],"delivery":[-1]}]}`, 400, "InvalidQuery", "delivery"},
		{"async malformed JSON", "POST", "/v1/solve?async=true", `{"async":true,"vehicles":[`, 400, "InvalidQuery", "JSON"},
		{"async time over the job maximum", "POST", "/v1/solve?async=true&time=61", monacoProblem, 400, "InvalidOptions", "(0, 60]"},
		{"sync time over the maximum", "POST", "/v1/solve?time=26", monacoProblem, 400, "InvalidOptions", "(0, 25]"},
		{"options not an object", "POST", "/v1/solve", withTop(monacoProblem, `"options":true`), 400, "InvalidQuery", "options"},
		{"options.g not a boolean", "POST", "/v1/solve", withTop(monacoProblem, `"options":{"g":1}`), 400, "InvalidQuery", "options.g"},
		{"unknown option", "POST", "/v1/solve", withTop(monacoProblem, `"options":{"x":4}`), 400, "InvalidOptions", "options.x"},
		{"geometry without coordinates", "POST", "/v1/solve", `{"options":{"g":true},"vehicles":[{"id":1,"start_index":0}],"jobs":[{"id":1,"location_index":1}],"matrices":{"car":{"durations":[[0,5],[5,0]]}}}`, 400, "InvalidOptions", "coordinates"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var body []byte
			if tc.body != "" {
				body = []byte(tc.body)
			}
			a := ts.do(t, tc.method, tc.path, body)
			var e struct{ Code, Message string }
			if err := json.Unmarshal(a.body, &e); err != nil {
				t.Fatalf("status %d, body %s", a.status, a.body)
			}
			if a.status != tc.status || e.Code != tc.code || !strings.Contains(e.Message, tc.msg) {
				t.Fatalf("got %d %s %q, want %d %s containing %q", a.status, e.Code, e.Message, tc.status, tc.code, tc.msg)
			}
		})
	}
	// Nothing was queued by the refused submissions.
	if n := ts.jobs.queued.Load() + ts.jobs.running.Load(); n != 0 || len(ts.jobs.jobs) != 0 {
		t.Fatalf("%d jobs pending, %d kept after refused submissions", n, len(ts.jobs.jobs))
	}
	// A job whose problem cannot be routed fails with the routing error.
	id := submit(t, ts, "?async=true", `{"vehicles":[{"id":1,"start":[7.42,43.73]}],"jobs":[{"id":1,"location":[7.5,43.6]}]}`)
	j := waitJob(t, ts, id, 10*time.Second)
	if e, _ := j["error"].(map[string]any); j["status"] != "failed" || e["code"] != "NoSegment" {
		t.Fatalf("unroutable job: %v", j)
	}
}

// TestServerJobQueueFull fills the queue (one worker, two jobs at most)
// and checks the third submission is refused with 429, that routes are
// still answered while a job runs, and the gauges.
func TestServerJobQueueFull(t *testing.T) {
	ts := startServer(t, ServerConfig{MaxJobs: 2, JobWorkers: 1})
	a := submit(t, ts, "?async=true&time=30", monacoProblem)
	b := submit(t, ts, "?async=true&time=30", monacoProblem)
	waitStatus(t, ts, a, "running")
	if j := getJob(t, ts, b); j["status"] != "queued" || j["progress"] != nil || j["started"] != nil {
		t.Fatalf("second job with one worker: %v", j)
	}
	r := ts.do(t, "POST", "/v1/solve?async=true", []byte(monacoProblem))
	if r.status != 429 || !strings.Contains(string(r.body), `"TooManyJobs"`) || r.header.Get("Retry-After") == "" {
		t.Fatalf("third job: %d %s (Retry-After %q), want 429 TooManyJobs", r.status, r.body, r.header.Get("Retry-After"))
	}
	// Routes are answered while the solve runs.
	pts := roadPoints(ts.R, 2, 3)
	t0 := time.Now()
	if r := ts.do(t, "GET", "/v1/route/"+coordPath(pts), nil); r.status != 200 {
		t.Fatalf("route during a job: %d %s", r.status, r.body)
	}
	t.Logf("route during a running job: %v", time.Since(t0))
	m := parseExposition(t, string(ts.do(t, "GET", "/metrics", nil).body))
	if m["lastmile_jobs_queued"] != 1 || m["lastmile_jobs_running"] != 1 {
		t.Fatalf("gauges queued %v running %v, want 1 and 1", m["lastmile_jobs_queued"], m["lastmile_jobs_running"])
	}
	// Cancelling the queued job frees its place at once.
	if r := ts.do(t, "DELETE", jobsPath+b, nil); r.status != 200 {
		t.Fatal(r.status)
	}
	if j := waitJob(t, ts, b, 5*time.Second); j["status"] != "failed" || j["started"] != nil {
		t.Fatalf("cancelled queued job: %v", j)
	}
	c := submit(t, ts, "?async=true&time=0.1", monacoProblem)
	if r := ts.do(t, "DELETE", jobsPath+a, nil); r.status != 200 {
		t.Fatal(r.status)
	}
	if j := waitJob(t, ts, c, 20*time.Second); j["status"] != "done" {
		t.Fatalf("job after the queue emptied: %v", j)
	}
	m = parseExposition(t, string(ts.do(t, "GET", "/metrics", nil).body))
	if m["lastmile_jobs_queued"] != 0 || m["lastmile_jobs_running"] != 0 ||
		m[`lastmile_jobs_finished_total{status="done"}`] != 1 || m[`lastmile_jobs_finished_total{status="failed"}`] != 2 ||
		m[`lastmile_solve_duration_seconds_count{mode="async"}`] != 1 {
		t.Fatalf("metrics after the jobs: %v", m)
	}
}

func TestServerJobExpiry(t *testing.T) {
	ts := startServer(t, ServerConfig{JobTTL: 300 * time.Millisecond, MaxFinishedJobs: 1})
	a := submit(t, ts, "?async=true&time=0.05", monacoProblem)
	waitJob(t, ts, a, 20*time.Second)
	b := submit(t, ts, "?async=true&time=0.05", monacoProblem)
	waitJob(t, ts, b, 20*time.Second)
	// Only one finished job is kept: the older is gone.
	if r := ts.do(t, "GET", jobsPath+a, nil); r.status != 404 {
		t.Fatalf("oldest finished job beyond MaxFinishedJobs: %d %s", r.status, r.body)
	}
	time.Sleep(350 * time.Millisecond)
	if r := ts.do(t, "GET", jobsPath+b, nil); r.status != 404 {
		t.Fatalf("job past its TTL: %d %s", r.status, r.body)
	}
	if len(ts.jobs.jobs) != 0 || len(ts.jobs.finished) != 0 {
		t.Fatalf("%d jobs, %d finished kept after expiry", len(ts.jobs.jobs), len(ts.jobs.finished))
	}
}

// TestServerShutdownCancelsJobs checks that Shutdown cancels a running and
// a queued job promptly, waits for their goroutines, and refuses new jobs.
func TestServerShutdownCancelsJobs(t *testing.T) {
	s, err := newServer(monaco(t).fork(), ServerConfig{JobWorkers: 1}, endpoints())
	if err != nil {
		t.Fatal(err)
	}
	ts, served := serveTest(t, s)
	a := submit(t, ts, "?async=true&time=60", monacoProblem)
	b := submit(t, ts, "?async=true&time=60", monacoProblem)
	waitStatus(t, ts, a, "running")
	ja, jb := s.jobs.get(a), s.jobs.get(b)
	t0 := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if el := time.Since(t0); el > 3*time.Second {
		t.Errorf("Shutdown with a running 60 s job took %v", el)
	}
	if err := <-served; err != nil {
		t.Fatal(err)
	}
	for _, j := range []*job{ja, jb} {
		v := s.jobs.view(j)
		if v.Status != "failed" || v.Error == nil || v.Error.Code != "Cancelled" || !strings.Contains(v.Error.Message, "shutting down") {
			t.Errorf("job after shutdown: %+v %+v", v, v.Error)
		}
	}
	if n := s.jobs.queued.Load() + s.jobs.running.Load(); n != 0 {
		t.Errorf("%d jobs still counted after shutdown", n)
	}
	// No job goroutine (nor a solver under one) outlives Shutdown.
	buf := make([]byte, 1<<20)
	if stacks := string(buf[:runtime.Stack(buf, true)]); strings.Contains(stacks, "(*jobQueue).run") {
		t.Errorf("job goroutine alive after Shutdown:\n%s", stacks)
	}
	if _, err := s.jobs.submit(time.Second, nil); err == nil || !strings.Contains(err.Error(), "NotReady") {
		t.Errorf("submit after shutdown: %v", err)
	}
}

// TestServerSolveTimeout: a synchronous solve that cannot finish within the
// request timeout is answered 503 Timeout (the documented status).
func TestServerSolveTimeout(t *testing.T) {
	// 700 stops that all fit one vehicle: snapping, the 700x700 matrix and
	// inserting every job take far longer than the 30 ms allowed, however
	// idle the machine (with a small capacity the solver gave up on most
	// jobs within 100 ms on an idle machine).
	ts := startServer(t, ServerConfig{Timeout: 30 * time.Millisecond})
	pts := roadPoints(ts.R, 700, 11)
	var jobs []string
	for i, p := range pts[1:] {
		jobs = append(jobs, fmt.Sprintf(`{"id":%d,"location":[%g,%g],"delivery":[1]}`, i+1, p[0], p[1]))
	}
	body := fmt.Sprintf(`{"vehicles":[{"id":1,"start":[%g,%g],"capacity":[1000]}],"jobs":[%s]}`, pts[0][0], pts[0][1], strings.Join(jobs, ","))
	a := ts.do(t, "POST", "/v1/solve", []byte(body))
	if a.status != 503 || !strings.Contains(string(a.body), `"Timeout"`) {
		t.Fatalf("huge solve with a 30 ms timeout: %d %s, want 503 Timeout", a.status, clip(a.body, 200))
	}
	// The abandoned computation is cancelled and releases its slot.
	t0 := time.Now()
	for len(ts.slots) != 0 {
		if time.Since(t0) > 30*time.Second {
			t.Fatal("abandoned solve still holds its slot after 30 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("slot released %v after the 503", time.Since(t0))
}

// TestServerSolveGeometry checks options.g: every route gets an encoded
// polyline that starts and ends where its first and last steps are
// (within their snapping distance) and whose length is the route's
// distance (the matrix distances are the same fastest paths).
func TestServerSolveGeometry(t *testing.T) {
	ts := startServer(t, ServerConfig{})
	problem := withTop(monacoProblem, `"options":{"g":true}`)
	for _, async := range []bool{false, true} {
		var raw []byte
		if async {
			j := waitJob(t, ts, submit(t, ts, "?async=true&time=0.3", problem), 20*time.Second)
			raw = mustJSON(j["solution"])
		} else {
			a := ts.do(t, "POST", "/v1/solve?time=0.3", []byte(problem))
			if a.status != 200 {
				t.Fatalf("status %d: %s", a.status, a.body)
			}
			raw = a.body
		}
		sol := checkSolution(t, ts.R, monacoProblem, raw)
		var geo struct {
			Routes []struct {
				Geometry *string `json:"geometry"`
			} `json:"routes"`
		}
		if err := json.Unmarshal(raw, &geo); err != nil {
			t.Fatal(err)
		}
		if len(sol.Routes) == 0 || len(geo.Routes) != len(sol.Routes) {
			t.Fatalf("%d routes", len(sol.Routes))
		}
		for i, rt := range sol.Routes {
			g := geo.Routes[i].Geometry
			if g == nil || *g == "" {
				t.Fatalf("route %d has no geometry", i)
			}
			line, ok := DecodePolyline(*g, 5)
			if !ok || len(line) < 2 {
				t.Fatalf("route %d: bad polyline %q", i, *g)
			}
			first, last := rt.Steps[0], rt.Steps[len(rt.Steps)-1]
			for _, c := range []struct {
				st vrp.Step
				pt [2]float64
			}{{first, line[0]}, {last, line[len(line)-1]}} {
				_, wps, err := ts.R.Snap([]LonLat{LonLat(*c.st.Location)})
				if err != nil {
					t.Fatal(err)
				}
				if d := haversine(*c.st.Location, c.pt); d > wps[0].Distance+2 {
					t.Errorf("route %d: geometry end %v is %.1f m from step %s at %v (snapped %.1f m away)", i, c.pt, d, c.st.Type, *c.st.Location, wps[0].Distance)
				}
			}
			length := 0.0
			for k := 1; k < len(line); k++ {
				length += haversine(line[k-1], line[k])
			}
			if math.Abs(length-float64(rt.Distance)) > 0.01*float64(rt.Distance)+5 {
				t.Errorf("route %d: geometry %.0f m long, route distance %d m", i, length, rt.Distance)
			}
		}
	}
	// Without the option there is no geometry.
	a := ts.do(t, "POST", "/v1/solve?time=0.1", []byte(monacoProblem))
	if a.status != 200 || strings.Contains(string(a.body), `"geometry"`) {
		t.Fatalf("solve without options.g: %d %s", a.status, clip(a.body, 200))
	}
	m := parseExposition(t, string(ts.do(t, "GET", "/metrics", nil).body))
	if m[`lastmile_solve_duration_seconds_count{mode="sync"}`] != 2 || m[`lastmile_solve_duration_seconds_count{mode="async"}`] != 1 {
		t.Errorf("solve duration counts: %v", m)
	}
}

// haversine is the great-circle distance in metres of two [lon, lat].
func haversine(a, b [2]float64) float64 { return graph.Haversine(a[1], a[0], b[1], b[0]) }

func TestParseSolveExtras(t *testing.T) {
	tests := []struct {
		body         string
		async, geo   bool
		code, detail string
	}{
		{`{"vehicles":[]}`, false, false, "", ""},
		{`{"async":true,"vehicles":[]}`, true, false, "", ""},
		{`{"async":false,"options":{"g":true}}`, false, true, "", ""},
		{`{"options":{}}`, false, false, "", ""},
		{`{"jobs":[{"description":"\"async\""}]}`, false, false, "", ""},
		{`{"async":1}`, false, false, "InvalidQuery", "async"},
		{`{"async":"true"}`, false, false, "InvalidQuery", "async"},
		{`{"options":[]}`, false, false, "InvalidQuery", "options"},
		{`{"options":null}`, false, false, "InvalidQuery", "options"},
		{`{"options":{"g":"yes"}}`, false, false, "InvalidQuery", "options.g"},
		{`{"options":{"t":4}}`, false, false, "InvalidOptions", "options.t"},
		{`{"async":true,`, false, false, "", ""}, // malformed: left to vrp.ParseProblem
	}
	for _, tc := range tests {
		x, err := parseSolveExtras([]byte(tc.body))
		if tc.code == "" {
			if err != nil || x.async != tc.async || x.geometry != tc.geo {
				t.Errorf("%s: got %+v %v", tc.body, x, err)
			}
			continue
		}
		e, ok := err.(*Error)
		if !ok || e.Code != tc.code || !strings.Contains(e.Message, tc.detail) {
			t.Errorf("%s: got %v, want %s about %s", tc.body, err, tc.code, tc.detail)
		}
	}
}

func FuzzParseSolveExtras(f *testing.F) {
	for _, s := range []string{`{"async":true}`, `{"options":{"g":true}}`, `{"async":null,"options":{"g":false,"x":1}}`, `[]`, `"async"`, `{"options":"options"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		x, err := parseSolveExtras(b)
		if err != nil {
			if _, ok := err.(*Error); !ok {
				t.Fatalf("%q: error %T %v", b, err, err)
			}
			return
		}
		if x.async {
			var top map[string]any
			if json.Unmarshal(b, &top) != nil || top["async"] != true {
				t.Fatalf("%q: async without a top-level true", b)
			}
		}
	})
}

func TestJobMetricsExposition(t *testing.T) {
	q := newJobQueue(ServerConfig{}.withDefaults(), nil)
	for _, d := range []time.Duration{40 * time.Millisecond, time.Second, 20 * time.Minute} {
		q.syncSolves.observe(d)
	}
	q.asyncSolves.observe(3 * time.Second)
	q.queued.Add(2)
	q.running.Add(1)
	q.failed.Add(4)
	m := parseExposition(t, string(q.appendMetrics(nil)))
	want := map[string]float64{
		`lastmile_solve_duration_seconds_bucket{mode="sync",le="0.05"}`:  1,
		`lastmile_solve_duration_seconds_bucket{mode="sync",le="0.5"}`:   1,
		`lastmile_solve_duration_seconds_bucket{mode="sync",le="1"}`:     2,
		`lastmile_solve_duration_seconds_bucket{mode="sync",le="600"}`:   2,
		`lastmile_solve_duration_seconds_bucket{mode="sync",le="+Inf"}`:  3,
		`lastmile_solve_duration_seconds_count{mode="sync"}`:             3,
		`lastmile_solve_duration_seconds_sum{mode="sync"}`:               1201.04,
		`lastmile_solve_duration_seconds_bucket{mode="async",le="2.5"}`:  0,
		`lastmile_solve_duration_seconds_bucket{mode="async",le="5"}`:    1,
		`lastmile_solve_duration_seconds_bucket{mode="async",le="+Inf"}`: 1,
		`lastmile_jobs_queued`:                          2,
		`lastmile_jobs_running`:                         1,
		`lastmile_jobs_finished_total{status="done"}`:   0,
		`lastmile_jobs_finished_total{status="failed"}`: 4,
	}
	for k, v := range want {
		if got, ok := m[k]; !ok || math.Abs(got-v) > 1e-9 {
			t.Errorf("%s = %v (present %v), want %v", k, got, ok, v)
		}
	}
	if len(q.syncSolves.buckets) != len(solveBuckets)+1 {
		t.Fatalf("%d histogram slots for %d buckets", len(q.syncSolves.buckets), len(solveBuckets))
	}
}

// TestJobQueueFirstInFirstOut checks that queued jobs get the worker slot
// in submission order, and that a queued job cancelled before its turn
// neither runs nor holds the slot.
func TestJobQueueFirstInFirstOut(t *testing.T) {
	cfg := ServerConfig{JobWorkers: 1}.withDefaults()
	q := newJobQueue(cfg, slog.New(slog.DiscardHandler))
	var (
		mu    sync.Mutex
		order []int
	)
	unblock := make(chan struct{})
	first, err := q.submit(time.Second, func(ctx context.Context, _ func(int64, int, int64)) ([]byte, error) {
		<-unblock
		return []byte("{}"), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var jobs []*job
	for i := range 8 {
		j, err := q.submit(time.Second, func(ctx context.Context, _ func(int64, int, int64)) ([]byte, error) {
			mu.Lock()
			order = append(order, i)
			mu.Unlock()
			return []byte("{}"), nil
		})
		if err != nil {
			t.Fatal(err)
		}
		jobs = append(jobs, j)
	}
	q.remove(jobs[3].id) // cancelled while queued
	for q.view(jobs[3]).Status != jobFailed {
		time.Sleep(time.Millisecond)
	}
	close(unblock)
	for _, j := range append([]*job{first}, jobs...) {
		for s := q.view(j).Status; s != jobDone && s != jobFailed; s = q.view(j).Status {
			time.Sleep(time.Millisecond)
		}
	}
	if want := []int{0, 1, 2, 4, 5, 6, 7}; !slices.Equal(order, want) {
		t.Fatalf("jobs ran in the order %v, want %v", order, want)
	}
	if v := q.view(jobs[3]); v.Error == nil || v.Error.Code != "Cancelled" || v.Started != nil {
		t.Fatalf("cancelled queued job: %+v", v)
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.free != 1 || len(q.waiting) != 0 || q.queued.Load() != 0 || q.running.Load() != 0 {
		t.Fatalf("after the jobs: %d free slots, %d waiting, gauges %d queued %d running", q.free, len(q.waiting), q.queued.Load(), q.running.Load())
	}
}
