package eta

import (
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/lastmile/lastmile/graph"
	"github.com/lastmile/lastmile/osmimport"
	"github.com/uber/h3-go/v4"
)

// etaTrafficNet: edges 0 and 1 same cell and class (secondary), 2 same
// cell other class, 3 same class in another cell; edges 0 and 4 lie on way
// 10 (4 is the reverse direction, same cell and class).
func etaTrafficNet(t testing.TB) *graph.Network {
	net := etaToyNetwork([]etaToyEdge{
		{etaLat, etaLon, 100, 10, graph.ClassSecondary, 10},
		{etaLat + 0.0003, etaLon, 100, 10, graph.ClassSecondary, 11},
		{etaLat + 0.0003, etaLon, 100, 10, graph.ClassResidential, 12},
		{etaLat2, etaLon2, 100, 10, graph.ClassSecondary, 13},
		{etaLat + 0.00001, etaLon, 100, 10, graph.ClassSecondary, 10},
	})
	c := etaCell(net, 0)
	if etaCell(net, 1) != c || etaCell(net, 2) != c || etaCell(net, 3) == c || etaCell(net, 4) != c {
		t.Fatal("test network cells are not as intended")
	}
	return net
}

// TestTrafficBorrowAndDecay checks against hand-computed values for one
// observation of ratio 2 on edge 0 at t0 (Shrink 0.5, Horizon 40 min, no
// profile):
//
//	group: c = ln2 / (1 + 0.5) = (2/3) ln2
//	edge 0: (ln2 + 0.5 c) / (1 + 0.5) = (8/9) ln2
//
// both decaying linearly to 0 over the horizon after t0.
func TestTrafficBorrowAndDecay(t *testing.T) {
	net := etaTrafficNet(t)
	const h = 40 * time.Minute
	tr, err := NewTraffic(net, nil, TrafficOptions{Horizon: h})
	if err != nil {
		t.Fatal(err)
	}
	t0 := etaMonday.Add(8 * time.Hour)
	if err := tr.Observe(Observation{Edge: 0, Time: t0, Duration: 20}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		e       uint32
		now, at time.Duration // after t0
		exp     float64       // factor = 2^exp
	}{
		{"observed edge now", 0, 0, 0, 8.0 / 9},
		{"observed edge, entering in 10 min", 0, 0, 10 * time.Minute, 8.0 / 9 * 0.75},
		{"observed edge, 20 min old, entering now", 0, 20 * time.Minute, 20 * time.Minute, 8.0 / 9 * 0.5},
		{"observed edge, entering at the horizon", 0, 0, h, 0},
		{"observed edge, entering 1 s before the horizon", 0, 0, h - time.Second, 8.0 / 9 / 2400},
		{"observed edge, 10 min old, entering 1 s before its horizon", 0, 10 * time.Minute, h - time.Second, 8.0 / 9 / 2400},
		{"same class and cell, entering past the horizon", 1, 0, h + time.Minute, 0},
		{"observed edge, expired", 0, h, h + time.Minute, 0},
		{"observation after now is not used", 0, -time.Second, 0, 0},
		{"same class and cell borrows", 1, 0, 0, 2.0 / 3},
		{"same class and cell, entering in 30 min", 1, 0, 30 * time.Minute, 2.0 / 3 * 0.25},
		{"other class does not borrow", 2, 0, 0, 0},
		{"other cell does not borrow", 3, 0, 0, 0},
	}
	for _, tc := range tests {
		got := tr.Factor(tc.e, t0.Add(tc.now), t0.Add(tc.at))
		want := math.Pow(2, tc.exp)
		if math.Abs(got-want) > 1e-6*want {
			t.Errorf("%s: factor %.6f, want %.6f", tc.name, got, want)
		}
	}
	st := tr.Stats()
	if st.Accepted != 1 || st.EdgesLive != 1 || st.Groups != 1 || st.Cells != 1 {
		t.Errorf("stats %+v", st)
	}
}

// TestTrafficOnProfile checks that the live ratio multiplies the profile
// and that the factor is exactly the profile once the live value decayed.
func TestTrafficOnProfile(t *testing.T) {
	net := etaTrafficNet(t)
	prof := etaHandProfile(len(net.Edges), func(e, bin int) float64 { return 1 + float64(bin%4)/2 })
	tr, err := NewTraffic(net, prof, TrafficOptions{Horizon: 30 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	t0 := etaMonday.Add(8*time.Hour + 16*time.Minute) // bin 33: profile 1.5
	// 1.5 x 2 = 3 times free flow: a live ratio of 2 to the profile.
	if err := tr.Observe(Observation{Edge: 0, Time: t0, Duration: 30}); err != nil {
		t.Fatal(err)
	}
	if got, want := tr.Factor(0, t0, t0), 1.5*math.Pow(2, 8.0/9); math.Abs(got-want) > 1e-6*want {
		t.Errorf("factor now %.6f, want %.6f", got, want)
	}
	// 15 minutes later, bin 34 (profile 2), live halfway decayed.
	at := t0.Add(15 * time.Minute)
	if got, want := tr.Factor(0, t0, at), 2*math.Pow(2, 8.0/9*0.5); math.Abs(got-want) > 1e-6*want {
		t.Errorf("factor in 15 min %.6f, want %.6f", got, want)
	}
	for _, d := range []time.Duration{30 * time.Minute, 31 * time.Minute, 3 * time.Hour} {
		at := t0.Add(d)
		if got, want := tr.Factor(0, t0, at), prof.Factor(0, at); got != want {
			t.Errorf("after %v: factor %v, want the profile's %v", d, got, want)
		}
	}
}

// etaHandProfile builds a Profile with the given multiplier per edge and bin.
func etaHandProfile(edges int, f func(e, bin int) float64) *Profile {
	p := &Profile{loc: time.UTC, slot: make([]int32, edges), table: make([]float32, edges*NumBins)}
	for e := range edges {
		p.slot[e] = int32(e)
		for b := range NumBins {
			p.table[e*NumBins+b] = float32(f(e, b))
		}
	}
	return p
}

func TestTrafficOutliers(t *testing.T) {
	net := etaTrafficNet(t)
	tr, err := NewTraffic(net, nil, TrafficOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t0 := etaMonday.Add(9 * time.Hour)
	for i, d := range []float64{15, 16, 14, 15.5, 15} {
		if err := tr.Observe(Observation{Edge: 0, Time: t0.Add(time.Duration(i) * time.Minute), Duration: d}); err != nil {
			t.Fatalf("obs %d: %v", i, err)
		}
	}
	now := t0.Add(5 * time.Minute)
	before := tr.Factor(0, now, now)
	// 20x the recent values: rejected, the factor does not move.
	err = tr.Observe(Observation{Edge: 0, Time: now, Duration: 300})
	if !errors.Is(err, ErrOutlier) {
		t.Fatalf("20x value: error %v, want ErrOutlier", err)
	}
	if got := tr.Factor(0, now, now); got != before {
		t.Errorf("factor moved from %v to %v after an outlier", before, got)
	}
	// 1/20 of the recent values (still plausible vs free flow): rejected.
	if err := tr.Observe(Observation{Edge: 0, Time: now, Duration: 2.5}); !errors.Is(err, ErrOutlier) {
		t.Errorf("fast value: error %v, want ErrOutlier", err)
	}
	// An unobserved edge of the same group is screened against the group.
	if err := tr.Observe(Observation{Edge: 1, Time: now, Duration: 300}); !errors.Is(err, ErrOutlier) {
		t.Errorf("20x value on a new edge of the group: error %v, want ErrOutlier", err)
	}
	// Normal noise (2x) is not an outlier even when the window is tight.
	if err := tr.Observe(Observation{Edge: 0, Time: now, Duration: 30}); err != nil {
		t.Errorf("2x value: %v", err)
	}
	// A lasting change (an incident, 10x) is accepted after confirmations.
	accepted := -1
	for i := range 8 {
		if tr.Observe(Observation{Edge: 0, Time: now.Add(time.Duration(i+1) * time.Minute), Duration: 150}) == nil {
			accepted = i
			break
		}
	}
	if accepted < 1 || accepted > 5 {
		t.Errorf("lasting 10x change accepted after %d confirmations, want 1..5", accepted)
	}
	if st := tr.Stats(); st.Outlier < 4 {
		t.Errorf("outliers counted %d", st.Outlier)
	}
}

func TestTrafficBadObservations(t *testing.T) {
	net := etaTrafficNet(t)
	net.Edges = append(net.Edges, graph.Edge{From: 0, To: 1, Distance: 100, Duration: math.NaN(), Class: graph.ClassSecondary})
	tr, err := NewTraffic(net, nil, TrafficOptions{})
	if err != nil {
		t.Fatal(err)
	}
	at := etaMonday.Add(time.Hour)
	tests := []struct {
		name string
		o    Observation
		want error
	}{
		{"unknown edge", Observation{Edge: 99, Time: at, Duration: 10}, ErrUnknownEdge},
		{"edge without free flow", Observation{Edge: 5, Time: at, Duration: 10}, ErrUnknownEdge},
		{"zero time", Observation{Edge: 0, Duration: 10}, ErrInvalid},
		{"year 2500", Observation{Edge: 0, Time: time.Date(2500, 1, 1, 0, 0, 0, 0, time.UTC), Duration: 10}, ErrInvalid},
		{"NaN", Observation{Edge: 0, Time: at, Duration: math.NaN()}, ErrInvalid},
		{"+Inf", Observation{Edge: 0, Time: at, Duration: math.Inf(1)}, ErrInvalid},
		{"-Inf", Observation{Edge: 0, Time: at, Duration: math.Inf(-1)}, ErrInvalid},
		{"zero", Observation{Edge: 0, Time: at, Duration: 0}, ErrInvalid},
		{"negative", Observation{Edge: 0, Time: at, Duration: -5}, ErrInvalid},
		{"faster than 70 m/s", Observation{Edge: 0, Time: at, Duration: 1.2}, ErrImplausible},
		{"100x free flow", Observation{Edge: 0, Time: at, Duration: 1000}, ErrImplausible},
		{"good", Observation{Edge: 0, Time: at, Duration: 12}, nil},
	}
	for _, tc := range tests {
		if err := tr.Observe(tc.o); !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
			t.Errorf("%s: error %v, want %v", tc.name, err, tc.want)
		}
	}
	if _, err := tr.ObserveWay(12345, at, 10); !errors.Is(err, ErrUnknownWay) {
		t.Errorf("unknown way: %v", err)
	}
	for _, s := range []float64{0, -1, math.NaN(), math.Inf(1)} {
		if _, err := tr.ObserveWay(10, at, s); !errors.Is(err, ErrInvalid) {
			t.Errorf("way speed %v: %v", s, err)
		}
	}
	if _, err := tr.ObserveWay(10, at, 100); !errors.Is(err, ErrImplausible) {
		t.Errorf("way speed 100 m/s: %v", err)
	}
	if err := tr.ObserveClosure(99, at); !errors.Is(err, ErrUnknownEdge) {
		t.Errorf("closure of unknown edge: %v", err)
	}
	want := TrafficStats{Accepted: 1, UnknownEdge: 3, UnknownWay: 1, Invalid: 11, Implausible: 3, EdgesLive: 1, Groups: 1, Cells: 1}
	if st := tr.Stats(); st != want {
		t.Errorf("stats %+v\nwant  %+v", st, want)
	}
	if tr.Factor(99, at, at) != 1 {
		t.Error("unknown edge factor not 1")
	}
	// Bad options.
	for _, opt := range []TrafficOptions{{Horizon: -1}, {Shrink: math.NaN()}, {MinOutlierRatio: 0.5}, {H3Resolution: 20}} {
		if _, err := NewTraffic(net, nil, opt); err == nil {
			t.Errorf("options %+v accepted", opt)
		}
	}
	if _, err := NewTraffic(nil, nil, TrafficOptions{}); err == nil {
		t.Error("nil network accepted")
	}
	if _, err := NewTraffic(net, etaHandProfile(2, func(int, int) float64 { return 1 }), TrafficOptions{}); err == nil {
		t.Error("profile of another network accepted")
	}
}

func TestTrafficWayClosureDurations(t *testing.T) {
	net := etaTrafficNet(t)
	tr, err := NewTraffic(net, nil, TrafficOptions{Horizon: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t0 := etaMonday.Add(17 * time.Hour)
	// 5 m/s on way 10: edges 0 and 4, 100 m each: 20 s = ratio 2.
	n, err := tr.ObserveWay(10, t0, 5)
	if err != nil || n != 2 {
		t.Fatalf("ObserveWay: %d, %v", n, err)
	}
	// Group window: two values of ln2, c = 2 ln2 / 2.5 = 0.8 ln2; each edge:
	// (ln2 + 0.5 * 0.8 ln2) / 1.5 = (1.4/1.5) ln2.
	for _, e := range []uint32{0, 4} {
		if got, want := tr.Factor(e, t0, t0), math.Pow(2, 1.4/1.5); math.Abs(got-want) > 1e-6*want {
			t.Errorf("edge %d: factor %.6f, want %.6f", e, got, want)
		}
	}
	if got, want := tr.Factor(1, t0, t0), math.Pow(2, 0.8); math.Abs(got-want) > 1e-6*want {
		t.Errorf("edge 1 (borrowing): factor %.6f, want %.6f", got, want)
	}
	// Close edge 2 for 10 minutes.
	if err := tr.ObserveClosure(2, t0.Add(10*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if f := tr.Factor(2, t0, t0.Add(9*time.Minute)); !math.IsInf(f, 1) {
		t.Errorf("closed edge factor %v", f)
	}
	if f := tr.Factor(2, t0, t0.Add(10*time.Minute)); f != 1 {
		t.Errorf("factor after the closure %v", f)
	}
	for _, now := range []time.Time{t0, t0.Add(20 * time.Minute), t0.Add(2 * time.Hour)} {
		d := tr.Durations(now, nil)
		for e := range net.Edges {
			want := net.Edges[e].Duration * tr.Factor(uint32(e), now, now)
			if d[e] != want && math.Abs(d[e]-want) > 1e-9*want {
				t.Errorf("%v: Durations[%d] = %v, want %v", now.Sub(t0), e, d[e], want)
			}
		}
	}
	if st := tr.Stats(); st.Closures != 1 {
		t.Errorf("closures %d", st.Closures)
	}
	for _, c := range []struct {
		edges []uint32
		at    time.Duration
		want  int
	}{
		{[]uint32{0, 1, 2, 4}, 9 * time.Minute, 2},
		{[]uint32{2}, 0, 0},
		{[]uint32{0, 1, 4}, 0, -1},
		{[]uint32{0, 1, 2}, 10 * time.Minute, -1}, // reopened
		{nil, 0, -1},
	} {
		if got := tr.ClosedAt(c.edges, t0.Add(c.at)); got != c.want {
			t.Errorf("ClosedAt(%v, +%v) = %d, want %d", c.edges, c.at, got, c.want)
		}
	}
	if err := tr.ObserveClosure(2, time.Time{}); err != nil || tr.Stats().Closures != 0 {
		t.Errorf("lifting the closure: %v", err)
	}
	// Durations reuses dst.
	buf := make([]float64, 0, 100)
	if d := tr.Durations(t0, buf); &d[0] != &buf[:1][0] {
		t.Error("Durations did not reuse dst")
	}
}

func TestTrafficConcurrent(t *testing.T) {
	net := etaTrafficNet(t)
	tr, err := NewTraffic(net, nil, TrafficOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t0 := etaMonday.Add(12 * time.Hour)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 500 {
				at := t0.Add(time.Duration(i) * time.Second)
				if g%2 == 0 {
					_ = tr.Observe(Observation{Edge: uint32(i % 5), Time: at, Duration: 10 + float64(i%7)})
				} else {
					_ = tr.Factor(uint32(i%5), at, at.Add(time.Minute))
					_ = tr.Durations(at, nil)
				}
			}
		}()
	}
	wg.Wait()
	if st := tr.Stats(); st.Accepted+st.Outlier != 1000 {
		t.Errorf("stats %+v", st)
	}
}

func TestTrafficObserveAllocs(t *testing.T) {
	net := etaTrafficNet(t)
	tr, err := NewTraffic(net, etaHandProfile(len(net.Edges), func(int, int) float64 { return 1.2 }), TrafficOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t0 := etaMonday.Add(12 * time.Hour)
	i := 0
	allocs := testing.AllocsPerRun(1000, func() {
		i++
		_ = tr.Observe(Observation{Edge: uint32(i % 2), Time: t0.Add(time.Duration(i) * time.Second), Duration: 12 + float64(i%3)})
		_ = tr.Factor(1, t0, t0)
	})
	if allocs != 0 {
		t.Errorf("%v allocations per accepted Observe + Factor", allocs)
	}
}

// FuzzObserve feeds arbitrary observations: never a panic, every call
// either accepted or counted as rejected, factors positive.
func FuzzObserve(f *testing.F) {
	f.Add(uint32(0), int64(1767600000), 12.0, 5.0)
	f.Add(uint32(3), int64(0), math.NaN(), -1.0)
	f.Add(uint32(1<<31), int64(-1<<40), math.Inf(1), math.Inf(-1))
	f.Add(uint32(4), int64(1767600000), 1e-300, 1e300)
	net := etaTrafficNet(f)
	f.Fuzz(func(t *testing.T, e uint32, sec int64, d, speed float64) {
		tr, err := NewTraffic(net, nil, TrafficOptions{})
		if err != nil {
			t.Fatal(err)
		}
		at := time.Unix(sec, 0)
		_ = tr.Observe(Observation{Edge: e % 8, Time: at, Duration: d})
		_ = tr.Observe(Observation{Edge: e % 8, Time: at, Duration: d * 1.5})
		_, _ = tr.ObserveWay(int64(e%16), at, speed)
		st := tr.Stats()
		rej := st.UnknownEdge + st.UnknownWay + st.Invalid + st.Implausible + st.Outlier
		if st.Accepted+rej < 3 {
			t.Errorf("stats %+v: calls unaccounted", st)
		}
		for x := range net.Edges {
			if g := tr.Factor(uint32(x), at, at); !(g > 0) {
				t.Errorf("edge %d: factor %v", x, g)
			}
		}
	})
}

// etaDataDir returns the shared data folder: $LASTMILE_DATA, else
// ../../shared/datasets seen from this package.
func etaDataDir() string {
	if d := os.Getenv("LASTMILE_DATA"); d != "" {
		return d
	}
	return filepath.Join("..", "..", "shared", "datasets")
}

var (
	etaPortoOnce sync.Once
	etaPortoNet  *graph.Network
	etaPortoErr  error
)

// etaPorto imports the Porto extract once, skipping when it is missing.
func etaPorto(tb testing.TB) *graph.Network {
	tb.Helper()
	p := filepath.Join(etaDataDir(), "osm", "porto.osm.pbf")
	if _, err := os.Stat(p); err != nil {
		tb.Skipf("OSM extract %s not available (set LASTMILE_DATA): %v", p, err)
	}
	etaPortoOnce.Do(func() { etaPortoNet, _, etaPortoErr = osmimport.ReadFile(p, osmimport.Options{}) })
	if etaPortoErr != nil {
		tb.Fatalf("import %s: %v", p, etaPortoErr)
	}
	return etaPortoNet
}

// TestPortoNetwork runs the whole pipeline on the real Porto network with
// synthetic observations: every edge of a third of the network observed at
// 1.5x free flow in bin 32 on weekdays; checks the profile and the live
// borrowing on real H3 cells and times the parts.
func TestPortoNetwork(t *testing.T) {
	net := etaPorto(t)
	rng := rand.New(rand.NewPCG(5, 6))
	var obs []Observation
	for e := range net.Edges {
		if e%3 != 0 || !(net.Edges[e].Duration > 0) {
			continue
		}
		for k := range 3 {
			at := etaMonday.Add(time.Duration(k)*24*time.Hour + 8*time.Hour + time.Duration(rng.IntN(900))*time.Second)
			obs = append(obs, Observation{Edge: uint32(e), Time: at, Duration: net.Edges[e].Duration * 1.5})
		}
	}
	start := time.Now()
	prof, err := FitProfile(net, obs, ProfileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	fit := time.Since(start)
	at := etaMonday.Add(8*time.Hour + 5*time.Minute)
	bad := 0
	for e := range net.Edges {
		if e%3 == 0 && net.Edges[e].Duration > 0 && math.Abs(prof.Factor(uint32(e), at)-1.5) > 1e-3 {
			bad++
		}
	}
	if bad > 0 {
		t.Errorf("%d observed edges without factor 1.5", bad)
	}
	start = time.Now()
	tr, err := NewTraffic(net, prof, TrafficOptions{})
	if err != nil {
		t.Fatal(err)
	}
	setup := time.Since(start)
	// Live: 2x the profile on edge 0; edges of the same (cell, class) borrow.
	now := at
	if err := tr.Observe(Observation{Edge: 0, Time: now, Duration: net.Edges[0].Duration * prof.Factor(0, now) * 2}); err != nil {
		t.Fatal(err)
	}
	// The edge's group and the same-class groups of the adjacent cells
	// (which have no data of their own) borrow (2/3) ln2; no other edge.
	near := map[int32]bool{tr.group[0]: true}
	for _, n := range tr.nbList[tr.nbStart[tr.group[0]]:tr.nbStart[tr.group[0]+1]] {
		near[n] = true
	}
	borrowed, other := 0, 0
	for e := 1; e < len(net.Edges); e++ {
		f := tr.Factor(uint32(e), now, now) / prof.Factor(uint32(e), now)
		same := near[tr.group[e]]
		switch {
		case same && math.Abs(f-math.Pow(2, 2.0/3)) < 1e-5:
			borrowed++
		case !same && f != 1:
			other++
		}
	}
	if borrowed == 0 || other != 0 || len(near) < 2 {
		t.Errorf("borrowed by %d edges in %d groups, %d edges of other groups changed", borrowed, len(near), other)
	}
	start = time.Now()
	d := tr.Durations(now, nil)
	dur := time.Since(start)
	if len(d) != len(net.Edges) {
		t.Fatalf("Durations length %d", len(d))
	}
	st := tr.Stats()
	t.Logf("Porto: %d edges, %d groups, %d cells; fit %d obs in %v, NewTraffic %v, Durations %v", len(net.Edges),
		len(tr.groupCell), tr.numCells, len(obs), fit.Round(time.Millisecond), setup.Round(time.Millisecond), dur.Round(time.Microsecond))
	t.Logf("stats %+v", st)
}

// BenchmarkObservePorto measures live ingestion on the Porto network with
// realistic spread (random edges, times advancing).
func BenchmarkObservePorto(b *testing.B) {
	net := etaPorto(b)
	tr, err := NewTraffic(net, nil, TrafficOptions{})
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 1))
	obs := make([]Observation, 1<<16)
	for i := range obs {
		e := uint32(rng.IntN(len(net.Edges)))
		obs[i] = Observation{Edge: e, Time: etaMonday.Add(time.Duration(i) * 50 * time.Millisecond), Duration: net.Edges[e].Duration * (1 + rng.Float64())}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		_ = tr.Observe(obs[i&(len(obs)-1)])
	}
}

// BenchmarkDurationsPorto measures a full re-customisation vector.
func BenchmarkDurationsPorto(b *testing.B) {
	net := etaPorto(b)
	tr, err := NewTraffic(net, nil, TrafficOptions{})
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 1))
	now := etaMonday.Add(8 * time.Hour)
	for i := range 20000 {
		e := uint32(rng.IntN(len(net.Edges)))
		_ = tr.Observe(Observation{Edge: e, Time: now.Add(time.Duration(i-20000) * 100 * time.Millisecond), Duration: net.Edges[e].Duration * (1 + rng.Float64())})
	}
	dst := make([]float64, len(net.Edges))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		dst = tr.Durations(now, dst)
	}
}

// TestTrafficNeighbours checks the pooling over adjacent cells against
// hand-computed values (Shrink 0.5): edge A in cell C, edges B (same class)
// and D (other class) in an adjacent cell N.
//
//	only A observed at 2x:  N's group has no data, takes C's pooled
//	ratio ln2 / 1.5 = (2/3) ln2; D (other class) nothing.
//	then B observed at 4x:  C's neighbour prior 2 ln2 / 1.5 = (4/3) ln2,
//	C's group (ln2 + 0.5 (4/3) ln2) / 1.5 = (10/9) ln2, edge A
//	(ln2 + 0.5 (10/9) ln2) / 1.5 = (28/27) ln2.
func TestTrafficNeighbours(t *testing.T) {
	c := h3.LatLngToCell(h3.NewLatLng(etaLat, etaLon), DefaultH3Resolution)
	var nb h3.Cell
	for _, x := range h3.GridDisk(c, 1) {
		if x != c {
			nb = x
			break
		}
	}
	cc, nc := h3.CellToLatLng(c), h3.CellToLatLng(nb)
	net := etaToyNetwork([]etaToyEdge{
		{cc.Lat, cc.Lng, 20, 2, graph.ClassTertiary, 1},
		{nc.Lat, nc.Lng, 20, 2, graph.ClassTertiary, 2},
		{nc.Lat, nc.Lng, 20, 2, graph.ClassService, 3},
	})
	if etaCell(net, 0) != c || etaCell(net, 1) != nb || etaCell(net, 2) != nb {
		t.Fatal("test network cells are not as intended")
	}
	t0 := etaMonday.Add(10 * time.Hour)
	for _, tc := range []struct {
		name string
		opt  TrafficOptions
		b    float64 // exponent of 2 for edge B after A's observation
	}{
		{"one ring", TrafficOptions{}, 2.0 / 3},
		{"disabled", TrafficOptions{Neighbors: -1}, 0},
	} {
		tr, err := NewTraffic(net, nil, tc.opt)
		if err != nil {
			t.Fatal(err)
		}
		if err := tr.Observe(Observation{Edge: 0, Time: t0, Duration: 4}); err != nil {
			t.Fatal(err)
		}
		for _, x := range []struct {
			e   uint32
			exp float64
		}{{0, 8.0 / 9}, {1, tc.b}, {2, 0}} {
			if got, want := tr.Factor(x.e, t0, t0), math.Pow(2, x.exp); math.Abs(got-want) > 1e-6*want {
				t.Errorf("%s: edge %d factor %.6f, want %.6f", tc.name, x.e, got, want)
			}
		}
		if tc.opt.Neighbors < 0 {
			continue
		}
		if err := tr.Observe(Observation{Edge: 1, Time: t0, Duration: 8}); err != nil {
			t.Fatal(err)
		}
		if got, want := tr.Factor(0, t0, t0), math.Pow(2, 28.0/27); math.Abs(got-want) > 1e-6*want {
			t.Errorf("%s: edge A with both cells observed: factor %.6f, want %.6f", tc.name, got, want)
		}
	}
}

// TestWindowsEstimate checks the estimate from running sums (stored
// weights relative to a ring's base) against the direct formula on random rings:
// entries in and out of time order, some not accepted, rings rebased when
// a value lies 300 time constants (75 h) from the base, and queries far
// before the newest entries, where stored weights underflow.
func TestWindowsEstimate(t *testing.T) {
	const tau = float64(15 * time.Minute)
	maxAge := int64(45 * time.Minute)
	rng := rand.New(rand.NewPCG(1, 2))
	for _, k := range []int{edgeWindow, groupWindow} {
		w := windows{k: k, tau: tau}
		rebased, excluded := 0, 0
		for ring := range 200 {
			s := w.add()
			t0 := int64(1_780_000_000) * int64(time.Second)
			now := t0
			for i := range 3 * k {
				// Mostly forward in steps of up to 10 min, now and then a
				// jump of days (a rebase) or a late value.
				switch step := rng.IntN(20); {
				case step == 0:
					now += int64(4 * 24 * time.Hour)
				case step == 1:
					now -= int64(20 * time.Minute)
				default:
					now += rng.Int64N(int64(10 * time.Minute))
				}
				base := w.base[s]
				w.push(s, now, float32(rng.NormFloat64()), rng.IntN(5) > 0)
				if i > 0 && w.base[s] != base {
					rebased++
				}
				for _, at := range []int64{now, now + int64(time.Minute), now - int64(30*time.Minute), now - int64(8*24*time.Hour)} {
					gs, gw, gt, gok := w.estimate(s, at, maxAge)
					ws, ww, wt, wok := w.estimateExact(s, at, maxAge)
					if gok != wok || gt != wt || !near(gs, ws) || !near(gw, ww) {
						t.Fatalf("k %d ring %d entry %d at %d: estimate (%g, %g, %d, %v), exact (%g, %g, %d, %v)",
							k, ring, i, at-now, gs, gw, gt, gok, ws, ww, wt, wok)
					}
					if gok && gt != w.st[int(s)*w.k+int(w.na[s])-1] {
						excluded++ // the query left out the ring's newest
					}
				}
			}
		}
		if rebased == 0 {
			t.Errorf("k %d: no ring was rebased", k)
		}
		if excluded == 0 {
			t.Errorf("k %d: no query left out a ring's newest values", k)
		}
	}
}

// near reports whether a and b agree to 1e-9 relative (1e-12 absolute).
func near(a, b float64) bool {
	return math.Abs(a-b) <= 1e-12+1e-9*math.Max(math.Abs(a), math.Abs(b))
}
