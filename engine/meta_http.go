package engine

import (
	"github.com/lastmile/lastmile/engine/store"
	"github.com/valyala/fasthttp"
)

func (s *Server) handleOpenAPI(ctx *fasthttp.RequestCtx, _ pathParams) error {
	ctx.SetContentType("application/json")
	ctx.SetBody(s.openapi)
	return nil
}

func (s *Server) handleHealth(ctx *fasthttp.RequestCtx, _ pathParams) error {
	ctx.SetContentType("text/plain; charset=utf-8")
	ctx.SetBodyString("ok\n")
	return nil
}

func (s *Server) handleReady(ctx *fasthttp.RequestCtx, _ pathParams) error {
	if !s.ready.Load() {
		return &Error{"NotReady", "shutting down"}
	}
	ctx.SetContentType("text/plain; charset=utf-8")
	ctx.SetBodyString("ready\n")
	return nil
}

func (s *Server) handleMetrics(ctx *fasthttp.RequestCtx, _ pathParams) error {
	ctx.SetContentType("text/plain; version=0.0.4; charset=utf-8")
	appendBody(ctx, func(b []byte) []byte {
		return s.appendStoreMetrics(s.appendTileMetrics(s.appendNotifyMetrics(s.live.appendMetrics(s.jobs.appendMetrics(s.metrics.appendText(b))))))
	})
	return nil
}

// appendStoreMetrics appends the figures of SQLite's writer (nothing on
// PostgreSQL or without a store): its commits, the transaction bodies they
// held, and its wall time in groups and in COMMIT. Busy seconds per second
// near 1 mean requests queue for the writer.
func (s *Server) appendStoreMetrics(b []byte) []byte {
	if s.cfg.Store == nil || s.cfg.Store.Dialect() != store.SQLite {
		return b
	}
	w := s.cfg.Store.Writer()
	b = appendMetric(b, "lastmile_store_commits_total", "counter", "Transactions committed by SQLite's writer (each a group of bodies).", float64(w.Commits))
	b = appendMetric(b, "lastmile_store_commit_bodies_total", "counter", "Transaction bodies (API writes) in the committed groups.", float64(w.Bodies))
	b = appendMetric(b, "lastmile_store_writer_seconds_total", "counter", "Wall time SQLite's writer spent running groups.", w.Busy.Seconds())
	return appendMetric(b, "lastmile_store_commit_seconds_total", "counter", "Wall time in COMMIT (page writes and fsync).", w.Commit.Seconds())
}
