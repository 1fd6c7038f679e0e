package sim

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/lastmile/lastmile/graph"
)

const (
	day = 24 * time.Hour
	// slotLen is the resolution of the precomputed congestion curves; Factor
	// interpolates linearly between slots.
	slotLen = 5 * time.Minute
	// slots is the number of curve points per day, both midnights included.
	slots = int(day/slotLen) + 1
	// maxRegions bounds the region grid (RegionSize too small for the area).
	maxRegions = 1 << 20
	// metresPerDegree is the length of a degree of latitude (spherical
	// Earth of radius 6371 km), used for local planar approximations.
	metresPerDegree = 6371000 * math.Pi / 180
)

// Stream selectors of the per-day random generators.
const (
	streamDay = iota
	streamIncidents
	numStreams
)

// Incident is a slowdown or a closure of a stretch of road during a time
// window.
type Incident struct {
	// Edges are the directed edges affected (for a closure both
	// directions of the road).
	Edges []uint32
	// Start and End delimit the window [Start, End).
	Start, End time.Time
	// Factor multiplies the edges' travel times; +Inf means closed.
	Factor float64
	// Lat and Lon locate the middle of the first edge.
	Lat, Lon float64
}

// World is the precomputed ground truth of a simulation: per-edge class
// weight and region, per-day congestion curves and regional intensities,
// and the incidents indexed per edge. It is immutable after NewWorld and
// safe for concurrent use.
type World struct {
	net *graph.Network
	cfg Config

	start int64 // cfg.Start in Unix nanoseconds

	weight []float32 // per edge: ClassWeight of its class
	region []uint32  // per edge: region of its midpoint
	nReg   int

	curve   []float32    // Days × slots congestion curves
	typical [2][]float32 // weekly-pattern curve of a weekday [0] and a weekend day [1], no shift
	mult    []float32    // Days × nReg day intensities

	incidents []Incident
	incStart  []int64 // Unix ns, per incident
	incEnd    []int64
	incFirst  []uint32 // CSR: incidents of edge e are incList[incFirst[e]:incFirst[e+1]]
	incList   []uint32

	out, outFirst []uint32 // CSR of out-edges per node
}

// errNetwork is wrapped by errors about the network given to NewWorld.
var errNetwork = errors.New("sim: invalid network")

// NewWorld draws the ground truth of cfg over net. It returns an error for
// an invalid Config or an empty or inconsistent network.
func NewWorld(net *graph.Network, cfg Config) (*World, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if net == nil || len(net.Edges) == 0 || len(net.Lat) == 0 {
		return nil, fmt.Errorf("%w: no edges", errNetwork)
	}
	if len(net.Lon) != len(net.Lat) {
		return nil, fmt.Errorf("%w: %d latitudes, %d longitudes", errNetwork, len(net.Lat), len(net.Lon))
	}
	if len(net.ShapeLat) != len(net.ShapeLon) {
		return nil, fmt.Errorf("%w: %d shape latitudes, %d shape longitudes", errNetwork, len(net.ShapeLat), len(net.ShapeLon))
	}
	nn := uint32(len(net.Lat))
	for i, e := range net.Edges {
		if e.From >= nn || e.To >= nn {
			return nil, fmt.Errorf("%w: edge %d: node out of range", errNetwork, i)
		}
		if !(e.Duration > 0) || math.IsInf(e.Duration, 0) || !(e.Distance >= 0) || math.IsInf(e.Distance, 0) {
			return nil, fmt.Errorf("%w: edge %d: duration %v, distance %v", errNetwork, i, e.Duration, e.Distance)
		}
		if e.ShapeStart > e.ShapeEnd || int(e.ShapeEnd) > len(net.ShapeLat) {
			return nil, fmt.Errorf("%w: edge %d: shape [%d,%d) out of range", errNetwork, i, e.ShapeStart, e.ShapeEnd)
		}
	}
	w := &World{net: net, cfg: cfg, start: cfg.Start.UnixNano()}
	if err := w.buildRegions(); err != nil {
		return nil, err
	}
	w.weight = make([]float32, len(net.Edges))
	for i, e := range net.Edges {
		c := e.Class
		if c >= graph.NumClasses {
			c = graph.ClassOther
		}
		w.weight[i] = float32(cfg.ClassWeight[c])
	}
	w.buildAdjacency()

	w.typical[0] = w.appendCurve(nil, false, 0)
	w.typical[1] = w.appendCurve(nil, true, 0)
	w.curve = make([]float32, 0, cfg.Days*slots)
	w.mult = make([]float32, 0, cfg.Days*w.nReg)
	vd, vr := cfg.DaySigma*cfg.DaySigma, cfg.RegionSigma*cfg.RegionSigma
	for d := range cfg.Days {
		rng := w.dayRand(d, streamDay)
		weekend := w.weekend(d)
		shift := time.Duration(rng.NormFloat64() * float64(cfg.PeakShiftSigma))
		w.curve = w.appendCurve(w.curve, weekend, shift)
		zd := rng.NormFloat64() * cfg.DaySigma
		for range w.nReg {
			zr := rng.NormFloat64() * cfg.RegionSigma
			w.mult = append(w.mult, float32(math.Exp(zd+zr-(vd+vr)/2)))
		}
	}
	w.drawIncidents()
	return w, nil
}

// dayRand returns the random stream s of day d.
func (w *World) dayRand(d, s int) *rand.Rand {
	return rand.New(rand.NewPCG(w.cfg.Seed, uint64(d)*numStreams+uint64(s)+0x5eed))
}

// weekend reports whether day d (any integer) is a Saturday or Sunday.
func (w *World) weekend(d int) bool {
	wd := time.Weekday(((int(w.cfg.Start.Weekday())+d)%7 + 7) % 7)
	return wd == time.Saturday || wd == time.Sunday
}

// buildRegions assigns every edge to the grid cell of its midpoint.
func (w *World) buildRegions() error {
	n := w.net
	minLat, maxLat := math.Inf(1), math.Inf(-1)
	minLon, maxLon := math.Inf(1), math.Inf(-1)
	for i := range n.Lat {
		lat, lon := n.Lat[i], n.Lon[i]
		if !(lat >= -90 && lat <= 90 && lon >= -180 && lon <= 180) {
			return fmt.Errorf("%w: node %d at (%v, %v)", errNetwork, i, lat, lon)
		}
		minLat, maxLat = min(minLat, lat), max(maxLat, lat)
		minLon, maxLon = min(minLon, lon), max(maxLon, lon)
	}
	dLat := w.cfg.RegionSize / metresPerDegree
	dLon := dLat / max(math.Cos((minLat+maxLat)*math.Pi/360), 0.01)
	nx := int((maxLon-minLon)/dLon) + 1
	ny := int((maxLat-minLat)/dLat) + 1
	if nx*ny > maxRegions || nx <= 0 || ny <= 0 {
		return fmt.Errorf("%w: RegionSize %v m gives %d×%d regions (max %d)", errConfig, w.cfg.RegionSize, nx, ny, maxRegions)
	}
	w.nReg = nx * ny
	w.region = make([]uint32, len(n.Edges))
	for i, e := range n.Edges {
		lat := (n.Lat[e.From] + n.Lat[e.To]) / 2
		lon := (n.Lon[e.From] + n.Lon[e.To]) / 2
		x := min(int((lon-minLon)/dLon), nx-1)
		y := min(int((lat-minLat)/dLat), ny-1)
		w.region[i] = uint32(y*nx + x)
	}
	return nil
}

// buildAdjacency builds the out-edge lists used to extend incidents along
// their road.
func (w *World) buildAdjacency() {
	n := w.net
	w.outFirst = make([]uint32, len(n.Lat)+1)
	for _, e := range n.Edges {
		w.outFirst[e.From+1]++
	}
	for i := 1; i < len(w.outFirst); i++ {
		w.outFirst[i] += w.outFirst[i-1]
	}
	w.out = make([]uint32, len(n.Edges))
	pos := slices.Clone(w.outFirst[:len(n.Lat)])
	for i, e := range n.Edges {
		w.out[pos[e.From]] = uint32(i)
		pos[e.From]++
	}
}

// gauss is a bump of height p.Height centred at p.Centre+shift.
func gauss(p Peak, at, shift time.Duration) float64 {
	z := float64(at-p.Centre-shift) / float64(p.Width)
	return p.Height * math.Exp(-z*z/2)
}

// logistic is 1/(1+e^-x).
func logistic(x float64) float64 { return 1 / (1 + math.Exp(-x)) }

// appendCurve appends the congestion curve c of one day (weekday or
// weekend, with the weekday peaks shifted by shift) at slot resolution.
func (w *World) appendCurve(dst []float32, weekend bool, shift time.Duration) []float32 {
	c := &w.cfg
	// The plateau's edges are logistic with scale 15 min: 10 % to 90 % in
	// about an hour.
	const edge = float64(15 * time.Minute)
	for s := range slots {
		at := time.Duration(s) * slotLen
		var v float64
		if weekend {
			v = gauss(c.WeekendPeak, at, 0)
		} else {
			v = gauss(c.MorningPeak, at, shift) + gauss(c.EveningPeak, at, shift)
			v += c.Daytime * logistic(float64(at-c.DaytimeFrom-shift)/edge) * logistic(float64(c.DaytimeTo+shift-at)/edge)
		}
		dst = append(dst, float32(v))
	}
	return dst
}

// Days returns the number of simulated days.
func (w *World) Days() int { return w.cfg.Days }

// Start returns midnight of day 0.
func (w *World) Start() time.Time { return w.cfg.Start }

// Config returns the configuration the world was drawn from.
func (w *World) Config() Config { return w.cfg }

// Network returns the road network of the world.
func (w *World) Network() *graph.Network { return w.net }

// Regions returns the number of regions (grid cells of Config.RegionSize).
func (w *World) Regions() int { return w.nReg }

// Region returns the region of edge e (e must be a valid edge index).
func (w *World) Region(e uint32) int { return int(w.region[e]) }

// Intensity returns the random intensity m(day, region) (mean 1), or 1
// outside the simulated days; for diagnostics and tests.
func (w *World) Intensity(d, region int) float64 {
	if d < 0 || d >= w.cfg.Days || region < 0 || region >= w.nReg {
		return 1
	}
	return float64(w.mult[d*w.nReg+region])
}

// Factor returns the truth multiplier on edge e's free-flow duration for a
// vehicle entering it at t (without the per-traversal noise): >= 1, +Inf
// while a closure is active. It costs a few array reads and the scan of
// the incidents of e. It returns NaN for an edge index out of range.
func (w *World) Factor(e uint32, t time.Time) float64 {
	if int(e) >= len(w.weight) {
		return math.NaN()
	}
	ns := t.UnixNano() - w.start
	d := int(math.Floor(float64(ns) / float64(day)))
	off := ns - int64(d)*int64(day)
	var curve []float32
	m := float32(1)
	inDays := d >= 0 && d < w.cfg.Days
	if inDays {
		curve = w.curve[d*slots : (d+1)*slots]
		m = w.mult[d*w.nReg+int(w.region[e])]
	} else {
		if w.weekend(d) {
			curve = w.typical[1]
		} else {
			curve = w.typical[0]
		}
	}
	pos := float64(off) / float64(slotLen)
	i := int(pos)
	if i >= slots-1 {
		i = slots - 2
	}
	fr := float32(pos - float64(i))
	c := curve[i] + fr*(curve[i+1]-curve[i])
	f := 1 + float64(w.weight[e]*m*c)
	if inDays {
		abs := t.UnixNano()
		worst := 1.0
		for _, k := range w.incList[w.incFirst[e]:w.incFirst[e+1]] {
			if abs >= w.incStart[k] && abs < w.incEnd[k] {
				worst = max(worst, w.incidents[k].Factor)
			}
		}
		f *= worst
	}
	return f
}

// closedUntil returns the end of the latest closure active on e at t, or t
// when e is open then.
func (w *World) closedUntil(e uint32, t time.Time) time.Time {
	abs := t.UnixNano()
	end := abs
	for _, k := range w.incList[w.incFirst[e]:w.incFirst[e+1]] {
		if math.IsInf(w.incidents[k].Factor, 1) && abs >= w.incStart[k] && abs < w.incEnd[k] {
			end = max(end, w.incEnd[k])
		}
	}
	return time.Unix(0, end).UTC()
}

// Incidents returns the incidents of all days in order of start time
// within each day. The slice is shared: do not modify it.
func (w *World) Incidents() []Incident { return w.incidents }

// drawIncidents draws the incidents of every day (see Config.IncidentRate)
// and indexes them per edge.
func (w *World) drawIncidents() {
	n := w.net
	c := &w.cfg
	// Eligible edges, drawn proportionally to their length.
	var elig []uint32
	var cum []float64
	total := 0.0
	for i, e := range n.Edges {
		if e.Class <= graph.ClassResidential && e.Distance > 0 {
			total += e.Distance
			elig = append(elig, uint32(i))
			cum = append(cum, total)
		}
	}
	mean := c.IncidentRate * total / 100000
	if len(elig) > 0 && mean > 0 {
		lo, hi := math.Log(float64(c.IncidentMinDuration)), math.Log(float64(c.IncidentMaxDuration))
		for d := range c.Days {
			rng := w.dayRand(d, streamIncidents)
			// Poisson count: unit-rate exponential arrivals within mean.
			k := 0
			for s := rng.ExpFloat64(); s <= mean; s += rng.ExpFloat64() {
				k++
			}
			midnight := c.Start.Add(time.Duration(d) * day)
			first := len(w.incidents)
			for range k {
				j, _ := slices.BinarySearch(cum, rng.Float64()*total)
				e := elig[min(j, len(elig)-1)]
				at := c.IncidentFrom + time.Duration(rng.Float64()*float64(c.IncidentTo-c.IncidentFrom))
				dur := time.Duration(math.Exp(lo + rng.Float64()*(hi-lo)))
				inc := Incident{Start: midnight.Add(at), End: midnight.Add(at + dur)}
				if rng.Float64() < c.ClosedShare {
					inc.Factor = math.Inf(1)
				} else {
					inc.Factor = c.SlowMin + rng.Float64()*(c.SlowMax-c.SlowMin)
				}
				inc.Edges = w.stretch(e, inc.Factor)
				inc.Lat, inc.Lon, _ = edgeAt(n, e, 0.5)
				w.incidents = append(w.incidents, inc)
			}
			slices.SortStableFunc(w.incidents[first:], func(a, b Incident) int { return a.Start.Compare(b.Start) })
		}
	}
	w.incStart = make([]int64, len(w.incidents))
	w.incEnd = make([]int64, len(w.incidents))
	w.incFirst = make([]uint32, len(n.Edges)+1)
	for k, inc := range w.incidents {
		w.incStart[k], w.incEnd[k] = inc.Start.UnixNano(), inc.End.UnixNano()
		for _, e := range inc.Edges {
			w.incFirst[e+1]++
		}
	}
	for i := 1; i < len(w.incFirst); i++ {
		w.incFirst[i] += w.incFirst[i-1]
	}
	w.incList = make([]uint32, w.incFirst[len(n.Edges)])
	pos := slices.Clone(w.incFirst[:len(n.Edges)])
	for k, inc := range w.incidents {
		for _, e := range inc.Edges {
			w.incList[pos[e]] = uint32(k)
			pos[e]++
		}
	}
}

// stretch returns the edges an incident starting on edge e covers: e and
// its continuations along the same way (no U-turns) up to
// Config.IncidentLength metres, plus, for a closure, the opposite
// directions of those edges.
func (w *World) stretch(e uint32, factor float64) []uint32 {
	n := w.net
	edges := []uint32{e}
	length := n.Edges[e].Distance
	cur := e
	for length < w.cfg.IncidentLength && len(edges) < 64 {
		ce := n.Edges[cur]
		next := uint32(math.MaxUint32)
		for _, o := range w.out[w.outFirst[ce.To]:w.outFirst[ce.To+1]] {
			oe := n.Edges[o]
			if oe.WayID == ce.WayID && oe.To != ce.From && !slices.Contains(edges, o) {
				next = o
				break
			}
		}
		if next == math.MaxUint32 {
			break
		}
		edges = append(edges, next)
		length += n.Edges[next].Distance
		cur = next
	}
	if math.IsInf(factor, 1) {
		for _, f := range edges {
			if t, ok := w.twin(f); ok && !slices.Contains(edges, t) {
				edges = append(edges, t)
			}
		}
	}
	return edges
}

// twin returns the edge of the same way running the opposite direction
// between the same nodes, if any.
func (w *World) twin(e uint32) (uint32, bool) {
	n := w.net
	ed := n.Edges[e]
	for _, o := range w.out[w.outFirst[ed.To]:w.outFirst[ed.To+1]] {
		if oe := n.Edges[o]; oe.To == ed.From && oe.WayID == ed.WayID && o != e {
			return o, true
		}
	}
	return 0, false
}

// edgeAt returns the position at fraction f of edge e's polyline (by
// length in a local equirectangular projection, as graph measures
// fractions) and the heading of the segment there in degrees clockwise
// from north.
func edgeAt(n *graph.Network, e uint32, f float64) (lat, lon, heading float64) {
	ed := &n.Edges[e]
	np := int(ed.ShapeEnd-ed.ShapeStart) + 2
	pt := func(i int) (float64, float64) {
		switch i {
		case 0:
			return n.Lat[ed.From], n.Lon[ed.From]
		case np - 1:
			return n.Lat[ed.To], n.Lon[ed.To]
		}
		k := int(ed.ShapeStart) + i - 1
		return n.ShapeLat[k], n.ShapeLon[k]
	}
	seg := func(i int) (float64, float64) { // planar vector of segment i-1 -> i, degrees of latitude
		a, b := pt(i - 1)
		c, d := pt(i)
		return (d - b) * math.Cos((a+c)*math.Pi/360), c - a
	}
	total := 0.0
	for i := 1; i < np; i++ {
		x, y := seg(i)
		total += math.Hypot(x, y)
	}
	target := min(max(f, 0), 1) * total
	acc := 0.0
	for i := 1; i < np; i++ {
		x, y := seg(i)
		l := math.Hypot(x, y)
		if acc+l >= target || i == np-1 {
			t := 0.0
			if l > 0 {
				t = min(max((target-acc)/l, 0), 1)
			}
			a, b := pt(i - 1)
			c, d := pt(i)
			h := math.Atan2(x, y) * 180 / math.Pi
			if h < 0 {
				h += 360
			}
			return a + t*(c-a), b + t*(d-b), h
		}
		acc += l
	}
	a, b := pt(0)
	return a, b, 0
}
