package main

import (
	"flag"
	"io"

	"github.com/lastmile/lastmile/bench"
)

// benchAnalytics is `lastmile bench analytics [--days 30] [--vans 30]
// [--shipments 9000] [--year 365] [--db postgres://...] [--osm porto]`:
// a simulated history loaded through the import API of a server on
// loopback, then every figure timed over it, and over a year of it
// (bench.Analytics).
func benchAnalytics(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench analytics", flag.ContinueOnError)
	osm := fs.String("osm", "porto", "extract name in $LASTMILE_DATA/osm (monaco, porto) or a path (.osm.pbf or prepared .lmg)")
	days := fs.Int("days", 30, "simulated delivery days")
	vans := fs.Int("vans", 30, "vans a day")
	shipments := fs.Int("shipments", 9000, "stops a day")
	year := fs.Int("year", 365, "days of the long history the simulated days are repeated to (0: none)")
	db := fs.String("db", "", "PostgreSQL URL of the server's state (default: a temporary SQLite file)")
	runs := fs.Int("runs", 5, "timed requests per figure")
	seed := fs.Uint64("seed", 1, "random seed")
	quiet := fs.Bool("quiet", false, "log warnings only")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usagef("usage: lastmile bench analytics [--days 30] [--vans 30] [--shipments 9000] [--year 365] [--db URL] [--osm porto]")
	}
	if *days <= 0 || *vans <= 0 || *shipments <= 0 || *runs <= 0 || *year < 0 {
		return usagef("bench analytics: --days, --vans, --shipments and --runs must be positive, --year not negative")
	}
	log := newLogger(stderr, *quiet)
	g, path, err := benchExtract(*osm, stderr)
	if err != nil {
		return err
	}
	log.Info("bench analytics", "extract", path, "days", *days, "vans", *vans, "shipments", *shipments, "year", *year)
	r, err := bench.Analytics(bench.AnalyticsConfig{History: bench.HistoryConfig{Graph: g, Days: *days, Vans: *vans, Shipments: *shipments,
		Seed: *seed}, Year: *year, DB: *db, Runs: *runs, Log: log})
	if err != nil {
		return err
	}
	bench.WriteAnalytics(stdout, r)
	return nil
}
