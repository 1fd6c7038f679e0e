package sim

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"regexp"
	"slices"
	"testing"
	"time"

	"github.com/lastmile/lastmile/datasets"
	"github.com/lastmile/lastmile/graph"
)

// porto returns the graph of $LASTMILE_DATA/osm/porto.osm.pbf (about 7 s
// to import and contract), skipping the test when the file is missing.
func porto(t testing.TB) *graph.Graph {
	t.Helper()
	return portoGraph.get(t, datasets.Require(t, "osm", "porto.osm.pbf"))
}

// dayNetworks are the networks the day tests run on.
var dayNetworks = []struct {
	name  string
	graph func(testing.TB) *graph.Graph
}{
	{"monaco", monaco},
	{"porto", porto},
}

// newDay draws a one-day world over g and a day in it.
func newDay(t testing.TB, g *graph.Graph, cfg DayConfig) *Day {
	t.Helper()
	d, err := NewDay(world(t, g, 1, nil), g, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// run drives order on d.
func run(t testing.TB, d *Day, order [][]int, start time.Time) *DayTruth {
	t.Helper()
	tr, err := d.Run(order, start)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

var (
	phoneRE = regexp.MustCompile(`^\+3519[1236][0-9]{7}$`)
	emailRE = regexp.MustCompile(`^[a-z]+\.[a-z]+\.[0-9]{4}@example\.test$`)
)

// checkDemand checks the invariants of a day's demand.
func checkDemand(t *testing.T, d *Day) {
	t.Helper()
	cfg := d.Config
	g := d.Graph()
	if len(d.Vans) != cfg.Vans || len(d.Shipments) != cfg.Shipments || len(d.Plan) != cfg.Vans || len(d.Estimate) != cfg.Shipments {
		t.Fatalf("%d vans, %d shipments, %d plan sequences, %d estimates for %+v", len(d.Vans), len(d.Shipments), len(d.Plan), len(d.Estimate), cfg)
	}
	shiftStart, shiftEnd := cfg.Date.Add(cfg.ShiftStart), cfg.Date.Add(cfg.ShiftStart+cfg.ShiftLength)
	for v, van := range d.Vans {
		if van.ID != fmt.Sprintf("van-%d", v+1) || !van.ShiftStart.Equal(shiftStart) || !van.ShiftEnd.Equal(shiftEnd) {
			t.Fatalf("van %d: %+v", v, van)
		}
	}
	onRoad := func(what string, ep graph.Endpoint, lat, lon float64) {
		t.Helper()
		if len(ep.Points) == 0 || ep.Lat != lat || ep.Lon != lon {
			t.Fatalf("%s: endpoint %+v at (%v, %v)", what, ep, lat, lon)
		}
		for _, p := range ep.Points {
			if !stopEdge(g, p.Edge) || !(p.Fraction >= 0 && p.Fraction <= 1) {
				t.Fatalf("%s: point %+v not on a routable non-motorway road", what, p)
			}
			plat, plon, _ := edgeAt(g.Road, p.Edge, p.Fraction)
			if dm := distM(plat, plon, lat, lon); dm > 1 {
				t.Fatalf("%s: point %+v is %.1f m from (%v, %v)", what, p, dm, lat, lon)
			}
		}
	}
	onRoad("depot", d.Depot.Endpoint, d.Depot.Lat, d.Depot.Lon)
	emails := map[string]bool{}
	langs := map[string]int{}
	notHome := 0
	for i, s := range d.Shipments {
		what := fmt.Sprintf("shipment %d", i)
		onRoad(what, s.Endpoint, s.Lat, s.Lon)
		if s.Tracking != fmt.Sprintf("SIM%04d", i+1) || s.Service != cfg.Service {
			t.Fatalf("%s: tracking %q, service %v", what, s.Tracking, s.Service)
		}
		if got := s.WindowEnd.Sub(s.WindowStart); got != cfg.WindowLength {
			t.Fatalf("%s: window length %v, want %v", what, got, cfg.WindowLength)
		}
		if s.WindowStart.Before(shiftStart) || s.WindowEnd.After(shiftEnd) {
			t.Fatalf("%s: window %v-%v outside the shift %v-%v", what, s.WindowStart, s.WindowEnd, shiftStart, shiftEnd)
		}
		if e := d.Estimate[i]; e.Before(s.WindowStart) || e.After(s.WindowEnd) {
			t.Fatalf("%s: estimate %v outside its window %v-%v", what, e, s.WindowStart, s.WindowEnd)
		}
		slot := min(windowSlot, cfg.WindowLength)
		if s.WindowStart.Sub(cfg.Date)%slot != 0 && !s.WindowEnd.Equal(shiftEnd) {
			t.Fatalf("%s: window starts at %v, not on a %v slot", what, s.WindowStart, slot)
		}
		r := s.Recipient
		if !phoneRE.MatchString(r.Phone) || !emailRE.MatchString(r.Email) || emails[r.Email] || len(r.Name) < 5 {
			t.Fatalf("%s: recipient %+v", what, r)
		}
		emails[r.Email] = true
		langs[r.Language]++
		if s.NotHome {
			notHome++
		}
	}
	if len(langs) > 2 || (cfg.Shipments >= 40 && (langs["pt"] == 0 || langs["en"] == 0)) {
		t.Fatalf("languages %v", langs)
	}
	if notHome != cfg.NotHome {
		t.Fatalf("%d not-home shipments, want %d", notHome, cfg.NotHome)
	}
	var all []int
	for _, seq := range d.Plan {
		all = append(all, seq...)
	}
	slices.Sort(all)
	for i, s := range all {
		if s != i {
			t.Fatalf("reference plan does not hold every shipment once: %v", all)
		}
	}
}

func TestDayDemand(t *testing.T) {
	for _, nw := range dayNetworks {
		t.Run(nw.name, func(t *testing.T) {
			g := nw.graph(t)
			t0 := time.Now()
			d := newDay(t, g, DayConfig{Seed: 1})
			t.Logf("%s: NewDay %v (world included)", nw.name, time.Since(t0))
			checkDemand(t, d)
			if len(d.Shipments) != 300 || len(d.Vans) != 10 || d.Config.NotHome != 2 || d.Config.DriveBys != 3 {
				t.Fatalf("defaults not applied: %+v", d.Config)
			}
			// Stops lie on roads starting within Radius of the depot
			// (Monaco is small enough to lie within it entirely).
			far := 0.0
			for _, s := range d.Shipments {
				e := g.Road.Edges[s.Endpoint.Points[0].Edge]
				far = max(far, distM(s.Lat, s.Lon, d.Depot.Lat, d.Depot.Lon)-e.Distance)
			}
			if far > d.Config.Radius {
				t.Errorf("a stop lies %.0f m (less its road's length) from the depot, radius %v", far, d.Config.Radius)
			}
		})
	}
}

// checkTruth checks the invariants of a day's truth for order driven from
// start (zero: the shift start).
func checkTruth(t *testing.T, d *Day, tr *DayTruth, order [][]int, start time.Time) {
	t.Helper()
	checkVans(t, d, tr, order, start, false)
	checkDriveBys(t, d, tr)
	checkClosure(t, d, tr)
}

// checkVans checks the invariants of the vans' and shipments' truth for
// the sequences order served from start (zero: the shift start). With
// replanned, a van without stops may have stayed at the depot (see
// RunReplanned).
func checkVans(t *testing.T, d *Day, tr *DayTruth, order [][]int, start time.Time, replanned bool) {
	t.Helper()
	cfg := d.Config
	n := d.Graph().Road
	iv := cfg.PingInterval
	if len(tr.Vans) != len(d.Vans) || len(tr.Shipments) != len(d.Shipments) {
		t.Fatalf("%d vans, %d shipments in the truth", len(tr.Vans), len(tr.Shipments))
	}
	planned := make([]bool, len(d.Shipments))
	for v, vt := range tr.Vans {
		var stops []int
		if v < len(order) {
			stops = order[v]
		}
		if vt.ID != d.Vans[v].ID || !slices.Equal(vt.Stops, stops) {
			t.Fatalf("van %d: id %q, stops %v, want %v", v, vt.ID, vt.Stops, stops)
		}
		if len(stops) == 0 && replanned && !vt.Depart.IsZero() {
			checkStayed(t, d, tr, v)
			continue
		}
		if len(stops) == 0 {
			if len(vt.Spans) != 0 || len(vt.Pings) != 0 || !vt.Depart.IsZero() || len(vt.Routes) != 0 {
				t.Fatalf("van %d without stops: %d spans, %d pings, depart %v", v, len(vt.Spans), len(vt.Pings), vt.Depart)
			}
			continue
		}
		dep := start
		if dep.IsZero() {
			dep = d.Vans[v].ShiftStart
		}
		if !vt.Depart.Equal(dep) || len(vt.Routes) != len(stops)+1 {
			t.Fatalf("van %d departs %v (want %v), %d routes for %d stops", v, vt.Depart, dep, len(vt.Routes), len(stops))
		}
		// Spans: contiguous in time and space, legs in order.
		for i, sp := range vt.Spans {
			prevEnd, prevLeg := vt.Depart, 0
			if i > 0 {
				prevEnd, prevLeg = vt.Spans[i-1].End, vt.Spans[i-1].Leg
			}
			if !sp.Start.Equal(prevEnd) || sp.End.Before(sp.Start) || sp.Leg < prevLeg {
				t.Fatalf("van %d span %d (%v, leg %d) %v-%v after %v (leg %d)", v, i, sp.Kind, sp.Leg, sp.Start, sp.End, prevEnd, prevLeg)
			}
			if sp.Kind == SpanDrive {
				if err := tr.World.checkPath(sp.Drive.Edges, sp.Drive.SrcFraction, sp.Drive.DstFraction); err != nil {
					t.Fatalf("van %d span %d: %v", v, i, err)
				}
				if !sp.Drive.Enter[0].Equal(sp.Start) || !sp.Drive.Arrive.Equal(sp.End) {
					t.Fatalf("van %d span %d: drive %v-%v, span %v-%v", v, i, sp.Drive.Enter[0], sp.Drive.Arrive, sp.Start, sp.End)
				}
			}
			if i > 0 {
				a := tr.positionIn(n, vt.ID, &vt.Spans[i-1], sp.Start)
				b := tr.positionIn(n, vt.ID, &vt.Spans[i], sp.Start)
				if dm := distM(a.Lat, a.Lon, b.Lat, b.Lon); dm > 0.5 {
					t.Fatalf("van %d jumps %.1f m between spans %d and %d", v, dm, i-1, i)
				}
			}
		}
		if last := vt.Spans[len(vt.Spans)-1]; !last.End.Equal(vt.Return) || last.Kind != SpanDrive || last.Shipment != -1 {
			t.Fatalf("van %d: last span %+v, return %v", v, last.Kind, vt.Return)
		}
		if p, _ := tr.Position(v, vt.Return); distM(p.Lat, p.Lon, d.Depot.Lat, d.Depot.Lon) > 1 {
			t.Fatalf("van %d ends %.1f m from the depot", v, distM(p.Lat, p.Lon, d.Depot.Lat, d.Depot.Lon))
		}
		// Pings: every interval from the departure to the return, near the
		// truth position, stationary at stops.
		if want := int(vt.Return.Sub(vt.Depart)/iv) + 1; len(vt.Pings) != want {
			t.Fatalf("van %d: %d pings, want %d", v, len(vt.Pings), want)
		}
		span := 0
		for i, p := range vt.Pings {
			if !p.Time.Equal(vt.Depart.Add(time.Duration(i)*iv)) || p.Vehicle != vt.ID {
				t.Fatalf("van %d ping %d: %v %q, want %v", v, i, p.Time, p.Vehicle, vt.Depart.Add(time.Duration(i)*iv))
			}
			truth, err := tr.Position(v, p.Time)
			if err != nil {
				t.Fatal(err)
			}
			if dm := distM(truth.Lat, truth.Lon, p.Lat, p.Lon); dm > 6*cfg.GPSSigma+1e-6 || p.Edge != truth.Edge || p.Fraction != truth.Fraction {
				t.Fatalf("van %d ping %d: %.1f m from the truth, edge %d/%d", v, i, dm, p.Edge, truth.Edge)
			}
			for span+1 < len(vt.Spans) && !p.Time.Before(vt.Spans[span].End) {
				span++
			}
			if sp := vt.Spans[span]; sp.Kind != SpanDrive {
				s := d.Shipments[sp.Shipment]
				if dm := distM(truth.Lat, truth.Lon, s.Lat, s.Lon); dm > 0.5 || p.Speed != 0 {
					t.Fatalf("van %d ping %d while %v at shipment %d: %.1f m from the stop at %v m/s", v, i, sp.Kind, sp.Shipment, dm, p.Speed)
				}
				if dm := distM(p.Lat, p.Lon, s.Lat, s.Lon); dm > 6*cfg.GPSSigma+0.5 {
					t.Fatalf("van %d ping %d while %v at shipment %d: noisy fix %.1f m away", v, i, sp.Kind, sp.Shipment, dm)
				}
			}
		}
		// Shipments in the van's order.
		prev := vt.Depart
		for k, si := range stops {
			planned[si] = true
			st, s := tr.Shipments[si], d.Shipments[si]
			what := fmt.Sprintf("van %d stop %d (shipment %d)", v, k, si)
			wantStart := st.Arrive
			if wantStart.Before(s.WindowStart) {
				wantStart = s.WindowStart
			}
			switch {
			case st.Van != v || st.Stop != k:
				t.Fatalf("%s: truth says van %d stop %d", what, st.Van, st.Stop)
			case !st.Arrive.After(prev) || !st.ServiceStart.Equal(wantStart) || st.ServiceStart.Before(s.WindowStart):
				t.Fatalf("%s: arrive %v, service from %v, after %v, window %v-%v", what, st.Arrive, st.ServiceStart, prev, s.WindowStart, s.WindowEnd)
			case st.Service <= 0 || !st.Depart.Equal(st.ServiceStart.Add(st.Service)) || !st.Reported.Equal(st.Depart):
				t.Fatalf("%s: service %v, %v-%v, reported %v", what, st.Service, st.ServiceStart, st.Depart, st.Reported)
			case s.NotHome && (st.Outcome != Failed || st.Reason != ReasonNotHome):
				t.Fatalf("%s: not home, outcome %q %q", what, st.Outcome, st.Reason)
			case !s.NotHome && (st.Outcome != Delivered || st.Reason != ""):
				t.Fatalf("%s: outcome %q %q", what, st.Outcome, st.Reason)
			}
			if p, _ := tr.Position(v, st.Arrive); distM(p.Lat, p.Lon, s.Lat, s.Lon) > 0.5 {
				t.Fatalf("%s: truth position at arrival %.1f m from the stop", what, distM(p.Lat, p.Lon, s.Lat, s.Lon))
			}
			prev = st.Depart
		}
	}
	for i, st := range tr.Shipments {
		if !planned[i] && !reflect.DeepEqual(st, ShipmentTruth{Van: -1, Stop: -1}) {
			t.Fatalf("unplanned shipment %d: %+v", i, st)
		}
	}
}

// checkDriveBys checks that each drive-by stop is passed earlier than its
// arrival, exactly at its position, without dwelling near it.
func checkDriveBys(t *testing.T, d *Day, tr *DayTruth) {
	t.Helper()
	if len(tr.DriveBys) > d.Config.DriveBys {
		t.Fatalf("%d drive-bys, want at most %d", len(tr.DriveBys), d.Config.DriveBys)
	}
	iv := d.Config.PingInterval
	for _, db := range tr.DriveBys {
		s, st := d.Shipments[db.Shipment], tr.Shipments[db.Shipment]
		what := fmt.Sprintf("drive-by of shipment %d by van %d on leg %d", db.Shipment, db.Van, db.Leg)
		if st.Van != db.Van || st.Stop <= db.Leg || !db.Time.Before(st.Arrive) || db.Extra > driveByMaxExtra {
			t.Fatalf("%s at %v: served by van %d as stop %d at %v, extra %v", what, db.Time, st.Van, st.Stop, st.Arrive, db.Extra)
		}
		// The truth passes exactly through the stop, moving.
		p, _ := tr.Position(db.Van, db.Time)
		after, _ := tr.Position(db.Van, db.Time.Add(time.Second))
		if dm := distM(p.Lat, p.Lon, s.Lat, s.Lon); dm > 0.5 || distM(after.Lat, after.Lon, s.Lat, s.Lon) == 0 {
			t.Fatalf("%s: truth %.1f m from the stop at the pass, then %.1f m", what, dm, distM(after.Lat, after.Lon, s.Lat, s.Lon))
		}
		// One of the two pings around the pass lies within 30 m of the
		// stop, or within half the distance driven between them, plus 3σ
		// of noise.
		pings := tr.Vans[db.Van].Pings
		k := int(db.Time.Sub(pings[0].Time) / iv)
		a, b := pings[k], pings[k+1]
		driven := 0.0 // truth path length between the two pings
		for x := a.Time; x.Before(b.Time); x = x.Add(time.Second) {
			q, _ := tr.Position(db.Van, x)
			driven += q.Speed
		}
		nearest := min(distM(a.Lat, a.Lon, s.Lat, s.Lon), distM(b.Lat, b.Lon, s.Lat, s.Lon))
		if limit := max(30, driven/2) + 3*d.Config.GPSSigma + 5; nearest > limit {
			t.Errorf("%s: nearest ping %.1f m from the stop (limit %.1f)", what, nearest, limit)
		}
		// No dwell: every run of consecutive pings within 30 m of the stop
		// before the final approach lasts less than two intervals (20 s
		// with pings more frequent than every 10 s).
		for i := 0; i < len(pings); {
			if distM(pings[i].Lat, pings[i].Lon, s.Lat, s.Lon) >= 30 {
				i++
				continue
			}
			j := i
			for j+1 < len(pings) && distM(pings[j+1].Lat, pings[j+1].Lon, s.Lat, s.Lon) < 30 {
				j++
			}
			if !pings[j].Time.Before(st.Arrive) || (j+1 < len(pings) && !pings[j+1].Time.Before(st.Arrive)) {
				break // the approach to the stop itself
			}
			if dur := pings[j].Time.Sub(pings[i].Time); dur >= max(2*iv, 20*time.Second) {
				t.Errorf("%s: %d pings within 30 m over %v from %v", what, j-i+1, dur, pings[i].Time)
			}
			i = j + 1
		}
	}
}

// checkClosure checks the closure: on the planned route of its van's leg,
// in the truth world from its start, and never driven while closed.
func checkClosure(t *testing.T, d *Day, tr *DayTruth) {
	t.Helper()
	c := tr.Closure
	if c == nil {
		if tr.World != d.World() {
			t.Fatal("no closure, but a new world")
		}
		for v, vt := range tr.Vans {
			if len(vt.Detours) != 0 {
				t.Fatalf("van %d detours without a closure", v)
			}
		}
		return
	}
	n := d.Graph().Road
	vt := tr.Vans[c.Van]
	if c.Leg < 2 || c.Leg >= len(vt.Stops) || !slices.Contains(vt.Routes[c.Leg].Edges, c.Edge) || !slices.Contains(c.Edges, c.Edge) {
		t.Fatalf("closure %+v not on van %d's planned leg %d of %d stops", c, c.Van, c.Leg, len(vt.Stops))
	}
	for _, e := range c.Edges {
		if n.Edges[e].WayID != c.WayID {
			t.Fatalf("closed edge %d on way %d, closure of way %d", e, n.Edges[e].WayID, c.WayID)
		}
		if !math.IsInf(tr.World.Factor(e, c.Start), 1) || !math.IsInf(tr.World.Factor(e, c.End.Add(-time.Second)), 1) {
			t.Fatalf("closed edge %d open in the truth world at %v", e, c.Start)
		}
		if before := c.Start.Add(-time.Second); tr.World.Factor(e, before) != d.World().Factor(e, before) {
			t.Fatalf("edge %d: factor before the closure changed", e)
		}
	}
	if !c.End.Equal(d.Config.Date.Add(24*time.Hour)) || c.Start.Truncate(time.Second) != c.Start {
		t.Fatalf("closure %v-%v", c.Start, c.End)
	}
	// The affected van turns away on the closure's leg, 20-40 min after it
	// started.
	i := slices.IndexFunc(vt.Detours, func(x Detour) bool { return x.Leg == c.Leg })
	if i < 0 {
		t.Fatalf("van %d did not turn away on leg %d: %+v", c.Van, c.Leg, vt.Detours)
	}
	if lead := vt.Detours[i].Time.Sub(c.Start); lead < closureLeadMin || lead > closureLeadMax+time.Second {
		t.Fatalf("closure started %v before van %d reached it", lead, c.Van)
	}
	checkClosedAvoided(t, tr)
}

// checkClosedAvoided checks that no van drives a closed edge while it is
// closed.
func checkClosedAvoided(t *testing.T, tr *DayTruth) {
	t.Helper()
	c := tr.Closure
	for v, vt := range tr.Vans {
		for _, sp := range vt.Spans {
			for k, e := range sp.Drive.Edges {
				if slices.Contains(c.Edges, e) && !sp.Drive.Enter[k].Before(c.Start) {
					t.Fatalf("van %d enters closed edge %d at %v", v, e, sp.Drive.Enter[k])
				}
			}
		}
	}
}

// TestDayRun drives the reference plan on Monaco and Porto, checks every
// invariant of the truth, and compares it with the same day without the
// closure.
func TestDayRun(t *testing.T) {
	for _, nw := range dayNetworks {
		t.Run(nw.name, func(t *testing.T) {
			g := nw.graph(t)
			w := world(t, g, 1, nil)
			t0 := time.Now()
			d, err := NewDay(w, g, DayConfig{Seed: 1})
			if err != nil {
				t.Fatal(err)
			}
			t1 := time.Now()
			tr := run(t, d, d.Plan, time.Time{})
			elapsed, runTime := time.Since(t0), time.Since(t1)
			pings := 0
			for _, vt := range tr.Vans {
				pings += len(vt.Pings)
			}
			t.Logf("%s: NewDay %v, Run %v: %d pings, %d drive-bys, closure %+v", nw.name, t1.Sub(t0), runTime, pings, len(tr.DriveBys), tr.Closure)
			if elapsed > 5*time.Second {
				t.Errorf("generating and running the day took %v", elapsed)
			}
			checkTruth(t, d, tr, d.Plan, time.Time{})
			if len(tr.DriveBys) != 3 || tr.Closure == nil {
				t.Fatalf("%d drive-bys, closure %v", len(tr.DriveBys), tr.Closure)
			}
			failed, inWindow := 0, 0
			for i, st := range tr.Shipments {
				if st.Outcome == Failed {
					failed++
				}
				if !st.ServiceStart.After(d.Shipments[i].WindowEnd) {
					inWindow++
				}
			}
			if failed != 2 {
				t.Errorf("%d failed shipments, want 2", failed)
			}
			// The windows were set around the expected arrivals of this
			// plan: noise, drive-bys and the closure leave most inside.
			t.Logf("%d of %d services start inside their window", inWindow, len(tr.Shipments))
			if inWindow < 9*len(tr.Shipments)/10 {
				t.Errorf("only %d of %d services start inside their window", inWindow, len(tr.Shipments))
			}

			// The same day without the closure: same demand and drive-bys;
			// the vans that did not meet the closure drive exactly the
			// same day; the affected van is the same up to the closure's
			// leg and later after it.
			cfg := d.Config
			cfg.NoIncident = true
			d0, err := NewDay(w, g, cfg)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(d0.Shipments, d.Shipments) || !reflect.DeepEqual(d0.Plan, d.Plan) {
				t.Fatal("NoIncident changed the demand")
			}
			tr0 := run(t, d0, d.Plan, time.Time{})
			checkTruth(t, d0, tr0, d.Plan, time.Time{})
			if tr0.Closure != nil || len(tr0.DriveBys) != len(tr.DriveBys) {
				t.Fatalf("without incident: closure %v, %d drive-bys", tr0.Closure, len(tr0.DriveBys))
			}
			for i := range tr.DriveBys {
				a, b := tr.DriveBys[i], tr0.DriveBys[i]
				if a.Shipment != b.Shipment || a.Van != b.Van || a.Leg != b.Leg {
					t.Fatalf("drive-by %d: %+v vs %+v without the closure", i, a, b)
				}
			}
			for v, vt := range tr.Vans {
				if len(vt.Detours) == 0 && !reflect.DeepEqual(vt.Spans, tr0.Vans[v].Spans) {
					t.Fatalf("van %d met no closure but drove differently", v)
				}
			}
			c := tr.Closure
			stops := tr.Vans[c.Van].Stops
			delays := make([]time.Duration, len(stops))
			for k, s := range stops {
				delays[k] = tr.Shipments[s].Arrive.Sub(tr0.Shipments[s].Arrive)
				switch {
				case k < c.Leg && delays[k] != 0:
					t.Fatalf("van %d stop %d before the closure's leg %d: delay %v", c.Van, k, c.Leg, delays[k])
				case k == c.Leg && delays[k] <= 0:
					t.Fatalf("van %d stop %d after the detour: delay %v", c.Van, k, delays[k])
				case k > c.Leg && delays[k] < -time.Second:
					t.Fatalf("van %d stop %d after the detour: %v earlier", c.Van, k, -delays[k])
				}
			}
			t.Logf("closure of way %d (%d edges) on van %d leg %d: planned detour +%.0f s, arrival delays %v", c.WayID, len(c.Edges), c.Van, c.Leg, c.Extra, delays[c.Leg:])
		})
	}
}

// TestDayReproducible checks that a day and its truth are functions of the
// seed: equal for equal seeds, different for another one, and that Run
// leaves the Day unchanged.
func TestDayReproducible(t *testing.T) {
	g := monaco(t)
	cfg := DayConfig{Seed: 7, Shipments: 120, Vans: 4}
	a, b := newDay(t, g, cfg), newDay(t, g, cfg)
	if !reflect.DeepEqual(a, b) {
		t.Fatal("two days from the same seed differ")
	}
	ta := run(t, a, a.Plan, time.Time{})
	tb := run(t, b, b.Plan, time.Time{})
	if !reflect.DeepEqual(ta, tb) {
		t.Fatal("two runs of the same day differ")
	}
	if !reflect.DeepEqual(a, b) {
		t.Fatal("Run modified the day")
	}
	if again := run(t, a, a.Plan, time.Time{}); !reflect.DeepEqual(ta, again) {
		t.Fatal("a second run of the same day differs")
	}
	cfg.Seed = 8
	c := newDay(t, g, cfg)
	same := 0
	for i := range c.Shipments {
		if c.Shipments[i].Lat == a.Shipments[i].Lat || c.Shipments[i].Recipient == a.Shipments[i].Recipient {
			same++
		}
	}
	if same > 0 {
		t.Errorf("another seed repeats %d shipments", same)
	}
}

// TestDayOrders drives plans other than the reference one: partial,
// reversed, fewer vans, an early start with waits at the windows.
func TestDayOrders(t *testing.T) {
	g := monaco(t)
	d := newDay(t, g, DayConfig{Seed: 3, Shipments: 150, Vans: 6})
	reversed := make([][]int, len(d.Plan))
	for v, seq := range d.Plan {
		reversed[v] = slices.Clone(seq)
		slices.Reverse(reversed[v])
	}
	partial := [][]int{d.Plan[0][:10], nil, d.Plan[2], d.Plan[3][5:]}
	cases := []struct {
		name  string
		order [][]int
		start time.Time
		check func(t *testing.T, tr *DayTruth)
	}{
		{name: "reference", order: d.Plan},
		{name: "reversed", order: reversed, check: func(t *testing.T, tr *DayTruth) {
			late := 0
			for i, st := range tr.Shipments {
				if st.ServiceStart.After(d.Shipments[i].WindowEnd) {
					late++
				}
			}
			t.Logf("%d late services", late)
			if late == 0 {
				t.Error("reversing the tours made no service late")
			}
		}},
		{name: "partial", order: partial, check: func(t *testing.T, tr *DayTruth) {
			unplanned := 0
			for _, st := range tr.Shipments {
				if st.Van < 0 {
					unplanned++
				}
			}
			if want := len(d.Shipments) - 10 - len(d.Plan[2]) - len(d.Plan[3]) + 5; unplanned != want {
				t.Errorf("%d unplanned shipments, want %d", unplanned, want)
			}
		}},
		{name: "early start", order: d.Plan, start: d.Config.Date.Add(6 * time.Hour), check: func(t *testing.T, tr *DayTruth) {
			waits := 0
			for _, vt := range tr.Vans {
				for _, sp := range vt.Spans {
					if sp.Kind == SpanWait {
						waits++
					}
				}
			}
			if waits < len(d.Vans) {
				t.Errorf("%d waits for windows leaving at 06:00", waits)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tr := run(t, d, tc.order, tc.start)
			checkTruth(t, d, tr, tc.order, tc.start)
			if tc.check != nil {
				tc.check(t, tr)
			}
		})
	}
}

// TestDayOptions checks the effect of the DayConfig fields.
func TestDayOptions(t *testing.T) {
	g := monaco(t)
	cases := []struct {
		name  string
		cfg   DayConfig
		check func(t *testing.T, d *Day, tr *DayTruth)
	}{
		{"small", DayConfig{Vans: 3, Shipments: 40, NotHome: 5}, func(t *testing.T, d *Day, tr *DayTruth) {
			if d.Config.NotHome != 5 {
				t.Errorf("NotHome %d", d.Config.NotHome)
			}
		}},
		{"nobody out, no drive-bys, no incident", DayConfig{NotHome: -1, DriveBys: -1, NoIncident: true}, func(t *testing.T, d *Day, tr *DayTruth) {
			for i, st := range tr.Shipments {
				if st.Outcome != Delivered {
					t.Fatalf("shipment %d: %q", i, st.Outcome)
				}
			}
			if len(tr.DriveBys) != 0 || tr.Closure != nil {
				t.Errorf("%d drive-bys, closure %v", len(tr.DriveBys), tr.Closure)
			}
		}},
		{"exact GPS, 30 s pings", DayConfig{GPSSigma: -1, PingInterval: 30 * time.Second}, func(t *testing.T, d *Day, tr *DayTruth) {
			for _, vt := range tr.Vans {
				for _, p := range vt.Pings {
					lat, lon, _ := edgeAt(d.Graph().Road, p.Edge, p.Fraction)
					if p.Lat != lat || p.Lon != lon {
						t.Fatalf("noisy ping %+v without GPS noise", p)
					}
				}
			}
		}},
		{"short windows, late shift", DayConfig{WindowLength: 45 * time.Minute, ShiftStart: 13 * time.Hour, ShiftLength: 6 * time.Hour, Service: 2 * time.Minute}, nil},
		{"many drive-bys", DayConfig{DriveBys: 12, Seed: 5}, func(t *testing.T, d *Day, tr *DayTruth) {
			t.Logf("%d drive-bys", len(tr.DriveBys))
			if len(tr.DriveBys) < 8 {
				t.Errorf("%d drive-bys of 12", len(tr.DriveBys))
			}
		}},
		{"explicit depot", DayConfig{DepotLat: 43.7384, DepotLon: 7.4246, Radius: 800}, func(t *testing.T, d *Day, tr *DayTruth) {
			if dm := distM(d.Depot.Lat, d.Depot.Lon, 43.7384, 7.4246); dm > 100 {
				t.Errorf("depot %.0f m from the requested point", dm)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := newDay(t, g, tc.cfg)
			checkDemand(t, d)
			tr := run(t, d, d.Plan, time.Time{})
			checkTruth(t, d, tr, d.Plan, time.Time{})
			if tc.check != nil {
				tc.check(t, d, tr)
			}
		})
	}
}

func TestDayBadInput(t *testing.T) {
	g := monaco(t)
	w := world(t, g, 1, nil)
	configs := []struct {
		name string
		cfg  DayConfig
	}{
		{"date not midnight", DayConfig{Date: monday.Add(time.Hour)}},
		{"date after the world", DayConfig{Date: monday.Add(24 * time.Hour)}},
		{"date before the world", DayConfig{Date: monday.Add(-24 * time.Hour)}},
		{"negative vans", DayConfig{Vans: -1}},
		{"negative shipments", DayConfig{Shipments: -3}},
		{"depot off the globe", DayConfig{DepotLat: 91, DepotLon: 7}},
		{"negative radius", DayConfig{Radius: -1}},
		{"NaN radius", DayConfig{Radius: math.NaN()}},
		{"shift past midnight", DayConfig{ShiftStart: 20 * time.Hour, ShiftLength: 6 * time.Hour}},
		{"window longer than the shift", DayConfig{ShiftLength: time.Hour, WindowLength: 2 * time.Hour}},
		{"negative service", DayConfig{Service: -time.Minute}},
		{"negative ping interval", DayConfig{PingInterval: -time.Second}},
		{"infinite GPS sigma", DayConfig{GPSSigma: math.Inf(1)}},
		{"more not-home than shipments", DayConfig{Shipments: 5, NotHome: 6}},
		{"shift too short for the tours", DayConfig{Vans: 1, Shipments: 200, ShiftLength: time.Hour, WindowLength: time.Hour}},
	}
	for _, tc := range configs {
		if _, err := NewDay(w, g, tc.cfg); !errors.Is(err, errConfig) {
			t.Errorf("%s: err %v", tc.name, err)
		} else {
			t.Logf("%s: %v", tc.name, err)
		}
	}
	other := world(t, g, 1, nil)
	gOther := &graph.Graph{Road: &graph.Network{}}
	for name, f := range map[string]func() (*Day, error){
		"nil world":      func() (*Day, error) { return NewDay(nil, g, DayConfig{}) },
		"nil graph":      func() (*Day, error) { return NewDay(other, nil, DayConfig{}) },
		"other network":  func() (*Day, error) { return NewDay(other, gOther, DayConfig{}) },
		"depot far away": func() (*Day, error) { return NewDay(w, g, DayConfig{DepotLat: 41.15, DepotLon: -8.61}) },
	} {
		if _, err := f(); !errors.Is(err, errInput) {
			t.Errorf("%s: err %v", name, err)
		}
	}

	d := newDay(t, g, DayConfig{Vans: 3, Shipments: 30})
	p := d.Plan
	orders := []struct {
		name  string
		order [][]int
		start time.Time
	}{
		{"too many vans", [][]int{p[0], p[1], p[2], {}}, time.Time{}},
		{"negative index", [][]int{{0, -1}}, time.Time{}},
		{"index out of range", [][]int{{30}}, time.Time{}},
		{"duplicate in a van", [][]int{{1, 2, 1}}, time.Time{}},
		{"duplicate across vans", [][]int{{1, 2}, {3, 2}}, time.Time{}},
		{"start before the day", p, monday.Add(-time.Minute)},
		{"start the next day", p, monday.Add(24 * time.Hour)},
	}
	for _, tc := range orders {
		if _, err := d.Run(tc.order, tc.start); !errors.Is(err, errInput) {
			t.Errorf("%s: err %v", tc.name, err)
		} else {
			t.Logf("%s: %v", tc.name, err)
		}
	}
	tr := run(t, d, p, time.Time{})
	for _, v := range []int{-1, 3} {
		if _, err := tr.Position(v, monday); !errors.Is(err, errInput) {
			t.Errorf("Position of van %d: %v", v, err)
		}
	}
}

// TestDayDepotPings: with DepotPings the vans ping at the depot before
// they leave, on the same grid, and the rest of the pings are unchanged.
func TestDayDepotPings(t *testing.T) {
	g := monaco(t)
	w := world(t, g, 1, nil)
	do := func(depot time.Duration) (*Day, *DayTruth) {
		d := newDay(t, g, DayConfig{Seed: 2, Vans: 2, Shipments: 10, NoIncident: true, DepotPings: depot})
		return d, run(t, d, d.Plan, time.Time{})
	}
	_, plain := do(0)
	d, early := do(20 * time.Minute)
	for v := range plain.Vans {
		a, b := plain.Vans[v].Pings, early.Vans[v].Pings
		extra := len(b) - len(a)
		if extra != 120 { // 20 min of 10 s pings
			t.Fatalf("van %d: %d pings more, want 120", v, extra)
		}
		dep := plain.Vans[v].Depart
		for i, p := range b[:extra] {
			if !p.Time.Equal(dep.Add(-time.Duration(extra-i) * 10 * time.Second)) {
				t.Fatalf("van %d: depot ping %d at %v, departure %v", v, i, p.Time, dep)
			}
			if m := groundDist(p.Lat, p.Lon, d.Depot.Lat, d.Depot.Lon); m > 40 {
				t.Fatalf("van %d: depot ping %d is %.0f m from the depot", v, i, m)
			}
		}
		if len(a) > 0 && !b[extra].Time.Equal(a[0].Time) {
			t.Fatalf("van %d: the pings after the departure moved", v)
		}
	}
	if _, err := NewDay(w, g, DayConfig{DepotPings: -time.Minute}); err == nil {
		t.Error("negative DepotPings accepted")
	}
}
