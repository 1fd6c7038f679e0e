// Command lastmile is the one binary of the lastmile engine: it prepares
// road graphs from OpenStreetMap, answers route and table questions, solves
// vehicle-routing problems, serves the HTTP API and runs the benchmarks.
// The stable command forms are listed in the README.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/lastmile/lastmile/engine"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

type command struct {
	name, summary string
	run           func(args []string, stdout, stderr io.Writer) error
}

func commands() []command {
	return []command{
		{"prepare", "prepare IN.osm.pbf -o OUT.lmg: import OpenStreetMap and build the contraction hierarchy", cmdPrepare},
		{"route", "route --graph G LON,LAT LON,LAT [...]: fastest route through the points, OSRM-shaped JSON", cmdRoute},
		{"table", "table --graph G LON,LAT ...: many-to-many durations and distances as JSON", cmdTable},
		{"solve", "solve [--graph G] [--time 10s] [--seed N] problem.json: VROOM-format problem in, solution out", cmdSolve},
		{"bench", "bench route|vrp|gate: benchmarks (see README)", cmdBench},
		{"serve", "serve --graph G --addr HOST:PORT [--data DIR] [--profile P]: the HTTP API", cmdServe},
		{"profile", "profile --graph G --traces T.csv -o OUT.lmp [--tz ZONE]: fit a historical speed profile from GPS traces", cmdProfile},
		{"keys", "keys create|list|revoke|generate --data DIR: API keys of the dispatch API", cmdKeys},
	}
}

// run executes one command line and returns the exit status: 0 on success,
// 1 on a failure, 2 on bad usage.
func run(args []string, stdout, stderr io.Writer) int {
	cmds := commands()
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprintln(stderr, "usage: lastmile COMMAND [flags] [args]")
		for _, c := range cmds {
			fmt.Fprintf(stderr, "  %-8s %s\n", c.name, c.summary)
		}
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	for _, c := range cmds {
		if c.name != args[0] {
			continue
		}
		err := c.run(args[1:], stdout, stderr)
		if err == nil {
			return 0
		}
		fmt.Fprintf(stderr, "lastmile %s: %v\n", c.name, oneLine(err))
		var ue *usageError
		if errors.As(err, &ue) {
			return 2
		}
		return 1
	}
	fmt.Fprintf(stderr, "lastmile: unknown command %q (try lastmile help)\n", args[0])
	return 2
}

func oneLine(err error) string {
	return strings.ReplaceAll(err.Error(), "\n", "; ")
}

func newLogger(stderr io.Writer, quiet bool) *slog.Logger {
	level := slog.LevelInfo
	if quiet {
		level = slog.LevelWarn
	}
	return slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	return enc.Encode(v)
}

func cmdPrepare(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("prepare", flag.ContinueOnError)
	out := fs.String("o", "", "output .lmg file")
	workers := fs.Int("workers", 2, "goroutines used for contraction")
	quiet := fs.Bool("quiet", false, "log warnings only")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 || *out == "" {
		return usagef("usage: lastmile prepare IN.osm.pbf -o OUT.lmg")
	}
	log := newLogger(stderr, *quiet)
	t0 := time.Now()
	g, st, err := engine.Prepare(pos[0], engine.PrepareOptions{Workers: *workers, Logger: log})
	if err != nil {
		return err
	}
	if err := engine.Save(g, *out); err != nil {
		return err
	}
	s := g.Stats()
	log.Info("prepared", "out", *out, "import_s", st.Import.Seconds(), "contract_s", st.Build.Seconds(),
		"total_s", time.Since(t0).Seconds(), "road_nodes", s.RoadNodes, "road_edges", s.RoadEdges, "shortcuts", s.Shortcuts)
	return nil
}

// openGraph loads a prepared graph, or prepares an OSM file (cached beside it).
func openGraph(path string, stderr io.Writer) (*engine.Router, error) {
	if path == "" {
		return nil, usagef("--graph is required (a prepared .lmg file or an .osm.pbf)")
	}
	g, err := engine.Open(path, "", engine.PrepareOptions{Logger: newLogger(stderr, true)})
	if err != nil {
		return nil, err
	}
	return engine.NewRouter(g, 0), nil
}

func parsePoints(pos []string) ([]engine.LonLat, error) {
	pts := make([]engine.LonLat, len(pos))
	for i, s := range pos {
		p, err := engine.ParseLonLat(s)
		if err != nil {
			return nil, err
		}
		pts[i] = p
	}
	return pts, nil
}

func cmdRoute(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("route", flag.ContinueOnError)
	gpath := fs.String("graph", "", "prepared graph (.lmg) or OSM file")
	geom := fs.String("geometries", "polyline", "polyline, polyline6 or geojson")
	overview := fs.String("overview", "simplified", "simplified, full or false")
	radius := fs.Float64("radius", 1000, "largest snapping distance in metres")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) < 2 {
		return usagef("usage: lastmile route --graph G LON,LAT LON,LAT [...]")
	}
	pts, err := parsePoints(pos)
	if err != nil {
		return usagef("%v", err)
	}
	r, err := openGraph(*gpath, stderr)
	if err != nil {
		return err
	}
	r.SnapRadius = *radius
	resp, err := r.Route(pts, engine.RouteOptions{Geometries: *geom, Overview: *overview})
	if err != nil {
		return err
	}
	return writeJSON(stdout, resp)
}

func cmdTable(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("table", flag.ContinueOnError)
	gpath := fs.String("graph", "", "prepared graph (.lmg) or OSM file")
	sources := fs.String("sources", "", "indices of the source points separated by ';' (default all)")
	dests := fs.String("destinations", "", "indices of the destination points separated by ';' (default all)")
	radius := fs.Float64("radius", 1000, "largest snapping distance in metres")
	workers := fs.Int("workers", 2, "goroutines")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) < 1 {
		return usagef("usage: lastmile table --graph G LON,LAT ...")
	}
	pts, err := parsePoints(pos)
	if err != nil {
		return usagef("%v", err)
	}
	src, err := parseIndices(*sources, "--sources")
	if err != nil {
		return err
	}
	dst, err := parseIndices(*dests, "--destinations")
	if err != nil {
		return err
	}
	r, err := openGraph(*gpath, stderr)
	if err != nil {
		return err
	}
	r.SnapRadius = *radius
	resp, err := r.Table(pts, src, dst, *workers)
	if err != nil {
		return err
	}
	return writeJSON(stdout, resp)
}

// parseIndices parses OSRM's "0;2;5" index lists; empty means all.
func parseIndices(s, what string) ([]int, error) {
	if s == "" || s == "all" {
		return nil, nil
	}
	var out []int
	for _, f := range strings.Split(s, ";") {
		var k int
		if _, err := fmt.Sscanf(f, "%d", &k); err != nil || fmt.Sprint(k) != strings.TrimSpace(f) {
			return nil, usagef("%s: %q is not an index", what, f)
		}
		out = append(out, k)
	}
	return out, nil
}
