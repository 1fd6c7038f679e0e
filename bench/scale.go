package bench

import (
	"fmt"
	"io"
	"log/slog"
	"math"
	"runtime"
	"time"

	"github.com/lastmile/lastmile/graph"
	"github.com/lastmile/lastmile/osmimport"
)

// ScaleReport is the preprocessing cost of a network tiled Copies times.
type ScaleReport struct {
	Copies              int
	OSMNodes            int64 // OSM nodes of the extract times Copies
	RoadNodes, CHNodes  int
	Shortcuts           int
	Import, Contraction time.Duration // Import is for one copy
	PeakRSS             int64         // process high-water mark, bytes
	HeapAfterBuild      uint64        // live Go heap with the graph built, bytes
}

// Scale measures how contraction time and memory grow with the size of a
// real road network: the extract's network is imported once and tiled
// copies times side by side (each copy shifted east, consecutive copies
// joined by a two-way link, so the whole stays strongly connected), then
// contracted. Run one size per process so that PeakRSS belongs to it.
func Scale(osmPath string, copies, workers int, log *slog.Logger) (*ScaleReport, error) {
	if copies < 1 {
		return nil, fmt.Errorf("copies %d: want at least 1", copies)
	}
	t0 := time.Now()
	net, st, err := osmimport.ReadFile(osmPath, osmimport.Options{Workers: workers, Logger: log})
	if err != nil {
		return nil, err
	}
	rep := &ScaleReport{Copies: copies, Import: time.Since(t0), OSMNodes: st.NodesRead * int64(copies)}
	tiled := TileNetwork(net, copies)
	net = nil
	runtime.GC()
	t1 := time.Now()
	g, err := graph.Build(tiled, graph.BuildOptions{Workers: workers, Logger: log})
	if err != nil {
		return nil, err
	}
	rep.Contraction = time.Since(t1)
	s := g.Stats()
	rep.RoadNodes, rep.CHNodes, rep.Shortcuts = s.RoadNodes, s.CHNodes, s.Shortcuts
	rep.PeakRSS = PeakRSS()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	rep.HeapAfterBuild = ms.HeapAlloc
	runtime.KeepAlive(g)
	return rep, nil
}

// TileNetwork returns k copies of n side by side, copy c shifted east by
// c times the network's width plus a margin, with a two-way link from the
// easternmost node of each copy to the westernmost node of the next.
func TileNetwork(n *graph.Network, k int) *graph.Network {
	if k == 1 {
		return n
	}
	minLon, maxLon := math.Inf(1), math.Inf(-1)
	east, west := 0, 0
	for i, lon := range n.Lon {
		if lon < minLon {
			minLon, west = lon, i
		}
		if lon > maxLon {
			maxLon, east = lon, i
		}
	}
	shift := (maxLon - minLon) + 0.01
	nn, ne, ns := len(n.Lat), len(n.Edges), len(n.ShapeLat)
	out := &graph.Network{
		Lat: make([]float64, 0, k*nn), Lon: make([]float64, 0, k*nn), OSMNode: make([]int64, 0, k*nn),
		Edges: make([]graph.Edge, 0, k*ne+2*k), ShapeLat: make([]float64, 0, k*ns), ShapeLon: make([]float64, 0, k*ns),
		Restrictions: make([]graph.TurnRestriction, 0, k*len(n.Restrictions)),
		Names:        n.Names, // shared: every copy names its roads alike
	}
	for c := range k {
		d := float64(c) * shift
		no, eo, so := uint32(c*nn), uint32(c*ne), uint32(c*ns)
		out.Lat = append(out.Lat, n.Lat...)
		for _, lon := range n.Lon {
			out.Lon = append(out.Lon, lon+d)
		}
		out.OSMNode = append(out.OSMNode, n.OSMNode...)
		out.ShapeLat = append(out.ShapeLat, n.ShapeLat...)
		for _, lon := range n.ShapeLon {
			out.ShapeLon = append(out.ShapeLon, lon+d)
		}
		for _, e := range n.Edges {
			e.From, e.To = e.From+no, e.To+no
			e.ShapeStart, e.ShapeEnd = e.ShapeStart+so, e.ShapeEnd+so
			out.Edges = append(out.Edges, e)
		}
		for _, r := range n.Restrictions {
			out.Restrictions = append(out.Restrictions, graph.TurnRestriction{From: r.From + eo, To: r.To + eo, Only: r.Only})
		}
	}
	// Links go after all copies' edges, so restriction indices stay valid.
	for c := 0; c+1 < k; c++ {
		a, b := uint32(c*nn+east), uint32((c+1)*nn+west)
		dist := graph.Haversine(out.Lat[a], out.Lon[a], out.Lat[b], out.Lon[b])
		dur := dist / (50 / 3.6)
		link := int64(-1 - c)
		out.Edges = append(out.Edges,
			graph.Edge{From: a, To: b, Distance: dist, Duration: dur, WayID: link, Class: graph.ClassPrimary},
			graph.Edge{From: b, To: a, Distance: dist, Duration: dur, WayID: link, Class: graph.ClassPrimary})
	}
	return out
}

// WriteScale prints one table row per report, then the stable last line
// `scale: copies K ch-nodes N contract S rss M`.
func WriteScale(w io.Writer, r *ScaleReport) {
	fmt.Fprintf(w, "| copies | OSM nodes | road nodes | CH nodes | shortcuts | contraction (s) | peak RSS (MiB) | heap after build (MiB) |\n|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	fmt.Fprintf(w, "| %d | %d | %d | %d | %d | %.1f | %.0f | %.0f |\n", r.Copies, r.OSMNodes, r.RoadNodes, r.CHNodes, r.Shortcuts,
		r.Contraction.Seconds(), float64(r.PeakRSS)/(1<<20), float64(r.HeapAfterBuild)/(1<<20))
	fmt.Fprintf(w, "scale: copies %d ch-nodes %d contract %.1fs rss %.0fMiB\n", r.Copies, r.CHNodes, r.Contraction.Seconds(), float64(r.PeakRSS)/(1<<20))
}
