package graph

import (
	"fmt"
	"math"
)

// Weights are integers so that the contraction hierarchy and the reference
// Dijkstra searches agree exactly and break ties deterministically.
//
// A weight packs a duration in milliseconds and a distance in centimetres
// into one int64 as dur<<32 + dist. Adding packed weights adds both parts,
// and comparing packed weights compares them lexicographically (duration
// first, then distance) as long as the distance part of every value stays in
// (-2^31, 2^31) cm, i.e. paths shorter than 21,474 km. Partial costs at
// mid-edge endpoints may make the distance part of a label negative, which is
// why the packing is signed.
//
// Precision: each road edge's duration is rounded to the nearest millisecond
// and its distance to the nearest centimetre (both at least 1); partial
// edges are rounded per part (see Endpoint).
const (
	distBits = 32
	// maxEdgeDistCm bounds a single edge's distance so sums cannot overflow
	// the distance part for any sensible route.
	maxEdgeDistCm = 1 << 30
	// maxEdgeDurMs bounds a single edge's duration (about 24 days).
	maxEdgeDurMs = 1 << 31
	infWeight    = math.MaxInt64 / 4
)

// packWeight packs a duration in ms and a distance in cm.
func packWeight(durMs, distCm int64) int64 { return durMs<<distBits + distCm }

// unpackWeight splits a packed weight into its duration (ms) and distance
// (cm) parts, undoing packWeight also for negative distance parts.
func unpackWeight(w int64) (durMs, distCm int64) {
	durMs = (w + 1<<(distBits-1)) >> distBits
	return durMs, w - durMs<<distBits
}

// edgeWeight converts a road edge's float seconds and metres to a packed
// weight, rejecting values that are not positive and finite.
func edgeWeight(e *Edge) (int64, error) {
	if !(e.Duration > 0) || math.IsInf(e.Duration, 0) {
		return 0, fmt.Errorf("duration %v s is not positive and finite", e.Duration)
	}
	if !(e.Distance > 0) || math.IsInf(e.Distance, 0) {
		return 0, fmt.Errorf("distance %v m is not positive and finite", e.Distance)
	}
	dur := math.Round(e.Duration * 1000)
	dist := math.Round(e.Distance * 100)
	if dur >= maxEdgeDurMs {
		return 0, fmt.Errorf("duration %v s is too long", e.Duration)
	}
	if dist >= maxEdgeDistCm {
		return 0, fmt.Errorf("distance %v m is too long", e.Distance)
	}
	return packWeight(max(int64(dur), 1), max(int64(dist), 1)), nil
}

// scaleWeight returns round(f*dur)<<32 + round(f*dist) for a packed
// non-negative weight w and a fraction f in [0, 1].
func scaleWeight(w int64, f float64) int64 {
	d, l := unpackWeight(w)
	return packWeight(int64(math.Round(f*float64(d))), int64(math.Round(f*float64(l))))
}

// weightSeconds converts the duration part of a packed weight to seconds.
func weightSeconds(w int64) float64 {
	d, _ := unpackWeight(w)
	return float64(d) / 1000
}

// weightMetres converts the distance part of a packed weight to metres.
func weightMetres(w int64) float64 {
	_, l := unpackWeight(w)
	return float64(l) / 100
}
