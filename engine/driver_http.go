package engine

import (
	"bytes"
	"context"
	"crypto/subtle"
	"errors"
	"io"
	"mime/multipart"
	"strconv"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/lastmile/lastmile/engine/dispatch"
	"github.com/lastmile/lastmile/engine/web"
)

// sessionCookie names the driver app's session cookie (HttpOnly, Secure,
// SameSite=Strict, Path=/); its value is the session's secret.
const sessionCookie = "lm_session"

// maxPodBytes caps a proof-of-delivery upload (photo, signature and
// fields together).
const maxPodBytes = 12 << 20

// authorizeSession authenticates a driver app request by its session
// cookie; a change (any method but GET and HEAD) must also carry the
// session's CSRF token in X-CSRF-Token, which a page of another origin
// cannot read (the cookie is also SameSite=Strict).
func (s *Server) authorizeSession(ctx *fasthttp.RequestCtx, secret string) error {
	ds, err := s.keys.Session(context.Background(), secret)
	if err != nil {
		return err
	}
	if !ctx.IsGet() && !ctx.IsHead() {
		tok := ctx.Request.Header.Peek("X-CSRF-Token")
		if len(tok) == 0 || subtle.ConstantTimeCompare(tok, []byte(ds.CSRF)) != 1 {
			return &Error{"Forbidden", "missing or wrong X-CSRF-Token: reload the app"}
		}
	}
	p := ds.Principal
	ctx.SetUserValue(principalKey, &p)
	return nil
}

// setSessionCookie sets (or, with an empty secret, clears) the session
// cookie.
func setSessionCookie(ctx *fasthttp.RequestCtx, secret string, expires time.Time) {
	c := fasthttp.AcquireCookie()
	defer fasthttp.ReleaseCookie(c)
	c.SetKey(sessionCookie)
	c.SetValue(secret)
	c.SetPath("/")
	c.SetHTTPOnly(true)
	c.SetSecure(true)
	c.SetSameSite(fasthttp.CookieSameSiteStrictMode)
	if secret == "" {
		c.SetExpire(fasthttp.CookieExpireDelete)
	} else {
		c.SetExpire(expires)
	}
	ctx.Response.Header.SetCookie(c)
}

// driverSession returns the request's session, nil when signed out.
func (s *Server) driverSession(ctx *fasthttp.RequestCtx) *dispatch.DriverSession {
	c := ctx.Request.Header.Cookie(sessionCookie)
	if len(c) == 0 || s.keys == nil {
		return nil
	}
	ds, err := s.keys.Session(context.Background(), string(c))
	if err != nil {
		return nil
	}
	return &ds
}

func (s *Server) renderDriver(ctx *fasthttp.RequestCtx, page web.DriverPage) error {
	ctx.SetContentType("text/html; charset=utf-8")
	setPageHeaders(ctx)
	return s.site.Render(ctx, "driver.html", page)
}

// handleDriverPage answers GET /driver: the sign-in form, or the day's
// stops of the signed-in driver's van rendered by the server (the app's
// script takes over from there).
func (s *Server) handleDriverPage(ctx *fasthttp.RequestCtx, _ pathParams) error {
	if s.disp == nil {
		return errNoState
	}
	ds := s.driverSession(ctx)
	if ds == nil || ds.Principal.Scope != dispatch.ScopeDriver {
		return s.renderDriver(ctx, web.DriverPage{Lang: "en"})
	}
	r, err := s.disp.DriverRoute(context.Background(), ds.Principal.Vehicle)
	if err != nil {
		return err
	}
	return s.renderDriver(ctx, web.NewDriverPage(r, ds.CSRF, time.Now()))
}

// handleDriverSignIn answers POST /driver/session (form field key): a
// driver key opens a session and the app opens (303 to /driver).
func (s *Server) handleDriverSignIn(ctx *fasthttp.RequestCtx, _ pathParams) error {
	return s.signIn(ctx, "/driver", func(msg string) error {
		return s.renderDriver(ctx, web.DriverPage{Lang: "en", Error: msg})
	}, dispatch.ScopeDriver)
}

// signIn opens a browser session for the form's key when its scope is
// one of scopes and redirects to next (303); a key refused is answered
// 401 by refused with the reason to show. Sign-ins are rate limited per
// client address like tracking links.
func (s *Server) signIn(ctx *fasthttp.RequestCtx, next string, refused func(msg string) error, scopes ...string) error {
	if s.disp == nil {
		return errNoState
	}
	if err := s.trackAllowed(ctx); err != nil {
		return err
	}
	ds, err := s.keys.SignIn(context.Background(), string(bytes.TrimSpace(ctx.PostArgs().Peek("key"))), scopes...)
	if err != nil {
		var de *dispatch.Error
		if errors.As(err, &de) {
			ctx.SetStatusCode(fasthttp.StatusUnauthorized)
			msg := "that key is not valid"
			if de.Code == "Forbidden" {
				msg = de.Message
			}
			return refused(msg)
		}
		return err
	}
	setSessionCookie(ctx, ds.Secret, ds.Expires)
	ctx.Response.Header.Set("Location", next)
	ctx.Response.Header.Set("Cache-Control", "no-store")
	ctx.SetStatusCode(fasthttp.StatusSeeOther)
	return nil
}

// handleDriverSignOut answers POST /driver/logout (form field csrf).
func (s *Server) handleDriverSignOut(ctx *fasthttp.RequestCtx, _ pathParams) error {
	return s.signOut(ctx, "/driver")
}

// signOut ends the request's session (its form's csrf field must match)
// and redirects to next (303).
func (s *Server) signOut(ctx *fasthttp.RequestCtx, next string) error {
	if s.disp == nil {
		return errNoState
	}
	if ds := s.driverSession(ctx); ds != nil {
		tok := ctx.PostArgs().Peek("csrf")
		if subtle.ConstantTimeCompare(tok, []byte(ds.CSRF)) != 1 {
			return &Error{"Forbidden", "missing or wrong csrf field"}
		}
		if err := s.keys.SignOut(context.Background(), ds.Secret); err != nil {
			return err
		}
	}
	setSessionCookie(ctx, "", time.Time{})
	ctx.Response.Header.Set("Location", next)
	ctx.SetStatusCode(fasthttp.StatusSeeOther)
	return nil
}

// handleDriverAsset serves the app's service worker and manifest under
// /driver/, so the worker's scope is the app.
func (s *Server) handleDriverAsset(ctx *fasthttp.RequestCtx, p pathParams) error {
	name := map[string]string{"sw.js": "driver-sw.js", "manifest.webmanifest": "driver.webmanifest"}[string(p.Get("file"))]
	a, ok := s.site.Asset(name)
	if !ok {
		return &Error{"NotFound", "no such file"}
	}
	if name == "driver-sw.js" {
		// The worker's scope is /driver (the app's page), above the
		// script's own folder.
		ctx.Response.Header.Set("Service-Worker-Allowed", "/driver")
	}
	serveAsset(ctx, a, false)
	return nil
}

// handleDriverRoute answers GET /v1/driver/route: the driver's day.
func (s *Server) handleDriverRoute(ctx *fasthttp.RequestCtx, _ pathParams) error {
	pr := principal(ctx)
	vehicle := string(ctx.QueryArgs().Peek("vehicle"))
	if pr != nil && pr.Scope == dispatch.ScopeDriver {
		vehicle = pr.Vehicle
	}
	if vehicle == "" {
		return &Error{"InvalidQuery", "vehicle: which vehicle's route (a driver key or session gives its own)"}
	}
	r, err := s.disp.DriverRoute(context.Background(), vehicle)
	if err != nil {
		return err
	}
	ctx.Response.Header.Set("Cache-Control", "no-store")
	return s.writeJSON(ctx, r)
}

// stopForCaller resolves the stop of the path and checks that a driver
// acts for its own van.
func (s *Server) stopForCaller(ctx *fasthttp.RequestCtx, p pathParams) (int64, error) {
	id, err := pathID(p, "id", "stop")
	if err != nil {
		return 0, err
	}
	veh, err := s.disp.StopVehicle(context.Background(), id)
	if err != nil {
		return 0, err
	}
	return id, forVehicle(ctx, veh)
}

// MessagesPage answers GET /v1/stops/{id}/messages.
type MessagesPage struct {
	Messages []dispatch.MessageView `json:"messages"`
}

func (s *Server) handleStopMessages(ctx *fasthttp.RequestCtx, p pathParams) error {
	id, err := s.stopForCaller(ctx, p)
	if err != nil {
		return err
	}
	sh, _, err := s.disp.StopShipment(context.Background(), id)
	if err != nil {
		return err
	}
	ms, err := s.disp.Messages(context.Background(), sh.ID)
	if err != nil {
		return err
	}
	ctx.Response.Header.Set("Cache-Control", "no-store")
	return s.writeJSON(ctx, MessagesPage{Messages: ms})
}

func (s *Server) handleStopMessagePost(ctx *fasthttp.RequestCtx, p pathParams) error {
	id, err := s.stopForCaller(ctx, p)
	if err != nil {
		return err
	}
	var in dispatch.MessageInput
	if err := DecodeJSON(ctx.PostBody(), &in); err != nil {
		return err
	}
	in.ClientID = string(ctx.Request.Header.Peek("Idempotency-Key"))
	sh, _, err := s.disp.StopShipment(context.Background(), id)
	if err != nil {
		return err
	}
	m, created, err := s.disp.PostMessage(context.Background(), sh, dispatch.FromDriver, in)
	if err != nil {
		return err
	}
	s.hub.wakeShipments([]int64{sh.ID})
	if created {
		return s.writeCreated(ctx, m)
	}
	return s.writeJSON(ctx, m)
}

// handleStopPod answers POST /v1/stops/{id}/pod (multipart/form-data):
// photo and/or signature files, name, lon, lat, accuracy, time; the
// Idempotency-Key header makes a retried upload count once.
func (s *Server) handleStopPod(ctx *fasthttp.RequestCtx, p pathParams) error {
	id, err := s.stopForCaller(ctx, p)
	if err != nil {
		return err
	}
	if len(ctx.PostBody()) > maxPodBytes {
		return &Error{"TooBig", "the upload is larger than 12 MiB"}
	}
	form, err := ctx.MultipartForm()
	if err != nil {
		return &Error{"InvalidQuery", "want multipart/form-data with photo and/or signature files: " + err.Error()}
	}
	defer ctx.Request.RemoveMultipartFormFiles()
	in := dispatch.PodInput{ClientID: string(ctx.Request.Header.Peek("Idempotency-Key"))}
	field := func(name string) string {
		if v := form.Value[name]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
	for _, part := range []struct {
		name string
		dst  *[]byte
	}{{"photo", &in.Photo}, {"signature", &in.Signature}} {
		fhs := form.File[part.name]
		if len(fhs) == 0 {
			continue
		}
		if len(fhs) > 1 {
			return &Error{"InvalidQuery", part.name + ": one file at most"}
		}
		b, err := readPart(fhs[0])
		if err != nil {
			return &Error{"InvalidQuery", part.name + ": " + err.Error()}
		}
		*part.dst = b
	}
	in.Name = field("name")
	if lon, lat := field("lon"), field("lat"); lon != "" || lat != "" {
		x, err1 := strconv.ParseFloat(lon, 64)
		y, err2 := strconv.ParseFloat(lat, 64)
		if err1 != nil || err2 != nil {
			return &Error{"InvalidValue", "lon, lat: want decimal degrees"}
		}
		in.Geo, in.HasGeo = [2]float64{x, y}, true
		if a := field("accuracy"); a != "" {
			if in.Accuracy, err = strconv.ParseFloat(a, 64); err != nil {
				return &Error{"InvalidValue", "accuracy: want metres"}
			}
		}
	}
	if t := field("time"); t != "" {
		if in.Time, err = strconv.ParseInt(t, 10, 64); err != nil {
			return &Error{"InvalidValue", "time: want Unix seconds"}
		}
	}
	v, created, err := s.disp.RecordPod(context.Background(), id, in)
	if err != nil {
		return err
	}
	if created {
		return s.writeCreated(ctx, v)
	}
	return s.writeJSON(ctx, v)
}

// readPart reads an uploaded file.
func readPart(fh *multipart.FileHeader) ([]byte, error) {
	f, err := fh.Open()
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, maxPodBytes+1))
}
