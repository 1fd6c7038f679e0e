package analytics

import (
	"math/rand/v2"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lastmile/lastmile/engine/store"
)

// TestQuantileMatchesSort checks the histogram percentiles against
// sorting the values: the nearest rank, rounded up to whole minutes.
func TestQuantileMatchesSort(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{1, 2, 3, 10, 99, 1000} {
		var a agg
		var vs []int64
		for range n {
			v := rng.Int64N(3 * 3600)
			if rng.IntN(20) == 0 {
				v = 11 * 3600 // beyond the histogram: capped
			}
			vs = append(vs, v)
			a.hist(hLate, v)
		}
		slices.Sort(vs)
		for _, q := range []float64{0.1, 0.5, 0.9, 1} {
			rank := rankOf(q, int64(n))
			want := min((vs[rank-1]+59)/60, HistMinutes) * 60
			got, ok := a.quantile(hLate, q)
			if !ok || got != want {
				t.Errorf("n=%d q=%v: %d, want %d", n, q, got, want)
			}
		}
	}
	var empty agg
	if _, ok := empty.quantile(hLate, 0.5); ok {
		t.Error("an empty histogram has a quantile")
	}
}

// TestEncodeMerge checks that merging encoded aggregates equals adding
// their facts to one aggregate.
func TestEncodeMerge(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	var whole, merged agg
	for range 20 {
		var part agg
		for range rng.IntN(50) {
			f := randomFact(rng)
			part.add(&f)
			whole.add(&f)
		}
		if err := merged.merge(part.encode(nil)); err != nil {
			t.Fatal(err)
		}
	}
	if merged.c != whole.c {
		t.Fatalf("counters differ:\n%v\n%v", merged.c, whole.c)
	}
	if (merged.h == nil) != (whole.h == nil) || (merged.h != nil && *merged.h != *whole.h) {
		t.Fatal("histograms differ")
	}
}

func randomFact(rng *rand.Rand) store.Fact {
	arr := int64(1767600000 + rng.IntN(86400))
	f := store.Fact{Status: "delivered", Attempt: 1 + int64(rng.IntN(2)), Window: [2]int64{arr - 3600 + int64(rng.IntN(5400)), 0},
		Arrival: arr, Done: arr + 60, Drive: int64(rng.IntN(600)) - 1, Service: 60, PlannedDist: int64(rng.IntN(2000))}
	f.Window[1] = f.Window[0] + 7200
	if rng.IntN(10) == 0 {
		f.Status, f.Reason = "failed", FailReasons[rng.IntN(len(FailReasons))]
	}
	if rng.IntN(2) == 0 {
		f.ETA30 = arr + int64(rng.IntN(1200)) - 600
		f.SoonAt, f.SoonP10, f.SoonP90 = arr-1800, arr-300, arr+300
	}
	return f
}

// TestMergeRejectsCorrupt checks that truncated or foreign data is an
// error, not a panic or a silent zero.
func TestMergeRejectsCorrupt(t *testing.T) {
	var a agg
	f := store.Fact{Status: "delivered", Attempt: 1, Window: [2]int64{1, 2}, Arrival: 100, Done: 200}
	a.add(&f)
	b := a.encode(nil)
	for _, bad := range [][]byte{nil, {}, {1, 2, 3}, b[:len(b)-1], append(slices.Clone(b[:len(b)-1]), 3, 200, 5)} {
		var x agg
		if err := x.merge(bad); err == nil {
			t.Errorf("merge(%v) accepted", bad)
		}
	}
}

// FuzzMerge feeds arbitrary bytes to the rollup decoder.
func FuzzMerge(f *testing.F) {
	var a agg
	fa := store.Fact{Status: "failed", Reason: "refused", Attempt: 1, Window: [2]int64{1, 2}, Arrival: 5000, Done: 5100, ETA10: 4000}
	a.add(&fa)
	f.Add(a.encode(nil))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		var x agg
		_ = x.merge(b)
	})
}

// TestParseQuery checks defaults and every kind of bad input.
func TestParseQuery(t *testing.T) {
	today := time.Date(2026, 12, 5, 15, 0, 0, 0, time.UTC)
	q, err := ParseQuery(url.Values{}.Get, today)
	if err != nil || q.From.Format(time.DateOnly) != "2026-11-06" || q.To.Format(time.DateOnly) != "2026-12-05" || q.Group != "none" || q.Res != RollupRes {
		t.Fatalf("defaults: %+v %v", q, err)
	}
	for _, c := range []struct {
		query, want string
	}{
		{"from=2026-12-06&to=2026-12-01", "after"},
		{"from=2020-01-01&to=2026-01-01", "at most 731"},
		{"from=2026-13-01", "YYYY-MM-DD"},
		{"group=colour", "group"},
		{"res=9", "res"},
		{"res=x", "res"},
		{"plan=0", "plan"},
		{"h3=8928308280fffff", "resolution"}, // resolution 9
		{"h3=nothex", "h3"},
		{"vehicle=" + strings.Repeat("v", 201), "vehicle"},
		{"driver=a%00b", "driver"},
	} {
		v, _ := url.ParseQuery(c.query)
		if _, err := ParseQuery(v.Get, today); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error about %q", c.query, err, c.want)
		}
	}
	v, _ := url.ParseQuery("from=2026-01-01&to=2026-01-31&group=h3&res=6&plan=4&vehicle=van-2&driver=Ana&h3=881e8b6109fffff")
	q, err = ParseQuery(v.Get, today)
	if err != nil || q.Res != 6 || q.Plan != 4 || q.Cell.Resolution() != 8 || q.level() != levelCell {
		t.Fatalf("%+v %v", q, err)
	}
}

// FuzzParseQuery feeds arbitrary query strings to the parser.
func FuzzParseQuery(f *testing.F) {
	f.Add("from=2026-01-01&to=2026-01-31&group=h3&res=6")
	f.Add("h3=881e8b6109fffff&plan=1")
	f.Fuzz(func(t *testing.T, s string) {
		v, err := url.ParseQuery(s)
		if err != nil {
			return
		}
		q, err := ParseQuery(v.Get, time.Date(2026, 12, 5, 0, 0, 0, 0, time.UTC))
		if err == nil && (q.To.Before(q.From) || q.Res < MinRes || q.Res > RollupRes) {
			t.Fatalf("accepted %q as %+v", s, q)
		}
	})
}

// TestNaturalCompare orders vans and days as people read them.
func TestNaturalCompare(t *testing.T) {
	got := []string{"van-10", "van-2", "van-1", "b", "a10", "a9", "08", "10"}
	slices.SortFunc(got, naturalCompare)
	want := []string{"08", "10", "a9", "a10", "b", "van-1", "van-2", "van-10"}
	if !slices.Equal(got, want) {
		t.Fatalf("%v, want %v", got, want)
	}
}

// TestFactInput checks the checks of an imported fact.
func TestFactInput(t *testing.T) {
	d := int64(100)
	good := FactInput{ID: "1", Vehicle: "v", Tracking: "t", Location: [2]float64{-8.6, 41.15}, Status: "delivered", Attempt: 1,
		Arrival: 1767600000, Done: 1767600060, Service: 60, Drive: &d, TimeZone: "Europe/Lisbon"}
	f, err := good.Fact("k", time.UTC)
	if err != nil || f.Day != 20260105 || f.Hour != 8 || f.Class != DefaultClass || f.Drive != 100 {
		t.Fatalf("%+v %v", f, err)
	}
	for name, edit := range map[string]func(*FactInput){
		"status":     func(f *FactInput) { f.Status = "lost" },
		"reason":     func(f *FactInput) { f.Status, f.Reason = "failed", "aliens" },
		"reason2":    func(f *FactInput) { f.Reason = "not_home" },
		"location":   func(f *FactInput) { f.Location = [2]float64{200, 0} },
		"time_zone":  func(f *FactInput) { f.TimeZone = "Mars/Olympus" },
		"arrival":    func(f *FactInput) { f.Arrival = 5 },
		"done":       func(f *FactInput) { f.Done = f.Arrival - 1 },
		"attempt":    func(f *FactInput) { f.Attempt = 0 },
		"service":    func(f *FactInput) { f.Service = -1 },
		"window":     func(f *FactInput) { f.TimeWindow = &[2]int64{1767600000, 1767500000} },
		"soon":       func(f *FactInput) { f.Soon = &SoonInput{Time: 1767600000, P10: 1767600100, P90: 1767600000} },
		"vehicle":    func(f *FactInput) { f.Vehicle = "" },
		"tracking":   func(f *FactInput) { f.Tracking = "a\nb" },
		"drive":      func(f *FactInput) { x := int64(-5); f.Drive = &x },
		"distance_m": func(f *FactInput) { f.PlannedDistance = -1 },
	} {
		in := good
		edit(&in)
		if _, err := in.Fact("k", time.UTC); err == nil {
			t.Errorf("%s: accepted %+v", name, in)
		}
	}
}
