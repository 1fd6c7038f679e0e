package bench

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/lastmile/lastmile/datasets/sim"
	"github.com/lastmile/lastmile/engine"
	"github.com/lastmile/lastmile/engine/dispatch"
	"github.com/lastmile/lastmile/engine/store"
	"github.com/lastmile/lastmile/graph"
)

// DispatchConfig configures Dispatch. Zero values mean the defaults given.
type DispatchConfig struct {
	// Graph is the road graph the day is simulated on (required). An
	// in-process server routes on it; a running server (URL) must have
	// been started on the same extract.
	Graph *graph.Graph
	// URL is the base URL of a running server (http://host:port); empty
	// starts one in-process on Graph, on a loopback port, whose clock
	// follows the simulated day (see Dispatch).
	URL string
	// AdminKey is an admin key of the server at URL (its
	// LASTMILE_ADMIN_KEY); the run creates a dispatcher key and one driver
	// key per van with it. Ignored in-process (the run makes its own).
	AdminKey string
	// DB is a postgres:// URL for the in-process server's state (default:
	// SQLite in a temporary folder removed after the run).
	DB string
	// Rules configures the in-process server's dispatch rules (zero: the
	// dispatch package's defaults); its Store, Predict, Solve, Logger and
	// Now are set by the server and the run.
	Rules dispatch.Config
	// Seed draws the world and the day.
	Seed uint64
	// Date is midnight UTC of the simulated day (default Monday
	// 2026-01-05). A running server (URL) keeps its own clock, which must
	// be past the day's shift: stop statuses timed in its future are
	// refused.
	Date time.Time
	// Day overrides the simulated day (sim.DayConfig; its Seed and Date
	// are set from Seed and Date). The zero value is the day: 10
	// vans, 300 shipments with 2-hour windows, pings every 10 s with 5 m
	// of GPS noise (from 30 min before the departure, at the depot, unless
	// DepotPings is set), 2 recipients not at home, 3 drive-bys, one
	// closure.
	Day sim.DayConfig
	// World overrides the simulated world (nil: sim.DefaultConfig; its
	// Start, Days and Seed are set by the run).
	World *sim.Config
	// SolveTime is the solver's time for the day plan (default 5 s).
	SolveTime time.Duration
	// Iterations, when positive, bounds the day plan's solve by solver
	// iterations per worker instead of SolveTime, so that the plan is the
	// same on every run of a seed (with Rules.RerouteIterations, the
	// re-routes too).
	Iterations int
	// KeepPlan makes the simulated drivers drive the first plan's order
	// all day, whatever the server re-routes. By default each driver's
	// phone reads its van (GET /v1/vehicles/{id}) after each of its
	// uploads and statuses, and when the server changed the order of the
	// van's remaining stops the driver follows it from the next departure
	// (sim.Day.RunReplanned), as a courier with the app would.
	KeepPlan bool
	// Batch is the span of simulated time one upload of a van's pings
	// covers (default 60 s); an upload holds at most 100 pings.
	Batch time.Duration
	// Prefix goes before every tracking number and vehicle name, so runs
	// sharing a server or a database do not collide (default: none on a
	// temporary SQLite store, else "b<Unix time>-").
	Prefix string
	// RetryFor bounds how long one call is retried after connection
	// errors and 502/503/504 answers (default 2 min: a server restart).
	RetryFor time.Duration
	// Logger receives progress (nil = discard); an in-process server logs
	// there too.
	Logger *slog.Logger

	// Server edits the in-process server's configuration before it starts
	// (its notifications, for instance); the run sets its Store, AdminKey
	// and Logger, and the clocks of Rules and Live. Ignored with URL.
	Server func(*engine.ServerConfig)
	// Shipment edits the body of shipment i's POST /v1/shipments (its
	// notification preferences or time zone, for instance) before it is
	// sent; i indexes the simulated day's shipments.
	Shipment func(i int, in *dispatch.ShipmentInput)
	// Webhooks are URLs the run subscribes to every event (POST
	// /v1/webhooks with events ["*"] and the dispatcher key) before it
	// creates the shipments; DispatchResult has their ids and secrets.
	// After the replay the run waits, for DrainFor at most, until none of
	// them has a pending delivery (GET /v1/webhooks/{id}/deliveries).
	Webhooks []string
	// Drain makes the notifications of an in-process server independent
	// of the speed of its delivery workers: after each replayed action
	// the run waits until the outbox holds no e-mail or SMS that a worker
	// could send now (due by the notification clock, Notify.Now, and not
	// queued behind an earlier one of its shipment) or is sending, so
	// that every recipient notification an action causes is sent (or
	// skipped) before the next action; what is sent then depends only on
	// the events, not on when the workers got to them. After the replay
	// (and AfterReplay) it waits until nothing at all is pending. Each
	// wait is bounded by DrainFor. Ignored with URL.
	Drain bool
	// DrainFor bounds each wait for the outbox (default 1 min).
	DrainFor time.Duration
	// Step, when set, is called after each replayed action (after
	// Drain's wait) with the action's simulated time; an error ends the
	// run.
	Step func(ctx context.Context, api DispatchAPI, at time.Time) error
	// Planned, when set, is called once the day is planned, before the
	// replay: what a demo prints for a newcomer to watch.
	Planned func(p DispatchPlanned)
	// AfterReplay, when set, is called once the replay is over, before
	// the final waits for the outbox and the reading of the event log; an
	// error ends the run.
	AfterReplay func(ctx context.Context, api DispatchAPI) error
}

// DispatchPlanned is the planned day as the Planned hook gets it: each
// vehicle's tracking numbers in stop order, the tracking links
// ("/track/<token>") and each vehicle's driver key.
type DispatchPlanned struct {
	URL          string
	Routes       map[string][]string
	TrackingURLs map[string]string
	DriverKeys   map[string]string
}

// DispatchAPI is what the hooks of a run get: the server's base URL
// (http://host:port), the run's dispatcher key and the ids of the
// subscriptions made for DispatchConfig.Webhooks.
type DispatchAPI struct {
	URL, Key string
	Webhooks []string
}

// DispatchResult holds the figures of one simulated dispatch day (see
// Dispatch for their definitions).
type DispatchResult struct {
	// Server is where the day ran ("in-process sqlite", or the URL).
	Server string
	Seed   uint64
	Date   time.Time
	// Vans and Shipments of the day; VansUsed the vans the plan gave stops,
	// Unassigned the shipments it left out, Stops the stops served in the
	// truth (the denominator of the per-stop figures).
	Vans, VansUsed, Shipments, Unassigned, Stops int
	// Late counts the stops whose truth arrival is after their window's
	// end; DriveBys the truth's passes by a stop served later.
	Late, DriveBys int
	// Closure describes the day's road closure ("" when none): the OSM
	// way, the van whose planned route it is on and when it starts.
	Closure      string
	ClosureVan   string
	ClosureStart time.Time
	// ClosureMet are the vans whose road, as the drivers follow it when
	// the closure starts, enters the closed road (the truth then turns
	// them away at it). Usually ClosureVan alone; none when re-routes
	// before the closure took that van off the road (the sim chooses the
	// closure on the plan as first solved).
	ClosureMet []string
	// Depot is the depot's [lon, lat].
	Depot [2]float64

	// Pings sent in PingRequests uploads; the server accepted
	// PingsAccepted; Statuses stop statuses posted.
	Pings, PingRequests, PingsAccepted, Statuses int
	// PingsRejected counts what the server rejected, by its reason (the
	// traversal_* reasons are edge traversals the traffic model refused,
	// not pings).
	PingsRejected map[string]int
	// Events is the number of events of the run's shipments, EventTypes
	// per type.
	Events     int
	EventTypes map[string]int

	// Hard invariants: shipments whose sequence numbers are not 1..n
	// (SeqErrors), events repeated or once-only types seen twice
	// (Duplicates), events out of order (OrderErrors); Problems describes
	// the first ones. NotHomeFailed counts failed events with reason
	// not_home.
	SeqErrors, Duplicates, OrderErrors int
	Problems                           []string
	NotHomeFailed                      int

	// arriving_soon per served stop: fired 20-40 min before the truth
	// arrival (SoonHits), more than 40 min before (SoonEarly), less than
	// 20 min before or after (SoonLate), never (SoonMissing). SoonLeadMin
	// holds the lead of each fired one in minutes, for the quantiles.
	SoonHits, SoonEarly, SoonLate, SoonMissing int
	SoonLeadMin                                []float64
	// LateWarned counts the late stops with a delayed event timed before
	// their window's end; Delayed the delayed events, DelayedFalse those
	// of stops that end up not late.
	LateWarned, Delayed, DelayedFalse int

	// arrived per served stop: within 90 s of the truth arrival
	// (ArrivedOnTime), more than 90 s before (ArrivedEarly), more than
	// 90 s after (ArrivedLate), never (ArrivedMissing). DriveByArrivals
	// counts drive-by stops with an arrived event within 5 min of the pass
	// and more than 90 s before their truth arrival.
	ArrivedOnTime, ArrivedEarly, ArrivedLate, ArrivedMissing int
	DriveByArrivals                                          int

	// Rerouted reports a rerouted event at or after the closure's start
	// for the shipments of every van in ClosureMet (false when none is);
	// RerouteAfter is the time from the closure's start to the first one
	// of the last van, RerouteBeforeDetour whether each came before its
	// van reached the closed road. ReroutedEvents counts
	// every rerouted event, ReroutedVans the vans they concern.
	Rerouted            bool
	RerouteAfter        time.Duration
	RerouteBeforeDetour bool
	ReroutedEvents      int
	ReroutedVans        []string

	// NotRerouted repeats the per-stop figures over the stops that got no
	// rerouted event (with KeepPlan the simulated vans keep the plan's
	// order, so after a re-routing the server predicts an order the van
	// does not drive).
	NotRerouted DispatchFigures
	// Replans counts the re-routes the simulated drivers followed (their
	// phone saw a new order of the van's remaining stops).
	Replans int
	// Lateness sums how late the late stops were served (truth);
	// Handovers counts the stops handed to another van (dispatch.Config.Handover).
	Lateness  time.Duration
	Handovers int

	// Uploads: wall time of the replay, pings per second over it, latency
	// of POST /v1/positions (p50, p99), calls retried.
	ReplayTime    time.Duration
	PingRate      float64
	PingP50       time.Duration
	PingP99       time.Duration
	Retries       int
	PlanTime      time.Duration // POST /v1/plans (the server's solve)
	TruthTime     time.Duration // sim: NewWorld, NewDay, Day.Run and RunReplanned
	Total         time.Duration
	PlannedLate   int // stops the server's plan itself puts after the window's end
	StatusRefused int // statuses the server refused (4xx)

	// Details holds one entry per served stop, by van and position.
	Details []DispatchStop

	// EventLog holds the run's events as GET /v1/events listed them, in
	// cursor order.
	EventLog []dispatch.Event
	// TrackingURLs maps the tracking number of each shipment created to
	// the tracking_url its creation answered ("/track/<token>").
	TrackingURLs map[string]string
	// WebhookIDs and WebhookSecrets are the subscriptions made for
	// DispatchConfig.Webhooks, in its order.
	WebhookIDs, WebhookSecrets []string
	// DrainTime is the wall time spent waiting for the outbox (Drain and
	// the final waits).
	DrainTime time.Duration
}

// DispatchStop is what happened at one served stop: the truth and the
// server's events (Unix seconds, 0 when absent).
type DispatchStop struct {
	Tracking string
	// Van and Position in the van's planned order.
	Van      string
	Position int
	// Location is the stop's [lon, lat].
	Location [2]float64
	// Arrive and Depart are the truth arrival and departure, WindowEnd
	// the promised window's end.
	Arrive, Depart, WindowEnd int64
	// Soon is the time of arriving_soon and SoonETA the arrival it
	// predicted; Arrived the time of arrived; Delayed the times of the
	// delayed events and DelayedETA the arrivals they predicted; Rerouted
	// the number of rerouted events.
	Soon, SoonETA, Arrived int64
	Delayed, DelayedETA    []int64
	Rerouted               int
	// DriveBy is the time of the van's pass by the stop before serving
	// it (0: none).
	DriveBy int64
}

// DispatchFigures are the per-stop counts of a subset of the stops.
type DispatchFigures struct {
	// Stops in the subset; SoonHits with arriving_soon 20-40 min before
	// the truth arrival; ArrivedOnTime with arrived within 90 s of it;
	// Late after their window's end, LateWarned of them warned before;
	// Delayed events, DelayedFalse of them for stops not late.
	Stops, SoonHits, ArrivedOnTime, Late, LateWarned, Delayed, DelayedFalse int
}

// share returns a/b, NaN when b is 0.
func share(a, b int) float64 {
	if b == 0 {
		return math.NaN()
	}
	return float64(a) / float64(b)
}

// ArrivingSoonShare is the share of served stops whose arriving_soon came
// 20 to 40 minutes before the truth arrival.
func (r *DispatchResult) ArrivingSoonShare() float64 { return share(r.SoonHits, r.Stops) }

// DelayedRecall is the share of late stops warned by delayed before
// their window's end (NaN without late stops).
func (r *DispatchResult) DelayedRecall() float64 { return share(r.LateWarned, r.Late) }

// DelayedFalseShare is the share of delayed events whose stop ends up not
// late (0 without delayed events).
func (r *DispatchResult) DelayedFalseShare() float64 {
	if r.Delayed == 0 {
		return 0
	}
	return share(r.DelayedFalse, r.Delayed)
}

// ArrivedShare is the share of served stops whose arrived event came
// within 90 s of the truth arrival.
func (r *DispatchResult) ArrivedShare() float64 { return share(r.ArrivedOnTime, r.Stops) }

// ClosureRerouted reports whether the closure target holds: every van
// the closure meets got rerouted, or the closure met no van (ClosureMet),
// or the day had no closure.
func (r *DispatchResult) ClosureRerouted() bool {
	return r.Rerouted || r.Closure == "" || r.closureMetNone()
}

// closureMetNone reports a closure on no van's road when it starts.
func (r *DispatchResult) closureMetNone() bool { return r.Closure != "" && len(r.ClosureMet) == 0 }

// Summary is the one-line, stable summary of the figures.
func (r *DispatchResult) Summary() string {
	// The summary's own percentage form, without pct's space.
	pct := func(v float64) string {
		if math.IsNaN(v) {
			return "n/a"
		}
		return fmt.Sprintf("%.1f%%", 100*v)
	}
	rr := "no"
	switch {
	case r.Rerouted:
		rr = "yes"
	case r.Closure == "" || r.closureMetNone():
		rr = "n/a"
	}
	return fmt.Sprintf("dispatch: stops %d arriving_soon_20_40 %s delayed_recall %s delayed_false %s arrived_90s %s driveby_arrivals %d rerouted %s",
		r.Stops, pct(r.ArrivingSoonShare()), pct(r.DelayedRecall()), pct(r.DelayedFalseShare()), pct(r.ArrivedShare()), r.DriveByArrivals, rr)
}

// String returns the table WriteDispatch prints.
func (r *DispatchResult) String() string {
	var b strings.Builder
	WriteDispatch(&b, r)
	return b.String()
}

// pct formats a share as a percentage, "n/a" for NaN.
func pct(v float64) string {
	if math.IsNaN(v) {
		return "n/a"
	}
	return fmt.Sprintf("%.1f %%", 100*v)
}

// check says whether a target is met.
func check(ok bool) string {
	if ok {
		return "met"
	}
	return "NOT met"
}

// WriteDispatch prints the figures of a run as a table, then Summary.
func WriteDispatch(w io.Writer, r *DispatchResult) {
	fmt.Fprintf(w, "server %s, seed %d, day %s: %d vans (%d used), %d shipments (%d unassigned), %d stops served, %d late (%.0f min in all), %d planned late, %d drive-bys, %d handed over\n",
		r.Server, r.Seed, r.Date.Format(time.DateOnly), r.Vans, r.VansUsed, r.Shipments, r.Unassigned, r.Stops, r.Late, r.Lateness.Minutes(), r.PlannedLate, r.DriveBys, r.Handovers)
	if r.Closure != "" {
		fmt.Fprintf(w, "closure: %s on the route of %s from %s\n", r.Closure, r.ClosureVan, r.ClosureStart.Format(time.TimeOnly))
	}
	fmt.Fprintf(w, "pings %d in %d uploads (accepted %d, rejected %v), statuses %d (refused %d), events %d %v\n",
		r.Pings, r.PingRequests, r.PingsAccepted, r.PingsRejected, r.Statuses, r.StatusRefused, r.Events, r.EventTypes)
	fmt.Fprintf(w, "time: truth %.1fs, plan %.1fs, replay %.1fs (%.0f pings/s, upload p50 %v p99 %v, %d retries), total %.1fs\n\n",
		r.TruthTime.Seconds(), r.PlanTime.Seconds(), r.ReplayTime.Seconds(), r.PingRate, r.PingP50.Round(time.Microsecond),
		r.PingP99.Round(time.Microsecond), r.Retries, r.Total.Seconds())
	fmt.Fprintf(w, "| figure | value | detail | target |\n|---|---:|---|---|\n")
	fmt.Fprintf(w, "| sequence gaps, duplicates, order errors | %d, %d, %d | per shipment | 0: %s |\n", r.SeqErrors, r.Duplicates, r.OrderErrors,
		check(r.SeqErrors+r.Duplicates+r.OrderErrors == 0))
	q := func(p float64) float64 {
		if len(r.SoonLeadMin) == 0 {
			return math.NaN()
		}
		s := slices.Sorted(slices.Values(r.SoonLeadMin))
		return s[min(len(s)-1, int(p*float64(len(s))))]
	}
	fmt.Fprintf(w, "| arriving_soon 20-40 min before arrival | %s | %d hit, %d earlier, %d later, %d missing; lead p10/p50/p90 %.1f/%.1f/%.1f min | >= 90 %%: %s |\n",
		pct(r.ArrivingSoonShare()), r.SoonHits, r.SoonEarly, r.SoonLate, r.SoonMissing, q(0.1), q(0.5), q(0.9), check(r.ArrivingSoonShare() >= 0.9))
	fmt.Fprintf(w, "| late stops warned before the window ends | %s | %d of %d | 100 %%: %s |\n",
		pct(r.DelayedRecall()), r.LateWarned, r.Late, check(r.LateWarned == r.Late))
	fmt.Fprintf(w, "| delayed false alarms | %s | %d of %d events | <= 10 %%: %s |\n",
		pct(r.DelayedFalseShare()), r.DelayedFalse, r.Delayed, check(r.DelayedFalseShare() <= 0.1))
	fmt.Fprintf(w, "| arrived within 90 s | %s | %d on time, %d early, %d late, %d missing | >= 95 %%: %s |\n",
		pct(r.ArrivedShare()), r.ArrivedOnTime, r.ArrivedEarly, r.ArrivedLate, r.ArrivedMissing, check(r.ArrivedShare() >= 0.95))
	fmt.Fprintf(w, "| arrived at a drive-by | %d | of %d drive-bys | 0: %s |\n", r.DriveByArrivals, r.DriveBys, check(r.DriveByArrivals == 0))
	rr := "no"
	switch {
	case r.Rerouted:
		rr = fmt.Sprintf("yes (%s), %v after the closure starts", strings.Join(r.ClosureMet, ", "), r.RerouteAfter.Round(time.Second))
		if r.RerouteBeforeDetour {
			rr += ", before the van reaches it"
		}
	case r.closureMetNone():
		rr = "n/a: the closure is on no van's road when it starts"
	}
	fmt.Fprintf(w, "| closure van rerouted | %s | %d rerouted events, vans %v; %d re-routes followed by the drivers | yes: %s |\n", rr, r.ReroutedEvents,
		r.ReroutedVans, r.Replans, check(r.ClosureRerouted()))
	fmt.Fprintf(w, "| failed not_home | %d | | 2 |\n", r.NotHomeFailed)
	if n := r.NotRerouted; n.Stops < r.Stops {
		fmt.Fprintf(w, "\nover the %d stops never rerouted: arriving_soon 20-40 min %s, arrived within 90 s %s, late warned %d of %d, delayed false alarms %d of %d\n",
			n.Stops, pct(share(n.SoonHits, n.Stops)), pct(share(n.ArrivedOnTime, n.Stops)), n.LateWarned, n.Late, n.DelayedFalse, n.Delayed)
	}
	for _, p := range r.Problems {
		fmt.Fprintf(w, "problem: %s\n", p)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, r.Summary())
}

// WriteDispatchDays writes the figures of several simulated days summed
// over the days, one line a day and a line of totals: the per-stop
// figures are proportions of events and stops too rare in one day (0-9
// late stops) to judge a target by.
func WriteDispatchDays(w io.Writer, days []*DispatchResult) {
	var t DispatchResult
	fmt.Fprintf(w, "| seed | stops | arriving_soon 20-40 min | late warned | delayed false alarms | arrived within 90 s | drive-by arrivals | seq errors | closure rerouted | lateness | handed over |\n|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|\n")
	line := func(name string, r *DispatchResult, rerouted string) {
		fmt.Fprintf(w, "| %s | %d | %s | %d of %d | %d of %d (%s) | %s | %d | %d | %s | %.0f min | %d |\n", name, r.Stops, pct(r.ArrivingSoonShare()),
			r.LateWarned, r.Late, r.DelayedFalse, r.Delayed, pct(r.DelayedFalseShare()), pct(r.ArrivedShare()), r.DriveByArrivals,
			r.SeqErrors+r.Duplicates+r.OrderErrors, rerouted, r.Lateness.Minutes(), r.Handovers)
	}
	rerouted, unmet := 0, 0
	for _, r := range days {
		t.Stops += r.Stops
		t.SoonHits += r.SoonHits
		t.Late += r.Late
		t.Lateness += r.Lateness
		t.Handovers += r.Handovers
		t.LateWarned += r.LateWarned
		t.Delayed += r.Delayed
		t.DelayedFalse += r.DelayedFalse
		t.ArrivedOnTime += r.ArrivedOnTime
		t.DriveByArrivals += r.DriveByArrivals
		t.SeqErrors += r.SeqErrors + r.Duplicates + r.OrderErrors
		rr := "no"
		switch {
		case r.closureMetNone():
			rr = "n/a"
			unmet++
		case r.ClosureRerouted():
			rr = "yes"
			rerouted++
		}
		line(strconv.FormatUint(r.Seed, 10), r, rr)
	}
	line(fmt.Sprintf("all %d", len(days)), &t, fmt.Sprintf("%d of %d", rerouted, len(days)-unmet))
	if unmet > 0 {
		fmt.Fprintf(w, "\nclosure rerouted: n/a on %d days, where re-routes before the closure had taken every van off the closed road\n", unmet)
	}
	fmt.Fprintf(w, "\ntargets over the days: arriving_soon >= 90 %%: %s; late warned 100 %%: %s; delayed false alarms <= 10 %%: %s; arrived >= 95 %%: %s; no drive-by arrival: %s\n",
		check(t.ArrivingSoonShare() >= 0.9), check(t.LateWarned == t.Late), check(t.DelayedFalseShare() <= 0.1),
		check(t.ArrivedShare() >= 0.95), check(t.DriveByArrivals == 0))
}

// maxBatchPings caps the pings of one upload.
const maxBatchPings = 100

// simClock is the clock of an in-process server: it follows the replay.
type simClock struct{ ns atomic.Int64 }

// Now returns the simulated time.
func (c *simClock) Now() time.Time { return time.Unix(0, c.ns.Load()) }

// advance moves the clock to t unless it is there already.
func (c *simClock) advance(t time.Time) {
	for {
		old := c.ns.Load()
		if t.UnixNano() <= old || c.ns.CompareAndSwap(old, t.UnixNano()) {
			return
		}
	}
}

// Dispatch drives one simulated delivery day through the HTTP API only,
// as a dispatch system and the drivers' phones would, and grades the
// events the server emits against the simulator's truth.
//
// The day is datasets/sim's (sim.NewDay): the run creates the shipments
// (POST /v1/shipments), asks the server for the plan (POST /v1/plans with
// one vehicle per van, start and end at the depot, the shift as its time
// window, all shipments; the server solves), drives the server's routes
// through the truth (sim.Day.Run) and replays the day in simulated time
// order: each van's pings in uploads of Batch (POST /v1/positions with
// the van's driver key), each stop's outcome when the van leaves it
// (POST /v1/stops/{id}/status, delivered or failed not_home, timed by the
// truth), the closure when it starts (POST /v1/traffic?wait=true, by way
// id, until its end). A van's upload never spans one of its statuses or
// the closure's start, so the server sees every action in time order.
// Then it reads the whole event log (GET /v1/events) and grades it.
//
// Every call is retried on connection errors and 502/503/504 answers for
// RetryFor: pings, statuses and closures are idempotent, a shipment
// answered 409 on a resend counts as created, a resent plan replaces the
// first. So the run survives a server restart (a separate process).
//
// An in-process server's clock (its live traffic and dispatch Now)
// follows the replay: it is set to each action's simulated time before
// the action is sent, so live observations, closures and status times are
// current for the server as they would be in a real day. A separate
// server keeps its own clock, past the simulated day: ETAs and events are
// still timed by the pings (dispatch predicts at the ping's time), but
// its routing graph reflects live traffic and closures at its own time,
// so the closure (until the end of the simulated day) is over for its
// routes, and predictions through the closed road fail until the van is
// past it.
//
// The figures: per shipment, events sorted by seq must number 1..n with
// no event twice (same type, time and data) and out_for_delivery,
// arriving_soon, arrived, delivered and failed at most once, in the
// order out_for_delivery, then the ETA events, arrived, then delivered or
// failed last; arriving_soon must come 20-40 min before the truth arrival
// (missing counts as a miss); every late stop (truth arrival after its
// window's end) must get delayed before the window's end, and a delayed
// event for a stop that ends up on time is a false alarm; arrived must be
// within 90 s of the truth arrival and never at a drive-by pass; the van
// whose route the closure is on must get a rerouted event after it
// starts.
func Dispatch(cfg DispatchConfig) (*DispatchResult, error) {
	t0 := time.Now()
	if cfg.Graph == nil {
		return nil, errors.New("bench: dispatch: a graph is needed")
	}
	if cfg.Date.IsZero() {
		cfg.Date = time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)
	}
	if cfg.SolveTime <= 0 {
		cfg.SolveTime = 5 * time.Second
	}
	if cfg.Batch <= 0 {
		cfg.Batch = time.Minute
	}
	if cfg.RetryFor <= 0 {
		cfg.RetryFor = 2 * time.Minute
	}
	if cfg.DrainFor <= 0 {
		cfg.DrainFor = time.Minute
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	res := &DispatchResult{Seed: cfg.Seed, Date: cfg.Date, PingsRejected: map[string]int{}, EventTypes: map[string]int{},
		TrackingURLs: map[string]string{}}

	// The day's demand.
	tTruth := time.Now()
	wc := sim.DefaultConfig(cfg.Date, 1, cfg.Seed)
	if cfg.World != nil {
		wc = *cfg.World
	}
	wc.Start, wc.Days, wc.Seed = cfg.Date, 1, cfg.Seed
	world, err := sim.NewWorld(cfg.Graph.Road, wc)
	if err != nil {
		return nil, fmt.Errorf("bench: dispatch: world: %w", err)
	}
	dc := cfg.Day
	dc.Seed, dc.Date = cfg.Seed, cfg.Date
	if dc.DepotPings == 0 {
		// The drivers' phones are on while the vans are loaded.
		dc.DepotPings = 30 * time.Minute
	}
	day, err := sim.NewDay(world, cfg.Graph, dc)
	if err != nil {
		return nil, fmt.Errorf("bench: dispatch: day: %w", err)
	}
	res.TruthTime = time.Since(tTruth)
	res.Vans, res.Shipments = len(day.Vans), len(day.Shipments)

	// The server.
	r := &dispatchRun{cfg: cfg, log: log, day: day, res: res}
	if cfg.URL == "" {
		stop, err := r.startServer()
		if err != nil {
			return nil, err
		}
		defer stop()
	} else {
		if cfg.AdminKey == "" {
			return nil, errors.New("bench: dispatch: a running server needs an admin key (AdminKey)")
		}
		r.base, r.admin, res.Server = strings.TrimRight(cfg.URL, "/"), cfg.AdminKey, cfg.URL
		if cfg.Prefix == "" {
			cfg.Prefix = fmt.Sprintf("b%d-", time.Now().Unix())
			r.cfg.Prefix = cfg.Prefix
		}
	}
	r.c = &apiClient{base: r.base, hc: &http.Client{Timeout: 2 * time.Minute}, retryFor: cfg.RetryFor, log: log}
	defer r.c.hc.CloseIdleConnections()
	ctx := context.Background()
	if err := r.setup(ctx); err != nil {
		return nil, err
	}
	if err := r.plan(ctx); err != nil {
		return nil, err
	}
	if cfg.Planned != nil {
		p := DispatchPlanned{URL: r.api().URL, Routes: map[string][]string{}, TrackingURLs: res.TrackingURLs, DriverKeys: map[string]string{}}
		for v, order := range r.order {
			for _, i := range order {
				p.Routes[r.vehicle(v)] = append(p.Routes[r.vehicle(v)], r.tracking(i))
			}
			p.DriverKeys[r.vehicle(v)] = r.drivers[v]
		}
		cfg.Planned(p)
	}
	tTruth = time.Now()
	if r.truth, err = day.Run(r.order, time.Time{}); err != nil {
		return nil, fmt.Errorf("bench: dispatch: truth: %w", err)
	}
	res.TruthTime += time.Since(tTruth)
	if err := r.replay(ctx); err != nil {
		return nil, err
	}
	if cfg.AfterReplay != nil {
		if err := cfg.AfterReplay(ctx, r.api()); err != nil {
			return nil, fmt.Errorf("bench: dispatch: after the replay: %w", err)
		}
	}
	if err := r.drainAll(ctx); err != nil {
		return nil, err
	}
	evs, err := r.events(ctx)
	if err != nil {
		return nil, err
	}
	res.EventLog = evs
	r.grade(evs)
	res.Retries = int(r.c.retries.Load())
	res.Total = time.Since(t0)
	return res, nil
}

// dispatchRun is the state of one Dispatch run.
type dispatchRun struct {
	cfg   DispatchConfig
	log   *slog.Logger
	day   *sim.Day
	truth *sim.DayTruth
	res   *DispatchResult
	c     *apiClient
	clock *simClock // in-process only
	// st and notifyNow are the in-process server's store and notification
	// clock (Drain).
	st        *store.Store
	notifyNow func() time.Time

	base, admin, dispatcher string
	drivers                 []string // per van
	// order[v] are van v's shipment indices as planned; stops[i] the
	// server's stop id of shipment i (0: unassigned).
	order [][]int
	stops []int64
	byTrk map[string]int // tracking -> shipment index
	// replans are the re-routes the drivers follow (KeepPlan unset);
	// version[v] is the route version of van v they last read.
	replans []sim.Replan
	version []int64
	// metClosure are the vans the truth at the closure's start sends into
	// the closed road (see DispatchResult.ClosureMet).
	metClosure []int
}

// vehicle returns the server's name of van v.
func (r *dispatchRun) vehicle(v int) string { return r.cfg.Prefix + r.day.Vans[v].ID }

// tracking returns the server's tracking number of shipment i.
func (r *dispatchRun) tracking(i int) string { return r.cfg.Prefix + r.day.Shipments[i].Tracking }

// startServer starts the in-process server, its clock at the simulated
// day's midnight, and returns its stop function.
func (r *dispatchRun) startServer() (func(), error) {
	cfg := &r.cfg
	if cfg.DB != "" && cfg.Prefix == "" {
		cfg.Prefix = fmt.Sprintf("b%d-", time.Now().Unix())
	}
	r.clock = &simClock{}
	r.clock.advance(cfg.Date)
	rules := cfg.Rules
	rules.Now = r.clock.Now
	sc := engine.ServerConfig{Dispatch: rules, Live: engine.LiveConfig{Now: r.clock.Now}}
	if cfg.Server != nil {
		cfg.Server(&sc)
	}
	r.notifyNow = sc.Notify.Now
	if r.notifyNow == nil {
		r.notifyNow = time.Now
	}
	s, err := startStateServer(cfg.Graph, cfg.DB, "", 1, sc, r.log)
	if err != nil {
		return nil, fmt.Errorf("bench: dispatch: server: %w", err)
	}
	r.st = s.st
	r.base, r.admin = "http://"+s.c.Addr, strings.TrimPrefix(s.auth, "Bearer ")
	r.res.Server = "in-process " + s.st.Dialect().String()
	return s.close, nil
}

// at moves an in-process server's clock to t.
func (r *dispatchRun) at(t time.Time) {
	if r.clock != nil {
		r.clock.advance(t)
	}
}

// setup waits for the server, creates the keys and the shipments.
func (r *dispatchRun) setup(ctx context.Context) error {
	day := r.day
	r.at(day.Vans[0].ShiftStart.Add(-2 * time.Hour))
	if _, err := r.c.call(ctx, "GET", "/readyz", "", nil, nil); err != nil {
		return fmt.Errorf("bench: dispatch: server not ready: %w", err)
	}
	var k struct {
		Key string `json:"key"`
	}
	if _, err := r.c.call(ctx, "POST", "/v1/keys", r.admin, map[string]any{"scope": "dispatcher", "name": "bench dispatch"}, &k); err != nil {
		return fmt.Errorf("bench: dispatch: dispatcher key: %w", err)
	}
	r.dispatcher = k.Key
	for _, u := range r.cfg.Webhooks {
		var w struct {
			ID     string `json:"id"`
			Secret string `json:"secret"`
		}
		if _, err := r.c.call(ctx, "POST", "/v1/webhooks", r.dispatcher, map[string]any{"url": u, "events": []string{"*"},
			"description": "bench dispatch"}, &w); err != nil {
			return fmt.Errorf("bench: dispatch: webhook subscription: %w", err)
		}
		r.res.WebhookIDs = append(r.res.WebhookIDs, w.ID)
		r.res.WebhookSecrets = append(r.res.WebhookSecrets, w.Secret)
	}
	r.drivers = make([]string, len(day.Vans))
	for v := range day.Vans {
		if _, err := r.c.call(ctx, "POST", "/v1/keys", r.admin, map[string]any{"scope": "driver", "vehicle": r.vehicle(v)}, &k); err != nil {
			return fmt.Errorf("bench: dispatch: driver key of %s: %w", r.vehicle(v), err)
		}
		r.drivers[v] = k.Key
	}
	r.byTrk = make(map[string]int, len(day.Shipments))
	for i, s := range day.Shipments {
		trk := r.tracking(i)
		r.byTrk[trk] = i
		service := s.Service.Seconds()
		body := dispatch.ShipmentInput{
			Tracking: trk,
			Recipient: dispatch.RecipientInput{Name: s.Recipient.Name, Phone: s.Recipient.Phone, Email: s.Recipient.Email,
				Language: s.Recipient.Language},
			Location:   [2]float64{s.Lon, s.Lat},
			TimeWindow: &[2]int64{s.WindowStart.Unix(), s.WindowEnd.Unix()},
			Service:    &service,
		}
		if r.cfg.Shipment != nil {
			r.cfg.Shipment(i, &body)
		}
		var created dispatch.ShipmentCreated
		resent, err := r.c.call(ctx, "POST", "/v1/shipments", r.dispatcher, body, &created)
		var ae *apiError
		if errors.As(err, &ae) && ae.Status == http.StatusConflict && resent {
			err = nil // created by the attempt whose answer was lost
		}
		if err != nil {
			return fmt.Errorf("bench: dispatch: shipment %s: %w", trk, err)
		}
		if created.TrackingURL != "" {
			r.res.TrackingURLs[trk] = created.TrackingURL
		}
	}
	r.log.Info("dispatch bench: shipments created", "shipments", len(day.Shipments), "vans", len(day.Vans))
	return nil
}

// planAnswer is the answer of POST /v1/plans.
type planAnswer struct {
	Plan   int64 `json:"plan"`
	Routes []struct {
		Vehicle string `json:"vehicle"`
		Stops   []struct {
			ID       int64  `json:"id"`
			Tracking string `json:"tracking"`
			Arrival  int64  `json:"arrival"`
		} `json:"stops"`
	} `json:"routes"`
	Unassigned []struct {
		Tracking string `json:"tracking"`
	} `json:"unassigned"`
}

// plan asks the server for the day plan and turns its routes into the
// order the truth drives.
func (r *dispatchRun) plan(ctx context.Context) error {
	day := r.day
	depot := [2]float64{day.Depot.Lon, day.Depot.Lat}
	r.at(day.Vans[0].ShiftStart.Add(-time.Hour))
	vehicles := make([]map[string]any, len(day.Vans))
	byName := map[string]int{}
	for v, van := range day.Vans {
		vehicles[v] = map[string]any{"id": v + 1, "vehicle": r.vehicle(v), "start": depot, "end": depot,
			"time_window": [2]int64{van.ShiftStart.Unix(), van.ShiftEnd.Unix()}}
		byName[r.vehicle(v)] = v
	}
	trk := make([]string, len(day.Shipments))
	for i := range trk {
		trk[i] = r.tracking(i)
	}
	t0 := time.Now()
	var ans planAnswer
	opts := map[string]any{"time": r.cfg.SolveTime.Seconds()}
	if r.cfg.Iterations > 0 {
		opts = map[string]any{"iterations": r.cfg.Iterations}
	}
	if _, err := r.c.call(ctx, "POST", "/v1/plans", r.dispatcher, map[string]any{"vehicles": vehicles, "shipments": trk,
		"options": opts}, &ans); err != nil {
		return fmt.Errorf("bench: dispatch: plan: %w", err)
	}
	r.res.PlanTime = time.Since(t0)
	r.order = make([][]int, len(day.Vans))
	r.stops = make([]int64, len(day.Shipments))
	for _, rt := range ans.Routes {
		v, ok := byName[rt.Vehicle]
		if !ok {
			return fmt.Errorf("bench: dispatch: plan: unknown vehicle %q", rt.Vehicle)
		}
		for _, st := range rt.Stops {
			i, ok := r.byTrk[st.Tracking]
			if !ok || r.stops[i] != 0 {
				return fmt.Errorf("bench: dispatch: plan: tracking %q unknown or planned twice", st.Tracking)
			}
			r.order[v] = append(r.order[v], i)
			r.stops[i] = st.ID
			if st.Arrival > day.Shipments[i].WindowEnd.Unix() {
				r.res.PlannedLate++
			}
		}
		if len(rt.Stops) > 0 {
			r.res.VansUsed++
		}
	}
	r.res.Unassigned = len(ans.Unassigned)
	r.log.Info("dispatch bench: plan", "vans", r.res.VansUsed, "unassigned", r.res.Unassigned, "seconds", r.res.PlanTime.Seconds())
	return nil
}

// Kinds of replayed actions, in the order they go at the same time.
const (
	actPings = iota
	actStatus
	actClosure
)

// action is one call of the replay, at simulated time at.
type action struct {
	at    time.Time
	kind  int
	van   int
	pings []sim.Ping
	ship  int
}

// actions merges every van's uploads and statuses and the closure by
// simulated time.
func (r *dispatchRun) actions() []action {
	tr := r.truth
	var out []action
	var closureAt time.Time
	if c := tr.Closure; c != nil {
		closureAt = c.Start
		out = append(out, action{at: c.Start, kind: actClosure})
	}
	for v := range tr.Vans {
		vt := &tr.Vans[v]
		// Times an upload must not span: the van's statuses, the closure.
		var cuts []time.Time
		for _, s := range vt.Stops {
			cuts = append(cuts, tr.Shipments[s].Reported)
			out = append(out, action{at: tr.Shipments[s].Reported, kind: actStatus, van: v, ship: s})
		}
		if !closureAt.IsZero() {
			cuts = append(cuts, closureAt)
		}
		slices.SortFunc(cuts, func(a, b time.Time) int { return a.Compare(b) })
		var batch []sim.Ping
		flush := func() {
			if len(batch) > 0 {
				out = append(out, action{at: batch[len(batch)-1].Time, kind: actPings, van: v, pings: batch})
				batch = nil
			}
		}
		ci := 0
		for _, p := range vt.Pings {
			cut := false // a cut before this ping: the pings before go first
			for ci < len(cuts) && cuts[ci].Before(p.Time) {
				cut = true
				ci++
			}
			if len(batch) > 0 && (cut || p.Time.Sub(batch[0].Time) >= r.cfg.Batch || len(batch) == maxBatchPings) {
				flush()
			}
			batch = append(batch, p)
			if ci < len(cuts) && cuts[ci].Equal(p.Time) {
				flush() // a ping at a status's time goes before it
				for ci < len(cuts) && cuts[ci].Equal(p.Time) {
					ci++
				}
			}
		}
		flush()
	}
	slices.SortStableFunc(out, func(a, b action) int {
		return cmp.Or(a.at.Compare(b.at), cmp.Compare(a.kind, b.kind))
	})
	return out
}

// positionsAnswer is the answer of POST /v1/positions.
type positionsAnswer struct {
	Accepted int            `json:"accepted"`
	Rejected map[string]int `json:"rejected"`
}

// replay sends the day's actions in simulated time order.
func (r *dispatchRun) replay(ctx context.Context) error {
	acts := r.actions()
	res := r.res
	var lat []time.Duration
	t0 := time.Now()
	next := 0.1
	for k := 0; k < len(acts); k++ {
		a := acts[k]
		tr := r.truth
		r.at(a.at)
		switch a.kind {
		case actPings:
			type pos struct {
				Vehicle  string     `json:"vehicle"`
				Time     float64    `json:"time"`
				Location [2]float64 `json:"location"`
				Speed    float64    `json:"speed"`
				Heading  float64    `json:"heading"`
			}
			body := struct {
				Positions []pos `json:"positions"`
			}{make([]pos, len(a.pings))}
			for i, p := range a.pings {
				body.Positions[i] = pos{Vehicle: r.vehicle(a.van), Time: float64(p.Time.UnixMilli()) / 1000,
					Location: [2]float64{p.Lon, p.Lat}, Speed: p.Speed, Heading: p.Heading}
			}
			var ans positionsAnswer
			t1 := time.Now()
			if _, err := r.c.call(ctx, "POST", "/v1/positions", r.drivers[a.van], body, &ans); err != nil {
				return fmt.Errorf("bench: dispatch: pings of %s at %s: %w", r.vehicle(a.van), a.at.Format(time.TimeOnly), err)
			}
			lat = append(lat, time.Since(t1))
			res.Pings += len(a.pings)
			res.PingRequests++
			res.PingsAccepted += ans.Accepted
			for reason, n := range ans.Rejected {
				res.PingsRejected[reason] += n
			}
		case actStatus:
			st := tr.Shipments[a.ship]
			body := map[string]any{"status": string(st.Outcome), "time": st.Reported.Unix()}
			if st.Reason != "" {
				body["reason"] = st.Reason
			}
			path := fmt.Sprintf("/v1/stops/%d/status", r.stops[a.ship])
			if _, err := r.c.call(ctx, "POST", path, r.drivers[a.van], body, nil); err != nil {
				var ae *apiError
				if !errors.As(err, &ae) || ae.Status >= 500 {
					return fmt.Errorf("bench: dispatch: status of %s: %w", r.tracking(a.ship), err)
				}
				res.StatusRefused++
				r.log.Warn("dispatch bench: status refused", "tracking", r.tracking(a.ship), "err", err)
			}
			res.Statuses++
		case actClosure:
			c := tr.Closure
			body := map[string]any{"observations": []any{}, "closures": []any{map[string]any{"way_id": c.WayID, "until": c.End.Unix()}}}
			if _, err := r.c.call(ctx, "POST", "/v1/traffic?wait=true", r.dispatcher, body, nil); err != nil {
				return fmt.Errorf("bench: dispatch: closure of way %d: %w", c.WayID, err)
			}
			r.metClosure = r.metClosure[:0]
			for v, vt := range tr.Vans {
				if len(vt.Detours) > 0 {
					r.metClosure = append(r.metClosure, v)
				}
			}
			r.log.Info("dispatch bench: road closed", "way", c.WayID, "at", c.Start.Format(time.TimeOnly), "van", r.vehicle(c.Van), "met", len(r.metClosure))
		}
		if !r.cfg.KeepPlan && (a.kind == actPings || a.kind == actStatus) {
			changed, err := r.follow(ctx, a.van, a.at)
			if err != nil {
				return err
			}
			if changed {
				if acts, err = r.continueActions(acts, k); err != nil {
					return err
				}
			}
		}
		if err := r.drainStep(ctx); err != nil {
			return err
		}
		if r.cfg.Step != nil {
			if err := r.cfg.Step(ctx, r.api(), a.at); err != nil {
				return fmt.Errorf("bench: dispatch: step at %s: %w", a.at.Format(time.TimeOnly), err)
			}
		}
		if f := float64(k+1) / float64(len(acts)); f >= next {
			r.log.Info("dispatch bench: replay", "done", fmt.Sprintf("%.0f%%", 100*f), "simulated", a.at.Format(time.TimeOnly))
			next += 0.1
		}
	}
	end := r.day.Vans[0].ShiftEnd
	for _, vt := range r.truth.Vans {
		if vt.Return.After(end) {
			end = vt.Return
		}
	}
	r.at(end.Add(time.Minute))
	res.ReplayTime = time.Since(t0)
	res.PingRate = float64(res.Pings) / res.ReplayTime.Seconds()
	if len(lat) > 0 {
		slices.Sort(lat)
		res.PingP50, res.PingP99 = lat[len(lat)/2], lat[len(lat)*99/100]
	}
	return nil
}

// vehicleAnswer is the part of GET /v1/vehicles/{id} a driver's phone
// follows.
type vehicleAnswer struct {
	Version int64 `json:"version"`
	Stops   []struct {
		ID       int64  `json:"id"`
		Tracking string `json:"tracking"`
		Status   string `json:"status"`
	} `json:"stops"`
}

// follow reads van v's route as its driver's phone does at simulated
// time at; when the server changed the order of the stops the van has
// still to reach, it adds a replan (from the van's next departure) and
// drives the day again, and reports true.
func (r *dispatchRun) follow(ctx context.Context, v int, at time.Time) (bool, error) {
	var ans vehicleAnswer
	if _, err := r.c.call(ctx, "GET", "/v1/vehicles/"+url.PathEscape(r.vehicle(v)), r.drivers[v], nil, &ans); err != nil {
		return false, fmt.Errorf("bench: dispatch: route of %s at %s: %w", r.vehicle(v), at.Format(time.TimeOnly), err)
	}
	if r.version == nil {
		r.version = make([]int64, len(r.day.Vans))
	}
	if ans.Version == r.version[v] {
		return false, nil
	}
	r.version[v] = ans.Version
	var open []int // the server's order of the stops still to reach
	for _, st := range ans.Stops {
		if st.Status != dispatch.StatusPlanned && st.Status != dispatch.StatusOutForDelivery {
			continue
		}
		i, ok := r.byTrk[st.Tracking]
		if !ok {
			return false, fmt.Errorf("bench: dispatch: route of %s: unknown tracking %q", r.vehicle(v), st.Tracking)
		}
		open = append(open, i)
		r.stops[i] = st.ID // a stop handed over from another van is a new one

	}
	// The van's own order of the stops it has not reached yet.
	var ahead []int
	for _, i := range r.truth.Vans[v].Stops {
		if r.truth.Shipments[i].Arrive.After(at) {
			ahead = append(ahead, i)
		}
	}
	if slices.Equal(dropReached(open, r.truth, at), ahead) {
		return false, nil
	}
	r.replans = append(r.replans, sim.Replan{Van: v, At: at, Stops: open})
	t0 := time.Now()
	tr, err := r.day.RunReplanned(r.order, time.Time{}, r.replans)
	if err != nil {
		return false, fmt.Errorf("bench: dispatch: truth after the re-route of %s at %s: %w", r.vehicle(v), at.Format(time.TimeOnly), err)
	}
	r.res.TruthTime += time.Since(t0)
	r.res.Replans++
	r.truth = tr
	return true, nil
}

// etaArrival returns the predicted arrival an event's data holds
// (data.eta.arrival), 0 when none.
func etaArrival(data json.RawMessage) int64 {
	var d struct {
		ETA struct {
			Arrival int64 `json:"arrival"`
		} `json:"eta"`
	}
	if json.Unmarshal(data, &d) != nil {
		return 0
	}
	return d.ETA.Arrival
}

// dropReached returns the stops of open that the truth's van has not
// reached by at (the server may not know yet of an arrival).
func dropReached(open []int, tr *sim.DayTruth, at time.Time) []int {
	var out []int
	for _, i := range open {
		if st := tr.Shipments[i]; st.Van < 0 || st.Arrive.After(at) {
			out = append(out, i)
		}
	}
	return out
}

// continueActions returns the actions of the new truth, checking that
// those up to k, which were sent, are the ones of the old (the past of a
// replanned day does not change).
func (r *dispatchRun) continueActions(old []action, k int) ([]action, error) {
	acts := r.actions()
	same := func(a, b action) bool {
		return a.at.Equal(b.at) && a.kind == b.kind && a.van == b.van && a.ship == b.ship && len(a.pings) == len(b.pings) &&
			(len(a.pings) == 0 || a.pings[0] == b.pings[0])
	}
	if len(acts) <= k {
		return nil, fmt.Errorf("bench: dispatch: the replanned day has %d actions, %d were sent", len(acts), k+1)
	}
	for j := range k + 1 {
		if !same(acts[j], old[j]) {
			return nil, fmt.Errorf("bench: dispatch: the replanned day changed action %d of %d already sent (%s)", j, k+1, acts[j].at.Format(time.TimeOnly))
		}
	}
	return acts, nil
}

// api is what the hooks get.
func (r *dispatchRun) api() DispatchAPI {
	return DispatchAPI{URL: r.base, Key: r.dispatcher, Webhooks: slices.Clone(r.res.WebhookIDs)}
}

// drainPoll is how often a wait for the outbox looks at it.
const drainPoll = 2 * time.Millisecond

// drainStep waits (Drain, in-process) until no recipient notification is
// being sent or could be sent now: each action's notifications go out
// before the next action.
func (r *dispatchRun) drainStep(ctx context.Context) error {
	if !r.cfg.Drain || r.st == nil {
		return nil
	}
	t0 := time.Now()
	defer func() { r.res.DrainTime += time.Since(t0) }()
	for {
		ds, err := r.st.Deliveries(ctx, store.DeliveryFilter{State: store.DeliveryPending, Limit: 1 << 30})
		if err != nil {
			return fmt.Errorf("bench: dispatch: outbox: %w", err)
		}
		if !recipientBusy(ds, r.notifyNow().UnixMilli()) {
			return nil
		}
		if time.Since(t0) > r.cfg.DrainFor {
			return fmt.Errorf("bench: dispatch: the outbox still has e-mail or SMS to send after %v", r.cfg.DrainFor)
		}
		time.Sleep(drainPoll)
	}
}

// recipientBusy reports whether pending deliveries (in id order) hold an
// e-mail or SMS that is being sent (its lease runs) or that a worker
// could claim at nowMS (due, and no earlier pending delivery of its
// channel, target and shipment: see store.FinishAndClaim).
func recipientBusy(pending []store.Delivery, nowMS int64) bool {
	type queue struct {
		channel, target string
		shipment        int64
	}
	first := map[queue]int64{} // the earliest pending event per queue
	for _, d := range pending {
		q := queue{d.Channel, d.Target, d.Shipment}
		if e, ok := first[q]; !ok || d.Event < e {
			first[q] = d.Event
		}
	}
	for _, d := range pending {
		if d.Channel != store.ChannelEmail && d.Channel != store.ChannelSMS {
			continue
		}
		if d.LeaseUntil > nowMS {
			return true
		}
		if d.NextAt <= nowMS && first[queue{d.Channel, d.Target, d.Shipment}] == d.Event {
			return true
		}
	}
	return false
}

// drainAll waits after the replay, for DrainFor at most, until the
// subscriptions of Webhooks have no event left to queue and no pending
// delivery and (Drain,
// in-process) the outbox nothing pending at all.
func (r *dispatchRun) drainAll(ctx context.Context) error {
	t0 := time.Now()
	defer func() { r.res.DrainTime += time.Since(t0) }()
	for _, id := range r.res.WebhookIDs {
		for {
			// The events not yet queued first, then the pending
			// deliveries: both none, every event has gone out.
			var hook struct {
				Backlog int64 `json:"backlog"`
			}
			if _, err := r.c.call(ctx, "GET", "/v1/webhooks/"+id, r.dispatcher, nil, &hook); err != nil {
				return fmt.Errorf("bench: dispatch: webhook %s: %w", id, err)
			}
			var page struct {
				Deliveries []json.RawMessage `json:"deliveries"`
			}
			if _, err := r.c.call(ctx, "GET", "/v1/webhooks/"+id+"/deliveries?state=pending&limit=1", r.dispatcher, nil, &page); err != nil {
				return fmt.Errorf("bench: dispatch: pending deliveries of %s: %w", id, err)
			}
			if hook.Backlog == 0 && len(page.Deliveries) == 0 {
				break
			}
			if time.Since(t0) > r.cfg.DrainFor {
				return fmt.Errorf("bench: dispatch: webhook %s still has pending deliveries after %v", id, r.cfg.DrainFor)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	if !r.cfg.Drain || r.st == nil {
		return nil
	}
	for {
		s, err := r.st.OutboxStats(ctx)
		if err != nil {
			return fmt.Errorf("bench: dispatch: outbox: %w", err)
		}
		if s.Pending+s.Unqueued == 0 {
			return nil
		}
		if time.Since(t0) > r.cfg.DrainFor {
			return fmt.Errorf("bench: dispatch: %d deliveries still pending, %d events not queued after %v", s.Pending, s.Unqueued, r.cfg.DrainFor)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// apiEvent is an event of GET /v1/events, as the API encodes it.
type apiEvent = dispatch.Event

// events reads the whole event log and keeps the run's events.
func (r *dispatchRun) events(ctx context.Context) ([]apiEvent, error) {
	var out []apiEvent
	after := int64(0)
	for {
		var page struct {
			Events []apiEvent `json:"events"`
			Next   int64      `json:"next"`
		}
		if _, err := r.c.call(ctx, "GET", fmt.Sprintf("/v1/events?after=%d&limit=1000", after), r.dispatcher, nil, &page); err != nil {
			return nil, fmt.Errorf("bench: dispatch: events after %d: %w", after, err)
		}
		for _, e := range page.Events {
			if _, ok := r.byTrk[e.Tracking]; ok {
				out = append(out, e)
			}
		}
		if len(page.Events) == 0 || page.Next <= after {
			return out, nil
		}
		after = page.Next
	}
}

// Event types (the engine's, as the API names them).
const (
	evOutForDelivery = "out_for_delivery"
	evArrivingSoon   = "arriving_soon"
	evDelayed        = "delayed"
	evArrived        = "arrived"
	evDelivered      = "delivered"
	evFailed         = "failed"
	evRerouted       = "rerouted"
)

// grade computes the figures from the events and the truth.
func (r *dispatchRun) grade(evs []apiEvent) {
	res, tr, day := r.res, r.truth, r.day
	problem := func(format string, args ...any) {
		if len(res.Problems) < 20 {
			res.Problems = append(res.Problems, fmt.Sprintf(format, args...))
		}
	}
	res.Events = len(evs)
	per := map[int][]apiEvent{}
	for _, e := range evs {
		i := r.byTrk[e.Tracking]
		per[i] = append(per[i], e)
		res.EventTypes[e.Type]++
	}
	for _, s := range tr.Shipments {
		if s.Van >= 0 {
			res.Stops++
			if end := day.Shipments[tr.Vans[s.Van].Stops[s.Stop]].WindowEnd; s.Arrive.After(end) {
				res.Late++
				res.Lateness += s.Arrive.Sub(end)
			}
		}
	}
	res.DriveBys = len(tr.DriveBys)
	res.Depot = [2]float64{day.Depot.Lon, day.Depot.Lat}
	pass := map[int]time.Time{}
	for _, db := range tr.DriveBys {
		pass[db.Shipment] = db.Time
	}
	if c := tr.Closure; c != nil {
		res.Closure = fmt.Sprintf("way %d (%d edges, detour +%.0f s)", c.WayID, len(c.Edges), c.Extra)
		res.ClosureVan, res.ClosureStart = r.vehicle(c.Van), c.Start
	}
	rerouted := map[string]bool{}
	once := []string{evOutForDelivery, evArrivingSoon, evArrived, evDelivered, evFailed}
	for i := range day.Shipments {
		list := per[i]
		slices.SortFunc(list, func(a, b apiEvent) int { return cmp.Compare(a.Seq, b.Seq) })
		trk := r.tracking(i)
		// Sequence numbers 1..n.
		for k, e := range list {
			if e.Seq != int64(k+1) {
				res.SeqErrors++
				problem("%s: event %d (%s) has seq %d", trk, k, e.Type, e.Seq)
				break
			}
		}
		// Nothing twice.
		seen := map[string]bool{}
		count := map[string]int{}
		for _, e := range list {
			key := fmt.Sprintf("%s|%d|%s", e.Type, e.Time, e.Data)
			if seen[key] {
				res.Duplicates++
				problem("%s: %s at %d twice", trk, e.Type, e.Time)
			}
			seen[key] = true
			count[e.Type]++
		}
		for _, t := range once {
			if count[t] > 1 {
				res.Duplicates++
				problem("%s: %d %s events", trk, count[t], t)
			}
		}
		// Order: out_for_delivery, ETA events, arrived, delivered/failed;
		// arriving_soon may come first (the van still at its depot, its
		// shift about to start, the stop minutes away).
		stage := 0 // 0 before out_for_delivery, 1 out, 2 arrived, 3 done
		for _, e := range list {
			bad := false
			switch e.Type {
			case evOutForDelivery:
				bad = stage != 0
				stage = 1
			case evArrived:
				bad = stage != 1
				stage = 2
			case evDelivered, evFailed:
				bad = stage != 2
				stage = 3
			case "shipped", "at_facility", "in_transit", "at_depot", "exception":
				bad = stage != 0
			case evArrivingSoon:
				bad = stage > 1
			default: // stops_away, eta_changed, delayed, rerouted
				bad = stage != 1
			}
			if bad {
				res.OrderErrors++
				problem("%s: %s (seq %d) out of order", trk, e.Type, e.Seq)
				break
			}
		}
		for _, e := range list {
			switch e.Type {
			case evFailed:
				var d struct {
					Reason string `json:"reason"`
				}
				if json.Unmarshal(e.Data, &d) == nil && d.Reason == sim.ReasonNotHome {
					res.NotHomeFailed++
				}
			case evRerouted:
				res.ReroutedEvents++
				var d struct {
					Reason string `json:"reason"`
					From   string `json:"from"`
				}
				if json.Unmarshal(e.Data, &d) == nil && d.Reason == "handover" && d.From != "" {
					res.Handovers++
				}
				if s := tr.Shipments[i]; s.Van >= 0 {
					rerouted[r.vehicle(s.Van)] = true
				}
			}
		}
		st := tr.Shipments[i]
		if st.Van < 0 {
			continue
		}
		ship := &day.Shipments[i]
		arrive, end := st.Arrive.Unix(), ship.WindowEnd.Unix()
		late := st.Arrive.After(ship.WindowEnd)
		first := func(typ string) (apiEvent, bool) {
			k := slices.IndexFunc(list, func(e apiEvent) bool { return e.Type == typ })
			if k < 0 {
				return apiEvent{}, false
			}
			return list[k], true
		}
		det := DispatchStop{Tracking: trk, Van: r.vehicle(st.Van), Position: st.Stop, Location: [2]float64{ship.Lon, ship.Lat}, Arrive: arrive, Depart: st.Depart.Unix(), WindowEnd: end}
		if p, ok := pass[i]; ok {
			det.DriveBy = p.Unix()
		}
		for _, e := range list {
			switch e.Type {
			case evArrivingSoon:
				det.Soon, det.SoonETA = e.Time, etaArrival(e.Data)
			case evArrived:
				det.Arrived = e.Time
			case evDelayed:
				det.Delayed = append(det.Delayed, e.Time)
				det.DelayedETA = append(det.DelayedETA, etaArrival(e.Data))
			case evRerouted:
				det.Rerouted++
			}
		}
		res.Details = append(res.Details, det)
		// arriving_soon.
		if e, ok := first(evArrivingSoon); !ok {
			res.SoonMissing++
		} else {
			lead := arrive - e.Time
			res.SoonLeadMin = append(res.SoonLeadMin, float64(lead)/60)
			switch {
			case lead > 40*60:
				res.SoonEarly++
			case lead < 20*60:
				res.SoonLate++
			default:
				res.SoonHits++
			}
		}
		// delayed.
		warned := false
		for _, e := range list {
			if e.Type != evDelayed {
				continue
			}
			res.Delayed++
			if !late {
				res.DelayedFalse++
			}
			if e.Time < end {
				warned = true
			}
		}
		if late && warned {
			res.LateWarned++
		}
		// arrived.
		if e, ok := first(evArrived); !ok {
			res.ArrivedMissing++
		} else {
			d := e.Time - arrive
			switch {
			case d < -90:
				res.ArrivedEarly++
			case d > 90:
				res.ArrivedLate++
			default:
				res.ArrivedOnTime++
			}
			if p, ok := pass[i]; ok && d < -90 && math.Abs(float64(e.Time-p.Unix())) <= 300 {
				res.DriveByArrivals++
				problem("%s: arrived at %s, at the drive-by pass %s (truth arrival %s)", trk,
					time.Unix(e.Time, 0).UTC().Format(time.TimeOnly), p.UTC().Format(time.TimeOnly), st.Arrive.UTC().Format(time.TimeOnly))
			}
		}
	}
	for _, d := range res.Details {
		if d.Rerouted > 0 {
			continue
		}
		f := &res.NotRerouted
		f.Stops++
		if lead := d.Arrive - d.Soon; d.Soon != 0 && lead >= 20*60 && lead <= 40*60 {
			f.SoonHits++
		}
		if d.Arrived != 0 && abs64(d.Arrived-d.Arrive) <= 90 {
			f.ArrivedOnTime++
		}
		late := d.Arrive > d.WindowEnd
		if late {
			f.Late++
			if len(d.Delayed) > 0 && d.Delayed[0] < d.WindowEnd {
				f.LateWarned++
			}
		}
		f.Delayed += len(d.Delayed)
		if !late {
			f.DelayedFalse += len(d.Delayed)
		}
	}
	slices.SortStableFunc(res.Details, func(a, b DispatchStop) int {
		return cmp.Or(cmp.Compare(len(a.Van), len(b.Van)), cmp.Compare(a.Van, b.Van), cmp.Compare(a.Position, b.Position))
	})
	res.ReroutedVans = slices.Sorted(maps.Keys(rerouted))
	// The reroute of the vans the closure meets.
	if c := tr.Closure; c != nil && len(r.metClosure) > 0 {
		res.Rerouted, res.RerouteBeforeDetour = true, true
		for _, v := range r.metClosure {
			res.ClosureMet = append(res.ClosureMet, r.vehicle(v))
			best := int64(math.MaxInt64)
			for _, i := range tr.Vans[v].Stops {
				for _, e := range per[i] {
					if e.Type == evRerouted && e.Time >= c.Start.Unix() && e.Time < best {
						best = e.Time
					}
				}
			}
			if best == math.MaxInt64 {
				res.Rerouted, res.RerouteBeforeDetour = false, false
				continue
			}
			res.RerouteAfter = max(res.RerouteAfter, time.Duration(best-c.Start.Unix())*time.Second)
			if d := tr.Vans[v].Detours; len(d) > 0 && best >= d[0].Time.Unix() {
				res.RerouteBeforeDetour = false
			}
		}
	}
}

// abs64 returns |v|.
func abs64(v int64) int64 {
	if v < 0 {
		return -v
	}
	return v
}

// apiError is an answer other than 2xx.
type apiError struct {
	Method, Path  string
	Status        int
	Code, Message string
}

func (e *apiError) Error() string {
	return fmt.Sprintf("%s %s: %d %s: %s", e.Method, e.Path, e.Status, e.Code, e.Message)
}

// apiClient calls the server, retrying on connection errors and on
// 502/503/504 answers (a restarting or overloaded server) for retryFor.
type apiClient struct {
	base     string
	hc       *http.Client
	retryFor time.Duration
	retries  atomic.Int64
	log      *slog.Logger
}

// call sends body (JSON, nil for none) with the bearer key and decodes a
// 2xx answer into into (when not nil). resent reports whether the request
// was sent more than once (an earlier attempt may have been applied).
func (c *apiClient) call(ctx context.Context, method, path, key string, body, into any) (resent bool, err error) {
	var raw []byte
	if body != nil {
		if raw, err = json.Marshal(body); err != nil {
			return false, fmt.Errorf("%s %s: %w", method, path, err)
		}
	}
	deadline := time.Now().Add(c.retryFor)
	wait := 50 * time.Millisecond
	for attempt := 0; ; attempt++ {
		var rd io.Reader
		if raw != nil {
			rd = bytes.NewReader(raw)
		}
		req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
		if err != nil {
			return false, fmt.Errorf("%s %s: %w", method, path, err)
		}
		if raw != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		if key != "" {
			req.Header.Set("Authorization", "Bearer "+key)
		}
		resp, err := c.hc.Do(req)
		var out []byte
		status := 0
		if err == nil {
			out, err = io.ReadAll(resp.Body)
			resp.Body.Close()
			status = resp.StatusCode
		}
		retry := err != nil || status == http.StatusBadGateway || status == http.StatusServiceUnavailable || status == http.StatusGatewayTimeout
		if !retry {
			if status/100 != 2 {
				ae := &apiError{Method: method, Path: path, Status: status}
				var e struct{ Code, Message string }
				if json.Unmarshal(out, &e) == nil {
					ae.Code, ae.Message = e.Code, e.Message
				} else {
					ae.Message = string(out[:min(len(out), 200)])
				}
				return attempt > 0, ae
			}
			if into != nil {
				if err := json.Unmarshal(out, into); err != nil {
					return attempt > 0, fmt.Errorf("%s %s: answer: %w", method, path, err)
				}
			}
			return attempt > 0, nil
		}
		if ctx.Err() != nil || time.Now().After(deadline) {
			if err == nil {
				err = fmt.Errorf("status %d: %.200s", status, out)
			}
			return attempt > 0, fmt.Errorf("%s %s: gave up after %d attempts: %w", method, path, attempt+1, err)
		}
		c.retries.Add(1)
		c.log.Debug("dispatch bench: retrying", "method", method, "path", path, "status", status, "err", err)
		time.Sleep(wait)
		wait = min(2*wait, 2*time.Second)
	}
}
