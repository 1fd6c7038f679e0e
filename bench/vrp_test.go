package bench

import (
	"strings"
	"testing"
	"time"

	"github.com/lastmile/lastmile/datasets"
	"github.com/lastmile/lastmile/vrp"
)

// TestVRPSets solves a few benchmark instances briefly through the whole
// bench path (reader, problem, solver, vrp.Validate, real-valued re-check)
// and bounds their gap loosely; the recorded figures come from longer runs.
func TestVRPSets(t *testing.T) {
	tests := []struct {
		set, filter string
		n           int
		maxGap      float64
	}{
		{"solomon", "^(C101|R202|RC101)$", 3, 6},
		{"cvrplib", "^(X-n101-k25|A-n32-k5)$", 2, 6},
		{"homberger", "^c1_2_1$", 1, 10},
	}
	for _, tc := range tests {
		t.Run(tc.set, func(t *testing.T) {
			datasets.Require(t, "vrp", tc.set, "bks.csv")
			rep, err := VRP(VRPConfig{Set: tc.set, Filter: tc.filter, Time: 700 * time.Millisecond, Seed: 1})
			if err != nil {
				t.Fatal(err)
			}
			if len(rep.Results) != tc.n {
				t.Fatalf("%d instances solved, want %d", len(rep.Results), tc.n)
			}
			for _, r := range rep.Results {
				if r.Invalid != "" {
					t.Errorf("%s: %s", r.Instance, r.Invalid)
				}
				if r.Gap > tc.maxGap || r.Gap < -5 {
					t.Errorf("%s: gap %.2f%% outside [-5, %g]", r.Instance, r.Gap, tc.maxGap)
				}
				t.Logf("%s: %.2f (BKS %.2f, %+.2f%%), %d vehicles", r.Instance, r.Distance, r.BKS, r.Gap, r.Vehicles)
			}
		})
	}
}

// TestCustomerRoutes checks that the independent re-check rejects
// solutions that serve a customer twice, serve an unknown one or miss one.
func TestCustomerRoutes(t *testing.T) {
	route := func(ids ...uint64) vrp.Route {
		r := vrp.Route{Steps: []vrp.Step{{Type: "start"}}}
		for _, i := range ids {
			r.Steps = append(r.Steps, vrp.Step{Type: "job", ID: &i})
		}
		r.Steps = append(r.Steps, vrp.Step{Type: "end"})
		return r
	}
	tests := []struct {
		name   string
		routes []vrp.Route
		bad    string
	}{
		{"all once", []vrp.Route{route(1, 3), route(2)}, ""},
		{"twice", []vrp.Route{route(1, 3), route(2, 3)}, "served twice"},
		{"unknown", []vrp.Route{route(1, 2, 3, 4)}, "unknown"},
		{"missing", []vrp.Route{route(1, 3)}, "2 of 3 customers"},
	}
	for _, tc := range tests {
		routes, bad := customerRoutes(&vrp.Solution{Routes: tc.routes}, 4)
		if tc.bad == "" {
			if bad != "" || len(routes) != len(tc.routes) {
				t.Errorf("%s: %q", tc.name, bad)
			}
			continue
		}
		if !strings.Contains(bad, tc.bad) {
			t.Errorf("%s: got %q, want %q", tc.name, bad, tc.bad)
		}
	}
}
