package bench

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/lastmile/lastmile/datasets/sim"
	"github.com/lastmile/lastmile/engine/dispatch"
	"github.com/lastmile/lastmile/engine/web"
	"github.com/lastmile/lastmile/internal/browsertest"
)

// TestBrowserDashboard walks the dispatcher's pages in headless Chromium
// on a desktop-sized window during and after a simulated day on Monaco
// (4 vans, 40 shipments):
//
//   - an hour into the shift, the live view (signed in through its form):
//     the vans' markers stand where GET /v1/live puts them, and move as
//     the replay goes on and the page polls; the open stops are drawn with
//     the API's risk classes; clicking a van in the list draws its route;
//     the event feed fills from the stream;
//   - after the day, the analytics dashboard of the day: every chart drawn,
//     the heat map's cells over the basemap's tiles, the KPI tiles as the
//     API has them, a filter applied through the form changing them to the
//     API's filtered figures, a table sorted by a header;
//   - on both pages, no request to any host but the server, the
//     Content-Security-Policy header on every page, no script error.
//
// Screenshots (live-*.png, dashboard-*.png) go to browsertest.Artefacts.
func TestBrowserDashboard(t *testing.T) {
	if testing.Short() {
		t.Skip("a simulated day with a browser: about 30 s")
	}
	browser := browsertest.Start(t)
	dir := browsertest.Artefacts(t)
	g := dispatchGraph(t, "monaco.osm.pbf")
	date := time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)
	// 45-minute windows, so that some stops end up late and every
	// lateness plot has data; the plan by iterations, so that it does not
	// depend on the machine's load.
	day := sim.DayConfig{Vans: 4, Shipments: 40, ShiftStart: 8 * time.Hour, WindowLength: 45 * time.Minute}
	live := &liveCheck{t: t, browser: browser, dir: dir, openAt: date.Add(day.ShiftStart + time.Hour)}
	dashboardDone := false
	r, err := Dispatch(DispatchConfig{Graph: g, Seed: 1, Date: date, Day: day, Iterations: 20000, Rules: dispatch.Config{RerouteIterations: 2000},
		Step: live.step,
		// The shipments' zone; the live tab runs in another (liveZone).
		Shipment: func(_ int, in *dispatch.ShipmentInput) { in.TimeZone = stopZone },
		AfterReplay: func(ctx context.Context, api DispatchAPI) error {
			checkDashboard(t, browser, dir, api, date)
			dashboardDone = true
			return nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	if live.phase != liveDone {
		t.Errorf("the live view was not checked (the replay ended in phase %d)", live.phase)
	}
	if !dashboardDone {
		t.Errorf("the dashboard was not checked")
	}
	t.Logf("%d stops served; replay %v, total %v; screenshots in %s", r.Stops, r.ReplayTime.Round(time.Millisecond),
		r.Total.Round(time.Millisecond), dir)
}

// stopZone is the simulated shipments' time zone and liveZone the live
// view tab's: the view must show the stops' times in theirs.
const (
	stopZone = "Europe/Monaco"
	liveZone = "Asia/Tokyo"
)

// Phases of the live view's check.
const (
	liveWaiting  = iota // the vans are not out yet
	liveWatching        // the tab is open, the replay goes on
	liveDone            // checked, the tab closed
)

// liveSleeps is how many Step calls sleep while the tab is open, each
// liveSleep of real time, liveEvery of simulated time apart.
const (
	liveSleeps = 4
	liveSleep  = 3 * time.Second
	liveEvery  = 5 * time.Minute
)

// liveCheck is the state of the live view's check across Step calls.
type liveCheck struct {
	t       *testing.T
	browser context.Context
	dir     string
	openAt  time.Time

	phase     int
	tab       context.Context
	rec       *browsertest.Recorder
	api       *apiClient
	key       string // the run's dispatcher key
	origin    string
	proj      screenProjection
	first     map[string]screenPoint // van -> marker position when opened
	polls     int                    // body[data-polls] when opened
	sleeps    int
	nextSleep time.Time
	moves     int // vans seen moving between two sleeps
	last      map[string]screenPoint
}

// hookClient is a client of the run's server for a hook's own calls.
func hookClient(api DispatchAPI) *apiClient {
	return &apiClient{base: api.URL, hc: &http.Client{Timeout: time.Minute}, retryFor: 10 * time.Second, log: slog.New(slog.DiscardHandler)}
}

// screenPoint is a position on the screen, in CSS pixels.
type screenPoint struct{ X, Y float64 }

// vanMarker is a van's marker on the live map.
type vanMarker struct {
	ID string  `json:"id"`
	X  float64 `json:"x"`
	Y  float64 `json:"y"`
}

// step is the Step hook: opens the live view once the vans are out,
// sleeps in a few later steps while the page polls, then checks it.
func (l *liveCheck) step(ctx context.Context, api DispatchAPI, at time.Time) error {
	t := l.t
	switch {
	case l.phase == liveWaiting && !at.Before(l.openAt):
		l.open(api, at)
		l.phase, l.nextSleep = liveWatching, at.Add(liveEvery)
	case l.phase == liveWatching && !at.Before(l.nextSleep):
		time.Sleep(liveSleep) // the page polls while the server's clock stands at `at`
		l.sleeps++
		l.nextSleep = at.Add(liveEvery)
		m := l.markers()
		for id, p := range m {
			if q, ok := l.last[id]; ok && math.Hypot(p.X-q.X, p.Y-q.Y) > 3 {
				l.moves++
			}
		}
		l.last = m
		t.Logf("live view at %s: %s polls, %d markers", at.Format(time.TimeOnly),
			browsertest.Eval[string](t, l.tab, `document.body.dataset.polls`), len(m))
		if l.sleeps == liveSleeps {
			l.check(at)
			l.phase = liveDone
		}
	}
	return nil
}

// open signs in on the live view and checks its first drawing against
// /v1/live.
func (l *liveCheck) open(api DispatchAPI, at time.Time) {
	t := l.t
	l.api = hookClient(api)
	l.origin, l.key = api.URL, api.Key
	l.tab = browsertest.Tab(t, l.browser, 1280, 900, false)
	l.rec = browsertest.Record(t, l.tab)
	browsertest.Do(t, l.tab, 30*time.Second, "open the live view", chromedp.Navigate(api.URL+"/dashboard/live"))
	if _, err := chromedp.Call(l.tab, emulation.SetTimezoneOverride, emulation.SetTimezoneOverrideParams{TimezoneID: liveZone}); err != nil {
		t.Fatalf("the tab's time zone: %v", err)
	}
	if !browsertest.Eval[bool](t, l.tab, `!!document.getElementById('signin-form')`) {
		t.Fatalf("the live view shows no sign-in form to a new browser")
	}
	browsertest.Shoot(t, l.tab, l.dir, "live-00-signin.png")
	signIn(t, l.tab, "/dashboard/live", api.Key)
	checkSessionCookie(t, l.tab, api.URL)
	browsertest.WaitJS(t, l.tab, 30*time.Second, "the live view drawn", `document.body.dataset.ready === '1'`)
	browsertest.WaitJS(t, l.tab, 20*time.Second, "live map tiles", `document.querySelectorAll('#live-map .leaflet-tile-loaded').length >= 4`)
	time.Sleep(300 * time.Millisecond)
	browsertest.Shoot(t, l.tab, l.dir, "live-01-opened.png")

	// The first poll came after the page loaded, within this step: the
	// page shows the server's state now.
	lv := l.live()
	positioned, open := 0, 0
	for _, v := range lv.Vehicles {
		if v.Location != nil {
			positioned++
		}
		open += len(v.Stops)
	}
	t.Logf("live view opened at %s: %d vans in /v1/live, %d with a position, %d open stops", at.Format(time.TimeOnly), len(lv.Vehicles), positioned, open)
	l.first = l.markers()
	l.last = l.first
	l.polls = l.pollCount()
	l.proj = fitProjection(t, lv, l.first)
	l.checkMarkers(lv, l.first, at)
	l.checkStops(lv)
	if n := browsertest.Eval[int](t, l.tab, `document.querySelectorAll('#van-list .van-item[data-van]').length`); n != len(lv.Vehicles) {
		t.Errorf("the list has %d vans, /v1/live %d", n, len(lv.Vehicles))
	}
}

// check runs after the sleeps: the vans moved on the page and stand where
// the API says; stops, route and events.
func (l *liveCheck) check(at time.Time) {
	t := l.t
	// The server's clock stands at `at` during this step: wait for a poll
	// that answers this state, and for the markers' glide (1.2 s).
	n := l.pollCount()
	browsertest.WaitJS(t, l.tab, 15*time.Second, "a poll of the current state",
		fmt.Sprintf(`+document.body.dataset.polls > %d`, n))
	time.Sleep(1500 * time.Millisecond)
	lv := l.live()
	now := l.markers()
	browsertest.Shoot(t, l.tab, l.dir, "live-02-moved.png")
	if p := l.pollCount(); p <= l.polls+1 {
		t.Errorf("the page polled %d times while the replay went on (%d at the start, %d now)", p-l.polls, l.polls, p)
	}
	moved := 0
	for id, p := range now {
		if q, ok := l.first[id]; ok && math.Hypot(p.X-q.X, p.Y-q.Y) > 5 {
			moved++
		}
	}
	if moved == 0 || l.moves == 0 {
		t.Errorf("the vans did not move on the page: %d of %d markers moved since the first poll, %d moves seen between sleeps (first %v, now %v)",
			moved, len(now), l.moves, l.first, now)
	}
	// The map was not moved: the projection fitted at the start still
	// puts each van where the API says it is now.
	l.checkMarkers(lv, now, at)
	l.checkStops(lv)

	// The events of the stream in the feed.
	browsertest.WaitJS(t, l.tab, 10*time.Second, "events in the feed", `document.querySelectorAll('#events li.event').length > 0`)
	if bad := browsertest.Eval[int](t, l.tab, `[...document.querySelectorAll('#events li.event')].filter(li => !li.querySelector('.ev-type').textContent || !li.querySelector('.ev-tracking').textContent).length`); bad > 0 {
		t.Errorf("%d events of the feed lack a type or a tracking number", bad)
	}
	if !browsertest.Eval[bool](t, l.tab, `document.getElementById('events-empty').hidden`) {
		t.Errorf("the feed still says it waits for events")
	}

	// A van selected in the list: its route drawn, its stops stand out.
	var pick *dispatch.LiveVehicle
	for i, v := range lv.Vehicles {
		if v.Location != nil && len(v.Stops) > 0 {
			pick = &lv.Vehicles[i]
			break
		}
	}
	if pick == nil {
		t.Fatalf("no van on the road with open stops at %s", at.Format(time.TimeOnly))
	}
	if browsertest.Eval[int](t, l.tab, `document.querySelectorAll('path.live-route').length`) != 0 {
		t.Errorf("a route is drawn before a van is selected")
	}
	browsertest.Do(t, l.tab, 10*time.Second, "select "+pick.ID,
		chromedp.Click(chromedp.CSS(fmt.Sprintf(`#van-list .van-item[data-van=%q]`, pick.ID))))
	browsertest.WaitJS(t, l.tab, 10*time.Second, "the selected van's route", `document.querySelectorAll('path.live-route').length === 1`)
	// Along the roads (GET /v1/route), not straight from stop to stop.
	browsertest.WaitJS(t, l.tab, 10*time.Second, "the route along the roads", `document.querySelector('path.live-route').dataset.roads === '1'`)
	if n := browsertest.Eval[int](t, l.tab, `(document.querySelector('path.live-route').getAttribute('d').match(/[ML]/g) || []).length`); n <= 2*(len(pick.Stops)+1) {
		t.Errorf("the route of %s has %d vertices for %d open stops: not along the roads", pick.ID, n, len(pick.Stops))
	}
	time.Sleep(800 * time.Millisecond) // the map flies to the van
	browsertest.Shoot(t, l.tab, l.dir, "live-03-route.png")
	if n := browsertest.Eval[int](t, l.tab, `document.querySelectorAll('path.live-stop.selected').length`); n != len(pick.Stops) {
		t.Errorf("%d stops stand out for %s, it has %d open stops", n, pick.ID, len(pick.Stops))
	}
	if got := browsertest.Eval[string](t, l.tab, `document.querySelector('#van-list .van-item[aria-pressed="true"]')?.dataset.van || ''`); got != pick.ID {
		t.Errorf("the pressed van item is %q, want %q", got, pick.ID)
	}
	if browsertest.Eval[bool](t, l.tab, `document.getElementById('van-detail').hidden`) ||
		browsertest.Eval[int](t, l.tab, `document.querySelectorAll('#detail-stops li.detail-stop').length`) != len(pick.Stops) {
		t.Errorf("the detail of %s does not list its %d open stops", pick.ID, len(pick.Stops))
	}

	// Times in the stops' zone, not the browser's.
	for k, st := range pick.Stops {
		if st.ETA == nil {
			continue
		}
		got := browsertest.Eval[[]string](t, l.tab, fmt.Sprintf(`(() => {
			const f = z => new Intl.DateTimeFormat(undefined, {hour: '2-digit', minute: '2-digit', timeZone: z}).format(new Date(%d * 1000));
			return [document.querySelectorAll('#detail-stops li.detail-stop .eta')[%d].textContent, f(%q), f(%q)];
		})()`, st.ETA.Arrival, k, stopZone, liveZone))
		if !strings.HasSuffix(got[0], got[1]) || strings.HasSuffix(got[0], got[2]) {
			t.Errorf("stop %s's ETA reads %q: want it in %s (%q), not in the browser's %s (%q)", st.Tracking, got[0], stopZone, got[1], liveZone, got[2])
		}
		break
	}
	if got := browsertest.Eval[string](t, l.tab, `document.getElementById('live-updated')?.textContent || ''`); !strings.Contains(got, stopZone) {
		t.Errorf("the update time %q does not say it is %s time", got, stopZone)
	}

	checkRequests(t, l.rec, l.origin, "the live view")
	// Leave the page: its event stream must not hold the server up.
	if err := chromedp.Cancel(l.tab); err != nil {
		t.Errorf("close the live tab: %v", err)
	}
}

// live reads GET /v1/live with the dispatcher key.
func (l *liveCheck) live() dispatch.LiveView {
	l.t.Helper()
	var lv dispatch.LiveView
	if _, err := l.api.call(context.Background(), "GET", "/v1/live", l.key, nil, &lv); err != nil {
		l.t.Fatal(err)
	}
	return lv
}

// markers reads the vans' markers on the page.
func (l *liveCheck) markers() map[string]screenPoint {
	ms := browsertest.Eval[[]vanMarker](l.t, l.tab, `[...document.querySelectorAll('.live-van')].map(e => {
		const r = e.getBoundingClientRect();
		return {id: e.querySelector('.live-van-label').textContent, x: r.left, y: r.top};
	})`)
	out := map[string]screenPoint{}
	for _, m := range ms {
		out[m.ID] = screenPoint{m.X, m.Y}
	}
	return out
}

func (l *liveCheck) pollCount() int {
	n, _ := strconv.Atoi(browsertest.Eval[string](l.t, l.tab, `document.body.dataset.polls || '0'`))
	return n
}

// checkMarkers checks that there is one marker per van with a position,
// where the projection puts that position.
func (l *liveCheck) checkMarkers(lv dispatch.LiveView, ms map[string]screenPoint, at time.Time) {
	t := l.t
	t.Helper()
	want := 0
	for _, v := range lv.Vehicles {
		if v.Location == nil {
			continue
		}
		want++
		p, ok := ms[v.ID]
		if !ok {
			t.Errorf("%s: no marker of %s", at.Format(time.TimeOnly), v.ID)
			continue
		}
		q := l.proj.at(*v.Location)
		if d := math.Hypot(p.X-q.X, p.Y-q.Y); d > 3 {
			t.Errorf("%s: the marker of %s is at (%.0f, %.0f), %.1f px from its position in /v1/live (%.0f, %.0f)",
				at.Format(time.TimeOnly), v.ID, p.X, p.Y, d, q.X, q.Y)
		}
	}
	if len(ms) != want || want < 2 {
		t.Errorf("%s: %d van markers, /v1/live has %d vans with a position (want at least 2 on the road)", at.Format(time.TimeOnly), len(ms), want)
	}
}

// checkStops compares the page's stops, by risk, with /v1/live's open
// stops.
func (l *liveCheck) checkStops(lv dispatch.LiveView) {
	t := l.t
	t.Helper()
	want := map[string]int{}
	for _, v := range lv.Vehicles {
		for _, s := range v.Stops {
			want[s.Risk]++
		}
	}
	got := browsertest.Eval[map[string]int](t, l.tab, `(() => {
		const n = {};
		for (const p of document.querySelectorAll('path.live-stop')) {
			const r = [...p.classList].filter(c => c.startsWith('risk-')).map(c => c.slice(5));
			const k = r.length === 1 ? r[0] : 'classes:' + r.join(',');
			n[k] = (n[k] || 0) + 1;
		}
		return n;
	})()`)
	if !maps.Equal(got, want) {
		t.Errorf("stops on the map by risk %v, /v1/live has %v", got, want)
	}
	if len(want) == 0 {
		t.Errorf("no open stop in /v1/live")
	}
}

// screenProjection maps [lon, lat] to the page: Web Mercator at scale
// (pixels per world width) plus an offset.
type screenProjection struct{ scale, x0, y0 float64 }

// mercator returns the Web Mercator coordinates of [lon, lat] in [0, 1].
func mercator(ll [2]float64) (x, y float64) {
	s := math.Sin(ll[1] * math.Pi / 180)
	return (ll[0] + 180) / 360, 0.5 - math.Log((1+s)/(1-s))/(4*math.Pi)
}

func (p screenProjection) at(ll [2]float64) screenPoint {
	x, y := mercator(ll)
	return screenPoint{p.x0 + p.scale*x, p.y0 + p.scale*y}
}

// fitProjection fits the projection of the vans' positions in lv to
// their markers (least squares; the scale must be a whole zoom).
func fitProjection(t *testing.T, lv dispatch.LiveView, ms map[string]screenPoint) screenProjection {
	t.Helper()
	var xs, ys []float64
	var ps []screenPoint
	for _, v := range lv.Vehicles {
		if p, ok := ms[v.ID]; ok && v.Location != nil {
			x, y := mercator(*v.Location)
			xs, ys, ps = append(xs, x), append(ys, y), append(ps, p)
		}
	}
	if len(ps) < 2 {
		t.Fatalf("%d van markers with a position in /v1/live: too few to place the map", len(ps))
	}
	var mx, my, px, py float64
	for i := range ps {
		mx, my, px, py = mx+xs[i], my+ys[i], px+ps[i].X, py+ps[i].Y
	}
	k := float64(len(ps))
	mx, my, px, py = mx/k, my/k, px/k, py/k
	var num, den float64
	for i := range ps {
		num += (xs[i]-mx)*(ps[i].X-px) + (ys[i]-my)*(ps[i].Y-py)
		den += (xs[i]-mx)*(xs[i]-mx) + (ys[i]-my)*(ys[i]-my)
	}
	if den == 0 {
		t.Fatalf("all vans at one position: cannot place the map")
	}
	p := screenProjection{scale: num / den}
	p.x0, p.y0 = px-p.scale*mx, py-p.scale*my
	if z := math.Log2(p.scale / 256); math.Abs(z-math.Round(z)) > 0.01 {
		t.Errorf("the vans' markers are not at one Web Mercator zoom: scale %.0f px is zoom %.3f", p.scale, z)
	}
	return p
}

// signIn signs in through the dashboard's sign-in form the tab shows,
// with key: the form posts to /dashboard/session, which sends the browser
// back to path (the page first asked for).
func signIn(t *testing.T, tab context.Context, path, key string) {
	t.Helper()
	if !browsertest.Eval[bool](t, tab, `!!document.getElementById('signin-form')`) {
		t.Fatalf("%s: no sign-in form", path)
	}
	browsertest.Do(t, tab, 30*time.Second, "sign in",
		chromedp.SetValue(chromedp.CSS("#key"), key),
		chromedp.Click(chromedp.CSS("#signin")))
	browsertest.WaitJS(t, tab, 30*time.Second, "the page after signing in",
		fmt.Sprintf(`location.pathname === %q && !document.getElementById('signin-form') && document.readyState === 'complete'`, path))
}

// checkSessionCookie checks the session cookie the sign-in set: Secure
// and HttpOnly, kept by the browser on the loopback server's plain HTTP.
func checkSessionCookie(t *testing.T, tab context.Context, origin string) {
	t.Helper()
	var found bool
	browsertest.Do(t, tab, 10*time.Second, "read the cookies", chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
		res, err := chromedp.Call(ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{origin + "/"}})
		if err != nil {
			return err
		}
		for _, c := range res.Cookies {
			if c.Name != "lm_session" {
				continue
			}
			found = true
			if !c.Secure || !c.HTTPOnly || string(c.SameSite) != "Strict" {
				t.Errorf("session cookie: secure %v, http-only %v, same-site %q", c.Secure, c.HTTPOnly, c.SameSite)
			}
		}
		return nil
	}))
	if !found {
		t.Errorf("the browser kept no lm_session cookie for %s", origin)
	}
	if browsertest.Eval[bool](t, tab, `document.cookie.includes('lm_session')`) {
		t.Errorf("the page's script can read the session cookie")
	}
}

// checkRequests checks that every request the tab sent went to the
// server (origin) and that every page it loaded came with the engine's
// Content-Security-Policy, and that no script failed.
func checkRequests(t *testing.T, rec *browsertest.Recorder, origin, what string) {
	t.Helper()
	pages, inline := 0, 0
	reqs := rec.Requests()
	for _, q := range reqs {
		if strings.HasPrefix(q.URL, "data:") || strings.HasPrefix(q.URL, "blob:") {
			// Not a request to any host: the browser's own images (the
			// date fields' calendar icon) or the page's generated ones.
			inline++
			continue
		}
		if !strings.HasPrefix(q.URL, origin+"/") {
			t.Errorf("%s: a request to another origin than %s: %s %s (%s)", what, origin, q.Method, q.URL, q.Type)
		}
		if q.Type == "Document" && q.Status == 200 {
			pages++
			if got := q.Headers["content-security-policy"]; got != web.CSP {
				t.Errorf("%s: %s came with Content-Security-Policy %q", what, q.URL, got)
			}
		}
	}
	if pages == 0 {
		t.Errorf("%s: no page loaded among %d requests", what, len(reqs))
	}
	for _, p := range rec.Problems() {
		t.Errorf("%s: %s", what, p)
	}
	t.Logf("%s: %d requests to %s (%d pages, each with the CSP), %d data: or blob: URLs", what, len(reqs)-inline, origin, pages, inline)
}

// analyticsResult is an answer of GET /v1/analytics/{figure}.
type analyticsResult struct {
	Figure, From, To, Group string
	Columns                 []string
	Rows                    []map[string]any
	Total                   map[string]any
}

// jsonInt reads a JSON number as an int (-1 when it is not one).
func jsonInt(v any) int {
	f, ok := v.(float64)
	if !ok {
		return -1
	}
	return int(math.Round(f))
}

// pageNumber reads a figure as the page writes it ("1,234", "92.5 %").
func pageNumber(s string) (float64, bool) {
	s = strings.NewReplacer(",", "", "\u00a0", "", "\u202f", "", " ", "", "%", "").Replace(s)
	f, err := strconv.ParseFloat(s, 64)
	return f, err == nil
}

// chartInk is what a chart's canvases hold: ink (pixels neither
// transparent nor white) and colour (saturated pixels: the series, not the
// grey axes and grid).
type chartInk struct {
	ID       string `json:"id"`
	Canvases int    `json:"canvases"`
	Empty    bool   `json:"empty"`
	Ink      int    `json:"ink"`
	Colour   int    `json:"colour"`
}

// tableText is a table's text: headers, body rows and footer.
type tableText struct {
	Head []string   `json:"head"`
	Rows [][]string `json:"rows"`
	Foot []string   `json:"foot"`
	Sort []string   `json:"sort"` // each header's aria-sort
}

const readTable = `((sel) => {
	const t = document.querySelector(sel);
	const cells = r => [...r.cells].map(c => c.textContent.trim());
	return {
		head: t.tHead ? cells(t.tHead.rows[0]) : [],
		rows: [...(t.tBodies[0] ? t.tBodies[0].rows : [])].map(cells),
		foot: t.tFoot && t.tFoot.rows.length ? cells(t.tFoot.rows[0]) : [],
		sort: t.tHead ? [...t.tHead.rows[0].cells].map(c => c.getAttribute('aria-sort') || '') : []
	};
})(%q)`

// checkDashboard checks the analytics dashboard of the day (after the
// replay, the server still up).
func checkDashboard(t *testing.T, browser context.Context, dir string, api DispatchAPI, date time.Time) {
	ctx := context.Background()
	c := hookClient(api)
	day := date.Format(time.DateOnly)
	figure := func(name string, q url.Values) analyticsResult {
		t.Helper()
		q.Set("from", day)
		q.Set("to", day)
		var res analyticsResult
		if _, err := c.call(ctx, "GET", "/v1/analytics/"+name+"?"+q.Encode(), api.Key, nil, &res); err != nil {
			t.Fatal(err)
		}
		return res
	}
	all := figure("on_time", url.Values{"group": {"hour"}})
	stops := jsonInt(all.Total["stops"])
	if stops <= 0 {
		t.Fatalf("no finished stops in the analytics of %s: %v", day, all.Total)
	}

	tab := browsertest.Tab(t, browser, 1280, 900, false)
	rec := browsertest.Record(t, tab)
	path := "/dashboard"
	browsertest.Do(t, tab, 30*time.Second, "open the dashboard",
		chromedp.Navigate(fmt.Sprintf("%s%s?from=%s&to=%s&group=hour", api.URL, path, day, day)))
	if browsertest.Eval[bool](t, tab, `!!document.getElementById('signin-form')`) {
		// The live view signed this browser in; its session should hold.
		t.Errorf("the dashboard asks to sign in again in the browser signed in on the live view")
		signIn(t, tab, path, api.Key)
	}
	browsertest.WaitJS(t, tab, 30*time.Second, "the dashboard drawn", `document.body.dataset.ready === '1'`)
	// The first render: paint, and everything drawn (a figure, not a
	// timed assertion; bench/RESULTS.md keeps it).
	times := browsertest.Eval[[]float64](t, tab, `[
		(performance.getEntriesByName('first-contentful-paint')[0] || {startTime: -1}).startTime,
		(performance.getEntriesByName('lm-ready')[0] || {startTime: -1}).startTime]`)
	t.Logf("dashboard first render on loopback: first contentful paint %.0f ms, every chart, the heat map and the tables drawn %.0f ms after the navigation started", times[0], times[1])
	browsertest.WaitJS(t, tab, 20*time.Second, "heat map tiles", `document.querySelectorAll('#heat-map .leaflet-tile-loaded').length >= 1`)
	time.Sleep(500 * time.Millisecond)
	browsertest.Shoot(t, tab, dir, "dashboard-01-day.png")

	// The charts: a canvas with the series drawn on it, none empty.
	charts := browsertest.Eval[[]chartInk](t, tab, `[...document.querySelectorAll('.chart')].map(el => {
		const cs = [...el.querySelectorAll('canvas')];
		let ink = 0, colour = 0;
		for (const c of cs) {
			if (!c.width || !c.height) continue;
			const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
			for (let i = 0; i < d.length; i += 4) {
				const r = d[i], g = d[i + 1], b = d[i + 2], a = d[i + 3];
				if (a < 32 || (r > 240 && g > 240 && b > 240)) continue;
				ink++;
				if (Math.max(r, g, b) - Math.min(r, g, b) > 60) colour++;
			}
		}
		return {id: el.id, canvases: cs.length, empty: el.classList.contains('chart-empty'), ink: ink, colour: colour};
	})`)
	wantCharts := []string{"chart-on_time", "chart-lateness", "chart-first_attempt", "chart-histogram", "chart-eta_accuracy", "chart-failures"}
	var ids []string
	for _, ch := range charts {
		ids = append(ids, ch.ID)
		t.Logf("%s: %d canvases, %d pixels of ink, %d coloured", ch.ID, ch.Canvases, ch.Ink, ch.Colour)
		if ch.Empty || ch.Canvases == 0 || ch.Ink < 1000 || ch.Colour < 100 {
			t.Errorf("%s is not drawn: empty %v, %d canvases, %d pixels of ink, %d coloured", ch.ID, ch.Empty, ch.Canvases, ch.Ink, ch.Colour)
		}
	}
	slices.Sort(ids)
	slices.Sort(wantCharts)
	if !slices.Equal(ids, wantCharts) {
		t.Errorf("charts %v, want %v", ids, wantCharts)
	}

	// The heat map: a cell per H3 cell of the API, over drawn tiles.
	heat := figure("on_time", url.Values{"group": {"h3"}})
	cells := 0
	for _, r := range heat.Rows {
		if b, ok := r["boundary"].([]any); ok && len(b) >= 3 {
			cells++
		}
	}
	if n := browsertest.Eval[int](t, tab, `document.querySelectorAll('#heat-map path.heat-cell').length`); n != cells || n == 0 {
		t.Errorf("%d heat cells on the map, the API has %d cells with a boundary", n, cells)
	}
	tiles := browsertest.Eval[[]int](t, tab, `(() => {
		const cs = [...document.querySelectorAll('#heat-map canvas.leaflet-tile')];
		let roads = 0;
		for (const c of cs) {
			const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
			for (let i = 0; i < d.length; i += 4) {
				// Off the land colour #f2efe9: roads.
				if (Math.abs(d[i] - 0xf2) + Math.abs(d[i + 1] - 0xef) + Math.abs(d[i + 2] - 0xe9) > 24) roads++;
			}
		}
		return [cs.length, roads];
	})()`)
	if tiles[0] == 0 || tiles[1] < 1000 {
		t.Errorf("the heat map's basemap: %d tile canvases, %d road pixels", tiles[0], tiles[1])
	}
	if roads, colours := browsertest.MapDrawn(t, browsertest.ElementShot(t, tab, "#heat-map")); roads < 0.03 || colours < 8 {
		t.Errorf("the heat map looks blank: %.1f%% of pixels off the land colour, %d colours", 100*roads, colours)
	}

	// The KPI tiles as the API has them.
	kpi := func(id string) string {
		return browsertest.Eval[string](t, tab, fmt.Sprintf(`document.querySelector('#kpi-%s .kpi-value').textContent`, id))
	}
	if got := kpi("stops"); got != strconv.Itoa(stops) {
		t.Errorf("KPI stops %q, the API's on_time total %d", got, stops)
	}
	if rate, ok := all.Total["on_time_rate"].(float64); ok {
		if got, ok := pageNumber(kpi("on_time_rate")); !ok || math.Abs(got-100*rate) > 0.051 {
			t.Errorf("KPI on-time rate %q, the API's %.4f", kpi("on_time_rate"), rate)
		}
	}
	for _, id := range []string{"on_time_rate", "first_attempt_rate", "mae_30_s", "km"} {
		if v := kpi(id); v == "" || v == "–" {
			t.Errorf("KPI %s shows %q", id, v)
		}
	}
	ot := browsertest.Eval[tableText](t, tab, fmt.Sprintf(readTable, "#table-on_time"))
	col := slices.Index(ot.Head, "Stops")
	if col < 0 || len(ot.Foot) != len(ot.Head) || ot.Foot[col] != strconv.Itoa(stops) || len(ot.Rows) != len(all.Rows) {
		t.Errorf("the on-time table: %d rows (the API %d), headers %v, total %v (the API's stops %d)", len(ot.Rows), len(all.Rows), ot.Head, ot.Foot, stops)
	}

	// A filter through the form: one van's figures.
	byVan := figure("on_time", url.Values{"group": {"vehicle"}})
	van, vanStops := "", 0
	for _, r := range byVan.Rows {
		if g, _ := r["group"].(string); g != "" && jsonInt(r["stops"]) > 0 && jsonInt(r["stops"]) < stops && (van == "" || g < van) {
			van, vanStops = g, jsonInt(r["stops"])
		}
	}
	if van == "" {
		t.Fatalf("no van with part of the day's stops: %v", byVan.Rows)
	}
	filtered := figure("on_time", url.Values{"group": {"hour"}, "vehicle": {van}})
	if n := jsonInt(filtered.Total["stops"]); n != vanStops {
		t.Errorf("the API: %d stops of %s by hour, %d by vehicle", n, van, vanStops)
	}
	browsertest.Do(t, tab, 20*time.Second, "filter on "+van,
		chromedp.SetValue(chromedp.CSS("#f-vehicle"), van),
		chromedp.Click(chromedp.CSS("#apply")))
	browsertest.WaitJS(t, tab, 30*time.Second, "the dashboard of "+van,
		fmt.Sprintf(`new URLSearchParams(location.search).get('vehicle') === %q && document.body.dataset.ready === '1'`, van))
	time.Sleep(500 * time.Millisecond)
	browsertest.Shoot(t, tab, dir, "dashboard-02-vehicle.png")
	q, _ := url.ParseQuery(strings.TrimPrefix(browsertest.Eval[string](t, tab, `location.search`), "?"))
	if q.Get("from") != day || q.Get("to") != day || q.Get("group") != "hour" || q.Get("vehicle") != van {
		t.Errorf("the filtered view's query %v", q)
	}
	if got := kpi("stops"); got != strconv.Itoa(vanStops) {
		t.Errorf("KPI stops of %s %q, the API's %d (all vans: %d)", van, got, vanStops, stops)
	}
	ot = browsertest.Eval[tableText](t, tab, fmt.Sprintf(readTable, "#table-on_time"))
	if col < 0 || len(ot.Foot) <= col || ot.Foot[col] != strconv.Itoa(vanStops) || len(ot.Rows) != len(filtered.Rows) {
		t.Errorf("the on-time table of %s: %d rows (the API %d), total %v (the API's stops %d)", van, len(ot.Rows), len(filtered.Rows), ot.Foot, vanStops)
	}

	// A van without late stops: its lateness charts say so (not that
	// there are no finished stops).
	if late := figure("lateness", url.Values{"group": {"hour"}, "vehicle": {van}}); jsonInt(late.Total["late"]) == 0 {
		for _, id := range []string{"chart-lateness", "chart-histogram"} {
			if got := browsertest.Eval[string](t, tab, fmt.Sprintf(`(document.querySelector('#%s.chart-empty .empty') || {}).textContent || ''`, id)); got != "No late stops in this range" {
				t.Errorf("%s of %s, which has no late stop, says %q", id, van, got)
			}
		}
	}

	// Sorting by the stops column: ascending, then descending.
	if col >= 0 {
		for _, order := range []string{"ascending", "descending"} {
			browsertest.Do(t, tab, 10*time.Second, "sort by stops",
				chromedp.Click(chromedp.CSS(fmt.Sprintf("#table-on_time thead th:nth-child(%d) button.sort", col+1))))
			ot = browsertest.Eval[tableText](t, tab, fmt.Sprintf(readTable, "#table-on_time"))
			for i, s := range ot.Sort {
				if want := map[bool]string{true: order, false: ""}[i == col]; s != want {
					t.Errorf("after sorting %s: header %q has aria-sort %q, want %q", order, ot.Head[i], s, want)
				}
			}
			var vals []float64
			for _, r := range ot.Rows {
				if v, ok := pageNumber(r[col]); ok {
					vals = append(vals, v)
				}
			}
			sorted := slices.IsSorted(vals)
			if order == "descending" {
				sorted = slices.IsSortedFunc(vals, func(a, b float64) int { return cmp.Compare(b, a) })
			}
			if !sorted || len(vals) != len(ot.Rows) {
				t.Errorf("sorted %s by stops: %v", order, vals)
			}
		}
		browsertest.Shoot(t, tab, dir, "dashboard-03-sorted.png")
	}

	checkRequests(t, rec, api.URL, "the dashboard")
	if err := chromedp.Cancel(tab); err != nil {
		t.Errorf("close the dashboard tab: %v", err)
	}
}
