// Package tiles renders the road network of a graph.Network as Mapbox Vector
// Tiles, so that the engine can serve its own basemap at
// /tiles/{z}/{x}/{y}.mvt without a tile server. It has no HTTP code: a
// handler calls Tiler.Tile and sends the bytes.
//
// # Tiling
//
// Tiles follow the XYZ scheme (the "Google" or "slippy map" scheme, also
// the one of the MVT specification §3) on the spherical Web Mercator
// projection (EPSG:3857): at zoom z the world between latitudes ±85.0511°
// is a square of 2^z × 2^z tiles, x counts from longitude −180° eastwards and
// y from the northern edge southwards. Inside a tile, geometry is given in
// integer coordinates from 0 to Extent (4096 by default), origin at the
// top-left corner, y downwards (§4.3). A point is projected to world
// coordinates in [0, 1]², scaled by 2^z·Extent, shifted by the tile origin
// and rounded down, as github.com/paulmach/orb/encoding/mvt's
// Layer.ProjectToTile does (bit for bit when Extent is a power of two), so
// that its ProjectToWGS84 inverts it to within a coordinate unit.
//
// # Content
//
// The tiles are version 2 vector tiles (Mapbox Vector Tile specification 2.1,
// https://github.com/mapbox/vector-tile-spec/tree/master/2.1) with one layer,
// LayerName ("roads"), holding one LINESTRING feature per undirected road
// piece: the two directed edges of a two-way road (same OSM way, same node
// pair, same shape reversed) give one feature, and a one-way edge gives its
// own. A feature's id is the index in Network.Edges of the edge it was drawn
// from (the one with From < To for a two-way road), its properties are
// "class", the OSM highway value of graph.RoadClass.String, "oneway", the
// integer 1 on one-way edges (absent otherwise; the line then runs in the
// direction of travel), and "name", the road's name (Network.EdgeName: the
// OSM name, else ref), a string present from zoom NameMinZoom(class) on
// (13 for motorway to secondary_link, 14 for tertiary, 15 for unclassified,
// residential and living_street, 16 for service and other) and absent on
// unnamed roads. The name is per feature, so a street cut at intersections
// repeats it on every piece; each distinct value is stored once per tile (the
// layer's value table, §4.4). Features are ordered from the least to the most
// important class, so that a style drawing the layer in one pass paints
// major roads on top. A tile with no road has no layer at all (§4.1: a layer
// SHOULD contain at least one feature); it is still a valid tile.
//
// # Generalisation
//
// So that a tile of a whole city stays small, each zoom level draws only the
// classes of MaxClassAt (no living_street, service or other below zoom 14,
// nothing below secondary_link under zoom 12); lines are clipped to the tile grown by Buffer
// units on each side, simplified with the Douglas-Peucker algorithm at a
// tolerance of Options.Tolerance units (one pixel of a tile drawn 512 pixels
// wide by default), rounded to the integer grid, cleared of repeated points
// (§4.3.3.2 forbids zero-length segments), and dropped when nothing but a
// point is left.
//
// # Cost
//
// New projects every shape point once and builds one R-tree
// (github.com/tidwall/rtree) per class band over the bounding boxes of the
// pieces, so that a tile reads only the pieces near it. Names are kept as an
// index per piece into a copy of the network's table of distinct names,
// whose strings are shared with the network, so the index costs 4 bytes per
// piece; the property maps of named features are reused from one render to
// the next rather than allocated per feature. Tiles are rendered on
// demand, gzip-compressed, and kept in an LRU cache bounded in bytes (except
// tiles without roads, which share one precomputed byte slice, so that
// requests far from the network cannot flush the cache); concurrent requests
// for the same missing tile render it once.
package tiles

import (
	"bytes"
	"cmp"
	"compress/gzip"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/paulmach/orb"
	"github.com/paulmach/orb/geojson"
	"github.com/tidwall/rtree"

	"github.com/lastmile/lastmile/graph"
)

// LayerName is the name of the only layer of the tiles (MVT spec 2.1 §4.1:
// every layer has a name).
const LayerName = "roads"

// Defaults of Options, used where a field is left at zero.
const (
	// DefaultMinZoom is the smallest zoom served: at zoom 8 a 50 km wide
	// metropolitan area spans about 150 pixels; below, roads are not
	// readable.
	DefaultMinZoom = 8
	// DefaultMaxZoom is the largest zoom served: a zoom-16 tile is about
	// 600 m wide at the equator, and clients magnify it further (overzoom).
	DefaultMaxZoom = 16
	// DefaultCacheBytes is the byte budget of the tile cache (64 MiB).
	DefaultCacheBytes = 64 << 20
	// DefaultExtent is the number of coordinate units across a tile, the
	// default of the extent field in vector_tile.proto of MVT spec 2.1.
	DefaultExtent = 4096
	// DefaultBuffer is how many coordinate units lines extend past each
	// edge of a tile: 64 of 4096 is 8 pixels of a tile drawn 512 pixels
	// wide, wider than any road stroke, so that line caps and joins are
	// drawn across tile seams.
	DefaultBuffer = 64
)

// MaxZoomLimit is the largest zoom level Options.MaxZoom may name; tile
// keys of the cache hold z, x and y in 5+24+24 bits.
const MaxZoomLimit = 24

// maxExtent bounds Options.Extent so that coordinates stay far below the
// ±2^31 limit of MVT parameter integers (§4.3.2).
const maxExtent = 1 << 16

// ErrOutOfRange is returned by Tile for a zoom outside [MinZoom, MaxZoom] or a
// column or row outside [0, 2^z).
var ErrOutOfRange = errors.New("tiles: tile out of range")

// Options configure a Tiler. The zero value selects every default.
type Options struct {
	// MinZoom is the smallest zoom level served (Tile refuses lower ones
	// with ErrOutOfRange); 0 selects DefaultMinZoom, so zoom 0 itself
	// cannot be chosen, which costs nothing: a city is a dot there.
	MinZoom int
	// MaxZoom is the largest zoom level served; 0 selects DefaultMaxZoom,
	// at most MaxZoomLimit. Tiles above it are refused with ErrOutOfRange
	// rather than overzoomed on the server: clients that know the source's
	// maxzoom (TileJSON "maxzoom", MapLibre's source maxzoom) magnify the
	// MaxZoom tiles themselves, which costs no bandwidth. Tiles at MaxZoom
	// are simplified with a quarter of Tolerance for that reason.
	MaxZoom int
	// CacheBytes is the budget in bytes of the LRU cache of compressed
	// tiles; 0 selects DefaultCacheBytes and a negative value disables the
	// cache (every call renders).
	CacheBytes int64
	// Extent is the number of integer coordinate units across a tile (MVT
	// spec 2.1 §4.1); 0 selects DefaultExtent. It must not exceed 65536.
	Extent int
	// Buffer is how many coordinate units geometries extend past each tile
	// edge; 0 selects DefaultBuffer and a negative value means no buffer.
	// It must not exceed Extent.
	Buffer int
	// Tolerance is the Douglas-Peucker tolerance in coordinate units below
	// MaxZoom (a quarter of it at MaxZoom); 0 selects Extent/512, one pixel
	// of a tile drawn 512 pixels wide, and a negative value disables
	// simplification.
	Tolerance float64
}

// withDefaults returns o with zero fields set to their defaults, or an error
// naming the first invalid field.
func (o Options) withDefaults() (Options, error) {
	if o.MinZoom == 0 {
		o.MinZoom = DefaultMinZoom
	}
	if o.MaxZoom == 0 {
		o.MaxZoom = DefaultMaxZoom
	}
	if o.CacheBytes == 0 {
		o.CacheBytes = DefaultCacheBytes
	}
	if o.Extent == 0 {
		o.Extent = DefaultExtent
	}
	switch {
	case o.Buffer == 0:
		o.Buffer = DefaultBuffer
	case o.Buffer < 0:
		o.Buffer = 0
	}
	switch {
	case o.Tolerance == 0:
		o.Tolerance = float64(o.Extent) / 512
	case o.Tolerance < 0:
		o.Tolerance = 0
	}
	switch {
	case o.MaxZoom < 0 || o.MaxZoom > MaxZoomLimit:
		return o, fmt.Errorf("tiles: MaxZoom %d outside [0, %d]", o.MaxZoom, MaxZoomLimit)
	case o.MinZoom < 0 || o.MinZoom > o.MaxZoom:
		return o, fmt.Errorf("tiles: MinZoom %d outside [0, MaxZoom %d]", o.MinZoom, o.MaxZoom)
	case o.Extent < 0 || o.Extent > maxExtent:
		return o, fmt.Errorf("tiles: Extent %d outside [1, %d]", o.Extent, maxExtent)
	case o.Buffer > o.Extent:
		return o, fmt.Errorf("tiles: Buffer %d larger than Extent %d", o.Buffer, o.Extent)
	case math.IsNaN(o.Tolerance) || math.IsInf(o.Tolerance, 0):
		return o, fmt.Errorf("tiles: Tolerance %v is not finite", o.Tolerance)
	}
	return o, nil
}

// MaxClassAt returns the least important road class drawn at zoom z (classes
// are ordered from motorway to other): up to secondary_link below zoom 12,
// up to residential below zoom 14 (no living_street, service or other),
// every class from zoom 14 on.
func MaxClassAt(z int) graph.RoadClass {
	switch {
	case z < 12:
		return graph.ClassSecondaryLink
	case z < 14:
		return graph.ClassResidential
	default:
		return graph.ClassOther
	}
}

// Classes are grouped in bands by the zoom that first draws them, one
// R-tree each, so that a low-zoom tile never visits minor roads.
const numBands = 3

// bandFirst returns the most important class of band b; band b holds the
// classes from bandFirst(b) to bandFirst(b+1)-1.
func bandFirst(b int) graph.RoadClass {
	switch b {
	case 0:
		return graph.ClassMotorway
	case 1:
		return MaxClassAt(11) + 1 // tertiary
	case 2:
		return MaxClassAt(13) + 1 // living_street
	}
	return graph.NumClasses
}

// NameMinZoom returns the first zoom whose tiles carry the "name" of roads
// of class c: 13 for the main roads (motorway to secondary_link), 14 for
// tertiary roads, 15 for unclassified, residential and living streets, 16
// for service roads and other. A street name is about 60 to 120 pixels
// long, so a minor road gets its name once its pieces are long enough on
// screen for a label to fit; tiles of lower zooms do not carry bytes no
// client would draw.
func NameMinZoom(c graph.RoadClass) int {
	switch {
	case c <= graph.ClassSecondaryLink:
		return 13
	case c <= graph.ClassTertiaryLink:
		return 14
	case c <= graph.ClassLivingStreet:
		return 15
	default:
		return 16
	}
}

// bandOf returns the band of class c.
func bandOf(c graph.RoadClass) int {
	b := 0
	for b+1 < numBands && c >= bandFirst(b+1) {
		b++
	}
	return b
}

// Tiler renders vector tiles of one road network. Its index (projected
// geometry, R-trees) is immutable after New, and its cache is safe for
// concurrent use, so a Tiler serves any number of goroutines. It keeps no
// reference to the Network it was built from, only its name strings, which
// are immutable.
//
// Invariants: piece p is drawn from edge edge[p] of the network, its points
// are pts[off[p]:off[p+1]] (at least two, in world coordinates, in travel
// order), box[p] bounds them, p is stored in trees[bandOf(class[p])], and
// names[name[p]] is its name (name[p] == 0 for an unnamed road, names[0]
// == "").
type Tiler struct {
	opt Options

	edge   []uint32          // piece -> edge index in Network.Edges
	class  []graph.RoadClass // piece -> road class
	oneway []bool            // piece -> drawn from a one-way edge
	name   []uint32          // piece -> index into names
	names  []string          // the network's Names (at least [""])
	off    []uint32          // piece -> first point; len(off) = pieces+1
	pts    []orb.Point       // Web Mercator world coordinates in [0,1]², y south
	box    []orb.Bound       // piece -> bounding box of its points
	trees  [numBands]rtree.RTreeG[uint32]

	bounds [4]float64
	center [3]float64

	// props holds the shared, read-only feature properties per class and
	// oneway flag.
	props [graph.NumClasses][2]geojson.Properties
	// empty is the compressed tile without any layer.
	empty []byte

	cache   *cache // nil when disabled
	scratch sync.Pool
	gzips   sync.Pool
	// active counts the Tile calls in progress (Seed gives way to them).
	active atomic.Int64
}

// New indexes the road network n for tiling. It returns an error for
// invalid options, a network without edges, or an inconsistent network
// (out-of-range node or shape indices, invalid class or coordinates). n is
// only read, during New.
func New(n *graph.Network, opt Options) (*Tiler, error) {
	opt, err := opt.withDefaults()
	if err != nil {
		return nil, err
	}
	if n == nil || len(n.Edges) == 0 {
		return nil, errors.New("tiles: network has no edges")
	}
	if err := validate(n); err != nil {
		return nil, fmt.Errorf("tiles: invalid network: %w", err)
	}
	t := &Tiler{opt: opt, names: []string{""}}
	if len(n.Names) > 0 {
		t.names = slices.Clone(n.Names)
	}
	keep, oneway := undirected(n)
	t.project(n, keep, oneway)
	t.bounds, t.center = extent(n, opt)
	for c := range graph.NumClasses {
		name := c.String()
		t.props[c][0] = geojson.Properties{"class": name}
		t.props[c][1] = geojson.Properties{"class": name, "oneway": 1}
	}
	if t.empty, err = t.compress(nil); err != nil {
		return nil, fmt.Errorf("tiles: empty tile: %w", err)
	}
	if opt.CacheBytes > 0 {
		t.cache = newCache(opt.CacheBytes)
	}
	return t, nil
}

// validate checks the parts of n that New relies on (the index ranges
// graph.Build checks too, coordinates and classes).
func validate(n *graph.Network) error {
	if len(n.Lat) != len(n.Lon) {
		return fmt.Errorf("%d node latitudes for %d longitudes", len(n.Lat), len(n.Lon))
	}
	if len(n.ShapeLat) != len(n.ShapeLon) {
		return fmt.Errorf("%d shape latitudes for %d longitudes", len(n.ShapeLat), len(n.ShapeLon))
	}
	for i := range n.Lat {
		if !validCoord(n.Lat[i], n.Lon[i]) {
			return fmt.Errorf("node %d at invalid lat %v lon %v", i, n.Lat[i], n.Lon[i])
		}
	}
	for i := range n.ShapeLat {
		if !validCoord(n.ShapeLat[i], n.ShapeLon[i]) {
			return fmt.Errorf("shape point %d at invalid lat %v lon %v", i, n.ShapeLat[i], n.ShapeLon[i])
		}
	}
	if len(n.Names) > 0 && n.Names[0] != "" {
		return fmt.Errorf("name 0 is %q, want the empty string (unnamed)", n.Names[0])
	}
	nodes := uint32(len(n.Lat))
	shape := uint32(len(n.ShapeLat))
	names := max(len(n.Names), 1)
	for i, e := range n.Edges {
		switch {
		case e.From >= nodes || e.To >= nodes:
			return fmt.Errorf("edge %d: node %d->%d out of range (%d nodes)", i, e.From, e.To, nodes)
		case e.ShapeStart > e.ShapeEnd || e.ShapeEnd > shape:
			return fmt.Errorf("edge %d: shape [%d, %d) out of range (%d points)", i, e.ShapeStart, e.ShapeEnd, shape)
		case e.Class >= graph.NumClasses:
			return fmt.Errorf("edge %d: invalid road class %d", i, e.Class)
		case int(e.Name) >= names:
			return fmt.Errorf("edge %d: name %d out of range (%d names)", i, e.Name, names)
		}
	}
	return nil
}

func validCoord(lat, lon float64) bool {
	return lat >= -90 && lat <= 90 && lon >= -180 && lon <= 180 // false for NaN
}

// undirected returns the edges to draw, in increasing order, and whether
// each is one-way: of two twin edges u->v and v->u on the same way whose
// shapes are each other's reverse, only the one with u < v is kept (the
// lower index for a loop); an edge without a twin is one-way.
func undirected(n *graph.Network) (keep []uint32, oneway []bool) {
	m := len(n.Edges)
	// Sort edge indices by unordered node pair and way so that twins are
	// neighbours; groups are tiny (parallel edges of one way).
	type ref struct {
		a, b uint32
		way  int64
		e    uint32
	}
	refs := make([]ref, m)
	for i, e := range n.Edges {
		a, b := min(e.From, e.To), max(e.From, e.To)
		refs[i] = ref{a, b, e.WayID, uint32(i)}
	}
	slices.SortFunc(refs, func(x, y ref) int {
		return cmp.Or(cmp.Compare(x.a, y.a), cmp.Compare(x.b, y.b), cmp.Compare(x.way, y.way), cmp.Compare(x.e, y.e))
	})
	twin := make([]int32, m)
	for i := range twin {
		twin[i] = -1
	}
	for lo := 0; lo < m; {
		hi := lo + 1
		for hi < m && refs[hi].a == refs[lo].a && refs[hi].b == refs[lo].b && refs[hi].way == refs[lo].way {
			hi++
		}
		for i := lo; i < hi; i++ {
			ei := refs[i].e
			if twin[ei] >= 0 {
				continue
			}
			for j := i + 1; j < hi; j++ {
				ej := refs[j].e
				if twin[ej] < 0 && reverseTwins(n, ei, ej) {
					twin[ei], twin[ej] = int32(ej), int32(ei)
					break
				}
			}
		}
		lo = hi
	}
	for i := range m {
		e := n.Edges[i]
		switch t := twin[i]; {
		case t < 0:
			keep = append(keep, uint32(i))
			oneway = append(oneway, true)
		case e.From < e.To || (e.From == e.To && int32(i) < t):
			keep = append(keep, uint32(i))
			oneway = append(oneway, false)
		}
	}
	return keep, oneway
}

// reverseTwins reports whether edges a and b run between the same nodes in
// opposite directions over the same shape.
func reverseTwins(n *graph.Network, a, b uint32) bool {
	ea, eb := n.Edges[a], n.Edges[b]
	if ea.From != eb.To || ea.To != eb.From || ea.ShapeEnd-ea.ShapeStart != eb.ShapeEnd-eb.ShapeStart {
		return false
	}
	k := int(ea.ShapeEnd - ea.ShapeStart)
	for i := range k {
		p, q := int(ea.ShapeStart)+i, int(eb.ShapeEnd)-1-i
		if n.ShapeLat[p] != n.ShapeLat[q] || n.ShapeLon[p] != n.ShapeLon[q] {
			return false
		}
	}
	return true
}

// mercator returns the Web Mercator world coordinates in [0, 1]² of a WGS84
// position, y growing southwards. The formula is the one of orb's
// internal/mercator.ToPlanar at level 0, so that scaling by a power of two
// gives bit-identical results to mvt.Layer.ProjectToTile.
func mercator(lon, lat float64) orb.Point {
	x := lon/360.0 + 0.5
	siny := math.Sin(lat * math.Pi / 180.0)
	var y float64
	switch {
	case siny > 0.9999:
		y = 0
	case siny < -0.9999:
		y = 1
	default:
		y = 0.5 + 0.5*math.Log((1.0+siny)/(1.0-siny))/(-2*math.Pi)
	}
	return orb.Point{x, y}
}

// project fills the piece arrays and R-trees from the kept edges.
func (t *Tiler) project(n *graph.Network, keep []uint32, oneway []bool) {
	npts := 0
	for _, e := range keep {
		ed := n.Edges[e]
		npts += 2 + int(ed.ShapeEnd-ed.ShapeStart)
	}
	t.edge = keep
	t.oneway = oneway
	t.class = make([]graph.RoadClass, len(keep))
	t.name = make([]uint32, len(keep))
	t.off = make([]uint32, 1, len(keep)+1)
	t.pts = make([]orb.Point, 0, npts)
	t.box = make([]orb.Bound, len(keep))
	for p, e := range keep {
		ed := n.Edges[e]
		start := len(t.pts)
		t.pts = append(t.pts, mercator(n.Lon[ed.From], n.Lat[ed.From]))
		for i := ed.ShapeStart; i < ed.ShapeEnd; i++ {
			t.pts = append(t.pts, mercator(n.ShapeLon[i], n.ShapeLat[i]))
		}
		t.pts = append(t.pts, mercator(n.Lon[ed.To], n.Lat[ed.To]))
		t.off = append(t.off, uint32(len(t.pts)))
		b := orb.Bound{Min: t.pts[start], Max: t.pts[start]}
		for _, q := range t.pts[start+1:] {
			b = b.Extend(q)
		}
		t.box[p] = b
		t.class[p] = ed.Class
		t.name[p] = ed.Name
		t.trees[bandOf(ed.Class)].Insert(b.Min, b.Max, uint32(p))
	}
}

// extent returns the bounds [minLon, minLat, maxLon, maxLat] of the nodes
// and shape points of n, and a centre [lon, lat, zoom]: the median node
// position (robust to a few far-reaching roads) and the zoom at which the
// bounds fit in a 1024-pixel view of 512-pixel tiles, within [MinZoom,
// MaxZoom].
func extent(n *graph.Network, opt Options) (bounds [4]float64, center [3]float64) {
	bounds = [4]float64{math.Inf(1), math.Inf(1), math.Inf(-1), math.Inf(-1)}
	add := func(lat, lon float64) {
		bounds[0], bounds[1] = min(bounds[0], lon), min(bounds[1], lat)
		bounds[2], bounds[3] = max(bounds[2], lon), max(bounds[3], lat)
	}
	for i := range n.Lat {
		add(n.Lat[i], n.Lon[i])
	}
	for i := range n.ShapeLat {
		add(n.ShapeLat[i], n.ShapeLon[i])
	}
	lons := slices.Clone(n.Lon)
	lats := slices.Clone(n.Lat)
	slices.Sort(lons)
	slices.Sort(lats)
	lo, hi := mercator(bounds[0], bounds[3]), mercator(bounds[2], bounds[1])
	span := max(hi[0]-lo[0], hi[1]-lo[1])
	z := opt.MaxZoom
	if span > 0 {
		// 512·2^z·span ≤ 1024 pixels.
		z = int(math.Floor(math.Log2(2 / span)))
	}
	z = min(max(z, opt.MinZoom), opt.MaxZoom)
	return bounds, [3]float64{lons[len(lons)/2], lats[len(lats)/2], float64(z)}
}

// Bounds returns [minLon, minLat, maxLon, maxLat] in degrees of the whole
// network (nodes and shape points), the "bounds" of TileJSON 3.0.0.
func (t *Tiler) Bounds() [4]float64 { return t.bounds }

// Center returns [lon, lat, zoom], the "center" of TileJSON 3.0.0: the
// median node position, which lies in the dense part of the network even
// when a few roads reach far out, and the zoom at which the whole network
// fits a 1024-pixel view, clamped to [MinZoom, MaxZoom].
func (t *Tiler) Center() [3]float64 { return t.center }

// Zooms returns the smallest and largest zoom levels served, after
// defaults (TileJSON "minzoom" and "maxzoom").
func (t *Tiler) Zooms() (minZoom, maxZoom int) { return t.opt.MinZoom, t.opt.MaxZoom }

// Pieces returns the number of undirected road pieces indexed: the number of
// features of all tiles of one zoom level at most (MaxZoom draws every
// class), counting a piece cut by tile edges once.
func (t *Tiler) Pieces() int { return len(t.edge) }

// Tile returns the gzip-compressed vector tile (MVT protobuf) of column x and
// row y at zoom z, ready to be sent with Content-Type
// application/vnd.mapbox-vector-tile (MVT spec 2.1 §2.2) and
// Content-Encoding gzip. A tile without roads is a small valid tile, not an
// error. Tiles outside the network's zoom range or the 2^z × 2^z grid give
// ErrOutOfRange (wrapped). The returned slice is shared with the cache and
// other callers and must not be modified.
func (t *Tiler) Tile(z, x, y int) ([]byte, error) {
	if z < t.opt.MinZoom || z > t.opt.MaxZoom || x < 0 || y < 0 || x >= 1<<z || y >= 1<<z {
		return nil, fmt.Errorf("%w: %d/%d/%d (zoom %d..%d)", ErrOutOfRange, z, x, y, t.opt.MinZoom, t.opt.MaxZoom)
	}
	t.active.Add(1)
	defer t.active.Add(-1)
	return t.tile(z, x, y)
}

// tile is Tile for a tile in range.
func (t *Tiler) tile(z, x, y int) ([]byte, error) {
	if t.cache == nil {
		return t.render(z, x, y)
	}
	return t.cache.get(cacheKey(z, x, y), func() ([]byte, bool, error) { return t.renderEntry(z, x, y) })
}

// cacheKey is the cache key of a tile.
func cacheKey(z, x, y int) uint64 { return uint64(z)<<48 | uint64(x)<<24 | uint64(y) }

// renderEntry renders a tile for the cache, which keeps it unless it is the
// empty tile: empty tiles are cheap to render and shared, so the cache is
// kept for real ones.
func (t *Tiler) renderEntry(z, x, y int) ([]byte, bool, error) {
	b, err := t.render(z, x, y)
	return b, err == nil && !sameSlice(b, t.empty), err
}

func sameSlice(a, b []byte) bool {
	return len(a) == len(b) && (len(a) == 0 || &a[0] == &b[0])
}

// CacheStats describes the tile cache.
type CacheStats struct {
	// Hits counts Tile calls answered from the cache or by waiting for
	// the render of the same tile by another call; Misses counts renders.
	Hits, Misses int64
	Entries      int   // tiles held
	Bytes        int64 // bytes held, counting a fixed overhead per tile
	Budget       int64 // Options.CacheBytes; 0 when the cache is disabled
}

// CacheStats returns the counters of the tile cache (all zero when it is
// disabled).
func (t *Tiler) CacheStats() CacheStats {
	if t.cache == nil {
		return CacheStats{}
	}
	return t.cache.stats()
}

// compress gzips an encoded tile with a pooled writer and returns a copy
// that owns its memory.
func (t *Tiler) compress(raw []byte) ([]byte, error) {
	var buf bytes.Buffer
	buf.Grow(len(raw)/2 + 64)
	zw, _ := t.gzips.Get().(*gzip.Writer)
	if zw == nil {
		var err error
		if zw, err = gzip.NewWriterLevel(&buf, gzipLevel); err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
	} else {
		zw.Reset(&buf)
	}
	if _, err := zw.Write(raw); err != nil {
		return nil, fmt.Errorf("gzip: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("gzip: %w", err)
	}
	t.gzips.Put(zw)
	return buf.Bytes(), nil
}

// gzipLevel trades tile size for rendering time.
const gzipLevel = gzip.BestSpeed
