// Package dispatch is the state of a delivery day: shipments and their
// timelines, day plans with a route per van, the live status of every stop
// and the events that describe each change, with the rules that decide
// them. It holds no HTTP: the engine's handlers decode requests, call a
// Service and encode what it returns. State lives in engine/store; every
// change and the events it causes are written in one transaction, so an
// event exists exactly when its state change does.
//
// A stop's status moves planned → out_for_delivery → arrived → delivered
// or failed (or cancelled, or handed_over to another van). The engine
// emits, per shipment and timed by the ping or status update that caused
// them:
//
//   - out_for_delivery when the van leaves its start with the parcel
//     (its first ping beyond Config.DepartRadius of the start);
//   - stops_away when the stops still to serve before this one first drop
//     to a configured count (default 5, 3, 1), once per count;
//   - arriving_soon once, when the predicted arrival comes within
//     Config.ArrivingSoon (default 30 min), with the P10/P90 window;
//   - delayed when the predicted arrival passes the end of the promised
//     window; it is re-armed only once the prediction is back
//     Config.DelayHysteresis before the end, so a prediction hovering at
//     the boundary fires once; eta_changed when the prediction moves by
//     more than Config.ETAChange from the one last published;
//   - arrived when the van's matched position stays within
//     Config.ArriveRadius of the stop for Config.ArriveDwell (timed at the
//     first ping of that dwell): a van passing by or GPS jitter does not
//     fire it; a delivered or failed status without it fires it first;
//   - delivered and failed from the driver's status update;
//   - rerouted when the order of a van's remaining stops changes, and for
//     a stop handed to another van (Config.Handover), with that van.
package dispatch

import (
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/lastmile/lastmile/engine/blob"
	"github.com/lastmile/lastmile/engine/pod"
	"github.com/lastmile/lastmile/engine/problem"
	"github.com/lastmile/lastmile/engine/store"
	"github.com/lastmile/lastmile/vrp"
)

// Stop statuses.
const (
	StatusPlanned        = "planned"
	StatusOutForDelivery = "out_for_delivery"
	StatusArrived        = "arrived"
	StatusDelivered      = "delivered"
	StatusFailed         = "failed"
	StatusCancelled      = "cancelled"
	// StatusHandedOver ends a stop whose shipment went to another van of
	// the plan (Config.Handover): a new stop on that van, with the same
	// attempt number, carries on; the shipment's status is the new
	// stop's.
	StatusHandedOver = "handed_over"
	// StatusCreated is a shipment's status before any milestone.
	StatusCreated = "created"
)

// Event types the engine emits (the caller's milestones are in
// CallerEventTypes).
const (
	EventOutForDelivery = "out_for_delivery"
	EventStopsAway      = "stops_away"
	EventArrivingSoon   = "arriving_soon"
	EventETAChanged     = "eta_changed"
	EventDelayed        = "delayed"
	EventArrived        = "arrived"
	EventDelivered      = "delivered"
	EventFailed         = "failed"
	EventRerouted       = "rerouted"
)

// CallerEventTypes are the milestones before the last mile that the
// business's systems may post to a shipment's timeline.
var CallerEventTypes = []string{"shipped", "at_facility", "in_transit", "at_depot", "exception"}

// FailReasons are the reasons a delivery attempt may fail with.
var FailReasons = []string{"not_home", "refused", "address_not_found", "access", "damaged", "other"}

// Error is a failure the caller can act on (see problem.Error).
type Error = problem.Error

func errorf(code, format string, args ...any) error { return problem.Errorf(code, format, args...) }

// PredictStop is one remaining stop given to Config.Predict.
type PredictStop struct {
	Location [2]float64 // lon, lat
	Service  time.Duration
	// Window is the promised window in Unix seconds (zero: none); a van
	// early at the stop waits for it.
	Window [2]int64
}

// Prediction is the forecast arrival at one stop, Unix seconds.
type Prediction struct {
	Arrival, P10, P90 int64
}

// Budget bounds one solve: a time limit, or a number of solver
// iterations per worker. With Iterations > 0 and no Time the solution
// depends only on the problem (vrp.Options).
type Budget struct {
	Time       time.Duration
	Iterations int
}

// rerouteBudget is the budget of one re-routing solve: RerouteTime
// divided by parts, or RerouteIterations.
func (c *Config) rerouteBudget(parts int) Budget {
	if c.RerouteIterations > 0 {
		return Budget{Iterations: c.RerouteIterations}
	}
	return Budget{Time: c.RerouteTime / time.Duration(parts)}
}

// Config configures a Service. Zero durations and counts take the
// defaults given.
type Config struct {
	// Store holds the state (required).
	Store *store.Store
	// Predict forecasts a vehicle's arrivals from pos at now through
	// stops in order (required for ETAs; the engine walks the live road
	// graph with eta.Traffic).
	Predict func(vehicle string, pos [2]float64, now time.Time, stops []PredictStop) ([]Prediction, error)
	// ClosedAhead, when set, returns the index of the first of stops (in
	// order from pos) whose leg enters a road closed at now, or -1 when
	// none does (the engine routes the legs on the free-flow graph, the
	// road the van would take were nothing closed). At the first ETA
	// update after a road closure, a van whose road it closes is
	// re-routed whatever its ETAs moved (see IncidentShift).
	ClosedAhead func(vehicle string, pos [2]float64, now time.Time, stops []PredictStop) (int, error)
	// Solve solves a VRP whose locations are coordinates, on the live
	// road graph, within the budget (required for POST /v1/plans without
	// a sequence).
	Solve func(p *vrp.Problem, b Budget) (*vrp.Solution, error)
	// SolveTime is the solver's time for a day plan (default 2 s).
	SolveTime time.Duration
	// RerouteIterations, when positive, bounds the solves of re-routing
	// and of window requests by solver iterations per worker instead of
	// RerouteTime, so that the same pings give the same routes whatever
	// the machine's load (benchmarks and tests that compare runs).
	RerouteIterations int
	// StopsAway are the counts of stops before a shipment's stop at which
	// stops_away fires (default 5, 3, 1).
	StopsAway []int
	// ArrivingSoon is the horizon of arriving_soon (default 30 min).
	ArrivingSoon time.Duration
	// DelayHysteresis is how far before the window's end the prediction
	// must come back before delayed can fire again (default 10 min).
	DelayHysteresis time.Duration
	// DelayMargin and DelayFinal keep delayed from firing on a prediction
	// that is late by less than its own error: it fires when the predicted
	// arrival is past the window's end by at least DelayMargin times the
	// time still to go, a service in progress counted whole (default 0.2:
	// the ETAs' error grows with the horizon, about 10-20 % of it on the
	// simulated days). Over the last DelayFinal before the window's end
	// (default 2 min) that margin shrinks in proportion to the time left,
	// to nothing at the end, and the ETAs of such a close call are updated
	// at every ping, so a stop that ends up late is still warned before
	// its window closes. Porto seeds 1-3 (bench/RESULTS.md): with any
	// lateness firing over the last 10 min, 9 of 17 delayed events were
	// false alarms, for arrivals 0-2 min before the window's end predicted
	// 0-2 min after it up to 10 min ahead; over the last 2 min, 5 of 13,
	// every late stop still warned. Session 14, seeds 17-32: any lateness
	// over the last 2 min with close calls updated at every ping, 9 false
	// alarms of 69, most at exactly 2 min before the end while the van was
	// still serving the stop before (services of 2-3 min for 4 declared).
	DelayMargin float64
	DelayFinal  time.Duration
	// ETAChange is the move of the predicted arrival that fires
	// eta_changed (default 15 min).
	ETAChange time.Duration
	// ArriveRadius (m) and ArriveDwell make an arrival: the van's position
	// stays within the radius of the stop for the dwell (default 40 m,
	// 30 s).
	ArriveRadius float64
	ArriveDwell  time.Duration
	// DepartRadius (m): a van further than this from its route's start is
	// out for delivery (default 150 m).
	DepartRadius float64
	// ETAInterval is the least ping time between two ETA updates of a van
	// (default 60 s); a stop's status change updates them at once.
	ETAInterval time.Duration
	// RerouteSlack: a van is behind when an open stop is predicted past
	// its window's end by more than this (default 5 min; negative turns
	// re-routing off). RerouteDrift, when positive: or when its last stop
	// is predicted this much later than at the last (re)plan (default off:
	// without windows at stake a new order rarely wins back the time, and
	// on a congested morning nearly every van drifts).
	// RerouteInterval is the least ping time between two re-routings of a
	// van (default 10 min); RerouteTime the solver's time (default 100 ms).
	RerouteSlack, RerouteDrift, RerouteInterval, RerouteTime time.Duration
	// IncidentShift: at the first ETA update after a road closure
	// (RoadsClosed), a van whose open stops moved later by at least this
	// much, or whose road ahead is closed (ClosedAhead), is re-routed at
	// once, late or not and whatever RerouteInterval: the solver sees
	// the closure in its matrix. When the best order is the same, the
	// van's road still changed: the route's version grows and rerouted
	// fires for the stops that moved, with reason "closure" (default
	// 1 min; negative: off).
	IncidentShift time.Duration
	// Handover, when set, lets a van that has fallen behind hand some of
	// its late stops to a van of the same plan near them: when a re-route
	// check still finds a stop more than RerouteSlack late (at most every
	// RerouteInterval of a van's ping time), up to HandoverMax of its late
	// stops move to the van (within HandoverRadius m of them) whose
	// predicted lateness, summed with the late van's over the open stops
	// of both, drops the most, by HandoverGain at least, with room for
	// their parcels (see handOver).
	// Default off, 3 km, 10 min, 3 stops. The engine reassigns the stops;
	// getting the parcels from one van to the other (a meet of the two
	// drivers) is left to them and to the dispatcher.
	Handover       bool
	HandoverRadius float64
	HandoverGain   time.Duration
	HandoverMax    int
	// VanStops: the recipient's page shows the van's position while the
	// shipment's stop is within this many stops of the van (default 3;
	// 0 before any is out for delivery, and never after the stop ended).
	VanStops int
	// LinkTTL is how long a tracking link keeps working after its
	// shipment's attempt ended (default 7 days).
	LinkTTL time.Duration
	// Offers are the delivery windows a recipient may pick from.
	Offers WindowOffers
	// Blobs stores proof-of-delivery images (required for RecordPod).
	Blobs blob.Store
	// PodLimits bounds proof-of-delivery images (zero: pod's defaults).
	PodLimits pod.Limits
	// PodRadius (m): a proof geotagged farther than this from its stop is
	// flagged (default 150 m).
	PodRadius float64
	// Logger receives errors and progress (nil: discard). Personal data is
	// never logged.
	Logger *slog.Logger
	// Now returns the current time (tests); nil means time.Now.
	Now func() time.Time
}

func (c Config) withDefaults() Config {
	if c.SolveTime <= 0 {
		c.SolveTime = 2 * time.Second
	}
	if len(c.StopsAway) == 0 {
		c.StopsAway = []int{5, 3, 1}
	}
	if c.ArrivingSoon <= 0 {
		c.ArrivingSoon = 30 * time.Minute
	}
	if c.DelayHysteresis <= 0 {
		c.DelayHysteresis = 10 * time.Minute
	}
	if c.DelayMargin <= 0 {
		c.DelayMargin = 0.2
	}
	if c.DelayFinal <= 0 {
		c.DelayFinal = 2 * time.Minute
	}
	if c.ETAChange <= 0 {
		c.ETAChange = 15 * time.Minute
	}
	if c.ArriveRadius <= 0 {
		c.ArriveRadius = 40
	}
	if c.ArriveDwell <= 0 {
		c.ArriveDwell = 30 * time.Second
	}
	if c.DepartRadius <= 0 {
		c.DepartRadius = 150
	}
	if c.ETAInterval <= 0 {
		c.ETAInterval = 60 * time.Second
	}
	if c.RerouteSlack == 0 {
		c.RerouteSlack = 5 * time.Minute
	}
	if c.IncidentShift == 0 {
		c.IncidentShift = time.Minute
	}
	if c.RerouteInterval <= 0 {
		c.RerouteInterval = 10 * time.Minute
	}
	if c.RerouteTime <= 0 {
		c.RerouteTime = 100 * time.Millisecond
	}
	if c.HandoverRadius <= 0 {
		c.HandoverRadius = 3000
	}
	if c.HandoverGain <= 0 {
		c.HandoverGain = 10 * time.Minute
	}
	if c.HandoverMax <= 0 {
		c.HandoverMax = 3
	}
	if c.VanStops <= 0 {
		c.VanStops = 3
	}
	if c.LinkTTL <= 0 {
		c.LinkTTL = 7 * 24 * time.Hour
	}
	c.Offers = c.Offers.withDefaults()
	if c.PodRadius <= 0 {
		c.PodRadius = 150
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Service runs the dispatch state of one deployment. It is safe for
// concurrent use; several Services (replicas) may share one PostgreSQL
// store: every change locks the rows it reads first.
type Service struct {
	cfg Config
	st  *store.Store
	log *slog.Logger
	// podSlots bounds the proof images checked at once.
	podSlots chan struct{}
	// incident is when (Unix ms, the service's clock) the latest road
	// closure was reported to this process (RoadsClosed); a route checks
	// its ETAs once after it. A restarted process starts at 0, so routes
	// are not checked again for closures they have seen.
	incident atomic.Int64
	// runs caches the vehicles' route state between batches of pings.
	runs *runCache
}

// RoadsClosed tells the service that roads were closed (the live traffic
// now routes around them): at its next ETA update, a van whose open stops
// are predicted later by IncidentShift or more is re-routed at once (see
// Config.IncidentShift).
func (s *Service) RoadsClosed() {
	t := s.cfg.Now().UnixMilli()
	for {
		old := s.incident.Load()
		if t <= old {
			t = old + 1 // two closures in one millisecond both count
		}
		if s.incident.CompareAndSwap(old, t) {
			return
		}
	}
}

// maxCachedRuns bounds the vehicles whose route state is cached (about
// 10 kB each with 20 stops).
const maxCachedRuns = 20_000

// New returns a Service on cfg.Store.
func New(cfg Config) (*Service, error) {
	if cfg.Store == nil {
		return nil, errors.New("dispatch: a store is needed")
	}
	for _, c := range cfg.StopsAway {
		if c < 1 {
			return nil, fmt.Errorf("dispatch: stops_away count %d: want counts of at least 1", c)
		}
	}
	cfg = cfg.withDefaults()
	return &Service{cfg: cfg, st: cfg.Store, log: cfg.Logger, podSlots: make(chan struct{}, 2),
		runs: newRunCache(maxCachedRuns)}, nil
}

// Store returns the Service's store.
func (s *Service) Store() *store.Store { return s.st }

func (s *Service) now() int64 { return s.cfg.Now().Unix() }
