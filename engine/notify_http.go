package engine

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html/template"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/lastmile/lastmile/engine/dispatch"
	"github.com/lastmile/lastmile/engine/notify"
	"github.com/lastmile/lastmile/engine/seal"
	"github.com/lastmile/lastmile/engine/store"
)

// newNotify builds the notification outbox on the store and starts its
// delivery workers (they stop at Shutdown).
func (s *Server) newNotify() error {
	nc := s.cfg.Notify
	nc.Store = s.cfg.Store
	if nc.Logger == nil {
		nc.Logger = s.cfg.Logger
	}
	var err error
	if s.notify, err = notify.New(nc); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.bgDone.Add(2)
	go func() {
		defer s.bgDone.Done()
		s.notify.Run(ctx)
	}()
	go func() {
		defer s.bgDone.Done()
		<-s.bgStop
		cancel()
	}()
	return nil
}

func (s *Server) handleWebhookCreate(ctx *fasthttp.RequestCtx, _ pathParams) error {
	var in notify.WebhookInput
	if err := DecodeJSON(ctx.PostBody(), &in); err != nil {
		return err
	}
	w, err := s.notify.CreateWebhook(context.Background(), in)
	if err != nil {
		return err
	}
	s.log.Info("webhook created", "id", w.ID, "by", principal(ctx).KeyID)
	return s.writeCreated(ctx, w)
}

func (s *Server) handleWebhookList(ctx *fasthttp.RequestCtx, _ pathParams) error {
	ws, err := s.notify.Webhooks(context.Background())
	if err != nil {
		return err
	}
	if ws == nil {
		ws = []notify.Webhook{}
	}
	return s.writeJSON(ctx, map[string]any{"webhooks": ws})
}

func (s *Server) handleWebhookGet(ctx *fasthttp.RequestCtx, p pathParams) error {
	w, err := s.notify.Webhook(context.Background(), string(p.Get("id")))
	if err != nil {
		return err
	}
	return s.writeJSON(ctx, w)
}

func (s *Server) handleWebhookUpdate(ctx *fasthttp.RequestCtx, p pathParams) error {
	var in notify.WebhookPatch
	if err := DecodeJSON(ctx.PostBody(), &in); err != nil {
		return err
	}
	w, err := s.notify.UpdateWebhook(context.Background(), string(p.Get("id")), in)
	if err != nil {
		return err
	}
	s.log.Info("webhook changed", "id", w.ID, "enabled", w.Enabled, "by", principal(ctx).KeyID)
	return s.writeJSON(ctx, w)
}

func (s *Server) handleWebhookDelete(ctx *fasthttp.RequestCtx, p pathParams) error {
	id := string(p.Get("id"))
	if err := s.notify.DeleteWebhook(context.Background(), id); err != nil {
		return err
	}
	s.log.Info("webhook deleted", "id", id, "by", principal(ctx).KeyID)
	return s.writeJSON(ctx, map[string]any{"id": id, "deleted": true})
}

func (s *Server) handleWebhookReplay(ctx *fasthttp.RequestCtx, p pathParams) error {
	var in notify.ReplayInput
	if err := DecodeJSON(ctx.PostBody(), &in); err != nil {
		return err
	}
	r, err := s.notify.Replay(context.Background(), string(p.Get("id")), in)
	if err != nil {
		return err
	}
	s.log.Info("webhook replay", "id", string(p.Get("id")), "queued", r.Queued, "by", principal(ctx).KeyID)
	return s.writeJSON(ctx, r)
}

func (s *Server) handleWebhookDeliveries(ctx *fasthttp.RequestCtx, p pathParams) error {
	args := ctx.QueryArgs()
	if err := onlyParams(args, "state", "after", "limit"); err != nil {
		return err
	}
	after, err := intParam(args, "after", 0, 0, 1<<62)
	if err != nil {
		return err
	}
	limit, err := intParam(args, "limit", 100, 1, 1000)
	if err != nil {
		return err
	}
	page, err := s.notify.Deliveries(context.Background(), string(p.Get("id")), string(args.Peek("state")), after, int(limit))
	if err != nil {
		return err
	}
	return s.writeJSON(ctx, page)
}

// onlyParams rejects query parameters other than known.
func onlyParams(args *fasthttp.Args, known ...string) error {
	var bad []byte
	args.VisitAll(func(k, _ []byte) {
		if bad != nil {
			return
		}
		for _, n := range known {
			if string(k) == n {
				return
			}
		}
		bad = append(bad, k...)
	})
	if bad != nil {
		return &Error{"InvalidOptions", fmt.Sprintf("unknown parameter %q (known: %v)", clip(bad, 40), known)}
	}
	return nil
}

// intParam parses an integer query parameter in [lo, hi] (def when
// absent).
func intParam(args *fasthttp.Args, name string, def, lo, hi int64) (int64, error) {
	v := args.Peek(name)
	if v == nil {
		return def, nil
	}
	n, err := strconv.ParseInt(string(v), 10, 64)
	if err != nil || n < lo || n > hi {
		return 0, &Error{"InvalidValue", fmt.Sprintf("%s: want an integer in [%d, %d]", name, lo, hi)}
	}
	return n, nil
}

// Event stream (server-sent events).
const (
	// streamHeartbeat is how often an idle stream sends a comment, so
	// that proxies keep it open and a dead client is noticed.
	streamHeartbeat = 15 * time.Second
	// streamPoll is how often a stream looks for events committed by
	// other replicas (this process's commits wake it at once).
	streamPoll = time.Second
	// streamBatch bounds the events read per query.
	streamBatch = 500
	// streamWriteTimeout bounds one write to a stream's client.
	streamWriteTimeout = 30 * time.Second
)

// handleEventStream answers GET /v1/events/stream: the event log as
// server-sent events (text/event-stream), each with its cursor as id, from
// the Last-Event-ID header or ?after=, then live as events commit, until
// the client leaves or the server shuts down.
func (s *Server) handleEventStream(ctx *fasthttp.RequestCtx, _ pathParams) error {
	args := ctx.QueryArgs()
	if err := onlyParams(args, "after", "types"); err != nil {
		return err
	}
	vehicle := driverVehicle(ctx) // a driver reads its own shipments' events
	after, err := intParam(args, "after", 0, 0, 1<<62)
	if err != nil {
		return err
	}
	if h := ctx.Request.Header.Peek("Last-Event-ID"); len(h) > 0 {
		n, err := strconv.ParseInt(string(h), 10, 64)
		if err != nil || n < 0 {
			return &Error{"InvalidValue", "Last-Event-ID: want an event cursor (an integer >= 0)"}
		}
		after = n
	}
	var types map[string]bool
	if v := args.Peek("types"); len(v) > 0 {
		types = map[string]bool{}
		for _, t := range strings.Split(string(v), ",") {
			types[t] = true
		}
	}
	ctx.SetContentType("text/event-stream")
	ctx.Response.Header.Set("Cache-Control", "no-store")
	ctx.Response.Header.Set("X-Accel-Buffering", "no")
	conn := ctx.Conn()
	st, bell, stop := s.cfg.Store, s.notify.Bell(), s.streamStop
	log := s.log
	ctx.SetBodyStreamWriter(func(w *bufio.Writer) {
		write := func() bool {
			_ = conn.SetWriteDeadline(time.Now().Add(streamWriteTimeout))
			return w.Flush() == nil
		}
		fmt.Fprintf(w, "retry: 2000\n\n")
		if !write() {
			return
		}
		heartbeat := time.NewTicker(streamHeartbeat)
		defer heartbeat.Stop()
		poll := time.NewTicker(streamPoll)
		defer poll.Stop()
		for {
			rung, _ := bell.Wait()
			var evs []store.Event
			var err error
			if vehicle == "" {
				evs, err = st.EventsAfter(context.Background(), after, streamBatch)
			} else {
				evs, err = st.VehicleEventsAfter(context.Background(), vehicle, after, streamBatch)
			}
			if err != nil {
				log.Error("event stream: reading events", "err", err)
				return
			}
			for _, e := range evs {
				after = e.Cursor
				if types != nil && !types[e.Type] {
					continue
				}
				b, err := json.Marshal(dispatch.EventOf(e))
				if err != nil {
					return
				}
				fmt.Fprintf(w, "id: %d\nevent: %s\ndata: %s\n\n", e.Cursor, e.Type, b)
			}
			if len(evs) > 0 {
				if !write() {
					return
				}
				if len(evs) == streamBatch {
					continue
				}
			}
			select {
			case <-stop:
				return
			case <-rung:
			case <-poll.C:
			case <-heartbeat.C:
				fmt.Fprintf(w, ": keep-alive\n\n")
				if !write() {
					return
				}
			}
		}
	})
	return nil
}

func (s *Server) handleShipmentNotify(ctx *fasthttp.RequestCtx, p pathParams) error {
	var in dispatch.NotifyPrefs
	if err := DecodeJSON(ctx.PostBody(), &in); err != nil {
		return err
	}
	v, err := s.disp.SetNotify(context.Background(), string(p.Get("tracking")), in)
	if err != nil {
		return err
	}
	return s.writeJSON(ctx, v)
}

// unsubscribeStyle is the page's only style, allowed by its hash in the
// Content-Security-Policy (no other inline code runs).
const unsubscribeStyle = `body{font:17px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1b1f24;background:#f4f5f7;margin:0}` +
	`main{max-width:30rem;margin:0 auto;padding:2.5rem 1.25rem}h1{font-size:1.45rem;line-height:1.3;margin:0 0 .75rem}` +
	`p{margin:0 0 1.25rem;color:#3a4149}button{font:inherit;font-weight:600;color:#fff;background:#0b57d0;border:0;` +
	`border-radius:.6rem;padding:.85rem 1.4rem;min-height:3rem;width:100%;cursor:pointer}button:focus-visible{outline:3px solid #1b1f24;outline-offset:2px}`

// unsubscribeCSP allows nothing but the page's style and its form posting
// back to the page.
var unsubscribeCSP = func() string {
	sum := sha256.Sum256([]byte(unsubscribeStyle))
	return "default-src 'none'; style-src 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
}()

// unsubscribePage is the unsubscribe link's page: GET asks to confirm
// (a mail scanner following the link unsubscribes no one), POST does it
// (also RFC 8058's one-click POST from the mail client). No script, no
// third-party resource; nothing of the recipient is shown.
var unsubscribePage = template.Must(template.New("unsubscribe").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{if .Done}}Unsubscribed{{else}}Stop {{.Channel}} notifications{{end}}</title><style>{{.Style}}</style></head><body><main>
{{if .Done}}<h1>You are unsubscribed</h1><p>You will get no more {{.Channel}} notifications about your deliveries.
You can still follow a delivery on its tracking page.</p>
{{else}}<h1>Stop {{.Channel}} notifications?</h1><p>You will no longer get {{.Channel}} messages about your deliveries, such as
"out for delivery" or "arriving soon". You can still follow a delivery on its tracking page.</p>
<form method="post"><input type="hidden" name="channel" value="{{.ChannelKey}}">
<button type="submit">Stop {{.Channel}} notifications</button></form>{{end}}
</main></body></html>
`))

func (s *Server) handleUnsubscribe(ctx *fasthttp.RequestCtx, p pathParams) error {
	token := string(p.Get("token"))
	channel := string(ctx.QueryArgs().Peek("channel"))
	if c := ctx.PostArgs().Peek("channel"); len(c) > 0 {
		channel = string(c)
	}
	if !seal.ValidToken(token) {
		return &Error{"NotFound", "not found"}
	}
	label := map[string]string{"email": "e-mail", "sms": "SMS"}[channel]
	if label == "" {
		return &Error{"InvalidValue", "channel: want email or sms"}
	}
	done := string(ctx.Method()) == fasthttp.MethodPost
	if done {
		if err := s.notify.Unsubscribe(context.Background(), token, channel); err != nil {
			return err
		}
	} else if _, err := s.cfg.Store.ShipmentByToken(context.Background(), token); err != nil {
		return &Error{"NotFound", "not found"}
	}
	ctx.SetContentType("text/html; charset=utf-8")
	ctx.Response.Header.Set("Content-Security-Policy", unsubscribeCSP)
	ctx.Response.Header.Set("Cache-Control", "no-store")
	ctx.Response.Header.Set("Referrer-Policy", "no-referrer")
	return unsubscribePage.Execute(ctx, map[string]any{"Channel": label, "ChannelKey": channel, "Done": done,
		"Style": template.CSS(unsubscribeStyle)})
}

// appendNotifyMetrics writes the notification metrics in the Prometheus
// text format: attempts by channel and outcome, retries, the outbox's
// pending deliveries and the age of the oldest, dead letters.
func (s *Server) appendNotifyMetrics(b []byte) []byte {
	if s.notify == nil {
		return b
	}
	snap, err := s.notify.Snapshot(context.Background())
	if err != nil {
		s.log.Error("notification metrics", "err", err)
		return b
	}
	b = append(b, "# HELP lastmile_deliveries_total Delivery attempts by channel (webhook, email, sms) and outcome (sent, failed: to retry, dead, skipped).\n"...)
	b = append(b, "# TYPE lastmile_deliveries_total counter\n"...)
	keys := make([][2]string, 0, len(snap.Outcomes))
	for k := range snap.Outcomes {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(x, y [2]string) int { return strings.Compare(x[0]+"/"+x[1], y[0]+"/"+y[1]) })
	for _, k := range keys {
		b = fmt.Appendf(b, "lastmile_deliveries_total{channel=%q,outcome=%q} %d\n", k[0], k[1], snap.Outcomes[k])
	}
	age := 0.0
	if snap.Outbox.OldestPending > 0 {
		age = max(float64(time.Now().UnixMilli()-snap.Outbox.OldestPending)/1000, 0)
	}
	b = fmt.Appendf(b, "# HELP lastmile_delivery_retries_total Failed attempts queued to be tried again.\n# TYPE lastmile_delivery_retries_total counter\nlastmile_delivery_retries_total %d\n", snap.Retries)
	b = fmt.Appendf(b, "# HELP lastmile_outbox_pending Deliveries waiting in the outbox.\n# TYPE lastmile_outbox_pending gauge\nlastmile_outbox_pending %d\n", snap.Outbox.Pending)
	b = fmt.Appendf(b, "# HELP lastmile_outbox_unqueued Events that webhook subscriptions have yet to take into the outbox.\n# TYPE lastmile_outbox_unqueued gauge\nlastmile_outbox_unqueued %d\n", snap.Outbox.Unqueued)
	b = fmt.Appendf(b, "# HELP lastmile_outbox_oldest_seconds Age of the oldest pending delivery or event not yet queued.\n# TYPE lastmile_outbox_oldest_seconds gauge\nlastmile_outbox_oldest_seconds %g\n", age)
	b = fmt.Appendf(b, "# HELP lastmile_dead_letters Deliveries given up (dead-letter list; replay re-sends them).\n# TYPE lastmile_dead_letters gauge\nlastmile_dead_letters %d\n", snap.Outbox.Dead)
	return b
}

func (s *Server) handleTemplatePut(ctx *fasthttp.RequestCtx, p pathParams) error {
	info, err := s.notify.PutTemplate(context.Background(), string(p.Get("language")), string(p.Get("file")), ctx.PostBody())
	if err != nil {
		return err
	}
	s.log.Info("template stored", "name", info.Name, "bytes", info.Bytes, "by", principal(ctx).KeyID)
	return s.writeJSON(ctx, info)
}

func (s *Server) handleTemplateList(ctx *fasthttp.RequestCtx, _ pathParams) error {
	ts, err := s.notify.Templates(context.Background())
	if err != nil {
		return err
	}
	if ts == nil {
		ts = []notify.TemplateInfo{}
	}
	return s.writeJSON(ctx, map[string]any{"templates": ts})
}

func (s *Server) handleTemplateDelete(ctx *fasthttp.RequestCtx, p pathParams) error {
	lang, file := string(p.Get("language")), string(p.Get("file"))
	if err := s.notify.DeleteTemplate(context.Background(), lang, file); err != nil {
		return err
	}
	s.log.Info("template deleted", "name", lang+"/"+file, "by", principal(ctx).KeyID)
	return s.writeJSON(ctx, map[string]any{"name": lang + "/" + file, "deleted": true})
}
