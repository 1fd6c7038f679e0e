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

// errInput is wrapped by errors about bad arguments to Drive, Pings, Tour
// and ProbeTrips.
var errInput = errors.New("sim: invalid input")

// Drive is the truth trajectory of one vehicle along an edge path.
type Drive struct {
	// Edges is the path, first and last possibly partial, as a graph.Route
	// gives it.
	Edges []uint32
	// SrcFraction and DstFraction are the positions on the first and last
	// edge.
	SrcFraction, DstFraction float64
	// Enter is the time the vehicle enters each edge (its part of it); the
	// first is the departure. Edge i is left at Enter[i+1], the last at
	// Arrive.
	Enter []time.Time
	// Wait is the time the vehicle stood still at the start of each edge
	// because it was closed (included in the edge's traversal time).
	Wait []time.Duration
	// Arrive is the arrival at the destination.
	Arrive time.Time
}

// Exit returns the time the vehicle leaves edge i of the drive.
func (d *Drive) Exit(i int) time.Time {
	if i+1 < len(d.Enter) {
		return d.Enter[i+1]
	}
	return d.Arrive
}

// Part returns the fractions [a, b] of edge i the drive covers.
func (d *Drive) Part(i int) (a, b float64) {
	a, b = 0, 1
	if i == 0 {
		a = d.SrcFraction
	}
	if i == len(d.Edges)-1 {
		b = d.DstFraction
	}
	return a, b
}

// PositionAt returns the truth position of the vehicle at time t: the
// index i into Edges, the fraction along that edge, and the speed in edge
// lengths per second (multiply by the edge's Distance for m/s). The vehicle
// moves at constant speed within each edge's traversal after any wait at a
// closure (speed 0 while waiting). Times before the departure give the
// start, times after the arrival the destination (both at speed 0). d must
// be a Drive returned by World.Drive.
func (d *Drive) PositionAt(t time.Time) (i int, frac, speed float64) {
	if len(d.Edges) == 0 || len(d.Enter) != len(d.Edges) || len(d.Wait) != len(d.Edges) {
		return 0, 0, 0
	}
	if t.Before(d.Enter[0]) {
		return 0, d.SrcFraction, 0
	}
	if !t.Before(d.Arrive) {
		return len(d.Edges) - 1, d.DstFraction, 0
	}
	// Binary search for the last edge entered at or before t.
	lo, hi := 0, len(d.Edges)-1
	for lo < hi {
		mid := (lo + hi + 1) / 2
		if d.Enter[mid].After(t) {
			hi = mid - 1
		} else {
			lo = mid
		}
	}
	i = lo
	a, b := d.Part(i)
	moveFrom := d.Enter[i].Add(d.Wait[i])
	moving := d.Exit(i).Sub(moveFrom)
	if moving <= 0 {
		return i, b, 0
	}
	if !t.After(moveFrom) {
		return i, a, 0
	}
	return i, a + (b-a)*min(float64(t.Sub(moveFrom))/float64(moving), 1), (b - a) / moving.Seconds()
}

// secs converts seconds to a Duration, rounded to the nanosecond.
func secs(s float64) time.Duration { return time.Duration(math.Round(s * 1e9)) }

// noise returns a lognormal factor of mean 1 and log-σ sigma, or 1 when
// rng is nil or sigma is 0.
func noise(rng *rand.Rand, sigma float64) float64 {
	if rng == nil || sigma == 0 {
		return 1
	}
	return math.Exp(sigma*rng.NormFloat64() - sigma*sigma/2)
}

// checkPath validates an edge path as a graph.Route gives it.
func (w *World) checkPath(edges []uint32, srcFrac, dstFrac float64) error {
	n := w.net
	if len(edges) == 0 {
		return fmt.Errorf("%w: empty path", errInput)
	}
	if !(srcFrac >= 0 && srcFrac <= 1) || !(dstFrac >= 0 && dstFrac <= 1) {
		return fmt.Errorf("%w: fractions %v, %v not in [0,1]", errInput, srcFrac, dstFrac)
	}
	if len(edges) == 1 && srcFrac > dstFrac {
		return fmt.Errorf("%w: single-edge path from fraction %v back to %v", errInput, srcFrac, dstFrac)
	}
	for i, e := range edges {
		if int(e) >= len(n.Edges) {
			return fmt.Errorf("%w: path edge %d: %d out of range [0,%d)", errInput, i, e, len(n.Edges))
		}
		if i > 0 && n.Edges[edges[i-1]].To != n.Edges[e].From {
			return fmt.Errorf("%w: path edges %d and %d (%d, %d) are not consecutive", errInput, i-1, i, edges[i-1], e)
		}
	}
	return nil
}

// Drive follows edges (as a graph.Route gives them: the first entered at
// srcFrac, the last left at dstFrac) departing at t0. The part p of edge e
// entered at t takes p·Duration(e)·Factor(e, t)·ε seconds, ε the lognormal
// per-traversal noise of Config.NoiseSigma drawn from rng (rng nil: no
// noise). A vehicle reaching a closed edge waits at its start until the
// closure ends (the wait is recorded in Drive.Wait and counts in that
// edge's traversal time), then drives it at the factor in force then.
func (w *World) Drive(edges []uint32, srcFrac, dstFrac float64, t0 time.Time, rng *rand.Rand) (Drive, error) {
	if err := w.checkPath(edges, srcFrac, dstFrac); err != nil {
		return Drive{}, err
	}
	d := Drive{
		Edges: edges, SrcFraction: srcFrac, DstFraction: dstFrac,
		Enter: make([]time.Time, len(edges)),
		Wait:  make([]time.Duration, len(edges)),
	}
	t := t0
	for i, e := range edges {
		d.Enter[i] = t
		f := w.Factor(e, t)
		for k := 0; math.IsInf(f, 1) && k < 100; k++ {
			t = w.closedUntil(e, t)
			f = w.Factor(e, t)
		}
		if math.IsInf(f, 1) { // cannot happen: closures are finite
			return Drive{}, fmt.Errorf("sim: edge %d closed after 100 consecutive closures", e)
		}
		d.Wait[i] = t.Sub(d.Enter[i])
		a, b := d.Part(i)
		t = t.Add(secs((b - a) * w.net.Edges[e].Duration * f * noise(rng, w.cfg.NoiseSigma)))
	}
	d.Arrive = t
	return d, nil
}

// Ping is one GPS fix of a vehicle.
type Ping struct {
	Vehicle string
	Time    time.Time
	// Lat and Lon are the noisy position; Speed (m/s) and Heading (degrees
	// clockwise from north) are the truth.
	Lat, Lon, Speed, Heading float64
	// Edge and Fraction are the truth position.
	Edge     uint32
	Fraction float64
}

// Pings samples the position of d every interval from the departure up to
// the arrival (inclusive when it falls on the grid), along the edge shapes,
// moving at constant speed within each edge's traversal after any wait, and
// adds isotropic Gaussian noise of sigma metres per axis (rng nil: none).
// For reference, the Porto taxi traces in the shared data are sampled every
// 15 s; consumer GPS error is typically 3-10 m in the open and more in
// street canyons.
func (w *World) Pings(d Drive, vehicle string, interval time.Duration, sigma float64, rng *rand.Rand) ([]Ping, error) {
	if interval <= 0 {
		return nil, fmt.Errorf("%w: ping interval %v", errInput, interval)
	}
	if !finiteNonNeg(sigma) {
		return nil, fmt.Errorf("%w: ping sigma %v", errInput, sigma)
	}
	if err := w.checkPath(d.Edges, d.SrcFraction, d.DstFraction); err != nil {
		return nil, err
	}
	if len(d.Enter) != len(d.Edges) || len(d.Wait) != len(d.Edges) || d.Arrive.Before(d.Enter[0]) {
		return nil, fmt.Errorf("%w: drive times do not match its %d edges", errInput, len(d.Edges))
	}
	n := w.net
	out := make([]Ping, 0, int(d.Arrive.Sub(d.Enter[0])/interval)+1)
	for t := d.Enter[0]; !t.After(d.Arrive); t = t.Add(interval) {
		i, f, speed := d.PositionAt(t)
		e := d.Edges[i]
		lat, lon, h := edgeAt(n, e, f)
		if rng != nil && sigma > 0 {
			lat += rng.NormFloat64() * sigma / metresPerDegree
			lon += rng.NormFloat64() * sigma / (metresPerDegree * max(math.Cos(lat*math.Pi/180), 0.01))
		}
		out = append(out, Ping{Vehicle: vehicle, Time: t, Lat: lat, Lon: lon, Speed: speed * n.Edges[e].Distance, Heading: h, Edge: e, Fraction: f})
	}
	return out, nil
}

// Tour is the truth of one van tour.
type Tour struct {
	// Legs are the drives depot → stop 1 → … → stop n → depot (n+1 legs).
	Legs []Drive
	// Arrive and Depart are the truth times at each stop (n of each).
	Arrive, Depart []time.Time
	// Routes are the planned routes of the legs (static shortest paths).
	Routes []graph.Route
	// Service is the truth service time spent at each stop.
	Service []time.Duration
}

// Tour drives a van from depot at t0 through stops in the given order and
// back to the depot. Each leg follows the static shortest route of g (the
// plan; the van does not re-route around traffic or closures) through the
// truth traffic; at each stop the van spends service·ε, ε lognormal of
// mean 1 and σ Config.ServiceSigma (rng nil: exact times and no noise).
func (w *World) Tour(g *graph.Graph, depot graph.Endpoint, stops []graph.Endpoint, service time.Duration, t0 time.Time, rng *rand.Rand) (Tour, error) {
	if g == nil || g.Road != w.net {
		return Tour{}, fmt.Errorf("%w: graph is not built on the world's network", errInput)
	}
	if len(stops) == 0 {
		return Tour{}, fmt.Errorf("%w: tour without stops", errInput)
	}
	if service < 0 {
		return Tour{}, fmt.Errorf("%w: negative service time %v", errInput, service)
	}
	q := g.NewQuery()
	tr := Tour{
		Legs:    make([]Drive, 0, len(stops)+1),
		Routes:  make([]graph.Route, 0, len(stops)+1),
		Arrive:  make([]time.Time, len(stops)),
		Depart:  make([]time.Time, len(stops)),
		Service: make([]time.Duration, len(stops)),
	}
	t := t0
	prev := depot
	for i := 0; i <= len(stops); i++ {
		next := depot
		if i < len(stops) {
			next = stops[i]
		}
		r, err := q.Route(prev, next)
		if err != nil {
			return Tour{}, fmt.Errorf("sim: tour leg %d: %w", i, err)
		}
		d, err := w.Drive(r.Edges, r.SrcFraction, r.DstFraction, t, rng)
		if err != nil {
			return Tour{}, fmt.Errorf("sim: tour leg %d: %w", i, err)
		}
		tr.Legs = append(tr.Legs, d)
		tr.Routes = append(tr.Routes, r)
		t = d.Arrive
		if i < len(stops) {
			s := secs(service.Seconds() * noise(rng, w.cfg.ServiceSigma))
			tr.Arrive[i], tr.Service[i] = t, s
			t = t.Add(s)
			tr.Depart[i] = t
		}
		prev = next
	}
	return tr, nil
}

// endpointOn returns the endpoint at fraction f of edge e, with the
// opposite direction of a two-way road added as graph.Snapper would.
func endpointOn(g *graph.Graph, e uint32, f float64, twin func(uint32) (uint32, bool)) graph.Endpoint {
	lat, lon, _ := edgeAt(g.Road, e, f)
	ep := graph.Endpoint{Points: []graph.EdgePoint{{Edge: e, Fraction: f}}, Lat: lat, Lon: lon}
	if t, ok := twin(e); ok && g.Routable(t) {
		ep.Points = append(ep.Points, graph.EdgePoint{Edge: t, Fraction: 1 - f})
	}
	return ep
}

// candidates returns the routable edges that may hold a random endpoint:
// every routable edge but motorways and their links (no deliveries or
// pick-ups there), optionally only those whose start lies within radius
// metres of (lat, lon) (radius <= 0: anywhere).
func candidates(g *graph.Graph, lat, lon, radius float64) []uint32 {
	n := g.Road
	var out []uint32
	cos := math.Cos(lat * math.Pi / 180)
	for i, e := range n.Edges {
		if !g.Routable(uint32(i)) || e.Class == graph.ClassMotorway || e.Class == graph.ClassMotorwayLink {
			continue
		}
		if radius > 0 {
			dy := (n.Lat[e.From] - lat) * metresPerDegree
			dx := (n.Lon[e.From] - lon) * metresPerDegree * cos
			if dx*dx+dy*dy > radius*radius {
				continue
			}
		}
		out = append(out, uint32(i))
	}
	return out
}

// twinFinder returns a function finding the opposite edge of the same way
// between the same nodes, over an out-edge index of n built once.
func twinFinder(n *graph.Network) func(uint32) (uint32, bool) {
	first := make([]uint32, len(n.Lat)+1)
	for _, e := range n.Edges {
		first[e.From+1]++
	}
	for i := 1; i < len(first); i++ {
		first[i] += first[i-1]
	}
	out := make([]uint32, len(n.Edges))
	pos := append([]uint32(nil), first[:len(n.Lat)]...)
	for i, e := range n.Edges {
		out[pos[e.From]] = uint32(i)
		pos[e.From]++
	}
	return func(e uint32) (uint32, bool) {
		ed := n.Edges[e]
		for _, o := range out[first[ed.To]:first[ed.To+1]] {
			if oe := n.Edges[o]; oe.To == ed.From && oe.WayID == ed.WayID && o != e {
				return o, true
			}
		}
		return 0, false
	}
}

// RandomEndpoints returns n endpoints at uniformly random positions on
// uniformly drawn routable edges (motorways excluded, see candidates),
// with the opposite direction of two-way roads added. It needs no snapping.
// It returns nil when g has no candidate edge or n <= 0.
func RandomEndpoints(g *graph.Graph, n int, rng *rand.Rand) []graph.Endpoint {
	eps, _ := RandomEndpointsWithin(g, n, 0, 0, 0, rng)
	return eps
}

// RandomEndpointsWithin is RandomEndpoints restricted to edges starting
// within radius metres of (lat, lon); radius <= 0 means anywhere. It
// returns an error when no routable edge lies there.
func RandomEndpointsWithin(g *graph.Graph, n int, lat, lon, radius float64, rng *rand.Rand) ([]graph.Endpoint, error) {
	if g == nil || rng == nil {
		return nil, fmt.Errorf("%w: nil graph or rng", errInput)
	}
	if n <= 0 {
		return nil, nil
	}
	cand := candidates(g, lat, lon, radius)
	if len(cand) == 0 {
		return nil, fmt.Errorf("%w: no routable edge within %v m of (%v, %v)", errInput, radius, lat, lon)
	}
	twin := twinFinder(g.Road)
	out := make([]graph.Endpoint, n)
	for i := range out {
		out[i] = endpointOn(g, cand[rng.IntN(len(cand))], rng.Float64(), twin)
	}
	return out, nil
}

// probeHourWeight is the relative number of probe trips departing in each
// hour of the day: low at night, highest in the rush hours, as in taxi
// and floating-car data.
var probeHourWeight = [24]float64{
	0.3, 0.2, 0.15, 0.1, 0.1, 0.2, 0.5, 1.2, 1.6, 1.3, 1.0, 1.0,
	1.1, 1.1, 1.0, 1.0, 1.2, 1.5, 1.5, 1.2, 0.9, 0.7, 0.5, 0.4,
}

// ProbeTrips draws n trips of probe vehicles (taxis, floating cars) on day
// day: departures over the day with the hourly weights of probeHourWeight
// (uniform within the hour), origins and destinations from
// RandomEndpoints, at least 500 m apart in straight line where the network
// allows (else whatever was drawn after 20 tries), routed on g's static
// shortest paths and driven through the truth traffic with noise from rng.
// The drives are returned in departure order.
func (w *World) ProbeTrips(g *graph.Graph, day int, n int, rng *rand.Rand) ([]Drive, error) {
	if g == nil || g.Road != w.net {
		return nil, fmt.Errorf("%w: graph is not built on the world's network", errInput)
	}
	if day < 0 || day >= w.cfg.Days {
		return nil, fmt.Errorf("%w: day %d outside [0,%d)", errInput, day, w.cfg.Days)
	}
	if n < 0 || rng == nil {
		return nil, fmt.Errorf("%w: %d trips, rng %v", errInput, n, rng)
	}
	if n == 0 {
		return nil, nil
	}
	cand := candidates(g, 0, 0, 0)
	if len(cand) == 0 {
		return nil, fmt.Errorf("%w: graph has no candidate edge", errInput)
	}
	twin := twinFinder(g.Road)
	var cum [24]float64
	total := 0.0
	for h, x := range probeHourWeight {
		total += x
		cum[h] = total
	}
	deps := make([]time.Duration, n)
	for i := range deps {
		r := rng.Float64() * total
		h := 0
		for h < 23 && cum[h] <= r {
			h++
		}
		deps[i] = time.Duration(h)*time.Hour + time.Duration(rng.Float64()*float64(time.Hour))
	}
	slices.Sort(deps)
	midnight := w.cfg.Start.Add(time.Duration(day) * 24 * time.Hour)
	q := g.NewQuery()
	out := make([]Drive, 0, n)
	for _, dep := range deps {
		var src, dst graph.Endpoint
		for try := 0; try < 20; try++ {
			src = endpointOn(g, cand[rng.IntN(len(cand))], rng.Float64(), twin)
			dst = endpointOn(g, cand[rng.IntN(len(cand))], rng.Float64(), twin)
			dy := (src.Lat - dst.Lat) * metresPerDegree
			dx := (src.Lon - dst.Lon) * metresPerDegree * math.Cos(src.Lat*math.Pi/180)
			if dx*dx+dy*dy >= 500*500 {
				break
			}
		}
		r, err := q.Route(src, dst)
		if err != nil {
			return nil, fmt.Errorf("sim: probe trip: %w", err)
		}
		d, err := w.Drive(r.Edges, r.SrcFraction, r.DstFraction, midnight.Add(dep), rng)
		if err != nil {
			return nil, fmt.Errorf("sim: probe trip: %w", err)
		}
		out = append(out, d)
	}
	return out, nil
}
