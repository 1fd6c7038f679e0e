package main

import (
	"flag"
	"io"
	"strings"
	"time"

	"github.com/lastmile/lastmile/bench"
)

// benchHTTP is `lastmile bench http --graph G [--duration 10s]
// [--concurrency 8]`: the HTTP load test of bench.HTTP (server in-process
// on a loopback port, fasthttp clients over TCP).
func benchHTTP(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench http", flag.ContinueOnError)
	gpath := fs.String("graph", "", "prepared graph (.lmg), or an OSM file prepared in this run")
	duration := fs.Duration("duration", 10*time.Second, "length of each phase (route, route+geometry, table)")
	conc := fs.Int("concurrency", 8, "client connections driving the server")
	requests := fs.Int("requests", 2_000_000, "most requests per phase")
	table := fs.Int("table", 10, "side of the square tables of the table phase")
	seed := fs.Uint64("seed", 1, "random seed for the coordinates")
	phases := fs.String("phases", "route,geometry,table,solve", "phases to run, comma-separated")
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile of the phases to this file")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 || *gpath == "" {
		return usagef("usage: lastmile bench http --graph G [--duration 10s] [--concurrency 8]")
	}
	if *duration <= 0 || *duration > time.Hour {
		return usagef("--duration %v: want a positive duration up to 1h", *duration)
	}
	if *conc <= 0 || *conc > 1024 {
		return usagef("--concurrency %d: want 1 to 1024", *conc)
	}
	if *requests <= 0 || *table <= 0 || *table > 1000 {
		return usagef("--requests and --table must be positive (--table at most 1000)")
	}
	rep, err := bench.HTTP(bench.HTTPConfig{Graph: *gpath, Duration: *duration, Concurrency: *conc, MaxRequests: *requests,
		TableSize: *table, Phases: strings.Split(*phases, ","), Seed: *seed, CPUProfile: *cpuprofile, Logger: newLogger(stderr, true)})
	if err != nil {
		return err
	}
	bench.WriteHTTP(stdout, rep)
	return nil
}
