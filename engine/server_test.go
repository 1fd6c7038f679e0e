package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/lastmile/lastmile/graph"
)

// ---- fixture: the committed Monaco extract, prepared once per binary ----

var (
	monacoOnce   sync.Once
	monacoRouter *Router
	monacoErr    error
	monacoSkip   string
)

// monaco returns a Router on the graph prepared from the committed Monaco
// extract (datasets/osm/monaco.osm.pbf), skipping when it is missing.
func monaco(t testing.TB) *Router {
	t.Helper()
	monacoOnce.Do(func() {
		path := filepath.Join("..", "datasets", "osm", "monaco.osm.pbf")
		if _, err := os.Stat(path); err != nil {
			monacoSkip = fmt.Sprintf("committed Monaco extract missing (%v): run from a full checkout", err)
			return
		}
		g, _, err := Prepare(path, PrepareOptions{Workers: 2})
		if err != nil {
			monacoErr = err
			return
		}
		monacoRouter = NewRouter(g, 1000)
	})
	if monacoSkip != "" {
		t.Skip(monacoSkip)
	}
	if monacoErr != nil {
		t.Fatalf("prepare Monaco: %v", monacoErr)
	}
	return monacoRouter
}

// roadPoints returns n coordinates [lon, lat] of the tails of random
// routable road edges: points that snap.
func roadPoints(r *Router, n int, seed uint64) []LonLat {
	rng := rand.New(rand.NewPCG(seed, 99))
	var edges []uint32
	for e := range r.G.Road.Edges {
		if r.G.Routable(uint32(e)) {
			edges = append(edges, uint32(e))
		}
	}
	out := make([]LonLat, n)
	for i := range out {
		v := r.G.Road.Edges[edges[rng.IntN(len(edges))]].From
		out[i] = LonLat{r.G.Road.Lon[v], r.G.Road.Lat[v]}
	}
	return out
}

func coordPath(pts []LonLat) string {
	parts := make([]string, len(pts))
	for i, p := range pts {
		parts[i] = strconv.FormatFloat(p[0], 'g', -1, 64) + "," + strconv.FormatFloat(p[1], 'g', -1, 64)
	}
	return strings.Join(parts, ";")
}

// testServer is a server listening on 127.0.0.1:0 with a real client.
type testServer struct {
	*Server
	url  string
	addr string
	logs *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func startServer(t *testing.T, cfg ServerConfig, extra ...endpoint) *testServer {
	t.Helper()
	// A router of its own: live traffic posted to one server must not
	// change the graph other tests route on.
	r := monaco(t).fork()
	logs := &syncBuffer{}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	s, err := newServer(r, cfg, append(endpoints(), extra...))
	if err != nil {
		t.Fatal(err)
	}
	ts, done := serveTest(t, s)
	ts.logs = logs
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return ts
}

// serveTest serves s on 127.0.0.1:0 and returns the test server and the
// channel Serve's result arrives on once s is shut down.
func serveTest(t *testing.T, s *Server) (*testServer, chan error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln) }()
	return &testServer{Server: s, url: "http://" + ln.Addr().String(), addr: ln.Addr().String()}, done
}

var client = &http.Client{Timeout: 20 * time.Second}

type answer struct {
	status int
	header http.Header
	body   []byte
}

func (ts *testServer) do(t *testing.T, method, path string, body []byte) answer {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, ts.url+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, clip([]byte(path), 80), err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read: %v", method, path, err)
	}
	return answer{resp.StatusCode, resp.Header, b}
}

func decodeAny(t *testing.T, b []byte) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("answer is not JSON: %v: %s", err, clip(b, 300))
	}
	return v
}

// ---- services against the Router ----

func TestServerRouteMatchesRouter(t *testing.T) {
	ts := startServer(t, ServerConfig{})
	pts := roadPoints(ts.R, 60, 1)
	opts := []RouteOptions{
		{}, {Overview: "false"}, {Overview: "full"}, {Overview: "simplified", Geometries: "polyline6"},
		{Overview: "full", Geometries: "geojson"}, {Geometries: "polyline"},
	}
	for i := 0; i+2 < len(pts); i += 3 {
		opt := opts[(i/3)%len(opts)]
		way := pts[i : i+2+(i/3)%2] // 2 or 3 waypoints
		q := "?"
		if opt.Overview != "" {
			q += "overview=" + opt.Overview + "&"
		}
		if opt.Geometries != "" {
			q += "geometries=" + opt.Geometries
		}
		a := ts.do(t, "GET", "/v1/route/"+coordPath(way)+q, nil)
		want, err := ts.R.Route(way, opt)
		if err != nil {
			t.Fatalf("Router.Route %v: %v", way, err)
		}
		if a.status != 200 {
			t.Fatalf("route %v %+v: status %d: %s", way, opt, a.status, a.body)
		}
		if ct := a.header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("Content-Type %q", ct)
		}
		// Byte for byte what encoding/json writes for Router.Route.
		if w := append(mustJSON(want), '\n'); !bytes.Equal(a.body, w) {
			t.Fatalf("route %v %+v:\nhttp   %s\nrouter %s", way, opt, clip(a.body, 400), clip(w, 400))
		}
		if len(want.Routes[0].Legs) != len(way)-1 {
			t.Errorf("%d legs for %d waypoints", len(want.Routes[0].Legs), len(way))
		}
	}
	// The .json suffix OSRM allows.
	a := ts.do(t, "GET", "/v1/route/"+coordPath(pts[:2])+".json?overview=false", nil)
	if a.status != 200 {
		t.Fatalf(".json suffix: %d %s", a.status, a.body)
	}
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

type tableAnswer struct {
	Code         string       `json:"code"`
	Durations    [][]*float64 `json:"durations"`
	Distances    [][]*float64 `json:"distances"`
	Sources      []Waypoint   `json:"sources"`
	Destinations []Waypoint   `json:"destinations"`
}

func TestServerTableMatchesRoutes(t *testing.T) {
	ts := startServer(t, ServerConfig{})
	pts := roadPoints(ts.R, 7, 2)
	cases := []struct {
		name         string
		sources, dst []int
	}{
		{"all", nil, nil},
		{"subsets", []int{0, 3, 6}, []int{1, 2}},
		{"repeated", []int{4, 4}, []int{4, 0}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			body := mustJSON(TableRequest{Coordinates: pts, Sources: c.sources, Destinations: c.dst})
			a := ts.do(t, "POST", "/v1/table", body)
			if a.status != 200 {
				t.Fatalf("status %d: %s", a.status, a.body)
			}
			var got tableAnswer
			if err := json.Unmarshal(a.body, &got); err != nil {
				t.Fatal(err)
			}
			src, dst := c.sources, c.dst
			if src == nil {
				src = []int{0, 1, 2, 3, 4, 5, 6}
			}
			if dst == nil {
				dst = []int{0, 1, 2, 3, 4, 5, 6}
			}
			if got.Code != "Ok" || len(got.Durations) != len(src) || len(got.Distances) != len(src) ||
				len(got.Sources) != len(src) || len(got.Destinations) != len(dst) {
				t.Fatalf("shape: %s", clip(a.body, 300))
			}
			for i, si := range src {
				if len(got.Durations[i]) != len(dst) {
					t.Fatalf("row %d has %d cells", i, len(got.Durations[i]))
				}
				for j, dj := range dst {
					cell := got.Durations[i][j]
					if cell == nil {
						t.Fatalf("cell %d,%d null: every routable point reaches every other", i, j)
					}
					if pts[si] == pts[dj] {
						if *cell != 0 {
							t.Errorf("cell %d,%d: same point, duration %v", i, j, *cell)
						}
						continue
					}
					r, err := ts.R.Route([]LonLat{pts[si], pts[dj]}, RouteOptions{Overview: "false"})
					if err != nil {
						t.Fatal(err)
					}
					if want := r.Routes[0].Duration; math.Abs(*cell-want) > 0.1+1e-9 {
						t.Errorf("cell %d,%d: table %v s, route %v s", i, j, *cell, want)
					}
				}
			}
		})
	}
}

func TestServerNearest(t *testing.T) {
	ts := startServer(t, ServerConfig{})
	for _, p := range roadPoints(ts.R, 5, 3) {
		a := ts.do(t, "GET", "/v1/nearest/"+coordPath([]LonLat{p}), nil)
		if a.status != 200 {
			t.Fatalf("status %d: %s", a.status, a.body)
		}
		var got NearestResponse
		if err := json.Unmarshal(a.body, &got); err != nil {
			t.Fatal(err)
		}
		_, want, err := ts.R.Snap([]LonLat{p})
		if err != nil {
			t.Fatal(err)
		}
		if got.Code != "Ok" || !reflect.DeepEqual(got.Waypoints, want) {
			t.Fatalf("got %+v, want %+v", got, want)
		}
		// The point is a road node: it snaps onto itself.
		if got.Waypoints[0].Distance > 0.1 {
			t.Errorf("road node %v snapped %v m away", p, got.Waypoints[0].Distance)
		}
	}
	// A point in the middle of a named street is named after it, as OSRM
	// names waypoints.
	net := ts.R.G.Road
	checked := 0
	for e := 0; e < len(net.Edges) && checked < 20; e += 3 {
		ed := net.Edges[e]
		name := net.EdgeName(uint32(e))
		// The middle of the edge's first segment, when that is long
		// enough to be alone there.
		lon, lat := net.Lon[ed.To], net.Lat[ed.To]
		if ed.ShapeEnd > ed.ShapeStart {
			lon, lat = net.ShapeLon[ed.ShapeStart], net.ShapeLat[ed.ShapeStart]
		}
		if name == "" || graph.Haversine(net.Lat[ed.From], net.Lon[ed.From], lat, lon) < 30 {
			continue
		}
		mid := LonLat{(net.Lon[ed.From] + lon) / 2, (net.Lat[ed.From] + lat) / 2}
		a := ts.do(t, "GET", "/v1/nearest/"+coordPath([]LonLat{mid}), nil)
		var got NearestResponse
		if err := json.Unmarshal(a.body, &got); err != nil || a.status != 200 || len(got.Waypoints) != 1 {
			t.Fatalf("nearest %v: %d %s", mid, a.status, a.body)
		}
		if got.Waypoints[0].Name != name {
			t.Errorf("the middle of edge %d (%q) is named %q", e, name, got.Waypoints[0].Name)
		}
		checked++
	}
	if checked < 10 {
		t.Errorf("only %d named streets checked", checked)
	}
}

// ---- error paths ----

func TestServerErrors(t *testing.T) {
	ts := startServer(t, ServerConfig{MaxBodyBytes: 4096, MaxRouteCoordinates: 10, MaxTableCells: 20})
	doc := openapiOf(t, ts)
	pts := roadPoints(ts.R, 21, 4)
	two := coordPath(pts[:2])
	sea := "7.5,43.68" // open sea, 5 km south of Monaco
	manyCoords := coordPath(pts[:11])
	var huge strings.Builder
	for i := range 1000 {
		if i > 0 {
			huge.WriteByte(';')
		}
		huge.WriteString("7.4212345,43.7312345")
	}
	big := `{"coordinates":[` + strings.Repeat("[7.42,43.73],", 400) + `[7.42,43.73]]}`
	cases := []struct {
		name, method, path, body string
		status                   int
		code, inMessage          string
	}{
		{"unknown path", "GET", "/v2/route/" + two, "", 404, "InvalidUrl", "/v2/route"},
		{"root", "GET", "/", "", 404, "InvalidUrl", "no service"},
		{"trailing slash", "POST", "/v1/table/", "{}", 404, "InvalidUrl", ""},
		{"route with a slash in the coordinates", "GET", "/v1/route/" + two + "/x", "", 404, "InvalidUrl", ""},
		{"route without coordinates", "GET", "/v1/route/", "", 404, "InvalidUrl", ""},
		{"wrong method on route", "POST", "/v1/route/" + two, "", 405, "MethodNotAllowed", "use GET"},
		{"wrong method on table", "GET", "/v1/table", "", 405, "MethodNotAllowed", "use POST"},
		{"wrong method on health", "DELETE", "/healthz", "", 405, "MethodNotAllowed", "DELETE"},
		{"one coordinate", "GET", "/v1/route/" + coordPath(pts[:1]), "", 400, "InvalidQuery", "at least 2"},
		{"not a number", "GET", "/v1/route/7.42,abc;7.43,43.74", "", 400, "InvalidValue", "coordinate 0"},
		{"missing latitude", "GET", "/v1/route/" + two + ";7.43", "", 400, "InvalidValue", "coordinate 2"},
		{"empty coordinate", "GET", "/v1/route/" + two + ";", "", 400, "InvalidValue", "coordinate 2"},
		{"longitude out of range", "GET", "/v1/route/200,43.7;" + coordPath(pts[:1]), "", 400, "InvalidValue", "longitude 200"},
		{"latitude out of range", "GET", "/v1/route/" + coordPath(pts[:1]) + ";7.4,-91", "", 400, "InvalidValue", "latitude -91"},
		{"NaN", "GET", "/v1/route/NaN,43.7;" + coordPath(pts[:1]), "", 400, "InvalidValue", "longitude NaN"},
		{"in the sea", "GET", "/v1/route/" + coordPath(pts[:1]) + ";" + sea, "", 422, "NoSegment", "coordinate 1"},
		{"too many coordinates", "GET", "/v1/route/" + manyCoords, "", 413, "TooBig", "11 coordinates, at most 10"},
		{"URL too long", "GET", "/v1/route/" + huge.String(), "", 431, "HeaderTooBig", "over"},
		{"unknown parameter", "GET", "/v1/route/" + two + "?overveiw=false", "", 400, "InvalidOptions", `"overveiw"`},
		{"bad overview", "GET", "/v1/route/" + two + "?overview=yes", "", 400, "InvalidOptions", "overview"},
		{"bad geometries", "GET", "/v1/route/" + two + "?geometries=wkt", "", 400, "InvalidOptions", "wkt"},
		{"steps asked", "GET", "/v1/route/" + two + "?steps=true", "", 400, "InvalidOptions", "steps"},
		{"nearest two points", "GET", "/v1/nearest/" + two, "", 400, "InvalidValue", "exactly one"},
		{"nearest in the sea", "GET", "/v1/nearest/" + sea, "", 422, "NoSegment", "no road within 1000 m"},
		{"nearest out of range", "GET", "/v1/nearest/7.4,95", "", 400, "InvalidValue", "latitude 95"},
		{"empty body", "POST", "/v1/table", "", 400, "InvalidQuery", "empty body"},
		{"malformed JSON", "POST", "/v1/table", `{"coordinates":[[7.42,43.73],]}`, 400, "InvalidQuery", "malformed JSON"},
		{"truncated JSON", "POST", "/v1/table", `{"coordinates":[[7.42,43.73]`, 400, "InvalidQuery", "unexpected end"},
		{"not an object", "POST", "/v1/table", `[1,2]`, 400, "InvalidQuery", "want an object"},
		{"trailing data", "POST", "/v1/table", `{"coordinates":[[7.42,43.73]]} {}`, 400, "InvalidQuery", "trailing data"},
		{"unknown field", "POST", "/v1/table", `{"coordinates":[[7.42,43.73]],"annotation":"duration"}`, 400, "InvalidQuery", `"annotation"`},
		{"field in the wrong case", "POST", "/v1/table", `{"Coordinates":[[7.42,43.73]]}`, 400, "InvalidQuery", `"Coordinates"`},
		{"duplicate field", "POST", "/v1/table", `{"coordinates":[[7.42,43.73]],"sources":[0],"sources":[0]}`, 400, "InvalidQuery", "sources given twice"},
		{"coordinates wrong type", "POST", "/v1/table", `{"coordinates":"7.42,43.73"}`, 400, "InvalidQuery", "field coordinates"},
		{"coordinate as strings", "POST", "/v1/table", `{"coordinates":[["7.42","43.73"]]}`, 400, "InvalidQuery", "coordinates[0]"},
		{"coordinate with three numbers", "POST", "/v1/table", `{"coordinates":[[7.42,43.73],[7.42,43.73,5]]}`, 400, "InvalidQuery", "coordinates[1]"},
		{"coordinate with one number", "POST", "/v1/table", `{"coordinates":[[7.42]]}`, 400, "InvalidQuery", "coordinates[0]"},
		{"coordinate null", "POST", "/v1/table", `{"coordinates":[null]}`, 400, "InvalidQuery", "coordinates[0]"},
		{"coordinate overflow", "POST", "/v1/table", `{"coordinates":[[1e400,43.7]]}`, 400, "InvalidQuery", "out of range"},
		{"table latitude out of range", "POST", "/v1/table", `{"coordinates":[[7.42,43.73],[7.42,95]]}`, 400, "InvalidValue", "coordinates[1]: latitude 95"},
		{"sources wrong type", "POST", "/v1/table", `{"coordinates":[[7.42,43.73]],"sources":"0"}`, 400, "InvalidQuery", "field sources"},
		{"fractional index", "POST", "/v1/table", `{"coordinates":[[7.42,43.73]],"sources":[0.5]}`, 400, "InvalidQuery", "field sources"},
		{"index out of range", "POST", "/v1/table", `{"coordinates":[[7.42,43.73]],"destinations":[1]}`, 400, "InvalidValue", "destinations[0] = 1"},
		{"negative index", "POST", "/v1/table", `{"coordinates":[[7.42,43.73]],"sources":[-1]}`, 400, "InvalidValue", "sources[0] = -1"},
		{"empty sources", "POST", "/v1/table", `{"coordinates":[[7.42,43.73]],"sources":[]}`, 400, "InvalidQuery", "sources: empty"},
		{"no coordinates", "POST", "/v1/table", `{"coordinates":[]}`, 400, "InvalidQuery", "at least one"},
		{"table in the sea", "POST", "/v1/table", `{"coordinates":[[7.42,43.73],[` + sea + `]]}`, 422, "NoSegment", "coordinate 1"},
		{"too many cells", "POST", "/v1/table", mustTable(pts[:5], nil, nil), 413, "TooBig", "5x5"},
		{"too many coordinates in a table", "POST", "/v1/table", mustTable(pts[:21], []int{0}, []int{1}), 413, "TooBig", "coordinates: 21"},
		{"body too large", "POST", "/v1/table", big, 413, "TooBig", "4096 bytes"},
		{"table query parameter", "POST", "/v1/table?x=1", `{"coordinates":[[7.42,43.73]]}`, 400, "InvalidOptions", `"x"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var body []byte
			if c.body != "" || c.method == "POST" {
				body = []byte(c.body)
			}
			a := ts.do(t, c.method, c.path, body)
			if a.status != c.status {
				t.Fatalf("status %d, want %d: %s", a.status, c.status, a.body)
			}
			var e struct{ Code, Message string }
			if err := json.Unmarshal(a.body, &e); err != nil {
				t.Fatalf("error answer not JSON: %v: %q", err, a.body)
			}
			if e.Code != c.code || !strings.Contains(e.Message, c.inMessage) {
				t.Fatalf("got %s %q, want %s containing %q", e.Code, e.Message, c.code, c.inMessage)
			}
			if ct := a.header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
			if statusOf(e.Code) != a.status {
				t.Errorf("code %s answered %d but statusOf says %d", e.Code, a.status, statusOf(e.Code))
			}
			if err := doc.validate(doc.schema("Error"), decodeAny(t, a.body), "error"); err != nil {
				t.Errorf("error answer does not match the Error schema: %v", err)
			}
			if c.status == 405 && a.header.Get("Allow") == "" {
				t.Error("405 without an Allow header")
			}
		})
	}
	// A request fasthttp cannot parse gets the JSON error too.
	c, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte("GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(c)
	if !bytes.HasPrefix(raw, []byte("HTTP/1.1 400 ")) || !bytes.Contains(raw, []byte(`{"code":"InvalidQuery","message":"malformed HTTP request`)) {
		t.Errorf("unparsable request answered %q", clip(raw, 300))
	}
	// Errors are logged at debug level with their code.
	if !regexp.MustCompile(`level=DEBUG msg=request method=GET path=/v1/nearest/7.5,43.68 status=422 .*NoSegment`).MatchString(ts.logs.String()) {
		t.Errorf("no debug line with the error code in the log")
	}
	// The server still answers after all that.
	if a := ts.do(t, "GET", "/v1/route/"+two, nil); a.status != 200 {
		t.Fatalf("route after errors: %d %s", a.status, a.body)
	}
}

func mustTable(pts []LonLat, src, dst []int) string {
	return string(mustJSON(TableRequest{Coordinates: pts, Sources: src, Destinations: dst}))
}

// ---- robustness: timeouts, panics, shutdown ----

var testDoc = &apiOperation{ID: "test", Summary: "test", OK: apiContent{MediaType: "text/plain", Schema: map[string]any{"type": "string"}}}

func TestServerTimeout(t *testing.T) {
	slow := endpoint{Method: "GET", Pattern: "/test/slow", Doc: testDoc, Handle: func(s *Server, ctx *fasthttp.RequestCtx, _ pathParams) error {
		_, err := s.compute(func() (any, error) { time.Sleep(400 * time.Millisecond); return "late", nil })
		if err != nil {
			return err
		}
		ctx.SetBodyString("late")
		return nil
	}}
	ts := startServer(t, ServerConfig{Timeout: 50 * time.Millisecond}, slow)
	t0 := time.Now()
	a := ts.do(t, "GET", "/test/slow", nil)
	if el := time.Since(t0); el > 300*time.Millisecond {
		t.Errorf("timeout answered after %v", el)
	}
	if a.status != 503 || !bytes.Contains(a.body, []byte(`"Timeout"`)) {
		t.Fatalf("got %d %s, want 503 Timeout", a.status, a.body)
	}
}

func TestServerQueuesComputations(t *testing.T) {
	release := make(chan struct{})
	hold := endpoint{Method: "GET", Pattern: "/test/hold", Doc: testDoc, Handle: func(s *Server, ctx *fasthttp.RequestCtx, _ pathParams) error {
		_, err := s.compute(func() (any, error) { <-release; return nil, nil })
		if err != nil {
			return err
		}
		ctx.SetBodyString("done")
		return nil
	}}
	ts := startServer(t, ServerConfig{MaxComputations: 1, Timeout: 300 * time.Millisecond}, hold)
	first := make(chan answer, 1)
	go func() { first <- ts.do(t, "GET", "/test/hold", nil) }()
	// Wait until the first request holds the only slot.
	for len(ts.slots) == 0 {
		time.Sleep(time.Millisecond)
	}
	pts := roadPoints(ts.R, 2, 8)
	a := ts.do(t, "GET", "/v1/route/"+coordPath(pts), nil)
	if a.status != 503 || !strings.Contains(string(a.body), "no computation slot free") {
		t.Errorf("route while the slot is held: %d %s", a.status, a.body)
	}
	if a := <-first; a.status != 503 {
		t.Errorf("held request: %d %s, want 503 Timeout", a.status, a.body)
	}
	close(release)
	// The slot comes back once the held computation ends.
	deadline := time.Now().Add(5 * time.Second)
	for len(ts.slots) != 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if a := ts.do(t, "GET", "/v1/route/"+coordPath(pts), nil); a.status != 200 {
		t.Errorf("route after release: %d %s", a.status, a.body)
	}
}

func TestServerRecoversFromPanics(t *testing.T) {
	rows := []endpoint{
		{Method: "GET", Pattern: "/test/panic", Doc: testDoc, Handle: func(*Server, *fasthttp.RequestCtx, pathParams) error {
			var m map[string]int
			m["boom"]++ // nil map: panics
			return nil
		}},
		{Method: "GET", Pattern: "/test/panic-compute", Doc: testDoc, Handle: func(s *Server, _ *fasthttp.RequestCtx, _ pathParams) error {
			_, err := s.compute(func() (any, error) { panic("compute boom") })
			return err
		}},
		{Method: "GET", Pattern: "/test/error", Doc: testDoc, Handle: func(*Server, *fasthttp.RequestCtx, pathParams) error {
			return errors.New("disk on fire")
		}},
	}
	ts := startServer(t, ServerConfig{}, rows...)
	for _, p := range []string{"/test/panic", "/test/panic-compute", "/test/error"} {
		a := ts.do(t, "GET", p, nil)
		if a.status != 500 || string(a.body) != `{"code":"InternalError","message":"internal error"}`+"\n" {
			t.Errorf("%s: got %d %s", p, a.status, a.body)
		}
	}
	logs := ts.logs.String()
	for _, want := range []string{"level=ERROR msg=\"panic in handler\"", "assignment to entry in nil map", "compute boom", "goroutine ", "disk on fire"} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %q", want)
		}
	}
	if a := ts.do(t, "GET", "/healthz", nil); a.status != 200 || string(a.body) != "ok\n" {
		t.Fatalf("healthz after panics: %d %q", a.status, a.body)
	}
}

func TestServerGracefulShutdown(t *testing.T) {
	started, release := make(chan struct{}), make(chan struct{})
	payload := strings.Repeat("lastmile ", 100_000) // 900 kB, more than socket buffers
	slow := endpoint{Method: "GET", Pattern: "/test/slow", Doc: testDoc, Handle: func(_ *Server, ctx *fasthttp.RequestCtx, _ pathParams) error {
		close(started)
		<-release
		ctx.SetBodyString(payload)
		return nil
	}}
	r := monaco(t)
	s, err := newServer(r, ServerConfig{}, append(endpoints(), slow))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()
	url := "http://" + ln.Addr().String()

	type result struct {
		status int
		body   string
		err    error
	}
	got := make(chan result, 1)
	go func() {
		resp, err := client.Get(url + "/test/slow")
		if err != nil {
			got <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		got <- result{resp.StatusCode, string(b), err}
	}()
	<-started
	shut := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		shut <- s.Shutdown(ctx)
	}()
	// New connections are refused once shutdown has begun.
	deadline := time.Now().Add(2 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", ln.Addr().String(), 100*time.Millisecond)
		if err != nil {
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("listener still accepting 2 s after Shutdown")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if s.ready.Load() {
		t.Error("still ready during shutdown")
	}
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned (%v) with a request in flight", err)
	case <-time.After(200 * time.Millisecond):
	}
	close(release)
	select {
	case r := <-got:
		if r.err != nil || r.status != 200 || r.body != payload {
			t.Fatalf("request in flight: status %d, %d bytes, err %v", r.status, len(r.body), r.err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("request in flight never answered")
	}
	select {
	case err := <-shut:
		if err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Shutdown did not return after the last request")
	}
	if err := <-served; err != nil {
		t.Fatalf("Serve: %v", err)
	}
}

// ---- concurrency and metrics ----

func TestServerConcurrentRoutesAndMetrics(t *testing.T) {
	ts := startServer(t, ServerConfig{})
	pts := roadPoints(ts.R, 40, 5)
	want := make([][]byte, 20)
	for i := range want {
		r, err := ts.R.Route(pts[2*i:2*i+2], RouteOptions{})
		if err != nil {
			t.Fatal(err)
		}
		want[i] = append(mustJSON(r), '\n')
	}
	const workers, each = 8, 25
	var wg sync.WaitGroup
	errc := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range each {
				i := (w*each + k) % len(want)
				resp, err := client.Get(ts.url + "/v1/route/" + coordPath(pts[2*i:2*i+2]))
				if err != nil {
					errc <- err
					return
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 || !bytes.Equal(b, want[i]) {
					errc <- fmt.Errorf("pair %d: %d %s", i, resp.StatusCode, clip(b, 200))
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	ts.do(t, "GET", "/nowhere", nil)
	ts.do(t, "GET", "/v1/nearest/7.5,43.68", nil)

	a := ts.do(t, "GET", "/metrics", nil)
	if a.status != 200 || !strings.HasPrefix(a.header.Get("Content-Type"), "text/plain; version=0.0.4") {
		t.Fatalf("metrics: %d %q", a.status, a.header.Get("Content-Type"))
	}
	m := parseExposition(t, string(a.body))
	route := `endpoint="/v1/route/{coordinates}",method="GET"`
	checks := map[string]float64{
		`lastmile_http_requests_total{` + route + `,code="200"}`:                                    workers * each,
		`lastmile_http_requests_total{endpoint="unmatched",code="404"}`:                             1,
		`lastmile_http_requests_total{endpoint="/v1/nearest/{coordinate}",method="GET",code="422"}`: 1,
		`lastmile_http_request_duration_seconds_count{` + route + `}`:                               workers * each,
		`lastmile_http_request_duration_seconds_bucket{` + route + `,le="+Inf"}`:                    workers * each,
		`lastmile_http_requests_in_flight`:                                                          1, // this scrape
	}
	for k, v := range checks {
		if m[k] != v {
			t.Errorf("%s = %v, want %v", k, m[k], v)
		}
	}
	if s := m[`lastmile_http_request_duration_seconds_sum{`+route+`}`]; !(s > 0 && s < workers*each) {
		t.Errorf("latency sum %v s", s)
	}
	// Buckets are cumulative.
	prev := -1.0
	for _, ub := range latencyBuckets {
		v := m[`lastmile_http_request_duration_seconds_bucket{`+route+`,le="`+strconv.FormatFloat(ub.Seconds(), 'g', -1, 64)+`"}`]
		if v < prev {
			t.Errorf("bucket %v: %v < %v", ub, v, prev)
		}
		prev = v
	}
	if _, ok := m["go_goroutines"]; !ok {
		t.Error("no go_goroutines")
	}
	// A second scrape sees the first one.
	m2 := parseExposition(t, string(ts.do(t, "GET", "/metrics", nil).body))
	if k := `lastmile_http_requests_total{endpoint="/metrics",method="GET",code="200"}`; m2[k] != 1 {
		t.Errorf("%s = %v, want 1", k, m2[k])
	}
}

// parseExposition checks every line of a Prometheus text exposition and
// returns the samples by series.
func parseExposition(t *testing.T, text string) map[string]float64 {
	t.Helper()
	sample := regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\\n]|\\.)*",?)*\})?) (\S+)$`)
	meta := regexp.MustCompile(`^# (HELP [a-zA-Z_:][a-zA-Z0-9_:]* .+|TYPE [a-zA-Z_:][a-zA-Z0-9_:]* (counter|gauge|histogram|summary|untyped))$`)
	out := map[string]float64{}
	typed := map[string]bool{}
	for i, line := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
		if strings.HasPrefix(line, "#") {
			if !meta.MatchString(line) {
				t.Fatalf("line %d: bad comment %q", i+1, line)
			}
			if f := strings.Fields(line); f[1] == "TYPE" {
				if typed[f[2]] {
					t.Fatalf("line %d: second TYPE for %s", i+1, f[2])
				}
				typed[f[2]] = true
			}
			continue
		}
		g := sample.FindStringSubmatch(line)
		if g == nil {
			t.Fatalf("line %d: bad sample %q", i+1, line)
		}
		v, err := strconv.ParseFloat(g[5], 64)
		if err != nil {
			t.Fatalf("line %d: value %q", i+1, g[5])
		}
		if _, dup := out[g[1]]; dup {
			t.Fatalf("line %d: duplicate series %s", i+1, g[1])
		}
		out[g[1]] = v
	}
	return out
}

func TestMetricsObserve(t *testing.T) {
	m := newMetrics([]endpoint{{Method: "GET", Pattern: `/a"b\c`}})
	m.observe(0, 200, 100*time.Microsecond) // first bucket (bounds are inclusive)
	m.observe(0, 200, 101*time.Microsecond) // second
	m.observe(0, 503, time.Minute)          // +Inf
	m.observe(m.unmatched, 99, time.Second) // invalid status counted as 500
	m.observe(m.unmatched, 404, 0)          // parse errors have no duration
	got := parseExposition(t, string(m.appendText(nil)))
	l := `endpoint="/a\"b\\c",method="GET"`
	want := map[string]float64{
		`lastmile_http_requests_total{` + l + `,code="200"}`:                    2,
		`lastmile_http_requests_total{` + l + `,code="503"}`:                    1,
		`lastmile_http_requests_total{endpoint="unmatched",code="500"}`:         1,
		`lastmile_http_requests_total{endpoint="unmatched",code="404"}`:         1,
		`lastmile_http_request_duration_seconds_bucket{` + l + `,le="0.0001"}`:  1,
		`lastmile_http_request_duration_seconds_bucket{` + l + `,le="0.00025"}`: 2,
		`lastmile_http_request_duration_seconds_bucket{` + l + `,le="30"}`:      2,
		`lastmile_http_request_duration_seconds_bucket{` + l + `,le="+Inf"}`:    3,
		`lastmile_http_request_duration_seconds_count{` + l + `}`:               3,
		`lastmile_http_request_duration_seconds_sum{` + l + `}`:                 60.000201,
		`lastmile_http_request_duration_seconds_count{endpoint="unmatched"}`:    2,
	}
	for k, v := range want {
		if math.Abs(got[k]-v) > 1e-9 {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
}

// ---- the OpenAPI document against the route table ----

// apiDoc is the served OpenAPI document with a small JSON Schema
// validator for the keywords the document uses (an unknown keyword fails
// the validation, so the validator cannot silently ignore a constraint).
type apiDoc struct{ root map[string]any }

func openapiOf(t *testing.T, ts *testServer) *apiDoc {
	t.Helper()
	a := ts.do(t, "GET", "/v1/openapi.json", nil)
	if a.status != 200 {
		t.Fatalf("openapi.json: %d", a.status)
	}
	root, ok := decodeAny(t, a.body).(map[string]any)
	if !ok {
		t.Fatal("openapi.json is not an object")
	}
	return &apiDoc{root}
}

func (d *apiDoc) get(path ...string) any {
	var v any = d.root
	for _, k := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

func (d *apiDoc) schema(name string) any { return d.get("components", "schemas", name) }

func (d *apiDoc) resolve(v any) any {
	for {
		m, ok := v.(map[string]any)
		if !ok {
			return v
		}
		r, ok := m["$ref"].(string)
		if !ok {
			return v
		}
		path, ok := strings.CutPrefix(r, "#/")
		if !ok {
			return nil
		}
		v = d.get(strings.Split(path, "/")...)
	}
}

var knownKeywords = map[string]bool{
	"$ref": true, "type": true, "const": true, "enum": true, "oneOf": true, "required": true, "properties": true,
	"additionalProperties": true, "items": true, "prefixItems": true, "minItems": true, "maxItems": true,
	"minimum": true, "maximum": true, "pattern": true, "description": true, "default": true,
}

func (d *apiDoc) validate(schema, v any, at string) error {
	if b, ok := schema.(bool); ok {
		if !b {
			return fmt.Errorf("%s: not allowed", at)
		}
		return nil
	}
	s, ok := d.resolve(schema).(map[string]any)
	if !ok {
		return fmt.Errorf("%s: bad schema %v", at, schema)
	}
	for k := range s {
		if !knownKeywords[k] {
			return fmt.Errorf("%s: validator does not know keyword %q", at, k)
		}
	}
	if c, ok := s["const"]; ok && !reflect.DeepEqual(c, v) {
		return fmt.Errorf("%s: %v, want %v", at, v, c)
	}
	if e, ok := s["enum"].([]any); ok {
		found := false
		for _, x := range e {
			found = found || reflect.DeepEqual(x, v)
		}
		if !found {
			return fmt.Errorf("%s: %v not in %v", at, v, e)
		}
	}
	if one, ok := s["oneOf"].([]any); ok {
		n := 0
		for _, alt := range one {
			if d.validate(alt, v, at) == nil {
				n++
			}
		}
		if n != 1 {
			return fmt.Errorf("%s: matches %d of the oneOf alternatives", at, n)
		}
	}
	if ty, ok := s["type"]; ok {
		var types []any
		if str, ok := ty.(string); ok {
			types = []any{str}
		} else {
			types, _ = ty.([]any)
		}
		match := false
		for _, x := range types {
			match = match || jsonTypeIs(v, x.(string))
		}
		if !match {
			return fmt.Errorf("%s: %T is not %v", at, v, ty)
		}
	}
	switch x := v.(type) {
	case map[string]any:
		if req, ok := s["required"].([]any); ok {
			for _, k := range req {
				if _, ok := x[k.(string)]; !ok {
					return fmt.Errorf("%s: missing %v", at, k)
				}
			}
		}
		props, _ := s["properties"].(map[string]any)
		for k, val := range x {
			if ps, ok := props[k]; ok {
				if err := d.validate(ps, val, at+"."+k); err != nil {
					return err
				}
			} else if ap, ok := s["additionalProperties"]; ok {
				if err := d.validate(ap, val, at+"."+k); err != nil {
					return err
				}
			}
		}
	case []any:
		if mn, ok := s["minItems"].(float64); ok && float64(len(x)) < mn {
			return fmt.Errorf("%s: %d items, at least %v", at, len(x), mn)
		}
		if mx, ok := s["maxItems"].(float64); ok && float64(len(x)) > mx {
			return fmt.Errorf("%s: %d items, at most %v", at, len(x), mx)
		}
		prefix, _ := s["prefixItems"].([]any)
		for i, el := range x {
			var sch any = true
			if i < len(prefix) {
				sch = prefix[i]
			} else if it, ok := s["items"]; ok {
				sch = it
			}
			if err := d.validate(sch, el, fmt.Sprintf("%s[%d]", at, i)); err != nil {
				return err
			}
		}
	case float64:
		if mn, ok := s["minimum"].(float64); ok && x < mn {
			return fmt.Errorf("%s: %v < %v", at, x, mn)
		}
		if mx, ok := s["maximum"].(float64); ok && x > mx {
			return fmt.Errorf("%s: %v > %v", at, x, mx)
		}
	case string:
		if p, ok := s["pattern"].(string); ok && !regexp.MustCompile(p).MatchString(x) {
			return fmt.Errorf("%s: %q does not match %s", at, x, p)
		}
	}
	return nil
}

func jsonTypeIs(v any, ty string) bool {
	switch ty {
	case "null":
		return v == nil
	case "boolean":
		_, ok := v.(bool)
		return ok
	case "string":
		_, ok := v.(string)
		return ok
	case "number":
		_, ok := v.(float64)
		return ok
	case "integer":
		f, ok := v.(float64)
		return ok && f == math.Trunc(f)
	case "array":
		_, ok := v.([]any)
		return ok
	case "object":
		_, ok := v.(map[string]any)
		return ok
	}
	return false
}

func TestOpenAPIDocumentMatchesRoutes(t *testing.T) {
	ts := startServer(t, ServerConfig{})
	doc := openapiOf(t, ts)
	for _, k := range []string{"openapi", "info", "paths", "components"} {
		if doc.root[k] == nil {
			t.Fatalf("document lacks %q", k)
		}
	}
	if v, _ := doc.root["openapi"].(string); !strings.HasPrefix(v, "3.1.") {
		t.Fatalf("openapi %q, want 3.1.x", v)
	}
	if doc.get("info", "title") == nil || doc.get("info", "version") == nil {
		t.Fatal("info needs title and version")
	}
	// Every registered route is documented, each parameter of its pattern
	// as a required path parameter, in pattern order, and no other...
	for _, e := range ts.routes.rows {
		op, _ := doc.get("paths", e.Pattern, strings.ToLower(e.Method)).(map[string]any)
		if op == nil {
			t.Errorf("route %s %s is not in the document", e.Method, e.Pattern)
			continue
		}
		if err := checkPathParams(doc, e.Pattern, op); err != nil {
			t.Errorf("route %s %s: %v", e.Method, e.Pattern, err)
		}
	}
	// ...and every documented operation is served: call it with the
	// document's own examples (and every enum value of its query
	// parameters), expect 200 with the documented media type, and check
	// JSON answers against the documented schema.
	paths, _ := doc.root["paths"].(map[string]any)
	ops := 0
	for path, item := range paths {
		for method, opv := range item.(map[string]any) {
			ops++
			op := opv.(map[string]any)
			if tags, _ := op["tags"].([]any); len(tags) > 0 && (tags[0] == "dispatch" || tags[0] == "access" || tags[0] == "notifications" || tags[0] == "tracking" || tags[0] == "analytics") {
				// Dispatch needs a state store, keys and an order of
				// calls: dispatch_http_test.go calls them with their
				// examples.
				continue
			}
			url := path
			var queries []string
			params, _ := op["parameters"].([]any)
			for _, pv := range params {
				p := doc.resolve(pv).(map[string]any)
				name := p["name"].(string)
				switch p["in"] {
				case "path":
					ex, ok := p["example"].(string)
					if !ok {
						t.Fatalf("%s %s: path parameter %s has no example", method, path, name)
					}
					if err := doc.validate(p["schema"], ex, name); err != nil {
						t.Errorf("%s %s: example: %v", method, path, err)
					}
					if strings.HasPrefix(path, jobsPath) {
						// A job's URL needs a job: create one through the
						// documented asynchronous solve (its 202 answer is
						// checked against the document) and wait until it
						// is done, so that the answer carries a solution.
						ex = submitDocumentedJob(t, ts, doc)
						if id := waitJob(t, ts, ex, 20*time.Second); id["status"] != "done" {
							t.Fatalf("job %s: %v", ex, id)
						}
						if err := doc.validate(p["schema"], ex, name); err != nil {
							t.Errorf("%s %s: job id: %v", method, path, err)
						}
					}
					if path == "/v1/eta/{vehicle}" {
						// A vehicle's ETA needs a tracked vehicle: its pings
						// and stops from the documented examples.
						trackDocumentedVehicle(t, ts, doc, ex)
					}
					url = strings.Replace(url, "{"+name+"}", ex, 1)
				case "query":
					if vals, ok := p["schema"].(map[string]any)["enum"].([]any); ok {
						for _, v := range vals {
							queries = append(queries, name+"="+v.(string))
						}
					}
				default:
					t.Errorf("%s %s: parameter in %v", method, path, p["in"])
				}
			}
			if strings.Contains(url, "{") {
				t.Fatalf("%s %s: undocumented path parameter", method, path)
			}
			var body []byte
			if rb, ok := op["requestBody"].(map[string]any); ok {
				media := rb["content"].(map[string]any)["application/json"].(map[string]any)
				body = mustJSON(media["example"])
				if err := doc.validate(media["schema"], decodeAny(t, body), "requestBody"); err != nil {
					t.Errorf("%s %s: body example: %v", method, path, err)
				}
			}
			content := op["responses"].(map[string]any)["200"].(map[string]any)["content"].(map[string]any)
			if len(content) != 1 {
				t.Fatalf("%s %s: want one media type", method, path)
			}
			for _, q := range append([]string{""}, queries...) {
				u := url
				if q != "" {
					u += "?" + q
				}
				a := ts.do(t, strings.ToUpper(method), u, body)
				if a.status != 200 {
					t.Errorf("documented %s %s: status %d: %s", strings.ToUpper(method), u, a.status, clip(a.body, 200))
					continue
				}
				for mt, m := range content {
					if ct := a.header.Get("Content-Type"); !strings.HasPrefix(ct, mt) {
						t.Errorf("%s %s: Content-Type %q, documented %q", method, u, ct, mt)
					}
					var v any = string(a.body)
					if mt == "application/json" {
						v = decodeAny(t, a.body)
					}
					if err := doc.validate(m.(map[string]any)["schema"], v, "answer"); err != nil {
						t.Errorf("%s %s: answer does not match the schema: %v", method, u, err)
					}
				}
			}
		}
	}
	if ops != len(ts.routes.rows) {
		t.Errorf("%d documented operations, %d routes", ops, len(ts.routes.rows))
	}
	// Every $ref resolves.
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			if r, ok := x["$ref"].(string); ok && doc.resolve(x) == nil {
				t.Errorf("dangling $ref %s", r)
			}
			for _, y := range x {
				walk(y)
			}
		case []any:
			for _, y := range x {
				walk(y)
			}
		}
	}
	walk(doc.root)
}

// ---- parsers ----

func TestParseCoordList(t *testing.T) {
	cases := []struct {
		in   string
		max  int
		want []LonLat
		err  string
	}{
		{"7.4,43.7;7.5,43.8", 5, []LonLat{{7.4, 43.7}, {7.5, 43.8}}, ""},
		{"7.4,43.7;7.5,43.8.json", 5, []LonLat{{7.4, 43.7}, {7.5, 43.8}}, ""},
		{"-8.6, 41.1", 5, []LonLat{{-8.6, 41.1}}, ""},
		{"7.4,43.7;7.5,43.8;1,2", 2, nil, "TooBig"},
		{";;;;;;;;", 3, nil, "TooBig"},
		{"7.4,43.7;", 5, nil, "coordinate 1"},
		{"", 5, nil, "coordinate 0"},
		{"7.4;43.7", 5, nil, "coordinate 0"},
		{"1,2,3", 5, nil, "coordinate 0"},
		{"181,0", 5, nil, "longitude"},
		{"0,Inf", 5, nil, "latitude"},
	}
	for _, c := range cases {
		got, err := parseCoordList([]byte(c.in), c.max)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%q: err %v, want %q", c.in, err, c.err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("%q: got %v, %v", c.in, got, err)
		}
	}
}

func FuzzParseCoordList(f *testing.F) {
	for _, s := range []string{"7.4,43.7;7.5,43.8", "7.4,43.7;", ";", "1e3,2", "-0,-0.json", "NaN,1", "\x00,;"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		pts, err := parseCoordList(b, 50)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || e.Message == "" {
				t.Fatalf("error %v is not a coded Error", err)
			}
			return
		}
		if len(pts) == 0 || len(pts) > 50 {
			t.Fatalf("%d points", len(pts))
		}
		for _, p := range pts {
			if p.Check() != nil {
				t.Fatalf("accepted %v", p)
			}
		}
	})
}

func TestParseTableRequest(t *testing.T) {
	req, err := parseTableRequest([]byte(`{"coordinates":[[7.4,43.7],[-8.6 , 41.1]],"sources":[1],"destinations":null}`))
	if err != nil {
		t.Fatal(err)
	}
	want := &TableRequest{Coordinates: []LonLat{{7.4, 43.7}, {-8.6, 41.1}}, Sources: []int{1}}
	if !reflect.DeepEqual(req, want) {
		t.Fatalf("got %+v", req)
	}
}

func FuzzParseTableRequest(f *testing.F) {
	for _, s := range []string{
		`{"coordinates":[[7.4,43.7],[7.5,43.8]]}`, `{"coordinates":[[7.4,43.7]],"sources":[0],"destinations":[0]}`,
		`{"coordinates":[[1,2,3]]}`, `{"coordinates":[["1","2"]]}`, `{"coordinates":[[1e999,2]]}`, `{}`, ``, `[]`, `{"x":1}`,
		`{"coordinates":[[7.4,43.7]]} x`, `{"coordinates":[[-0.0,-0e0]]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		req, err := parseTableRequest(b)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || e.Message == "" {
				t.Fatalf("error %v is not a coded Error", err)
			}
			return
		}
		for _, p := range req.Coordinates {
			if p.Check() != nil {
				t.Fatalf("accepted %v", p)
			}
		}
		// What is accepted re-encodes to the same request (an empty index
		// list is refused, so omitempty loses nothing).
		if req.Sources != nil && len(req.Sources) == 0 || req.Destinations != nil && len(req.Destinations) == 0 {
			return
		}
		again, err := parseTableRequest(mustJSON(req))
		if err != nil || !reflect.DeepEqual(again, req) {
			t.Fatalf("round trip: %+v, %v; was %+v", again, err, req)
		}
	})
}

func FuzzAppendJSONString(f *testing.F) {
	for _, s := range []string{"", "abc", `"\`, "<a&b>", "\u2028\u2029", "\x00\x1f\x7f", "\xff\xfe", "é🙂", "\b\f\n\r\t"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, _ := json.Marshal(s)
		if got := appendJSONString(nil, s); !bytes.Equal(got, want) {
			t.Fatalf("%q: got %s, encoding/json %s", s, got, want)
		}
	})
}

func TestServerTableBytesMatchEncodingJSON(t *testing.T) {
	ts := startServer(t, ServerConfig{})
	pts := roadPoints(ts.R, 30, 6)
	for _, c := range []struct{ src, dst []int }{{nil, nil}, {[]int{3}, nil}, {[]int{1, 2}, []int{29, 0, 5}}} {
		a := ts.do(t, "POST", "/v1/table", mustJSON(TableRequest{Coordinates: pts, Sources: c.src, Destinations: c.dst}))
		want, err := ts.R.Table(pts, c.src, c.dst, 2)
		if err != nil {
			t.Fatal(err)
		}
		if w := append(mustJSON(want), '\n'); a.status != 200 || !bytes.Equal(a.body, w) {
			t.Fatalf("status %d\nhttp          %s\nencoding/json %s", a.status, clip(a.body, 300), clip(w, 300))
		}
	}
}

func TestAppendRouteResponse(t *testing.T) {
	wps := []Waypoint{{Hint: "h\\", Distance: 0.1, Name: "Rua <Santa> & \"Catarina\"", Location: [2]float64{-8.6, 41.15}}}
	leg := Leg{Steps: []any{}, Summary: "\u2028", Weight: 1e-7, Duration: 12.5, Distance: 1e21}
	cases := []*RouteResponse{
		{Code: "Ok", Routes: []Route{{Geometry: "_p~iF\\~ps|U", Legs: []Leg{leg, leg}, WeightName: "duration", Weight: 3, Duration: 3, Distance: 4.25}}, Waypoints: wps},
		{Code: "Ok", Routes: []Route{{Geometry: GeoJSONLine{Type: "LineString", Coordinates: [][2]float64{{7.4157392000001, 43.7}, {-0.0000001, 5e-324}}}, Legs: []Leg{leg}}}},
		{Code: "Ok", Routes: []Route{{Geometry: GeoJSONLine{Type: "LineString"}}}},
		{Code: "Ok", Routes: []Route{{}}, Waypoints: []Waypoint{}},
		{Code: "Ok"},
	}
	for i, r := range cases {
		if !routeEncodable(r) {
			t.Fatalf("case %d not encodable", i)
		}
		want := append(mustJSON(r), '\n')
		if got := appendRouteResponse(nil, r); !bytes.Equal(got, want) {
			t.Errorf("case %d:\ngot  %s\nwant %s", i, got, want)
		}
	}
	for _, r := range []*RouteResponse{
		{Routes: []Route{{Geometry: 5}}},
		{Routes: []Route{{Legs: []Leg{{Steps: []any{1}}}}}},
		{Routes: []Route{{Legs: []Leg{{}}}}},
	} {
		if routeEncodable(r) {
			t.Errorf("%+v: should go through encoding/json", r)
		}
	}
}

func TestAppendTable(t *testing.T) {
	m := &graph.Matrix{Rows: 2, Cols: 3,
		Durations: []float64{0, math.Inf(1), 12.345, 1e12 + 0.06, -3.04, math.NaN()},
		Distances: []float64{1e-7, 99999.95, 7, 0.05, 123456789.87, 2.5e21}}
	wps := []Waypoint{{Distance: 1.5, Location: [2]float64{-8.611234, 41.1}, Name: `a"<b>`}}
	resp := &TableResponse{Code: "Ok", Durations: toRows(m.Durations, 2, 3, 1), Distances: toRows(m.Distances, 2, 3, 1), Sources: wps, Destinations: nil}
	want := append(mustJSON(resp), '\n')
	if got := appendTable(nil, m, wps, nil); !bytes.Equal(got, want) {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
}

func FuzzAppendFloats(f *testing.F) {
	for _, x := range []float64{0, -0.0, 0.05, 0.15, 1, -1.25, 1e-7, 123456.789, 1e9 - 0.05, 1e20, 1e21, 5e-324, math.MaxFloat64, 999999999.95} {
		f.Add(x)
	}
	f.Fuzz(func(t *testing.T, x float64) {
		if math.IsInf(x, 0) || math.IsNaN(x) {
			if got := string(appendTenths(nil, x)); got != "null" {
				t.Fatalf("%v: %s", x, got)
			}
			return
		}
		want, _ := json.Marshal(x)
		if got := appendJSONFloat(nil, x); !bytes.Equal(got, want) {
			t.Fatalf("appendJSONFloat(%v) = %s, encoding/json %s", x, got, want)
		}
		r := round(x, 1)
		if math.IsInf(r, 0) || math.IsNaN(r) {
			if got := string(appendTenths(nil, x)); got != "null" {
				t.Fatalf("%v: %s, want null (x*10 overflows)", x, got)
			}
			return
		}
		want, _ = json.Marshal(r)
		if got := appendTenths(nil, x); !bytes.Equal(got, want) {
			t.Fatalf("appendTenths(%v) = %s, encoding/json of round %s", x, got, want)
		}
	})
}

func TestDecodeJSONStrict(t *testing.T) {
	type inner struct {
		ID   int    `json:"id"`
		Note string `json:"note,omitempty"`
	}
	type Base struct {
		Version int `json:"version"`
	}
	type doc struct {
		Base
		Jobs   []inner          `json:"jobs"`
		ByName map[string]inner `json:"by_name"`
		Raw    json.RawMessage  `json:"raw"`
		Skip   int              `json:"-"`
		Plain  int
	}
	cases := []struct{ body, err string }{
		{`{"version":1,"jobs":[{"id":1},{"id":2,"note":"x"}],"by_name":{"A":{"id":3}},"raw":{"Any":[1]},"Plain":2}`, ""},
		{`{"jobs":[{"id":1},{"ID":2}]}`, `unknown field "jobs[1].ID"`},
		{`{"jobs":[{"id":1,"id":2}]}`, "jobs[0].id given twice"},
		{`{"by_name":{"a":{"Id":1}}}`, `"by_name.a.Id"`},
		{`{"Version":1}`, `"Version"`},
		{`{"plain":1}`, `"plain"`},
		{`{"Skip":1}`, `unknown field "Skip"`},
		{`{"jobs":[{"id":"1"}]}`, "field jobs.id: want an integer, got string"},
		{`{"jobs":{}}`, "field jobs: want an array of objects"},
		{`{"version":1}{}`, "trailing data"},
		{`  `, "empty body"},
	}
	for _, c := range cases {
		var d doc
		err := DecodeJSON([]byte(c.body), &d)
		if c.err == "" {
			if err != nil {
				t.Errorf("%s: %v", c.body, err)
			}
			continue
		}
		var e *Error
		if !errors.As(err, &e) || e.Code != "InvalidQuery" || !strings.Contains(e.Message, c.err) {
			t.Errorf("%s: got %v, want InvalidQuery containing %q", c.body, err, c.err)
		}
	}
}

// BenchmarkServerRoute measures one GET /v1/route through the whole
// handler (no network) and Router.Route alone: the difference is the cost
// of the HTTP layer.
func BenchmarkServerRoute(b *testing.B) {
	r := monaco(b)
	s, err := NewServer(r, ServerConfig{})
	if err != nil {
		b.Fatal(err)
	}
	pts := roadPoints(r, 256, 7)
	uris := make([]string, 128)
	for i := range uris {
		uris[i] = "/v1/route/" + coordPath(pts[2*i:2*i+2]) + "?overview=false"
	}
	b.Run("handler", func(b *testing.B) {
		var ctx fasthttp.RequestCtx
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			ctx.Request.Reset()
			ctx.Response.Reset()
			ctx.Request.SetRequestURI(uris[i%len(uris)])
			s.handle(&ctx)
			if ctx.Response.StatusCode() != 200 {
				b.Fatalf("%d %s", ctx.Response.StatusCode(), ctx.Response.Body())
			}
		}
	})
	b.Run("router", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			k := i % len(uris)
			if _, err := r.Route(pts[2*k:2*k+2], RouteOptions{Overview: "false"}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestOpenAPIAgainstReferenceValidator checks the document with the
// reference validator of the OpenAPI 3.1 specification's JSON Schema
// (Python openapi-spec-validator), where it is installed.
func TestOpenAPIAgainstReferenceValidator(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not installed: reference OpenAPI validation skipped")
	}
	if err := exec.Command(py, "-c", "import openapi_spec_validator").Run(); err != nil {
		t.Skip("python module openapi_spec_validator not installed: reference OpenAPI validation skipped")
	}
	// The server's table, and the dispatch-shaped table of pathmatch_test.go
	// (parameters in the middle, several per pattern).
	for k, rows := range [][]endpoint{endpoints(), dispatchRows()} {
		tbl, err := compileRoutes(rows)
		if err != nil {
			t.Fatal(err)
		}
		doc, err := buildOpenAPI(tbl.rows, ServerConfig{}.withDefaults())
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(t.TempDir(), fmt.Sprintf("openapi-%d.json", k))
		if err := os.WriteFile(path, doc, 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(py, "-c", `import sys, json
from openapi_spec_validator import validate
validate(json.load(open(sys.argv[1])))
print("valid")`, path).CombinedOutput()
		if err != nil || !bytes.Contains(out, []byte("valid")) {
			t.Fatalf("openapi-spec-validator, table %d: %v\n%s", k, err, out)
		}
	}
}

// trackDocumentedVehicle posts the documented /v1/positions example with
// the vehicle id, then the documented /v1/eta example for that vehicle,
// so that GET /v1/eta/{vehicle} has a position and stops.
func trackDocumentedVehicle(t *testing.T, ts *testServer, doc *apiDoc, id string) {
	t.Helper()
	example := func(path string) map[string]any {
		ex, _ := doc.get("paths", path, "post", "requestBody", "content", "application/json", "example").(map[string]any)
		if ex == nil {
			t.Fatalf("POST %s has no example", path)
		}
		return decodeAny(t, mustJSON(ex)).(map[string]any)
	}
	pos := example("/v1/positions")
	for _, p := range pos["positions"].([]any) {
		p.(map[string]any)["vehicle"] = id
	}
	if a := ts.do(t, "POST", "/v1/positions", mustJSON(pos)); a.status != 200 {
		t.Fatalf("positions: %d %s", a.status, a.body)
	}
	req := example("/v1/eta")
	req["vehicle"] = id
	if a := ts.do(t, "POST", "/v1/eta", mustJSON(req)); a.status != 200 {
		t.Fatalf("eta: %d %s", a.status, a.body)
	}
}
