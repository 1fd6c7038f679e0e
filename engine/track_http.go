package engine

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/lastmile/lastmile/engine/blob"
	"github.com/lastmile/lastmile/engine/dispatch"
	"github.com/lastmile/lastmile/engine/pod"
	"github.com/lastmile/lastmile/engine/seal"
	"github.com/lastmile/lastmile/engine/store"
	"github.com/lastmile/lastmile/engine/web"
)

// Tracking page timings.
const (
	// proofURLTTL is how long a signed link to a proof image works.
	proofURLTTL = 10 * time.Minute
	// trackPoll is how often a live stream re-reads its view without a
	// wake (changes made by other replicas).
	trackPoll = 30 * time.Second
	// trackRefresh is the least time between two full rebuilds of a
	// page's view on its van's moves (ETAs move without events).
	trackRefresh = 15 * time.Second
	// trackStreamMax ends a stream after this long: the browser
	// reconnects, so a forgotten tab does not hold a connection forever
	// and a revoked link stops streaming.
	trackStreamMax = 30 * time.Minute
)

// setPageHeaders sets the headers of every page: the CSP that allows
// only the engine's own resources, no referrer (the link is a secret),
// no caching of personal data, no framing, no MIME sniffing.
func setPageHeaders(ctx *fasthttp.RequestCtx) {
	h := &ctx.Response.Header
	h.Set("Content-Security-Policy", web.CSP)
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=()")
}

// trackAllowed applies the per-address rate limit of tracking links.
func (s *Server) trackAllowed(ctx *fasthttp.RequestCtx) error {
	if s.trackLimit == nil {
		return nil
	}
	if !s.trackLimit.allow(ctx.RemoteIP().String(), time.Now()) {
		ctx.Response.Header.Set("Retry-After", "5")
		return &Error{"TooManyRequests", "too many requests from this address: retry in a few seconds"}
	}
	return nil
}

// trackShipment resolves a tracking link: the same NotFound for every
// link that does not work.
func (s *Server) trackShipment(ctx *fasthttp.RequestCtx, p pathParams) (store.Shipment, error) {
	if s.disp == nil {
		return store.Shipment{}, errNoState
	}
	if err := s.trackAllowed(ctx); err != nil {
		return store.Shipment{}, err
	}
	return s.disp.ShipmentByLink(context.Background(), string(p.Get("token")))
}

// notFoundPage answers an unusable link: one body for all of them.
func (s *Server) notFoundPage(ctx *fasthttp.RequestCtx) error {
	ctx.ResetBody()
	ctx.SetStatusCode(fasthttp.StatusNotFound)
	ctx.SetContentType("text/html; charset=utf-8")
	setPageHeaders(ctx)
	return s.renderTrackPage(ctx, s.site.NotFoundPage())
}

// publicView builds the view a link shows, with signed links to the
// proof images and, for a van that may be shown, its road geometry.
func (s *Server) publicView(ctx context.Context, sh store.Shipment, token string) (dispatch.PublicView, error) {
	v, err := s.disp.PublicView(ctx, sh)
	if err != nil {
		return v, err
	}
	if v.Proof != nil {
		exp := time.Now().Add(proofURLTTL)
		if v.Proof.Photo != "" {
			v.Proof.PhotoURL = "/track/" + token + "/proof?" + pod.SignURL(s.urlKey, v.Proof.Photo, exp)
		}
		if v.Proof.Signature != "" {
			v.Proof.SignURL = "/track/" + token + "/proof?" + pod.SignURL(s.urlKey, v.Proof.Signature, exp)
		}
	}
	s.vanGeometry(&v)
	return v, nil
}

// vanGeometry adds the road the van took to its position and, when this
// stop is next, the road from it to the stop.
func (s *Server) vanGeometry(v *dispatch.PublicView) {
	if v.Van == nil || s.R == nil {
		return
	}
	v.Van.Path = s.hub.vanPath(v.Vehicle, v.Van.Location, v.Van.Time, s.roadPath)
	if v.StopsBefore != nil && *v.StopsBefore == 0 {
		v.Van.Route = s.roadPath(v.Van.Location, v.Location)
	}
}

// roadPath is the road geometry of the fastest route from a to b, nil
// when there is none.
func (s *Server) roadPath(a, b [2]float64) [][2]float64 {
	res, err := s.R.Route([]LonLat{{a[0], a[1]}, {b[0], b[1]}}, RouteOptions{Geometries: "geojson"})
	if err != nil || len(res.Routes) == 0 {
		return nil
	}
	if g, ok := res.Routes[0].Geometry.(GeoJSONLine); ok {
		return g.Coordinates
	}
	return nil
}

// Notices shown after a form of the page was sent (?done=...).
var trackNotices = map[string]string{"instructions": "instructions.saved", "message": "message.sent"}

func (s *Server) handleTrackPage(ctx *fasthttp.RequestCtx, p pathParams) error {
	sh, err := s.trackShipment(ctx, p)
	if errors.Is(err, dispatch.ErrLinkNotFound) {
		return s.notFoundPage(ctx)
	}
	if err != nil {
		return err
	}
	return s.renderTrack(ctx, sh, string(p.Get("token")), "")
}

// renderTrack renders the page; formErr is a form's failure to show.
func (s *Server) renderTrack(ctx *fasthttp.RequestCtx, sh store.Shipment, token, formErr string) error {
	v, err := s.publicView(context.Background(), sh, token)
	if err != nil {
		return err
	}
	page := web.NewTrackPage(v, token, time.Now())
	page.FormID = seal.Token()
	if k, ok := trackNotices[string(ctx.QueryArgs().Peek("done"))]; ok {
		page.Notice = page.T(k)
	}
	if formErr != "" {
		page.Error = fmt.Sprintf(page.T("error"), formErr)
		ctx.SetStatusCode(fasthttp.StatusBadRequest)
	}
	ctx.SetContentType("text/html; charset=utf-8")
	setPageHeaders(ctx)
	return s.renderTrackPage(ctx, page)
}

// renderTrackPage writes the tracking page, gzip-compressed when the
// client accepts it (10.3 kB -> 4.1 kB on the wire: 30 ms less at
// 1.6 Mbit/s). Compressing a page is safe from BREACH-style guessing of its
// secret from response sizes because that secret, the link's token, is
// in the URL too: whoever could make a browser ask for the page already
// has it. The driver's and the dashboard's pages, with CSRF tokens,
// stay uncompressed.
func (s *Server) renderTrackPage(ctx *fasthttp.RequestCtx, data any) error {
	var b bytes.Buffer
	if err := s.site.Render(&b, "track.html", data); err != nil {
		return err
	}
	ctx.Response.Header.Set("Vary", "Accept-Encoding")
	if ctx.Request.Header.HasAcceptEncoding("gzip") {
		ctx.Response.Header.Set("Content-Encoding", "gzip")
		ctx.SetBody(fasthttp.AppendGzipBytesLevel(nil, b.Bytes(), fasthttp.CompressDefaultCompression))
		return nil
	}
	ctx.SetBody(b.Bytes())
	return nil
}

func (s *Server) handleTrackView(ctx *fasthttp.RequestCtx, p pathParams) error {
	sh, err := s.trackShipment(ctx, p)
	if err != nil {
		return err
	}
	v, err := s.publicView(context.Background(), sh, string(p.Get("token")))
	if err != nil {
		return err
	}
	ctx.Response.Header.Set("Cache-Control", "no-store")
	ctx.Response.Header.Set("Referrer-Policy", "no-referrer")
	return s.writeJSON(ctx, web.NewLiveUpdate(v, time.Now()))
}

// handleTrackLive streams the page's updates (server-sent events, event
// "update" with a web.LiveUpdate): one at once, then one per change of
// the shipment, the van's position or the thread.
func (s *Server) handleTrackLive(ctx *fasthttp.RequestCtx, p pathParams) error {
	sh, err := s.trackShipment(ctx, p)
	if err != nil {
		return err
	}
	token := string(p.Get("token"))
	v, err := s.publicView(context.Background(), sh, token)
	if err != nil {
		return err
	}
	ctx.SetContentType("text/event-stream")
	ctx.Response.Header.Set("Cache-Control", "no-store")
	ctx.Response.Header.Set("X-Accel-Buffering", "no")
	ctx.Response.Header.Set("Referrer-Policy", "no-referrer")
	conn := ctx.Conn()
	stop := s.streamStop
	// The page follows its van while its stop is out for delivery
	// (v.Vehicle is set then).
	sub := &trackSub{wake: make(chan struct{}, 1), shipment: sh.ID, vehicle: v.Vehicle}
	s.hub.add(sub)
	ctx.SetBodyStreamWriter(func(w *bufio.Writer) {
		defer s.hub.remove(sub)
		write := func() bool {
			_ = conn.SetWriteDeadline(time.Now().Add(streamWriteTimeout))
			return w.Flush() == nil
		}
		var last []byte
		send := func(v dispatch.PublicView) bool {
			b, err := json.Marshal(web.NewLiveUpdate(v, time.Now()))
			if err != nil {
				return false
			}
			if bytes.Equal(b, last) {
				return true
			}
			last = b
			fmt.Fprintf(w, "event: update\ndata: %s\n\n", b)
			s.hub.sent.Add(1)
			return write()
		}
		fmt.Fprintf(w, "retry: 3000\n\n")
		if !send(v) {
			return
		}
		// The next full rebuild on a van's move, and the poll for other
		// replicas' changes, are jittered per stream.
		full, refresh := time.Now(), jittered(trackRefresh)
		poll := time.NewTicker(jittered(trackPoll))
		defer poll.Stop()
		heartbeat := time.NewTicker(streamHeartbeat)
		defer heartbeat.Stop()
		end := time.NewTimer(trackStreamMax)
		defer end.Stop()
		for {
			select {
			case <-stop:
				return
			case <-end.C:
				return
			case <-heartbeat.C:
				fmt.Fprintf(w, ": keep-alive\n\n")
				if !write() {
					return
				}
				continue
			case <-poll.C:
				sub.flags.Or(wakeFull)
			case <-sub.wake:
			}
			flags := sub.flags.Swap(0)
			if flags&wakeFull == 0 && time.Since(full) < refresh {
				if v.Van == nil {
					continue // a van not shown moved: the next refresh will do
				}
				// Only the van moved: its position, without rebuilding
				// the whole view.
				if p, ok := s.hub.position(v.Vehicle); ok && p.ms/1000 >= v.Van.Time {
					v.Van.Location, v.Van.Time = p.loc, p.ms/1000
				} else {
					veh, err := s.cfg.Store.Vehicle(context.Background(), v.Vehicle)
					if err != nil {
						continue
					}
					v.Van.Location, v.Van.Time = [2]float64{veh.Lon, veh.Lat}, veh.LastMS/1000
				}
				s.vanGeometry(&v)
			} else {
				select {
				case s.hub.rebuilds <- struct{}{}:
				case <-stop:
					return
				}
				cur, err := s.disp.ShipmentByLink(context.Background(), token)
				if err != nil {
					<-s.hub.rebuilds
					return // revoked, expired or erased: the page polls and shows 404
				}
				v, err = s.publicView(context.Background(), cur, token)
				<-s.hub.rebuilds
				if err != nil {
					s.log.Error("tracking stream: view", "err", err)
					return
				}
				full, refresh = time.Now(), jittered(trackRefresh)
				s.hub.follow(sub, v.Vehicle)
			}
			if !send(v) {
				return
			}
			if v.Status == dispatch.StatusDelivered || v.Status == dispatch.StatusCancelled {
				return // nothing changes any more; the page reloads
			}
		}
	})
	return nil
}

// trackForm reads a form field (or the JSON body's field of that name).
func trackForm(ctx *fasthttp.RequestCtx, name string) string {
	if bytes.HasPrefix(ctx.Request.Header.ContentType(), []byte("application/json")) {
		var m map[string]any
		if json.Unmarshal(ctx.PostBody(), &m) == nil {
			switch v := m[name].(type) {
			case string:
				return v
			case float64:
				return strconv.FormatFloat(v, 'f', -1, 64)
			}
		}
		return ""
	}
	return string(ctx.PostArgs().Peek(name))
}

// trackAction runs one of the page's forms: f does it; a browser's form
// post is sent back to the page (303) with a notice, or the page with
// the error; a script's JSON post gets JSON.
func (s *Server) trackAction(ctx *fasthttp.RequestCtx, p pathParams, done string, f func(sh store.Shipment) (any, error)) error {
	sh, err := s.trackShipment(ctx, p)
	if err != nil {
		return err
	}
	token := string(p.Get("token"))
	out, err := f(sh)
	isJSON := bytes.HasPrefix(ctx.Request.Header.ContentType(), []byte("application/json"))
	if err != nil {
		var de *dispatch.Error
		if !isJSON && errors.As(err, &de) {
			return s.renderTrack(ctx, sh, token, de.Message)
		}
		return err
	}
	s.hub.wakeShipments([]int64{sh.ID})
	if isJSON {
		return s.writeJSON(ctx, out)
	}
	ctx.Response.Header.Set("Location", "/track/"+token+"?done="+done)
	ctx.Response.Header.Set("Cache-Control", "no-store")
	ctx.SetStatusCode(fasthttp.StatusSeeOther)
	return nil
}

func (s *Server) handleTrackInstructions(ctx *fasthttp.RequestCtx, p pathParams) error {
	return s.trackAction(ctx, p, "instructions", func(sh store.Shipment) (any, error) {
		text := trackForm(ctx, "instructions")
		if err := s.disp.SetInstructions(context.Background(), sh, text); err != nil {
			return nil, err
		}
		return map[string]string{"instructions": strings.TrimSpace(text)}, nil
	})
}

func (s *Server) handleTrackMessage(ctx *fasthttp.RequestCtx, p pathParams) error {
	return s.trackAction(ctx, p, "message", func(sh store.Shipment) (any, error) {
		id := string(ctx.Request.Header.Peek("Idempotency-Key"))
		if id == "" {
			id = trackForm(ctx, "id")
		}
		m, _, err := s.disp.PostMessage(context.Background(), sh, dispatch.FromRecipient,
			dispatch.MessageInput{Text: trackForm(ctx, "text"), ClientID: id})
		return m, err
	})
}

func (s *Server) handleTrackWindow(ctx *fasthttp.RequestCtx, p pathParams) error {
	return s.trackAction(ctx, p, "window", func(sh store.Shipment) (any, error) {
		a, b, ok := strings.Cut(trackForm(ctx, "window"), "-")
		lo, err1 := strconv.ParseInt(a, 10, 64)
		hi, err2 := strconv.ParseInt(b, 10, 64)
		if !ok || err1 != nil || err2 != nil {
			return nil, &dispatch.Error{Code: "InvalidValue", Message: "window: want START-END in Unix seconds, one of the windows on offer"}
		}
		return s.disp.RequestWindow(context.Background(), sh, [2]int64{lo, hi})
	})
}

func (s *Server) handleTrackRating(ctx *fasthttp.RequestCtx, p pathParams) error {
	return s.trackAction(ctx, p, "rating", func(sh store.Shipment) (any, error) {
		stars, err := strconv.ParseInt(trackForm(ctx, "stars"), 10, 64)
		if err != nil {
			return nil, &dispatch.Error{Code: "InvalidValue", Message: "stars: want 1 to 5"}
		}
		in := dispatch.RatingInput{Stars: stars, Comment: trackForm(ctx, "comment")}
		if err := s.disp.Rate(context.Background(), sh, in); err != nil {
			return nil, err
		}
		return in, nil
	})
}

// handleTrackProof serves a proof image through a signed, short-lived
// link of this shipment's page: the signature must verify and the image
// must be this shipment's proof.
func (s *Server) handleTrackProof(ctx *fasthttp.RequestCtx, p pathParams) error {
	sh, err := s.trackShipment(ctx, p)
	if err != nil {
		return err
	}
	args := ctx.QueryArgs()
	key := string(args.Peek("k"))
	if err := pod.VerifyURL(s.urlKey, key, string(args.Peek("e")), string(args.Peek("s")), time.Now()); err != nil {
		return &Error{"NotFound", "not found"}
	}
	if sh.Status != dispatch.StatusDelivered {
		return &Error{"NotFound", "not found"}
	}
	pods, err := s.cfg.Store.ShipmentPods(context.Background(), sh.ID)
	if err != nil {
		return err
	}
	ok := false
	for _, pd := range pods {
		ok = ok || pd.Photo == key || pd.Signature == key
	}
	if !ok || s.blobs == nil {
		return &Error{"NotFound", "not found"}
	}
	data, err := s.blobs.Get(context.Background(), key)
	if errors.Is(err, blob.ErrNotFound) {
		return &Error{"NotFound", "not found"}
	}
	if err != nil {
		return err
	}
	if bytes.HasPrefix(data, []byte("\x89PNG")) {
		ctx.SetContentType("image/png")
	} else {
		ctx.SetContentType("image/jpeg")
	}
	ctx.Response.Header.Set("Cache-Control", "private, max-age=600")
	ctx.Response.Header.Set("X-Content-Type-Options", "nosniff")
	ctx.Response.Header.Set("Content-Security-Policy", "default-src 'none'")
	ctx.SetBody(data)
	return nil
}

func (s *Server) handleShipmentLink(ctx *fasthttp.RequestCtx, p pathParams) error {
	res, err := s.disp.RotateLink(context.Background(), string(p.Get("tracking")))
	if err != nil {
		return err
	}
	return s.writeCreated(ctx, res)
}

// handleStatic serves an embedded asset: immutable for a year when asked
// with its content hash (?v=), else revalidated; gzip when accepted.
func (s *Server) handleStatic(ctx *fasthttp.RequestCtx, p pathParams) error {
	name := string(p.Get("file"))
	if p.Len() == 2 {
		name = string(p.Get("dir")) + "/" + name
	}
	a, ok := s.site.Asset(name)
	if !ok {
		return &Error{"NotFound", "no such file"}
	}
	serveAsset(ctx, a, string(ctx.QueryArgs().Peek("v")) == a.Hash)
	return nil
}

// serveAsset writes an asset with its validators.
func serveAsset(ctx *fasthttp.RequestCtx, a *web.Asset, immutable bool) {
	h := &ctx.Response.Header
	etag := `"` + a.Hash + `"`
	h.Set("ETag", etag)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Vary", "Accept-Encoding")
	if immutable {
		h.Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		h.Set("Cache-Control", "no-cache")
	}
	if string(ctx.Request.Header.Peek("If-None-Match")) == etag {
		ctx.SetStatusCode(fasthttp.StatusNotModified)
		return
	}
	ctx.SetContentType(a.ContentType)
	if a.Gzip != nil && ctx.Request.Header.HasAcceptEncoding("gzip") {
		h.Set("Content-Encoding", "gzip")
		ctx.SetBody(a.Gzip)
		return
	}
	ctx.SetBody(a.Body)
}
