package bench

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/lastmile/lastmile/datasets/sim"
	"github.com/lastmile/lastmile/engine"
	"github.com/lastmile/lastmile/engine/analytics"
	"github.com/lastmile/lastmile/graph"
)

// HistoryConfig configures SimHistory: Days simulated delivery days from
// Start (a Monday at midnight UTC by default) of Vans vans and Shipments
// shipments each, around Porto's centre (or the graph's).
type HistoryConfig struct {
	Graph     *graph.Graph
	Days      int
	Vans      int
	Shipments int
	Seed      uint64
	Start     time.Time
	// Progress, when set, is called after each simulated day.
	Progress func(day int)
}

// historyZone is the zone of the simulated recipients.
const historyZone = "Europe/Lisbon"

// Tuning of the simulated history.
const (
	// historyService is the nominal service per stop: 300 stops per van
	// fit a 12-hour shift with a minute at each door.
	historyService = time.Minute
	historyShift   = 12 * time.Hour
	// historyNotHome is the share of recipients not at home.
	historyNotHome = 0.03
	// historyDrivers is the number of drivers, more than vans: a van has
	// another driver on another day, so driver and vehicle figures differ.
	historyDrivers = 37
	// etaStep is the clock step of the ETA the recipients are shown.
	etaStep = 60
)

// SimHistory drives Days simulated days (datasets/sim: each day's
// reference plan through the day's truth traffic) and returns one fact
// per stop, as a carrier's history would give them: the truth (arrival,
// service, waiting, the reason of a failure), the plan (the reference
// plan's expected arrival, drive and distance per leg) and what the
// recipients were shown. The shown ETA is a schedule predictor, made from
// what a server observes: the plan's expected arrival shifted by the
// delay the van had when it last left a stop (or the depot), evaluated
// every minute; ETA60/30/10 keep it when it first comes within 60, 30 and
// 10 minutes (no more than a sixth closer), arriving_soon goes when it
// comes within 30 minutes, with the window ETA ∓ (3 min + a tenth of the
// time left). The failures of a day come back the next day as second
// attempts (the first shipments of that day take their tracking
// numbers). Vans alternate classes (every fifth electric) and drivers
// rotate over historyDrivers names.
func SimHistory(cfg HistoryConfig) ([]analytics.FactInput, error) {
	if cfg.Graph == nil || cfg.Days <= 0 {
		return nil, errors.New("bench: history: a graph and a number of days are needed")
	}
	if cfg.Start.IsZero() {
		cfg.Start = time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)
	}
	w, err := sim.NewWorld(cfg.Graph.Road, sim.DefaultConfig(cfg.Start, cfg.Days, cfg.Seed))
	if err != nil {
		return nil, fmt.Errorf("bench: history: %w", err)
	}
	var out []analytics.FactInput
	var failed []string // tracking numbers failed the day before
	for d := range cfg.Days {
		date := cfg.Start.AddDate(0, 0, d)
		day, err := sim.NewDay(w, cfg.Graph, sim.DayConfig{Seed: cfg.Seed*1000 + uint64(d), Date: date, Vans: cfg.Vans,
			Shipments: cfg.Shipments, Service: historyService, ShiftStart: 8 * time.Hour, ShiftLength: historyShift,
			NotHome: max(int(historyNotHome*float64(cfg.Shipments)), 1), DriveBys: -1, NoIncident: true, PingInterval: 10 * time.Minute})
		if err != nil {
			return nil, fmt.Errorf("bench: history: day %d: %w", d, err)
		}
		tr, err := day.Run(day.Plan, time.Time{})
		if err != nil {
			return nil, fmt.Errorf("bench: history: day %d: %w", d, err)
		}
		facts, fails := dayFacts(day, tr, d, failed)
		out = append(out, facts...)
		failed = fails
		if cfg.Progress != nil {
			cfg.Progress(d)
		}
	}
	return out, nil
}

// dayFacts turns a simulated day into facts (see SimHistory).
func dayFacts(day *sim.Day, tr *sim.DayTruth, d int, redeliver []string) (out []analytics.FactInput, failed []string) {
	tracking := func(i int) (string, int64) {
		if i < len(redeliver) {
			return redeliver[i], 2
		}
		return fmt.Sprintf("H%03d-%s", d, day.Shipments[i].Tracking), 1
	}
	for v, vt := range tr.Vans {
		class := analytics.DefaultClass
		if v%5 == 4 {
			class = "van_electric"
		}
		driver := fmt.Sprintf("driver-%02d", (v+d*7)%historyDrivers+1)
		shift, depart := day.Vans[v].ShiftStart.Unix(), vt.Depart.Unix()
		left := depart      // when the van last left (the depot, then each stop)
		var departs []int64 // its departures from stops so far, and its delay on the plan then
		var delays []int64
		planReady := shift // the plan's departure from the previous stop
		for k, i := range vt.Stops {
			sh, st := day.Shipments[i], tr.Shipments[i]
			trk, attempt := tracking(i)
			est := day.Estimate[i].Unix()
			f := analytics.FactInput{ID: fmt.Sprintf("d%03d-%s", d, sh.Tracking), Plan: int64(d + 1), Vehicle: vt.ID, Driver: driver,
				Class: class, Tracking: trk, Location: [2]float64{sh.Lon, sh.Lat}, TimeZone: historyZone, Status: string(st.Outcome),
				Reason: st.Reason, Attempt: attempt, TimeWindow: &[2]int64{sh.WindowStart.Unix(), sh.WindowEnd.Unix()},
				Planned: est, Arrival: st.Arrive.Unix(), Done: st.Depart.Unix(), PlannedDrive: max(est-planReady, 0),
				PlannedService: int64(sh.Service / time.Second), Service: st.Depart.Unix() - st.ServiceStart.Unix(),
				Wait: st.ServiceStart.Unix() - st.Arrive.Unix(), PlannedDistance: int64(vt.Routes[k].Distance + 0.5)}
			drive := st.Arrive.Unix() - left
			f.Drive = &drive
			// The shown ETA: the plan shifted by the delay at the last
			// departure before each minute.
			from := shift - 3600
			from -= from % etaStep
			for t := from; t < f.Arrival; t += etaStep {
				var dl int64
				switch j := sort.Search(len(departs), func(j int) bool { return departs[j] > t }); {
				case t < depart:
					dl = max(t-shift, 0) // still at the depot
				case j == 0:
					dl = depart - shift
				default:
					dl = delays[j-1]
				}
				snapshotETA(&f, max(est+dl, t+etaStep), t)
			}
			if st.Outcome == sim.Failed {
				failed = append(failed, trk)
			}
			out = append(out, f)
			left = st.Depart.Unix()
			planReady = max(est, sh.WindowStart.Unix()) + int64(sh.Service/time.Second)
			departs = append(departs, left)
			delays = append(delays, left-planReady)
		}
	}
	return out, failed
}

// snapshotETA applies the shown ETA eta at t to a fact's snapshots.
func snapshotETA(f *analytics.FactInput, eta, t int64) {
	left := eta - t
	for k, slot := range []*int64{&f.ETA60, &f.ETA30, &f.ETA10} {
		h := []int64{3600, 1800, 600}[k]
		if *slot == 0 && left <= h && left > h-h/6 {
			*slot = eta
		}
	}
	if f.Soon == nil && left <= 1800 {
		spread := 180 + left/10
		f.Soon = &analytics.SoonInput{Time: t, P10: eta - spread, P90: eta + spread}
	}
}

// ShiftHistory repeats a history to n days: day D is the simulated day
// D mod len(days), moved by whole days (ids and tracking numbers get the
// day), for the year-long figures.
func ShiftHistory(facts []analytics.FactInput, days, n int) []analytics.FactInput {
	out := make([]analytics.FactInput, 0, len(facts)*n/max(days, 1)+len(facts))
	for rep := 0; rep*days < n; rep++ {
		shift := int64(rep*days) * 86400
		for _, f := range facts {
			if rep > 0 {
				var d int
				fmt.Sscanf(f.ID, "d%03d", &d)
				if rep*days+d >= n {
					continue
				}
				f.ID = fmt.Sprintf("r%02d-%s", rep, f.ID)
				f.Tracking = fmt.Sprintf("R%02d-%s", rep, f.Tracking)
				f.Plan += int64(rep * days)
				w := [2]int64{f.TimeWindow[0] + shift, f.TimeWindow[1] + shift}
				f.TimeWindow = &w
				for _, p := range []*int64{&f.Planned, &f.Arrival, &f.Done, &f.ETA60, &f.ETA30, &f.ETA10} {
					if *p != 0 {
						*p += shift
					}
				}
				if f.Soon != nil {
					s := *f.Soon
					s.Time, s.P10, s.P90 = s.Time+shift, s.P10+shift, s.P90+shift
					f.Soon = &s
				}
			}
			out = append(out, f)
		}
	}
	return out
}

// importFacts posts facts to /v1/analytics/facts in requests of
// analytics.ImportBatch lines.
func importFacts(s *stateServer, facts []analytics.FactInput) error {
	return ImportFacts(func(body []byte) (int, []byte, error) { return s.post("/v1/analytics/facts", body) }, facts)
}

// ImportFacts sends facts as NDJSON through post (a POST of
// /v1/analytics/facts with an admin key), 20,000 a request.
func ImportFacts(post func(body []byte) (int, []byte, error), facts []analytics.FactInput) error {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	for start := 0; start < len(facts); start += analytics.ImportBatch * 4 {
		b.Reset()
		for _, f := range facts[start:min(start+analytics.ImportBatch*4, len(facts))] {
			if err := enc.Encode(f); err != nil {
				return err
			}
		}
		code, body, err := post(b.Bytes())
		if err != nil {
			return err
		}
		if code != 200 {
			return fmt.Errorf("bench: import: %d %s", code, body)
		}
	}
	return nil
}

// get sends a GET with the admin key and returns the status and body.
func (s *stateServer) get(path string) (int, []byte, error) {
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI("http://" + s.c.Addr + path)
	req.Header.Set("Authorization", s.auth)
	if err := s.c.Do(req, resp); err != nil {
		return 0, nil, err
	}
	return resp.StatusCode(), append([]byte(nil), resp.Body()...), nil
}

// AnalyticsConfig configures Analytics.
type AnalyticsConfig struct {
	History HistoryConfig
	// Year, when above History.Days, is the length in days of the long
	// history the simulated days are repeated to (365: a year).
	Year int
	// DB is a PostgreSQL URL; empty: a temporary SQLite file.
	DB string
	// Runs is the number of timed requests per figure (default 5).
	Runs int
	Log  *slog.Logger
}

// FigureTiming is the time of one figure request over HTTP (warm: the
// rollups built), median and worst of the runs.
type FigureTiming struct {
	Figure, Group string
	Days          int
	Rows          int
	Median, Max   time.Duration
}

// AnalyticsReport is the outcome of Analytics.
type AnalyticsReport struct {
	Server         string
	Days, Stops    int
	SimTime        time.Duration
	LoadTime       time.Duration
	RollupTime     time.Duration
	YearDays       int
	YearStops      int
	YearLoadTime   time.Duration
	YearRollupTime time.Duration
	Month, Year    []FigureTiming
}

// analyticsViews are the timed requests: every figure over the range,
// with the groupings a dashboard uses.
var analyticsViews = []struct{ figure, group string }{
	{"on_time", "none"}, {"on_time", "day"}, {"on_time", "hour"}, {"on_time", "h3"}, {"lateness", "vehicle"},
	{"first_attempt", "driver"}, {"failures", "weekday"}, {"productivity", "vehicle"}, {"eta_accuracy", "day"},
	{"notifications", "channel"},
}

// Analytics loads a simulated history through the import API of an
// in-process server on loopback and times every figure over it, then the
// same over a year when Year is set.
func Analytics(cfg AnalyticsConfig) (*AnalyticsReport, error) {
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.Runs <= 0 {
		cfg.Runs = 5
	}
	h := cfg.History
	if h.Start.IsZero() {
		h.Start = time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)
	}
	rep := &AnalyticsReport{Days: h.Days}
	t0 := time.Now()
	if h.Progress == nil {
		h.Progress = func(d int) { log.Info("simulated", "day", d+1, "of", h.Days) }
	}
	facts, err := SimHistory(h)
	if err != nil {
		return nil, err
	}
	rep.SimTime, rep.Stops = time.Since(t0), len(facts)
	s, err := startStateServer(h.Graph, cfg.DB, "", 2, engine.ServerConfig{}, log)
	if err != nil {
		return nil, err
	}
	defer s.close()
	rep.Server = s.st.Dialect().String()
	cookie, err := s.signIn()
	if err != nil {
		return nil, err
	}
	load := func(fs []analytics.FactInput, days int) (time.Duration, time.Duration, []FigureTiming, error) {
		t := time.Now()
		if err := importFacts(s, fs); err != nil {
			return 0, 0, nil, err
		}
		loadTime := time.Since(t)
		from, to := h.Start.Format(time.DateOnly), h.Start.AddDate(0, 0, days-1).Format(time.DateOnly)
		t = time.Now()
		if code, body, err := s.get("/v1/analytics/on_time?from=" + from + "&to=" + to); err != nil || code != 200 {
			return 0, 0, nil, fmt.Errorf("bench: analytics: first figure: %d %s %v", code, body, err)
		}
		rollup := time.Since(t)
		var out []FigureTiming
		for _, v := range analyticsViews {
			var ts []time.Duration
			var rows int
			for range cfg.Runs {
				t := time.Now()
				code, body, err := s.get(fmt.Sprintf("/v1/analytics/%s?from=%s&to=%s&group=%s", v.figure, from, to, v.group))
				ts = append(ts, time.Since(t))
				if err != nil || code != 200 {
					return 0, 0, nil, fmt.Errorf("bench: analytics: %s by %s: %d %s %v", v.figure, v.group, code, body, err)
				}
				var res analytics.Result
				if err := json.Unmarshal(body, &res); err != nil {
					return 0, 0, nil, err
				}
				rows = len(res.Rows)
			}
			slices.Sort(ts)
			out = append(out, FigureTiming{Figure: v.figure, Group: v.group, Days: days, Rows: rows, Median: ts[len(ts)/2], Max: ts[len(ts)-1]})
			log.Info("figure", "figure", v.figure, "group", v.group, "days", days, "median", ts[len(ts)/2])
		}
		// The dashboard's first render: the page with its figures, as
		// a signed-in dispatcher gets it.
		var ts []time.Duration
		for range cfg.Runs {
			t := time.Now()
			code, body, err := s.page(cookie, "/dashboard?from="+from+"&to="+to)
			ts = append(ts, time.Since(t))
			if err != nil || code != 200 || !bytes.Contains(body, []byte(`id="initial"`)) {
				return 0, 0, nil, fmt.Errorf("bench: analytics: dashboard: %d %v", code, err)
			}
		}
		slices.Sort(ts)
		out = append(out, FigureTiming{Figure: "/dashboard", Group: "day", Days: days, Median: ts[len(ts)/2], Max: ts[len(ts)-1]})
		return loadTime, rollup, out, nil
	}
	if rep.LoadTime, rep.RollupTime, rep.Month, err = load(facts, h.Days); err != nil {
		return nil, err
	}
	if cfg.Year > h.Days {
		all := ShiftHistory(facts, h.Days, cfg.Year)
		more := all[len(facts):]
		rep.YearDays, rep.YearStops = cfg.Year, len(all)
		if rep.YearLoadTime, rep.YearRollupTime, rep.Year, err = load(more, cfg.Year); err != nil {
			return nil, err
		}
	}
	return rep, nil
}

// WriteAnalytics prints a report: the history, then per figure and
// grouping the median and worst time of a request over HTTP, against the
// targets (200 ms over the month, 1 s over the year).
func WriteAnalytics(w io.Writer, r *AnalyticsReport) {
	fmt.Fprintf(w, "analytics on %s: %d days, %d stops simulated in %v, imported in %v, rollups built in %v\n",
		r.Server, r.Days, r.Stops, r.SimTime.Round(time.Millisecond), r.LoadTime.Round(time.Millisecond), r.RollupTime.Round(time.Millisecond))
	table := func(name string, ts []FigureTiming, target time.Duration) {
		fmt.Fprintf(w, "\n%s\n%-14s %-9s %6s %10s %10s %s\n", name, "figure", "group", "rows", "median", "worst", "target")
		for _, t := range ts {
			ok := "ok"
			if t.Median > target {
				ok = "MISSED"
			}
			fmt.Fprintf(w, "%-14s %-9s %6d %10v %10v < %v %s\n", t.Figure, t.Group, t.Rows, t.Median.Round(10*time.Microsecond),
				t.Max.Round(10*time.Microsecond), target, ok)
		}
	}
	table(fmt.Sprintf("over %d days (%d stops):", r.Days, r.Stops), r.Month, 200*time.Millisecond)
	if r.YearDays > 0 {
		fmt.Fprintf(w, "\nthe year: %d days, %d stops, imported in %v, rollups built in %v\n", r.YearDays, r.YearStops,
			r.YearLoadTime.Round(time.Millisecond), r.YearRollupTime.Round(time.Millisecond))
		table(fmt.Sprintf("over %d days (%d stops):", r.YearDays, r.YearStops), r.Year, time.Second)
	}
}

// signIn opens a dashboard session with the admin key and returns the
// cookie to send.
func (s *stateServer) signIn() (string, error) {
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI("http://" + s.c.Addr + "/dashboard/session")
	req.Header.SetMethod("POST")
	req.Header.SetContentType("application/x-www-form-urlencoded")
	req.SetBodyString("key=" + url.QueryEscape(strings.TrimPrefix(s.auth, "Bearer ")))
	if err := s.c.Do(req, resp); err != nil {
		return "", err
	}
	var c []byte
	resp.Header.VisitAllCookie(func(k, v []byte) {
		var ck fasthttp.Cookie
		if ck.ParseBytes(v) == nil && string(ck.Key()) == "lm_session" {
			c = append([]byte(nil), ck.Value()...)
		}
	})
	if resp.StatusCode() != 303 || len(c) == 0 {
		return "", fmt.Errorf("bench: dashboard sign-in: %d", resp.StatusCode())
	}
	return "lm_session=" + string(c), nil
}

// page sends a GET with a session cookie.
func (s *stateServer) page(cookie, path string) (int, []byte, error) {
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI("http://" + s.c.Addr + path)
	req.Header.Set("Cookie", cookie)
	if err := s.c.Do(req, resp); err != nil {
		return 0, nil, err
	}
	return resp.StatusCode(), append([]byte(nil), resp.Body()...), nil
}
