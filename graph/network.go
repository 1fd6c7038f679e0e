package graph

import "math"

// Network is the road network as an importer hands it over, before
// preparation: intersections, directed road edges with their shape, and
// turn restrictions. It is the only thing the graph package needs from an
// importer such as osmimport, so that the graph never depends on OSM.
//
// Chains of degree-2 nodes are already contracted into single edges whose
// intermediate points are kept in the shape arrays, so Lat/Lon hold only
// intersections, dead ends, barrier ends and turn-restriction via nodes.
type Network struct {
	// Lat and Lon give each node's position in WGS84 degrees; the node id is the index.
	Lat, Lon []float64
	// OSMNode is the OSM id of each node, kept for diagnostics (0 where a
	// node was synthesised, e.g. the second copy of a barrier node).
	OSMNode []int64

	// Edges are directed: a two-way road gives two edges, one each way.
	Edges []Edge

	// ShapeLat and ShapeLon hold the intermediate points of all edges,
	// concatenated; Edge.ShapeStart/ShapeEnd index into them.
	ShapeLat, ShapeLon []float64

	// Restrictions are turn restrictions at via nodes.
	Restrictions []TurnRestriction

	// Names is the table of road names that Edge.Name indexes, each name
	// once (osmimport takes a way's name tag, else its ref). Names[0] is
	// the empty string and stands for an unnamed road; a network without
	// names may leave Names empty, and then every Edge.Name is 0. The
	// strings are shared: edges hold 4-byte indices, not strings.
	Names []string
}

// EdgeName returns the name of edge e, "" for an unnamed road. It relies
// on the invariants that validation checks (e in range, Edge.Name below
// len(Names) unless Names is empty).
func (n *Network) EdgeName(e uint32) string {
	if i := n.Edges[e].Name; i != 0 {
		return n.Names[i]
	}
	return ""
}

// Edge is one directed road edge between two nodes of a Network.
type Edge struct {
	// From and To are node ids.
	From, To uint32
	// Distance is the length along the shape in metres (> 0).
	Distance float64
	// Duration is the free-flow travel time in seconds (> 0).
	Duration float64
	// WayID is the OSM way the edge lies on, so that traffic given per way
	// can be mapped onto edges.
	WayID int64
	// Class is the road class (highway=*) of the way.
	Class RoadClass
	// Name is the index of the way's name in Network.Names, 0 when the road
	// has none. It fills padding after Class: an Edge is 48 bytes with or
	// without it.
	Name uint32
	// ShapeStart and ShapeEnd delimit the intermediate points of the edge in
	// Network.ShapeLat/ShapeLon, [ShapeStart, ShapeEnd), listed in travel
	// order from From to To, endpoints excluded (they are the nodes).
	ShapeStart, ShapeEnd uint32
}

// TurnRestriction forbids or prescribes the turn from one edge onto another
// at the node between them (Edges[From].To == Edges[To].From, the via node).
type TurnRestriction struct {
	// From and To are edge indices into Network.Edges.
	From, To uint32
	// Only marks an only_* restriction: coming from From, To is the only
	// edge that may be taken (several Only rows on the same From edge allow
	// each of their To edges). Otherwise it is a no_* restriction: the turn
	// From -> To is forbidden.
	Only bool
}

// RoadClass is the OSM highway class of an edge, used for default speeds,
// for traffic that borrows congestion from roads of the same class, and for
// statistics.
type RoadClass uint8

// Road classes, from the fastest to the slowest.
const (
	ClassMotorway RoadClass = iota
	ClassMotorwayLink
	ClassTrunk
	ClassTrunkLink
	ClassPrimary
	ClassPrimaryLink
	ClassSecondary
	ClassSecondaryLink
	ClassTertiary
	ClassTertiaryLink
	ClassUnclassified
	ClassResidential
	ClassLivingStreet
	ClassService
	ClassOther
	// NumClasses is the number of road classes.
	NumClasses
)

var classNames = [NumClasses]string{
	"motorway", "motorway_link", "trunk", "trunk_link", "primary", "primary_link",
	"secondary", "secondary_link", "tertiary", "tertiary_link", "unclassified",
	"residential", "living_street", "service", "other",
}

// String returns the OSM highway value of the class.
func (c RoadClass) String() string {
	if c < NumClasses {
		return classNames[c]
	}
	return "invalid"
}

// EarthRadius is the mean Earth radius in metres (IUGG), used for
// great-circle distances.
const EarthRadius = 6371008.8

// Haversine returns the great-circle distance in metres between two points
// given in degrees (haversine formula, R. W. Sinnott, "Virtues of the
// Haversine", Sky and Telescope 68(2), 1984). One definition for the
// importer, the matcher, the server and the benchmarks.
func Haversine(lat1, lon1, lat2, lon2 float64) float64 {
	const rad = math.Pi / 180
	s1 := math.Sin((lat2 - lat1) * rad / 2)
	s2 := math.Sin((lon2 - lon1) * rad / 2)
	a := s1*s1 + math.Cos(lat1*rad)*math.Cos(lat2*rad)*s2*s2
	return 2 * EarthRadius * math.Asin(math.Sqrt(min(a, 1)))
}
