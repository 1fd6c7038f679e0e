package engine

import (
	"context"
	"fmt"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/lastmile/lastmile/engine/dispatch"
)

// errNoGraph answers the live endpoints of a server without a road graph.
var errNoGraph = &Error{"NotReady", "no road graph loaded: live traffic and ETAs need --graph"}

// handleTraffic answers POST /v1/traffic: speed observations and closures.
// With ?wait=true the answer comes once the update is used by routing.
func (s *Server) handleTraffic(ctx *fasthttp.RequestCtx, _ pathParams) error {
	if s.live == nil {
		return errNoGraph
	}
	if err := checkQuery(ctx.QueryArgs(), map[string][]string{"wait": {"true", "false"}}); err != nil {
		return err
	}
	var req TrafficRequest
	if err := DecodeJSON(ctx.PostBody(), &req); err != nil {
		return err
	}
	if n := len(req.Observations) + len(req.Closures); n > s.cfg.MaxTrafficObservations {
		return &Error{"TooBig", fmt.Sprintf("observations: %d entries, at most %d per request", n, s.cfg.MaxTrafficObservations)}
	}
	wait := string(ctx.QueryArgs().Peek("wait")) == "true"
	if wait && !s.live.Ready() {
		return &Error{"NotReady", "traffic: the customizable hierarchy is still being built; retry shortly or post without wait"}
	}
	t0 := time.Now()
	resp, seq, err := s.live.Observe(&req)
	if err != nil {
		return err
	}
	if wait {
		resp.Applied = seq == 0 || s.live.WaitApplied(seq, s.cfg.Timeout)
		if !resp.Applied {
			return &Error{"Timeout", "traffic: the update did not reach routing within the request timeout"}
		}
		resp.LagMs = float64(time.Since(t0).Microseconds()) / 1000
	}
	// Closures re-route the vans they delay, once routing goes around
	// them.
	if s.disp != nil && len(req.Closures) > 0 && seq != 0 {
		if resp.Applied {
			s.disp.RoadsClosed()
		} else {
			go func() {
				if s.live.WaitApplied(seq, s.cfg.Timeout) {
					s.disp.RoadsClosed()
				}
			}()
		}
	}
	return s.writeJSON(ctx, &resp)
}

// handlePositions answers POST /v1/positions: a batch of vehicle pings.
func (s *Server) handlePositions(ctx *fasthttp.RequestCtx, _ pathParams) error {
	if s.live == nil {
		return errNoGraph
	}
	if err := checkQuery(ctx.QueryArgs(), nil); err != nil {
		return err
	}
	var req PositionsRequest
	if err := DecodeJSON(ctx.PostBody(), &req); err != nil {
		return err
	}
	if len(req.Positions) > s.cfg.MaxTrafficObservations {
		return &Error{"TooBig", fmt.Sprintf("positions: %d pings, at most %d per request", len(req.Positions), s.cfg.MaxTrafficObservations)}
	}
	if p := principal(ctx); p != nil && p.Scope == dispatch.ScopeDriver {
		for i := range req.Positions {
			if err := forVehicle(ctx, req.Positions[i].Vehicle); err != nil {
				return err
			}
		}
	}
	if s.disp != nil {
		if err := s.waitWarm(); err != nil {
			return err
		}
	}
	var matched []MatchedPing
	v, err := s.compute(func() (any, error) {
		var out *[]MatchedPing
		if s.disp != nil {
			out = &matched
		}
		resp, _ := s.live.PositionsMatched(&req, out)
		return &resp, nil
	})
	if err != nil {
		return err
	}
	if s.disp != nil && len(matched) > 0 {
		// Stored and applied before the answer: a 200 means durable.
		pings := make([]dispatch.Ping, len(matched))
		for i, m := range matched {
			pings[i] = dispatch.Ping{Vehicle: m.Vehicle, Time: m.Time, Location: m.Location, Matched: m.Matched, MatchedOK: true,
				Speed: m.Speed, Heading: m.Heading}
		}
		if _, err := s.disp.Positions(context.Background(), pings); err != nil {
			return err
		}
		s.wakeVans(pings)
	}
	return s.writeJSON(ctx, v)
}

// handleETA answers POST /v1/eta: arrival predictions for a vehicle's
// remaining stops.
func (s *Server) handleETA(ctx *fasthttp.RequestCtx, _ pathParams) error {
	if s.live == nil {
		return errNoGraph
	}
	if err := checkQuery(ctx.QueryArgs(), nil); err != nil {
		return err
	}
	var req ETARequest
	if err := DecodeJSON(ctx.PostBody(), &req); err != nil {
		return err
	}
	v, err := s.compute(func() (any, error) { return s.live.ETA(&req, s.cfg.MaxRouteCoordinates) })
	if err != nil {
		return err
	}
	return s.writeJSON(ctx, v)
}

// handleVehicleETA answers GET /v1/eta/{vehicle}.
func (s *Server) handleVehicleETA(ctx *fasthttp.RequestCtx, p pathParams) error {
	if s.live == nil {
		return errNoGraph
	}
	if err := checkQuery(ctx.QueryArgs(), nil); err != nil {
		return err
	}
	id := string(p.Get("vehicle"))
	v, err := s.compute(func() (any, error) { return s.live.VehicleETA(id, s.cfg.MaxRouteCoordinates) })
	if err != nil {
		return err
	}
	return s.writeJSON(ctx, v)
}

var vehicleETADoc = &apiOperation{
	ID: "vehicleEta", Summary: "Re-estimated arrivals of a tracked vehicle", Tags: []string{"traffic"},
	Description: "The remaining stops of the vehicle's last POST /v1/eta, predicted again from its latest matched ping " +
		"(POST /v1/positions) at the server's current time; stops its pings have reached are dropped. 404 NotFound for a " +
		"vehicle without position or remaining stops.",
	Params: []apiParam{{Name: "vehicle", In: "path", Required: true, Description: "Vehicle id.",
		Schema: map[string]any{"type": "string"}, Example: "van-1"}},
	OK:     apiContent{Description: "One prediction per remaining stop.", MediaType: "application/json", Ref: "ETAResponse"},
	Errors: []int{404, 422, 503},
}

var trafficDoc = &apiOperation{
	ID: "traffic", Summary: "Live traffic: speed observations and road closures", Tags: []string{"traffic"},
	Description: "Each observation names a road edge (as map matching and /v1/nearest report them) or an OpenStreetMap way id, with a " +
		"speed in km/h or, for an edge, its traversal time in seconds; closures close an edge or a way until a Unix time (a van on a running plan whose stops they delay by 1 min or more is re-routed at once: rerouted). " +
		"Observations are pooled per edge and per H3 cell and road class, outliers rejected (median/MAD), and decay back to the " +
		"historical profile over the configured horizon. The routing graph is re-customized (customizable contraction hierarchy) " +
		"at most twice per second, so routes, tables and solves follow the traffic; with ?wait=true the answer comes once the " +
		"update is used by routing (503 NotReady while the hierarchy is still being built after start). Bad entries are counted " +
		"by reason in rejected, not fatal.",
	Params: []apiParam{{Name: "wait", In: "query", Description: "true answers once the update reaches routing.",
		Schema: map[string]any{"type": "boolean"}}},
	Body: "TrafficRequest",
	BodyExample: map[string]any{"observations": []any{
		map[string]any{"edge": 0, "speed": 12.5},
		map[string]any{"way_id": 1, "speed": 20},
	}},
	OK:     apiContent{Description: "What was accepted.", MediaType: "application/json", Ref: "TrafficResponse"},
	Errors: []int{400, 413, 503},
}

var positionsDoc = &apiOperation{
	ID: "positions", Summary: "Vehicle pings (batch): map matched into live traffic", Tags: []string{"traffic"},
	Description: "Pings are grouped per vehicle and sorted by time, map matched with the vehicle's recent pings (HMM, Newson & " +
		"Krumm 2009); every edge traversed whole becomes a traffic observation. A ping within the stop radius of the next stop " +
		"of the vehicle's last ETA request records the arrival, which calibrates the prediction intervals. Bad pings (bad " +
		"coordinates, out of order, teleports, off the road map, missing vehicle id) are counted by reason, not fatal.",
	Body: "PositionsRequest",
	BodyExample: map[string]any{"positions": []any{
		map[string]any{"vehicle": "van-1", "time": 1767261600, "location": []float64{7.41993, 43.73141}},
		map[string]any{"vehicle": "van-1", "time": 1767261610, "location": []float64{7.42035, 43.73175}},
	}},
	OK:     apiContent{Description: "What was accepted.", MediaType: "application/json", Ref: "PositionsResponse"},
	Errors: []int{400, 413, 503},
}

var etaDoc = &apiOperation{
	ID: "eta", Summary: "Arrival predictions for a vehicle's remaining stops", Tags: []string{"traffic"},
	Description: "From the vehicle's location (or its last matched ping) at time (default now) through its stops in order: " +
		"fastest legs on the live graph, each edge timed for the moment it is entered (historical profile × decaying live " +
		"ratio), service times, waiting for time windows, breaks. p10/p90 come from the residuals of past predictions " +
		"(learned as pings reach stops); equal to arrival until enough are known. Times are Unix seconds.",
	Body: "ETARequest",
	BodyExample: map[string]any{"location": []float64{7.41993, 43.73141}, "time": 1767261600, "stops": []any{
		map[string]any{"id": "parcel-1", "location": []float64{7.42586, 43.74087}, "service": 120},
		map[string]any{"id": "parcel-2", "location": []float64{7.4246, 43.7384}, "service": 60,
			"time_windows": [][2]float64{{1767261600, 1767270000}}},
	}},
	OK:     apiContent{Description: "One prediction per stop.", MediaType: "application/json", Ref: "ETAResponse"},
	Errors: []int{400, 404, 413, 422, 503},
}

// liveSchemas are the JSON Schemas of the live traffic bodies.
func liveSchemas(s map[string]any) {
	unix := func(desc string) map[string]any {
		return map[string]any{"type": "number", "minimum": 0, "description": desc + " (Unix seconds)."}
	}
	windows := map[string]any{"type": "array", "items": map[string]any{"type": "array", "prefixItems": []any{
		map[string]any{"type": "number"}, map[string]any{"type": "number"}}, "minItems": 2, "maxItems": 2, "items": false}}
	counts := map[string]any{"type": "object", "additionalProperties": map[string]any{"type": "integer"},
		"description": "Rejected entries by reason."}
	edgeOrWay := map[string]any{
		"edge":   map[string]any{"type": "integer", "minimum": 0, "description": "Road edge index."},
		"way_id": map[string]any{"type": "integer", "description": "OpenStreetMap way id."},
	}
	obs := map[string]any{
		"speed":    map[string]any{"type": "number", "minimum": 0, "description": "km/h, positive."},
		"duration": map[string]any{"type": "number", "minimum": 0, "description": "Seconds to traverse the edge, positive."},
		"time":     unix("When observed; default now"),
	}
	for k, v := range edgeOrWay {
		obs[k] = v
	}
	closure := map[string]any{"until": unix("End of the closure")}
	for k, v := range edgeOrWay {
		closure[k] = v
	}
	s["TrafficRequest"] = object([]string{"observations"}, map[string]any{
		"observations": arrayOf(object([]string{}, obs)),
		"closures":     arrayOf(object([]string{"until"}, closure)),
	})
	s["TrafficResponse"] = object([]string{"code", "accepted", "rejected", "applied"}, map[string]any{
		"code": map[string]any{"const": "Ok"}, "accepted": map[string]any{"type": "integer"}, "rejected": counts,
		"applied": map[string]any{"type": "boolean"}, "lag_ms": number("Time until routing used the update (with wait)."),
	})
	s["PositionsRequest"] = object([]string{"positions"}, map[string]any{
		"positions": arrayOf(object([]string{"vehicle", "time", "location"}, map[string]any{
			"vehicle":  map[string]any{"type": "string", "description": "Vehicle id, 1 to 128 bytes."},
			"time":     unix("When the ping was taken"),
			"location": ref("LonLat"),
			"speed":    number("m/s, optional."),
			"heading":  number("Degrees, optional."),
		})),
	})
	s["PositionsResponse"] = object([]string{"code", "accepted", "rejected", "traversals", "arrivals"}, map[string]any{
		"code": map[string]any{"const": "Ok"}, "accepted": map[string]any{"type": "integer"}, "rejected": counts,
		"traversals": map[string]any{"type": "integer"}, "arrivals": map[string]any{"type": "integer"},
	})
	s["ETARequest"] = object([]string{"stops"}, map[string]any{
		"vehicle":  map[string]any{"type": "string", "description": "Vehicle id, at most 128 bytes."},
		"location": ref("LonLat"),
		"time":     unix("Now"),
		"mode":     map[string]any{"enum": []string{"live", "historical", "freeflow"}},
		"stops": arrayOf(object([]string{"location"}, map[string]any{
			"id": map[string]any{}, "location": ref("LonLat"), "service": number("Seconds."), "time_windows": windows,
		})),
		"breaks": arrayOf(object([]string{"time_windows", "service"}, map[string]any{
			"time_windows": windows, "service": number("Seconds."),
		})),
	})
	s["ETAResponse"] = object([]string{"code", "time", "mode", "stops"}, map[string]any{
		"code": map[string]any{"const": "Ok"}, "time": map[string]any{"type": "integer"},
		"mode": map[string]any{"type": "string"}, "vehicle": map[string]any{"type": "string"},
		"stops": arrayOf(object([]string{"arrival", "p10", "p90", "departure", "waiting", "late", "distance"}, map[string]any{
			"id": map[string]any{}, "arrival": map[string]any{"type": "integer"}, "p10": map[string]any{"type": "integer"},
			"p90": map[string]any{"type": "integer"}, "departure": map[string]any{"type": "integer"},
			"waiting": number("Seconds waiting for the window."), "break": number("Seconds of break after service."),
			"late": map[string]any{"type": "boolean"}, "distance": number("Metres of the leg."),
		})),
	})
}

// TrafficReady reports whether traffic updates reach routing: the
// customizable hierarchy, built in the background after start, is ready.
func (s *Server) TrafficReady() bool { return s.live != nil && s.live.Ready() }
