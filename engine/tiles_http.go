package engine

import (
	"errors"
	"strconv"
	"strings"
	"sync"

	"github.com/valyala/fasthttp"

	"github.com/lastmile/lastmile/engine/tiles"
	"github.com/lastmile/lastmile/graph"
)

// tilerOnce builds the basemap's tiler from the road graph on first use
// (the index costs memory and a second or two; a server that is never
// asked for a map never builds it), again when the prepared graph is
// replaced: not for a new live-traffic customization of its roads.
type tilerOnce struct {
	mu sync.Mutex
	g  *graph.Graph
	t  *tiles.Tiler
}

func (o *tilerOnce) get(g *graph.Graph) (*tiles.Tiler, error) {
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
	return t, nil
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
	t, err := s.tiler.get(s.R.G)
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
