package engine

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"runtime"
	rtmetrics "runtime/metrics"
	"slices"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lastmile/lastmile/eta"
	"github.com/lastmile/lastmile/graph"
)

// LiveConfig configures live traffic (Live).
type LiveConfig struct {
	// Horizon is how long a live observation lasts before the travel
	// times decay back to the profile (default 45 min).
	Horizon time.Duration
	// MinInterval is the least time between two re-customizations of the
	// routing graph (default 500 ms): observations arriving meanwhile are
	// applied together. An update reaches routing within MinInterval plus
	// one customization (Porto: about 0.3 s).
	MinInterval time.Duration
	// MaxDuty caps the share of the time spent customizing under a
	// continuous stream of changes (default 0.05): after an update that
	// took d the next waits at least (1/MaxDuty - 1)·d, so ping ingest
	// keeps most of the cores, but never more than MaxInterval. An update
	// after the first recomputes only what the changed edges reach
	// (graph.Customization): under bench ingest's 20,000 pings/s on Porto,
	// one every 1.1-1.3 s, 1.8-2.0 s of CPU in 30 s, where customizing the
	// whole hierarchy at 0.2 gave one every 1.5-3 s for 3.9-5.4 s of CPU
	// (at 0.1, updates came every 0.8 s for as much CPU as before).
	MaxDuty float64
	// MaxInterval is the most a pending change waits for the duty cap
	// (default 5 s): a full customization (the first, or after a road
	// closed or opened) would otherwise hold the next one back for twenty
	// times its own time. Traffic posted to the server and closures wait
	// MinInterval only: the cap is for the pings' stream.
	MaxInterval time.Duration
	// Refresh re-customizes this often while live data exists, so that
	// decayed values leave the routing graph (default 1 min).
	Refresh time.Duration
	// MaxPings is how many recent pings per vehicle are matched together
	// (default 20).
	MaxPings int
	// MaxVehicles caps the vehicles tracked (default 100,000); pings of
	// further vehicles are rejected as unknown_vehicle.
	MaxVehicles int
	// StopRadius is the distance in metres within which a matched ping
	// counts as arriving at a predicted stop, which teaches the
	// calibrator (default 30 m), once the vehicle has stayed that close
	// for StopDwell (default 20 s; negative: at the first ping). Without
	// the dwell a van passing its next stop on the other carriageway, or
	// on a street it comes back to later, "arrived" minutes early: on a
	// simulated Monaco day the calibrator learnt from 55 such passes
	// (predicted 10-33 min, "reached" in 1-4 min) that arrivals come at a
	// sixth of the predicted time, and the P10-P90 windows shown at
	// arriving_soon held 6 % of the arrivals.
	StopRadius float64
	StopDwell  time.Duration
	// MedianBelow: predictions made less than this ahead have their
	// point estimate corrected by the calibrator's median residual
	// (default 20 min; negative: never). Further ahead the calibrator
	// gives the interval only.
	MedianBelow time.Duration
	// Profile is the historical speed profile (nil: free flow).
	Profile *eta.Profile
	// Workers used to customize the graph (default GOMAXPROCS).
	Workers int
	// Logger receives progress; nil discards.
	Logger *slog.Logger
	// Now returns the current time (tests); nil means time.Now.
	Now func() time.Time
}

func (c LiveConfig) withDefaults() LiveConfig {
	if c.Horizon <= 0 {
		c.Horizon = 45 * time.Minute
	}
	if c.MedianBelow == 0 {
		c.MedianBelow = 20 * time.Minute
	}
	if c.MinInterval <= 0 {
		c.MinInterval = 500 * time.Millisecond
	}
	if !(c.MaxDuty > 0 && c.MaxDuty <= 1) {
		c.MaxDuty = 0.05
	}
	if c.MaxInterval <= 0 {
		c.MaxInterval = 5 * time.Second
	}
	c.MaxInterval = max(c.MaxInterval, c.MinInterval)
	if c.Refresh <= 0 {
		c.Refresh = time.Minute
	}
	if c.MaxPings <= 0 {
		c.MaxPings = 20
	}
	if c.MaxVehicles <= 0 {
		c.MaxVehicles = 100_000
	}
	if c.StopRadius <= 0 {
		c.StopRadius = 30
	}
	if c.StopDwell == 0 {
		c.StopDwell = 20 * time.Second
	}
	if c.Workers <= 0 {
		c.Workers = runtime.GOMAXPROCS(0)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Live keeps the traffic state of a running server: speed observations
// and vehicle pings (map matched into edge traversals) feed an
// eta.Traffic; a background loop re-customizes the routing graph's
// customizable contraction hierarchy from it and swaps the new snapshot
// into the Router, so routes, tables and solves follow the traffic within
// about a second; ETAs walk the planned legs with time-dependent edge
// times and learn their prediction intervals from the arrivals observed.
type Live struct {
	r       *Router
	cfg     LiveConfig
	log     *slog.Logger
	traffic *eta.Traffic
	// matcher returns the map matcher, built once (its spatial index takes
	// about 0.25 s on Porto): NewLive starts building it in the
	// background, so that a restarted server answers reads without
	// waiting for it.
	matcher func() (*eta.Matcher, error)
	cal     *eta.Calibrator
	cch     atomic.Pointer[graph.CCH]

	mu       sync.Mutex // the vehicles map; each vehicle has its own lock
	vehicles map[string]*vehicle

	// seq counts accepted changes; applied is the seq the routing graph
	// reflects. Waiters block on appliedCh, closed and replaced at every
	// application.
	seq       atomic.Uint64
	applyMu   sync.Mutex
	applied   uint64
	appliedCh chan struct{}
	pendingAt time.Time // when the oldest unapplied change arrived
	anyLive   atomic.Bool
	urgent    atomic.Bool // a pending change was posted traffic or a closure

	kick chan struct{}
	// durBuf holds the durations of the last update, reused by apply, and
	// cust the customization that later updates start from (the update
	// loop's goroutine only).
	durBuf []float64
	cust   *graph.Customization
	stop   chan struct{}
	done   chan struct{}
	// backedOff is the time the current customization's workers slept
	// for requests (yieldToRequests), in all.
	backedOff atomic.Int64

	// Counters for /metrics.
	updates            atomic.Uint64
	customized         struct{ edges, ranks, full, recycled atomic.Uint64 }
	lastCustomizeNanos atomic.Int64
	lastLagNanos       atomic.Int64
	obsAccepted        atomic.Uint64
	pingsAccepted      atomic.Uint64
	rejected           sync.Map // reason -> *atomic.Uint64

	// closures counts the closures accepted: cached legs routed before the
	// last one are routed again.
	closures atomic.Uint64
	legs     legCache
	snaps    snapCache
}

// vehicle is the tracking state of one vehicle, guarded by its mu (so
// that the pings of different vehicles are matched in parallel).
type vehicle struct {
	mu    sync.Mutex
	pings []eta.Ping // recent accepted pings, time order
	// match keeps the candidates and routes of pings, so that matching
	// the window again searches only for the new ones; matchOf is the
	// matcher it belongs to.
	match   eta.MatchCache
	matchOf *eta.Matcher
	emitted time.Time // traversals ending up to here were observed
	pos     *graph.EdgePoint
	posTime time.Time
	posLL   LonLat
	// Stops of the vehicle's last ETA request not yet reached, with the
	// predictions made for them, and its breaks and mode, so that
	// GET /v1/eta/{vehicle} re-estimates from the latest ping.
	stops   []ETAStop
	pending []eta.Pending
	breaks  []ETABreak
	mode    string
	// The vehicle's own progress (eta.Progress): the first prediction of
	// the stop it drives to, made at legMade for legPred, is compared with
	// the arrival; the learnt bias corrects its later ETAs.
	progress         eta.Progress
	legMade, legPred time.Time
	// reached is the location of the stop arrive resolved last: a request
	// that still lists it first (the stop is being served) teaches the
	// calibrator nothing about it.
	reached    LonLat
	hasReached bool
	// nearSince is when the vehicle came within StopRadius of its next
	// stop and stayed (zero: it is not near).
	nearSince time.Time
	// recent are the matched positions of its latest accepted pings, a
	// ring written at recentN: see matchedAt.
	recent  [recentPings]matchedPos
	recentN int
}

// recentPings is how many matched positions a vehicle keeps for
// matchedAt: more than a batch of one van's pings usually holds (the
// phone of a simulated day sends 6, the ingest benchmark 10).
const recentPings = 16

// matchedPos is a matched ping's position: as [lon, lat] and on its edge.
type matchedPos struct {
	ll LonLat
	ep graph.EdgePoint
}

// matchedStart returns the map-matched position of the named vehicle's
// ping at pos as a route's start, nil when pos is not one of its latest
// pings (or no vehicle is named).
func (l *Live) matchedStart(vehicle string, pos LonLat) *graph.Endpoint {
	if vehicle == "" {
		return nil
	}
	v := l.vehicle(vehicle, false)
	if v == nil {
		return nil
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if ep, ok := v.matchedAt(pos); ok {
		return &graph.Endpoint{Points: []graph.EdgePoint{ep}, Lat: pos[1], Lon: pos[0]}
	}
	return nil
}

// matchedAt returns the edge point of the vehicle's recent matched
// position at ll, exactly (v.mu held). An ETA request for a vehicle that
// gives one of its matched positions as the location (dispatch predicts
// from the ping it works on) starts on the edge and in the direction the
// matcher found from the trajectory. Snapping the coordinate again may
// pick another edge: a van at a junction or beside a one-way street was
// sent round the block (on a simulated Porto day, 11 min predicted for
// 300 m, and a false delayed).
func (v *vehicle) matchedAt(ll LonLat) (graph.EdgePoint, bool) {
	for i := range min(v.recentN, recentPings) {
		if m := v.recent[i]; m.ll == ll {
			return m.ep, true
		}
	}
	return graph.EdgePoint{}, false
}

// coldInterval is the calibrator's interval before it has learnt one
// (the first stops of a day on a fresh server): actual time to arrival
// between 0.8 and 1.3 times the predicted, wide enough not to show a
// point as a window and narrower than what it learns on the simulated
// days (the P10-P90 of log(actual/predicted) on Monaco spans about
// 0.7-1.4 at 30 minutes).
var coldInterval = [3]float64{-0.223, 0, 0.262}

// vanBiasHorizon is how far ahead a vehicle's learnt bias applies, fading
// linearly (the horizon bench.ETA uses: 30 minutes).
const vanBiasHorizon = 30 * time.Minute

// NewLive prepares live traffic for r and starts building the map
// matcher's index in the background. The customizable hierarchy is built
// by Start.
func NewLive(r *Router, cfg LiveConfig) (*Live, error) {
	cfg = cfg.withDefaults()
	// The matcher's index (Porto: 0.25 s on one core) builds while the
	// traffic model does (as long, on one core too): a restarted server
	// needs both before it accepts pings again.
	m := sync.OnceValues(func() (*eta.Matcher, error) { return eta.NewMatcher(r.G, eta.MatchOptions{}) })
	go m()
	tr, err := eta.NewTraffic(r.G.Road, cfg.Profile, eta.TrafficOptions{Horizon: cfg.Horizon, Logger: cfg.Logger})
	if err != nil {
		return nil, fmt.Errorf("live traffic: %w", err)
	}
	// The calibrator gives the interval only, except at short horizons:
	// correcting the point estimate by the residuals' median made the
	// 30-minute error worse on the simulator's validation days
	// (bench.ETA) and the 10-minute one better; on the simulated Porto
	// days the last minutes' predictions ran 0.5-2 min late, which made
	// the false alarms of delayed.
	cal := eta.NewCalibrator()
	cal.IntervalOnly, cal.MedianBelow = true, max(cfg.MedianBelow, 0)
	cal.Prior = &coldInterval
	l := &Live{r: r, cfg: cfg, log: logger(cfg.Logger), traffic: tr, matcher: m, cal: cal,
		vehicles: map[string]*vehicle{}, appliedCh: make(chan struct{}),
		kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	if cfg.Profile != nil {
		l.anyLive.Store(true)
	}
	return l, nil
}

// Start builds the customizable contraction hierarchy (a few seconds on
// a city) in the background (NewLive started the map matcher's index),
// and then applies changes until Close. The hierarchy waits for after to
// close, when it is not nil: a restarted server replays its stored pings
// first (they need the matcher, not the hierarchy), so that pings are
// accepted again sooner; traffic reaches routing once the hierarchy is
// built, and routing meanwhile uses the prepared graph.
func (l *Live) Start(after <-chan struct{}) {
	go func() {
		if after != nil {
			select {
			case <-after:
			case <-l.stop:
				close(l.done)
				return
			}
		}
		l.run()
	}()
}

// Close stops the update loop and waits for it.
func (l *Live) Close() {
	select {
	case <-l.stop:
	default:
		close(l.stop)
	}
	<-l.done
}

// Ready reports whether traffic reaches routing (the hierarchy is built).
func (l *Live) Ready() bool { return l.cch.Load() != nil }

func (l *Live) run() {
	defer close(l.done)
	t0 := time.Now()
	c, err := graph.NewCCH(l.r.G, l.cfg.Workers)
	if err != nil {
		l.log.Error("live traffic disabled: customizable hierarchy failed", "err", err)
		return
	}
	l.cch.Store(c)
	l.log.Info("customizable hierarchy built", "arcs", c.Arcs(), "triangles", c.Triangles,
		"order", c.OrderTime, "elapsed", time.Since(t0))
	refresh := time.NewTicker(l.cfg.Refresh)
	defer refresh.Stop()
	var last time.Time
	var took time.Duration // the last update's customization
	for {
		l.applyMu.Lock()
		pending := l.seq.Load() != l.applied
		l.applyMu.Unlock()
		if !pending {
			select {
			case <-l.stop:
				return
			case <-l.kick:
			case <-refresh.C:
				if !l.anyLive.Load() {
					continue
				}
			}
		}
		// At most MaxDuty of the time customizing: after an update that
		// took d, the next waits (1/MaxDuty - 1)·d, at least MinInterval,
		// at most MaxInterval; an urgent change only MinInterval.
		capped := min(max(l.cfg.MinInterval, time.Duration(float64(took)*(1/l.cfg.MaxDuty-1))), l.cfg.MaxInterval)
	sleep:
		for {
			gap := capped
			if l.urgent.Load() {
				gap = l.cfg.MinInterval
			}
			wait := gap - time.Since(last)
			if wait <= 0 {
				break
			}
			select {
			case <-l.stop:
				return
			case <-time.After(wait):
				break sleep
			case <-l.kick: // an urgent change may shorten the wait
			}
		}
		urgent := l.urgent.Swap(false)
		last = time.Now()
		if err := l.apply(c, urgent); err != nil {
			l.log.Error("traffic update failed", "err", err)
		}
		// The time it would have taken without backing off for
		// requests: a full customization's workers slept in parallel, an
		// update's one goroutine in sequence.
		sleepers := l.cfg.Workers
		if l.cust != nil && !l.cust.Last.Full {
			sleepers = 1
		}
		took = max(0, time.Since(last)-time.Duration(l.backedOff.Swap(0))/time.Duration(sleepers))
	}
}

// apply customizes the graph with the traffic now and swaps it in. An
// urgent update (posted traffic, a closure) does not back off for
// requests: under bench traffic's route load, backing off made 10,000
// posted observations reach routing in 1.4-1.8 s instead of 0.4-0.6 s.
func (l *Live) apply(c *graph.CCH, urgent bool) error {
	l.applyMu.Lock()
	seq, since := l.seq.Load(), l.pendingAt
	l.applyMu.Unlock()
	t0 := time.Now()
	l.durBuf = l.traffic.Durations(l.cfg.Now(), l.durBuf)
	yield := func() { l.backedOff.Add(int64(yieldToRequests())) }
	if urgent {
		yield = runtime.Gosched
	}
	// The first update customizes the whole hierarchy; the later ones
	// recompute only what the changed edges reach.
	var g *graph.Graph
	if l.cust == nil {
		z, err := c.NewCustomization(l.durBuf, l.cfg.Workers, yield)
		if err != nil {
			return err
		}
		l.cust, g = z, z.Graph()
	} else {
		var err error
		if g, err = l.cust.Update(l.durBuf, yield); err != nil {
			return err
		}
	}
	st := l.cust.Last
	l.customized.edges.Add(uint64(st.Edges))
	l.customized.ranks.Add(uint64(st.Basic + st.Exact))
	if st.Full {
		l.customized.full.Add(1)
	}
	if st.Recycled {
		l.customized.recycled.Add(1)
	}
	l.r.SetGraph(g)
	l.lastCustomizeNanos.Store(int64(time.Since(t0)))
	l.updates.Add(1)
	l.applyMu.Lock()
	if seq > l.applied {
		l.applied = seq
		if !since.IsZero() {
			l.lastLagNanos.Store(int64(time.Since(since)))
		}
		if l.seq.Load() == seq {
			l.pendingAt = time.Time{}
		} else {
			l.pendingAt = time.Now()
		}
	}
	close(l.appliedCh)
	l.appliedCh = make(chan struct{})
	l.applyMu.Unlock()
	l.log.Debug("traffic applied", "seq", seq, "customize", time.Since(t0), "edges", st.Edges,
		"ranks", st.Basic+st.Exact, "arcs", st.Arcs, "full", st.Full)
	return nil
}

// Customization backs off while goroutines wait for a processor: at each
// of its yield points it sleeps backoffStep, up to backoffSteps times in
// a row, as long as /sched/goroutines/runnable is not zero. Live traffic
// reaches routing a little later under load, and the requests do not
// share their processors with it: under `lastmile bench ingest` (1,000
// vans, one van's 10 pings a request, 10,000 pings/s), the p99 of the
// load's second half went from 55-64 ms to 31-44 ms (2 alternating
// pairs), with as many customizations (9-11 in 30 s).
const (
	backoffStep  = 200 * time.Microsecond
	backoffSteps = 4
)

// yieldToRequests is the live customization's yield
// (graph.CCH.CustomizeYield); it returns the time it slept.
func yieldToRequests() time.Duration {
	var slept time.Duration
	for range backoffSteps {
		if !runnable() {
			break
		}
		t := time.Now()
		time.Sleep(backoffStep)
		slept += time.Since(t)
	}
	return slept
}

// runnable reports whether goroutines wait for a processor
// (/sched/goroutines/runnable), for background work to give way.
func runnable() bool {
	sample := []rtmetrics.Sample{{Name: "/sched/goroutines/runnable:goroutines"}}
	rtmetrics.Read(sample)
	return sample[0].Value.Kind() == rtmetrics.KindUint64 && sample[0].Value.Uint64() > 0
}

// changed records accepted changes and wakes the update loop; it returns
// the sequence number a waiter needs applied. Urgent changes (posted
// traffic and closures, not the pings' traversals) are applied without
// waiting for the duty cap.
func (l *Live) changed(n int, urgent bool) uint64 {
	if n == 0 {
		return 0
	}
	l.anyLive.Store(true)
	if urgent {
		l.urgent.Store(true)
	}
	l.applyMu.Lock()
	seq := l.seq.Add(uint64(n))
	if l.pendingAt.IsZero() {
		l.pendingAt = time.Now()
	}
	l.applyMu.Unlock()
	select {
	case l.kick <- struct{}{}:
	default:
	}
	return seq
}

// WaitApplied blocks until the changes up to seq reach routing or the
// timeout passes, and reports whether they did.
func (l *Live) WaitApplied(seq uint64, timeout time.Duration) bool {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		l.applyMu.Lock()
		done, ch := l.applied >= seq, l.appliedCh
		l.applyMu.Unlock()
		if done {
			return true
		}
		select {
		case <-ch:
		case <-deadline.C:
			return false
		case <-l.done:
			return false
		}
	}
}

func (l *Live) reject(reason string, n int) {
	if n == 0 {
		return
	}
	v, _ := l.rejected.LoadOrStore(reason, new(atomic.Uint64))
	v.(*atomic.Uint64).Add(uint64(n))
}

// TrafficObservation is one speed observation of POST /v1/traffic: either
// a road edge index (as /v1/nearest and map matching name them) or an
// OpenStreetMap way id (every edge of the way), and a speed in km/h or, for
// an edge, the seconds needed to traverse it.
type TrafficObservation struct {
	Edge     *uint32  `json:"edge,omitempty"`
	WayID    *int64   `json:"way_id,omitempty"`
	Speed    *float64 `json:"speed,omitempty"`    // km/h
	Duration *float64 `json:"duration,omitempty"` // s, whole edge
	// Time of the observation, Unix seconds (default: the request time).
	Time *float64 `json:"time,omitempty"`
}

// TrafficClosure closes an edge or a way until a time.
type TrafficClosure struct {
	Edge  *uint32 `json:"edge,omitempty"`
	WayID *int64  `json:"way_id,omitempty"`
	// Until is the end of the closure, Unix seconds (a time in the past
	// lifts a closure).
	Until *float64 `json:"until"`
}

// TrafficRequest is the body of POST /v1/traffic.
type TrafficRequest struct {
	Observations []TrafficObservation `json:"observations"`
	Closures     []TrafficClosure     `json:"closures,omitempty"`
}

// TrafficResponse reports what an update did.
type TrafficResponse struct {
	Code     string         `json:"code"`
	Accepted int            `json:"accepted"`
	Rejected map[string]int `json:"rejected"`
	// Applied is set when the request asked to wait (?wait=true) and the
	// update reached routing; LagMs is then the time it took.
	Applied bool    `json:"applied"`
	LagMs   float64 `json:"lag_ms,omitempty"`
}

// unixTime converts Unix seconds, checking the range.
func unixTime(s float64, field string) (time.Time, error) {
	if math.IsNaN(s) || s < 0 || s > 1e11 {
		return time.Time{}, &Error{"InvalidValue", fmt.Sprintf("%s: %v is not a Unix time in seconds", field, s)}
	}
	sec, frac := math.Modf(s)
	return time.Unix(int64(sec), int64(frac*1e9)), nil
}

// Observe applies a traffic request. Bad entries are counted by reason,
// not fatal; the request as a whole fails only when malformed.
func (l *Live) Observe(req *TrafficRequest) (TrafficResponse, uint64, error) {
	resp := TrafficResponse{Code: "Ok", Rejected: map[string]int{}}
	net := l.r.G.Road
	now := l.cfg.Now()
	accepted := 0
	for i, o := range req.Observations {
		field := "observations[" + strconv.Itoa(i) + "]"
		if (o.Edge == nil) == (o.WayID == nil) {
			return resp, 0, &Error{"InvalidQuery", field + ": give exactly one of edge and way_id"}
		}
		if (o.Speed == nil) == (o.Duration == nil) {
			return resp, 0, &Error{"InvalidQuery", field + ": give exactly one of speed (km/h) and duration (s)"}
		}
		at := now
		if o.Time != nil {
			t, err := unixTime(*o.Time, field+".time")
			if err != nil {
				return resp, 0, err
			}
			at = t
		}
		if o.WayID != nil {
			if o.Speed == nil {
				return resp, 0, &Error{"InvalidQuery", field + ": a way takes a speed, not a duration"}
			}
			if _, err := l.traffic.ObserveWay(*o.WayID, at, *o.Speed/3.6); err != nil {
				resp.Rejected[rejectReason(err)]++
				continue
			}
			accepted++
			continue
		}
		e := *o.Edge
		if int(e) >= len(net.Edges) {
			resp.Rejected["unknown_edge"]++
			continue
		}
		var d float64
		if o.Duration != nil {
			d = *o.Duration
		} else {
			d = net.Edges[e].Distance / (*o.Speed / 3.6)
		}
		if err := l.traffic.Observe(eta.Observation{Edge: e, Time: at, Duration: d}); err != nil {
			resp.Rejected[rejectReason(err)]++
			continue
		}
		accepted++
	}
	for i, c := range req.Closures {
		field := "closures[" + strconv.Itoa(i) + "]"
		if (c.Edge == nil) == (c.WayID == nil) {
			return resp, 0, &Error{"InvalidQuery", field + ": give exactly one of edge and way_id"}
		}
		if c.Until == nil {
			return resp, 0, &Error{"InvalidQuery", field + ".until: missing (Unix seconds)"}
		}
		until, err := unixTime(*c.Until, field+".until")
		if err != nil {
			return resp, 0, err
		}
		var edges []uint32
		if c.Edge != nil {
			edges = []uint32{*c.Edge}
		} else {
			edges = l.traffic.WayEdges(*c.WayID)
			if len(edges) == 0 {
				resp.Rejected["unknown_way"]++
				continue
			}
		}
		ok := true
		for _, e := range edges {
			if err := l.traffic.ObserveClosure(e, until); err != nil {
				resp.Rejected[rejectReason(err)]++
				ok = false
				break
			}
		}
		if ok {
			accepted++
			l.closures.Add(1)
		}
	}
	resp.Accepted = accepted
	l.obsAccepted.Add(uint64(accepted))
	for k, v := range resp.Rejected {
		l.reject(k, v)
	}
	return resp, l.changed(accepted, true), nil
}

// rejectReason names a rejection by the eta package's error.
func rejectReason(err error) string {
	switch {
	case errors.Is(err, eta.ErrUnknownEdge):
		return "unknown_edge"
	case errors.Is(err, eta.ErrUnknownWay):
		return "unknown_way"
	case errors.Is(err, eta.ErrImplausible):
		return "implausible"
	case errors.Is(err, eta.ErrOutlier):
		return "outlier"
	}
	return "invalid"
}

// Position is one vehicle ping of POST /v1/positions.
type Position struct {
	Vehicle string `json:"vehicle"`
	// Time in Unix seconds.
	Time     float64  `json:"time"`
	Location LonLat   `json:"location"`
	Speed    *float64 `json:"speed,omitempty"`   // m/s
	Heading  *float64 `json:"heading,omitempty"` // degrees
}

// PositionsRequest is the body of POST /v1/positions.
type PositionsRequest struct {
	Positions []Position `json:"positions"`
}

// PositionsResponse reports what became of the pings.
type PositionsResponse struct {
	Code     string `json:"code"`
	Accepted int    `json:"accepted"`
	// Rejected counts pings by reason: bad_coordinate, out_of_order,
	// teleport, off_map, unknown_vehicle; and edge traversals the traffic
	// model did not take, as traversal_ and the reason: implausible,
	// outlier, or stand (the vehicle stood at a stop or parked on the
	// edge: see stood).
	Rejected map[string]int `json:"rejected"`
	// Traversals is the number of edge traversals the matched pings gave
	// to the traffic model; Arrivals the stops found reached.
	Traversals int `json:"traversals"`
	Arrivals   int `json:"arrivals"`
}

// Positions ingests a batch of pings: per vehicle in time order, each new
// ping is map matched with the vehicle's recent ones (eta.Matcher, Newson &
// Krumm 2009), the edges fully traversed become traffic observations, and
// a ping near the next stop of the vehicle's last ETA resolves the
// predictions made for it.
func (l *Live) Positions(req *PositionsRequest) (PositionsResponse, uint64) {
	return l.PositionsMatched(req, nil)
}

// MatchedPing is an accepted ping with its map-matched position.
type MatchedPing struct {
	Vehicle  string
	Time     time.Time
	Location LonLat // as reported
	Matched  LonLat // on the road
	Speed    float64
	Heading  float64
}

// PositionsMatched is Positions that also appends every accepted ping,
// with its matched position, to out (when out is not nil), per vehicle in
// time order.
func (l *Live) PositionsMatched(req *PositionsRequest, out *[]MatchedPing) (PositionsResponse, uint64) {
	resp := PositionsResponse{Code: "Ok", Rejected: map[string]int{}}
	byVehicle := map[string][]eta.Ping{}
	var order []string
	for _, p := range req.Positions {
		if p.Vehicle == "" || len(p.Vehicle) > 128 {
			resp.Rejected["unknown_vehicle"]++
			continue
		}
		if p.Location.Check() != nil || math.IsNaN(p.Time) || p.Time <= 0 || p.Time > 1e11 {
			resp.Rejected[eta.RejectBadCoordinate]++
			continue
		}
		t, _ := unixTime(p.Time, "time")
		ping := eta.Ping{Time: t, Lat: p.Location[1], Lon: p.Location[0], Speed: math.NaN(), Heading: math.NaN()}
		if p.Speed != nil {
			ping.Speed = *p.Speed
		}
		if p.Heading != nil {
			ping.Heading = *p.Heading
		}
		if _, ok := byVehicle[p.Vehicle]; !ok {
			order = append(order, p.Vehicle)
		}
		byVehicle[p.Vehicle] = append(byVehicle[p.Vehicle], ping)
	}
	changes := 0
	for _, id := range order {
		pings := byVehicle[id]
		sort.SliceStable(pings, func(i, j int) bool { return pings[i].Time.Before(pings[j].Time) })
		v := l.vehicle(id, true)
		if v == nil {
			resp.Rejected["unknown_vehicle"] += len(pings)
			continue
		}
		v.mu.Lock()
		n0 := 0
		if out != nil {
			n0 = len(*out)
		}
		a, tr, arr := l.track(v, pings, resp.Rejected, out)
		if out != nil {
			for i := n0; i < len(*out); i++ {
				(*out)[i].Vehicle = id
			}
		}
		v.mu.Unlock()
		resp.Accepted += a
		resp.Traversals += tr
		resp.Arrivals += arr
		changes += tr
	}
	l.pingsAccepted.Add(uint64(resp.Accepted))
	for k, n := range resp.Rejected {
		l.reject(k, n)
	}
	return resp, l.changed(changes, false)
}

// track matches a vehicle's new pings (v.mu held) and returns the pings
// accepted, traversals observed and stops reached.
func (l *Live) track(v *vehicle, pings []eta.Ping, rejected map[string]int, out *[]MatchedPing) (accepted, traversals, arrivals int) {
	// Out of order against what was already accepted.
	k := 0
	for _, p := range pings {
		if n := len(v.pings); n > 0 && !p.Time.After(v.pings[n-1].Time) {
			rejected[eta.RejectOutOfOrder]++
			continue
		}
		if k > 0 && !p.Time.After(pings[k-1].Time) {
			rejected[eta.RejectOutOfOrder]++
			continue
		}
		pings[k] = p
		k++
	}
	pings = pings[:k]
	if len(pings) == 0 {
		return 0, 0, 0
	}
	old := len(v.pings)
	before, reached, hadReached := v.stops, v.reached, v.hasReached
	window := append(v.pings, pings...)
	m, err := l.matcher()
	if err != nil {
		l.log.Error("map matcher", "err", err)
		return 0, 0, 0
	}
	if v.matchOf != m {
		v.match, v.matchOf = eta.MatchCache{}, m
	}
	res, err := m.MatchCached(window, &v.match)
	if err != nil {
		return 0, 0, 0
	}
	// Keep the accepted pings; count the new rejected ones.
	kept := window[:0]
	for i, mp := range res.Points {
		if !mp.OK {
			if i >= old {
				rejected[mp.Reason]++
			}
			continue
		}
		if i >= old {
			accepted++
			v.posTime = window[i].Time
			v.pos = &graph.EdgePoint{Edge: mp.Edge, Fraction: mp.Fraction}
			v.posLL = LonLat{mp.Lon, mp.Lat}
			v.recent[v.recentN%recentPings] = matchedPos{v.posLL, *v.pos}
			v.recentN++
			arrivals += l.arrive(v, v.posLL, window[i].Time)
			if out != nil {
				w := window[i]
				*out = append(*out, MatchedPing{Time: w.Time, Location: LonLat{w.Lon, w.Lat}, Matched: v.posLL, Speed: w.Speed, Heading: w.Heading})
			}
		}
		kept = append(kept, window[i])
	}
	// Where the vehicle may have stood serving a stop: the stop it
	// reached before, those it reached in this batch and its next.
	var stops []LonLat
	if hadReached {
		stops = append(stops, reached)
	}
	if n := len(before) - len(v.stops); n > 0 {
		for _, st := range before[:n] {
			stops = append(stops, st.Location)
		}
	}
	if len(v.stops) > 0 {
		stops = append(stops, v.stops[0].Location)
	}
	for _, t := range res.Traversals {
		if !t.Full || !t.Exit.After(v.emitted) || !t.Exit.After(t.Enter) {
			continue
		}
		if t.Enter.Before(v.emitted) {
			continue // already reported from the previous window
		}
		if stood(kept, t.Enter, t.Exit, stops, 1.5*l.cfg.StopRadius, max(l.cfg.StopDwell, 0)) {
			v.emitted = t.Exit
			rejected["traversal_stand"]++
			continue
		}
		if err := l.traffic.Observe(eta.Observation{Edge: t.Edge, Time: t.Enter, Duration: t.Exit.Sub(t.Enter).Seconds()}); err == nil {
			traversals++
			v.emitted = t.Exit
		} else {
			rejected["traversal_"+rejectReason(err)]++
		}
	}
	if len(kept) > l.cfg.MaxPings {
		kept = append(kept[:0], kept[len(kept)-l.cfg.MaxPings:]...)
	}
	v.pings = kept
	return accepted, traversals, arrivals
}

// arrive resolves the vehicle's next pending stop once it has stayed
// within StopRadius of it for StopDwell, as arriving when it came near.
func (l *Live) arrive(v *vehicle, p LonLat, at time.Time) int {
	if len(v.stops) == 0 {
		return 0
	}
	s := v.stops[0].Location
	if graph.Haversine(p[1], p[0], s[1], s[0]) > l.cfg.StopRadius {
		v.nearSince = time.Time{}
		return 0
	}
	if v.nearSince.IsZero() || v.nearSince.After(at) {
		v.nearSince = at
	}
	if at.Sub(v.nearSince) < l.cfg.StopDwell {
		return 0
	}
	at, v.nearSince = v.nearSince, time.Time{} // it arrived when it came near
	v.reached, v.hasReached = s, true
	v.pending[0].Resolve(l.cal, at)
	v.stops, v.pending = v.stops[1:], v.pending[1:]
	if !v.legMade.IsZero() {
		v.progress.Observe(at, v.legPred.Sub(v.legMade), at.Sub(v.legMade))
		v.legMade = time.Time{}
	}
	return 1
}

// parkRadius and parkDwell make a stand away from any stop: pings that stay
// within parkRadius metres of the first for parkDwell. A van waiting at
// its depot, on a break or at an unplanned stop is parked, not slowed by
// traffic; a queue at a signal moves on within a cycle (two minutes at
// most in a city), and a jam crawls farther than parkRadius in that time.
const (
	parkRadius = 25.0
	parkDwell  = 3 * time.Minute
)

// stood reports whether a vehicle's pings (time order) between enter and
// exit show it standing: for dwell or longer within radius metres of one
// of stops (a stop it was serving), or for parkDwell within parkRadius of
// one place. A traversal of an edge that holds a stand measures the stand,
// not the road: a van serving a stop halfway along a street for four
// minutes would teach the traffic model that the street takes four
// minutes to drive (on the simulated Porto days such traversals had the
// ETAs of the next stops 8 minutes late and fired false delayed events).
func stood(pings []eta.Ping, enter, exit time.Time, stops []LonLat, radius float64, dwell time.Duration) bool {
	lo, _ := slices.BinarySearchFunc(pings, enter, func(p eta.Ping, t time.Time) int { return p.Time.Compare(t) })
	for a := lo; a < len(pings) && !pings[a].Time.After(exit); a++ {
		pa := pings[a]
		for _, s := range stops {
			if graph.Haversine(pa.Lat, pa.Lon, s[1], s[0]) <= radius && stays(pings, a, exit, s[1], s[0], radius, dwell) {
				return true
			}
		}
		if stays(pings, a, exit, pa.Lat, pa.Lon, parkRadius, parkDwell) {
			return true
		}
	}
	return false
}

// stays reports whether the pings after pings[a], up to exit, stay within
// radius metres of (lat, lon) until dwell after pings[a].
func stays(pings []eta.Ping, a int, exit time.Time, lat, lon, radius float64, dwell time.Duration) bool {
	for b := a + 1; b < len(pings) && !pings[b].Time.After(exit); b++ {
		if graph.Haversine(pings[b].Lat, pings[b].Lon, lat, lon) > radius {
			return false
		}
		if pings[b].Time.Sub(pings[a].Time) >= dwell {
			return true
		}
	}
	return false
}

// ETAStop is a remaining stop of POST /v1/eta.
type ETAStop struct {
	ID       any    `json:"id,omitempty"`
	Location LonLat `json:"location"`
	// Service time in seconds.
	Service float64 `json:"service,omitempty"`
	// TimeWindows in Unix seconds; arriving early waits for the first
	// window that has not closed.
	TimeWindows [][2]float64 `json:"time_windows,omitempty"`
}

// ETABreak is a driver break: a duration to take within a window.
type ETABreak struct {
	TimeWindows [][2]float64 `json:"time_windows"`
	Service     float64      `json:"service"`
}

// ETARequest is the body of POST /v1/eta.
type ETARequest struct {
	// Vehicle identifies the vehicle: its last matched position is used
	// when Location is absent, and its pings later teach the calibrator.
	Vehicle string `json:"vehicle,omitempty"`
	// Location is the vehicle's position now; Time is now (Unix seconds,
	// default the server's clock). A location that is exactly one of the
	// vehicle's recent matched positions (as /v1/positions matched them)
	// starts on its matched edge, in its direction of travel; any other
	// is snapped to the nearest road.
	Location *LonLat    `json:"location,omitempty"`
	Time     *float64   `json:"time,omitempty"`
	Stops    []ETAStop  `json:"stops"`
	Breaks   []ETABreak `json:"breaks,omitempty"`
	// Mode is live (default), historical or freeflow.
	Mode string `json:"mode,omitempty"`
}

// ETAPrediction is the forecast of one stop.
type ETAPrediction struct {
	ID any `json:"id,omitempty"`
	// Arrival, P10, P90 and Departure in Unix seconds.
	Arrival   int64 `json:"arrival"`
	P10       int64 `json:"p10"`
	P90       int64 `json:"p90"`
	Departure int64 `json:"departure"`
	// Waiting for the time window and Break taken after service, seconds.
	Waiting  float64 `json:"waiting"`
	Break    float64 `json:"break,omitempty"`
	Late     bool    `json:"late"`
	Distance float64 `json:"distance"` // metres of the leg
}

// ETAResponse is the answer of POST /v1/eta.
type ETAResponse struct {
	Code    string          `json:"code"`
	Time    int64           `json:"time"`
	Mode    string          `json:"mode"`
	Stops   []ETAPrediction `json:"stops"`
	Vehicle string          `json:"vehicle,omitempty"`
}

// ETA predicts the arrivals at a vehicle's remaining stops.
func (l *Live) ETA(req *ETARequest, maxStops int) (*ETAResponse, error) {
	if len(req.Stops) == 0 {
		return nil, &Error{"InvalidQuery", "stops: at least one stop is needed"}
	}
	if len(req.Stops) > maxStops {
		return nil, &Error{"TooBig", fmt.Sprintf("stops: %d stops, at most %d", len(req.Stops), maxStops)}
	}
	mode := eta.Live
	switch req.Mode {
	case "", "live":
	case "historical":
		mode = eta.Historical
	case "freeflow":
		mode = eta.FreeFlow
	default:
		return nil, &Error{"InvalidValue", fmt.Sprintf("mode %q: want live, historical or freeflow", req.Mode)}
	}
	now := l.cfg.Now()
	if req.Time != nil {
		t, err := unixTime(*req.Time, "time")
		if err != nil {
			return nil, err
		}
		now = t
	}
	if len(req.Vehicle) > 128 {
		return nil, &Error{"InvalidValue", "vehicle: id longer than 128 bytes"}
	}
	pts := make([]LonLat, 0, len(req.Stops)+1)
	var start *graph.Endpoint
	switch {
	case req.Location != nil:
		start = l.matchedStart(req.Vehicle, *req.Location)
		if start == nil {
			pts = append(pts, *req.Location)
		}
	case req.Vehicle != "":
		if v := l.vehicle(req.Vehicle, false); v != nil {
			v.mu.Lock()
			if v.pos != nil {
				ll := v.posLL
				start = &graph.Endpoint{Points: []graph.EdgePoint{*v.pos}, Lat: ll[1], Lon: ll[0]}
			}
			v.mu.Unlock()
		}
		if start == nil {
			return nil, &Error{"NotFound", fmt.Sprintf("vehicle %q: no position known; give location", req.Vehicle)}
		}
	default:
		return nil, &Error{"InvalidQuery", "location: give the vehicle's location or a vehicle with known pings"}
	}
	plan := eta.Plan{Now: now, Stops: make([]eta.Stop, len(req.Stops)), Legs: make([]eta.Leg, 0, len(req.Stops))}
	for i, s := range req.Stops {
		field := "stops[" + strconv.Itoa(i) + "]"
		if err := s.Location.Check(); err != nil {
			return nil, &Error{"InvalidValue", field + ".location: " + err.Error()}
		}
		if !(s.Service >= 0 && s.Service < 7*86400) {
			return nil, &Error{"InvalidValue", fmt.Sprintf("%s.service: %v s is not in [0, 7 days)", field, s.Service)}
		}
		st := eta.Stop{Service: time.Duration(s.Service * float64(time.Second))}
		// The first window that has not closed by now.
		for k, w := range s.TimeWindows {
			a, err1 := unixTime(w[0], fmt.Sprintf("%s.time_windows[%d]", field, k))
			b, err2 := unixTime(w[1], fmt.Sprintf("%s.time_windows[%d]", field, k))
			if err := errors.Join(err1, err2); err != nil {
				return nil, err
			}
			if b.Before(a) {
				return nil, &Error{"InvalidValue", fmt.Sprintf("%s.time_windows[%d]: end before start", field, k)}
			}
			if !b.Before(now) || k == len(s.TimeWindows)-1 {
				st.Open, st.Close = a, b
				break
			}
		}
		plan.Stops[i] = st
		pts = append(pts, s.Location)
	}
	for i, b := range req.Breaks {
		field := "breaks[" + strconv.Itoa(i) + "]"
		if len(b.TimeWindows) == 0 {
			return nil, &Error{"InvalidQuery", field + ".time_windows: one window is needed"}
		}
		w := b.TimeWindows[0]
		a, err1 := unixTime(w[0], field+".time_windows[0]")
		c, err2 := unixTime(w[1], field+".time_windows[0]")
		if err := errors.Join(err1, err2); err != nil {
			return nil, err
		}
		if !(b.Service >= 0 && b.Service < 86400) {
			return nil, &Error{"InvalidValue", fmt.Sprintf("%s.service: %v s is not in [0, 1 day)", field, b.Service)}
		}
		plan.Breaks = append(plan.Breaks, eta.Break{Open: a, Close: c, Duration: time.Duration(b.Service * float64(time.Second))})
	}
	eps, err := l.snapCached(pts)
	if err != nil {
		return nil, err
	}
	if start != nil {
		eps = append([]graph.Endpoint{*start}, eps...)
		pts = append([]LonLat{{start.Lon, start.Lat}}, pts...)
	}
	snap := l.r.cur.Load()
	q := snap.query()
	defer snap.release(q)
	dists := make([]float64, len(req.Stops))
	closures := l.closures.Load()
	for i := range req.Stops {
		// A leg between two stops is routed once and reused until a
		// closure arrives or legTTL passes; the traffic of the moment
		// times its edges in Predict either way. The first leg, from
		// where the van is on the road, is routed each time; from a
		// location snapped here it is a leg like the others: dispatch
		// predicts from the stop a van is serving, or from its depot
		// before it leaves (in bench ingest, 34,166 of 37,226 first legs
		// of 10 s, 8 % of the CPU).
		key := legKey{pts[i], pts[i+1]}
		cached := i > 0 || start == nil
		if cached {
			if c, ok := l.legs.get(key, closures); ok {
				plan.Legs = append(plan.Legs, c.leg)
				dists[i] = c.dist
				continue
			}
		}
		rt, err := q.Route(eps[i], eps[i+1])
		if i == 0 && start != nil && errors.Is(err, graph.ErrNoRoute) {
			// No route leaves the van's matched edge in its direction:
			// every exit ahead is closed, and the edge-based graph allows
			// a U-turn only at a dead end. Start from the edges near the
			// van in both directions, as a driver turning round would;
			// else its ETAs would stay as they were (on a simulated Porto
			// day, a stop 93 s late warned 50 s after its window closed).
			if alt, _, serr := l.r.Snap(pts[:1]); serr == nil {
				rt, err = q.Route(alt[0], eps[1])
			}
		}
		if err != nil {
			if errors.Is(err, graph.ErrNoRoute) {
				return nil, &Error{"NoRoute", fmt.Sprintf("stops[%d]: no route from the previous point", i)}
			}
			return nil, err
		}
		leg := eta.RouteLeg(&rt)
		plan.Legs = append(plan.Legs, leg)
		dists[i] = rt.Distance
		if cached {
			l.legs.put(key, cachedLeg{leg: leg, dist: rt.Distance, closures: closures})
		}
	}
	if req.Vehicle != "" && mode == eta.Live {
		if v := l.vehicle(req.Vehicle, false); v != nil {
			v.mu.Lock()
			plan.Bias = eta.Bias{Log: v.progress.Bias(now), Horizon: vanBiasHorizon}
			v.mu.Unlock()
		}
	}
	// One walk gives the calibrated predictions and the raw arrivals the
	// calibrator learns from (Prediction.Raw).
	preds, err := l.traffic.Predict(plan, mode, l.cal)
	if err != nil {
		return nil, &Error{"InvalidValue", err.Error()}
	}
	resp := &ETAResponse{Code: "Ok", Time: now.Unix(), Mode: mode.String(), Vehicle: req.Vehicle, Stops: make([]ETAPrediction, len(preds))}
	for i, p := range preds {
		resp.Stops[i] = ETAPrediction{ID: req.Stops[i].ID, Arrival: p.Arrival.Unix(), P10: p.P10.Unix(), P90: p.P90.Unix(),
			Departure: p.Departure.Unix(), Waiting: p.Waiting.Seconds(), Break: p.Break.Seconds(), Late: p.Late, Distance: dists[i]}
	}
	// Remember the raw predictions of a tracked vehicle for calibration.
	if req.Vehicle != "" && mode == eta.Live {
		if v := l.vehicle(req.Vehicle, true); v != nil {
			v.mu.Lock()
			// A new list keeps the predictions of the stops it still
			// holds in the same order after the same stops (served
			// stops gone from its front, a stop added at its end), so
			// that a stop predicted an hour ahead teaches the
			// calibrator that horizon; a stop whose stops before it
			// changed (a re-route) starts afresh, as its old
			// predictions were of another route.
			changed := !sameStops(v.stops, req.Stops)
			next := changed && (len(v.stops) == 0 || v.stops[0].Location != req.Stops[0].Location)
			if changed {
				v.pending = carryPending(v.stops, v.pending, req.Stops)
				v.stops = append(v.stops[:0], req.Stops...)
			}
			if next {
				v.nearSince = time.Time{}
			}
			v.breaks, v.mode = req.Breaks, req.Mode
			serving := v.hasReached && req.Stops[0].Location == v.reached
			for i := range v.pending {
				if i > 0 || !serving {
					v.pending[i].Add(now, preds[i].Raw)
				}
			}
			if (v.legMade.IsZero() || next) && !serving {
				v.legMade, v.legPred = now, preds[0].Raw
			}
			v.mu.Unlock()
		}
	}
	return resp, nil
}

// carryPending returns the pending predictions of the stops of req: a
// stop of old (whose predictions are pend) keeps its predictions while the
// stops both lists hold come in the same order up to it (stops only one
// of them holds, served or added, do not count); from the first
// difference on (a re-route) they start afresh.
func carryPending(old []ETAStop, pend []eta.Pending, req []ETAStop) []eta.Pending {
	count := func(list []ETAStop) map[LonLat]int {
		m := make(map[LonLat]int, len(list))
		for _, s := range list {
			m[s.Location]++
		}
		return m
	}
	inReq, inOld := count(req), count(old)
	var a []int // old stops req still holds, in old order
	for i, s := range old {
		if inReq[s.Location] > 0 {
			inReq[s.Location]--
			a = append(a, i)
		}
	}
	out := make([]eta.Pending, len(req))
	k := 0
	for j, s := range req {
		if inOld[s.Location] == 0 {
			continue // a stop old did not hold
		}
		inOld[s.Location]--
		if k >= len(a) || old[a[k]].Location != s.Location {
			break
		}
		out[j] = pend[a[k]]
		k++
	}
	return out
}

// sameStops reports whether a vehicle's remembered stops are the
// requested ones.
func sameStops(have, req []ETAStop) bool {
	if len(have) != len(req) {
		return false
	}
	for i := range have {
		if have[i].Location != req[i].Location {
			return false
		}
	}
	return true
}

// VehicleETA re-estimates the arrivals at the remaining stops of a
// vehicle's last ETA request from its latest matched position, at now:
// stops its pings have reached are gone, the rest are predicted again.
func (l *Live) VehicleETA(id string, maxStops int) (*ETAResponse, error) {
	v := l.vehicle(id, false)
	var req ETARequest
	if v != nil {
		v.mu.Lock()
		req = ETARequest{Vehicle: id, Stops: append([]ETAStop(nil), v.stops...), Breaks: v.breaks, Mode: v.mode}
		v.mu.Unlock()
	}
	if v == nil {
		return nil, &Error{"NotFound", fmt.Sprintf("vehicle %q: unknown", id)}
	}
	if len(req.Stops) == 0 {
		return nil, &Error{"NotFound", fmt.Sprintf("vehicle %q: no remaining stops (POST /v1/eta with its stops first)", id)}
	}
	return l.ETA(&req, maxStops)
}

// appendMetrics writes the live traffic figures in the Prometheus text
// format.
func (l *Live) appendMetrics(b []byte) []byte {
	if l == nil {
		return b
	}
	gauge := func(name, help string, v float64) {
		b = append(b, "# HELP "+name+" "+help+"\n# TYPE "+name+" gauge\n"+name+" "...)
		b = strconv.AppendFloat(b, v, 'g', -1, 64)
		b = append(b, '\n')
	}
	counter := func(name, help string, v uint64) {
		b = append(b, "# HELP "+name+" "+help+"\n# TYPE "+name+" counter\n"+name+" "...)
		b = strconv.AppendUint(b, v, 10)
		b = append(b, '\n')
	}
	ready := 0.0
	if l.Ready() {
		ready = 1
	}
	gauge("lastmile_traffic_ready", "1 once traffic updates reach routing (customizable hierarchy built).", ready)
	counter("lastmile_traffic_updates_total", "Routing graph re-customizations applied.", l.updates.Load())
	counter("lastmile_traffic_customized_edges_total", "Edges whose travel time changed in the re-customizations.", l.customized.edges.Load())
	counter("lastmile_traffic_customized_ranks_total", "Hierarchy ranks recomputed by the re-customizations (bottom-up and top-down passes).", l.customized.ranks.Load())
	counter("lastmile_traffic_recycled_total", "Re-customizations that wrote into the arrays of an unreferenced earlier graph (not fresh memory).", l.customized.recycled.Load())
	counter("lastmile_traffic_full_customizations_total", "Re-customizations that laid the hierarchy's arcs out afresh (the first, and after an edge closed or opened).", l.customized.full.Load())
	gauge("lastmile_traffic_customize_seconds", "Duration of the last re-customization.", time.Duration(l.lastCustomizeNanos.Load()).Seconds())
	gauge("lastmile_traffic_update_lag_seconds", "Time from the first change of the last applied update to its use by routing.", time.Duration(l.lastLagNanos.Load()).Seconds())
	counter("lastmile_traffic_observations_total", "Traffic observations and closures accepted.", l.obsAccepted.Load())
	counter("lastmile_positions_total", "Vehicle pings accepted.", l.pingsAccepted.Load())
	var reasons []string
	l.rejected.Range(func(k, _ any) bool { reasons = append(reasons, k.(string)); return true })
	sort.Strings(reasons)
	if len(reasons) > 0 {
		b = append(b, "# HELP lastmile_live_rejected_total Observations and pings rejected, by reason.\n# TYPE lastmile_live_rejected_total counter\n"...)
		for _, r := range reasons {
			v, _ := l.rejected.Load(r)
			b = append(b, "lastmile_live_rejected_total{reason=\""+r+"\"} "...)
			b = strconv.AppendUint(b, v.(*atomic.Uint64).Load(), 10)
			b = append(b, '\n')
		}
	}
	return b
}

// legTTL is how long a routed leg between two stops is reused.
const legTTL = 5 * time.Minute

// maxCached bounds the leg and snap caches (cleared when full).
const maxCached = 200_000

// legKey is a leg between two points.
type legKey struct{ from, to LonLat }

// cachedLeg is a routed leg: its edges (eta.Leg, never modified after it
// is made), its length, and the closure count it was routed under.
type cachedLeg struct {
	leg      eta.Leg
	dist     float64
	closures uint64
	at       time.Time
}

// legCache holds routed legs between stops, for the ETAs of vans whose
// remaining stops are predicted again at every update.
type legCache struct {
	mu sync.Mutex
	m  map[legKey]cachedLeg
}

func (c *legCache) get(k legKey, closures uint64) (cachedLeg, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.m[k]
	if !ok || v.closures != closures || time.Since(v.at) > legTTL {
		return cachedLeg{}, false
	}
	return v, true
}

func (c *legCache) put(k legKey, v cachedLeg) {
	v.at = time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= maxCached {
		c.m = map[legKey]cachedLeg{}
	}
	c.m[k] = v
}

// snapCache holds snapped stop positions (the road graph does not change
// under a running server: traffic changes weights, not roads).
type snapCache struct {
	mu sync.Mutex
	m  map[LonLat]graph.Endpoint
}

// snapCached snaps pts, reusing the snaps of points seen before.
func (l *Live) snapCached(pts []LonLat) ([]graph.Endpoint, error) {
	out := make([]graph.Endpoint, len(pts))
	var miss []int
	l.snaps.mu.Lock()
	for i, p := range pts {
		if ep, ok := l.snaps.m[p]; ok {
			out[i] = ep
		} else {
			miss = append(miss, i)
		}
	}
	l.snaps.mu.Unlock()
	if len(miss) == 0 {
		return out, nil
	}
	q := make([]LonLat, len(miss))
	for k, i := range miss {
		q[k] = pts[i]
	}
	eps, _, err := l.r.Snap(q)
	if err != nil {
		// Snap all to name the failing point by its own index.
		_, _, err = l.r.Snap(pts)
		return nil, err
	}
	l.snaps.mu.Lock()
	defer l.snaps.mu.Unlock()
	if l.snaps.m == nil || len(l.snaps.m)+len(miss) > maxCached {
		l.snaps.m = map[LonLat]graph.Endpoint{}
	}
	for k, i := range miss {
		out[i] = eps[k]
		l.snaps.m[pts[i]] = eps[k]
	}
	return out, nil
}

// vehicle returns the tracking state of id, created when create is set
// and fewer than MaxVehicles are tracked (nil otherwise, or when unknown).
func (l *Live) vehicle(id string, create bool) *vehicle {
	l.mu.Lock()
	defer l.mu.Unlock()
	v := l.vehicles[id]
	if v == nil && create && len(l.vehicles) < l.cfg.MaxVehicles {
		v = &vehicle{}
		l.vehicles[id] = v
	}
	return v
}
