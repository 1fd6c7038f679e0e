package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

// TestGroupCommit queues bodies behind a held writer, some failing and
// one panicking, and checks that they committed as one group in which
// only the failed bodies' writes are missing.
func TestGroupCommit(t *testing.T) {
	s, _ := backends()[0].open(t)
	ctx := context.Background()
	var hookMu sync.Mutex
	var hooked []string
	s.OnCommit(func(evs []Event) {
		hookMu.Lock()
		defer hookMu.Unlock()
		for _, e := range evs {
			hooked = append(hooked, e.Type)
		}
	})
	hold, held := make(chan struct{}), make(chan struct{})
	first := make(chan error, 1)
	go func() {
		_, err := s.Tx(ctx, func(tx *Tx) error {
			close(held)
			<-hold
			return nil
		})
		first <- err
	}()
	<-held
	w0 := s.Writer()
	const n = 12
	errBody := errors.New("the body failed")
	fails := func(i int) bool { return i%4 == 1 }
	const panics = 6
	type result struct {
		evs []Event
		err error
		p   any
	}
	results := make([]result, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { results[i].p = recover() }()
			results[i].evs, results[i].err = s.Tx(ctx, func(tx *Tx) error {
				sh := newShipment(fmt.Sprintf("G%d", i))
				if err := tx.InsertShipment(sh); err != nil {
					return err
				}
				tx.Emit(Event{Shipment: sh.ID, Type: fmt.Sprintf("e%d", i), Time: int64(i)})
				tx.Emit(Event{Shipment: sh.ID, Type: fmt.Sprintf("f%d", i), Time: int64(i)})
				switch {
				case fails(i):
					return errBody
				case i == panics:
					panic("body " + fmt.Sprint(i))
				}
				return nil
			})
		}()
		time.Sleep(5 * time.Millisecond) // queued in this order
	}
	close(hold)
	wg.Wait()
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if w := s.Writer(); w.Commits-w0.Commits != 2 || w.Bodies-w0.Bodies != 1+n-4 {
		// The held body alone, then one group of the 8 that succeeded.
		t.Errorf("%d commits of %d bodies; want 2 of %d", w.Commits-w0.Commits, w.Bodies-w0.Bodies, 1+n-4)
	}
	var cursor int64
	for i, r := range results {
		_, err := s.ShipmentByTracking(ctx, fmt.Sprintf("G%d", i))
		switch {
		case i == panics:
			if r.p != "body 6" {
				t.Errorf("body %d: panic %v in its caller", i, r.p)
			}
			if !errors.Is(err, ErrNotFound) {
				t.Errorf("body %d panicked, its shipment: %v", i, err)
			}
		case fails(i):
			if !errors.Is(r.err, errBody) || r.evs != nil {
				t.Errorf("body %d: %v, %d events; want its own error", i, r.err, len(r.evs))
			}
			if !errors.Is(err, ErrNotFound) {
				t.Errorf("body %d failed, its shipment: %v", i, err)
			}
		default:
			if r.err != nil || r.p != nil || err != nil {
				t.Fatalf("body %d: %v, panic %v, shipment %v", i, r.err, r.p, err)
			}
			if len(r.evs) != 2 || r.evs[0].Seq != 1 || r.evs[1].Seq != 2 || r.evs[0].Cursor <= cursor || r.evs[1].Cursor != r.evs[0].Cursor+1 {
				t.Errorf("body %d: events %+v after cursor %d", i, r.evs, cursor)
			}
			if len(r.evs) > 0 {
				cursor = r.evs[len(r.evs)-1].Cursor
			}
		}
	}
	evs, err := s.EventsAfter(ctx, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	for k, e := range evs {
		if e.Cursor != int64(k+1) {
			t.Fatalf("event %d has cursor %d: the log has a gap", k, e.Cursor)
		}
	}
	if len(evs) != 2*(n-4) || len(hooked) != len(evs) {
		t.Errorf("%d events in the log, %d heard by the hook; want %d", len(evs), len(hooked), 2*(n-4))
	}
}
