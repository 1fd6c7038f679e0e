package datasets

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// The tests in this file read the shared data (skipping when it is absent)
// and check the files against each other: every published route set is
// re-evaluated from the instance alone with our readers and our distance
// conventions, which validates both.

// checkVRPTWRoutes verifies that routes serve every customer of v exactly once
// within capacity, time windows and the depot horizon (travel time equals
// distance; arrival = max(ready, previous departure + distance); waiting is
// allowed), and returns the total real-valued distance.
func checkVRPTWRoutes(v *VRPTW, routes [][]int) (float64, error) {
	const eps = 1e-6
	served := make([]bool, v.N())
	total := 0.0
	for r, route := range routes {
		load, t, prev, dist := 0, v.Ready[0], 0, 0.0
		for _, c := range route {
			if c < 1 || c >= v.N() {
				return 0, fmt.Errorf("route %d: customer %d out of range", r+1, c)
			}
			if served[c] {
				return 0, fmt.Errorf("route %d: customer %d served twice", r+1, c)
			}
			served[c] = true
			load += v.Demand[c]
			d := v.Dist(prev, c)
			dist += d
			t = max(v.Ready[c], t+d)
			if t > v.Due[c]+eps {
				return 0, fmt.Errorf("route %d: customer %d: arrival %.4f after due %.4f", r+1, c, t, v.Due[c])
			}
			t += v.Service[c]
			prev = c
		}
		if load > v.Capacity {
			return 0, fmt.Errorf("route %d: load %d over capacity %d", r+1, load, v.Capacity)
		}
		d := v.Dist(prev, 0)
		dist += d
		if t+d > v.Due[0]+eps {
			return 0, fmt.Errorf("route %d: return %.4f after depot due %.4f", r+1, t+d, v.Due[0])
		}
		total += dist
	}
	for c := 1; c < v.N(); c++ {
		if !served[c] {
			return 0, fmt.Errorf("customer %d not served", c)
		}
	}
	return total, nil
}

// checkCVRPRoutes verifies that routes serve every customer of c exactly once
// within capacity and returns the total TSPLIB-rounded distance.
func checkCVRPRoutes(c *CVRP, routes [][]int) (int, error) {
	served := make([]bool, c.N())
	total := 0
	for r, route := range routes {
		load, prev := 0, 0
		for _, k := range route {
			if k < 1 || k >= c.N() {
				return 0, fmt.Errorf("route %d: customer %d out of range", r+1, k)
			}
			if served[k] {
				return 0, fmt.Errorf("route %d: customer %d served twice", r+1, k)
			}
			served[k] = true
			load += c.Demand[k]
			total += c.Dist(prev, k)
			prev = k
		}
		total += c.Dist(prev, 0)
		if load > c.Capacity {
			return 0, fmt.Errorf("route %d: load %d over capacity %d", r+1, load, c.Capacity)
		}
	}
	for k := 1; k < c.N(); k++ {
		if !served[k] {
			return 0, fmt.Errorf("customer %d not served", k)
		}
	}
	return total, nil
}

func globNames(t *testing.T, pattern string) []string {
	t.Helper()
	paths, err := filepath.Glob(pattern)
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(paths)
	return paths
}

func baseName(path string) string {
	b := filepath.Base(path)
	return b[:strings.IndexByte(b, '.')]
}

// round2 rounds half-up to 2 decimals, the convention of bks_distance.
func round2(x float64) float64 { return math.Floor(x*100+0.5) / 100 }

func TestSolomonData(t *testing.T) {
	dir := Require(t, "vrp", "solomon")
	bks, err := ReadBKS(filepath.Join(dir, "bks.csv"))
	if err != nil {
		t.Fatal(err)
	}
	files := globNames(t, filepath.Join(dir, "*.txt"))
	if len(files) != 45 || len(bks) != 45 {
		t.Fatalf("got %d instances and %d bks rows, want 45 and 45 (SOURCES.md)", len(files), len(bks))
	}
	sols := 0
	maxDiff := 0.0
	for _, path := range files {
		name := baseName(path)
		v, err := ReadSolomonFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if v.Name != name || v.N() != 101 || v.Vehicles != 25 {
			t.Errorf("%s: name %q, %d nodes, %d vehicles; want %q, 101, 25", path, v.Name, v.N(), v.Vehicles, name)
		}
		b, ok := bks[name]
		if !ok {
			t.Errorf("%s: no bks.csv row", name)
			continue
		}
		if b.DistanceOnly <= 0 || b.DistanceOnlyVehicles <= 0 || b.DistanceOnly > b.Distance+0.005 {
			t.Errorf("%s: distance-only BKS %v (%d vehicles) inconsistent with hierarchical %v", name, b.DistanceOnly, b.DistanceOnlyVehicles, b.Distance)
		}
		sol, err := ReadCVRPSolutionFile(filepath.Join(dir, "solutions", name+".sol"))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		sols++
		dist, err := checkVRPTWRoutes(v, sol.Routes)
		if err != nil {
			t.Errorf("%s: infeasible BKS: %v", name, err)
			continue
		}
		if len(sol.Routes) != b.Vehicles {
			t.Errorf("%s: %d routes, bks_vehicles %d", name, len(sol.Routes), b.Vehicles)
		}
		if math.Abs(round2(dist)-b.Distance) > 1e-6 || !sol.HasCost || math.Abs(sol.Cost-b.Distance) > 1e-6 {
			t.Errorf("%s: recomputed distance %.4f (rounded %.2f), Cost line %v, bks_distance %v", name, dist, round2(dist), sol.Cost, b.Distance)
		}
		maxDiff = max(maxDiff, math.Abs(dist-b.Distance))
	}
	if sols != 45 {
		t.Errorf("%d solutions checked, want 45", sols)
	}
	t.Logf("45 Solomon BKS feasible; max |recomputed - bks_distance| = %.5f", maxDiff)
}

var hombergerSolName = regexp.MustCompile(`^([a-z0-9_]+)\.(\d+)_(\d+\.\d+)\.txt$`)

func TestHombergerData(t *testing.T) {
	dir := Require(t, "vrp", "homberger")
	bks, err := ReadBKS(filepath.Join(dir, "bks.csv"))
	if err != nil {
		t.Fatal(err)
	}
	files := globNames(t, filepath.Join(dir, "*.txt"))
	if len(files) != 144 || len(bks) != 144 {
		t.Fatalf("got %d instances and %d bks rows, want 144 and 144 (SOURCES.md)", len(files), len(bks))
	}
	solFiles := map[string]string{}
	for _, p := range globNames(t, filepath.Join(dir, "solutions", "*.txt")) {
		m := hombergerSolName.FindStringSubmatch(filepath.Base(p))
		if m == nil {
			t.Errorf("unexpected solution file name %s", p)
			continue
		}
		solFiles[m[1]] = p
	}
	if len(solFiles) != 144 {
		t.Errorf("%d solution files, want 144", len(solFiles))
	}
	sizes := map[int]int{}
	max4 := 0.0
	for _, path := range files {
		name := baseName(path)
		v, err := ReadSolomonFile(path)
		if err != nil {
			t.Fatal(err)
		}
		n, _ := strconv.Atoi(strings.Split(name, "_")[1])
		if v.Name != name || v.N() != 100*n+1 {
			t.Errorf("%s: name %q with %d nodes, want %q with %d", path, v.Name, v.N(), name, 100*n+1)
		}
		sizes[v.N()-1]++
		b, ok := bks[name]
		if !ok {
			t.Errorf("%s: no bks.csv row", name)
			continue
		}
		sp, ok := solFiles[name]
		if !ok {
			t.Errorf("%s: no solution file", name)
			continue
		}
		sol, err := ReadCVRPSolutionFile(sp)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if got := sol.Header["Instance name"] + sol.Header["Instance Name"]; !strings.EqualFold(got, name) {
			t.Errorf("%s: solution header names instance %q", name, got)
		}
		dist, err := checkVRPTWRoutes(v, sol.Routes)
		if err != nil {
			t.Errorf("%s: infeasible BKS: %v", name, err)
			continue
		}
		m := hombergerSolName.FindStringSubmatch(filepath.Base(sp))
		fileVeh, _ := strconv.Atoi(m[2])
		fileDist, _ := strconv.ParseFloat(m[3], 64)
		if len(sol.Routes) != b.Vehicles || fileVeh != b.Vehicles {
			t.Errorf("%s: %d routes, file name says %d, bks_vehicles %d", name, len(sol.Routes), fileVeh, b.Vehicles)
		}
		if math.Abs(round2(dist)-b.Distance) > 1e-6 || math.Abs(dist-b.Distance4DP) > 0.0000501 || fileDist != b.Distance4DP {
			t.Errorf("%s: recomputed %.5f, bks_distance %v, 4dp %v, file name %v", name, dist, b.Distance, b.Distance4DP, fileDist)
		}
		max4 = max(max4, math.Abs(dist-b.Distance4DP))
	}
	if sizes[200] != 48 || sizes[400] != 48 || sizes[1000] != 48 {
		t.Errorf("instances by size %v, want 48 of each of 200, 400, 1000", sizes)
	}
	t.Logf("144 Homberger BKS feasible; max |recomputed - bks_distance_4dp| = %.6f", max4)
}

var cvrpName = regexp.MustCompile(`^([A-Z])-n(\d+)-k(\d+)$`)

func TestCVRPLIBData(t *testing.T) {
	dir := Require(t, "vrp", "cvrplib")
	bks, err := ReadBKS(filepath.Join(dir, "bks.csv"))
	if err != nil {
		t.Fatal(err)
	}
	files := globNames(t, filepath.Join(dir, "*.vrp"))
	counts := map[string]int{}
	solved := 0
	for _, path := range files {
		name := strings.TrimSuffix(filepath.Base(path), ".vrp")
		m := cvrpName.FindStringSubmatch(name)
		if m == nil {
			t.Errorf("unexpected instance name %s", name)
			continue
		}
		counts[m[1]]++
		c, err := ReadCVRPFile(path)
		if err != nil {
			t.Fatal(err)
		}
		n, _ := strconv.Atoi(m[2])
		if c.Name != name || c.N() != n || c.Depot != 1 || c.Vehicles != 0 {
			t.Errorf("%s: name %q, %d nodes, depot %d, vehicles %d; want %q, %d, 1, 0", path, c.Name, c.N(), c.Depot, c.Vehicles, name, n)
		}
		if c.Demand[0] != 0 {
			t.Errorf("%s: depot demand %d", name, c.Demand[0])
		}
		b, ok := bks[name]
		if !ok {
			t.Errorf("%s: no bks.csv row", name)
			continue
		}
		solPath := strings.TrimSuffix(path, ".vrp") + ".sol"
		if _, err := os.Stat(solPath); err != nil {
			if m[1] == "X" {
				t.Errorf("%s: missing .sol", name)
			}
			if k, _ := strconv.Atoi(m[3]); b.Vehicles != k {
				t.Errorf("%s: bks_vehicles %d, want k=%d", name, b.Vehicles, k)
			}
			continue
		}
		sol, err := ReadCVRPSolutionFile(solPath)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		cost, err := checkCVRPRoutes(c, sol.Routes)
		if err != nil {
			t.Errorf("%s: infeasible BKS: %v", name, err)
			continue
		}
		solved++
		if !sol.HasCost || float64(cost) != sol.Cost || float64(cost) != b.Distance || len(sol.Routes) != b.Vehicles {
			t.Errorf("%s: recomputed cost %d with %d routes; Cost line %v, bks %v with %d vehicles", name, cost, len(sol.Routes), sol.Cost, b.Distance, b.Vehicles)
		}
	}
	want := map[string]int{"X": 80, "A": 22, "B": 19, "E": 9, "P": 19}
	for set, n := range want {
		if counts[set] != n {
			t.Errorf("set %s: %d instances, want %d", set, counts[set], n)
		}
	}
	if len(counts) != len(want) || len(bks) != 149 {
		t.Errorf("sets %v, %d bks rows; want %v and 149", counts, len(bks), want)
	}
	if sols := globNames(t, filepath.Join(dir, "*.sol")); len(sols) != 80 || solved != 80 {
		t.Errorf("%d .sol files, %d verified; want 80", len(sols), solved)
	}
}

func TestTracesData(t *testing.T) {
	path := Require(t, "traces", "normalised", "porto_taxi_train-1000.csv")
	ts, err := ReadTracesFile(path)
	if err != nil {
		t.Fatal(err)
	}
	points := 0
	for _, tr := range ts {
		points += len(tr.Points)
		if len(tr.Points) < 2 {
			t.Errorf("trace %s has %d points", tr.ID, len(tr.Points))
		}
		for i, p := range tr.Points {
			// SOURCES.md bbox: -8.709399, 41.008275, -8.486757, 41.260086.
			if p.Lon < -8.709399 || p.Lon > -8.486757 || p.Lat < 41.008275 || p.Lat > 41.260086 {
				t.Fatalf("trace %s point %d (%v, %v) outside the SOURCES.md bbox", tr.ID, i, p.Lat, p.Lon)
			}
			if p.Time < 1372636853 || i > 0 && p.Time != tr.Points[i-1].Time+15 {
				t.Fatalf("trace %s point %d: time %d not on the 15 s grid from the trip start", tr.ID, i, p.Time)
			}
		}
	}
	if len(ts) != 990 || points != 47319 {
		t.Errorf("%d traces with %d points, want 990 and 47319", len(ts), points)
	}

	path = Require(t, "traces", "normalised", "andorra_for_map_matching.csv")
	ts, err = ReadTracesFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(ts) != 1 || ts[0].ID != "andorra_for_map_matching" || len(ts[0].Points) != 21 || ts[0].Points[0].Time != 0 {
		t.Errorf("andorra: %d traces, want one of 21 untimed points", len(ts))
	}
}

func TestOSMExtracts(t *testing.T) {
	Require(t, "osm")
	got := OSMExtracts()
	var names []string
	for _, p := range got {
		names = append(names, filepath.Base(p))
	}
	want := []string{"monaco.osm.pbf", "andorra.osm.pbf", "porto.osm.pbf"}
	if strings.Join(names, ",") != strings.Join(want, ",") {
		t.Errorf("OSMExtracts() = %v, want %v (by size)", names, want)
	}
}
