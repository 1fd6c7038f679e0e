package dispatch

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"slices"
	"time"

	"github.com/lastmile/lastmile/engine/store"
)

// lateStops returns the indexes of the stops out for delivery predicted
// past their window's end by more than slack seconds, the latest first,
// leaving out the first stop out for delivery (the one the van is driving
// to or standing at: its driver is on the way).
func (run *routeRun) lateStops(slack int64) []int {
	var late []int
	first := true
	for i, st := range run.stops {
		if st.Status != StatusOutForDelivery {
			continue
		}
		if first {
			first = false
			continue
		}
		if end := st.Window[1]; end > 0 && st.ETA > end+slack {
			late = append(late, i)
		}
	}
	slices.SortStableFunc(late, func(a, b int) int {
		return cmp.Compare(run.stops[b].ETA-run.stops[b].Window[1], run.stops[a].ETA-run.stops[a].Window[1])
	})
	return late
}

// lateness is the sum over the stops out for delivery of how far their
// predicted arrival passes their window's end (s).
func (run *routeRun) lateness() int64 {
	var sum int64
	for _, st := range run.stops {
		if end := st.Window[1]; st.Status == StatusOutForDelivery && end > 0 && st.ETA > end {
			sum += st.ETA - end
		}
	}
	return sum
}

// checkHandover marks the run for a handover (Config.Handover) after an
// ETA update at Unix time t that still leaves a stop more than
// RerouteSlack late, at most once every RerouteInterval of ping time;
// Positions tries it once the pings are committed. Until then the late
// stops' delayed waits (withhold), unless their window ends within
// DelayFinal and an ETAInterval: a handover may keep the window, and a
// recipient told of a delay the next minute undoes hears a false alarm.
// The wait lasts this update only: when no handover is made, or when a
// phone's backlog of pings goes on past it in one batch, delayed fires at
// the next update.
func (run *routeRun) checkHandover(t int64) {
	cfg := &run.s.cfg
	run.withhold = run.withhold[:0] // for this update only: a backlog of pings goes on without the choice
	if !cfg.Handover || run.route.Status != store.RouteActive {
		return
	}
	if run.state.HandoverAt != 0 && t-run.state.HandoverAt < int64(cfg.RerouteInterval/time.Second) {
		return
	}
	late := run.lateStops(max(0, int64(cfg.RerouteSlack/time.Second))) // a negative slack turns re-routing off, not this
	if len(late) == 0 {
		return
	}
	run.state.HandoverAt = t
	run.handover = true
	for _, i := range late {
		if st := run.stops[i]; st.Window[1]-t > int64((cfg.DelayFinal+cfg.ETAInterval)/time.Second) {
			run.withhold = append(run.withhold, st.ID)
		}
	}
}

// handoverPlan is a handover handOver chose: the stops (by id) the late
// van gives, in their order on the receiving van, and for each the id of
// the receiving van's own stop it goes before (0: last); stops given that
// go before the same one keep their order.
type handoverPlan struct {
	from, to string
	stops    []int64
	before   []int64
	etas     []ETA // the stops' predicted arrivals on the receiving van
	gain     int64 // s of lateness saved
}

// handOver tries to hand some of vehicle's late stops to a van of the
// same plan at ping time now. The late stops (lateStops, from the latest,
// at most HandoverMax) are taken one more at a time; each candidate van
// (its route active, its position within HandoverRadius of the latest
// stop) gets them at their cheapest places by straight-line detour, after
// the stop it is driving to, and both vans are predicted again. The
// handover that saves the most lateness (lateness, over both vans),
// HandoverGain at least, and keeps the receiving van within its shift and
// its capacity (room) is made in a transaction of its own (transfer). It
// reports whether one was made; failures are logged, as the pings that
// led here are stored.
func (s *Service) handOver(ctx context.Context, vehicle string, now time.Time) bool {
	cfg := &s.cfg
	t0 := time.Now()
	a, err := s.snapshotRun(ctx, vehicle)
	if err != nil || a == nil || a.route.Status != store.RouteActive || cfg.Predict == nil {
		return false
	}
	late := a.lateStops(0)
	if len(late) == 0 {
		return false
	}
	late = late[:min(len(late), cfg.HandoverMax)]
	routes, err := s.st.PlanRoutes(ctx, a.route.Plan)
	if err != nil {
		s.log.Warn("handover: plan routes", "route", a.route.ID, "err", err)
		return false
	}
	// The candidates: the plan's other vans out for delivery near the
	// latest stop.
	far := a.stops[late[0]].Location
	var cands []*routeRun
	for _, r := range routes {
		if r.Vehicle == vehicle || r.Status != store.RouteActive {
			continue
		}
		b, err := s.snapshotRun(ctx, r.Vehicle)
		if err != nil || b == nil || b.route.ID != r.ID || b.veh.LastMS == 0 ||
			distance([2]float64{b.veh.Lon, b.veh.Lat}, far) > cfg.HandoverRadius {
			continue
		}
		cands = append(cands, b)
	}
	if len(cands) == 0 {
		return false
	}
	posA := [2]float64{a.veh.Lon, a.veh.Lat}
	beforeA := a.lateness()
	// The late van without its first k late stops, predicted once per k.
	afterA := make([]int64, len(late)+1)
	for k := 1; k <= len(late); k++ {
		gone := map[int64]bool{}
		for _, i := range late[:k] {
			gone[a.stops[i].ID] = true
		}
		rest := slices.DeleteFunc(slices.Clone(a.stops), func(st store.Stop) bool { return gone[st.ID] })
		ra, err := s.newRun(a.veh, a.route, rest)
		if err != nil {
			return false
		}
		ra.predict(posA, now)
		afterA[k] = ra.lateness()
	}
	var best *handoverPlan
	// The late stops' parcels, for the other vans' capacities.
	parcels := make([]store.Parcels, len(late))
	for j, i := range late {
		sh, err := s.st.ShipmentByTracking(ctx, a.stops[i].Tracking)
		if err != nil {
			s.log.Warn("handover: shipment", "stop", a.stops[i].ID, "err", err)
			return false
		}
		parcels[j] = sh.Parcels
	}
	for _, b := range cands {
		room, err := s.room(ctx, b)
		if err != nil {
			s.log.Warn("handover: capacity", "vehicle", b.route.Vehicle, "err", err)
			continue
		}
		posB := [2]float64{b.veh.Lon, b.veh.Lat}
		b.predict(posB, now)
		beforeB := b.lateness()
		for k := 1; k <= len(late); k++ {
			news := make([]store.Stop, k)
			for j, i := range late[:k] {
				news[j] = a.stops[i]
			}
			if !fits(room, parcels[:k]) {
				break // more stops fit no better
			}
			rb, err := s.newRun(b.veh, b.route, insertCheapest(b, posB, news))
			if err != nil {
				continue
			}
			rb.predict(posB, now)
			if rb.shiftEnd > 0 && rb.lastETA() > rb.shiftEnd {
				continue
			}
			gain := beforeA + beforeB - afterA[k] - rb.lateness()
			if best == nil || gain > best.gain {
				best = placed(vehicle, rb, news)
				best.gain = gain
			}
		}
	}
	if best == nil || best.gain < int64(cfg.HandoverGain/time.Second) {
		s.log.Debug("handover: none saves enough", "vehicle", vehicle, "candidates", len(cands), "ms", time.Since(t0).Milliseconds())
		return false
	}
	if err := s.transfer(ctx, best, a.veh.Version, now); err != nil {
		var pe *Error
		if errors.As(err, &pe) {
			s.log.Info("handover: not made", "from", best.from, "to", best.to, "reason", pe.Message)
		} else {
			s.log.Warn("handover: failed", "from", best.from, "to", best.to, "err", err)
		}
		return false
	}
	s.log.Info("handed over", "from", best.from, "to", best.to, "stops", len(best.stops), "gain_s", best.gain,
		"ms", time.Since(t0).Milliseconds())
	return true
}

// room returns what b's vehicle has room for beyond the parcels of its
// open stops (its capacity in the plan less their amounts, for as many
// dimensions: parcels, kg, litres), nil when it has no capacity.
func (s *Service) room(ctx context.Context, b *routeRun) ([]int64, error) {
	vs, err := parseVehicles([]json.RawMessage{json.RawMessage(b.route.Spec)})
	if err != nil {
		return nil, err
	}
	room := slices.Clone(vs[0].v.Capacity)
	if len(room) == 0 {
		return nil, nil
	}
	for _, st := range b.stops {
		if !open(st.Status) {
			continue
		}
		sh, err := s.st.ShipmentByTracking(ctx, st.Tracking)
		if err != nil {
			return nil, err
		}
		for d, a := range amounts(sh.Parcels, len(room)) {
			room[d] -= a
		}
	}
	return room, nil
}

// fits reports whether parcels fit in room (nil: no limit).
func fits(room []int64, parcels []store.Parcels) bool {
	if room == nil {
		return true
	}
	need := make([]int64, len(room))
	for _, p := range parcels {
		for d, a := range amounts(p, len(room)) {
			need[d] += a
		}
	}
	for d := range room {
		if need[d] > room[d] {
			return false
		}
	}
	return true
}

// placed returns the handover of news (stops of vehicle from) to rb's
// vehicle, where rb holds them (as insertCheapest put them, with id 0)
// and has predicted them.
func placed(from string, rb *routeRun, news []store.Stop) *handoverPlan {
	p := &handoverPlan{from: from, to: rb.route.Vehicle}
	for i, st := range rb.stops {
		if st.ID != 0 {
			continue
		}
		k := slices.IndexFunc(news, func(ns store.Stop) bool { return ns.Shipment == st.Shipment })
		// The first of rb's own stops after it: a stop given may go
		// before another given one.
		next := int64(0)
		if j := slices.IndexFunc(rb.stops[i:], func(o store.Stop) bool { return o.ID != 0 }); j >= 0 {
			next = rb.stops[i+j].ID
		}
		p.stops = append(p.stops, news[k].ID)
		p.before = append(p.before, next)
		p.etas = append(p.etas, ETA{st.ETA, st.P10, st.P90})
	}
	return p
}

// insertCheapest returns b's stops with copies of news (out for delivery
// on b's route, id 0, not yet stored) each put, in turn, where it adds
// the least straight-line distance to b's drive from pos through its
// stops out for delivery, never before the first of them when b is
// driving to it.
func insertCheapest(b *routeRun, pos [2]float64, news []store.Stop) []store.Stop {
	stops := slices.Clone(b.stops)
	for _, ns := range news {
		var idx []int // stops out for delivery, in order
		from := pos
		for i, st := range stops {
			switch st.Status {
			case StatusArrived:
				from = st.Location
			case StatusOutForDelivery:
				idx = append(idx, i)
			}
		}
		first := 0
		if i, _ := b.serving(); len(idx) > 0 && i < 0 {
			first = 1 // driving to idx[0]
		}
		bestAt, bestCost := len(stops), -1.0
		for j := first; j <= len(idx); j++ {
			prev := from
			if j > 0 {
				prev = stops[idx[j-1]].Location
			}
			cost := distance(prev, ns.Location)
			at := len(stops)
			if j < len(idx) {
				next := stops[idx[j]].Location
				cost += distance(ns.Location, next) - distance(prev, next)
				at = idx[j]
			}
			if bestCost < 0 || cost < bestCost {
				bestAt, bestCost = at, cost
			}
		}
		st := ns
		st.ID, st.Route, st.Status = 0, b.route.ID, StatusOutForDelivery
		stops = slices.Insert(stops, bestAt, st)
		for i := range stops {
			stops[i].Position = int64(i)
		}
	}
	return stops
}

// transfer makes the handover p in one transaction: both vehicles locked
// in name order, the late one unchanged since p was chosen (its version
// fromVersion), both still out on one plan. The late van's stops become
// handed_over, each with rerouted naming the new vehicle; new stops of the
// same attempt join the other van where p places them, out for delivery,
// with the old ones' rule state (so that stops_away, arriving_soon and
// delayed do not fire again for what the recipient was told) and the
// arrival predicted for them (published in the rerouted event; eta_changed
// counts from it); the other van's stops behind them get rerouted. Both
// vans' ETAs follow at their next pings.
func (s *Service) transfer(ctx context.Context, p *handoverPlan, fromVersion int64, now time.Time) error {
	t := now.Unix()
	var saved []*routeRun
	_, err := s.st.Tx(ctx, func(tx *store.Tx) error {
		saved = saved[:0]
		names := []string{p.from, p.to}
		slices.Sort(names)
		vehs := map[string]store.Vehicle{}
		for _, n := range names {
			v, err := tx.LockVehicle(n)
			if err != nil {
				return err
			}
			vehs[n] = v
		}
		if vehs[p.from].Version != fromVersion {
			return errorf("Conflict", "vehicle %q changed since", p.from)
		}
		a, err := s.loadRun(tx, vehs[p.from])
		if err != nil {
			return err
		}
		b, err := s.loadRun(tx, vehs[p.to])
		if err != nil {
			return err
		}
		if a.route.Plan != b.route.Plan || a.route.Status != store.RouteActive || b.route.Status != store.RouteActive {
			return errorf("Conflict", "vehicles %q and %q are not out on one plan", p.from, p.to)
		}
		at := make([]int, len(p.stops))
		news := make([]store.Stop, len(p.stops))
		for k, id := range p.stops {
			i := slices.IndexFunc(a.stops, func(x store.Stop) bool { return x.ID == id })
			if i < 0 || a.stops[i].Status != StatusOutForDelivery {
				return errorf("Conflict", "stop %d is not out for delivery on %q", id, p.from)
			}
			old := a.stops[i]
			ns := old
			ns.ID, ns.Route, ns.Status = 0, b.route.ID, StatusOutForDelivery
			ns.ArrivedAt, ns.DoneAt = 0, 0
			ns.PlannedDrive, ns.PlannedDist = 0, 0 // the plan's leg was another van's
			e := p.etas[k]
			ns.ETA, ns.P10, ns.P90, ns.ETASent = e.Arrival, e.P10, e.P90, e.Arrival
			news[k] = ns
			at[k] = len(b.stops)
			if p.before[k] != 0 {
				if at[k] = slices.IndexFunc(b.stops, func(x store.Stop) bool { return x.ID == p.before[k] }); at[k] < 0 || !open(b.stops[at[k]].Status) {
					return errorf("Conflict", "stop %d is no longer open on %q", p.before[k], p.to)
				}
			}
			old.Status, old.DoneAt = StatusHandedOver, t
			a.set(i, old)
			a.emit(i, EventRerouted, t, map[string]any{"vehicle": p.to, "from": p.from, "version": b.route.Version + 1, "reason": "handover", "eta": e})
		}
		if _, err := b.insertStops(tx, at, news, t, map[string]any{"reason": "handover"}); err != nil {
			return err
		}
		a.route.Version++
		a.state.ETAAt = 0
		for _, run := range []*routeRun{a, b} {
			if err := run.finish(tx); err != nil {
				return err
			}
		}
		saved = append(saved, a, b)
		return nil
	})
	if err != nil {
		s.runs.drop(p.from)
		s.runs.drop(p.to)
		return err
	}
	s.keepRuns(saved)
	return nil
}
