package engine

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/lastmile/lastmile/engine/analytics"
	"github.com/lastmile/lastmile/engine/dispatch"
	"github.com/lastmile/lastmile/vrp"
)

// guard says who may call an endpoint (see Server.authorize).
type guard uint8

const (
	// guardNone: always open (probes, metrics, the OpenAPI document).
	guardNone guard = iota
	// guardRouting: route, table, nearest, solve, jobs, ETAs: open unless
	// keys exist and --public-routing is off; then any valid key.
	guardRouting
	// guardTelemetry: pings and traffic: open while no key exists; then a
	// driver (its own vehicle's pings only), dispatcher or admin key.
	guardTelemetry
	// guardRead: dispatch reads; any scope (a driver key sees its own
	// vehicle only, checked by the handler).
	guardRead
	// guardDriver: stop statuses; driver (own vehicle), dispatcher, admin.
	guardDriver
	// guardWrite: dispatch writes; dispatcher or admin.
	guardWrite
	// guardAdmin: key management.
	guardAdmin
)

// allowed lists the scopes of each guard that requires a key.
var allowed = [...][]string{
	guardRouting:   dispatch.Scopes,
	guardTelemetry: {dispatch.ScopeAdmin, dispatch.ScopeDispatcher, dispatch.ScopeDriver},
	guardRead:      dispatch.Scopes,
	guardDriver:    {dispatch.ScopeAdmin, dispatch.ScopeDispatcher, dispatch.ScopeDriver},
	guardWrite:     {dispatch.ScopeAdmin, dispatch.ScopeDispatcher},
	guardAdmin:     {dispatch.ScopeAdmin},
}

// principalKey is the request's user-value key of its *dispatch.Principal.
const principalKey = "lastmile.principal"

var errNoState = &Error{"NotReady", "dispatch needs a state store: start the server with --data DIR or --db postgres://..."}

// authorize checks the request's bearer key against the guard and keeps
// the principal for the handler. A request without a key that the guard
// lets through has no principal.
func (s *Server) authorize(ctx *fasthttp.RequestCtx, g guard) error {
	if g == guardNone {
		return nil
	}
	if g >= guardRead && s.disp == nil {
		return errNoState
	}
	if s.keys == nil {
		return nil // no state store: no keys, routing and telemetry are open
	}
	auth := ctx.Request.Header.Peek(fasthttp.HeaderAuthorization)
	if len(auth) == 0 {
		if c := ctx.Request.Header.Cookie(sessionCookie); len(c) > 0 {
			if err := s.authorizeSession(ctx, string(c)); err != nil {
				return err
			}
			if p := principal(ctx); !slices.Contains(allowed[g], p.Scope) {
				return &Error{"Forbidden", fmt.Sprintf("a %s session cannot do this", p.Scope)}
			}
			return nil
		}
	}
	if len(auth) == 0 && g <= guardTelemetry {
		if g == guardRouting && s.cfg.PublicRouting {
			return nil
		}
		any, err := s.keys.Any(context.Background())
		if err != nil {
			return err
		}
		if !any {
			return nil
		}
	}
	if len(auth) == 0 {
		ctx.Response.Header.Set(fasthttp.HeaderWWWAuthenticate, `Bearer realm="lastmile"`)
		return &Error{"Unauthorized", "an API key is needed: Authorization: Bearer KEY"}
	}
	const prefix = "Bearer "
	if len(auth) <= len(prefix) || string(auth[:len(prefix)]) != prefix {
		ctx.Response.Header.Set(fasthttp.HeaderWWWAuthenticate, `Bearer realm="lastmile"`)
		return &Error{"Unauthorized", "want Authorization: Bearer KEY"}
	}
	p, err := s.keys.Authenticate(context.Background(), string(auth[len(prefix):]))
	if err != nil {
		ctx.Response.Header.Set(fasthttp.HeaderWWWAuthenticate, `Bearer realm="lastmile", error="invalid_token"`)
		return err
	}
	if !slices.Contains(allowed[g], p.Scope) {
		return &Error{"Forbidden", fmt.Sprintf("a %s key cannot do this", p.Scope)}
	}
	ctx.SetUserValue(principalKey, &p)
	return nil
}

// principal returns the request's principal (nil when it came without a
// key through an open guard).
func principal(ctx *fasthttp.RequestCtx) *dispatch.Principal {
	p, _ := ctx.UserValue(principalKey).(*dispatch.Principal)
	return p
}

// forVehicle rejects a driver key acting for another vehicle.
func forVehicle(ctx *fasthttp.RequestCtx, vehicle string) error {
	if p := principal(ctx); p != nil && p.Scope == dispatch.ScopeDriver && p.Vehicle != vehicle {
		return &Error{"Forbidden", fmt.Sprintf("this driver key acts for vehicle %q only", p.Vehicle)}
	}
	return nil
}

// driverVehicle is the vehicle a driver key acts for, "" for other keys:
// what filters the event log to the driver's own shipments.
func driverVehicle(ctx *fasthttp.RequestCtx) string {
	if p := principal(ctx); p != nil && p.Scope == dispatch.ScopeDriver {
		return p.Vehicle
	}
	return ""
}

// writeCreated answers 201 with v.
func (s *Server) writeCreated(ctx *fasthttp.RequestCtx, v any) error {
	if err := s.writeJSON(ctx, v); err != nil {
		return err
	}
	ctx.SetStatusCode(fasthttp.StatusCreated)
	return nil
}

// pathID parses a numeric path parameter; anything else is 404.
func pathID(p pathParams, name, what string) (int64, error) {
	v := p.Get(name)
	id, err := strconv.ParseInt(string(v), 10, 64)
	if err != nil || id <= 0 {
		return 0, &Error{"NotFound", fmt.Sprintf("%s %q: unknown", what, clip(v, 40))}
	}
	return id, nil
}

// newDispatch builds the dispatch service on the server's router and live
// traffic.
func (s *Server) newDispatch() error {
	dc := s.cfg.Dispatch
	dc.Store = s.cfg.Store
	dc.Blobs = s.cfg.Blobs
	if dc.Logger == nil {
		dc.Logger = s.cfg.Logger
	}
	if s.live != nil {
		dc.Predict = s.predictStops
		dc.ClosedAhead = s.closedAhead
		dc.Solve = func(p *vrp.Problem, b dispatch.Budget) (*vrp.Solution, error) {
			return Solve(s.R, p, SolveOptions{Time: b.Time, Iterations: b.Iterations, Workers: s.cfg.Workers})
		}
	}
	var err error
	if s.disp, err = dispatch.New(dc); err != nil {
		return err
	}
	if s.keys, err = dispatch.NewKeys(s.cfg.Store, s.cfg.AdminKey, nil); err != nil {
		return err
	}
	s.analytics = analytics.New(analytics.Config{Store: s.cfg.Store, Logger: dc.Logger, Emissions: s.cfg.Emissions})
	s.warmed = make(chan struct{})
	if s.live == nil {
		close(s.warmed)
		return nil
	}
	// Warm in the background: reads are served at once; pings wait for
	// the warm traffic (handlePositions), so that their ETAs are the ones
	// an uninterrupted server would make.
	s.bgDone.Add(1)
	go func() {
		defer s.bgDone.Done()
		defer close(s.warmed)
		if err := s.warmLive(); err != nil {
			s.log.Error("warming live traffic from stored pings", "err", err)
		}
	}()
	return nil
}

// waitWarm waits until live traffic is warmed from the stored pings, at
// most the request timeout.
func (s *Server) waitWarm() error {
	select {
	case <-s.warmed:
		return nil
	case <-time.After(s.cfg.Timeout):
		return &Error{"Timeout", "live traffic is still being warmed from the stored pings; retry"}
	}
}

// warmLive replays into live traffic the stored pings of the last traffic
// horizon of every van out for delivery, so that a restarted server (or a
// new replica) predicts from the traffic the previous one had learnt
// rather than from the profile alone.
func (s *Server) warmLive() error {
	t0 := time.Now()
	ctx := context.Background()
	vehs, err := s.cfg.Store.ActiveVehicles(ctx)
	if err != nil {
		return err
	}
	// Vehicles are matched independently (live traffic locks each one),
	// so they are replayed by one goroutine per core.
	var (
		n    atomic.Int64
		next atomic.Int64
		errs = make([]error, max(1, runtime.GOMAXPROCS(0)))
		wg   sync.WaitGroup
	)
	for w := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				k := int(next.Add(1) - 1)
				if k >= len(vehs) {
					return
				}
				v := vehs[k]
				pings, err := s.cfg.Store.PingsBetween(ctx, v.ID, v.LastMS-s.live.cfg.Horizon.Milliseconds(), v.LastMS)
				if err != nil {
					errs[w] = err
					return
				}
				req := PositionsRequest{Positions: make([]Position, len(pings))}
				for i, p := range pings {
					req.Positions[i] = Position{Vehicle: v.ID, Time: float64(p.TimeMS) / 1000, Location: LonLat{p.Lon, p.Lat}}
				}
				s.live.Positions(&req)
				n.Add(int64(len(pings)))
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if len(vehs) > 0 {
		s.log.Info("live traffic warmed from stored pings", "vehicles", len(vehs), "pings", n.Load(), "seconds", time.Since(t0).Seconds())
	}
	return nil
}

// predictStops is dispatch's predictor: the live ETA of the stops from pos
// at now (eta.Traffic on the live graph, calibrated intervals). With a
// vehicle, the predictions teach the calibrator as its pings reach the
// stops.
func (s *Server) predictStops(vehicle string, pos [2]float64, now time.Time, stops []dispatch.PredictStop) ([]dispatch.Prediction, error) {
	ll := LonLat(pos)
	t := float64(now.Unix())
	req := ETARequest{Vehicle: vehicle, Location: &ll, Time: &t, Stops: make([]ETAStop, len(stops))}
	for i, st := range stops {
		req.Stops[i] = ETAStop{Location: LonLat(st.Location), Service: st.Service.Seconds()}
		if st.Window != [2]int64{} {
			req.Stops[i].TimeWindows = [][2]float64{{float64(st.Window[0]), float64(st.Window[1])}}
		}
	}
	resp, err := s.live.ETA(&req, max(len(stops), 1))
	if err != nil {
		return nil, err
	}
	out := make([]dispatch.Prediction, len(resp.Stops))
	for i, p := range resp.Stops {
		out[i] = dispatch.Prediction{Arrival: p.Arrival, P10: p.P10, P90: p.P90}
	}
	return out, nil
}

// closedAhead is dispatch.Config.ClosedAhead on the live traffic.
func (s *Server) closedAhead(vehicle string, pos [2]float64, now time.Time, stops []dispatch.PredictStop) (int, error) {
	pts := make([]LonLat, len(stops))
	for i, st := range stops {
		pts[i] = LonLat(st.Location)
	}
	return s.live.ClosedAhead(vehicle, LonLat(pos), pts, now)
}

// ---- handlers ----

func (s *Server) handleKeyCreate(ctx *fasthttp.RequestCtx, _ pathParams) error {
	var in dispatch.KeyInput
	if err := DecodeJSON(ctx.PostBody(), &in); err != nil {
		return err
	}
	k, err := s.keys.Create(context.Background(), in)
	if err != nil {
		return err
	}
	s.log.Info("key created", "id", k.ID, "scope", k.Scope, "by", principal(ctx).KeyID)
	return s.writeCreated(ctx, k)
}

func (s *Server) handleKeyList(ctx *fasthttp.RequestCtx, _ pathParams) error {
	keys, err := s.keys.List(context.Background())
	if err != nil {
		return err
	}
	return s.writeJSON(ctx, map[string]any{"keys": keys})
}

func (s *Server) handleKeyRevoke(ctx *fasthttp.RequestCtx, p pathParams) error {
	id := string(p.Get("id"))
	if err := s.keys.Revoke(context.Background(), id); err != nil {
		return err
	}
	s.log.Info("key revoked", "id", id, "by", principal(ctx).KeyID)
	return s.writeJSON(ctx, map[string]any{"id": id, "revoked": true})
}

func (s *Server) handleShipmentCreate(ctx *fasthttp.RequestCtx, _ pathParams) error {
	var in dispatch.ShipmentInput
	if err := DecodeJSON(ctx.PostBody(), &in); err != nil {
		return err
	}
	res, err := s.disp.CreateShipment(context.Background(), in)
	if err != nil {
		return err
	}
	return s.writeCreated(ctx, res)
}

func (s *Server) handleShipmentGet(ctx *fasthttp.RequestCtx, p pathParams) error {
	v, err := s.disp.Shipment(context.Background(), string(p.Get("tracking")))
	if err != nil {
		return err
	}
	if pr := principal(ctx); pr != nil && pr.Scope == dispatch.ScopeDriver && (v.Vehicle == nil || *v.Vehicle != pr.Vehicle) {
		return &Error{"Forbidden", "a driver key reads the shipments of its own vehicle only"}
	}
	return s.writeJSON(ctx, v)
}

func (s *Server) handleShipmentEvent(ctx *fasthttp.RequestCtx, p pathParams) error {
	var in dispatch.CallerEventInput
	if err := DecodeJSON(ctx.PostBody(), &in); err != nil {
		return err
	}
	e, created, err := s.disp.AddCallerEvent(context.Background(), string(p.Get("tracking")), in)
	if err != nil {
		return err
	}
	if created {
		return s.writeCreated(ctx, e)
	}
	return s.writeJSON(ctx, e)
}

func (s *Server) handlePlanCreate(ctx *fasthttp.RequestCtx, _ pathParams) error {
	var in dispatch.PlanInput
	if err := DecodeJSON(ctx.PostBody(), &in); err != nil {
		return err
	}
	res, err := s.disp.CreatePlan(context.Background(), in)
	if err != nil {
		return err
	}
	return s.writeCreated(ctx, res)
}

func (s *Server) handleStopStatus(ctx *fasthttp.RequestCtx, p pathParams) error {
	id, err := pathID(p, "id", "stop")
	if err != nil {
		return err
	}
	var in dispatch.StatusInput
	if err := DecodeJSON(ctx.PostBody(), &in); err != nil {
		return err
	}
	driver := driverVehicle(ctx)
	if driver != "" && in.Status == dispatch.StatusCancelled {
		return &Error{"Forbidden", "a driver key cannot cancel stops"}
	}
	v, err := s.disp.SetStopStatus(context.Background(), id, in, driver)
	if err != nil {
		return err
	}
	return s.writeJSON(ctx, v)
}

func (s *Server) handleVehicleGet(ctx *fasthttp.RequestCtx, p pathParams) error {
	id := string(p.Get("id"))
	if err := forVehicle(ctx, id); err != nil {
		return err
	}
	v, err := s.disp.Vehicle(context.Background(), id)
	if err != nil {
		return err
	}
	return s.writeJSON(ctx, v)
}

func (s *Server) handleRouteAddStop(ctx *fasthttp.RequestCtx, p pathParams) error {
	id, err := pathID(p, "id", "route")
	if err != nil {
		return err
	}
	var in dispatch.AddStopInput
	if err := DecodeJSON(ctx.PostBody(), &in); err != nil {
		return err
	}
	v, err := s.disp.AddStop(context.Background(), id, in)
	if err != nil {
		return err
	}
	return s.writeCreated(ctx, v)
}

func (s *Server) handleShipmentWindow(ctx *fasthttp.RequestCtx, p pathParams) error {
	var in dispatch.WindowInput
	if err := DecodeJSON(ctx.PostBody(), &in); err != nil {
		return err
	}
	v, err := s.disp.ChangeWindow(context.Background(), string(p.Get("tracking")), in)
	if err != nil {
		return err
	}
	return s.writeJSON(ctx, v)
}

// EventsPage answers GET /v1/events.
type EventsPage struct {
	Events []dispatch.Event `json:"events"`
	// Next is the cursor to ask from next.
	Next int64 `json:"next"`
}

func (s *Server) handleEvents(ctx *fasthttp.RequestCtx, _ pathParams) error {
	args := ctx.QueryArgs()
	var bad []byte
	args.VisitAll(func(k, _ []byte) {
		if string(k) != "after" && string(k) != "limit" && bad == nil {
			bad = append(bad, k...)
		}
	})
	if bad != nil {
		return &Error{"InvalidOptions", fmt.Sprintf("unknown parameter %q (known: after, limit)", clip(bad, 40))}
	}
	after, limit := int64(0), 100
	if v := args.Peek("after"); v != nil {
		n, err := strconv.ParseInt(string(v), 10, 64)
		if err != nil || n < 0 {
			return &Error{"InvalidValue", "after: want a cursor (an integer >= 0)"}
		}
		after = n
	}
	if v := args.Peek("limit"); v != nil {
		n, err := strconv.Atoi(string(v))
		if err != nil || n < 1 || n > 1000 {
			return &Error{"InvalidValue", "limit: want 1 to 1000"}
		}
		limit = n
	}
	evs, next, err := s.disp.EventsFor(context.Background(), driverVehicle(ctx), after, limit)
	if err != nil {
		return err
	}
	return s.writeJSON(ctx, EventsPage{Events: evs, Next: next})
}

// eraseInterval is how often personal data past retention is erased.
const eraseInterval = 10 * time.Minute

// eraseLoop erases personal data past the retention period, at start and
// every eraseInterval, until Shutdown.
func (s *Server) eraseLoop() {
	defer s.bgDone.Done()
	t := time.NewTicker(eraseInterval)
	defer t.Stop()
	for {
		if _, err := s.disp.EraseExpired(context.Background(), s.cfg.Retention); err != nil {
			s.log.Error("erasing personal data after retention", "err", err)
		}
		select {
		case <-s.bgStop:
			return
		case <-t.C:
		}
	}
}
