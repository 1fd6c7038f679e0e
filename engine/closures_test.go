package engine

import (
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"
)

// TestClosedAhead closes the way in the middle of a route and asks, for
// vans at random places with random stops, which leg first enters it:
// the answer must be the first leg whose free-flow route (found before
// the closure) holds one of the way's edges, -1 when none does, and -1
// for all once the closure is over.
func TestClosedAhead(t *testing.T) {
	ts, clock := startLive(t)
	a, b, r0 := longRoute(t, ts)
	road := ts.R.G.Road
	way := road.Edges[r0.Edges[len(r0.Edges)/2]].WayID
	closed := map[uint32]bool{}
	for e, ed := range road.Edges {
		if ed.WayID == way {
			closed[uint32(e)] = true
		}
	}
	type tour struct {
		pos   LonLat
		stops []LonLat
		want  int
	}
	// The first leg whose free-flow route enters the way.
	first := func(pos LonLat, stops []LonLat) int {
		from := pos
		for i, s := range stops {
			r := ts.currentRoute(t, from, s)
			if slices.ContainsFunc(r.Edges, func(e uint32) bool { return closed[e] }) {
				return i
			}
			from = s
		}
		return -1
	}
	tours := []tour{{pos: a, stops: []LonLat{b}}}
	for seed := uint64(1); seed <= 20; seed++ {
		pts := roadPoints(ts.R, 4, 1000+seed)
		tours = append(tours, tour{pos: pts[0], stops: pts[1:]})
		// Through a and b as the third and fourth stop.
		tours = append(tours, tour{pos: pts[0], stops: []LonLat{pts[1], pts[2], a, b}})
	}
	later, none := 0, 0
	for i := range tours {
		tours[i].want = first(tours[i].pos, tours[i].stops)
		switch {
		case tours[i].want > 0:
			later++
		case tours[i].want < 0:
			none++
		}
	}
	if later == 0 || none == 0 {
		t.Fatalf("%d tours enter the way after their first leg, %d never: the test needs both", later, none)
	}
	t.Logf("%d tours: %d enter the way after their first leg, %d never", len(tours), later, none)
	now := clock.Now()
	for _, tr := range tours[:3] {
		if got, err := ts.live.ClosedAhead("", tr.pos, tr.stops, now); got != -1 || err != nil {
			t.Fatalf("before any closure: %d, %v", got, err)
		}
	}
	body := fmt.Sprintf(`{"observations":[],"closures":[{"way_id":%d,"until":%d}]}`, way, now.Unix()+300)
	if ans := ts.do(t, "POST", "/v1/traffic?wait=true", []byte(body)); ans.status != 200 {
		t.Fatalf("traffic: %d %s", ans.status, ans.body)
	} else {
		var tr TrafficResponse
		if err := json.Unmarshal(ans.body, &tr); err != nil || tr.Accepted != 1 {
			t.Fatalf("traffic answer %s (%v)", ans.body, err)
		}
	}
	for i, tr := range tours {
		got, err := ts.live.ClosedAhead("", tr.pos, tr.stops, now)
		if err != nil || got != tr.want {
			t.Errorf("tour %d: closed ahead at leg %d (%v), want %d", i, got, err, tr.want)
		}
	}
	// Over: nothing is closed.
	over := now.Add(301 * time.Second)
	for i, tr := range tours {
		if got, err := ts.live.ClosedAhead("", tr.pos, tr.stops, over); got != -1 || err != nil {
			t.Errorf("tour %d after the closure: %d, %v", i, got, err)
		}
	}
}
