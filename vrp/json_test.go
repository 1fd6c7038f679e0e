package vrp

import (
	"encoding/json"
	"strings"
	"testing"
)

const goodInput = `{
  "vehicles": [
    {"id": 1, "start_index": 0, "end_index": 0, "capacity": [10, 5], "skills": [1], "time_window": [0, 10000],
     "breaks": [{"id": 9, "time_windows": [[300, 2000]], "service": 60, "max_load": [10, 5]}],
     "costs": {"fixed": 100, "per_hour": 3600, "per_km": 0}},
    {"id": 2, "start_index": 3, "capacity": [8, 8], "max_tasks": 3, "speed_factor": 1.5, "profile": "car"}
  ],
  "jobs": [
    {"id": 10, "location_index": 1, "service": 30, "delivery": [2, 1], "pickup": [1, 0], "time_windows": [[0, 500], [1000, 3000]], "skills": [1], "priority": 50},
    {"id": 11, "location_index": 2, "setup": 10, "service": 20, "delivery": [1, 1]},
    {"id": 12, "location_index": 2, "service": 20, "amount": [3, 0]}
  ],
  "shipments": [
    {"pickup": {"id": 20, "location_index": 3, "service": 5}, "delivery": {"id": 20, "location_index": 1, "service": 5}, "amount": [2, 2]}
  ],
  "matrices": {"car": {
    "durations": [[0, 100, 200, 300], [100, 0, 150, 250], [200, 150, 0, 120], [300, 250, 120, 0]],
    "distances": [[0, 1000, 2000, 3000], [1000, 0, 1500, 2500], [2000, 1500, 0, 1200], [3000, 2500, 1200, 0]]
  }}
}`

func TestJSONRoundTrip(t *testing.T) {
	p, err := ParseProblem([]byte(goodInput))
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Jobs) != 3 || len(p.Shipments) != 1 || len(p.Vehicles) != 2 {
		t.Fatalf("decoded %d jobs %d shipments %d vehicles", len(p.Jobs), len(p.Shipments), len(p.Vehicles))
	}
	if p.Jobs[2].Delivery[0] != 3 {
		t.Errorf("legacy amount not read as delivery: %v", p.Jobs[2].Delivery)
	}
	s := solveAndCheck(t, p, Options{Iterations: 200, Seed: 1})
	if s.Summary.Unassigned != 0 {
		t.Fatalf("unassigned: %+v", s.Unassigned)
	}
	out, err := MarshalSolution(s)
	if err != nil {
		t.Fatal(err)
	}
	var generic map[string]any
	if err := json.Unmarshal(out, &generic); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"code", "summary", "unassigned", "routes"} {
		if _, ok := generic[k]; !ok {
			t.Errorf("output lacks %q", k)
		}
	}
	sum := generic["summary"].(map[string]any)
	for _, k := range []string{"cost", "routes", "unassigned", "delivery", "pickup", "setup", "service", "duration", "waiting_time", "priority", "distance", "violations", "computing_times"} {
		if _, ok := sum[k]; !ok {
			t.Errorf("summary lacks %q", k)
		}
	}
	step := generic["routes"].([]any)[0].(map[string]any)["steps"].([]any)[1].(map[string]any)
	for _, k := range []string{"type", "arrival", "duration", "setup", "service", "waiting_time", "load", "distance", "location_index"} {
		if _, ok := step[k]; !ok {
			t.Errorf("step lacks %q", k)
		}
	}
	// the decoded output validates too
	var back Solution
	if err := json.Unmarshal(out, &back); err != nil {
		t.Fatal(err)
	}
	if _, err := Validate(p, &back); err != nil {
		t.Fatal(err)
	}
}

func TestJSONCoordinatesOnly(t *testing.T) {
	in := `{"vehicles":[{"id":1,"start":[2.35,48.85],"end":[2.35,48.85]}],
	"jobs":[{"id":1,"location":[2.36,48.86]},{"id":2,"location":[2.37,48.85]},{"id":3,"location":[2.36,48.86]}]}`
	p, err := ParseProblem([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Solve(p, Options{Iterations: 10}); err == nil {
		t.Fatal("solve without matrices should fail")
	}
	locs := p.Locations()
	if len(locs) != 3 {
		t.Fatalf("%d unique locations, want 3", len(locs))
	}
	n := len(locs)
	d := make([][]int64, n)
	for i := range d {
		d[i] = make([]int64, n)
		for j := range d[i] {
			if i != j {
				d[i][j] = 100 + int64(i+j)
			}
		}
	}
	p.SetMatrix("", &Matrix{Durations: d})
	s := solveAndCheck(t, p, Options{Iterations: 50})
	if s.Summary.Unassigned != 0 {
		t.Fatal("unassigned tasks")
	}
	if s.Routes[0].Steps[1].Location == nil {
		t.Error("coordinates not echoed in steps")
	}
}

func TestJSONErrors(t *testing.T) {
	mx := `"matrices":{"car":{"durations":[[0,1],[1,0]]}}`
	veh := `"vehicles":[{"id":1,"start_index":0,"capacity":[5]}]`
	cases := []struct{ name, in, want string }{
		{"bad json", `{"jobs": [`, "bad JSON"},
		{"trailing", `{"vehicles":[]} x`, "trailing"},
		{"type", `{"jobs":[{"id":"a"}]}`, "jobs.id"},
		{"no vehicles", `{"jobs":[],` + mx + `}`, "vehicles"},
		{"missing id", `{` + veh + `,"jobs":[{"location_index":1}],` + mx + `}`, "jobs[0].id"},
		{"missing location", `{` + veh + `,"jobs":[{"id":1}],` + mx + `}`, "jobs[0].location"},
		{"negative amount", `{` + veh + `,"jobs":[{"id":1,"location_index":1,"delivery":[-1]}],` + mx + `}`, "jobs[0].delivery[0]"},
		{"dimension mismatch", `{` + veh + `,"jobs":[{"id":1,"location_index":1,"pickup":[1,2]}],` + mx + `}`, "jobs[0].pickup"},
		{"capacity dims", `{"vehicles":[{"id":1,"start_index":0,"capacity":[5]},{"id":2,"start_index":0,"capacity":[5,1]}],` + mx + `}`, "vehicles[1].capacity"},
		{"not square", `{` + veh + `,"matrices":{"car":{"durations":[[0,1],[1]]}}}`, "matrices.car.durations[1]"},
		{"wrong size distances", `{` + veh + `,"matrices":{"car":{"durations":[[0,1],[1,0]],"distances":[[0]]}}}`, "matrices.car.distances"},
		{"negative matrix", `{` + veh + `,"matrices":{"car":{"durations":[[0,-1],[1,0]]}}}`, "matrices.car.durations[0][1]"},
		{"index out of range", `{` + veh + `,"jobs":[{"id":1,"location_index":7}],` + mx + `}`, "jobs[0].location_index"},
		{"vehicle index", `{"vehicles":[{"id":1,"start_index":2}],` + mx + `}`, "vehicles[0].start.location_index"},
		{"duplicate job", `{` + veh + `,"jobs":[{"id":1,"location_index":1},{"id":1,"location_index":0}],` + mx + `}`, "jobs[1].id"},
		{"duplicate vehicle", `{"vehicles":[{"id":1},{"id":1}],` + mx + `}`, "vehicles[1].id"},
		{"duplicate pickup", `{` + veh + `,"shipments":[{"pickup":{"id":1,"location_index":0},"delivery":{"id":1,"location_index":1}},{"pickup":{"id":1,"location_index":0},"delivery":{"id":2,"location_index":1}}],` + mx + `}`, "shipments[1].pickup.id"},
		{"tw order", `{` + veh + `,"jobs":[{"id":1,"location_index":1,"time_windows":[[50,10]]}],` + mx + `}`, "jobs[0].time_windows[0]"},
		{"tw shape", `{` + veh + `,"jobs":[{"id":1,"location_index":1,"time_windows":[[50]]}],` + mx + `}`, "jobs[0].time_windows[0]"},
		{"vehicle tw", `{"vehicles":[{"id":1,"time_window":[9,3]}],` + mx + `}`, "vehicles[0].time_window"},
		{"break tw", `{"vehicles":[{"id":1,"breaks":[{"id":1,"time_windows":[[9,3]]}]}],` + mx + `}`, "vehicles[0].breaks[0].time_windows[0]"},
		{"priority", `{` + veh + `,"jobs":[{"id":1,"location_index":1,"priority":101}],` + mx + `}`, "jobs[0].priority"},
		{"negative service", `{` + veh + `,"jobs":[{"id":1,"location_index":1,"service":-5}],` + mx + `}`, "jobs[0].service"},
		{"coords", `{` + veh + `,"jobs":[{"id":1,"location":[200,0]}],` + mx + `}`, "jobs[0].location"},
		{"coords without index", `{` + veh + `,"jobs":[{"id":1,"location":[2,3]}],` + mx + `}`, "jobs[0].location_index"},
		{"unknown profile", `{"vehicles":[{"id":1,"profile":"bike"}],` + mx + `}`, "vehicles[0].profile"},
		{"speed factor", `{"vehicles":[{"id":1,"speed_factor":0}],` + mx + `}`, "vehicles[0].speed_factor"},
		{"max_tasks", `{"vehicles":[{"id":1,"max_tasks":0}],` + mx + `}`, "vehicles[0].max_tasks"},
		{"max_distance no matrix", `{"vehicles":[{"id":1,"max_distance":10}],` + mx + `}`, "vehicles[0].max_distance"},
		{"shipment half", `{` + veh + `,"shipments":[{"pickup":{"id":1,"location_index":0}}],` + mx + `}`, "shipments[0].delivery"},
		{"steps", `{"vehicles":[{"id":1,"steps":[{"type":"start"}]}],` + mx + `}`, "vehicles[0].steps"},
		{"skill", `{"vehicles":[{"id":1,"skills":[-1]}],` + mx + `}`, "vehicles[0].skills[0]"},
		{"float matrix", `{` + veh + `,"matrices":{"car":{"durations":[[0,1.5],[1,0]]}}}`, "durations"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseProblem([]byte(c.in))
			if err == nil {
				t.Fatalf("no error, want one naming %q", c.want)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %q does not name %q", err, c.want)
			}
		})
	}
}

// FuzzParseProblem: the decoder never panics, and anything it accepts with
// matrices is solvable into a solution that Validate accepts.
func FuzzParseProblem(f *testing.F) {
	f.Add([]byte(goodInput))
	f.Add([]byte(`{"vehicles":[{"id":1,"start_index":0}],"jobs":[{"id":1,"location_index":1}],"matrix":[[0,3],[3,0]]}`))
	f.Add([]byte(`{"vehicles":[{"id":1,"start":[1,2]}],"jobs":[{"id":1,"location":[1,2.5],"time_windows":[[0,10]]}]}`))
	f.Add([]byte(`{"vehicles":[{"id":1,"start_index":0,"end_index":1,"time_window":[0,100],"breaks":[{"id":1,"time_windows":[[10,20]],"service":5}]}],"shipments":[{"pickup":{"id":1,"location_index":1},"delivery":{"id":1,"location_index":0}}],"matrix":[[0,3],[3,0]]}`))
	f.Add([]byte(`{`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := ParseProblem(data)
		if err != nil {
			return
		}
		if len(p.Matrices) == 0 || len(p.Jobs)+len(p.Shipments) > 30 {
			return
		}
		for _, m := range p.Matrices {
			if len(m.Durations) > 40 {
				return
			}
		}
		s, err := Solve(p, Options{Iterations: 20, Workers: 1})
		if err != nil {
			return // e.g. cost overflow guard
		}
		if _, err := Validate(p, s); err != nil {
			t.Fatalf("invalid solution for accepted input: %v", err)
		}
	})
}
