package vrp

import (
	"math"
	"math/rand/v2"
	"testing"
)

// genOpts selects the features of a generated instance.
type genOpts struct {
	jobs, shipments, vehicles int
	tw, multiTW, breaks       bool
	skills, setup, pickups    bool
	open, limits, prio        bool
	dims                      int
	horizon                   int64
}

// genProblem builds a random instance on a 100x100 grid (durations =
// distances = rounded Euclidean distance x 10).
func genProblem(r *rand.Rand, o genOpts) *Problem {
	if o.dims == 0 {
		o.dims = 1
	}
	if o.horizon == 0 {
		o.horizon = 20000
	}
	nLoc := 1 + o.jobs + 2*o.shipments + 2
	xy := make([][2]float64, nLoc)
	for i := range xy {
		xy[i] = [2]float64{r.Float64() * 100, r.Float64() * 100}
	}
	mx := make([][]int64, nLoc)
	for i := range mx {
		mx[i] = make([]int64, nLoc)
		for j := range mx[i] {
			mx[i][j] = int64(math.Round(10 * math.Hypot(xy[i][0]-xy[j][0], xy[i][1]-xy[j][1])))
		}
	}
	p := &Problem{Matrices: map[string]*Matrix{"car": {Durations: mx, Distances: mx}}}
	amt := func(hi int64) []int64 {
		a := make([]int64, o.dims)
		for d := range a {
			a[d] = r.Int64N(hi)
		}
		return a
	}
	tws := func() []TimeWindow {
		if !o.tw {
			return nil
		}
		k := 1
		if o.multiTW {
			k = 1 + r.IntN(3)
		}
		var out []TimeWindow
		for i := 0; i < k; i++ {
			s := r.Int64N(o.horizon * 3 / 4)
			out = append(out, TimeWindow{s, s + 500 + r.Int64N(o.horizon/3)})
		}
		return out
	}
	skills := func() []int {
		if !o.skills || r.IntN(3) > 0 {
			return nil
		}
		return []int{r.IntN(3)}
	}
	setup := func() int64 {
		if o.setup {
			return r.Int64N(50)
		}
		return 0
	}
	loc := 1
	for i := 0; i < o.jobs; i++ {
		j := Job{ID: uint64(100 + i), Location: IndexLocation(loc), Service: r.Int64N(100), Setup: setup(), Delivery: amt(10), TimeWindows: tws(), Skills: skills()}
		if o.pickups && r.IntN(2) == 0 {
			j.Pickup = amt(10)
		}
		if o.prio {
			j.Priority = r.IntN(101)
		}
		// a few jobs share a location to exercise setup rules
		if i > 0 && r.IntN(8) == 0 {
			j.Location = p.Jobs[i-1].Location
		} else {
			loc++
		}
		p.Jobs = append(p.Jobs, j)
	}
	for i := 0; i < o.shipments; i++ {
		s := Shipment{
			Pickup:   ShipmentStep{ID: uint64(1000 + i), Location: IndexLocation(loc), Service: r.Int64N(100), Setup: setup(), TimeWindows: tws()},
			Delivery: ShipmentStep{ID: uint64(1000 + i), Location: IndexLocation(loc + 1), Service: r.Int64N(100), Setup: setup(), TimeWindows: tws()},
			Amount:   amt(10), Skills: skills(),
		}
		if o.prio {
			s.Priority = r.IntN(101)
		}
		loc += 2
		p.Shipments = append(p.Shipments, s)
	}
	for k := 0; k < o.vehicles; k++ {
		v := Vehicle{ID: uint64(k + 1), Start: IndexLocation(0), End: IndexLocation(0), HasStart: true, HasEnd: true,
			Capacity: make([]int64, o.dims), TimeWindow: TimeWindow{0, o.horizon}}
		for d := range v.Capacity {
			v.Capacity[d] = 40 + r.Int64N(40)
		}
		if o.open {
			switch r.IntN(3) {
			case 0:
				v.HasStart = false
			case 1:
				v.HasEnd = false
			}
			if r.IntN(2) == 0 && v.HasEnd {
				v.End = IndexLocation(nLoc - 1)
			}
		}
		if o.skills {
			v.Skills = []int{k % 3, (k + 1) % 3}
		}
		if o.breaks {
			nb := 1 + r.IntN(2)
			for b := 0; b < nb; b++ {
				s := int64(b)*o.horizon/2 + r.Int64N(o.horizon/3)
				br := Break{ID: uint64(b + 1), TimeWindows: []TimeWindow{{s, s + 1000 + r.Int64N(2000)}}, Service: r.Int64N(300)}
				if r.IntN(3) == 0 {
					br.MaxLoad = make([]int64, o.dims)
					for d := range br.MaxLoad {
						br.MaxLoad[d] = 30 + r.Int64N(50)
					}
				}
				v.Breaks = append(v.Breaks, br)
			}
		}
		if o.limits {
			if r.IntN(2) == 0 {
				v.MaxTasks = 3 + r.IntN(10)
			}
			if r.IntN(2) == 0 {
				v.MaxTravelTime = 2000 + r.Int64N(4000)
			}
			if r.IntN(2) == 0 {
				v.MaxDistance = 2000 + r.Int64N(4000)
			}
			v.Costs = Costs{Fixed: r.Int64N(1000), PerHour: r.Int64N(7200) + 1, PerKm: r.Int64N(3000)}
			v.SpeedFactor = []float64{1, 0.8, 1.3}[r.IntN(3)]
		}
		p.Vehicles = append(p.Vehicles, v)
	}
	return p
}

// solveAndCheck solves p and fails the test unless Validate accepts the
// solution.
func solveAndCheck(t *testing.T, p *Problem, opt Options) *Solution {
	t.Helper()
	s, err := Solve(p, opt)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Validate(p, s); err != nil {
		t.Fatalf("invalid solution: %v", err)
	}
	return s
}
