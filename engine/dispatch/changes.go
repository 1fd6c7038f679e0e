package dispatch

import (
	"context"
	"errors"
	"slices"

	"github.com/lastmile/lastmile/engine/store"
)

// AddStopInput is the body of POST /v1/routes/{id}/stops.
type AddStopInput struct {
	Tracking string `json:"tracking"`
	// Position is the place among the route's open stops (0 first);
	// absent: after the last.
	Position *int `json:"position,omitempty"`
}

// AddStop adds a shipment to a route that has not ended: a new attempt,
// at the given place among its open stops (or last). On a route out for
// delivery the stop is out for delivery at once, and the ETAs are updated
// at the van's next ping (re-routing may then move it). The stops behind
// it get rerouted.
func (s *Service) AddStop(ctx context.Context, routeID int64, in AddStopInput) (StopView, error) {
	if checkTracking(in.Tracking) != nil {
		return StopView{}, errorf("NotFound", "shipment %q: unknown", in.Tracking)
	}
	r, err := s.st.Route(ctx, routeID)
	if errors.Is(err, store.ErrNotFound) {
		return StopView{}, errorf("NotFound", "route %d: unknown", routeID)
	}
	if err != nil {
		return StopView{}, err
	}
	var view StopView
	_, err = s.st.Tx(ctx, func(tx *store.Tx) error {
		veh, err := tx.LockVehicle(r.Vehicle)
		if err != nil {
			return err
		}
		if veh.Route != routeID {
			return errorf("Conflict", "route %d is not vehicle %q's current route", routeID, r.Vehicle)
		}
		sh, err := tx.LockShipment(in.Tracking)
		if errors.Is(err, store.ErrNotFound) {
			return errorf("NotFound", "shipment %q: unknown", in.Tracking)
		}
		if err != nil {
			return err
		}
		if sh.Status == StatusDelivered {
			return errorf("Conflict", "shipment %q is delivered", in.Tracking)
		}
		attempt := int64(1)
		if prev, err := tx.LatestStop(sh.ID); err == nil {
			if open(prev.Status) {
				return errorf("Conflict", "shipment %q is on route %d already (stop %d)", in.Tracking, prev.Route, prev.ID)
			}
			attempt = prev.Attempt + 1
		} else if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		run, err := s.loadRun(tx, veh)
		if err != nil {
			return err
		}
		if run.route.Status == store.RouteDone {
			return errorf("Conflict", "route %d has ended", routeID)
		}
		// Where it goes: before the open stop at that place, or last.
		var openIdx []int
		for i, st := range run.stops {
			if open(st.Status) {
				openIdx = append(openIdx, i)
			}
		}
		at := len(run.stops)
		if in.Position != nil {
			p := *in.Position
			if p < 0 || p > len(openIdx) {
				return errorf("InvalidValue", "position %d: want 0 to %d (the open stops)", p, len(openIdx))
			}
			if p < len(openIdx) {
				at = openIdx[p]
			}
		}
		status := StatusPlanned
		if run.route.Status == store.RouteActive {
			status = StatusOutForDelivery
		}
		st := store.Stop{Route: routeID, Shipment: sh.ID, Attempt: attempt, Status: status,
			Tracking: sh.Tracking, Location: sh.Location, Window: sh.Window, Service: sh.Service}
		t := s.now()
		added, err := run.insertStops(tx, []int{at}, []store.Stop{st}, t, nil)
		if err != nil {
			return err
		}
		at = added[0]
		if status == StatusOutForDelivery {
			run.emit(at, EventOutForDelivery, t, map[string]any{"vehicle": run.route.Vehicle})
		}
		if err := run.finish(tx); err != nil {
			return err
		}
		view = stopView(run.stops[at], r.Vehicle)
		return nil
	})
	if err != nil {
		return StopView{}, err
	}
	return view, nil
}

// insertStops inserts news[k] before the stop at index at[k] of the run
// (len(run.stops): last; news at one place keep their order), renumbers
// the positions from 0 in the new order and stores the new stops. On a
// route out for delivery, every open stop whose position changed gets
// rerouted, with data added to the event's. The route's version grows
// and its ETAs are updated at the next ping. It returns the new stops'
// indexes.
func (run *routeRun) insertStops(tx *store.Tx, at []int, news []store.Stop, t int64, data map[string]any) ([]int, error) {
	stops := make([]store.Stop, 0, len(run.stops)+len(news))
	dirty := make([]bool, 0, cap(stops))
	added := make([]int, len(news))
	for i := 0; i <= len(run.stops); i++ {
		for k := range news {
			if at[k] == i {
				added[k] = len(stops)
				stops, dirty = append(stops, news[k]), append(dirty, true)
			}
		}
		if i < len(run.stops) {
			stops, dirty = append(stops, run.stops[i]), append(dirty, run.dirty[i])
		}
	}
	run.stops, run.dirty = stops, dirty
	isNew := make([]bool, len(stops))
	for _, i := range added {
		isNew[i] = true
	}
	for i := range run.stops {
		st := &run.stops[i]
		if isNew[i] {
			st.Position = int64(i)
			if err := tx.InsertStop(st); err != nil {
				return nil, err
			}
			continue
		}
		if st.Position == int64(i) {
			continue
		}
		st.Position = int64(i)
		run.dirty[i] = true
		if open(st.Status) && run.route.Status == store.RouteActive {
			d := map[string]any{"vehicle": run.route.Vehicle, "version": run.route.Version + 1}
			for k, v := range data {
				d[k] = v
			}
			run.emit(i, EventRerouted, t, d)
		}
	}
	run.route.Version++
	run.etas = true
	run.state.ETAAt = 0 // ETAs at the next ping
	return added, nil
}

// WindowInput is the body of POST /v1/shipments/{tracking}/window.
type WindowInput struct {
	TimeWindow [2]int64 `json:"time_window"`
}

// ChangeWindow moves a shipment's promised window (the recipient chose
// another slot). A stop out for delivery is predicted again at the van's
// next ping, through the same rules as any ETA update: its van is
// re-routed when it can no longer keep the window, and delayed is
// re-armed for the new window.
func (s *Service) ChangeWindow(ctx context.Context, tracking string, in WindowInput) (ShipmentView, error) {
	w := in.TimeWindow
	if w[0] <= 0 || w[1] < w[0] || w[1] > 1<<40 {
		return ShipmentView{}, errorf("InvalidValue", "time_window: want [start, end] in Unix seconds with start <= end")
	}
	if checkTracking(tracking) != nil {
		return ShipmentView{}, errorf("NotFound", "shipment %q: unknown", tracking)
	}
	var sh store.Shipment
	_, err := s.st.Tx(ctx, func(tx *store.Tx) error {
		var err error
		// The vehicle lock first (the lock order), when the shipment has
		// an open stop.
		if cur, err := s.st.ShipmentByTracking(ctx, tracking); err == nil {
			if st, err := tx.LatestStop(cur.ID); err == nil && open(st.Status) {
				r, err := tx.Route(st.Route)
				if err != nil {
					return err
				}
				veh, err := tx.LockVehicle(r.Vehicle)
				if err != nil {
					return err
				}
				if veh.Route == r.ID {
					if run, err := s.loadRun(tx, veh); err == nil {
						run.state.ETAAt = 0
						for i := range run.stops {
							if run.stops[i].ID == st.ID {
								run.stops[i].Delayed = 0
								run.dirty[i] = true
							}
						}
						if err := run.save(tx); err != nil {
							return err
						}
					}
				}
			}
		}
		sh, err = tx.LockShipment(tracking)
		if errors.Is(err, store.ErrNotFound) {
			return errorf("NotFound", "shipment %q: unknown", tracking)
		}
		if err != nil {
			return err
		}
		if !open(sh.Status) && sh.Status != StatusCreated && !slices.Contains(CallerEventTypes, sh.Status) {
			return errorf("Conflict", "shipment %q is %s", tracking, sh.Status)
		}
		return tx.SetShipmentWindow(sh.ID, w, s.now())
	})
	if err != nil {
		return ShipmentView{}, err
	}
	return s.Shipment(ctx, tracking)
}
