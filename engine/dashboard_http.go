package engine

import (
	"context"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/lastmile/lastmile/engine/analytics"
	"github.com/lastmile/lastmile/engine/dispatch"
	"github.com/lastmile/lastmile/engine/web"
)

// dashboardFigures are the figures the dashboard's first render carries.
var dashboardFigures = []string{"on_time", "lateness", "first_attempt", "failures", "productivity", "eta_accuracy"}

// dispatcherSession returns the request's session when it belongs to a
// dispatcher or admin key, nil otherwise.
func (s *Server) dispatcherSession(ctx *fasthttp.RequestCtx) *dispatch.DriverSession {
	ds := s.driverSession(ctx)
	if ds == nil || (ds.Principal.Scope != dispatch.ScopeDispatcher && ds.Principal.Scope != dispatch.ScopeAdmin) {
		return nil
	}
	return ds
}

func (s *Server) renderPage(ctx *fasthttp.RequestCtx, name string, page any) error {
	ctx.SetContentType("text/html; charset=utf-8")
	setPageHeaders(ctx)
	return s.site.Render(ctx, name, page)
}

// handleDashboard answers GET /dashboard: the sign-in form, or the
// figures of the view the query names, computed here so that the first
// render needs no further request.
func (s *Server) handleDashboard(ctx *fasthttp.RequestCtx, _ pathParams) error {
	if s.disp == nil {
		return errNoState
	}
	ds := s.dispatcherSession(ctx)
	if ds == nil {
		return s.renderPage(ctx, "dashboard.html", web.NewSignInPage(string(ctx.RequestURI()), ""))
	}
	q, err := s.analyticsQuery(ctx)
	if err != nil {
		return err
	}
	args := ctx.QueryArgs()
	if len(args.Peek("group")) == 0 {
		q.Group = "day" // the dashboard opens on the days of the range
	}
	dq := web.DashboardQuery{From: q.From.Format(time.DateOnly), To: q.To.Format(time.DateOnly), Group: q.Group,
		Res: string(args.Peek("res")), Plan: string(args.Peek("plan")), Vehicle: q.Vehicle, Driver: q.Driver, H3: string(args.Peek("h3"))}
	initial := map[string]analytics.Result{}
	for _, f := range dashboardFigures {
		if initial[f], err = s.analytics.Figure(context.Background(), f, q); err != nil {
			return err
		}
	}
	hq := q
	hq.Group = "h3"
	if initial["heat"], err = s.analytics.Figure(context.Background(), "on_time", hq); err != nil {
		return err
	}
	raw, err := jsonRaw(initial)
	if err != nil {
		return err
	}
	return s.renderPage(ctx, "dashboard.html", web.NewDashboardPage(dq, raw, ds.CSRF, ds.Principal.KeyID))
}

// handleDashboardLive answers GET /dashboard/live: the live map (its
// script polls /v1/live and follows /v1/events/stream).
func (s *Server) handleDashboardLive(ctx *fasthttp.RequestCtx, _ pathParams) error {
	if s.disp == nil {
		return errNoState
	}
	ds := s.dispatcherSession(ctx)
	if ds == nil {
		return s.renderPage(ctx, "dashboard.html", web.NewSignInPage("/dashboard/live", ""))
	}
	// The feed starts with the latest 50 events, not the whole log.
	cur, err := s.cfg.Store.EventCursor(context.Background())
	if err != nil {
		return err
	}
	page := web.NewLivePage(ds.CSRF, ds.Principal.KeyID)
	page.After = max(cur-50, 0)
	return s.renderPage(ctx, "dashboard_live.html", page)
}

// dashboardNext is where a sign-in goes on: a path under /dashboard, else
// /dashboard (never another site).
func dashboardNext(next string) string {
	if next == "/dashboard" || strings.HasPrefix(next, "/dashboard/") || strings.HasPrefix(next, "/dashboard?") {
		if !strings.ContainsAny(next, "\\\r\n") && !strings.HasPrefix(next, "//") {
			return next
		}
	}
	return "/dashboard"
}

// handleDashboardSignIn answers POST /dashboard/session (form fields key
// and next): a dispatcher or admin key opens a session.
func (s *Server) handleDashboardSignIn(ctx *fasthttp.RequestCtx, _ pathParams) error {
	next := dashboardNext(string(ctx.PostArgs().Peek("next")))
	return s.signIn(ctx, next, func(msg string) error {
		return s.renderPage(ctx, "dashboard.html", web.NewSignInPage(next, msg))
	}, dispatch.ScopeDispatcher, dispatch.ScopeAdmin)
}

// handleDashboardSignOut answers POST /dashboard/logout (form field
// csrf).
func (s *Server) handleDashboardSignOut(ctx *fasthttp.RequestCtx, _ pathParams) error {
	return s.signOut(ctx, "/dashboard")
}
