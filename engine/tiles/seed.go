package tiles

import (
	"math"
	"time"
)

// SeedStats is what Seed did.
type SeedStats struct {
	// Tiles counts the tiles of the network's extent looked at, Rendered
	// those it rendered into the cache (the others were cached already,
	// or have no road: the empty tile is never cached).
	Tiles, Rendered int
	// Complete reports that every tile of the extent at every zoom was
	// looked at; false when Seed stopped early (stop closed, or the cache
	// reached SeedShare of its budget).
	Complete bool
	// Time is how long Seed took, waits for Tile calls included.
	Time time.Duration
}

// SeedShare is the share of the cache's budget Seed fills at most, so that
// tiles asked for outside the extent, or evicted and asked again, still
// find room.
const SeedShare = 0.5

// Seed renders the tiles of the network's extent (Bounds) into the cache,
// zoom by zoom from MinZoom to MaxZoom, so that a map over the network
// waits for no render: on Porto (145,939 edges) the 10,701 tiles of zooms
// 8 to 16 took 1.1 s of one core and 10.5 MB of cache. Before that, 32
// uncached tiles asked at once on 2 cores waited for each other's renders
// (p99 23-37 ms at zooms 13-16, bench/RESULTS.md). Seed renders one tile
// at a time on the calling goroutine and waits while any Tile call is in
// progress, or busy (when not nil) reports other work waiting, so that
// requests go first. It returns when done, when stop is closed, or when
// the cache holds SeedShare of its budget; without a cache it does
// nothing.
func (t *Tiler) Seed(stop <-chan struct{}, busy func() bool) SeedStats {
	start := time.Now()
	var st SeedStats
	if t.cache == nil {
		return st
	}
	lo := mercator(t.bounds[0], t.bounds[3]) // north-west
	hi := mercator(t.bounds[2], t.bounds[1]) // south-east
	wait := time.NewTimer(0)
	defer wait.Stop()
	for z := t.opt.MinZoom; z <= t.opt.MaxZoom; z++ {
		n := float64(int(1) << z)
		last := 1<<z - 1
		x0, x1 := clampTile(lo[0]*n, last), clampTile(hi[0]*n, last)
		y0, y1 := clampTile(lo[1]*n, last), clampTile(hi[1]*n, last)
		for x := x0; x <= x1; x++ {
			for y := y0; y <= y1; y++ {
				for t.active.Load() > 0 || (busy != nil && busy()) {
					wait.Reset(time.Millisecond)
					select {
					case <-stop:
						st.Time = time.Since(start)
						return st
					case <-wait.C:
					}
				}
				select {
				case <-stop:
					st.Time = time.Since(start)
					return st
				default:
				}
				if c := t.cache.stats(); float64(c.Bytes) >= SeedShare*float64(c.Budget) {
					st.Time = time.Since(start)
					return st
				}
				rendered := false
				_, err := t.cache.get(cacheKey(z, x, y), func() ([]byte, bool, error) {
					b, keep, err := t.renderEntry(z, x, y)
					rendered = keep
					return b, keep, err
				})
				if err == nil && rendered {
					st.Rendered++
				}
				st.Tiles++
			}
		}
	}
	st.Complete = true
	st.Time = time.Since(start)
	return st
}

// clampTile is the tile index of a scaled world coordinate v, in
// [0, last].
func clampTile(v float64, last int) int {
	return min(max(int(math.Floor(v)), 0), last)
}
