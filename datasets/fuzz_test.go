package datasets

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// The fuzz targets check that the parsers never panic and that whatever they
// accept is self-consistent: it survives a write/re-read round trip unchanged.

func ftoa(x float64) string { return strconv.FormatFloat(x, 'g', -1, 64) }

func formatSolomon(v *VRPTW) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n\nVEHICLE\nNUMBER CAPACITY\n%d %d\n\nCUSTOMER\nCUST NO. XCOORD. YCOORD. DEMAND READY TIME DUE DATE SERVICE TIME\n\n",
		v.Name, v.Vehicles, v.Capacity)
	for i := range v.X {
		fmt.Fprintf(&b, "%d %s %s %d %s %s %s\n", i, ftoa(v.X[i]), ftoa(v.Y[i]), v.Demand[i], ftoa(v.Ready[i]), ftoa(v.Due[i]), ftoa(v.Service[i]))
	}
	return b.String()
}

func FuzzReadSolomon(f *testing.F) {
	f.Add([]byte(solomonSnippet))
	f.Add([]byte(strings.ReplaceAll(solomonSnippet, "\r\n", "\n")))
	f.Add([]byte("X\nVEHICLE\nNUMBER CAPACITY\n1 1\nCUSTOMER\nCUST\n0 0 0 0 0 0 0\n1 1e9 -1e9 0 0 0 0\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := ReadSolomon(bytes.NewReader(data))
		if err != nil {
			if v != nil {
				t.Fatal("non-nil result with error")
			}
			return
		}
		n := v.N()
		if n < 2 || len(v.Y) != n || len(v.Demand) != n || len(v.Ready) != n || len(v.Due) != n || len(v.Service) != n {
			t.Fatalf("inconsistent lengths: %+v", v)
		}
		if v.Vehicles <= 0 || v.Capacity <= 0 {
			t.Fatalf("vehicles %d capacity %d", v.Vehicles, v.Capacity)
		}
		for i := 0; i < n; i++ {
			if d := v.Dist(0, i); math.IsNaN(d) || math.IsInf(d, 0) || d < 0 {
				t.Fatalf("Dist(0,%d) = %v", i, d)
			}
			if v.Ready[i] > v.Due[i] || v.Service[i] < 0 || v.Demand[i] < 0 {
				t.Fatalf("row %d invalid: %+v", i, v)
			}
		}
		if strings.ContainsAny(v.Name, "\r\n") || v.Name != strings.TrimSpace(v.Name) {
			t.Fatalf("name %q", v.Name)
		}
		v2, err := ReadSolomon(strings.NewReader(formatSolomon(v)))
		if err != nil {
			t.Fatalf("round trip: %v", err)
		}
		if !reflect.DeepEqual(v, v2) {
			t.Fatalf("round trip changed the instance:\n%+v\n%+v", v, v2)
		}
	})
}

func formatCVRP(c *CVRP) string {
	var b strings.Builder
	fmt.Fprintf(&b, "NAME : %s\nCOMMENT : %s\nTYPE : CVRP\nDIMENSION : %d\nEDGE_WEIGHT_TYPE : EUC_2D\nCAPACITY : %d\n",
		c.Name, c.Comment, c.N(), c.Capacity)
	if c.Vehicles > 0 {
		fmt.Fprintf(&b, "VEHICLES : %d\n", c.Vehicles)
	}
	b.WriteString("NODE_COORD_SECTION\n")
	for node := 1; node <= c.N(); node++ {
		i := c.Index(node)
		fmt.Fprintf(&b, "%d %s %s\n", node, ftoa(c.X[i]), ftoa(c.Y[i]))
	}
	b.WriteString("DEMAND_SECTION\n")
	for node := 1; node <= c.N(); node++ {
		fmt.Fprintf(&b, "%d %d\n", node, c.Demand[c.Index(node)])
	}
	fmt.Fprintf(&b, "DEPOT_SECTION\n%d\n-1\nEOF\n", c.Depot)
	return b.String()
}

func FuzzReadCVRP(f *testing.F) {
	f.Add([]byte(cvrpSnippet))
	f.Add([]byte("NAME : D\nTYPE : CVRP\nDIMENSION : 3\nEDGE_WEIGHT_TYPE : EUC_2D\nCAPACITY : 9\n" +
		"NODE_COORD_SECTION\n1 1 0\n2 2 0\n3 3 0\nDEMAND_SECTION\n1 1\n2 2\n3 0\nDEPOT_SECTION\n3\n-1\n"))
	f.Add([]byte("DIMENSION : 1000000\nNODE_COORD_SECTION\n1 0 0\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ReadCVRP(bytes.NewReader(data))
		if err != nil {
			if c != nil {
				t.Fatal("non-nil result with error")
			}
			return
		}
		n := c.N()
		if n < 2 || len(c.Y) != n || len(c.Demand) != n || c.Depot < 1 || c.Depot > n || c.Capacity <= 0 || c.Vehicles < 0 {
			t.Fatalf("inconsistent instance: %+v", c)
		}
		for i := 0; i < n; i++ {
			if c.Index(c.FileNode(i)) != i || c.Dist(0, i) < 0 {
				t.Fatalf("index %d: file node %d maps back to %d, dist %d", i, c.FileNode(i), c.Index(c.FileNode(i)), c.Dist(0, i))
			}
		}
		c2, err := ReadCVRP(strings.NewReader(formatCVRP(c)))
		if err != nil {
			t.Fatalf("round trip: %v", err)
		}
		if !reflect.DeepEqual(c, c2) {
			t.Fatalf("round trip changed the instance:\n%+v\n%+v", c, c2)
		}
	})
}

func FuzzReadCVRPSolution(f *testing.F) {
	f.Add([]byte("Route #1: 3 1\r\nRoute #2: 2\r\nCost 27591\r\n"))
	f.Add([]byte("Route #1: 5 3 7\nCost 828.94\n"))
	f.Add([]byte("Instance name : c1_2_1\nAuthors : A\nSolution\nRoute  1 : 32 171 \nRoute 2: 177\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := ReadCVRPSolution(bytes.NewReader(data))
		if err != nil {
			if s != nil {
				t.Fatal("non-nil result with error")
			}
			return
		}
		var b strings.Builder
		keys := make([]string, 0, len(s.Header))
		for k := range s.Header {
			keys = append(keys, k)
		}
		for _, k := range keys {
			fmt.Fprintf(&b, "%s : %s\n", k, s.Header[k])
		}
		if len(s.Routes) == 0 {
			t.Fatal("no routes accepted")
		}
		for k, r := range s.Routes {
			if len(r) == 0 {
				t.Fatalf("route %d empty", k)
			}
			fmt.Fprintf(&b, "Route #%d:", k+1)
			for _, c := range r {
				if c < 1 {
					t.Fatalf("route %d: customer %d", k, c)
				}
				fmt.Fprintf(&b, " %d", c)
			}
			b.WriteByte('\n')
		}
		if s.HasCost {
			fmt.Fprintf(&b, "Cost %s\n", ftoa(s.Cost))
		} else if s.Cost != 0 {
			t.Fatalf("cost %v without a Cost line", s.Cost)
		}
		s2, err := ReadCVRPSolution(strings.NewReader(b.String()))
		if err != nil {
			t.Fatalf("round trip: %v\n%s", err, b.String())
		}
		if !reflect.DeepEqual(s, s2) {
			t.Fatalf("round trip changed the solution:\n%+v\n%+v", s, s2)
		}
	})
}

func FuzzReadTraces(f *testing.F) {
	f.Add([]byte(tracesSnippet))
	f.Add([]byte("trace_id,timestamp_unix,lat,lon\n\"a,b\",1,-90,180\nc,,0,0\n"))
	f.Add([]byte("trace_id,timestamp_unix,lat,lon\na,1,41,-8\nb,1,41,-8\na,2,41,-8\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		ts, err := ReadTraces(bytes.NewReader(data))
		if err != nil {
			if ts != nil {
				t.Fatal("non-nil result with error")
			}
			return
		}
		var b bytes.Buffer
		w := csv.NewWriter(&b)
		w.Write(tracesHeader[:])
		ids := map[string]bool{}
		for _, tr := range ts {
			if tr.ID == "" || len(tr.Points) == 0 || ids[tr.ID] {
				t.Fatalf("bad trace %q with %d points", tr.ID, len(tr.Points))
			}
			ids[tr.ID] = true
			for _, p := range tr.Points {
				if math.Abs(p.Lat) > 90 || math.Abs(p.Lon) > 180 {
					t.Fatalf("point out of range: %+v", p)
				}
				w.Write([]string{tr.ID, strconv.FormatInt(p.Time, 10), ftoa(p.Lat), ftoa(p.Lon)})
			}
		}
		w.Flush()
		ts2, err := ReadTraces(&b)
		if err != nil {
			t.Fatalf("round trip: %v", err)
		}
		if len(ts) == 0 && len(ts2) == 0 {
			return
		}
		if !reflect.DeepEqual(ts, ts2) {
			t.Fatalf("round trip changed the traces:\n%+v\n%+v", ts, ts2)
		}
	})
}
