package analytics

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/lastmile/lastmile/engine/problem"
	"github.com/lastmile/lastmile/engine/store"
	"github.com/uber/h3-go/v4"
)

// Error is a request the analytics cannot answer, with the API's error
// code (InvalidQuery, InvalidValue, NotFound; see problem.Error).
type Error = problem.Error

func errorf(code, format string, args ...any) error { return problem.Errorf(code, format, args...) }

// Figures names the figures, in the order the dashboard shows them.
var Figures = []string{"on_time", "lateness", "first_attempt", "failures", "productivity", "eta_accuracy", "notifications"}

// Groups names the groupings a figure can be split by ("" or "none":
// one total; route is a plan's van, "plan/vehicle"; channel only for
// notifications).
var Groups = []string{"none", "day", "hour", "weekday", "vehicle", "driver", "plan", "route", "class", "h3", "channel"}

// MaxDays is the longest date range of a query (two years).
const MaxDays = 731

// Query is one figure's request: the local days From to To (inclusive,
// midnight UTC of each date), the grouping and the filters (zero: none).
// Cell filters on an H3 cell of resolution MinRes..RollupRes; Res is the
// resolution of the h3 grouping.
type Query struct {
	From, To time.Time
	Group    string
	Res      int
	Plan     int64
	Vehicle  string
	Driver   string
	Cell     h3.Cell
}

// ParseQuery reads a query from the request's parameters (get returns ""
// for an absent one): from and to as YYYY-MM-DD (default: the 30 days to
// today), group, res (default RollupRes), plan, vehicle, driver, h3.
func ParseQuery(get func(string) string, today time.Time) (Query, error) {
	q := Query{Group: get("group"), Res: RollupRes, Vehicle: get("vehicle"), Driver: get("driver")}
	day := func(name string, def time.Time) (time.Time, error) {
		v := get(name)
		if v == "" {
			return def, nil
		}
		t, err := time.Parse(time.DateOnly, v)
		if err != nil {
			return time.Time{}, errorf("InvalidValue", "%s %q: want a date YYYY-MM-DD", name, v)
		}
		return t, nil
	}
	t0 := time.Date(today.Year(), today.Month(), today.Day(), 0, 0, 0, 0, time.UTC)
	var err error
	if q.To, err = day("to", t0); err != nil {
		return q, err
	}
	if q.From, err = day("from", q.To.AddDate(0, 0, -29)); err != nil {
		return q, err
	}
	if q.To.Before(q.From) {
		return q, errorf("InvalidValue", "from %s is after to %s", q.From.Format(time.DateOnly), q.To.Format(time.DateOnly))
	}
	if n := int(q.To.Sub(q.From)/(24*time.Hour)) + 1; n > MaxDays {
		return q, errorf("InvalidValue", "from..to spans %d days, at most %d", n, MaxDays)
	}
	if q.Group == "" {
		q.Group = "none"
	}
	if !slices.Contains(Groups, q.Group) {
		return q, errorf("InvalidValue", "group %q: want one of %s", q.Group, strings.Join(Groups, ", "))
	}
	if v := get("res"); v != "" {
		r, err := strconv.Atoi(v)
		if err != nil || r < MinRes || r > RollupRes {
			return q, errorf("InvalidValue", "res %q: want an H3 resolution from %d to %d", v, MinRes, RollupRes)
		}
		q.Res = r
	}
	if v := get("plan"); v != "" {
		p, err := strconv.ParseInt(v, 10, 64)
		if err != nil || p <= 0 {
			return q, errorf("InvalidValue", "plan %q: want a plan id", v)
		}
		q.Plan = p
	}
	for name, v := range map[string]string{"vehicle": q.Vehicle, "driver": q.Driver} {
		if len(v) > 200 || strings.ContainsFunc(v, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
			return q, errorf("InvalidValue", "%s: at most 200 characters, no control characters", name)
		}
	}
	if v := get("h3"); v != "" {
		c := h3.Cell(h3.IndexFromString(v))
		if len(v) > 16 || !c.IsValid() || c.Resolution() < MinRes || c.Resolution() > RollupRes {
			return q, errorf("InvalidValue", "h3 %q: want an H3 cell (hexadecimal) of resolution %d to %d", v, MinRes, RollupRes)
		}
		q.Cell = c
	}
	return q, nil
}

// dayNum is t's date as yyyymmdd.
func dayNum(t time.Time) int64 { return int64(t.Year()*10000 + int(t.Month())*100 + t.Day()) }

// dayTime is the date of a yyyymmdd number.
func dayTime(d int64) time.Time {
	return time.Date(int(d/10000), time.Month(d/100%100), int(d%100), 0, 0, 0, 0, time.UTC)
}

// level is the rollup level a query reads: the fleet's hours or areas
// unless it needs a plan, van or driver too, then every key.
func (q *Query) level() int64 {
	hour, cell := q.Group == "hour", q.Group == "h3" || q.Cell != 0
	switch {
	case !hour && !cell:
		return levelDay
	case hour && cell, q.Plan != 0, q.Vehicle != "", q.Driver != "":
		return levelCell
	case q.Group == "vehicle", q.Group == "driver", q.Group == "plan", q.Group == "route":
		return levelCell
	case hour:
		return levelHour
	}
	return levelArea
}

// groupOf returns the group label of a rollup row ("" when the row is
// filtered out).
func (q *Query) groupOf(r *store.Rollup) string {
	if q.Cell != 0 && h3.Cell(r.Cell).Parent(q.Cell.Resolution()) != q.Cell {
		return ""
	}
	switch q.Group {
	case "day":
		return dayTime(r.Day).Format(time.DateOnly)
	case "hour":
		return fmt.Sprintf("%02d", r.Hour)
	case "weekday":
		return dayTime(r.Day).Weekday().String()[:3]
	case "vehicle":
		return r.Vehicle
	case "driver":
		return r.Driver
	case "plan":
		return strconv.FormatInt(r.Plan, 10)
	case "route":
		return strconv.FormatInt(r.Plan, 10) + "/" + r.Vehicle
	case "class":
		return r.Class
	case "h3":
		return h3.Cell(r.Cell).Parent(q.Res).String()
	}
	return "total"
}

// Row is one line of a figure: "group" and the figure's columns (a nil
// value: no data).
type Row map[string]any

// Bucket is one bar of a histogram: the stops whose value lies in
// (FromS, ToS] seconds (ToS nil: above FromS).
type Bucket struct {
	FromS int64  `json:"from_s"`
	ToS   *int64 `json:"to_s"`
	Stops int64  `json:"stops"`
}

// Result is a figure over a query: its rows per group (in group order)
// and the total, Columns naming the row fields in display order.
type Result struct {
	Figure    string   `json:"figure"`
	From      string   `json:"from"`
	To        string   `json:"to"`
	Group     string   `json:"group"`
	Res       int      `json:"res,omitempty"`
	Columns   []string `json:"columns"`
	Rows      []Row    `json:"rows"`
	Total     Row      `json:"total"`
	Histogram []Bucket `json:"histogram,omitempty"`
}

// columns are the columns of each figure after "group".
var columns = map[string][]string{
	"on_time":       {"stops", "on_time", "early", "late", "on_time_rate", "early_rate", "late_rate"},
	"lateness":      {"stops", "late", "late_mean_s", "late_p50_s", "late_p90_s", "late_max_s"},
	"first_attempt": {"shipments", "first_delivered", "first_attempt_rate", "attempts", "delivered", "failed"},
	"failures":      append([]string{"attempts", "failed", "failed_rate"}, FailReasons...),
	"productivity": {"stops", "drive_planned_s", "drive_actual_s", "service_planned_s", "service_actual_s", "wait_s",
		"stops_per_hour", "km", "distance_per_stop_m", "co2_kg"},
	"eta_accuracy": {"n_60", "mae_60_s", "p90_60_s", "n_30", "mae_30_s", "p90_30_s", "n_10", "mae_10_s", "p90_10_s",
		"window_n", "window_coverage", "soon_n", "soon_lead_mean_s", "soon_lead_p50_s"},
	"notifications": {"sent", "skipped", "dead", "pending", "retries"},
}

// Columns returns the columns of a figure (with "group" first), nil for
// an unknown one.
func Columns(figure string) []string {
	c, ok := columns[figure]
	if !ok {
		return nil
	}
	return append([]string{"group"}, c...)
}

func ratio(a, b int64) any {
	if b == 0 {
		return nil
	}
	return float64(a) / float64(b)
}

func mean(sum, n int64) any {
	if n == 0 {
		return nil
	}
	return float64(sum) / float64(n)
}

func quant(a *agg, k int, q float64) any {
	if v, ok := a.quantile(k, q); ok {
		return v
	}
	return nil
}

// row computes a figure's columns from an aggregate.
func row(figure, group string, a *agg, co2kg float64) Row {
	c := &a.c
	r := Row{"group": group}
	switch figure {
	case "on_time":
		r["stops"], r["on_time"], r["early"], r["late"] = c[cWindowed], c[cOnTime], c[cEarly], c[cLate]
		r["on_time_rate"], r["early_rate"], r["late_rate"] = ratio(c[cOnTime], c[cWindowed]), ratio(c[cEarly], c[cWindowed]), ratio(c[cLate], c[cWindowed])
	case "lateness":
		r["stops"], r["late"] = c[cWindowed], c[cLate]
		// Whole minutes rounded up, but never above the exact maximum.
		r["late_mean_s"], r["late_p50_s"], r["late_p90_s"] = mean(c[cLateSum], c[cLate]), nil, nil
		r["late_max_s"] = any(nil)
		if c[cLate] > 0 {
			r["late_max_s"] = c[cLateMax]
			p50, _ := a.quantile(hLate, 0.5)
			p90, _ := a.quantile(hLate, 0.9)
			r["late_p50_s"], r["late_p90_s"] = min(p50, c[cLateMax]), min(p90, c[cLateMax])
		}
	case "first_attempt":
		r["shipments"], r["first_delivered"], r["first_attempt_rate"] = c[cFirst], c[cFirstDelivered], ratio(c[cFirstDelivered], c[cFirst])
		r["attempts"], r["delivered"], r["failed"] = c[cStops], c[cDelivered], c[cFailed]
	case "failures":
		r["attempts"], r["failed"], r["failed_rate"] = c[cStops], c[cFailed], ratio(c[cFailed], c[cStops])
		for i, reason := range FailReasons {
			r[reason] = c[cFail0+i]
		}
		r["other"] = c[cFail0+len(FailReasons)-1] + c[cFail0+len(FailReasons)]
	case "productivity":
		r["stops"] = c[cStops]
		r["drive_planned_s"], r["drive_actual_s"] = mean(c[cDrivePlannedSum], c[cDrivePlannedN]), mean(c[cDriveSum], c[cDriveN])
		r["service_planned_s"], r["service_actual_s"] = mean(c[cServicePlannedSum], c[cStops]), mean(c[cServiceSum], c[cStops])
		r["wait_s"] = mean(c[cWaitSum], c[cStops])
		r["stops_per_hour"] = nil
		if c[cWorkedSum] > 0 {
			r["stops_per_hour"] = float64(c[cWorkedN]) * 3600 / float64(c[cWorkedSum])
		}
		r["km"], r["distance_per_stop_m"] = float64(c[cDistSum])/1000, mean(c[cDistSum], c[cStops])
		r["co2_kg"] = co2kg
	case "eta_accuracy":
		for k, h := range []string{"60", "30", "10"} {
			r["n_"+h], r["mae_"+h+"_s"], r["p90_"+h+"_s"] = c[cErr60N+2*k], mean(c[cErr60Sum+2*k], c[cErr60N+2*k]), quant(a, hErr60+k, 0.9)
		}
		r["window_n"], r["window_coverage"] = c[cWinN], ratio(c[cWinIn], c[cWinN])
		r["soon_n"], r["soon_lead_mean_s"], r["soon_lead_p50_s"] = c[cSoonN], mean(c[cSoonSum], c[cSoonN]), quant(a, hSoon, 0.5)
	}
	return r
}

// histogram is the lateness histogram of the total: 5-minute buckets to
// two hours, then one open bucket.
func histogram(a *agg) []Bucket {
	const step, top = 5, 120
	out := make([]Bucket, 0, top/step+1)
	for m := 0; m < top; m += step {
		to := int64(m+step) * 60
		b := Bucket{FromS: int64(m) * 60, ToS: &to}
		if a.h != nil {
			for x := m + 1; x <= m+step; x++ {
				b.Stops += a.h[hLate][x]
			}
		}
		out = append(out, b)
	}
	b := Bucket{FromS: top * 60}
	if a.h != nil {
		for x := top + 1; x <= HistMinutes; x++ {
			b.Stops += a.h[hLate][x]
		}
	}
	return append(out, b)
}

// compareGroups orders group labels: weekdays Monday first, numbers and
// names with numbers by value ("van-2" before "van-10").
func compareGroups(group string) func(a, b string) int {
	if group == "weekday" {
		order := "MonTueWedThuFriSatSun"
		return func(a, b string) int { return cmp.Compare(strings.Index(order, a), strings.Index(order, b)) }
	}
	return naturalCompare
}

// naturalCompare compares strings with runs of digits compared by value.
func naturalCompare(a, b string) int {
	for a != "" && b != "" {
		da, db := digits(a), digits(b)
		if da > 0 && db > 0 {
			na, nb := strings.TrimLeft(a[:da], "0"), strings.TrimLeft(b[:db], "0")
			if c := cmp.Compare(len(na), len(nb)); c != 0 {
				return c
			}
			if c := strings.Compare(na, nb); c != 0 {
				return c
			}
			a, b = a[da:], b[db:]
			continue
		}
		if a[0] != b[0] {
			return cmp.Compare(a[0], b[0])
		}
		a, b = a[1:], b[1:]
	}
	return cmp.Compare(len(a), len(b))
}

func digits(s string) int {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	return i
}
