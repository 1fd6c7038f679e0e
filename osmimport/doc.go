// Package osmimport turns an OpenStreetMap extract (.osm.pbf or .osm XML)
// into a graph.Network for cars.
//
// The import runs in stages, each timed in Stats.Stages:
//
//   - check (PBF only): the file is read into memory and every block is
//     decompressed and validated in parallel (see preparePBF); the blocks
//     are then handed to github.com/paulmach/osm/osmpbf uncompressed, so
//     that a malformed file gives an error instead of a panic in osmpbf's
//     decoder goroutines. Memory: about the uncompressed size of the file.
//   - ways: ways and relations are scanned (osmpbf SkipNodes); the car
//     profile (below) keeps routable ways and restriction relations, and
//     each kept way's name is looked up in a table of distinct names
//     (below).
//   - nodes: a second scan reads only the nodes that kept ways reference,
//     looked up by binary search in their sorted ids (no per-node map).
//     XML input is read in a single streaming pass instead, which keeps
//     every node's position until the ways are known.
//   - cut: ways are cut at missing nodes and at blocking barriers, whose
//     node is duplicated so that the roads on each side become dead ends.
//   - edges: each way piece is split at intersections, way ends, barriers
//     and restriction via nodes; the degree-2 nodes in between become the
//     edge's shape. Chains are never merged across different ways.
//     Distances are haversine sums along the shape, durations distance over
//     the profile speed; points that coincide give edges of 0.1 m.
//   - restrictions: type=restriction relations with from way, via node and
//     to way become graph.TurnRestriction rows (via-way restrictions are
//     dropped and counted).
//   - scc: everything outside the largest strongly connected component is
//     dropped and the rest renumbered; names that no remaining edge uses
//     leave the name table.
//
// # Road names
//
// Every edge carries the name of its way for maps (graph.Edge.Name, an
// index into graph.Network.Names, 0 for none): the way's name tag, or,
// when it has none, its ref (a road number such as "A28"; several refs
// separated by ";" are joined with " / "). Other tags (name:pt, alt_name,
// official_name, loc_name, int_ref, noname=yes) are ignored, and a way with
// neither name nor ref, as most service roads are, is unnamed. The value is
// cleaned for display: invalid UTF-8 becomes U+FFFD, control characters
// are dropped, runs of white space become one space, and it is cut at 255
// characters, the OSM API's limit. Each distinct name is stored once in
// Network.Names, in the order its first way comes in the input, after the
// empty name at index 0; Stats.Names counts them (Porto: 6,492 names,
// 134 kB, for 145,939 edges).
//
// # Car profile
//
// The importer decides which OSM ways a car may use, in which direction and
// at what speed, with the rules below. They follow the structure of OSRM's
// car profile (profiles/car.lua) but are our own, simpler choices.
//
// Routable ways carry highway=motorway, trunk, primary, secondary, tertiary
// (and their _link variants), unclassified, residential, living_street,
// service or road (road is graph.ClassOther). Every other highway value
// (track, path, footway, cycleway, construction, proposed, platform,
// pedestrian, ...) is skipped, as are ways without a highway tag: ferries
// (route=ferry) are therefore not imported. A routable way is also skipped
// when it carries area=yes, impassable=yes, status=impassable,
// service=emergency_access or oneway=reversible|alternating (the direction
// changes with time, so a static graph cannot represent it).
//
// Default speeds in km/h per class are motorway 90, motorway_link 45,
// trunk 85, trunk_link 40, primary 65, primary_link 30, secondary 55,
// secondary_link 25, tertiary 40, tertiary_link 20, unclassified 25,
// residential 25, living_street 10, service 15 (the values of OSRM's car
// profile) and road 20. service=parking_aisle, parking, driveway, alley and
// drive-through are driven at 5 km/h.
//
// maxspeed (and maxspeed:forward / maxspeed:backward, which win for their
// direction) is parsed as follows: plain numbers are km/h ("50",
// "50 km/h", "50 kmh"), "mph" and "knots" units are converted, "walk" is a
// 7 km/h limit, "none" lifts the limit (130 km/h is assumed on motorways
// and trunks, the class default is kept elsewhere), "signals" and
// "variable" keep the class default, and implicit values such as
// "DE:urban", "FR:rural", "PT:motorway", "GB:nsl_single",
// "RU:living_street", "zone30" or "DE:zone:30" come from a small table of
// common countries (OSM wiki, "Default speed limits"); "DE:motorway" means
// no limit. A ";"-separated list gives its lowest limit. Where a limit is
// known the car drives at 0.8 times it, because free-flow traffic rarely
// runs at the limit; the speed is thus never above the limit. A value that
// cannot be parsed leaves the class default and the way is counted in
// Stats.MaxspeedUnparsed.
//
// oneway=yes|true|1 allows only the way's direction, oneway=-1|reverse only
// the opposite one, oneway=no both. oneway is implied on highway=motorway,
// highway=motorway_link and junction=roundabout|circular unless oneway=no.
//
// Access is decided per direction from the most specific of motorcar,
// motor_vehicle, vehicle and access that has a known value (a key suffixed
// :forward or :backward wins over the plain key for its direction, e.g.
// vehicle:backward=no makes a way one-way): yes, permissive, designated,
// official and discouraged allow; destination, delivery and customers
// allow but halve the way's speed, so that routes do not cut through such
// roads unless they must start or end there; no, private, agricultural,
// forestry, emergency, psv, bus, military, permit and use_sidepath block.
// A value list ("private;delivery") takes its most permissive entry.
//
// Barrier nodes: barrier=gate, lift_gate, swing_gate, sliding_gate,
// toll_booth, cattle_grid, border_control, entrance, height_restrictor,
// sally_port, arch and no let cars through; every other barrier value
// (bollard, block, jersey_barrier, chain, kerb, fence, ...) blocks them. The
// node's own access tags (same precedence as for ways) override both: a
// bollard with motorcar=yes does not block, a gate with access=private
// does. Nodes without a barrier tag never block.
package osmimport
