package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/lastmile/lastmile/bench"
)

// benchNames are the benchmarks of lastmile bench, for its usage line.
const benchNames = "route|vrp|eta|match|http|scale|traffic|gate|ingest|reroute|restart|dispatch|page|track|analytics"

func cmdBench(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usagef("usage: lastmile bench %s [flags]", benchNames)
	}
	switch args[0] {
	case "route":
		return benchRoute(args[1:], stdout, stderr)
	case "vrp":
		return benchVRP(args[1:], stdout, stderr)
	case "eta":
		return benchETA(args[1:], stdout, stderr)
	case "match":
		return benchMatch(args[1:], stdout, stderr)
	case "http":
		return benchHTTP(args[1:], stdout, stderr)
	case "scale":
		return benchScale(args[1:], stdout, stderr)
	case "traffic":
		return benchTraffic(args[1:], stdout, stderr)
	case "gate":
		return benchGate(args[1:], stdout, stderr)
	case "ingest":
		return benchIngest(args[1:], stdout, stderr)
	case "reroute":
		return benchReroute(args[1:], stdout, stderr)
	case "restart":
		return benchRestart(args[1:], stdout, stderr)
	case "dispatch":
		return benchDispatch(args[1:], stdout, stderr)
	case "page":
		return benchPage(args[1:], stdout, stderr)
	case "track":
		return benchTrack(args[1:], stdout, stderr)
	case "analytics":
		return benchAnalytics(args[1:], stdout, stderr)
	}
	return usagef("lastmile bench: unknown benchmark %q (%s)", args[0], strings.ReplaceAll(benchNames, "|", ", "))
}

func benchRoute(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench route", flag.ContinueOnError)
	gpath := fs.String("graph", "", "prepared graph (.lmg), or an OSM file to prepare in this run")
	pairs := fs.Int("pairs", 1000, "random pairs compared with Dijkstra")
	queries := fs.Int("queries", 20000, "CH queries timed for p50/p99")
	sizes := fs.String("matrix", "100,1000", "square matrix sizes, comma-separated")
	seed := fs.Uint64("seed", 1, "random seed")
	workers := fs.Int("workers", 2, "goroutines for preparation and matrices")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 || *gpath == "" {
		return usagef("usage: lastmile bench route --graph G [--pairs N]")
	}
	var ms []int
	for _, f := range strings.Split(*sizes, ",") {
		var k int
		if _, err := fmt.Sscanf(f, "%d", &k); err != nil || k <= 0 {
			return usagef("--matrix: %q is not a size", f)
		}
		ms = append(ms, k)
	}
	rep, err := bench.Route(bench.RouteConfig{Graph: *gpath, Pairs: *pairs, LatencyQueries: *queries,
		MatrixSizes: ms, Seed: *seed, Workers: *workers, Logger: newLogger(stderr, false)})
	if err != nil {
		return err
	}
	bench.WriteRoute(stdout, rep)
	return nil
}

// benchGate runs the quick suite on the largest extract present and fails
// when a ratio measured in the run is below its floor.
func benchGate(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench gate", flag.ContinueOnError)
	data := fs.String("data", "../shared/datasets", "the shared datasets folder")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usagef("usage: lastmile bench gate [--data DIR]")
	}
	extract := ""
	for _, name := range []string{"porto.osm.pbf", "andorra.osm.pbf", "monaco.osm.pbf"} {
		p := filepath.Join(*data, "osm", name)
		if _, err := os.Stat(p); err == nil {
			extract = p
			break
		}
	}
	if extract == "" {
		extract = filepath.Join("datasets", "osm", "monaco.osm.pbf")
		fmt.Fprintf(stderr, "bench gate: no shared extract in %s, using %s\n", *data, extract)
	}
	rep, err := bench.Route(bench.RouteConfig{Graph: extract, Pairs: 300, LatencyQueries: 5000,
		MatrixSizes: []int{1000}, Seed: 7, Logger: newLogger(stderr, true)})
	if err != nil {
		return err
	}
	bench.WriteRoute(stdout, rep)
	failed := bench.CheckRouteFloors(stdout, filepath.Base(extract), rep)
	trep, err := bench.Traffic(bench.TrafficConfig{Graph: extract, Rounds: 3, Pairs: 1000, HTTPDuration: -1,
		Seed: 7, Logger: newLogger(stderr, true)})
	if err != nil {
		return err
	}
	bench.WriteTraffic(stdout, trep)
	failed += bench.CheckTrafficFloors(stdout, trep)
	if failed > 0 {
		return fmt.Errorf("bench gate: %d floor(s) not met", failed)
	}
	return nil
}

// benchScale measures contraction time and memory on an extract's network
// tiled several times (one size per process, for an honest peak RSS).
func benchScale(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench scale", flag.ContinueOnError)
	osmPath := fs.String("graph", "", "OSM extract to tile")
	copies := fs.Int("copies", 4, "number of copies")
	workers := fs.Int("workers", 2, "goroutines for contraction")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 || *osmPath == "" {
		return usagef("usage: lastmile bench scale --graph X.osm.pbf --copies K")
	}
	rep, err := bench.Scale(*osmPath, *copies, *workers, newLogger(stderr, true))
	if err != nil {
		return err
	}
	bench.WriteScale(stdout, rep)
	return nil
}
