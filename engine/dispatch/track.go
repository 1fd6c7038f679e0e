package dispatch

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/lastmile/lastmile/engine/store"
	"github.com/lastmile/lastmile/graph"
)

// Ping is one vehicle ping as dispatch sees it: the raw fix and, when map
// matching placed it on a road, the matched position.
type Ping struct {
	Vehicle  string
	Time     time.Time
	Location [2]float64 // lon, lat as reported
	// Matched is the map-matched [lon, lat]; Ok false when the ping was
	// not matched (then Location is used).
	Matched   [2]float64
	MatchedOK bool
	// Speed (m/s) and Heading (degrees) as reported; NaN when absent.
	Speed, Heading float64
}

// pos is the position the rules use: the matched one when there is one.
func (p *Ping) pos() [2]float64 {
	if p.MatchedOK {
		return p.Matched
	}
	return p.Location
}

// TrackResult reports what a batch of pings did.
type TrackResult struct {
	// Stored counts the pings stored (a resent ping is stored once).
	Stored int64
	// Events are the events the pings caused.
	Events []store.Event
}

// trackState is a vehicle's tracking state between pings, stored as JSON
// with the vehicle (store.Vehicle.State) so any replica can continue it.
type trackState struct {
	// DwellStop is the stop the van has stayed near since DwellSince
	// (Unix ms), 0 when none.
	DwellStop  int64 `json:"dwell_stop,omitempty"`
	DwellSince int64 `json:"dwell_since,omitempty"`
	// ETAAt is the ping time (Unix ms) of the last ETA update; 0 forces
	// an update at the next ping.
	ETAAt int64 `json:"eta_at,omitempty"`
	// RerouteAt is the ping time (Unix s) of the last re-routing check
	// that solved; Baseline the predicted arrival at the last open stop
	// when the route was last (re)planned.
	RerouteAt int64 `json:"reroute_at,omitempty"`
	Baseline  int64 `json:"baseline,omitempty"`
	// HandoverAt is the ping time (Unix s) of the last handover check
	// (checkHandover).
	HandoverAt int64 `json:"handover_at,omitempty"`
	// Incident is the time (Unix ms) of the road closure
	// (Service.RoadsClosed) the route's ETAs were last checked against.
	Incident int64 `json:"incident,omitempty"`
}

// routeRun is one route being worked on inside a transaction: its stops
// in position order, which of them changed, and the events to emit.
type routeRun struct {
	s      *Service
	veh    store.Vehicle
	route  store.Route
	stops  []store.Stop
	dirty  []bool
	etas   bool // ETAs changed: write them
	state  trackState
	events []store.Event
	start  [2]float64 // the route's start (depot)
	// shiftStart and shiftEnd are the vehicle's shift (time_window), Unix
	// seconds, 0 when the plan gave none.
	shiftStart, shiftEnd int64
	// handover: an ETA update left a stop late (checkHandover); Positions
	// tries a handover once the run is committed. withhold holds the ids
	// of the late stops whose delayed waits for it.
	handover bool
	withhold []int64
	// loaded and loadedRoute are the stops and route as read (what the
	// store holds until save).
	loaded      []store.Stop
	loadedRoute store.Route
}

// loadRun reads the vehicle's current route (locked through the vehicle).
func (s *Service) loadRun(tx *store.Tx, veh store.Vehicle) (*routeRun, error) {
	r, err := tx.Route(veh.Route)
	if err != nil {
		return nil, err
	}
	stops, err := tx.RouteStops(r.ID)
	if err != nil {
		return nil, err
	}
	return s.newRun(veh, r, stops)
}

// readRun reads the vehicle's current route outside a transaction, for
// work whose result is applied only if the vehicle's version is unchanged.
func (s *Service) readRun(ctx context.Context, veh store.Vehicle) (*routeRun, error) {
	r, err := s.st.Route(ctx, veh.Route)
	if err != nil {
		return nil, err
	}
	stops, err := s.st.RouteStops(ctx, r.ID)
	if err != nil {
		return nil, err
	}
	return s.newRun(veh, r, stops)
}

// snapshotRun returns the vehicle's route state outside a transaction:
// the one this process last committed when it has it, else read from the
// store; nil when the vehicle is unknown or has no route.
func (s *Service) snapshotRun(ctx context.Context, name string) (*routeRun, error) {
	if e, ok := s.runs.get(name); ok {
		return s.newRun(e.veh, e.route, e.stops)
	}
	veh, err := s.st.Vehicle(ctx, name)
	if err != nil || veh.Route == 0 {
		return nil, err
	}
	return s.readRun(ctx, veh)
}

func (s *Service) newRun(veh store.Vehicle, r store.Route, stops []store.Stop) (*routeRun, error) {
	run := &routeRun{s: s, veh: veh, route: r, stops: stops, dirty: make([]bool, len(stops)),
		loaded: slices.Clone(stops), loadedRoute: r}
	if veh.State != "" {
		if err := json.Unmarshal([]byte(veh.State), &run.state); err != nil {
			return nil, fmt.Errorf("dispatch: vehicle %q state: %w", veh.ID, err)
		}
	}
	var spec struct {
		Start      [2]float64 `json:"start"`
		TimeWindow []int64    `json:"time_window"`
	}
	if err := json.Unmarshal([]byte(r.Spec), &spec); err == nil {
		run.start = spec.Start
		if len(spec.TimeWindow) == 2 {
			run.shiftStart, run.shiftEnd = spec.TimeWindow[0], spec.TimeWindow[1]
		}
	}
	return run, nil
}

// save writes what changed and queues the events.
func (run *routeRun) save(tx *store.Tx) error {
	for i, d := range run.dirty {
		if !d {
			continue
		}
		st := run.stops[i]
		if err := tx.UpdateStop(st); err != nil {
			return err
		}
		if was, ok := run.loadedStop(st.ID); !ok || was.Position != st.Position {
			if err := tx.MoveStop(st.ID, st.Position); err != nil {
				return err
			}
		}
	}
	if run.writesETAs() {
		if err := tx.SetRouteETAs(run.route.ID, run.stops); err != nil {
			return err
		}
	}
	if run.routeWritten() {
		if err := tx.UpdateRoute(run.route); err != nil {
			return err
		}
	}
	b, _ := json.Marshal(run.state)
	run.veh.State = string(b)
	if err := tx.PutVehicle(run.veh); err != nil {
		return err
	}
	for _, e := range run.events {
		tx.Emit(e)
	}
	return nil
}

// writesETAs reports whether save writes the route's ETAs
// (store.Tx.SetRouteETAs): after an ETA update, and with any stop written,
// as the route's ETA row overrides the stops' own columns.
func (run *routeRun) writesETAs() bool {
	return run.etas || slices.Contains(run.dirty, true)
}

// loadedStop returns the stop with this id as the store held it when the
// run began; false for a stop the run added.
func (run *routeRun) loadedStop(id int64) (store.Stop, bool) {
	for _, st := range run.loaded {
		if st.ID == id {
			return st, true
		}
	}
	return store.Stop{}, false
}

// routeWritten reports whether save writes the route: when anything of it
// changed (not for new ETAs alone: those are the stops').
func (run *routeRun) routeWritten() bool {
	return run.route != run.loadedRoute
}

// emit queues an event of stop i at Unix time t.
// A redelivery's events (attempt 2 onwards) carry their attempt number, so
// that a recipient is told of the new attempt.
func (run *routeRun) emit(i int, typ string, t int64, data any) {
	st := run.stops[i]
	if st.Attempt > 1 {
		m, _ := data.(map[string]any)
		if m == nil {
			m = map[string]any{}
		}
		m["attempt"] = st.Attempt
		data = m
	}
	d := ""
	if data != nil {
		d = jsonData(data)
	}
	run.events = append(run.events, store.Event{Shipment: st.Shipment, Tracking: st.Tracking, Type: typ, Time: t, Data: d, Created: run.s.now()})
}

func (run *routeRun) set(i int, st store.Stop) {
	run.stops[i] = st
	run.dirty[i] = true
}

// Positions applies a batch of pings: they are stored, and for each
// vehicle with a route, in time order, they move it out for delivery,
// detect arrivals by dwell, keep its ETAs current (at most every
// ETAInterval of ping time) and fire the events the rules decide, all
// committed in one transaction. Pings at or before a vehicle's latest
// processed ping are stored but change nothing.
//
// The rules (ETA predictions, re-routing) run before the transaction on a
// snapshot of each vehicle; inside it, a vehicle whose row changed since
// (its version moved: another request's pings or a status update) is
// worked again from the locked row. So the work of concurrent requests
// overlaps, and the single writer of SQLite holds its lock only to write.
func (s *Service) Positions(ctx context.Context, pings []Ping) (TrackResult, error) {
	var res TrackResult
	if len(pings) == 0 {
		return res, nil
	}
	byVehicle := map[string][]Ping{}
	for _, p := range pings {
		byVehicle[p.Vehicle] = append(byVehicle[p.Vehicle], p)
	}
	names := make([]string, 0, len(byVehicle))
	for n, vp := range byVehicle {
		names = append(names, n)
		slices.SortStableFunc(vp, func(a, b Ping) int { return a.Time.Compare(b.Time) })
	}
	slices.Sort(names)
	rows := make([]store.Ping, len(pings))
	for i, p := range pings {
		rows[i] = store.Ping{Vehicle: p.Vehicle, TimeMS: p.Time.UnixMilli(), Lon: p.Location[0], Lat: p.Location[1], Speed: p.Speed, Heading: p.Heading}
	}
	// Outside the transaction: each vehicle's pings on a snapshot (the
	// state this process last committed, else read).
	runs := make(map[string]*routeRun, len(names))
	for _, name := range names {
		run, err := s.snapshotRun(ctx, name)
		if err != nil || run == nil {
			continue // worked again in the transaction
		}
		if run.apply(byVehicle[name]) {
			runs[name] = run
		}
	}
	// saved are the runs the transaction wrote, for the cache once it
	// commits (an attempt retried on PostgreSQL starts it again).
	var saved []*routeRun
	evs, err := s.st.Tx(ctx, func(tx *store.Tx) error {
		saved = saved[:0]
		// The vehicles locked first, their pings stored next: the chain
		// head InsertPings moves is written with the vehicle's state
		// (Tx.PutVehicle), not by a statement of its own.
		vehs := make([]store.Vehicle, len(names))
		for i, name := range names {
			var err error
			if vehs[i], err = tx.LockVehicle(name); err != nil {
				return err
			}
		}
		n, err := tx.InsertPings(rows)
		res.Stored = n
		if err != nil {
			return err
		}
		for i, name := range names {
			veh := vehs[i]
			run := runs[name]
			if run == nil || run.veh.Version != veh.Version {
				if veh.Route == 0 {
					fresh := freshPings(byVehicle[name], veh.LastMS)
					if len(fresh) == 0 {
						continue
					}
					last := fresh[len(fresh)-1]
					veh.LastMS, veh.Lon, veh.Lat, veh.Updated = last.Time.UnixMilli(), last.pos()[0], last.pos()[1], s.now()
					if err := tx.PutVehicle(veh); err != nil {
						return err
					}
					continue
				}
				if run, err = s.loadRun(tx, veh); err != nil {
					return err
				}
				if !run.apply(byVehicle[name]) {
					continue
				}
			}
			if err := run.finish(tx); err != nil {
				return err
			}
			saved = append(saved, run)
		}
		return nil
	})
	if err != nil {
		for _, name := range names {
			s.runs.drop(name)
		}
		return TrackResult{}, err
	}
	s.keepRuns(saved)
	res.Events = evs
	// Handovers after the pings' commit, each in a transaction of its
	// own: the pings are stored whatever becomes of them.
	for _, run := range saved {
		if run.handover {
			s.handOver(ctx, run.veh.ID, time.UnixMilli(run.veh.LastMS))
		}
	}
	return res, nil
}

// freshPings returns the pings (in time order) after lastMS.
func freshPings(vp []Ping, lastMS int64) []Ping {
	i := 0
	for i < len(vp) && vp[i].Time.UnixMilli() <= lastMS {
		i++
	}
	return vp[i:]
}

// apply works the vehicle's pings after its latest processed one and
// moves its position to the last; it reports whether there were any.
func (run *routeRun) apply(vp []Ping) bool {
	fresh := freshPings(vp, run.veh.LastMS)
	if len(fresh) == 0 {
		return false
	}
	for i := range fresh {
		run.ping(&fresh[i])
	}
	last := fresh[len(fresh)-1]
	pos := last.pos()
	run.veh.LastMS, run.veh.Lon, run.veh.Lat, run.veh.Updated = last.Time.UnixMilli(), pos[0], pos[1], run.s.now()
	return true
}

// finish closes a route whose stops all ended and saves the run. A
// shipment's row is written when its stop's status or end changed, not
// for the stop's rule state (on SQLite, rewriting every dirty stop's
// shipment was 15 of the 82 pages an ingest transaction wrote).
func (run *routeRun) finish(tx *store.Tx) error {
	if run.route.Status == store.RouteActive && run.openCount() == 0 {
		run.route.Status = store.RouteDone
	}
	for i := range run.stops {
		if !run.dirty[i] {
			continue
		}
		st := run.stops[i]
		if st.Status == StatusHandedOver {
			continue // the shipment goes on with its stop on the other van
		}
		if was, ok := run.loadedStop(st.ID); !ok || was.Status != st.Status || was.DoneAt != st.DoneAt {
			if err := tx.SetShipmentStatus(st.Shipment, shipmentStatus(st.Status), run.s.now(), st.DoneAt); err != nil {
				return err
			}
		}
	}
	return run.save(tx)
}

// shipmentStatus is the shipment status a stop status gives.
func shipmentStatus(stop string) string {
	if stop == StatusPlanned {
		return StatusCreated
	}
	return stop
}

func (run *routeRun) openCount() int {
	n := 0
	for _, st := range run.stops {
		if open(st.Status) {
			n++
		}
	}
	return n
}

// ping applies one new ping of the route's vehicle.
func (run *routeRun) ping(p *Ping) {
	cfg := &run.s.cfg
	ms := p.Time.UnixMilli()
	pos := p.pos()
	if run.route.Status == store.RoutePlanned {
		// The van leaves its start: beyond DepartRadius, or at a stop of
		// its route that lies within DepartRadius of the start (else it
		// would only depart after serving it).
		if run.start == [2]float64{} {
			return
		}
		if d := distance(pos, run.start); d <= cfg.DepartRadius && (d <= cfg.ArriveRadius || !run.near(pos, StatusPlanned)) {
			run.beforeDeparture(p.Time)
			return
		}
		run.depart(pos, p.Time)
		run.state.ETAAt = ms
		// On to the arrival rule: this ping may start a dwell.
	}
	if run.route.Status != store.RouteActive {
		return
	}
	// Arrival by dwell near an open stop: the nearest, or the first in
	// the route's order among those as near within arriveTie (parcels for
	// one address); not while the van stands at a stop it has arrived at
	// and not yet served (a neighbour's stop in the same street would be
	// arrived at minutes early).
	best, bd := -1, cfg.ArriveRadius
	for i, st := range run.stops {
		if st.Status != StatusOutForDelivery {
			continue
		}
		if d := distance(pos, st.Location); d <= bd && (best < 0 || d < bd-arriveTie) {
			best, bd = i, d
		}
	}
	if best >= 0 && run.near(pos, StatusArrived) {
		best = -1
	}
	changed := false
	switch {
	case best < 0:
		run.state.DwellStop, run.state.DwellSince = 0, 0
	case run.stops[best].ID != run.state.DwellStop:
		run.state.DwellStop, run.state.DwellSince = run.stops[best].ID, ms
	case time.Duration(ms-run.state.DwellSince)*time.Millisecond >= cfg.ArriveDwell:
		run.arrive(best, run.state.DwellSince/1000, run.stops[best].Location)
		run.state.DwellStop, run.state.DwellSince = 0, 0
		changed = true
	}
	if changed || run.state.ETAAt == 0 || time.Duration(ms-run.state.ETAAt)*time.Millisecond >= cfg.ETAInterval || run.closeCall(ms/1000) {
		run.updateETAs(pos, p.Time)
		run.state.ETAAt = ms
	}
}

// closeCall reports whether a stop out for delivery, not yet delayed, has
// its window's end within Config.DelayFinal after Unix time t and a
// predicted arrival as close to it: then every ping updates the ETAs, not
// one every Config.ETAInterval, so that a stop turning late is warned
// before its window closes. With one update a minute, the last one before
// the end could still see the van on time and the next one come after the
// end (on the simulated Porto days, 3 of 60 late stops, 4 to 107 s late).
func (run *routeRun) closeCall(t int64) bool {
	final := int64(run.s.cfg.DelayFinal / time.Second)
	for _, st := range run.stops {
		if end := st.Window[1]; st.Status == StatusOutForDelivery && st.Delayed == 0 && end > t && end-t <= final && st.ETA > end-final {
			return true
		}
	}
	return false
}

// arriveTie (m): stops within this distance of the nearest one are as
// near, for the arrival rule (GPS noise).
const arriveTie = 10

// near reports whether a stop of the given status lies within
// Config.ArriveRadius of pos.
func (run *routeRun) near(pos [2]float64, status string) bool {
	for _, st := range run.stops {
		if st.Status == status && distance(pos, st.Location) <= run.s.cfg.ArriveRadius {
			return true
		}
	}
	return false
}

// beforeDeparture predicts the stops of a van still at its start, once
// its shift begins within ArrivingSoon (at most every ETAInterval of ping
// time): from the start at the shift's start, or now when later. The
// first stops lie minutes from the depot, so their recipients hear
// arriving_soon in time only if it may fire before the van leaves; it is
// the only event before out_for_delivery.
func (run *routeRun) beforeDeparture(now time.Time) {
	cfg := &run.s.cfg
	t, ms := now.Unix(), now.UnixMilli()
	soon := int64(cfg.ArrivingSoon / time.Second)
	if run.shiftStart == 0 || t < run.shiftStart-soon {
		return
	}
	if run.state.ETAAt != 0 && time.Duration(ms-run.state.ETAAt)*time.Millisecond < cfg.ETAInterval {
		return
	}
	run.state.ETAAt = ms
	run.predict(run.start, time.Unix(max(t, run.shiftStart), 0))
	for i, st := range run.stops {
		if st.Status == StatusPlanned && st.ETA > 0 {
			changed := snapshot(&st, t)
			if st.SoonFired == 0 && st.ETA-t <= soon {
				run.emit(i, EventArrivingSoon, t, map[string]any{"eta": ETA{st.ETA, st.P10, st.P90}})
				st.SoonFired, st.ETASent = 1, st.ETA
				st.SoonAt, st.SoonP10, st.SoonP90 = t, st.P10, st.P90
				changed = true
			}
			if changed {
				run.set(i, st)
			}
		}
	}
}

// depart sets the route out for delivery at now, the van at pos: every
// planned stop goes out_for_delivery, with its first ETA in the event,
// then the ETA rules and stops_away apply.
func (run *routeRun) depart(pos [2]float64, now time.Time) {
	t := now.Unix()
	run.route.Status, run.route.Started = store.RouteActive, t
	var out []int
	for i, st := range run.stops {
		if st.Status == StatusPlanned {
			st.Status = StatusOutForDelivery
			run.set(i, st)
			out = append(out, i)
		}
	}
	run.predict(pos, now)
	run.state.Baseline = run.lastETA()
	for _, i := range out {
		st := run.stops[i]
		data := map[string]any{"vehicle": run.route.Vehicle}
		if st.ETA > 0 {
			data["eta"] = ETA{st.ETA, st.P10, st.P90}
			st.ETASent = st.ETA
			run.set(i, st)
		}
		run.emit(i, EventOutForDelivery, t, data)
	}
	run.rerouteIfBehind(pos, now)
	run.checkHandover(t)
	run.rules(t)
}

// arrive marks stop i arrived at t.
func (run *routeRun) arrive(i int, t int64, loc [2]float64) {
	st := run.stops[i]
	st.Status, st.ArrivedAt = StatusArrived, t
	run.set(i, st)
	run.emit(i, EventArrived, t, map[string]any{"vehicle": run.route.Vehicle})
}

// dwelling returns the index in run.stops of the stop the van has stood
// near since run.state.DwellSince, not yet long enough for arrived, when
// it is the first open stop of the route (the one the van is heading to);
// else -1. The predictions take it as arrived at the dwell's start: the
// dwell makes the arrival, timed at its start, unless the van leaves
// within Config.ArriveDwell. Before, a van standing at its next stop was
// predicted to drive to it from its matched position (on the simulated
// Porto days, 80 s for a van already there) and the stops after it
// without the service started, and both fired false delayed events. A
// dwell at a stop further down the route is a van passing by it (a
// drive-by), not an arrival to predict from.
func (run *routeRun) dwelling() int {
	if run.state.DwellStop == 0 {
		return -1
	}
	for i, st := range run.stops {
		switch {
		case st.Status == StatusArrived:
			return -1 // serving another stop
		case st.Status == StatusOutForDelivery:
			if st.ID == run.state.DwellStop {
				return i
			}
			return -1
		}
	}
	return -1
}

// updateETAs predicts the open stops from pos at now, re-routes the van
// when a road closure reported since its last update delayed it
// (rerouteAfterIncident) or when it has fallen behind, and applies the
// rules.
func (run *routeRun) updateETAs(pos [2]float64, now time.Time) {
	var before []int64 // the ETAs before a road closure's first update
	if inc := run.s.incident.Load(); inc > run.state.Incident {
		run.state.Incident = inc
		before = make([]int64, len(run.stops))
		for i, st := range run.stops {
			before[i] = st.ETA
		}
	}
	run.predict(pos, now)
	if !run.rerouteAfterIncident(pos, now, before) {
		run.rerouteIfBehind(pos, now)
	}
	run.checkHandover(now.Unix())
	run.rules(now.Unix())
}

// rerouteAfterIncident re-routes the van at once when the ETAs of its open
// stops moved later by Config.IncidentShift or more since before (the
// update before a road closure; nil: none) or when its road ahead is
// closed (closedAhead), and reports whether it did. When the best order
// stays the same the van's road changed all the same: the route's version
// grows and rerouted fires, with reason "closure", for the stops that
// moved and those behind the closed road.
func (run *routeRun) rerouteAfterIncident(pos [2]float64, now time.Time, before []int64) bool {
	cfg := &run.s.cfg
	if before == nil || cfg.IncidentShift < 0 || run.route.Status != store.RouteActive {
		return false
	}
	shift := int64(cfg.IncidentShift / time.Second)
	hit := make([]bool, len(run.stops))
	for _, i := range run.closedAhead(pos, now) {
		hit[i] = true
	}
	var moved []int // indices in run.stops
	for i, st := range run.stops {
		if st.Status == StatusOutForDelivery && (hit[i] || before[i] > 0 && st.ETA-before[i] >= shift) {
			moved = append(moved, i)
		}
	}
	if len(moved) == 0 {
		return false
	}
	if cfg.Solve != nil && cfg.RerouteSlack >= 0 && run.reroute(pos, now) {
		run.predict(pos, now)
		run.state.Baseline = run.lastETA()
		return true
	}
	run.route.Version++
	run.etas = true
	t := now.Unix()
	for _, i := range moved {
		run.emit(i, EventRerouted, t, map[string]any{"vehicle": run.route.Vehicle, "version": run.route.Version, "reason": "closure"})
	}
	run.s.log.Info("re-routed around a closure", "vehicle", run.route.Vehicle, "route", run.route.ID, "version", run.route.Version, "stops", len(moved))
	return true
}

// closedAhead returns the indices in run.stops of the stops out for
// delivery from the first whose leg enters a closed road on
// (Config.ClosedAhead), the legs starting where predict starts them: pos,
// or the stop the van is serving. None when no leg does, or without
// Config.ClosedAhead.
func (run *routeRun) closedAhead(pos [2]float64, now time.Time) []int {
	cfg := &run.s.cfg
	if cfg.ClosedAhead == nil {
		return nil
	}
	var idx []int
	var ps []PredictStop
	vehicle := run.route.Vehicle
	dwell := run.dwelling()
	for i, st := range run.stops {
		switch {
		case st.Status == StatusArrived || i == dwell:
			pos, vehicle = st.Location, ""
		case st.Status == StatusOutForDelivery:
			idx = append(idx, i)
			ps = append(ps, PredictStop{Location: st.Location, Service: time.Duration(st.Service) * time.Second, Window: st.Window})
		}
	}
	if len(ps) == 0 {
		return nil
	}
	k, err := cfg.ClosedAhead(vehicle, pos, now, ps)
	if err != nil {
		run.s.log.Warn("closures ahead: check failed", "vehicle", run.route.Vehicle, "route", run.route.ID, "err", err)
		return nil
	}
	if k < 0 || k >= len(idx) {
		return nil
	}
	return idx[k:]
}

// rerouteIfBehind re-routes a van that has fallen behind and predicts
// the new order.
func (run *routeRun) rerouteIfBehind(pos [2]float64, now time.Time) {
	if run.needsReroute(now.Unix()) && run.reroute(pos, now) {
		run.predict(pos, now)
		run.state.Baseline = run.lastETA()
	}
}

// lastETA is the predicted arrival at the last open stop (0: none).
func (run *routeRun) lastETA() int64 {
	for i := len(run.stops) - 1; i >= 0; i-- {
		if st := run.stops[i]; open(st.Status) && st.ETA > 0 {
			return st.ETA
		}
	}
	return 0
}

// predict sets the ETA of every stop out for delivery, predicted from pos
// at now (an arrived stop keeps its arrival). A van serving an arrived
// stop moves on when its service ends (it starts at the arrival, or when
// the window opens) or now if the service overran, so the others are
// predicted from that stop's location at that time, without naming the
// vehicle: asking the predictor to drive to the stop the van stands at
// would add the whole service again, and the vehicle's progress model
// would learn a standstill as a slow leg. The stop's location, not pos:
// the matched position of a van standing still jumps between the
// carriageways of its street, and a one-way one sends the prediction
// round the block (on the simulated Porto days, 2-3 min on a 20 s leg,
// and ETAs that grew by a minute a minute while the van stood past its
// service, both firing false delayed events). A failed prediction keeps
// the old ETAs.
func (run *routeRun) predict(pos [2]float64, now time.Time) {
	cfg := &run.s.cfg
	var idx []int
	var ps []PredictStop
	from := now
	serving := false // the van stands at an arrived stop
	drive := StatusOutForDelivery
	if run.route.Status == store.RoutePlanned {
		drive = StatusPlanned // before the departure (beforeDeparture)
	}
	dwell := run.dwelling()
	for i, st := range run.stops {
		switch {
		case st.Status == StatusArrived || i == dwell:
			at := st.ArrivedAt
			if i == dwell {
				at = run.state.DwellSince / 1000
			}
			serving = true
			st.ETA, st.P10, st.P90 = at, at, at
			run.stops[i] = st
			done := time.Unix(max(at, st.Window[0]), 0).Add(time.Duration(st.Service) * time.Second)
			if done.After(from) {
				from = done
			}
			pos = st.Location
		case st.Status == drive:
			idx = append(idx, i)
			ps = append(ps, PredictStop{Location: st.Location, Service: time.Duration(st.Service) * time.Second, Window: st.Window})
		}
	}
	if len(ps) == 0 || cfg.Predict == nil {
		return
	}
	// The vehicle is named only when it is driving: the predictor learns
	// the vehicle's progress (and P10/P90) from the legs it sees, and a
	// van standing at a stop or at its depot drives no leg.
	vehicle := run.route.Vehicle
	if serving || drive == StatusPlanned {
		vehicle = ""
	}
	preds, err := cfg.Predict(vehicle, pos, from, ps)
	if err != nil || len(preds) != len(ps) {
		run.s.log.Warn("ETA update failed", "vehicle", run.route.Vehicle, "route", run.route.ID, "err", err)
		return
	}
	run.etas = true
	for k, i := range idx {
		st := &run.stops[i]
		p := preds[k]
		st.ETA, st.P10, st.P90 = p.Arrival, p.P10, p.P90
	}
}

// rules applies the ETA rules to every stop out for delivery at Unix time
// t: arriving_soon once within the horizon, delayed (with hysteresis) past
// the window's end, eta_changed beyond the threshold from the ETA last
// published; stops_away first.
func (run *routeRun) rules(t int64) {
	cfg := &run.s.cfg
	run.stopsAway(t)
	elapsed := run.serviceElapsed(t)
	// A service that overran (overrunShift) counts only at the last
	// update before a window's end, the next one (a gap later) coming at
	// or after it: earlier ones can wait for the service to end.
	overrun := run.overrunShift(t)
	var gap int64
	if run.state.ETAAt > 0 {
		gap = t - run.state.ETAAt/1000
	}
	for i, st := range run.stops {
		if st.Status != StatusOutForDelivery || st.ETA == 0 {
			continue
		}
		eta := ETA{st.ETA, st.P10, st.P90}
		changed := snapshot(&st, t)
		if st.SoonFired == 0 && st.ETA-t <= int64(cfg.ArrivingSoon/time.Second) {
			run.emit(i, EventArrivingSoon, t, map[string]any{"eta": eta})
			st.SoonFired, st.ETASent, changed = 1, st.ETA, true
			st.SoonAt, st.SoonP10, st.SoonP90 = t, st.P10, st.P90
		}
		if end := st.Window[1]; end > 0 {
			var shift int64
			if end > t && end-t <= gap {
				shift = overrun
			}
			switch {
			case st.Delayed == 0 && st.ETA+shift > end && cfg.confidentlyLate(st.ETA+shift, end, t, elapsed) &&
				!slices.Contains(run.withhold, st.ID):
				late := ETA{st.ETA + shift, st.P10 + shift, st.P90 + shift}
				run.emit(i, EventDelayed, t, map[string]any{"eta": late, "time_window": st.Window})
				st.Delayed, st.ETASent, changed = 1, st.ETA, true
			case st.Delayed == 1 && st.ETA < end-int64(cfg.DelayHysteresis/time.Second):
				st.Delayed, changed = 0, true
			}
		}
		if st.ETASent > 0 && abs(st.ETA-st.ETASent) > int64(cfg.ETAChange/time.Second) {
			run.emit(i, EventETAChanged, t, map[string]any{"eta": eta})
			st.ETASent, changed = st.ETA, true
		}
		if changed {
			run.set(i, st)
		}
	}
}

// confidentlyLate reports whether a prediction of arrival eta, past the
// window's end, is late enough at Unix time t for delayed (see
// Config.DelayMargin), elapsed being the part of a service in progress
// before the stop that has already passed (serviceElapsed): the margin
// counts that service at its whole length, because how long a service
// takes is not known better once it has begun (on the simulated Porto
// days, services of 2:17 and 2:41 for 4 min declared made two false
// alarms of predictions 48 and 79 s late).
func (c *Config) confidentlyLate(eta, end, t, elapsed int64) bool {
	margin := c.DelayMargin * float64(eta-t+elapsed)
	if left, final := float64(end-t), c.DelayFinal.Seconds(); left < final {
		margin *= max(0, left) / final
	}
	return float64(eta-end) >= margin
}

// serving returns the index of the stop the van is serving (arrived at,
// or dwelling at: see dwelling) and when its service began: at its
// arrival, or its window's start when it came early; the dwell's start
// for a stop it is dwelling at. -1 when it serves none.
func (run *routeRun) serving() (int, int64) {
	dwell := run.dwelling()
	for i, st := range run.stops {
		at := st.ArrivedAt
		if i == dwell {
			at = run.state.DwellSince / 1000
		} else if st.Status != StatusArrived {
			continue
		}
		return i, max(at, st.Window[0])
	}
	return -1, 0
}

// serviceElapsed is the time at Unix t since the service of the stop the
// van is serving began (serving), at most the declared service; 0 when it
// serves none.
func (run *routeRun) serviceElapsed(t int64) int64 {
	i, begun := run.serving()
	if i < 0 {
		return 0
	}
	return min(run.stops[i].Service, max(0, t-begun))
}

// overrunShift is how much later than predicted the van leaves the stop
// it serves at Unix time t, once the service has lasted longer than
// declared: predict lets it leave at once, but a service that overran
// goes on for a while yet. It is the lower median of what the van's
// ended services (from their start to the driver's status) that lasted
// longer went on for; 0 when fewer than minOverruns did, or the service
// has not overrun. Only the delayed rule counts it, at the last update
// before a window's end: on the simulated Porto days, a stop 1 s from one
// whose service ran 51 s over got no delayed before its window closed, 4 s
// before the van came. Moving the ETAs themselves by it moved the
// re-routes and the rest of the day too, and counting it at every update
// made false alarms of services that ended a few seconds later
// (bench/RESULTS.md).
func (run *routeRun) overrunShift(t int64) int64 {
	i, begun := run.serving()
	if i < 0 || t-begun <= run.stops[i].Service {
		return 0
	}
	elapsed := t - begun
	var rest []int64
	for _, o := range run.stops {
		if open(o.Status) || o.ArrivedAt == 0 || o.DoneAt == 0 {
			continue
		}
		if d := o.DoneAt - max(o.ArrivedAt, o.Window[0]); d > elapsed {
			rest = append(rest, d-elapsed)
		}
	}
	if len(rest) < minOverruns {
		return 0
	}
	slices.Sort(rest)
	return rest[(len(rest)-1)/2]
}

// minOverruns is the least number of the van's ended services longer
// than the one in progress that overrunShift takes a median of.
const minOverruns = 2

// snapshotHorizons are the horizons of the ETA accuracy figures: the
// predicted arrival is kept when it first comes within each of them.
var snapshotHorizons = [3]int64{60 * 60, 30 * 60, 10 * 60}

// snapshot keeps st's ETA in ETA60, ETA30 and ETA10 at the first update
// (at Unix time t) that predicts the arrival within 60, 30 and 10
// minutes, but not more than a sixth of that closer (a first prediction
// already well inside a horizon is no prediction made at it); it reports
// whether one was taken.
func snapshot(st *store.Stop, t int64) bool {
	changed := false
	for k, slot := range [3]*int64{&st.ETA60, &st.ETA30, &st.ETA10} {
		h := snapshotHorizons[k]
		if left := st.ETA - t; *slot == 0 && left <= h && left > h-h/6 {
			*slot, changed = st.ETA, true
		}
	}
	return changed
}

// stopsAway fires stops_away for the open stops whose count of open stops
// before them first dropped to a configured count. AwayFired keeps the
// least count fired, so a count never fires twice, even when re-routing
// moves the stop back.
func (run *routeRun) stopsAway(t int64) {
	if run.route.Status != store.RouteActive {
		return
	}
	before := 0
	for i, st := range run.stops {
		if !open(st.Status) {
			continue
		}
		k := before
		before++
		if st.Status != StatusOutForDelivery {
			continue
		}
		c := awayCount(run.s.cfg.StopsAway, k)
		if c == 0 || (st.AwayFired != 0 && c >= st.AwayFired) {
			continue
		}
		run.emit(i, EventStopsAway, t, map[string]any{"stops": k})
		st.AwayFired = c
		run.set(i, st)
	}
}

// awayCount returns the least configured count >= k (0: none).
func awayCount(counts []int, k int) int64 {
	best := 0
	for _, c := range counts {
		if c >= k && (best == 0 || c < best) {
			best = c
		}
	}
	return int64(best)
}

func abs(v int64) int64 {
	if v < 0 {
		return -v
	}
	return v
}

// distance in metres between two [lon, lat] points.
func distance(a, b [2]float64) float64 {
	return graph.Haversine(a[1], a[0], b[1], b[0])
}
