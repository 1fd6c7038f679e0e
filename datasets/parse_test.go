package datasets

import (
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

const solomonSnippet = "T1\r\n\r\nVEHICLE\r\nNUMBER     CAPACITY\r\n  2         50\r\n\r\n" +
	"CUSTOMER\r\nCUST NO.  XCOORD.   YCOORD.    DEMAND   READY TIME  DUE DATE   SERVICE   TIME\r\n \r\n" +
	"    0      0          0          0          0       100          0   \r\n" +
	"    1      3          4         10         5         50         10\r\n" +
	"    2      6.5        8         20         0         60.5       5   \r\n"

func TestReadSolomon(t *testing.T) {
	v, err := ReadSolomon(strings.NewReader(solomonSnippet))
	if err != nil {
		t.Fatal(err)
	}
	want := &VRPTW{
		Name: "T1", Vehicles: 2, Capacity: 50,
		X: []float64{0, 3, 6.5}, Y: []float64{0, 4, 8},
		Demand:  []int{0, 10, 20},
		Ready:   []float64{0, 5, 0},
		Due:     []float64{100, 50, 60.5},
		Service: []float64{0, 10, 5},
	}
	if !reflect.DeepEqual(v, want) {
		t.Fatalf("got %+v\nwant %+v", v, want)
	}
	if d := v.Dist(0, 1); d != 5 {
		t.Errorf("Dist(0,1) = %v, want 5", d)
	}
	if d, w := v.Dist(1, 2), math.Sqrt(3.5*3.5+4*4); d != w || v.Dist(2, 1) != w {
		t.Errorf("Dist(1,2) = %v, want %v (unrounded, symmetric)", d, w)
	}
	// LF line ends parse identically.
	v2, err := ReadSolomon(strings.NewReader(strings.ReplaceAll(solomonSnippet, "\r\n", "\n")))
	if err != nil || !reflect.DeepEqual(v2, want) {
		t.Errorf("LF variant: %v, %+v", err, v2)
	}
}

func TestReadSolomonErrors(t *testing.T) {
	lines := strings.Split(strings.ReplaceAll(solomonSnippet, "\r\n", "\n"), "\n")
	replace := func(i int, s string) string {
		l := append([]string(nil), lines...)
		l[i] = s
		return strings.Join(l, "\n")
	}
	tests := []struct {
		name, in, want string
	}{
		{"empty", "", "missing instance name"},
		{"no name", "VEHICLE\n", "line 1: missing instance name"},
		{"truncated after name", "T1\n\n", "missing VEHICLE"},
		{"truncated in vehicle", strings.Join(lines[:4], "\n"), "missing vehicle number and capacity"},
		{"truncated before rows", strings.Join(lines[:9], "\n"), "need the depot and at least one customer, got 0 rows"},
		{"depot only", strings.Join(lines[:10], "\n"), "need the depot and at least one customer"},
		{"bad keyword", replace(2, "VEHICLES"), "line 3: expected VEHICLE"},
		{"bad header", replace(3, "NUMBER"), "line 4: expected NUMBER CAPACITY"},
		{"bad capacity", replace(4, "2 x"), `line 5: VEHICLE: invalid capacity "x"`},
		{"zero vehicles", replace(4, "0 50"), `line 5: VEHICLE: invalid number "0"`},
		{"bad customer keyword", replace(6, "CUSTOMERS"), "line 7: expected CUSTOMER"},
		{"bad customer header", replace(7, "NO."), "line 8: expected CUST NO."},
		{"short row", replace(10, "1 3 4 10 5 50"), "line 11: CUSTOMER: expected 7 fields, got 6"},
		{"bad number", replace(10, "1 3 y 10 5 50 10"), `line 11: CUSTOMER: customer 1: invalid YCOORD. "y"`},
		{"nan", replace(10, "1 NaN 4 10 5 50 10"), `invalid XCOORD. "NaN"`},
		{"huge", replace(10, "1 1e300 4 10 5 50 10"), `invalid XCOORD. "1e300"`},
		{"fractional demand", replace(10, "1 3 4 1.5 5 50 10"), `invalid DEMAND "1.5"`},
		{"negative demand", replace(10, "1 3 4 -1 5 50 10"), `invalid DEMAND "-1"`},
		{"window", replace(10, "1 3 4 10 60 50 10"), "invalid time window [60, 50]"},
		{"service", replace(10, "1 3 4 10 5 50 -1"), `invalid SERVICE TIME "-1"`},
		{"sequence", replace(10, "2 3 4 10 5 50 10"), "line 11: CUSTOMER: CUST NO. 2 out of sequence, expected 1"},
		{"bad id", replace(10, "a 3 4 10 5 50 10"), `invalid CUST NO. "a"`},
		{"long line", "T1\n" + strings.Repeat("x", maxLineBytes+1), "line 2: line longer than"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v, err := ReadSolomon(strings.NewReader(tc.in))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("ReadSolomon: got %v, %v; want error containing %q", v, err, tc.want)
			}
		})
	}
}

const cvrpSnippet = "NAME : \tT-n4-k2\t\r\nCOMMENT : \"test: quoted\"\r\nTYPE : CVRP\r\nDIMENSION : 4\r\n" +
	"EDGE_WEIGHT_TYPE : EUC_2D \r\nCAPACITY : 30\r\nVEHICLES : 2\r\nNODE_COORD_SECTION \r\n" +
	" 1 0 0\r\n 2 3 4\r\n4 10 0\r\n3 1.5 1.5\r\n" +
	"DEMAND_SECTION\r\n1 0\r\n2 10\r\n3 15\r\n4 20\r\nDEPOT_SECTION\r\n 1\r\n -1\r\nEOF\r\n"

func TestReadCVRP(t *testing.T) {
	c, err := ReadCVRP(strings.NewReader(cvrpSnippet))
	if err != nil {
		t.Fatal(err)
	}
	want := &CVRP{
		Name: "T-n4-k2", Comment: "test: quoted", Capacity: 30, Vehicles: 2,
		X: []float64{0, 3, 1.5, 10}, Y: []float64{0, 4, 1.5, 0},
		Demand: []int{0, 10, 15, 20}, Depot: 1,
	}
	if !reflect.DeepEqual(c, want) {
		t.Fatalf("got %+v\nwant %+v", c, want)
	}
	dists := []struct{ i, j, want int }{
		{0, 1, 5},  // exactly 5
		{1, 0, 5},  // symmetric
		{0, 2, 2},  // 2.121 rounds down
		{1, 2, 3},  // 2.915 rounds up
		{1, 3, 8},  // 8.062
		{2, 3, 9},  // 8.631
		{0, 3, 10}, // exactly 10
		{3, 3, 0},  // self
	}
	for _, d := range dists {
		if got := c.Dist(d.i, d.j); got != d.want {
			t.Errorf("Dist(%d,%d) = %d, want %d", d.i, d.j, got, d.want)
		}
	}
}

func TestCVRPDistHalfRoundsUp(t *testing.T) {
	c := &CVRP{X: []float64{0, 2.5, 0}, Y: []float64{0, 0, 0.49}}
	if got := c.Dist(0, 1); got != 3 {
		t.Errorf("nint(2.5) = %d, want 3 (TSPLIB int(x+0.5))", got)
	}
	if got := c.Dist(0, 2); got != 0 {
		t.Errorf("nint(0.49) = %d, want 0", got)
	}
}

func TestCVRPDepotMapping(t *testing.T) {
	// Depot is file node 3: nodes 1, 2 keep their numbers, 4 and 5 move down.
	in := "NAME : D\nTYPE : CVRP\nDIMENSION : 5\nEDGE_WEIGHT_TYPE : EUC_2D\nCAPACITY : 9\n" +
		"NODE_COORD_SECTION\n1 1 0\n2 2 0\n3 3 0\n4 4 0\n5 5 0\n" +
		"DEMAND_SECTION\n1 1\n2 2\n3 0\n4 4\n5 5\nDEPOT_SECTION\n3\n-1\n"
	c, err := ReadCVRP(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if c.Depot != 3 || !reflect.DeepEqual(c.X, []float64{3, 1, 2, 4, 5}) || !reflect.DeepEqual(c.Demand, []int{0, 1, 2, 4, 5}) {
		t.Fatalf("got depot %d, X %v, demand %v", c.Depot, c.X, c.Demand)
	}
	for node := 1; node <= 5; node++ {
		i := c.Index(node)
		if c.X[i] != float64(node) || c.FileNode(i) != node {
			t.Errorf("node %d -> index %d -> node %d (X %v)", node, i, c.FileNode(i), c.X[i])
		}
	}
}

func TestReadCVRPErrors(t *testing.T) {
	base := strings.ReplaceAll(cvrpSnippet, "\r\n", "\n")
	sub := func(old, new string) string {
		if !strings.Contains(base, old) {
			panic("snippet lacks " + old)
		}
		return strings.Replace(base, old, new, 1)
	}
	cut := func(marker string) string { return base[:strings.Index(base, marker)] }
	tests := []struct {
		name, in, want string
	}{
		{"empty", "", "missing DIMENSION"},
		{"edge weight type", sub("EUC_2D", "GEO"), `line 5: EDGE_WEIGHT_TYPE: unsupported "GEO", only EUC_2D`},
		{"explicit", sub("EDGE_WEIGHT_TYPE : EUC_2D", "EDGE_WEIGHT_TYPE : EXPLICIT"), `unsupported "EXPLICIT"`},
		{"no edge weight type", sub("EDGE_WEIGHT_TYPE : EUC_2D \n", ""), "missing EDGE_WEIGHT_TYPE"},
		{"type", sub("TYPE : CVRP", "TYPE : TSP"), `TYPE: unsupported "TSP"`},
		{"bad demand", sub("3 15", "3 x"), `line 16: DEMAND_SECTION: node 3: invalid demand "x"`},
		{"negative demand", sub("3 15", "3 -2"), `DEMAND_SECTION: node 3: invalid demand "-2"`},
		{"bad coord", sub("2 3 4", "2 3 four"), `line 10: NODE_COORD_SECTION: node 2: invalid coordinates "3" "four"`},
		{"node range", sub("4 10 0", "5 10 0"), `line 11: NODE_COORD_SECTION: invalid node "5" (DIMENSION 4)`},
		{"coord fields", sub("2 3 4", "2 3"), "NODE_COORD_SECTION: expected 3 fields"},
		{"duplicate node", sub("4 10 0", "2 10 0"), "line 11: NODE_COORD_SECTION: duplicate node 2"},
		{"duplicate demand", sub("4 20", "2 20"), "DEMAND_SECTION: duplicate node 2"},
		{"missing node", sub("3 1.5 1.5\n", ""), "NODE_COORD_SECTION: 3 nodes, DIMENSION is 4"},
		{"missing demand", sub("4 20\n", ""), "DEMAND_SECTION: 3 nodes, DIMENSION is 4"},
		{"extra node", sub("3 1.5 1.5\n", "3 1.5 1.5\n4 1 1\n"), "NODE_COORD_SECTION: more than DIMENSION=4 nodes"},
		{"bad dimension", sub("DIMENSION : 4", "DIMENSION : four"), `DIMENSION: invalid "four"`},
		{"absurd dimension", sub("DIMENSION : 4", "DIMENSION : 999999999999"), "DIMENSION: invalid"},
		{"huge dimension no data", sub("DIMENSION : 4", "DIMENSION : 1000000"), "NODE_COORD_SECTION: 4 nodes, DIMENSION is 1000000"},
		{"bad capacity", sub("CAPACITY : 30", "CAPACITY : 0"), `CAPACITY: invalid "0"`},
		{"bad vehicles", sub("VEHICLES : 2", "VEHICLES : -1"), `VEHICLES: invalid "-1"`},
		{"no capacity", sub("CAPACITY : 30\n", ""), "missing CAPACITY"},
		{"section before dimension", "NODE_COORD_SECTION\n1 0 0\n", "line 2: NODE_COORD_SECTION before DIMENSION"},
		{"truncated coords", cut("DEMAND_SECTION"), "missing DEMAND_SECTION"},
		{"truncated demand", cut("4 20"), "missing DEPOT_SECTION"},
		{"truncated depot", cut(" -1"), "DEPOT_SECTION: unexpected end of input, missing -1 terminator"},
		{"depot unterminated", sub(" -1\n", ""), "line 20: DEPOT_SECTION: missing -1 terminator before EOF"},
		{"no depot", sub(" 1\n -1", " -1"), "DEPOT_SECTION: no depot"},
		{"two depots", sub(" 1\n -1", " 1\n 2\n -1"), "more than one depot (1 and 2)"},
		{"depot coords", sub(" 1\n -1", " 1 2\n -1"), "DEPOT_SECTION: expected one node number"},
		{"depot range", sub(" 1\n -1", " 9\n -1"), `DEPOT_SECTION: invalid node "9"`},
		{"after terminator", sub(" -1\n", " -1\n 2\n"), "data after the -1 terminator"},
		{"duplicate key", sub("CAPACITY : 30", "CAPACITY : 30\nCAPACITY : 40"), "line 7: duplicate CAPACITY"},
		{"unsupported key", sub("VEHICLES : 2", "DISTANCE : 100"), `line 7: unsupported keyword "DISTANCE"`},
		{"garbage", sub("VEHICLES : 2", "hello"), `unsupported keyword "HELLO"`},
		{"section value", sub("DEMAND_SECTION", "DEMAND_SECTION 3"), `DEMAND_SECTION: unexpected "3"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ReadCVRP(strings.NewReader(tc.in))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("ReadCVRP: got %+v, %v; want error containing %q", c, err, tc.want)
			}
		})
	}
}

func TestReadCVRPSolution(t *testing.T) {
	tests := []struct {
		name, in string
		want     *CVRPSolution
	}{
		{"cvrplib", "Route #1: 3 1\r\nRoute #2: 2\r\nCost 27591\r\n",
			&CVRPSolution{Routes: [][]int{{3, 1}, {2}}, Cost: 27591, HasCost: true}},
		{"solomon", "Route #1: 5 3 7\nRoute #2: 13 17\nCost 828.94\n",
			&CVRPSolution{Routes: [][]int{{5, 3, 7}, {13, 17}}, Cost: 828.94, HasCost: true}},
		{"sintef", "Instance name : c1_2_1\nAuthors       : A, B\nDate: \nSolution\nRoute  1 : 32 171 \nRoute 2: 177\n\n",
			&CVRPSolution{Routes: [][]int{{32, 171}, {177}},
				Header: map[string]string{"Instance name": "c1_2_1", "Authors": "A, B", "Date": ""}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := ReadCVRPSolution(strings.NewReader(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(s, tc.want) {
				t.Errorf("got %+v, want %+v", s, tc.want)
			}
		})
	}
}

func TestReadCVRPSolutionErrors(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"empty", "", "no routes"},
		{"cost only", "Cost 12\n", "line 1: no routes"},
		{"bad customer", "Route #1: 1 x 3\n", `line 1: route 1: invalid customer "x"`},
		{"depot in route", "Route #1: 0 1\n", `route 1: invalid customer "0"`},
		{"empty route", "Route #1: 1\nRoute #2:\n", "line 2: route 2: empty route"},
		{"no colon", "Route #1 1 2\n", "route: missing ':'"},
		{"bad route number", "Route #a: 1 2\n", `route: invalid route number "a"`},
		{"bad cost", "Route #1: 1\nCost abc\n", `line 2: Cost: invalid value "abc"`},
		{"negative cost", "Route #1: 1\nCost -3\n", `Cost: invalid value "-3"`},
		{"duplicate cost", "Route #1: 1\nCost 3\nCost 4\n", "line 3: duplicate Cost line"},
		{"garbage", "Route #1: 1\nhello\n", `line 2: unexpected line "hello"`},
		{"header after routes", "Route #1: 1\nAuthors: x\n", "line 2: unexpected line"},
		{"solution after routes", "Route 1 : 1\nSolution\n", "Solution line after routes"},
		{"overflow", "Route #1: 99999999999999999999\n", "invalid customer"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := ReadCVRPSolution(strings.NewReader(tc.in))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %+v, %v; want error containing %q", s, err, tc.want)
			}
		})
	}
}

const tracesSnippet = "trace_id,timestamp_unix,lat,lon\r\n" +
	"a,100,41.1,-8.6\r\na,115,41.2,-8.5\r\nb,,42.6,1.5\r\n"

func TestReadTraces(t *testing.T) {
	ts, err := ReadTraces(strings.NewReader(tracesSnippet))
	if err != nil {
		t.Fatal(err)
	}
	want := []Trace{
		{ID: "a", Points: []TracePoint{{100, 41.1, -8.6}, {115, 41.2, -8.5}}},
		{ID: "b", Points: []TracePoint{{0, 42.6, 1.5}}},
	}
	if !reflect.DeepEqual(ts, want) {
		t.Errorf("got %+v, want %+v", ts, want)
	}
	ts, err = ReadTraces(strings.NewReader("trace_id,timestamp_unix,lat,lon\n"))
	if err != nil || len(ts) != 0 {
		t.Errorf("header only: %v, %v", ts, err)
	}
}

func TestReadTracesErrors(t *testing.T) {
	const h = "trace_id,timestamp_unix,lat,lon\n"
	tests := []struct {
		name, in, want string
	}{
		{"empty", "", "missing header"},
		{"header", "id,t,lat,lon\n", `line 1: header column 1 is "id", want "trace_id"`},
		{"swapped", "trace_id,timestamp_unix,lon,lat\n", `header column 3 is "lon", want "lat"`},
		{"short header", "trace_id,timestamp_unix,lat\n", "wrong number of fields"},
		{"fields", h + "a,1,2\n", "wrong number of fields"},
		{"bad time", h + "a,1.5,41,-8\n", `line 2: timestamp_unix: invalid "1.5"`},
		{"bad lat", h + "a,1,91,-8\n", `line 2: lat: invalid "91"`},
		{"bad lon", h + "a,1,41,x\n", `line 2: lon: invalid "x"`},
		{"nan", h + "a,1,NaN,1\n", `lat: invalid "NaN"`},
		{"empty id", h + ",1,41,-8\n", "line 2: trace_id: empty"},
		{"not contiguous", h + "a,1,41,-8\nb,1,41,-8\na,2,41,-8\n", `line 4: trace_id: rows of trace "a" are not contiguous`},
		{"bad quote", h + "\"a,1,41,-8\n", "extraneous or missing"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ts, err := ReadTraces(strings.NewReader(tc.in))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %+v, %v; want error containing %q", ts, err, tc.want)
			}
		})
	}
}

func TestReadBKS(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	sol := write("solomon.csv", "instance,bks_vehicles,bks_distance,source,bks_distance_only,bks_distance_only_vehicles,bks_distance_only_source\n"+
		"C101,10,828.94,\"SINTEF (A, B)\",828.94,10,vroom\nR101,19,1650.8,x,1642.87,20,y\n")
	m, err := ReadBKS(sol)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]BKS{
		"C101": {Instance: "C101", Vehicles: 10, Distance: 828.94, DistanceOnly: 828.94, DistanceOnlyVehicles: 10, Source: "SINTEF (A, B)"},
		"R101": {Instance: "R101", Vehicles: 19, Distance: 1650.8, DistanceOnly: 1642.87, DistanceOnlyVehicles: 20, Source: "x"},
	}
	if !reflect.DeepEqual(m, want) {
		t.Errorf("got %+v, want %+v", m, want)
	}
	hom := write("hom.csv", "instance,bks_vehicles,bks_distance,source,bks_distance_4dp\r\nc1_2_1,20,2704.57,s,2704.5678\r\n")
	m, err = ReadBKS(hom)
	if err != nil || m["c1_2_1"] != (BKS{Instance: "c1_2_1", Vehicles: 20, Distance: 2704.57, Distance4DP: 2704.5678, Source: "s"}) {
		t.Errorf("homberger: %+v, %v", m, err)
	}

	const h = "instance,bks_vehicles,bks_distance,source\n"
	tests := []struct {
		name, in, want string
	}{
		{"empty", "", "missing header"},
		{"missing column", "instance,bks_vehicles,source\n", `line 1: missing column "bks_distance"`},
		{"duplicate column", "instance,instance,bks_vehicles,bks_distance,source\n", `duplicate column "instance"`},
		{"bad vehicles", h + "A,x,1,s\n", `line 2: bks_vehicles: invalid "x"`},
		{"bad distance", h + "A,1,-1,s\n", `line 2: bks_distance: invalid "-1"`},
		{"missing distance", h + "A,1,,s\n", `line 2: bks_distance: invalid ""`},
		{"duplicate", h + "A,1,1,s\nA,1,2,s\n", `line 3: instance: duplicate "A"`},
		{"empty instance", h + ",1,1,s\n", "line 2: instance: empty"},
		{"fields", h + "A,1,1\n", "wrong number of fields"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := ReadBKS(write(tc.name+".csv", tc.in))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %+v, %v; want error containing %q", m, err, tc.want)
			}
		})
	}
	if _, err := ReadBKS(filepath.Join(dir, "absent.csv")); err == nil || !strings.Contains(err.Error(), "absent.csv") {
		t.Errorf("missing file: %v", err)
	}
}

func TestDir(t *testing.T) {
	t.Setenv(EnvVar, "/some/where")
	if d := Dir(); d != "/some/where" {
		t.Errorf("Dir() with %s = %q", EnvVar, d)
	}
	if p := Path("vrp", "x.txt"); p != filepath.Join("/some/where", "vrp", "x.txt") {
		t.Errorf("Path = %q", p)
	}
	t.Setenv(EnvVar, "")
	// The test runs in the package directory, one level below go.mod.
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	want := filepath.Join(filepath.Dir(filepath.Dir(wd)), "shared", "datasets")
	if d := Dir(); d != want {
		t.Errorf("Dir() = %q, want %q", d, want)
	}
	t.Run("skips", func(t *testing.T) {
		t.Setenv(EnvVar, t.TempDir())
		Require(t, "no", "such", "file")
		t.Error("Require did not skip")
	})
	t.Setenv(EnvVar, t.TempDir())
	if got := OSMExtracts(); got != nil {
		t.Errorf("OSMExtracts on empty dir = %v", got)
	}
}
