package engine

import (
	"errors"
	"fmt"
	"time"

	"github.com/lastmile/lastmile/graph"
)

// ClosedAhead reports where a vehicle at pos, driving through stops in
// order, meets a road closed at now: the index of the first stop whose
// leg enters a closed edge, or -1 when none does. The legs are routed on
// the free-flow graph, the road the vehicle would take were nothing
// closed, not on the live one, which already goes around the closures.
// A named vehicle starts from its map-matched position when pos is its
// latest ping's, as in ETA.
//
// A closure's ETA shift alone does not single out the vans it delays: on
// the simulated Porto days, at the first update after a closure that
// cost its van 63-93 s, that van's stops moved by at most 23 s and the
// stops of vans the closure does not touch by 0-78 s, with traffic.
func (l *Live) ClosedAhead(vehicle string, pos LonLat, stops []LonLat, now time.Time) (int, error) {
	if l.closures.Load() == 0 || len(stops) == 0 {
		return -1, nil
	}
	start := l.matchedStart(vehicle, pos)
	pts := make([]LonLat, 0, len(stops)+1)
	if start == nil {
		pts = append(pts, pos)
	}
	pts = append(pts, stops...)
	eps, err := l.snapCached(pts)
	if err != nil {
		return -1, err
	}
	if start != nil {
		eps = append([]graph.Endpoint{*start}, eps...)
	}
	q := l.r.base.query()
	defer l.r.base.release(q)
	for i := range stops {
		rt, err := q.Route(eps[i], eps[i+1])
		if errors.Is(err, graph.ErrNoRoute) {
			continue // no road to it, closed or not
		}
		if err != nil {
			return -1, fmt.Errorf("closures ahead: leg %d: %w", i, err)
		}
		if l.traffic.ClosedAt(rt.Edges, now) >= 0 {
			return i, nil
		}
	}
	return -1, nil
}
