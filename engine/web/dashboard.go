package web

import (
	"encoding/json"
	"net/url"
	"sort"
	"strconv"

	"github.com/lastmile/lastmile/engine/analytics"
)

// DashboardQuery is the view the URL asks for (all strings as they come
// from the query; the handler validates them through the analytics API
// before building the page). Empty fields are the analytics defaults.
type DashboardQuery struct {
	From, To, Group, Res, Plan, Vehicle, Driver, H3 string
}

// Values returns the query's non-empty fields as URL parameters (from, to,
// group, res, plan, vehicle, driver, h3): the query string of the view.
func (q DashboardQuery) Values() url.Values {
	v := url.Values{}
	for _, f := range [...]struct{ k, v string }{
		{"from", q.From}, {"to", q.To}, {"group", q.Group}, {"res", q.Res},
		{"plan", q.Plan}, {"vehicle", q.Vehicle}, {"driver", q.Driver}, {"h3", q.H3},
	} {
		if f.v != "" {
			v.Set(f.k, f.v)
		}
	}
	return v
}

// DashboardPage is the dispatcher's analytics page (dashboard.html): the
// filter form of the current view and the figures already computed for
// it, which dashboard.js draws (KPI tiles, charts, heat map, tables); or,
// when SignIn, the sign-in form in its place.
type DashboardPage struct {
	// SignIn is the sign-in view: a form POST /dashboard/session with the
	// key and Next; Error is its last failure.
	SignIn bool
	Next   string
	Error  string
	// Query is the current view, its empty dates and group filled from
	// the figures (so the form shows what is drawn).
	Query DashboardQuery
	// Initial is the figures of the view, a JSON object by figure name
	// (plus "heat": on_time grouped by h3), embedded in the page as
	// <script type="application/json" id="initial">.
	Initial json.RawMessage
	// CSRF is the session's token (sign-out form); User the key's name.
	CSRF, User string
	// Groups and Resolutions are the choices of the form's selects.
	Groups, Resolutions []DashboardOption
	// Figures are the figures of Initial in display order, each with its
	// table and CSV link.
	Figures []DashboardFigure
}

// DashboardOption is one choice of a select of the filter form.
type DashboardOption struct {
	Value, Label string
	Selected     bool
}

// DashboardFigure is one figure of the page: its name (the key in
// Initial, the table's id is "table-"+Name), title and the address of the
// same figures as CSV.
type DashboardFigure struct {
	Name, Title, CSV string
}

// dashboardGroups are the groupings the analytics API offers, in the
// order of the form.
var dashboardGroups = []DashboardOption{
	{Value: "day", Label: "Day"}, {Value: "hour", Label: "Hour of day"}, {Value: "weekday", Label: "Weekday"},
	{Value: "vehicle", Label: "Vehicle"}, {Value: "driver", Label: "Driver"}, {Value: "plan", Label: "Plan"},
	{Value: "route", Label: "Route (plan/van)"}, {Value: "class", Label: "Vehicle class"}, {Value: "h3", Label: "Area (H3 cell)"},
}

// dashboardFigures are the known figures in display order, with titles.
var dashboardFigures = []struct{ name, title string }{
	{"on_time", "On-time delivery"},
	{"lateness", "Lateness"},
	{"first_attempt", "First-attempt success"},
	{"failures", "Failed attempts by reason"},
	{"eta_accuracy", "ETA accuracy"},
	{"productivity", "Productivity"},
	{"notifications", "Notifications"},
}

// DashboardDefaultRes is the H3 resolution of the heat map and of group
// h3 when the query names none.
const DashboardDefaultRes = "8"

// figureName reports whether s can name a figure (it becomes an element
// id and a path segment): 1 to 40 of a-z, 0-9 and _.
func figureName(s string) bool {
	if s == "" || len(s) > 40 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// NewDashboardPage builds the page: q is the current view, initial is a
// JSON object {"on_time": RESULT, "lateness": RESULT, ..., "heat": RESULT}
// with the figures of the current view already computed by the server (so
// the first render needs no request), csrf is the session's CSRF token
// (for the sign-out form), user the key name shown. An empty initial
// gives the sign-in page (NewSignInPage); one that is not a JSON object
// gives the page without figures.
func NewDashboardPage(q DashboardQuery, initial json.RawMessage, csrf, user string) DashboardPage {
	if len(initial) == 0 {
		return NewSignInPage("/dashboard", "")
	}
	p := DashboardPage{CSRF: csrf, User: user, Initial: initial}
	var figs map[string]json.RawMessage
	if err := json.Unmarshal(initial, &figs); err != nil || figs == nil {
		p.Initial = json.RawMessage("{}")
		p.Error = "The figures could not be read."
		figs = nil
	}
	// What the figures say of the view fills what the query left to the
	// defaults.
	type viewHead struct {
		From, To, Group string
		Res             json.Number
	}
	var head viewHead
	for _, f := range append([]string{"on_time"}, keys(figs)...) {
		var h viewHead
		if json.Unmarshal(figs[f], &h) == nil && h.From != "" {
			head = h
			break
		}
	}
	if q.From == "" {
		q.From = head.From
	}
	if q.To == "" {
		q.To = head.To
	}
	if q.Group == "" {
		q.Group = head.Group
	}
	if q.Group == "" {
		q.Group = "day"
	}
	if q.Res == "" {
		q.Res = head.Res.String()
	}
	if q.Res == "" {
		q.Res = DashboardDefaultRes
	}
	p.Query = q
	for _, g := range dashboardGroups {
		g.Selected = g.Value == q.Group
		p.Groups = append(p.Groups, g)
	}
	for r := analytics.MinRes; r <= analytics.RollupRes; r++ {
		v := strconv.Itoa(r)
		p.Resolutions = append(p.Resolutions, DashboardOption{Value: v, Label: v, Selected: v == q.Res})
	}

	// Figures: the known ones in their order, then any other by name.
	title := map[string]string{}
	var names []string
	for _, f := range dashboardFigures {
		title[f.name] = f.title
		if _, ok := figs[f.name]; ok {
			names = append(names, f.name)
		}
	}
	for _, k := range keys(figs) {
		if _, known := title[k]; !known && k != "heat" && figureName(k) {
			names = append(names, k)
		}
	}
	for _, name := range names {
		// A figure may be grouped otherwise than the view (notifications:
		// by day or channel); its CSV is what the table shows.
		var r struct{ Group string }
		if json.Unmarshal(figs[name], &r) != nil {
			continue // not an object: nothing to draw
		}
		v := q.Values()
		if r.Group != "" {
			v.Set("group", r.Group)
		}
		v.Set("format", "csv")
		t := title[name]
		if t == "" {
			t = name
		}
		p.Figures = append(p.Figures, DashboardFigure{Name: name, Title: t, CSV: "/v1/analytics/" + name + "?" + v.Encode()})
	}
	return p
}

func keys(m map[string]json.RawMessage) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// NewSignInPage builds the dashboard's sign-in view: a form POST
// /dashboard/session with the fields key (the API key, a password input)
// and next (hidden: where to go once signed in), showing errMsg. A next
// that is not a path of this site (//host, a scheme, a backslash) is
// replaced by /dashboard, so the form never leads elsewhere.
func NewSignInPage(next, errMsg string) DashboardPage {
	return DashboardPage{SignIn: true, Next: localPath(next, "/dashboard"), Error: errMsg}
}

// localPath returns p when it is a path of this site, else def.
func localPath(p, def string) string {
	if len(p) == 0 || p[0] != '/' || len(p) > 2000 {
		return def
	}
	if len(p) > 1 && (p[1] == '/' || p[1] == '\\') {
		return def
	}
	for _, c := range p {
		if c < 0x20 || c == 0x7f || c == '\\' {
			return def
		}
	}
	u, err := url.Parse(p)
	if err != nil || u.Scheme != "" || u.Host != "" {
		return def
	}
	return p
}

// LivePage is the dispatcher's live view (dashboard_live.html): a map of
// the vans and their open stops kept current by live.js from GET /v1/live
// every 5 s and the event stream (GET /v1/events/stream).
type LivePage struct {
	// CSRF is the session's token (sign-out form); User the key's name.
	CSRF, User string
	// After is the event cursor the feed starts after (the handler may
	// set it to the log's latest cursor); 0 lets the script take the
	// "cursor" of /v1/live when it has one, else the stream's start.
	After int64
}

// NewLivePage builds the live view of the session with token csrf and
// key name user.
func NewLivePage(csrf, user string) LivePage {
	return LivePage{CSRF: csrf, User: user}
}
