package bench

// Tile latency over HTTP (lastmile bench page --tiles): the map tiles of
// a city view (Porto's centre, zooms 13-16) from an in-process server on
// a loopback port, gzip. Cold: every tile asked once from a fresh server
// (its tile cache empty), timed in Go with one client and with Conns
// clients, and by wrk's first pass (Conns connections, each thread
// stopping after its share). Warm: wrk cycling through the same tiles,
// all cached, for Duration per zoom.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/lastmile/lastmile/graph"
)

// PageTileTarget is the target: p99 under 20 ms per tile.
const PageTileTarget = 20 * time.Millisecond

// PagePortoCentre is the box of Porto's centre, [lon0, lat0, lon1, lat1].
var PagePortoCentre = [4]float64{-8.70, 41.10, -8.55, 41.20}

// PageTilesConfig configures PageTiles.
type PageTilesConfig struct {
	Graph    *graph.Graph
	Box      [4]float64 // lon0, lat0, lon1, lat1 (default: the centre of Porto or Monaco, whichever the graph covers)
	Zooms    []int      // default 13..16
	Conns    int        // concurrent connections (default 32)
	Threads  int        // wrk threads (default 2)
	Duration time.Duration
	// Wrk is the wrk binary ("" looks it up in PATH); none: no warm
	// figures.
	Wrk    string
	Logger *slog.Logger
}

// PageTileLatency is the latency distribution of a set of tile requests.
type PageTileLatency struct {
	Requests            int
	P50, P90, P99, Max  time.Duration
	RPS                 float64
	Errors              int
	SizeMedian, SizeMax int // body bytes (gzip)
}

// PageTileZoom is the figures of one zoom.
type PageTileZoom struct {
	Z, Tiles         int
	Cold1, ColdConns PageTileLatency // Go client: each tile once, 1 and Conns clients
	ColdWrk          PageTileLatency // wrk's first pass on a fresh server (no RPS: wrk runs its whole -d)
	// Seeded is wrk's first pass on a fresh server once it has seeded its
	// tile cache (lastmile_tiles_seeded 1 in /metrics).
	Seeded PageTileLatency
	Warm   PageTileLatency // wrk, cached
}

// PageTilesResult is the outcome of PageTiles.
type PageTilesResult struct {
	// Index is the first tile request of a fresh server, which builds
	// the tiler's index (two fresh servers: both figures).
	Index []time.Duration
	// Seed is the time from the first tile request of a fresh server to
	// its tile cache seeded with the whole extent (tiles.Tiler.Seed).
	Seed       time.Duration
	Zooms      []PageTileZoom
	Conns      int
	Threads    int
	Duration   time.Duration
	WrkVersion string
	Notes      []string
	// LoadAvg is /proc/loadavg's 1-minute figure at the start and the
	// end (the machine may be shared).
	LoadAvg [2]float64
}

// loadAvg reads the 1-minute load average (0 where there is none).
func loadAvg() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	var v float64
	fmt.Sscan(string(b), &v)
	return v
}

// pageTileXY is the tile of zoom z holding lon, lat.
func pageTileXY(lon, lat float64, z int) (x, y int) {
	phi := lat * math.Pi / 180
	n := math.Ldexp(1, z)
	fx := (lon + 180) / 360
	fy := (1 - math.Log(math.Tan(phi)+1/math.Cos(phi))/math.Pi) / 2
	return int(fx * n), int(fy * n)
}

// pageTilePaths lists the tile paths of zoom z covering box.
func pageTilePaths(box [4]float64, z int) []string {
	x0, y0 := pageTileXY(box[0], box[3], z)
	x1, y1 := pageTileXY(box[2], box[1], z)
	var ps []string
	for x := x0; x <= x1; x++ {
		for y := y0; y <= y1; y++ {
			ps = append(ps, fmt.Sprintf("/tiles/%d/%d/%d.mvt", z, x, y))
		}
	}
	return ps
}

// pageTileRing lists at least n tiles of zoom z around box, nearest
// rings first, none of pageTilePaths(box, z).
func pageTileRing(box [4]float64, z, n int) []string {
	x0, y0 := pageTileXY(box[0], box[3], z)
	x1, y1 := pageTileXY(box[2], box[1], z)
	var ps []string
	for r := 1; len(ps) < n && r < 64; r++ {
		for x := x0 - r; x <= x1+r; x++ {
			for y := y0 - r; y <= y1+r; y++ {
				if x == x0-r || x == x1+r || y == y0-r || y == y1+r {
					if x >= 0 && y >= 0 && x < 1<<z && y < 1<<z {
						ps = append(ps, fmt.Sprintf("/tiles/%d/%d/%d.mvt", z, x, y))
					}
				}
			}
		}
	}
	return ps
}

// pageTileClient asks for gzip tiles itself (so the transport leaves the
// body compressed).
type pageTileClient struct {
	base string
	hc   *http.Client
}

func newPageTileClient(addr string, conns int) *pageTileClient {
	tr := &http.Transport{MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns, DisableCompression: true}
	return &pageTileClient{base: "http://" + addr, hc: &http.Client{Transport: tr, Timeout: time.Minute}}
}

func (c *pageTileClient) get(path string) (time.Duration, int, error) {
	req, _ := http.NewRequest("GET", c.base+path, nil)
	req.Header.Set("Accept-Encoding", "gzip")
	t0 := time.Now()
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, 0, err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	d := time.Since(t0)
	if err != nil {
		return d, 0, err
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Encoding") != "gzip" {
		return d, len(b), fmt.Errorf("%s: HTTP %d, Content-Encoding %q", path, resp.StatusCode, resp.Header.Get("Content-Encoding"))
	}
	return d, len(b), nil
}

// pageTileLatencyOf summarises durations and sizes.
func pageTileLatencyOf(lat []time.Duration, sizes []int, wall time.Duration, errs int) PageTileLatency {
	l := PageTileLatency{Requests: len(lat), Errors: errs}
	if len(lat) == 0 {
		return l
	}
	slices.Sort(lat)
	pct := func(q float64) time.Duration { return lat[min(len(lat)-1, int(math.Ceil(q*float64(len(lat))))-1)] }
	l.P50, l.P90, l.P99, l.Max = pct(0.5), pct(0.9), pct(0.99), lat[len(lat)-1]
	if wall > 0 {
		l.RPS = float64(len(lat)) / wall.Seconds()
	}
	if len(sizes) > 0 {
		slices.Sort(sizes)
		l.SizeMedian, l.SizeMax = sizes[len(sizes)/2], sizes[len(sizes)-1]
	}
	return l
}

// pageColdPass asks every tile once with conns clients.
func pageColdPass(c *pageTileClient, paths []string, conns int) PageTileLatency {
	lat := make([]time.Duration, len(paths))
	sizes := make([]int, len(paths))
	var mu sync.Mutex
	errs := 0
	next := make(chan int)
	var wg sync.WaitGroup
	t0 := time.Now()
	for range min(conns, len(paths)) {
		wg.Go(func() {
			for i := range next {
				d, n, err := c.get(paths[i])
				lat[i], sizes[i] = d, n
				if err != nil {
					mu.Lock()
					errs++
					mu.Unlock()
				}
			}
		})
	}
	for i := range paths {
		next <- i
	}
	close(next)
	wg.Wait()
	return pageTileLatencyOf(lat, sizes, time.Since(t0), errs)
}

// pageWrkScript cycles each thread through the paths from its own offset.
const pageWrkScript = `local paths = {%s}
local counter = 0
function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
end
local reqs = {}
local i = 0
function init(args)
  for k, p in ipairs(paths) do
    reqs[k] = wrk.format("GET", p, {["Accept-Encoding"] = "gzip"})
  end
  i = (id or 0) * math.floor(#paths / 2)
end
function request()
  i = i + 1
  return reqs[(i %% #reqs) + 1]
end
`

// pageWrkColdScript is one pass: thread k of T asks for the paths k,
// k+T, ... and stops once it has as many responses as it has paths among
// the first nbox. The paths after the first nbox (more tiles of the same
// zoom around the box, uncached too) keep its connections busy until
// then, so that every response counted is a first render.
const pageWrkColdScript = `local paths = {%s}
local nbox, threads = %d, %d
local counter = 0
function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
end
local reqs, k, share, seen = {}, 0, 0, 0
function init(args)
  for i, p in ipairs(paths) do
    reqs[i] = wrk.format("GET", p, {["Accept-Encoding"] = "gzip"})
  end
  k = id or 0
  share = math.floor((nbox - k + threads - 1) / threads)
end
function request()
  local r = reqs[(k %% #reqs) + 1]
  k = k + threads
  return r
end
function response(status, headers, body)
  seen = seen + 1
  if seen >= share then
    wrk.thread:stop()
  end
end
`

// pageWrkDone prints wrk's summary as one JSON line.
const pageWrkDone = `function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('WRKJSON {"requests":%d,"duration_us":%d,"bytes":%d,"errors":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d}\n',
    summary.requests, summary.duration, summary.bytes, e.connect + e.read + e.write + e.status + e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
`

// pageWrk runs wrk with script (made of the quoted paths by mk) and
// reads its summary.
func pageWrk(wrk, addr string, paths []string, mk func(quoted string) string, threads, conns int, d time.Duration, dir string) (PageTileLatency, error) {
	quoted := make([]string, len(paths))
	for i, p := range paths {
		quoted[i] = fmt.Sprintf("%q", p)
	}
	script := filepath.Join(dir, "tiles.lua")
	if err := os.WriteFile(script, []byte(mk(strings.Join(quoted, ","))+pageWrkDone), 0o644); err != nil {
		return PageTileLatency{}, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), d+time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, wrk, "-t", fmt.Sprint(threads), "-c", fmt.Sprint(conns), "-d", fmt.Sprintf("%ds", int(d.Seconds())),
		"--latency", "--timeout", "10s", "-s", script, "http://"+addr)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return PageTileLatency{}, fmt.Errorf("wrk: %w: %s", err, out)
	}
	var s struct {
		Requests   int   `json:"requests"`
		DurationUS int64 `json:"duration_us"`
		Bytes      int64 `json:"bytes"`
		Errors     int   `json:"errors"`
		P50US      int64 `json:"p50_us"`
		P90US      int64 `json:"p90_us"`
		P99US      int64 `json:"p99_us"`
		MaxUS      int64 `json:"max_us"`
	}
	found := false
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		if j, ok := strings.CutPrefix(sc.Text(), "WRKJSON "); ok {
			if err := json.Unmarshal([]byte(j), &s); err != nil {
				return PageTileLatency{}, fmt.Errorf("wrk summary %q: %w", j, err)
			}
			found = true
		}
	}
	if !found {
		return PageTileLatency{}, fmt.Errorf("wrk printed no summary: %s", out)
	}
	us := func(v int64) time.Duration { return time.Duration(v) * time.Microsecond }
	l := PageTileLatency{Requests: s.Requests, Errors: s.Errors, P50: us(s.P50US), P90: us(s.P90US), P99: us(s.P99US), Max: us(s.MaxUS)}
	if s.DurationUS > 0 {
		l.RPS = float64(s.Requests) / (float64(s.DurationUS) / 1e6)
	}
	return l, nil
}

// PageTiles measures tile latency over HTTP.
func PageTiles(cfg PageTilesConfig) (*PageTilesResult, error) {
	if cfg.Graph == nil {
		return nil, errors.New("bench: tiles: a graph is needed")
	}
	if cfg.Box == [4]float64{} {
		spot, err := pageSpotFor(cfg.Graph)
		if err != nil {
			return nil, err
		}
		cfg.Box = spot.box
	}
	if cfg.Zooms == nil {
		cfg.Zooms = []int{13, 14, 15, 16}
	}
	if cfg.Conns <= 0 {
		cfg.Conns = 32
	}
	if cfg.Threads <= 0 {
		cfg.Threads = 2
	}
	if cfg.Duration <= 0 {
		cfg.Duration = 20 * time.Second
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	res := &PageTilesResult{Conns: cfg.Conns, Threads: cfg.Threads, Duration: cfg.Duration}
	for _, z := range cfg.Zooms {
		res.Zooms = append(res.Zooms, PageTileZoom{Z: z, Tiles: len(pageTilePaths(cfg.Box, z))})
	}
	res.LoadAvg[0] = loadAvg()
	defer func() { res.LoadAvg[1] = loadAvg() }()
	wrk := cfg.Wrk
	if wrk == "" {
		wrk, _ = exec.LookPath("wrk")
	}
	if wrk == "" {
		res.Notes = append(res.Notes, "no wrk (apt-get install wrk): no wrk figures")
	} else if out, _ := exec.Command(wrk, "--version").CombinedOutput(); len(out) > 0 {
		res.WrkVersion = strings.SplitN(strings.TrimSpace(string(out)), "\n", 2)[0]
	}
	dir, err := os.MkdirTemp("", "lastmile-tiles-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)

	// fresh starts a server and asks for a tile outside the measured
	// ones, which builds the index.
	cx, cy := (cfg.Box[0]+cfg.Box[2])/2, (cfg.Box[1]+cfg.Box[3])/2
	ix, iy := pageTileXY(cx, cy, 11)
	indexTile := fmt.Sprintf("/tiles/11/%d/%d.mvt", ix, iy)
	fresh := func() (string, func(), error) {
		ln, stop, err := serveLoopback(cfg.Graph, log)
		if err != nil {
			return "", nil, err
		}
		c := newPageTileClient(ln.Addr().String(), 1)
		d, _, err := c.get(indexTile)
		c.hc.CloseIdleConnections()
		if err != nil {
			stop()
			return "", nil, fmt.Errorf("bench: tiles: first tile: %w", err)
		}
		res.Index = append(res.Index, d)
		return ln.Addr().String(), stop, nil
	}

	// Cold in Go, one client, then Conns clients: a fresh server each.
	for pass, conns := range []int{1, cfg.Conns} {
		addr, stop, err := fresh()
		if err != nil {
			return nil, err
		}
		c := newPageTileClient(addr, conns)
		for i, z := range cfg.Zooms {
			l := pageColdPass(c, pageTilePaths(cfg.Box, z), conns)
			if pass == 0 {
				res.Zooms[i].Cold1 = l
			} else {
				res.Zooms[i].ColdConns = l
			}
			log.Info("bench tiles: cold (Go)", "z", z, "clients", conns, "tiles", l.Requests, "p50", l.P50, "p99", l.P99, "errors", l.Errors)
		}
		c.hc.CloseIdleConnections()
		stop()
	}
	if wrk == "" {
		return res, nil
	}

	// firstPass runs wrk's first pass over each zoom's tiles on the
	// server at addr and stores it with set.
	firstPass := func(addr, name string, set func(z *PageTileZoom, l PageTileLatency)) error {
		for i, z := range cfg.Zooms {
			box := pageTilePaths(cfg.Box, z)
			paths := append(slices.Clone(box), pageTileRing(cfg.Box, z, 2*cfg.Conns)...)
			threads := min(cfg.Threads, len(box))
			l, err := pageWrk(wrk, addr, paths, func(q string) string { return fmt.Sprintf(pageWrkColdScript, q, len(box), threads) },
				threads, cfg.Conns, 3*time.Second, dir)
			if err != nil {
				return fmt.Errorf("bench: tiles: z%d: %w", z, err)
			}
			l.RPS = 0
			set(&res.Zooms[i], l)
			log.Info("bench tiles: "+name+" (wrk first pass)", "z", z, "requests", l.Requests, "p50", l.P50, "p99", l.P99, "errors", l.Errors)
		}
		return nil
	}
	// wrk: its first pass on a fresh server, then warm on it.
	addr, stop, err := fresh()
	if err != nil {
		return nil, err
	}
	defer stop()
	if err := firstPass(addr, "cold", func(z *PageTileZoom, l PageTileLatency) { z.ColdWrk = l }); err != nil {
		return nil, err
	}
	// wrk's first pass again, on a fresh server that has seeded its cache.
	saddr, sstop, err := fresh()
	if err != nil {
		return nil, err
	}
	defer sstop()
	if res.Seed, err = waitSeeded(saddr, time.Minute); err != nil {
		return nil, err
	}
	log.Info("bench tiles: seeded", "after", res.Seed)
	if err := firstPass(saddr, "seeded", func(z *PageTileZoom, l PageTileLatency) { z.Seeded = l }); err != nil {
		return nil, err
	}
	for i, z := range cfg.Zooms {
		l, err := pageWrk(wrk, addr, pageTilePaths(cfg.Box, z), func(q string) string { return fmt.Sprintf(pageWrkScript, q) },
			cfg.Threads, cfg.Conns, cfg.Duration, dir)
		if err != nil {
			return nil, fmt.Errorf("bench: tiles: z%d: %w", z, err)
		}
		res.Zooms[i].Warm = l
		log.Info("bench tiles: warm (wrk)", "z", z, "rps", math.Round(l.RPS), "p50", l.P50, "p99", l.P99, "errors", l.Errors)
	}
	return res, nil
}

// WritePageTiles prints the table of r.
func WritePageTiles(w io.Writer, r *PageTilesResult) {
	ms := func(d time.Duration) string { return fmt.Sprintf("%.2f", float64(d)/1e6) }
	lat := func(l PageTileLatency) string { return ms(l.P50) + " / " + ms(l.P99) + " / " + ms(l.Max) }
	var idx []string
	for _, d := range r.Index {
		idx = append(idx, ms(d))
	}
	fmt.Fprintf(w, "tiles over HTTP (loopback, Accept-Encoding: gzip); load average %.2f at the start, %.2f at the end\n", r.LoadAvg[0], r.LoadAvg[1])
	fmt.Fprintf(w, "first request of each fresh server (builds the tiler's index): %s ms\n", strings.Join(idx, " / "))
	fmt.Fprintf(w, "tile cache seeded with the whole extent %.2f s after the first request of a fresh server\n", r.Seed.Seconds())
	fmt.Fprintf(w, "cold: every tile once from a fresh server, right after its first request (its seeding under way): Go client with 1 and %d connections, and wrk's first pass (-t%d -c%d); "+
		"seeded: wrk's first pass on a fresh server once seeded; warm: wrk -t%d -c%d -d%v --latency cycling through the cached tiles (%s)\n\n",
		r.Conns, r.Threads, r.Conns, r.Threads, r.Conns, r.Duration, r.WrkVersion)
	fmt.Fprintf(w, "| zoom | tiles | gzip B median / max | cold, 1 conn: p50 / p99 / max ms | cold, %d conns (Go): p50 / p99 / max ms | tiles/s | cold, wrk first pass: p50 / p99 / max ms (n) | seeded, wrk first pass: p50 / p99 / max ms | warm, wrk: p50 / p99 / max ms | warm req/s | errors |\n",
		r.Conns)
	fmt.Fprintf(w, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, z := range r.Zooms {
		fmt.Fprintf(w, "| %d | %d | %d / %d | %s | %s | %.0f | %s (%d) | %s | %s | %.0f | %d |\n", z.Z, z.Tiles,
			z.Cold1.SizeMedian, z.Cold1.SizeMax, lat(z.Cold1), lat(z.ColdConns), z.ColdConns.RPS,
			lat(z.ColdWrk), z.ColdWrk.Requests, lat(z.Seeded), lat(z.Warm), z.Warm.RPS,
			z.Cold1.Errors+z.ColdConns.Errors+z.ColdWrk.Errors+z.Seeded.Errors+z.Warm.Errors)
	}
	for _, n := range r.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
	worst := func(f func(PageTileZoom) time.Duration) time.Duration {
		var m time.Duration
		for _, z := range r.Zooms {
			m = max(m, f(z))
		}
		return m
	}
	verdict := func(d time.Duration) string {
		if d < PageTileTarget {
			return "met"
		}
		return "MISSED"
	}
	c1 := worst(func(z PageTileZoom) time.Duration { return z.Cold1.P99 })
	cn := worst(func(z PageTileZoom) time.Duration { return z.ColdConns.P99 })
	cw := worst(func(z PageTileZoom) time.Duration { return z.ColdWrk.P99 })
	sw := worst(func(z PageTileZoom) time.Duration { return z.Seeded.P99 })
	wm := worst(func(z PageTileZoom) time.Duration { return z.Warm.P99 })
	fmt.Fprintf(w, "\ntarget: tile p99 < %v at z%d-%d (worst zoom): cold, 1 conn %s ms: %s; cold, %d conns (Go) %s ms: %s; cold, wrk first pass %s ms: %s; seeded, wrk first pass %s ms: %s; warm, wrk %s ms: %s\n",
		PageTileTarget, r.Zooms[0].Z, r.Zooms[len(r.Zooms)-1].Z, ms(c1), verdict(c1), r.Conns, ms(cn), verdict(cn), ms(cw), verdict(cw), ms(sw), verdict(sw), ms(wm), verdict(wm))
}

// waitSeeded waits until the server at addr reports its tile cache seeded
// (lastmile_tiles_seeded 1 in /metrics) and returns how long it waited.
func waitSeeded(addr string, limit time.Duration) (time.Duration, error) {
	t0 := time.Now()
	for {
		page, status, err := getMetrics(addr)
		if err != nil {
			return 0, fmt.Errorf("bench: tiles: %w", err)
		}
		if v, ok := metricValue(page, "lastmile_tiles_seeded"); status == 200 && ok && v == 1 {
			return time.Since(t0), nil
		}
		if time.Since(t0) > limit {
			return 0, fmt.Errorf("bench: tiles: the tile cache not seeded within %v", limit)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
