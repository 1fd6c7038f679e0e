package bench

import (
	"fmt"
	"io"
	"log/slog"
	"math"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/lastmile/lastmile/datasets"
	"github.com/lastmile/lastmile/vrp"
)

// SolomonScale is the factor by which Solomon and Gehring-Homberger
// real-valued distances, times and windows are multiplied to make the
// integer matrices the solver works on. Travel times are rounded up, so a
// plan feasible on the integers is feasible on the real values too; the
// reported distance is recomputed in real arithmetic from the routes.
const SolomonScale = 10000

// VRPConfig configures VRP.
type VRPConfig struct {
	// Set is solomon, homberger or cvrplib (under LASTMILE_DATA/vrp) or a
	// folder holding instances of one of those formats and a bks.csv.
	Set string
	// Time is the time limit per instance.
	Time time.Duration
	// Filter keeps only instances whose name matches this regular expression.
	Filter string
	// MaxCustomers skips larger instances (0 = no bound).
	MaxCustomers int
	// Workers and Seed are passed to the solver.
	Workers int
	Seed    int64
	Logger  *slog.Logger
	// Progress is called after each instance.
	Progress func(r VRPResult)
}

// VRPResult is one solved benchmark instance.
type VRPResult struct {
	Instance    string
	Customers   int
	Vehicles    int
	Distance    float64
	BKS         float64
	BKSVehicles int
	Gap         float64 // percent over BKS
	Time        time.Duration
	// Invalid holds the checker's complaint; empty when the solution passed
	// vrp.Validate and the independent real-valued re-check.
	Invalid    string
	Unassigned int
}

// VRPReport is the outcome of a whole set.
type VRPReport struct {
	Set       string
	Objective string
	Results   []VRPResult
}

// MeanGap is the mean gap over valid instances.
func (r *VRPReport) MeanGap() float64 {
	s, n := 0.0, 0
	for _, x := range r.Results {
		if x.Invalid == "" {
			s += x.Gap
			n++
		}
	}
	if n == 0 {
		return math.NaN()
	}
	return s / float64(n)
}

// Invalid counts instances whose solution failed a check.
func (r *VRPReport) Invalid() int {
	n := 0
	for _, x := range r.Results {
		if x.Invalid != "" {
			n++
		}
	}
	return n
}

// VRP solves every instance of a benchmark set and compares the distance
// with the best-known solution of the set's bks.csv: Solomon against the
// distance-only BKS (bks_distance_only, vehicles free), Gehring-Homberger
// and CVRPLIB against bks_distance. Every solution goes through vrp.Validate
// and an independent re-check of the routes on the original (real-valued)
// instance.
func VRP(cfg VRPConfig) (*VRPReport, error) {
	dir := cfg.Set
	switch cfg.Set {
	case "solomon", "homberger", "cvrplib":
		dir = datasets.Path("vrp", cfg.Set)
	}
	if cfg.Time <= 0 {
		cfg.Time = 10 * time.Second
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var filter *regexp.Regexp
	if cfg.Filter != "" {
		var err error
		if filter, err = regexp.Compile(cfg.Filter); err != nil {
			return nil, fmt.Errorf("filter %q: %w", cfg.Filter, err)
		}
	}
	bks, err := datasets.ReadBKS(filepath.Join(dir, "bks.csv"))
	if err != nil {
		return nil, err
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.vrp"))
	cvrp := len(files) > 0
	if !cvrp {
		files, _ = filepath.Glob(filepath.Join(dir, "*.txt"))
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("bench vrp: no instances (*.vrp or *.txt) in %s", dir)
	}
	sort.Slice(files, func(i, j int) bool { return naturalLess(filepath.Base(files[i]), filepath.Base(files[j])) })
	rep := &VRPReport{Set: dir}
	if cvrp {
		rep.Objective = "total distance, TSPLIB nint(Euclidean) per arc; fleet: A, B, E, P the k of the name (as their optima), X unbounded in practice (ceil(1.2·demand/capacity)+2 vehicles)"
	} else {
		rep.Objective = "total distance (real-valued Euclidean), vehicles free up to the instance's fleet; Solomon compared with the distance-only BKS"
	}
	for _, path := range files {
		name := strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))
		if filter != nil && !filter.MatchString(name) {
			continue
		}
		b, ok := bks[name]
		if !ok {
			return nil, fmt.Errorf("bench vrp: %s has no row in bks.csv", name)
		}
		var customers int
		var solve func() (VRPResult, error)
		if cvrp {
			inst, err := datasets.ReadCVRPFile(path)
			if err != nil {
				return nil, err
			}
			customers, solve = inst.N()-1, func() (VRPResult, error) { return solveCVRP(inst, cfg) }
		} else {
			inst, err := datasets.ReadSolomonFile(path)
			if err != nil {
				return nil, err
			}
			customers, solve = inst.N()-1, func() (VRPResult, error) { return solveVRPTW(inst, cfg) }
		}
		if cfg.MaxCustomers > 0 && customers > cfg.MaxCustomers {
			continue
		}
		res, err := solve()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		res.BKS = b.Distance
		if !cvrp && b.DistanceOnly > 0 {
			res.BKS = b.DistanceOnly
		}
		res.Instance = name
		res.BKSVehicles = b.Vehicles
		res.Gap = 100 * (res.Distance - res.BKS) / res.BKS
		log.Info("solved", "instance", name, "distance", res.Distance, "bks", res.BKS, "gap", res.Gap, "invalid", res.Invalid)
		rep.Results = append(rep.Results, res)
		if cfg.Progress != nil {
			cfg.Progress(res)
		}
	}
	return rep, nil
}

func solveCVRP(c *datasets.CVRP, cfg VRPConfig) (VRPResult, error) {
	n := c.N()
	total := 0
	p := &vrp.Problem{}
	for i := 1; i < n; i++ {
		total += c.Demand[i]
		p.Jobs = append(p.Jobs, vrp.Job{ID: uint64(i), Location: vrp.IndexLocation(i), Delivery: []int64{int64(c.Demand[i])}})
	}
	k := c.Vehicles
	if m := fleetInName.FindStringSubmatch(c.Name); k <= 0 && m != nil && !strings.HasPrefix(c.Name, "X-") {
		// The optima of the classic sets (A, B, E, P) are for a fleet of
		// exactly the k in the name; more vehicles can go below them.
		k, _ = strconv.Atoi(m[1])
	}
	if k <= 0 {
		k = int(math.Ceil(1.2*float64(total)/float64(c.Capacity))) + 2
	}
	for v := range k {
		p.Vehicles = append(p.Vehicles, vrp.Vehicle{ID: uint64(v + 1), Start: vrp.IndexLocation(0), End: vrp.IndexLocation(0),
			HasStart: true, HasEnd: true, Capacity: []int64{int64(c.Capacity)}})
	}
	p.SetMatrix("car", &vrp.Matrix{Durations: squareMatrix(n, func(i, j int) int64 { return int64(c.Dist(i, j)) })})
	res, routes, err := solveChecked(p, cfg, n)
	if err != nil || res.Invalid != "" {
		return res, err
	}
	// Independent re-check on the instance: capacity and distance from
	// TSPLIB distances.
	dist := 0
	for k, seq := range routes {
		prev, load := 0, 0
		for _, i := range seq {
			load += c.Demand[i]
			dist += c.Dist(prev, i)
			prev = i
		}
		dist += c.Dist(prev, 0)
		if load > c.Capacity {
			res.Invalid = fmt.Sprintf("route %d carries %d > %d", k, load, c.Capacity)
			return res, nil
		}
	}
	res.Distance = float64(dist)
	return res, nil
}

func solveVRPTW(v *datasets.VRPTW, cfg VRPConfig) (VRPResult, error) {
	n := v.N()
	const s = SolomonScale
	p := &vrp.Problem{}
	for i := 1; i < n; i++ {
		p.Jobs = append(p.Jobs, vrp.Job{ID: uint64(i), Location: vrp.IndexLocation(i), Service: int64(math.Round(v.Service[i] * s)),
			Delivery: []int64{int64(v.Demand[i])}, TimeWindows: []vrp.TimeWindow{{Start: int64(math.Round(v.Ready[i] * s)), End: int64(math.Round(v.Due[i] * s))}}})
	}
	for k := range v.Vehicles {
		p.Vehicles = append(p.Vehicles, vrp.Vehicle{ID: uint64(k + 1), Start: vrp.IndexLocation(0), End: vrp.IndexLocation(0),
			HasStart: true, HasEnd: true, Capacity: []int64{int64(v.Capacity)},
			TimeWindow: vrp.TimeWindow{Start: int64(math.Round(v.Ready[0] * s)), End: int64(math.Round(v.Due[0] * s))}})
	}
	p.SetMatrix("car", &vrp.Matrix{Durations: squareMatrix(n, func(i, j int) int64 { return int64(math.Ceil(v.Dist(i, j)*s - 1e-6)) })})
	res, routes, err := solveChecked(p, cfg, n)
	if err != nil || res.Invalid != "" {
		return res, err
	}
	// Independent re-check in real arithmetic: capacity, service start
	// within the window, back at the depot in time.
	dist := 0.0
	const eps = 1e-6
	for k, seq := range routes {
		prev, load, t := 0, 0, v.Ready[0]
		for _, i := range seq {
			d := v.Dist(prev, i)
			dist += d
			t = math.Max(t+d, v.Ready[i])
			if t > v.Due[i]+eps {
				res.Invalid = fmt.Sprintf("customer %d served at %.3f after its due time %.0f", i, t, v.Due[i])
				return res, nil
			}
			t += v.Service[i]
			load += v.Demand[i]
			prev = i
		}
		dist += v.Dist(prev, 0)
		if t+v.Dist(prev, 0) > v.Due[0]+eps {
			res.Invalid = fmt.Sprintf("route %d back at the depot after %.0f", k, v.Due[0])
			return res, nil
		}
		if load > v.Capacity {
			res.Invalid = fmt.Sprintf("route %d carries %d > %d", k, load, v.Capacity)
			return res, nil
		}
	}
	res.Distance = dist
	return res, nil
}

// squareMatrix returns the n x n matrix of f(i, j).
func squareMatrix(n int, f func(i, j int) int64) [][]int64 {
	m := make([][]int64, n)
	for i := range n {
		m[i] = make([]int64, n)
		for j := range n {
			m[i][j] = f(i, j)
		}
	}
	return m
}

// customerRoutes returns the customers (job id = instance index) of each
// route of sol, having checked from the solution alone that every customer
// 1..n-1 is served exactly once; otherwise it returns the complaint.
func customerRoutes(sol *vrp.Solution, n int) ([][]int, string) {
	seen := make([]bool, n)
	served := 0
	routes := make([][]int, 0, len(sol.Routes))
	for _, r := range sol.Routes {
		var seq []int
		for _, st := range r.Steps {
			if st.Type != "job" {
				continue
			}
			i := int(*st.ID)
			if i <= 0 || i >= n || seen[i] {
				return nil, fmt.Sprintf("customer %d unknown or served twice", i)
			}
			seen[i] = true
			served++
			seq = append(seq, i)
		}
		routes = append(routes, seq)
	}
	if served != n-1 {
		return nil, fmt.Sprintf("%d of %d customers served", served, n-1)
	}
	return routes, ""
}

// solveChecked solves p, an instance with n nodes (depot 0, customers
// 1..n-1 as job ids), runs vrp.Validate and the independent completeness
// check, and returns the customers of each route for the caller's own
// re-check; res.Invalid says why a solution failed.
func solveChecked(p *vrp.Problem, cfg VRPConfig, n int) (VRPResult, [][]int, error) {
	res := VRPResult{Customers: n - 1}
	t0 := time.Now()
	sol, err := vrp.Solve(p, vrp.Options{TimeLimit: cfg.Time, Workers: cfg.Workers, Seed: cfg.Seed})
	res.Time = time.Since(t0)
	if err != nil {
		return res, nil, err
	}
	if _, err := vrp.Validate(p, sol); err != nil {
		res.Invalid = "vrp.Validate: " + strings.ReplaceAll(err.Error(), "\n", "; ")
		return res, nil, nil
	}
	for _, r := range sol.Routes {
		if len(r.Steps) > 2 {
			res.Vehicles++
		}
	}
	res.Unassigned = len(sol.Unassigned)
	if res.Unassigned > 0 {
		res.Invalid = fmt.Sprintf("%d customers unassigned", res.Unassigned)
		return res, nil, nil
	}
	routes, bad := customerRoutes(sol, n)
	res.Invalid = bad
	return res, routes, nil
}

// fleetInName finds the number of vehicles in a CVRPLIB name (A-n32-k5).
var fleetInName = regexp.MustCompile(`-k(\d+)$`)

var nameParts = regexp.MustCompile(`\d+|\D+`)

// naturalLess orders names with embedded numbers numerically
// (X-n101 before X-n1001, c1_2_2 before c1_2_10).
func naturalLess(a, b string) bool {
	pa, pb := nameParts.FindAllString(a, -1), nameParts.FindAllString(b, -1)
	for i := 0; i < len(pa) && i < len(pb); i++ {
		if pa[i] == pb[i] {
			continue
		}
		na, ea := strconv.Atoi(pa[i])
		nb, eb := strconv.Atoi(pb[i])
		if ea == nil && eb == nil {
			return na < nb
		}
		return pa[i] < pb[i]
	}
	return len(pa) < len(pb)
}

// WriteVRP prints the table and the stable last line
// `vrp: instances N invalid M mean-gap G%`.
func WriteVRP(w io.Writer, r *VRPReport) {
	fmt.Fprintf(w, "set %s\nobjective: %s\n\n", r.Set, r.Objective)
	fmt.Fprintf(w, "| instance | customers | vehicles | distance | BKS | BKS vehicles | gap %% | time (s) | check |\n|---|---:|---:|---:|---:|---:|---:|---:|---|\n")
	for _, x := range r.Results {
		check := "ok"
		if x.Invalid != "" {
			check = "INVALID: " + x.Invalid
		}
		fmt.Fprintf(w, "| %s | %d | %d | %.2f | %.2f | %d | %.2f | %.1f | %s |\n", x.Instance, x.Customers, x.Vehicles, x.Distance, x.BKS, x.BKSVehicles, x.Gap, x.Time.Seconds(), check)
	}
	fmt.Fprintf(w, "\nvrp: instances %d invalid %d mean-gap %.2f%%\n", len(r.Results), r.Invalid(), r.MeanGap())
}
