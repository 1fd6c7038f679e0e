package engine

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/lastmile/lastmile/vrp"
)

const monacoProblem = `{"vehicles":[{"id":1,"start":[7.41993,43.73141],"end":[7.41993,43.73141],"capacity":[3],"time_window":[28800,64800]},
 {"id":2,"start":[7.42586,43.74087],"capacity":[3],"skills":[7]}],
 "jobs":[{"id":1,"location":[7.42586,43.74087],"delivery":[1],"service":120},
  {"id":2,"location":[7.4246,43.7384],"delivery":[1],"time_windows":[[30000,40000]]},
  {"id":3,"location":[7.4280,43.7420],"delivery":[1],"skills":[7]},
  {"id":4,"location":[7.4130,43.7330],"delivery":[2]},
  {"id":5,"location":[7.4197,43.7365],"delivery":[9]}],
 "shipments":[{"pickup":{"id":6,"location":[7.4150,43.7320]},"delivery":{"id":6,"location":[7.4270,43.7400]},"amount":[1]}]}`

// TestServerSolve posts a VROOM-format problem with coordinates and checks
// the VROOM-shaped answer with vrp.Validate against matrices computed here
// from the same graph, and that the job over every capacity is unassigned
// with a reason.
func TestServerSolve(t *testing.T) {
	ts := startServer(t, ServerConfig{})
	a := ts.do(t, "POST", "/v1/solve?time=0.5&seed=3", []byte(monacoProblem))
	if a.status != 200 {
		t.Fatalf("status %d: %s", a.status, a.body)
	}
	var sol vrp.Solution
	if err := json.Unmarshal(a.body, &sol); err != nil {
		t.Fatal(err)
	}
	p, err := vrp.ParseProblem([]byte(monacoProblem))
	if err != nil {
		t.Fatal(err)
	}
	if err := ts.R.FillMatrices(p); err != nil {
		t.Fatal(err)
	}
	rep, err := vrp.Validate(p, &sol)
	if err != nil {
		t.Fatalf("solution from the server fails the checker: %v", err)
	}
	if len(sol.Unassigned) != 1 || sol.Unassigned[0].ID != 5 || sol.Unassigned[0].Reason == "" {
		t.Fatalf("want job 5 unassigned with a reason, got %+v", sol.Unassigned)
	}
	if rep.Assigned != 6 {
		t.Fatalf("%d tasks assigned, want the 6 feasible ones", rep.Assigned)
	}
}

func TestServerSolveErrors(t *testing.T) {
	ts := startServer(t, ServerConfig{MaxTableCells: 16})
	tests := []struct {
		name, query, body string
		status            int
		code, msg         string
	}{
		{"malformed JSON", "", `{"vehicles":[`, 400, "InvalidQuery", "JSON"},
		{"wrong type", "", `{"vehicles":[{"id":"one"}]}`, 400, "InvalidQuery", "vehicles"},
		{"negative amount", "", `{"vehicles":[{"id":1,"start":[7.42,43.73]}],"jobs":[{"id":1,"location":[7.42,43.74],"delivery":[-1]}]}`, 400, "InvalidQuery", "delivery"},
		{"off the road network", "", `{"vehicles":[{"id":1,"start":[7.42,43.73]}],"jobs":[{"id":1,"location":[7.5,43.6]}]}`, 422, "NoSegment", "no road"},
		{"too many locations", "", `{"vehicles":[{"id":1,"start":[7.42,43.73]}],"jobs":[{"id":1,"location":[7.421,43.74]},{"id":2,"location":[7.422,43.74]},{"id":3,"location":[7.423,43.74]},{"id":4,"location":[7.424,43.74]}]}`, 413, "TooBig", "5 locations"},
		{"time too long", "?time=999", monacoProblem, 400, "InvalidOptions", "time"},
		{"bad seed", "?seed=x", monacoProblem, 400, "InvalidOptions", "seed"},
		{"unknown parameter", "?exploration=5", monacoProblem, 400, "InvalidOptions", "exploration"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := ts.do(t, "POST", "/v1/solve"+tc.query, []byte(tc.body))
			var e struct{ Code, Message string }
			if err := json.Unmarshal(a.body, &e); err != nil {
				t.Fatalf("status %d, body %s", a.status, a.body)
			}
			if a.status != tc.status || e.Code != tc.code || !strings.Contains(e.Message, tc.msg) {
				t.Fatalf("got %d %s %q, want %d %s containing %q", a.status, e.Code, e.Message, tc.status, tc.code, tc.msg)
			}
		})
	}
	if a := ts.do(t, "GET", "/v1/solve", nil); a.status != 405 {
		t.Fatalf("GET /v1/solve: status %d, want 405", a.status)
	}
}
