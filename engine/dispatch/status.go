package dispatch

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/lastmile/lastmile/engine/analytics"
	"github.com/lastmile/lastmile/engine/store"
)

// StatusInput is the body of POST /v1/stops/{id}/status.
type StatusInput struct {
	// Status is arrived, delivered, failed or cancelled.
	Status string `json:"status"`
	// Reason is required with failed (one of FailReasons).
	Reason string `json:"reason,omitempty"`
	// Time in Unix seconds (default now): a phone that was offline sends
	// the time the driver acted.
	Time *int64 `json:"time,omitempty"`
}

// StopView is a stop as the API shows it.
type StopView struct {
	ID       int64  `json:"id"`
	Tracking string `json:"tracking"`
	Vehicle  string `json:"vehicle"`
	Route    int64  `json:"route"`
	Position int64  `json:"position"`
	Attempt  int64  `json:"attempt"`
	Status   string `json:"status"`
	Reason   string `json:"reason,omitempty"`
	// Location [lon, lat] and the promised window of the shipment.
	Location   [2]float64 `json:"location"`
	TimeWindow *[2]int64  `json:"time_window"`
	Planned    int64      `json:"planned,omitempty"`
	ETA        *ETA       `json:"eta"`
	ArrivedAt  int64      `json:"arrived_at,omitempty"`
	DoneAt     int64      `json:"done_at,omitempty"`
}

func stopView(st store.Stop, vehicle string) StopView {
	v := StopView{ID: st.ID, Tracking: st.Tracking, Vehicle: vehicle, Route: st.Route, Position: st.Position, Attempt: st.Attempt,
		Status: st.Status, Reason: st.Reason, Location: st.Location, Planned: st.Planned, ArrivedAt: st.ArrivedAt, DoneAt: st.DoneAt}
	if st.Window != [2]int64{} {
		w := st.Window
		v.TimeWindow = &w
	}
	if open(st.Status) && st.ETA > 0 {
		v.ETA = &ETA{st.ETA, st.P10, st.P90}
	}
	return v
}

// StopVehicle returns the vehicle whose route holds the stop, so the
// caller can check a driver key's vehicle. A stop never changes route,
// nor a route its vehicle (a re-plan makes new stops), so the run cache's
// answer, when it holds the route, is the store's.
func (s *Service) StopVehicle(ctx context.Context, id int64) (string, error) {
	if v, ok := s.runs.vehicleOf(id); ok {
		return v, nil
	}
	_, veh, err := s.st.StopRoute(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return "", errorf("NotFound", "stop %d: unknown", id)
	}
	return veh, err
}

// SetStopStatus records the driver's (or dispatcher's) update of a stop:
// arrived, delivered, failed with a reason, or cancelled. A route not yet
// out for delivery departs first; delivered or failed without an arrival
// fires arrived first. The same status again changes nothing (a retried
// request); any other change of an ended stop is a Conflict. A driver
// (a vehicle id, "" for any caller) may update only the stops of its
// own vehicle: Forbidden otherwise.
func (s *Service) SetStopStatus(ctx context.Context, id int64, in StatusInput, driver string) (StopView, error) {
	switch in.Status {
	case StatusArrived, StatusDelivered, StatusCancelled:
		if in.Reason != "" {
			return StopView{}, errorf("InvalidValue", "reason: only with failed")
		}
	case StatusFailed:
		if !slices.Contains(FailReasons, in.Reason) {
			return StopView{}, errorf("InvalidValue", "reason %q: want one of %s", in.Reason, strings.Join(FailReasons, ", "))
		}
	default:
		return StopView{}, errorf("InvalidValue", "status %q: want arrived, delivered, failed or cancelled", in.Status)
	}
	now := s.cfg.Now()
	if in.Time != nil {
		if *in.Time <= 0 || *in.Time > now.Unix()+300 {
			return StopView{}, errorf("InvalidValue", "time: want Unix seconds, not in the future")
		}
		now = time.Unix(*in.Time, 0)
	}
	vehicle, err := s.StopVehicle(ctx, id)
	if err != nil {
		return StopView{}, err
	}
	if driver != "" && vehicle != driver {
		return StopView{}, errorf("Forbidden", "this driver key acts for vehicle %q only", driver)
	}
	var view StopView
	// saved is the run written on the vehicle's current route, for the
	// cache of runs once the transaction commits: else the vehicle's next
	// pings, finding its version moved, would be worked again inside their
	// transaction, SQLite's writer held through their ETA predictions
	// (bench ingest with the drivers' statuses: the writer busy 92 % of
	// the load).
	var saved *routeRun
	wrote := false
	_, err = s.st.Tx(ctx, func(tx *store.Tx) error {
		saved, wrote = nil, false
		veh, err := tx.LockVehicle(vehicle)
		if err != nil {
			return err
		}
		// The vehicle's route as this process last committed it, when no
		// one wrote the vehicle since (as Positions starts): reading the
		// route's stops in the transaction held SQLite's writer for half
		// of a status update's time.
		var cached *routeRun
		var st store.Stop
		if e, ok := s.runs.get(vehicle); ok && e.veh.Version == veh.Version && e.veh.Route == veh.Route {
			if k := slices.IndexFunc(e.stops, func(x store.Stop) bool { return x.ID == id }); k >= 0 {
				st = e.stops[k]
				if cached, err = s.newRun(veh, e.route, e.stops); err != nil {
					return err
				}
			}
		}
		if cached == nil {
			if st, err = tx.Stop(id); err != nil {
				return err
			}
			r, err := tx.Route(st.Route)
			if err != nil {
				return err
			}
			if r.Vehicle != vehicle {
				return fmt.Errorf("dispatch: stop %d: on vehicle %q's route %d, not %q's", id, r.Vehicle, r.ID, vehicle)
			}
		}
		if st.Status == in.Status && st.Reason == in.Reason {
			view = stopView(st, vehicle)
			return nil
		}
		if !open(st.Status) {
			return errorf("Conflict", "stop %d is %s already", id, st.Status)
		}
		if in.Status == StatusArrived && st.Status == StatusArrived {
			view = stopView(st, vehicle)
			return nil
		}
		// The stop's route is the vehicle's current one, or an older one
		// being wound up; work on it either way.
		current := veh.Route == st.Route
		veh.Route = st.Route
		run := cached
		if run == nil {
			if run, err = s.loadRun(tx, veh); err != nil {
				return err
			}
		}
		i := slices.IndexFunc(run.stops, func(x store.Stop) bool { return x.ID == id })
		t := now.Unix()
		pos := [2]float64{veh.Lon, veh.Lat}
		if veh.LastMS == 0 {
			pos = run.stops[i].Location
		}
		if run.route.Status == store.RoutePlanned && in.Status != StatusCancelled {
			run.depart(pos, now)
		}
		st = run.stops[i]
		switch in.Status {
		case StatusCancelled:
			st.Status = StatusCancelled
			run.set(i, st)
		case StatusArrived:
			run.arrive(i, t, st.Location)
		default:
			if st.Status != StatusArrived {
				run.arrive(i, t, st.Location)
				st = run.stops[i]
			}
			st.Status, st.Reason, st.DoneAt = in.Status, in.Reason, t
			run.set(i, st)
			var data any
			if in.Status == StatusFailed {
				data = map[string]any{"reason": in.Reason}
			} else {
				pods, err := tx.StopPods(id)
				if err != nil {
					return err
				}
				if d := podData(pods); d != nil {
					data = map[string]any{"pod": d}
				}
			}
			run.emit(i, in.Status, t, data)
			if f, ok := run.fact(i); ok {
				if _, err := tx.InsertFacts([]store.Fact{f}); err != nil {
					return err
				}
			}
		}
		// The van moves on: ETAs from the stop at the next ping.
		run.state.ETAAt = 0
		run.stopsAway(t)
		if err := run.finish(tx); err != nil {
			return err
		}
		wrote = true
		if current {
			saved = run
		}
		view = stopView(run.stops[i], vehicle)
		return nil
	})
	if err != nil {
		s.runs.drop(vehicle)
		return StopView{}, err
	}
	if wrote {
		if e, ok := persistedRun(saved); ok {
			s.runs.put(e)
		} else {
			s.runs.drop(vehicle)
		}
	}
	return view, nil
}

// VehicleView answers GET /v1/vehicles/{id}.
type VehicleView struct {
	ID string `json:"id"`
	// Location is the latest processed position [lon, lat] and Time its
	// Unix time (null before the first ping).
	Location *[2]float64 `json:"location"`
	Time     *int64      `json:"time"`
	Route    *int64      `json:"route"`
	Status   string      `json:"status,omitempty"`
	Version  int64       `json:"version,omitempty"`
	// Stops are the route's stops in order, open ones with their ETAs.
	Stops []StopView `json:"stops"`
}

// Vehicle returns a vehicle's position, route and stops.
func (s *Service) Vehicle(ctx context.Context, id string) (VehicleView, error) {
	veh, err := s.st.Vehicle(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return VehicleView{}, errorf("NotFound", "vehicle %q: unknown", id)
	}
	if err != nil {
		return VehicleView{}, err
	}
	v := VehicleView{ID: id, Stops: []StopView{}}
	if veh.LastMS > 0 {
		ll, t := [2]float64{veh.Lon, veh.Lat}, veh.LastMS/1000
		v.Location, v.Time = &ll, &t
	}
	if veh.Route == 0 {
		return v, nil
	}
	r, err := s.st.Route(ctx, veh.Route)
	if err != nil {
		return VehicleView{}, err
	}
	rid := r.ID
	v.Route, v.Status, v.Version = &rid, r.Status, r.Version
	stops, err := s.st.RouteStops(ctx, r.ID)
	if err != nil {
		return VehicleView{}, err
	}
	for _, st := range stops {
		v.Stops = append(v.Stops, stopView(st, id))
	}
	return v, nil
}

// fact is the analytics fact of stop i, which just ended: the leg to it
// started when the van left the stop it served before (the latest one
// done by its arrival) or the depot; its wait is the time from the
// arrival to the window's start, the rest until done its service. A stop
// whose data the analytics refuse is logged and left out (the driver's
// update stands).
func (run *routeRun) fact(i int) (store.Fact, bool) {
	st := run.stops[i]
	start := run.route.Started
	for j, o := range run.stops {
		if j != i && o.DoneAt > start && o.DoneAt <= st.ArrivedAt {
			start = o.DoneAt
		}
	}
	in := analytics.FactInput{ID: strconv.FormatInt(st.ID, 10), Plan: run.route.Plan, Vehicle: run.route.Vehicle,
		Driver: run.route.Driver, Class: run.route.Class, Tracking: st.Tracking, Location: st.Location, TimeZone: st.TZ,
		Status: st.Status, Reason: st.Reason, Attempt: st.Attempt, Planned: st.Planned, Arrival: st.ArrivedAt, Done: st.DoneAt,
		PlannedDrive: st.PlannedDrive, PlannedService: st.Service, PlannedDistance: st.PlannedDist,
		ETA60: st.ETA60, ETA30: st.ETA30, ETA10: st.ETA10}
	if start > 0 && start <= st.ArrivedAt {
		d := st.ArrivedAt - start
		in.Drive = &d
	}
	if st.Window != [2]int64{} {
		w := st.Window
		in.TimeWindow = &w
		in.Wait = min(max(w[0]-st.ArrivedAt, 0), st.DoneAt-st.ArrivedAt)
	}
	in.Service = st.DoneAt - st.ArrivedAt - in.Wait
	if st.SoonAt > 0 {
		in.Soon = &analytics.SoonInput{Time: st.SoonAt, P10: st.SoonP10, P90: st.SoonP90}
	}
	f, err := in.Fact("s"+in.ID, time.UTC)
	if err != nil {
		run.s.log.Warn("stop left out of analytics", "stop", st.ID, "err", err)
		return store.Fact{}, false
	}
	return f, true
}
