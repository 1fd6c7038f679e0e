package store

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"testing"
)

// TestWebhookQueue: webhook deliveries are queued from the event log by
// the claims, not by the events' own transactions; a window at a time
// past the oldest pending one, nothing new while the subscription fails,
// urgent events (with their shipment's earlier ones) past the window,
// dead letters for what a subscription the engine disabled had taken.
func TestWebhookQueue(t *testing.T) {
	forEach(t, func(t *testing.T, s *Store, where string) {
		ctx := context.Background()
		const now = 1_000_000
		s.SetWebhookFanout(func(h WebhookFilter, evs []Event, nowMS int64) []Delivery {
			var ds []Delivery
			for _, e := range evs {
				if slices.Contains(h.Events, "*") || slices.Contains(h.Events, e.Type) {
					ds = append(ds, Delivery{Event: e.Cursor, Shipment: e.Shipment, Channel: ChannelWebhook, Target: h.ID,
						Dedupe: strconv.FormatInt(e.Cursor, 10), NextAt: nowMS, Created: nowMS, Urgent: e.Type == "arriving_soon"})
				}
			}
			return ds
		}, []string{"arriving_soon"})
		var ships []*Shipment
		for i := range 3 {
			ships = append(ships, insertShipment(t, s, fmt.Sprintf("Q%d", i)))
		}
		tx(t, s, func(tx *Tx) error {
			return tx.InsertWebhook(Webhook{ID: "wh_q", URL: "http://127.0.0.1:9/", Events: []string{"*"}, Secret: "whsec_x", Enabled: true, Created: 1})
		})
		emit := func(n int, typ string, ship int) []Event {
			t.Helper()
			var evs []Event
			for k := 0; k < n; k += 500 {
				evs = append(evs, tx(t, s, func(tx *Tx) error {
					for i := k; i < min(k+500, n); i++ {
						sh := ships[(ship+i)%len(ships)]
						tx.Emit(Event{Shipment: sh.ID, Tracking: sh.Tracking, Type: typ, Time: 1, Created: 1})
					}
					return nil
				})...)
			}
			return evs
		}
		hook := func() Webhook {
			t.Helper()
			w, err := s.Webhook(ctx, "wh_q")
			if err != nil {
				t.Fatal(err)
			}
			return w
		}
		pending := func() []Delivery {
			t.Helper()
			ds, err := s.Deliveries(ctx, DeliveryFilter{Target: "wh_q", State: DeliveryPending, Limit: 100_000})
			if err != nil {
				t.Fatal(err)
			}
			return ds
		}
		claim := func(limit int, outs ...Outcome) []Delivery {
			t.Helper()
			_, got, err := s.FinishAndClaim(ctx, now, outs, 0, now+60_000, nil, func(Target) int { return limit })
			if err != nil {
				t.Fatal(err)
			}
			return got
		}
		evs := emit(6, "stops_away", 0)
		if n := len(pending()); n != 0 {
			t.Fatalf("%d deliveries queued by the events' own transaction, want none", n)
		}
		got := claim(4)
		if len(got) != 4 || got[0].Event != evs[0].Cursor {
			t.Fatalf("first claim: %d deliveries from event %d, want 4 from %d", len(got), got[0].Event, evs[0].Cursor)
		}
		if w := hook(); w.QueuedTo != evs[5].Cursor {
			t.Fatalf("queued to %d, want %d", w.QueuedTo, evs[5].Cursor)
		}
		// A failure: the subscription has a streak and pending deliveries,
		// so new events are not queued.
		fail := Outcome{ID: got[0].ID, Target: "wh_q", State: DeliveryPending, NextAt: now, Counted: true, TargetBlockedUntil: now}
		var outs []Outcome
		for _, d := range got[1:] {
			outs = append(outs, Outcome{ID: d.ID, Target: "wh_q", State: DeliveryPending, NextAt: now})
		}
		claim(0, append(outs, fail)...)
		more := emit(10, "stops_away", 0)
		if w := hook(); w.Failures != 1 {
			t.Fatalf("failures %d, want 1", w.Failures)
		}
		got = claim(1)
		if len(got) != 1 || got[0].Event != evs[0].Cursor {
			t.Fatalf("probe: %v, want the oldest delivery", got)
		}
		if w, n := hook(), len(pending()); w.QueuedTo != evs[5].Cursor || n != 6 {
			t.Fatalf("failing: queued to %d with %d pending, want %d with 6", w.QueuedTo, n, evs[5].Cursor)
		}
		// It recovers: the rest is queued and claimed in order.
		claim(0, Outcome{ID: got[0].ID, Target: "wh_q", State: DeliverySent, Counted: true})
		got = claim(100)
		if len(got) != 5+len(more) || got[len(got)-1].Event != more[len(more)-1].Cursor {
			t.Fatalf("after recovery: %d deliveries, want %d", len(got), 5+len(more))
		}
		outs = outs[:0]
		for _, d := range got {
			outs = append(outs, Outcome{ID: d.ID, Target: "wh_q", State: DeliverySent, Counted: true})
		}
		claim(0, outs...)
		// The window: with the oldest pending delivery in flight, at most
		// queueAhead cursors past it are queued; an urgent event past the
		// window is queued with its shipment's earlier events, and they are
		// claimed first.
		stuck := emit(1, "stops_away", 0)[0]
		inFlight := claim(1)
		bulk := emit(queueAhead+600, "stops_away", 0)
		mid := claim(2) // one delivery at a time would only probe
		if w := hook(); w.QueuedTo != stuck.Cursor+queueAhead {
			t.Fatalf("window: queued to %d, want %d (oldest pending %d + %d)", w.QueuedTo, stuck.Cursor+queueAhead, stuck.Cursor, queueAhead)
		}
		outs = outs[:0]
		for _, d := range mid {
			outs = append(outs, Outcome{ID: d.ID, Target: "wh_q", State: DeliverySent, Counted: true})
		}
		claim(0, outs...)
		soon := emit(1, "arriving_soon", 2)[0]
		got = claim(3)
		queued := map[int64]bool{} // in any state
		every, err := s.Deliveries(ctx, DeliveryFilter{Target: "wh_q", Limit: 100_000})
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range every {
			queued[d.Event] = true
		}
		for _, d := range got {
			if d.Shipment != soon.Shipment {
				t.Errorf("claimed event %d of shipment %d before the urgent shipment %d's", d.Event, d.Shipment, soon.Shipment)
			}
		}
		for _, e := range append(bulk, soon) {
			if e.Shipment == soon.Shipment && !queued[e.Cursor] {
				t.Fatalf("event %d of the urgent event's shipment not queued (window to %d, urgent %d)", e.Cursor, stuck.Cursor+queueAhead, soon.Cursor)
			}
			if e.Shipment != soon.Shipment && e.Cursor > stuck.Cursor+queueAhead && queued[e.Cursor] {
				t.Fatalf("event %d of another shipment queued past the window", e.Cursor)
			}
		}
		if len(inFlight) != 1 || len(got) != 3 || inFlight[0].Event != stuck.Cursor {
			t.Fatalf("claimed %d and %d, want 1 and 3", len(inFlight), len(got))
		}
		// Disabled by the engine: what it took goes to the dead-letter
		// list (pending deliveries at once, the rest as it is queued);
		// later events are not its.
		tx(t, s, func(tx *Tx) error { return tx.DisableWebhook("wh_q", now, "failing") })
		emit(5, "stops_away", 0)
		for range 3 {
			claim(0)
			claim(10)
		}
		w := hook()
		var dead []Delivery
		dead, err = s.Deliveries(ctx, DeliveryFilter{Target: "wh_q", State: DeliveryDead, Limit: 100_000})
		if err != nil {
			t.Fatal(err)
		}
		if w.QueuedTo != w.TakenTo || w.TakenTo != soon.Cursor || len(pending()) != 0 {
			t.Fatalf("disabled: queued to %d, took to %d (want %d), %d pending", w.QueuedTo, w.TakenTo, soon.Cursor, len(pending()))
		}
		if want := soon.Cursor - stuck.Cursor + 1 - int64(len(mid)); int64(len(dead)) != want {
			t.Fatalf("%d dead letters, want %d (every event from the one in flight on, but the %d sent)", len(dead), want, len(mid))
		}
		// Enabled again: it takes what commits from then on.
		w.Enabled, w.DisabledReason = true, ""
		tx(t, s, func(tx *Tx) error { return tx.UpdateWebhook(w) })
		head, err := s.EventCursor(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if w := hook(); w.QueuedTo != head || w.TakenTo != 0 {
			t.Fatalf("enabled again: queued to %d (head %d), took to %d", w.QueuedTo, head, w.TakenTo)
		}
	})
}
