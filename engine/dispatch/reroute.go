package dispatch

import (
	"cmp"
	"encoding/json"
	"slices"
	"time"

	"github.com/lastmile/lastmile/engine/store"
	"github.com/lastmile/lastmile/vrp"
)

// needsReroute reports whether the van has fallen behind at Unix time t:
// an open stop predicted past its window's end by more than
// Config.RerouteSlack or enough for delayed to fire, or (when set) the
// last open stop predicted later by more than Config.RerouteDrift than at
// the last (re)plan; and the last re-routing is at least
// Config.RerouteInterval of ping time ago.
func (run *routeRun) needsReroute(t int64) bool {
	cfg := &run.s.cfg
	if cfg.Solve == nil || cfg.RerouteSlack < 0 || run.route.Status != store.RouteActive {
		return false
	}
	if run.state.RerouteAt != 0 && t-run.state.RerouteAt < int64(cfg.RerouteInterval/time.Second) {
		return false
	}
	n := 0
	last := int64(0)
	late := false
	elapsed := run.serviceElapsed(t)
	for _, st := range run.stops {
		if st.Status != StatusOutForDelivery || st.ETA == 0 {
			continue
		}
		n++
		last = st.ETA
		// Late by more than the slack, or late enough for delayed (which
		// the rules would fire next): a re-route that keeps the window
		// spares the recipient a warning that would turn out false.
		end := st.Window[1]
		if end > 0 && (st.ETA > end+int64(cfg.RerouteSlack/time.Second) ||
			st.Delayed == 0 && st.ETA > end && cfg.confidentlyLate(st.ETA, end, t, elapsed)) {
			late = true
		}
	}
	if n < 2 {
		return false // nothing to reorder
	}
	drift := cfg.RerouteDrift > 0 && run.state.Baseline != 0 && last-run.state.Baseline > int64(cfg.RerouteDrift/time.Second)
	return late || drift
}

// reroute re-optimises the order of the van's open stops from pos at now
// with vrp, within their windows (a window the van cannot keep any more is
// stretched step by step, so the stop is placed early rather than dropped)
// and the driver's shift, breaks and end. When the order changes, positions are
// renumbered, the route's version grows and every stop whose place changed
// gets rerouted; the ETAs and rules then follow the new order. It reports
// whether the order changed.
func (run *routeRun) reroute(pos [2]float64, now time.Time) bool {
	cfg := &run.s.cfg
	t := now.Unix()
	run.state.RerouteAt = t
	vs, err := parseVehicles([]json.RawMessage{json.RawMessage(run.route.Spec)})
	if err != nil {
		run.s.log.Warn("re-route: vehicle spec", "route", run.route.ID, "err", err)
		return false
	}
	v := vs[0].v
	v.Start = vrp.CoordLocation(pos[0], pos[1])
	v.HasStart = true
	if v.TimeWindow.End != 0 && v.TimeWindow.End <= t {
		return false // past the shift: nothing to plan
	}
	v.TimeWindow.Start = t
	if v.TimeWindow.End == 0 {
		v.TimeWindow.End = vrp.MaxTime
	}
	// Breaks already over are dropped.
	v.Breaks = slices.DeleteFunc(v.Breaks, func(b vrp.Break) bool {
		return len(b.TimeWindows) > 0 && b.TimeWindows[len(b.TimeWindows)-1].End < t
	})
	v.Capacity = nil // the parcels are on board
	var idx []int    // the open stops' indexes
	driving := true
	for i, st := range run.stops {
		switch st.Status {
		case StatusOutForDelivery:
			idx = append(idx, i)
		case StatusArrived:
			driving = false
		}
	}
	// The stop the van is driving to stays first: its driver is on the
	// way and takes a new order from the next departure on (as the
	// drivers of datasets/sim do; a dispatcher's "task in progress"). A
	// van standing at a stop may change all the rest. Re-routing the
	// current leg as well made the server predict the stop after a stop
	// inserted before it: on Porto seeds 2-3, 4 of the 5 delayed false
	// alarms were such stops, predicted 5-9 min late 8-10 min ahead.
	kept := 0 // stops of idx kept first; the solver orders idx[kept:]
	if driving && len(idx) > 0 {
		next := run.stops[idx[0]]
		v.Start = vrp.CoordLocation(next.Location[0], next.Location[1])
		at := max(t, next.ETA, next.Window[0])
		v.TimeWindow.Start = at + next.Service
		if v.TimeWindow.End <= v.TimeWindow.Start {
			return false // the shift ends at the stop being driven to
		}
		kept = 1
	}
	jobs := idx[kept:] // stop index of each job
	if len(jobs) < 2 {
		return false
	}
	// A stop predicted late keeps its window first (the solver may find
	// an order that still keeps it), then gets half and then all of its
	// predicted lateness (plus a minute) added to the window's end, so the
	// order chosen keeps the lateness down rather than ignoring it.
	t0 := time.Now()
	var sol *vrp.Solution
	for _, stretch := range []float64{0, 0.5, 1} {
		p := &vrp.Problem{Vehicles: []vrp.Vehicle{v}}
		for k, i := range jobs {
			st := run.stops[i]
			j := vrp.Job{ID: uint64(k + 1), Location: vrp.CoordLocation(st.Location[0], st.Location[1]), Service: st.Service}
			if w := st.Window; w != [2]int64{} {
				end := w[1]
				if st.ETA > end {
					end += int64(stretch*float64(st.ETA-end)) + int64(stretch*60)
				}
				j.TimeWindows = []vrp.TimeWindow{{Start: w[0], End: max(end, t)}}
			}
			p.Jobs = append(p.Jobs, j)
		}
		s, err := cfg.Solve(p, cfg.rerouteBudget(3))
		if err != nil {
			run.s.log.Warn("re-route: solve", "route", run.route.ID, "err", err)
			return false
		}
		// No route at all: no stop fits the windows as they stand (a
		// wider stretch may fit them), like a stop left out.
		if len(s.Routes) == 1 && len(s.Unassigned) == 0 {
			sol = s
			break
		}
	}
	if sol == nil {
		run.s.log.Info("re-route: no order keeps every stop", "route", run.route.ID, "stops", len(jobs))
		return false
	}
	// The new order: the solution's jobs, then any it left out in their
	// old order.
	order := slices.Clone(idx[:kept])
	seen := make([]bool, len(jobs))
	for _, step := range sol.Routes[0].Steps {
		if step.Type == "job" && step.Job != nil {
			k := int(*step.Job - 1)
			order = append(order, jobs[k])
			seen[k] = true
		}
	}
	for k, i := range jobs {
		if !seen[k] {
			order = append(order, i)
		}
	}
	if slices.Equal(order, idx) {
		run.s.log.Debug("re-route: order kept", "route", run.route.ID, "stops", len(idx), "ms", time.Since(t0).Milliseconds())
		return false
	}
	// Renumber: the stops not re-planned keep their places; the re-planned
	// ones fill the places they held, in the new order.
	places := make([]int64, len(idx))
	for k, i := range idx {
		places[k] = run.stops[i].Position
	}
	moved := map[int64]bool{}
	for k, i := range order {
		st := run.stops[i]
		if st.Position != places[k] {
			st.Position = places[k]
			run.set(i, st)
			moved[st.ID] = true
		}
	}
	// Back to position order, the dirty flags with their stops.
	perm := make([]int, len(run.stops))
	for i := range perm {
		perm[i] = i
	}
	slices.SortStableFunc(perm, func(a, b int) int { return cmp.Compare(run.stops[a].Position, run.stops[b].Position) })
	stops := make([]store.Stop, len(perm))
	dirty := make([]bool, len(perm))
	for ni, oi := range perm {
		stops[ni], dirty[ni] = run.stops[oi], run.dirty[oi]
	}
	run.stops, run.dirty = stops, dirty
	run.route.Version++
	run.etas = true
	for i, st := range run.stops {
		if moved[st.ID] {
			run.emit(i, EventRerouted, t, map[string]any{"vehicle": run.route.Vehicle, "version": run.route.Version})
		}
	}
	run.s.log.Info("re-routed", "vehicle", run.route.Vehicle, "route", run.route.ID, "version", run.route.Version,
		"stops", len(idx), "moved", len(moved), "ms", time.Since(t0).Milliseconds())
	return true
}
