package graph

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"
)

// snapTestNetwork builds a jittered grid of two-way and oneway roads with
// intermediate shape points around Porto.
func snapTestNetwork(rng *rand.Rand, w, h int) *Network {
	n := &Network{}
	id := func(x, y int) uint32 { return uint32(y*w + x) }
	for y := range h {
		for x := range w {
			n.Lat = append(n.Lat, 41.1+float64(y)*0.002+rng.Float64()*0.0005)
			n.Lon = append(n.Lon, -8.6+float64(x)*0.002+rng.Float64()*0.0005)
			n.OSMNode = append(n.OSMNode, int64(len(n.Lat)))
		}
	}
	way := int64(0)
	add := func(a, b uint32) {
		way++
		start := uint32(len(n.ShapeLat))
		k := rng.IntN(3)
		for i := 1; i <= k; i++ {
			t := float64(i) / float64(k+1)
			n.ShapeLat = append(n.ShapeLat, n.Lat[a]+t*(n.Lat[b]-n.Lat[a])+(rng.Float64()-0.5)*0.0004)
			n.ShapeLon = append(n.ShapeLon, n.Lon[a]+t*(n.Lon[b]-n.Lon[a])+(rng.Float64()-0.5)*0.0004)
		}
		end := uint32(len(n.ShapeLat))
		n.Edges = append(n.Edges, Edge{From: a, To: b, Distance: 100, Duration: 10, WayID: way, ShapeStart: start, ShapeEnd: end})
		if rng.IntN(4) == 0 {
			return // oneway
		}
		rs := uint32(len(n.ShapeLat))
		for i := int(end) - 1; i >= int(start); i-- {
			n.ShapeLat = append(n.ShapeLat, n.ShapeLat[i])
			n.ShapeLon = append(n.ShapeLon, n.ShapeLon[i])
		}
		n.Edges = append(n.Edges, Edge{From: b, To: a, Distance: 100, Duration: 10, WayID: way, ShapeStart: rs, ShapeEnd: uint32(len(n.ShapeLat))})
	}
	for y := range h {
		for x := range w {
			if x+1 < w {
				add(id(x, y), id(x+1, y))
			}
			if y+1 < h {
				add(id(x, y), id(x, y+1))
			}
		}
	}
	return n
}

func TestSnapMatchesBruteForce(t *testing.T) {
	for _, seed := range []uint64{1, 2, 3} {
		rng := rand.New(rand.NewPCG(seed, 99))
		n := snapTestNetwork(rng, 20, 15)
		unusable := map[uint32]bool{}
		for range 10 {
			unusable[uint32(rng.IntN(len(n.Edges)))] = true
		}
		routable := func(e uint32) bool { return !unusable[e] }
		s := NewSnapper(n, routable)
		for q := range 2000 {
			lat := 41.095 + rng.Float64()*0.035
			lon := -8.605 + rng.Float64()*0.045
			ep, d, err := s.Snap(lat, lon, 5000)
			if err != nil {
				t.Fatalf("seed %d query %d: %v", seed, q, err)
			}
			// Brute force over every usable edge.
			p := newProjection(lat, lon)
			best := math.Inf(1)
			for e := range n.Edges {
				if !routable(uint32(e)) {
					continue
				}
				if de, _, _, _ := s.nearestOnEdge(p, uint32(e)); de < best {
					best = de
				}
			}
			if math.Abs(best-d) > 1e-6 {
				t.Fatalf("seed %d query %d: snap distance %.6f, brute force %.6f", seed, q, d, best)
			}
			if len(ep.Points) == 0 || len(ep.Points) > 2 {
				t.Fatalf("query %d: %d edge points", q, len(ep.Points))
			}
			for _, pt := range ep.Points {
				if !routable(pt.Edge) {
					t.Fatalf("query %d: snapped to unroutable edge %d", q, pt.Edge)
				}
				if pt.Fraction < 0 || pt.Fraction > 1 {
					t.Fatalf("query %d: fraction %v", q, pt.Fraction)
				}
				// The point at that fraction along the edge is the snapped point.
				plat, plon := pointAlong(s, pt.Edge, pt.Fraction)
				if dd := Haversine(plat, plon, ep.Lat, ep.Lon); dd > 0.01 {
					t.Fatalf("query %d: point at fraction %.4f of edge %d is %.3f m from the snapped point", q, pt.Fraction, pt.Edge, dd)
				}
			}
			if len(ep.Points) == 2 {
				a, b := n.Edges[ep.Points[0].Edge], n.Edges[ep.Points[1].Edge]
				if a.From != b.To || a.To != b.From {
					t.Fatalf("query %d: twin edges %v and %v are not reverse", q, a, b)
				}
			}
		}
	}
}

// pointAlong walks fraction f of edge e's polyline, measured in the local
// projection of its first point.
func pointAlong(s *Snapper, e uint32, f float64) (lat, lon float64) {
	lat0, lon0 := s.point(e, 0)
	p := newProjection(lat0, lon0)
	total := 0.0
	for i := 1; i < s.pointCount(e); i++ {
		a, b := s.point(e, i-1)
		c, d := s.point(e, i)
		ax, ay := p.xy(a, b)
		cx, cy := p.xy(c, d)
		total += math.Hypot(cx-ax, cy-ay)
	}
	want := f * total
	for i := 1; i < s.pointCount(e); i++ {
		a, b := s.point(e, i-1)
		c, d := s.point(e, i)
		ax, ay := p.xy(a, b)
		cx, cy := p.xy(c, d)
		seg := math.Hypot(cx-ax, cy-ay)
		if want <= seg || i == s.pointCount(e)-1 {
			t := 0.0
			if seg > 0 {
				t = math.Min(1, want/seg)
			}
			return a + t*(c-a), b + t*(d-b)
		}
		want -= seg
	}
	return s.point(e, 0)
}

func TestSnapErrors(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	s := NewSnapper(snapTestNetwork(rng, 5, 5), nil)
	tests := []struct {
		name     string
		lat, lon float64
		radius   float64
		want     error
	}{
		{"far away", 48.85, 2.35, 1000, ErrNoRoad},
		{"just outside radius", 41.09, -8.6, 50, ErrNoRoad},
		{"latitude out of range", 91, 0, 1000, ErrBadCoordinate},
		{"longitude out of range", 0, -181, 1000, ErrBadCoordinate},
		{"NaN", math.NaN(), 0, 1000, ErrBadCoordinate},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := s.Snap(tc.lat, tc.lon, tc.radius)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
	if _, _, err := s.Snap(41.1, -8.6, 0); err == nil {
		t.Fatal("zero radius accepted")
	}
	empty := NewSnapper(&Network{}, nil)
	if _, _, err := empty.Snap(41.1, -8.6, 1000); !errors.Is(err, ErrNoRoad) {
		t.Fatalf("empty network: %v", err)
	}
}

func BenchmarkSnap(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 1))
	s := NewSnapper(snapTestNetwork(rng, 200, 200), nil)
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		lat := 41.1 + rng.Float64()*0.4
		lon := -8.6 + rng.Float64()*0.4
		if _, _, err := s.Snap(lat, lon, 5000); err != nil {
			b.Fatal(err)
		}
	}
}
