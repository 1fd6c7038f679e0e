package web

import (
	"bytes"
	"encoding/json"
	"net/url"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

// dashboardEvil is user text full of markup: it must come out inert
// wherever a page shows it.
const dashboardEvil = `</script><img src=x onerror=alert(1)>"'><script>alert(2)</script>`

// dashboardInitial is figures as the handler embeds them, with hostile
// text in the places users fill (driver names, plan ids, a figure name).
func dashboardInitial(t *testing.T) json.RawMessage {
	t.Helper()
	m := map[string]any{
		"on_time": map[string]any{"figure": "on_time", "from": "2026-11-01", "to": "2026-11-30", "group": "driver", "res": 8,
			"columns": []string{"group", "stops", "on_time", "early", "late", "on_time_rate", "early_rate", "late_rate"},
			"rows": []map[string]any{{"group": dashboardEvil, "stops": 10, "on_time": 9, "early": 0, "late": 1,
				"on_time_rate": 0.9, "early_rate": 0, "late_rate": 0.1}},
			"total": map[string]any{"group": "total", "stops": 10}},
		"lateness": map[string]any{"figure": "lateness", "from": "2026-11-01", "to": "2026-11-30", "group": "driver",
			"columns": []string{"group", "stops"}, "rows": []any{}, "total": map[string]any{"group": "total", "stops": nil},
			"histogram": []map[string]any{{"from_s": 0, "to_s": 300, "stops": 1}, {"from_s": 300, "to_s": nil, "stops": 0}}},
		"notifications": map[string]any{"figure": "notifications", "group": "day", "columns": []string{"group"}, "rows": []any{}},
		"heat": map[string]any{"figure": "on_time", "group": "h3", "res": 8, "rows": []map[string]any{{"group": "882a1072b5fffff",
			"stops": 3, "late_rate": 0.5, "boundary": [][2]float64{{-8.6, 41.1}, {-8.59, 41.1}, {-8.59, 41.11}, {-8.6, 41.1}}}}},
		`evil"><b>`:    map[string]any{"group": "day"},
		"weird_but_ok": map[string]any{"group": "day"},
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	// json.Marshal escapes < > & itself; the page must not rely on that.
	b = bytes.ReplaceAll(b, []byte(`\u003c`), []byte("<"))
	b = bytes.ReplaceAll(b, []byte(`\u003e`), []byte(">"))
	b = bytes.ReplaceAll(b, []byte(`\u0026`), []byte("&"))
	if !bytes.Contains(b, []byte("</script><img")) {
		t.Fatal("fixture lost its markup")
	}
	return b
}

// renderDashboard renders one of the dashboard's pages.
func renderDashboard(t *testing.T, s *Site, tmpl string, data any) string {
	t.Helper()
	var b bytes.Buffer
	if err := s.Render(&b, tmpl, data); err != nil {
		t.Fatalf("%s: %v", tmpl, err)
	}
	return b.String()
}

var (
	initialRE = regexp.MustCompile(`(?s)<script type="application/json" id="initial">(.*?)</script>`)
	assetRE   = regexp.MustCompile(`(?:src|href)="(/static/[^"]*)"`)
	absURLRE  = regexp.MustCompile(`(?i)(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}`)
	scriptRE  = regexp.MustCompile(`<script\b[^>]*>`)
	tagRE     = regexp.MustCompile(`<[a-zA-Z][^>]*>`)
	quotedRE  = regexp.MustCompile(`"[^"]*"`)
	attrRE    = regexp.MustCompile(`(?i)\s(?:style|on[a-z]+)\s*=`)
)

// TestDashboardPagesRender renders the sign-in view, the analytics page
// and the live view with hostile text everywhere: they render, hold what
// their scripts and the handlers rely on, and no user text becomes markup.
func TestDashboardPagesRender(t *testing.T) {
	s, err := New()
	if err != nil {
		t.Fatal(err)
	}
	initial := dashboardInitial(t)
	q := DashboardQuery{From: "2026-11-01", To: "2026-11-30", Group: "driver", Res: "8", Plan: dashboardEvil,
		Vehicle: "van-1", Driver: dashboardEvil, H3: ""}
	cases := []struct {
		name, tmpl string
		data       any
		want       []string
		not        []string
	}{
		{"sign-in", "dashboard.html", NewSignInPage("/dashboard?group=day&from=2026-11-01", dashboardEvil),
			[]string{`action="/dashboard/session"`, `type="password" id="key" name="key"`, `name="next" value="/dashboard?group=day&amp;from=2026-11-01"`,
				`id="signin-error"`, `&lt;img src=x onerror=alert(1)&gt;`},
			[]string{`id="initial"`, `dashboard.js`, `uplot.js`}},
		{"sign-in, foreign next", "dashboard.html", NewSignInPage("//evil.example/x", ""),
			[]string{`name="next" value="/dashboard"`}, []string{"evil.example", `id="signin-error"`}},
		{"no figures is the sign-in", "dashboard.html", NewDashboardPage(q, nil, "c", "u"),
			[]string{`action="/dashboard/session"`}, []string{`id="initial"`}},
		{"dashboard", "dashboard.html", NewDashboardPage(q, initial, dashboardEvil, dashboardEvil),
			[]string{`id="initial"`, `id="filters"`, `action="/dashboard"`, `method="get"`, `type="date" id="f-from" name="from" value="2026-11-01"`,
				`<option value="driver" selected>`, `<option value="8" selected>`,
				`id="chart-on_time"`, `id="chart-lateness"`, `id="chart-first_attempt"`, `id="chart-histogram"`,
				`id="chart-eta_accuracy"`, `id="chart-failures"`, `id="heat-map"`, `id="heat-legend"`,
				`<table class="sortable" id="table-on_time"`, `<table class="sortable" id="table-lateness"`,
				`<table class="sortable" id="table-notifications"`, `id="table-weird_but_ok"`, `id="table-heat"`,
				`id="kpi-on_time_rate"`, `id="kpi-late_p90_s"`, `id="kpi-first_attempt_rate"`, `id="kpi-mae_30_s"`, `id="kpi-stops"`, `id="kpi-km"`,
				`action="/dashboard/logout"`, `name="csrf" value="&lt;/script&gt;`, `href="/dashboard/live"`,
				`href="/v1/analytics/on_time?`, `format=csv`},
			[]string{`<b>`, `table-evil`}},
		{"live", "dashboard_live.html", NewLivePage(dashboardEvil, dashboardEvil),
			[]string{`id="live-map"`, `id="van-list"`, `id="events"`, `id="live-banner"`, `id="risk-legend"`, `class="swatch risk-late"`,
				`action="/dashboard/logout"`, `name="csrf" value="&lt;/script&gt;`, `href="/dashboard"`, `data-after="0"`, `live.js`},
			[]string{`id="initial"`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out := renderDashboard(t, s, c.tmpl, c.data)
			for _, w := range c.want {
				if !strings.Contains(out, w) {
					t.Errorf("missing %s", w)
				}
			}
			for _, w := range c.not {
				if strings.Contains(out, w) {
					t.Errorf("has %s", w)
				}
			}
			// User text is inert: the only markup is the template's.
			if strings.Contains(out, "<img") || strings.Contains(out, "<script>alert") || strings.Contains(out, "onerror=alert(1)>") {
				t.Error("user text became markup")
			}
			// CSP: scripts from files only (or inert JSON), no inline
			// styles or handlers.
			for _, tag := range scriptRE.FindAllString(out, -1) {
				if !strings.Contains(tag, ` src="/static/`) && tag != `<script type="application/json" id="initial">` {
					t.Errorf("inline script %s", tag)
				}
			}
			for _, tag := range tagRE.FindAllString(out, -1) {
				if m := attrRE.FindString(quotedRE.ReplaceAllString(tag, `""`)); m != "" {
					t.Errorf("inline style or handler attribute %q in %s", m, tag)
				}
			}
			// Nothing from elsewhere.
			if m := absURLRE.FindString(out); m != "" {
				t.Errorf("absolute URL %q", m)
			}
			// Every asset named exists, at the address of its content.
			for _, m := range assetRE.FindAllStringSubmatch(out, -1) {
				u, err := url.Parse(strings.ReplaceAll(m[1], "&amp;", "&"))
				if err != nil {
					t.Fatal(err)
				}
				name := strings.TrimPrefix(u.Path, "/static/")
				want, err := s.URL(name)
				if err != nil {
					t.Errorf("asset %s: %v", name, err)
				} else if u.String() != want {
					t.Errorf("asset %s at %s, want %s", name, u, want)
				}
			}
		})
	}
}

// TestDashboardInitialInert checks that the figures embedded in the page
// are inert (no </script> ends the element early) and come back intact
// when read as the script reads them.
func TestDashboardInitialInert(t *testing.T) {
	s, err := New()
	if err != nil {
		t.Fatal(err)
	}
	for _, initial := range []json.RawMessage{
		dashboardInitial(t),
		json.RawMessage(`{"on_time":{"rows":[{"group":"</script><img src=x onerror=alert(1)>"}]},"x":"<!-- <script>"}`),
		json.RawMessage(`{"a":"</SCRIPT >\u2028\u2029 ]]> -->"}`),
	} {
		out := renderDashboard(t, s, "dashboard.html", NewDashboardPage(DashboardQuery{}, initial, "c", "u"))
		m := initialRE.FindStringSubmatch(out)
		if m == nil {
			t.Fatal("no #initial")
		}
		body := m[1]
		if strings.Contains(strings.ToLower(body), "</script") || strings.Contains(body, "<!--") || strings.Contains(body, "<") {
			t.Errorf("#initial holds markup: %s", body)
		}
		var got, want any
		if err := json.Unmarshal([]byte(body), &got); err != nil {
			t.Fatalf("#initial is not JSON: %v", err)
		}
		if s, ok := got.(string); ok { // embedded as a JSON string
			if err := json.Unmarshal([]byte(s), &got); err != nil {
				t.Fatal(err)
			}
		}
		if err := json.Unmarshal(initial, &want); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("#initial reads %v, want %v", got, want)
		}
	}
}

// TestNewDashboardPage checks the page model: the view's defaults taken
// from the figures, the figures' order, their CSV links (each in its own
// grouping) and what is left out.
func TestNewDashboardPage(t *testing.T) {
	p := NewDashboardPage(DashboardQuery{Vehicle: "van 1&2"}, dashboardInitial(t), "c", "u")
	if p.SignIn {
		t.Fatal("sign-in page")
	}
	if p.Query.From != "2026-11-01" || p.Query.To != "2026-11-30" || p.Query.Group != "driver" || p.Query.Res != "8" {
		t.Errorf("view %+v: want the figures' dates, group and resolution", p.Query)
	}
	var names []string
	csv := map[string]string{}
	for _, f := range p.Figures {
		names = append(names, f.Name)
		csv[f.Name] = f.CSV
	}
	if want := []string{"on_time", "lateness", "notifications", "weird_but_ok"}; !reflect.DeepEqual(names, want) {
		t.Errorf("figures %v, want %v", names, want)
	}
	for name, want := range map[string]url.Values{
		"on_time":       {"from": {"2026-11-01"}, "to": {"2026-11-30"}, "group": {"driver"}, "res": {"8"}, "vehicle": {"van 1&2"}, "format": {"csv"}},
		"notifications": {"from": {"2026-11-01"}, "to": {"2026-11-30"}, "group": {"day"}, "res": {"8"}, "vehicle": {"van 1&2"}, "format": {"csv"}},
	} {
		u, err := url.Parse(csv[name])
		if err != nil || u.Path != "/v1/analytics/"+name || !reflect.DeepEqual(u.Query(), want) {
			t.Errorf("%s: CSV %s, want /v1/analytics/%s?%s", name, csv[name], name, want.Encode())
		}
	}
	selected := func(opts []DashboardOption) (s []string) {
		for _, o := range opts {
			if o.Selected {
				s = append(s, o.Value)
			}
		}
		return s
	}
	if g, r := selected(p.Groups), selected(p.Resolutions); !reflect.DeepEqual(g, []string{"driver"}) || !reflect.DeepEqual(r, []string{"8"}) {
		t.Errorf("selected group %v, resolution %v", g, r)
	}
	if len(p.Resolutions) != 5 || p.Resolutions[0].Value != "4" || p.Resolutions[4].Value != "8" {
		t.Errorf("resolutions %+v, want 4..8 (analytics.MinRes..RollupRes)", p.Resolutions)
	}

	// The query wins over the figures; a query without figures takes the
	// defaults.
	p = NewDashboardPage(DashboardQuery{Group: "vehicle", Res: "6"}, json.RawMessage(`{}`), "c", "u")
	if p.Query.Group != "vehicle" || p.Query.Res != "6" || len(p.Figures) != 0 || p.Error != "" {
		t.Errorf("empty figures: %+v", p)
	}
	p = NewDashboardPage(DashboardQuery{}, json.RawMessage(`{}`), "c", "u")
	if p.Query.Group != "day" || p.Query.Res != DashboardDefaultRes {
		t.Errorf("defaults: %+v", p.Query)
	}
	// Figures that are not a JSON object: the page says so, and stays
	// renderable.
	for _, bad := range []string{`[1,2]`, `{"on_time":`, `null`, `"x"`} {
		p = NewDashboardPage(DashboardQuery{}, json.RawMessage(bad), "c", "u")
		if p.SignIn || p.Error == "" || string(p.Initial) != "{}" {
			t.Errorf("%s: %+v", bad, p)
		}
	}
}

// TestDashboardNext checks where the sign-in form leads: a path of this
// site, never elsewhere.
func TestDashboardNext(t *testing.T) {
	for next, want := range map[string]string{
		"":                            "/dashboard",
		"/dashboard":                  "/dashboard",
		"/dashboard/live":             "/dashboard/live",
		"/dashboard?from=2026-11-01":  "/dashboard?from=2026-11-01",
		"//evil.example/":             "/dashboard",
		"/\\evil.example":             "/dashboard",
		"https://evil.example/":       "/dashboard",
		"javascript:alert(1)":         "/dashboard",
		"dashboard":                   "/dashboard",
		"/dashboard\r\nSet-Cookie: x": "/dashboard",
	} {
		if got := NewSignInPage(next, "").Next; got != want {
			t.Errorf("next %q: %q, want %q", next, got, want)
		}
	}
}

// TestDashboardScripts checks the dashboard's own scripts and styles:
// nothing from elsewhere, no markup from strings (innerHTML and kin), no
// eval, no syntax beyond ES2018.
func TestDashboardScripts(t *testing.T) {
	s, err := New()
	if err != nil {
		t.Fatal(err)
	}
	banned := []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function", "http://", "https://",
		"?.", "??", "setAttribute('style'", ".cssText"}
	for _, name := range []string{"dashboard.js", "live.js", "dashboard.css"} {
		a, ok := s.Asset(name)
		if !ok {
			t.Fatalf("no asset %s", name)
		}
		if a.Gzip == nil {
			t.Errorf("%s: not compressed", name)
		}
		body := string(a.Body)
		for _, b := range banned {
			if strings.HasSuffix(name, ".css") && (b == "?." || b == "??") {
				continue
			}
			if strings.Contains(body, b) {
				t.Errorf("%s: has %q", name, b)
			}
		}
	}
	for _, name := range []string{"vendor/uplot.js", "vendor/uplot.css", "vendor/LICENSE-uplot.txt"} {
		if _, ok := s.Asset(name); !ok {
			t.Errorf("no asset %s (run build-assets.sh)", name)
		}
	}
	if a, _ := s.Asset("vendor/uplot.js"); a != nil && !bytes.Contains(a.Body, []byte("var uPlot=")) {
		t.Error("vendor/uplot.js is not uPlot's IIFE build")
	}
}
