// Package bench holds the benchmarks that gate performance: each one
// measures our figures and a baseline in the same run (these machines are
// shared and noisy), so that results are ratios, and reports them as a
// table for bench/RESULTS.md.
package bench

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/lastmile/lastmile/engine"
	"github.com/lastmile/lastmile/graph"
)

// RouteConfig configures Route.
type RouteConfig struct {
	// Graph is a prepared .lmg file or an OSM file (prepared in this run,
	// so that preprocessing time and peak memory are measured).
	Graph string
	// Pairs is the number of random source-target pairs compared between
	// the CH query and both Dijkstras (default 1000).
	Pairs int
	// LatencyQueries is the number of CH queries timed for p50/p99
	// (default 20000).
	LatencyQueries int
	// MatrixSizes are the square matrix sizes timed (default 100, 1000).
	MatrixSizes []int
	// Workers for preparation and matrices (default 2).
	Workers int
	// Seed makes the pairs reproducible.
	Seed uint64
	// Logger receives progress (nil = discard).
	Logger *slog.Logger
}

// RouteReport holds the figures of one Route run.
type RouteReport struct {
	Graph                    string
	RoadNodes, RoadEdges     int
	Shortcuts                int
	TransitNodes             int
	ImportTime, ContractTime time.Duration
	PeakRSSPrepare           int64 // bytes, high-water mark after preparing (0 when loaded)
	FileBytes                int64
	LoadTime                 time.Duration
	Pairs, Mismatches        int
	CHMean, DijkstraMean     time.Duration
	BidirMean                time.Duration
	SpeedupDijkstra          float64
	SpeedupBidir             float64
	// CostMean and SpeedupCost are for Query.Cost on the same pairs: the
	// search alone, as one matrix cell needs it.
	CostMean    time.Duration
	SpeedupCost float64
	// P50 and P99 time Query.Route (search, path unpacking, geometry);
	// CostP50 and CostP99 time Query.Cost (search only, as a matrix cell).
	P50, P99         time.Duration
	CostP50, CostP99 time.Duration
	Matrix           []MatrixTiming
}

// MatrixTiming is the wall time of one square many-to-many matrix.
type MatrixTiming struct {
	Size int
	Time time.Duration
	// SpeedupOverP2P is Size² mean CH route times over Time.
	SpeedupOverP2P float64
}

// Route measures preprocessing, loading, CH queries against unidirectional
// and bidirectional Dijkstra on the same random pairs (counting any
// disagreement in duration as a mismatch), query latency percentiles and
// matrix wall times.
func Route(cfg RouteConfig) (*RouteReport, error) {
	if cfg.Pairs <= 0 {
		cfg.Pairs = 1000
	}
	if cfg.LatencyQueries <= 0 {
		cfg.LatencyQueries = 20000
	}
	if cfg.MatrixSizes == nil {
		cfg.MatrixSizes = []int{100, 1000}
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 2
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	rep := &RouteReport{Graph: cfg.Graph}
	var g *graph.Graph
	var err error
	if engine.IsOSM(cfg.Graph) {
		log.Info("preparing", "file", cfg.Graph)
		var st engine.PrepareStats
		g, st, err = engine.Prepare(cfg.Graph, engine.PrepareOptions{Workers: cfg.Workers, Logger: log})
		if err != nil {
			return nil, err
		}
		rep.ImportTime, rep.ContractTime = st.Import, st.Build
		rep.PeakRSSPrepare = PeakRSS()
		var buf bytes.Buffer
		if _, err := g.WriteTo(&buf); err != nil {
			return nil, err
		}
		rep.FileBytes = int64(buf.Len())
		tmp, err := os.CreateTemp("", "lastmile-bench-*.lmg")
		if err != nil {
			return nil, err
		}
		defer os.Remove(tmp.Name())
		if _, err := tmp.Write(buf.Bytes()); err != nil {
			tmp.Close()
			return nil, err
		}
		tmp.Close()
		buf = bytes.Buffer{}
		runtime.GC()
		t := time.Now()
		g2, err := graph.LoadFile(tmp.Name())
		if err != nil {
			return nil, fmt.Errorf("reload prepared graph: %w", err)
		}
		rep.LoadTime = time.Since(t)
		g = g2
	} else {
		if fi, err := os.Stat(cfg.Graph); err == nil {
			rep.FileBytes = fi.Size()
		}
		t := time.Now()
		g, err = graph.LoadFile(cfg.Graph)
		if err != nil {
			return nil, err
		}
		rep.LoadTime = time.Since(t)
	}
	runtime.GC()
	st := g.Stats()
	rep.RoadNodes, rep.RoadEdges, rep.Shortcuts, rep.TransitNodes = st.RoadNodes, st.RoadEdges, st.Shortcuts, st.TransitNodes

	rng := rand.New(rand.NewPCG(cfg.Seed, 0x1a57))
	eps := RandomEndpoints(g, rng, 2*cfg.Pairs)
	q := g.NewQuery()
	log.Info("comparing CH with Dijkstra", "pairs", cfg.Pairs)
	// Each algorithm runs over all pairs in its own loop, so that none is
	// timed with a cache the previous one has just filled with its own data.
	type answer struct {
		dur, dist float64
		ok        bool
	}
	runAll := func(f func(s, t graph.Endpoint) (graph.Route, error)) ([]answer, time.Duration) {
		out := make([]answer, cfg.Pairs)
		t0 := time.Now()
		for i := range out {
			r, err := f(eps[2*i], eps[2*i+1])
			out[i] = answer{r.Duration, r.Distance, err == nil}
		}
		return out, time.Since(t0)
	}
	ch, chT := runAll(q.Route)
	cost, costT := runAll(func(s, t graph.Endpoint) (graph.Route, error) {
		d, l, err := q.Cost(s, t)
		return graph.Route{Duration: d, Distance: l}, err
	})
	dj, dT := runAll(q.Dijkstra)
	bd, bT := runAll(q.BidirDijkstra)
	for i := range ch {
		if ch[i] != dj[i] || ch[i] != bd[i] || cost[i] != dj[i] {
			rep.Mismatches++
		}
	}
	rep.Pairs = cfg.Pairs
	n := time.Duration(cfg.Pairs)
	rep.CHMean, rep.DijkstraMean, rep.BidirMean = chT/n, dT/n, bT/n
	rep.SpeedupDijkstra = float64(dT) / float64(chT)
	rep.SpeedupBidir = float64(bT) / float64(chT)
	rep.CostMean = costT / n
	rep.SpeedupCost = float64(dT) / float64(costT)

	lat := make([]time.Duration, cfg.LatencyQueries)
	leps := RandomEndpoints(g, rng, 2*cfg.LatencyQueries)
	for i := range lat {
		t0 := time.Now()
		_, _ = q.Route(leps[2*i], leps[2*i+1])
		lat[i] = time.Since(t0)
	}
	slices.Sort(lat)
	rep.P50 = lat[len(lat)/2]
	rep.P99 = lat[len(lat)*99/100]
	for i := range lat {
		t0 := time.Now()
		_, _, _ = q.Cost(leps[2*i], leps[2*i+1])
		lat[i] = time.Since(t0)
	}
	slices.Sort(lat)
	rep.CostP50 = lat[len(lat)/2]
	rep.CostP99 = lat[len(lat)*99/100]
	for _, size := range cfg.MatrixSizes {
		pts := RandomEndpoints(g, rng, size)
		runtime.GC()
		t0 := time.Now()
		if _, err := g.Matrix(pts, pts, cfg.Workers); err != nil {
			return nil, fmt.Errorf("matrix %d: %w", size, err)
		}
		el := time.Since(t0)
		p2p := float64(rep.CHMean) * float64(size*size)
		rep.Matrix = append(rep.Matrix, MatrixTiming{Size: size, Time: el, SpeedupOverP2P: p2p / float64(el)})
		log.Info("matrix", "size", size, "seconds", el.Seconds())
	}
	return rep, nil
}

// RandomEndpoints returns n endpoints on random routable edges at random
// positions, with the twin direction added as a snapped point would have
// it, drawn deterministically from rng.
func RandomEndpoints(g *graph.Graph, rng *rand.Rand, n int) []graph.Endpoint {
	var routable []uint32
	for e := range g.Road.Edges {
		if g.Routable(uint32(e)) {
			routable = append(routable, uint32(e))
		}
	}
	out := make([]graph.Endpoint, n)
	if len(routable) == 0 {
		return out[:0]
	}
	for i := range out {
		e := routable[rng.IntN(len(routable))]
		f := rng.Float64()
		ed := g.Road.Edges[e]
		out[i] = graph.Endpoint{
			Points: []graph.EdgePoint{{Edge: e, Fraction: f}},
			Lat:    g.Road.Lat[ed.From], Lon: g.Road.Lon[ed.From],
		}
	}
	return out
}

// PeakRSS returns the process's peak resident set size in bytes (VmHWM from
// /proc/self/status), or 0 where it cannot be read.
func PeakRSS() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			f := strings.Fields(v)
			if len(f) >= 1 {
				kb, _ := strconv.ParseInt(f[0], 10, 64)
				return kb * 1024
			}
		}
	}
	return 0
}

// WriteRoute prints the report as a table, then the stable last line
// `route: pairs N mismatches M speedup S p50 T`.
func WriteRoute(w io.Writer, r *RouteReport) {
	row := func(k, v string) { fmt.Fprintf(w, "| %-38s | %s |\n", k, v) }
	fmt.Fprintf(w, "| %-38s | %s |\n|%s|%s|\n", "measure", "value", strings.Repeat("-", 40), "---")
	row("graph", r.Graph)
	row("road nodes / road edges / shortcuts", fmt.Sprintf("%d / %d / %d", r.RoadNodes, r.RoadEdges, r.Shortcuts))
	row("transit nodes (table for cost queries)", fmt.Sprintf("%d", r.TransitNodes))
	if r.ImportTime > 0 {
		row("import (s)", fmt.Sprintf("%.2f", r.ImportTime.Seconds()))
		row("contraction (s)", fmt.Sprintf("%.2f", r.ContractTime.Seconds()))
		row("peak RSS after preparing (MiB)", fmt.Sprintf("%.0f", float64(r.PeakRSSPrepare)/(1<<20)))
	}
	row("prepared file (MiB)", fmt.Sprintf("%.1f", float64(r.FileBytes)/(1<<20)))
	row("load (ms)", fmt.Sprintf("%.1f", ms(r.LoadTime)))
	row("pairs / mismatches", fmt.Sprintf("%d / %d", r.Pairs, r.Mismatches))
	row("Dijkstra mean (ms)", fmt.Sprintf("%.3f", ms(r.DijkstraMean)))
	row("bidirectional Dijkstra mean (ms)", fmt.Sprintf("%.3f", ms(r.BidirMean)))
	row("CH route mean (µs)", fmt.Sprintf("%.1f", us(r.CHMean)))
	row("CH route p50 / p99 (µs, with path)", fmt.Sprintf("%.1f / %.1f", us(r.P50), us(r.P99)))
	row("CH cost p50 / p99 (µs, search only)", fmt.Sprintf("%.1f / %.1f", us(r.CostP50), us(r.CostP99)))
	row("speedup over Dijkstra", fmt.Sprintf("%.0fx", r.SpeedupDijkstra))
	row("speedup over bidirectional Dijkstra", fmt.Sprintf("%.0fx", r.SpeedupBidir))
	row("CH cost mean (µs) / speedup over Dijkstra", fmt.Sprintf("%.1f / %.0fx", us(r.CostMean), r.SpeedupCost))
	for _, m := range r.Matrix {
		row(fmt.Sprintf("matrix %dx%d (ms)", m.Size, m.Size), fmt.Sprintf("%.1f (%.1fx faster than %d CH queries)", ms(m.Time), m.SpeedupOverP2P, m.Size*m.Size))
	}
	fmt.Fprintf(w, "route: pairs %d mismatches %d speedup %.1f p50 %s\n", r.Pairs, r.Mismatches, r.SpeedupDijkstra, fmtDur(r.P50))
}

func ms(d time.Duration) float64 { return float64(d) / 1e6 }
func us(d time.Duration) float64 { return float64(d) / 1e3 }

func fmtDur(d time.Duration) string {
	return strconv.FormatFloat(math.Round(us(d)*10)/10, 'f', 1, 64) + "µs"
}
