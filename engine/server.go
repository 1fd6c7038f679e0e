package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/lastmile/lastmile/engine/analytics"
	"github.com/lastmile/lastmile/engine/blob"
	"github.com/lastmile/lastmile/engine/dispatch"
	"github.com/lastmile/lastmile/engine/notify"
	"github.com/lastmile/lastmile/engine/problem"
	"github.com/lastmile/lastmile/engine/store"
	"github.com/lastmile/lastmile/engine/web"
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
	// Store holds the dispatch state (shipments, plans, events, keys); nil
	// serves routing only, and the dispatch endpoints answer 503.
	Store *store.Store
	// Dispatch configures the dispatch rules (its Store, Predict, Solve
	// and Logger are the server's).
	Dispatch dispatch.Config
	// AdminKey is an admin API key besides the stored ones
	// (LASTMILE_ADMIN_KEY), "" for none.
	AdminKey string
	// Emissions are the analytics' grams of CO2e per km by vehicle class
	// (nil: analytics.DefaultEmissions).
	Emissions map[string]float64
	// PublicRouting keeps route, table, nearest, solve, jobs and eta open
	// without a key when keys exist.
	PublicRouting bool
	// Notify configures notifications (its Store and Logger are the
	// server's).
	Notify notify.Config
	// Retention is how long after its last attempt ended a shipment keeps
	// its personal data (default 30 days); erasure runs every 10 minutes.
	Retention time.Duration
	// Blobs stores proof-of-delivery images (nil: uploads answer 503).
	Blobs blob.Store
	// TrackRate and TrackBurst limit the requests of one client address to
	// tracking links: TrackBurst at once (default 60), refilled at
	// TrackRate per second (default 2); a negative TrackRate turns the
	// limit off (load tests from one address).
	TrackRate  float64
	TrackBurst int
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
	if cfg.Retention <= 0 {
		cfg.Retention = 30 * 24 * time.Hour
	}
	if cfg.MaxJobSolveTime <= 0 {
		cfg.MaxJobSolveTime = 10 * time.Minute
	}
	if cfg.TrackRate == 0 {
		cfg.TrackRate = 2
	}
	if cfg.TrackBurst <= 0 {
		cfg.TrackBurst = 60
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
	routes  routeTable
	metrics *metrics
	openapi []byte
	slots   chan struct{} // one per computation running
	jobs    *jobQueue     // asynchronous solves
	live    *Live         // traffic, positions, ETAs (nil without a graph)
	timers  sync.Pool     // *time.Timer for compute
	disp    *dispatch.Service
	keys    *dispatch.Keys
	// analytics answers the figures (with disp: a state store).
	analytics *analytics.Service
	notify    *notify.Service
	bgStop    chan struct{} // closed by Shutdown: background loops end
	// streamStop is closed first thing at Shutdown: event streams end, so
	// that their connections do not hold the shutdown up.
	streamStop  chan struct{}
	warmed      chan struct{} // closed once live traffic is warmed (dispatch)
	bgDone      sync.WaitGroup
	stopStreams sync.Once
	// The pages: embedded assets and templates, the live tracking
	// streams, the per-address limit of tracking links, the key of signed
	// proof links, proof images, and the basemap's vector tiles (made on
	// first use).
	site       *web.Site
	hub        *trackHub
	trackLimit *trackLimiter
	urlKey     []byte
	blobs      blob.Store
	tiler      tilerOnce
}

// endpoints is the route table. Adding an endpoint is adding a row here
// (and its apiOperation in openapi.go). Patterns and their precedence are
// described at endpoint and compileRoutes (pathmatch.go).
func endpoints() []endpoint {
	return []endpoint{
		{Method: "GET", Pattern: "/v1/route/{coordinates}", Handle: (*Server).handleRoute, Doc: routeDoc, Guard: guardRouting},
		{Method: "POST", Pattern: "/v1/table", Handle: (*Server).handleTable, Doc: tableDoc, Guard: guardRouting},
		{Method: "GET", Pattern: "/v1/nearest/{coordinate}", Handle: (*Server).handleNearest, Doc: nearestDoc, Guard: guardRouting},
		{Method: "POST", Pattern: "/v1/solve", Handle: (*Server).handleSolve, Doc: solveDoc, Guard: guardRouting},
		{Method: "GET", Pattern: "/v1/jobs/{id}", Handle: (*Server).handleJobGet, Doc: jobGetDoc, Guard: guardRouting},
		{Method: "DELETE", Pattern: "/v1/jobs/{id}", Handle: (*Server).handleJobDelete, Doc: jobDeleteDoc, Guard: guardRouting},
		{Method: "POST", Pattern: "/v1/eta", Handle: (*Server).handleETA, Doc: etaDoc, Guard: guardRouting},
		{Method: "GET", Pattern: "/v1/eta/{vehicle}", Handle: (*Server).handleVehicleETA, Doc: vehicleETADoc, Guard: guardRouting},
		{Method: "POST", Pattern: "/v1/traffic", Handle: (*Server).handleTraffic, Doc: trafficDoc, Guard: guardTelemetry},
		{Method: "POST", Pattern: "/v1/positions", Handle: (*Server).handlePositions, Doc: positionsDoc, Guard: guardTelemetry},
		{Method: "POST", Pattern: "/v1/keys", Handle: (*Server).handleKeyCreate, Doc: keyCreateDoc, Guard: guardAdmin},
		{Method: "GET", Pattern: "/v1/keys", Handle: (*Server).handleKeyList, Doc: keyListDoc, Guard: guardAdmin},
		{Method: "DELETE", Pattern: "/v1/keys/{id}", Handle: (*Server).handleKeyRevoke, Doc: keyRevokeDoc, Guard: guardAdmin},
		{Method: "POST", Pattern: "/v1/shipments", Handle: (*Server).handleShipmentCreate, Doc: shipmentCreateDoc, Guard: guardWrite},
		{Method: "GET", Pattern: "/v1/shipments/{tracking}", Handle: (*Server).handleShipmentGet, Doc: shipmentGetDoc, Guard: guardRead},
		{Method: "POST", Pattern: "/v1/shipments/{tracking}/events", Handle: (*Server).handleShipmentEvent, Doc: shipmentEventDoc, Guard: guardWrite},
		{Method: "POST", Pattern: "/v1/plans", Handle: (*Server).handlePlanCreate, Doc: planCreateDoc, Guard: guardWrite},
		{Method: "POST", Pattern: "/v1/routes/{id}/stops", Handle: (*Server).handleRouteAddStop, Doc: routeAddStopDoc, Guard: guardWrite},
		{Method: "POST", Pattern: "/v1/shipments/{tracking}/window", Handle: (*Server).handleShipmentWindow, Doc: shipmentWindowDoc, Guard: guardWrite},
		{Method: "POST", Pattern: "/v1/stops/{id}/status", Handle: (*Server).handleStopStatus, Doc: stopStatusDoc, Guard: guardDriver},
		{Method: "GET", Pattern: "/v1/vehicles/{id}", Handle: (*Server).handleVehicleGet, Doc: vehicleGetDoc, Guard: guardRead},
		{Method: "GET", Pattern: "/v1/events", Handle: (*Server).handleEvents, Doc: eventsDoc, Guard: guardRead},
		{Method: "GET", Pattern: "/v1/events/stream", Handle: (*Server).handleEventStream, Doc: eventStreamDoc, Guard: guardRead},
		{Method: "PUT", Pattern: "/v1/shipments/{tracking}/notify", Handle: (*Server).handleShipmentNotify, Doc: shipmentNotifyDoc, Guard: guardWrite},
		{Method: "GET", Pattern: "/track/{token}/unsubscribe", Handle: (*Server).handleUnsubscribe, Doc: unsubscribeGetDoc},
		{Method: "POST", Pattern: "/track/{token}/unsubscribe", Handle: (*Server).handleUnsubscribe, Doc: unsubscribePostDoc},
		{Method: "PUT", Pattern: "/v1/templates/{language}/{file}", Handle: (*Server).handleTemplatePut, Doc: templatePutDoc, Guard: guardAdmin},
		{Method: "DELETE", Pattern: "/v1/templates/{language}/{file}", Handle: (*Server).handleTemplateDelete, Doc: templateDeleteDoc, Guard: guardAdmin},
		{Method: "GET", Pattern: "/v1/templates", Handle: (*Server).handleTemplateList, Doc: templateListDoc, Guard: guardAdmin},
		{Method: "POST", Pattern: "/v1/webhooks", Handle: (*Server).handleWebhookCreate, Doc: webhookCreateDoc, Guard: guardWrite},
		{Method: "GET", Pattern: "/v1/webhooks", Handle: (*Server).handleWebhookList, Doc: webhookListDoc, Guard: guardWrite},
		{Method: "GET", Pattern: "/v1/webhooks/{id}", Handle: (*Server).handleWebhookGet, Doc: webhookGetDoc, Guard: guardWrite},
		{Method: "PATCH", Pattern: "/v1/webhooks/{id}", Handle: (*Server).handleWebhookUpdate, Doc: webhookUpdateDoc, Guard: guardWrite},
		{Method: "DELETE", Pattern: "/v1/webhooks/{id}", Handle: (*Server).handleWebhookDelete, Doc: webhookDeleteDoc, Guard: guardWrite},
		{Method: "POST", Pattern: "/v1/webhooks/{id}/replay", Handle: (*Server).handleWebhookReplay, Doc: webhookReplayDoc, Guard: guardWrite},
		{Method: "GET", Pattern: "/v1/webhooks/{id}/deliveries", Handle: (*Server).handleWebhookDeliveries, Doc: webhookDeliveriesDoc, Guard: guardWrite},
		{Method: "GET", Pattern: "/v1/openapi.json", Handle: (*Server).handleOpenAPI, Doc: openapiDoc},
		{Method: "POST", Pattern: "/v1/shipments/{tracking}/link", Handle: (*Server).handleShipmentLink, Doc: shipmentLinkDoc, Guard: guardWrite},
		{Method: "GET", Pattern: "/v1/driver/route", Handle: (*Server).handleDriverRoute, Doc: driverRouteDoc, Guard: guardDriver},
		{Method: "GET", Pattern: "/v1/stops/{id}/messages", Handle: (*Server).handleStopMessages, Doc: stopMessagesDoc, Guard: guardDriver},
		{Method: "POST", Pattern: "/v1/stops/{id}/messages", Handle: (*Server).handleStopMessagePost, Doc: stopMessagePostDoc, Guard: guardDriver},
		{Method: "POST", Pattern: "/v1/stops/{id}/pod", Handle: (*Server).handleStopPod, Doc: stopPodDoc, Guard: guardDriver},
		{Method: "GET", Pattern: "/track/{token}", Handle: (*Server).handleTrackPage, Doc: trackPageDoc},
		{Method: "GET", Pattern: "/track/{token}/view.json", Handle: (*Server).handleTrackView, Doc: trackViewDoc},
		{Method: "GET", Pattern: "/track/{token}/live", Handle: (*Server).handleTrackLive, Doc: trackLiveDoc},
		{Method: "GET", Pattern: "/track/{token}/proof", Handle: (*Server).handleTrackProof, Doc: trackProofDoc},
		{Method: "POST", Pattern: "/track/{token}/instructions", Handle: (*Server).handleTrackInstructions, Doc: trackInstructionsDoc},
		{Method: "POST", Pattern: "/track/{token}/messages", Handle: (*Server).handleTrackMessage, Doc: trackMessageDoc},
		{Method: "POST", Pattern: "/track/{token}/window", Handle: (*Server).handleTrackWindow, Doc: trackWindowDoc},
		{Method: "POST", Pattern: "/track/{token}/rating", Handle: (*Server).handleTrackRating, Doc: trackRatingDoc},
		{Method: "GET", Pattern: "/driver", Handle: (*Server).handleDriverPage, Doc: driverPageDoc},
		{Method: "POST", Pattern: "/driver/session", Handle: (*Server).handleDriverSignIn, Doc: driverSignInDoc},
		{Method: "POST", Pattern: "/driver/logout", Handle: (*Server).handleDriverSignOut, Doc: driverSignOutDoc},
		{Method: "GET", Pattern: "/driver/{file}", Handle: (*Server).handleDriverAsset, Doc: driverAssetDoc},
		{Method: "GET", Pattern: "/static/{file}", Handle: (*Server).handleStatic, Doc: staticDoc},
		{Method: "GET", Pattern: "/static/{dir}/{file}", Handle: (*Server).handleStatic, Doc: staticDirDoc},
		{Method: "GET", Pattern: "/tiles/{z}/{x}/{y}", Handle: (*Server).handleTile, Doc: tileDoc},
		{Method: "POST", Pattern: "/v1/analytics/facts", Handle: (*Server).handleAnalyticsImport, Doc: analyticsImportDoc, Guard: guardAdmin},
		{Method: "GET", Pattern: "/v1/analytics/{figure}", Handle: (*Server).handleAnalytics, Doc: analyticsDoc, Guard: guardWrite},
		{Method: "GET", Pattern: "/v1/live", Handle: (*Server).handleLive, Doc: liveDoc, Guard: guardWrite},
		{Method: "GET", Pattern: "/dashboard", Handle: (*Server).handleDashboard, Doc: dashboardDoc},
		{Method: "GET", Pattern: "/dashboard/live", Handle: (*Server).handleDashboardLive, Doc: dashboardLiveDoc},
		{Method: "POST", Pattern: "/dashboard/session", Handle: (*Server).handleDashboardSignIn, Doc: dashboardSignInDoc},
		{Method: "POST", Pattern: "/dashboard/logout", Handle: (*Server).handleDashboardSignOut, Doc: dashboardSignOutDoc},
		{Method: "GET", Pattern: "/healthz", Handle: (*Server).handleHealth, Doc: healthDoc},
		{Method: "GET", Pattern: "/readyz", Handle: (*Server).handleReady, Doc: readyDoc},
		{Method: "GET", Pattern: "/metrics", Handle: (*Server).handleMetrics, Doc: metricsDoc},
	}
}

// NewServer returns a server answering from r, or why it cannot start
// (an admin key of the wrong form, a store or dispatch setup that
// failed).
func NewServer(r *Router, cfg ServerConfig) (*Server, error) {
	return newServer(r, cfg, endpoints())
}

// newServer builds a server on the given route table (tests add rows).
func newServer(r *Router, cfg ServerConfig, rows []endpoint) (*Server, error) {
	cfg = cfg.withDefaults()
	routes, err := compileRoutes(rows)
	if err != nil {
		return nil, err
	}
	s := &Server{R: r, cfg: cfg, log: logger(cfg.Logger), routes: routes}
	s.metrics = newMetrics(routes.rows)
	s.openapi, err = buildOpenAPI(routes.rows, cfg)
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
	s.bgStop = make(chan struct{})
	s.streamStop = make(chan struct{})
	if s.site, err = web.New(); err != nil {
		return nil, err
	}
	s.hub = newTrackHub()
	if cfg.TrackRate > 0 {
		s.trackLimit = newTrackLimiter(cfg.TrackRate, float64(cfg.TrackBurst))
	}
	s.blobs = cfg.Blobs
	if cfg.Store != nil {
		s.urlKey = cfg.Store.Ring().MAC([]byte("lastmile proof links v1"))
		cfg.Store.OnCommit(func(evs []store.Event) {
			ids := make([]int64, 0, len(evs))
			for _, e := range evs {
				if len(ids) == 0 || ids[len(ids)-1] != e.Shipment {
					ids = append(ids, e.Shipment)
				}
			}
			s.hub.wakeShipments(ids)
		})
		if err := s.newDispatch(); err != nil {
			return nil, err
		}
		if err := s.newNotify(); err != nil {
			return nil, err
		}
		s.bgDone.Add(1)
		go s.eraseLoop()
		if s.R != nil {
			s.bgDone.Add(1)
			go s.warmTiles()
		}
	}
	if s.live != nil {
		s.live.Start(s.warmed) // nil without a store: at once
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

// ServeTLS answers HTTPS on ln with the certificate and key files (PEM)
// until Shutdown.
func (s *Server) ServeTLS(ln net.Listener, certFile, keyFile string) error {
	return s.srv.ServeTLS(ln, certFile, keyFile)
}

// Shutdown marks the server not ready, cancels every queued and running
// asynchronous job (they end failed with code Cancelled; new submissions
// get 503 NotReady), stops accepting connections, closes idle ones and
// waits until the requests in flight are answered and the job goroutines
// have returned, or ctx is done (then it returns ctx's error).
func (s *Server) Shutdown(ctx context.Context) error {
	s.ready.Store(false)
	s.stopStreams.Do(func() { close(s.streamStop) })
	jerr := make(chan error, 1)
	go func() { jerr <- s.jobs.shutdown(ctx) }()
	err := s.srv.ShutdownWithContext(ctx)
	if s.live != nil {
		s.live.Close()
	}
	s.stopBackground()
	return errors.Join(err, <-jerr)
}

// stopBackground ends the background loops and waits for them (once).
func (s *Server) stopBackground() {
	select {
	case <-s.bgStop:
	default:
		close(s.bgStop)
	}
	s.bgDone.Wait()
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
			// A streamed body (the event stream) is not read here: that
			// would wait for the stream's end.
			size := -1
			if !ctx.Response.IsBodyStream() {
				size = len(ctx.Response.Body())
			}
			attrs := []any{"method", string(ctx.Method()), "path", logPath(ctx.Path()), "status", status,
				"us", el.Microseconds(), "bytes", size, "remote", ctx.RemoteAddr().String()}
			if status >= 400 && size >= 0 {
				attrs = append(attrs, "error", string(bytes.TrimSpace(ctx.Response.Body())))
			}
			s.log.Debug("request", attrs...)
		}
	}()
	path := ctx.Path()
	method := ctx.Method()
	var params pathParams
	i, allow := s.routes.lookup(method, path, &params)
	if i >= 0 {
		idx = i
		row := &s.routes.rows[i]
		if err := s.authorize(ctx, row.Guard); err != nil {
			s.fail(ctx, err)
			return
		}
		if err := row.Handle(s, ctx, params); err != nil {
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
	case "Unauthorized":
		return fasthttp.StatusUnauthorized
	case "Forbidden":
		return fasthttp.StatusForbidden
	case "Conflict":
		return fasthttp.StatusConflict
	case "TooManyJobs", "TooManyRequests":
		return fasthttp.StatusTooManyRequests
	case "UnsupportedMediaType":
		return fasthttp.StatusUnsupportedMediaType
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
	"NotFound", "TooManyJobs", "TooManyRequests", "UnsupportedMediaType", "Unauthorized", "Forbidden", "Conflict"}

// fail answers err: an *Error (or a *problem.Error, which dispatch,
// analytics and notify return) with its status,
// anything else as a logged 500 whose details stay in the log.
func (s *Server) fail(ctx *fasthttp.RequestCtx, err error) {
	var e *Error
	var pe *problem.Error
	switch {
	case errors.As(err, &e):
	case errors.As(err, &pe):
		// The product packages' errors carry the same codes.
		e = &Error{pe.Code, pe.Message}
	default:
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

// appendBody replaces the response body by what fill appends to the
// response's own (pooled) body buffer: no copy.
func appendBody(ctx *fasthttp.RequestCtx, fill func([]byte) []byte) {
	b := ctx.Response.SwapBody(nil)
	ctx.Response.SwapBody(fill(b[:0]))
}
