package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"reflect"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/valyala/fasthttp"

	"github.com/lastmile/lastmile/graph"
	"github.com/lastmile/lastmile/vrp"
)

// ServerConfig holds the HTTP server's limits. Zero fields take the
// defaults given in their comments.
type ServerConfig struct {
	// MaxBodyBytes caps request bodies (default 8 MiB); a larger body is
	// answered 413 TooBig.
	MaxBodyBytes int
	// MaxRouteCoordinates caps the waypoints of one route (default 500).
	MaxRouteCoordinates int
	// MaxTableCells caps sources × destinations of one table (default
	// 1,000,000: 1000x1000); it also caps the coordinates of a table.
	MaxTableCells int
	// MaxHeaderBytes caps the request line and headers, hence the URL of a
	// route (default: room for MaxRouteCoordinates coordinates written with
	// 6 decimals, at least 8 KiB). A larger header is answered 431
	// HeaderTooBig.
	MaxHeaderBytes int
	// Timeout bounds the computation of one request (default 30 s): when
	// it runs longer the client gets 503 Timeout (the computation itself
	// finishes in the background, as graph queries cannot be interrupted).
	Timeout time.Duration
	// ReadTimeout and WriteTimeout bound reading a request and writing its
	// answer (default 30 s each).
	ReadTimeout, WriteTimeout time.Duration
	// IdleTimeout closes keep-alive connections idle this long (default
	// 60 s).
	IdleTimeout time.Duration
	// Workers is the number of goroutines one table or solve may use
	// (default 2).
	Workers int
	// SolveTime is the solver's time limit when POST /v1/solve gives none
	// (default 2 s); MaxSolveTime the largest a request may ask (default
	// 25 s, and always under Timeout).
	SolveTime, MaxSolveTime time.Duration
	// MaxComputations caps the computations (routes, tables, snaps) run at
	// once (default GOMAXPROCS): they are CPU-bound, so more would only
	// add latency and memory (each holds search state sized for the
	// graph). Requests beyond wait for a slot within their Timeout.
	MaxComputations int
	// MaxJobs caps the asynchronous solves queued or running (default 16);
	// a submission beyond is answered 429 TooManyJobs.
	MaxJobs int
	// MaxTrafficObservations caps the observations plus closures of one
	// POST /v1/traffic and the pings of one POST /v1/positions (default
	// 100,000).
	MaxTrafficObservations int
	// Live configures live traffic and ETAs.
	Live LiveConfig
	// JobWorkers is the number of asynchronous solves run at once (default
	// 1). They run on a pool of their own, outside MaxComputations, so
	// that routes and tables keep being answered while batch solves run;
	// each solve uses Workers goroutines.
	JobWorkers int
	// JobTTL is how long a finished job stays readable (default 10 min);
	// MaxFinishedJobs caps the finished jobs kept (default 256, the
	// oldest are dropped first).
	JobTTL          time.Duration
	MaxFinishedJobs int
	// MaxJobSolveTime is the largest time limit an asynchronous solve may
	// ask (default 10 min); it is not bounded by Timeout.
	MaxJobSolveTime time.Duration
	// Logger receives one debug line per request and error lines for
	// server failures (nil = discard).
	Logger *slog.Logger
}

// withDefaults returns cfg with every zero limit replaced by its default.
func (cfg ServerConfig) withDefaults() ServerConfig {
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 8 << 20
	}
	if cfg.MaxRouteCoordinates <= 0 {
		cfg.MaxRouteCoordinates = 500
	}
	if cfg.MaxTableCells <= 0 {
		cfg.MaxTableCells = 1_000_000
	}
	if cfg.MaxHeaderBytes <= 0 {
		// "-123.123456,-12.123456;" is 23 bytes; 2 KiB for the rest.
		cfg.MaxHeaderBytes = max(8<<10, cfg.MaxRouteCoordinates*24+2<<10)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	if cfg.ReadTimeout <= 0 {
		cfg.ReadTimeout = 30 * time.Second
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = 30 * time.Second
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = 60 * time.Second
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 2
	}
	if cfg.MaxSolveTime <= 0 {
		cfg.MaxSolveTime = 25 * time.Second
	}
	cfg.MaxSolveTime = min(cfg.MaxSolveTime, cfg.Timeout*9/10)
	if cfg.SolveTime <= 0 {
		cfg.SolveTime = 2 * time.Second
	}
	cfg.SolveTime = min(cfg.SolveTime, cfg.MaxSolveTime)
	if cfg.MaxComputations <= 0 {
		cfg.MaxComputations = runtime.GOMAXPROCS(0)
	}
	if cfg.MaxJobs <= 0 {
		cfg.MaxJobs = 16
	}
	if cfg.JobWorkers <= 0 {
		cfg.JobWorkers = 1
	}
	if cfg.JobTTL <= 0 {
		cfg.JobTTL = 10 * time.Minute
	}
	if cfg.MaxFinishedJobs <= 0 {
		cfg.MaxFinishedJobs = 256
	}
	if cfg.MaxTrafficObservations <= 0 {
		cfg.MaxTrafficObservations = 100_000
	}
	if cfg.MaxJobSolveTime <= 0 {
		cfg.MaxJobSolveTime = 10 * time.Minute
	}
	return cfg
}

// Server is the HTTP front door (github.com/valyala/fasthttp): OSRM-style
// route, table and nearest services under /v1, health probes, Prometheus
// metrics and the OpenAPI document. Every endpoint is one row of the table
// returned by endpoints.
type Server struct {
	R       *Router
	cfg     ServerConfig
	log     *slog.Logger
	srv     *fasthttp.Server
	ready   atomic.Bool
	routes  []endpoint
	metrics *metrics
	openapi []byte
	slots   chan struct{} // one per computation running
	jobs    *jobQueue     // asynchronous solves
	live    *Live         // traffic, positions, ETAs (nil without a graph)
	timers  sync.Pool     // *time.Timer for compute
}

// endpoint is one row of the route table: a method, a path pattern, the
// handler and its OpenAPI operation. A pattern is either an exact path or
// a prefix ending in one "{name}" parameter that takes the rest of the path
// (without '/').
type endpoint struct {
	Method  string
	Pattern string
	Handle  func(s *Server, ctx *fasthttp.RequestCtx, param []byte) error
	Doc     *apiOperation

	prefix string // Pattern up to the parameter, or all of it
	param  bool
}

// endpoints is the route table. Adding an endpoint is adding a row here
// (and its apiOperation in openapi.go).
func endpoints() []endpoint {
	return []endpoint{
		{Method: "GET", Pattern: "/v1/route/{coordinates}", Handle: (*Server).handleRoute, Doc: routeDoc},
		{Method: "POST", Pattern: "/v1/table", Handle: (*Server).handleTable, Doc: tableDoc},
		{Method: "GET", Pattern: "/v1/nearest/{coordinate}", Handle: (*Server).handleNearest, Doc: nearestDoc},
		{Method: "POST", Pattern: "/v1/solve", Handle: (*Server).handleSolve, Doc: solveDoc},
		{Method: "GET", Pattern: "/v1/jobs/{id}", Handle: (*Server).handleJobGet, Doc: jobGetDoc},
		{Method: "DELETE", Pattern: "/v1/jobs/{id}", Handle: (*Server).handleJobDelete, Doc: jobDeleteDoc},
		{Method: "POST", Pattern: "/v1/eta", Handle: (*Server).handleETA, Doc: etaDoc},
		{Method: "GET", Pattern: "/v1/eta/{vehicle}", Handle: (*Server).handleVehicleETA, Doc: vehicleETADoc},
		{Method: "POST", Pattern: "/v1/traffic", Handle: (*Server).handleTraffic, Doc: trafficDoc},
		{Method: "POST", Pattern: "/v1/positions", Handle: (*Server).handlePositions, Doc: positionsDoc},
		{Method: "GET", Pattern: "/v1/openapi.json", Handle: (*Server).handleOpenAPI, Doc: openapiDoc},
		{Method: "GET", Pattern: "/healthz", Handle: (*Server).handleHealth, Doc: healthDoc},
		{Method: "GET", Pattern: "/readyz", Handle: (*Server).handleReady, Doc: readyDoc},
		{Method: "GET", Pattern: "/metrics", Handle: (*Server).handleMetrics, Doc: metricsDoc},
	}
}

// compileRoutes fills the matching fields of each row and rejects
// malformed patterns and duplicates (a programming error).
func compileRoutes(rows []endpoint) ([]endpoint, error) {
	seen := map[string]bool{}
	for i := range rows {
		e := &rows[i]
		key := e.Method + " " + e.Pattern
		if seen[key] {
			return nil, fmt.Errorf("route %s registered twice", key)
		}
		seen[key] = true
		if !strings.HasPrefix(e.Pattern, "/") || e.Handle == nil || e.Doc == nil {
			return nil, fmt.Errorf("route %s: want a path starting with '/', a handler and a doc", key)
		}
		open := strings.IndexByte(e.Pattern, '{')
		switch {
		case open < 0:
			e.prefix = e.Pattern
		case strings.HasSuffix(e.Pattern, "}") && open > 0 && e.Pattern[open-1] == '/' &&
			strings.IndexByte(e.Pattern[open+1:], '{') < 0 && !strings.Contains(e.Pattern[open:], "/"):
			e.prefix, e.param = e.Pattern[:open], true
		default:
			return nil, fmt.Errorf("route %s: a parameter must be the last path segment", key)
		}
	}
	return rows, nil
}

// match returns the parameter when path matches the row.
func (e *endpoint) match(path []byte) ([]byte, bool) {
	if !e.param {
		return nil, string(path) == e.prefix
	}
	if len(path) <= len(e.prefix) || string(path[:len(e.prefix)]) != e.prefix {
		return nil, false
	}
	rest := path[len(e.prefix):]
	if bytes.IndexByte(rest, '/') >= 0 {
		return nil, false
	}
	return rest, true
}

// NewServer returns a server answering from r.
func NewServer(r *Router, cfg ServerConfig) *Server {
	s, err := newServer(r, cfg, endpoints())
	if err != nil {
		panic(err) // the route table is a constant of this package
	}
	return s
}

// newServer builds a server on the given route table (tests add rows).
func newServer(r *Router, cfg ServerConfig, rows []endpoint) (*Server, error) {
	cfg = cfg.withDefaults()
	routes, err := compileRoutes(rows)
	if err != nil {
		return nil, err
	}
	s := &Server{R: r, cfg: cfg, log: logger(cfg.Logger), routes: routes}
	s.metrics = newMetrics(routes)
	s.openapi, err = buildOpenAPI(routes, cfg)
	if err != nil {
		return nil, err
	}
	s.slots = make(chan struct{}, cfg.MaxComputations)
	s.jobs = newJobQueue(cfg, s.log)
	if r != nil {
		lc := cfg.Live
		if lc.Logger == nil {
			lc.Logger = cfg.Logger
		}
		if s.live, err = NewLive(r, lc); err != nil {
			return nil, err
		}
		s.live.Start()
	}
	s.srv = &fasthttp.Server{
		Handler:                      s.handle,
		ErrorHandler:                 s.handleParseError,
		Name:                         "lastmile",
		MaxRequestBodySize:           cfg.MaxBodyBytes,
		ReadBufferSize:               cfg.MaxHeaderBytes,
		ReadTimeout:                  cfg.ReadTimeout,
		WriteTimeout:                 cfg.WriteTimeout,
		IdleTimeout:                  cfg.IdleTimeout,
		CloseOnShutdown:              true,
		DisablePreParseMultipartForm: true,
		NoDefaultContentType:         true,
		Logger:                       fasthttpLogger{s.log},
	}
	s.ready.Store(true)
	return s, nil
}

// fasthttpLogger sends fasthttp's own messages (connection errors) to the
// debug log.
type fasthttpLogger struct{ log *slog.Logger }

func (l fasthttpLogger) Printf(format string, args ...any) {
	if l.log.Enabled(context.Background(), slog.LevelDebug) {
		l.log.Debug("fasthttp: " + fmt.Sprintf(format, args...))
	}
}

// Serve answers on ln until Shutdown; it returns nil after Shutdown.
func (s *Server) Serve(ln net.Listener) error { return s.srv.Serve(ln) }

// Shutdown marks the server not ready, cancels every queued and running
// asynchronous job (they end failed with code Cancelled; new submissions
// get 503 NotReady), stops accepting connections, closes idle ones and
// waits until the requests in flight are answered and the job goroutines
// have returned, or ctx is done (then it returns ctx's error).
func (s *Server) Shutdown(ctx context.Context) error {
	s.ready.Store(false)
	jerr := make(chan error, 1)
	go func() { jerr <- s.jobs.shutdown(ctx) }()
	err := s.srv.ShutdownWithContext(ctx)
	if s.live != nil {
		s.live.Close()
	}
	return errors.Join(err, <-jerr)
}

// Handler returns the request handler, for serving without a listener
// (fasthttp.ServeConn, in-memory listeners).
func (s *Server) Handler() fasthttp.RequestHandler { return s.handle }

// handle routes one request, recovers from panics, and records metrics
// and the request log line.
func (s *Server) handle(ctx *fasthttp.RequestCtx) {
	start := time.Now()
	s.metrics.inflight.Add(1)
	idx := s.metrics.unmatched
	defer func() {
		if p := recover(); p != nil {
			s.log.Error("panic in handler", "method", string(ctx.Method()), "path", logPath(ctx.Path()),
				"panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			ctx.ResetBody()
			s.writeError(ctx, &Error{"InternalError", "internal error"})
		}
		status := ctx.Response.StatusCode()
		el := time.Since(start)
		s.metrics.observe(idx, status, el)
		s.metrics.inflight.Add(-1)
		if s.log.Enabled(context.Background(), slog.LevelDebug) {
			attrs := []any{"method", string(ctx.Method()), "path", logPath(ctx.Path()), "status", status,
				"us", el.Microseconds(), "bytes", len(ctx.Response.Body()), "remote", ctx.RemoteAddr().String()}
			if status >= 400 {
				attrs = append(attrs, "error", string(bytes.TrimSpace(ctx.Response.Body())))
			}
			s.log.Debug("request", attrs...)
		}
	}()
	path := ctx.Path()
	method := ctx.Method()
	var allow []string
	for i := range s.routes {
		e := &s.routes[i]
		param, ok := e.match(path)
		if !ok {
			continue
		}
		if string(method) != e.Method {
			allow = append(allow, e.Method)
			continue
		}
		idx = i
		if err := e.Handle(s, ctx, param); err != nil {
			s.fail(ctx, err)
		}
		return
	}
	if allow != nil {
		ctx.Response.Header.Set("Allow", strings.Join(allow, ", "))
		s.writeError(ctx, &Error{"MethodNotAllowed", fmt.Sprintf("method %s not allowed on %s; use %s", method, logPath(path), strings.Join(allow, " or "))})
		return
	}
	s.writeError(ctx, &Error{"InvalidUrl", fmt.Sprintf("no service at %s", logPath(path))})
}

// handleParseError answers requests fasthttp could not read (too large,
// malformed, timed out) and counts them under the unmatched endpoint.
func (s *Server) handleParseError(ctx *fasthttp.RequestCtx, err error) {
	var e *Error
	var small *fasthttp.ErrSmallBuffer
	var ne net.Error
	switch {
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		e = &Error{"TooBig", fmt.Sprintf("request body over %d bytes", s.cfg.MaxBodyBytes)}
	case errors.As(err, &small):
		e = &Error{"HeaderTooBig", fmt.Sprintf("request line and headers over %d bytes (too many coordinates in the URL?)", s.cfg.MaxHeaderBytes)}
	case errors.As(err, &ne) && ne.Timeout():
		e = &Error{"RequestTimeout", "timed out reading the request"}
	default:
		e = &Error{"InvalidQuery", fmt.Sprintf("malformed HTTP request: %v", err)}
	}
	s.writeError(ctx, e)
	s.metrics.observe(s.metrics.unmatched, ctx.Response.StatusCode(), 0)
	s.log.Debug("unreadable request", "err", err, "status", ctx.Response.StatusCode())
}

// statusOf maps an error code to its HTTP status (documented in the
// OpenAPI document's Error schema).
func statusOf(code string) int {
	switch code {
	case "InvalidQuery", "InvalidValue", "InvalidOptions":
		return fasthttp.StatusBadRequest
	case "InvalidUrl", "NotFound":
		return fasthttp.StatusNotFound
	case "TooManyJobs":
		return fasthttp.StatusTooManyRequests
	case "MethodNotAllowed":
		return fasthttp.StatusMethodNotAllowed
	case "RequestTimeout":
		return fasthttp.StatusRequestTimeout
	case "TooBig":
		return fasthttp.StatusRequestEntityTooLarge
	case "HeaderTooBig":
		return fasthttp.StatusRequestHeaderFieldsTooLarge
	case "NoSegment", "NoRoute":
		return fasthttp.StatusUnprocessableEntity
	case "Timeout", "NotReady":
		return fasthttp.StatusServiceUnavailable
	default:
		return fasthttp.StatusInternalServerError
	}
}

// errorCodes lists every code statusOf knows, for the OpenAPI document.
var errorCodes = []string{"InvalidQuery", "InvalidValue", "InvalidOptions", "InvalidUrl", "MethodNotAllowed",
	"RequestTimeout", "TooBig", "HeaderTooBig", "NoSegment", "NoRoute", "Timeout", "NotReady", "InternalError",
	"NotFound", "TooManyJobs"}

// fail answers err: an *Error with its status, anything else as a logged
// 500 whose details stay in the log.
func (s *Server) fail(ctx *fasthttp.RequestCtx, err error) {
	var e *Error
	if !errors.As(err, &e) {
		s.log.Error("internal error", "method", string(ctx.Method()), "path", logPath(ctx.Path()), "err", err)
		e = &Error{"InternalError", "internal error"}
	}
	if statusOf(e.Code) == fasthttp.StatusInternalServerError && e.Code != "InternalError" {
		s.log.Error("unmapped error code", "code", e.Code, "message", e.Message)
	}
	s.writeError(ctx, e)
}

// writeError writes e as the JSON error object with its status.
func (s *Server) writeError(ctx *fasthttp.RequestCtx, e *Error) {
	ctx.SetStatusCode(statusOf(e.Code))
	ctx.SetContentType("application/json")
	appendBody(ctx, func(b []byte) []byte {
		b = append(b, `{"code":`...)
		b = appendJSONString(b, e.Code)
		b = append(b, `,"message":`...)
		b = appendJSONString(b, e.Message)
		return append(b, "}\n"...)
	})
}

// writeJSON answers 200 with v encoded by encoding/json straight into
// the response body.
func (s *Server) writeJSON(ctx *fasthttp.RequestCtx, v any) error {
	ctx.Response.ResetBody()
	if err := json.NewEncoder(ctx).Encode(v); err != nil {
		ctx.Response.ResetBody()
		return fmt.Errorf("encode %T: %w", v, err)
	}
	ctx.SetContentType("application/json")
	return nil
}

// compute runs f under the request timeout, once one of the
// MaxComputations slots is free, on a goroutine of its own, so that the
// client gets 503 Timeout when waiting plus computing takes too long (f
// then finishes in the background, keeping its slot, and its result is
// dropped). f must not touch the request context. A panic in f is logged
// and becomes an InternalError.
func (s *Server) compute(f func() (any, error)) (any, error) {
	type result struct {
		v   any
		err error
	}
	t := s.getTimer(s.cfg.Timeout)
	defer s.putTimer(t)
	select {
	case s.slots <- struct{}{}:
	case <-t.C:
		return nil, &Error{"Timeout", fmt.Sprintf("no computation slot free within %v (server overloaded)", s.cfg.Timeout)}
	}
	ch := make(chan result, 1)
	go func() {
		defer func() { <-s.slots }()
		defer func() {
			if p := recover(); p != nil {
				s.log.Error("panic in computation", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
				ch <- result{err: &Error{"InternalError", "internal error"}}
			}
		}()
		v, err := f()
		ch <- result{v, err}
	}()
	select {
	case r := <-ch:
		return r.v, r.err
	case <-t.C:
		return nil, &Error{"Timeout", fmt.Sprintf("computation took longer than %v", s.cfg.Timeout)}
	}
}

// getTimer returns a timer firing after d from the server's pool. Since
// Go 1.23 a stopped timer never delivers a stale tick, so a pooled timer
// can be Reset.
func (s *Server) getTimer(d time.Duration) *time.Timer {
	if t, ok := s.timers.Get().(*time.Timer); ok {
		t.Reset(d)
		return t
	}
	return time.NewTimer(d)
}

func (s *Server) putTimer(t *time.Timer) {
	t.Stop()
	s.timers.Put(t)
}

// logPath shortens a path for logs and messages.
func logPath(p []byte) string {
	const max = 160
	if len(p) > max {
		return string(p[:max]) + fmt.Sprintf("...(%d bytes)", len(p))
	}
	return string(p)
}

// ---- services ----

// routeParams are the query parameters /v1/route accepts; OSRM's
// steps, alternatives and annotations are accepted with their default
// value "false" only, so that OSRM clients work unchanged.
var routeParams = map[string][]string{
	"overview":     {"simplified", "full", "false"},
	"geometries":   {"polyline", "polyline6", "geojson"},
	"steps":        {"false"},
	"alternatives": {"false", "0"},
	"annotations":  {"false"},
}

// checkQuery rejects unknown query parameters and values outside allowed.
func checkQuery(args *fasthttp.Args, allowed map[string][]string) error {
	var err error
	args.VisitAll(func(k, v []byte) {
		if err != nil {
			return
		}
		vals, ok := allowed[string(k)]
		if !ok {
			names := make([]string, 0, len(allowed))
			for n := range allowed {
				names = append(names, n)
			}
			slices.Sort(names)
			err = &Error{"InvalidOptions", fmt.Sprintf("unknown parameter %q (known: %s)", k, strings.Join(names, ", "))}
			return
		}
		for _, a := range vals {
			if string(v) == a {
				return
			}
		}
		err = &Error{"InvalidOptions", fmt.Sprintf("parameter %s=%q: want one of %s", k, v, strings.Join(vals, ", "))}
	})
	return err
}

// parseCoordList parses OSRM's "lon,lat;lon,lat" (an optional ".json"
// suffix is ignored), refusing more than max coordinates before splitting.
func parseCoordList(s []byte, max int) ([]LonLat, error) {
	s = bytes.TrimSuffix(s, []byte(".json"))
	n := bytes.Count(s, []byte{';'}) + 1
	if n > max {
		return nil, &Error{"TooBig", fmt.Sprintf("%d coordinates, at most %d", n, max)}
	}
	pts := make([]LonLat, 0, n)
	for len(s) > 0 || len(pts) < n {
		part := s
		if i := bytes.IndexByte(s, ';'); i >= 0 {
			part, s = s[:i], s[i+1:]
		} else {
			s = nil
		}
		ll, err := ParseLonLat(string(part))
		if err != nil {
			return nil, &Error{"InvalidValue", fmt.Sprintf("coordinate %d: %v", len(pts), err)}
		}
		pts = append(pts, ll)
	}
	return pts, nil
}

func (s *Server) handleRoute(ctx *fasthttp.RequestCtx, param []byte) error {
	args := ctx.QueryArgs()
	if err := checkQuery(args, routeParams); err != nil {
		return err
	}
	pts, err := parseCoordList(param, s.cfg.MaxRouteCoordinates)
	if err != nil {
		return err
	}
	opt := RouteOptions{Geometries: string(args.Peek("geometries")), Overview: string(args.Peek("overview"))}
	v, err := s.compute(func() (any, error) { return s.R.Route(pts, opt) })
	if err != nil {
		return err
	}
	resp := v.(*RouteResponse)
	if !routeEncodable(resp) {
		return s.writeJSON(ctx, resp)
	}
	ctx.SetContentType("application/json")
	appendBody(ctx, func(b []byte) []byte { return appendRouteResponse(b, resp) })
	return nil
}

// routeEncodable reports whether appendRouteResponse writes resp exactly
// as encoding/json would: geometries of the three known kinds and no
// steps. Anything else goes through encoding/json.
func routeEncodable(r *RouteResponse) bool {
	for _, rt := range r.Routes {
		switch rt.Geometry.(type) {
		case nil, string, GeoJSONLine:
		default:
			return false
		}
		for _, l := range rt.Legs {
			if len(l.Steps) != 0 || l.Steps == nil {
				return false
			}
		}
	}
	return true
}

// appendRouteResponse appends r byte for byte as encoding/json writes it
// (the route answer is the hot path: no reflection, no intermediate
// buffer). TestServerRouteMatchesRouter holds the two to the same bytes.
func appendRouteResponse(b []byte, r *RouteResponse) []byte {
	b = append(b, `{"code":`...)
	b = appendJSONString(b, r.Code)
	b = append(b, `,"routes":`...)
	if r.Routes == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i := range r.Routes {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendRoute(b, &r.Routes[i])
		}
		b = append(b, ']')
	}
	b = append(b, `,"waypoints":`...)
	b = appendWaypoints(b, r.Waypoints)
	return append(b, "}\n"...)
}

func appendRoute(b []byte, rt *Route) []byte {
	b = append(b, '{')
	switch g := rt.Geometry.(type) {
	case string:
		b = append(b, `"geometry":`...)
		b = appendJSONString(b, g)
		b = append(b, ',')
	case GeoJSONLine:
		b = append(b, `"geometry":{"type":`...)
		b = appendJSONString(b, g.Type)
		b = append(b, `,"coordinates":`...)
		if g.Coordinates == nil {
			b = append(b, "null"...)
		} else {
			b = append(b, '[')
			for i, c := range g.Coordinates {
				if i > 0 {
					b = append(b, ',')
				}
				b = append(b, '[')
				b = appendJSONFloat(b, c[0])
				b = append(b, ',')
				b = appendJSONFloat(b, c[1])
				b = append(b, ']')
			}
			b = append(b, ']')
		}
		b = append(b, "},"...)
	}
	b = append(b, `"legs":`...)
	if rt.Legs == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i, l := range rt.Legs {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"steps":[],"summary":`...)
			b = appendJSONString(b, l.Summary)
			b = append(b, `,"weight":`...)
			b = appendJSONFloat(b, l.Weight)
			b = append(b, `,"duration":`...)
			b = appendJSONFloat(b, l.Duration)
			b = append(b, `,"distance":`...)
			b = appendJSONFloat(b, l.Distance)
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	b = append(b, `,"weight_name":`...)
	b = appendJSONString(b, rt.WeightName)
	b = append(b, `,"weight":`...)
	b = appendJSONFloat(b, rt.Weight)
	b = append(b, `,"duration":`...)
	b = appendJSONFloat(b, rt.Duration)
	b = append(b, `,"distance":`...)
	b = appendJSONFloat(b, rt.Distance)
	return append(b, '}')
}

// NearestResponse is OSRM's /nearest answer (one waypoint).
type NearestResponse struct {
	Code      string     `json:"code"`
	Waypoints []Waypoint `json:"waypoints"`
}

func (s *Server) handleNearest(ctx *fasthttp.RequestCtx, param []byte) error {
	if err := checkQuery(ctx.QueryArgs(), nil); err != nil {
		return err
	}
	if bytes.IndexByte(param, ';') >= 0 {
		return &Error{"InvalidValue", "nearest takes exactly one coordinate lon,lat"}
	}
	pts, err := parseCoordList(param, 1)
	if err != nil {
		return err
	}
	v, err := s.compute(func() (any, error) {
		_, wps, err := s.R.Snap(pts)
		if err != nil {
			return nil, err
		}
		return &NearestResponse{Code: "Ok", Waypoints: wps}, nil
	})
	if err != nil {
		return err
	}
	return s.writeJSON(ctx, v)
}

// TableRequest is the body of POST /v1/table.
type TableRequest struct {
	// Coordinates are the points, each [lon, lat].
	Coordinates []LonLat `json:"coordinates"`
	// Sources and Destinations index Coordinates; absent or null means all.
	Sources      []int `json:"sources,omitempty"`
	Destinations []int `json:"destinations,omitempty"`
}

func (s *Server) handleTable(ctx *fasthttp.RequestCtx, _ []byte) error {
	if err := checkQuery(ctx.QueryArgs(), nil); err != nil {
		return err
	}
	req, err := parseTableRequest(ctx.PostBody())
	if err != nil {
		return err
	}
	if len(req.Coordinates) == 0 {
		return &Error{"InvalidQuery", "coordinates: want at least one [lon, lat]"}
	}
	if len(req.Coordinates) > s.cfg.MaxTableCells {
		return &Error{"TooBig", fmt.Sprintf("coordinates: %d, at most %d", len(req.Coordinates), s.cfg.MaxTableCells)}
	}
	rows, cols := len(req.Coordinates), len(req.Coordinates)
	if req.Sources != nil {
		if len(req.Sources) == 0 {
			return &Error{"InvalidQuery", "sources: empty list (omit it to use all coordinates)"}
		}
		rows = len(req.Sources)
	}
	if req.Destinations != nil {
		if len(req.Destinations) == 0 {
			return &Error{"InvalidQuery", "destinations: empty list (omit it to use all coordinates)"}
		}
		cols = len(req.Destinations)
	}
	if rows*cols > s.cfg.MaxTableCells {
		return &Error{"TooBig", fmt.Sprintf("table of %dx%d cells, at most %d", rows, cols, s.cfg.MaxTableCells)}
	}
	v, err := s.compute(func() (any, error) {
		m, sw, dw, err := s.R.TableMatrix(req.Coordinates, req.Sources, req.Destinations, s.cfg.Workers)
		if err != nil {
			return nil, err
		}
		return &tableResult{m, sw, dw}, nil
	})
	if err != nil {
		return err
	}
	t := v.(*tableResult)
	ctx.SetContentType("application/json")
	appendBody(ctx, func(b []byte) []byte { return appendTable(b, t.m, t.sw, t.dw) })
	return nil
}

// handleSolve answers POST /v1/solve: a VROOM-format problem (locations as
// coordinates are snapped and the matrix computed from the graph; matrices
// given are used as they are), solved within the time limit of the query
// parameter time (seconds, default SolveTime, at most MaxSolveTime, or
// MaxJobSolveTime for an asynchronous solve) with the seed of the query
// parameter seed. The answer is VROOM's output, with each route's
// geometry when the problem has "options": {"g": true}. With "async":
// true at the top level of the problem (or ?async=true) the solve is
// queued instead and the answer is 202 with the job's id and URL.
func (s *Server) handleSolve(ctx *fasthttp.RequestCtx, _ []byte) error {
	seed := int64(1)
	var timeArg []byte
	var async bool
	var err error
	ctx.QueryArgs().VisitAll(func(k, v []byte) {
		if err != nil {
			return
		}
		switch string(k) {
		case "time":
			timeArg = v
		case "seed":
			n, e := strconv.ParseInt(string(v), 10, 64)
			if e != nil {
				err = &Error{"InvalidOptions", fmt.Sprintf("parameter seed=%q: want an integer", v)}
				return
			}
			seed = n
		case "async":
			switch string(v) {
			case "true":
				async = true
			case "false":
			default:
				err = &Error{"InvalidOptions", fmt.Sprintf("parameter async=%q: want true or false", v)}
			}
		default:
			err = &Error{"InvalidOptions", fmt.Sprintf("unknown parameter %q (known: async, seed, time)", k)}
		}
	})
	if err != nil {
		return err
	}
	body := ctx.PostBody()
	extra, err := parseSolveExtras(body)
	if err != nil {
		return err
	}
	async = async || extra.async
	limit, maxTime := s.cfg.SolveTime, s.cfg.MaxSolveTime
	if async {
		maxTime = s.cfg.MaxJobSolveTime
	}
	if timeArg != nil {
		sec, e := strconv.ParseFloat(string(timeArg), 64)
		if e != nil || !(sec > 0) || time.Duration(sec*float64(time.Second)) > maxTime {
			return &Error{"InvalidOptions", fmt.Sprintf("parameter time=%q: want seconds in (0, %g]", timeArg, maxTime.Seconds())}
		}
		limit = time.Duration(sec * float64(time.Second))
	}
	p, err := vrp.ParseProblem(body)
	if err != nil {
		return &Error{"InvalidQuery", err.Error()}
	}
	if len(p.Matrices) == 0 || extra.geometry {
		locs := p.Locations()
		if n := len(locs); len(p.Matrices) == 0 && n*n > s.cfg.MaxTableCells {
			return &Error{"TooBig", fmt.Sprintf("%d locations need a %dx%d matrix, at most %d cells", n, n, n, s.cfg.MaxTableCells)}
		}
		if extra.geometry {
			if s.R == nil {
				return &Error{"InvalidOptions", "options.g: route geometry needs a road graph and the server has none"}
			}
			for i, l := range locs {
				if math.IsNaN(l[0]) {
					return &Error{"InvalidOptions", fmt.Sprintf("options.g: route geometry needs coordinates for every location; location_index %d has none", i)}
				}
			}
		}
	}
	opt := SolveOptions{Time: limit, Seed: seed, Workers: s.cfg.Workers, Geometry: extra.geometry}
	solve := func(c context.Context, progress func(int64, int, int64)) ([]byte, error) {
		t0 := time.Now()
		o := opt
		o.Context, o.Progress = c, progress
		sol, geoms, err := SolveWithGeometry(s.R, p, o)
		if err != nil {
			var e *Error
			if errors.As(err, &e) {
				return nil, e
			}
			return nil, &Error{"InvalidQuery", err.Error()}
		}
		b, err := MarshalSolution(sol, geoms)
		if c.Err() != nil {
			return b, err // cancelled: not a complete solve
		}
		if async {
			s.jobs.asyncSolves.observe(time.Since(t0))
		} else {
			s.jobs.syncSolves.observe(time.Since(t0))
		}
		return b, err
	}
	if async {
		j, err := s.jobs.submit(limit, solve)
		if err != nil {
			var e *Error
			if errors.As(err, &e) && e.Code == "TooManyJobs" {
				ctx.Response.Header.Set("Retry-After", "5")
			}
			return err
		}
		loc := jobsPath + j.id
		if err := s.writeJSON(ctx, jobAccepted{ID: j.id, Status: jobQueued, Location: loc}); err != nil {
			return err
		}
		ctx.Response.Header.Set("Location", loc)
		ctx.SetStatusCode(fasthttp.StatusAccepted)
		return nil
	}
	// A solve abandoned by compute (503 Timeout) stops searching at once
	// rather than keep its slot for the whole time limit.
	c, cancel := context.WithCancel(context.Background())
	defer cancel()
	v, err := s.compute(func() (any, error) { return solve(c, nil) })
	if err != nil {
		return err
	}
	ctx.SetContentType("application/json")
	ctx.SetBody(append(v.([]byte), '\n'))
	return nil
}

// solveExtras are the top-level fields of a solve request that are not
// part of the VROOM problem proper: "async" (ours) and VROOM's "options"
// (of which "g", route geometry, is the one VROOM reads from JSON input).
type solveExtras struct {
	async, geometry bool
}

// parseSolveExtras reads "async" and "options" from the top level of a
// solve request, strictly (async a boolean; options an object whose only
// key is g, a boolean). vrp.ParseProblem ignores both fields, so the
// problem itself is parsed from the same bytes. Bodies that mention
// neither name skip the extra decoding.
func parseSolveExtras(body []byte) (solveExtras, error) {
	var x solveExtras
	if !bytes.Contains(body, []byte(`"async"`)) && !bytes.Contains(body, []byte(`"options"`)) {
		return x, nil
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(body, &top); err != nil {
		return x, nil // vrp.ParseProblem reports malformed JSON with its own message
	}
	if raw, ok := top["async"]; ok {
		if err := json.Unmarshal(raw, &x.async); err != nil || string(raw) == "null" {
			return x, &Error{"InvalidQuery", fmt.Sprintf("field async: want true or false, got %s", clip(raw, 40))}
		}
	}
	if raw, ok := top["options"]; ok {
		var opts map[string]json.RawMessage
		if err := json.Unmarshal(raw, &opts); err != nil || opts == nil {
			return x, &Error{"InvalidQuery", fmt.Sprintf("field options: want an object, got %s", clip(raw, 40))}
		}
		for k, v := range opts {
			if k != "g" {
				return x, &Error{"InvalidOptions", fmt.Sprintf("options.%s: unknown option (known: g, route geometry)", k)}
			}
			if err := json.Unmarshal(v, &x.geometry); err != nil || string(v) == "null" {
				return x, &Error{"InvalidQuery", fmt.Sprintf("field options.g: want true or false, got %s", clip(v, 40))}
			}
		}
	}
	return x, nil
}

// appendBody replaces the response body by what fill appends to the
// response's own (pooled) body buffer: no copy.
func appendBody(ctx *fasthttp.RequestCtx, fill func([]byte) []byte) {
	b := ctx.Response.SwapBody(nil)
	ctx.Response.SwapBody(fill(b[:0]))
}

type tableResult struct {
	m      *graph.Matrix
	sw, dw []Waypoint
}

// appendTable appends the TableResponse of Router.Table, byte for byte as
// encoding/json writes it, straight from the matrix: a 1000x1000 table
// spent most of its time in reflection and pointer cells otherwise.
func appendTable(b []byte, m *graph.Matrix, sw, dw []Waypoint) []byte {
	b = append(b, `{"code":"Ok","durations":`...)
	b = appendCells(b, m.Durations, m.Rows, m.Cols)
	b = append(b, `,"distances":`...)
	b = appendCells(b, m.Distances, m.Rows, m.Cols)
	b = append(b, `,"sources":`...)
	b = appendWaypoints(b, sw)
	b = append(b, `,"destinations":`...)
	b = appendWaypoints(b, dw)
	return append(b, "}\n"...)
}

// appendCells appends rows of values rounded to 0.1 (null when not
// finite), as encoding/json writes round(x, 1).
func appendCells(b []byte, v []float64, rows, cols int) []byte {
	b = append(b, '[')
	for i := range rows {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '[')
		for j, x := range v[i*cols : (i+1)*cols] {
			if j > 0 {
				b = append(b, ',')
			}
			b = appendTenths(b, x)
		}
		b = append(b, ']')
	}
	return append(b, ']')
}

// appendTenths appends round(x, 1) as encoding/json would: below 1e9 the
// shortest decimal of n/10 is n/10 itself, written with integer
// arithmetic; anything else goes through appendJSONFloat.
func appendTenths(b []byte, x float64) []byte {
	if math.IsInf(x, 0) || math.IsNaN(x) {
		return append(b, "null"...)
	}
	r := math.Round(x * 10)
	if math.IsInf(r, 0) {
		return append(b, "null"...) // |x| near MaxFloat64: no finite answer
	}
	if !(math.Abs(r) < 1e10) {
		return appendJSONFloat(b, r/10)
	}
	n := int64(r)
	if n < 0 || n == 0 && math.Signbit(r) {
		b = append(b, '-')
		n = -n
	}
	b = strconv.AppendInt(b, n/10, 10)
	if d := n % 10; d != 0 {
		b = append(b, '.', byte('0'+d))
	}
	return b
}

// appendJSONFloat appends x as encoding/json formats a float64 (the
// ECMAScript number-to-string rule: plain decimal between 1e-6 and 1e21,
// exponent form outside with a minimal exponent).
func appendJSONFloat(b []byte, x float64) []byte {
	abs := math.Abs(x)
	format := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, x, format, -1, 64)
	if format == 'e' {
		// e-07 becomes e-7.
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

// appendWaypoints appends waypoints as encoding/json writes []Waypoint.
func appendWaypoints(b []byte, wps []Waypoint) []byte {
	if wps == nil {
		return append(b, "null"...)
	}
	b = append(b, '[')
	for i, w := range wps {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"hint":`...)
		b = appendJSONString(b, w.Hint)
		b = append(b, `,"distance":`...)
		b = appendJSONFloat(b, w.Distance)
		b = append(b, `,"name":`...)
		b = appendJSONString(b, w.Name)
		b = append(b, `,"location":[`...)
		b = appendJSONFloat(b, w.Location[0])
		b = append(b, ',')
		b = appendJSONFloat(b, w.Location[1])
		b = append(b, "]}"...)
	}
	return append(b, ']')
}

func (s *Server) handleOpenAPI(ctx *fasthttp.RequestCtx, _ []byte) error {
	ctx.SetContentType("application/json")
	ctx.SetBody(s.openapi)
	return nil
}

func (s *Server) handleHealth(ctx *fasthttp.RequestCtx, _ []byte) error {
	ctx.SetContentType("text/plain; charset=utf-8")
	ctx.SetBodyString("ok\n")
	return nil
}

func (s *Server) handleReady(ctx *fasthttp.RequestCtx, _ []byte) error {
	if !s.ready.Load() {
		return &Error{"NotReady", "shutting down"}
	}
	ctx.SetContentType("text/plain; charset=utf-8")
	ctx.SetBodyString("ready\n")
	return nil
}

func (s *Server) handleMetrics(ctx *fasthttp.RequestCtx, _ []byte) error {
	ctx.SetContentType("text/plain; version=0.0.4; charset=utf-8")
	appendBody(ctx, func(b []byte) []byte { return s.live.appendMetrics(s.jobs.appendMetrics(s.metrics.appendText(b))) })
	return nil
}

// tableBody is TableRequest as decoded: coordinates stay raw so that each
// is checked to be exactly two numbers (encoding/json would silently drop a
// third number or zero a missing one) and errors name its index.
type tableBody struct {
	Coordinates  []json.RawMessage `json:"coordinates"`
	Sources      []int             `json:"sources"`
	Destinations []int             `json:"destinations"`
}

// parseTableRequest decodes and checks the body of POST /v1/table.
func parseTableRequest(body []byte) (*TableRequest, error) {
	var tb tableBody
	if err := DecodeJSON(body, &tb); err != nil {
		return nil, err
	}
	req := &TableRequest{Coordinates: make([]LonLat, len(tb.Coordinates)), Sources: tb.Sources, Destinations: tb.Destinations}
	for i, raw := range tb.Coordinates {
		p, err := parseJSONLonLat(raw)
		if err != nil {
			return nil, &Error{"InvalidQuery", fmt.Sprintf("coordinates[%d]: %v", i, err)}
		}
		if err := p.Check(); err != nil {
			return nil, &Error{"InvalidValue", fmt.Sprintf("coordinates[%d]: %v", i, err)}
		}
		req.Coordinates[i] = p
	}
	return req, nil
}

// parseJSONLonLat parses a JSON array of exactly two numbers (raw is valid
// JSON: the decoder has checked it).
func parseJSONLonLat(raw []byte) (LonLat, error) {
	var elems []json.RawMessage
	if err := json.Unmarshal(raw, &elems); err != nil || len(elems) != 2 {
		return LonLat{}, fmt.Errorf("want [lon, lat], got %s", clip(raw, 60))
	}
	var p LonLat
	for k, e := range elems {
		e = bytes.TrimSpace(e)
		if len(e) == 0 || !(e[0] == '-' || e[0] >= '0' && e[0] <= '9') {
			return LonLat{}, fmt.Errorf("want [lon, lat] numbers, got %s", clip(raw, 60))
		}
		f, err := strconv.ParseFloat(string(e), 64)
		if err != nil {
			return LonLat{}, fmt.Errorf("number %s out of range", clip(e, 40))
		}
		p[k] = f
	}
	return p, nil
}

// jsonKind names a Go type by the JSON value it decodes from ("an array
// of integers").
func jsonKind(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == reflect.TypeFor[json.RawMessage]() {
		return "a JSON value"
	}
	switch t.Kind() {
	case reflect.Slice, reflect.Array:
		if t.Elem() == reflect.TypeFor[json.RawMessage]() {
			return "an array of [lon, lat] arrays"
		}
		return "an array of " + jsonNoun(t.Elem()) + "s"
	case reflect.Struct, reflect.Map, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n := jsonNoun(t)
		if n[0] == 'o' || n[0] == 'i' || n[0] == 'a' {
			return "an " + n
		}
		return "a " + n
	}
	return "a " + jsonNoun(t)
}

func jsonNoun(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Slice, reflect.Array:
		return "array"
	case reflect.Struct, reflect.Map:
		return "object"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "integer"
	case reflect.Float32, reflect.Float64:
		return "number"
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean"
	case reflect.Interface:
		return "value"
	}
	return t.String()
}

func clip(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "..."
	}
	return string(b)
}

// DecodeJSON decodes a request body strictly: unknown fields, field names
// that differ from the declared ones in case only (encoding/json would
// accept them), duplicate fields and trailing data are rejected, and
// decoding failures become InvalidQuery errors naming the field.
func DecodeJSON(body []byte, v any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return &Error{"InvalidQuery", "empty body: want a JSON object"}
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var te *json.UnmarshalTypeError
		var se *json.SyntaxError
		var e *Error
		switch {
		case errors.As(err, &e):
			return e
		case errors.As(err, &te):
			field := te.Field
			if field == "" {
				field = "(top level)"
			}
			return &Error{"InvalidQuery", fmt.Sprintf("field %s: want %s, got %s", field, jsonKind(te.Type), te.Value)}
		case errors.As(err, &se):
			return &Error{"InvalidQuery", fmt.Sprintf("malformed JSON at byte %d: %v", se.Offset, err)}
		case errors.Is(err, io.ErrUnexpectedEOF):
			return &Error{"InvalidQuery", "malformed JSON: unexpected end of body"}
		}
		msg := strings.TrimPrefix(err.Error(), "json: ")
		return &Error{"InvalidQuery", msg}
	}
	if _, err := dec.Token(); err != io.EOF {
		return &Error{"InvalidQuery", "malformed JSON: trailing data after the object"}
	}
	// The body is valid JSON that decoded: check the names exactly.
	kd := json.NewDecoder(bytes.NewReader(body))
	kd.UseNumber()
	if err := checkKeys(kd, reflect.TypeOf(v), ""); err != nil {
		return &Error{"InvalidQuery", err.Error()}
	}
	return nil
}

var unmarshalerType = reflect.TypeFor[json.Unmarshaler]()

// checkKeys reads one JSON value from dec (known to be valid) and checks
// that every object key names a field of t exactly, once.
func checkKeys(dec *json.Decoder, t reflect.Type, at string) error {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t != nil && (t.Implements(unmarshalerType) || reflect.PointerTo(t).Implements(unmarshalerType)) {
		t = nil // opaque: its own decoder judges it
	}
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	switch tok {
	case json.Delim('{'):
		var fields map[string]reflect.Type
		if t != nil && t.Kind() == reflect.Struct {
			fields = jsonFields(t)
		}
		seen := map[string]bool{}
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				return err
			}
			key := kt.(string)
			path := key
			if at != "" {
				path = at + "." + key
			}
			if seen[key] {
				return fmt.Errorf("field %s given twice", path)
			}
			seen[key] = true
			var ft reflect.Type
			switch {
			case fields != nil:
				var ok bool
				if ft, ok = fields[key]; !ok {
					return fmt.Errorf("unknown field %q (names are case-sensitive)", path)
				}
			case t != nil && t.Kind() == reflect.Map:
				ft = t.Elem()
			}
			if err := checkKeys(dec, ft, path); err != nil {
				return err
			}
		}
		_, err = dec.Token()
		return err
	case json.Delim('['):
		var et reflect.Type
		if t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
			et = t.Elem()
		}
		for i := 0; dec.More(); i++ {
			if err := checkKeys(dec, et, fmt.Sprintf("%s[%d]", at, i)); err != nil {
				return err
			}
		}
		_, err = dec.Token()
		return err
	}
	return nil
}

// jsonFields maps the JSON names of t's fields (as encoding/json names
// them, embedded structs flattened) to their types.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		ft := f.Type
		if f.Anonymous && name == "" {
			et := ft
			if et.Kind() == reflect.Pointer {
				et = et.Elem()
			}
			if et.Kind() == reflect.Struct {
				for k, v := range jsonFields(et) {
					if _, ok := out[k]; !ok {
						out[k] = v
					}
				}
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[name] = ft
	}
	return out
}

// appendJSONString appends s as a JSON string, escaping as encoding/json
// does (quotes, backslashes, control characters with \n \r \t \b \f
// short forms, <, >, &, U+2028, U+2029; invalid UTF-8 becomes U+FFFD).
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
