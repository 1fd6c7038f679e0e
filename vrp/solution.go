package vrp

import "fmt"

// Solution is the solver's answer in VROOM's output format (plus a Reason on
// unassigned tasks).
type Solution struct {
	// Code is 0 on success (VROOM: 1 internal error, 2 input error, 3 routing error).
	Code       int          `json:"code"`
	Error      string       `json:"error,omitempty"`
	Summary    Summary      `json:"summary"`
	Unassigned []Unassigned `json:"unassigned"`
	Routes     []Route      `json:"routes"`
}

// ComputingTimes are wall-clock milliseconds spent per phase.
type ComputingTimes struct {
	Loading int64 `json:"loading"`
	Solving int64 `json:"solving"`
	Routing int64 `json:"routing"`
}

// Violation is present for VROOM compatibility; our solutions never violate
// constraints, so the lists are always empty.
type Violation struct {
	Cause    string `json:"cause"`
	Duration int64  `json:"duration,omitempty"`
}

// Summary aggregates all routes.
type Summary struct {
	Cost           int64          `json:"cost"`
	Routes         int            `json:"routes"`
	Unassigned     int            `json:"unassigned"`
	Delivery       []int64        `json:"delivery"`
	Pickup         []int64        `json:"pickup"`
	Setup          int64          `json:"setup"`
	Service        int64          `json:"service"`
	Duration       int64          `json:"duration"`
	WaitingTime    int64          `json:"waiting_time"`
	Priority       int64          `json:"priority"`
	Distance       int64          `json:"distance"`
	Violations     []Violation    `json:"violations"`
	ComputingTimes ComputingTimes `json:"computing_times"`
}

// Unassigned is a task left out of every route, with the reason.
type Unassigned struct {
	ID            uint64      `json:"id"`
	Type          string      `json:"type"` // job, pickup or delivery
	Location      *[2]float64 `json:"location,omitempty"`
	LocationIndex *int        `json:"location_index,omitempty"`
	Description   string      `json:"description,omitempty"`
	// Reason is our extension: why no route could take the task.
	Reason string `json:"reason"`
}

// Route is one vehicle's plan. Duration is the total travel time, as in VROOM.
type Route struct {
	Vehicle     uint64      `json:"vehicle"`
	Cost        int64       `json:"cost"`
	Delivery    []int64     `json:"delivery"`
	Pickup      []int64     `json:"pickup"`
	Setup       int64       `json:"setup"`
	Service     int64       `json:"service"`
	Duration    int64       `json:"duration"`
	WaitingTime int64       `json:"waiting_time"`
	Priority    int64       `json:"priority"`
	Distance    int64       `json:"distance"`
	Steps       []Step      `json:"steps"`
	Violations  []Violation `json:"violations"`
	Description string      `json:"description,omitempty"`
}

// Step is one event of a route. Duration and Distance are cumulative travel
// time and distance on arrival; Load is the load after the step.
type Step struct {
	Type          string      `json:"type"` // start, job, pickup, delivery, break, end
	ID            *uint64     `json:"id,omitempty"`
	Job           *uint64     `json:"job,omitempty"`
	LocationIndex *int        `json:"location_index,omitempty"`
	Location      *[2]float64 `json:"location,omitempty"`
	Arrival       int64       `json:"arrival"`
	Duration      int64       `json:"duration"`
	Setup         int64       `json:"setup"`
	Service       int64       `json:"service"`
	WaitingTime   int64       `json:"waiting_time"`
	Load          []int64     `json:"load"`
	Distance      int64       `json:"distance"`
	Violations    []Violation `json:"violations"`
	Description   string      `json:"description,omitempty"`
}

func roundDiv(a, b int64) int64 { return (a + b/2) / b }

func (m *model) locPtrs(l int32, loc Location) (*int, *[2]float64) {
	if l < 0 {
		return nil, nil
	}
	i := int(l)
	var c *[2]float64
	if loc.HasCoord {
		cc := loc.Coord
		c = &cc
	}
	return &i, c
}

func (m *model) nodeInfo(n int32) (id uint64, typ, desc string, loc Location) {
	switch m.kind[n] {
	case kindJob:
		j := &m.p.Jobs[m.task[n]]
		return j.ID, "job", j.Description, j.Location
	case kindPickup:
		s := &m.p.Shipments[m.task[n]].Pickup
		return s.ID, "pickup", s.Description, s.Location
	default:
		s := &m.p.Shipments[m.task[n]].Delivery
		return s.ID, "delivery", s.Description, s.Location
	}
}

// buildRoute turns a feasible task sequence into a VROOM route.
func (m *model) buildRoute(v int, seq []int32, w *work) (Route, error) {
	if !m.simulate(v, seq, w, true) {
		return Route{}, fmt.Errorf("internal: route of vehicle %d infeasible", m.p.Vehicles[v].ID)
	}
	vi := &m.veh[v]
	pv := &m.p.Vehicles[v]
	t := &m.types[vi.typ]
	D := m.dims
	B := len(vi.breaks)
	nPre := make([]int, len(seq)+1)
	nPost := make([]int, len(seq)+1)
	if B > 0 {
		m.breakPlan(v, len(seq), w, nPre, nPost)
	}
	r := Route{Vehicle: pv.ID, Description: pv.Description, Delivery: make([]int64, D), Pickup: make([]int64, D), Violations: []Violation{}}
	load := make([]int64, D)
	for _, n := range seq {
		for d := 0; d < D; d++ {
			load[d] += m.del[int(n)*D+d]
			if m.kind[n] == kindJob {
				r.Delivery[d] += m.del[int(n)*D+d]
				r.Pickup[d] += m.pick[int(n)*D+d]
			} else if m.kind[n] == kindPickup {
				r.Pickup[d] += m.pick[int(n)*D+d]
			} else {
				r.Delivery[d] -= m.pick[int(n)*D+d]
			}
		}
	}
	cp := func() []int64 { return append([]int64{}, load...) }
	tm := vi.tw.Start
	var cumDur, cumDist, costSum int64
	prev := vi.start
	var prevLoc Location = pv.Start
	if vi.start >= 0 {
		li, lc := m.locPtrs(vi.start, pv.Start)
		r.Steps = append(r.Steps, Step{Type: "start", LocationIndex: li, Location: lc, Arrival: tm, Load: cp(), Violations: []Violation{}})
	}
	bk := 0
	addBreak := func(l int32, lo Location) {
		br := &vi.breaks[bk]
		s, _ := earliest(br.TimeWindows, tm)
		id := pv.Breaks[bk].ID
		li, lc := m.locPtrs(l, lo)
		r.Steps = append(r.Steps, Step{Type: "break", ID: &id, LocationIndex: li, Location: lc, Arrival: tm, Duration: cumDur, Service: br.Service, WaitingTime: s - tm, Load: cp(), Distance: cumDist, Violations: []Violation{}, Description: br.Description})
		r.Service += br.Service
		r.WaitingTime += s - tm
		tm = s + br.Service
		bk++
	}
	for g := 0; g <= len(seq); g++ {
		var l int32
		var lo Location
		if g < len(seq) {
			l = m.loc[seq[g]]
			_, _, _, lo = m.nodeInfo(seq[g])
		} else {
			l, lo = vi.end, pv.End
		}
		for k := 0; k < nPre[g]; k++ {
			addBreak(prev, prevLoc)
		}
		dl, dlo := l, lo
		if dl < 0 && g == len(seq) {
			dl, dlo = prev, prevLoc
		}
		du, ds, c := m.travel(t, prev, dl)
		tm += du
		cumDur += du
		cumDist += ds
		costSum += c
		for k := 0; k < nPost[g]; k++ {
			addBreak(dl, dlo)
		}
		if g == len(seq) {
			if vi.end >= 0 {
				li, lc := m.locPtrs(vi.end, pv.End)
				r.Steps = append(r.Steps, Step{Type: "end", LocationIndex: li, Location: lc, Arrival: tm, Duration: cumDur, Load: cp(), Distance: cumDist, Violations: []Violation{}})
			}
			break
		}
		n := seq[g]
		id, typ, desc, _ := m.nodeInfo(n)
		s, _ := earliest(m.tw(n), tm)
		st := Step{Type: typ, ID: &id, Arrival: tm, Duration: cumDur, Service: m.serv[n], WaitingTime: s - tm, Distance: cumDist, Violations: []Violation{}, Description: desc}
		if typ == "job" {
			jid := id
			st.Job = &jid
		}
		st.LocationIndex, st.Location = m.locPtrs(l, lo)
		if prev != l {
			st.Setup = m.setup[n]
		}
		for d := 0; d < D; d++ {
			load[d] += m.pick[int(n)*D+d] - m.del[int(n)*D+d]
		}
		st.Load = cp()
		r.Setup += st.Setup
		r.Service += st.Service
		r.WaitingTime += st.WaitingTime
		r.Priority += m.prio[n]
		tm = s + st.Setup + st.Service
		r.Steps = append(r.Steps, st)
		prev, prevLoc = l, lo
	}
	r.Duration = cumDur
	r.Distance = cumDist
	r.Cost = pv.Costs.Fixed + roundDiv(costSum, costScale)
	return r, nil
}

// buildSolution assembles the output from per-vehicle sequences and the
// reasons of unassigned nodes (indexed by node; "" for assigned).
func (m *model) buildSolution(routes [][]int32, reasons []string) (*Solution, error) {
	w := newWork(m)
	s := &Solution{Routes: []Route{}, Unassigned: []Unassigned{}}
	D := m.dims
	s.Summary.Delivery = make([]int64, D)
	s.Summary.Pickup = make([]int64, D)
	s.Summary.Violations = []Violation{}
	for v, seq := range routes {
		if len(seq) == 0 {
			continue
		}
		r, err := m.buildRoute(v, seq, w)
		if err != nil {
			return nil, err
		}
		s.Routes = append(s.Routes, r)
		sm := &s.Summary
		sm.Cost += r.Cost
		sm.Routes++
		for d := 0; d < D; d++ {
			sm.Delivery[d] += r.Delivery[d]
			sm.Pickup[d] += r.Pickup[d]
		}
		sm.Setup += r.Setup
		sm.Service += r.Service
		sm.Duration += r.Duration
		sm.WaitingTime += r.WaitingTime
		sm.Priority += r.Priority
		sm.Distance += r.Distance
	}
	for n := int32(0); n < int32(m.nNodes); n++ {
		if reasons[n] == "" {
			continue
		}
		id, typ, desc, lo := m.nodeInfo(n)
		u := Unassigned{ID: id, Type: typ, Description: desc, Reason: reasons[n]}
		u.LocationIndex, u.Location = m.locPtrs(m.loc[n], lo)
		s.Unassigned = append(s.Unassigned, u)
	}
	s.Summary.Unassigned = len(s.Unassigned)
	return s, nil
}
