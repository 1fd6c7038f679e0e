package main

import (
	"context"
	"flag"
	"io"
	"math"
	"os"
	"strings"
	"time"

	"github.com/lastmile/lastmile/bench"
)

// benchIngest is `lastmile bench ingest --graph G [--vans 1000]
// [--duration 20s] [--db postgres://...]`: ping ingest over HTTP with map
// matching, storage, ETA updates and the dispatch rules (bench.Ingest).
func benchIngest(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench ingest", flag.ContinueOnError)
	gpath := fs.String("graph", "", "prepared graph (.lmg), or an OSM file prepared in this run")
	db := fs.String("db", "", "PostgreSQL URL for the state (default: SQLite in a temporary folder)")
	vans := fs.Int("vans", 1000, "vans tracked at once")
	stops := fs.Int("stops", 20, "stops per van")
	batch := fs.Int("batch", 100, "pings per request")
	perBatch := fs.Int("vans-per-batch", 10, "vans per request")
	clients := fs.Int("clients", 8, "concurrent HTTP clients")
	duration := fs.Duration("duration", 20*time.Second, "length of the load phase")
	rate := fs.Float64("rate", 0, "pings per second in all, paced (0: as fast as the server answers)")
	seed := fs.Uint64("seed", 1, "random seed")
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile of the load phase to this file")
	trace := fs.String("trace", "", "write each request's send time and latency (µs) to this file")
	keep := fs.String("keep", "", "keep the SQLite state in this folder (to time a restart on it)")
	maxPings := fs.Int64("pings", 0, "stop after this many pings (0: at --duration)")
	interval := fs.Duration("interval", 10*time.Second, "simulated time between a van's pings")
	hook := fs.String("webhook", "", "subscribe a webhook receiver on loopback to every event: "+strings.Join(bench.HookModes, ", "))
	hooks := fs.Int("webhooks", 1, "subscriptions to that receiver (each event is delivered to each)")
	noStatuses := fs.Bool("no-statuses", false, "post no delivered status for the stops the vans leave")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 || *gpath == "" {
		return usagef("usage: lastmile bench ingest --graph G [--vans 1000] [--duration 20s] [--db postgres://...]")
	}
	if *vans <= 0 || *stops <= 0 || *batch <= 0 || *perBatch <= 0 || *clients <= 0 || *duration <= 0 {
		return usagef("--vans, --stops, --batch, --vans-per-batch, --clients and --duration must be positive")
	}
	if !(*rate >= 0) || math.IsInf(*rate, 0) {
		return usagef("--rate: want a number of pings per second (0: unpaced)")
	}
	r, err := openGraph(*gpath, stderr)
	if err != nil {
		return err
	}
	res, err := bench.Ingest(bench.IngestConfig{Graph: r.Current(), DB: *db, Vans: *vans, Stops: *stops, Batch: *batch,
		VansPerBatch: *perBatch, Clients: *clients, Duration: *duration, Rate: *rate, Seed: *seed, CPUProfile: *cpuprofile, Trace: *trace, Dir: *keep, MaxPings: *maxPings, Interval: *interval,
		Hook: *hook, Hooks: *hooks, NoStatuses: *noStatuses, Logger: newLogger(stderr, false)})
	if err != nil {
		return err
	}
	bench.WriteIngest(stdout, res)
	return nil
}

// benchReroute is `lastmile bench reroute --graph G [--incidents 50]
// [--stops 30] [--db postgres://...]`: the latency of the ping that
// reveals a van far behind, to its re-solved route stored (bench.Reroute).
func benchReroute(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench reroute", flag.ContinueOnError)
	gpath := fs.String("graph", "", "prepared graph (.lmg), or an OSM file prepared in this run")
	db := fs.String("db", "", "PostgreSQL URL for the state (default: SQLite in a temporary folder)")
	incidents := fs.Int("incidents", 50, "vans re-routed")
	stops := fs.Int("stops", 30, "stops per route")
	seed := fs.Uint64("seed", 1, "random seed")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 || *gpath == "" || *incidents <= 0 || *stops < 2 {
		return usagef("usage: lastmile bench reroute --graph G [--incidents 50] [--stops 30] [--db postgres://...]")
	}
	r, err := openGraph(*gpath, stderr)
	if err != nil {
		return err
	}
	res, err := bench.Reroute(bench.RerouteConfig{Graph: r.Current(), DB: *db, Incidents: *incidents, Stops: *stops, Seed: *seed,
		Logger: newLogger(stderr, true)})
	if err != nil {
		return err
	}
	bench.WriteReroute(stdout, res)
	return nil
}

// benchRestart is `lastmile bench restart --graph G --state DIR [--runs 5]`:
// how soon `lastmile serve` reads and accepts pings again on a day's state
// (bench.Restart), the server started from this executable.
func benchRestart(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench restart", flag.ContinueOnError)
	gpath := fs.String("graph", "", "prepared graph (.lmg)")
	state := fs.String("state", "", "state folder to start on (copied for each run), e.g. from bench ingest --keep")
	runs := fs.Int("runs", 5, "restarts timed")
	vehicle := fs.String("vehicle", "van-1", "the vehicle read and pinged")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 || *gpath == "" || *state == "" || *runs <= 0 {
		return usagef("usage: lastmile bench restart --graph G --state DIR [--runs 5]")
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	res, err := bench.Restart(context.Background(), bench.RestartConfig{Binary: exe, Graph: *gpath, State: *state, Vehicle: *vehicle,
		Runs: *runs, Logger: newLogger(stderr, false)})
	bench.WriteRestart(stdout, res)
	return err
}
