package eta

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/lastmile/lastmile/graph"
	"github.com/uber/h3-go/v4"
)

// Reasons an observation is rejected; Observe and ObserveWay wrap them.
var (
	// ErrUnknownEdge: the edge index is out of range or the edge has no
	// positive free-flow duration.
	ErrUnknownEdge = errors.New("unknown edge")
	// ErrUnknownWay: no edge of the network lies on the OSM way.
	ErrUnknownWay = errors.New("unknown way")
	// ErrInvalid: a time outside the years 1900-2199 (e.g. zero), or a non-finite or non-positive duration or speed.
	ErrInvalid = errors.New("invalid observation")
	// ErrImplausible: the speed or the multiplier on free flow is outside
	// the physically plausible range.
	ErrImplausible = errors.New("implausible speed")
	// ErrOutlier: the value is far from the recent values of its edge (or
	// of its cell) by the median/MAD test.
	ErrOutlier = errors.New("outlier")
)

// Window sizes of the recent values kept per edge and per (cell, class)
// group.
const (
	edgeWindow  = 8
	groupWindow = 32
)

// TrafficOptions configure NewTraffic. Zero values mean the defaults.
type TrafficOptions struct {
	// Horizon is how long live information lasts: the live ratio decays
	// linearly from the observation time and reaches the profile Horizon
	// later. Default 45 minutes.
	Horizon time.Duration
	// MaxAge is how old a value may be to count: in the live estimate,
	// values observed MaxAge or more before now are ignored (older than
	// Horizon they add nothing anyway, as the decay has reached zero); in
	// the outlier test only values within MaxAge of the new observation
	// are compared with. Default Horizon.
	MaxAge time.Duration
	// H3Resolution is the resolution of the cells that pool observations
	// of roads of the same class; 0 means DefaultH3Resolution.
	H3Resolution int
	// Neighbors is how many rings of neighbouring H3 cells pool into a
	// group's prior: a (cell, class) group is shrunk toward the ratio of
	// the same class in the surrounding cells, and a group without data
	// uses it. 0 means 1 ring (the six adjacent cells); negative disables.
	Neighbors int
	// Location, if set, must be the profile's time zone (a guard against
	// fitting and applying profiles in different zones).
	Location *time.Location
	// Shrink is the weight, in observations, of the prior an edge's own
	// recent values are shrunk toward (its cell's ratio, which is itself
	// shrunk toward the profile). Default 0.5.
	Shrink float64
	// OutlierZ is the modified z-score above which a value is an outlier:
	// |x - median| > OutlierZ × 1.4826 × MAD (Iglewicz & Hoaglin 1993
	// recommend 3.5, the default).
	OutlierZ float64
	// MinOutlierRatio is the smallest ratio to the recent median that can
	// be an outlier, so that a tight window does not reject normal noise.
	// Default 3.
	MinOutlierRatio float64
	// Logger receives construction details; nil discards.
	Logger *slog.Logger
}

// TrafficStats count what Traffic received.
type TrafficStats struct {
	// Accepted is the number of observations used.
	Accepted int
	// Rejected observations by reason (see the Err* variables).
	UnknownEdge, UnknownWay, Invalid, Implausible, Outlier int
	// EdgesLive is the number of edges with observations of their own
	// (accepted or rejected as outliers; both are kept for the outlier test).
	EdgesLive int
	// Groups and Cells count the (H3 cell, class) groups and the H3 cells
	// with such observations.
	Groups, Cells int
	// Closures is the number of edges with a closure recorded.
	Closures int
}

// windows is a set of fixed-size ring buffers of recent values, flat: ring s
// occupies [s*k, (s+1)*k) of t, r, w and acc. Each entry keeps its
// recency weight relative to its ring's base time, w = exp((t -
// base[s])/tau), so that estimate needs one exponential per ring instead
// of one per entry; a ring is rebased before a weight could leave
// float64's range.
type windows struct {
	k    int
	tau  float64   // recency weighting time constant, ns: the horizon / 3
	t    []int64   // unix nanoseconds of entry
	r    []float32 // log ratio to the profile
	w    []float64 // exp((t - base)/tau)
	acc  []bool    // passed the outlier test
	n    []uint8   // filled entries
	head []uint8   // next write position
	base []int64   // per ring: the time its weights are relative to
	// The accepted entries of each ring in time order, kept by push
	// (ring s at [s*k, (s+1)*k), na[s] of them): their times st, weights
	// sw, and the running sums of w and w·r in pw and pr (pw[i] sums sw
	// up to and including i), so that estimate finds the entries a query
	// takes by scanning from its ends and sums them by two subtractions.
	st     []int64
	sw     []float64
	pw, pr []float64
	na     []uint8
}

// rebaseAfter is how many time constants an entry may lie from its ring's
// base before the ring is rebased: exp(±300) is far inside float64's range
// (about exp(±709)), with room for sums of a ring's entries.
const rebaseAfter = 300

// add appends an empty ring and returns its index.
func (w *windows) add() int32 {
	s := int32(len(w.n))
	w.t = append(w.t, make([]int64, w.k)...)
	w.r = append(w.r, make([]float32, w.k)...)
	w.w = append(w.w, make([]float64, w.k)...)
	w.acc = append(w.acc, make([]bool, w.k)...)
	w.n = append(w.n, 0)
	w.head = append(w.head, 0)
	w.base = append(w.base, 0)
	w.st = append(w.st, make([]int64, w.k)...)
	w.sw = append(w.sw, make([]float64, w.k)...)
	w.pw = append(w.pw, make([]float64, w.k)...)
	w.pr = append(w.pr, make([]float64, w.k)...)
	w.na = append(w.na, 0)
	return s
}

// sortAccepted rebuilds ring s's accepted entries in time order (see
// windows.st) after a change.
func (w *windows) sortAccepted(s int32) {
	base := int(s) * w.k
	st, sw, pr := w.st[base:base+w.k], w.sw[base:base+w.k], w.pr[base:base+w.k]
	m := 0
	for i := range int(w.n[s]) {
		j := base + i
		if !w.acc[j] {
			continue
		}
		// Insertion: a ring holds at most groupWindow entries.
		t, x, r := w.t[j], w.w[j], float64(w.r[j])
		p := m
		for p > 0 && st[p-1] > t {
			st[p], sw[p], pr[p] = st[p-1], sw[p-1], pr[p-1]
			p--
		}
		st[p], sw[p], pr[p] = t, x, r
		m++
	}
	pw := w.pw[base : base+w.k]
	var cw, cr float64
	for i := range m {
		cw += sw[i]
		cr += sw[i] * pr[i]
		pw[i], pr[i] = cw, cr
	}
	w.na[s] = uint8(m)
}

// push records a value in ring s, overwriting the oldest when full.
func (w *windows) push(s int32, t int64, r float32, acc bool) {
	if w.n[s] == 0 {
		w.base[s] = t
	} else if d := float64(t-w.base[s]) / w.tau; d > rebaseAfter || d < -rebaseAfter {
		w.rebase(s, t)
	}
	i := int(s)*w.k + int(w.head[s])
	w.t[i], w.r[i], w.acc[i] = t, r, acc
	w.w[i] = math.Exp(float64(t-w.base[s]) / w.tau)
	w.head[s] = uint8((int(w.head[s]) + 1) % w.k)
	if int(w.n[s]) < w.k {
		w.n[s]++
	}
	w.sortAccepted(s)
}

// rebase makes t the base of ring s and recomputes its weights (an entry
// far older than t gets weight 0; estimate then computes exactly). Its
// caller, push, sorts the ring's accepted entries afterwards.
func (w *windows) rebase(s int32, t int64) {
	w.base[s] = t
	base := int(s) * w.k
	for i := range int(w.n[s]) {
		w.w[base+i] = math.Exp(float64(w.t[base+i]-t) / w.tau)
	}
}

// reference returns the median and MAD of the values of ring s within
// maxAge of t (accepted or not, so that a lasting change is learnt after a
// few rejections), and how many there were.
func (w *windows) reference(s int32, t, maxAge int64) (med, mad float64, n int) {
	var buf [groupWindow]float64
	base := int(s) * w.k
	for i := range int(w.n[s]) {
		d := t - w.t[base+i]
		if d < 0 {
			d = -d
		}
		if d <= maxAge {
			buf[n] = float64(w.r[base+i])
			n++
		}
	}
	x := buf[:n]
	slices.Sort(x)
	med = median(x)
	for i := range x {
		x[i] = math.Abs(x[i] - med)
	}
	slices.Sort(x)
	return med, median(x), n
}

// estimate returns, over the accepted values of ring s entered at or before
// now and less than maxAge before it, the recency-weighted sum Σ a_i r_i,
// the weight Σ a_i with a_i = exp(-(tmax - t_i)/tau), and the newest entry
// time tmax; ok is false when there is no such value. The values are a run
// of the ring's accepted entries in time order (windows.st), found by
// scanning from its ends, and their sums of stored weights w_i and w_i r_i are
// differences of running sums, divided by tmax's stored weight: a_i = w_i
// / w_max. estimateExact is the direct formula, used when a weight has
// underflowed. (A walk over the ring, an exponential per call, was 10 %
// of the CPU of ping ingest: most queries exclude the ring's newest
// values, ahead of the querying van's own time in a batch.)
func (w *windows) estimate(s int32, now, maxAge int64) (sum, wsum float64, tmax int64, ok bool) {
	base := int(s) * w.k
	st := w.st[base : base+int(w.na[s])]
	// Entries at or before now: [0, hi); too old: [0, lo). Scanned from
	// the ends, as a query leaves out few of a ring's entries, if any.
	hi := len(st)
	for hi > 0 && st[hi-1] > now {
		hi--
	}
	lo := 0
	for lo < hi && now-st[lo] >= maxAge {
		lo++
	}
	if lo >= hi {
		return 0, 0, 0, false
	}
	pw, pr := w.pw[base:], w.pr[base:]
	wsum, sum = pw[hi-1], pr[hi-1]
	if lo > 0 {
		wsum -= pw[lo-1]
		sum -= pr[lo-1]
	}
	e := w.sw[base+hi-1]
	if wsum <= 0 || e == 0 {
		return w.estimateExact(s, now, maxAge)
	}
	return sum / e, wsum / e, st[hi-1], true
}

// estimateExact is estimate computed from the entries' times alone.
func (w *windows) estimateExact(s int32, now, maxAge int64) (sum, wsum float64, tmax int64, ok bool) {
	base := int(s) * w.k
	m := int(w.n[s])
	for i := range m {
		j := base + i
		if w.acc[j] && w.t[j] <= now && now-w.t[j] < maxAge && (!ok || w.t[j] > tmax) {
			tmax, ok = w.t[j], true
		}
	}
	if !ok {
		return 0, 0, 0, false
	}
	for i := range m {
		j := base + i
		if w.acc[j] && w.t[j] <= now && now-w.t[j] < maxAge {
			a := math.Exp(-float64(tmax-w.t[j]) / w.tau)
			sum += a * float64(w.r[j])
			wsum += a
		}
	}
	return sum, wsum, tmax, true
}

// Traffic is the live traffic state of a network on top of a historical
// profile. Observations are screened and kept per edge and per (H3 cell,
// road class) group; Factor combines the profile with the live ratio. All
// methods are safe for concurrent use (one RWMutex: Observe writes, the
// queries read).
type Traffic struct {
	net  *graph.Network
	prof *Profile

	horizon, maxAge int64 // nanoseconds
	shrink          float64
	outlierZ        float64
	minOutlier      float64 // log of MinOutlierRatio

	group     []int32 // per edge: (cell, class) group
	groupCell []int32
	numCells  int
	wayIDs    []int64  // sorted distinct way ids
	wayStart  []int32  // wayEdges[wayStart[i]:wayStart[i+1]] lie on wayIDs[i]
	wayEdges  []uint32 // edges grouped by way
	nbStart   []int32  // nbList[nbStart[g]:nbStart[g+1]]: neighbour groups of g
	nbList    []int32

	mu        sync.RWMutex
	edgeSlot  []int32 // per edge: ring in ew, or -1
	ew        windows
	groupSlot []int32 // per group: ring in gw, or -1
	gw        windows
	closures  map[uint32]int64 // edge -> closed until (unix ns)
	stats     TrafficStats
}

// NewTraffic prepares live traffic for net on top of prof (nil: free flow
// is the historical baseline).
func NewTraffic(net *graph.Network, prof *Profile, opt TrafficOptions) (*Traffic, error) {
	if net == nil {
		return nil, errors.New("new traffic: nil network")
	}
	if prof != nil && len(prof.slot) != len(net.Edges) {
		return nil, fmt.Errorf("new traffic: profile has %d edges, network %d", len(prof.slot), len(net.Edges))
	}
	if opt.Location != nil && prof != nil && opt.Location.String() != prof.loc.String() {
		return nil, fmt.Errorf("new traffic: location %s differs from the profile's %s", opt.Location, prof.loc)
	}
	if opt.Horizon < 0 || opt.MaxAge < 0 || opt.Shrink < 0 || opt.OutlierZ < 0 || (opt.MinOutlierRatio != 0 && opt.MinOutlierRatio < 1) ||
		math.IsNaN(opt.Shrink) || math.IsNaN(opt.OutlierZ) || math.IsNaN(opt.MinOutlierRatio) {
		return nil, fmt.Errorf("new traffic: invalid options %+v", opt)
	}
	if opt.Horizon == 0 {
		opt.Horizon = 45 * time.Minute
	}
	if opt.MaxAge == 0 {
		opt.MaxAge = opt.Horizon
	}
	if opt.H3Resolution == 0 {
		opt.H3Resolution = DefaultH3Resolution
	}
	switch {
	case opt.Neighbors == 0:
		opt.Neighbors = 1
	case opt.Neighbors < 0:
		opt.Neighbors = 0
	}
	if opt.Shrink == 0 {
		opt.Shrink = 0.5
	}
	if opt.OutlierZ == 0 {
		opt.OutlierZ = 3.5
	}
	if opt.MinOutlierRatio == 0 {
		opt.MinOutlierRatio = 3
	}
	gr, err := edgeGroups(net, opt.H3Resolution)
	if err != nil {
		return nil, fmt.Errorf("new traffic: %w", err)
	}
	group, groupCell, cells := gr.group, gr.cell, len(gr.cells)
	tau := float64(opt.Horizon) / 3
	t := &Traffic{
		net: net, prof: prof,
		horizon: int64(opt.Horizon), maxAge: int64(opt.MaxAge),
		shrink: opt.Shrink, outlierZ: opt.OutlierZ, minOutlier: math.Log(opt.MinOutlierRatio),
		group: group, groupCell: groupCell, numCells: cells,
		edgeSlot:  make([]int32, len(net.Edges)),
		groupSlot: make([]int32, len(groupCell)),
		ew:        windows{k: edgeWindow, tau: tau},
		gw:        windows{k: groupWindow, tau: tau},
		closures:  make(map[uint32]int64),
	}
	for i := range t.edgeSlot {
		t.edgeSlot[i] = -1
	}
	for i := range t.groupSlot {
		t.groupSlot[i] = -1
	}
	// Neighbour groups: same class, cells within Neighbors rings.
	t.nbStart = make([]int32, 0, len(groupCell)+1)
	for g := range groupCell {
		t.nbStart = append(t.nbStart, int32(len(t.nbList)))
		if opt.Neighbors <= 0 {
			continue
		}
		own := gr.cells[groupCell[g]]
		for _, c := range h3.GridDisk(own, opt.Neighbors) {
			if c == own {
				continue
			}
			if n, ok := gr.index[groupKey{c, gr.class[g]}]; ok {
				t.nbList = append(t.nbList, n)
			}
		}
	}
	t.nbStart = append(t.nbStart, int32(len(t.nbList)))
	// Way index: edges sorted by way id.
	order := make([]uint32, len(net.Edges))
	for i := range order {
		order[i] = uint32(i)
	}
	slices.SortStableFunc(order, func(a, b uint32) int {
		wa, wb := net.Edges[a].WayID, net.Edges[b].WayID
		switch {
		case wa < wb:
			return -1
		case wa > wb:
			return 1
		}
		return 0
	})
	t.wayEdges = order
	for i, e := range order {
		w := net.Edges[e].WayID
		if i == 0 || w != t.wayIDs[len(t.wayIDs)-1] {
			t.wayIDs = append(t.wayIDs, w)
			t.wayStart = append(t.wayStart, int32(i))
		}
	}
	t.wayStart = append(t.wayStart, int32(len(order)))
	if opt.Logger != nil {
		opt.Logger.Info("eta: traffic ready", "edges", len(net.Edges), "groups", len(groupCell), "cells", cells,
			"ways", len(t.wayIDs), "horizon", opt.Horizon)
	}
	return t, nil
}

// Profile returns the historical profile the live state sits on (may be nil).
func (t *Traffic) Profile() *Profile { return t.prof }

// Network returns the road network.
func (t *Traffic) Network() *graph.Network { return t.net }

// Observe records one traversal. It returns a wrapped ErrUnknownEdge,
// ErrInvalid, ErrImplausible or ErrOutlier when the observation is not used
// (every rejection is counted in Stats). The outlier test compares the log
// ratio to the profile with the median and MAD of the edge's recent values,
// or of its (cell, class) group's when the edge has fewer than three; a
// rejected value is still remembered for later tests, so that a lasting
// change (an incident) is accepted after a few confirmations.
func (t *Traffic) Observe(o Observation) error {
	if int(o.Edge) >= len(t.net.Edges) || !validFreeFlow(t.net.Edges[o.Edge].Duration) {
		t.count(&t.stats.UnknownEdge)
		return fmt.Errorf("observe edge %d: %w", o.Edge, ErrUnknownEdge)
	}
	if !validTime(o.Time) || !(o.Duration > 0) || math.IsInf(o.Duration, 0) {
		t.count(&t.stats.Invalid)
		return fmt.Errorf("observe edge %d: duration %v at %v: %w", o.Edge, o.Duration, o.Time, ErrInvalid)
	}
	ed := &t.net.Edges[o.Edge]
	ratio := o.Duration / ed.Duration
	if ratio < minFactor || ratio > maxFactor || ed.Distance/o.Duration > maxSpeed {
		t.count(&t.stats.Implausible)
		return fmt.Errorf("observe edge %d: %.1f s for %.0f m (free flow %.1f s): %w", o.Edge, o.Duration, ed.Distance, ed.Duration, ErrImplausible)
	}
	r := math.Log(ratio / t.prof.Factor(o.Edge, o.Time))
	at := o.Time.UnixNano()
	g := t.group[o.Edge]

	t.mu.Lock()
	defer t.mu.Unlock()
	es := t.edgeSlot[o.Edge]
	gs := t.groupSlot[g]
	var med, mad float64
	n := 0
	if es >= 0 {
		med, mad, n = t.ew.reference(es, at, t.maxAge)
	}
	if n < 3 && gs >= 0 {
		med, mad, n = t.gw.reference(gs, at, t.maxAge)
	}
	ok := n < 3 || math.Abs(r-med) <= max(t.outlierZ*1.4826*mad, t.minOutlier)
	if es < 0 {
		es = t.ew.add()
		t.edgeSlot[o.Edge] = es
		t.stats.EdgesLive++
	}
	if gs < 0 {
		gs = t.gw.add()
		t.groupSlot[g] = gs
		t.stats.Groups++
	}
	t.ew.push(es, at, float32(r), ok)
	t.gw.push(gs, at, float32(r), ok)
	if !ok {
		t.stats.Outlier++
		return fmt.Errorf("observe edge %d: ratio %.2f to profile vs recent median %.2f: %w", o.Edge, math.Exp(r), math.Exp(med), ErrOutlier)
	}
	t.stats.Accepted++
	return nil
}

// Observation times must lie in [minTime, maxTime): outside, UnixNano
// overflows and the value is certainly a clock error.
var (
	minTime = time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC)
	maxTime = time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)
)

// validTime reports whether t is a usable observation time.
func validTime(t time.Time) bool {
	return !t.Before(minTime) && t.Before(maxTime)
}

// count increments a rejection counter under the lock.
func (t *Traffic) count(c *int) {
	t.mu.Lock()
	*c++
	t.mu.Unlock()
}

// WayEdges returns the edges of OSM way wayID (both directions of a two-way
// road), nil for an unknown way. The slice is the Traffic's own: read only.
func (t *Traffic) WayEdges(wayID int64) []uint32 {
	i, found := slices.BinarySearch(t.wayIDs, wayID)
	if !found {
		return nil
	}
	return t.wayEdges[t.wayStart[i]:t.wayStart[i+1]]
}

// ObserveWay records a speed (m/s) measured at time at on OSM way wayID as a
// traversal of every edge of the way (both directions of a two-way road) at
// that speed, and returns how many edges accepted it. An unknown way or an
// invalid speed is an error; when some edges reject the value (outliers,
// implausible for a short edge) the others still count, and the error is
// returned only when none accepted.
func (t *Traffic) ObserveWay(wayID int64, at time.Time, speed float64) (int, error) {
	edges := t.WayEdges(wayID)
	if edges == nil {
		t.count(&t.stats.UnknownWay)
		return 0, fmt.Errorf("observe way %d: %w", wayID, ErrUnknownWay)
	}
	if !validTime(at) || !(speed > 0) || math.IsInf(speed, 0) {
		t.count(&t.stats.Invalid)
		return 0, fmt.Errorf("observe way %d: speed %v at %v: %w", wayID, speed, at, ErrInvalid)
	}
	if speed > maxSpeed {
		t.count(&t.stats.Implausible)
		return 0, fmt.Errorf("observe way %d: speed %.1f m/s: %w", wayID, speed, ErrImplausible)
	}
	n := 0
	var first error
	for _, e := range edges {
		err := t.Observe(Observation{Edge: e, Time: at, Duration: t.net.Edges[e].Distance / speed})
		if err == nil {
			n++
		} else if first == nil {
			first = err
		}
	}
	if n == 0 {
		return 0, fmt.Errorf("observe way %d: %w", wayID, first)
	}
	return n, nil
}

// ObserveClosure marks edge e closed until the given time: Factor is +Inf
// for entering it before then. A zero until lifts the closure.
func (t *Traffic) ObserveClosure(e uint32, until time.Time) error {
	if int(e) >= len(t.net.Edges) {
		t.count(&t.stats.UnknownEdge)
		return fmt.Errorf("closure of edge %d: %w", e, ErrUnknownEdge)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if until.IsZero() {
		delete(t.closures, e)
	} else {
		t.closures[e] = until.UnixNano()
	}
	return nil
}

// ClosedAt returns the index in edges of the first edge closed at time
// at (ObserveClosure), or -1 when none is.
func (t *Traffic) ClosedAt(edges []uint32, at time.Time) int {
	an := at.UnixNano()
	t.mu.RLock()
	defer t.mu.RUnlock()
	if len(t.closures) == 0 {
		return -1
	}
	for i, e := range edges {
		if until, ok := t.closures[e]; ok && an < until {
			return i
		}
	}
	return -1
}

// decay is the weight of live information lag nanoseconds after it was
// observed: 1 at once, falling linearly to 0 at the horizon.
func (t *Traffic) decay(lag int64) float64 {
	if lag <= 0 {
		return 1
	}
	if lag >= t.horizon {
		return 0
	}
	return 1 - float64(lag)/float64(t.horizon)
}

// groupLive returns the current log ratio of group g and the newest
// observation time it rests on; ok is false without usable values. The
// group's own recency-weighted values are shrunk toward the pooled ratio of
// its neighbour groups (same class, adjacent cells), which is itself shrunk
// toward the profile; a group without values of its own takes the
// neighbours' ratio. The caller holds the lock.
func (t *Traffic) groupLive(g int32, now int64) (c float64, tmax int64, ok bool) {
	var nsum, nw float64
	var nt int64
	nok := false
	for _, n := range t.nbList[t.nbStart[g]:t.nbStart[g+1]] {
		s := t.groupSlot[n]
		if s < 0 {
			continue
		}
		if sum, w, tm, ok := t.gw.estimate(s, now, t.maxAge); ok {
			nsum += sum
			nw += w
			if !nok || tm > nt {
				nt = tm
			}
			nok = true
		}
	}
	var cn float64
	if nok {
		cn = nsum / (nw + t.shrink)
	}
	if s := t.groupSlot[g]; s >= 0 {
		if sum, w, tm, ok := t.gw.estimate(s, now, t.maxAge); ok {
			return (sum + t.shrink*cn) / (w + t.shrink), tm, true
		}
	}
	return cn, nt, nok
}

// liveLog returns the live log ratio to the profile for entering edge e at
// time at, predicted at now: the edge's recency-weighted recent values
// shrunk toward its group's ratio (or the group's ratio alone when the edge
// has none; see groupLive for the group's), times the linear decay for the lag from the newest value used
// to at. The caller holds the lock.
func (t *Traffic) liveLog(e uint32, now, at int64) float64 {
	c, gt, gok := t.groupLive(t.group[e], now)
	return t.edgeLive(e, now, at, c, gt, gok)
}

// edgeLive is liveLog given the group's ratio c, newest time gt and
// whether it has one (gok).
func (t *Traffic) edgeLive(e uint32, now, at int64, c float64, gt int64, gok bool) float64 {
	if s := t.edgeSlot[e]; s >= 0 {
		if sum, w, et, ok := t.ew.estimate(s, now, t.maxAge); ok {
			return (sum + t.shrink*c) / (w + t.shrink) * t.decay(at-et)
		}
	}
	if gok {
		return c * t.decay(at-gt)
	}
	return 0
}

// Factor returns the multiplier on the free-flow duration of edge e for a
// vehicle entering it at time at, as predicted at time now: the profile at
// at times the live ratio, which decays toward 1 as at - (time of the newest
// observation) grows and is gone after the horizon. The live ratio is the
// edge's own recent values shrunk toward its (cell, class) group's ratio,
// else the group's ratio, else that of the same class in the adjacent
// cells (see TrafficOptions.Shrink and Neighbors). Only observations made
// before MaxAge and at or before now count, so a replay must feed
// observations in time order. A closed edge gives +Inf; an unknown edge 1.
func (t *Traffic) Factor(e uint32, now, at time.Time) float64 {
	if int(e) >= len(t.net.Edges) {
		return 1
	}
	t.mu.RLock()
	f := t.factorLocked(e, now.UnixNano(), at, nil)
	t.mu.RUnlock()
	return f
}

// factorLocked is Factor with the read lock held.
// With a non-nil memo the group ratios are cached across calls with the
// same now.
func (t *Traffic) factorLocked(e uint32, now int64, at time.Time, memo *groupMemo) float64 {
	an := at.UnixNano()
	if len(t.closures) > 0 {
		if until, ok := t.closures[e]; ok && an < until {
			return math.Inf(1)
		}
	}
	var l float64
	switch {
	case an-now >= t.horizon:
		// Every value counted is at or before now, so all of them are
		// decayed: the profile alone (a 20-stop route enters most of its
		// edges beyond the horizon).
	case memo == nil:
		l = t.liveLog(e, now, an)
	default:
		g := t.group[e]
		i := int(g) % len(memo.g)
		if memo.g[i] != g {
			memo.g[i] = g
			memo.c[i], memo.t[i], memo.ok[i] = t.groupLive(g, now)
		}
		l = t.edgeLive(e, now, an, memo.c[i], memo.t[i], memo.ok[i])
	}
	f := t.prof.Factor(e, at)
	if l == 0 { // no live information, or all of it decayed
		return f
	}
	return f * math.Exp(l)
}

// groupMemo is a small direct-mapped cache of group ratios for one now
// (consecutive edges of a route mostly share groups).
type groupMemo struct {
	g  [32]int32
	c  [32]float64
	t  [32]int64
	ok [32]bool
}

// reset empties the memo.
func (m *groupMemo) reset() {
	for i := range m.g {
		m.g[i] = -1
	}
}

// Durations fills dst (grown or reused) with the travel time in seconds of
// every edge entered at now, for re-customising a routing graph; closed
// edges get +Inf.
func (t *Traffic) Durations(now time.Time, dst []float64) []float64 {
	m := len(t.net.Edges)
	if cap(dst) < m {
		dst = make([]float64, m)
	}
	dst = dst[:m]
	nn := now.UnixNano()
	t.mu.RLock()
	defer t.mu.RUnlock()
	// Group ratios once per group.
	type gl struct {
		c  float64
		t  int64
		ok bool
	}
	glive := make([]gl, len(t.groupSlot))
	for g := range glive {
		c, gt, ok := t.groupLive(int32(g), nn)
		glive[g] = gl{c, gt, ok}
	}
	bin := t.prof.Bin(now)
	for e := range m {
		ed := &t.net.Edges[e]
		f := 1.0
		if t.prof != nil {
			if s := t.prof.slot[e]; s >= 0 {
				f = float64(t.prof.table[int(s)*NumBins+bin])
			}
		}
		var l float64
		if g := &glive[t.group[e]]; g.ok || t.edgeSlot[e] >= 0 {
			l = t.edgeLive(uint32(e), nn, nn, g.c, g.t, g.ok)
		}
		if l != 0 {
			f *= math.Exp(l)
		}
		dst[e] = ed.Duration * f
	}
	for e, until := range t.closures {
		if nn < until {
			dst[e] = math.Inf(1)
		}
	}
	return dst
}

// Stats returns the counters.
func (t *Traffic) Stats() TrafficStats {
	t.mu.RLock()
	defer t.mu.RUnlock()
	s := t.stats
	s.Closures = len(t.closures)
	seen := make([]bool, t.numCells)
	for g, slot := range t.groupSlot {
		if slot >= 0 && !seen[t.groupCell[g]] {
			seen[t.groupCell[g]] = true
			s.Cells++
		}
	}
	return s
}
