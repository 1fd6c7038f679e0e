package dispatch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lastmile/lastmile/engine/store"
)

// TestHandover: van-1 cannot keep L's window after its other stops;
// van-2, out on the same plan near L, can. With handovers on and a gain
// they clear, L moves to van-2: its old stop ends handed_over, a new stop
// of the same attempt joins van-2 after M, the recipient's timeline goes
// on with one rerouted naming van-2 (no second out_for_delivery), and
// van-2's driver delivers it. Off, with a gain they do not clear, or
// with no room on van-2 for L's parcel, nothing moves.
func TestHandover(t *testing.T) {
	cases := []struct {
		name    string
		cfg     Config
		handed  bool
		backlog bool // van-1's first two minutes of pings in one upload
		room    int  // van-2's capacity in parcels (0: none)
	}{
		{"off", Config{HandoverGain: time.Minute}, false, false, 0},
		{"gain too small", Config{Handover: true}, false, false, 0},
		{"gain too small, a backlog", Config{Handover: true}, false, true, 0},
		{"van-2 full", Config{Handover: true, HandoverGain: time.Minute}, false, false, 1},
		{"on", Config{Handover: true, HandoverGain: time.Minute}, true, false, 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			backends(t, func(t *testing.T, dsn string) {
				cfg := tc.cfg
				cfg.RerouteSlack = time.Minute
				fx := newFixtureWith(t, dsn, cfg)
				testHandover(t, fx, tc.handed, tc.backlog, tc.room)
			})
		})
	}
}

func testHandover(t *testing.T, fx *fixture, handed, backlog bool, room int) {
	ctx := context.Background()
	t0 := fx.now.Unix()
	wide := [2]int64{t0, t0 + 7200}
	fx.ship(t, "P", east(500), wide)
	fx.ship(t, "K", east(6000), wide)
	// van-1 reaches L at about t0+860: 1.6 min past the slack.
	fx.ship(t, "L", east(6500), [2]int64{t0, t0 + 700})
	fx.ship(t, "M", east(7000), wide)
	start2 := east(6000)
	v1 := json.RawMessage(fmt.Sprintf(`{"id":1,"vehicle":"van-1","start":[%v,%v]}`, depot[0], depot[1]))
	capacity := ""
	if room > 0 {
		capacity = fmt.Sprintf(`,"capacity":[%d]`, room) // each shipment is one parcel
	}
	v2 := json.RawMessage(fmt.Sprintf(`{"id":2,"vehicle":"van-2","start":[%v,%v]%s}`, start2[0], start2[1], capacity))
	plan, err := fx.s.CreatePlan(ctx, PlanInput{Vehicles: []json.RawMessage{v1, v2}, Routes: []SequencedRoute{
		{Vehicle: "van-1", Shipments: []string{"P", "K", "L"}}, {Vehicle: "van-2", Shipments: []string{"M"}}}})
	if err != nil {
		t.Fatal(err)
	}
	oldL := plan.Routes[0].Stops[2].ID
	ping := func(vehicle string, at time.Time, p [2]float64) {
		t.Helper()
		fx.now = at
		if _, err := fx.s.Positions(ctx, []Ping{{Vehicle: vehicle, Time: at, Location: p, Matched: p, MatchedOK: true,
			Speed: math.NaN(), Heading: math.NaN()}}); err != nil {
			t.Fatal(err)
		}
	}
	// van-2 leaves its start; then van-1 leaves the depot.
	ping("van-2", fx.now, start2)
	ping("van-2", fx.now.Add(10*time.Second), east(6200))
	if backlog {
		// delayed waits for the handover's choice at the first update
		// only: the next one, in the same upload, fires it.
		at := fx.now.Add(10 * time.Second)
		fx.now = at.Add(70 * time.Second)
		if _, err := fx.s.Positions(ctx, []Ping{
			{Vehicle: "van-1", Time: at, Location: east(300), Matched: east(300), MatchedOK: true, Speed: math.NaN(), Heading: math.NaN()},
			{Vehicle: "van-1", Time: fx.now, Location: east(400), Matched: east(400), MatchedOK: true, Speed: math.NaN(), Heading: math.NaN()},
		}); err != nil {
			t.Fatal(err)
		}
		if got := types(fx.events(t, "L")); strings.Count(got, EventDelayed) != 1 {
			t.Errorf("L after a backlog of pings: %s", got)
		}
	} else {
		ping("van-1", fx.now.Add(10*time.Second), east(300))
	}
	fx.checkRunCache(t)

	a, err := fx.s.Vehicle(ctx, "van-1")
	if err != nil {
		t.Fatal(err)
	}
	b, err := fx.s.Vehicle(ctx, "van-2")
	if err != nil {
		t.Fatal(err)
	}
	order := func(v VehicleView) string {
		var out []string
		for _, st := range v.Stops {
			out = append(out, st.Tracking+":"+st.Status)
		}
		return strings.Join(out, " ")
	}
	sv, err := fx.s.Shipment(ctx, "L")
	if err != nil {
		t.Fatal(err)
	}
	if !handed {
		if got := order(b); got != "M:out_for_delivery" {
			t.Errorf("van-2: %s", got)
		}
		if sv.Vehicle == nil || *sv.Vehicle != "van-1" || *sv.Stop != oldL {
			t.Errorf("L: %+v", sv)
		}
		// No handover: delayed fires, at the latest at the next update.
		ping("van-1", fx.now.Add(70*time.Second), east(400))
		if got := types(fx.events(t, "L")); strings.Count(got, EventDelayed) != 1 {
			t.Errorf("L without a handover: %s", got)
		}
		// A handover planned on a state that has moved since is not made.
		veh, err := fx.st.Vehicle(ctx, "van-1")
		if err != nil {
			t.Fatal(err)
		}
		p := &handoverPlan{from: "van-1", to: "van-2", stops: []int64{oldL}, before: []int64{0}, etas: []ETA{{}}}
		var de *Error
		if err := fx.s.transfer(ctx, p, veh.Version-1, fx.now); !errors.As(err, &de) || de.Code != "Conflict" {
			t.Errorf("transfer on an old version: %v", err)
		}
		if b2, _ := fx.s.Vehicle(ctx, "van-2"); order(b2) != "M:out_for_delivery" || b2.Version != b.Version {
			t.Errorf("van-2 after a refused transfer: %s, version %d", order(b2), b2.Version)
		}
		if err := fx.s.transfer(ctx, p, veh.Version, fx.now); err != nil {
			t.Fatal(err)
		}
		if b2, _ := fx.s.Vehicle(ctx, "van-2"); order(b2) != "M:out_for_delivery L:out_for_delivery" {
			t.Errorf("van-2 after the transfer: %s", order(b2))
		}
		fx.checkRunCache(t)
		return
	}
	if got, want := order(a), "P:out_for_delivery K:out_for_delivery L:handed_over"; got != want {
		t.Errorf("van-1: %s, want %s", got, want)
	}
	// After M: van-2 is driving to it.
	if got, want := order(b), "M:out_for_delivery L:out_for_delivery"; got != want {
		t.Fatalf("van-2: %s, want %s", got, want)
	}
	newL := b.Stops[1].ID
	if sv.Status != StatusOutForDelivery || sv.Vehicle == nil || *sv.Vehicle != "van-2" || *sv.Stop != newL || sv.Attempt != 1 {
		t.Errorf("L after the handover: status %s vehicle %v stop %v (new %d) attempt %d", sv.Status, sv.Vehicle, sv.Stop, newL, sv.Attempt)
	}
	evs := sv.Events
	if got := types(evs); strings.Count(got, EventOutForDelivery) != 1 || !strings.HasSuffix(got, EventRerouted) {
		t.Errorf("L's events: %s", got)
	}
	var d struct {
		Vehicle, From, Reason string
		ETA                   ETA
	}
	json.Unmarshal(evs[len(evs)-1].Data, &d)
	// From van-2 at 6,200 m, through M at 7,000 m (2 min), back to L.
	wantETA := fx.now.Unix() + (800+500)/speed + 120
	if d.Vehicle != "van-2" || d.From != "van-1" || d.Reason != "handover" || d.ETA.Arrival != int64(wantETA) {
		t.Errorf("L's rerouted: %s", evs[len(evs)-1].Data)
	}
	if got := types(fx.events(t, "M")); strings.Contains(got, EventRerouted) {
		t.Errorf("M, still first: %s", got)
	}
	if a.Version != 2 || b.Version != 2 {
		t.Errorf("versions: van-1 %d, van-2 %d; want 2 and 2", a.Version, b.Version)
	}
	fx.checkRunCache(t)
	// The old stop is over; van-1's driver cannot deliver it, van-2's can.
	var de *Error
	if _, err := fx.s.SetStopStatus(ctx, oldL, StatusInput{Status: StatusDelivered}, "van-1"); !errors.As(err, &de) || de.Code != "Conflict" {
		t.Errorf("delivered on the old stop: %v", err)
	}
	if _, err := fx.s.SetStopStatus(ctx, newL, StatusInput{Status: StatusDelivered}, "van-1"); !errors.As(err, &de) || de.Code != "Forbidden" {
		t.Errorf("delivered by van-1's driver on the new stop: %v", err)
	}
	ping("van-2", fx.now.Add(60*time.Second), east(6700))
	if _, err := fx.s.SetStopStatus(ctx, newL, StatusInput{Status: StatusDelivered}, "van-2"); err != nil {
		t.Fatal(err)
	}
	if sv, _ := fx.s.Shipment(ctx, "L"); sv.Status != StatusDelivered {
		t.Errorf("L delivered by van-2: %s", sv.Status)
	}
	// What the recipient was told before is not told again, and the delay
	// the handover undid was not told at all.
	if got, want := types(fx.events(t, "L")), "out_for_delivery stops_away2 arriving_soon rerouted stops_away1 arrived delivered"; got != want {
		t.Errorf("L's timeline: %s, want %s", got, want)
	}
	for _, tr := range []string{"P", "K", "L", "M"} {
		for i, e := range fx.events(t, tr) {
			if e.Seq != int64(i+1) {
				t.Errorf("%s: event %d has seq %d", tr, i, e.Seq)
			}
		}
	}
	// van-1 is on time now: no second handover, and its route ends with
	// K (L handed over does not keep it open).
	fx.checkRunCache(t)
}

// TestHandoverPlacement: stops given to a van keep the order
// insertCheapest put them in when one goes before another given one:
// the plan names the receiving van's next own stop for both, in that
// order (transfer's insertStops keeps news at one place in order).
// Naming the stop each went before put the first given one last.
func TestHandoverPlacement(t *testing.T) {
	b := &routeRun{route: store.Route{ID: 2, Vehicle: "van-2"}, stops: []store.Stop{
		{ID: 10, Shipment: 1, Status: StatusOutForDelivery, Location: east(7000)},
		{ID: 11, Shipment: 2, Status: StatusOutForDelivery, Location: east(12000)},
	}}
	news := []store.Stop{ // the latest first, as handOver takes them
		{ID: 20, Shipment: 3, Status: StatusOutForDelivery, Location: east(9000)},
		{ID: 21, Shipment: 4, Status: StatusOutForDelivery, Location: east(8000)},
	}
	stops := insertCheapest(b, east(6000), news)
	var got []int64
	for _, st := range stops {
		got = append(got, st.Shipment)
	}
	if want := []int64{1, 4, 3, 2}; !slices.Equal(got, want) {
		t.Fatalf("order of shipments %v, want %v", got, want)
	}
	p := placed("van-1", &routeRun{route: b.route, stops: stops}, news)
	if !slices.Equal(p.stops, []int64{21, 20}) || !slices.Equal(p.before, []int64{11, 11}) || p.to != "van-2" {
		t.Errorf("plan: stops %v before %v to %s; want [21 20] before [11 11] to van-2", p.stops, p.before, p.to)
	}
}
