package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/lastmile/lastmile/datasets/sim"
	"github.com/lastmile/lastmile/engine"
	"github.com/lastmile/lastmile/graph"
)

// RerouteConfig configures Reroute. Zero values take the defaults given.
type RerouteConfig struct {
	// Graph is the road graph (required).
	Graph *graph.Graph
	// DB is a PostgreSQL URL for the state; "" is SQLite in a temporary
	// folder.
	DB string
	// Incidents is the number of vans re-routed (default 50), each with
	// Stops stops (default 30) within Radius metres (default 4000) of one
	// depot.
	Incidents, Stops int
	Radius           float64
	// Seed makes the routes reproducible.
	Seed uint64
	// Logger receives progress (nil: discard).
	Logger *slog.Logger
}

// RerouteResult holds the latencies of the pings that revealed the delays.
type RerouteResult struct {
	Backend   string
	Incidents int
	// Rerouted counts the vans whose route got a new version.
	Rerouted      int
	P50, P99, Max time.Duration
}

// Reroute measures re-routing over HTTP: each van is out on a sequenced
// route of Stops stops in nearest-neighbour order, the last of which has
// a window closing 45 min after the start, so that the ping that moves
// the van out of its depot reveals it far behind (that stop predicted
// hours late); the time of that ping's request is measured: map matching,
// ETAs of every stop, the re-solve of the open stops, the new ETAs and the
// stored route with its rerouted events, all before the answer.
func Reroute(cfg RerouteConfig) (*RerouteResult, error) {
	if cfg.Incidents <= 0 {
		cfg.Incidents = 50
	}
	if cfg.Stops <= 0 {
		cfg.Stops = 30
	}
	if cfg.Radius <= 0 {
		cfg.Radius = 4000
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	g := cfg.Graph
	ss, err := startStateServer(g, cfg.DB, "", 2, engine.ServerConfig{}, cfg.Logger)
	if err != nil {
		return nil, err
	}
	defer ss.close()
	rng := rand.New(rand.NewPCG(cfg.Seed, 11))
	depot := sim.RandomEndpoints(g, 1, rng)[0]
	depotLL := [2]float64{depot.Lon, depot.Lat}
	t0 := time.Now().Truncate(time.Hour).Add(-time.Hour).Unix()
	res := &RerouteResult{Backend: ss.st.Dialect().String(), Incidents: cfg.Incidents}
	var lat []time.Duration
	for i := range cfg.Incidents {
		van := fmt.Sprintf("rr-%d", i+1)
		eps, err := sim.RandomEndpointsWithin(g, cfg.Stops, depot.Lat, depot.Lon, cfg.Radius, rng)
		if err != nil {
			return nil, err
		}
		eps = nearestFirst(depot, eps)
		var track []string
		for k, ep := range eps {
			tr := fmt.Sprintf("RR%d-%d", i+1, k+1)
			w := []int64{t0, t0 + 8*3600}
			if k == len(eps)-1 {
				w[1] = t0 + 45*60
			}
			body, _ := json.Marshal(map[string]any{"tracking": tr, "recipient": map[string]any{"name": "R"},
				"location": [2]float64{ep.Lon, ep.Lat}, "time_window": w, "service": 180})
			if status, out, err := ss.post("/v1/shipments", body); err != nil || status != 201 {
				return nil, fmt.Errorf("create shipment: %d %v %s", status, err, ingestClip(out, 200))
			}
			track = append(track, tr)
		}
		body, _ := json.Marshal(map[string]any{
			"vehicles": []any{map[string]any{"id": 1, "vehicle": van, "start": depotLL, "end": depotLL, "time_window": []int64{t0, t0 + 10*3600}}},
			"routes":   []any{map[string]any{"vehicle": van, "shipments": track}}})
		if status, out, err := ss.post("/v1/plans", body); err != nil || status != 201 {
			return nil, fmt.Errorf("create plan: %d %v %s", status, err, ingestClip(out, 200))
		}
		// A ping at the depot, then one on the way out, 300 m or more
		// from it.
		out := awayPoint(g, depot, eps)
		for k, p := range [][2]float64{depotLL, out} {
			body, _ := json.Marshal(map[string]any{"positions": []any{map[string]any{"vehicle": van, "time": t0 + int64(30*k), "location": p}}})
			start := time.Now()
			status, resp, err := ss.post("/v1/positions", body)
			if err != nil || status != 200 {
				return nil, fmt.Errorf("ping: %d %v %s", status, err, ingestClip(resp, 200))
			}
			if k == 1 {
				lat = append(lat, time.Since(start))
			}
		}
		v, err := ss.st.Vehicle(context.Background(), van)
		if err != nil {
			return nil, err
		}
		if r, err := ss.st.Route(context.Background(), v.Route); err == nil && r.Version > 1 {
			res.Rerouted++
		}
	}
	slices.Sort(lat)
	res.P50, res.P99, res.Max = lat[len(lat)/2], lat[(len(lat)*99+99)/100-1], lat[len(lat)-1]
	return res, nil
}

// awayPoint returns a point 300 m or more from the depot on the route to
// the first stop that far (the van has left; or the last stop's position).
func awayPoint(g *graph.Graph, depot graph.Endpoint, stops []graph.Endpoint) [2]float64 {
	q := g.NewQuery()
	n := g.Road
	for _, st := range stops {
		if graph.Haversine(depot.Lat, depot.Lon, st.Lat, st.Lon) < 300 {
			continue
		}
		if r, err := q.Route(depot, st); err == nil {
			for _, e := range r.Edges {
				to := n.Edges[e].To
				if graph.Haversine(depot.Lat, depot.Lon, n.Lat[to], n.Lon[to]) >= 300 {
					return [2]float64{n.Lon[to], n.Lat[to]}
				}
			}
		}
		return [2]float64{st.Lon, st.Lat}
	}
	last := stops[len(stops)-1]
	return [2]float64{last.Lon, last.Lat}
}

// WriteReroute prints a re-routing result with a last line for scripts.
func WriteReroute(w io.Writer, r *RerouteResult) {
	fmt.Fprintf(w, "reroute: backend %s incidents %d rerouted %d p50 %.1fms p99 %.1fms max %.1fms\n", r.Backend, r.Incidents, r.Rerouted,
		float64(r.P50.Microseconds())/1000, float64(r.P99.Microseconds())/1000, float64(r.Max.Microseconds())/1000)
}
