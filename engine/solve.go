package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/lastmile/lastmile/vrp"
)

// SolveOptions configure Solve.
type SolveOptions struct {
	// Time is the solver's time limit (default 5 s, none when Iterations
	// is set).
	Time time.Duration
	// Iterations, when positive, bounds the search by iterations per
	// worker (vrp.Options.Iterations).
	Iterations int
	// Seed and Workers are passed to the solver.
	Seed    int64
	Workers int
	// Context, when set, stops the search early when cancelled (the
	// matrix computation is not interrupted).
	Context context.Context
	// Progress, when set, is called after every epoch of the search (see
	// vrp.Options.Progress).
	Progress func(iterations int64, unassigned int, cost int64)
	// Geometry asks SolveWithGeometry for each route's road geometry.
	Geometry bool
}

// FillMatrices computes the matrices of a problem whose locations are
// given as coordinates: they are snapped to the road graph and the car
// durations (whole seconds, rounded) and distances (whole metres) of the
// fastest routes fill the "car" profile, as VROOM does with OSRM. A problem
// that already has matrices for every profile it uses is left alone.
func (r *Router) FillMatrices(p *vrp.Problem) error {
	if len(p.Matrices) > 0 {
		return nil
	}
	for _, v := range p.Vehicles {
		if v.Profile != "" && v.Profile != "car" {
			return &Error{"InvalidValue", fmt.Sprintf("vehicle %d: profile %q: only car is routed", v.ID, v.Profile)}
		}
	}
	locs := p.Locations()
	pts := make([]LonLat, len(locs))
	for i, l := range locs {
		if math.IsNaN(l[0]) {
			return &Error{"InvalidValue", fmt.Sprintf("location_index %d has no coordinates and there is no matrix", i)}
		}
		pts[i] = LonLat(l)
	}
	if len(pts) == 0 {
		return &Error{"InvalidQuery", "problem has no locations"}
	}
	m, _, _, err := r.TableMatrix(pts, nil, nil, 2)
	if err != nil {
		var e *Error
		if errors.As(err, &e) {
			return &Error{e.Code, "locations: " + e.Message}
		}
		return err
	}
	n := len(pts)
	dur := make([][]int64, n)
	dist := make([][]int64, n)
	for i := range n {
		dur[i] = make([]int64, n)
		dist[i] = make([]int64, n)
		for j := range n {
			du, di := m.At(i, j)
			if math.IsInf(du, 0) || math.IsNaN(du) {
				return &Error{"NoRoute", fmt.Sprintf("no route from location %v to location %v", locs[i], locs[j])}
			}
			dur[i][j] = int64(math.Round(du))
			dist[i][j] = int64(math.Round(di))
		}
	}
	p.SetMatrix("car", &vrp.Matrix{Durations: dur, Distances: dist})
	return nil
}

// Solve fills the matrices from the graph when needed (r may be nil for a
// problem with matrices) and solves p.
func Solve(r *Router, p *vrp.Problem, opt SolveOptions) (*vrp.Solution, error) {
	if len(p.Matrices) == 0 {
		if r == nil {
			return nil, &Error{"InvalidQuery", "the problem gives coordinates and no matrices: a road graph is needed (--graph)"}
		}
		if err := r.FillMatrices(p); err != nil {
			return nil, err
		}
	}
	if opt.Time <= 0 && opt.Iterations <= 0 {
		opt.Time = 5 * time.Second
	}
	return vrp.Solve(p, vrp.Options{TimeLimit: opt.Time, Iterations: opt.Iterations, Seed: opt.Seed, Workers: opt.Workers, Context: opt.Context, Progress: opt.Progress})
}

// SolveWithGeometry is Solve followed, when opt.Geometry is set, by
// RouteGeometries: the geometries are nil otherwise.
func SolveWithGeometry(r *Router, p *vrp.Problem, opt SolveOptions) (*vrp.Solution, []string, error) {
	sol, err := Solve(r, p, opt)
	if err != nil || !opt.Geometry {
		return sol, nil, err
	}
	if r == nil {
		return nil, nil, &Error{"InvalidOptions", "route geometry needs a road graph"}
	}
	geoms, err := r.RouteGeometries(sol)
	if err != nil {
		return nil, nil, err
	}
	return sol, geoms, nil
}

// RouteGeometries returns the road geometry of each route of sol, as VROOM
// answers it with "options": {"g": true}: the fastest route on the graph
// through the route's step locations in order (start, tasks, breaks, end;
// consecutive repeats once), full detail, as an encoded polyline with 5
// decimals (Google's algorithm, as OSRM and VROOM write it). A route whose
// steps all stand at one place gets that single point. Every step must
// carry coordinates.
func (r *Router) RouteGeometries(sol *vrp.Solution) ([]string, error) {
	out := make([]string, len(sol.Routes))
	var pts []LonLat
	for i := range sol.Routes {
		rt := &sol.Routes[i]
		pts = pts[:0]
		for k, st := range rt.Steps {
			if st.Location == nil {
				if st.Type == "break" && st.LocationIndex == nil {
					continue // a break with no place of its own
				}
				return nil, &Error{"InvalidOptions", fmt.Sprintf("route geometry: vehicle %d step %d (%s) has no coordinates", rt.Vehicle, k, st.Type)}
			}
			p := LonLat(*st.Location)
			if len(pts) > 0 && pts[len(pts)-1] == p {
				continue
			}
			pts = append(pts, p)
		}
		switch len(pts) {
		case 0:
		case 1:
			out[i] = string(AppendPolyline(nil, [][2]float64{pts[0]}, 5))
		default:
			resp, err := r.Route(pts, RouteOptions{Geometries: "polyline", Overview: "full"})
			if err != nil {
				var e *Error
				if errors.As(err, &e) {
					return nil, &Error{e.Code, fmt.Sprintf("route geometry of vehicle %d: %s", rt.Vehicle, e.Message)}
				}
				return nil, fmt.Errorf("route geometry of vehicle %d: %w", rt.Vehicle, err)
			}
			out[i] = resp.Routes[0].Geometry.(string)
		}
	}
	return out, nil
}

// geometryRoute is a VROOM route with its geometry; the embedded route's
// fields are written as they are.
type geometryRoute struct {
	vrp.Route
	Geometry string `json:"geometry,omitempty"`
}

// geometrySolution shadows the routes of the embedded solution with
// geometryRoutes (encoding/json prefers the shallower field).
type geometrySolution struct {
	*vrp.Solution
	Routes []geometryRoute `json:"routes"`
}

// MarshalSolution encodes sol as VROOM output JSON; when geometries is not
// nil (one per route, from RouteGeometries) each route also gets VROOM's
// "geometry" field. Each step's "arrival" is its ETA: seconds on the same
// clock as the problem's time windows (relative or absolute as they are).
func MarshalSolution(sol *vrp.Solution, geometries []string) ([]byte, error) {
	if geometries == nil {
		return vrp.MarshalSolution(sol)
	}
	if len(geometries) != len(sol.Routes) {
		return nil, fmt.Errorf("marshal solution: %d geometries for %d routes", len(geometries), len(sol.Routes))
	}
	gs := geometrySolution{Solution: sol, Routes: make([]geometryRoute, len(sol.Routes))}
	for i := range sol.Routes {
		gs.Routes[i] = geometryRoute{sol.Routes[i], geometries[i]}
	}
	return json.Marshal(&gs)
}
