package dispatch

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestPublicView checks what a tracking link shows along a day: the van
// only while the stop is within VanStops of it, only this shipment's data,
// nothing but the delivered state after delivery, and links that expire,
// are replaced and are malformed all give ErrLinkNotFound.
func TestPublicView(t *testing.T) {
	backends(t, func(t *testing.T, dsn string) {
		fx := newFixtureWith(t, dsn, Config{VanStops: 2, LinkTTL: time.Hour})
		ctx := context.Background()
		t0 := fx.now.Unix()
		trk := []string{"A", "B", "C", "D"}
		links := map[string]string{}
		for i, tr := range trk {
			svc := 60.0
			c, err := fx.s.CreateShipment(ctx, ShipmentInput{Tracking: tr, Recipient: RecipientInput{Name: "Name " + tr},
				Address: "Address " + tr, Location: east(float64(1000 * (i + 1))), TimeWindow: &[2]int64{t0, t0 + 7200}, Service: &svc})
			if err != nil {
				t.Fatal(err)
			}
			links[tr] = strings.TrimPrefix(c.TrackingURL, "/track/")
		}
		veh := json.RawMessage(fmt.Sprintf(`{"id":1,"vehicle":"van-1","start":[%v,%v],"end":[%v,%v]}`, depot[0], depot[1], depot[0], depot[1]))
		if _, err := fx.s.CreatePlan(ctx, PlanInput{Vehicles: []json.RawMessage{veh},
			Routes: []SequencedRoute{{Vehicle: "van-1", Shipments: trk}}}); err != nil {
			t.Fatal(err)
		}
		view := func(tr string) PublicView {
			t.Helper()
			sh, err := fx.s.ShipmentByLink(ctx, links[tr])
			if err != nil {
				t.Fatalf("link of %s: %v", tr, err)
			}
			v, err := fx.s.PublicView(ctx, sh)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := json.Marshal(v)
			for _, other := range trk {
				if other != tr && (strings.Contains(string(b), "Name "+other) || strings.Contains(string(b), "Address "+other) ||
					strings.Contains(string(b), `"`+other+`"`)) {
					t.Errorf("%s's view holds %s's data: %s", tr, other, b)
				}
			}
			return v
		}
		// Before departure: no van anywhere.
		for _, tr := range trk {
			if v := view(tr); v.Van != nil || v.Vehicle != "" {
				t.Errorf("%s shows the van before departure", tr)
			}
		}
		at := fx.drive(t, fx.now, depot, east(300), 0)
		// Out for delivery: stops before 0, 1, 2, 3; the van shows for 0
		// and 1 (VanStops 2).
		cases := []struct {
			tr     string
			before int
			van    bool
		}{{"A", 0, true}, {"B", 1, true}, {"C", 2, false}, {"D", 3, false}}
		for _, c := range cases {
			v := view(c.tr)
			if v.StopsBefore == nil || *v.StopsBefore != c.before || (v.Van != nil) != c.van || v.ETA == nil {
				t.Errorf("%s: stops before %v, van %v, eta %v; want %d, %v", c.tr, v.StopsBefore, v.Van != nil, v.ETA, c.before, c.van)
			}
		}
		// A delivered: nothing but the delivered state.
		at = fx.drive(t, at, east(300), east(1000), time.Minute)
		fx.now = at
		st, err := fx.s.st.LatestStop(ctx, shipmentRow(t, fx, "A"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := fx.s.SetStopStatus(ctx, st.ID, StatusInput{Status: StatusDelivered}, ""); err != nil {
			t.Fatal(err)
		}
		v := view("A")
		if v.Status != StatusDelivered || v.Van != nil || v.ETA != nil || v.StopsBefore != nil || len(v.Events) != 1 ||
			v.Events[0].Type != StatusDelivered || len(v.Offers) != 0 {
			t.Errorf("delivered view: %+v", v)
		}
		// C is now within 2 stops: its van shows.
		if v := view("C"); v.Van == nil || *v.StopsBefore != 1 {
			t.Errorf("C after A's delivery: %+v", v)
		}
		// Links: expired an hour after delivery, replaced, malformed.
		fx.now = at.Add(59 * time.Minute)
		view("A")
		fx.now = at.Add(61 * time.Minute)
		if _, err := fx.s.ShipmentByLink(ctx, links["A"]); err != ErrLinkNotFound {
			t.Errorf("expired link: %v", err)
		}
		c, err := fx.s.RotateLink(ctx, "B")
		if err != nil {
			t.Fatal(err)
		}
		for _, tok := range []string{links["B"], "", "short", strings.Repeat("A", 22), "!!!!!!!!!!!!!!!!!!!!!!", links["B"] + "x"} {
			if _, err := fx.s.ShipmentByLink(ctx, tok); err != ErrLinkNotFound {
				t.Errorf("link %q: %v", tok, err)
			}
		}
		if _, err := fx.s.ShipmentByLink(ctx, strings.TrimPrefix(c.TrackingURL, "/track/")); err != nil {
			t.Errorf("the new link: %v", err)
		}
	})
}

func shipmentRow(t *testing.T, fx *fixture, tracking string) int64 {
	t.Helper()
	sh, err := fx.st.ShipmentByTracking(context.Background(), tracking)
	if err != nil {
		t.Fatal(err)
	}
	return sh.ID
}

// TestWindowOffers checks the offered windows: whole slots between the
// day's hours in the shipment's time zone, from an hour ahead, today and
// the next days, without the current one.
func TestWindowOffers(t *testing.T) {
	lisbon, _ := time.LoadLocation("Europe/Lisbon")
	o := WindowOffers{}.withDefaults()
	cases := []struct {
		name  string
		now   time.Time
		tz    string
		first time.Time
		n     int
	}{
		{"morning", time.Date(2026, 7, 6, 7, 0, 0, 0, lisbon), "Europe/Lisbon", time.Date(2026, 7, 6, 9, 0, 0, 0, lisbon), 18},
		{"mid-slot", time.Date(2026, 7, 6, 10, 30, 0, 0, lisbon), "Europe/Lisbon", time.Date(2026, 7, 6, 13, 0, 0, 0, lisbon), 16},
		{"evening", time.Date(2026, 7, 6, 20, 30, 0, 0, lisbon), "Europe/Lisbon", time.Date(2026, 7, 7, 9, 0, 0, 0, lisbon), 12},
		{"unknown zone is UTC", time.Date(2026, 7, 6, 7, 0, 0, 0, time.UTC), "Mars/Olympus", time.Date(2026, 7, 6, 9, 0, 0, 0, time.UTC), 18},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ws := o.Windows(c.tz, c.now, [2]int64{})
			if len(ws) != c.n || ws[0][0] != c.first.Unix() {
				t.Fatalf("%d windows from %v, want %d from %v", len(ws), time.Unix(ws[0][0], 0).In(c.first.Location()), c.n, c.first)
			}
			for i, w := range ws {
				if w[1]-w[0] != 7200 || (i > 0 && w[0] < ws[i-1][1]) {
					t.Errorf("window %d: %v", i, w)
				}
			}
			if cur := ws[0]; len(o.Windows(c.tz, c.now, cur)) != c.n-1 {
				t.Errorf("the current window is offered")
			}
		})
	}
}

// TestRecipientActions checks instructions, messages (idempotent by the
// client's id), ratings (after delivery only) and window requests
// (declined when the van cannot keep them).
func TestRecipientActions(t *testing.T) {
	fx := newFixtureWith(t, filepath.Join(t.TempDir(), "d.db"), Config{})
	ctx := context.Background()
	t0 := fx.now.Unix()
	fx.ship(t, "A", east(1000), [2]int64{t0, t0 + 7200})
	sh, _ := fx.st.ShipmentByTracking(ctx, "A")
	if err := fx.s.SetInstructions(ctx, sh, strings.Repeat("x", 501)); err == nil {
		t.Errorf("long instructions accepted")
	}
	if err := fx.s.SetInstructions(ctx, sh, "  gate code 12  "); err != nil {
		t.Fatal(err)
	}
	if sh, _ = fx.st.ShipmentByTracking(ctx, "A"); sh.Instructions != "gate code 12" {
		t.Errorf("instructions %q", sh.Instructions)
	}
	for i := 0; i < 3; i++ {
		_, created, err := fx.s.PostMessage(ctx, sh, FromRecipient, MessageInput{Text: "hello", ClientID: "c1"})
		if err != nil || created != (i == 0) {
			t.Fatalf("message %d: created %v, %v", i, created, err)
		}
	}
	if _, _, err := fx.s.PostMessage(ctx, sh, FromRecipient, MessageInput{Text: " \n "}); err == nil {
		t.Errorf("empty message accepted")
	}
	if ms, _ := fx.s.Messages(ctx, sh.ID); len(ms) != 1 {
		t.Errorf("%d messages", len(ms))
	}
	if err := fx.s.Rate(ctx, sh, RatingInput{Stars: 5}); err == nil {
		t.Errorf("rated before delivery")
	}
	// Not on a route yet: any offered window is accepted.
	offers := fx.s.cfg.Offers.Windows("", fx.now, sh.Window)
	r, err := fx.s.RequestWindow(ctx, sh, offers[len(offers)-1])
	if err != nil || r.State != WindowAccepted {
		t.Fatalf("window request: %+v %v", r, err)
	}
	if sh, _ = fx.st.ShipmentByTracking(ctx, "A"); sh.Window != offers[len(offers)-1] {
		t.Errorf("window not moved: %v", sh.Window)
	}
	if _, err := fx.s.RequestWindow(ctx, sh, [2]int64{t0, t0 + 60}); err == nil {
		t.Errorf("a window off the offer accepted")
	}
	// On a route without a solver: only a window holding the ETA fits.
	veh := json.RawMessage(fmt.Sprintf(`{"id":1,"vehicle":"van-1","start":[%v,%v],"end":[%v,%v]}`, depot[0], depot[1], depot[0], depot[1]))
	if _, err := fx.s.CreatePlan(ctx, PlanInput{Vehicles: []json.RawMessage{veh}, Routes: []SequencedRoute{{Vehicle: "van-1", Shipments: []string{"A"}}}}); err != nil {
		t.Fatal(err)
	}
	fx.drive(t, fx.now, depot, east(300), 0)
	sh, _ = fx.st.ShipmentByTracking(ctx, "A")
	offers = fx.s.cfg.Offers.Windows("", fx.now, sh.Window)
	r, err = fx.s.RequestWindow(ctx, sh, offers[len(offers)-1]) // two days ahead: the van comes today
	if err != nil || r.State != WindowDeclined || r.Reason == "" {
		t.Fatalf("a window the van cannot keep: %+v %v", r, err)
	}
	if wr, err := fx.st.LatestWindowRequest(ctx, sh.ID); err != nil || wr.State != WindowDeclined {
		t.Errorf("stored answer %+v %v", wr, err)
	}
}
