package sim

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"
)

// runReplanned drives order on d with replans.
func runReplanned(t testing.TB, d *Day, order [][]int, start time.Time, replans []Replan) *DayTruth {
	t.Helper()
	tr, err := d.RunReplanned(order, start, replans)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

// served returns the sequences the vans of tr served.
func served(tr *DayTruth) [][]int {
	out := make([][]int, len(tr.Vans))
	for v, vt := range tr.Vans {
		out[v] = vt.Stops
	}
	return out
}

// concat returns the concatenation of seqs in a new slice.
func concat(seqs ...[]int) []int {
	var out []int
	for _, s := range seqs {
		out = append(out, s...)
	}
	return out
}

// reversed returns a reversed copy of s.
func reversed(s []int) []int {
	out := slices.Clone(s)
	slices.Reverse(out)
	return out
}

// effective returns the departure of van v in tr at which a replan at at
// takes effect: the first of its departures from the depot and from its
// stops at or after at.
func effective(t *testing.T, tr *DayTruth, v int, at time.Time) time.Time {
	t.Helper()
	vt := tr.Vans[v]
	if !vt.Depart.Before(at) {
		return vt.Depart
	}
	for _, s := range vt.Stops {
		if dep := tr.Shipments[s].Depart; !dep.Before(at) {
			return dep
		}
	}
	t.Fatalf("van %d does not leave after %v", v, at)
	return time.Time{}
}

// stayedVan reports whether van v of tr stayed at the depot after a
// replan took its stops (see RunReplanned).
func stayedVan(tr *DayTruth, v int) bool {
	vt := &tr.Vans[v]
	return len(vt.Stops) == 0 && !vt.Depart.IsZero()
}

// checkStayed checks a van that a replan left at the depot: no spans,
// routes or detours, Depart = Return, every ping standing at the depot up
// to the departure.
func checkStayed(t *testing.T, d *Day, tr *DayTruth, v int) {
	t.Helper()
	vt := tr.Vans[v]
	if len(vt.Spans) != 0 || len(vt.Routes) != 0 || len(vt.Detours) != 0 || !vt.Return.Equal(vt.Depart) {
		t.Fatalf("van %d stayed at the depot: %d spans, %d routes, %d detours, %v-%v", v, len(vt.Spans), len(vt.Routes), len(vt.Detours), vt.Depart, vt.Return)
	}
	for i, p := range vt.Pings {
		if p.Time.After(vt.Depart) || p.Speed != 0 || distM(p.Lat, p.Lon, d.Depot.Lat, d.Depot.Lon) > 6*d.Config.GPSSigma+1 {
			t.Fatalf("van %d stayed at the depot: ping %d %+v", v, i, p)
		}
	}
}

// checkReplanned checks the invariants of a truth driven from the shift
// start with replans, against base, the same plan driven without: every
// invariant of checkVans on the sequences served, the closure of base,
// avoided while closed, and drive-bys among those of base.
func checkReplanned(t *testing.T, d *Day, tr, base *DayTruth) {
	t.Helper()
	checkVans(t, d, tr, served(tr), time.Time{}, true)
	if !reflect.DeepEqual(tr.Closure, base.Closure) || !reflect.DeepEqual(tr.World.Incidents(), base.World.Incidents()) {
		t.Fatalf("closure %+v, without the replans %+v", tr.Closure, base.Closure)
	}
	if tr.Closure != nil {
		checkClosedAvoided(t, tr)
	}
	for _, db := range tr.DriveBys {
		if !slices.Contains(base.DriveBys, db) {
			t.Fatalf("drive-by %+v not among those without the replans %+v", db, base.DriveBys)
		}
	}
}

// checkPrefix checks that the truth b is the truth a up to until[v] for
// each van v, and all day for the vans with a zero until: spans starting
// before it, pings and detours before it, the shipments the van reached
// before it, the drive-bys passed before it, and the closure.
func checkPrefix(t *testing.T, a, b *DayTruth, until []time.Time) {
	t.Helper()
	if !reflect.DeepEqual(a.Closure, b.Closure) || !reflect.DeepEqual(a.World.Incidents(), b.World.Incidents()) {
		t.Fatalf("closure %+v, then %+v", a.Closure, b.Closure)
	}
	before := func(v int, x time.Time) bool { return until[v].IsZero() || x.Before(until[v]) }
	for v := range a.Vans {
		va, vb := &a.Vans[v], &b.Vans[v]
		if until[v].IsZero() {
			if !reflect.DeepEqual(*va, *vb) {
				t.Fatalf("van %d changed", v)
			}
			continue
		}
		if va.ID != vb.ID || (!va.Depart.IsZero() && !va.Depart.Equal(vb.Depart)) {
			t.Fatalf("van %d: departs %v, then %v", v, va.Depart, vb.Depart)
		}
		prefix := func(n int, f func(i int) time.Time) int {
			i := 0
			for i < n && f(i).Before(until[v]) {
				i++
			}
			return i
		}
		ns := prefix(len(va.Spans), func(i int) time.Time { return va.Spans[i].Start })
		if !equalPrefix(va.Spans, vb.Spans, ns) || (ns < len(vb.Spans) && vb.Spans[ns].Start.Before(until[v])) {
			t.Fatalf("van %d: the %d spans before %v changed", v, ns, until[v])
		}
		np := prefix(len(va.Pings), func(i int) time.Time { return va.Pings[i].Time })
		if !equalPrefix(va.Pings, vb.Pings, np) || (np < len(vb.Pings) && vb.Pings[np].Time.Before(until[v])) {
			t.Fatalf("van %d: the %d pings before %v changed", v, np, until[v])
		}
		nd := prefix(len(va.Detours), func(i int) time.Time { return va.Detours[i].Time })
		if !equalPrefix(va.Detours, vb.Detours, nd) || (nd < len(vb.Detours) && vb.Detours[nd].Time.Before(until[v])) {
			t.Fatalf("van %d: the detours before %v changed: %+v, then %+v", v, until[v], va.Detours, vb.Detours)
		}
	}
	for i, sa := range a.Shipments {
		if sa.Van >= 0 && before(sa.Van, sa.Arrive) && !reflect.DeepEqual(sa, b.Shipments[i]) {
			t.Fatalf("shipment %d reached before %v changed: %+v, then %+v", i, until[sa.Van], sa, b.Shipments[i])
		}
	}
	passed := func(tr *DayTruth) []DriveBy {
		var out []DriveBy
		for _, db := range tr.DriveBys {
			if before(db.Van, db.Time) {
				out = append(out, db)
			}
		}
		return out
	}
	if pa, pb := passed(a), passed(b); !reflect.DeepEqual(pa, pb) {
		t.Fatalf("drive-bys passed before the replans: %+v, then %+v", pa, pb)
	}
}

// equalPrefix reports whether the first n elements of a and b are
// deeply equal.
func equalPrefix[T any](a, b []T, n int) bool {
	if n == 0 {
		return true
	}
	return n <= len(a) && n <= len(b) && reflect.DeepEqual(a[:n], b[:n])
}

// eachNetwork runs f in a subtest per network of dayNetworks, on the
// network's seed-1 day and the truth of its plan without replans.
func eachNetwork(t *testing.T, f func(t *testing.T, d *Day, base *DayTruth)) {
	for _, nw := range dayNetworks {
		t.Run(nw.name, func(t *testing.T) {
			d := newDay(t, nw.graph(t), DayConfig{Seed: 1})
			f(t, d, run(t, d, d.Plan, time.Time{}))
		})
	}
}

// untilFor returns a per-van until for checkPrefix: e for van v, zero
// (unchanged all day) for the others.
func untilFor(nv, v int, e time.Time) []time.Time {
	out := make([]time.Time, nv)
	out[v] = e
	return out
}

// TestRunReplannedNoReplans: without replans, or with replans that never
// come due, RunReplanned is Run; and it is a function of its arguments.
func TestRunReplannedNoReplans(t *testing.T) {
	eachNetwork(t, func(t *testing.T, d *Day, base *DayTruth) {
		partial := slices.Clone(d.Plan)
		partial[1] = nil
		basePartial := run(t, d, partial, time.Time{})
		late := d.Vans[0].ShiftEnd.Add(time.Hour)
		cases := []struct {
			name    string
			order   [][]int
			replans []Replan
			want    *DayTruth
		}{
			{"nil", d.Plan, nil, base},
			{"empty", d.Plan, []Replan{}, base},
			{"after the return", d.Plan, []Replan{
				{Van: 0, At: base.Vans[0].Return.Add(time.Nanosecond), Stops: reversed(d.Plan[0])},
				{Van: 3, At: late, Stops: []int{5}},
			}, base},
			{"idle van after its departure", partial, []Replan{{Van: 1, At: d.Vans[1].ShiftStart.Add(time.Minute), Stops: d.Plan[1]}}, basePartial},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				got := runReplanned(t, d, tc.order, time.Time{}, tc.replans)
				if !reflect.DeepEqual(got, tc.want) {
					t.Fatal("RunReplanned differs from Run")
				}
			})
		}
		// A function of its arguments.
		v := (base.Closure.Van + 1) % len(d.Vans)
		stops := base.Vans[v].Stops
		replans := []Replan{{Van: v, At: base.Shipments[stops[5]].Arrive, Stops: reversed(stops[6:])}}
		t0 := time.Now()
		a := runReplanned(t, d, d.Plan, time.Time{}, replans)
		t.Logf("RunReplanned with one replan %v", time.Since(t0))
		if b := runReplanned(t, d, d.Plan, time.Time{}, replans); !reflect.DeepEqual(a, b) {
			t.Fatal("two runs with the same replans differ")
		}
		if reflect.DeepEqual(a.Vans[v], base.Vans[v]) {
			t.Fatal("the replan changed nothing")
		}
	})
}

// TestRunReplannedPrefix replans one van in the middle of its tour and
// checks that the truth before the replan takes effect is unchanged, the
// other vans entirely, and that the van serves the new order after it.
func TestRunReplannedPrefix(t *testing.T) {
	eachNetwork(t, func(t *testing.T, d *Day, base *DayTruth) {
		nv := len(d.Vans)
		v := (base.Closure.Van + 1) % nv
		stops := base.Vans[v].Stops
		n := len(stops)
		arrive := func(k int) time.Time { return base.Shipments[stops[k]].Arrive }
		depart := func(k int) time.Time { return base.Shipments[stops[k]].Depart }
		cases := []struct {
			name  string
			at    time.Time
			stops []int
			want  []int // the sequence served
		}{
			{"reverse the rest from the middle", arrive(n / 2), reversed(stops[n/2+1:]), concat(stops[:n/2+1], reversed(stops[n/2+1:]))},
			{"at a departure", depart(n / 3), reversed(stops[n/3+1:]), concat(stops[:n/3+1], reversed(stops[n/3+1:]))},
			{"just after a departure", depart(n / 3).Add(time.Nanosecond), reversed(stops[n/3+2:]), concat(stops[:n/3+2], reversed(stops[n/3+2:]))},
			{"before the last stop", arrive(n - 2), stops[n-1:], stops},
			{"nothing after the last stop", arrive(n - 1), nil, stops},
			{"drop a stop", arrive(n / 2), slices.Delete(slices.Clone(stops[n/2+1:]), 2, 3), slices.Delete(slices.Clone(stops), n/2+3, n/2+4)},
			{"served stops are skipped", arrive(n / 2), concat(reversed(stops[n/2+1:]), stops[:n/2+1]), concat(stops[:n/2+1], reversed(stops[n/2+1:]))},
			{"from the depot", time.Time{}, reversed(stops), reversed(stops)},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				replans := []Replan{{Van: v, At: tc.at, Stops: tc.stops}}
				tr := runReplanned(t, d, d.Plan, time.Time{}, replans)
				checkReplanned(t, d, tr, base)
				if got := tr.Vans[v].Stops; !slices.Equal(got, tc.want) {
					t.Fatalf("van %d serves %v, want %v", v, got, tc.want)
				}
				e := effective(t, base, v, tc.at)
				checkPrefix(t, base, tr, untilFor(nv, v, e))
				// The van leaves at e on a new leg.
				i := slices.IndexFunc(tr.Vans[v].Spans, func(s Span) bool { return !s.Start.Before(e) })
				if sp := tr.Vans[v].Spans[i]; !sp.Start.Equal(e) || sp.Kind != SpanDrive {
					t.Fatalf("van %d: span %v from %v after the replan took effect at %v", v, sp.Kind, sp.Start, e)
				}
				for _, s := range stops {
					if st := tr.Shipments[s]; !slices.Contains(tc.want, s) && (st.Van != -1 || st.Stop != -1) {
						t.Fatalf("dropped shipment %d served: %+v", s, st)
					}
				}
			})
		}
		// From the depot, the van drives the same routes as a plan
		// with the new order (the noise of the legs differs).
		order := slices.Clone(d.Plan)
		order[v] = reversed(stops)
		ref := run(t, d, order, time.Time{})
		tr := runReplanned(t, d, d.Plan, time.Time{}, []Replan{{Van: v, Stops: order[v]}})
		if !slices.Equal(ref.Vans[v].Stops, tr.Vans[v].Stops) || !reflect.DeepEqual(ref.Vans[v].Routes, tr.Vans[v].Routes) {
			t.Fatalf("replanned at the depot: stops %v, planned %v", tr.Vans[v].Stops, ref.Vans[v].Stops)
		}
	})
}

// TestRunReplannedTwice replans one van twice, at different times and
// both before the same departure.
func TestRunReplannedTwice(t *testing.T) {
	g := monaco(t)
	d := newDay(t, g, DayConfig{Seed: 1})
	base := run(t, d, d.Plan, time.Time{})
	nv := len(d.Vans)
	v := (base.Closure.Van + 2) % nv
	stops := base.Vans[v].Stops
	n := len(stops)

	// Reverse the rest at a quarter of the tour, then sort what is left
	// at the middle of the new tour.
	r1 := Replan{Van: v, At: base.Shipments[stops[n/4]].Arrive, Stops: reversed(stops[n/4+1:])}
	tr1 := runReplanned(t, d, d.Plan, time.Time{}, []Replan{r1})
	checkReplanned(t, d, tr1, base)
	checkPrefix(t, base, tr1, untilFor(nv, v, effective(t, base, v, r1.At)))
	s1 := tr1.Vans[v].Stops
	r2 := Replan{Van: v, At: tr1.Shipments[s1[n/2]].Arrive, Stops: slices.Sorted(slices.Values(s1[n/2+1:]))}
	for _, replans := range [][]Replan{{r1, r2}, {r2, r1}} {
		tr2 := runReplanned(t, d, d.Plan, time.Time{}, replans)
		checkReplanned(t, d, tr2, base)
		checkPrefix(t, tr1, tr2, untilFor(nv, v, effective(t, tr1, v, r2.At)))
		if want := concat(s1[:n/2+1], r2.Stops); !slices.Equal(tr2.Vans[v].Stops, want) {
			t.Fatalf("van %d serves %v, want %v", v, tr2.Vans[v].Stops, want)
		}
	}

	// Two replans due at the same departure: the later one by At wins,
	// then the later one in the slice.
	at := base.Shipments[stops[n/2]].Arrive
	rest := stops[n/2+1:]
	a := Replan{Van: v, At: at, Stops: reversed(rest)}
	b := Replan{Van: v, At: at.Add(time.Second), Stops: slices.Sorted(slices.Values(rest))}
	c := Replan{Van: v, At: at, Stops: rest[1:]}
	cases := []struct {
		name    string
		replans []Replan
		want    []int
	}{
		{"later At", []Replan{b, a}, b.Stops},
		{"later in the slice", []Replan{a, c}, c.Stops},
		{"later in the slice, reversed", []Replan{c, a}, a.Stops},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tr := runReplanned(t, d, d.Plan, time.Time{}, tc.replans)
			checkReplanned(t, d, tr, base)
			if want := concat(stops[:n/2+1], tc.want); !slices.Equal(tr.Vans[v].Stops, want) {
				t.Fatalf("van %d serves %v, want %v", v, tr.Vans[v].Stops, want)
			}
			alone := runReplanned(t, d, d.Plan, time.Time{}, []Replan{{Van: v, At: at, Stops: tc.want}})
			if !reflect.DeepEqual(tr.Vans[v], alone.Vans[v]) {
				t.Fatal("the winning replan alone drives differently")
			}
		})
	}
}

// TestRunReplannedHandover hands a stop from one van to another: the
// first van to leave for it serves it, once, and the other skips it.
func TestRunReplannedHandover(t *testing.T) {
	g := monaco(t)
	d := newDay(t, g, DayConfig{Seed: 1})
	base := run(t, d, d.Plan, time.Time{})
	nv := len(d.Vans)
	a, b := (base.Closure.Van+1)%nv, (base.Closure.Van+2)%nv
	sa, sb := base.Vans[a].Stops, base.Vans[b].Stops
	na, nb := len(sa), len(sb)
	at := base.Shipments[sb[nb/2]].Arrive
	eb := effective(t, base, b, at)

	t.Run("the receiver leaves first", func(t *testing.T) {
		// a's last stop first on b's list: b leaves for it at once, long
		// before a would.
		s := sa[na-1]
		leaveA := base.Shipments[sa[na-2]].Depart
		if !eb.Before(leaveA) {
			t.Skipf("van %d leaves for shipment %d at %v, before van %d's replan at %v", a, s, leaveA, b, eb)
		}
		tr := runReplanned(t, d, d.Plan, time.Time{}, []Replan{{Van: b, At: at, Stops: concat([]int{s}, sb[nb/2+1:])}})
		checkReplanned(t, d, tr, base)
		if st := tr.Shipments[s]; st.Van != b || st.Stop != nb/2+1 {
			t.Fatalf("shipment %d served by van %d as stop %d, want van %d", s, st.Van, st.Stop, b)
		}
		if want := sa[:na-1]; !slices.Equal(tr.Vans[a].Stops, want) {
			t.Fatalf("van %d serves %v, want %v", a, tr.Vans[a].Stops, want)
		}
		until := untilFor(nv, b, eb)
		until[a] = leaveA
		checkPrefix(t, base, tr, until)
	})
	t.Run("the giver leaves first", func(t *testing.T) {
		// a's next stop after b's replan, last on b's list: a serves it,
		// b skips it; a drives exactly as without the replan.
		k := slices.IndexFunc(sa, func(s int) bool { return base.Shipments[s].Arrive.After(eb) })
		s := sa[k+1]
		tr := runReplanned(t, d, d.Plan, time.Time{}, []Replan{{Van: b, At: at, Stops: concat(sb[nb/2+1:], []int{s})}})
		checkReplanned(t, d, tr, base)
		if st := tr.Shipments[s]; st.Van != a {
			t.Fatalf("shipment %d served by van %d, want van %d", s, st.Van, a)
		}
		if want := sb; !slices.Equal(tr.Vans[b].Stops, want) {
			t.Fatalf("van %d serves %v, want %v", b, tr.Vans[b].Stops, want)
		}
		checkPrefix(t, base, tr, untilFor(nv, b, eb))
	})
	t.Run("both from the depot", func(t *testing.T) {
		// An idle van takes the last three stops of a's tour at the
		// depot: it leaves for them first, a skips them.
		order := slices.Clone(d.Plan)
		order[b] = nil
		ref := run(t, d, order, time.Time{})
		tail := sa[na-3:]
		tr := runReplanned(t, d, order, time.Time{}, []Replan{{Van: b, Stops: tail}})
		checkReplanned(t, d, tr, ref)
		if !slices.Equal(tr.Vans[b].Stops, tail) || !slices.Equal(tr.Vans[a].Stops, sa[:na-3]) {
			t.Fatalf("van %d serves %v, van %d %v", b, tr.Vans[b].Stops, a, tr.Vans[a].Stops)
		}
		until := untilFor(nv, a, ref.Shipments[sa[na-4]].Depart)
		until[b] = d.Vans[b].ShiftStart
		checkPrefix(t, ref, tr, until)
	})
}

// TestRunReplannedClosure replans the van the closure was put on before
// it reaches it: the closure is the same, and the van still turns away
// when its new leg runs into the closed way.
func TestRunReplannedClosure(t *testing.T) {
	eachNetwork(t, func(t *testing.T, d *Day, base *DayTruth) {
		c := base.Closure
		v := c.Van
		stops := base.Vans[v].Stops
		// Effective at the start of the closure's leg: its stop first,
		// the rest reversed.
		at := base.Shipments[stops[c.Leg-1]].Arrive
		want := concat(stops[:c.Leg+1], reversed(stops[c.Leg+1:]))
		tr := runReplanned(t, d, d.Plan, time.Time{}, []Replan{{Van: v, At: at, Stops: want[c.Leg:]}})
		checkReplanned(t, d, tr, base)
		e := effective(t, base, v, at)
		checkPrefix(t, base, tr, untilFor(len(d.Vans), v, e))
		if !slices.Equal(tr.Vans[v].Stops, want) {
			t.Fatalf("van %d serves %v, want %v", v, tr.Vans[v].Stops, want)
		}
		i := slices.IndexFunc(tr.Vans[v].Detours, func(x Detour) bool { return x.Leg == c.Leg })
		if i < 0 {
			t.Fatalf("van %d did not turn away on its replanned leg %d: %+v", v, c.Leg, tr.Vans[v].Detours)
		}
		det := tr.Vans[v].Detours[i]
		if !slices.Contains(c.Edges, det.Edge) || det.Time.Before(c.Start) || !det.Time.After(e) {
			t.Fatalf("detour %+v, closure %+v from %v, replan from %v", det, c.Edges, c.Start, e)
		}
		t.Logf("van %d turned away at %v (without the replan %v)", v, det.Time, base.Vans[v].Detours)
	})
}

// TestRunReplannedDepot: a van a replan leaves without stops before it
// leaves stays at the depot, and an idle van a replan sends out leaves at
// its departure; the depot pings before either are unchanged.
func TestRunReplannedDepot(t *testing.T) {
	g := monaco(t)
	d := newDay(t, g, DayConfig{Seed: 3, Vans: 4, Shipments: 60, DepotPings: 5 * time.Minute})
	base := run(t, d, d.Plan, time.Time{})
	dep := d.Vans[0].ShiftStart
	iv := d.Config.PingInterval

	tr := runReplanned(t, d, d.Plan, time.Time{}, []Replan{{Van: 0, At: dep.Add(-time.Hour)}})
	if !stayedVan(tr, 0) || !tr.Vans[0].Depart.Equal(dep) {
		t.Fatalf("van 0 without stops: %+v", tr.Vans[0])
	}
	checkStayed(t, d, tr, 0)
	if want := 31; len(tr.Vans[0].Pings) != want { // 5 min of 10 s pings and one at the departure
		t.Fatalf("van 0 stayed: %d pings, want %d", len(tr.Vans[0].Pings), want)
	}
	checkPrefix(t, base, tr, untilFor(len(d.Vans), 0, dep))
	for _, s := range d.Plan[0] {
		if st := tr.Shipments[s]; st.Van != -1 {
			t.Fatalf("shipment %d of the van that stayed served: %+v", s, st)
		}
	}

	order := slices.Clone(d.Plan)
	order[2] = nil
	ref := run(t, d, order, time.Time{})
	at := dep.Add(-2*time.Minute - time.Second)
	tr = runReplanned(t, d, order, time.Time{}, []Replan{{Van: 2, At: at, Stops: d.Plan[2]}})
	vt := tr.Vans[2]
	if !slices.Equal(vt.Stops, d.Plan[2]) || !vt.Depart.Equal(dep) {
		t.Fatalf("idle van sent out: stops %v, departs %v", vt.Stops, vt.Depart)
	}
	if first := vt.Pings[0].Time; !first.Equal(dep.Add(-2 * time.Minute)) {
		t.Fatalf("idle van sent out at %v: first ping %v", at, first)
	}
	if last := vt.Pings[len(vt.Pings)-1].Time; vt.Return.Sub(last) >= iv {
		t.Fatalf("last ping %v, return %v", last, vt.Return)
	}
	// Its pings start with the replan.
	checkPrefix(t, ref, tr, untilFor(len(d.Vans), 2, at))
}

// TestRunReplannedBadInput checks the errors of RunReplanned.
func TestRunReplannedBadInput(t *testing.T) {
	g := monaco(t)
	d := newDay(t, g, DayConfig{Vans: 3, Shipments: 30})
	p := d.Plan
	at := d.Vans[0].ShiftStart.Add(time.Hour)
	cases := []struct {
		name    string
		order   [][]int
		replans []Replan
	}{
		{"negative van", p, []Replan{{Van: -1, At: at}}},
		{"van out of range", p, []Replan{{Van: 3, At: at, Stops: []int{1}}}},
		{"negative shipment", p, []Replan{{Van: 0, At: at, Stops: []int{1, -1}}}},
		{"shipment out of range", p, []Replan{{Van: 1, At: at, Stops: []int{30}}}},
		{"shipment twice", p, []Replan{{Van: 0, At: at}, {Van: 2, At: at, Stops: []int{4, 5, 4}}}},
		{"bad plan", [][]int{{1, 2}, {3, 2}}, []Replan{{Van: 0, At: at, Stops: []int{1}}}},
	}
	for _, tc := range cases {
		if _, err := d.RunReplanned(tc.order, time.Time{}, tc.replans); !errors.Is(err, errInput) {
			t.Errorf("%s: err %v", tc.name, err)
		} else {
			t.Logf("%s: %v", tc.name, err)
		}
	}
	if _, err := d.RunReplanned(p, monday.Add(-time.Minute), nil); !errors.Is(err, errInput) {
		t.Errorf("start before the day: err %v", err)
	}
	// The same shipment in two replans, or in a replan and the plan, is
	// a handover, not an error.
	if _, err := d.RunReplanned(p, time.Time{}, []Replan{{Van: 0, At: at, Stops: []int{4}}, {Van: 1, At: at, Stops: []int{4}}}); err != nil {
		t.Errorf("handover: %v", err)
	}
}

// BenchmarkRunReplanned drives the Porto day of the tests with five
// replans of five vans in the middle of their tours.
func BenchmarkRunReplanned(b *testing.B) {
	g := porto(b)
	d := newDay(b, g, DayConfig{Seed: 1})
	base := run(b, d, d.Plan, time.Time{})
	var replans []Replan
	for v := range 5 {
		stops := base.Vans[v].Stops
		k := len(stops) / 2
		replans = append(replans, Replan{Van: v, At: base.Shipments[stops[k]].Arrive, Stops: reversed(stops[k+1:])})
	}
	for _, n := range []int{0, len(replans)} {
		b.Run(fmt.Sprintf("replans=%d", n), func(b *testing.B) {
			for b.Loop() {
				if _, err := d.RunReplanned(d.Plan, time.Time{}, replans[:n]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
