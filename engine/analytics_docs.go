package engine

import (
	"strings"

	"github.com/lastmile/lastmile/engine/analytics"
)

// analyticsTags tags the analytics API and the dispatcher's pages (they
// need a state store, as dispatch does).
var analyticsTags = []string{"analytics"}

func enumOf(vs []string) []any {
	out := make([]any, len(vs))
	for i, v := range vs {
		out[i] = v
	}
	return out
}

var analyticsDoc = &apiOperation{
	ID: "analytics", Summary: "A delivery figure per group (dispatcher or admin)", Tags: analyticsTags,
	Description: "Figures over the ended stop attempts of a range of local days: on_time (arrival against the promised window: " +
		"early, on time, late), lateness (mean, P50, P90, max of the late arrivals; a histogram of the total), first_attempt, failures " +
		"(by reason), productivity (planned against actual drive, service and waiting per stop; stops per hour; planned km, metres " +
		"per stop and CO2e from the vehicle class), eta_accuracy (absolute error of the ETA first predicted within 60, 30 and 10 " +
		"minutes; coverage of the window arriving_soon showed; the lead time it gave) and notifications (outbox deliveries by " +
		"outcome). Percentiles are nearest-rank over whole minutes (ceil), capped at 10 h (lateness at its maximum). JSON, or CSV with format=csv or " +
		"Accept: text/csv.",
	Params: []apiParam{
		{Name: "figure", In: "path", Required: true, Description: "The figure.", Schema: map[string]any{"enum": enumOf(analytics.Figures)}, Example: "on_time"},
		{Name: "from", In: "query", Description: "First local day YYYY-MM-DD (default: 29 days before to).", Schema: map[string]any{"type": "string", "format": "date"}},
		{Name: "to", In: "query", Description: "Last local day YYYY-MM-DD (default: today, UTC); at most 731 days in all.", Schema: map[string]any{"type": "string", "format": "date"}},
		{Name: "group", In: "query", Description: "Split by (default none; channel only for notifications).", Schema: map[string]any{"enum": enumOf(analytics.Groups)}},
		{Name: "res", In: "query", Description: "H3 resolution of group=h3 (4-8, default 8).", Schema: map[string]any{"type": "integer", "minimum": analytics.MinRes, "maximum": analytics.RollupRes}},
		{Name: "plan", In: "query", Description: "Only this plan.", Schema: map[string]any{"type": "integer"}},
		{Name: "vehicle", In: "query", Description: "Only this vehicle.", Schema: map[string]any{"type": "string"}},
		{Name: "driver", In: "query", Description: "Only this driver.", Schema: map[string]any{"type": "string"}},
		{Name: "h3", In: "query", Description: "Only stops within this H3 cell (resolution 4-8, hexadecimal).", Schema: map[string]any{"type": "string"}},
		{Name: "format", In: "query", Description: "json (default) or csv.", Schema: map[string]any{"enum": []any{"json", "csv"}}},
	},
	OK: apiContent{Description: "The figure: columns, one row per group, the total.", MediaType: "application/json", Schema: map[string]any{
		"type": "object", "required": []any{"figure", "from", "to", "group", "columns", "rows", "total"},
		"properties": map[string]any{
			"figure": map[string]any{"type": "string"}, "from": map[string]any{"type": "string"}, "to": map[string]any{"type": "string"},
			"group": map[string]any{"type": "string"}, "res": map[string]any{"type": "integer"},
			"columns":   map[string]any{"type": "array", "items": map[string]any{"type": "string"}},
			"rows":      map[string]any{"type": "array", "items": map[string]any{"type": "object"}},
			"total":     map[string]any{"type": "object"},
			"histogram": map[string]any{"type": "array", "items": map[string]any{"type": "object"}},
		}}},
	Errors: append([]int{400, 404}, authErrors...),
}

var analyticsImportDoc = &apiOperation{
	ID: "importFacts", Summary: "Import ended stop attempts (admin)", Tags: analyticsTags,
	Description: "A history from another system for the figures: one JSON object per line (application/x-ndjson), at most " +
		"100,000 a request: id (unique; a line sent again is skipped), vehicle, tracking, location [lon, lat], status (delivered " +
		"or failed with reason), attempt, arrival, done, service, drive (null: unknown) and optionally plan, driver, class, " +
		"time_zone, time_window, planned, planned_drive, planned_service, wait, planned_distance, eta_60, eta_30, eta_10, soon " +
		"{time, p10, p90}. A bad line stores nothing and is named in the error.",
	OK: apiContent{Description: "How many lines came and how many were new.", MediaType: "application/json", Schema: map[string]any{
		"type": "object", "required": []any{"received", "stored"},
		"properties": map[string]any{"received": map[string]any{"type": "integer"}, "stored": map[string]any{"type": "integer"}}}},
	Errors: append([]int{400, 413}, authErrors...),
}

var liveDoc = &apiOperation{
	ID: "live", Summary: "Every van of the current plans, with its open stops and their risk (dispatcher or admin)", Tags: analyticsTags,
	Description: "Per van: position, route, counts (done, total, late, at_risk) and the open stops in order with window, ETA, the shipment's time zone and risk (" +
		strings.Join([]string{"on_time", "at_risk (P90 past the window)", "late (ETA past the window)", "unknown (no ETA)"}, ", ") + ").",
	OK:     apiContent{Description: "The live view.", MediaType: "application/json", Schema: map[string]any{"type": "object", "required": []any{"time", "vehicles"}}},
	Errors: authErrors,
}

var dashboardDoc = &apiOperation{
	ID: "dashboard", Summary: "The dispatcher's analytics dashboard", Tags: analyticsTags,
	Description: "Signed in with a dispatcher or admin key (session cookie): charts, heat map and sortable tables of the figures; the " +
		"query parameters of /v1/analytics select the view, so a URL shares it. Otherwise the sign-in form.",
	OK: htmlPage,
}

var dashboardLiveDoc = &apiOperation{
	ID: "dashboardLive", Summary: "The dispatcher's live map", Tags: analyticsTags,
	Description: "Every van of the current plans moving on the map, stops coloured by risk, events as they happen; a van's route on click.",
	OK:          htmlPage,
}

var dashboardSignInDoc = &apiOperation{
	ID: "dashboardSignIn", Summary: "Sign the dashboard in with a dispatcher or admin key", Tags: analyticsTags,
	Description: "Form fields key and next (a path under /dashboard): sets the session cookie (HttpOnly, Secure, SameSite=Strict; " +
		"16 h) and redirects to next (303).",
	OK:     htmlPage,
	Errors: []int{401, 429},
}

var dashboardSignOutDoc = &apiOperation{
	ID: "dashboardSignOut", Summary: "Sign the dashboard out", Tags: analyticsTags,
	Description: "Form field csrf: ends the session and redirects to /dashboard (303).",
	OK:          htmlPage,
	Errors:      []int{403},
}
