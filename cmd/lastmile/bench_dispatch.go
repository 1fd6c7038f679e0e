package main

import (
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/lastmile/lastmile/bench"
	"github.com/lastmile/lastmile/datasets/sim"
	"github.com/lastmile/lastmile/engine/dispatch"
)

// benchDispatch is `lastmile bench dispatch [--extract porto|monaco]
// [--seed N | --seeds A-B] [--db postgres://...] [--url URL --admin-key
// K]`: a simulated delivery day driven through the HTTP API only, its
// events graded against the simulator's truth (bench.Dispatch); with
// --seeds, one day per seed and the figures summed over them.
func benchDispatch(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench dispatch", flag.ContinueOnError)
	extract := fs.String("extract", "porto", "extract name in $LASTMILE_DATA/osm (porto, monaco) or a path; a running server (--url) must serve the same")
	seed := fs.Uint64("seed", 1, "random seed of the simulated world and day")
	seeds := fs.String("seeds", "", "a range of seeds A-B: one day each, then the figures summed over the days (instead of --seed)")
	db := fs.String("db", "", "PostgreSQL URL for the in-process server's state (default: SQLite in a temporary folder)")
	url := fs.String("url", "", "base URL of a running server (default: one in-process, its clock following the simulated day)")
	adminKey := fs.String("admin-key", "", "an admin key of the server at --url (LASTMILE_ADMIN_KEY)")
	vans := fs.Int("vans", 0, "vans (0: the day's default, 10)")
	shipments := fs.Int("shipments", 0, "shipments (0: the day's default, 300)")
	solveTime := fs.Duration("solve-time", 5*time.Second, "solver time of the day plan")
	iterations := fs.Int("iterations", 0, "bound the day plan's solve by solver iterations per worker instead of --solve-time (the same plan on every run)")
	rerouteIterations := fs.Int("reroute-iterations", 0, "bound each re-routing solve by solver iterations per worker instead of 100 ms")
	batch := fs.Duration("batch", time.Minute, "simulated time one upload of a van's pings covers")
	quiet := fs.Bool("quiet", false, "log warnings only")
	handover := fs.Bool("handover", false, "the in-process server hands late stops to nearby vans (serve --handover)")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usagef("usage: lastmile bench dispatch [--extract porto|monaco] [--seed N | --seeds A-B] [--db postgres://...] [--url URL --admin-key K]")
	}
	if *vans < 0 || *shipments < 0 || *solveTime <= 0 || *batch <= 0 || *iterations < 0 || *rerouteIterations < 0 {
		return usagef("bench dispatch: --vans, --shipments and the iterations must not be negative, --solve-time and --batch must be positive")
	}
	if *url != "" && *adminKey == "" {
		return usagef("bench dispatch: --url needs --admin-key (or LASTMILE_ADMIN_KEY)")
	}
	log := newLogger(stderr, *quiet)
	g, path, err := benchExtract(*extract, stderr)
	if err != nil {
		return err
	}
	first, last := *seed, *seed
	if *seeds != "" {
		a, b, ok := strings.Cut(*seeds, "-")
		var err1, err2 error
		first, err1 = strconv.ParseUint(a, 10, 64)
		last, err2 = strconv.ParseUint(b, 10, 64)
		if !ok || err1 != nil || err2 != nil || last < first || last-first >= 1000 {
			return usagef("bench dispatch: --seeds: want A-B, A <= B, at most 1,000 seeds")
		}
	}
	var days []*bench.DispatchResult
	for sd := first; sd <= last; sd++ {
		log.Info("bench dispatch", "extract", path, "edges", len(g.Road.Edges), "seed", sd)
		r, err := bench.Dispatch(bench.DispatchConfig{Graph: g, URL: *url, AdminKey: *adminKey, DB: *db, Seed: sd,
			Day: sim.DayConfig{Vans: *vans, Shipments: *shipments}, SolveTime: *solveTime, Iterations: *iterations, Batch: *batch, Logger: log,
			Rules: dispatch.Config{RerouteIterations: *rerouteIterations, Handover: *handover}})
		if err != nil {
			return fmt.Errorf("seed %d: %w", sd, err)
		}
		if *seeds == "" {
			bench.WriteDispatch(stdout, r)
			return nil
		}
		fmt.Fprintln(stdout, r.Summary())
		days = append(days, r)
	}
	fmt.Fprintln(stdout)
	bench.WriteDispatchDays(stdout, days)
	return nil
}
