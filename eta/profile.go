package eta

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"time"

	"github.com/lastmile/lastmile/graph"
	"github.com/uber/h3-go/v4"
	"gonum.org/v1/gonum/stat"
)

// Time bins of a profile: 96 quarter hours of a weekday, then 96 of a
// weekend day (Saturday and Sunday).
const (
	// BinsPerDay is the number of quarter-hour bins in a day.
	BinsPerDay = 96
	// NumBins is the number of bins per edge: BinsPerDay for weekdays, then
	// BinsPerDay for weekends.
	NumBins = 2 * BinsPerDay
	// binSeconds is the width of a bin.
	binSeconds = 24 * 3600 / BinsPerDay
)

// Plausibility bounds shared by the profile fit and the live screening. A
// traversal faster than minFactor times the free-flow duration, slower than
// maxFactor times it, or faster than maxSpeed is a map-matching or clock
// error rather than traffic.
const (
	minFactor = 0.2
	maxFactor = 50
	maxSpeed  = 70.0 // m/s, 252 km/h
)

// DefaultH3Resolution is the H3 resolution of the cells that pool traffic of
// nearby roads: resolution 8 cells have an average edge of about 460 m
// (H3 documentation, "Tables of Cell Statistics Across Resolutions").
const DefaultH3Resolution = 8

// Observation is one traversal of a road edge: the vehicle entered edge Edge
// at Time and needed Duration seconds for the whole edge.
type Observation struct {
	// Edge is the road edge index into graph.Network.Edges.
	Edge uint32
	// Time is when the vehicle entered the edge.
	Time time.Time
	// Duration is the traversal time of the whole edge in seconds.
	Duration float64
}

// ProfileOptions configure FitProfile.
type ProfileOptions struct {
	// Location is the time zone whose clock defines the quarter-hour bins
	// and weekday/weekend; nil means UTC.
	Location *time.Location
	// MinSamples is the shrinkage strength: a bin with MinSamples samples
	// counts as much as the aggregate it is shrunk toward (weight
	// n/(n+MinSamples)). 0 means the default 5; negative is an error.
	MinSamples int
	// H3Resolution is the resolution of the cells of the (cell, class)
	// aggregates, 0 to 15; 0 means DefaultH3Resolution (use the Traffic
	// option for resolution 0, which pools whole continents).
	H3Resolution int
	// Logger receives a summary of the fit; nil discards.
	Logger *slog.Logger
}

// ProfileStats count what FitProfile used.
type ProfileStats struct {
	// Used is the number of observations that entered the fit.
	Used int
	// UnknownEdge, Invalid and Implausible count skipped observations: edge
	// index out of range (or an edge without a positive free-flow duration),
	// a time outside the years 1900-2199 (e.g. zero) or a non-finite or non-positive duration, and a multiplier
	// or speed outside the plausible range.
	UnknownEdge, Invalid, Implausible int
	// Edges, Groups and Classes count the edges, (H3 cell, class) groups and
	// road classes that have data of their own.
	Edges, Groups, Classes int
}

// Profile is a historical travel-time profile: for every edge and quarter
// hour (weekday or weekend) a multiplier on the free-flow duration. Storage
// is sparse: one int32 per edge points to a row of NumBins multipliers, and
// rows exist only for edges with data and for the aggregates they fall back
// on. A Profile is read-only after FitProfile and safe for concurrent use.
type Profile struct {
	loc   *time.Location
	slot  []int32   // per edge: row in table, or -1 for free flow
	table []float32 // row*NumBins + bin: multiplier
	stats ProfileStats
}

// binOf returns the profile bin of t in loc.
func binOf(t time.Time, loc *time.Location) int {
	sec := t.Unix()
	if loc != time.UTC {
		_, off := t.In(loc).Zone()
		sec += int64(off)
	}
	day := sec / 86400
	tod := sec - day*86400
	if tod < 0 {
		tod += 86400
		day--
	}
	b := int(tod / binSeconds)
	// 1970-01-01 was a Thursday: weekday 4 with Sunday = 0.
	wd := (day + 4) % 7
	if wd < 0 {
		wd += 7
	}
	if wd == 0 || wd == 6 {
		b += BinsPerDay
	}
	return b
}

// Bin returns the profile bin (0..NumBins-1) of t: the quarter hour of the
// day in the profile's time zone, plus BinsPerDay on Saturdays and Sundays.
func (p *Profile) Bin(t time.Time) int {
	if p == nil {
		return binOf(t, time.UTC)
	}
	return binOf(t, p.loc)
}

// Factor returns the multiplier on the free-flow duration of edge e for a
// vehicle entering it at t. A nil Profile, an edge without data and without
// an aggregate to fall back on, and an out-of-range edge give 1.
func (p *Profile) Factor(e uint32, t time.Time) float64 {
	if p == nil || int(e) >= len(p.slot) {
		return 1
	}
	s := p.slot[e]
	if s < 0 {
		return 1
	}
	return float64(p.table[int(s)*NumBins+binOf(t, p.loc)])
}

// Location returns the time zone of the bins (UTC for a nil Profile).
func (p *Profile) Location() *time.Location {
	if p == nil {
		return time.UTC
	}
	return p.loc
}

// Stats returns what the fit used.
func (p *Profile) Stats() ProfileStats {
	if p == nil {
		return ProfileStats{}
	}
	return p.stats
}

// edgeMid returns a representative point of edge e: its middle shape point,
// else the midpoint of its end nodes.
func edgeMid(net *graph.Network, e int) (lat, lon float64) {
	ed := &net.Edges[e]
	if ed.ShapeEnd > ed.ShapeStart && int(ed.ShapeEnd) <= len(net.ShapeLat) && int(ed.ShapeEnd) <= len(net.ShapeLon) {
		m := (ed.ShapeStart + ed.ShapeEnd) / 2
		return net.ShapeLat[m], net.ShapeLon[m]
	}
	return (net.Lat[ed.From] + net.Lat[ed.To]) / 2, (net.Lon[ed.From] + net.Lon[ed.To]) / 2
}

// grouping assigns every edge to its (H3 cell, road class) group.
type grouping struct {
	group []int32           // per edge: group
	class []graph.RoadClass // per group: road class
	cell  []int32           // per group: index into cells
	cells []h3.Cell         // distinct cells
	index map[groupKey]int32
}

// groupKey identifies a (cell, class) group.
type groupKey struct {
	cell  h3.Cell
	class graph.RoadClass
}

// edgeGroups assigns every edge to its (H3 cell at resolution res, road
// class) group, the cell being that of the edge's middle point.
func edgeGroups(net *graph.Network, res int) (*grouping, error) {
	if net == nil {
		return nil, errors.New("nil network")
	}
	if res < 0 || res > 15 {
		return nil, fmt.Errorf("H3 resolution %d out of range 0..15", res)
	}
	if len(net.Lat) != len(net.Lon) {
		return nil, fmt.Errorf("network has %d latitudes but %d longitudes", len(net.Lat), len(net.Lon))
	}
	gr := &grouping{group: make([]int32, len(net.Edges)), index: make(map[groupKey]int32)}
	cellIdx := make(map[h3.Cell]int32)
	for i := range net.Edges {
		ed := &net.Edges[i]
		if int(ed.From) >= len(net.Lat) || int(ed.To) >= len(net.Lat) {
			return nil, fmt.Errorf("edge %d: node %d or %d out of range (%d nodes)", i, ed.From, ed.To, len(net.Lat))
		}
		lat, lon := edgeMid(net, i)
		c := h3.LatLngToCell(h3.NewLatLng(lat, lon), res)
		ci, ok := cellIdx[c]
		if !ok {
			ci = int32(len(gr.cells))
			cellIdx[c] = ci
			gr.cells = append(gr.cells, c)
		}
		k := groupKey{c, ed.Class}
		g, ok := gr.index[k]
		if !ok {
			g = int32(len(gr.class))
			gr.index[k] = g
			gr.class = append(gr.class, ed.Class)
			gr.cell = append(gr.cell, ci)
		}
		gr.group[i] = g
	}
	return gr, nil
}

// sample is one observation prepared for the fit: the unit it belongs to at
// the current level (class, group or edge), its bin and its log multiplier.
type sample struct {
	edge uint32
	unit uint32
	bin  uint16
	v    float32
}

// median returns the median of sorted x (0 for empty x). It is not
// stat.Quantile(0.5, ...), which returns the lower middle value of an even
// sample (Empirical) or interpolates off-centre (LinInterp).
func median(x []float64) float64 {
	n := len(x)
	switch {
	case n == 0:
		return 0
	case n%2 == 1:
		return x[n/2]
	default:
		return (x[n/2-1] + x[n/2]) / 2
	}
}

// robustMean returns the midmean (the mean of the central half, Tukey's
// interquartile mean) of sorted x for four or more values, else the median.
// It tolerates up to a quarter of gross outliers on either side while being
// more efficient than the median for Gaussian noise.
func robustMean(x []float64) float64 {
	n := len(x)
	if n < 4 {
		return median(x)
	}
	t := n / 4
	return stat.Mean(x[t:n-t], nil)
}

// fitter holds the scratch buffers of one FitProfile call.
type fitter struct {
	k       float64
	vals    []float64
	resid   []float64
	counts  [NumBins]int
	robust  [NumBins]float64
	results [NumBins]float64
}

// fitUnit estimates the NumBins log multipliers of one unit from its samples
// (all of one unit, sorted by bin then value) given the prior per bin:
//
//	est_b = prior_b + d + w_b (m_b - prior_b - d),  w_b = n_b / (n_b + k)
//
// where m_b is the robust mean of bin b and d the unit's median offset from
// its prior over all bins, shrunk by N/(N+k). Bins without samples get
// prior_b + d, so a road that is slower than its area in the bins where it
// was seen is also slower in the others. The result is in f.results.
func (f *fitter) fitUnit(smp []sample, prior *[NumBins]float64) {
	f.resid = f.resid[:0]
	for _, s := range smp {
		f.resid = append(f.resid, float64(s.v)-prior[s.bin])
	}
	slices.Sort(f.resid)
	n := float64(len(f.resid))
	d := median(f.resid) * n / (n + f.k)
	for b := range NumBins {
		f.counts[b] = 0
	}
	for i := 0; i < len(smp); {
		j := i
		f.vals = f.vals[:0]
		for j < len(smp) && smp[j].bin == smp[i].bin {
			f.vals = append(f.vals, float64(smp[j].v))
			j++
		}
		b := smp[i].bin
		f.counts[b] = j - i
		f.robust[b] = robustMean(f.vals)
		i = j
	}
	for b := range NumBins {
		base := prior[b] + d
		if c := f.counts[b]; c > 0 {
			w := float64(c) / (float64(c) + f.k)
			f.results[b] = base + w*(f.robust[b]-base)
		} else {
			f.results[b] = base
		}
	}
}

// sortSamples sorts by unit, bin and value.
func sortSamples(s []sample) {
	slices.SortFunc(s, func(a, b sample) int {
		switch {
		case a.unit != b.unit:
			if a.unit < b.unit {
				return -1
			}
			return 1
		case a.bin != b.bin:
			return int(a.bin) - int(b.bin)
		case a.v < b.v:
			return -1
		case a.v > b.v:
			return 1
		}
		return 0
	})
}

// FitProfile fits a historical profile from observed traversals. Per edge and
// bin the estimate is the midmean of log(duration / free-flow duration),
// shrunk toward the (H3 cell, road class) aggregate, which is itself shrunk
// toward the road class aggregate, which is shrunk toward free flow (see
// fitUnit). Edges without observations use their (cell, class) aggregate,
// else their class aggregate, else free flow.
//
// Observations on unknown edges, with a time outside the years 1900-2199,
// a non-finite or non-positive duration, or an implausible speed are
// skipped and counted in Stats; only a nil or malformed network and bad
// options are errors.
func FitProfile(net *graph.Network, obs []Observation, opt ProfileOptions) (*Profile, error) {
	if opt.MinSamples < 0 {
		return nil, fmt.Errorf("fit profile: MinSamples %d is negative", opt.MinSamples)
	}
	if opt.MinSamples == 0 {
		opt.MinSamples = 5
	}
	if opt.H3Resolution == 0 {
		opt.H3Resolution = DefaultH3Resolution
	}
	if opt.Location == nil {
		opt.Location = time.UTC
	}
	gr, err := edgeGroups(net, opt.H3Resolution)
	if err != nil {
		return nil, fmt.Errorf("fit profile: %w", err)
	}
	group, groupClass := gr.group, gr.class
	p := &Profile{loc: opt.Location, slot: make([]int32, len(net.Edges))}
	smp := make([]sample, 0, len(obs))
	for i := range obs {
		o := &obs[i]
		if int(o.Edge) >= len(net.Edges) || !validFreeFlow(net.Edges[o.Edge].Duration) {
			p.stats.UnknownEdge++
			continue
		}
		if !validTime(o.Time) || !(o.Duration > 0) || math.IsInf(o.Duration, 0) {
			p.stats.Invalid++
			continue
		}
		ed := &net.Edges[o.Edge]
		r := o.Duration / ed.Duration
		if r < minFactor || r > maxFactor || ed.Distance/o.Duration > maxSpeed {
			p.stats.Implausible++
			continue
		}
		smp = append(smp, sample{edge: o.Edge, bin: uint16(binOf(o.Time, opt.Location)), v: float32(math.Log(r))})
	}
	p.stats.Used = len(smp)

	f := &fitter{k: float64(opt.MinSamples)}
	var logs []float64 // row*NumBins + bin: log multipliers of all rows
	addRow := func() int32 {
		r := int32(len(logs) / NumBins)
		logs = append(logs, f.results[:]...)
		return r
	}
	row := func(r int32) *[NumBins]float64 {
		return (*[NumBins]float64)(logs[int(r)*NumBins : int(r+1)*NumBins])
	}
	// forUnits sorts the samples by unit and calls fn once per unit.
	forUnits := func(fn func(unit uint32, s []sample)) {
		sortSamples(smp)
		for i := 0; i < len(smp); {
			j := i + 1
			for j < len(smp) && smp[j].unit == smp[i].unit {
				j++
			}
			fn(smp[i].unit, smp[i:j])
			i = j
		}
	}

	// Level 1: road classes, shrunk toward free flow.
	var zero [NumBins]float64
	var classRow [graph.NumClasses]int32
	for i := range classRow {
		classRow[i] = -1
	}
	for i := range smp {
		smp[i].unit = uint32(net.Edges[smp[i].edge].Class)
	}
	forUnits(func(u uint32, s []sample) {
		f.fitUnit(s, &zero)
		if u < uint32(len(classRow)) {
			classRow[u] = addRow()
			p.stats.Classes++
		}
	})

	// Level 2: (cell, class) groups, shrunk toward their class.
	groupRow := make([]int32, len(groupClass))
	for i := range groupRow {
		groupRow[i] = -1
	}
	for i := range smp {
		smp[i].unit = uint32(group[smp[i].edge])
	}
	forUnits(func(u uint32, s []sample) {
		prior := &zero
		if c := groupClass[u]; c < graph.NumClasses && classRow[c] >= 0 {
			prior = row(classRow[c])
		}
		f.fitUnit(s, prior)
		groupRow[u] = addRow()
		p.stats.Groups++
	})

	// Level 3: edges, shrunk toward their group.
	for i := range p.slot {
		p.slot[i] = -1
	}
	for i := range smp {
		smp[i].unit = smp[i].edge
	}
	forUnits(func(u uint32, s []sample) {
		f.fitUnit(s, row(groupRow[group[u]]))
		p.slot[u] = addRow()
		p.stats.Edges++
	})
	for e := range p.slot {
		if p.slot[e] >= 0 {
			continue
		}
		if g := groupRow[group[e]]; g >= 0 {
			p.slot[e] = g
		} else if c := net.Edges[e].Class; c < graph.NumClasses && classRow[c] >= 0 {
			p.slot[e] = classRow[c]
		}
	}
	p.table = make([]float32, len(logs))
	for i, v := range logs {
		p.table[i] = float32(math.Exp(v))
	}
	if opt.Logger != nil {
		opt.Logger.Info("eta: profile fitted", "used", p.stats.Used, "unknown_edge", p.stats.UnknownEdge,
			"invalid", p.stats.Invalid, "implausible", p.stats.Implausible, "edges", p.stats.Edges,
			"groups", p.stats.Groups, "classes", p.stats.Classes)
	}
	return p, nil
}

// validFreeFlow reports whether a free-flow duration can serve as the
// denominator of a multiplier.
func validFreeFlow(d float64) bool {
	return d > 0 && !math.IsInf(d, 0)
}
