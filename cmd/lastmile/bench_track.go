package main

import (
	"flag"
	"io"
	"time"

	"github.com/lastmile/lastmile/bench"
)

// benchTrack is `lastmile bench track [--pages 5000] [--vans 50]
// [--period 5s] [--duration 60s] [--osm FILE]`: live van positions fanned
// out to open tracking pages (server-sent events) on loopback, each
// update's latency from the ping's post to its arrival on the page
// (bench.Track).
func benchTrack(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench track", flag.ContinueOnError)
	osm := fs.String("osm", "monaco", "extract name in $LASTMILE_DATA/osm (monaco, porto) or a path (.osm.pbf or prepared .lmg)")
	pages := fs.Int("pages", 5000, "tracking pages open at once (one per shipment)")
	vans := fs.Int("vans", 50, "vans, the pages spread evenly over them")
	period := fs.Duration("period", 5*time.Second, "time between two pings of a van (at least 1s)")
	duration := fs.Duration("duration", 60*time.Second, "length of the measured load, after the warm-up")
	drain := fs.Duration("drain", 10*time.Second, "wait after the last ping for the pages to see it")
	target := fs.Duration("target", 2*time.Second, "latency every update must meet")
	connect := fs.Int("connect", 32, "pages connecting at once during the warm-up")
	ramp := fs.Duration("ramp", 0, "spread the pages' connections evenly over this time (0: as fast as answered, as after a restart)")
	vanStops := fs.Int("van-stops", 1_000_000, "the server's VanStops: pages within this many stops of the van show it")
	seed := fs.Uint64("seed", 1, "random seed")
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile of the measured window to this file")
	quiet := fs.Bool("quiet", false, "log warnings only")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usagef("usage: lastmile bench track [--pages 5000] [--vans 50] [--period 5s] [--duration 60s] [--osm FILE]")
	}
	if *ramp < 0 {
		return usagef("bench track: --ramp must not be negative")
	}
	if *pages <= 0 || *vans <= 0 || *duration <= 0 || *drain <= 0 || *target <= 0 || *connect <= 0 || *vanStops <= 0 {
		return usagef("bench track: --pages, --vans, --duration, --drain, --target, --connect and --van-stops must be positive")
	}
	if *period < time.Second {
		return usagef("bench track: --period must be at least 1s (a van's time on the page is in whole seconds)")
	}
	log := newLogger(stderr, *quiet)
	g, path, err := benchExtract(*osm, stderr)
	if err != nil {
		return err
	}
	log.Info("bench track", "extract", path, "edges", len(g.Road.Edges), "pages", *pages, "vans", *vans)
	r, err := bench.Track(bench.TrackConfig{Graph: g, Pages: *pages, Vans: *vans, Period: *period, Duration: *duration,
		Drain: *drain, Target: *target, Connect: *connect, Ramp: *ramp, VanStops: *vanStops, Seed: *seed, CPUProfile: *cpuprofile, Logger: log})
	if err != nil {
		return err
	}
	bench.WriteTrack(stdout, r)
	return nil
}
