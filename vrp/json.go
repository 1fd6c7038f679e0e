package vrp

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// JSON input shapes, following VROOM's docs/API.md.

type jsonCosts struct {
	Fixed   *int64 `json:"fixed"`
	PerHour *int64 `json:"per_hour"`
	PerKm   *int64 `json:"per_km"`
}

type jsonBreak struct {
	ID          uint64    `json:"id"`
	Description string    `json:"description"`
	TimeWindows [][]int64 `json:"time_windows"`
	Service     int64     `json:"service"`
	MaxLoad     []int64   `json:"max_load"`
}

type jsonVehicle struct {
	ID            *uint64     `json:"id"`
	Description   string      `json:"description"`
	Profile       string      `json:"profile"`
	Start         []float64   `json:"start"`
	StartIndex    *int        `json:"start_index"`
	End           []float64   `json:"end"`
	EndIndex      *int        `json:"end_index"`
	Capacity      []int64     `json:"capacity"`
	Skills        []int       `json:"skills"`
	TimeWindow    []int64     `json:"time_window"`
	Breaks        []jsonBreak `json:"breaks"`
	MaxTasks      *int        `json:"max_tasks"`
	MaxTravelTime *int64      `json:"max_travel_time"`
	MaxDistance   *int64      `json:"max_distance"`
	Costs         *jsonCosts  `json:"costs"`
	SpeedFactor   *float64    `json:"speed_factor"`
	Steps         []any       `json:"steps"`
}

type jsonJob struct {
	ID            *uint64   `json:"id"`
	Description   string    `json:"description"`
	Location      []float64 `json:"location"`
	LocationIndex *int      `json:"location_index"`
	Setup         int64     `json:"setup"`
	Service       int64     `json:"service"`
	Delivery      []int64   `json:"delivery"`
	Pickup        []int64   `json:"pickup"`
	Amount        []int64   `json:"amount"`
	Skills        []int     `json:"skills"`
	Priority      int       `json:"priority"`
	TimeWindows   [][]int64 `json:"time_windows"`
}

type jsonShipmentStep struct {
	ID            *uint64   `json:"id"`
	Description   string    `json:"description"`
	Location      []float64 `json:"location"`
	LocationIndex *int      `json:"location_index"`
	Setup         int64     `json:"setup"`
	Service       int64     `json:"service"`
	TimeWindows   [][]int64 `json:"time_windows"`
}

type jsonShipment struct {
	Pickup   *jsonShipmentStep `json:"pickup"`
	Delivery *jsonShipmentStep `json:"delivery"`
	Amount   []int64           `json:"amount"`
	Skills   []int             `json:"skills"`
	Priority int               `json:"priority"`
}

type jsonMatrix struct {
	Durations [][]int64 `json:"durations"`
	Distances [][]int64 `json:"distances"`
	Costs     [][]int64 `json:"costs"`
}

type jsonInput struct {
	Jobs      []jsonJob              `json:"jobs"`
	Shipments []jsonShipment         `json:"shipments"`
	Vehicles  []jsonVehicle          `json:"vehicles"`
	Matrices  map[string]*jsonMatrix `json:"matrices"`
	Matrix    [][]int64              `json:"matrix"`
}

func jsonLocation(field string, coord []float64, idx *int) (Location, bool, error) {
	l := Location{Index: -1}
	has := false
	if idx != nil {
		if *idx < 0 {
			return l, false, fmt.Errorf("%s_index: negative %d", field, *idx)
		}
		l.Index = *idx
		has = true
	}
	if coord != nil {
		if len(coord) != 2 {
			return l, false, fmt.Errorf("%s: want [lon, lat], got %d numbers", field, len(coord))
		}
		if coord[0] < -180 || coord[0] > 180 || coord[1] < -90 || coord[1] > 90 {
			return l, false, fmt.Errorf("%s: [%v, %v] is not a valid [lon, lat]", field, coord[0], coord[1])
		}
		l.Coord = [2]float64{coord[0], coord[1]}
		l.HasCoord = true
		has = true
	}
	return l, has, nil
}

func jsonTWs(field string, a [][]int64) ([]TimeWindow, error) {
	var out []TimeWindow
	for i, w := range a {
		if len(w) != 2 {
			return nil, fmt.Errorf("%s[%d]: want [start, end]", field, i)
		}
		out = append(out, TimeWindow{w[0], w[1]})
	}
	if err := checkTWs(field, out); err != nil {
		return nil, err
	}
	return out, nil
}

func checkSkills(field string, sk []int) error {
	for i, s := range sk {
		if s < 0 {
			return fmt.Errorf("%s[%d]: negative skill %d", field, i, s)
		}
	}
	return nil
}

// jsonTask decodes what jobs and shipment steps share: the id, a location
// (coordinates or location_index, one of them required) and time windows;
// f names the task in errors.
func jsonTask(f string, id *uint64, coord []float64, index *int, windows [][]int64) (uint64, Location, []TimeWindow, error) {
	if id == nil {
		return 0, Location{}, nil, fmt.Errorf("vrp input: %s.id: missing", f)
	}
	loc, has, err := jsonLocation(f+".location", coord, index)
	if err != nil {
		return 0, Location{}, nil, fmt.Errorf("vrp input: %w", err)
	}
	if !has {
		return 0, Location{}, nil, fmt.Errorf("vrp input: %s.location: missing (give location or location_index)", f)
	}
	tws, err := jsonTWs(f+".time_windows", windows)
	if err != nil {
		return 0, Location{}, nil, fmt.Errorf("vrp input: %w", err)
	}
	return *id, loc, tws, nil
}

// ParseProblem decodes a VROOM input document. Structural errors name the
// field (e.g. "jobs[3].time_windows[0]: start 50 > end 10"). When the input
// has no matrices, every location must carry coordinates; call
// Problem.Locations and SetMatrix before Solve. Vehicle "steps" (VROOM's
// pinned plans) are rejected as unsupported.
func ParseProblem(data []byte) (*Problem, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var in jsonInput
	if err := dec.Decode(&in); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return nil, fmt.Errorf("vrp input: field %s: cannot use JSON %s as %s", te.Field, te.Value, te.Type)
		}
		return nil, fmt.Errorf("vrp input: bad JSON: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("vrp input: bad JSON: trailing data after the document")
	}
	p := &Problem{}
	for i, j := range in.Jobs {
		f := fmt.Sprintf("jobs[%d]", i)
		id, loc, tws, err := jsonTask(f, j.ID, j.Location, j.LocationIndex, j.TimeWindows)
		if err != nil {
			return nil, err
		}
		if err := checkSkills(f+".skills", j.Skills); err != nil {
			return nil, fmt.Errorf("vrp input: %w", err)
		}
		del := j.Delivery
		if del == nil && j.Amount != nil {
			del = j.Amount // legacy "amount" means delivery
		}
		p.Jobs = append(p.Jobs, Job{ID: id, Description: j.Description, Location: loc, Setup: j.Setup, Service: j.Service,
			Delivery: del, Pickup: j.Pickup, Skills: j.Skills, Priority: j.Priority, TimeWindows: tws})
	}
	for i, s := range in.Shipments {
		f := fmt.Sprintf("shipments[%d]", i)
		var steps [2]ShipmentStep
		for k, st := range []*jsonShipmentStep{s.Pickup, s.Delivery} {
			sf := f + [2]string{".pickup", ".delivery"}[k]
			if st == nil {
				return nil, fmt.Errorf("vrp input: %s: missing", sf)
			}
			id, loc, tws, err := jsonTask(sf, st.ID, st.Location, st.LocationIndex, st.TimeWindows)
			if err != nil {
				return nil, err
			}
			steps[k] = ShipmentStep{ID: id, Description: st.Description, Location: loc, Setup: st.Setup, Service: st.Service, TimeWindows: tws}
		}
		if err := checkSkills(f+".skills", s.Skills); err != nil {
			return nil, fmt.Errorf("vrp input: %w", err)
		}
		p.Shipments = append(p.Shipments, Shipment{Pickup: steps[0], Delivery: steps[1], Amount: s.Amount, Skills: s.Skills, Priority: s.Priority})
	}
	for i, v := range in.Vehicles {
		f := fmt.Sprintf("vehicles[%d]", i)
		if v.ID == nil {
			return nil, fmt.Errorf("vrp input: %s.id: missing", f)
		}
		if len(v.Steps) > 0 {
			return nil, fmt.Errorf("vrp input: %s.steps: not supported", f)
		}
		st, hasS, err := jsonLocation(f+".start", v.Start, v.StartIndex)
		if err != nil {
			return nil, fmt.Errorf("vrp input: %w", err)
		}
		en, hasE, err := jsonLocation(f+".end", v.End, v.EndIndex)
		if err != nil {
			return nil, fmt.Errorf("vrp input: %w", err)
		}
		if err := checkSkills(f+".skills", v.Skills); err != nil {
			return nil, fmt.Errorf("vrp input: %w", err)
		}
		veh := Vehicle{ID: *v.ID, Description: v.Description, Profile: v.Profile, Start: st, End: en, HasStart: hasS, HasEnd: hasE,
			Capacity: v.Capacity, Skills: v.Skills}
		if v.TimeWindow != nil {
			if len(v.TimeWindow) != 2 {
				return nil, fmt.Errorf("vrp input: %s.time_window: want [start, end]", f)
			}
			veh.TimeWindow = TimeWindow{v.TimeWindow[0], v.TimeWindow[1]}
			if err := checkTWs(f+".time_window", []TimeWindow{veh.TimeWindow}); err != nil {
				return nil, fmt.Errorf("vrp input: %w", err)
			}
			if veh.TimeWindow == (TimeWindow{}) {
				return nil, fmt.Errorf("vrp input: %s.time_window: [0, 0] leaves no working time", f)
			}
		}
		for b, br := range v.Breaks {
			bf := fmt.Sprintf("%s.breaks[%d]", f, b)
			tws, err := jsonTWs(bf+".time_windows", br.TimeWindows)
			if err != nil {
				return nil, fmt.Errorf("vrp input: %w", err)
			}
			veh.Breaks = append(veh.Breaks, Break{ID: br.ID, Description: br.Description, TimeWindows: tws, Service: br.Service, MaxLoad: br.MaxLoad})
		}
		if v.MaxTasks != nil {
			if *v.MaxTasks <= 0 {
				return nil, fmt.Errorf("vrp input: %s.max_tasks: %d, want > 0 (leave the vehicle out instead)", f, *v.MaxTasks)
			}
			veh.MaxTasks = *v.MaxTasks
		}
		if v.MaxTravelTime != nil {
			if *v.MaxTravelTime <= 0 {
				return nil, fmt.Errorf("vrp input: %s.max_travel_time: %d, want > 0", f, *v.MaxTravelTime)
			}
			veh.MaxTravelTime = *v.MaxTravelTime
		}
		if v.MaxDistance != nil {
			if *v.MaxDistance <= 0 {
				return nil, fmt.Errorf("vrp input: %s.max_distance: %d, want > 0", f, *v.MaxDistance)
			}
			veh.MaxDistance = *v.MaxDistance
		}
		if v.Costs != nil {
			if v.Costs.Fixed != nil {
				veh.Costs.Fixed = *v.Costs.Fixed
			}
			veh.Costs.PerHour = 3600
			if v.Costs.PerHour != nil {
				veh.Costs.PerHour = *v.Costs.PerHour
			}
			if v.Costs.PerKm != nil {
				veh.Costs.PerKm = *v.Costs.PerKm
			}
		}
		if v.SpeedFactor != nil {
			if *v.SpeedFactor <= 0 || *v.SpeedFactor > 5 {
				return nil, fmt.Errorf("vrp input: %s.speed_factor: %v not in (0, 5]", f, *v.SpeedFactor)
			}
			veh.SpeedFactor = *v.SpeedFactor
		}
		p.Vehicles = append(p.Vehicles, veh)
	}
	if in.Matrix != nil {
		p.SetMatrix("car", &Matrix{Durations: in.Matrix})
	}
	for name, mx := range in.Matrices {
		if mx == nil {
			return nil, fmt.Errorf("vrp input: matrices.%s: null", name)
		}
		if mx.Durations == nil && mx.Costs != nil {
			return nil, fmt.Errorf("vrp input: matrices.%s.durations: missing", name)
		}
		p.SetMatrix(name, &Matrix{Durations: mx.Durations, Distances: mx.Distances, Costs: mx.Costs})
	}
	if _, err := compileMode(p, true); err != nil {
		return nil, fmt.Errorf("vrp input: %w", err)
	}
	return p, nil
}

// MarshalSolution encodes s as VROOM output JSON.
func MarshalSolution(s *Solution) ([]byte, error) {
	return json.Marshal(s)
}
