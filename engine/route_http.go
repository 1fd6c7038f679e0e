package engine

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"

	"github.com/valyala/fasthttp"

	"github.com/lastmile/lastmile/graph"
)

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

func (s *Server) handleRoute(ctx *fasthttp.RequestCtx, p pathParams) error {
	args := ctx.QueryArgs()
	if err := checkQuery(args, routeParams); err != nil {
		return err
	}
	pts, err := parseCoordList(p.Get("coordinates"), s.cfg.MaxRouteCoordinates)
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

func (s *Server) handleNearest(ctx *fasthttp.RequestCtx, p pathParams) error {
	param := p.Get("coordinate")
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

func (s *Server) handleTable(ctx *fasthttp.RequestCtx, _ pathParams) error {
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
