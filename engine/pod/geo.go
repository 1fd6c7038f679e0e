package pod

import (
	"math"

	"github.com/lastmile/lastmile/graph"
)

// Distance returns the great-circle distance in metres between two points
// given as [longitude, latitude] in degrees (GeoJSON order), by the
// haversine formula of graph.Haversine.
func Distance(a, b [2]float64) float64 {
	return graph.Haversine(a[1], a[0], b[1], b[0])
}

// FarFrom reports whether the position a PoD was captured at (geo) is more
// than limit metres from the stop, which flags the delivery event for
// review. A position that is not a valid coordinate (NaN, infinite,
// latitude beyond ±90° or longitude beyond ±180°) cannot be shown to be
// near and is flagged too; a NaN limit flags everything. The caller decides
// what a missing position means and should not pass one.
func FarFrom(stop, geo [2]float64, limit float64) bool {
	if !validLonLat(geo) || !validLonLat(stop) {
		return true
	}
	return !(Distance(stop, geo) <= limit)
}

// validLonLat reports whether p is a finite [lon, lat] in range.
func validLonLat(p [2]float64) bool {
	lon, lat := p[0], p[1]
	return !math.IsNaN(lon) && !math.IsNaN(lat) &&
		lon >= -180 && lon <= 180 && lat >= -90 && lat <= 90
}
