package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lastmile/lastmile/datasets/sim"
	"github.com/lastmile/lastmile/engine"
	"github.com/lastmile/lastmile/engine/notify"
	"github.com/lastmile/lastmile/graph"
)

// IngestConfig configures Ingest. Zero values take the defaults given.
type IngestConfig struct {
	// Graph is the road graph (required).
	Graph *graph.Graph
	// DB is a PostgreSQL URL for the state; "" is SQLite in a temporary
	// folder.
	DB string
	// Vans tracked at once (default 1000), each on a sequenced route of
	// Stops shipments (default 20) within Radius metres (default 4000) of
	// one depot.
	Vans, Stops int
	Radius      float64
	// Batch is the pings per request (default 100), from VansPerBatch
	// vans (default 10), each van's pings consecutive.
	Batch, VansPerBatch int
	// Interval is the simulated time between a van's pings (default 10 s)
	// and Sigma their GPS noise in metres (default 5).
	Interval time.Duration
	Sigma    float64
	// Clients is the number of concurrent HTTP clients (default 8), each
	// owning a share of the vans so that a van's pings arrive in order.
	Clients int
	// Duration bounds the load phase (default 20 s).
	Duration time.Duration
	// Rate, when positive, paces the clients to that many pings per
	// second in all (open loop: each client sends its share on a
	// schedule, the clients' schedules offset from each other by an
	// equal share of one request's interval, as a fleet's phones are not
	// in step), to measure latencies below saturation; 0 sends as fast
	// as the server answers.
	Rate float64
	// Seed makes the tours reproducible.
	Seed uint64
	// Dir, when set, keeps the SQLite state in this folder (for a restart
	// measurement) instead of a temporary one; MaxPings, when positive,
	// stops the load after that many pings.
	Dir      string
	MaxPings int64
	// CPUProfile, when set, receives a CPU profile of the load phase.
	CPUProfile string
	// Trace, when set, receives a line per request: when it was sent and
	// how long it took, in µs (after a first line "T0" and the load's
	// start in Unix µs), to find what the slow ones ran beside.
	Trace string
	// NoStatuses leaves out the drivers' status updates: by default each
	// van's client posts delivered for a stop (POST /v1/stops/{id}/status,
	// the server's time) once it has sent the van's first ping after the
	// simulated departure from it, as a driver's phone would. Without
	// them a van's first arrived stop stays open all day, and dispatch
	// predicts every later ETA from there (its ETAs then follow no van).
	NoStatuses bool
	// Hook, when set, is the mode of a webhook receiver on loopback
	// (HookModes) that Hooks subscriptions (default 1) to every event
	// point at, to measure ingest with deliveries running and the
	// deliveries themselves.
	Hook  string
	Hooks int
	// Logger receives progress (nil: discard).
	Logger *slog.Logger
}

// IngestResult holds the figures of one ingest run.
type IngestResult struct {
	Backend string
	Vans    int
	// Pings sent and accepted, in Elapsed, by Requests requests.
	Pings, Accepted int64
	Requests        int
	Errors          int
	FirstError      string
	Elapsed         time.Duration
	// Wall is the load until every client's queued statuses were sent
	// (the span of the writer's and the traffic's figures).
	Wall          time.Duration
	PingsPerSec   float64
	P50, P99, Max time.Duration
	// SecondP50 and SecondP99: the requests sent in the load's second
	// half, past the start of the day (every van leaves the depot in the
	// first second, out_for_delivery and first ETAs for all its stops).
	SecondP50, SecondP99 time.Duration
	// Statuses is how many status updates the clients posted (StatusErrors
	// failed), StatusP50 and StatusP99 their latencies.
	Statuses, StatusErrors int
	StatusP50, StatusP99   time.Duration
	// Events is how many events the load produced; SimMinutes the
	// simulated time each van advanced.
	Events     int64
	SimMinutes float64
	// Setup is the time to draw the tours, create the shipments and store
	// the plans.
	Setup time.Duration
	// TrafficUpdates is how many times live traffic re-customized the
	// routing graph during the load, for TrafficEdges changed edges in all
	// and TrafficRanks ranks of the hierarchy recomputed; TrafficLag is
	// the last update's time from its first change to routing.
	TrafficUpdates             int
	TrafficEdges, TrafficRanks int64
	TrafficLag                 time.Duration
	// TrafficRecycled counts the updates that wrote into the arrays of an
	// unreferenced earlier graph.
	TrafficRecycled int
	// On SQLite: the transactions committed during the load, the request
	// bodies they held, the writer's wall time in them and the part in
	// COMMIT.
	Commits, Bodies        int64
	WriterBusy, CommitTime time.Duration
	// With a webhook receiver: its mode; the deliveries it accepted
	// (Received, of Distinct event ids) by the end of Drain, the time
	// after the load until the outbox was empty (or gave up: Pending
	// left); DeliveriesPerSec over load and drain; SoonP50 and SoonP99
	// the time from posting the ping that made arriving_soon true to its
	// webhook's arrival.
	Hook                      string
	Received, Distinct        int
	Drain                     time.Duration
	Pending                   int64
	DeliveriesPerSec          float64
	SoonN                     int
	SoonP50, SoonP99, SoonMax time.Duration
	// LateN, LateP50 and LateP99: the same for the pings of the load's
	// second half, past the start-of-day burst.
	LateN            int
	LateP50, LateP99 time.Duration
}

// ingestVan is one van's route and pings.
type ingestVan struct {
	id    string
	track []string     // tracking numbers of its stops, in order
	stops [][2]float64 // their [lon, lat]
	pings []sim.Ping
	next  int // pings sent
	// stopIDs are the stops' ids in the plan, depart the simulated
	// departures from them; served counts the delivered ones posted.
	stopIDs []int64
	depart  []time.Time
	served  int
}

// Ingest measures ping ingest over HTTP on loopback: an in-process server
// with a state store tracks Vans vans, each out on a sequenced route, and
// Clients clients post their pings in batches (map matching, storage,
// ETA updates and the event rules all run per ping); it reports pings per
// second and request latencies.
func Ingest(cfg IngestConfig) (*IngestResult, error) {
	cfg = cfg.withDefaults()
	log := cfg.Logger
	t0 := time.Now()
	g := cfg.Graph
	// The vans leave 25 minutes ago, so that the traversals their pings
	// report are within the live traffic's horizon of the server's clock
	// and every re-customization carries them. (The day started at 08:00
	// UTC before: run after about 08:45 UTC, the bench had customizations
	// that reproduced the same weights.)
	start := time.Now().UTC().Add(-25 * time.Minute).Truncate(time.Minute)
	w, err := sim.NewWorld(g.Road, sim.DefaultConfig(start.Truncate(24*time.Hour), 1, cfg.Seed))
	if err != nil {
		return nil, err
	}
	rng := rand.New(rand.NewPCG(cfg.Seed, 7))
	depot := sim.RandomEndpoints(g, 1, rng)[0]
	vans := make([]*ingestVan, cfg.Vans)
	for v := range vans {
		stops, err := sim.RandomEndpointsWithin(g, cfg.Stops, depot.Lat, depot.Lon, cfg.Radius, rng)
		if err != nil {
			return nil, err
		}
		stops = nearestFirst(depot, stops)
		tour, err := w.Tour(g, depot, stops, 4*time.Minute, start, rng)
		if err != nil {
			return nil, fmt.Errorf("van %d: %w", v, err)
		}
		van := &ingestVan{id: fmt.Sprintf("van-%d", v+1), depart: tour.Depart}
		for _, leg := range tour.Legs {
			ps, err := w.Pings(leg, van.id, cfg.Interval, cfg.Sigma, rng)
			if err != nil {
				return nil, err
			}
			if n := len(van.pings); n > 0 && len(ps) > 0 && !ps[0].Time.After(van.pings[n-1].Time) {
				ps = ps[1:]
			}
			van.pings = append(van.pings, ps...)
		}
		for k, ep := range stops {
			van.track = append(van.track, fmt.Sprintf("I%d-%d", v+1, k+1))
			van.stops = append(van.stops, [2]float64{ep.Lon, ep.Lat})
		}
		vans[v] = van
	}
	log.Info("ingest: tours drawn", "vans", len(vans), "seconds", time.Since(t0).Seconds())

	// The server, with its own state.
	scfg := engine.ServerConfig{}
	var hook *hookReceiver
	if cfg.Hook != "" {
		if hook, err = startHookReceiver(cfg.Hook); err != nil {
			return nil, err
		}
		defer hook.close()
		scfg.Notify = notify.Config{AllowPrivate: true}
	}
	ss, err := startStateServer(g, cfg.DB, cfg.Dir, 2*cfg.Clients+2, scfg, log)
	if err != nil {
		return nil, err
	}
	defer ss.close()
	st, post := ss.st, ss.post

	// Shipments and sequenced plans (100 vans a plan).
	if err := parallel(cfg.Clients, len(vans), func(v int) error {
		van := vans[v]
		for k, tr := range van.track {
			body, _ := json.Marshal(map[string]any{"tracking": tr, "recipient": map[string]any{"name": "R " + tr}, "location": van.stops[k]})
			status, out, err := post("/v1/shipments", body)
			if err != nil || status != 201 {
				return fmt.Errorf("create shipment %s: %d %v %s", tr, status, err, ingestClip(out, 200))
			}
		}
		return nil
	}); err != nil {
		return nil, err
	}
	depotLL := [2]float64{depot.Lon, depot.Lat}
	for from := 0; from < len(vans); from += 100 {
		var vehicles, routes []any
		for v := from; v < min(from+100, len(vans)); v++ {
			vehicles = append(vehicles, map[string]any{"id": v + 1, "vehicle": vans[v].id, "start": depotLL, "end": depotLL,
				"time_window": []int64{start.Unix(), start.Unix() + 14*3600}})
			routes = append(routes, map[string]any{"vehicle": vans[v].id, "shipments": vans[v].track})
		}
		body, _ := json.Marshal(map[string]any{"vehicles": vehicles, "routes": routes})
		status, out, err := post("/v1/plans", body)
		if err != nil || status != 201 {
			return nil, fmt.Errorf("create plan: %d %v %s", status, err, ingestClip(out, 300))
		}
		var plan struct {
			Routes []struct {
				Stops []struct {
					ID       int64  `json:"id"`
					Tracking string `json:"tracking"`
				} `json:"stops"`
			} `json:"routes"`
		}
		if err := json.Unmarshal(out, &plan); err != nil {
			return nil, fmt.Errorf("plan answer: %w", err)
		}
		ids := map[string]int64{}
		for _, r := range plan.Routes {
			for _, st := range r.Stops {
				ids[st.Tracking] = st.ID
			}
		}
		for v := from; v < min(from+100, len(vans)); v++ {
			for _, tr := range vans[v].track {
				vans[v].stopIDs = append(vans[v].stopIDs, ids[tr])
			}
		}
	}
	for k := range cfg.Hooks {
		if hook == nil {
			break
		}
		body, _ := json.Marshal(map[string]any{"url": fmt.Sprintf("%s/hook/%d", hook.url, k), "events": []string{"*"}})
		status, out, err := post("/v1/webhooks", body)
		if err != nil || status != 201 {
			return nil, fmt.Errorf("subscribe a webhook: %d %v %s", status, err, ingestClip(out, 300))
		}
	}
	var pings pingLog
	res := &IngestResult{Backend: st.Dialect().String(), Vans: len(vans), Setup: time.Since(t0), Hook: cfg.Hook}
	log.Info("ingest: plans stored", "seconds", res.Setup.Seconds())
	// A server with tracking pages renders its tiles at start: the load
	// begins once that is done, as it would on a server up for a while.
	if page, err := ss.metrics(); err == nil {
		if _, ok := metricValue(page, "lastmile_tiles_seeded"); ok {
			if _, err := waitSeeded(ss.c.Addr, 2*time.Minute); err != nil {
				return nil, err
			}
		}
	}
	before, err := ss.metrics()
	if err != nil {
		return nil, err
	}

	// Load.
	if cfg.CPUProfile != "" {
		f, err := os.Create(cfg.CPUProfile)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return nil, err
		}
		defer pprof.StopCPUProfile()
	}
	var (
		mu        sync.Mutex
		lat       []time.Duration
		late      []time.Duration
		statusLat []time.Duration
		pingsEnd  time.Duration // when the last client sent its last pings
		sent, acc atomic.Int64
		errs      atomic.Int64
		firstErr  atomic.Value
		deadline  = time.Now().Add(cfg.Duration)
	)
	perVan := cfg.Batch / cfg.VansPerBatch
	var traceF *os.File
	var traceMu sync.Mutex
	if cfg.Trace != "" {
		if traceF, err = os.Create(cfg.Trace); err != nil {
			return nil, err
		}
		defer traceF.Close()
	}
	t1 := time.Now()
	if traceF != nil {
		fmt.Fprintf(traceF, "T0 %d\n", t1.UnixMicro())
	}
	var wg sync.WaitGroup
	for cl := range cfg.Clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []*ingestVan
			for v := cl; v < len(vans); v += cfg.Clients {
				mine = append(mine, vans[v])
			}
			if len(mine) == 0 {
				return // more clients than vans
			}
			type pos struct {
				Vehicle  string     `json:"vehicle"`
				Time     float64    `json:"time"`
				Location [2]float64 `json:"location"`
			}
			var local, localStatus []time.Duration
			var localLate []time.Duration // sent in the load's second half
			statusErrs := 0
			// The drivers' statuses go on a connection of their own, in
			// order, beside the pings (a phone's status does not wait for
			// the tracker's upload, nor the tracker for it).
			statuses := make(chan int64, 4096)
			statusDone := make(chan struct{})
			go func() {
				defer close(statusDone)
				for id := range statuses {
					st := time.Now()
					status, out, err := post(fmt.Sprintf("/v1/stops/%d/status", id), []byte(`{"status":"delivered"}`))
					localStatus = append(localStatus, time.Since(st))
					if err != nil || status != 200 {
						if statusErrs++; statusErrs == 1 {
							firstErr.CompareAndSwap(nil, fmt.Sprintf("status: %d %v %s", status, err, ingestClip(out, 200)))
						}
					}
				}
			}()
			mySent := 0.0 // pings this client sent, for the pace
			for k := 0; time.Now().Before(deadline) && (cfg.MaxPings <= 0 || sent.Load() < cfg.MaxPings); k += cfg.VansPerBatch {
				if cfg.Rate > 0 {
					// Client cl starts cl/Clients of a request's
					// interval late. (In step, all clients sent at
					// the same instants: at 3,000 pings/s, a sixth
					// of the capacity, the p50 was 53 ms, bursts of 8
					// requests queueing, against 15 ms for one
					// client alone.)
					rate := cfg.Rate / float64(cfg.Clients) // pings/s of this client
					offset := float64(cl) / float64(cfg.Clients) * float64(cfg.Batch) / rate
					at := t1.Add(time.Duration((offset + mySent/rate) * float64(time.Second)))
					if !at.Before(deadline) {
						break
					}
					time.Sleep(time.Until(at))
				}
				var batch []pos
				for j := range cfg.VansPerBatch {
					van := mine[(k+j)%len(mine)]
					for range perVan {
						if van.next >= len(van.pings) {
							break
						}
						p := van.pings[van.next]
						van.next++
						batch = append(batch, pos{van.id, float64(p.Time.UnixMilli()) / 1000, [2]float64{p.Lon, p.Lat}})
					}
				}
				if len(batch) == 0 {
					break
				}
				body, _ := json.Marshal(map[string]any{"positions": batch})
				rt := time.Now()
				if hook != nil {
					for _, p := range batch {
						pings.add(p.Vehicle, int64(p.Time), rt)
					}
				}
				status, out, err := post("/v1/positions", body)
				local = append(local, time.Since(rt))
				if traceF != nil {
					traceMu.Lock()
					fmt.Fprintf(traceF, "%d %d\n", rt.Sub(t1).Microseconds(), time.Since(rt).Microseconds())
					traceMu.Unlock()
				}
				if rt.Sub(t1) >= cfg.Duration/2 {
					localLate = append(localLate, time.Since(rt))
				}
				sent.Add(int64(len(batch)))
				mySent += float64(len(batch))
				if err != nil || status != 200 {
					errs.Add(1)
					firstErr.CompareAndSwap(nil, fmt.Sprintf("%d %v %s", status, err, ingestClip(out, 200)))
					continue
				}
				var r struct{ Accepted int64 }
				json.Unmarshal(out, &r)
				acc.Add(r.Accepted)
				// The drivers deliver the stops their vans have left.
				for j := range cfg.VansPerBatch {
					van := mine[(k+j)%len(mine)]
					if cfg.NoStatuses {
						break
					}
					if van.next == 0 {
						continue
					}
					last := van.pings[van.next-1].Time
					for van.served < len(van.depart) && van.served < len(van.stopIDs) && van.depart[van.served].Before(last) {
						statuses <- van.stopIDs[van.served]
						van.served++
					}
				}
			}
			end := time.Since(t1) // the pings' load, not the statuses still queued
			close(statuses)
			<-statusDone
			mu.Lock()
			pingsEnd = max(pingsEnd, end)
			lat = append(lat, local...)
			late = append(late, localLate...)
			statusLat = append(statusLat, localStatus...)
			res.StatusErrors += statusErrs
			mu.Unlock()
		}()
	}
	wg.Wait()
	res.Elapsed, res.Wall = pingsEnd, time.Since(t1)
	if cfg.CPUProfile != "" {
		// The load phase only: not the wait for the outbox below.
		pprof.StopCPUProfile()
	}
	res.Pings, res.Accepted, res.Requests, res.Errors = sent.Load(), acc.Load(), len(lat), int(errs.Load())
	if after, err := ss.metrics(); err == nil {
		delta := func(name string) float64 {
			a, _ := metricValue(after, name)
			b, _ := metricValue(before, name)
			return a - b
		}
		res.TrafficUpdates = int(delta("lastmile_traffic_updates_total"))
		res.TrafficEdges = int64(delta("lastmile_traffic_customized_edges_total"))
		res.TrafficRanks = int64(delta("lastmile_traffic_customized_ranks_total"))
		res.TrafficRecycled = int(delta("lastmile_traffic_recycled_total"))
		lag, _ := metricValue(after, "lastmile_traffic_update_lag_seconds")
		res.TrafficLag = time.Duration(lag * float64(time.Second))
		res.Commits = int64(delta("lastmile_store_commits_total"))
		res.Bodies = int64(delta("lastmile_store_commit_bodies_total"))
		res.WriterBusy = time.Duration(delta("lastmile_store_writer_seconds_total") * float64(time.Second))
		res.CommitTime = time.Duration(delta("lastmile_store_commit_seconds_total") * float64(time.Second))
	}
	if e, ok := firstErr.Load().(string); ok {
		res.FirstError = e
	}
	res.PingsPerSec = float64(res.Pings) / res.Elapsed.Seconds()
	res.P50, res.P99, res.Max = quantiles(lat)
	res.SecondP50, res.SecondP99, _ = quantiles(late)
	res.Statuses = len(statusLat)
	res.StatusP50, res.StatusP99, _ = quantiles(statusLat)
	var adv int
	for _, v := range vans {
		adv += v.next
	}
	res.SimMinutes = float64(adv) / float64(len(vans)) * cfg.Interval.Minutes()
	evs, err := st.EventsAfter(context.Background(), 0, 1<<30)
	if err == nil {
		res.Events = int64(len(evs))
	}
	if hook != nil {
		// Drain: until the outbox is empty, at most 60 s for a healthy
		// receiver, 2 s for the others (they keep their deliveries
		// pending: what is measured is ingest beside them).
		t2 := time.Now()
		drainFor := 60 * time.Second
		if cfg.Hook != HookOK {
			drainFor = 2 * time.Second
		}
		for time.Since(t2) < drainFor {
			ob, err := st.OutboxStats(context.Background())
			if err != nil {
				return nil, err
			}
			if res.Pending = ob.Pending + ob.Unqueued; res.Pending == 0 {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		res.Drain = time.Since(t2)
		res.Received, res.Distinct = hook.counts()
		res.DeliveriesPerSec = float64(res.Received) / time.Since(t1).Seconds()
		lat := hook.latencies(&pings, ingestVanOf, t1)
		res.SoonN = len(lat)
		res.SoonP50, res.SoonP99, res.SoonMax = quantiles(lat)
		// Past the start of the day: every van's first ping makes its
		// stops out for delivery and its first ones arriving soon at
		// once, a burst the outbox drains in seconds.
		lat = hook.latencies(&pings, ingestVanOf, t1.Add(res.Elapsed/2))
		res.LateN = len(lat)
		res.LateP50, res.LateP99, _ = quantiles(lat)
	}
	return res, nil
}

// quantiles sorts d and returns its p50, p99 and maximum; zeros when it
// is empty.
func quantiles(d []time.Duration) (p50, p99, max time.Duration) {
	if len(d) == 0 {
		return 0, 0, 0
	}
	slices.Sort(d)
	return d[len(d)/2], d[len(d)*99/100], d[len(d)-1]
}

func (c IngestConfig) withDefaults() IngestConfig {
	if c.Vans <= 0 {
		c.Vans = 1000
	}
	if c.Stops <= 0 {
		c.Stops = 20
	}
	if c.Radius <= 0 {
		c.Radius = 4000
	}
	if c.Batch <= 0 {
		c.Batch = 100
	}
	if c.VansPerBatch <= 0 || c.VansPerBatch > c.Batch {
		c.VansPerBatch = 10
	}
	if c.Interval <= 0 {
		c.Interval = 10 * time.Second
	}
	if c.Sigma == 0 {
		c.Sigma = 5
	}
	if c.Clients <= 0 {
		c.Clients = 8
	}
	if c.Duration <= 0 {
		c.Duration = 20 * time.Second
	}
	if c.Hook != "" && c.Hooks <= 0 {
		c.Hooks = 1
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// parallel runs f(0..n-1) on k goroutines and returns the first error.
func parallel(k, n int, f func(i int) error) error {
	var next atomic.Int64
	var first atomic.Value
	var wg sync.WaitGroup
	for range min(k, max(n, 1)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n || first.Load() != nil {
					return
				}
				if err := f(i); err != nil {
					first.CompareAndSwap(nil, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err, ok := first.Load().(error); ok {
		return err
	}
	return nil
}

// WriteIngest prints an ingest result with a line for scripts, last but
// for the webhook receiver's.
func WriteIngest(w io.Writer, r *IngestResult) {
	fmt.Fprintf(w, "backend %s, %d vans, setup %.1f s, %d requests (%d errors), %.1f simulated minutes per van, %d events\n",
		r.Backend, r.Vans, r.Setup.Seconds(), r.Requests, r.Errors, r.SimMinutes, r.Events)
	if r.FirstError != "" {
		fmt.Fprintf(w, "first error: %s\n", r.FirstError)
	}
	if r.Statuses > 0 {
		fmt.Fprintf(w, "statuses: %d delivered posted (%d errors), p50 %.1fms p99 %.1fms\n", r.Statuses, r.StatusErrors,
			float64(r.StatusP50.Microseconds())/1000, float64(r.StatusP99.Microseconds())/1000)
	}
	if r.TrafficUpdates > 0 {
		fmt.Fprintf(w, "traffic: %d updates of the routing graph in the load (one every %.2f s), %.0f changed edges and %.0f recomputed ranks each, %d into recycled arrays, last lag %.2f s\n",
			r.TrafficUpdates, r.Wall.Seconds()/float64(r.TrafficUpdates), float64(r.TrafficEdges)/float64(r.TrafficUpdates),
			float64(r.TrafficRanks)/float64(r.TrafficUpdates), r.TrafficRecycled, r.TrafficLag.Seconds())
	}
	if r.Commits > 0 {
		fmt.Fprintf(w, "writer: %d commits of %.1f bodies each, busy %.0f %% of the load, %.2f ms per commit of which %.2f ms in COMMIT\n",
			r.Commits, float64(r.Bodies)/float64(r.Commits), 100*r.WriterBusy.Seconds()/r.Wall.Seconds(),
			float64(r.WriterBusy.Microseconds())/1000/float64(r.Commits), float64(r.CommitTime.Microseconds())/1000/float64(r.Commits))
	}
	fmt.Fprintf(w, "ingest: backend %s pings %d accepted %d seconds %.1f pings/s %.0f p50 %.1fms p99 %.1fms max %.1fms cpus %d second-half p50 %.1fms p99 %.1fms\n",
		r.Backend, r.Pings, r.Accepted, r.Elapsed.Seconds(), r.PingsPerSec,
		float64(r.P50.Microseconds())/1000, float64(r.P99.Microseconds())/1000, float64(r.Max.Microseconds())/1000, runtime.GOMAXPROCS(0),
		float64(r.SecondP50.Microseconds())/1000, float64(r.SecondP99.Microseconds())/1000)
	if r.Hook != "" {
		ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
		fmt.Fprintf(w, "webhooks: receiver %s received %d distinct %d deliveries/s %.0f drain %.1fs pending %d arriving_soon %d p50 %.1fms p99 %.1fms max %.1fms second-half %d p50 %.1fms p99 %.1fms\n",
			r.Hook, r.Received, r.Distinct, r.DeliveriesPerSec, r.Drain.Seconds(), r.Pending, r.SoonN, ms(r.SoonP50), ms(r.SoonP99), ms(r.SoonMax),
			r.LateN, ms(r.LateP50), ms(r.LateP99))
	}
}

// ingestClip shortens an answer for an error message.
func ingestClip(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "..."
	}
	return string(b)
}

// nearestFirst orders stops as a nearest-neighbour tour from the depot
// (great-circle distances), the order a dispatcher's plan roughly has.
func nearestFirst(depot graph.Endpoint, stops []graph.Endpoint) []graph.Endpoint {
	out := make([]graph.Endpoint, 0, len(stops))
	left := slices.Clone(stops)
	at := depot
	for len(left) > 0 {
		best := 0
		for i := range left {
			if graph.Haversine(at.Lat, at.Lon, left[i].Lat, left[i].Lon) < graph.Haversine(at.Lat, at.Lon, left[best].Lat, left[best].Lon) {
				best = i
			}
		}
		at = left[best]
		out = append(out, at)
		left = slices.Delete(left, best, best+1)
	}
	return out
}
