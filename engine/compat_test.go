package engine

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lastmile/lastmile/vrp"
)

// compatCase is what one VROOM-format problem of testdata/vroom must
// produce beyond the common checks.
type compatCase struct {
	file string
	// unassigned are the task ids left out, with the start of each one's
	// reason ("" = not checked, nil map = none may be left out).
	unassigned map[uint64]string
	// mustAssign are task ids that must be in a route (e.g. the high
	// priorities when not everything fits).
	mustAssign []uint64
	// stepTypes must each appear in some route.
	stepTypes []string
	// openEnd are vehicles without an end: their routes have no end step;
	// openStart likewise without a start step.
	openEnd, openStart []uint64
}

var compatCases = []compatCase{
	{file: "01_bakery_time_windows.json", unassigned: map[uint64]string{}, stepTypes: []string{"start", "job", "end"}},
	{file: "02_courier_shipments.json", unassigned: map[uint64]string{}, stepTypes: []string{"start", "pickup", "delivery", "job", "end"}},
	{file: "03_technicians_breaks_skills.json", stepTypes: []string{"start", "job", "break", "end"}},
	{file: "04_grocery_multidim_priorities.json", mustAssign: []uint64{402, 405, 408, 411, 414, 417}, stepTypes: []string{"start", "job", "end"}},
	{file: "05_open_routes_fleet.json", unassigned: map[uint64]string{}, stepTypes: []string{"start", "job", "end"},
		openEnd: []uint64{42, 44}, openStart: []uint64{43}},
	{file: "06_infeasible_jobs.json", unassigned: map[uint64]string{690: "skills", 691: "capacity", 692: "time"},
		stepTypes: []string{"start", "job", "end"}},
	{file: "07_user_matrix.json", unassigned: map[uint64]string{}, stepTypes: []string{"start", "job", "end"}, openEnd: []uint64{62}},
}

// Keys of VROOM's output objects (docs/API.md, "Output").
var (
	vroomSummaryKeys = []string{"cost", "routes", "unassigned", "delivery", "pickup", "setup", "service", "duration",
		"waiting_time", "priority", "distance", "violations", "computing_times"}
	vroomRouteKeys = []string{"vehicle", "cost", "delivery", "pickup", "setup", "service", "duration", "waiting_time",
		"priority", "distance", "steps", "violations"}
	vroomStepKeys = []string{"type", "arrival", "duration", "setup", "service", "waiting_time", "load", "distance", "violations"}
)

// TestVROOMCompatibility posts each problem of testdata/vroom to the
// server over loopback, synchronously and asynchronously, checks that
// the answer has VROOM's shape, that vrp.Validate accepts it against the
// problem (with the matrices computed from the same graph), and the
// expectations of its compatCase.
func TestVROOMCompatibility(t *testing.T) {
	ts := startServer(t, ServerConfig{})
	files, err := filepath.Glob(filepath.Join("testdata", "vroom", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != len(compatCases) {
		t.Fatalf("%d files in testdata/vroom, %d cases: keep them in step", len(files), len(compatCases))
	}
	for _, tc := range compatCases {
		t.Run(strings.TrimSuffix(tc.file, ".json"), func(t *testing.T) {
			body, err := os.ReadFile(filepath.Join("testdata", "vroom", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			p, err := vrp.ParseProblem(body)
			if err != nil {
				t.Fatal(err)
			}
			// Every coordinate is on the Monaco roads (snaps within 30 m).
			var pts []LonLat
			for _, l := range p.Locations() {
				if l[0] == l[0] { // not NaN
					pts = append(pts, LonLat(l))
				}
			}
			if len(pts) > 0 {
				_, wps, err := ts.R.Snap(pts)
				if err != nil {
					t.Fatalf("snap: %v", err)
				}
				for i, w := range wps {
					if w.Distance > 30 {
						t.Errorf("%v snaps %.0f m away", pts[i], w.Distance)
					}
				}
				if err := ts.R.FillMatrices(p); err != nil {
					t.Fatal(err)
				}
			}
			extra, err := parseSolveExtras(body)
			if err != nil {
				t.Fatal(err)
			}
			for _, async := range []bool{false, true} {
				var raw []byte
				if async {
					j := waitJob(t, ts, submit(t, ts, "?async=true&time=0.3", string(body)), 30*time.Second)
					if j["status"] != "done" {
						t.Fatalf("async: %v", j)
					}
					raw = mustJSON(j["solution"])
				} else {
					a := ts.do(t, "POST", "/v1/solve?time=0.3", body)
					if a.status != 200 {
						t.Fatalf("status %d: %s", a.status, a.body)
					}
					raw = a.body
				}
				checkVROOMShape(t, raw, extra.geometry, len(pts) > 0)
				var sol vrp.Solution
				if err := json.Unmarshal(raw, &sol); err != nil {
					t.Fatal(err)
				}
				rep, err := vrp.Validate(p, &sol)
				if err != nil {
					t.Fatalf("async %v: the checker rejects the answer: %v", async, err)
				}
				tc.check(t, &sol)
				if async {
					t.Logf("cost %d, %d routes, %d assigned, %d unassigned", sol.Summary.Cost, rep.Routes, rep.Assigned, rep.Unassigned)
				}
			}
		})
	}
}

// checkVROOMShape checks the keys and value kinds of a VROOM answer.
func checkVROOMShape(t *testing.T, raw []byte, geometry, coords bool) {
	t.Helper()
	var v map[string]any
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	if v["code"] != 0.0 {
		t.Fatalf("code %v, want 0", v["code"])
	}
	has := func(at string, m map[string]any, keys []string) {
		for _, k := range keys {
			if _, ok := m[k]; !ok {
				t.Errorf("%s: no %q", at, k)
			}
		}
	}
	summary, _ := v["summary"].(map[string]any)
	has("summary", summary, vroomSummaryKeys)
	unassigned, ok := v["unassigned"].([]any)
	if !ok {
		t.Fatalf("unassigned is %T", v["unassigned"])
	}
	for _, u := range unassigned {
		has("unassigned", u.(map[string]any), []string{"id", "type", "reason"})
	}
	routes, _ := v["routes"].([]any)
	if len(routes) == 0 || summary["routes"] != float64(len(routes)) || summary["unassigned"] != float64(len(unassigned)) {
		t.Fatalf("%d routes, %d unassigned, summary %v", len(routes), len(unassigned), summary)
	}
	for i, rv := range routes {
		r := rv.(map[string]any)
		has("route", r, vroomRouteKeys)
		g, hasGeom := r["geometry"].(string)
		if hasGeom != geometry || geometry && g == "" {
			t.Errorf("route %d: geometry %q, want one: %v", i, g, geometry)
		}
		if line, ok := DecodePolyline(g, 5); geometry && (!ok || len(line) < 2) {
			t.Errorf("route %d: geometry %q is not a polyline of 2 points or more", i, clip([]byte(g), 40))
		}
		steps := r["steps"].([]any)
		last := -1.0
		for k, sv := range steps {
			s := sv.(map[string]any)
			has("step", s, vroomStepKeys)
			typ, _ := s["type"].(string)
			if !slices.Contains([]string{"start", "job", "pickup", "delivery", "break", "end"}, typ) {
				t.Errorf("route %d step %d: type %q", i, k, typ)
			}
			if typ != "start" && typ != "end" {
				if _, ok := s["id"]; !ok {
					t.Errorf("route %d step %d (%s): no id", i, k, typ)
				}
			}
			if _, ok := s["location_index"]; !ok && typ != "break" {
				t.Errorf("route %d step %d: no location_index", i, k)
			}
			if _, ok := s["location"]; ok != coords && typ != "break" {
				t.Errorf("route %d step %d: location present %v, want %v", i, k, ok, coords)
			}
			arr := s["arrival"].(float64)
			if arr < last {
				t.Errorf("route %d step %d: arrival %v before the previous step's %v", i, k, arr, last)
			}
			last = arr
		}
	}
}

func (tc *compatCase) check(t *testing.T, sol *vrp.Solution) {
	t.Helper()
	got := map[uint64]string{}
	for _, u := range sol.Unassigned {
		if u.Reason == "" {
			t.Errorf("unassigned %s %d without a reason", u.Type, u.ID)
		}
		got[u.ID] = u.Reason
	}
	if tc.unassigned != nil {
		if len(got) != len(tc.unassigned) {
			t.Errorf("unassigned %v, want %v", got, tc.unassigned)
		}
		for id, prefix := range tc.unassigned {
			if r, ok := got[id]; !ok || !strings.HasPrefix(r, prefix) {
				t.Errorf("task %d: unassigned %v with reason %q, want a reason starting %q", id, ok, r, prefix)
			}
		}
	}
	for _, id := range tc.mustAssign {
		if _, ok := got[id]; ok {
			t.Errorf("task %d (high priority) unassigned: %s", id, got[id])
		}
	}
	types := map[string]bool{}
	for _, r := range sol.Routes {
		for _, s := range r.Steps {
			types[s.Type] = true
		}
		if len(r.Steps) == 0 {
			t.Fatalf("vehicle %d: empty route", r.Vehicle)
		}
		first, last := r.Steps[0].Type, r.Steps[len(r.Steps)-1].Type
		if (first == "start") == slices.Contains(tc.openStart, r.Vehicle) {
			t.Errorf("vehicle %d: first step %s", r.Vehicle, first)
		}
		if (last == "end") == slices.Contains(tc.openEnd, r.Vehicle) {
			t.Errorf("vehicle %d: last step %s", r.Vehicle, last)
		}
	}
	for _, typ := range tc.stepTypes {
		if !types[typ] {
			t.Errorf("no %s step in any route", typ)
		}
	}
}
