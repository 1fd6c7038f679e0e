package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/lastmile/lastmile/bench"
	"github.com/lastmile/lastmile/datasets/sim"
	"github.com/lastmile/lastmile/engine"
	"github.com/lastmile/lastmile/engine/blob"
	"github.com/lastmile/lastmile/engine/dispatch"
	"github.com/lastmile/lastmile/engine/notify"
	"github.com/lastmile/lastmile/engine/seal"
	"github.com/lastmile/lastmile/engine/store"
	"github.com/lastmile/lastmile/graph"
)

func cmdServe(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	gpath := fs.String("graph", "", "prepared graph (.lmg), or an OSM file prepared and cached")
	addr := fs.String("addr", "127.0.0.1:5000", "listen address HOST:PORT")
	data := fs.String("data", "", "folder for caches (default: beside the graph)")
	state := fs.String("state", "", "folder of the dispatch state: lastmile.db, data.key (default: lastmile-state beside the graph)")
	db := fs.String("db", "", "PostgreSQL URL (postgres://...) for the dispatch state instead of SQLite in --state (replicas share it; set LASTMILE_DATA_KEY on each)")
	adminKeyFile := fs.String("admin-key-file", "", "file holding an admin API key, created with a new key when missing (make run); LASTMILE_ADMIN_KEY also gives one")
	publicRouting := fs.Bool("public-routing", false, "keep route, table, nearest, solve and eta open without a key when keys exist")
	retention := fs.Duration("retention", 30*24*time.Hour, "erase a shipment's personal data this long after its last attempt ended")
	noState := fs.Bool("no-state", false, "serve routing only: no dispatch state, no keys")
	hookPrivate := fs.Bool("webhook-allow-private", false, "let webhooks target private, loopback and link-local addresses (tests, closed networks)")
	hookTimeout := fs.Duration("webhook-timeout", notify.DefaultTimeout, "time allowed for one webhook request")
	lease := fs.Duration("delivery-lease", notify.DefaultLease, "how long a claimed delivery stays with this process before another takes it over (after a crash); longer than --webhook-timeout")
	hookDisable := fs.Duration("webhook-disable-after", notify.DefaultDisableAfter, "disable a webhook whose every delivery failed this long; its deliveries go to the dead-letter list")
	nf := addNotifyFlags(fs)
	tlsCert := fs.String("tls-cert", "", "TLS certificate file (PEM); with --tls-key the server speaks HTTPS")
	tlsKey := fs.String("tls-key", "", "TLS private key file (PEM)")
	radius := fs.Float64("radius", 1000, "largest snapping distance in metres")
	maxBody := fs.Int("max-body", 8<<20, "largest request body in bytes")
	maxCells := fs.Int("max-table-cells", 1_000_000, "largest table (sources x destinations)")
	maxCoords := fs.Int("max-route-coordinates", 500, "most waypoints in one route")
	maxHeader := fs.Int("max-header", 0, "largest request line and headers in bytes (0: room for --max-route-coordinates)")
	timeout := fs.Duration("timeout", 30*time.Second, "computation time allowed per request (503 Timeout beyond)")
	ioTimeout := fs.Duration("io-timeout", 30*time.Second, "read and write timeout per request")
	idle := fs.Duration("idle-timeout", 60*time.Second, "close keep-alive connections idle this long")
	grace := fs.Duration("shutdown-timeout", 30*time.Second, "on SIGINT/SIGTERM, wait this long for requests in flight")
	workers := fs.Int("workers", 2, "goroutines per table computation")
	maxComp := fs.Int("max-computations", 0, "computations run at once, more wait within --timeout (0: GOMAXPROCS)")
	solveTime := fs.Duration("solve-time", 2*time.Second, "solver time limit of POST /v1/solve without ?time=")
	maxSolveTime := fs.Duration("max-solve-time", 25*time.Second, "largest ?time= of POST /v1/solve (kept under --timeout)")
	maxJobs := fs.Int("max-jobs", 16, "asynchronous solves queued or running at once (429 beyond)")
	jobWorkers := fs.Int("job-workers", 1, "asynchronous solves run at once (their own pool, outside --max-computations)")
	jobTTL := fs.Duration("job-ttl", 10*time.Minute, "how long a finished asynchronous solve stays readable")
	maxFinished := fs.Int("max-finished-jobs", 256, "finished asynchronous solves kept (oldest dropped first)")
	maxJobSolveTime := fs.Duration("max-job-solve-time", 10*time.Minute, "largest ?time= of an asynchronous solve")
	horizon := fs.Duration("traffic-horizon", 45*time.Minute, "how long live traffic lasts before decaying back to the profile")
	trafficInterval := fs.Duration("traffic-interval", 500*time.Millisecond, "least time between two traffic updates of the routing graph")
	maxObs := fs.Int("max-traffic-observations", 100_000, "most observations per POST /v1/traffic and pings per POST /v1/positions")
	profile := fs.String("profile", "", "historical speed profile (lastmile profile) for ETAs and as the base of live traffic; default free flow")
	level := fs.String("log-level", "info", "debug (one line per request), info, warn or error")
	example := fs.Bool("example", false, "print an example request for this graph on start")
	blobDir := fs.String("blobs", "", "folder of proof-of-delivery images (default: blobs in --state)")
	handover := fs.Bool("handover", false, "let a van that has fallen behind hand late stops to a nearby van of the same plan when that saves lateness")
	vanStops := fs.Int("van-stops", 3, "a tracking page shows the van while its stop is within this many next stops")
	linkTTL := fs.Duration("link-ttl", 7*24*time.Hour, "a tracking link stops working this long after its delivery attempt ended")
	trackRate := fs.Float64("track-rate", 2, "requests per second per client address to tracking links and sign-in (burst 60; negative: no limit)")
	demo := fs.Bool("demo", false, "replay a simulated delivery day (10 vans, 300 shipments) through the API in the background, to watch (needs an admin key)")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	// The demo's names are new at every start (the state keeps the last
	// demo's shipments, delivered).
	demoPrefix := "demo" + time.Now().UTC().Format("0102T1504") + "-"
	if len(pos) != 0 {
		return usagef("usage: lastmile serve --graph G --addr HOST:PORT [--data DIR]")
	}
	if *gpath == "" {
		return usagef("--graph is required (a prepared .lmg file or an .osm.pbf)")
	}
	for _, c := range []struct {
		name string
		v    int
	}{{"--max-body", *maxBody}, {"--max-table-cells", *maxCells}, {"--max-route-coordinates", *maxCoords}, {"--workers", *workers},
		{"--max-jobs", *maxJobs}, {"--job-workers", *jobWorkers}, {"--max-finished-jobs", *maxFinished},
		{"--max-traffic-observations", *maxObs}} {
		if c.v <= 0 {
			return usagef("%s: %d is not a positive number", c.name, c.v)
		}
	}
	if *maxHeader < 0 || *maxComp < 0 {
		return usagef("--max-header and --max-computations must not be negative")
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"--timeout", *timeout}, {"--io-timeout", *ioTimeout}, {"--idle-timeout", *idle}, {"--shutdown-timeout", *grace},
		{"--solve-time", *solveTime}, {"--max-solve-time", *maxSolveTime}, {"--job-ttl", *jobTTL}, {"--max-job-solve-time", *maxJobSolveTime},
		{"--traffic-horizon", *horizon}, {"--traffic-interval", *trafficInterval}, {"--retention", *retention}} {
		if d.v <= 0 {
			return usagef("%s: %v is not a positive duration", d.name, d.v)
		}
	}
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(*level)); err != nil {
		return usagef("--log-level %q: want debug, info, warn or error", *level)
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: lvl}))
	t0 := time.Now()
	g, err := engine.Open(*gpath, *data, engine.PrepareOptions{Logger: log})
	if err != nil {
		return err
	}
	r := engine.NewRouter(g, *radius)
	log.Info("graph ready", "file", *gpath, "seconds", time.Since(t0).Seconds())
	if (*tlsCert == "") != (*tlsKey == "") {
		return usagef("--tls-cert and --tls-key go together")
	}
	var st *store.Store
	var blobs blob.Store
	adminKey := os.Getenv("LASTMILE_ADMIN_KEY")
	if !*noState {
		dir := *state
		if dir == "" {
			dir = filepath.Join(filepath.Dir(*gpath), "lastmile-state")
		}
		bdir := *blobDir
		if bdir == "" {
			bdir = filepath.Join(dir, "blobs")
		}
		fsb, err := blob.NewFS(bdir)
		if err != nil {
			return err
		}
		blobs = fsb
		if st, err = engine.OpenStore(context.Background(), dir, *db, log); err != nil {
			return err
		}
		defer st.Close()
		if adminKey == "" && *adminKeyFile != "" {
			var created bool
			if adminKey, created, err = loadAdminKey(*adminKeyFile); err != nil {
				return err
			}
			if created {
				fmt.Fprintf(stdout, "Created an admin API key (kept in %s):\n  %s\n", *adminKeyFile, adminKey)
			}
		}
	}
	recipients, err := nf.recipients(log)
	if err != nil {
		return err
	}
	if *lease <= *hookTimeout {
		return usagef("--delivery-lease (%v) must be longer than --webhook-timeout (%v)", *lease, *hookTimeout)
	}
	live := engine.LiveConfig{Horizon: *horizon, MinInterval: *trafficInterval}
	if *profile != "" {
		if live.Profile, err = engine.LoadProfile(*profile, g); err != nil {
			return err
		}
		st := live.Profile.Stats()
		log.Info("profile loaded", "file", *profile, "zone", live.Profile.Location().String(), "edges", st.Edges, "groups", st.Groups, "classes", st.Classes)
	}
	srv, err := engine.NewServer(r, engine.ServerConfig{
		MaxBodyBytes: *maxBody, MaxTableCells: *maxCells, MaxRouteCoordinates: *maxCoords, MaxHeaderBytes: *maxHeader,
		Timeout: *timeout, ReadTimeout: *ioTimeout, WriteTimeout: *ioTimeout, IdleTimeout: *idle,
		Workers: *workers, MaxComputations: *maxComp, Logger: log,
		SolveTime: *solveTime, MaxSolveTime: *maxSolveTime,
		MaxJobs: *maxJobs, JobWorkers: *jobWorkers, JobTTL: *jobTTL, MaxFinishedJobs: *maxFinished, MaxJobSolveTime: *maxJobSolveTime,
		MaxTrafficObservations: *maxObs, Live: live,
		Store: st, AdminKey: adminKey, PublicRouting: *publicRouting, Retention: *retention,
		Blobs: blobs, TrackRate: *trackRate, Dispatch: dispatch.Config{Handover: *handover, VanStops: *vanStops, LinkTTL: *linkTTL},
		Notify: notify.Config{AllowPrivate: *hookPrivate, DisableAfter: *hookDisable, Recipients: recipients, Timeout: *hookTimeout, Lease: *lease},
	})
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", *addr, err)
	}
	scheme := "http"
	if *tlsCert != "" {
		scheme = "https"
	}
	url := scheme + "://" + ln.Addr().String()
	log.Info("listening", "url", url)
	if *example {
		a, b := examplePoints(g)
		fmt.Fprintf(stdout, "lastmile is serving %s on %s\nTry:\n  curl '%s/v1/route/%.5f,%.5f;%.5f,%.5f?overview=false'\n",
			*gpath, url, url, a[0], a[1], b[0], b[1])
		fmt.Fprintf(stdout, "  curl -X POST %s/v1/table -d '{\"coordinates\":[[%.5f,%.5f],[%.5f,%.5f]]}'\n", url, a[0], a[1], b[0], b[1])
		fmt.Fprintf(stdout, "  curl -X POST %s/v1/eta -d '{\"location\":[%.5f,%.5f],\"stops\":[{\"location\":[%.5f,%.5f],\"service\":120}]}'\n",
			url, a[0], a[1], b[0], b[1])
		fmt.Fprintf(stdout, "  curl %s/v1/openapi.json   (every endpoint)\n", url)
		if adminKey != "" {
			fmt.Fprintf(stdout, "  curl -H 'Authorization: Bearer %s' %s/v1/events   (the dispatch event log)\n", adminKey, url)
			fmt.Fprintf(stdout, "  curl -N -H 'Authorization: Bearer %s' %s/v1/events/stream   (the same, live: server-sent events)\n", adminKey, url)
		}
		if *demo && adminKey != "" && st != nil {
			fmt.Fprintf(stdout, "A demo delivery day is being replayed through the API (an hour; a tracking link and the driver's app follow once it is planned),\n"+
				"  or a van: curl -H 'Authorization: Bearer %s' %s/v1/vehicles/%svan-1\n", adminKey, url, demoPrefix)
		}
		fmt.Fprintln(stdout, "Stop with Ctrl-C.")
	}
	if *demo {
		if adminKey == "" || st == nil {
			return usagef("--demo needs the dispatch state and an admin key (--admin-key-file or LASTMILE_ADMIN_KEY)")
		}
		go runDemo(g, url, adminKey, demoPrefix, stdout, log)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() {
		if *tlsCert != "" {
			errc <- srv.ServeTLS(ln, *tlsCert, *tlsKey)
			return
		}
		errc <- srv.Serve(ln)
	}()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	stop() // a second signal kills the process
	log.Info("shutting down: finishing requests in flight, cancelling asynchronous solves", "timeout", grace.String())
	sctx, cancel := context.WithTimeout(context.Background(), *grace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	log.Info("stopped")
	return nil
}

// examplePoints returns two road nodes of g about 2 km apart near the centre
// of its bounding box, as [lon, lat].
func examplePoints(g *graph.Graph) (a, b [2]float64) {
	n := g.Road
	if len(n.Lat) == 0 {
		return
	}
	minLat, maxLat, minLon, maxLon := math.Inf(1), math.Inf(-1), math.Inf(1), math.Inf(-1)
	for i := range n.Lat {
		minLat, maxLat = math.Min(minLat, n.Lat[i]), math.Max(maxLat, n.Lat[i])
		minLon, maxLon = math.Min(minLon, n.Lon[i]), math.Max(maxLon, n.Lon[i])
	}
	cLat, cLon := (minLat+maxLat)/2, (minLon+maxLon)/2
	nearest := func(lat, lon float64) [2]float64 {
		best, bd := 0, math.Inf(1)
		for e := range n.Edges {
			if !g.Routable(uint32(e)) {
				continue
			}
			v := n.Edges[e].From
			if d := math.Hypot(n.Lat[v]-lat, (n.Lon[v]-lon)*math.Cos(lat*math.Pi/180)); d < bd {
				best, bd = int(v), d
			}
		}
		return [2]float64{n.Lon[best], n.Lat[best]}
	}
	return nearest(cLat-0.006, cLon-0.008), nearest(cLat+0.006, cLon+0.008)
}

// loadAdminKey reads the admin key kept in path, or creates path (mode
// 0600) with a new key; created reports the latter.
func loadAdminKey(path string) (key string, created bool, err error) {
	b, err := os.ReadFile(path)
	if err == nil {
		fi, err := os.Stat(path)
		if err != nil {
			return "", false, err
		}
		if fi.Mode().Perm()&0o077 != 0 {
			return "", false, fmt.Errorf("%s: mode %v gives others access to the admin key; chmod 600 %s", path, fi.Mode().Perm(), path)
		}
		key = strings.TrimSpace(string(b))
		if !seal.ValidKeyFormat(key) {
			return "", false, fmt.Errorf("%s: not a lastmile API key", path)
		}
		return key, false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", false, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", false, err
	}
	key, _, _ = seal.NewAPIKey()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", false, err
	}
	if _, err := f.WriteString(key + "\n"); err != nil {
		f.Close()
		return "", false, err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return "", false, err
	}
	return key, true, f.Close()
}

// demoSpeed is how much faster than real time the demo day runs: a van's
// 10-hour shift in an hour, a delivery every minute or so to watch.
const demoSpeed = 10

// demoHistory imports four simulated weeks before the demo day (4 vans,
// 60 stops a day) for the dashboard's figures; a demo started again
// imports nothing new (the facts' ids repeat).
func demoHistory(g *graph.Graph, url, adminKey string, date time.Time) error {
	facts, err := bench.SimHistory(bench.HistoryConfig{Graph: g, Days: 28, Vans: 4, Shipments: 60, Seed: 7, Start: date.AddDate(0, 0, -28)})
	if err != nil {
		return err
	}
	hc := &http.Client{Timeout: time.Minute}
	return bench.ImportFacts(func(body []byte) (int, []byte, error) {
		req, err := http.NewRequest("POST", url+"/v1/analytics/facts", bytes.NewReader(body))
		if err != nil {
			return 0, nil, err
		}
		req.Header.Set("Authorization", "Bearer "+adminKey)
		req.Header.Set("Content-Type", "application/x-ndjson")
		resp, err := hc.Do(req)
		if err != nil {
			return 0, nil, err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b, nil
	}, facts)
}

// runDemo replays a simulated delivery day (datasets/sim's, on the
// server's own graph: yesterday's, 4 vans and 60 shipments) through the
// server's API, as a dispatch system and the drivers' phones would, at
// demoSpeed times real time once the vans leave; it prints a tracking link
// and a driver's sign-in to stdout, and logs the day's figures.
func runDemo(g *graph.Graph, url, adminKey, prefix string, stdout io.Writer, log *slog.Logger) {
	log.Info("demo: replaying a simulated delivery day through the API")
	date := time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, -1)
	if err := demoHistory(g, url, adminKey, date); err != nil {
		log.Warn("demo: no history for the dashboard", "err", err)
	}
	day := sim.DayConfig{Vans: 4, Shipments: 60, PingInterval: 5 * time.Second, DepotPings: 2 * time.Minute}
	shift := date.Add(8 * time.Hour) // sim's default shift start
	var wall time.Time
	var from time.Time
	res, err := bench.Dispatch(bench.DispatchConfig{Graph: g, URL: url, AdminKey: adminKey, Prefix: prefix, Date: date, Day: day,
		Batch: 10 * time.Second, Logger: log.With("demo", true),
		Planned: func(p bench.DispatchPlanned) {
			van := prefix + "van-1"
			trk := p.Routes[van]
			if len(trk) == 0 {
				return
			}
			// The third stop: the van shows on its page from the start and
			// delivers in a few minutes; the last one for later.
			soon, later := trk[min(2, len(trk)-1)], trk[len(trk)-1]
			fmt.Fprintf(stdout, "\nThe demo day is planned (yesterday's date, replayed %dx faster once the vans leave the depot):\n"+
				"  a recipient's tracking page:  %s%s\n"+
				"  another, later in the day:    %s%s\n"+
				"  the driver's app of %s:   %s/driver   (sign in with the key %s)\n"+
				"  the dispatcher's live map:    %s/dashboard/live   (sign in with the admin key)\n"+
				"  the analytics of four weeks:  %s/dashboard\n\n",
				demoSpeed, url, p.TrackingURLs[soon], url, p.TrackingURLs[later], van, url, p.DriverKeys[van], url, url)
		},
		Step: func(ctx context.Context, _ bench.DispatchAPI, at time.Time) error {
			if at.Before(shift) {
				return nil
			}
			if wall.IsZero() {
				wall, from = time.Now(), at
			}
			wait := time.Until(wall.Add(at.Sub(from) / demoSpeed))
			if wait <= 0 {
				return nil
			}
			select {
			case <-time.After(wait):
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		}})
	if err != nil {
		log.Error("demo day failed", "err", err)
		return
	}
	log.Info("demo day replayed", "summary", res.Summary())
}
