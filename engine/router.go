package engine

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/lastmile/lastmile/graph"
)

// LonLat is a WGS84 coordinate in OSRM's order: longitude, then latitude.
type LonLat [2]float64

// ParseLonLat parses "lon,lat" as the command line and OSRM's URLs give it.
func ParseLonLat(s string) (LonLat, error) {
	a, b, ok := strings.Cut(strings.TrimSpace(s), ",")
	if !ok {
		return LonLat{}, fmt.Errorf("coordinate %q: want lon,lat", s)
	}
	lon, err1 := strconv.ParseFloat(strings.TrimSpace(a), 64)
	lat, err2 := strconv.ParseFloat(strings.TrimSpace(b), 64)
	if err1 != nil || err2 != nil {
		return LonLat{}, fmt.Errorf("coordinate %q: want two numbers lon,lat", s)
	}
	p := LonLat{lon, lat}
	if err := p.Check(); err != nil {
		return LonLat{}, fmt.Errorf("coordinate %q: %w", s, err)
	}
	return p, nil
}

// Check reports a longitude outside [-180, 180] or a latitude outside
// [-90, 90] (or either not finite).
func (p LonLat) Check() error {
	if !(p[0] >= -180 && p[0] <= 180) {
		return fmt.Errorf("longitude %v out of range [-180, 180]", p[0])
	}
	if !(p[1] >= -90 && p[1] <= 90) {
		return fmt.Errorf("latitude %v out of range [-90, 90]", p[1])
	}
	return nil
}

// Error is a failure with a stable code in OSRM's vocabulary (InvalidQuery,
// InvalidValue, NoSegment, NoRoute, TooBig) and a message naming the bad
// input, so the command line and the HTTP API report it the same way.
type Error struct {
	Code    string
	Message string
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Router answers route, table and nearest questions on a prepared graph. It
// is safe for concurrent use: query state comes from a pool.
//
// Routes and tables use the current metric: the graph as prepared (free
// flow) until SetGraph installs a re-customized snapshot with live
// traffic. The swap is atomic; a query in flight finishes on the snapshot
// it started with.
type Router struct {
	// G is the graph as prepared, with free-flow durations.
	G *graph.Graph
	// Snapper finds the road nearest to a coordinate.
	Snapper *graph.Snapper
	// SnapRadius is the largest distance in metres between a coordinate and
	// the road it snaps to.
	SnapRadius float64
	cur        atomic.Pointer[snapshot]
	// base is G's snapshot: free flow, whatever the traffic.
	base *snapshot
	// queries pools the query state of all the router's snapshots.
	queries *sync.Pool
}

// snapshot is one metric's graph with the router's pool of query state.
type snapshot struct {
	g       *graph.Graph
	queries *sync.Pool // *graph.Query, for any of the router's graphs
}

func newSnapshot(g *graph.Graph, queries *sync.Pool) *snapshot {
	return &snapshot{g: g, queries: queries}
}

// query returns a Query for the snapshot's graph from the pool (its
// buffers serve every customization of the graph: see graph.Query.For);
// release gives it back.
func (s *snapshot) query() *graph.Query {
	if q, ok := s.queries.Get().(*graph.Query); ok {
		return q.For(s.g)
	}
	return s.g.NewQuery()
}

func (s *snapshot) release(q *graph.Query) { s.queries.Put(q) }

// NewRouter indexes g's routable roads for snapping.
func NewRouter(g *graph.Graph, snapRadius float64) *Router {
	queries := &sync.Pool{}
	r := &Router{G: g, Snapper: graph.NewSnapper(g.Road, g.Routable), SnapRadius: snapRadius, base: newSnapshot(g, queries), queries: queries}
	r.cur.Store(r.base)
	return r
}

// fork returns a Router on the same prepared graph and snapping index with
// a metric of its own (starting from G's).
func (r *Router) fork() *Router {
	f := &Router{G: r.G, Snapper: r.Snapper, SnapRadius: r.SnapRadius, base: r.base, queries: r.queries}
	f.cur.Store(r.base)
	return f
}

// SetGraph makes g, a customization of G's topology (graph.CCH), the graph
// later queries use.
func (r *Router) SetGraph(g *graph.Graph) { r.cur.Store(newSnapshot(g, r.queries)) }

// Current returns the graph queries use now.
func (r *Router) Current() *graph.Graph { return r.cur.Load().g }

// Waypoint is a coordinate snapped to the road network, as OSRM reports it.
type Waypoint struct {
	Hint     string     `json:"hint"`
	Distance float64    `json:"distance"`
	Name     string     `json:"name"`
	Location [2]float64 `json:"location"`
}

// Snap snaps each coordinate; the error names the first one that fails.
func (r *Router) Snap(pts []LonLat) ([]graph.Endpoint, []Waypoint, error) {
	eps := make([]graph.Endpoint, len(pts))
	wps := make([]Waypoint, len(pts))
	for i, p := range pts {
		if err := p.Check(); err != nil {
			return nil, nil, &Error{"InvalidValue", fmt.Sprintf("coordinate %d: %v", i, err)}
		}
		ep, d, err := r.Snapper.Snap(p[1], p[0], r.SnapRadius)
		if err != nil {
			if errors.Is(err, graph.ErrNoRoad) {
				return nil, nil, &Error{"NoSegment", fmt.Sprintf("coordinate %d (%g,%g): no road within %g m", i, p[0], p[1], r.SnapRadius)}
			}
			return nil, nil, &Error{"InvalidValue", fmt.Sprintf("coordinate %d: %v", i, err)}
		}
		eps[i] = ep
		wps[i] = Waypoint{Distance: round(d, 1), Location: [2]float64{round(ep.Lon, 6), round(ep.Lat, 6)}}
		if len(ep.Points) > 0 {
			wps[i].Name = r.G.Road.EdgeName(ep.Points[0].Edge) // the street, as OSRM names it
		}
	}
	return eps, wps, nil
}

// RouteOptions are OSRM's route parameters that we honour.
type RouteOptions struct {
	// Geometries is polyline (precision 5, the default), polyline6 or geojson.
	Geometries string
	// Overview is simplified (the default), full or false.
	Overview string
}

// RouteResponse is OSRM's /route answer.
type RouteResponse struct {
	Code      string     `json:"code"`
	Routes    []Route    `json:"routes"`
	Waypoints []Waypoint `json:"waypoints"`
}

// Route is one route of a RouteResponse.
type Route struct {
	Geometry   any     `json:"geometry,omitempty"`
	Legs       []Leg   `json:"legs"`
	WeightName string  `json:"weight_name"`
	Weight     float64 `json:"weight"`
	Duration   float64 `json:"duration"`
	Distance   float64 `json:"distance"`
}

// Leg is the part of a route between two consecutive waypoints.
type Leg struct {
	Steps    []any   `json:"steps"`
	Summary  string  `json:"summary"`
	Weight   float64 `json:"weight"`
	Duration float64 `json:"duration"`
	Distance float64 `json:"distance"`
}

// GeoJSONLine is a GeoJSON LineString geometry.
type GeoJSONLine struct {
	Type        string       `json:"type"`
	Coordinates [][2]float64 `json:"coordinates"`
}

// Route computes the fastest route through pts in order.
func (r *Router) Route(pts []LonLat, opt RouteOptions) (*RouteResponse, error) {
	if len(pts) < 2 {
		return nil, &Error{"InvalidQuery", fmt.Sprintf("need at least 2 coordinates, got %d", len(pts))}
	}
	switch opt.Geometries {
	case "", "polyline", "polyline6", "geojson":
	default:
		return nil, &Error{"InvalidValue", fmt.Sprintf("geometries %q: want polyline, polyline6 or geojson", opt.Geometries)}
	}
	switch opt.Overview {
	case "", "simplified", "full", "false":
	default:
		return nil, &Error{"InvalidValue", fmt.Sprintf("overview %q: want simplified, full or false", opt.Overview)}
	}
	eps, wps, err := r.Snap(pts)
	if err != nil {
		return nil, err
	}
	snap := r.cur.Load()
	q := snap.query()
	defer snap.release(q)
	var rt Route
	rt.WeightName = "duration"
	var line [][2]float64
	wantLine := opt.Overview != "false"
	for i := 1; i < len(eps); i++ {
		var dur, dist float64
		var err error
		var geom []graph.LatLon
		if wantLine {
			var leg graph.Route
			leg, err = q.Route(eps[i-1], eps[i])
			dur, dist, geom = leg.Duration, leg.Distance, leg.Geometry
		} else {
			dur, dist, err = q.Cost(eps[i-1], eps[i]) // no path unpacking
		}
		if err != nil {
			if errors.Is(err, graph.ErrNoRoute) {
				return nil, &Error{"NoRoute", fmt.Sprintf("no route from coordinate %d to coordinate %d", i-1, i)}
			}
			return nil, fmt.Errorf("route leg %d: %w", i-1, err)
		}
		rt.Legs = append(rt.Legs, Leg{Steps: []any{}, Weight: round(dur, 1), Duration: round(dur, 1), Distance: round(dist, 1)})
		rt.Duration += dur
		rt.Distance += dist
		for _, p := range geom {
			pt := [2]float64{round(p.Lon, 6), round(p.Lat, 6)}
			if len(line) > 0 && line[len(line)-1] == pt {
				continue // a leg starts where the previous ended, or a repeated vertex
			}
			line = append(line, pt)
		}
	}
	rt.Duration, rt.Distance = round(rt.Duration, 1), round(rt.Distance, 1)
	rt.Weight = rt.Duration
	if opt.Overview != "full" {
		line = Simplify(line, 1.0)
	}
	if wantLine {
		switch opt.Geometries {
		case "geojson":
			rt.Geometry = GeoJSONLine{Type: "LineString", Coordinates: line}
		case "polyline6":
			rt.Geometry = string(AppendPolyline(nil, line, 6))
		default:
			rt.Geometry = string(AppendPolyline(nil, line, 5))
		}
	}
	return &RouteResponse{Code: "Ok", Routes: []Route{rt}, Waypoints: wps}, nil
}

// TableResponse is OSRM's /table answer; unreachable pairs are null.
type TableResponse struct {
	Code         string       `json:"code"`
	Durations    [][]*float64 `json:"durations,omitempty"`
	Distances    [][]*float64 `json:"distances,omitempty"`
	Sources      []Waypoint   `json:"sources"`
	Destinations []Waypoint   `json:"destinations"`
}

// TableMatrix snaps the points and computes the many-to-many matrix between
// the given sources and destinations (indices into pts; nil means all).
func (r *Router) TableMatrix(pts []LonLat, sources, destinations []int, workers int) (*graph.Matrix, []Waypoint, []Waypoint, error) {
	if len(pts) == 0 {
		return nil, nil, nil, &Error{"InvalidQuery", "no coordinates"}
	}
	eps, wps, err := r.Snap(pts)
	if err != nil {
		return nil, nil, nil, err
	}
	pick := func(idx []int, what string) ([]graph.Endpoint, []Waypoint, error) {
		if idx == nil {
			return eps, wps, nil
		}
		e := make([]graph.Endpoint, len(idx))
		w := make([]Waypoint, len(idx))
		for i, k := range idx {
			if k < 0 || k >= len(pts) {
				return nil, nil, &Error{"InvalidValue", fmt.Sprintf("%s[%d] = %d: out of range [0, %d)", what, i, k, len(pts))}
			}
			e[i], w[i] = eps[k], wps[k]
		}
		return e, w, nil
	}
	se, sw, err := pick(sources, "sources")
	if err != nil {
		return nil, nil, nil, err
	}
	de, dw, err := pick(destinations, "destinations")
	if err != nil {
		return nil, nil, nil, err
	}
	m, err := r.Current().Matrix(se, de, workers)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("table: %w", err)
	}
	return m, sw, dw, nil
}

// Table is TableMatrix shaped as OSRM's answer.
func (r *Router) Table(pts []LonLat, sources, destinations []int, workers int) (*TableResponse, error) {
	m, sw, dw, err := r.TableMatrix(pts, sources, destinations, workers)
	if err != nil {
		return nil, err
	}
	resp := &TableResponse{Code: "Ok", Sources: sw, Destinations: dw}
	resp.Durations = toRows(m.Durations, m.Rows, m.Cols, 1)
	resp.Distances = toRows(m.Distances, m.Rows, m.Cols, 1)
	return resp, nil
}

func toRows(v []float64, rows, cols, digits int) [][]*float64 {
	out := make([][]*float64, rows)
	cells := make([]float64, len(v))
	for i := range rows {
		out[i] = make([]*float64, cols)
		for j := range cols {
			x := v[i*cols+j]
			if math.IsInf(x, 0) || math.IsNaN(x) {
				continue
			}
			cells[i*cols+j] = round(x, digits)
			out[i][j] = &cells[i*cols+j]
		}
	}
	return out
}

func round(x float64, digits int) float64 {
	p := math.Pow10(digits)
	return math.Round(x*p) / p
}

// Simplify drops points of a [lon, lat] line that lie within tol metres of
// the line through their neighbours kept, by the Douglas-Peucker algorithm
// (Douglas & Peucker 1973), so that overview geometries stay small.
func Simplify(line [][2]float64, tol float64) [][2]float64 {
	if len(line) < 3 {
		return line
	}
	kx := 6371008.8 * math.Pi / 180 * math.Cos(line[0][1]*math.Pi/180)
	ky := 6371008.8 * math.Pi / 180
	keep := make([]bool, len(line))
	keep[0], keep[len(line)-1] = true, true
	stack := [][2]int{{0, len(line) - 1}}
	for len(stack) > 0 {
		a, b := stack[len(stack)-1][0], stack[len(stack)-1][1]
		stack = stack[:len(stack)-1]
		ax, ay := line[a][0]*kx, line[a][1]*ky
		bx, by := line[b][0]*kx, line[b][1]*ky
		dx, dy := bx-ax, by-ay
		l2 := dx*dx + dy*dy
		far, farD2 := -1, tol*tol
		for i := a + 1; i < b; i++ {
			px, py := line[i][0]*kx-ax, line[i][1]*ky-ay
			if l2 > 0 {
				t := (px*dx + py*dy) / l2
				if t < 0 {
					t = 0
				} else if t > 1 {
					t = 1
				}
				px, py = px-t*dx, py-t*dy
			}
			if d2 := px*px + py*py; d2 > farD2 {
				far, farD2 = i, d2
			}
		}
		if far >= 0 {
			keep[far] = true
			stack = append(stack, [2]int{a, far}, [2]int{far, b})
		}
	}
	out := make([][2]float64, 0, len(line))
	for i, k := range keep {
		if k {
			out = append(out, line[i])
		}
	}
	return out
}
