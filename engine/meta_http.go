package engine

import (
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
		return s.appendTileMetrics(s.appendNotifyMetrics(s.live.appendMetrics(s.jobs.appendMetrics(s.metrics.appendText(b)))))
	})
	return nil
}
