package tiles

import (
	"bytes"
	"sync/atomic"
	"testing"
	"time"
)

// extentTiles lists every tile of t's extent at every zoom, computed from
// the bounds' corners independently of Seed (tileAt, the test's own
// lon/lat to tile formula).
func extentTiles(t *Tiler) []tileKey {
	b := t.Bounds()
	var ks []tileKey
	for z := t.opt.MinZoom; z <= t.opt.MaxZoom; z++ {
		x0, y0 := tileAt(b[0], b[3], z)
		x1, y1 := tileAt(b[2], b[1], z)
		for x := x0; x <= x1; x++ {
			for y := y0; y <= y1; y++ {
				ks = append(ks, tileKey{z, x, y})
			}
		}
	}
	return ks
}

func TestSeed(t *testing.T) {
	n := loadNetwork(t, "monaco.osm.pbf")
	tl := newTiler(t, n, Options{})
	ref := newTiler(t, n, Options{CacheBytes: -1})
	st := tl.Seed(nil, nil)
	ks := extentTiles(tl)
	if !st.Complete || st.Tiles != len(ks) || st.Rendered == 0 || st.Rendered > st.Tiles {
		t.Fatalf("seed %+v, want complete over the %d tiles of the extent", st, len(ks))
	}
	c := tl.CacheStats()
	if c.Entries != st.Rendered {
		t.Errorf("%d tiles cached, %d rendered", c.Entries, st.Rendered)
	}
	// Every tile of the extent with roads is now served without a render
	// (the empty tile is never cached: it is shared and costs no drawing),
	// and is the tile an uncached tiler renders.
	empty := 0
	for _, k := range ks {
		got, err := tl.Tile(k.z, k.x, k.y)
		if err != nil {
			t.Fatal(err)
		}
		if sameSlice(got, tl.empty) {
			empty++
		}
		want, err := ref.Tile(k.z, k.x, k.y)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("tile %v: seeded %d bytes differ from a render's %d", k, len(got), len(want))
		}
	}
	if after := tl.CacheStats(); after.Misses-c.Misses != int64(empty) || empty+st.Rendered != len(ks) {
		t.Errorf("%d renders after the seed over its own extent, %d tiles of it empty, %d seeded", after.Misses-c.Misses, empty, st.Rendered)
	}
	t.Logf("Monaco: %+v, %d bytes cached", st, c.Bytes)

	// Again: nothing left to render.
	if again := tl.Seed(nil, nil); !again.Complete || again.Rendered != 0 {
		t.Errorf("second seed %+v, want complete with no render", again)
	}
}

func TestSeedStops(t *testing.T) {
	n := loadNetwork(t, "monaco.osm.pbf")
	// Closed stop: nothing.
	stop := make(chan struct{})
	close(stop)
	if st := newTiler(t, n, Options{}).Seed(stop, nil); st.Complete || st.Rendered != 0 {
		t.Errorf("seed with stop closed: %+v", st)
	}
	// A small cache: the seed stops at SeedShare of it.
	small := newTiler(t, n, Options{CacheBytes: 40 << 10})
	st := small.Seed(nil, nil)
	c := small.CacheStats()
	if st.Complete || st.Rendered == 0 || float64(c.Bytes) > SeedShare*float64(c.Budget)+float64(c.Budget)/2 {
		t.Errorf("seed into a 40 kB cache: %+v, %d bytes cached", st, c.Bytes)
	}
	// No cache: nothing.
	if st := newTiler(t, n, Options{CacheBytes: -1}).Seed(nil, nil); st.Tiles != 0 {
		t.Errorf("seed without a cache: %+v", st)
	}
	// A Tile call in progress holds the seed back.
	tl := newTiler(t, n, Options{})
	tl.active.Add(1)
	done := make(chan SeedStats, 1)
	go func() { done <- tl.Seed(nil, nil) }()
	time.Sleep(50 * time.Millisecond)
	if m := tl.CacheStats().Misses; m != 0 {
		t.Errorf("%d renders while a request was in progress", m)
	}
	tl.active.Add(-1)
	select {
	case st := <-done:
		if !st.Complete {
			t.Errorf("seed after the request: %+v", st)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("seed did not resume")
	}
	// So does other work waiting (busy).
	tl = newTiler(t, n, Options{})
	var busy atomic.Bool
	busy.Store(true)
	go func() { done <- tl.Seed(nil, busy.Load) }()
	time.Sleep(50 * time.Millisecond)
	if m := tl.CacheStats().Misses; m != 0 {
		t.Errorf("%d renders while busy", m)
	}
	busy.Store(false)
	select {
	case st := <-done:
		if !st.Complete || st.Rendered == 0 {
			t.Errorf("seed once not busy: %+v", st)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("seed did not resume once not busy")
	}
}
