package engine

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/lastmile/lastmile/vrp"
)

// SolveOptions configure Solve.
type SolveOptions struct {
	// Time is the solver's time limit (default 5 s).
	Time time.Duration
	// Seed and Workers are passed to the solver.
	Seed    int64
	Workers int
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
	if opt.Time <= 0 {
		opt.Time = 5 * time.Second
	}
	return vrp.Solve(p, vrp.Options{TimeLimit: opt.Time, Seed: opt.Seed, Workers: opt.Workers})
}
