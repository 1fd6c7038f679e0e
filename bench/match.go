package bench

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"time"

	"github.com/lastmile/lastmile/datasets"
	"github.com/lastmile/lastmile/datasets/sim"
	"github.com/lastmile/lastmile/engine"
	"github.com/lastmile/lastmile/eta"
	"github.com/lastmile/lastmile/graph"
)

// MatchConfig configures Match. Zero values mean the defaults given.
type MatchConfig struct {
	// Graph is the road graph to match on (required).
	Graph *graph.Graph
	// Trips is the number of simulated trips (default 200), each with a
	// route at least MinLength metres long (default 1500).
	Trips     int
	MinLength float64
	// Interval is the ping interval of the simulated trips (default 10 s);
	// Sigma the standard deviation in metres per axis of their GPS noise
	// (default 5; negative means none).
	Interval time.Duration
	Sigma    float64
	// Options configure the matcher (zero = eta's defaults).
	Options eta.MatchOptions
	// Traces, if set, is a normalised trace CSV (datasets.ReadTraces) of
	// real GPS traces to match as well, at most MaxTraces of them (0 =
	// all); there is no ground truth for them, so only the throughput and
	// the share of pings matched are reported.
	Traces    string
	MaxTraces int
	// Seed makes the simulated trips reproducible.
	Seed uint64
	// Logger receives progress (nil = discard).
	Logger *slog.Logger
}

// MatchResult is the outcome of Match.
type MatchResult struct {
	// Trips and Pings count the simulated trips and their pings.
	Trips, Pings int
	// TruthEdges is the number of distinct true edges summed over the
	// trips, TruthHit how many of them the matched path holds; Matched and
	// MatchedHit the same for the matched edges (distinct per trip) and
	// those on the true path.
	TruthEdges, TruthHit, Matched, MatchedHit int
	// Breaks counts the HMM breaks, Rejected the rejected pings.
	Breaks, Rejected int
	// Wall and CPU are the time spent in Matcher.Match (on one goroutine;
	// CPU is the process's user+system time, 0 where unavailable).
	Wall, CPU time.Duration

	// Real traces (when MatchConfig.Traces is set): how many (with at least
	// one fix; traces without fixes are skipped), their pings,
	// the pings matched onto a road (not rejected), breaks, and the time
	// in Match.
	Traces, TracePings, TraceMatched, TraceBreaks int
	TraceWall, TraceCPU                           time.Duration
	// TraceRejected counts the real traces' rejected pings by reason.
	TraceRejected map[string]int
}

// Recall is the share of the true edges that were matched.
func (r *MatchResult) Recall() float64 { return ratio(r.TruthHit, r.TruthEdges) }

// Precision is the share of the matched edges that are true.
func (r *MatchResult) Precision() float64 { return ratio(r.MatchedHit, r.Matched) }

// ratio returns a/b, NaN when b is 0.
func ratio(a, b int) float64 {
	if b == 0 {
		return math.NaN()
	}
	return float64(a) / float64(b)
}

// perSecond returns n per d seconds, NaN when d is 0.
func perSecond(n int, d time.Duration) float64 {
	if d <= 0 {
		return math.NaN()
	}
	return float64(n) / d.Seconds()
}

// Match measures the map matcher (eta.Matcher, an HMM after Newson & Krumm
// 2009): it simulates Trips trips with package sim (random origin and
// destination, the static shortest route, driven through the simulated
// traffic of a weekday between 07:00 and 19:00), samples noisy pings every
// Interval, matches them and compares the matched path with the true one as
// sets of distinct edges per trip. With Traces it also matches the real
// traces of that file and reports their throughput and matched share.
func Match(cfg MatchConfig) (MatchResult, error) {
	var res MatchResult
	if cfg.Graph == nil {
		return res, errors.New("bench: Match needs a graph")
	}
	if cfg.Trips == 0 {
		cfg.Trips = 200
	}
	if cfg.MinLength == 0 {
		cfg.MinLength = 1500
	}
	if cfg.Interval == 0 {
		cfg.Interval = 10 * time.Second
	}
	switch {
	case cfg.Sigma == 0:
		cfg.Sigma = 5
	case cfg.Sigma < 0:
		cfg.Sigma = 0
	}
	if cfg.Trips < 0 || cfg.Interval < 0 || !(cfg.MinLength >= 0) || math.IsInf(cfg.Sigma, 0) || math.IsNaN(cfg.Sigma) || cfg.MaxTraces < 0 {
		return res, fmt.Errorf("bench: Match: bad Trips %d, MinLength %v, Interval %v, Sigma %v or MaxTraces %d",
			cfg.Trips, cfg.MinLength, cfg.Interval, cfg.Sigma, cfg.MaxTraces)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m, err := eta.NewMatcher(cfg.Graph, cfg.Options)
	if err != nil {
		return res, fmt.Errorf("bench: Match: %w", err)
	}
	start := time.Date(2026, 1, 6, 0, 0, 0, 0, time.UTC) // a Tuesday
	w, err := sim.NewWorld(cfg.Graph.Road, sim.DefaultConfig(start, 1, cfg.Seed))
	if err != nil {
		return res, fmt.Errorf("bench: Match: %w", err)
	}
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x3a7c))
	q := cfg.Graph.NewQuery()
	var pings []eta.Ping
	truth := map[uint32]bool{}
	matched := map[uint32]bool{}
	for i := range cfg.Trips {
		var r graph.Route
		found := false
		for try := 0; try < 50 && !found; try++ {
			ep := sim.RandomEndpoints(cfg.Graph, 2, rng)
			if len(ep) < 2 {
				return res, errors.New("bench: Match: graph has no routable edge")
			}
			r, err = q.Route(ep[0], ep[1])
			found = err == nil && r.Distance >= cfg.MinLength
		}
		if !found {
			return res, fmt.Errorf("bench: Match: trip %d: no route of at least %v m found in 50 tries", i, cfg.MinLength)
		}
		t0 := start.Add(7*time.Hour + time.Duration(rng.Int64N(int64(12*time.Hour))))
		d, err := w.Drive(r.Edges, r.SrcFraction, r.DstFraction, t0, rng)
		if err != nil {
			return res, fmt.Errorf("bench: Match: trip %d: %w", i, err)
		}
		sp, err := w.Pings(d, "sim", cfg.Interval, cfg.Sigma, rng)
		if err != nil {
			return res, fmt.Errorf("bench: Match: trip %d: %w", i, err)
		}
		pings = pings[:0]
		for _, p := range sp {
			// The truth speed and heading are withheld: a device's are noisy.
			pings = append(pings, eta.Ping{Time: p.Time, Lat: p.Lat, Lon: p.Lon, Speed: math.NaN(), Heading: math.NaN()})
		}
		var mr eta.MatchResult
		wall, cpu, err := timed(func() error {
			var e error
			mr, e = m.Match(pings)
			return e
		})
		if err != nil {
			return res, fmt.Errorf("bench: Match: trip %d: %w", i, err)
		}
		res.Wall += wall
		res.CPU += cpu
		res.Trips++
		res.Pings += len(pings)
		res.Breaks += mr.Breaks
		for _, n := range mr.Rejected {
			res.Rejected += n
		}
		clear(truth)
		clear(matched)
		for _, e := range d.Edges {
			truth[e] = true
		}
		for _, e := range mr.Edges {
			matched[e] = true
		}
		for e := range truth {
			res.TruthEdges++
			if matched[e] {
				res.TruthHit++
			}
		}
		for e := range matched {
			res.Matched++
			if truth[e] {
				res.MatchedHit++
			}
		}
	}
	log.Info("match: simulated trips", "trips", res.Trips, "pings", res.Pings, "recall", res.Recall(), "precision", res.Precision())
	if cfg.Traces == "" {
		return res, nil
	}
	traces, err := datasets.ReadTracesFile(cfg.Traces)
	if err != nil {
		return res, fmt.Errorf("bench: Match: %w", err)
	}
	if cfg.MaxTraces > 0 && len(traces) > cfg.MaxTraces {
		traces = traces[:cfg.MaxTraces]
	}
	res.TraceRejected = map[string]int{}
	for _, tr := range traces {
		if pings, err = engine.TracePings(pings[:0], tr); err != nil {
			return res, fmt.Errorf("bench: Match: %w", err)
		}
		if len(pings) == 0 {
			continue
		}
		var mr eta.MatchResult
		wall, cpu, err := timed(func() error {
			var e error
			mr, e = m.Match(pings)
			return e
		})
		if err != nil {
			return res, fmt.Errorf("bench: Match: trace %s: %w", tr.ID, err)
		}
		res.TraceWall += wall
		res.TraceCPU += cpu
		res.Traces++
		res.TracePings += len(pings)
		res.TraceBreaks += mr.Breaks
		for _, p := range mr.Points {
			if p.OK {
				res.TraceMatched++
			}
		}
		for k, n := range mr.Rejected {
			res.TraceRejected[k] += n
		}
	}
	log.Info("match: real traces", "traces", res.Traces, "pings", res.TracePings, "matched", res.TraceMatched)
	return res, nil
}

// timed runs f and returns its wall and process CPU time (0 CPU where the
// platform does not report it).
func timed(f func() error) (wall, cpu time.Duration, err error) {
	c0, ok0 := processCPU()
	t0 := time.Now()
	err = f()
	wall = time.Since(t0)
	if c1, ok1 := processCPU(); ok0 && ok1 {
		cpu = c1 - c0
	}
	return wall, cpu, err
}

// WriteMatch prints the matching benchmark and the stable last line
// `match: edges-right R% pings/s P` (R the share of true edges matched, P
// simulated pings per wall second on one goroutine).
func WriteMatch(w io.Writer, r MatchResult) {
	fmt.Fprintf(w, "simulated: %d trips, %d pings: true edges matched %.2f%% (%d/%d), matched edges true %.2f%% (%d/%d), breaks %d, rejected pings %d\n",
		r.Trips, r.Pings, 100*r.Recall(), r.TruthHit, r.TruthEdges, 100*r.Precision(), r.MatchedHit, r.Matched, r.Breaks, r.Rejected)
	fmt.Fprintf(w, "simulated throughput (one goroutine): %.0f pings/s wall, %.0f pings per CPU second\n",
		perSecond(r.Pings, r.Wall), perSecond(r.Pings, r.CPU))
	if r.Traces > 0 {
		fmt.Fprintf(w, "real traces: %d traces, %d pings: %.2f%% matched onto a road, breaks %d, rejected %v\n",
			r.Traces, r.TracePings, 100*ratio(r.TraceMatched, r.TracePings), r.TraceBreaks, r.TraceRejected)
		fmt.Fprintf(w, "real throughput (one goroutine): %.0f pings/s wall, %.0f pings per CPU second\n",
			perSecond(r.TracePings, r.TraceWall), perSecond(r.TracePings, r.TraceCPU))
	}
	fmt.Fprintf(w, "match: edges-right %.2f%% pings/s %.0f\n", 100*r.Recall(), perSecond(r.Pings, r.Wall))
}
