package main

import (
	"flag"
	"io"

	"github.com/lastmile/lastmile/bench"
)

// benchTraffic measures live traffic reaching routing (bench.Traffic).
func benchTraffic(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench traffic", flag.ContinueOnError)
	gpath := fs.String("graph", "", "prepared graph (.lmg), or an OSM file to prepare in this run")
	updates := fs.Int("updates", 10000, "edge weights changed per update")
	rounds := fs.Int("rounds", 5, "updates timed")
	pairs := fs.Int("pairs", 2000, "random pairs for query latency")
	workers := fs.Int("workers", 2, "goroutines customizing the hierarchy")
	dur := fs.Duration("duration", 5e9, "length of each HTTP load phase (negative skips the HTTP part)")
	conc := fs.Int("concurrency", 8, "HTTP clients")
	seed := fs.Uint64("seed", 1, "random seed")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 || *gpath == "" {
		return usagef("usage: lastmile bench traffic --graph G [--updates N] [--duration D]")
	}
	rep, err := bench.Traffic(bench.TrafficConfig{Graph: *gpath, Updates: *updates, Rounds: *rounds, Pairs: *pairs,
		Workers: *workers, HTTPDuration: *dur, Concurrency: *conc, Seed: *seed, Logger: newLogger(stderr, false)})
	if err != nil {
		return err
	}
	bench.WriteTraffic(stdout, rep)
	return nil
}
