package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/lastmile/lastmile/bench"
	"github.com/lastmile/lastmile/datasets"
	"github.com/lastmile/lastmile/datasets/sim"
	"github.com/lastmile/lastmile/engine"
	"github.com/lastmile/lastmile/graph"
)

// benchExtract resolves --extract: a path to an OSM file or prepared graph
// as given, else the name of an extract in $LASTMILE_DATA/osm (porto →
// porto.osm.pbf), falling back to the repository's datasets/osm for
// Monaco. The prepared graph is cached in the temporary directory (the
// shared data folder is read-only).
func benchExtract(name string, stderr io.Writer) (*graph.Graph, string, error) {
	path := name
	if !strings.ContainsRune(name, os.PathSeparator) && !strings.Contains(name, ".") {
		path = datasets.Path("osm", name+".osm.pbf")
		if _, err := os.Stat(path); err != nil {
			local := filepath.Join("datasets", "osm", name+".osm.pbf")
			if _, err2 := os.Stat(local); err2 != nil {
				return nil, "", fmt.Errorf("extract %q: %w (set %s to the shared datasets folder)", name, err, datasets.EnvVar)
			}
			path = local
		}
	}
	g, err := engine.Open(path, filepath.Join(os.TempDir(), "lastmile-graphs"), engine.PrepareOptions{Logger: newLogger(stderr, true)})
	if err != nil {
		return nil, "", err
	}
	return g, path, nil
}

// benchETA is `lastmile bench eta [--extract porto] [--fit-days N]
// [--test-days N] [--vans N] [--stops N] [--probes N] [--seed S]`: the
// simulated ETA accuracy benchmark of bench.ETA.
func benchETA(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench eta", flag.ContinueOnError)
	extract := fs.String("extract", "porto", "extract name in $LASTMILE_DATA/osm (porto, andorra, monaco) or a path")
	fit := fs.Int("fit-days", 21, "simulated days fitting the historical profile")
	test := fs.Int("test-days", 5, "held-out simulated days evaluated")
	vans := fs.Int("vans", 10, "van tours per weekday")
	stops := fs.Int("stops", 20, "stops per van")
	probes := fs.Int("probes", 2000, "probe trips per day")
	seed := fs.Uint64("seed", 1, "random seed")
	horizon := fs.Duration("live-horizon", 0, "live traffic decay horizon (0 = the benchmark default, bench.DefaultLiveHorizon)")
	vanPrior := fs.Float64("van-prior", 0, "weight in legs of the zero prior of each van's bias (0 = the default 2, negative = estimated from the calibration days)")
	noVan := fs.Bool("no-van-bias", false, "do not learn from the vans' own progress")
	service := fs.Float64("service-sigma", -1, "σ of the simulated service-time noise at stops (negative = the simulator's default, 0.3)")
	quiet := fs.Bool("quiet", false, "log warnings only")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usagef("usage: lastmile bench eta [--extract porto] [--fit-days N] [--test-days N] [--vans N] [--stops N] [--probes N] [--seed S] [--service-sigma S]")
	}
	if *fit < 2 || *test < 1 || *vans < 1 || *stops < 1 || *probes < 1 || *horizon < 0 {
		return usagef("bench eta: need --fit-days >= 2, positive --test-days, --vans, --stops, --probes and --live-horizon >= 0")
	}
	log := newLogger(stderr, *quiet)
	g, path, err := benchExtract(*extract, stderr)
	if err != nil {
		return err
	}
	log.Info("bench eta", "extract", path, "edges", len(g.Road.Edges))
	cfg := bench.ETAConfig{Graph: g, FitDays: *fit, TestDays: *test, Vans: *vans, StopsPerVan: *stops,
		ProbesPerDay: *probes, Seed: *seed, Logger: log}
	cfg.Traffic.Horizon = *horizon
	cfg.VanPrior, cfg.NoVanBias = *vanPrior, *noVan
	if *service >= 0 {
		// ETA sets the start, days and seed of the world
		sc := sim.DefaultConfig(time.Time{}, 1, 0)
		sc.ServiceSigma = *service
		cfg.Sim = &sc
	}
	r, err := bench.ETA(cfg)
	if err != nil {
		return err
	}
	bench.WriteETA(stdout, r)
	return nil
}

// benchMatch is `lastmile bench match [--extract porto] [--trips N]
// [--interval 10s] [--sigma 5]`: map-matching accuracy on simulated trips
// and throughput on them and on the real Porto taxi traces (bench.Match).
func benchMatch(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench match", flag.ContinueOnError)
	extract := fs.String("extract", "porto", "extract name in $LASTMILE_DATA/osm (porto, andorra, monaco) or a path")
	trips := fs.Int("trips", 200, "simulated trips")
	interval := fs.Duration("interval", 10*time.Second, "ping interval of the simulated trips")
	sigma := fs.Float64("sigma", 5, "GPS noise of the simulated pings, metres per axis (0 = none)")
	traces := fs.String("traces", "", "normalised trace CSV to match too (default: the Porto taxi traces for --extract porto)")
	maxTraces := fs.Int("max-traces", 0, "most real traces matched (0 = all)")
	seed := fs.Uint64("seed", 1, "random seed")
	quiet := fs.Bool("quiet", false, "log warnings only")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usagef("usage: lastmile bench match [--extract porto] [--trips N] [--interval 10s] [--sigma 5]")
	}
	if *trips < 1 || *interval <= 0 || *sigma < 0 || *maxTraces < 0 {
		return usagef("bench match: need positive --trips and --interval, --sigma >= 0, --max-traces >= 0")
	}
	log := newLogger(stderr, *quiet)
	g, path, err := benchExtract(*extract, stderr)
	if err != nil {
		return err
	}
	tr := *traces
	if tr == "" && *extract == "porto" {
		tr = datasets.Path("traces", "normalised", "porto_taxi_train-1000.csv")
		if _, err := os.Stat(tr); err != nil {
			log.Warn("bench match: no Porto taxi traces, simulated trips only", "err", err)
			tr = ""
		}
	}
	s := *sigma
	if s == 0 {
		s = -1 // bench.Match: negative = no noise
	}
	log.Info("bench match", "extract", path, "edges", len(g.Road.Edges), "traces", tr)
	r, err := bench.Match(bench.MatchConfig{Graph: g, Trips: *trips, Interval: *interval, Sigma: s,
		Traces: tr, MaxTraces: *maxTraces, Seed: *seed, Logger: log})
	if err != nil {
		return err
	}
	bench.WriteMatch(stdout, r)
	return nil
}
