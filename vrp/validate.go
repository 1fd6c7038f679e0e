package vrp

import (
	"errors"
	"fmt"
	"math"
)

// Report summarises a solution checked by Validate.
type Report struct {
	Routes, Assigned, Unassigned int
	// Cost, Duration (travel), Distance, WaitingTime and Priority as
	// recomputed from the problem.
	Cost, Duration, Distance, WaitingTime, Priority int64
}

// Validate recomputes every route of s from the problem alone (matrices,
// tasks, vehicles) — not from solver internals — and returns an error listing
// every violated constraint (windows, breaks, loads, skills, precedence,
// max tasks/travel time/distance, shift) and every figure of s (arrival,
// waiting, load, cumulative duration/distance, route and summary cost) that
// does not match the recomputation. Each task must appear exactly once,
// either in a route or in the unassigned list.
func Validate(p *Problem, s *Solution) (Report, error) {
	var rep Report
	var errs []error
	bad := func(format string, a ...any) {
		if len(errs) < 50 {
			errs = append(errs, fmt.Errorf(format, a...))
		}
	}
	if s == nil {
		return rep, errors.New("nil solution")
	}
	type taskRef struct {
		kind int // 0 job, 1 pickup, 2 delivery
		idx  int
	}
	tasks := map[string]taskRef{}
	key := func(typ string, id uint64) string { return fmt.Sprintf("%s:%d", typ, id) }
	for i, j := range p.Jobs {
		tasks[key("job", j.ID)] = taskRef{0, i}
	}
	for i, sh := range p.Shipments {
		tasks[key("pickup", sh.Pickup.ID)] = taskRef{1, i}
		tasks[key("delivery", sh.Delivery.ID)] = taskRef{2, i}
	}
	seen := map[string]int{}
	vehByID := map[uint64]int{}
	for i, v := range p.Vehicles {
		vehByID[v.ID] = i
	}
	usedVeh := map[uint64]bool{}
	dims := p.dims()
	amt := func(a []int64, d int) int64 {
		if a == nil {
			return 0
		}
		return a[d]
	}
	inTWs := func(tws []TimeWindow, t int64) bool {
		if len(tws) == 0 {
			return t >= 0
		}
		for _, w := range tws {
			if t >= w.Start && t <= w.End {
				return true
			}
		}
		return false
	}
	var sumCost, sumDur, sumDist, sumWait, sumPrio int64
	for ri, r := range s.Routes {
		vi, ok := vehByID[r.Vehicle]
		if !ok {
			bad("routes[%d]: unknown vehicle %d", ri, r.Vehicle)
			continue
		}
		if usedVeh[r.Vehicle] {
			bad("routes[%d]: vehicle %d used twice", ri, r.Vehicle)
		}
		usedVeh[r.Vehicle] = true
		v := &p.Vehicles[vi]
		prof := v.Profile
		if prof == "" {
			prof = "car"
		}
		mx := p.Matrices[prof]
		if mx == nil {
			bad("routes[%d]: no matrix for profile %q", ri, prof)
			continue
		}
		n := len(mx.Durations)
		sf := v.SpeedFactor
		if sf == 0 {
			sf = 1
		}
		ph, pkm := v.Costs.PerHour, v.Costs.PerKm
		if ph == 0 && pkm == 0 {
			ph = 3600
		}
		arc := func(a, b int) (du, ds, c int64) {
			if a < 0 || b < 0 || a >= n || b >= n {
				return 0, 0, 0
			}
			du = mx.Durations[a][b]
			if sf != 1 {
				du = int64(math.Round(float64(du) / sf))
			}
			if mx.Distances != nil {
				ds = mx.Distances[a][b]
			}
			if mx.Costs != nil {
				c = mx.Costs[a][b] * 3600000
			} else {
				c = ph*du*1000 + pkm*ds*3600
			}
			return
		}
		vtw := v.TimeWindow
		if vtw == (TimeWindow{}) {
			vtw = TimeWindow{0, MaxTime}
		}
		skills := map[int]bool{}
		for _, k := range v.Skills {
			skills[k] = true
		}
		steps := r.Steps
		if len(steps) == 0 {
			bad("routes[%d]: no steps", ri)
			continue
		}
		// structure
		if v.HasStart != (steps[0].Type == "start") {
			bad("routes[%d]: start step presence %v, vehicle has start %v", ri, steps[0].Type == "start", v.HasStart)
		}
		if v.HasEnd != (steps[len(steps)-1].Type == "end") {
			bad("routes[%d]: end step presence mismatch", ri)
		}
		// initial load: deliveries of jobs on the route
		load := make([]int64, dims)
		nTasks := 0
		pickPos := map[int]int{}
		delPos := map[int]int{}
		breaksSeen := map[uint64]bool{}
		for si, st := range steps {
			switch st.Type {
			case "job", "pickup", "delivery":
				if st.ID == nil {
					bad("routes[%d].steps[%d]: missing id", ri, si)
					continue
				}
				tr, ok := tasks[key(st.Type, *st.ID)]
				if !ok {
					bad("routes[%d].steps[%d]: unknown %s %d", ri, si, st.Type, *st.ID)
					continue
				}
				nTasks++
				seen[key(st.Type, *st.ID)]++
				switch tr.kind {
				case 0:
					for d := 0; d < dims; d++ {
						load[d] += amt(p.Jobs[tr.idx].Delivery, d)
					}
				case 1:
					pickPos[tr.idx] = si
				case 2:
					delPos[tr.idx] = si
				}
			case "break":
				if st.ID == nil {
					bad("routes[%d].steps[%d]: break without id", ri, si)
					continue
				}
				if breaksSeen[*st.ID] {
					bad("routes[%d].steps[%d]: break %d twice", ri, si, *st.ID)
				}
				breaksSeen[*st.ID] = true
			case "start":
				if si != 0 {
					bad("routes[%d].steps[%d]: start not first", ri, si)
				}
			case "end":
				if si != len(steps)-1 {
					bad("routes[%d].steps[%d]: end not last", ri, si)
				}
			default:
				bad("routes[%d].steps[%d]: unknown type %q", ri, si, st.Type)
			}
		}
		if nTasks == 0 {
			bad("routes[%d]: route without tasks", ri)
		}
		for _, b := range v.Breaks {
			if !breaksSeen[b.ID] {
				bad("routes[%d]: break %d of vehicle %d missing", ri, b.ID, v.ID)
			}
			delete(breaksSeen, b.ID)
		}
		for id := range breaksSeen {
			bad("routes[%d]: break %d is not a break of vehicle %d", ri, id, v.ID)
		}
		for i, pp := range pickPos {
			dp, ok := delPos[i]
			if !ok {
				bad("routes[%d]: shipment %d pickup without delivery", ri, p.Shipments[i].Pickup.ID)
			} else if dp < pp {
				bad("routes[%d]: shipment %d delivered before pickup", ri, p.Shipments[i].Pickup.ID)
			}
		}
		for i := range delPos {
			if _, ok := pickPos[i]; !ok {
				bad("routes[%d]: shipment %d delivery without pickup", ri, p.Shipments[i].Delivery.ID)
			}
		}
		if v.MaxTasks > 0 && nTasks > v.MaxTasks {
			bad("routes[%d]: %d tasks > max_tasks %d", ri, nTasks, v.MaxTasks)
		}
		checkLoad := func(where string) {
			for d := 0; d < dims; d++ {
				c := amt(v.Capacity, d)
				if load[d] > c {
					bad("%s: load %v over capacity %v", where, load, v.Capacity)
					return
				}
				if load[d] < 0 {
					bad("%s: negative load %v", where, load)
					return
				}
			}
		}
		// timing
		prevLoc := -1     // location of the previous non-break step (setup rule)
		posLoc := -1      // current physical position
		var tm int64 = -1 // time the vehicle is free
		var cumDur, cumDist, cumCost, wait, prio, setupSum, serviceSum int64
		for si, st := range steps {
			where := fmt.Sprintf("routes[%d].steps[%d](%s)", ri, si, st.Type)
			loc := -1
			var tws []TimeWindow
			var setup, service int64
			var skl []int
			switch st.Type {
			case "start":
				loc = v.Start.Index
			case "end":
				loc = v.End.Index
			case "break":
				if st.LocationIndex != nil {
					loc = *st.LocationIndex
				} else {
					loc = posLoc
				}
				next := -1
				if si+1 < len(steps) && steps[si+1].LocationIndex != nil {
					next = *steps[si+1].LocationIndex
				}
				if posLoc >= 0 && loc != posLoc && loc != next {
					bad("%s: break location %d is neither the previous (%d) nor the next (%d) stop", where, loc, posLoc, next)
				}
				for _, b := range v.Breaks {
					if st.ID != nil && b.ID == *st.ID {
						tws, service = b.TimeWindows, b.Service
						if b.MaxLoad != nil {
							for d := 0; d < dims; d++ {
								if load[d] > b.MaxLoad[d] {
									bad("%s: load %v over break max_load %v", where, load, b.MaxLoad)
									break
								}
							}
						}
					}
				}
			default:
				if st.ID == nil {
					continue
				}
				tr, ok := tasks[key(st.Type, *st.ID)]
				if !ok {
					continue
				}
				switch tr.kind {
				case 0:
					j := &p.Jobs[tr.idx]
					loc, tws, setup, service, skl = j.Location.Index, j.TimeWindows, j.Setup, j.Service, j.Skills
					prio += int64(j.Priority)
					for d := 0; d < dims; d++ {
						load[d] += amt(j.Pickup, d) - amt(j.Delivery, d)
					}
				case 1:
					sh := &p.Shipments[tr.idx]
					loc, tws, setup, service, skl = sh.Pickup.Location.Index, sh.Pickup.TimeWindows, sh.Pickup.Setup, sh.Pickup.Service, sh.Skills
					prio += int64(sh.Priority)
					for d := 0; d < dims; d++ {
						load[d] += amt(sh.Amount, d)
					}
				case 2:
					sh := &p.Shipments[tr.idx]
					loc, tws, setup, service, skl = sh.Delivery.Location.Index, sh.Delivery.TimeWindows, sh.Delivery.Setup, sh.Delivery.Service, sh.Skills
					prio += int64(sh.Priority)
					for d := 0; d < dims; d++ {
						load[d] -= amt(sh.Amount, d)
					}
				}
				for _, k := range skl {
					if !skills[k] {
						bad("%s: vehicle %d lacks skill %d", where, v.ID, k)
					}
				}
			}
			if st.LocationIndex != nil && loc >= 0 && *st.LocationIndex != loc {
				bad("%s: location_index %d, want %d", where, *st.LocationIndex, loc)
			}
			if loc >= n {
				bad("%s: location %d outside matrix", where, loc)
				loc = -1
			}
			if tm < 0 {
				// first step defines the departure time
				tm = st.Arrival
				if tm < vtw.Start {
					bad("%s: route starts at %d before shift start %d", where, tm, vtw.Start)
				}
			}
			du, ds, c := arc(posLoc, loc)
			if loc < 0 {
				du, ds, c = 0, 0, 0
			}
			cumDur += du
			cumDist += ds
			cumCost += c
			arr := tm + du
			if st.Arrival != arr {
				bad("%s: arrival %d, recomputed %d", where, st.Arrival, arr)
			}
			if st.Duration != cumDur {
				bad("%s: duration %d, recomputed %d", where, st.Duration, cumDur)
			}
			if mx.Distances != nil && st.Distance != cumDist {
				bad("%s: distance %d, recomputed %d", where, st.Distance, cumDist)
			}
			if st.WaitingTime < 0 {
				bad("%s: negative waiting time", where)
			}
			begin := arr + st.WaitingTime
			if st.Type != "start" && st.Type != "end" && !inTWs(tws, begin) {
				bad("%s: begins at %d outside its time windows %v", where, begin, tws)
			}
			wantSetup := int64(0)
			if st.Type != "break" && st.Type != "start" && st.Type != "end" && (prevLoc < 0 || prevLoc != loc) {
				wantSetup = setup
			}
			if st.Setup != wantSetup {
				bad("%s: setup %d, want %d", where, st.Setup, wantSetup)
			}
			if st.Service != service {
				bad("%s: service %d, want %d", where, st.Service, service)
			}
			wait += st.WaitingTime
			setupSum += wantSetup
			serviceSum += service
			tm = begin + wantSetup + service
			if st.Type != "break" {
				prevLoc = loc
			}
			if loc >= 0 {
				posLoc = loc
			}
			if st.Type != "end" {
				checkLoad(where)
			}
			if len(st.Load) != dims {
				bad("%s: load has %d dimensions, want %d", where, len(st.Load), dims)
			} else {
				for d := 0; d < dims; d++ {
					if st.Load[d] != load[d] {
						bad("%s: load %v, recomputed %v", where, st.Load, load)
						break
					}
				}
			}
		}
		if tm > vtw.End {
			bad("routes[%d]: ends at %d after shift end %d", ri, tm, vtw.End)
		}
		if v.MaxTravelTime > 0 && cumDur > v.MaxTravelTime {
			bad("routes[%d]: travel time %d > max_travel_time %d", ri, cumDur, v.MaxTravelTime)
		}
		if v.MaxDistance > 0 && cumDist > v.MaxDistance {
			bad("routes[%d]: distance %d > max_distance %d", ri, cumDist, v.MaxDistance)
		}
		cost := v.Costs.Fixed + (cumCost+1800000)/3600000
		if r.Cost != cost {
			bad("routes[%d]: cost %d, recomputed %d", ri, r.Cost, cost)
		}
		if r.Duration != cumDur {
			bad("routes[%d]: duration %d, recomputed %d", ri, r.Duration, cumDur)
		}
		if mx.Distances != nil && r.Distance != cumDist {
			bad("routes[%d]: distance %d, recomputed %d", ri, r.Distance, cumDist)
		}
		if r.Setup != setupSum || r.Service != serviceSum {
			bad("routes[%d]: setup/service %d/%d, recomputed %d/%d", ri, r.Setup, r.Service, setupSum, serviceSum)
		}
		if r.WaitingTime != wait {
			bad("routes[%d]: waiting_time %d, recomputed %d", ri, r.WaitingTime, wait)
		}
		if r.Priority != prio {
			bad("routes[%d]: priority %d, recomputed %d", ri, r.Priority, prio)
		}
		sumCost += cost
		sumDur += cumDur
		sumDist += cumDist
		sumWait += wait
		sumPrio += prio
		rep.Routes++
		rep.Assigned += nTasks
	}
	for _, u := range s.Unassigned {
		if _, ok := tasks[key(u.Type, u.ID)]; !ok {
			bad("unassigned: unknown %s %d", u.Type, u.ID)
			continue
		}
		seen[key(u.Type, u.ID)]++
		rep.Unassigned++
	}
	for k := range tasks {
		if seen[k] != 1 {
			bad("task %s appears %d times (want exactly once in routes or unassigned)", k, seen[k])
		}
	}
	sm := s.Summary
	if sm.Cost != sumCost {
		bad("summary.cost %d, recomputed %d", sm.Cost, sumCost)
	}
	if sm.Routes != rep.Routes {
		bad("summary.routes %d, recomputed %d", sm.Routes, rep.Routes)
	}
	if sm.Unassigned != rep.Unassigned {
		bad("summary.unassigned %d, recomputed %d", sm.Unassigned, rep.Unassigned)
	}
	if sm.Duration != sumDur {
		bad("summary.duration %d, recomputed %d", sm.Duration, sumDur)
	}
	if sm.Distance != sumDist {
		bad("summary.distance %d, recomputed %d", sm.Distance, sumDist)
	}
	if sm.WaitingTime != sumWait {
		bad("summary.waiting_time %d, recomputed %d", sm.WaitingTime, sumWait)
	}
	if sm.Priority != sumPrio {
		bad("summary.priority %d, recomputed %d", sm.Priority, sumPrio)
	}
	rep.Cost, rep.Duration, rep.Distance, rep.WaitingTime, rep.Priority = sumCost, sumDur, sumDist, sumWait, sumPrio
	return rep, errors.Join(errs...)
}
