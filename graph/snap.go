package graph

import (
	"errors"
	"fmt"
	"math"

	"github.com/tidwall/rtree"
)

// ErrNoRoad is returned (wrapped) by Snap when no routable road lies within
// the search radius of the requested coordinate.
var ErrNoRoad = errors.New("no road")

// ErrBadCoordinate is returned (wrapped) by Snap for a latitude or longitude
// outside the WGS84 range or not a number.
var ErrBadCoordinate = errors.New("invalid coordinate")

// snapFirstBox is the half-width in metres of the first box Snap searches;
// most coordinates sent for routing lie that close to a road.
const snapFirstBox = 60

const (
	earthRadius = 6371008.8 // mean Earth radius in metres (IUGG)
	degToRad    = math.Pi / 180
)

// Snapper finds the nearest routable road to a coordinate and the position
// on it, so that a route may start or end in the middle of an edge.
//
// The index is an R-tree (github.com/tidwall/rtree) over the bounding boxes
// of road geometries in degrees: one item per oneway edge and one per pair
// of twin edges (the two directions of a two-way road share their shape).
// Distances are measured in a local equirectangular projection centred on
// the query point, accurate to well under a metre at snapping distances.
type Snapper struct {
	net  *Network
	tree rtree.RTreeG[uint32]
	// twin[e] is the opposite direction of edge e over the same geometry,
	// or -1 when e is a oneway (or its twin is not routable).
	twin []int32
	// usable[e] tells whether edge e may be snapped to.
	usable []bool
}

// NewSnapper indexes the edges of n for which routable returns true
// (routable nil means every edge).
func NewSnapper(n *Network, routable func(e uint32) bool) *Snapper {
	m := len(n.Edges)
	s := &Snapper{net: n, twin: make([]int32, m), usable: make([]bool, m)}
	for e := range m {
		s.twin[e] = -1
		s.usable[e] = routable == nil || routable(uint32(e))
	}
	// Pair each edge with the reverse edge over the same way between the
	// same nodes and with the same length: that is the other direction of a
	// two-way road.
	type key struct {
		a, b uint32
		way  int64
	}
	byKey := make(map[key]uint32, m)
	for e := range m {
		if !s.usable[e] {
			continue
		}
		ed := &n.Edges[e]
		rev := key{ed.To, ed.From, ed.WayID}
		if o, ok := byKey[rev]; ok && s.twin[o] < 0 && sameShapeReversed(n, o, uint32(e)) {
			s.twin[o] = int32(e)
			s.twin[e] = int32(o)
			delete(byKey, rev)
			continue
		}
		byKey[key{ed.From, ed.To, ed.WayID}] = uint32(e)
	}
	for e := range m {
		if !s.usable[e] || (s.twin[e] >= 0 && s.twin[e] < int32(e)) {
			continue
		}
		minLL, maxLL := s.bounds(uint32(e))
		s.tree.Insert(minLL, maxLL, uint32(e))
	}
	return s
}

// sameShapeReversed reports whether edge b runs over the geometry of edge a
// backwards.
func sameShapeReversed(n *Network, a, b uint32) bool {
	ea, eb := &n.Edges[a], &n.Edges[b]
	la, lb := ea.ShapeEnd-ea.ShapeStart, eb.ShapeEnd-eb.ShapeStart
	if la != lb || math.Abs(ea.Distance-eb.Distance) > 0.01*math.Max(ea.Distance, 1) {
		return false
	}
	for i := uint32(0); i < la; i++ {
		j := eb.ShapeEnd - 1 - i
		if n.ShapeLat[ea.ShapeStart+i] != n.ShapeLat[j] || n.ShapeLon[ea.ShapeStart+i] != n.ShapeLon[j] {
			return false
		}
	}
	return true
}

// point returns the i-th point of edge e's polyline in travel order:
// 0 is the From node, count-1 the To node.
func (s *Snapper) point(e uint32, i int) (lat, lon float64) {
	ed := &s.net.Edges[e]
	inner := int(ed.ShapeEnd - ed.ShapeStart)
	switch {
	case i == 0:
		return s.net.Lat[ed.From], s.net.Lon[ed.From]
	case i == inner+1:
		return s.net.Lat[ed.To], s.net.Lon[ed.To]
	default:
		k := int(ed.ShapeStart) + i - 1
		return s.net.ShapeLat[k], s.net.ShapeLon[k]
	}
}

func (s *Snapper) pointCount(e uint32) int {
	ed := &s.net.Edges[e]
	return int(ed.ShapeEnd-ed.ShapeStart) + 2
}

// bounds returns the bounding box of edge e as [lon, lat] corners.
func (s *Snapper) bounds(e uint32) (minLL, maxLL [2]float64) {
	minLL = [2]float64{math.Inf(1), math.Inf(1)}
	maxLL = [2]float64{math.Inf(-1), math.Inf(-1)}
	for i := range s.pointCount(e) {
		lat, lon := s.point(e, i)
		minLL[0], maxLL[0] = math.Min(minLL[0], lon), math.Max(maxLL[0], lon)
		minLL[1], maxLL[1] = math.Min(minLL[1], lat), math.Max(maxLL[1], lat)
	}
	return minLL, maxLL
}

// projection is a local equirectangular projection around a query point:
// x and y in metres east and north of it.
type projection struct {
	lat0, lon0, kx, ky float64
}

func newProjection(lat, lon float64) projection {
	return projection{lat0: lat, lon0: lon, kx: earthRadius * degToRad * math.Cos(lat*degToRad), ky: earthRadius * degToRad}
}

func (p projection) xy(lat, lon float64) (x, y float64) {
	return (lon - p.lon0) * p.kx, (lat - p.lat0) * p.ky
}

// boxDist is the distance in metres from the projection's origin to a box
// given in degrees.
func (p projection) boxDist(minLL, maxLL [2]float64) float64 {
	dx := math.Max(0, math.Max(minLL[0]-p.lon0, p.lon0-maxLL[0])) * p.kx
	dy := math.Max(0, math.Max(minLL[1]-p.lat0, p.lat0-maxLL[1])) * p.ky
	return math.Hypot(dx, dy)
}

// nearestOnEdge projects the origin onto edge e's polyline and returns the
// distance to it, the fraction of the edge's length before the projected
// point, and the projected point.
func (s *Snapper) nearestOnEdge(p projection, e uint32) (dist, frac, lat, lon float64) {
	n := s.pointCount(e)
	best := math.Inf(1)
	var bestAlong, total float64
	plat, plon := s.point(e, 0)
	px, py := p.xy(plat, plon)
	lat, lon = plat, plon
	for i := 1; i < n; i++ {
		qlat, qlon := s.point(e, i)
		qx, qy := p.xy(qlat, qlon)
		dx, dy := qx-px, qy-py
		seg2 := dx*dx + dy*dy
		t := 0.0
		if seg2 > 0 {
			t = math.Max(0, math.Min(1, -(px*dx+py*dy)/seg2))
		}
		cx, cy := px+t*dx, py+t*dy
		if d := math.Hypot(cx, cy); d < best {
			best = d
			seg := math.Sqrt(seg2)
			bestAlong = total + t*seg
			lat, lon = plat+t*(qlat-plat), plon+t*(qlon-plon)
		}
		total += math.Sqrt(seg2)
		plat, plon, px, py = qlat, qlon, qx, qy
	}
	if total > 0 {
		frac = bestAlong / total
	}
	return best, frac, lat, lon
}

// Snap returns the position on the nearest routable road to (lat, lon)
// within radius metres, with every directed edge a vehicle may be on there
// (one for a oneway road, two for a two-way road), and the distance in
// metres from the coordinate to the road. It fails with ErrBadCoordinate
// for coordinates outside WGS84 and with ErrNoRoad when no road is that
// close. Snap is safe for concurrent use.
func (s *Snapper) Snap(lat, lon, radius float64) (Endpoint, float64, error) {
	if math.IsNaN(lat) || math.IsNaN(lon) || lat < -90 || lat > 90 || lon < -180 || lon > 180 {
		return Endpoint{}, 0, fmt.Errorf("%w: lat %v, lon %v", ErrBadCoordinate, lat, lon)
	}
	if !(radius > 0) {
		return Endpoint{}, 0, fmt.Errorf("snap radius %v: must be positive", radius)
	}
	p := newProjection(lat, lon)
	found := false
	var best uint32
	bestDist := math.Inf(1)
	var bestFrac, bestLat, bestLon float64
	// Search boxes of growing half-width r around the point: a geometry
	// within r metres has its bounding box inside the box, so once the best
	// geometry found is within r it is the nearest of all. Candidates whose
	// box is farther than the best so far are skipped without projecting.
	for r := math.Min(snapFirstBox, radius); ; r = math.Min(4*r, radius) {
		dLat, dLon := r/p.ky, r/p.kx
		s.tree.Search([2]float64{lon - dLon, lat - dLat}, [2]float64{lon + dLon, lat + dLat},
			func(minLL, maxLL [2]float64, e uint32) bool {
				if p.boxDist(minLL, maxLL) > bestDist {
					return true
				}
				d, f, la, lo := s.nearestOnEdge(p, e)
				if d < bestDist || (d == bestDist && e < best) {
					best, bestDist, bestFrac, bestLat, bestLon = e, d, f, la, lo
				}
				return true
			})
		if bestDist <= r || r >= radius {
			found = bestDist <= radius
			break
		}
	}
	if !found {
		return Endpoint{}, 0, fmt.Errorf("%w within %g m of lat %.6f, lon %.6f", ErrNoRoad, radius, lat, lon)
	}
	ep := Endpoint{Lat: bestLat, Lon: bestLon, Points: make([]EdgePoint, 0, 2)}
	ep.Points = append(ep.Points, EdgePoint{Edge: best, Fraction: bestFrac})
	if t := s.twin[best]; t >= 0 {
		ep.Points = append(ep.Points, EdgePoint{Edge: uint32(t), Fraction: 1 - bestFrac})
	}
	return ep, bestDist, nil
}
