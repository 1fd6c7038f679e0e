// Package vrp plans multi-stop routes for a fleet of vehicles: a VROOM-compatible
// problem model (jobs, shipments, vehicles with shifts, breaks, capacities,
// skills and costs), JSON input/output in VROOM's format, a solver
// (construction heuristics, local search and the SISR ruin-and-recreate
// metaheuristic) and an independent solution checker (Validate).
//
// The package imports nothing else of lastmile: callers build a Problem from
// plain data (matrices, jobs, vehicles) or decode VROOM JSON with ParseProblem.
// Differences from VROOM are listed in README.md.
package vrp

import (
	"fmt"
	"math"
	"sort"
)

// MaxTime is the horizon used when a vehicle has no time_window and a task
// has no time_windows: every time in the model lies in [0, MaxTime].
const MaxTime int64 = 1 << 40

// TimeWindow is a closed interval [Start, End] of times (seconds) in which a
// task or break may begin.
type TimeWindow struct {
	Start, End int64
}

// Location is a place: an index into the problem's matrices and/or a
// [lon, lat] coordinate. A location given only by its coordinate gets an index
// from Problem.Locations, after which the caller supplies matrices (our engine
// fills them from the road graph).
type Location struct {
	// Index is the row/column in the matrices; -1 when not yet assigned.
	Index int
	// Coord is [lon, lat]; meaningful only when HasCoord is true.
	Coord    [2]float64
	HasCoord bool
}

// IndexLocation returns a Location that refers to matrix row/column i.
func IndexLocation(i int) Location { return Location{Index: i} }

// CoordLocation returns a Location given only by coordinates (index unassigned).
func CoordLocation(lon, lat float64) Location {
	return Location{Index: -1, Coord: [2]float64{lon, lat}, HasCoord: true}
}

// Job is a single task at one location: an optional delivery (loaded at the
// vehicle's start) and/or pickup (brought back to the vehicle's end).
type Job struct {
	ID          uint64
	Description string
	Location    Location
	// Setup is spent on arrival when the previous step was at another location.
	Setup   int64
	Service int64
	// Delivery and Pickup are multi-dimensional amounts (same dimension as
	// vehicle capacities); nil means zero.
	Delivery, Pickup []int64
	Skills           []int
	// Priority in [0, 100]; the solver first maximises the sum of priorities
	// of assigned tasks.
	Priority int
	// TimeWindows are disjoint-or-not windows in which service may start;
	// empty means always.
	TimeWindows []TimeWindow
}

// ShipmentStep is the pickup or the delivery half of a Shipment.
type ShipmentStep struct {
	ID          uint64
	Description string
	Location    Location
	Setup       int64
	Service     int64
	TimeWindows []TimeWindow
}

// Shipment is a pickup and a delivery of Amount that must be served by the
// same vehicle, pickup first.
type Shipment struct {
	Pickup, Delivery ShipmentStep
	Amount           []int64
	Skills           []int
	Priority         int
}

// Break is a driver break of duration Service that must start inside one of
// TimeWindows. MaxLoad, when non-nil, bounds the vehicle load while the break
// is taken.
type Break struct {
	ID          uint64
	Description string
	TimeWindows []TimeWindow
	Service     int64
	MaxLoad     []int64
}

// Costs are a vehicle's cost coefficients as in VROOM: cost of a used route =
// Fixed + PerHour*travel_seconds/3600 + PerKm*travel_metres/1000. When the
// profile has a cost matrix, PerHour and PerKm are ignored and the matrix
// gives the travel cost. PerHour = PerKm = 0 (the zero value) means the VROOM
// default PerHour = 3600, i.e. cost = travel duration.
type Costs struct {
	Fixed, PerHour, PerKm int64
}

// Vehicle is one member of the fleet.
type Vehicle struct {
	ID          uint64
	Description string
	// Profile selects the matrices; "" means "car".
	Profile string
	// Start/End are where the route begins and ends; HasStart/HasEnd false
	// means an open route (the route begins at its first task / ends at its
	// last task).
	Start, End       Location
	HasStart, HasEnd bool
	Capacity         []int64
	Skills           []int
	// TimeWindow is the working shift; the zero value means [0, MaxTime].
	TimeWindow TimeWindow
	Breaks     []Break
	// MaxTasks, MaxTravelTime and MaxDistance limit a route; 0 means no limit.
	MaxTasks      int
	MaxTravelTime int64
	MaxDistance   int64
	Costs         Costs
	// SpeedFactor divides travel durations (VROOM: duration/speed_factor,
	// rounded); 0 means 1.
	SpeedFactor float64
}

// Matrix holds the square matrices of one routing profile, indexed by
// Location.Index. Durations are required; Distances and Costs are optional.
type Matrix struct {
	Durations [][]int64
	Distances [][]int64
	Costs     [][]int64
}

// Problem is a vehicle-routing instance in VROOM's model.
type Problem struct {
	Jobs      []Job
	Shipments []Shipment
	Vehicles  []Vehicle
	// Matrices per profile name.
	Matrices map[string]*Matrix
}

// Locations assigns matrix indices to coordinate-only locations (continuing
// after the largest explicit index, identical coordinates share an index) and
// returns the coordinate of every index ([NaN, NaN] when an index has no known
// coordinate). The caller fills matrices of that size and calls SetMatrix.
func (p *Problem) Locations() [][2]float64 {
	maxIdx := -1
	p.eachLocation(func(l *Location) {
		if l.Index > maxIdx {
			maxIdx = l.Index
		}
	})
	next := maxIdx + 1
	seen := map[[2]float64]int{}
	p.eachLocation(func(l *Location) {
		if l.Index < 0 && l.HasCoord {
			if i, ok := seen[l.Coord]; ok {
				l.Index = i
			} else {
				l.Index = next
				seen[l.Coord] = next
				next++
			}
		}
	})
	out := make([][2]float64, next)
	for i := range out {
		out[i] = [2]float64{math.NaN(), math.NaN()}
	}
	p.eachLocation(func(l *Location) {
		if l.Index >= 0 && l.HasCoord {
			out[l.Index] = l.Coord
		}
	})
	return out
}

// SetMatrix installs the matrices of a profile ("" means "car").
func (p *Problem) SetMatrix(profile string, m *Matrix) {
	if profile == "" {
		profile = "car"
	}
	if p.Matrices == nil {
		p.Matrices = map[string]*Matrix{}
	}
	p.Matrices[profile] = m
}

func (p *Problem) eachLocation(f func(*Location)) {
	for i := range p.Jobs {
		f(&p.Jobs[i].Location)
	}
	for i := range p.Shipments {
		f(&p.Shipments[i].Pickup.Location)
		f(&p.Shipments[i].Delivery.Location)
	}
	for i := range p.Vehicles {
		v := &p.Vehicles[i]
		if v.HasStart {
			f(&v.Start)
		}
		if v.HasEnd {
			f(&v.End)
		}
	}
}

// Task kinds of model nodes.
const (
	kindJob uint8 = iota
	kindPickup
	kindDelivery
)

// costScale is the number of internal cost units per reported cost unit:
// internal arc cost = PerHour*duration*1000 + PerKm*distance*3600, so that
// PerHour*duration/3600 + PerKm*distance/1000 is exact in integers.
const costScale = 3600 * 1000

// model is the compiled, flat form of a Problem used by the solver. Nodes
// 0..nJobs-1 are jobs; then each shipment contributes a pickup node and the
// following delivery node.
type model struct {
	p      *Problem
	nLoc   int
	dims   int
	nNodes int
	loc    []int32
	setup  []int64
	serv   []int64
	twOff  []int32 // node i's windows are tws[twOff[i]:twOff[i+1]]
	tws    []TimeWindow
	del    []int64 // nNodes*dims: amount loaded at start, dropped at node
	pick   []int64 // nNodes*dims: amount taken at node (negative for shipment deliveries)
	prio   []int64
	kind   []uint8
	sib    []int32 // sibling node of a shipment half, -1 for jobs
	task   []int32 // index into Jobs or Shipments
	veh    []vinfo
	types  []vtype
	compat []bool // v*nNodes+node: skills allow it
	// fast is true when every route can be checked with O(1) segment
	// concatenation: no breaks, no shipments, no setup, at most one window.
	fast bool
	// segs is true when routes keep prefix/suffix segments: exact when fast,
	// otherwise a relaxation (breaks and setup ignored, several windows
	// merged into their hull) used as a necessary-condition filter before
	// the exact simulation. False with shipments or more than 4 dimensions.
	segs bool
	// brk is true when, off the fast path, insertions are still checked
	// exactly in O(1) with per-route time labels (brk.go): at most one break
	// per vehicle (no max_load), no setup, no shipments; several windows
	// are allowed.
	brk bool
	// light is true when SISR workers keep light routes (light.go): the
	// label path without a load dimension that mixes pickups and
	// deliveries.
	light bool
	// nseg caches nodeSeg per node on the fast path.
	nseg []seg
	// vclass groups interchangeable vehicles so that only one empty vehicle
	// per class is tried when inserting.
	vclass []int
}

type vinfo struct {
	start, end int32 // location or -1
	cap        []int64
	tw         TimeWindow
	breaks     []Break
	maxTasks   int
	maxTravel  int64
	maxDist    int64
	fixed      int64 // internal units
	typ        int
	hasDist    bool
}

// vtype is a distinct (profile, speed factor, cost coefficients) combination
// with its flat nLoc*nLoc matrices.
type vtype struct {
	// arcs holds duration, distance and cost of every arc (from·nLoc+to)
	// side by side, so that a segment concatenation reads one cache line
	// instead of three; cost repeats the costs alone, and costT is its
	// transpose (to·nLoc+from): the insertion scans of one task read the
	// costs into and out of its location as two contiguous rows.
	arcs  []arc
	cost  []int64
	costT []int64
}

// costRows returns the costs of the arcs into and out of location l (by the
// other end's location).
func (t *vtype) costRows(l int32, n int) (in, out []int64) {
	i := int(l) * n
	return t.costT[i : i+n], t.cost[i : i+n]
}

// arc is the travel between two locations for one vehicle type.
type arc struct {
	dur, dist, cost int64
}

func (m *model) tw(i int32) []TimeWindow { return m.tws[m.twOff[i]:m.twOff[i+1]] }

// earliest returns the earliest start >= t inside one of the windows, or
// false when there is none. Windows are sorted by start.
func earliest(tws []TimeWindow, t int64) (int64, bool) {
	for _, w := range tws {
		if t <= w.End {
			if t < w.Start {
				return w.Start, true
			}
			return t, true
		}
	}
	return 0, false
}

func checkTWs(field string, tws []TimeWindow) error {
	for i, w := range tws {
		if w.Start < 0 || w.End < 0 {
			return fmt.Errorf("%s[%d]: negative time", field, i)
		}
		if w.Start > w.End {
			return fmt.Errorf("%s[%d]: start %d > end %d", field, i, w.Start, w.End)
		}
	}
	return nil
}

func sortedTWs(tws []TimeWindow) []TimeWindow {
	if len(tws) == 0 {
		return []TimeWindow{{0, MaxTime}}
	}
	out := append([]TimeWindow(nil), tws...)
	sort.Slice(out, func(a, b int) bool { return out[a].Start < out[b].Start })
	return out
}

func checkAmount(field string, a []int64, dims int) error {
	if a == nil {
		return nil
	}
	if len(a) != dims {
		return fmt.Errorf("%s: amount has %d dimensions, want %d", field, len(a), dims)
	}
	for k, x := range a {
		if x < 0 {
			return fmt.Errorf("%s[%d]: negative amount %d", field, k, x)
		}
	}
	return nil
}

// dims returns the common amount dimension of the problem.
func (p *Problem) dims() int {
	for _, v := range p.Vehicles {
		if v.Capacity != nil {
			return len(v.Capacity)
		}
	}
	for _, j := range p.Jobs {
		if j.Delivery != nil {
			return len(j.Delivery)
		}
		if j.Pickup != nil {
			return len(j.Pickup)
		}
	}
	for _, s := range p.Shipments {
		if s.Amount != nil {
			return len(s.Amount)
		}
	}
	return 0
}

// Check validates the problem: ids, amounts, windows, locations and matrix
// sizes. Errors name the offending field. Solve and Validate call it.
func (p *Problem) Check() error {
	_, err := compile(p)
	return err
}

// compile validates p and builds the flat model.
func compile(p *Problem) (*model, error) { return compileMode(p, false) }

// compileMode with structural = true checks everything that does not need
// matrices (used when decoding coordinate-only input) and builds no
// matrices; the returned model must not be used for solving.
func compileMode(p *Problem, structural bool) (*model, error) {
	if len(p.Vehicles) == 0 {
		return nil, fmt.Errorf("vehicles: no vehicle")
	}
	m := &model{p: p, dims: p.dims()}
	D := m.dims
	// ids
	jobIDs := map[uint64]bool{}
	for i, j := range p.Jobs {
		if jobIDs[j.ID] {
			return nil, fmt.Errorf("jobs[%d].id: duplicate id %d", i, j.ID)
		}
		jobIDs[j.ID] = true
	}
	pIDs, dIDs := map[uint64]bool{}, map[uint64]bool{}
	for i, s := range p.Shipments {
		if pIDs[s.Pickup.ID] {
			return nil, fmt.Errorf("shipments[%d].pickup.id: duplicate pickup id %d", i, s.Pickup.ID)
		}
		if dIDs[s.Delivery.ID] {
			return nil, fmt.Errorf("shipments[%d].delivery.id: duplicate delivery id %d", i, s.Delivery.ID)
		}
		pIDs[s.Pickup.ID], dIDs[s.Delivery.ID] = true, true
	}
	vIDs := map[uint64]bool{}
	for i, v := range p.Vehicles {
		if vIDs[v.ID] {
			return nil, fmt.Errorf("vehicles[%d].id: duplicate id %d", i, v.ID)
		}
		vIDs[v.ID] = true
	}
	// matrices
	nLoc := -1
	var profiles []string
	for name := range p.Matrices {
		profiles = append(profiles, name)
	}
	sort.Strings(profiles)
	for _, name := range profiles {
		mx := p.Matrices[name]
		if mx == nil || mx.Durations == nil {
			return nil, fmt.Errorf("matrices.%s.durations: missing", name)
		}
		for _, f := range []struct {
			n string
			a [][]int64
		}{{"durations", mx.Durations}, {"distances", mx.Distances}, {"costs", mx.Costs}} {
			if f.a == nil {
				continue
			}
			if nLoc < 0 {
				nLoc = len(f.a)
			}
			if len(f.a) != nLoc {
				return nil, fmt.Errorf("matrices.%s.%s: %d rows, want %d", name, f.n, len(f.a), nLoc)
			}
			for r, row := range f.a {
				if len(row) != nLoc {
					return nil, fmt.Errorf("matrices.%s.%s[%d]: matrix not square: %d columns, want %d", name, f.n, r, len(row), nLoc)
				}
				for c, x := range row {
					if x < 0 || x > math.MaxInt32 {
						return nil, fmt.Errorf("matrices.%s.%s[%d][%d]: value %d outside [0, 2^31)", name, f.n, r, c, x)
					}
				}
			}
		}
	}
	noMatrix := nLoc < 0
	if noMatrix {
		if !structural {
			return nil, fmt.Errorf("matrices: none given (fill them with Problem.Locations and SetMatrix)")
		}
		nLoc = math.MaxInt32
	}
	m.nLoc = nLoc
	chkLoc := func(field string, l Location) (int32, error) {
		if l.Index < 0 {
			if l.HasCoord && noMatrix {
				return 0, nil
			}
			if l.HasCoord {
				return 0, fmt.Errorf("%s.location_index: coordinates without matrix index (call Problem.Locations and SetMatrix)", field)
			}
			return 0, fmt.Errorf("%s.location_index: missing", field)
		}
		if l.Index >= nLoc {
			return 0, fmt.Errorf("%s.location_index: %d out of range [0, %d)", field, l.Index, nLoc)
		}
		return int32(l.Index), nil
	}
	addNode := func(field string, l Location, setup, serv int64, tws []TimeWindow, del, pick []int64, prio int, kind uint8, sib, task int32) error {
		li, err := chkLoc(field, l)
		if err != nil {
			return err
		}
		if setup < 0 {
			return fmt.Errorf("%s.setup: negative %d", field, setup)
		}
		if serv < 0 {
			return fmt.Errorf("%s.service: negative %d", field, serv)
		}
		if err := checkTWs(field+".time_windows", tws); err != nil {
			return err
		}
		if prio < 0 || prio > 100 {
			return fmt.Errorf("%s.priority: %d outside [0, 100]", field, prio)
		}
		m.loc = append(m.loc, li)
		m.setup = append(m.setup, setup)
		m.serv = append(m.serv, serv)
		st := sortedTWs(tws)
		m.tws = append(m.tws, st...)
		m.twOff = append(m.twOff, int32(len(m.tws)))
		for k := 0; k < D; k++ {
			var d, pk int64
			if del != nil {
				d = del[k]
			}
			if pick != nil {
				pk = pick[k]
			}
			m.del = append(m.del, d)
			m.pick = append(m.pick, pk)
		}
		m.prio = append(m.prio, int64(prio))
		m.kind = append(m.kind, kind)
		m.sib = append(m.sib, sib)
		m.task = append(m.task, task)
		if len(st) > 1 || setup > 0 {
			m.fast = false
		}
		return nil
	}
	m.fast, m.segs = true, true
	m.twOff = []int32{0}
	for i, j := range p.Jobs {
		f := fmt.Sprintf("jobs[%d]", i)
		if err := checkAmount(f+".delivery", j.Delivery, D); err != nil {
			return nil, err
		}
		if err := checkAmount(f+".pickup", j.Pickup, D); err != nil {
			return nil, err
		}
		if err := addNode(f, j.Location, j.Setup, j.Service, j.TimeWindows, j.Delivery, j.Pickup, j.Priority, kindJob, -1, int32(i)); err != nil {
			return nil, err
		}
	}
	for i, s := range p.Shipments {
		f := fmt.Sprintf("shipments[%d]", i)
		if err := checkAmount(f+".amount", s.Amount, D); err != nil {
			return nil, err
		}
		n := int32(len(m.loc))
		var neg []int64
		if s.Amount != nil {
			neg = make([]int64, D)
			for k := range neg {
				neg[k] = -s.Amount[k]
			}
		}
		if err := addNode(f+".pickup", s.Pickup.Location, s.Pickup.Setup, s.Pickup.Service, s.Pickup.TimeWindows, nil, s.Amount, s.Priority, kindPickup, n+1, int32(i)); err != nil {
			return nil, err
		}
		if err := addNode(f+".delivery", s.Delivery.Location, s.Delivery.Setup, s.Delivery.Service, s.Delivery.TimeWindows, nil, neg, s.Priority, kindDelivery, n, int32(i)); err != nil {
			return nil, err
		}
		m.fast, m.segs = false, false
	}
	m.nNodes = len(m.loc)
	// vehicles and types
	typeKey := map[string]int{}
	for i, v := range p.Vehicles {
		f := fmt.Sprintf("vehicles[%d]", i)
		if err := checkAmount(f+".capacity", v.Capacity, D); err != nil {
			return nil, err
		}
		vi := vinfo{start: -1, end: -1, maxTasks: math.MaxInt32, maxTravel: math.MaxInt64, maxDist: math.MaxInt64}
		if v.HasStart {
			li, err := chkLoc(f+".start", v.Start)
			if err != nil {
				return nil, err
			}
			vi.start = li
		}
		if v.HasEnd {
			li, err := chkLoc(f+".end", v.End)
			if err != nil {
				return nil, err
			}
			vi.end = li
		}
		vi.cap = make([]int64, D)
		copy(vi.cap, v.Capacity)
		if v.Capacity == nil && D > 0 {
			return nil, fmt.Errorf("%s.capacity: missing while tasks have amounts", f)
		}
		vi.tw = v.TimeWindow
		if vi.tw == (TimeWindow{}) {
			vi.tw = TimeWindow{0, MaxTime}
		}
		if err := checkTWs(f+".time_window", []TimeWindow{vi.tw}); err != nil {
			return nil, err
		}
		for b, br := range v.Breaks {
			bf := fmt.Sprintf("%s.breaks[%d]", f, b)
			if err := checkTWs(bf+".time_windows", br.TimeWindows); err != nil {
				return nil, err
			}
			if br.Service < 0 {
				return nil, fmt.Errorf("%s.service: negative %d", bf, br.Service)
			}
			if err := checkAmount(bf+".max_load", br.MaxLoad, D); err != nil {
				return nil, err
			}
			nb := br
			nb.TimeWindows = sortedTWs(br.TimeWindows)
			vi.breaks = append(vi.breaks, nb)
			m.fast = false
		}
		if v.MaxTasks < 0 {
			return nil, fmt.Errorf("%s.max_tasks: negative %d", f, v.MaxTasks)
		}
		if v.MaxTasks > 0 {
			vi.maxTasks = v.MaxTasks
		}
		if v.MaxTravelTime < 0 {
			return nil, fmt.Errorf("%s.max_travel_time: negative %d", f, v.MaxTravelTime)
		}
		if v.MaxTravelTime > 0 {
			vi.maxTravel = v.MaxTravelTime
		}
		if v.MaxDistance < 0 {
			return nil, fmt.Errorf("%s.max_distance: negative %d", f, v.MaxDistance)
		}
		if v.Costs.Fixed < 0 || v.Costs.PerHour < 0 || v.Costs.PerKm < 0 {
			return nil, fmt.Errorf("%s.costs: negative cost", f)
		}
		if v.Costs.Fixed > 1<<30 || v.Costs.PerHour > 1<<20 || v.Costs.PerKm > 1<<20 {
			return nil, fmt.Errorf("%s.costs: value too large (fixed <= 2^30, per_hour and per_km <= 2^20)", f)
		}
		vi.fixed = v.Costs.Fixed * costScale
		if v.SpeedFactor < 0 || math.IsNaN(v.SpeedFactor) || math.IsInf(v.SpeedFactor, 0) || (v.SpeedFactor > 0 && v.SpeedFactor < 0.01) {
			return nil, fmt.Errorf("%s.speed_factor: %v not in (0.01, inf)", f, v.SpeedFactor)
		}
		prof := v.Profile
		if prof == "" {
			prof = "car"
		}
		mx := p.Matrices[prof]
		if mx == nil && noMatrix {
			m.veh = append(m.veh, vi)
			continue
		}
		if mx == nil {
			return nil, fmt.Errorf("%s.profile: no matrices for profile %q", f, prof)
		}
		vi.hasDist = mx.Distances != nil
		if v.MaxDistance > 0 {
			if !vi.hasDist {
				return nil, fmt.Errorf("%s.max_distance: profile %q has no distances matrix", f, prof)
			}
			vi.maxDist = v.MaxDistance
		}
		ph, pkm := v.Costs.PerHour, v.Costs.PerKm
		if ph == 0 && pkm == 0 {
			ph = 3600
		}
		if pkm > 0 && !vi.hasDist && mx.Costs == nil {
			return nil, fmt.Errorf("%s.costs.per_km: profile %q has no distances matrix", f, prof)
		}
		sf := v.SpeedFactor
		if sf == 0 {
			sf = 1
		}
		key := fmt.Sprintf("%s|%v|%d|%d", prof, sf, ph, pkm)
		if mx.Costs != nil {
			key = fmt.Sprintf("%s|%v|matrix", prof, sf)
		}
		t, ok := typeKey[key]
		if !ok {
			t = len(m.types)
			typeKey[key] = t
			m.types = append(m.types, buildType(mx, nLoc, sf, ph, pkm))
		}
		vi.typ = t
		m.veh = append(m.veh, vi)
	}
	if noMatrix {
		return m, nil
	}
	// Overflow guard: a route has at most nNodes+1 arcs.
	var maxArc, sumFixed int64
	for _, t := range m.types {
		for _, c := range t.cost {
			maxArc = max(maxArc, c)
		}
	}
	for _, vi := range m.veh {
		sumFixed += vi.fixed
	}
	if maxArc > 0 && (maxArc > (1<<62)/int64(m.nNodes+2) || sumFixed > 1<<61) {
		return nil, fmt.Errorf("costs: matrix values times cost coefficients too large for 63-bit totals")
	}
	// skills
	nV := len(p.Vehicles)
	m.compat = make([]bool, nV*m.nNodes)
	vs := make([]map[int]bool, nV)
	for v := range p.Vehicles {
		vs[v] = map[int]bool{}
		for _, s := range p.Vehicles[v].Skills {
			vs[v][s] = true
		}
	}
	for n := 0; n < m.nNodes; n++ {
		var sk []int
		if m.kind[n] == kindJob {
			sk = p.Jobs[m.task[n]].Skills
		} else {
			sk = p.Shipments[m.task[n]].Skills
		}
		for v := 0; v < nV; v++ {
			ok := true
			for _, s := range sk {
				if !vs[v][s] {
					ok = false
					break
				}
			}
			m.compat[v*m.nNodes+n] = ok
		}
	}
	if m.dims > maxFastDims {
		m.fast, m.segs = false, false
	}
	classes := map[string]int{}
	for v, vi := range m.veh {
		sk := append([]int(nil), p.Vehicles[v].Skills...)
		sort.Ints(sk)
		key := fmt.Sprint(vi.typ, vi.start, vi.end, vi.cap, vi.tw, vi.maxTasks, vi.maxTravel, vi.maxDist, vi.fixed, sk)
		for _, b := range vi.breaks {
			// identical breaks (ids and descriptions aside) keep vehicles
			// interchangeable
			key += fmt.Sprint("|break", b.TimeWindows, b.Service, b.MaxLoad != nil, b.MaxLoad)
		}
		c, ok := classes[key]
		if !ok {
			c = len(classes)
			classes[key] = c
		}
		m.vclass = append(m.vclass, c)
	}
	m.brk = !m.fast && m.brkEligible()
	m.light = m.lightEligible()
	if m.segs {
		m.nseg = make([]seg, m.nNodes)
		for i := range m.nseg {
			m.nseg[i] = m.makeNodeSeg(int32(i))
		}
	}
	return m, nil
}

// vehicleDuration applies a speed factor as VROOM does (rounded division).
func vehicleDuration(d int64, sf float64) int64 {
	if sf == 1 {
		return d
	}
	return int64(math.Round(float64(d) / sf))
}

func buildType(mx *Matrix, n int, sf float64, ph, pkm int64) vtype {
	t := vtype{arcs: make([]arc, n*n), cost: make([]int64, n*n), costT: make([]int64, n*n)}
	for i := 0; i < n; i++ {
		for j := 0; j < n; j++ {
			d := vehicleDuration(mx.Durations[i][j], sf)
			t.arcs[i*n+j].dur = d
			var ds int64
			if mx.Distances != nil {
				ds = mx.Distances[i][j]
			}
			t.arcs[i*n+j].dist = ds
			if mx.Costs != nil {
				t.cost[i*n+j] = mx.Costs[i][j] * costScale
			} else {
				t.cost[i*n+j] = ph*d*1000 + pkm*ds*3600
			}
			t.arcs[i*n+j].cost = t.cost[i*n+j]
			t.costT[j*n+i] = t.cost[i*n+j]
		}
	}
	return t
}
