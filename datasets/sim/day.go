package sim

import (
	"cmp"
	"container/heap"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/lastmile/lastmile/graph"
)

// A simulated delivery day comes in two phases, because the server under
// test (not the simulator) decides which van serves which stop and in what
// order:
//
//  1. NewDay draws the demand of one day of a World: a depot, vans with
//     their shifts, shipments at random positions around the depot with
//     promised time windows and fake recipients. The windows are set
//     around the arrivals of a cheap reference plan (Day.Plan), so that
//     they are satisfiable.
//  2. Day.Run drives the plan the server made (which van serves which
//     shipments in which order) through the World's truth traffic and
//     records the ground truth a test grades the server against: every
//     van's trajectory and GPS pings, arrivals, service, outcomes, the
//     stops a van drove past before serving them, and one road closure
//     that forces a detour. Day.RunReplanned does the same while the
//     drivers follow the re-routes the server sends during the day,
//     without changing the truth before each re-route takes effect.
//
// Both phases are pure functions of their inputs: every random draw comes
// from a math/rand/v2 PCG stream seeded by DayConfig.Seed and a stream tag,
// one stream per purpose (and per van, leg or shipment where they must not
// depend on each other), so that for example the truth of a van's later
// legs does not change when an earlier leg takes a detour.

// Random stream tags of a day (the high bits of the PCG's second seed).
const (
	dayStreamStops = iota + 0xda7
	dayStreamRecipients
	dayStreamNotHome
	dayStreamWindows
	dayStreamIncident
	dayStreamService // + shipment
	dayStreamGPS     // + van
	dayStreamLeg     // + van<<20 + leg
	// dayStreamReplanLeg tags the legs replans changed (see
	// Day.replanLegRand).
	dayStreamReplanLeg
)

// Tuning of the day's construction (see DayConfig and Day.Run).
const (
	// minStopEdges is the number of candidate roads within
	// DayConfig.Radius below which stops are drawn on the whole network.
	minStopEdges = 100
	// depotSnapRadius bounds the distance from the depot coordinate to
	// its road, in metres.
	depotSnapRadius = 10000
	// windowSlot is the grid promised windows start on.
	windowSlot = 30 * time.Minute
	// maxWindowShift is the largest random advance of a window's start
	// before the slot of the estimated arrival.
	maxWindowShift = 60 * time.Minute
	// driveByMinGap is the smallest straight-line distance in metres
	// between a drive-by stop and the depot or any stop its van serves
	// before it, so that no earlier dwell happens near it.
	driveByMinGap = 150
	// driveByMaxExtra is the largest extra free-flow time in seconds the
	// pass by a drive-by stop may add to its leg.
	driveByMaxExtra = 180
	// driveByRadius is the distance in metres from a drive-by stop within
	// which the van may spend at most 1.2 ping intervals or driveByMinNear
	// seconds, whichever is longer (expected), and driveByLook how far
	// before and after the pass that is measured.
	driveByRadius  = 30
	driveByMinNear = 12
	driveByLook    = 2 * time.Minute
	// closureMinExtra and closureMaxExtra delimit the preferred extra
	// free-flow time in seconds of the detour around the closure.
	closureMinExtra, closureMaxExtra = 60, 900
	// closureMaxLength bounds the directed length in metres of the
	// closed way (both directions counted) and closureMaxEdges its edges.
	closureMaxLength = 2000
	closureMaxEdges  = 64
	// closureEvaluations bounds the candidate ways whose detour is
	// computed.
	closureEvaluations = 80
	// closureLeadMin and closureLeadMax delimit how long before the
	// affected van reaches the closure it starts.
	closureLeadMin, closureLeadMax = 20 * time.Minute, 40 * time.Minute
	// bridgeSearchLimit bounds the nodes a search visits to find a way
	// around a closed edge (the closure must not cut the network).
	bridgeSearchLimit = 20000
)

// DayConfig configures NewDay. Zero values mean the defaults given per
// field; where zero is a meaningful value too, a negative value selects it
// (documented per field).
type DayConfig struct {
	// Seed makes the day reproducible: the same World, graph and DayConfig
	// give the same Day, and the same Day and plan the same DayTruth. It
	// is independent of the World's Config.Seed (0 is a valid seed).
	Seed uint64
	// Date is midnight UTC of the simulated day. It must be one of the
	// World's days (World.Start plus a whole number of days below
	// World.Days), so that the day's congestion and incidents apply. Zero
	// means the World's first day.
	Date time.Time
	// Vans is the number of vans (default 10), named "van-1", "van-2", …
	Vans int
	// Shipments is the number of shipments, one stop each (default 300).
	Shipments int
	// DepotLat and DepotLon locate the depot, snapped to the nearest
	// routable road that is not a motorway within 10 km. Both zero means
	// the centre of the network's bounding box.
	DepotLat, DepotLon float64
	// Radius is the distance in metres from the depot within which stops
	// are drawn (default 4000): stops lie on routable non-motorway roads
	// whose start node is that close. When fewer than 100 roads lie there
	// (a small network, or a depot at its edge) they are drawn on the
	// whole network instead.
	Radius float64
	// ShiftStart is the start of every van's shift after midnight
	// (default 8 h) and ShiftLength its length (default 10 h); the shift
	// must end by midnight.
	ShiftStart, ShiftLength time.Duration
	// WindowLength is the length of every promised delivery window
	// (default 2 h, at most ShiftLength).
	WindowLength time.Duration
	// Service is the nominal service time of every stop (default 4 min).
	// The truth service is Service·ε, ε lognormal of mean 1 and σ the
	// World's Config.ServiceSigma.
	Service time.Duration
	// PingInterval is the time between two GPS pings of a van (default
	// 10 s).
	PingInterval time.Duration
	// GPSSigma is the standard deviation in metres of the Gaussian GPS
	// error per axis (default 5; negative: exact positions).
	GPSSigma float64
	// NotHome is the number of recipients who are not at home: the driver
	// reports those shipments failed with reason not_home (default 2;
	// negative: none).
	NotHome int
	// DriveBys is the number of stops a van drives past earlier in its
	// tour before serving them (default 3; negative: none). Fewer are made
	// when the plan offers no suitable leg (see Day.Run).
	DriveBys int
	// NoIncident turns off the road closure Day.Run puts on one van's
	// planned route (default: one closure).
	NoIncident bool
	// DepotPings is how long before its departure a van already pings,
	// standing at the depot (the driver's phone on while loading; default
	// 0: pings start at the departure).
	DepotPings time.Duration
}

// withDefaults returns c with the defaults of the zero fields filled in.
func (c DayConfig) withDefaults(w *World) DayConfig {
	if c.Date.IsZero() {
		c.Date = w.Start()
	}
	setInt := func(v *int, def int) {
		if *v == 0 {
			*v = def
		}
	}
	setDur := func(v *time.Duration, def time.Duration) {
		if *v == 0 {
			*v = def
		}
	}
	setInt(&c.Vans, 10)
	setInt(&c.Shipments, 300)
	setInt(&c.NotHome, 2)
	setInt(&c.DriveBys, 3)
	c.NotHome, c.DriveBys = max(c.NotHome, 0), max(c.DriveBys, 0)
	if c.Radius == 0 {
		c.Radius = 4000
	}
	setDur(&c.ShiftStart, 8*time.Hour)
	setDur(&c.ShiftLength, 10*time.Hour)
	setDur(&c.WindowLength, 2*time.Hour)
	setDur(&c.Service, 4*time.Minute)
	setDur(&c.PingInterval, 10*time.Second)
	switch {
	case c.GPSSigma == 0:
		c.GPSSigma = 5
	case c.GPSSigma < 0:
		c.GPSSigma = 0
	}
	return c
}

// validate reports the first invalid field of c (defaults applied).
func (c *DayConfig) validate(w *World) error {
	bad := func(field string, v any) error { return fmt.Errorf("%w: DayConfig.%s = %v", errConfig, field, v) }
	off := c.Date.Sub(w.Start())
	switch {
	case off < 0 || off%day != 0 || int(off/day) >= w.Days():
		return bad("Date", fmt.Sprintf("%v (not a midnight among the world's %d days from %v)", c.Date, w.Days(), w.Start()))
	case c.Vans < 1 || c.Vans > 10000:
		return bad("Vans", c.Vans)
	case c.Shipments < 1 || c.Shipments > 1000000:
		return bad("Shipments", c.Shipments)
	case !(c.DepotLat >= -90 && c.DepotLat <= 90) || !(c.DepotLon >= -180 && c.DepotLon <= 180):
		return bad("DepotLat/DepotLon", [2]float64{c.DepotLat, c.DepotLon})
	case !(c.Radius > 0) || math.IsInf(c.Radius, 0):
		return bad("Radius", c.Radius)
	case c.ShiftStart < 0 || c.ShiftLength <= 0 || c.ShiftStart+c.ShiftLength > day:
		return bad("ShiftStart/ShiftLength", [2]time.Duration{c.ShiftStart, c.ShiftLength})
	case c.WindowLength <= 0 || c.WindowLength > c.ShiftLength:
		return bad("WindowLength", c.WindowLength)
	case c.Service < 0:
		return bad("Service", c.Service)
	case c.PingInterval < 0:
		return bad("PingInterval", c.PingInterval)
	case c.DepotPings < 0 || c.DepotPings > c.ShiftStart:
		return bad("DepotPings", c.DepotPings)
	case math.IsNaN(c.GPSSigma) || math.IsInf(c.GPSSigma, 0) || c.GPSSigma > 1000:
		return bad("GPSSigma", c.GPSSigma)
	case c.NotHome > c.Shipments:
		return bad("NotHome", fmt.Sprintf("%d (more than the %d shipments)", c.NotHome, c.Shipments))
	}
	return nil
}

// Depot is where every van starts and ends its tour.
type Depot struct {
	// Endpoint is the depot's position on the road graph (one point per
	// direction of its road); Lat and Lon repeat its snapped position.
	Endpoint graph.Endpoint
	Lat, Lon float64
}

// Van is one delivery vehicle of the day.
type Van struct {
	// ID is "van-1", "van-2", … in index order.
	ID string
	// ShiftStart and ShiftEnd delimit its working time (the same for every
	// van: the day's Date plus DayConfig.ShiftStart and ShiftLength).
	ShiftStart, ShiftEnd time.Time
}

// Recipient is the fake addressee of a shipment.
type Recipient struct {
	// Name is a first and a last name; Phone a Portuguese mobile number
	// ("+3519" and 8 digits); Email an address under example.test, unique
	// per shipment; Language "pt" or "en" (the names follow it).
	Name, Phone, Email, Language string
}

// Shipment is one parcel to deliver at one stop.
type Shipment struct {
	// Tracking is "SIM0001", "SIM0002", … in index order.
	Tracking string
	// Lat and Lon are the stop's position on its road; Endpoint the same
	// position on the road graph (one point per direction of the road).
	Lat, Lon float64
	Endpoint graph.Endpoint
	// WindowStart and WindowEnd delimit the promised delivery window:
	// WindowEnd-WindowStart = DayConfig.WindowLength, both inside the
	// vans' shift.
	WindowStart, WindowEnd time.Time
	// Service is the nominal service time (DayConfig.Service).
	Service time.Duration
	// Recipient is the fake addressee.
	Recipient Recipient
	// NotHome marks a recipient who is not at home: the driver reports the
	// shipment failed with reason not_home after the service time.
	NotHome bool
}

// Day is the demand of one simulated delivery day over a World, drawn by
// NewDay. It is immutable after NewDay (Run does not modify it) and safe
// for concurrent use.
type Day struct {
	// Config is the configuration with its defaults applied.
	Config DayConfig
	// Depot is where the vans start and end.
	Depot Depot
	// Vans are the vehicles, Config.Vans of them.
	Vans []Van
	// Shipments are the day's parcels, Config.Shipments of them.
	Shipments []Shipment
	// Plan is the reference plan the windows were built from: Plan[v] is
	// van v's sequence of shipment indices, every shipment exactly once
	// (angular sectors around the depot, each ordered by nearest
	// neighbour). A test can drive it with Run when no server plans.
	Plan [][]int
	// Estimate is each shipment's arrival in Plan with the day's expected
	// truth traffic (congestion and incidents, no noise), leaving the
	// depot at the shift start; its window contains it.
	Estimate []time.Time

	w *World
	g *graph.Graph
}

// NewDay draws the demand of one day of w on g (which must be built on
// w's network) as configured by cfg; see DayConfig for the parameters
// and their defaults.
//
// Stops are uniform over the candidate roads (routable, no motorways)
// around the depot and uniform along each road. Promised windows come from
// a reference plan (Day.Plan): the shipments are split into Vans angular
// sectors around the depot of equal size, each sector is ordered by a
// nearest-neighbour tour from the depot on free-flow durations, and the
// tour is driven through the day's expected truth traffic (World.Drive
// without noise: congestion and incidents of the day) from the shift
// start with the nominal service at each stop. A stop's window starts at
// its estimated arrival rounded down to a 30-minute slot, moved earlier by
// 0, 30 or 60 minutes at random (fewer when the window is shorter than
// 90 minutes), then clipped into the shift; the estimate always lies
// inside its window. NewDay fails when a reference tour does not return
// to the depot by the end of the shift (raise Vans or ShiftLength).
func NewDay(w *World, g *graph.Graph, cfg DayConfig) (*Day, error) {
	if w == nil || g == nil || g.Road != w.Network() {
		return nil, fmt.Errorf("%w: NewDay needs a world and a graph built on its network", errInput)
	}
	cfg = cfg.withDefaults(w)
	if err := cfg.validate(w); err != nil {
		return nil, err
	}
	d := &Day{Config: cfg, w: w, g: g}
	if err := d.placeDepot(); err != nil {
		return nil, err
	}
	shiftStart := cfg.Date.Add(cfg.ShiftStart)
	shiftEnd := shiftStart.Add(cfg.ShiftLength)
	d.Vans = make([]Van, cfg.Vans)
	for v := range d.Vans {
		d.Vans[v] = Van{ID: fmt.Sprintf("van-%d", v+1), ShiftStart: shiftStart, ShiftEnd: shiftEnd}
	}
	if err := d.drawShipments(); err != nil {
		return nil, err
	}
	if err := d.planWindows(); err != nil {
		return nil, err
	}
	return d, nil
}

// World returns the world the day was drawn in (without the closure that
// Run adds; see DayTruth.World).
func (d *Day) World() *World { return d.w }

// Graph returns the road graph of the day.
func (d *Day) Graph() *graph.Graph { return d.g }

// rand returns the day's random stream of the given tag and index.
func (d *Day) rand(tag, index uint64) *rand.Rand {
	return rand.New(rand.NewPCG(d.Config.Seed, tag<<40|index))
}

// stopEdge reports whether edge e may hold a depot or a stop: routable and
// not a motorway (as candidates decides).
func stopEdge(g *graph.Graph, e uint32) bool {
	c := g.Road.Edges[e].Class
	return g.Routable(e) && c != graph.ClassMotorway && c != graph.ClassMotorwayLink
}

// placeDepot snaps the configured depot, or the centre of the network's
// bounding box, to the nearest candidate road.
func (d *Day) placeDepot() error {
	n := d.g.Road
	lat, lon := d.Config.DepotLat, d.Config.DepotLon
	if lat == 0 && lon == 0 {
		minLat, maxLat := math.Inf(1), math.Inf(-1)
		minLon, maxLon := math.Inf(1), math.Inf(-1)
		for i := range n.Lat {
			minLat, maxLat = min(minLat, n.Lat[i]), max(maxLat, n.Lat[i])
			minLon, maxLon = min(minLon, n.Lon[i]), max(maxLon, n.Lon[i])
		}
		lat, lon = (minLat+maxLat)/2, (minLon+maxLon)/2
	}
	sn := graph.NewSnapper(n, func(e uint32) bool { return stopEdge(d.g, e) })
	ep, _, err := sn.Snap(lat, lon, depotSnapRadius)
	if err != nil {
		return fmt.Errorf("%w: depot (%v, %v): %w", errInput, lat, lon, err)
	}
	d.Depot = Depot{Endpoint: ep, Lat: ep.Lat, Lon: ep.Lon}
	return nil
}

// drawShipments draws the stops, recipients and not-home shipments.
func (d *Day) drawShipments() error {
	cfg := &d.Config
	g := d.g
	cand := candidates(g, d.Depot.Lat, d.Depot.Lon, cfg.Radius)
	if len(cand) < minStopEdges {
		cand = candidates(g, 0, 0, 0)
	}
	cand = slices.DeleteFunc(cand, func(e uint32) bool {
		return slices.ContainsFunc(d.Depot.Endpoint.Points, func(p graph.EdgePoint) bool { return p.Edge == e })
	})
	if len(cand) == 0 {
		return fmt.Errorf("%w: no road for stops", errInput)
	}
	twin := twinFinder(g.Road)
	stops := d.rand(dayStreamStops, 0)
	people := d.rand(dayStreamRecipients, 0)
	d.Shipments = make([]Shipment, cfg.Shipments)
	for i := range d.Shipments {
		ep := stopEndpoint(g, cand[stops.IntN(len(cand))], stops.Float64(), twin)
		d.Shipments[i] = Shipment{
			Tracking:  fmt.Sprintf("SIM%04d", i+1),
			Lat:       ep.Lat,
			Lon:       ep.Lon,
			Endpoint:  ep,
			Service:   cfg.Service,
			Recipient: fakeRecipient(people, i),
		}
	}
	for _, i := range d.rand(dayStreamNotHome, 0).Perm(cfg.Shipments)[:cfg.NotHome] {
		d.Shipments[i].NotHome = true
	}
	return nil
}

// stopEndpoint returns the endpoint at fraction f of edge e, with the
// opposite direction of the road when it is routable and runs over the
// same geometry (endpointOn adds any edge of the same way between the same
// nodes, which may be a different carriageway).
func stopEndpoint(g *graph.Graph, e uint32, f float64, twin func(uint32) (uint32, bool)) graph.Endpoint {
	lat, lon, _ := edgeAt(g.Road, e, f)
	ep := graph.Endpoint{Points: []graph.EdgePoint{{Edge: e, Fraction: f}}, Lat: lat, Lon: lon}
	if t, ok := twin(e); ok && g.Routable(t) {
		tlat, tlon, _ := edgeAt(g.Road, t, 1-f)
		if groundDist(lat, lon, tlat, tlon) < 0.5 {
			ep.Points = append(ep.Points, graph.EdgePoint{Edge: t, Fraction: 1 - f})
		}
	}
	return ep
}

// Fake names, ASCII only so that e-mail addresses need no folding.
var (
	namesPT = [2][]string{
		{"Ana", "Beatriz", "Carla", "Diana", "Ines", "Joana", "Mariana", "Rita", "Sofia", "Teresa",
			"Andre", "Bruno", "Diogo", "Joao", "Luis", "Miguel", "Nuno", "Pedro", "Rui", "Tiago"},
		{"Silva", "Santos", "Ferreira", "Pereira", "Oliveira", "Costa", "Rodrigues", "Martins", "Sousa", "Fernandes",
			"Goncalves", "Gomes", "Lopes", "Marques", "Alves", "Almeida", "Ribeiro", "Pinto", "Carvalho", "Teixeira"},
	}
	namesEN = [2][]string{
		{"Emma", "Olivia", "Amelia", "Grace", "Lucy", "Hannah", "Chloe", "Sarah",
			"Jack", "Oliver", "Harry", "George", "Thomas", "James", "Daniel", "William"},
		{"Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson", "Johnson", "Davies",
			"Evans", "Walker", "Wright", "Thompson", "Clarke", "Hughes", "Edwards", "Green"},
	}
)

// fakeRecipient draws the recipient of shipment i: Portuguese three times
// in four, English otherwise.
func fakeRecipient(rng *rand.Rand, i int) Recipient {
	lang, names := "pt", namesPT
	if rng.IntN(4) == 0 {
		lang, names = "en", namesEN
	}
	first := names[0][rng.IntN(len(names[0]))]
	last := names[1][rng.IntN(len(names[1]))]
	// Portuguese mobile prefixes 91, 92, 93 and 96, then 7 digits.
	phone := fmt.Sprintf("+3519%c%07d", "1236"[rng.IntN(4)], rng.IntN(10000000))
	return Recipient{
		Name:     first + " " + last,
		Phone:    phone,
		Email:    fmt.Sprintf("%s.%s.%04d@example.test", strings.ToLower(first), strings.ToLower(last), i+1),
		Language: lang,
	}
}

// planWindows builds the reference plan, estimates its arrivals and sets
// the promised windows around them (see NewDay).
func (d *Day) planWindows() error {
	cfg := &d.Config
	n := len(d.Shipments)
	// Angular sectors of equal size around the depot.
	cos := math.Cos(d.Depot.Lat * math.Pi / 180)
	angle := make([]float64, n)
	for i, s := range d.Shipments {
		angle[i] = math.Atan2(s.Lat-d.Depot.Lat, (s.Lon-d.Depot.Lon)*cos)
	}
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int { return cmp.Compare(angle[a], angle[b]) })
	d.Plan = make([][]int, cfg.Vans)
	at := 0
	for v := range d.Plan {
		size := n / cfg.Vans
		if v < n%cfg.Vans {
			size++
		}
		group := idx[at : at+size]
		at += size
		order, err := d.nearestNeighbour(group)
		if err != nil {
			return err
		}
		d.Plan[v] = order
	}
	// Expected arrivals along the reference tours.
	d.Estimate = make([]time.Time, n)
	q := d.g.NewQuery()
	shiftStart := d.Vans[0].ShiftStart
	shiftEnd := d.Vans[0].ShiftEnd
	for v, order := range d.Plan {
		t := shiftStart
		prev := d.Depot.Endpoint
		for k := 0; k <= len(order); k++ {
			if len(order) == 0 {
				break
			}
			next := d.Depot.Endpoint
			if k < len(order) {
				next = d.Shipments[order[k]].Endpoint
			}
			r, err := q.Route(prev, next)
			if err != nil {
				return fmt.Errorf("sim: reference tour of van %d, leg %d: %w", v, k, err)
			}
			dr, err := d.w.Drive(r.Edges, r.SrcFraction, r.DstFraction, t, nil)
			if err != nil {
				return fmt.Errorf("sim: reference tour of van %d, leg %d: %w", v, k, err)
			}
			t = dr.Arrive
			if k < len(order) {
				d.Estimate[order[k]] = t
				t = t.Add(d.Shipments[order[k]].Service)
			}
			prev = next
		}
		if t.After(shiftEnd) {
			return fmt.Errorf("%w: the reference tour of van %d (%d stops) returns at %v, after the shift ends at %v: raise Vans or ShiftLength",
				errConfig, v, len(order), t.Format(time.TimeOnly), shiftEnd.Format(time.TimeOnly))
		}
	}
	// Windows around the estimates.
	L := cfg.WindowLength
	slot := min(windowSlot, L)
	shifts := int(min(maxWindowShift, L-slot) / slot) // the estimate stays inside
	rng := d.rand(dayStreamWindows, 0)
	for i := range d.Shipments {
		s := &d.Shipments[i]
		off := d.Estimate[i].Sub(cfg.Date)
		a := cfg.Date.Add(off/slot*slot - time.Duration(rng.IntN(shifts+1))*slot)
		if a.Before(shiftStart) {
			a = shiftStart
		}
		if a.Add(L).After(shiftEnd) {
			a = shiftEnd.Add(-L)
		}
		s.WindowStart, s.WindowEnd = a, a.Add(L)
	}
	return nil
}

// nearestNeighbour orders the shipments of group by a nearest-neighbour
// tour from the depot on free-flow durations.
func (d *Day) nearestNeighbour(group []int) ([]int, error) {
	if len(group) == 0 {
		return nil, nil
	}
	eps := make([]graph.Endpoint, 0, len(group)+1)
	eps = append(eps, d.Depot.Endpoint)
	for _, s := range group {
		eps = append(eps, d.Shipments[s].Endpoint)
	}
	m, err := d.g.Matrix(eps, eps, 0)
	if err != nil {
		return nil, fmt.Errorf("sim: reference plan: %w", err)
	}
	done := make([]bool, len(eps))
	order := make([]int, 0, len(group))
	cur := 0
	for range group {
		best, bestDur := -1, math.Inf(1)
		for j := 1; j < len(eps); j++ {
			if dur, _ := m.At(cur, j); !done[j] && (best < 0 || dur < bestDur) {
				best, bestDur = j, dur
			}
		}
		done[best] = true
		order = append(order, group[best-1])
		cur = best
	}
	return order, nil
}

// Outcome is the status a driver reports for a stop.
type Outcome string

// Outcomes of a stop.
const (
	// Delivered: the parcel was handed over.
	Delivered Outcome = "delivered"
	// Failed: the delivery failed; ShipmentTruth.Reason says why.
	Failed Outcome = "failed"
)

// ReasonNotHome is the failure reason of a recipient who is not at home.
const ReasonNotHome = "not_home"

// SpanKind says what a van does during a Span.
type SpanKind uint8

// Kinds of spans.
const (
	// SpanDrive: driving along Span.Drive.
	SpanDrive SpanKind = iota
	// SpanWait: standing at a stop before its window opens.
	SpanWait
	// SpanService: standing at a stop while serving it.
	SpanService
)

// String returns "drive", "wait" or "service".
func (k SpanKind) String() string {
	switch k {
	case SpanDrive:
		return "drive"
	case SpanWait:
		return "wait"
	case SpanService:
		return "service"
	}
	return fmt.Sprintf("SpanKind(%d)", uint8(k))
}

// Span is one contiguous part of a van's day: a drive or a stand at a stop.
type Span struct {
	Kind SpanKind
	// Start and End delimit the span; a span starts where the previous
	// one ends.
	Start, End time.Time
	// Leg is the leg of the tour the span belongs to: leg k drives to the
	// van's k-th stop (0-based, VanTruth.Stops[k]), the last leg back to
	// the depot; a wait or service belongs to the leg that reached its
	// stop.
	Leg int
	// Shipment is the stop driven to, waited at or served, or -1 on the
	// way back to the depot. A drive-by leg has two drives: to the passed
	// stop (Shipment is still the leg's destination), then on.
	Shipment int
	// Drive is the trajectory of a SpanDrive (Drive.Enter[0] = Start,
	// Drive.Arrive = End).
	Drive Drive
	// Edge and Fraction are the position of a SpanWait or SpanService.
	Edge     uint32
	Fraction float64
}

// VanTruth is the truth of one van's day.
type VanTruth struct {
	// ID is the van's id ("van-1", …).
	ID string
	// Stops is the sequence of shipment indices the van served: the
	// plan's, or (RunReplanned) the one its replans made.
	Stops []int
	// Depart is when the van leaves the depot and Return when it is back
	// (both zero for a van without stops, which stays at the depot; both
	// the departure it did not take for a van a replan left without stops
	// before it left, see RunReplanned).
	Depart, Return time.Time
	// Routes are the planned legs, len(Stops)+1 of them (none without
	// stops): the static shortest route of the graph from the depot to the
	// first stop, …, from the last stop back to the depot. The van drives
	// them except on a drive-by leg (it passes the drive-by stop on the
	// way) and where a closure forces a detour (see Detours).
	Routes []graph.Route
	// Spans cover [Depart, Return] without gaps, in time order.
	Spans []Span
	// Pings are the van's GPS fixes every DayConfig.PingInterval from
	// Depart (less DayConfig.DepotPings, standing at the depot) up to
	// Return (inclusive when on the grid), in time order, with
	// DayConfig.GPSSigma noise, while driving and while standing.
	Pings []Ping
	// Detours are the places the van turned away from the day's closure.
	Detours []Detour
}

// Detour is where a van meeting the closed road turned away from it: at
// the end of the edge before the closed one (or, where turn rules leave
// no way on from there, at the latest node before it that has one) it
// routed around the closure (free-flow shortest path avoiding every
// closed edge) to its leg's destination.
type Detour struct {
	// Leg is the leg of the tour.
	Leg int
	// Time is when the van turned away.
	Time time.Time
	// Edge is the closed edge it would have entered.
	Edge uint32
}

// ShipmentTruth is what happened to one shipment.
type ShipmentTruth struct {
	// Van is the index of the van that served it and Stop its position in
	// that van's sequence (VanTruth.Stops); both -1 for a shipment no van
	// served, because the plan left it out or replans dropped it (then
	// every other field is zero).
	Van, Stop int
	// Arrive is when the van reached the stop, ServiceStart when service
	// began (the window's start when the van arrived early and waited,
	// else Arrive), Depart when it left.
	Arrive, ServiceStart, Depart time.Time
	// Service is the truth service time (Depart - ServiceStart).
	Service time.Duration
	// Outcome is Delivered or Failed; Reason is ReasonNotHome for a failed
	// shipment and empty otherwise.
	Outcome Outcome
	Reason  string
	// Reported is when the driver reports the outcome (= Depart).
	Reported time.Time
}

// DriveBy is one pass of a van by a stop it serves later in its plan (a
// replan taking effect after the pass may change that).
type DriveBy struct {
	// Shipment is the stop passed, Van the van, Leg the leg during which
	// it passes (its destination is served before Shipment).
	Shipment, Van, Leg int
	// Time is when the van's truth position is at the stop, without
	// stopping.
	Time time.Time
	// Extra is the free-flow time in seconds the pass adds to the leg
	// against its planned route.
	Extra float64
}

// Closure is the day's road closure: every directed edge of one OSM way,
// closed from Start to the end of the day.
type Closure struct {
	// Van is the van whose planned route it was put on and Leg the leg
	// (not one of the first two, not the return to the depot), in the
	// plan given to Run or RunReplanned (replans may keep the van from
	// driving that leg).
	Van, Leg int
	// Edge is the first closed edge on that leg's planned route.
	Edge uint32
	// WayID is the OSM way (graph.Edge.WayID) and Edges all its directed
	// edges, all closed (report the closure by way id or per edge).
	WayID int64
	Edges []uint32
	// Start and End delimit the closure [Start, End): Start 20 to 40 min
	// (whole seconds) before the van would have reached it without the
	// closure, End the next midnight.
	Start, End time.Time
	// Lat and Lon locate the middle of Edge.
	Lat, Lon float64
	// Extra is the free-flow time in seconds the detour adds to the leg
	// when the van turns away at the closure.
	Extra float64
}

// DayTruth is the ground truth of a day driven by Run or RunReplanned.
type DayTruth struct {
	// World is the truth world of the run: the Day's world plus the
	// closure (when there is one), so that its Factor is +Inf on the
	// closed edges while closed.
	World *World
	// Vans holds one entry per van of the Day.
	Vans []VanTruth
	// Shipments holds one entry per shipment of the Day.
	Shipments []ShipmentTruth
	// DriveBys are the passes, in the order they were chosen (with
	// replans, only those that happened: see RunReplanned).
	DriveBys []DriveBy
	// Closure is the day's road closure, nil when DayConfig.NoIncident is
	// set or no leg of the plan could take one.
	Closure *Closure

	depot graph.EdgePoint
}

// piece is one routed part of a leg: a planned route to dst; a drive-by
// leg has two pieces, the first ending at the passed stop (pass).
type piece struct {
	route graph.Route
	dst   graph.Endpoint
	pass  int
}

// vanRun is the result of driving one van's tour.
type vanRun struct {
	stops    []int         // shipments served, in order
	routes   []graph.Route // planned route of each leg driven
	spans    []Span
	legs     [][]Drive // drives of each leg
	arrive   []time.Time
	start    []time.Time
	depart   []time.Time
	service  []time.Duration
	passes   map[int]time.Time
	detours  []Detour
	ret      time.Time
	departed time.Time
	// t is the van's time: its next departure while it drives its tour,
	// its return after.
	t time.Time
	// stayed marks a van with stops in the plan that a replan left without
	// any before it left the depot (see RunReplanned).
	stayed bool
	// pingFrom is the earliest time of its pings (zero: no bound; see
	// RunReplanned).
	pingFrom time.Time
}

// closureRun is the closure being driven through: the incident and a
// router that avoids its edges.
type closureRun struct {
	c      *Closure
	router *detourRouter
}

// Replan is a change of one van's remaining stops during the day, as a
// server re-routing the van sends it to the driver's app; see
// Day.RunReplanned for how the driver follows it.
type Replan struct {
	// Van is the index of the van in Day.Vans.
	Van int
	// At is when the driver learns of the replan: it takes effect at the
	// van's first departure at or after At, from the depot or from a stop
	// (the end of its service there). The zero time means from the start.
	At time.Time
	// Stops are the shipments the van serves from that departure on, in
	// this order, before it returns to the depot: they replace the van's
	// remaining stops. A shipment appears at most once; it may be in
	// another van's plan or replan too (a handover: the first van to leave
	// for it serves it).
	Stops []int
}

// Run drives the plan order through the truth traffic and returns the
// truth of the day. order[v] is the sequence of shipment indices served
// by van v (len(order) may be below the number of vans: the others stay
// at the depot); a shipment may appear at most once and may be left out.
// Every van with stops leaves the depot at start, or at its shift start
// when start is zero (start must lie within the day). The drivers follow
// the plan all day; RunReplanned drives a day in which the server
// re-routes vans, and gives the same truth as Run without replans.
//
// Each leg follows the static shortest route of the graph through the
// World's truth traffic with per-traversal noise (World.Drive). At a stop
// reached before its window opens the van waits until it opens (as VROOM
// plans), then serves it for its truth service time, and leaves; the
// driver reports the outcome (failed, not_home, for NotHome shipments) on
// leaving. After the last stop the van returns to the depot.
//
// Drive-bys: up to DayConfig.DriveBys stops are passed earlier in their
// van's tour without stopping. Run screens every (stop, earlier leg) pair
// of the plan whose stop lies at least 150 m from the depot and from every
// stop the van serves before it, by the extra free-flow time of routing
// the leg through the stop (prev → stop → next, continuing in the
// direction of arrival), takes the smallest extras first (one per leg and
// stop, different vans first) and keeps those whose extra is at most 3
// min and whose expected pass (the day's traffic without noise, from the
// leg's expected start) keeps the van within 30 m of the stop for at most
// 1.2 ping intervals or 12 s, whichever is longer: no dwell, and with
// pings every 10 s or more at most about two pings near the stop.
//
// The closure: unless DayConfig.NoIncident, Run drives the day once
// without it, then closes one OSM way on the planned route of one van's
// leg in the middle of its tour (a leg after the first two with stops
// after it, not a drive-by leg; a way whose directed edges total at most
// 2 km, with no stop or the depot on it, whose closure cuts no part of
// the network off), from 20-40 min before that van
// would have reached it until midnight, preferring ways whose detour adds
// 1 to 15 min; then it drives the day again with the closure in the
// World. A van (any van) that reaches a closed edge after the closure
// starts turns away at the end of the edge before it and drives the
// free-flow shortest route avoiding the closed edges to its leg's
// destination (World.Drive would wait for the end of the closure
// instead). Noise comes from one random stream per van and leg and per
// shipment, so legs not affected are driven exactly as without the
// closure.
func (d *Day) Run(order [][]int, start time.Time) (*DayTruth, error) {
	return d.RunReplanned(order, start, nil)
}

// RunReplanned is Run for a day in which the server re-routes vans: it
// drives the plan order from start as Run does, while the drivers follow
// replans as they learn of them, and returns the truth of the day so
// driven. Without replans (or with none that takes effect) it returns
// exactly what Run returns.
//
// Replans of one van apply in order of At. At each departure of a van
// (from the depot, or from a stop at the end of its service there), its
// replans with At at or before the departure that have not applied yet
// come due: the last of them by At, then by order in replans, takes
// effect (the others are superseded). From that departure the van serves
// the replan's Stops in that order, then returns to the depot; the stops
// it still had to serve that are not in Stops are not served by it. A
// replan that comes due at no departure (the van is back at the depot, or
// stays there with nothing to serve) has no effect.
//
// A shipment is served once, by the first van to leave for it: at each
// departure (processed in time order, ties by van index) the van heads for
// the first of its remaining stops that no van (itself included) has
// served or left for yet, and drops the ones before it. So a shipment in
// a replan's Stops that was already served when the replan takes effect is
// skipped, and a shipment a replan hands to another van while it is still
// among its first van's remaining stops is served by whichever of the two
// leaves for it first; the other skips it. A shipment no van serves has
// Van = Stop = -1, as one the plan left out.
//
// The past does not change: the truth before the departure at which a
// replan takes effect is the same as without the replan (and the truth of
// every other van is the same all day, unless the replan takes stops it
// had still to serve), so that a caller replaying the truth in time order
// who learns of a re-route at t can run the day again with one more replan
// At t and continue from t. The spans, the pings (positions and noise), the
// arrivals, service and outcomes of the stops served, the drive-bys passed
// and the detours before that departure are unchanged. To that end:
//   - the closure is the one Run chooses for order (the day driven without
//     replans), whatever the replans; Closure.Van and Leg refer to order. It
//     acts on every van while it is closed, on the new legs too (turn away
//     and detour);
//   - the drive-bys are chosen from order as Run does; one on a leg the van
//     no longer drives as planned does not happen and is left out of
//     DayTruth.DriveBys (new legs follow their static shortest route);
//   - the legs of the plan the van drives before any replan or skip changes
//     its tour draw their noise from the streams Run uses (one per van and
//     leg); every later leg from a stream of its own determined by the van,
//     the leg's index in the driven tour and its destination (shipment or
//     depot), so that RunReplanned is a pure function of its arguments.
//     The truth service time is drawn per shipment, whichever van serves it,
//     and the GPS noise per van in time order (two draws per ping).
//
// In the truth, VanTruth.Stops is the sequence the van served, Routes the
// planned routes of the legs it drove (len(Stops)+1, none when it served
// nothing), Span.Leg and Detour.Leg index legs of that sequence, and
// ShipmentTruth.Van and Stop give the serving van and the position in it.
// A van with stops in order whose replan leaves it none before it leaves
// the depot stays there: no spans or routes, Depart = Return = the
// departure it did not take, pings (with DayConfig.DepotPings) standing
// at the depot up to that time. A van without stops in order that a
// replan due at its departure sends out leaves then (at start or its shift
// start); its depot pings start no earlier than the earliest At of the
// replans due then (the only truth a replan adds before the departure at
// which it takes effect, and never before its At).
//
// RunReplanned fails where Run does, and on a replan whose Van is out of
// range or whose Stops hold a shipment out of range or twice.
func (d *Day) RunReplanned(order [][]int, start time.Time, replans []Replan) (*DayTruth, error) {
	if err := d.checkOrder(order); err != nil {
		return nil, err
	}
	if !start.IsZero() && (start.Before(d.Config.Date) || !start.Before(d.Config.Date.Add(day))) {
		return nil, fmt.Errorf("%w: start %v is not on the day %v", errInput, start, d.Config.Date.Format(time.DateOnly))
	}
	if err := d.checkReplans(replans); err != nil {
		return nil, err
	}
	nv := len(d.Vans)
	order = append(slices.Clone(order), make([][]int, nv-len(order))...)
	q := d.g.NewQuery()
	tr := &DayTruth{World: d.w, Vans: make([]VanTruth, nv), Shipments: make([]ShipmentTruth, len(d.Shipments))}
	tr.depot = d.Depot.Endpoint.Points[0]
	routes := make([][]graph.Route, nv) // the planned routes of order
	for v := range tr.Vans {
		tr.Vans[v] = VanTruth{ID: d.Vans[v].ID, Stops: slices.Clone(order[v])}
		if len(order[v]) == 0 {
			continue
		}
		r, err := d.plannedRoutes(q, order[v])
		if err != nil {
			return nil, fmt.Errorf("sim: van %d: %w", v, err)
		}
		tr.Vans[v].Routes, routes[v] = r, r
	}
	departure := func(v int) time.Time {
		if start.IsZero() {
			return d.Vans[v].ShiftStart
		}
		return start
	}
	legs, err := d.planDriveBys(q, tr, order, departure)
	if err != nil {
		return nil, err
	}
	// The plan without replans or closure, to choose the closure from.
	runs, err := d.driveDay(d.w, q, order, legs, routes, departure, nil, nil)
	if err != nil {
		return nil, err
	}
	var cr *closureRun
	if !d.Config.NoIncident {
		router := newDetourRouter(d.w, d.g)
		c, err := d.chooseClosure(tr, runs, legs, router)
		if err != nil {
			return nil, err
		}
		if c != nil {
			tr.Closure = c
			tr.World = d.w.withIncident(Incident{Edges: c.Edges, Start: c.Start, End: c.End, Factor: math.Inf(1), Lat: c.Lat, Lon: c.Lon})
			router.close(c.Edges)
			cr = &closureRun{c: c, router: router}
		}
	}
	if cr != nil || len(replans) > 0 {
		if runs, err = d.driveDay(tr.World, q, order, legs, routes, departure, replans, cr); err != nil {
			return nil, err
		}
	}
	for i := range tr.Shipments {
		tr.Shipments[i] = ShipmentTruth{Van: -1, Stop: -1}
	}
	for v, r := range runs {
		vt := &tr.Vans[v]
		if !slices.Equal(r.stops, order[v]) {
			vt.Stops, vt.Routes = r.stops, r.routes
		}
		vt.Spans, vt.Detours = r.spans, r.detours
		if len(r.spans) > 0 || r.stayed {
			vt.Depart, vt.Return = r.departed, r.ret
		}
		for k, s := range r.stops {
			st := ShipmentTruth{Van: v, Stop: k, Arrive: r.arrive[k], ServiceStart: r.start[k], Depart: r.depart[k],
				Service: r.service[k], Outcome: Delivered, Reported: r.depart[k]}
			if d.Shipments[s].NotHome {
				st.Outcome, st.Reason = Failed, ReasonNotHome
			}
			tr.Shipments[s] = st
		}
	}
	passed := tr.DriveBys[:0]
	for _, db := range tr.DriveBys {
		if t, ok := runs[db.Van].passes[db.Shipment]; ok {
			db.Time = t
			passed = append(passed, db)
		}
	}
	tr.DriveBys = passed
	for v := range tr.Vans {
		tr.Vans[v].Pings = tr.pings(v, d.Config.PingInterval, d.Config.GPSSigma, d.Config.DepotPings, runs[v].pingFrom, d.rand(dayStreamGPS, uint64(v)))
	}
	return tr, nil
}

// checkReplans validates replans: van and shipment indices in range, no
// shipment twice in one replan.
func (d *Day) checkReplans(replans []Replan) error {
	seen := make(map[int]int)
	for i, rp := range replans {
		if rp.Van < 0 || rp.Van >= len(d.Vans) {
			return fmt.Errorf("%w: replan %d: van %d out of range [0,%d)", errInput, i, rp.Van, len(d.Vans))
		}
		clear(seen)
		for k, s := range rp.Stops {
			if s < 0 || s >= len(d.Shipments) {
				return fmt.Errorf("%w: replan %d (van %d), stop %d: shipment %d out of range [0,%d)", errInput, i, rp.Van, k, s, len(d.Shipments))
			}
			if j, ok := seen[s]; ok {
				return fmt.Errorf("%w: replan %d (van %d): shipment %d twice, stops %d and %d", errInput, i, rp.Van, s, j, k)
			}
			seen[s] = k
		}
	}
	return nil
}

// checkOrder validates a plan: at most one sequence per van, shipment
// indices in range, each at most once.
func (d *Day) checkOrder(order [][]int) error {
	if len(order) > len(d.Vans) {
		return fmt.Errorf("%w: plan has %d van sequences, the day %d vans", errInput, len(order), len(d.Vans))
	}
	seen := make([]int, len(d.Shipments)) // 1 + van index + position·nv, 0 = unseen
	for v, seq := range order {
		for k, s := range seq {
			if s < 0 || s >= len(d.Shipments) {
				return fmt.Errorf("%w: van %d, stop %d: shipment %d out of range [0,%d)", errInput, v, k, s, len(d.Shipments))
			}
			if p := seen[s]; p != 0 {
				pv, pk := (p-1)%len(d.Vans), (p-1)/len(d.Vans)
				return fmt.Errorf("%w: shipment %d planned twice: van %d stop %d and van %d stop %d", errInput, s, pv, pk, v, k)
			}
			seen[s] = 1 + v + k*len(d.Vans)
		}
	}
	return nil
}

// plannedRoutes returns the static shortest routes of a van's legs.
func (d *Day) plannedRoutes(q *graph.Query, stops []int) ([]graph.Route, error) {
	out := make([]graph.Route, 0, len(stops)+1)
	prev := d.Depot.Endpoint
	for k := 0; k <= len(stops); k++ {
		next := d.legTarget(stops, k)
		r, err := q.Route(prev, next)
		if err != nil {
			return nil, fmt.Errorf("leg %d: %w", k, err)
		}
		out = append(out, r)
		prev = next
	}
	return out, nil
}

// legTarget returns the destination of leg k of a tour through stops.
func (d *Day) legTarget(stops []int, k int) graph.Endpoint {
	if k < len(stops) {
		return d.Shipments[stops[k]].Endpoint
	}
	return d.Depot.Endpoint
}

// legSource returns the origin of leg k of a tour through stops.
func (d *Day) legSource(stops []int, k int) graph.Endpoint {
	if k == 0 {
		return d.Depot.Endpoint
	}
	return d.Shipments[stops[k-1]].Endpoint
}

// arrivalPoint returns the position a route ends at, as an endpoint with
// that single direction.
func arrivalPoint(r graph.Route) graph.Endpoint {
	e := r.Edges[len(r.Edges)-1]
	ep := graph.Endpoint{Points: []graph.EdgePoint{{Edge: e, Fraction: r.DstFraction}}}
	if len(r.Geometry) > 0 {
		p := r.Geometry[len(r.Geometry)-1]
		ep.Lat, ep.Lon = p.Lat, p.Lon
	}
	return ep
}

// planDriveBys chooses the drive-bys (see Run), records them in tr and
// returns the pieces of every leg of every van.
func (d *Day) planDriveBys(q *graph.Query, tr *DayTruth, order [][]int, dep func(v int) time.Time) ([][][]piece, error) {
	legs := make([][][]piece, len(order))
	for v, stops := range order {
		if len(stops) == 0 {
			continue
		}
		legs[v] = make([][]piece, len(stops)+1)
		for k := range legs[v] {
			legs[v][k] = []piece{{route: tr.Vans[v].Routes[k], dst: d.legTarget(stops, k), pass: -1}}
		}
	}
	want := d.Config.DriveBys
	if want == 0 {
		return legs, nil
	}
	type cand struct {
		extra      float64
		van, leg   int
		stop, ship int
	}
	var cands []cand
	for v, stops := range order {
		n := len(stops)
		if n < 2 {
			continue
		}
		eps := make([]graph.Endpoint, 0, n+1)
		eps = append(eps, d.Depot.Endpoint)
		for _, s := range stops {
			eps = append(eps, d.Shipments[s].Endpoint)
		}
		m, err := d.g.Matrix(eps, eps, 0)
		if err != nil {
			return nil, fmt.Errorf("sim: drive-bys of van %d: %w", v, err)
		}
		for j := 1; j < n; j++ {
			s := &d.Shipments[stops[j]]
			near := groundDist(s.Lat, s.Lon, d.Depot.Lat, d.Depot.Lon) < driveByMinGap
			for _, p := range stops[:j] {
				near = near || groundDist(s.Lat, s.Lon, d.Shipments[p].Lat, d.Shipments[p].Lon) < driveByMinGap
			}
			if near {
				continue
			}
			// Leg i runs from eps[i] to eps[i+1] (matrix indices).
			for i := 0; i < j; i++ {
				a, _ := m.At(i, j+1)
				b, _ := m.At(j+1, i+1)
				c, _ := m.At(i, i+1)
				if x := a + b - c; x <= driveByMaxExtra {
					cands = append(cands, cand{extra: x, van: v, leg: i, stop: j, ship: stops[j]})
				}
			}
		}
	}
	slices.SortStableFunc(cands, func(a, b cand) int { return cmp.Compare(a.extra, b.extra) })
	usedLeg := map[[2]int]bool{}
	usedShip := map[int]bool{}
	usedVan := map[int]bool{}
	starts := make([][]time.Time, len(order)) // expected start of each leg, per van
	for pass := 0; pass < 2 && len(tr.DriveBys) < want; pass++ {
		for _, c := range cands {
			if len(tr.DriveBys) == want {
				break
			}
			if usedLeg[[2]int{c.van, c.leg}] || usedShip[c.ship] || (pass == 0 && usedVan[c.van]) {
				continue
			}
			stops := order[c.van]
			ship := &d.Shipments[c.ship]
			r1, err := q.Route(d.legSource(stops, c.leg), ship.Endpoint)
			if err != nil {
				return nil, fmt.Errorf("sim: drive-by of shipment %d: %w", c.ship, err)
			}
			via := arrivalPoint(r1)
			next := d.legTarget(stops, c.leg)
			r2, err := q.Route(via, next)
			if err != nil {
				continue // no way on in the direction of arrival
			}
			extra := r1.Duration + r2.Duration - tr.Vans[c.van].Routes[c.leg].Duration
			if extra > driveByMaxExtra {
				continue
			}
			// The expected time near the stop (day's traffic, no noise)
			// from the leg's expected start.
			if starts[c.van] == nil {
				starts[c.van] = d.expectedLegStarts(tr.Vans[c.van].Routes, stops, dep(c.van))
			}
			dr1, err1 := d.w.Drive(r1.Edges, r1.SrcFraction, r1.DstFraction, starts[c.van][c.leg], nil)
			dr2, err2 := d.w.Drive(r2.Edges, r2.SrcFraction, r2.DstFraction, dr1.Arrive, nil)
			if err1 != nil || err2 != nil {
				continue
			}
			lat, lon := ship.Lat, ship.Lon
			near := secondsNear(d.g.Road, dr1, dr1.Arrive.Add(-driveByLook), dr1.Arrive, lat, lon, driveByRadius) +
				secondsNear(d.g.Road, dr2, dr2.Enter[0], dr2.Enter[0].Add(driveByLook), lat, lon, driveByRadius)
			if near > max(1.2*d.Config.PingInterval.Seconds(), driveByMinNear) {
				continue
			}
			legs[c.van][c.leg] = []piece{{route: r1, dst: via, pass: c.ship}, {route: r2, dst: next, pass: -1}}
			usedLeg[[2]int{c.van, c.leg}], usedShip[c.ship], usedVan[c.van] = true, true, true
			tr.DriveBys = append(tr.DriveBys, DriveBy{Shipment: c.ship, Van: c.van, Leg: c.leg, Extra: extra})
		}
	}
	return legs, nil
}

// expectedLegStarts returns the expected start of each leg of a van
// leaving the depot at dep along routes through stops: the day's truth
// traffic without noise, waits for windows, nominal service.
func (d *Day) expectedLegStarts(routes []graph.Route, stops []int, dep time.Time) []time.Time {
	out := make([]time.Time, len(routes))
	t := dep
	for k, r := range routes {
		out[k] = t
		if dr, err := d.w.Drive(r.Edges, r.SrcFraction, r.DstFraction, t, nil); err == nil {
			t = dr.Arrive
		}
		if k < len(stops) {
			s := &d.Shipments[stops[k]]
			if t.Before(s.WindowStart) {
				t = s.WindowStart
			}
			t = t.Add(s.Service)
		}
	}
	return out
}

// secondsNear returns how many seconds, sampled every second in [from,
// to], the truth position of dr lies within radius metres of (lat, lon).
func secondsNear(n *graph.Network, dr Drive, from, to time.Time, lat, lon, radius float64) float64 {
	count := 0
	for t := from; !t.After(to); t = t.Add(time.Second) {
		i, f, _ := dr.PositionAt(t)
		plat, plon, _ := edgeAt(n, dr.Edges[i], f)
		if groundDist(lat, lon, plat, plon) <= radius {
			count++
		}
	}
	return float64(count)
}

// legRand returns the noise stream of leg k of van v.
func (d *Day) legRand(v, k int) *rand.Rand {
	return d.rand(dayStreamLeg, uint64(v)<<20|uint64(k))
}

// replanLegRand returns the noise stream of leg k of van v to shipment
// ship (-1: the depot) once replans or skips changed the van's tour (see
// RunReplanned): the van and leg in the first seed, the destination under
// its own tag in the second, so that it meets no stream of rand.
func (d *Day) replanLegRand(v, k, ship int) *rand.Rand {
	return rand.New(rand.NewPCG(d.Config.Seed^(uint64(v)<<32|uint64(k)), dayStreamReplanLeg<<40|uint64(ship+1)))
}

// departure is a van's next departure in driveDay's queue.
type departure struct {
	t   time.Time
	van int
}

// departureQueue is a binary min-heap of departures by time, then van
// (container/heap).
type departureQueue []departure

func (h departureQueue) Len() int { return len(h) }
func (h departureQueue) Less(i, j int) bool {
	return cmp.Or(h[i].t.Compare(h[j].t), cmp.Compare(h[i].van, h[j].van)) < 0
}
func (h departureQueue) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *departureQueue) Push(x any)   { *h = append(*h, x.(departure)) }
func (h *departureQueue) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// driveDay drives every van's tour through world (see Run and
// RunReplanned): order is the plan, legs its pieces and routes its planned
// routes per van and leg, dep the vans' departures, replans the re-routes
// (validated) and cr the closure to turn away from, or nil. The vans'
// departures are processed in time order (ties by van index), so that a
// shipment is served by the first van to leave for it.
func (d *Day) driveDay(world *World, q *graph.Query, order [][]int, legs [][][]piece, routes [][]graph.Route, dep func(v int) time.Time, replans []Replan, cr *closureRun) ([]vanRun, error) {
	nv := len(order)
	// tour is the state of one van's tour.
	type tour struct {
		rem     []int    // stops still to serve, in order (some may be served meanwhile)
		replans []Replan // by At, then order in replans
		due     int      // the first replan not yet due
		onPlan  bool     // every leg so far is the plan's
	}
	tours := make([]tour, nv)
	for _, rp := range replans {
		tours[rp.Van].replans = append(tours[rp.Van].replans, rp)
	}
	runs := make([]vanRun, nv)
	queue := make(departureQueue, 0, nv)
	for v := range runs {
		t := dep(v)
		runs[v] = vanRun{departed: t, ret: t, t: t, passes: map[int]time.Time{}}
		tours[v].rem, tours[v].onPlan = order[v], true
		slices.SortStableFunc(tours[v].replans, func(a, b Replan) int { return a.At.Compare(b.At) })
		queue = append(queue, departure{t: t, van: v})
	}
	heap.Init(&queue)
	served := make([]bool, len(d.Shipments)) // served or left for
	for queue.Len() > 0 {
		v := heap.Pop(&queue).(departure).van
		r, tu := &runs[v], &tours[v]
		k := len(r.stops)
		var firstAt time.Time
		for i := tu.due; i < len(tu.replans) && !tu.replans[i].At.After(r.t); i++ {
			if i == tu.due {
				firstAt = tu.replans[i].At
			}
			tu.rem, tu.onPlan = tu.replans[i].Stops, false
			tu.due = i + 1
		}
		for len(tu.rem) > 0 && served[tu.rem[0]] {
			tu.rem = tu.rem[1:]
		}
		ship := -1
		if len(tu.rem) > 0 {
			ship, tu.rem = tu.rem[0], tu.rem[1:]
			served[ship] = true
		}
		if k == 0 {
			if ship < 0 { // nothing to serve: the van stays at the depot
				r.stayed = len(order[v]) > 0
				continue
			}
			if len(order[v]) == 0 {
				r.pingFrom = firstAt
			}
		}
		var pieces []piece
		var rng *rand.Rand
		if tu.onPlan && ((k < len(order[v]) && ship == order[v][k]) || (k == len(order[v]) && ship < 0)) {
			pieces, rng = legs[v][k], d.legRand(v, k)
			r.routes = append(r.routes, routes[v][k])
		} else {
			tu.onPlan = false
			src, dst := d.Depot.Endpoint, d.Depot.Endpoint
			if k > 0 {
				src = d.Shipments[r.stops[k-1]].Endpoint
			}
			if ship >= 0 {
				dst = d.Shipments[ship].Endpoint
			}
			rt, err := q.Route(src, dst)
			if err != nil {
				return nil, fmt.Errorf("sim: van %d, leg %d (replanned): %w", v, k, err)
			}
			pieces, rng = []piece{{route: rt, dst: dst, pass: -1}}, d.replanLegRand(v, k, ship)
			r.routes = append(r.routes, rt)
		}
		if err := d.driveLeg(world, v, ship, pieces, rng, cr, r); err != nil {
			return nil, err
		}
		if ship >= 0 {
			heap.Push(&queue, departure{t: r.t, van: v})
		}
	}
	return runs, nil
}

// driveLeg drives van v's next leg (pieces, noise from rng) from r.t to
// shipment ship, waits for its window and serves it, or back to the depot
// when ship is -1, and records it in r; cr is the closure to turn away
// from, or nil.
func (d *Day) driveLeg(world *World, v, ship int, pieces []piece, rng *rand.Rand, cr *closureRun, r *vanRun) error {
	k := len(r.legs)
	r.legs = append(r.legs, nil)
	t := r.t
	for _, p := range pieces {
		drives, det, err := d.drivePiece(world, p, t, rng, cr)
		if err != nil {
			return fmt.Errorf("sim: van %d, leg %d: %w", v, k, err)
		}
		if det != nil {
			det.Leg = k
			r.detours = append(r.detours, *det)
		}
		for _, dr := range drives {
			r.spans = append(r.spans, Span{Kind: SpanDrive, Start: dr.Enter[0], End: dr.Arrive, Leg: k, Shipment: ship, Drive: dr})
			t = dr.Arrive
		}
		r.legs[k] = append(r.legs[k], drives...)
		if p.pass >= 0 {
			r.passes[p.pass] = t
		}
	}
	if ship < 0 {
		r.t, r.ret = t, t
		return nil
	}
	last := r.legs[k][len(r.legs[k])-1]
	at := Span{Leg: k, Shipment: ship, Edge: last.Edges[len(last.Edges)-1], Fraction: last.DstFraction}
	s := &d.Shipments[ship]
	r.stops = append(r.stops, ship)
	r.arrive = append(r.arrive, t)
	if t.Before(s.WindowStart) {
		w := at
		w.Kind, w.Start, w.End = SpanWait, t, s.WindowStart
		r.spans = append(r.spans, w)
		t = s.WindowStart
	}
	r.start = append(r.start, t)
	service := secs(s.Service.Seconds() * noise(d.rand(dayStreamService, uint64(ship)), world.cfg.ServiceSigma))
	r.service = append(r.service, service)
	at.Kind, at.Start, at.End = SpanService, t, t.Add(service)
	r.spans = append(r.spans, at)
	r.t = at.End
	r.depart = append(r.depart, r.t)
	return nil
}

// drivePiece drives one piece of a leg from t. With a closure, a van
// that would enter a closed edge while it is closed turns away at the end
// of the edge before and takes the detour; the drive is then split in
// two.
func (d *Day) drivePiece(world *World, p piece, t time.Time, rng *rand.Rand, cr *closureRun) ([]Drive, *Detour, error) {
	rt := p.route
	dr, err := world.Drive(rt.Edges, rt.SrcFraction, rt.DstFraction, t, rng)
	if err != nil {
		return nil, nil, err
	}
	if cr == nil {
		return []Drive{dr}, nil, nil
	}
	k := slices.IndexFunc(dr.Edges, func(e uint32) bool { return cr.router.closed[e] })
	for ; k >= 0 && k < len(dr.Edges); k++ {
		if cr.router.closed[dr.Edges[k]] && !dr.Enter[k].Before(cr.c.Start) && dr.Enter[k].Before(cr.c.End) {
			break
		}
	}
	if k < 0 || k == len(dr.Edges) {
		return []Drive{dr}, nil, nil
	}
	if k == 0 {
		return nil, nil, fmt.Errorf("%w: leg starts on the closed edge %d", errInput, dr.Edges[0])
	}
	closedEdge := dr.Edges[k]
	// Turn away at the end of the edge before the closure, or earlier
	// where turn rules leave no way around from there.
	var edges []uint32
	var frac float64
	ok := false
	for ; k >= 1 && !ok; k-- {
		edges, frac, _, ok = cr.router.route(dr.Edges[k-1], p.dst)
	}
	if !ok {
		return nil, nil, fmt.Errorf("sim: no way around the closure of way %d on the route from edge %d", cr.c.WayID, dr.Edges[0])
	}
	k++
	head := Drive{
		Edges: dr.Edges[:k:k], SrcFraction: dr.SrcFraction, DstFraction: 1,
		Enter: dr.Enter[:k:k], Wait: dr.Wait[:k:k], Arrive: dr.Enter[k],
	}
	tail, err := world.Drive(edges, 0, frac, head.Arrive, rng)
	if err != nil {
		return nil, nil, err
	}
	return []Drive{head, tail}, &Detour{Time: head.Arrive, Edge: closedEdge}, nil
}

// chooseClosure picks the day's closure from the drives without it (see
// Run), or returns nil when no leg can take one.
func (d *Day) chooseClosure(tr *DayTruth, runs []vanRun, legs [][][]piece, router *detourRouter) (*Closure, error) {
	n := d.g.Road
	type cand struct {
		van, leg, k int
		way         int64
	}
	var cands []cand
	seenWay := map[int64]bool{}
	for v := range runs {
		stops := tr.Vans[v].Stops
		ns := len(stops)
		lo, hi := max(2, (ns+1)/3), min(ns-1, max(2, 2*(ns+1)/3))
		mine := map[int64]bool{} // ways the van drove on earlier legs
		for L := 0; L <= hi && L < len(legs[v]); L++ {
			dr := runs[v].legs[L]
			if L >= lo && len(legs[v][L]) == 1 {
				edges := dr[0].Edges
				for k := 1; k+1 < len(edges); k++ {
					way := n.Edges[edges[k]].WayID
					if !mine[way] && !seenWay[way] {
						seenWay[way] = true
						cands = append(cands, cand{van: v, leg: L, k: k, way: way})
					}
				}
			}
			for _, x := range dr {
				for _, e := range x.Edges {
					mine[n.Edges[e].WayID] = true
				}
			}
		}
	}
	if len(cands) == 0 {
		return nil, nil
	}
	rng := d.rand(dayStreamIncident, 0)
	rng.Shuffle(len(cands), func(i, j int) { cands[i], cands[j] = cands[j], cands[i] })
	// Edges that hold a stop or the depot cannot close.
	hold := map[uint32]bool{}
	for _, p := range d.Depot.Endpoint.Points {
		hold[p.Edge] = true
	}
	for _, s := range d.Shipments {
		for _, p := range s.Endpoint.Points {
			hold[p.Edge] = true
		}
	}
	byWay := edgesByWay(n)
	var best *Closure
	evaluated := 0
	for _, c := range cands {
		if evaluated == closureEvaluations {
			break
		}
		edges := waysEdges(n, byWay, c.way)
		length := 0.0
		ok := len(edges) <= closureMaxEdges
		for _, e := range edges {
			length += n.Edges[e].Distance
			cl := n.Edges[e].Class
			ok = ok && !hold[e] && cl != graph.ClassMotorway && cl != graph.ClassMotorwayLink
		}
		if !ok || length > closureMaxLength {
			continue
		}
		evaluated++
		router.close(edges)
		ok = router.bypassable(edges)
		var extra float64
		dr := runs[c.van].legs[c.leg][0]
		if ok {
			var cost float64
			_, _, cost, ok = router.route(dr.Edges[c.k-1], legs[c.van][c.leg][0].dst)
			prefix := 0.0
			for i := range c.k {
				a, b := dr.Part(i)
				prefix += (b - a) * n.Edges[dr.Edges[i]].Duration
			}
			extra = prefix + cost - tr.Vans[c.van].Routes[c.leg].Duration
		}
		router.open(edges)
		if !ok {
			continue
		}
		lat, lon, _ := edgeAt(n, dr.Edges[c.k], 0.5)
		cl := &Closure{Van: c.van, Leg: c.leg, Edge: dr.Edges[c.k], WayID: c.way, Edges: edges, Lat: lat, Lon: lon, Extra: extra}
		reach := dr.Enter[c.k]
		cl.Start = reach.Add(-closureLeadMin - time.Duration(rng.Int64N(int64(closureLeadMax-closureLeadMin)))).Truncate(time.Second)
		if cl.Start.Before(d.Config.Date) {
			cl.Start = d.Config.Date
		}
		cl.End = d.Config.Date.Add(day)
		if extra >= closureMinExtra && extra <= closureMaxExtra {
			return cl, nil
		}
		// Otherwise keep the closest to the preferred range.
		if best == nil || math.Abs(extra-closureMinExtra) < math.Abs(best.Extra-closureMinExtra) {
			best = cl
		}
	}
	return best, nil
}

// edgesByWay returns the edge indices of n sorted by way id (then index).
func edgesByWay(n *graph.Network) []uint32 {
	idx := make([]uint32, len(n.Edges))
	for i := range idx {
		idx[i] = uint32(i)
	}
	slices.SortFunc(idx, func(a, b uint32) int {
		return cmp.Or(cmp.Compare(n.Edges[a].WayID, n.Edges[b].WayID), cmp.Compare(a, b))
	})
	return idx
}

// waysEdges returns the edges of way, in index order, from edgesByWay's
// index.
func waysEdges(n *graph.Network, byWay []uint32, way int64) []uint32 {
	i, _ := slices.BinarySearchFunc(byWay, way, func(e uint32, w int64) int { return cmp.Compare(n.Edges[e].WayID, w) })
	j := i
	for j < len(byWay) && n.Edges[byWay[j]].WayID == way {
		j++
	}
	return slices.Clone(byWay[i:j])
}

// withIncident returns a copy of w with one more incident; w is not
// modified and the copy shares everything else with it.
func (w *World) withIncident(inc Incident) *World {
	c := *w
	c.incidents = append(slices.Clone(w.incidents), inc)
	slices.SortStableFunc(c.incidents, func(a, b Incident) int { return a.Start.Compare(b.Start) })
	c.indexIncidents()
	return &c
}

// indexIncidents rebuilds the per-edge index of w.incidents (the one
// drawIncidents builds) into new slices.
func (w *World) indexIncidents() {
	ne := len(w.net.Edges)
	w.incStart = make([]int64, len(w.incidents))
	w.incEnd = make([]int64, len(w.incidents))
	w.incFirst = make([]uint32, ne+1)
	for k, inc := range w.incidents {
		w.incStart[k], w.incEnd[k] = inc.Start.UnixNano(), inc.End.UnixNano()
		for _, e := range inc.Edges {
			w.incFirst[e+1]++
		}
	}
	for i := 1; i <= ne; i++ {
		w.incFirst[i] += w.incFirst[i-1]
	}
	w.incList = make([]uint32, w.incFirst[ne])
	pos := slices.Clone(w.incFirst[:ne])
	for k, inc := range w.incidents {
		for _, e := range inc.Edges {
			w.incList[pos[e]] = uint32(k)
			pos[e]++
		}
	}
}

// Position returns the truth position of van v at t as a Ping without
// noise: on its drive, at its stop while waiting or serving, at the depot
// before it leaves and after it returns (and all day for a van without
// stops).
func (tr *DayTruth) Position(v int, t time.Time) (Ping, error) {
	if v < 0 || v >= len(tr.Vans) {
		return Ping{}, fmt.Errorf("%w: van %d out of range [0,%d)", errInput, v, len(tr.Vans))
	}
	vt := &tr.Vans[v]
	n := tr.World.Network()
	if len(vt.Spans) == 0 || t.Before(vt.Depart) {
		return tr.standing(vt.ID, t, tr.depot.Edge, tr.depot.Fraction), nil
	}
	// The last span starting at or before t.
	i, _ := slices.BinarySearchFunc(vt.Spans, t, func(s Span, t time.Time) int {
		if s.Start.After(t) {
			return 1
		}
		return -1
	})
	return tr.positionIn(n, vt.ID, &vt.Spans[max(i-1, 0)], t), nil
}

// standing returns the ping of a van standing at fraction f of edge e.
func (tr *DayTruth) standing(id string, t time.Time, e uint32, f float64) Ping {
	lat, lon, h := edgeAt(tr.World.Network(), e, f)
	return Ping{Vehicle: id, Time: t, Lat: lat, Lon: lon, Heading: h, Edge: e, Fraction: f}
}

// positionIn returns the truth position at t within span s (t past its
// end gives its end).
func (tr *DayTruth) positionIn(n *graph.Network, id string, s *Span, t time.Time) Ping {
	if s.Kind != SpanDrive {
		return tr.standing(id, t, s.Edge, s.Fraction)
	}
	i, f, speed := s.Drive.PositionAt(t)
	e := s.Drive.Edges[i]
	lat, lon, h := edgeAt(n, e, f)
	return Ping{Vehicle: id, Time: t, Lat: lat, Lon: lon, Speed: speed * n.Edges[e].Distance, Heading: h, Edge: e, Fraction: f}
}

// pings samples van v's spans every interval from its departure to its
// return, standing at the depot for atDepot before the departure (on the
// same grid, not before from), with Gaussian noise of sigma metres per
// axis. A van without spans has none, unless it has a departure (it stayed
// at the depot, see RunReplanned). The noise takes two draws of rng per
// ping in time order, so a ping's noise depends only on how many pings
// come before it, and the pings before any time only on the spans before
// it (and the departure).
func (tr *DayTruth) pings(v int, interval time.Duration, sigma float64, atDepot time.Duration, from time.Time, rng *rand.Rand) []Ping {
	vt := &tr.Vans[v]
	if len(vt.Spans) == 0 && vt.Depart.IsZero() {
		return nil
	}
	n := tr.World.Network()
	out := make([]Ping, 0, int((vt.Return.Sub(vt.Depart)+atDepot)/interval)+1)
	si := 0
	// Standing at the depot before the departure, on the same grid.
	t := vt.Depart.Add(-atDepot / interval * interval)
	if t.Before(from) {
		t = t.Add((from.Sub(t) + interval - 1) / interval * interval)
	}
	for ; !t.After(vt.Return); t = t.Add(interval) {
		var p Ping
		if t.Before(vt.Depart) || len(vt.Spans) == 0 {
			p = tr.standing(vt.ID, t, tr.depot.Edge, tr.depot.Fraction)
		} else {
			for si+1 < len(vt.Spans) && !t.Before(vt.Spans[si].End) {
				si++
			}
			p = tr.positionIn(n, vt.ID, &vt.Spans[si], t)
		}
		if sigma > 0 {
			p.Lat += rng.NormFloat64() * sigma / metresPerDegree
			p.Lon += rng.NormFloat64() * sigma / (metresPerDegree * max(math.Cos(p.Lat*math.Pi/180), 0.01))
		}
		out = append(out, p)
	}
	return out
}

// groundDist is the distance in metres between two nearby points (local
// equirectangular approximation).
func groundDist(lat1, lon1, lat2, lon2 float64) float64 {
	dy := (lat2 - lat1) * metresPerDegree
	dx := (lon2 - lon1) * metresPerDegree * math.Cos(lat1*math.Pi/180)
	return math.Hypot(dx, dy)
}

// detourRouter finds free-flow shortest routes on the road network that
// avoid a set of closed edges, for the vans turning away from the day's
// closure (the graph's hierarchies cannot exclude edges). It is a plain
// Dijkstra search over directed road edges with the turn rules of the
// graph: turn restrictions (no_* forbids, only_* allows only the named
// exits), only routable edges, and U-turns only where no other exit is
// allowed — or, unlike the graph, where every other allowed exit is
// closed (a driver facing a closed dead end turns around).
type detourRouter struct {
	net            *graph.Network
	g              *graph.Graph
	out, outFirst  []uint32 // out-edges per node (the World's)
	in, inFirst    []uint32 // in-edges per node
	restr          []graph.TurnRestriction
	restrFirst     []uint32 // restrictions of edge a: restr[restrFirst[a]:restrFirst[a+1]]
	closed         []bool
	dist           []float64
	parent, stamp  []uint32
	cur            uint32
	heap           []heapItem
	nodeSeen, fifo []uint32
}

// heapItem is an entry of detourRouter's binary heap.
type heapItem struct {
	key float64
	e   uint32
}

// newDetourRouter indexes w's network for detour searches on g.
func newDetourRouter(w *World, g *graph.Graph) *detourRouter {
	n := w.net
	ne := len(n.Edges)
	r := &detourRouter{net: n, g: g, out: w.out, outFirst: w.outFirst,
		closed: make([]bool, ne), dist: make([]float64, ne), parent: make([]uint32, ne), stamp: make([]uint32, ne),
		nodeSeen: make([]uint32, len(n.Lat))}
	r.inFirst = make([]uint32, len(n.Lat)+1)
	for _, e := range n.Edges {
		r.inFirst[e.To+1]++
	}
	for i := 1; i < len(r.inFirst); i++ {
		r.inFirst[i] += r.inFirst[i-1]
	}
	r.in = make([]uint32, ne)
	pos := slices.Clone(r.inFirst[:len(n.Lat)])
	for i, e := range n.Edges {
		r.in[pos[e.To]] = uint32(i)
		pos[e.To]++
	}
	r.restr = slices.Clone(n.Restrictions)
	slices.SortStableFunc(r.restr, func(a, b graph.TurnRestriction) int { return cmp.Compare(a.From, b.From) })
	r.restrFirst = make([]uint32, ne+1)
	for _, x := range r.restr {
		r.restrFirst[x.From+1]++
	}
	for i := 1; i <= ne; i++ {
		r.restrFirst[i] += r.restrFirst[i-1]
	}
	return r
}

// close and open mark edges closed or open.
func (r *detourRouter) close(edges []uint32) {
	for _, e := range edges {
		r.closed[e] = true
	}
}

func (r *detourRouter) open(edges []uint32) {
	for _, e := range edges {
		r.closed[e] = false
	}
}

// turns appends to dst the edges a vehicle leaving edge a may take (see
// detourRouter).
func (r *detourRouter) turns(dst []uint32, a uint32) []uint32 {
	n := r.net
	ea := &n.Edges[a]
	rs := r.restr[r.restrFirst[a]:r.restrFirst[a+1]]
	only := slices.ContainsFunc(rs, func(x graph.TurnRestriction) bool { return x.Only })
	allowed := func(b uint32) bool {
		ok := !only
		for _, x := range rs {
			if x.To == b {
				if !x.Only {
					return false
				}
				ok = true
			}
		}
		return ok
	}
	start := len(dst)
	var uturns []uint32
	for _, b := range r.out[r.outFirst[ea.To]:r.outFirst[ea.To+1]] {
		if !r.g.Routable(b) || !allowed(b) {
			continue
		}
		eb := &n.Edges[b]
		if b != a && eb.WayID == ea.WayID && eb.To == ea.From {
			if !r.closed[b] {
				uturns = append(uturns, b)
			}
			continue
		}
		if !r.closed[b] {
			dst = append(dst, b)
		}
	}
	if len(dst) == start { // dead end, or every other exit closed: turn around
		dst = append(dst, uturns...)
	}
	return dst
}

// nextStamp starts a new search: stamps of earlier searches become stale.
func (r *detourRouter) nextStamp() {
	r.cur++
	if r.cur == 0 { // wrapped: clear the old stamps
		clear(r.stamp)
		clear(r.nodeSeen)
		r.cur = 1
	}
}

// push and pop maintain the binary min-heap of the search.
func (r *detourRouter) push(it heapItem) {
	h := append(r.heap, it)
	i := len(h) - 1
	for i > 0 {
		p := (i - 1) / 2
		if h[p].key <= h[i].key {
			break
		}
		h[p], h[i] = h[i], h[p]
		i = p
	}
	r.heap = h
}

func (r *detourRouter) pop() heapItem {
	h := r.heap
	top := h[0]
	last := len(h) - 1
	h[0] = h[last]
	h = h[:last]
	for i := 0; ; {
		l, m := 2*i+1, i
		if l < len(h) && h[l].key < h[m].key {
			m = l
		}
		if l+1 < len(h) && h[l+1].key < h[m].key {
			m = l + 1
		}
		if m == i {
			break
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
	r.heap = h
	return top
}

// route returns the free-flow shortest path from the end of edge from
// (the vehicle has just traversed it) to dst avoiding closed edges: the
// edges (the first entered at fraction 0), the fraction on the last, the
// duration in seconds, and false when no such path exists.
func (r *detourRouter) route(from uint32, dst graph.Endpoint) (edges []uint32, frac, cost float64, ok bool) {
	n := r.net
	r.nextStamp()
	r.heap = r.heap[:0]
	const none = math.MaxUint32
	best, bestEdge, bestParent, bestFrac := math.Inf(1), uint32(none), uint32(none), 0.0
	r.stamp[from], r.dist[from], r.parent[from] = r.cur, 0, none
	var buf []uint32
	expand := func(a uint32, base float64) {
		buf = r.turns(buf[:0], a)
		for _, b := range buf {
			dur := n.Edges[b].Duration
			for _, p := range dst.Points {
				if p.Edge == b {
					if c := base + p.Fraction*dur; c < best {
						best, bestEdge, bestParent, bestFrac = c, b, a, p.Fraction
					}
				}
			}
			if nd := base + dur; r.stamp[b] != r.cur || nd < r.dist[b] {
				r.stamp[b], r.dist[b], r.parent[b] = r.cur, nd, a
				r.push(heapItem{nd, b})
			}
		}
	}
	expand(from, 0)
	for len(r.heap) > 0 {
		it := r.pop()
		if it.key > r.dist[it.e] {
			continue
		}
		if it.key >= best {
			break
		}
		expand(it.e, it.key)
	}
	if bestEdge == none {
		return nil, 0, 0, false
	}
	edges = []uint32{bestEdge}
	for x := bestParent; x != from; x = r.parent[x] {
		edges = append(edges, x)
	}
	slices.Reverse(edges)
	return edges, bestFrac, best, true
}

// bypassable reports whether the closure of edges (marked closed) cuts
// nothing off: for every closed edge u→v, v is still reachable from u and
// u from v over open routable edges (breadth-first searches visiting at
// most bridgeSearchLimit nodes), and a vehicle arriving at u on any open
// edge can reach v under the turn rules (detour searches).
func (r *detourRouter) bypassable(edges []uint32) bool {
	n := r.net
	for _, e := range edges {
		ed := &n.Edges[e]
		if !r.reaches(ed.From, ed.To) || !r.reaches(ed.To, ed.From) {
			return false
		}
		var past graph.Endpoint // leaving v on any open edge
		for _, o := range r.out[r.outFirst[ed.To]:r.outFirst[ed.To+1]] {
			if !r.closed[o] && r.g.Routable(o) {
				past.Points = append(past.Points, graph.EdgePoint{Edge: o})
			}
		}
		for _, y := range r.in[r.inFirst[ed.From]:r.inFirst[ed.From+1]] {
			if r.closed[y] || !r.g.Routable(y) {
				continue
			}
			if _, _, _, ok := r.route(y, past); !ok && len(past.Points) > 0 {
				return false
			}
		}
	}
	return true
}

// reaches runs a bounded breadth-first search over open routable edges
// from node u and reports whether it reaches node v.
func (r *detourRouter) reaches(u, v uint32) bool {
	n := r.net
	r.nextStamp()
	r.fifo = append(r.fifo[:0], u)
	r.nodeSeen[u] = r.cur
	for i := 0; i < len(r.fifo) && i < bridgeSearchLimit; i++ {
		x := r.fifo[i]
		if x == v {
			return true
		}
		for _, e := range r.out[r.outFirst[x]:r.outFirst[x+1]] {
			if h := n.Edges[e].To; !r.closed[e] && r.g.Routable(e) && r.nodeSeen[h] != r.cur {
				r.nodeSeen[h] = r.cur
				r.fifo = append(r.fifo, h)
			}
		}
	}
	return false
}
