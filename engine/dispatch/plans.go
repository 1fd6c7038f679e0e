package dispatch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"time"

	"github.com/lastmile/lastmile/engine/store"
	"github.com/lastmile/lastmile/vrp"
)

// PlanInput is the body of POST /v1/plans: VROOM vehicle objects, each
// naming the vehicle as pings and driver keys do ("vehicle") and
// optionally its "driver", and the shipments to deliver. Without Routes
// the engine solves the plan; with Routes (each a vehicle and its
// shipments in order) the plan is taken as sequenced.
type PlanInput struct {
	Vehicles  []json.RawMessage `json:"vehicles"`
	Shipments []string          `json:"shipments"`
	Routes    []SequencedRoute  `json:"routes,omitempty"`
	// Options: the solver's budget.
	Options *PlanOptions `json:"options,omitempty"`
}

// SequencedRoute is one van's stops in a pre-sequenced plan.
type SequencedRoute struct {
	Vehicle   string   `json:"vehicle"`
	Shipments []string `json:"shipments"`
}

// PlanOptions tune the solve of a plan.
type PlanOptions struct {
	// Time is the solver's time limit in seconds (at most 300).
	Time float64 `json:"time,omitempty"`
	// Iterations, when positive, bounds the search by iterations per
	// worker (at most 1,000,000); without Time the plan is then the same
	// on every run and machine.
	Iterations int `json:"iterations,omitempty"`
}

// maxPlanIterations bounds PlanOptions.Iterations.
const maxPlanIterations = 1_000_000

// PlanResult answers POST /v1/plans.
type PlanResult struct {
	Plan       int64        `json:"plan"`
	Routes     []PlanRoute  `json:"routes"`
	Unassigned []Unassigned `json:"unassigned"`
}

// PlanRoute is one van's route in a plan.
type PlanRoute struct {
	Vehicle string     `json:"vehicle"`
	Route   int64      `json:"route"`
	Stops   []PlanStop `json:"stops"`
}

// PlanStop is one stop of a planned route.
type PlanStop struct {
	ID       int64  `json:"id"`
	Tracking string `json:"tracking"`
	Arrival  int64  `json:"arrival"`
}

// Unassigned is a shipment no route could take.
type Unassigned struct {
	Tracking string `json:"tracking"`
	Reason   string `json:"reason"`
}

// planVehicle is a parsed vehicle of a plan.
type planVehicle struct {
	name, driver, class string
	raw                 json.RawMessage // the VROOM object without vehicle and driver
	spec                string          // the object as given
	v                   vrp.Vehicle
}

// maxPlanShipments caps the shipments of one plan.
const maxPlanShipments = 5000

func parseVehicles(raws []json.RawMessage) ([]planVehicle, error) {
	if len(raws) == 0 {
		return nil, errorf("InvalidQuery", "vehicles: at least one vehicle is needed")
	}
	if len(raws) > 1000 {
		return nil, errorf("InvalidValue", "vehicles: at most 1000")
	}
	out := make([]planVehicle, len(raws))
	seen := map[string]bool{}
	ids := map[uint64]bool{}
	for i, raw := range raws {
		f := fmt.Sprintf("vehicles[%d]", i)
		var m map[string]json.RawMessage
		if err := json.Unmarshal(raw, &m); err != nil {
			return nil, errorf("InvalidQuery", "%s: want a VROOM vehicle object", f)
		}
		var pv planVehicle
		if err := json.Unmarshal(m["vehicle"], &pv.name); err != nil || pv.name == "" {
			return nil, errorf("InvalidValue", "%s.vehicle: want the vehicle's name (as its pings give it)", f)
		}
		if err := checkText(f+".vehicle", pv.name, 128, false); err != nil {
			return nil, err
		}
		if d, ok := m["driver"]; ok {
			if err := json.Unmarshal(d, &pv.driver); err != nil {
				return nil, errorf("InvalidValue", "%s.driver: want a string", f)
			}
			if err := checkText(f+".driver", pv.driver, 200, false); err != nil {
				return nil, err
			}
		}
		if c, ok := m["class"]; ok {
			if err := json.Unmarshal(c, &pv.class); err != nil {
				return nil, errorf("InvalidValue", "%s.class: want a string (the vehicle class of emission factors, e.g. van_diesel)", f)
			}
			if err := checkText(f+".class", pv.class, 64, false); err != nil {
				return nil, err
			}
		}
		if seen[pv.name] {
			return nil, errorf("InvalidValue", "%s.vehicle: %q appears twice", f, pv.name)
		}
		seen[pv.name] = true
		delete(m, "vehicle")
		delete(m, "driver")
		delete(m, "class")
		if _, ok := m["steps"]; ok {
			return nil, errorf("InvalidValue", "%s.steps: give a sequenced plan with routes instead", f)
		}
		pv.raw, _ = json.Marshal(m)
		pv.spec = string(raw)
		p, err := vrp.ParseProblem([]byte(`{"vehicles":[` + string(pv.raw) + `],"jobs":[]}`))
		if err != nil {
			return nil, errorf("InvalidValue", "%s: %v", f, err)
		}
		pv.v = p.Vehicles[0]
		if !pv.v.HasStart || !pv.v.Start.HasCoord {
			return nil, errorf("InvalidValue", "%s.start: a [lon, lat] start is needed (the depot)", f)
		}
		if ids[pv.v.ID] {
			return nil, errorf("InvalidValue", "%s.id: %d appears twice", f, pv.v.ID)
		}
		ids[pv.v.ID] = true
		out[i] = pv
	}
	return out, nil
}

// amounts returns a shipment's delivery amounts for capacities of dims
// dimensions: parcels (at least 1), kilograms (rounded up), litres
// (rounded up), in that order.
func amounts(p store.Parcels, dims int) []int64 {
	if dims == 0 {
		return nil
	}
	vol := 0.0
	for _, d := range p.Dimensions {
		vol += d[0] * d[1] * d[2] / 1000
	}
	all := []int64{max(int64(p.Count), 1), int64(math.Ceil(p.Weight)), int64(math.Ceil(vol))}
	out := make([]int64, dims)
	copy(out, all)
	return out
}

// CreatePlan stores a day plan: it solves the shipments onto the vehicles
// on the live road graph (or takes the given sequence), stores a route per
// vehicle with a planned stop per shipment, and returns them. A vehicle
// whose current route has not left yet gets the new one instead (its
// planned stops are cancelled); one out for delivery is a Conflict.
func (s *Service) CreatePlan(ctx context.Context, in PlanInput) (PlanResult, error) {
	vehicles, err := parseVehicles(in.Vehicles)
	if err != nil {
		return PlanResult{}, err
	}
	byName := map[string]int{}
	for i, v := range vehicles {
		byName[v.name] = i
	}
	trackings := in.Shipments
	if len(in.Routes) > 0 {
		if len(trackings) > 0 {
			return PlanResult{}, errorf("InvalidQuery", "give shipments (to solve) or routes (sequenced), not both")
		}
		for i, r := range in.Routes {
			if _, ok := byName[r.Vehicle]; !ok {
				return PlanResult{}, errorf("InvalidValue", "routes[%d].vehicle: %q is not among the vehicles", i, r.Vehicle)
			}
			trackings = append(trackings, r.Shipments...)
		}
	}
	if len(trackings) == 0 {
		return PlanResult{}, errorf("InvalidQuery", "shipments: at least one shipment is needed")
	}
	if len(trackings) > maxPlanShipments {
		return PlanResult{}, errorf("TooBig", "shipments: %d, at most %d per plan", len(trackings), maxPlanShipments)
	}
	seen := map[string]bool{}
	for i, t := range trackings {
		if err := checkTracking(t); err != nil {
			return PlanResult{}, errorf("InvalidValue", "shipments[%d]: %s", i, err.(*Error).Message)
		}
		if seen[t] {
			return PlanResult{}, errorf("InvalidValue", "shipment %q appears twice", t)
		}
		seen[t] = true
	}
	// Read the shipments (outside the write transaction: solving takes
	// seconds); they are checked again when stored.
	var ships map[string]store.Shipment
	if _, err := s.st.Tx(ctx, func(tx *store.Tx) error {
		var err error
		ships, err = tx.ShipmentsByTracking(trackings)
		return err
	}); err != nil {
		return PlanResult{}, err
	}
	for _, t := range trackings {
		sh, ok := ships[t]
		if !ok {
			return PlanResult{}, errorf("NotFound", "shipment %q: unknown", t)
		}
		if sh.Status == StatusDelivered {
			return PlanResult{}, errorf("Conflict", "shipment %q is delivered", t)
		}
	}
	// seqs[v] are the shipments of vehicle v in order, arrivals their
	// planned arrival times.
	seqs := make([][]string, len(vehicles))
	arrivals := make([][]int64, len(vehicles))
	var legs [][]leg
	var unassigned []Unassigned
	if len(in.Routes) > 0 {
		for _, r := range in.Routes {
			i := byName[r.Vehicle]
			seqs[i] = append(seqs[i], r.Shipments...)
		}
		legs = make([][]leg, len(vehicles))
		for i := range vehicles {
			arrivals[i] = s.plannedArrivals(vehicles[i], seqs[i], ships)
			legs[i] = sequencedLegs(vehicles[i], seqs[i], arrivals[i], ships)
		}
	} else {
		if s.cfg.Solve == nil {
			return PlanResult{}, errorf("InvalidQuery", "this server cannot solve plans (no road graph): give routes")
		}
		seqs, arrivals, legs, unassigned, err = s.solvePlan(vehicles, trackings, ships, in.Options)
		if err != nil {
			return PlanResult{}, err
		}
	}
	req, _ := json.Marshal(in)
	now := s.now()
	res := PlanResult{Unassigned: unassigned}
	if res.Unassigned == nil {
		res.Unassigned = []Unassigned{}
	}
	_, err = s.st.Tx(ctx, func(tx *store.Tx) error {
		res.Routes = res.Routes[:0]
		// Lock the vehicles in name order (the lock order of every
		// transaction that touches several vehicles).
		for _, name := range slices.Sorted(maps.Keys(byName)) {
			if err := s.releaseVehicle(tx, name); err != nil {
				return err
			}
		}
		plan, err := tx.InsertPlan(string(req), now)
		if err != nil {
			return err
		}
		res.Plan = plan
		for i, pv := range vehicles {
			r := store.Route{Plan: plan, Vehicle: pv.name, Spec: pv.spec, Status: store.RoutePlanned, Created: now,
				Driver: pv.driver, Class: pv.class}
			if err := tx.InsertRoute(&r); err != nil {
				return err
			}
			pr := PlanRoute{Vehicle: pv.name, Route: r.ID, Stops: []PlanStop{}}
			for k, t := range seqs[i] {
				sh := ships[t]
				attempt := int64(1)
				if prev, err := tx.LatestStop(sh.ID); err == nil {
					if open(prev.Status) {
						return errorf("Conflict", "shipment %q is on route %d already (stop %d)", t, prev.Route, prev.ID)
					}
					attempt = prev.Attempt + 1
				} else if !errors.Is(err, store.ErrNotFound) {
					return err
				}
				st := store.Stop{Route: r.ID, Shipment: sh.ID, Position: int64(k), Attempt: attempt, Status: StatusPlanned, Planned: arrivals[i][k],
					PlannedDrive: legs[i][k].drive, PlannedDist: legs[i][k].dist}
				if err := tx.InsertStop(&st); err != nil {
					return err
				}
				pr.Stops = append(pr.Stops, PlanStop{ID: st.ID, Tracking: t, Arrival: st.Planned})
			}
			veh, err := tx.LockVehicle(pv.name)
			if err != nil {
				return err
			}
			veh.Route, veh.State, veh.Updated = r.ID, "", now
			if err := tx.PutVehicle(veh); err != nil {
				return err
			}
			res.Routes = append(res.Routes, pr)
		}
		return nil
	})
	if err != nil {
		return PlanResult{}, err
	}
	s.log.Info("plan stored", "plan", res.Plan, "vehicles", len(vehicles), "shipments", len(trackings), "unassigned", len(res.Unassigned))
	return res, nil
}

// releaseVehicle ends the vehicle's current route before a new plan: a
// route that has not left is closed and its open stops cancelled; one out
// for delivery with open stops is a Conflict.
func (s *Service) releaseVehicle(tx *store.Tx, name string) error {
	veh, err := tx.LockVehicle(name)
	if err != nil {
		return err
	}
	if veh.Route == 0 {
		return nil
	}
	r, err := tx.Route(veh.Route)
	if err != nil {
		return err
	}
	if r.Status == store.RouteDone {
		return nil
	}
	stops, err := tx.RouteStops(r.ID)
	if err != nil {
		return err
	}
	if r.Status == store.RouteActive {
		for _, st := range stops {
			if open(st.Status) {
				return errorf("Conflict", "vehicle %q is out for delivery with open stops (route %d): finish or cancel them first", name, r.ID)
			}
		}
	}
	for _, st := range stops {
		if open(st.Status) {
			st.Status = StatusCancelled
			if err := tx.UpdateStop(st); err != nil {
				return err
			}
		}
	}
	r.Status = store.RouteDone
	return tx.UpdateRoute(r)
}

// solvePlan builds the VROOM problem of a plan, solves it and maps the
// routes back to tracking numbers.
func (s *Service) solvePlan(vehicles []planVehicle, trackings []string, ships map[string]store.Shipment, opt *PlanOptions) (
	seqs [][]string, arrivals [][]int64, legs [][]leg, unassigned []Unassigned, err error) {
	p := &vrp.Problem{}
	dims := -1
	for _, pv := range vehicles {
		if dims >= 0 && len(pv.v.Capacity) != dims {
			return nil, nil, nil, nil, errorf("InvalidValue", "vehicles: every capacity needs the same number of dimensions")
		}
		dims = len(pv.v.Capacity)
		if pv.v.TimeWindow == (vrp.TimeWindow{}) {
			// No shift given: the van can leave now (not at time 0, which
			// would wait hours for every window).
			pv.v.TimeWindow = vrp.TimeWindow{Start: s.now(), End: vrp.MaxTime}
		}
		if dims > 3 {
			return nil, nil, nil, nil, errorf("InvalidValue", "vehicles: capacity has at most 3 dimensions (parcels, kg, litres)")
		}
		p.Vehicles = append(p.Vehicles, pv.v)
	}
	for i, t := range trackings {
		sh := ships[t]
		j := vrp.Job{ID: uint64(i + 1), Description: t, Location: vrp.CoordLocation(sh.Location[0], sh.Location[1]),
			Service: sh.Service, Delivery: amounts(sh.Parcels, dims)}
		if sh.Window != [2]int64{} {
			j.TimeWindows = []vrp.TimeWindow{{Start: sh.Window[0], End: sh.Window[1]}}
		}
		p.Jobs = append(p.Jobs, j)
	}
	b := Budget{Time: s.cfg.SolveTime}
	if opt != nil {
		if opt.Time < 0 || opt.Time > 300 {
			return nil, nil, nil, nil, errorf("InvalidValue", "options.time: 0 to 300 s")
		}
		if opt.Iterations < 0 || opt.Iterations > maxPlanIterations {
			return nil, nil, nil, nil, errorf("InvalidValue", "options.iterations: 0 to %d", maxPlanIterations)
		}
		b.Iterations = opt.Iterations
		switch {
		case opt.Time > 0:
			b.Time = time.Duration(opt.Time * float64(time.Second))
		case opt.Iterations > 0:
			b.Time = 0
		}
	}
	sol, err := s.cfg.Solve(p, b)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	byID := map[uint64]int{}
	for i, pv := range vehicles {
		byID[pv.v.ID] = i
	}
	seqs = make([][]string, len(vehicles))
	arrivals = make([][]int64, len(vehicles))
	legs = make([][]leg, len(vehicles))
	for _, r := range sol.Routes {
		i := byID[r.Vehicle]
		// Step durations and distances are cumulative travel from the
		// route's start.
		var dur, dist int64
		for _, st := range r.Steps {
			if st.Type == "job" && st.Job != nil {
				seqs[i] = append(seqs[i], trackings[*st.Job-1])
				arrivals[i] = append(arrivals[i], st.Arrival)
				legs[i] = append(legs[i], leg{drive: st.Duration - dur, dist: st.Distance - dist})
			}
			dur, dist = st.Duration, st.Distance
		}
	}
	for _, u := range sol.Unassigned {
		unassigned = append(unassigned, Unassigned{Tracking: trackings[u.ID-1], Reason: u.Reason})
	}
	return seqs, arrivals, legs, unassigned, nil
}

// leg is the plan's drive time (s) and distance (m) to a stop (0:
// unknown).
type leg struct{ drive, dist int64 }

// sequencedLegs derives the drive times of a sequenced route from its
// predicted arrivals: each arrival less the departure from the stop
// before (its arrival or window start, then its service), the first from
// the shift's start. Distances are unknown.
func sequencedLegs(pv planVehicle, seq []string, arrivals []int64, ships map[string]store.Shipment) []leg {
	out := make([]leg, len(seq))
	ready := pv.v.TimeWindow.Start
	for k, t := range seq {
		if arrivals[k] == 0 {
			return make([]leg, len(seq))
		}
		if ready > 0 {
			out[k].drive = max(arrivals[k]-ready, 0)
		}
		sh := ships[t]
		ready = max(arrivals[k], sh.Window[0]) + sh.Service
	}
	return out
}

// plannedArrivals predicts the arrivals of a sequenced route from the
// vehicle's start at its shift start (zeros when no predictor is set or
// it fails: a sequenced plan needs no road graph).
func (s *Service) plannedArrivals(pv planVehicle, seq []string, ships map[string]store.Shipment) []int64 {
	out := make([]int64, len(seq))
	if s.cfg.Predict == nil || len(seq) == 0 {
		return out
	}
	start := s.cfg.Now()
	if pv.v.TimeWindow.Start > 0 {
		start = time.Unix(pv.v.TimeWindow.Start, 0)
	}
	stops := make([]PredictStop, len(seq))
	for i, t := range seq {
		sh := ships[t]
		stops[i] = PredictStop{Location: sh.Location, Service: time.Duration(sh.Service) * time.Second, Window: sh.Window}
	}
	preds, err := s.cfg.Predict("", pv.v.Start.Coord, start, stops)
	if err != nil {
		s.log.Warn("planned arrivals of a sequenced route", "vehicle", pv.name, "err", err)
		return out
	}
	for i, p := range preds {
		out[i] = p.Arrival
	}
	return out
}
