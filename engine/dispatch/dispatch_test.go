package dispatch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"path/filepath"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lastmile/lastmile/engine/seal"
	"github.com/lastmile/lastmile/engine/store"
	"github.com/lastmile/lastmile/internal/pgtest"
	"github.com/lastmile/lastmile/vrp"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// The test world: a straight road east of the depot; the van drives at
// speed m/s, the predictor knows that speed (straight lines).
const speed = 10.0

var depot = [2]float64{-8.60, 41.15}

// east returns the point m metres east of the depot.
func east(m float64) [2]float64 {
	return [2]float64{depot[0] + m/(111_320*math.Cos(depot[1]*math.Pi/180)), depot[1]}
}

// straightPredict predicts arrivals along straight lines at speed, with
// a ±60 s interval, waiting for windows.
func straightPredict(vehicle string, pos [2]float64, now time.Time, stops []PredictStop) ([]Prediction, error) {
	out := make([]Prediction, len(stops))
	t := float64(now.Unix())
	for i, s := range stops {
		t += distance(pos, s.Location) / speed
		a := int64(math.Round(t))
		out[i] = Prediction{a, a - 60, a + 60}
		if s.Window[0] > 0 && t < float64(s.Window[0]) {
			t = float64(s.Window[0])
		}
		t += s.Service.Seconds()
		pos = s.Location
	}
	return out, nil
}

type fixture struct {
	s   *Service
	st  *store.Store
	now time.Time
}

func openStore(t *testing.T, dsn string) *store.Store {
	t.Helper()
	ring, err := seal.NewRing(seal.GenerateKey(1))
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(context.Background(), dsn, store.Options{Ring: ring})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func backends(t *testing.T, f func(t *testing.T, dsn string)) {
	t.Run("sqlite", func(t *testing.T) { f(t, filepath.Join(t.TempDir(), "d.db")) })
	t.Run("postgres", func(t *testing.T) { f(t, pgtest.DSN(t)) })
}

func newFixture(t *testing.T, dsn string) *fixture {
	return newFixtureWith(t, dsn, Config{})
}

// newSolvingFixture also re-routes (straight-line solver, 1 min slack).
func newSolvingFixture(t *testing.T, dsn string) *fixture {
	return newFixtureWith(t, dsn, Config{Solve: straightSolve, RerouteSlack: time.Minute})
}

func newFixtureWith(t *testing.T, dsn string, cfg Config) *fixture {
	fx := &fixture{now: time.Unix(1_767_600_000, 0)}
	fx.st = openStore(t, dsn)
	cfg.Store, cfg.Predict, cfg.Now = fx.st, straightPredict, func() time.Time { return fx.now }
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	fx.s = s
	return fx
}

func (fx *fixture) ship(t *testing.T, tracking string, at [2]float64, window [2]int64) {
	t.Helper()
	svc := 120.0
	_, err := fx.s.CreateShipment(context.Background(), ShipmentInput{Tracking: tracking, Recipient: RecipientInput{Name: "R " + tracking},
		Location: at, TimeWindow: &window, Service: &svc})
	if err != nil {
		t.Fatal(err)
	}
}

// drive sends pings every 10 s moving from a to b at speed, then stays
// at b for stay; it returns the time after.
func (fx *fixture) drive(t *testing.T, from time.Time, a, b [2]float64, stay time.Duration) time.Time {
	t.Helper()
	d := distance(a, b)
	var batch []Ping
	at := from
	for el := 0.0; ; el += 10 {
		f := math.Min(el*speed/d, 1)
		if d == 0 {
			f = 1
		}
		p := [2]float64{a[0] + f*(b[0]-a[0]), a[1] + f*(b[1]-a[1])}
		batch = append(batch, Ping{Vehicle: "van-1", Time: at, Location: p, Matched: p, MatchedOK: true, Speed: math.NaN(), Heading: math.NaN()})
		at = at.Add(10 * time.Second)
		if f >= 1 && at.Sub(from) >= time.Duration(d/speed*float64(time.Second))+stay {
			break
		}
	}
	if _, err := fx.s.Positions(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
	fx.checkRunCache(t)
	return at
}

// checkRunCache fails when a vehicle's cached route state is current (its
// version is the store's) but differs from what the store holds.
func (fx *fixture) checkRunCache(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	fx.s.runs.mu.Lock()
	entries := maps.Clone(fx.s.runs.m)
	owners := maps.Clone(fx.s.runs.owner)
	fx.s.runs.mu.Unlock()
	// The stops' owners: those of the kept entries, each the store's.
	n := 0
	for _, e := range entries {
		for _, st := range e.stops {
			n++
			if owners[st.ID] != e.veh.ID {
				t.Errorf("stop %d of %s's cached route: owner %q", st.ID, e.veh.ID, owners[st.ID])
			}
		}
	}
	if len(owners) != n {
		t.Errorf("%d stops' owners kept for the %d stops of the cached routes", len(owners), n)
	}
	for id, v := range owners {
		if _, stored, err := fx.st.StopRoute(ctx, id); err != nil || stored != v {
			t.Errorf("stop %d: owner %q in the cache, %q (%v) in the store", id, v, stored, err)
		}
	}
	for name, e := range entries {
		veh, err := fx.st.Vehicle(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if veh.Version != e.veh.Version {
			continue // stale: the transaction reads again
		}
		r, err := fx.st.Route(ctx, veh.Route)
		if err != nil {
			t.Fatal(err)
		}
		stops, err := fx.st.RouteStops(ctx, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		if veh != e.veh {
			t.Errorf("cached vehicle %+v, stored %+v", e.veh, veh)
		}
		if r != e.route {
			t.Errorf("cached route %+v, stored %+v", e.route, r)
		}
		if !reflect.DeepEqual(stops, e.stops) {
			t.Errorf("cached stops differ from the stored ones:\n%+v\n%+v", e.stops, stops)
		}
	}
}

func (fx *fixture) events(t *testing.T, tracking string) []Event {
	t.Helper()
	v, err := fx.s.Shipment(context.Background(), tracking)
	if err != nil {
		t.Fatal(err)
	}
	return v.Events
}

func types(evs []Event) string {
	var out []string
	for _, e := range evs {
		s := e.Type
		if e.Type == EventStopsAway {
			var d struct{ Stops int }
			json.Unmarshal(e.Data, &d)
			s += fmt.Sprint(d.Stops)
		}
		out = append(out, s)
	}
	return strings.Join(out, " ")
}

// TestDayOnARoad drives one van through three stops: the first stop lies
// on the way to the second, so the van passes it (a drive-by) before
// serving it; one recipient is not at home; one window is too early to
// keep.
func TestDayOnARoad(t *testing.T) {
	backends(t, func(t *testing.T, dsn string) {
		fx := newFixture(t, dsn)
		ctx := context.Background()
		t0 := fx.now.Unix()
		A, B, C := east(1000), east(2000), east(3000)
		fx.ship(t, "A", A, [2]int64{t0, t0 + 7200})
		fx.ship(t, "B", B, [2]int64{t0, t0 + 7200})
		fx.ship(t, "C", C, [2]int64{t0, t0 + 420}) // too early: delayed
		veh := json.RawMessage(fmt.Sprintf(`{"id":1,"vehicle":"van-1","driver":"Ana","start":[%v,%v],"end":[%v,%v]}`, depot[0], depot[1], depot[0], depot[1]))
		plan, err := fx.s.CreatePlan(ctx, PlanInput{Vehicles: []json.RawMessage{veh}, Routes: []SequencedRoute{{Vehicle: "van-1", Shipments: []string{"B", "A", "C"}}}})
		if err != nil {
			t.Fatal(err)
		}
		stopID := map[string]int64{}
		for _, st := range plan.Routes[0].Stops {
			stopID[st.Tracking] = st.ID
			if st.Arrival == 0 {
				t.Errorf("stop %s: no planned arrival", st.Tracking)
			}
		}
		// At the depot: nothing happens.
		at := fx.drive(t, fx.now, depot, depot, 60*time.Second)
		if evs := fx.events(t, "A"); len(evs) != 0 {
			t.Fatalf("events before departure: %s", types(evs))
		}
		// Drive past A to B and stay 2 min: B arrived, A not.
		at = fx.drive(t, at, depot, B, 120*time.Second)
		fx.now = at
		// Another van's driver may not; van-1's may.
		var de *Error
		if _, err := fx.s.SetStopStatus(ctx, stopID["B"], StatusInput{Status: StatusDelivered}, "van-2"); !errors.As(err, &de) || de.Code != "Forbidden" {
			t.Errorf("delivered by van-2's driver: %v", err)
		}
		if _, err := fx.s.SetStopStatus(ctx, stopID["B"], StatusInput{Status: StatusDelivered}, "van-1"); err != nil {
			t.Fatal(err)
		}
		fx.checkRunCache(t)
		checkRunCache(t, fx.s, "van-1")
		if got := types(fx.events(t, "B")); got != "out_for_delivery stops_away0 arriving_soon arrived delivered" {
			t.Errorf("B: %s", got)
		}
		if got := types(fx.events(t, "A")); strings.Contains(got, "arrived") {
			t.Errorf("A arrived on a drive-by: %s", got)
		}
		// Back to A: not at home.
		at = fx.drive(t, at, B, A, 90*time.Second)
		fx.now = at
		if _, err := fx.s.SetStopStatus(ctx, stopID["A"], StatusInput{Status: StatusFailed, Reason: "not_home"}, ""); err != nil {
			t.Fatal(err)
		}
		checkRunCache(t, fx.s, "van-1")
		if got := types(fx.events(t, "A")); got != "out_for_delivery stops_away1 arriving_soon arrived failed" {
			t.Errorf("A: %s", got)
		}
		// The same status again is a no-op; another one a conflict.
		if _, err := fx.s.SetStopStatus(ctx, stopID["A"], StatusInput{Status: StatusFailed, Reason: "not_home"}, ""); err != nil {
			t.Errorf("retried status: %v", err)
		}
		if _, err := fx.s.SetStopStatus(ctx, stopID["A"], StatusInput{Status: StatusDelivered}, ""); !errors.As(err, &de) || de.Code != "Conflict" {
			t.Errorf("delivered after failed: %v", err)
		}
		// On to C.
		at = fx.drive(t, at, A, C, 60*time.Second)
		fx.now = at
		if _, err := fx.s.SetStopStatus(ctx, stopID["C"], StatusInput{Status: StatusDelivered}, ""); err != nil {
			t.Fatal(err)
		}
		fx.checkRunCache(t) // the route done: out of the cache, its stops' owners too
		// C's window closes before the van can make it: delayed, once.
		if got := types(fx.events(t, "C")); got != "out_for_delivery stops_away2 arriving_soon delayed stops_away1 arrived delivered" {
			t.Errorf("C: %s", got)
		}
		for _, tr := range []string{"A", "B", "C"} {
			for i, e := range fx.events(t, tr) {
				if e.Seq != int64(i+1) {
					t.Errorf("%s: event %d has seq %d", tr, i, e.Seq)
				}
			}
		}
		v, err := fx.s.Vehicle(ctx, "van-1")
		if err != nil || v.Status != store.RouteDone || len(v.Stops) != 3 {
			t.Errorf("vehicle at the end: %+v %v", v, err)
		}
		sv, _ := fx.s.Shipment(ctx, "A")
		if sv.Status != StatusFailed || sv.Reason != "not_home" || sv.ETA != nil {
			t.Errorf("A at the end: %+v", sv)
		}
		// Redelivery: a failed shipment can be planned again, attempt 2.
		plan2, err := fx.s.CreatePlan(ctx, PlanInput{Vehicles: []json.RawMessage{veh}, Routes: []SequencedRoute{{Vehicle: "van-1", Shipments: []string{"A"}}}})
		if err != nil {
			t.Fatal(err)
		}
		sv, _ = fx.s.Shipment(ctx, "A")
		if sv.Attempt != 2 || *sv.Stop != plan2.Routes[0].Stops[0].ID {
			t.Errorf("redelivery: %+v", sv)
		}
		// A delivered shipment cannot be planned again.
		_, err = fx.s.CreatePlan(ctx, PlanInput{Vehicles: []json.RawMessage{veh}, Routes: []SequencedRoute{{Vehicle: "van-1", Shipments: []string{"B"}}}})
		if !errors.As(err, &de) || de.Code != "Conflict" {
			t.Errorf("plan a delivered shipment: %v", err)
		}
	})
}

// checkRunCache fails unless the run cache holds the vehicle as the store
// does: what a status update leaves there is what the vehicle's next pings
// start from.
func checkRunCache(t *testing.T, s *Service, vehicle string) {
	t.Helper()
	ctx := context.Background()
	e, ok := s.runs.get(vehicle)
	if !ok {
		t.Fatalf("%s: not in the run cache", vehicle)
	}
	veh, err := s.st.Vehicle(ctx, vehicle)
	if err != nil {
		t.Fatal(err)
	}
	run, err := s.readRun(ctx, veh)
	if err != nil {
		t.Fatal(err)
	}
	if e.veh.Version != veh.Version || e.veh.Route != veh.Route || e.veh.LastMS != veh.LastMS || e.veh.State != veh.State {
		t.Errorf("%s: cached vehicle %+v, stored %+v", vehicle, e.veh, veh)
	}
	if !reflect.DeepEqual(e.route, run.route) {
		t.Errorf("%s: cached route %+v, stored %+v", vehicle, e.route, run.route)
	}
	if !reflect.DeepEqual(e.stops, run.stops) {
		t.Errorf("%s: cached stops %+v, stored %+v", vehicle, e.stops, run.stops)
	}
}

func TestCallerEvents(t *testing.T) {
	fx := newFixture(t, filepath.Join(t.TempDir(), "d.db"))
	ctx := context.Background()
	fx.ship(t, "T1", east(100), [2]int64{1, 2})
	in := CallerEventInput{ID: "abc", Type: "shipped", Time: 100, Note: "left the warehouse"}
	e1, created, err := fx.s.AddCallerEvent(ctx, "T1", in)
	if err != nil || !created || e1.Seq != 1 {
		t.Fatalf("%+v %v %v", e1, created, err)
	}
	e2, created, err := fx.s.AddCallerEvent(ctx, "T1", in)
	if err != nil || created || e2.ID != e1.ID {
		t.Fatalf("again: %+v %v %v", e2, created, err)
	}
	in.Time = 101
	var de *Error
	if _, _, err := fx.s.AddCallerEvent(ctx, "T1", in); !errors.As(err, &de) || de.Code != "Conflict" {
		t.Fatalf("same id, other body: %v", err)
	}
	for _, bad := range []CallerEventInput{{ID: "", Type: "shipped", Time: 1}, {ID: "x", Type: "delivered", Time: 1},
		{ID: "x", Type: "shipped"}, {ID: "x", Type: "shipped", Time: 1, Note: "a\x00b"}} {
		if _, _, err := fx.s.AddCallerEvent(ctx, "T1", bad); !errors.As(err, &de) || de.Code != "InvalidValue" {
			t.Errorf("%+v: %v", bad, err)
		}
	}
	if _, _, err := fx.s.AddCallerEvent(ctx, "NOPE", CallerEventInput{ID: "x", Type: "shipped", Time: 1}); !errors.As(err, &de) || de.Code != "NotFound" {
		t.Errorf("unknown: %v", err)
	}
	v, _ := fx.s.Shipment(ctx, "T1")
	if v.Status != "shipped" || len(v.Events) != 1 {
		t.Errorf("%+v", v)
	}
}

func TestShipmentValidation(t *testing.T) {
	fx := newFixture(t, filepath.Join(t.TempDir(), "d.db"))
	ok := ShipmentInput{Tracking: "OK1", Recipient: RecipientInput{Name: "N", Phone: "+351 912 345 678", Email: "a@b.pt", Language: "pt-PT"}, Location: east(10)}
	cases := []struct {
		name string
		edit func(*ShipmentInput)
		code string
	}{
		{"ok", func(*ShipmentInput) {}, ""},
		{"exists", func(*ShipmentInput) {}, "Conflict"},
		{"tracking with slash", func(s *ShipmentInput) { s.Tracking = "a/b" }, "InvalidValue"},
		{"tracking injection", func(s *ShipmentInput) { s.Tracking = "x'; DROP TABLE shipments; --" }, "InvalidValue"},
		{"tracking long", func(s *ShipmentInput) { s.Tracking = strings.Repeat("A", 65) }, "InvalidValue"},
		{"no name", func(s *ShipmentInput) { s.Tracking, s.Recipient.Name = "N1", " " }, "InvalidValue"},
		{"long name", func(s *ShipmentInput) { s.Tracking, s.Recipient.Name = "N2", strings.Repeat("é", 101) }, "InvalidValue"},
		{"bad phone", func(s *ShipmentInput) { s.Tracking, s.Recipient.Phone = "N3", "call me" }, "InvalidValue"},
		{"bad email", func(s *ShipmentInput) { s.Tracking, s.Recipient.Email = "N4", "Bob <b@c.d>" }, "InvalidValue"},
		{"header injection", func(s *ShipmentInput) { s.Tracking, s.Recipient.Email = "N5", "a@b.c\r\nBcc: x@y.z" }, "InvalidValue"},
		{"no location", func(s *ShipmentInput) { s.Tracking, s.Location = "N6", [2]float64{} }, "InvalidValue"},
		{"bad zone", func(s *ShipmentInput) { s.Tracking, s.TimeZone = "N7", "Mars/Olympus" }, "InvalidValue"},
		{"window reversed", func(s *ShipmentInput) { s.Tracking, s.TimeWindow = "N8", &[2]int64{10, 5} }, "InvalidValue"},
		{"injection text is data", func(s *ShipmentInput) {
			s.Tracking, s.Recipient.Name, s.Address = "N9", "Robert'); DROP TABLE shipments;--", "<script>alert(1)</script>"
		}, ""},
	}
	for _, c := range cases {
		in := ok
		c.edit(&in)
		_, err := fx.s.CreateShipment(context.Background(), in)
		var de *Error
		switch {
		case c.code == "" && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.code != "" && (!errors.As(err, &de) || de.Code != c.code):
			t.Errorf("%s: %v, want %s", c.name, err, c.code)
		}
	}
	sh, err := fx.st.ShipmentByTracking(context.Background(), "N9")
	if err != nil || sh.Recipient.Name != "Robert'); DROP TABLE shipments;--" || sh.Address != "<script>alert(1)</script>" {
		t.Errorf("stored as data: %+v %v", sh, err)
	}
}

func TestAwayCount(t *testing.T) {
	for _, c := range []struct {
		k    int
		want int64
	}{{0, 1}, {1, 1}, {2, 3}, {3, 3}, {4, 5}, {5, 5}, {6, 0}} {
		if got := awayCount([]int{5, 3, 1}, c.k); got != c.want {
			t.Errorf("awayCount(%d) = %d, want %d", c.k, got, c.want)
		}
	}
}

func TestKeysAccess(t *testing.T) {
	fx := newFixture(t, filepath.Join(t.TempDir(), "d.db"))
	ctx := context.Background()
	admin, _, _ := seal.NewAPIKey()
	k, err := NewKeys(fx.st, admin, func() time.Time { return fx.now })
	if err != nil {
		t.Fatal(err)
	}
	if p, err := k.Authenticate(ctx, admin); err != nil || p.Scope != ScopeAdmin {
		t.Fatalf("env admin: %+v %v", p, err)
	}
	d, err := k.Create(ctx, KeyInput{Scope: ScopeDriver, Vehicle: "van-1"})
	if err != nil {
		t.Fatal(err)
	}
	if p, err := k.Authenticate(ctx, d.Key); err != nil || p.Scope != ScopeDriver || p.Vehicle != "van-1" || p.KeyID != d.ID {
		t.Fatalf("driver: %+v %v", p, err)
	}
	if err := k.Revoke(ctx, d.ID); err != nil {
		t.Fatal(err)
	}
	var de *Error
	if _, err := k.Authenticate(ctx, d.Key); !errors.As(err, &de) || de.Code != "Unauthorized" {
		t.Fatalf("revoked: %v", err)
	}
	other, _, _ := seal.NewAPIKey()
	for _, bad := range []string{"", "nope", other, strings.Repeat("x", 10000)} {
		if _, err := k.Authenticate(ctx, bad); !errors.As(err, &de) || de.Code != "Unauthorized" {
			t.Errorf("%.20q: %v", bad, err)
		}
	}
	for _, in := range []KeyInput{{Scope: "root"}, {Scope: ScopeDriver}, {Scope: ScopeReadonly, Vehicle: "van-1"}} {
		if _, err := k.Create(ctx, in); !errors.As(err, &de) || de.Code != "InvalidValue" {
			t.Errorf("%+v: %v", in, err)
		}
	}
}

// straightSolve solves with vrp on straight-line durations at speed.
func straightSolve(p *vrp.Problem, _ Budget) (*vrp.Solution, error) {
	locs := p.Locations()
	n := len(locs)
	m := &vrp.Matrix{Durations: make([][]int64, n)}
	for i := range n {
		m.Durations[i] = make([]int64, n)
		for j := range n {
			m.Durations[i][j] = int64(math.Round(distance(locs[i], locs[j]) / speed))
		}
	}
	p.SetMatrix("car", m)
	return vrp.Solve(p, vrp.Options{Iterations: 500, Seed: 1})
}

// TestRerouteWhenBehind: the planned order makes an early-window stop
// late; once the van is out the ETAs show it and the van is re-routed,
// the stop it is driving to kept first.
func TestRerouteWhenBehind(t *testing.T) {
	backends(t, func(t *testing.T, dsn string) {
		fx := newSolvingFixture(t, dsn)
		ctx := context.Background()
		t0 := fx.now.Unix()
		fx.ship(t, "D", east(500), [2]int64{t0, t0 + 7200})
		fx.ship(t, "A", east(1000), [2]int64{t0, t0 + 600})
		fx.ship(t, "B", east(2000), [2]int64{t0, t0 + 7200})
		fx.ship(t, "C", east(3000), [2]int64{t0, t0 + 7200})
		veh := json.RawMessage(fmt.Sprintf(`{"id":1,"vehicle":"van-1","start":[%v,%v],"end":[%v,%v]}`, depot[0], depot[1], depot[0], depot[1]))
		if _, err := fx.s.CreatePlan(ctx, PlanInput{Vehicles: []json.RawMessage{veh}, Routes: []SequencedRoute{{Vehicle: "van-1", Shipments: []string{"D", "C", "B", "A"}}}}); err != nil {
			t.Fatal(err)
		}
		fx.drive(t, fx.now, depot, east(300), 0)
		v, err := fx.s.Vehicle(ctx, "van-1")
		if err != nil {
			t.Fatal(err)
		}
		var order []string
		for _, st := range v.Stops {
			order = append(order, st.Tracking)
		}
		// The van is on its way to D: D stays first, then A (from D, both
		// A,B,C and A,C,B cost the same drive back to the depot).
		if v.Version != 2 || order[0] != "D" || order[1] != "A" {
			t.Fatalf("after the re-route: version %d, order %v", v.Version, order)
		}
		planned := map[string]int{"D": 0, "C": 1, "B": 2, "A": 3}
		for i, tr := range order {
			want := 0
			if planned[tr] != i {
				want = 1
			}
			if got := strings.Count(types(fx.events(t, tr)), EventRerouted); got != want {
				t.Errorf("%s: %d rerouted events, want %d: %s", tr, got, want, types(fx.events(t, tr)))
			}
		}
		if got := types(fx.events(t, "A")); strings.Contains(got, "delayed") {
			t.Errorf("A delayed although the re-route keeps its window: %s", got)
		}
	})
}

// TestAddStopAndChangeWindow adds a stop to a route out for delivery and
// moves a window so the van must re-route.
func TestAddStopAndChangeWindow(t *testing.T) {
	backends(t, func(t *testing.T, dsn string) {
		fx := newSolvingFixture(t, dsn)
		ctx := context.Background()
		t0 := fx.now.Unix()
		for i, tr := range []string{"A", "B", "C", "D"} {
			fx.ship(t, tr, east(float64(1000*(i+1))), [2]int64{t0, t0 + 7200})
		}
		veh := json.RawMessage(fmt.Sprintf(`{"id":1,"vehicle":"van-1","start":[%v,%v],"end":[%v,%v]}`, depot[0], depot[1], depot[0], depot[1]))
		plan, err := fx.s.CreatePlan(ctx, PlanInput{Vehicles: []json.RawMessage{veh}, Routes: []SequencedRoute{{Vehicle: "van-1", Shipments: []string{"A", "B", "C"}}}})
		if err != nil {
			t.Fatal(err)
		}
		route := plan.Routes[0].Route
		fx.drive(t, fx.now, depot, east(300), 0)
		zero := 0
		st, err := fx.s.AddStop(ctx, route, AddStopInput{Tracking: "D", Position: &zero})
		if err != nil {
			t.Fatal(err)
		}
		if st.Status != StatusOutForDelivery || st.Position != 0 || st.Tracking != "D" {
			t.Fatalf("added stop %+v", st)
		}
		v, _ := fx.s.Vehicle(ctx, "van-1")
		var order []string
		for _, x := range v.Stops {
			order = append(order, x.Tracking)
		}
		if strings.Join(order, ",") != "D,A,B,C" {
			t.Fatalf("order after adding D first: %v", order)
		}
		if got := types(fx.events(t, "D")); got != "out_for_delivery" {
			t.Errorf("D: %s", got)
		}
		if got := types(fx.events(t, "A")); !strings.HasSuffix(got, "rerouted") {
			t.Errorf("A after D was put before it: %s", got)
		}
		var de *Error
		if _, err := fx.s.AddStop(ctx, route, AddStopInput{Tracking: "D"}); !errors.As(err, &de) || de.Code != "Conflict" {
			t.Errorf("D twice: %v", err)
		}
		two := 9
		if _, err := fx.s.AddStop(ctx, route, AddStopInput{Tracking: "A", Position: &two}); !errors.As(err, &de) || de.Code != "Conflict" {
			t.Errorf("A already on the route: %v", err)
		}
		// C's recipient wants it within 15 minutes: the van re-routes at
		// its next ping to keep it, right after D, which it is driving to.
		if _, err := fx.s.ChangeWindow(ctx, "C", WindowInput{TimeWindow: [2]int64{t0, t0 + 900}}); err != nil {
			t.Fatal(err)
		}
		fx.drive(t, fx.now.Add(40*time.Second), east(300), east(400), 0)
		v, _ = fx.s.Vehicle(ctx, "van-1")
		if v.Stops[0].Tracking != "D" || v.Stops[1].Tracking != "C" || v.Version < 3 {
			t.Errorf("after C's window moved: version %d, order %s, %s, ...", v.Version, v.Stops[0].Tracking, v.Stops[1].Tracking)
		}
		if got := types(fx.events(t, "C")); strings.Contains(got, "delayed") {
			t.Errorf("C delayed although the re-route keeps its window: %s", got)
		}
		for _, bad := range []WindowInput{{}, {TimeWindow: [2]int64{10, 5}}} {
			if _, err := fx.s.ChangeWindow(ctx, "C", bad); !errors.As(err, &de) || de.Code != "InvalidValue" {
				t.Errorf("window %v: %v", bad, err)
			}
		}
	})
}

// TestArrivingSoonBeforeDeparture: a van pinging at its depot before its
// shift gets its stops predicted from the shift's start, so a stop minutes
// from the depot hears arriving_soon before the van leaves (and only
// that: out_for_delivery waits for the departure).
func TestArrivingSoonBeforeDeparture(t *testing.T) {
	fx := newFixture(t, filepath.Join(t.TempDir(), "d.db"))
	ctx := context.Background()
	t0 := fx.now.Unix()
	fx.ship(t, "NEAR", east(1200), [2]int64{t0, t0 + 7200})
	fx.ship(t, "FAR", east(30000), [2]int64{t0, t0 + 7200}) // 50 min at 10 m/s
	shift := t0 + 20*60
	veh := json.RawMessage(fmt.Sprintf(`{"id":1,"vehicle":"van-1","start":[%v,%v],"end":[%v,%v],"time_window":[%d,%d]}`,
		depot[0], depot[1], depot[0], depot[1], shift, shift+8*3600))
	if _, err := fx.s.CreatePlan(ctx, PlanInput{Vehicles: []json.RawMessage{veh}, Routes: []SequencedRoute{{Vehicle: "van-1", Shipments: []string{"NEAR", "FAR"}}}}); err != nil {
		t.Fatal(err)
	}
	// 40 min before the shift: too early for any prediction.
	fx.drive(t, fx.now.Add(-20*time.Minute), depot, depot, time.Minute)
	if got := types(fx.events(t, "NEAR")); got != "" {
		t.Fatalf("NEAR 40 min before the shift: %s", got)
	}
	// 10 min before: NEAR (2 min from the depot) is arriving soon.
	fx.drive(t, fx.now.Add(10*time.Minute), depot, depot, time.Minute)
	sv, _ := fx.s.Shipment(ctx, "NEAR")
	if got := types(sv.Events); got != "arriving_soon" || sv.ETA == nil || sv.ETA.Arrival != shift+120 {
		t.Fatalf("NEAR 10 min before the shift: %s, ETA %+v (want %d)", got, sv.ETA, shift+120)
	}
	if got := types(fx.events(t, "FAR")); got != "" {
		t.Fatalf("FAR before the departure: %s", got)
	}
	// The van leaves at its shift: out_for_delivery, no second arriving_soon.
	fx.drive(t, time.Unix(shift, 0), depot, east(400), 0)
	if got := types(fx.events(t, "NEAR")); got != "arriving_soon out_for_delivery stops_away0" {
		t.Errorf("NEAR after the departure: %s", got)
	}
}

// TestRerouteAfterClosure: a road closure that delays the van's stops by
// the incident shift or more re-routes it at its next ETA update (same
// order: rerouted with reason closure), and so does one on the road
// ahead of a stop (ClosedAhead), for that stop and those after it,
// whatever the delay; one that delays them less and is not ahead does
// not, nor does the same closure twice.
func TestRerouteAfterClosure(t *testing.T) {
	for _, tc := range []struct {
		name   string
		delay  int64  // seconds the closure adds to every arrival
		closed int    // the stop whose leg is closed (ClosedAhead), -1: none
		want   [3]int // rerouted events of A, B, C
	}{
		{"a 5 min detour", 300, -1, [3]int{1, 1, 1}},
		{"a 40 s detour", 40, -1, [3]int{0, 0, 0}},
		{"a 40 s detour on the way to B", 40, 1, [3]int{0, 1, 1}},
		{"a 5 min detour on the way to C", 300, 2, [3]int{1, 1, 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fx := newFixture(t, filepath.Join(t.TempDir(), "d.db"))
			var delay atomic.Int64
			fx.s.cfg.Predict = func(vehicle string, pos [2]float64, now time.Time, stops []PredictStop) ([]Prediction, error) {
				out, err := straightPredict(vehicle, pos, now, stops)
				for i := range out {
					d := delay.Load()
					out[i] = Prediction{out[i].Arrival + d, out[i].P10 + d, out[i].P90 + d}
				}
				return out, err
			}
			var checks atomic.Int64
			fx.s.cfg.ClosedAhead = func(vehicle string, pos [2]float64, now time.Time, stops []PredictStop) (int, error) {
				checks.Add(1)
				if vehicle != "van-1" || len(stops) != 3 {
					t.Errorf("ClosedAhead(%q, %d stops), want van-1 and its 3 stops", vehicle, len(stops))
				}
				return tc.closed, nil
			}
			ctx := context.Background()
			t0 := fx.now.Unix()
			for i, tr := range []string{"A", "B", "C"} {
				fx.ship(t, tr, east(float64(2000*(i+1))), [2]int64{t0, t0 + 7200})
			}
			veh := json.RawMessage(fmt.Sprintf(`{"id":1,"vehicle":"van-1","start":[%v,%v],"end":[%v,%v]}`, depot[0], depot[1], depot[0], depot[1]))
			if _, err := fx.s.CreatePlan(ctx, PlanInput{Vehicles: []json.RawMessage{veh}, Routes: []SequencedRoute{{Vehicle: "van-1", Shipments: []string{"A", "B", "C"}}}}); err != nil {
				t.Fatal(err)
			}
			at := fx.drive(t, fx.now, depot, east(300), 0)
			delay.Store(tc.delay)
			fx.s.RoadsClosed()
			at = fx.drive(t, at, east(300), east(900), 0)
			fx.drive(t, at, east(900), east(1500), 0) // no new closure: nothing more
			v, err := fx.s.Vehicle(ctx, "van-1")
			if err != nil {
				t.Fatal(err)
			}
			if want := int64(1 + max(tc.want[1], tc.want[2])); v.Version != want {
				t.Errorf("route version %d, want %d", v.Version, want)
			}
			if n := checks.Load(); n != 1 {
				t.Errorf("%d checks of the road ahead, want 1 (the first update after the closure)", n)
			}
			for k, tr := range []string{"A", "B", "C"} {
				evs := fx.events(t, tr)
				n := 0
				for _, e := range evs {
					if e.Type == EventRerouted {
						n++
						if !strings.Contains(string(e.Data), `"reason":"closure"`) {
							t.Errorf("%s: rerouted without the reason: %s", tr, e.Data)
						}
					}
				}
				if n != tc.want[k] {
					t.Errorf("%s: %d rerouted events, want %d: %s", tr, n, tc.want[k], types(evs))
				}
			}
		})
	}
}

// TestPredictWhileServing keeps a van at its first stop past the stop's
// service time: while it stands there, the stops after it are predicted
// from the stop's own location, without naming the vehicle (it drives no
// leg: the predictor must not learn a standstill as slow driving), and
// from the end of the service or now, whichever is later.
func TestPredictWhileServing(t *testing.T) {
	type call struct {
		vehicle string
		pos     [2]float64
		from    time.Time
		n       int
	}
	var calls []call
	fx := newFixtureWith(t, filepath.Join(t.TempDir(), "d.db"), Config{})
	fx.s.cfg.Predict = func(vehicle string, pos [2]float64, from time.Time, stops []PredictStop) ([]Prediction, error) {
		calls = append(calls, call{vehicle, pos, from, len(stops)})
		return straightPredict(vehicle, pos, from, stops)
	}
	ctx := context.Background()
	t0 := fx.now.Unix()
	A, B := east(1000), east(2000)
	fx.ship(t, "A", A, [2]int64{t0, t0 + 7200})
	fx.ship(t, "B", B, [2]int64{t0, t0 + 7200})
	veh := json.RawMessage(fmt.Sprintf(`{"id":1,"vehicle":"van-1","start":[%v,%v]}`, depot[0], depot[1]))
	if _, err := fx.s.CreatePlan(ctx, PlanInput{Vehicles: []json.RawMessage{veh}, Routes: []SequencedRoute{{Vehicle: "van-1", Shipments: []string{"A", "B"}}}}); err != nil {
		t.Fatal(err)
	}
	// Parked beside A (10 m off), for three times its 120 s service.
	beside := [2]float64{A[0], A[1] + 10.0/111_195}
	at := fx.drive(t, fx.now, depot, beside, 360*time.Second)
	fx.now = at
	sv, err := fx.s.Shipment(ctx, "A")
	if err != nil || sv.Status != StatusArrived {
		t.Fatalf("A: %+v %v, want arrived", sv, err)
	}
	var serving int
	for _, c := range calls {
		if c.n != 1 { // B alone: the van is at A
			continue
		}
		serving++
		if c.vehicle != "" || c.pos != A {
			t.Errorf("prediction while serving A: vehicle %q from %v, want none from A %v", c.vehicle, c.pos, A)
		}
	}
	if serving < 2 {
		t.Fatalf("%d predictions while the van stood at A, want several (calls %+v)", serving, calls)
	}
	// The last one, past the service: B from A, leaving now.
	last := calls[len(calls)-1]
	b, err := fx.s.Shipment(ctx, "B")
	if err != nil || b.ETA == nil {
		t.Fatalf("B: %+v %v", b, err)
	}
	want := last.from.Unix() + int64(math.Round(distance(A, B)/speed))
	if b.ETA.Arrival != want {
		t.Errorf("B's ETA %d, want %d (from A at %v)", b.ETA.Arrival, want, last.from)
	}
	if last.from.Before(at.Add(-70 * time.Second)) {
		t.Errorf("last prediction from %v, long before the van's last ping %v: the service overran", last.from, at)
	}
}

// TestOverrunShift: a service past its declared length is expected to go
// on for the lower median of what the van's longer services went on for;
// nothing before the overrun or with fewer than two longer services.
func TestOverrunShift(t *testing.T) {
	const t0 = 1_000_000
	ended := func(arrived, service int64) store.Stop {
		return store.Stop{Status: StatusDelivered, ArrivedAt: arrived, DoneAt: arrived + service, Service: 240}
	}
	serving := store.Stop{ID: 9, Status: StatusArrived, ArrivedAt: t0, Service: 240}
	next := store.Stop{Status: StatusOutForDelivery, Service: 240}
	for _, tc := range []struct {
		name  string
		stops []store.Stop
		t     int64
		want  int64
	}{
		{"within the declared service", []store.Stop{ended(100, 300), ended(500, 320), serving, next}, t0 + 200, 0},
		{"20 s over, two longer services", []store.Stop{ended(100, 300), ended(500, 320), serving, next}, t0 + 260, 40},
		{"20 s over, three longer", []store.Stop{ended(100, 300), ended(500, 320), ended(900, 400), serving, next}, t0 + 260, 60},
		{"20 s over, one longer", []store.Stop{ended(100, 300), ended(500, 200), serving, next}, t0 + 260, 0},
		{"served from the window's start", []store.Stop{ended(100, 300), ended(500, 320),
			{Status: StatusArrived, ArrivedAt: t0, Window: [2]int64{t0 + 100, t0 + 7200}, Service: 240}, next}, t0 + 360, 40},
		{"serving none", []store.Stop{ended(100, 300), ended(500, 320), next}, t0 + 260, 0},
	} {
		run := &routeRun{stops: tc.stops}
		if got := run.overrunShift(tc.t); got != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, got, tc.want)
		}
	}
}
