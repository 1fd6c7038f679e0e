package dispatch

import (
	"cmp"
	"slices"
	"sync"

	"github.com/lastmile/lastmile/engine/store"
)

// runCache keeps, per vehicle, the route state that this process's last
// batch of pings or status update committed: the vehicle row with the
// version the commit gave it, its route and its stops exactly as stored
// (cachedRun). A batch or a status update starts from it instead of
// reading three tables; its transaction still locks the vehicle and
// compares versions, so an entry made stale by any other writer (a window
// change, a re-plan, a second replica) costs a read in the transaction,
// never a wrong result. At most max entries are kept (an arbitrary one is
// dropped when full). owner maps the id of every stop of a kept entry to
// the entry's vehicle, for StopVehicle: a status update, a driver's upload
// or message looks up its stop's vehicle without a query (a status
// update's transaction checks it).
type runCache struct {
	mu    sync.Mutex
	m     map[string]cachedRun
	owner map[int64]string
	max   int
}

// cachedRun is one vehicle's stored route state. Its slices are never
// modified once cached: users copy them.
type cachedRun struct {
	veh   store.Vehicle
	route store.Route
	stops []store.Stop
}

func newRunCache(max int) *runCache {
	return &runCache{m: map[string]cachedRun{}, owner: map[int64]string{}, max: max}
}

// vehicleOf returns the vehicle of the kept entry that holds the stop.
func (c *runCache) vehicleOf(stop int64) (string, bool) {
	c.mu.Lock()
	v, ok := c.owner[stop]
	c.mu.Unlock()
	return v, ok
}

// removeLocked forgets the vehicle's entry and its stops' owner.
func (c *runCache) removeLocked(vehicle string) {
	for _, st := range c.m[vehicle].stops {
		if c.owner[st.ID] == vehicle {
			delete(c.owner, st.ID)
		}
	}
	delete(c.m, vehicle)
}

// get returns a copy of the vehicle's entry.
func (c *runCache) get(vehicle string) (cachedRun, bool) {
	c.mu.Lock()
	e, ok := c.m[vehicle]
	c.mu.Unlock()
	if ok {
		e.stops = slices.Clone(e.stops)
	}
	return e, ok
}

// put keeps e unless a newer version of the vehicle is kept already; a
// route that is done leaves the cache.
func (c *runCache) put(e cachedRun) {
	c.mu.Lock()
	defer c.mu.Unlock()
	old, ok := c.m[e.veh.ID]
	if ok && old.veh.Version >= e.veh.Version {
		return
	}
	if e.route.Status == store.RouteDone {
		c.removeLocked(e.veh.ID)
		return
	}
	if ok && slices.EqualFunc(old.stops, e.stops, func(a, b store.Stop) bool { return a.ID == b.ID }) {
		c.m[e.veh.ID] = e // the same stops: their owner stays
		return
	}
	c.removeLocked(e.veh.ID)
	if !ok && len(c.m) >= c.max {
		for k := range c.m {
			c.removeLocked(k)
			break
		}
	}
	c.m[e.veh.ID] = e
	for _, st := range e.stops {
		c.owner[st.ID] = e.veh.ID
	}
}

// drop forgets the vehicle (its state is unknown after a failed write).
func (c *runCache) drop(vehicle string) {
	c.mu.Lock()
	c.removeLocked(vehicle)
	c.mu.Unlock()
}

// keepRuns puts the runs a transaction just committed in the cache (what
// they wrote, run.persisted), or forgets their vehicles when that is not
// known.
func (s *Service) keepRuns(runs []*routeRun) {
	for _, run := range runs {
		if e, ok := run.persisted(); ok {
			s.runs.put(e)
		} else {
			s.runs.drop(run.veh.ID)
		}
	}
}

// persistedRun is run.persisted, false for a nil run.
func persistedRun(run *routeRun) (cachedRun, bool) {
	if run == nil {
		return cachedRun{}, false
	}
	return run.persisted()
}

// persisted returns what save wrote for the run, as the store now holds
// it (the same as loadRun would read after the commit), and whether it is
// known: the dirty stops whole, the others as loaded with the ETAs
// SetRouteETAs wrote, in position order; the route as written; the vehicle with
// the version PutVehicle gave it.
func (run *routeRun) persisted() (cachedRun, bool) {
	byID := make(map[int64]int, len(run.loaded))
	for i, st := range run.loaded {
		byID[st.ID] = i
	}
	stops := make([]store.Stop, 0, len(run.stops))
	for i, st := range run.stops {
		if run.dirty[i] {
			stops = append(stops, st)
			continue
		}
		k, ok := byID[st.ID]
		if !ok {
			return cachedRun{}, false
		}
		o := run.loaded[k]
		if run.writesETAs() && st.ETA != 0 {
			o.ETA, o.P10, o.P90 = st.ETA, st.P10, st.P90
		}
		stops = append(stops, o)
	}
	slices.SortStableFunc(stops, func(a, b store.Stop) int {
		return cmp.Or(cmp.Compare(a.Position, b.Position), cmp.Compare(a.ID, b.ID))
	})
	route := run.loadedRoute
	if run.routeWritten() {
		route = run.route
	}
	veh := run.veh
	veh.Version++
	return cachedRun{veh: veh, route: route, stops: stops}, true
}
