package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/lastmile/lastmile/engine"
	"github.com/lastmile/lastmile/graph"
)

// HTTPConfig configures HTTP.
type HTTPConfig struct {
	// Graph is a prepared .lmg file or an OSM file (prepared in this run,
	// not cached).
	Graph string
	// Duration is the length of each phase (default 10 s).
	Duration time.Duration
	// Concurrency is the number of client goroutines, each with its own
	// keep-alive connection (default 8).
	Concurrency int
	// MaxRequests bounds the requests of one phase (default 2,000,000).
	MaxRequests int
	// TableSize is the side of the square tables of the table phase
	// (default 10).
	TableSize int
	// Phases selects the phases by name: "route", "geometry" (routes with
	// the simplified polyline overview), "table", "solve" (default all).
	Phases []string
	// SolveStops and SolveTime shape the solve phase: VROOM problems of
	// SolveStops jobs at random road points and 5 vehicles, given as
	// coordinates (so each request snaps and computes its matrix), solved
	// with ?time=SolveTime (defaults 100 and 0.5 s). SolveConcurrency
	// clients send them (default 2: solves are CPU-bound).
	SolveStops       int
	SolveTime        time.Duration
	SolveConcurrency int
	// Seed makes the coordinates reproducible.
	Seed uint64
	// CPUProfile, when not empty, receives a CPU profile of the phases
	// (server and client together: they share the process).
	CPUProfile string
	// Logger receives progress (nil = discard).
	Logger *slog.Logger
}

// HTTPPhase holds the figures of one phase: one request kind driven by
// Concurrency clients for Duration.
type HTTPPhase struct {
	Name     string
	Requests int
	// Errors counts transport failures and answers other than 200 with
	// code "Ok"; FirstError describes the first one.
	Errors     int
	FirstError string
	Elapsed    time.Duration
	RPS        float64
	P50, P99   time.Duration
	Max        time.Duration
	// Bytes is the mean answer body size.
	Bytes int
}

// HTTPReport holds the figures of one HTTP run.
type HTTPReport struct {
	Graph       string
	RoadNodes   int
	Concurrency int
	GOMAXPROCS  int
	Phases      []HTTPPhase
	// Go heap in use after a GC and resident set size, after warm-up and
	// after the last phase.
	HeapStart, HeapEnd uint64
	RSSStart, RSSEnd   int64
}

// HTTP starts the server in-process on a loopback port and drives it over
// real TCP with fasthttp clients: routes between random road nodes without
// and with geometry, then square tables, each phase for Duration (and at
// most MaxRequests requests). Client and server share the machine, so the
// throughput is a lower bound of the server's.
func HTTP(cfg HTTPConfig) (*HTTPReport, error) {
	if cfg.Duration <= 0 {
		cfg.Duration = 10 * time.Second
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 8
	}
	if cfg.MaxRequests <= 0 {
		cfg.MaxRequests = 2_000_000
	}
	if cfg.TableSize <= 0 {
		cfg.TableSize = 10
	}
	if cfg.Phases == nil {
		cfg.Phases = []string{"route", "geometry", "table", "solve"}
	}
	if cfg.SolveStops <= 0 {
		cfg.SolveStops = 100
	}
	if cfg.SolveTime <= 0 {
		cfg.SolveTime = 500 * time.Millisecond
	}
	if cfg.SolveConcurrency <= 0 {
		cfg.SolveConcurrency = 2
	}
	for _, name := range cfg.Phases {
		if name != "route" && name != "geometry" && name != "table" && name != "solve" {
			return nil, fmt.Errorf("unknown phase %q (route, geometry, table, solve)", name)
		}
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var g *graph.Graph
	var err error
	if engine.IsOSM(cfg.Graph) {
		log.Info("preparing", "file", cfg.Graph)
		g, _, err = engine.Prepare(cfg.Graph, engine.PrepareOptions{Logger: log})
	} else {
		g, err = graph.LoadFile(cfg.Graph)
	}
	if err != nil {
		return nil, err
	}
	ln, stop, err := serveLoopback(g, log)
	if err != nil {
		return nil, err
	}
	defer stop()
	base := "http://" + ln.Addr().String()

	rng := rand.New(rand.NewPCG(cfg.Seed, 0x477))
	pts := roadNodePoints(g, rng, 4096)
	if len(pts) < 2 {
		return nil, fmt.Errorf("graph %s has no routable road", cfg.Graph)
	}
	reqs := func(n int, f func() (string, []byte)) []benchRequest {
		out := make([]benchRequest, n)
		for i := range out {
			out[i].uri, out[i].body = f()
		}
		return out
	}
	pair := func() string {
		a, b := pts[rng.IntN(len(pts))], pts[rng.IntN(len(pts))]
		return base + "/v1/route/" + fmtPoint(a) + ";" + fmtPoint(b)
	}
	routes := reqs(4096, func() (string, []byte) { return pair() + "?overview=false", nil })
	geoms := reqs(4096, func() (string, []byte) { return pair(), nil })
	tables := reqs(512, func() (string, []byte) {
		req := engine.TableRequest{Coordinates: make([]engine.LonLat, cfg.TableSize)}
		for i := range req.Coordinates {
			req.Coordinates[i] = pts[rng.IntN(len(pts))]
		}
		b, _ := json.Marshal(req)
		return base + "/v1/table", b
	})
	solves := reqs(16, func() (string, []byte) {
		return base + "/v1/solve?time=" + strconv.FormatFloat(cfg.SolveTime.Seconds(), 'f', -1, 64), solveProblem(pts, rng, cfg.SolveStops)
	})
	type phase struct {
		name string
		reqs []benchRequest
		conc int
		ok   []byte
	}
	known := map[string]phase{
		"route":    {"route", routes, cfg.Concurrency, okPrefix},
		"geometry": {"route+geometry", geoms, cfg.Concurrency, okPrefix},
		"table":    {fmt.Sprintf("table %dx%d", cfg.TableSize, cfg.TableSize), tables, cfg.Concurrency, okPrefix},
		"solve":    {fmt.Sprintf("solve %d stops", cfg.SolveStops), solves, cfg.SolveConcurrency, vroomOK},
	}
	var phases []phase
	for _, name := range cfg.Phases {
		phases = append(phases, known[name])
	}

	client := &fasthttp.HostClient{
		Addr: ln.Addr().String(), MaxConns: cfg.Concurrency,
		ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second,
	}
	// Warm-up: connections, pools, page faults.
	for _, ph := range phases {
		if ph.conc == cfg.Concurrency { // solves warm up nothing the others do not
			runPhase(client, ph.reqs, ph.conc, 300*time.Millisecond, 2000)
		}
	}
	rep := &HTTPReport{Graph: cfg.Graph, RoadNodes: len(g.Road.Lat), Concurrency: cfg.Concurrency, GOMAXPROCS: runtime.GOMAXPROCS(0)}
	rep.HeapStart, rep.RSSStart = heapInUse(), RSS()
	if cfg.CPUProfile != "" {
		f, err := os.Create(cfg.CPUProfile)
		if err != nil {
			return nil, fmt.Errorf("cpu profile: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return nil, fmt.Errorf("cpu profile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	for _, ph := range phases {
		log.Info("phase", "name", ph.name, "seconds", cfg.Duration.Seconds(), "concurrency", ph.conc)
		res := runPhaseOK(client, ph.reqs, ph.conc, cfg.Duration, cfg.MaxRequests, ph.ok)
		res.Name = ph.name
		rep.Phases = append(rep.Phases, res)
		log.Info("phase done", "name", ph.name, "rps", res.RPS, "errors", res.Errors)
	}
	client.CloseIdleConnections()
	rep.HeapEnd, rep.RSSEnd = heapInUse(), RSS()
	return rep, nil
}

type benchRequest struct {
	uri  string
	body []byte // POST when not nil
}

var okPrefix = []byte(`{"code":"Ok"`)

// vroomOK starts a VROOM-shaped answer without error.
var vroomOK = []byte(`{"code":0`)

// runPhase drives reqs (cycled) with conc clients until d has passed or
// max requests were sent.
func runPhase(c *fasthttp.HostClient, reqs []benchRequest, conc int, d time.Duration, max int) HTTPPhase {
	return runPhaseOK(c, reqs, conc, d, max, okPrefix)
}

// runPhaseOK is runPhase with the prefix of a good answer.
func runPhaseOK(c *fasthttp.HostClient, reqs []benchRequest, conc int, d time.Duration, max int, ok []byte) HTTPPhase {
	var next atomic.Int64
	var mu sync.Mutex
	var all []time.Duration
	var errs, bytesTotal int
	var firstErr string
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(d)
	for w := range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			defer fasthttp.ReleaseRequest(req)
			defer fasthttp.ReleaseResponse(resp)
			lat := make([]time.Duration, 0, 4096)
			var nerr, nbytes int
			var first string
			for k := w; ; k++ {
				if next.Add(1) > int64(max) {
					break
				}
				br := &reqs[k%len(reqs)]
				req.Reset()
				req.SetRequestURI(br.uri)
				if br.body != nil {
					req.Header.SetMethod(fasthttp.MethodPost)
					req.Header.SetContentType("application/json")
					req.SetBodyRaw(br.body)
				}
				t0 := time.Now()
				err := c.Do(req, resp)
				t1 := time.Now()
				lat = append(lat, t1.Sub(t0))
				if err != nil || resp.StatusCode() != 200 || !bytes.HasPrefix(resp.Body(), ok) {
					nerr++
					if first == "" {
						if err != nil {
							first = err.Error()
						} else {
							first = fmt.Sprintf("status %d: %.200s", resp.StatusCode(), resp.Body())
						}
					}
				}
				nbytes += len(resp.Body())
				if t1.After(deadline) {
					break
				}
			}
			mu.Lock()
			all = append(all, lat...)
			errs += nerr
			bytesTotal += nbytes
			if firstErr == "" {
				firstErr = first
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	el := time.Since(start)
	ph := HTTPPhase{Requests: len(all), Errors: errs, FirstError: firstErr, Elapsed: el}
	if len(all) > 0 {
		slices.Sort(all)
		ph.RPS = float64(len(all)) / el.Seconds()
		ph.P50, ph.P99, ph.Max = all[len(all)/2], all[len(all)*99/100], all[len(all)-1]
		ph.Bytes = bytesTotal / len(all)
	}
	return ph
}

// roadNodePoints returns up to n positions [lon, lat] of road nodes at the
// tail of routable edges: points that snap, all in the strongly connected
// part of the graph, so that every pair has a route.
// serveLoopback starts the server on g at a loopback port and waits until
// its customizable hierarchy for live traffic, built in the background
// after start, is ready (so that it does not share the cores with what is
// measured). stop shuts it down.
func serveLoopback(g *graph.Graph, log *slog.Logger) (net.Listener, func(), error) {
	srv, err := engine.NewServer(engine.NewRouter(g, 1000), engine.ServerConfig{})
	if err != nil {
		return nil, nil, fmt.Errorf("server: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, fmt.Errorf("listen on loopback: %w", err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	stop := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			log.Warn("shutdown", "err", err)
		}
		<-served
	}
	for t0 := time.Now(); !srv.TrafficReady(); time.Sleep(10 * time.Millisecond) {
		if time.Since(t0) > 2*time.Minute {
			stop()
			return nil, nil, fmt.Errorf("traffic not ready after 2 minutes")
		}
	}
	return ln, stop, nil
}

// solveProblem returns a VROOM problem of n jobs at random points (one
// to three minutes of service, a third with a two-hour window) and five
// vehicles from a depot with capacities that fit them all.
func solveProblem(pts []engine.LonLat, rng *rand.Rand, n int) []byte {
	type job struct {
		ID          int        `json:"id"`
		Location    [2]float64 `json:"location"`
		Service     int        `json:"service"`
		Delivery    []int      `json:"delivery"`
		TimeWindows [][2]int   `json:"time_windows,omitempty"`
	}
	type vehicle struct {
		ID         int        `json:"id"`
		Start      [2]float64 `json:"start"`
		End        [2]float64 `json:"end"`
		Capacity   []int      `json:"capacity"`
		TimeWindow [2]int     `json:"time_window"`
	}
	depot := pts[rng.IntN(len(pts))]
	var p struct {
		Jobs     []job     `json:"jobs"`
		Vehicles []vehicle `json:"vehicles"`
	}
	for i := range n {
		j := job{ID: i + 1, Location: pts[rng.IntN(len(pts))], Service: 60 + rng.IntN(121), Delivery: []int{1}}
		if i%3 == 0 {
			a := 8*3600 + rng.IntN(6*3600)
			j.TimeWindows = [][2]int{{a, a + 7200}}
		}
		p.Jobs = append(p.Jobs, j)
	}
	for v := range 5 {
		p.Vehicles = append(p.Vehicles, vehicle{ID: v + 1, Start: depot, End: depot, Capacity: []int{n/5 + 10}, TimeWindow: [2]int{7 * 3600, 20 * 3600}})
	}
	b, _ := json.Marshal(p)
	return b
}

func roadNodePoints(g *graph.Graph, rng *rand.Rand, n int) []engine.LonLat {
	var edges []uint32
	for e := range g.Road.Edges {
		if g.Routable(uint32(e)) {
			edges = append(edges, uint32(e))
		}
	}
	if len(edges) == 0 {
		return nil
	}
	out := make([]engine.LonLat, n)
	for i := range out {
		v := g.Road.Edges[edges[rng.IntN(len(edges))]].From
		out[i] = engine.LonLat{g.Road.Lon[v], g.Road.Lat[v]}
	}
	return out
}

func fmtPoint(p engine.LonLat) string {
	return strconv.FormatFloat(p[0], 'f', 6, 64) + "," + strconv.FormatFloat(p[1], 'f', 6, 64)
}

// heapInUse returns the bytes of live heap objects after a collection.
func heapInUse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// RSS returns the process's resident set size in bytes (VmRSS from
// /proc/self/status), or 0 where it cannot be read.
func RSS() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			if f := strings.Fields(v); len(f) >= 1 {
				kb, _ := strconv.ParseInt(f[0], 10, 64)
				return kb * 1024
			}
		}
	}
	return 0
}

// WriteHTTP prints the report as a table, then the stable last line
// `http: route rps R p50 X p99 Y errors E` (route without geometry; E
// counts the errors of all phases).
func WriteHTTP(w io.Writer, r *HTTPReport) {
	fmt.Fprintf(w, "HTTP load test: %s (%d road nodes), %d clients, GOMAXPROCS %d, loopback, client and server in one process\n\n",
		r.Graph, r.RoadNodes, r.Concurrency, r.GOMAXPROCS)
	fmt.Fprintf(w, "| %-16s | %9s | %9s | %6s | %10s | %10s | %10s | %9s |\n", "phase", "requests", "req/s", "errors", "p50 (ms)", "p99 (ms)", "max (ms)", "bytes/ans")
	fmt.Fprintf(w, "|%s|%s|%s|%s|%s|%s|%s|%s|\n", strings.Repeat("-", 18), strings.Repeat("-", 11), strings.Repeat("-", 11),
		strings.Repeat("-", 8), strings.Repeat("-", 12), strings.Repeat("-", 12), strings.Repeat("-", 12), strings.Repeat("-", 11))
	errs := 0
	for _, p := range r.Phases {
		fmt.Fprintf(w, "| %-16s | %9d | %9.0f | %6d | %10.3f | %10.3f | %10.3f | %9d |\n",
			p.Name, p.Requests, p.RPS, p.Errors, ms(p.P50), ms(p.P99), ms(p.Max), p.Bytes)
		errs += p.Errors
	}
	fmt.Fprintf(w, "\n| %-28s | %10s | %10s |\n|%s|%s|%s|\n", "memory", "start", "end", strings.Repeat("-", 30), strings.Repeat("-", 12), strings.Repeat("-", 12))
	fmt.Fprintf(w, "| %-28s | %10.1f | %10.1f |\n", "Go heap in use after GC (MiB)", float64(r.HeapStart)/(1<<20), float64(r.HeapEnd)/(1<<20))
	fmt.Fprintf(w, "| %-28s | %10.1f | %10.1f |\n", "RSS (MiB)", float64(r.RSSStart)/(1<<20), float64(r.RSSEnd)/(1<<20))
	for _, p := range r.Phases {
		if p.FirstError != "" {
			fmt.Fprintf(w, "first error in %s: %s\n", p.Name, p.FirstError)
		}
	}
	var route HTTPPhase
	for _, p := range r.Phases {
		if p.Name == "route" {
			route = p
		}
	}
	fmt.Fprintf(w, "http: route rps %.0f p50 %s p99 %s errors %d\n", route.RPS, fmtDur(route.P50), fmtDur(route.P99), errs)
}
