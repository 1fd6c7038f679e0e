package engine

import (
	"errors"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/valyala/fasthttp"

	"github.com/lastmile/lastmile/engine/tiles"
	"github.com/lastmile/lastmile/graph"
)

// tilerOnce builds the basemap's tiler from the road graph on first use
// (the index costs memory and a second or two; a routing server that is
// never asked for a map never builds it; one with tracking pages builds
// it at start, warmTiles), again when the prepared graph is replaced: not
// for a new live-traffic customization of its roads.
type tilerOnce struct {
	mu sync.Mutex
	g  *graph.Graph
	t  *tiles.Tiler
	// seeded is the last seed of t, nil while it runs.
	seeded atomic.Pointer[tiles.SeedStats]
}

// get returns the tiler of g, built and then seeded in the background
// (built) on the first call for g.
func (o *tilerOnce) get(g *graph.Graph, built func(*tiles.Tiler)) (*tiles.Tiler, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.t != nil && o.g == g {
		return o.t, nil
	}
	t, err := tiles.New(g.Road, tiles.Options{})
	if err != nil {
		return nil, err
	}
	o.g, o.t = g, t
	o.seeded.Store(nil)
	if built != nil {
		built(t)
	}
	return t, nil
}

// current returns the tiler built last (nil: none yet).
func (o *tilerOnce) current() *tiles.Tiler {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.t
}

// seedTiles renders the tiles of the network's extent into t's cache in
// the background, giving way to tile requests (tiles.Tiler.Seed): from
// then on no map over the network waits for a render. It stops with the
// server.
func (s *Server) seedTiles(t *tiles.Tiler) {
	go func() {
		s.log.Info("tiles: seeding the cache")
		st := t.Seed(s.bgStop, runnable)
		if s.tiler.current() == t {
			s.tiler.seeded.Store(&st)
		}
		s.log.Info("tiles: seeded", "tiles", st.Tiles, "rendered", st.Rendered, "complete", st.Complete, "seconds", st.Time.Seconds())
	}()
}

// warmTiles builds the tiler and seeds its cache in the background once
// live traffic is warmed, on a server with tracking pages (a state
// store): the first recipient after a restart then finds the tiles of
// the extent rendered. Before, the first tile request built the index
// (0.2 s) and 32 uncached tiles asked at once in the next second had a
// p99 of 22-40 ms (bench/RESULTS.md).
func (s *Server) warmTiles() {
	defer s.bgDone.Done()
	select {
	case <-s.warmed:
	case <-s.bgStop:
		return
	}
	if _, err := s.tiler.get(s.R.G, s.seedTiles); err != nil {
		s.log.Warn("tiles: index not built", "err", err)
	}
}

// appendTileMetrics appends the basemap's cache and seed figures (nothing
// before the tiler is built).
func (s *Server) appendTileMetrics(b []byte) []byte {
	t := s.tiler.current()
	if t == nil {
		return b
	}
	c := t.CacheStats()
	b = appendMetric(b, "lastmile_tiles_cache_hits_total", "counter", "Basemap tiles answered from the cache.", float64(c.Hits))
	b = appendMetric(b, "lastmile_tiles_cache_misses_total", "counter", "Basemap tiles rendered.", float64(c.Misses))
	b = appendMetric(b, "lastmile_tiles_cached", "gauge", "Basemap tiles in the cache.", float64(c.Entries))
	b = appendMetric(b, "lastmile_tiles_cache_bytes", "gauge", "Bytes of the basemap tile cache.", float64(c.Bytes))
	done := 0.0
	if st := s.tiler.seeded.Load(); st != nil && st.Complete {
		done = 1
	}
	return appendMetric(b, "lastmile_tiles_seeded", "gauge", "1 once every tile of the network's extent is in the cache.", done)
}

// handleTile answers GET /tiles/{z}/{x}/{y}.mvt: a Mapbox Vector Tile of
// the road graph (layer "roads"), gzip-compressed, cacheable for a day
// (the graph changes only with a new prepare).
func (s *Server) handleTile(ctx *fasthttp.RequestCtx, p pathParams) error {
	if s.R == nil {
		return errNoGraph
	}
	ys, ok := strings.CutSuffix(string(p.Get("y")), ".mvt")
	z, err1 := strconv.Atoi(string(p.Get("z")))
	x, err2 := strconv.Atoi(string(p.Get("x")))
	y, err3 := strconv.Atoi(ys)
	if !ok || err1 != nil || err2 != nil || err3 != nil {
		return &Error{"InvalidUrl", "want /tiles/{z}/{x}/{y}.mvt with integer z, x, y"}
	}
	// The prepared graph, not Current: live traffic installs a new
	// customization of the same roads about every second, and keying the
	// tiler on it rebuilt the index and dropped the tile cache each time.
	t, err := s.tiler.get(s.R.G, s.seedTiles)
	if err != nil {
		return err
	}
	b, err := t.Tile(z, x, y)
	if errors.Is(err, tiles.ErrOutOfRange) {
		return &Error{"NotFound", "tile out of range: " + err.Error()}
	}
	if err != nil {
		return err
	}
	h := &ctx.Response.Header
	h.Set("Cache-Control", "public, max-age=86400")
	h.Set("Access-Control-Allow-Origin", "*")
	h.Set("Vary", "Accept-Encoding")
	ctx.SetContentType("application/vnd.mapbox-vector-tile")
	if ctx.Request.Header.HasAcceptEncoding("gzip") {
		h.Set("Content-Encoding", "gzip")
		ctx.SetBody(b)
		return nil
	}
	raw, err := fasthttp.AppendGunzipBytes(nil, b)
	if err != nil {
		return err
	}
	ctx.SetBody(raw)
	return nil
}
