package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/lastmile/lastmile/bench"
)

// benchPage is `lastmile bench page [--extract porto] [--runs N]
// [--profiles slow4g,unthrottled] [--tiles=false] [--page=false]`: the
// tracking page's cold first view in headless Chromium on an emulated
// phone, throttled and not (bench.Page), and the map tiles' latency over
// HTTP, cold and warm with wrk (bench.PageTiles).
func benchPage(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench page", flag.ContinueOnError)
	extract := fs.String("extract", "porto", "extract name in $LASTMILE_DATA/osm (porto, monaco) or a path; porto falls back to the committed monaco when missing")
	runs := fs.Int("runs", 10, "cold loads per profile")
	profiles := fs.String("profiles", "slow4g,unthrottled", "profiles, comma-separated: slow4g (the throttled phone below), unthrottled (same viewport, no throttling)")
	width := fs.Int("width", int(bench.PhoneSlow4G.Width), "viewport width (CSS px)")
	height := fs.Int("height", int(bench.PhoneSlow4G.Height), "viewport height (CSS px)")
	dpr := fs.Float64("dpr", bench.PhoneSlow4G.DPR, "device pixel ratio")
	cpu := fs.Float64("cpu", bench.PhoneSlow4G.CPU, "CPU slowdown of the throttled profile")
	rtt := fs.Duration("rtt", bench.PhoneSlow4G.Latency, "request latency of the throttled profile")
	down := fs.Float64("down", bench.PhoneSlow4G.Down*8/1e6, "download Mbit/s of the throttled profile")
	up := fs.Float64("up", bench.PhoneSlow4G.Up*8/1e6, "upload Mbit/s of the throttled profile")
	chromium := fs.String("chromium", bench.DefaultChromium, "Chromium binary")
	timeout := fs.Duration("timeout", time.Minute, "bound of one load")
	artifacts := fs.String("artifacts", "", "folder for a screenshot of each profile's last load")
	page := fs.Bool("page", true, "measure the page")
	tiles := fs.Bool("tiles", true, "measure the tiles over HTTP")
	tileDur := fs.Duration("tile-duration", 20*time.Second, "wrk run per zoom (warm tiles)")
	tileConns := fs.Int("tile-conns", 32, "connections of the tile measures")
	tileThreads := fs.Int("tile-threads", 2, "wrk threads")
	wrk := fs.String("wrk", "", "wrk binary (default: from PATH)")
	jsonOut := fs.String("json", "", "also write the results as JSON to this file")
	quiet := fs.Bool("quiet", false, "log warnings only")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usagef("usage: lastmile bench page [--extract porto|monaco] [--runs N] [--profiles slow4g,unthrottled] [--tiles=false] [--page=false]")
	}
	if *runs < 1 || *width < 1 || *height < 1 || *dpr <= 0 || *cpu < 1 || *rtt < 0 || *down < 0 || *up < 0 || *tileConns < 1 || *tileThreads < 1 || *tileDur < time.Second {
		return usagef("bench page: --runs, --width, --height, --dpr, --tile-conns, --tile-threads must be positive, --cpu at least 1, --tile-duration at least 1s")
	}
	log := newLogger(stderr, *quiet)
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	g, path, err := benchExtract(*extract, stderr)
	if err != nil && *extract == "porto" && !set["extract"] {
		fmt.Fprintf(stderr, "bench page: %v; using the committed Monaco extract\n", err)
		g, path, err = benchExtract("monaco", stderr)
	}
	if err != nil {
		return err
	}
	log.Info("bench page", "extract", path, "edges", len(g.Road.Edges))
	out := map[string]any{"extract": path}
	if *page {
		slow := bench.PhoneSlow4G
		slow.Width, slow.Height, slow.DPR, slow.CPU = int64(*width), int64(*height), *dpr, *cpu
		slow.Latency, slow.Down, slow.Up = *rtt, *down*1e6/8, *up*1e6/8
		fast := bench.PhoneUnthrottled
		fast.Width, fast.Height, fast.DPR = int64(*width), int64(*height), *dpr
		var ps []bench.PageProfile
		for _, name := range strings.Split(*profiles, ",") {
			switch strings.TrimSpace(name) {
			case "slow4g":
				ps = append(ps, slow)
			case "unthrottled":
				ps = append(ps, fast)
			default:
				return usagef("bench page: unknown profile %q (slow4g, unthrottled)", name)
			}
		}
		r, err := bench.Page(bench.PageConfig{Graph: g, Runs: *runs, Profiles: ps, Chromium: *chromium, Timeout: *timeout,
			Artifacts: *artifacts, Logger: log})
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "extract: %s\n", path)
		bench.WritePage(stdout, r)
		out["page"] = r
	}
	if *tiles {
		r, err := bench.PageTiles(bench.PageTilesConfig{Graph: g, Conns: *tileConns, Threads: *tileThreads, Duration: *tileDur, Wrk: *wrk, Logger: log})
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "\nextract: %s\n", path)
		bench.WritePageTiles(stdout, r)
		out["tiles"] = r
	}
	if *jsonOut != "" {
		b, err := json.MarshalIndent(out, "", "  ")
		if err != nil {
			return err
		}
		return os.WriteFile(*jsonOut, b, 0o644)
	}
	return nil
}
