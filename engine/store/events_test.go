package store

import (
	"context"
	"fmt"
	"testing"
)

// TestFlushManyEvents writes more events and shipments in one
// transaction than one multi-row statement takes (eventRows), twice:
// each shipment's sequence goes on without a gap in emission order, the
// cursors follow emission order, and what is read back is what was
// emitted.
func TestFlushManyEvents(t *testing.T) {
	forEach(t, func(t *testing.T, s *Store, _ string) {
		const nShip = eventRows + 30
		ships := make([]*Shipment, nShip)
		for i := range ships {
			ships[i] = insertShipment(t, s, fmt.Sprintf("M%d", i))
		}
		wantSeq := map[int64]int64{}
		var emitted []Event
		for round := range 2 {
			evs := tx(t, s, func(tx *Tx) error {
				for k := range 2*eventRows + 17 {
					// Shipments out of id order, some twice in a row.
					sh := ships[(k*7+round)%nShip]
					tx.Emit(Event{Shipment: sh.ID, Type: "eta_changed", Time: int64(k), Data: fmt.Sprintf(`{"k":%d}`, k)})
				}
				return nil
			})
			for i, e := range evs {
				wantSeq[e.Shipment]++
				if e.Seq != wantSeq[e.Shipment] {
					t.Fatalf("round %d event %d of shipment %d: seq %d, want %d", round, i, e.Shipment, e.Seq, wantSeq[e.Shipment])
				}
				if i > 0 && e.Cursor != evs[i-1].Cursor+1 {
					t.Fatalf("round %d event %d: cursor %d after %d", round, i, e.Cursor, evs[i-1].Cursor)
				}
			}
			emitted = append(emitted, evs...)
		}
		got, err := s.EventsAfter(context.Background(), 0, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(emitted) {
			t.Fatalf("%d events read, %d emitted", len(got), len(emitted))
		}
		for i := range got {
			w := emitted[i]
			w.Tracking = got[i].Tracking
			if got[i] != w {
				t.Fatalf("event %d: %+v, want %+v", i, got[i], w)
			}
		}
		for _, sh := range ships {
			v, err := s.ShipmentByTracking(context.Background(), sh.Tracking)
			if err != nil {
				t.Fatal(err)
			}
			if v.Seq != wantSeq[sh.ID] {
				t.Errorf("%s: seq %d, want %d", sh.Tracking, v.Seq, wantSeq[sh.ID])
			}
		}
	})
}
