package bench

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/uber/h3-go/v4"

	"github.com/lastmile/lastmile/engine"
	"github.com/lastmile/lastmile/engine/analytics"
	"github.com/lastmile/lastmile/internal/pgtest"
)

// refRow is the reference computation of one group's figures, written
// apart from package analytics: plain lists of values, sorted for
// percentiles.
type refRow struct {
	stops, windowed, onTime, early, late               int64
	lates                                              []int64
	first, firstDelivered, delivered, failed           int64
	reasons                                            map[string]int64
	drivePlanned, drivePlannedN, drive, driveN, worked int64
	servicePlanned, service, wait, dist                int64
	co2                                                float64
	errs                                               [3][]int64
	winN, winIn                                        int64
	leads                                              []int64
}

// refPercentile is the nearest-rank q-quantile of values rounded up to
// whole minutes (capped at 10 hours), in seconds; nil when empty.
func refPercentile(values []int64, q float64) any {
	if len(values) == 0 {
		return nil
	}
	v := slices.Clone(values)
	slices.Sort(v)
	rank := int(math.Ceil(q*float64(len(v)) - 1e-9))
	rank = min(max(rank, 1), len(v))
	m := (v[rank-1] + 59) / 60
	return min(m, 600) * 60
}

func refMean(sum, n int64) any {
	if n == 0 {
		return nil
	}
	return float64(sum) / float64(n)
}

func refRatio(a, b int64) any {
	if b == 0 {
		return nil
	}
	return float64(a) / float64(b)
}

func refSum(v []int64) (s int64) {
	for _, x := range v {
		s += x
	}
	return s
}

// columns returns the figure's columns of the group.
func (r *refRow) columns(figure string) map[string]any {
	out := map[string]any{}
	switch figure {
	case "on_time":
		out["stops"], out["on_time"], out["early"], out["late"] = r.windowed, r.onTime, r.early, r.late
		out["on_time_rate"], out["early_rate"], out["late_rate"] = refRatio(r.onTime, r.windowed), refRatio(r.early, r.windowed), refRatio(r.late, r.windowed)
	case "lateness":
		out["stops"], out["late"] = r.windowed, r.late
		out["late_mean_s"], out["late_p50_s"], out["late_p90_s"] = refMean(refSum(r.lates), int64(len(r.lates))), nil, nil
		out["late_max_s"] = nil
		if len(r.lates) > 0 {
			m := slices.Max(r.lates)
			out["late_max_s"] = m
			out["late_p50_s"], out["late_p90_s"] = min(refPercentile(r.lates, 0.5).(int64), m), min(refPercentile(r.lates, 0.9).(int64), m)
		}
	case "first_attempt":
		out["shipments"], out["first_delivered"], out["first_attempt_rate"] = r.first, r.firstDelivered, refRatio(r.firstDelivered, r.first)
		out["attempts"], out["delivered"], out["failed"] = r.stops, r.delivered, r.failed
	case "failures":
		out["attempts"], out["failed"], out["failed_rate"] = r.stops, r.failed, refRatio(r.failed, r.stops)
		for _, reason := range analytics.FailReasons {
			out[reason] = r.reasons[reason]
		}
	case "productivity":
		out["stops"] = r.stops
		out["drive_planned_s"], out["drive_actual_s"] = refMean(r.drivePlanned, r.drivePlannedN), refMean(r.drive, r.driveN)
		out["service_planned_s"], out["service_actual_s"], out["wait_s"] = refMean(r.servicePlanned, r.stops), refMean(r.service, r.stops), refMean(r.wait, r.stops)
		out["stops_per_hour"] = nil
		if r.worked > 0 {
			out["stops_per_hour"] = float64(r.driveN) * 3600 / float64(r.worked)
		}
		out["km"], out["distance_per_stop_m"], out["co2_kg"] = float64(r.dist)/1000, refMean(r.dist, r.stops), r.co2
	case "eta_accuracy":
		for k, h := range []string{"60", "30", "10"} {
			out["n_"+h], out["mae_"+h+"_s"], out["p90_"+h+"_s"] = int64(len(r.errs[k])), refMean(refSum(r.errs[k]), int64(len(r.errs[k]))), refPercentile(r.errs[k], 0.9)
		}
		out["window_n"], out["window_coverage"] = r.winN, refRatio(r.winIn, r.winN)
		out["soon_n"], out["soon_lead_mean_s"], out["soon_lead_p50_s"] = int64(len(r.leads)), refMean(refSum(r.leads), int64(len(r.leads))), refPercentile(r.leads, 0.5)
	}
	return out
}

// refQuery is one checked request.
type refQuery struct {
	figure, group string
	res           int
	from, to      time.Time
	vehicle       string
	driver        string
	plan          int64
	cell          h3.Cell
}

func (q refQuery) path() string {
	v := url.Values{"group": {q.group}, "from": {q.from.Format(time.DateOnly)}, "to": {q.to.Format(time.DateOnly)}}
	if q.res != 0 {
		v.Set("res", strconv.Itoa(q.res))
	}
	if q.vehicle != "" {
		v.Set("vehicle", q.vehicle)
	}
	if q.driver != "" {
		v.Set("driver", q.driver)
	}
	if q.plan != 0 {
		v.Set("plan", strconv.FormatInt(q.plan, 10))
	}
	if q.cell != 0 {
		v.Set("h3", q.cell.String())
	}
	return "/v1/analytics/" + q.figure + "?" + v.Encode()
}

// reference computes the expected rows of a query from the facts.
func reference(facts []analytics.FactInput, q refQuery) map[string]map[string]any {
	lisbon, _ := time.LoadLocation(historyZone)
	res := q.res
	if res == 0 {
		res = 8
	}
	groups := map[string]*refRow{}
	total := &refRow{reasons: map[string]int64{}}
	for i := range facts {
		f := &facts[i]
		local := time.Unix(f.Arrival, 0).In(lisbon)
		day := time.Date(local.Year(), local.Month(), local.Day(), 0, 0, 0, 0, time.UTC)
		if day.Before(q.from) || day.After(q.to) || (q.vehicle != "" && f.Vehicle != q.vehicle) ||
			(q.driver != "" && f.Driver != q.driver) || (q.plan != 0 && f.Plan != q.plan) {
			continue
		}
		cell := h3.LatLngToCell(h3.NewLatLng(f.Location[1], f.Location[0]), 8)
		if q.cell != 0 && cell.Parent(q.cell.Resolution()) != q.cell {
			continue
		}
		var key string
		switch q.group {
		case "day":
			key = day.Format(time.DateOnly)
		case "hour":
			key = fmt.Sprintf("%02d", local.Hour())
		case "weekday":
			key = local.Weekday().String()[:3]
		case "vehicle":
			key = f.Vehicle
		case "driver":
			key = f.Driver
		case "plan":
			key = strconv.FormatInt(f.Plan, 10)
		case "route":
			key = strconv.FormatInt(f.Plan, 10) + "/" + f.Vehicle
		case "class":
			key = f.Class
		case "h3":
			key = cell.Parent(res).String()
		default:
			key = "total"
		}
		r := groups[key]
		if r == nil {
			r = &refRow{reasons: map[string]int64{}}
			groups[key] = r
		}
		for _, r := range []*refRow{r, total} {
			r.stops++
			w := f.TimeWindow
			r.windowed++
			switch {
			case f.Arrival < w[0]:
				r.early++
			case f.Arrival > w[1]:
				r.late++
				r.lates = append(r.lates, f.Arrival-w[1])
			default:
				r.onTime++
			}
			if f.Attempt == 1 {
				r.first++
				if f.Status == "delivered" {
					r.firstDelivered++
				}
			}
			if f.Status == "delivered" {
				r.delivered++
			} else {
				r.failed++
				r.reasons[f.Reason]++
			}
			if f.PlannedDrive > 0 {
				r.drivePlanned += f.PlannedDrive
				r.drivePlannedN++
			}
			r.drive += *f.Drive
			r.driveN++
			r.worked += *f.Drive + f.Wait + f.Service
			r.servicePlanned += f.PlannedService
			r.service += f.Service
			r.wait += f.Wait
			r.dist += f.PlannedDistance
			r.co2 += float64(f.PlannedDistance) / 1000 * analytics.DefaultEmissions[f.Class] / 1000
			for k, e := range []int64{f.ETA60, f.ETA30, f.ETA10} {
				if e > 0 {
					r.errs[k] = append(r.errs[k], max(f.Arrival-e, e-f.Arrival))
				}
			}
			if f.Soon != nil {
				r.leads = append(r.leads, max(f.Arrival-f.Soon.Time, 0))
				r.winN++
				if f.Arrival >= f.Soon.P10 && f.Arrival <= f.Soon.P90 {
					r.winIn++
				}
			}
		}
	}
	out := map[string]map[string]any{}
	for k, r := range groups {
		out[k] = r.columns(q.figure)
	}
	out["total"] = total.columns(q.figure)
	return out
}

// equalValue compares an API value (decoded JSON) with a reference one.
func equalValue(got, want any) bool {
	switch w := want.(type) {
	case nil:
		return got == nil
	case int64:
		g, ok := got.(float64)
		return ok && g == float64(w)
	case float64:
		g, ok := got.(float64)
		return ok && math.Abs(g-w) <= 1e-9*math.Max(1, math.Abs(w))
	}
	return false
}

// historyDays is the length of the tested history; historyVans and
// historyShipments the size of each day (the 30 vans and about
// 9,000 stops a day).
const (
	historyDays      = 30
	historyVans      = 30
	historyShipments = 9000
)

// TestAnalyticsHistory loads thirty simulated days of Porto (30 vans,
// 9,000 stops a day) through the import API of a server on loopback
// (SQLite, then PostgreSQL), and checks every figure, grouped every way
// and filtered, against a reference computed here from the simulator's
// truth; CSV against JSON; bad requests.
func TestAnalyticsHistory(t *testing.T) {
	if testing.Short() {
		t.Skip("thirty simulated days: not in -short")
	}
	g := dispatchGraph(t, "porto.osm.pbf")
	t0 := time.Now()
	facts, err := SimHistory(HistoryConfig{Graph: g, Days: historyDays, Vans: historyVans, Shipments: historyShipments, Seed: 11})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d facts of %d days simulated in %v", len(facts), historyDays, time.Since(t0).Round(time.Millisecond))
	if len(facts) != historyDays*historyShipments {
		t.Fatalf("%d facts, want %d", len(facts), historyDays*historyShipments)
	}
	start := time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)
	end := start.AddDate(0, 0, historyDays-1)
	cellOf := func(f analytics.FactInput, res int) h3.Cell {
		return h3.LatLngToCell(h3.NewLatLng(f.Location[1], f.Location[0]), 8).Parent(res)
	}
	var queries []refQuery
	for _, fig := range []string{"on_time", "lateness", "first_attempt", "failures", "productivity", "eta_accuracy"} {
		for _, grp := range []string{"none", "day", "hour", "weekday", "vehicle", "driver", "plan", "route", "class", "h3"} {
			queries = append(queries, refQuery{figure: fig, group: grp, from: start, to: end})
		}
		queries = append(queries,
			refQuery{figure: fig, group: "h3", res: 6, from: start, to: end},
			refQuery{figure: fig, group: "day", from: start.AddDate(0, 0, 4), to: start.AddDate(0, 0, 11), vehicle: "van-3"},
			refQuery{figure: fig, group: "hour", from: start, to: end, driver: "driver-05"},
			refQuery{figure: fig, group: "vehicle", from: start, to: end, plan: 3},
			refQuery{figure: fig, group: "hour", from: start, to: end, cell: cellOf(facts[0], 7)})
	}
	check := func(t *testing.T, s *stateServer) map[string][]byte {
		t0 := time.Now()
		if err := importFacts(s, facts); err != nil {
			t.Fatal(err)
		}
		t.Logf("imported in %v", time.Since(t0).Round(time.Millisecond))
		// Importing again stores nothing.
		code, body, err := s.post("/v1/analytics/facts", mustNDJSON(t, facts[:10]))
		if err != nil || code != 200 || !bytes.Contains(body, []byte(`"stored":0`)) {
			t.Fatalf("import again: %d %s %v", code, body, err)
		}
		answers := map[string][]byte{}
		for _, q := range queries {
			code, body, err := s.get(q.path())
			if err != nil || code != 200 {
				t.Fatalf("%s: %d %s %v", q.path(), code, body, err)
			}
			answers[q.path()] = body
			var res struct {
				Columns []string         `json:"columns"`
				Rows    []map[string]any `json:"rows"`
				Total   map[string]any   `json:"total"`
			}
			if err := json.Unmarshal(body, &res); err != nil {
				t.Fatal(err)
			}
			want := reference(facts, q)
			got := map[string]map[string]any{"total": res.Total}
			for _, r := range res.Rows {
				if q.group != "none" {
					got[r["group"].(string)] = r
				}
			}
			if len(got) != len(want) {
				t.Errorf("%s: %d groups, want %d", q.path(), len(got), len(want))
				continue
			}
			bad := 0
			for g, wr := range want {
				gr, ok := got[g]
				if !ok {
					t.Errorf("%s: group %q missing", q.path(), g)
					continue
				}
				for col, wv := range wr {
					if !equalValue(gr[col], wv) && bad < 5 {
						bad++
						t.Errorf("%s: group %s: %s = %v, want %v", q.path(), g, col, gr[col], wv)
					}
				}
			}
		}
		return answers
	}
	var sqliteAnswers map[string][]byte
	t.Run("sqlite", func(t *testing.T) {
		s, err := startStateServer(g, "", "", 2, engine.ServerConfig{}, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		defer s.close()
		sqliteAnswers = check(t, s)
		checkAnalyticsCSV(t, s, queries[0].path())
		checkAnalyticsErrors(t, s)
	})
	t.Run("postgres", func(t *testing.T) {
		s, err := startStateServer(g, pgtest.DSN(t), "", 2, engine.ServerConfig{}, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		defer s.close()
		pg := check(t, s)
		for p, b := range pg {
			if sqliteAnswers != nil && !bytes.Equal(b, sqliteAnswers[p]) {
				t.Errorf("%s: PostgreSQL and SQLite answer differently", p)
			}
		}
	})
}

func mustNDJSON(t *testing.T, facts []analytics.FactInput) []byte {
	var b bytes.Buffer
	for _, f := range facts {
		line, err := json.Marshal(f)
		if err != nil {
			t.Fatal(err)
		}
		b.Write(line)
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// checkAnalyticsCSV checks that the CSV of a figure holds its JSON rows.
func checkAnalyticsCSV(t *testing.T, s *stateServer, path string) {
	_, jb, _ := s.get(path)
	code, cb, err := s.get(path + "&format=csv")
	if err != nil || code != 200 {
		t.Fatalf("csv: %d %v", code, err)
	}
	recs, err := csv.NewReader(bytes.NewReader(cb)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	var res analytics.Result
	if err := json.Unmarshal(jb, &res); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(recs[0], res.Columns) || len(recs) != len(res.Rows)+2 {
		t.Fatalf("csv header %v and %d lines; json columns %v and %d rows", recs[0], len(recs), res.Columns, len(res.Rows))
	}
	for i, r := range append(res.Rows, res.Total) {
		for j, c := range res.Columns {
			want := ""
			switch v := r[c].(type) {
			case string:
				want = v
			case float64:
				want = strconv.FormatFloat(v, 'g', -1, 64)
			}
			if got := recs[i+1][j]; got != want {
				if gv, err := strconv.ParseFloat(got, 64); err != nil || math.Abs(gv-r[c].(float64)) > 1e-9 {
					t.Errorf("csv line %d %s = %q, want %q", i+1, c, got, want)
				}
			}
		}
	}
}

// checkAnalyticsErrors sends bad requests: each gets a JSON error with
// its status, none a 500.
func checkAnalyticsErrors(t *testing.T, s *stateServer) {
	for _, c := range []struct {
		path string
		code int
		msg  string
	}{
		{"/v1/analytics/on_time?from=2026-02-01&to=2026-01-01", 400, "after"},
		{"/v1/analytics/on_time?from=2020-01-01&to=2026-01-01", 400, "at most 731"},
		{"/v1/analytics/nope", 404, "figure"},
		{"/v1/analytics/on_time?group=color", 400, "group"},
		{"/v1/analytics/on_time?group=h3&res=12", 400, "res"},
		{"/v1/analytics/on_time?h3=zzz", 400, "h3"},
		{"/v1/analytics/on_time?h3=8f2830828052d25", 400, "resolution"},
		{"/v1/analytics/on_time?from=yesterday", 400, "YYYY-MM-DD"},
		{"/v1/analytics/on_time?plan=-1", 400, "plan"},
		{"/v1/analytics/on_time?format=xml", 400, "format"},
		{"/v1/analytics/on_time?group=channel", 400, "notifications"},
		{"/v1/analytics/notifications?vehicle=van-1", 400, "filter"},
		{"/v1/analytics/on_time?vehicle=" + url.QueryEscape("a\x01b"), 400, "control"},
	} {
		code, body, err := s.get(c.path)
		if err != nil || code != c.code || !bytes.Contains(body, []byte(`"code"`)) || !strings.Contains(string(body), c.msg) {
			t.Errorf("%s: %d %s %v, want %d mentioning %q", c.path, code, body, err, c.code, c.msg)
		}
	}
	for _, c := range []struct{ body, msg string }{
		{`{"id":"x"}`, "vehicle"},
		{`{"id":"x","vehicle":"v","tracking":"t","location":[1,2],"status":"lost","attempt":1,"arrival":1767600000,"done":1767600060,"service":60,"drive":null}`, "status"},
		{"{\"id\":\"x\"\n", "line 1"},
		{"", "empty"},
		{`{"id":"x","vehicle":"v","tracking":"t","location":[1,2],"status":"delivered","attempt":1,"arrival":1767600000,"done":1767500000,"service":60,"drive":null}`, "done"},
		{`{"id":"x","extra":1}`, "extra"},
	} {
		code, body, err := s.post("/v1/analytics/facts", []byte(c.body))
		if err != nil || code != 400 || !strings.Contains(string(body), c.msg) {
			t.Errorf("import %q: %d %s %v, want 400 mentioning %q", c.body, code, body, err, c.msg)
		}
	}
}
