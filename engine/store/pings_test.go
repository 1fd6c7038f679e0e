package store

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"sync"
	"testing"
)

// TestPingEncoding round-trips pings through encodePings: times far
// apart and 1 ms apart, speed and heading present, absent (NaN) and zero,
// extreme coordinates.
func TestPingEncoding(t *testing.T) {
	nan := math.NaN()
	cases := [][]Ping{
		{{TimeMS: 1_767_261_600_000, Lon: -8.61, Lat: 41.15, Speed: nan, Heading: nan}},
		{{TimeMS: 0, Lon: 0, Lat: 0, Speed: 0, Heading: 0}, {TimeMS: 1, Lon: -180, Lat: -90, Speed: 55.5, Heading: nan},
			{TimeMS: 1 << 50, Lon: 180, Lat: 90, Speed: nan, Heading: 359.9}},
		{{TimeMS: -5000, Lon: 7.4, Lat: 43.7, Speed: 1e-9, Heading: -0.0}, {TimeMS: 10_000, Lon: math.SmallestNonzeroFloat64, Lat: math.MaxFloat64, Speed: nan, Heading: nan}},
	}
	same := func(a, b float64) bool { return a == b || math.IsNaN(a) && math.IsNaN(b) }
	for i, ps := range cases {
		for k := range ps {
			ps[k].Vehicle = "van-1"
		}
		got, err := decodePings(nil, "van-1", ps[0].TimeMS, encodePings(ps))
		if err != nil || len(got) != len(ps) {
			t.Fatalf("case %d: %d pings, %v", i, len(got), err)
		}
		for k := range ps {
			g, w := got[k], ps[k]
			if g.Vehicle != w.Vehicle || g.TimeMS != w.TimeMS || g.Lon != w.Lon || g.Lat != w.Lat || !same(g.Speed, w.Speed) || !same(g.Heading, w.Heading) {
				t.Errorf("case %d ping %d: %+v, want %+v", i, k, g, w)
			}
		}
	}
	for _, bad := range [][]byte{nil, {}, {2}, {pingFormat, 0}, {pingFormat, 0, 4}, {pingFormat, 0x80}, {pingFormat, 0, 0, 1, 2, 3}} {
		if _, err := decodePings(nil, "v", 0, bad); err == nil {
			t.Errorf("%v decoded", bad)
		}
	}
}

// FuzzDecodePings: any data decodes or fails without a panic, and what
// decodes encodes to data that decodes the same.
func FuzzDecodePings(f *testing.F) {
	f.Add(encodePings([]Ping{{TimeMS: 5, Lon: 1, Lat: 2, Speed: 3, Heading: math.NaN()}, {TimeMS: 900, Lon: 1, Lat: 2, Speed: math.NaN(), Heading: 4}}))
	f.Add([]byte{pingFormat, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	same := func(a, b float64) bool { return a == b || math.IsNaN(a) && math.IsNaN(b) }
	f.Fuzz(func(t *testing.T, data []byte) {
		ps, err := decodePings(nil, "v", 0, data)
		if err != nil || len(ps) == 0 {
			return
		}
		again, err := decodePings(nil, "v", ps[0].TimeMS, encodePings(ps))
		if err != nil || len(again) != len(ps) {
			t.Fatalf("%x: %d pings, re-encoded %d, %v", data, len(ps), len(again), err)
		}
		for i, p := range ps {
			q := again[i]
			if p.TimeMS != q.TimeMS || !same(p.Lon, q.Lon) || !same(p.Lat, q.Lat) || !same(p.Speed, q.Speed) || !same(p.Heading, q.Heading) {
				t.Fatalf("%x: ping %d %+v re-encoded as %+v", data, i, p, q)
			}
		}
	})
}

// TestInsertPingsDedup: pings already stored, or given twice, or out of
// order, are stored once; vehicles do not mix; a range read cuts batches.
func TestInsertPingsDedup(t *testing.T) {
	forEach(t, func(t *testing.T, s *Store, _ string) {
		mk := func(v string, times ...int64) []Ping {
			var out []Ping
			for _, ms := range times {
				out = append(out, Ping{Vehicle: v, TimeMS: ms, Lon: float64(ms), Lat: 1, Speed: math.NaN(), Heading: math.NaN()})
			}
			return out
		}
		steps := []struct {
			pings []Ping
			want  int64
		}{
			{mk("a", 10, 20, 30), 3},
			{append(mk("a", 30, 25, 20, 40, 40), mk("b", 20, 10)...), 4}, // 25, 40 new for a; 10, 20 for b
			{mk("a", 10, 20, 25, 30, 40), 0},
			{mk("a", 5, 35, 50), 3},
		}
		for i, st := range steps {
			var n int64
			tx(t, s, func(tx *Tx) error {
				for _, v := range []string{"a", "b"} {
					if _, err := tx.LockVehicle(v); err != nil {
						return err
					}
				}
				var err error
				n, err = tx.InsertPings(st.pings)
				return err
			})
			if n != st.want {
				t.Errorf("step %d: %d new, want %d", i, n, st.want)
			}
		}
		ctx := context.Background()
		times := func(ps []Ping, err error) []int64 {
			if err != nil {
				t.Fatal(err)
			}
			var out []int64
			for _, p := range ps {
				if p.Lon != float64(p.TimeMS) {
					t.Errorf("ping %+v: another ping's position", p)
				}
				out = append(out, p.TimeMS)
			}
			return out
		}
		if got := times(s.PingsBetween(ctx, "a", 0, 100)); !slices.Equal(got, []int64{5, 10, 20, 25, 30, 35, 40, 50}) {
			t.Errorf("a: %v", got)
		}
		if got := times(s.PingsBetween(ctx, "a", 21, 39)); !slices.Equal(got, []int64{25, 30, 35}) {
			t.Errorf("a 21-39: %v", got)
		}
		if got := times(s.PingsBetween(ctx, "b", 0, 100)); !slices.Equal(got, []int64{10, 20}) {
			t.Errorf("b: %v", got)
		}
		if n, err := s.CountPings(ctx); err != nil || n != 10 {
			t.Errorf("count %d %v, want 10", n, err)
		}
	})
}

// TestMigratePings upgrades a database of schema 12 with pings stored a
// row each: they read back the same after migration 13, and new ones
// beside them are deduplicated against them.
func TestMigratePings(t *testing.T) {
	for _, name := range []string{"sqlite", "postgres"} {
		t.Run(name, func(t *testing.T) {
			old, dsn, ring := openAtSchema(t, name, 12)
			ctx := context.Background()
			var want []Ping
			for i := range 600 { // more than batchPings of one vehicle
				p := Ping{Vehicle: "van-1", TimeMS: int64(1000 * i), Lon: -8.6 + float64(i)*1e-5, Lat: 41.1, Speed: math.NaN(), Heading: math.NaN()}
				if i%3 == 0 {
					p.Speed, p.Heading = float64(i%17), float64(i%360)
				}
				want = append(want, p)
			}
			want = append(want, Ping{Vehicle: "van-2", TimeMS: 7, Lon: 1, Lat: 2, Speed: math.NaN(), Heading: math.NaN()})
			tx(t, old, func(tx *Tx) error {
				for _, p := range want {
					if _, err := tx.q().ExecContext(ctx, `INSERT INTO pings (vehicle, time_ms, lon, lat, speed, heading) VALUES ($1, $2, $3, $4, $5, $6)`,
						p.Vehicle, p.TimeMS, p.Lon, p.Lat, nullFloat(p.Speed), nullFloat(p.Heading)); err != nil {
						return err
					}
				}
				return nil
			})
			// Pages of 250 rows end inside a vehicle's pings and inside
			// a batch.
			s := reopen(t, old, dsn, Options{Ring: ring, movePage: 250})
			got, err := s.PingsBetween(ctx, "van-1", 0, 1<<50)
			if err != nil {
				t.Fatal(err)
			}
			got2, err := s.PingsBetween(ctx, "van-2", 0, 1<<50)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, got2...)
			same := func(a, b float64) bool { return a == b || math.IsNaN(a) && math.IsNaN(b) }
			if len(got) != len(want) {
				t.Fatalf("%d pings after the migration, want %d", len(got), len(want))
			}
			for i := range want {
				g, w := got[i], want[i]
				if g.Vehicle != w.Vehicle || g.TimeMS != w.TimeMS || g.Lon != w.Lon || g.Lat != w.Lat || !same(g.Speed, w.Speed) || !same(g.Heading, w.Heading) {
					t.Fatalf("ping %d: %+v, want %+v", i, g, w)
				}
			}
			var n int64
			tx(t, s, func(tx *Tx) error {
				if _, err := tx.LockVehicle("van-1"); err != nil {
					return err
				}
				var err error
				n, err = tx.InsertPings([]Ping{want[10], want[599], {Vehicle: "van-1", TimeMS: 600_000, Speed: math.NaN(), Heading: math.NaN()}})
				return err
			})
			if n != 1 {
				t.Errorf("%d new of 2 stored and 1 new", n)
			}
			var tables int
			q := `SELECT COUNT(*) FROM information_schema.tables WHERE table_name = 'pings'`
			if s.dialect == SQLite {
				q = `SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'pings'`
			}
			if err := s.rdb.QueryRowContext(ctx, q).Scan(&tables); err != nil || tables != 0 {
				t.Errorf("the pings table: %d, %v", tables, err)
			}
		})
	}
}

// TestPingChainRandom inserts random batches of two vehicles' pings, late
// ones (a phone's backlog) and resent ones among them, and compares
// PingsBetween over random ranges with the pings kept aside, after every
// insert.
func TestPingChainRandom(t *testing.T) {
	forEach(t, func(t *testing.T, s *Store, _ string) {
		rng := rand.New(rand.NewPCG(5, 8))
		ctx := context.Background()
		ref := map[string]map[int64]bool{"a": {}, "b": {}}
		check := func(step int) {
			t.Helper()
			for range 6 {
				v := []string{"a", "b"}[rng.IntN(2)]
				from := rng.Int64N(12_000)
				to := from + rng.Int64N(4_000)
				var want []int64
				for ms := range ref[v] {
					if ms >= from && ms <= to {
						want = append(want, ms)
					}
				}
				slices.Sort(want)
				got, err := s.PingsBetween(ctx, v, from, to)
				if err != nil {
					t.Fatal(err)
				}
				var times []int64
				for _, p := range got {
					times = append(times, p.TimeMS)
				}
				if !slices.Equal(times, want) {
					t.Fatalf("step %d: %s %d-%d: %v, want %v", step, v, from, to, times, want)
				}
			}
		}
		for step := range 60 {
			var batch []Ping
			var want int64
			seen := map[string]map[int64]bool{"a": {}, "b": {}}
			for range 1 + rng.IntN(8) {
				v := []string{"a", "b"}[rng.IntN(2)]
				start := rng.Int64N(12_000) // anywhere: new, late or stored
				for k := range 1 + rng.IntN(30) {
					ms := start + int64(k)*int64(1+rng.IntN(40))
					batch = append(batch, Ping{Vehicle: v, TimeMS: ms, Lon: float64(ms), Lat: 1, Speed: math.NaN(), Heading: math.NaN()})
					if !ref[v][ms] && !seen[v][ms] {
						seen[v][ms] = true
						want++
					}
				}
			}
			// Every other step locks the vehicles first (their chain heads
			// then come from LockVehicle) and stores the batch in two
			// calls (the second chains to the head the first left); every
			// fourth writes the vehicles' state after, which writes the
			// heads too (else the end of the transaction does).
			var n int64
			tx(t, s, func(tx *Tx) error {
				n = 0
				parts := [][]Ping{batch}
				var locked []Vehicle
				if step%2 == 0 {
					for _, v := range []string{"a", "b"} {
						veh, err := tx.LockVehicle(v)
						if err != nil {
							return err
						}
						locked = append(locked, veh)
					}
					parts = [][]Ping{batch[:len(batch)/2], batch[len(batch)/2:]}
				}
				for _, part := range parts {
					k, err := tx.InsertPings(part)
					n += k
					if err != nil {
						return err
					}
				}
				if step%4 == 0 {
					for _, veh := range locked {
						veh.LastMS = int64(step)
						if err := tx.PutVehicle(veh); err != nil {
							return err
						}
					}
				}
				return nil
			})
			if n != want {
				t.Fatalf("step %d: %d new, want %d", step, n, want)
			}
			for v, m := range seen {
				for ms := range m {
					ref[v][ms] = true
				}
			}
			check(step)
		}
	})
}

// TestMigratePingChain upgrades a database of schema 14, whose ping
// batches were indexed by vehicle and time, some written out of time
// order: they read back the same once chained, and new ones are
// deduplicated against them.
func TestMigratePingChain(t *testing.T) {
	for _, name := range []string{"sqlite", "postgres"} {
		t.Run(name, func(t *testing.T) {
			old, dsn, ring := openAtSchema(t, name, 14)
			ctx := context.Background()
			mk := func(v string, from, to int64) []Ping {
				var out []Ping
				for ms := from; ms <= to; ms += 10 {
					out = append(out, Ping{Vehicle: v, TimeMS: ms, Lon: float64(ms), Lat: 1, Speed: math.NaN(), Heading: math.NaN()})
				}
				return out
			}
			// Written in this order: a late batch of van-1 after newer ones.
			batches := [][]Ping{mk("van-1", 100, 200), mk("van-2", 0, 50), mk("van-1", 500, 600), mk("van-1", 300, 400), mk("van-1", 700, 750)}
			tx(t, old, func(tx *Tx) error {
				for _, b := range batches {
					if err := movePingBatch(ctx, tx.q(), b); err != nil {
						return err
					}
				}
				return nil
			})
			s := reopen(t, old, dsn, Options{Ring: ring})
			for _, c := range []struct {
				v        string
				from, to int64
				n        int
			}{
				{"van-1", 0, 1000, 11 + 11 + 11 + 6},
				{"van-1", 350, 520, 6 + 3},
				{"van-1", 201, 299, 0},
				{"van-2", 0, 1000, 6},
				{"van-3", 0, 1000, 0},
			} {
				got, err := s.PingsBetween(ctx, c.v, c.from, c.to)
				if err != nil || len(got) != c.n || !slices.IsSortedFunc(got, func(a, b Ping) int { return cmp.Compare(a.TimeMS, b.TimeMS) }) {
					t.Errorf("%s %d-%d: %d pings (%v), want %d in time order", c.v, c.from, c.to, len(got), err, c.n)
				}
			}
			var n int64
			tx(t, s, func(tx *Tx) error {
				if _, err := tx.LockVehicle("van-1"); err != nil {
					return err
				}
				var err error
				n, err = tx.InsertPings(append(mk("van-1", 390, 420), mk("van-1", 140, 140)...)) // 410, 420 new
				return err
			})
			if got, err := s.PingsBetween(ctx, "van-1", 0, 1000); n != 2 || err != nil || len(got) != 41 {
				t.Errorf("%d new (want 2), then %d pings (want 41), %v", n, len(got), err)
			}
		})
	}
}

// TestInsertPingsConcurrent has writers store pings of the same vehicles
// at once, without taking the vehicles' row locks first (on PostgreSQL
// their transactions run side by side): every ping reads back, none lost
// to a chain forked at a shared head.
func TestInsertPingsConcurrent(t *testing.T) {
	forEach(t, func(t *testing.T, s *Store, _ string) {
		const writers, rounds = 4, 15
		var wg sync.WaitGroup
		errs := make(chan error, writers)
		for w := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for r := range rounds {
					var ps []Ping
					for _, v := range []string{"v1", "v2"} {
						ms := int64(1000*r + 10*w)
						ps = append(ps, Ping{Vehicle: v, TimeMS: ms, Lon: 1, Lat: 2, Speed: math.NaN(), Heading: math.NaN()})
					}
					if _, err := s.Tx(context.Background(), func(tx *Tx) error { _, err := tx.InsertPings(ps); return err }); err != nil {
						errs <- err
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		for _, v := range []string{"v1", "v2"} {
			got, err := s.PingsBetween(context.Background(), v, 0, 1<<40)
			if err != nil || len(got) != writers*rounds {
				t.Fatalf("%s: %d pings read back (%v), want %d", v, len(got), err, writers*rounds)
			}
		}
	})
}

// BenchmarkPingRequest is the store's part of a ping request on SQLite:
// 10 vehicles locked, 10 new pings each stored, each vehicle's state
// written, in one transaction.
func BenchmarkPingRequest(b *testing.B) {
	s, err := Open(context.Background(), filepath.Join(b.TempDir(), "lastmile.db"), Options{Ring: testRing(b)})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	const vans, per = 10, 10
	ms := int64(0)
	b.ResetTimer()
	for i := range b.N {
		var batch []Ping
		for v := range vans {
			for k := range per {
				t := ms + int64(k)*1000
				batch = append(batch, Ping{Vehicle: fmt.Sprintf("van-%d", (i*vans+v)%1000), TimeMS: t, Lon: 8.6, Lat: 41.1, Speed: math.NaN(), Heading: math.NaN()})
			}
		}
		ms += per * 1000
		if _, err := s.Tx(context.Background(), func(tx *Tx) error {
			var vs []Vehicle
			for v := range vans {
				veh, err := tx.LockVehicle(fmt.Sprintf("van-%d", (i*vans+v)%1000))
				if err != nil {
					return err
				}
				vs = append(vs, veh)
			}
			if _, err := tx.InsertPings(batch); err != nil {
				return err
			}
			for _, veh := range vs {
				veh.LastMS = ms
				if err := tx.PutVehicle(veh); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			b.Fatal(err)
		}
	}
}
