package engine

import (
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lastmile/lastmile/engine/dispatch"
)

// trackHub wakes the live streams of open tracking pages: a page's stream
// by its shipment when the shipment's events commit or its thread
// changes, and by its van when the van's position changes. Streams of
// other replicas' changes are caught by each stream's slow poll.
type trackHub struct {
	mu        sync.Mutex
	shipments map[int64]map[*trackSub]struct{}
	vehicles  map[string]map[*trackSub]struct{}
	open      atomic.Int64 // open streams
	sent      atomic.Int64 // updates written

	// vans keeps per vehicle the last position shown and the road
	// travelled to it, computed once for all the pages watching it; pos
	// the latest position this process stored (as dispatch stores it:
	// the newest ping's matched position), so that a van's move reaches
	// its pages without a read per page.
	vmu  sync.Mutex
	vans map[string]*vanTrack
	pos  map[string]vanPos

	// rebuilds holds a token per full view rebuild under way: at most
	// trackRebuilds at once, so that pages refreshing together queue
	// behind each other instead of taking every read connection of the
	// store from the pings.
	rebuilds chan struct{}
}

// trackRebuilds is how many streams rebuild their view at once.
const trackRebuilds = 2

// vanPos is a vehicle's position [lon, lat] at Unix ms.
type vanPos struct {
	loc [2]float64
	ms  int64
}

// Wake reasons, bits of trackSub.flags.
const (
	wakeFull uint32 = 1 << iota // the shipment changed: rebuild the view
	wakeVan                     // the van moved
)

// trackSub is one open tracking-page stream.
type trackSub struct {
	wake     chan struct{} // capacity 1: a wake pending
	flags    atomic.Uint32
	shipment int64
	vehicle  string // "" while the page follows no van
}

// vanTrack is a vehicle's last position shown to pages and the road path
// from the one before.
type vanTrack struct {
	loc  [2]float64
	t    int64
	path [][2]float64
}

func newTrackHub() *trackHub {
	return &trackHub{shipments: map[int64]map[*trackSub]struct{}{}, vehicles: map[string]map[*trackSub]struct{}{},
		vans: map[string]*vanTrack{}, pos: map[string]vanPos{}, rebuilds: make(chan struct{}, trackRebuilds)}
}

// jittered returns d plus up to a third of d at random, so that streams
// opened together do not keep refreshing together.
func jittered(d time.Duration) time.Duration {
	return d + rand.N(d/3+1)
}

// position returns the vehicle's latest position stored by this process.
func (h *trackHub) position(vehicle string) (vanPos, bool) {
	h.vmu.Lock()
	defer h.vmu.Unlock()
	p, ok := h.pos[vehicle]
	return p, ok
}

func (h *trackHub) add(sub *trackSub) {
	h.mu.Lock()
	defer h.mu.Unlock()
	m := h.shipments[sub.shipment]
	if m == nil {
		m = map[*trackSub]struct{}{}
		h.shipments[sub.shipment] = m
	}
	m[sub] = struct{}{}
	if sub.vehicle != "" {
		h.addVehicle(sub)
	}
	h.open.Add(1)
}

func (h *trackHub) addVehicle(sub *trackSub) {
	m := h.vehicles[sub.vehicle]
	if m == nil {
		m = map[*trackSub]struct{}{}
		h.vehicles[sub.vehicle] = m
	}
	m[sub] = struct{}{}
}

func (h *trackHub) dropVehicle(sub *trackSub) {
	if m := h.vehicles[sub.vehicle]; m != nil {
		delete(m, sub)
		if len(m) == 0 {
			delete(h.vehicles, sub.vehicle)
		}
	}
}

func (h *trackHub) remove(sub *trackSub) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if m := h.shipments[sub.shipment]; m != nil {
		delete(m, sub)
		if len(m) == 0 {
			delete(h.shipments, sub.shipment)
		}
	}
	if sub.vehicle != "" {
		h.dropVehicle(sub)
	}
	h.open.Add(-1)
}

// follow makes sub follow vehicle ("" for none).
func (h *trackHub) follow(sub *trackSub, vehicle string) {
	if sub.vehicle == vehicle {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if sub.vehicle != "" {
		h.dropVehicle(sub)
	}
	sub.vehicle = vehicle
	if vehicle != "" {
		h.addVehicle(sub)
	}
}

func (sub *trackSub) signal(flag uint32) {
	sub.flags.Or(flag)
	select {
	case sub.wake <- struct{}{}:
	default:
	}
}

// wakeShipments wakes the pages of these shipments.
func (h *trackHub) wakeShipments(ids []int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, id := range ids {
		for sub := range h.shipments[id] {
			sub.signal(wakeFull)
		}
	}
}

// wakeVehicles wakes the pages following these vehicles.
func (h *trackHub) wakeVehicles(ids []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, id := range ids {
		for sub := range h.vehicles[id] {
			sub.signal(wakeVan)
		}
	}
}

// watched reports whether any page follows the vehicle.
func (h *trackHub) watched(vehicle string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.vehicles[vehicle]) > 0
}

// maxVanPath is the longest move (m) drawn along the road; a longer one
// (a van seen after a gap) jumps.
const maxVanPath = 3000

// vanPath returns the road path by which the vehicle came to loc at t,
// computed once per position with route (nil when it jumped).
func (h *trackHub) vanPath(vehicle string, loc [2]float64, t int64, route func(a, b [2]float64) [][2]float64) [][2]float64 {
	h.vmu.Lock()
	v := h.vans[vehicle]
	if v != nil && v.t == t && v.loc == loc {
		p := v.path
		h.vmu.Unlock()
		return p
	}
	h.vmu.Unlock()
	var path [][2]float64
	if v != nil && v.t < t && v.loc != loc && approxMetres(v.loc, loc) < maxVanPath && route != nil {
		path = route(v.loc, loc)
	}
	h.vmu.Lock()
	if len(h.vans) > 100_000 {
		clear(h.vans)
	}
	h.vans[vehicle] = &vanTrack{loc: loc, t: t, path: path}
	h.vmu.Unlock()
	return path
}

// approxMetres is the equirectangular distance between two [lon, lat]
// points, good to a fraction of a percent over a few kilometres.
func approxMetres(a, b [2]float64) float64 {
	const r = 6371008.8
	lat := (a[1] + b[1]) / 2 * math.Pi / 180
	dx := (b[0] - a[0]) * math.Pi / 180 * math.Cos(lat)
	dy := (b[1] - a[1]) * math.Pi / 180
	return r * math.Hypot(dx, dy)
}

// trackLimiter limits requests per client address with a token bucket
// per address: Burst requests at once, refilled at Rate per second.
// Addresses idle for a minute are forgotten.
type trackLimiter struct {
	mu      sync.Mutex
	rate    float64
	burst   float64
	buckets map[string]*bucket
	swept   time.Time
}

type bucket struct {
	tokens float64
	at     time.Time
}

func newTrackLimiter(rate, burst float64) *trackLimiter {
	return &trackLimiter{rate: rate, burst: burst, buckets: map[string]*bucket{}}
}

// allow takes a token for addr at now; false when none is left.
func (l *trackLimiter) allow(addr string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.swept) > time.Minute {
		for k, b := range l.buckets {
			if now.Sub(b.at) > time.Minute {
				delete(l.buckets, k)
			}
		}
		l.swept = now
	}
	b := l.buckets[addr]
	if b == nil {
		b = &bucket{tokens: l.burst, at: now}
		l.buckets[addr] = b
	}
	b.tokens = min(l.burst, b.tokens+now.Sub(b.at).Seconds()*l.rate)
	b.at = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// wakeVans wakes the tracking pages that follow the vehicles of pings.
func (s *Server) wakeVans(pings []dispatch.Ping) {
	if s.hub.open.Load() == 0 {
		return
	}
	var ids []string
	s.hub.vmu.Lock()
	for i := range pings {
		p := &pings[i]
		if !slices.Contains(ids, p.Vehicle) {
			ids = append(ids, p.Vehicle)
		}
		loc := p.Location
		if p.MatchedOK {
			loc = p.Matched
		}
		if ms := p.Time.UnixMilli(); ms > s.hub.pos[p.Vehicle].ms {
			s.hub.pos[p.Vehicle] = vanPos{loc, ms}
		}
	}
	if len(s.hub.pos) > 100_000 {
		clear(s.hub.pos)
	}
	s.hub.vmu.Unlock()
	s.hub.wakeVehicles(ids)
}
