package vrp_test

import (
	"fmt"

	"github.com/lastmile/lastmile/vrp"
)

// ExampleSolve builds a problem from plain data (a duration matrix, jobs and
// vehicles), solves it deterministically and checks the answer.
func ExampleSolve() {
	durations := [][]int64{
		{0, 300, 400, 500},
		{300, 0, 200, 450},
		{400, 200, 0, 250},
		{500, 450, 250, 0},
	}
	p := &vrp.Problem{
		Jobs: []vrp.Job{
			{ID: 1, Location: vrp.IndexLocation(1), Service: 60, Delivery: []int64{2}},
			{ID: 2, Location: vrp.IndexLocation(2), Service: 60, Delivery: []int64{2}, TimeWindows: []vrp.TimeWindow{{0, 1000}}},
			{ID: 3, Location: vrp.IndexLocation(3), Service: 60, Delivery: []int64{9}}, // too big for any vehicle
		},
		Vehicles: []vrp.Vehicle{{
			ID: 7, Start: vrp.IndexLocation(0), End: vrp.IndexLocation(0), HasStart: true, HasEnd: true,
			Capacity: []int64{5}, TimeWindow: vrp.TimeWindow{Start: 0, End: 3600},
		}},
		Matrices: map[string]*vrp.Matrix{"car": {Durations: durations}},
	}
	s, err := vrp.Solve(p, vrp.Options{Iterations: 100, Seed: 1})
	if err != nil {
		fmt.Println(err)
		return
	}
	if _, err := vrp.Validate(p, s); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("cost", s.Summary.Cost)
	for _, st := range s.Routes[0].Steps {
		id := "-"
		if st.ID != nil {
			id = fmt.Sprint(*st.ID)
		}
		fmt.Println(st.Type, id, st.Arrival)
	}
	for _, u := range s.Unassigned {
		fmt.Println("unassigned", u.ID, u.Reason)
	}
	// Output:
	// cost 900
	// start - 0
	// job 2 400
	// job 1 660
	// end - 1020
	// unassigned 3 capacity: amount exceeds the capacity of every compatible vehicle
}
