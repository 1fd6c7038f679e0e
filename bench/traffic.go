package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/lastmile/lastmile/engine"
	"github.com/lastmile/lastmile/graph"
)

// TrafficConfig configures Traffic.
type TrafficConfig struct {
	// Graph is a prepared .lmg file or an OSM file (prepared in this run).
	Graph string
	// Updates is the number of edge weights changed per update (default
	// 10,000), Rounds the number of updates timed (default 5).
	Updates, Rounds int
	// Pairs is the number of random pairs for query latency and the
	// correctness check (default 2000).
	Pairs int
	// Workers customize the hierarchy (default 2).
	Workers int
	// HTTPDuration is the length of each load phase over HTTP (default
	// 5 s; 0 skips nothing, negative skips the HTTP part); Concurrency its
	// client count (default 8).
	HTTPDuration time.Duration
	Concurrency  int
	Seed         uint64
	Logger       *slog.Logger
}

// TrafficReport holds the figures of one Traffic run.
type TrafficReport struct {
	Graph string
	// ContractTime is the static hierarchy's contraction (zero for a
	// loaded graph): what a full re-preprocessing would cost.
	ContractTime        time.Duration
	CHNodes, CCHArcs    int
	SearchArcs, CHArcs  int
	Triangles           int64
	OrderTime, CCHBuild time.Duration
	// Customize holds the time of each update of Updates edge weights,
	// from the new durations to the snapshot ready for queries.
	Updates   int
	Customize []time.Duration
	// Update holds the time of the same updates made incrementally
	// (graph.Customization.Update, from the round before's), as live
	// traffic makes them, and UpdateRanks the ranks each recomputed.
	Update      []time.Duration
	UpdateRanks []int
	// IncP50 is the customized query latency on the last incremental
	// snapshot (its searched ranges took in mirrors: see graph.CCH.emit).
	IncP50 time.Duration
	// Query latency (search only, Query.Cost) on the same pairs: the
	// static CH searched whole (NoTransit) and the customized CCH,
	// medians of the per-round p50s, and their ratio; StaticTransitP50
	// is the static graph's Cost with its transit table.
	StaticP50, LiveP50 time.Duration
	StaticTransitP50   time.Duration
	LiveOverStatic     float64
	// Mismatches counts pairs where the customized graph and a Dijkstra
	// search on the same metric disagree (must be 0).
	Checked, Mismatches int
	// HTTP under load: route phases before and while traffic updates of
	// Updates edges are posted with ?wait=true, and each update's time
	// until routing used it.
	HTTP     []HTTPPhase
	HTTPLags []time.Duration
}

// Traffic measures live traffic reaching routing on one graph: the
// customizable contraction hierarchy's preprocessing, the time to apply an
// update of many edge weights, query latency on the customized graph
// against the static hierarchy, and, over loopback HTTP, route latency
// while updates are posted and applied.
func Traffic(cfg TrafficConfig) (*TrafficReport, error) {
	if cfg.Updates <= 0 {
		cfg.Updates = 10_000
	}
	if cfg.Rounds <= 0 {
		cfg.Rounds = 5
	}
	if cfg.Pairs <= 0 {
		cfg.Pairs = 2000
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 2
	}
	if cfg.HTTPDuration == 0 {
		cfg.HTTPDuration = 5 * time.Second
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 8
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	g, err := loadGraph(cfg.Graph, log)
	if err != nil {
		return nil, err
	}
	rep := &TrafficReport{Graph: cfg.Graph, CHNodes: g.Stats().CHNodes, CHArcs: g.Stats().UpArcs, Updates: cfg.Updates,
		ContractTime: g.Stats().ContractTime}
	log.Info("building the customizable hierarchy")
	c, err := graph.NewCCH(g, cfg.Workers)
	if err != nil {
		return nil, err
	}
	rep.CCHArcs, rep.Triangles, rep.OrderTime, rep.CCHBuild = c.Arcs(), c.Triangles, c.OrderTime, c.BuildTime

	rng := rand.New(rand.NewPCG(cfg.Seed, 0x7aff1c))
	net := g.Road
	var routable []uint32
	for e := range net.Edges {
		if g.Routable(uint32(e)) {
			routable = append(routable, uint32(e))
		}
	}
	dur := make([]float64, len(net.Edges))
	for e := range dur {
		dur[e] = net.Edges[e].Duration
	}
	var live *graph.Graph
	z, err := c.NewCustomization(dur, cfg.Workers, func() {})
	if err != nil {
		return nil, err
	}
	for round := range cfg.Rounds {
		for range cfg.Updates {
			e := routable[rng.IntN(len(routable))]
			dur[e] = net.Edges[e].Duration * (1 + 3*rng.Float64())
		}
		t0 := time.Now()
		live, err = c.Customize(dur, cfg.Workers)
		if err != nil {
			return nil, err
		}
		rep.Customize = append(rep.Customize, time.Since(t0))
		t0 = time.Now()
		if _, err := z.Update(dur, func() {}); err != nil {
			return nil, err
		}
		rep.Update = append(rep.Update, time.Since(t0))
		rep.UpdateRanks = append(rep.UpdateRanks, z.Last.Basic+z.Last.Exact)
		log.Info("customized", "round", round, "edges", cfg.Updates, "elapsed", rep.Customize[round],
			"update", rep.Update[round], "ranks", z.Last.Basic+z.Last.Exact)
	}
	inc := z.Graph()
	rep.SearchArcs, _ = live.SearchArcs()

	// Correctness on the live metric, then latency on both graphs.
	eps := RandomEndpoints(g, rng, 2*cfg.Pairs)
	for _, gr := range []*graph.Graph{live, inc} {
		q := gr.NewQuery()
		for i := 0; i+1 < len(eps) && i < 400; i += 2 {
			a, _, err1 := q.Cost(eps[i], eps[i+1])
			dj, err2 := q.Dijkstra(eps[i], eps[i+1])
			rep.Checked++
			if (err1 == nil) != (err2 == nil) || (err1 == nil && a != dj.Duration) {
				rep.Mismatches++
			}
		}
	}
	p50 := func(gr *graph.Graph, noTransit bool) time.Duration {
		q := gr.NewQuery()
		q.NoTransit = noTransit
		lat := make([]time.Duration, 0, cfg.Pairs)
		for i := 0; i+1 < len(eps); i += 2 {
			t0 := time.Now()
			_, _, _ = q.Cost(eps[i], eps[i+1])
			lat = append(lat, time.Since(t0))
		}
		slices.Sort(lat)
		return lat[len(lat)/2]
	}
	var st, sx, lv, iv []time.Duration
	var ratios []float64
	for range 5 { // interleaved rounds: the machine is shared and noisy
		s, x, l, i := p50(g, true), p50(g, false), p50(live, false), p50(inc, false)
		st, sx, lv, iv = append(st, s), append(sx, x), append(lv, l), append(iv, i)
		ratios = append(ratios, float64(l)/float64(s))
	}
	slices.Sort(st)
	slices.Sort(sx)
	slices.Sort(lv)
	slices.Sort(iv)
	slices.Sort(ratios)
	rep.StaticP50, rep.StaticTransitP50, rep.LiveP50, rep.LiveOverStatic = st[2], sx[2], lv[2], ratios[2]
	rep.IncP50 = iv[2]

	if cfg.HTTPDuration > 0 {
		if err := trafficHTTP(cfg, g, routable, rep, log); err != nil {
			return nil, err
		}
	}
	return rep, nil
}

// loadGraph reads a prepared graph or prepares an OSM file.
func loadGraph(path string, log *slog.Logger) (*graph.Graph, error) {
	if engine.IsOSM(path) {
		log.Info("preparing", "file", path)
		g, _, err := engine.Prepare(path, engine.PrepareOptions{Logger: log})
		return g, err
	}
	return graph.LoadFile(path)
}

// trafficHTTP runs the server on loopback: a route load phase, then the
// same load while three updates are posted and waited for.
func trafficHTTP(cfg TrafficConfig, g *graph.Graph, routable []uint32, rep *TrafficReport, log *slog.Logger) error {
	ln, stop, err := serveLoopback(g, log)
	if err != nil {
		return err
	}
	defer stop()
	base := "http://" + ln.Addr().String()
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x477))
	pts := roadNodePoints(g, rng, 4096)
	routes := make([]benchRequest, 4096)
	for i := range routes {
		a, b := pts[rng.IntN(len(pts))], pts[rng.IntN(len(pts))]
		routes[i].uri = base + "/v1/route/" + fmtPoint(a) + ";" + fmtPoint(b) + "?overview=false"
	}
	client := &fasthttp.HostClient{Addr: ln.Addr().String(), MaxConns: cfg.Concurrency,
		ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second}
	runPhase(client, routes, cfg.Concurrency, 300*time.Millisecond, 2000)
	before := runPhase(client, routes, cfg.Concurrency, cfg.HTTPDuration, 2_000_000)
	before.Name = "route"
	// Updates: edge speeds in km/h around the free-flow speed.
	bodies := make([][]byte, 3)
	for k := range bodies {
		obs := make([]engine.TrafficObservation, cfg.Updates)
		for i := range obs {
			e := routable[rng.IntN(len(routable))]
			ed := &g.Road.Edges[e]
			v := ed.Distance / ed.Duration * 3.6 * (0.3 + 0.7*rng.Float64())
			obs[i] = engine.TrafficObservation{Edge: &e, Speed: &v}
		}
		bodies[k], _ = json.Marshal(engine.TrafficRequest{Observations: obs})
	}
	var wg sync.WaitGroup
	var during HTTPPhase
	wg.Add(1)
	go func() {
		defer wg.Done()
		during = runPhase(client, routes, cfg.Concurrency, cfg.HTTPDuration, 2_000_000)
	}()
	uc := &fasthttp.HostClient{Addr: ln.Addr().String(), MaxConns: 1, ReadTimeout: time.Minute, WriteTimeout: time.Minute,
		MaxResponseBodySize: 1 << 20}
	var firstErr error
	for k, body := range bodies {
		time.Sleep(cfg.HTTPDuration / 5)
		req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		req.SetRequestURI(base + "/v1/traffic?wait=true")
		req.Header.SetMethod(fasthttp.MethodPost)
		req.Header.SetContentType("application/json")
		req.SetBodyRaw(body)
		t0 := time.Now()
		err := uc.Do(req, resp)
		lag := time.Since(t0)
		var tr engine.TrafficResponse
		if err == nil && resp.StatusCode() == 200 {
			err = json.Unmarshal(resp.Body(), &tr)
		} else if err == nil {
			err = fmt.Errorf("status %d: %.200s", resp.StatusCode(), resp.Body())
		}
		fasthttp.ReleaseRequest(req)
		fasthttp.ReleaseResponse(resp)
		if err != nil || !tr.Applied {
			if firstErr == nil {
				firstErr = fmt.Errorf("traffic update %d: applied=%v: %v", k, tr.Applied, err)
			}
			continue
		}
		rep.HTTPLags = append(rep.HTTPLags, lag)
		log.Info("traffic update applied", "observations", cfg.Updates, "accepted", tr.Accepted, "lag", lag)
	}
	wg.Wait()
	during.Name = "route during updates"
	rep.HTTP = append(rep.HTTP, before, during)
	return firstErr
}

// CustomizeP50 is the median customization time.
func (r *TrafficReport) CustomizeP50() time.Duration {
	cs := slices.Clone(r.Customize)
	slices.Sort(cs)
	return cs[len(cs)/2]
}

// CheckTrafficFloors prints the traffic floors with the ratios measured
// and returns how many were not met: customized queries at most 2.5 times
// the static ones (the target is 2), customization at least twice
// as fast as re-contracting (when the run contracted), and no mismatch
// with Dijkstra.
func CheckTrafficFloors(w io.Writer, r *TrafficReport) int {
	floors := []Floor{{"static over customized query time", 1 / r.LiveOverStatic, 0.4}}
	if r.ContractTime > 0 {
		floors = append(floors, Floor{"contraction over customization time", float64(r.ContractTime) / float64(r.CustomizeP50()), 2})
	}
	failed := 0
	if r.Mismatches > 0 {
		fmt.Fprintf(w, "FAIL customized graph disagrees with Dijkstra on %d of %d pairs\n", r.Mismatches, r.Checked)
		failed++
	}
	return failed + checkFloors(w, floors)
}

// WriteTraffic prints the report.
func WriteTraffic(w io.Writer, r *TrafficReport) {
	fmt.Fprintf(w, "graph %s: %d CH nodes, CH up arcs %d\n", r.Graph, r.CHNodes, r.CHArcs)
	fmt.Fprintf(w, "CCH: order %s, build %s, %d arcs (%d searched after perfect customization), %d triangles\n",
		fmtSpan(r.OrderTime), fmtSpan(r.CCHBuild), r.CCHArcs, r.SearchArcs, r.Triangles)
	cs := slices.Clone(r.Customize)
	slices.Sort(cs)
	fmt.Fprintf(w, "customize after %d changed edge weights: p50 %s max %s (%d rounds)\n", r.Updates, fmtSpan(cs[len(cs)/2]), fmtSpan(cs[len(cs)-1]), len(cs))
	if len(r.Update) > 0 {
		ups := slices.Clone(r.Update)
		slices.Sort(ups)
		ranks := slices.Clone(r.UpdateRanks)
		slices.Sort(ranks)
		fmt.Fprintf(w, "the same updates incrementally (from the round before's): p50 %s max %s, %d ranks recomputed (p50)\n",
			fmtSpan(ups[len(ups)/2]), fmtSpan(ups[len(ups)-1]), ranks[len(ranks)/2])
	}
	fmt.Fprintf(w, "query p50 (search only): static CH %.1f µs, customized %.1f µs, ratio %.2f; incrementally updated %.1f µs\n",
		us(r.StaticP50), us(r.LiveP50), r.LiveOverStatic, us(r.IncP50))
	fmt.Fprintf(w, "static cost query with its transit table (none on customized graphs): %.1f µs\n", us(r.StaticTransitP50))
	fmt.Fprintf(w, "customized graph vs Dijkstra: %d mismatches of %d pairs\n", r.Mismatches, r.Checked)
	if len(r.HTTP) > 0 {
		fmt.Fprintf(w, "%-22s %9s %9s %9s %9s %7s\n", "http phase", "req/s", "p50 ms", "p99 ms", "max ms", "errors")
		for _, p := range r.HTTP {
			fmt.Fprintf(w, "%-22s %9.0f %9.3f %9.3f %9.1f %7d\n", p.Name, p.RPS, ms(p.P50), ms(p.P99), ms(p.Max), p.Errors)
		}
		var lags []string
		for _, l := range r.HTTPLags {
			lags = append(lags, fmtSpan(l))
		}
		fmt.Fprintf(w, "POST /v1/traffic of %d observations until routing uses them (wait=true): %v\n", r.Updates, lags)
	}
	fmt.Fprintf(w, "traffic: customize-p50 %s query-ratio %.2f mismatches %d\n", fmtSpan(cs[len(cs)/2]), r.LiveOverStatic, r.Mismatches)
}

// fmtSpan formats a duration in the unit that suits it.
func fmtSpan(d time.Duration) string {
	switch {
	case d >= 10*time.Second:
		return fmt.Sprintf("%.1f s", d.Seconds())
	case d >= time.Millisecond:
		return fmt.Sprintf("%.1f ms", ms(d))
	}
	return fmt.Sprintf("%.1f µs", us(d))
}
