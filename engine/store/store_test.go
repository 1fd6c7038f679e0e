package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lastmile/lastmile/engine/seal"
	"github.com/lastmile/lastmile/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// backend opens a fresh store of one dialect.
type backend struct {
	name string
	open func(t *testing.T) (*Store, string) // store and, for SQLite, its file
}

// openAtSchema opens a new store of the dialect name migrated up to
// schema only, for a migration test; it returns the store, where it is
// and its key ring, to open it again with every migration.
func openAtSchema(t *testing.T, name string, schema int) (*Store, string, *seal.Ring) {
	t.Helper()
	dsn := filepath.Join(t.TempDir(), "lastmile.db")
	if name == "postgres" {
		dsn = pgtest.DSN(t)
	}
	ring := testRing(t)
	s, err := Open(context.Background(), dsn, Options{Ring: ring, schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	return s, dsn, ring
}

// reopen closes a store of openAtSchema and opens it again with every
// migration.
func reopen(t *testing.T, old *Store, dsn string, opt Options) *Store {
	t.Helper()
	old.Close()
	ctx := context.Background()
	s, err := Open(ctx, dsn, opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if v, err := s.Version(ctx); err != nil || v != len(migrations) {
		t.Fatalf("version %d, %v; want %d", v, err, len(migrations))
	}
	return s
}

func testRing(t testing.TB) *seal.Ring {
	r, err := seal.NewRing(seal.GenerateKey(1))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func backends() []backend {
	return []backend{
		{"sqlite", func(t *testing.T) (*Store, string) {
			path := filepath.Join(t.TempDir(), "lastmile.db")
			s, err := Open(context.Background(), path, Options{Ring: testRing(t)})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return s, path
		}},
		{"postgres", func(t *testing.T) (*Store, string) {
			dsn := pgtest.DSN(t)
			s, err := Open(context.Background(), dsn, Options{Ring: testRing(t)})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return s, dsn
		}},
	}
}

// forEach runs f on every backend.
func forEach(t *testing.T, f func(t *testing.T, s *Store, where string)) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			s, where := b.open(t)
			f(t, s, where)
		})
	}
}

func tx(t *testing.T, s *Store, f func(tx *Tx) error) []Event {
	t.Helper()
	evs, err := s.Tx(context.Background(), f)
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

func newShipment(tracking string) *Shipment {
	return &Shipment{Tracking: tracking, Token: "tok-" + tracking, Status: "created",
		Recipient: Recipient{Name: "Zé Secretname " + tracking, Phone: "+351912345678", Email: "secret-" + tracking + "@example.test"},
		Language:  "pt", Address: "Rua Secreta 12, Porto", Instructions: "leave with the neighbour",
		Location: [2]float64{-8.61, 41.15}, Window: [2]int64{1000, 8200}, Service: 120, Parcels: Parcels{Count: 2, Weight: 3.5}, Created: 10}
}

// insertShipment stores a newShipment of that tracking number.
func insertShipment(t *testing.T, s *Store, tracking string) *Shipment {
	t.Helper()
	sh := newShipment(tracking)
	tx(t, s, func(tx *Tx) error { return tx.InsertShipment(sh) })
	return sh
}

func TestMigrateTwice(t *testing.T) {
	forEach(t, func(t *testing.T, s *Store, where string) {
		if err := s.migrate(context.Background(), 0); err != nil {
			t.Fatal(err)
		}
		v, err := s.Version(context.Background())
		if err != nil || v != len(migrations) {
			t.Fatalf("version %d, %v; want %d", v, err, len(migrations))
		}
	})
}

func TestShipmentRoundTripAndSealing(t *testing.T) {
	forEach(t, func(t *testing.T, s *Store, where string) {
		sh := newShipment("T1")
		tx(t, s, func(tx *Tx) error { return tx.InsertShipment(sh) })
		if sh.ID == 0 {
			t.Fatal("no id")
		}
		_, err := s.Tx(context.Background(), func(tx *Tx) error { return tx.InsertShipment(newShipment("T1")) })
		if !errors.Is(err, ErrExists) {
			t.Fatalf("duplicate tracking: %v, want ErrExists", err)
		}
		got, err := s.ShipmentByTracking(context.Background(), "T1")
		if err != nil {
			t.Fatal(err)
		}
		want := *sh
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("got  %+v\nwant %+v", got, want)
		}
		if _, err := s.ShipmentByTracking(context.Background(), "nope"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("unknown: %v", err)
		}
		if byTok, err := s.ShipmentByToken(context.Background(), "tok-T1"); err != nil || byTok.ID != sh.ID {
			t.Fatalf("by token: %v %v", byTok.ID, err)
		}
		// No personal datum in clear in the database.
		var raw []byte
		if s.dialect == SQLite {
			for _, suffix := range []string{"", "-wal", "-shm"} {
				if fi, err := os.Stat(where + suffix); err != nil || fi.Mode().Perm() != 0o600 {
					t.Errorf("%s%s: mode %v (%v), want 0600", filepath.Base(where), suffix, fi.Mode().Perm(), err)
				}
			}
			s.Close()
			for _, suffix := range []string{"", "-wal"} {
				b, _ := os.ReadFile(where + suffix)
				raw = append(raw, b...)
			}
		} else {
			raw = pgtest.Dump(t, where)
		}
		if len(raw) == 0 {
			t.Fatal("read nothing from the database")
		}
		for _, secret := range []string{"Secretname", "912345678", "secret-T1", "Rua Secreta", "neighbour"} {
			if bytes.Contains(raw, []byte(secret)) {
				t.Errorf("%q found in clear in the database", secret)
			}
		}
		for _, secret := range []string{"tok-T1"} { // the tracking link's token
			if bytes.Contains(raw, []byte(secret)) {
				t.Errorf("%q found in clear in the database", secret)
			}
		}
		if !bytes.Contains(raw, []byte("T1")) || !bytes.Contains(raw, []byte("created")) {
			t.Errorf("the tracking number and status (not personal) are not in the dump: is the check reading the right bytes?")
		}
	})
}

func TestEventSequenceAndCursor(t *testing.T) {
	forEach(t, func(t *testing.T, s *Store, where string) {
		a, b := insertShipment(t, s, "A"), insertShipment(t, s, "B")
		evs := tx(t, s, func(tx *Tx) error {
			tx.Emit(Event{Shipment: b.ID, Type: "shipped", Time: 5, CallerID: "c1"})
			tx.Emit(Event{Shipment: a.ID, Type: "shipped", Time: 5})
			tx.Emit(Event{Shipment: b.ID, Type: "in_transit", Time: 6, Data: `{"x":1}`})
			return nil
		})
		if len(evs) != 3 || evs[0].Seq != 1 || evs[1].Seq != 1 || evs[2].Seq != 2 {
			t.Fatalf("seqs: %+v", evs)
		}
		if evs[0].Cursor != 1 || evs[1].Cursor != 2 || evs[2].Cursor != 3 {
			t.Fatalf("cursors: %+v", evs)
		}
		// A failed transaction takes no number.
		_, err := s.Tx(context.Background(), func(tx *Tx) error {
			tx.Emit(Event{Shipment: a.ID, Type: "x", Time: 7})
			return errors.New("boom")
		})
		if err == nil {
			t.Fatal("want the error")
		}
		tx(t, s, func(tx *Tx) error { tx.Emit(Event{Shipment: a.ID, Type: "at_facility", Time: 8}); return nil })
		got, err := s.ShipmentEvents(context.Background(), a.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || got[0].Seq != 1 || got[1].Seq != 2 || got[1].Cursor != 4 || got[1].Tracking != "A" {
			t.Fatalf("A's events: %+v", got)
		}
		all, err := s.EventsAfter(context.Background(), 1, 10)
		if err != nil || len(all) != 3 || all[0].Cursor != 2 {
			t.Fatalf("after 1: %+v %v", all, err)
		}
		// Caller ids are idempotency keys per shipment.
		tx(t, s, func(tx *Tx) error {
			e, err := tx.CallerEvent(b.ID, "c1")
			if err != nil || e.Type != "shipped" {
				return fmt.Errorf("caller event: %+v %v", e, err)
			}
			if _, err := tx.CallerEvent(a.ID, "c1"); !errors.Is(err, ErrNotFound) {
				return fmt.Errorf("c1 on A: %v", err)
			}
			return nil
		})
		_, err = s.Tx(context.Background(), func(tx *Tx) error {
			tx.Emit(Event{Shipment: b.ID, Type: "shipped", Time: 9, CallerID: "c1"})
			return nil
		})
		if !errors.Is(err, ErrExists) {
			t.Fatalf("second c1: %v", err)
		}
	})
}

// TestMigrateEventLog upgrades a database of schema 8 with events in it
// to the rebuilt event log of migration 9 and the sequence counters of
// migration 12: the events stay as they were, new ones continue their
// sequences and cursors, a caller's id is still
// an idempotency key per shipment, and engine events (no caller id) no
// longer fill an index.
func TestMigrateEventLog(t *testing.T) {
	for _, name := range []string{"sqlite", "postgres"} {
		t.Run(name, func(t *testing.T) {
			old, dsn, ring := openAtSchema(t, name, 8)
			ctx := context.Background()
			if v, err := old.Version(ctx); err != nil || v != 8 {
				t.Fatalf("version %d, %v; want 8", v, err)
			}
			a, c := insertShipment(t, old, "A"), insertShipment(t, old, "C")
			// Written as the code of schema 8 wrote them: the sequence
			// counted in the shipment's row (until migration 12).
			before := []Event{
				{ID: "e1", Shipment: a.ID, Type: "shipped", Time: 5, CallerID: "c1"},
				{ID: "e2", Shipment: a.ID, Type: "out_for_delivery", Time: 6},
				{ID: "e3", Shipment: c.ID, Type: "out_for_delivery", Time: 6, Data: `{"x":1}`},
				{ID: "e4", Shipment: a.ID, Type: "arrived", Time: 7},
			}
			tx(t, old, func(tx *Tx) error {
				for i := range before {
					e := &before[i]
					if err := tx.q().QueryRowContext(ctx, `UPDATE shipments SET seq = seq + 1 WHERE id = $1 RETURNING seq`, e.Shipment).Scan(&e.Seq); err != nil {
						return err
					}
					if err := tx.q().QueryRowContext(ctx, `UPDATE counters SET value = value + 1 WHERE name = 'event_cursor' RETURNING value`).Scan(&e.Cursor); err != nil {
						return err
					}
					if _, err := tx.q().ExecContext(ctx, `INSERT INTO events (cursor, id, shipment, seq, type, time, data, caller_id, created)
						VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 0)`, e.Cursor, e.ID, e.Shipment, e.Seq, e.Type, e.Time, e.Data, nullString(e.CallerID)); err != nil {
						return err
					}
				}
				return nil
			})
			s := reopen(t, old, dsn, Options{Ring: ring})
			got, err := s.EventsAfter(ctx, 0, 10)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(before) {
				t.Fatalf("%d events after the migration, want %d", len(got), len(before))
			}
			for i := range got {
				before[i].Tracking = map[int64]string{a.ID: "A", c.ID: "C"}[before[i].Shipment] // emitted events lack it
				if got[i] != before[i] {
					t.Errorf("event %d: %+v, want %+v", i, got[i], before[i])
				}
			}
			after := tx(t, s, func(tx *Tx) error {
				tx.Emit(Event{Shipment: a.ID, Type: "delivered", Time: 8})
				tx.Emit(Event{Shipment: c.ID, Type: "shipped", Time: 8, CallerID: "c1"}) // same id, other shipment
				return nil
			})
			if after[0].Seq != 4 || after[0].Cursor != 5 || after[1].Seq != 2 || after[1].Cursor != 6 {
				t.Fatalf("after the migration: %+v", after)
			}
			_, err = s.Tx(ctx, func(tx *Tx) error {
				tx.Emit(Event{Shipment: a.ID, Type: "shipped", Time: 9, CallerID: "c1"})
				return nil
			})
			if !errors.Is(err, ErrExists) {
				t.Fatalf("c1 again on A: %v, want ErrExists", err)
			}
			var indexes int
			q := `SELECT COUNT(*) FROM pg_indexes WHERE tablename = 'events'`
			if s.dialect == SQLite {
				q = `SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND tbl_name = 'events'`
			}
			if err := s.rdb.QueryRowContext(ctx, q).Scan(&indexes); err != nil {
				t.Fatal(err)
			}
			// SQLite: id, (shipment, seq), events_caller (cursor is the
			// rowid); PostgreSQL: the primary key too.
			want := 3
			if s.dialect == Postgres {
				want = 4
			}
			if indexes != want {
				t.Errorf("%d indexes on events, want %d", indexes, want)
			}
		})
	}
}

// TestEventIDs checks that event ids sort in creation order (a later
// millisecond sorts after) and are distinct within one.
func TestEventIDs(t *testing.T) {
	t0 := time.UnixMilli(1_780_000_000_000)
	seen := map[string]bool{}
	prevMax := ""
	for ms := range 500 {
		ids := make([]string, 4) // four ids in each millisecond
		for i := range ids {
			ids[i] = newEventID(t0.Add(time.Duration(ms) * time.Millisecond))
			if len(ids[i]) != 25 || !strings.HasPrefix(ids[i], "ev_") || seen[ids[i]] {
				t.Fatalf("id %q (malformed or twice)", ids[i])
			}
			seen[ids[i]] = true
		}
		if lo := slices.Min(ids); lo <= prevMax {
			t.Fatalf("id %q of a later millisecond sorts before %q", lo, prevMax)
		}
		prevMax = slices.Max(ids)
	}
}

// TestConcurrentEmitters checks that concurrent transactions give gapless
// sequences per shipment and cursors a reader never sees out of order.
func TestConcurrentEmitters(t *testing.T) {
	forEach(t, func(t *testing.T, s *Store, where string) {
		const shipments, writers, each = 4, 6, 25
		var ids []int64
		tx(t, s, func(tx *Tx) error {
			for i := range shipments {
				sh := newShipment(fmt.Sprintf("C%d", i))
				if err := tx.InsertShipment(sh); err != nil {
					return err
				}
				ids = append(ids, sh.ID)
			}
			return nil
		})
		var wg sync.WaitGroup
		errs := make(chan error, writers)
		stop := make(chan struct{})
		readerErr := make(chan error, 1)
		go func() { // a reader following the cursor must never skip an event
			var after int64
			seen := 0
			for {
				select {
				case <-stop:
					evs, err := s.EventsAfter(context.Background(), after, 1000)
					if err == nil {
						seen += len(evs)
					}
					if seen != writers*each*2 && err == nil {
						// Events skipped by the cursor would be missing.
						evs2, _ := s.EventsAfter(context.Background(), 0, 100000)
						err = fmt.Errorf("reader saw %d events following the cursor, the log has %d", seen, len(evs2))
					}
					readerErr <- err
					return
				default:
				}
				evs, err := s.EventsAfter(context.Background(), after, 1000)
				if err != nil {
					readerErr <- err
					return
				}
				for _, e := range evs {
					if e.Cursor != after+1 {
						readerErr <- fmt.Errorf("cursor jumped from %d to %d", after, e.Cursor)
						return
					}
					after = e.Cursor
					seen++
				}
			}
		}()
		for w := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for k := range each {
					_, err := s.Tx(context.Background(), func(tx *Tx) error {
						tx.Emit(Event{Shipment: ids[(w+k)%shipments], Type: "t", Time: int64(k)})
						tx.Emit(Event{Shipment: ids[(w+k+1)%shipments], Type: "t", Time: int64(k)})
						return nil
					})
					if err != nil {
						errs <- err
						return
					}
				}
			}()
		}
		wg.Wait()
		close(stop)
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		if err := <-readerErr; err != nil {
			t.Fatal(err)
		}
		for _, id := range ids {
			evs, err := s.ShipmentEvents(context.Background(), id)
			if err != nil {
				t.Fatal(err)
			}
			for i, e := range evs {
				if e.Seq != int64(i+1) {
					t.Fatalf("shipment %d: event %d has seq %d", id, i, e.Seq)
				}
			}
		}
	})
}

func TestKeys(t *testing.T) {
	forEach(t, func(t *testing.T, s *Store, where string) {
		key, id, hash := seal.NewAPIKey()
		tx(t, s, func(tx *Tx) error {
			return tx.InsertKey(Key{ID: id, Hash: hash, Scope: "driver", Vehicle: "van-1", Created: 1})
		})
		k, err := s.KeyByHash(context.Background(), seal.HashAPIKey(key))
		if err != nil || k.ID != id || k.Scope != "driver" || k.Vehicle != "van-1" || k.Revoked != 0 {
			t.Fatalf("%+v %v", k, err)
		}
		tx(t, s, func(tx *Tx) error { return tx.RevokeKey(id, 5) })
		if k, _ := s.KeyByHash(context.Background(), hash); k.Revoked != 5 {
			t.Fatalf("not revoked: %+v", k)
		}
		if _, err := s.Tx(context.Background(), func(tx *Tx) error { return tx.RevokeKey(id, 6) }); !errors.Is(err, ErrNotFound) {
			t.Fatalf("revoke twice: %v", err)
		}
		keys, err := s.Keys(context.Background())
		if err != nil || len(keys) != 1 {
			t.Fatalf("%v %v", keys, err)
		}
	})
}

func TestPlansStopsPingsVehicles(t *testing.T) {
	forEach(t, func(t *testing.T, s *Store, where string) {
		sh := newShipment("P1")
		var st Stop
		var r Route
		tx(t, s, func(tx *Tx) error {
			if err := tx.InsertShipment(sh); err != nil {
				return err
			}
			plan, err := tx.InsertPlan(`{}`, 1)
			if err != nil {
				return err
			}
			r = Route{Plan: plan, Vehicle: "van-1", Spec: `{"id":1}`, Status: RoutePlanned, Created: 1}
			if err := tx.InsertRoute(&r); err != nil {
				return err
			}
			st = Stop{Route: r.ID, Shipment: sh.ID, Position: 0, Attempt: 1, Status: "planned", Planned: 500}
			return tx.InsertStop(&st)
		})
		tx(t, s, func(tx *Tx) error {
			st.ETA, st.P10, st.P90 = 600, 550, 700
			if err := tx.SetRouteETAs(r.ID, []Stop{st}); err != nil {
				return err
			}
			got, err := tx.Stop(st.ID)
			if err != nil {
				return err
			}
			if got.ETA != 600 || got.P10 != 550 || got.P90 != 700 || got.Tracking != "P1" || got.Planned != 500 {
				return fmt.Errorf("after SetRouteETAs: %+v", got)
			}
			got.Status, got.ArrivedAt, got.SoonFired = "arrived", 610, 1
			return tx.UpdateStop(got)
		})
		// A stop the route's ETA row does not list keeps its columns.
		var st2 Stop
		tx(t, s, func(tx *Tx) error {
			sh2 := newShipment("P2")
			if err := tx.InsertShipment(sh2); err != nil {
				return err
			}
			st2 = Stop{Route: r.ID, Shipment: sh2.ID, Position: 1, Attempt: 1, Status: "planned", Planned: 800}
			if err := tx.InsertStop(&st2); err != nil {
				return err
			}
			st2.ETA, st2.P10, st2.P90 = 900, 880, 950
			return tx.UpdateStop(st2)
		})
		if got, err := s.RouteStops(context.Background(), r.ID); err != nil || len(got) != 2 || got[0].ETA != 600 || got[0].P90 != 700 ||
			got[1].ETA != 900 || got[1].P10 != 880 || got[1].P90 != 950 {
			t.Fatalf("stops with and without a route ETA: %+v %v", got, err)
		}
		tx(t, s, func(tx *Tx) error {
			st.ETA, st.P10, st.P90 = 610, 610, 610
			st2.ETA, st2.P10, st2.P90 = 1000, 960, 1100
			return tx.SetRouteETAs(r.ID, []Stop{st, st2})
		})
		if got, err := s.RouteStops(context.Background(), r.ID); err != nil || len(got) != 2 || got[0].ETA != 610 || got[0].P10 != 610 ||
			got[1].ETA != 1000 || got[1].P10 != 960 || got[1].P90 != 1100 || got[1].Planned != 800 {
			t.Fatalf("after a second SetRouteETAs: %+v %v", got, err)
		}
		// A stop without an ETA is left out of the row: its columns stand.
		tx(t, s, func(tx *Tx) error {
			st.ETA, st.P10, st.P90 = 600, 550, 700 // as before, for what follows
			st2.ETA = 0
			return tx.SetRouteETAs(r.ID, []Stop{st, st2})
		})
		if got, err := s.RouteStops(context.Background(), r.ID); err != nil || len(got) != 2 || got[0].ETA != 600 || got[1].ETA != 900 || got[1].P90 != 950 {
			t.Fatalf("a stop without an ETA given: %+v %v", got, err)
		}
		stops, err := s.RouteStops(context.Background(), r.ID)
		if err != nil || len(stops) != 2 || stops[0].Status != "arrived" || stops[0].ArrivedAt != 610 || stops[0].SoonFired != 1 {
			t.Fatalf("%+v %v", stops, err)
		}
		if latest, err := s.LatestStop(context.Background(), sh.ID); err != nil || latest.ID != st.ID {
			t.Fatalf("latest %+v %v", latest, err)
		}
		if route, veh, err := s.StopRoute(context.Background(), st.ID); err != nil || route != r.ID || veh != "van-1" {
			t.Fatalf("stop route %v %v %v", route, veh, err)
		}
		// Pings: a resent batch is skipped.
		var n1, n2 int64
		pings := make([]Ping, 400)
		for i := range pings {
			pings[i] = Ping{Vehicle: "van-1", TimeMS: int64(1000 * (i + 1)), Lon: -8.6, Lat: 41.1, Speed: 3}
		}
		tx(t, s, func(tx *Tx) error { var err error; n1, err = tx.InsertPings(pings); return err })
		tx(t, s, func(tx *Tx) error { var err error; n2, err = tx.InsertPings(pings[390:]); return err })
		if n1 != 400 || n2 != 0 {
			t.Fatalf("inserted %d then %d", n1, n2)
		}
		last, err := s.PingsBetween(context.Background(), "van-1", 397_000, 399_000)
		if err != nil || len(last) != 3 || last[0].TimeMS != 397_000 || last[2].TimeMS != 399_000 || last[0].Speed != 3 {
			t.Fatalf("%+v %v", last, err)
		}
		tx(t, s, func(tx *Tx) error {
			v, err := tx.LockVehicle("van-1")
			if err != nil {
				return err
			}
			if v.Route != 0 || v.LastMS != 0 {
				return fmt.Errorf("new vehicle %+v", v)
			}
			v.Route, v.LastMS, v.State = r.ID, 400_000, `{"dwell":1}`
			return tx.PutVehicle(v)
		})
		if v, err := s.Vehicle(context.Background(), "van-1"); err != nil || v.Route != r.ID || v.State != `{"dwell":1}` {
			t.Fatalf("%+v %v", v, err)
		}
	})
}

func TestEraseExpired(t *testing.T) {
	forEach(t, func(t *testing.T, s *Store, where string) {
		old, recent := newShipment("OLD"), newShipment("NEW")
		tx(t, s, func(tx *Tx) error {
			for _, sh := range []*Shipment{old, recent} {
				if err := tx.InsertShipment(sh); err != nil {
					return err
				}
			}
			if err := tx.SetShipmentStatus(old.ID, "delivered", 100, 100); err != nil {
				return err
			}
			return tx.SetShipmentStatus(recent.ID, "delivered", 900, 900)
		})
		var n int64
		tx(t, s, func(tx *Tx) error { var err error; n, err = tx.EraseExpired(500, 1000); return err })
		if n != 1 {
			t.Fatalf("erased %d", n)
		}
		o, _ := s.ShipmentByTracking(context.Background(), "OLD")
		r, _ := s.ShipmentByTracking(context.Background(), "NEW")
		if o.Recipient != (Recipient{}) || o.Address != "" || o.Token != "" || o.Erased != 1000 || o.Status != "delivered" || o.Window != old.Window {
			t.Fatalf("old after erase: %+v", o)
		}
		if r.Recipient != recent.Recipient {
			t.Fatalf("recent erased: %+v", r)
		}
	})
}

// TestUrgentDeliveries: urgent deliveries are claimed first, with the
// pending ones before them in their shipment's order, and never before a
// less urgent earlier one of their shipment (a replay's).
func TestUrgentDeliveries(t *testing.T) {
	forEach(t, func(t *testing.T, s *Store, where string) {
		ctx := context.Background()
		const now = 1_000_000
		add := func(requeue bool, ds ...Delivery) {
			t.Helper()
			tx(t, s, func(tx *Tx) error {
				for i := range ds {
					ds[i].Target, ds[i].NextAt, ds[i].Created = TargetRecipient, now, now
					ds[i].Dedupe = fmt.Sprint(ds[i].Event)
				}
				if requeue {
					return tx.RequeueDeliveries(ds)
				}
				return tx.AddDeliveries(ds)
			})
		}
		d := func(ch string, ship, event int64, urgent bool) Delivery {
			return Delivery{Channel: ch, Shipment: ship, Event: event, Urgent: urgent}
		}
		add(false, d(ChannelEmail, 1, 1, false), d(ChannelEmail, 1, 2, false), d(ChannelEmail, 1, 3, false),
			d(ChannelEmail, 2, 4, false), d(ChannelEmail, 2, 5, false))
		add(false, d(ChannelEmail, 2, 6, true), d(ChannelEmail, 3, 7, false))
		// An urgent one, then a replay queues an earlier, plain one.
		add(false, d(ChannelSMS, 5, 11, true))
		add(true, d(ChannelSMS, 5, 9, false))
		claim := func(ch string, limit int) []int64 {
			t.Helper()
			_, got, err := s.FinishAndClaim(ctx, now, nil, 0, now+60_000, []string{ch}, func(Target) int { return limit })
			if err != nil {
				t.Fatal(err)
			}
			var evs []int64
			for _, x := range got {
				evs = append(evs, x.Event)
			}
			return evs
		}
		for _, tc := range []struct {
			ch    string
			limit int
			want  []int64
		}{
			{ChannelEmail, 3, []int64{4, 5, 6}},
			{ChannelEmail, 10, []int64{1, 2, 3, 7}},
			{ChannelSMS, 1, []int64{9}},
			{ChannelSMS, 1, nil}, // 11 waits for 9 (leased, not sent)
		} {
			if got := claim(tc.ch, tc.limit); !slices.Equal(got, tc.want) {
				t.Errorf("claim %s up to %d: events %v, want %v", tc.ch, tc.limit, got, tc.want)
			}
		}
	})
}

// TestSQLiteWriterOrder: transactions waiting for SQLite's one writer
// get it in the order they asked (database/sql alone picks a random
// waiter), and a transaction whose function panics gives it back.
func TestSQLiteWriterOrder(t *testing.T) {
	s, _ := backends()[0].open(t)
	ctx := context.Background()
	hold, held := make(chan struct{}), make(chan struct{})
	go s.Tx(ctx, func(tx *Tx) error {
		close(held)
		<-hold
		return nil
	})
	<-held
	const n = 12
	var mu sync.Mutex
	var order []int
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := s.Tx(ctx, func(tx *Tx) error {
				mu.Lock()
				order = append(order, i)
				mu.Unlock()
				return nil
			}); err != nil {
				t.Error(err)
			}
		}()
		time.Sleep(10 * time.Millisecond) // queued before the next one asks
	}
	close(hold)
	wg.Wait()
	for i, k := range order {
		if k != i {
			t.Fatalf("writer turns in the order %v, want 0..%d", order, n-1)
		}
	}
	func() {
		defer func() { _ = recover() }()
		s.Tx(ctx, func(tx *Tx) error { panic("in the transaction") })
	}()
	done := make(chan error, 1)
	go func() {
		_, err := s.Tx(ctx, func(tx *Tx) error { return nil })
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the writer was not given back after a panic")
	}
}

// TestRouteETAsCodec checks the packing of a route_etas row: every stop
// it lists is found with its ETAs, others and malformed rows are not.
func TestRouteETAsCodec(t *testing.T) {
	stops := []Stop{
		{ID: 1, ETA: 1_796_580_000, P10: 1_796_579_400, P90: 1_796_581_200},
		{ID: 7, ETA: 1_796_583_000, P10: 1_796_583_000, P90: 1_796_583_000},
		{ID: 1 << 40, ETA: 5, P10: 9, P90: 2}, // P10 after the ETA: kept as given
		{ID: -3, ETA: -1, P10: -2, P90: 0},
	}
	var b []byte
	for _, st := range stops {
		b = appendETA(b, &st)
	}
	for _, st := range stops {
		eta, p10, p90, ok := routeETA(b, st.ID)
		if !ok || eta != st.ETA || p10 != st.P10 || p90 != st.P90 {
			t.Errorf("stop %d: %d %d %d %v, want %d %d %d", st.ID, eta, p10, p90, ok, st.ETA, st.P10, st.P90)
		}
	}
	for _, c := range []struct {
		name string
		row  []byte
		id   int64
	}{
		{"absent", b, 8},
		{"empty", nil, 1},
		{"cut short", b[:len(b)-1], -3},
		{"overlong varint", []byte{0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80}, 0},
	} {
		if _, _, _, ok := routeETA(c.row, c.id); ok {
			t.Errorf("%s: stop %d found", c.name, c.id)
		}
	}
}

// FuzzRouteETA: any route_etas row is read without a panic.
func FuzzRouteETA(f *testing.F) {
	f.Add(appendETA(nil, &Stop{ID: 3, ETA: 100, P10: 90, P90: 130}), int64(3))
	f.Fuzz(func(t *testing.T, row []byte, id int64) {
		routeETA(row, id)
	})
}
