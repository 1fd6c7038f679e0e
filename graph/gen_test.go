package graph

import (
	"math"
	"math/rand/v2"
	"slices"
)

// genNames is the name table of generated networks: unnamed, Portuguese,
// a ref, and names outside ASCII.
var genNames = []string{"", "Rua de Santa Catarina", "Avenida dos Aliados", "A28", "Praça da Liberdade",
	"Rua Álvares Cabral", "Straße des 17. Juni", "東京通り", "N13;N14"}

// genOptions configures a synthetic road network.
type genOptions struct {
	W, H       int     // grid size of each component
	Components int     // disconnected grids
	Link       float64 // probability that a grid link exists
	Oneway     float64 // probability that a link is oneway
	Restrict   float64 // restrictions per edge
	Shape      bool    // add shape points
	Spurs      int     // dead-end spurs per component
	Parallel   int     // parallel links per component (second way, same nodes)
	Loops      int     // self-loop edges per component
	Arterial   int     // every Arterial-th row and column is a fast road (0: none)
}

// genNetwork builds a random grid-like network around Porto: rows and
// columns are ways, links are randomly missing or oneway, weights random,
// plus spurs (dead ends), parallel roads, loops and turn restrictions of
// both kinds.
func genNetwork(seed uint64, o genOptions) *Network {
	rng := rand.New(rand.NewPCG(seed, seed*7+1))
	n := &Network{}
	addNode := func(lat, lon float64) uint32 {
		n.Lat = append(n.Lat, lat)
		n.Lon = append(n.Lon, lon)
		n.OSMNode = append(n.OSMNode, int64(len(n.Lat)*10+1))
		return uint32(len(n.Lat) - 1)
	}
	nextWay := int64(1)
	fast := false
	addRoad := func(a, b uint32, way int64, oneway, rev bool) {
		dx := (n.Lon[b] - n.Lon[a]) * 111320 * math.Cos(n.Lat[a]*math.Pi/180)
		dy := (n.Lat[b] - n.Lat[a]) * 110540
		length := math.Hypot(dx, dy) * (1 + 0.3*rng.Float64())
		if length <= 0 {
			length = 5 + 10*rng.Float64()
		}
		class := RoadClass(rng.IntN(int(ClassService) + 1))
		speed := 5 + 25*rng.Float64() // m/s
		if o.Arterial > 0 {
			speed = 7.5 + rng.Float64()
			if fast {
				speed, class = 22+2*rng.Float64(), ClassPrimary
			}
		}
		if rng.IntN(50) == 0 {
			length = 0.004 // sub-centimetre: rounds up to 1 cm / 1 ms
		}
		var shape [][2]float64
		if o.Shape && rng.IntN(3) == 0 {
			for k := 0; k < 1+rng.IntN(3); k++ {
				t := float64(k+1) / 4
				shape = append(shape, [2]float64{
					n.Lat[a] + t*(n.Lat[b]-n.Lat[a]) + (rng.Float64()-0.5)*1e-4,
					n.Lon[a] + t*(n.Lon[b]-n.Lon[a]) + (rng.Float64()-0.5)*1e-4,
				})
			}
		}
		add := func(from, to uint32, pts [][2]float64) {
			e := Edge{From: from, To: to, Distance: length, Duration: length / speed, WayID: way, Class: class,
				ShapeStart: uint32(len(n.ShapeLat))}
			for _, p := range pts {
				n.ShapeLat = append(n.ShapeLat, p[0])
				n.ShapeLon = append(n.ShapeLon, p[1])
			}
			e.ShapeEnd = uint32(len(n.ShapeLat))
			n.Edges = append(n.Edges, e)
		}
		revShape := make([][2]float64, len(shape))
		for i := range shape {
			revShape[i] = shape[len(shape)-1-i]
		}
		switch {
		case !oneway:
			add(a, b, shape)
			add(b, a, revShape)
		case rev:
			add(b, a, revShape)
		default:
			add(a, b, shape)
		}
	}
	for c := 0; c < o.Components; c++ {
		base := uint32(len(n.Lat))
		lat0, lon0 := 41.1+0.05*float64(c), -8.7
		for y := 0; y < o.H; y++ {
			for x := 0; x < o.W; x++ {
				addNode(lat0+float64(y)*0.001+(rng.Float64()-0.5)*3e-4, lon0+float64(x)*0.0013+(rng.Float64()-0.5)*3e-4)
			}
		}
		id := func(x, y int) uint32 { return base + uint32(y*o.W+x) }
		// Rows and columns are ways; split them now and then into new ways.
		for y := 0; y < o.H; y++ {
			fast = o.Arterial > 0 && y%o.Arterial == 0
			way := nextWay
			nextWay++
			for x := 0; x+1 < o.W; x++ {
				if rng.IntN(6) == 0 {
					way = nextWay
					nextWay++
				}
				if rng.Float64() < o.Link {
					addRoad(id(x, y), id(x+1, y), way, rng.Float64() < o.Oneway, rng.IntN(2) == 0)
				}
			}
		}
		for x := 0; x < o.W; x++ {
			fast = o.Arterial > 0 && x%o.Arterial == 0
			way := nextWay
			nextWay++
			for y := 0; y+1 < o.H; y++ {
				if rng.Float64() < o.Link {
					addRoad(id(x, y), id(x, y+1), way, rng.Float64() < o.Oneway, rng.IntN(2) == 0)
				}
			}
		}
		fast = false
		for k := 0; k < o.Spurs; k++ {
			a := id(rng.IntN(o.W), rng.IntN(o.H))
			b := addNode(n.Lat[a]+0.0003, n.Lon[a]+0.0002)
			addRoad(a, b, nextWay, false, false)
			if rng.IntN(2) == 0 { // a two-link dead-end street
				c := addNode(n.Lat[b]+0.0003, n.Lon[b]+0.0001)
				addRoad(b, c, nextWay, false, false)
			}
			nextWay++
		}
		for k := 0; k < o.Parallel; k++ {
			x, y := rng.IntN(o.W-1), rng.IntN(o.H)
			addRoad(id(x, y), id(x+1, y), nextWay, rng.IntN(3) == 0, false)
			nextWay++
		}
		for k := 0; k < o.Loops; k++ {
			a := id(rng.IntN(o.W), rng.IntN(o.H))
			way := nextWay
			nextWay++
			n.Edges = append(n.Edges, Edge{From: a, To: a, Distance: 50 + 100*rng.Float64(), Duration: 10 + 10*rng.Float64(),
				WayID: way, Class: ClassService, ShapeStart: uint32(len(n.ShapeLat)), ShapeEnd: uint32(len(n.ShapeLat))})
		}
	}
	// Road names by way, without drawing from rng so that the networks of
	// a seed stay what they were before names: every fourth way unnamed.
	n.Names = slices.Clone(genNames)
	for i := range n.Edges {
		if w := n.Edges[i].WayID; w%4 != 0 {
			n.Edges[i].Name = uint32(1 + w%int64(len(genNames)-1))
		}
	}
	// Turn restrictions.
	out := make([][]uint32, len(n.Lat))
	for i, e := range n.Edges {
		out[e.From] = append(out[e.From], uint32(i))
	}
	nr := int(o.Restrict * float64(len(n.Edges)))
	for k := 0; k < nr; k++ {
		a := uint32(rng.IntN(len(n.Edges)))
		exits := out[n.Edges[a].To]
		if len(exits) == 0 {
			continue
		}
		b := exits[rng.IntN(len(exits))]
		only := rng.IntN(4) == 0
		n.Restrictions = append(n.Restrictions, TurnRestriction{From: a, To: b, Only: only})
		if only && rng.IntN(3) == 0 {
			n.Restrictions = append(n.Restrictions, TurnRestriction{From: a, To: exits[rng.IntN(len(exits))], Only: true})
		}
	}
	return n
}
