package bench

import (
	"fmt"
	"io"
)

// Floor is a lower bound on a ratio measured within one run.
type Floor struct {
	Name  string
	Value float64
	Min   float64
}

// routeFloors are the gate's floors per extract. They sit well under the
// figures in bench/RESULTS.md so that a noisy shared machine does not fail
// the gate, while a real regression (a broken hierarchy, a lost stall, a
// matrix falling back to point-to-point) does. The CH speedup grows with
// the graph, hence per-extract floors.
// The cost floor is for Query.Cost (search below the transit table).
var routeFloors = map[string]struct{ dijkstra, bidir, cost, matrix float64 }{
	"porto.osm.pbf":   {dijkstra: 50, bidir: 20, cost: 200, matrix: 20},
	"andorra.osm.pbf": {dijkstra: 10, bidir: 4, cost: 60, matrix: 5},
	"monaco.osm.pbf":  {dijkstra: 3, bidir: 1, cost: 20, matrix: 1},
}

// CheckRouteFloors prints each floor with the ratio measured and returns
// how many were not met; any CH/Dijkstra mismatch fails too.
func CheckRouteFloors(w io.Writer, extract string, r *RouteReport) int {
	f, ok := routeFloors[extract]
	if !ok {
		f = routeFloors["monaco.osm.pbf"]
	}
	floors := []Floor{
		{"CH speedup over Dijkstra", r.SpeedupDijkstra, f.dijkstra},
		{"CH speedup over bidirectional Dijkstra", r.SpeedupBidir, f.bidir},
		{"cost query speedup over Dijkstra", r.SpeedupCost, f.cost},
	}
	for _, m := range r.Matrix {
		floors = append(floors, Floor{fmt.Sprintf("matrix %dx%d over point-to-point", m.Size, m.Size), m.SpeedupOverP2P, f.matrix})
	}
	failed := 0
	if r.Mismatches > 0 {
		fmt.Fprintf(w, "FAIL CH disagrees with Dijkstra on %d of %d pairs\n", r.Mismatches, r.Pairs)
		failed++
	}
	return failed + checkFloors(w, floors)
}

// checkFloors prints each floor with its value and returns how many were
// not met.
func checkFloors(w io.Writer, floors []Floor) int {
	failed := 0
	for _, fl := range floors {
		status := "ok  "
		if !(fl.Value >= fl.Min) {
			status = "FAIL"
			failed++
		}
		fmt.Fprintf(w, "%s %-42s %8.2f (floor %g)\n", status, fl.Name, fl.Value, fl.Min)
	}
	return failed
}
