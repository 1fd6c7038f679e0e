package bench

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"mime"
	"net/http"
	"net/http/httptest"
	netmail "net/mail"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	_ "time/tzdata" // the recipients' zones, whatever the machine has

	"github.com/lastmile/lastmile/engine"
	"github.com/lastmile/lastmile/engine/dispatch"
	"github.com/lastmile/lastmile/engine/notify"
	"github.com/lastmile/lastmile/engine/notify/mail"
	"github.com/lastmile/lastmile/engine/notify/message"
	"github.com/lastmile/lastmile/engine/notify/sms"
	"github.com/lastmile/lastmile/internal/smtptest"
	"github.com/lastmile/lastmile/internal/webhooktest"
)

// The notification day's configuration.
const (
	notifyPublicURL = "https://track.lastmile.test"
	notifyHost      = "track.lastmile.test" // the e-mails' Message-ID domain
	notifyCarrier   = "Lastmile Test"
	notifyMailFrom  = "notify@lastmile.test"
	notifySID       = "AC0123456789abcdef0123456789abcdef"
	notifyToken     = "sms-gateway-auth-token"
	notifySMSFrom   = "+15005550006"
	// notifyHold is how long the SMS gateway asks the held shipments'
	// first SMS to wait (its Retry-After), and notifyRelease how far the
	// notification clock jumps after the replay to let them go.
	notifyHold    = time.Hour
	notifyRelease = 2 * time.Hour
)

// notifyZones are the recipients' time zones: in January the day's
// events (07:30 to about 18:30 UTC) fall in the day in Monaco, run into
// the night in Tokyo (21:00 there is 12:00 UTC) and start in the night in
// New York (08:00 there is 13:00 UTC), so SMS meet both sides of the
// night hours.
var notifyZones = []string{"Europe/Monaco", "Asia/Tokyo", "America/New_York"}

// notifyTimely are the events a backlog sent after the shipment is
// delivered or failed skips (notify's rule).
var notifyTimely = []string{dispatch.EventOutForDelivery, dispatch.EventStopsAway, dispatch.EventArrivingSoon, dispatch.EventDelayed}

// notifyShipment is one shipment of the day as the test set it up, and
// what happened to its recipient.
type notifyShipment struct {
	i    int
	in   dispatch.ShipmentInput
	zone *time.Location
	// held: the SMS gateway refuses this recipient's SMS (503, Retry-After
	// 1 h) until the replay is over.
	held bool
	// emailCut and smsCut are the shipment's last seq when its recipient
	// unsubscribed from the channel (0: never); pageCut when the
	// recipient opened the e-mail's unsubscribe page without confirming.
	emailCut, smsCut, pageCut int64
}

// prefs returns the shipment's preferences for channel (nil: defaults).
func (s *notifyShipment) prefs(channel string) *[]string {
	if s.in.Notify == nil {
		return nil
	}
	if channel == dispatch.ChannelSMS {
		return s.in.Notify.SMS
	}
	return s.in.Notify.Email
}

// wants reports whether the shipment's preferences take typ on channel.
func (s *notifyShipment) wants(channel, typ string) bool {
	if !slices.Contains(dispatch.RecipientEventTypes, typ) {
		return false
	}
	if p := s.prefs(channel); p != nil {
		return slices.Contains(*p, typ)
	}
	if channel == dispatch.ChannelSMS {
		return slices.Contains(notify.DefaultSMSEvents, typ)
	}
	return slices.Contains(notify.DefaultEmailEvents, typ)
}

// address is the recipient's address on channel ("" for none).
func (s *notifyShipment) address(channel string) string {
	if channel == dispatch.ChannelSMS {
		n, _ := sms.NormalizeNumber(s.in.Recipient.Phone)
		return n
	}
	return s.in.Recipient.Email
}

// notifyShipmentSetup gives shipment i its zone, preferences and
// addresses: about a third get custom preferences, a few lose an
// address, a few are held at the SMS gateway; the rest keep the defaults.
func notifyShipmentSetup(i int, in *dispatch.ShipmentInput) (held bool) {
	in.TimeZone = notifyZones[(i/9)%len(notifyZones)]
	list := func(evs ...string) *[]string {
		l := append([]string{}, evs...) // never nil: [] turns the channel off
		return &l
	}
	switch i % 9 {
	case 0: // e-mail only when delivered; no SMS
		in.Notify = &dispatch.NotifyPrefs{Email: list(dispatch.EventDelivered), SMS: list()}
	case 3: // SMS with the countdown of stops; e-mail defaults
		in.Notify = &dispatch.NotifyPrefs{SMS: list(dispatch.EventStopsAway, dispatch.EventArrivingSoon, dispatch.EventDelivered, dispatch.EventFailed)}
	case 6: // every event by e-mail, SMS only for the outcome and delays
		in.Notify = &dispatch.NotifyPrefs{Email: list(dispatch.RecipientEventTypes...), SMS: list(dispatch.EventDelayed, dispatch.EventDelivered, dispatch.EventFailed)}
	}
	switch {
	case i%23 == 7:
		in.Recipient.Email = ""
	case i%23 == 15:
		in.Recipient.Phone = ""
	case i%29 == 10 && in.Notify == nil:
		return true
	}
	return false
}

// notifyClock is the notification service's clock: the wall clock, moved
// forward to release the held SMS.
type notifyClock struct{ off atomic.Int64 }

// Now returns the clock's time.
func (c *notifyClock) Now() time.Time { return time.Now().Add(time.Duration(c.off.Load())) }

// smsSent is an SMS the gateway accepted.
type smsSent struct {
	To, Body, SID string
	At            time.Time
}

// smsGateway is a Twilio-shaped SMS gateway on loopback: it checks each
// request (path, method, basic authentication, form fields), answers 201
// with a message sid, and refuses the held numbers with 503 and
// Retry-After while holding.
type smsGateway struct {
	srv *httptest.Server

	mu       sync.Mutex
	holding  bool
	held     map[string]bool
	heldHits map[string]int // 503s answered per held number
	sent     []smsSent
	problems []string
}

func newSMSGateway(t *testing.T) *smsGateway {
	g := &smsGateway{holding: true, held: map[string]bool{}, heldHits: map[string]int{}}
	g.srv = httptest.NewServer(http.HandlerFunc(g.serve))
	t.Cleanup(g.srv.Close)
	return g
}

func (g *smsGateway) serve(w http.ResponseWriter, r *http.Request) {
	refuse := func(status, code int, format string, args ...any) {
		msg := fmt.Sprintf(format, args...)
		g.mu.Lock()
		g.problems = append(g.problems, msg)
		g.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(map[string]any{"code": code, "message": msg, "status": status})
	}
	if r.Method != http.MethodPost || r.URL.Path != "/2010-04-01/Accounts/"+notifySID+"/Messages.json" {
		refuse(404, 20404, "%s %s: not the Messages resource", r.Method, r.URL.Path)
		return
	}
	if u, p, ok := r.BasicAuth(); !ok || u != notifySID || p != notifyToken {
		refuse(401, 20003, "authentication failed")
		return
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/x-www-form-urlencoded") {
		refuse(400, 21000, "content type %q", ct)
		return
	}
	if err := r.ParseForm(); err != nil {
		refuse(400, 21000, "form: %v", err)
		return
	}
	to, from, body := r.PostForm.Get("To"), r.PostForm.Get("From"), r.PostForm.Get("Body")
	if !sms.ValidNumber(to) || from != notifySMSFrom || body == "" || len(r.PostForm) != 3 {
		refuse(400, 21211, "fields %v", slices.Sorted(maps.Keys(r.PostForm)))
		return
	}
	g.mu.Lock()
	if g.holding && g.held[to] {
		g.heldHits[to]++
		g.mu.Unlock()
		w.Header().Set("Retry-After", strconv.Itoa(int(notifyHold.Seconds())))
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = io.WriteString(w, `{"code": 20503, "message": "Service unavailable", "status": 503}`)
		return
	}
	sid := fmt.Sprintf("SM%032x", len(g.sent)+1)
	g.sent = append(g.sent, smsSent{To: to, Body: body, SID: sid, At: time.Now()})
	g.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	_ = json.NewEncoder(w).Encode(map[string]any{"sid": sid, "status": "queued", "to": to, "from": from, "body": body})
}

// release stops holding.
func (g *smsGateway) release() {
	g.mu.Lock()
	g.holding = false
	g.mu.Unlock()
}

// notifyDay is the state of TestNotifyDay.
type notifyDay struct {
	t      *testing.T
	smtp   *smtptest.Server
	gw     *smsGateway
	hooks  *webhooktest.Receiver
	clock  *notifyClock
	tmpl   *message.Templates
	ships  []*notifyShipment // by shipment index
	unsub  time.Time         // when the recipients unsubscribe (simulated)
	unsubd bool
	// outage starts the webhook receiver's 10 minutes down (simulated
	// time): it drops every connection while down is set.
	outage time.Time
	down   atomic.Bool
	// released is when the held SMS were let go (wall clock).
	released time.Time
	replayed int // webhook deliveries queued by the replay
}

// TestNotifyDay runs a simulated day on Monaco through an in-process
// server that notifies for real: every event to a signed webhook
// (internal/webhooktest, with faults and 10 simulated minutes down),
// e-mail through a real SMTP server (internal/smtptest) and SMS through
// a Twilio-shaped gateway. About a third of the shipments have custom
// preferences, a few lack an address,
// the recipients live in three time zones, three unsubscribe mid-day (two
// from e-mail with the e-mail's one-click link, one from SMS) and one
// opens the unsubscribe page without confirming, and the gateway holds
// back the SMS of a few recipients until the day is over. Then:
//
//   - every event of the log reached the webhook receiver, signed, the
//     first acceptances of each shipment in seq order, duplicates (the
//     faults' and a replay's) only with the event's webhook-id;
//   - per shipment and channel, the notifications received are exactly
//     those its events and preferences call for, each once: the
//     preferences or the defaults, one per (attempt, type, stops count),
//     nothing without an address or after an unsubscribe, no SMS in the
//     recipient's night hours (21-8 local, at the event's time) except
//     delivered and failed, and for the held recipients only the outcome
//     (the earlier SMS, sent after the shipment is done, are stale);
//   - each e-mail and SMS is the template's rendering of its event (so it
//     carries the tracking link with the shipment's token), each e-mail
//     has the Message-ID of its event and a one-click List-Unsubscribe,
//     each SMS is one segment.
//
// What a recipient is sent depends on when the workers send (a timely
// event is skipped once the shipment is done): the run drains the
// outbox after every action (DispatchConfig.Drain), so that each
// action's notifications go out before the next action and the
// expectations are exact.
func TestNotifyDay(t *testing.T) {
	if testing.Short() {
		t.Skip("a simulated day with notifications")
	}
	g := dispatchGraph(t, "monaco.osm.pbf")
	n := &notifyDay{t: t, smtp: smtptest.Start(t), gw: newSMSGateway(t), hooks: webhooktest.New(t), clock: &notifyClock{}}
	var err error
	if n.tmpl, err = message.Load(""); err != nil {
		t.Fatal(err)
	}
	mailer, err := mail.New(mail.Config{Host: n.smtp.Host, Port: n.smtp.Port, Username: n.smtp.User, Password: n.smtp.Password,
		From: notifyMailFrom, FromName: notifyCarrier, RootCAs: n.smtp.RootCAs, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mailer.Close() })
	texter, err := sms.New(sms.Config{BaseURL: n.gw.srv.URL, AccountSID: notifySID, AuthToken: notifyToken, From: notifySMSFrom,
		Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	recipients, err := notify.NewRecipients(notify.RecipientsConfig{Templates: n.tmpl, Mail: mailer, SMS: texter,
		PublicURL: notifyPublicURL, Carrier: notifyCarrier})
	if err != nil {
		t.Fatal(err)
	}
	// Webhook faults: errors, a 429 with Retry-After, answers slower than
	// the sender waits (it sends again: a duplicate).
	n.hooks.SetBehaviour(func(k int, _ *http.Request, _ []byte) webhooktest.Response {
		switch {
		case n.down.Load():
			return webhooktest.Response{Drop: true}
		case k == 300:
			return webhooktest.Response{Status: http.StatusTooManyRequests, Header: http.Header{"Retry-After": {"1"}}}
		case k == 150 || k == 900:
			return webhooktest.Response{Delay: 1500 * time.Millisecond}
		case k%97 == 0:
			return webhooktest.Response{Status: http.StatusInternalServerError}
		case k%89 == 0:
			return webhooktest.Response{Status: http.StatusServiceUnavailable}
		}
		return webhooktest.Response{}
	})
	date := time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)
	n.unsub = date.Add(9*time.Hour + 30*time.Minute)
	n.outage = date.Add(11 * time.Hour)
	cfg := DispatchConfig{
		// Solved by iterations, as the other days: a plan solved for a
		// time differs with the machine's load.
		Graph: g, Seed: 1, Date: date, Drain: true, Webhooks: []string{n.hooks.URL}, Iterations: 20000,
		Rules: dispatch.Config{RerouteIterations: 2000},
		Server: func(sc *engine.ServerConfig) {
			sc.Notify = notify.Config{AllowPrivate: true, Now: n.clock.Now, Timeout: time.Second, Poll: 20 * time.Millisecond,
				BackoffBase: 20 * time.Millisecond, BackoffMax: 200 * time.Millisecond, Recipients: recipients}
		},
		Shipment: n.setupShipment,
		Step:     n.step,
		AfterReplay: func(ctx context.Context, api DispatchAPI) error {
			n.gw.release()
			n.released = time.Now()
			n.clock.off.Add(int64(notifyRelease))
			// A replay of the first hour of the shift: every event in it
			// again, with its own webhook-id.
			var out struct {
				Queued int `json:"queued"`
			}
			from := date.Add(8 * time.Hour).Unix()
			if err := notifyCall(ctx, api, "POST", "/v1/webhooks/"+api.Webhooks[0]+"/replay",
				map[string]any{"from": from, "to": from + 3600}, &out); err != nil {
				return err
			}
			n.replayed = out.Queued
			return nil
		},
	}
	t0 := time.Now()
	res, err := Dispatch(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("day: %d shipments, %d events %v; %.1fs in all, replay %.1fs, waiting for the outbox %.1fs",
		res.Shipments, len(res.EventLog), res.EventTypes, time.Since(t0).Seconds(), res.ReplayTime.Seconds(), res.DrainTime.Seconds())
	checkDispatchInvariants(t, res)
	if !n.unsubd {
		t.Fatal("the replay never reached the time of the unsubscriptions")
	}
	n.checkWebhooks(res)
	want := n.expect(res)
	n.checkEmails(res, want)
	n.checkSMS(want)
}

// setupShipment is the run's Shipment hook.
func (n *notifyDay) setupShipment(i int, in *dispatch.ShipmentInput) {
	held := notifyShipmentSetup(i, in)
	zone, err := time.LoadLocation(in.TimeZone)
	if err != nil {
		n.t.Fatal(err)
	}
	s := &notifyShipment{i: i, in: *in, zone: zone, held: held}
	for len(n.ships) <= i {
		n.ships = append(n.ships, nil)
	}
	n.ships[i] = s
	if held {
		num, _ := sms.NormalizeNumber(in.Recipient.Phone)
		n.gw.mu.Lock()
		n.gw.held[num] = true
		n.gw.mu.Unlock()
	}
}

// notifyCall sends a JSON request to the API with the dispatcher key and
// decodes a 2xx answer into into (when not nil).
func notifyCall(ctx context.Context, api DispatchAPI, method, path string, body, into any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = strings.NewReader(string(b))
	}
	req, err := http.NewRequestWithContext(ctx, method, api.URL+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+api.Key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: %d %.200s", method, path, resp.StatusCode, out)
	}
	if into != nil {
		return json.Unmarshal(out, into)
	}
	return nil
}

// step is the run's Step hook: once the day reaches n.unsub, recipients
// with default preferences who got an e-mail and whose shipment is still
// under way unsubscribe: two from e-mail with the e-mail's one-click
// link, one from SMS with the page's form; one more only opens the page.
func (n *notifyDay) step(ctx context.Context, api DispatchAPI, at time.Time) error {
	n.down.Store(!at.Before(n.outage) && at.Before(n.outage.Add(10*time.Minute)))
	if n.unsubd || at.Before(n.unsub) {
		return nil
	}
	n.unsubd = true
	msgs, err := n.smtp.ReadMessages("")
	if err != nil {
		return err
	}
	got := map[string][]smtptest.Message{}
	for _, m := range msgs {
		for _, to := range m.To() {
			got[to] = append(got[to], m)
		}
	}
	picked := 0
	for _, s := range n.ships {
		if picked == 4 {
			break
		}
		if s == nil || s.in.Notify != nil || s.held || s.address(dispatch.ChannelEmail) == "" || s.address(dispatch.ChannelSMS) == "" ||
			len(got[s.in.Recipient.Email]) == 0 {
			continue
		}
		var v struct {
			Status string `json:"status"`
			Events []struct {
				Seq int64 `json:"seq"`
			} `json:"events"`
		}
		if err := notifyCall(ctx, api, "GET", "/v1/shipments/"+s.in.Tracking, nil, &v); err != nil {
			return err
		}
		if v.Status == dispatch.StatusDelivered || v.Status == dispatch.StatusFailed || len(v.Events) == 0 {
			continue
		}
		last := v.Events[len(v.Events)-1].Seq
		link := got[s.in.Recipient.Email][0].Header.Get("List-Unsubscribe")
		link = strings.TrimSuffix(strings.TrimPrefix(link, "<"+notifyPublicURL), ">")
		if !strings.HasPrefix(link, "/track/") || !strings.HasSuffix(link, "/unsubscribe?channel=email") {
			return fmt.Errorf("%s: List-Unsubscribe %q", s.in.Tracking, got[s.in.Recipient.Email][0].Header.Get("List-Unsubscribe"))
		}
		// The page asks first: a GET (a mail scanner) unsubscribes no one.
		page, err := notifyForm(ctx, "GET", api.URL+link, nil)
		if err != nil {
			return err
		}
		if !strings.Contains(page, "Stop e-mail notifications?") {
			return fmt.Errorf("%s: the unsubscribe page asks nothing:\n%s", s.in.Tracking, page)
		}
		switch picked {
		case 0, 1: // RFC 8058's one-click POST to the List-Unsubscribe URL
			page, err = notifyForm(ctx, "POST", api.URL+link, url.Values{"List-Unsubscribe": {"One-Click"}})
			s.emailCut = last
		case 2: // the page's form, for SMS
			smsLink := strings.TrimSuffix(link, "?channel=email")
			page, err = notifyForm(ctx, "POST", api.URL+smsLink, url.Values{"channel": {"sms"}})
			s.smsCut = last
		case 3:
			s.pageCut = last
			picked++
			continue
		}
		if err != nil {
			return err
		}
		if !strings.Contains(page, "Unsubscribed") {
			return fmt.Errorf("%s: unsubscribing answered:\n%s", s.in.Tracking, page)
		}
		picked++
	}
	if picked < 4 {
		return fmt.Errorf("only %d recipients to unsubscribe at %s", picked, at.Format(time.TimeOnly))
	}
	return nil
}

// notifyForm sends a GET, or a POST of a form, and returns the 200
// answer's body.
func notifyForm(ctx context.Context, method, u string, form url.Values) (string, error) {
	var rd io.Reader
	if form != nil {
		rd = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return "", err
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%s %s: %d %.200s", method, u, resp.StatusCode, b)
	}
	return string(b), nil
}

// logOrder logs, for each shipment whose first acceptances came out of
// seq order, every request the receiver got for it and its events' times,
// so that a failure says how it came about.
func (n *notifyDay) logOrder(all, processed []webhooktest.Delivery, res *DispatchResult) {
	last := map[string]int64{}
	seen := map[string]map[int64]bool{}
	bad := map[string]bool{}
	for _, d := range processed {
		p := d.Payload.Data
		if seen[p.Tracking] == nil {
			seen[p.Tracking] = map[int64]bool{}
		}
		if seen[p.Tracking][p.Seq] {
			continue
		}
		seen[p.Tracking][p.Seq] = true
		if prev, ok := last[p.Tracking]; ok && p.Seq <= prev {
			bad[p.Tracking] = true
		}
		last[p.Tracking] = p.Seq
	}
	for tracking := range bad {
		for _, e := range res.EventLog {
			if e.Tracking == tracking {
				n.t.Logf("%s event seq %d %s cursor %d time %s", tracking, e.Seq, e.Type, e.Cursor, time.Unix(e.Time, 0).UTC().Format(time.TimeOnly))
			}
		}
		for _, d := range all {
			if d.Payload.Data.Tracking == tracking {
				n.t.Logf("%s request %d seq %d status %d abandoned %v at %+.3fs from the release", tracking, d.N, d.Payload.Data.Seq,
					d.Status, d.Abandoned, d.At.Sub(n.released).Seconds())
			}
		}
	}
}

// checkWebhooks checks (a): every event of the log at the receiver,
// signed, in seq order per shipment, duplicates with the event's id.
func (n *notifyDay) checkWebhooks(res *DispatchResult) {
	t := n.t
	if len(res.WebhookSecrets) != 1 || !strings.HasPrefix(res.WebhookSecrets[0], "whsec_") {
		t.Fatalf("webhook secrets %v", res.WebhookSecrets)
	}
	n.hooks.SetSecret(res.WebhookSecrets[0])
	all := n.hooks.Deliveries()
	if bad := n.hooks.BadSignatures(); len(bad) > 0 {
		t.Errorf("%d of %d webhook requests with a bad signature, the first: %v", len(bad), len(all), bad[0].SignatureErr)
	}
	// What the receiver processed (answered 2xx, the sender hung up on
	// it or not), in order.
	var processed []webhooktest.Delivery
	failed, abandoned, dropped := 0, 0, 0
	for _, d := range all {
		if d.Dropped {
			dropped++
		}
		switch {
		case d.Status/100 != 2:
			failed++
		case d.Abandoned:
			abandoned++
			processed = append(processed, d)
		default:
			processed = append(processed, d)
		}
		if d.At.Before(n.released) {
			if err := webhooktest.CheckAge(d, d.At, time.Minute); err != nil {
				t.Errorf("request %d: %v", d.N, err)
			}
		}
	}
	evs := make([]webhooktest.Event, len(res.EventLog))
	for k, e := range res.EventLog {
		evs[k] = webhooktest.Event{ID: e.ID, Cursor: e.Cursor, Tracking: e.Tracking, Seq: e.Seq, Type: e.Type, Time: e.Time, Data: e.Data}
	}
	if err := webhooktest.CheckOrder(processed, evs); err != nil {
		t.Errorf("webhooks: %v", err)
		n.logOrder(all, processed, res)
	}
	dups := len(processed) - len(evs)
	t.Logf("webhooks: %d requests for %d events: %d failed by the receiver's faults (%d dropped while it was down), %d abandoned by the sender, %d duplicates (%d replayed)",
		len(all), len(evs), failed, dropped, abandoned, dups, n.replayed)
	if failed == 0 || dropped == 0 || abandoned == 0 || n.replayed == 0 || dups < n.replayed+abandoned {
		t.Errorf("the faults did not happen: %d failed, %d dropped, %d abandoned, %d replayed, %d duplicates", failed, dropped, abandoned, n.replayed, dups)
	}
}

// notification is one e-mail or SMS a shipment's events call for.
type notification struct {
	ship  *notifyShipment
	event dispatch.Event
	// email or sms is the expected rendering.
	email message.Email
	sms   string
}

// notifyExpected holds the expected notifications per channel and
// recipient address.
type notifyExpected struct {
	email, sms map[string][]notification
	// skipped counts what the rules left out, by reason.
	skipped map[string]int
}

// expect computes (b): from each shipment's events and set-up, the
// notifications its recipient must get on each channel.
func (n *notifyDay) expect(res *DispatchResult) notifyExpected {
	t := n.t
	want := notifyExpected{email: map[string][]notification{}, sms: map[string][]notification{}, skipped: map[string]int{}}
	per := map[string][]dispatch.Event{}
	for _, e := range res.EventLog {
		per[e.Tracking] = append(per[e.Tracking], e)
	}
	nightHours := func(t time.Time) bool {
		h := t.Hour()
		return h >= notify.DefaultNightStart || h < notify.DefaultNightEnd
	}
	seenNight := map[bool]int{}
	afterPage := 0 // e-mails due after a recipient only opened the unsubscribe page
	for _, s := range n.ships {
		evs := per[s.in.Tracking]
		slices.SortFunc(evs, func(a, b dispatch.Event) int { return cmp.Compare(a.Seq, b.Seq) })
		token := strings.TrimPrefix(res.TrackingURLs[s.in.Tracking], "/track/")
		if len(token) != 22 {
			t.Fatalf("%s: tracking URL %q", s.in.Tracking, res.TrackingURLs[s.in.Tracking])
		}
		for _, ch := range []string{dispatch.ChannelEmail, dispatch.ChannelSMS} {
			queued := map[string]bool{} // recipient keys: one notification per state
			heldFrom := false           // the held SMS go after the day: stale unless the outcome
			for _, e := range evs {
				if !s.wants(ch, e.Type) {
					continue
				}
				var d struct {
					Attempt int64        `json:"attempt"`
					Stops   int          `json:"stops"`
					ETA     *message.ETA `json:"eta"`
					Reason  string       `json:"reason"`
				}
				if err := json.Unmarshal(e.Data, &d); err != nil {
					t.Fatalf("%s seq %d: data %s: %v", e.Tracking, e.Seq, e.Data, err)
				}
				key := fmt.Sprintf("%d:%s", max(d.Attempt, 1), e.Type)
				if e.Type == dispatch.EventStopsAway {
					key += ":" + strconv.Itoa(d.Stops)
				}
				if queued[key] {
					want.skipped[ch+" same state"]++
					continue
				}
				queued[key] = true
				addr := s.address(ch)
				outcome := e.Type == dispatch.EventDelivered || e.Type == dispatch.EventFailed
				night := nightHours(time.Unix(e.Time, 0).In(s.zone))
				switch {
				case addr == "":
					want.skipped[ch+" no address"]++
					continue
				case ch == dispatch.ChannelEmail && s.emailCut > 0 && e.Seq > s.emailCut,
					ch == dispatch.ChannelSMS && s.smsCut > 0 && e.Seq > s.smsCut:
					want.skipped[ch+" unsubscribed"]++
					continue
				case ch == dispatch.ChannelSMS && s.held && heldFrom && !outcome:
					want.skipped[ch+" stale"]++
					continue
				case ch == dispatch.ChannelSMS && night && !outcome:
					want.skipped[ch+" night"]++
					seenNight[true]++
					continue
				case ch == dispatch.ChannelSMS && s.held && !outcome:
					// The first SMS that reaches the gateway is refused
					// until the day is over; it and those queued behind
					// it are stale by then.
					heldFrom = true
					want.skipped[ch+" stale"]++
					continue
				}
				if ch == dispatch.ChannelSMS && !outcome {
					seenNight[false]++
				}
				if ch == dispatch.ChannelEmail && s.pageCut > 0 && e.Seq > s.pageCut {
					afterPage++
				}
				in := message.Input{Event: e.Type, Time: e.Time, Tracking: s.in.Tracking, Name: s.in.Recipient.Name,
					Language: s.in.Recipient.Language, Location: s.zone, TimeWindow: *s.in.TimeWindow,
					TrackingURL:    notifyPublicURL + "/track/" + token,
					UnsubscribeURL: notifyPublicURL + "/track/" + token + "/unsubscribe?channel=" + ch, Carrier: notifyCarrier,
					ETA: d.ETA, Stops: d.Stops, Reason: d.Reason}
				nt := notification{ship: s, event: e}
				var err error
				if ch == dispatch.ChannelEmail {
					nt.email, err = n.tmpl.Email(in)
					want.email[addr] = append(want.email[addr], nt)
				} else {
					nt.sms, err = n.tmpl.SMS(in)
					want.sms[addr] = append(want.sms[addr], nt)
				}
				if err != nil {
					t.Fatalf("%s seq %d: rendering: %v", e.Tracking, e.Seq, err)
				}
			}
		}
	}
	t.Logf("expected: e-mails to %d recipients, SMS to %d; timely SMS in the day %d, in the night %d; %d e-mails after the unsubscribe page without confirming; left out: %v",
		len(want.email), len(want.sms), seenNight[false], seenNight[true], afterPage, want.skipped)
	if seenNight[false] == 0 || seenNight[true] == 0 {
		t.Errorf("the day does not put SMS on both sides of the night hours: %d in the day, %d in the night", seenNight[false], seenNight[true])
	}
	// The unsubscribe page's GET stopped nothing: its recipient is sent
	// e-mails after it. The unsubscribed would have been sent some.
	if afterPage == 0 {
		t.Error("the recipient who only opened the unsubscribe page has no e-mail due after it: the day does not show that a GET unsubscribes no one")
	}
	for _, reason := range []string{"email no address", "sms no address", "email unsubscribed", "sms unsubscribed", "sms stale", "sms night"} {
		if want.skipped[reason] == 0 {
			t.Errorf("no notification left out for %q: the day does not exercise that rule", reason)
		}
	}
	return want
}

// checkEmails compares the Maildir with the expected e-mails: the same
// ones, each once, as rendered, with their headers.
func (n *notifyDay) checkEmails(res *DispatchResult, want notifyExpected) {
	t := n.t
	got := n.smtp.Messages(t, "")
	byTo := map[string][]smtptest.Message{}
	for _, m := range got {
		to := m.To()
		if len(to) != 1 {
			t.Errorf("e-mail %s has envelope recipients %v", m.File, to)
			continue
		}
		byTo[to[0]] = append(byTo[to[0]], m)
	}
	total, problems := 0, 0
	problem := func(format string, args ...any) {
		if problems++; problems <= 20 {
			t.Errorf(format, args...)
		}
	}
	for _, addr := range slices.Sorted(maps.Keys(byTo)) {
		if _, ok := want.email[addr]; !ok {
			problem("%d e-mails to a recipient who should get none", len(byTo[addr]))
		}
	}
	for addr, exp := range want.email {
		total += len(exp)
		ms := byTo[addr]
		byID := map[string][]smtptest.Message{}
		for _, m := range ms {
			byID[m.Header.Get("Message-ID")] = append(byID[m.Header.Get("Message-ID")], m)
		}
		for _, nt := range exp {
			id := "<" + nt.event.ID + "@" + notifyHost + ">"
			ms := byID[id]
			delete(byID, id)
			if len(ms) != 1 {
				problem("%s: %d e-mails for %s (seq %d), want 1", nt.ship.in.Tracking, len(ms), nt.event.Type, nt.event.Seq)
				continue
			}
			m := ms[0]
			token := strings.TrimPrefix(res.TrackingURLs[nt.ship.in.Tracking], "/track/")
			unsub := notifyPublicURL + "/track/" + token + "/unsubscribe?channel=email"
			switch {
			case m.Subject != nt.email.Subject || m.Text != nt.email.Text || m.HTML != nt.email.HTML:
				problem("%s: the %s e-mail is not its rendering: subject %q, want %q", nt.ship.in.Tracking, nt.event.Type, m.Subject, nt.email.Subject)
			case !strings.Contains(m.Text, notifyPublicURL+"/track/"+token+"\n") || !strings.Contains(m.HTML, `href="`+notifyPublicURL+"/track/"+token+`"`):
				problem("%s: the %s e-mail lacks the tracking link with the shipment's token", nt.ship.in.Tracking, nt.event.Type)
			case m.Header.Get("List-Unsubscribe") != "<"+unsub+">" || m.Header.Get("List-Unsubscribe-Post") != "List-Unsubscribe=One-Click":
				problem("%s: List-Unsubscribe %q, List-Unsubscribe-Post %q", nt.ship.in.Tracking, m.Header.Get("List-Unsubscribe"), m.Header.Get("List-Unsubscribe-Post"))
			case !notifyFrom(m):
				problem("%s: From %q, Return-Path %q", nt.ship.in.Tracking, m.Get("From"), m.Header.Get("Return-Path"))
			}
		}
		for id, ms := range byID {
			problem("%s: %d unexpected e-mails with Message-ID %s, subject %q", exp[0].ship.in.Tracking, len(ms), id, ms[0].Subject)
		}
	}
	t.Logf("e-mails: %d received, %d expected", len(got), total)
	if len(got) != total {
		t.Errorf("%d e-mails received, %d expected", len(got), total)
	}
}

// notifyFrom reports whether an e-mail comes from the carrier's address,
// with its name.
func notifyFrom(m smtptest.Message) bool {
	a, err := (&netmail.AddressParser{WordDecoder: new(mime.WordDecoder)}).Parse(m.Header.Get("From"))
	return err == nil && a.Name == notifyCarrier && a.Address == notifyMailFrom && m.Header.Get("Return-Path") == "<"+notifyMailFrom+">"
}

// checkSMS compares the gateway's SMS with the expected ones: the same
// bodies, each once, one segment each; the held recipients were refused
// before they got their outcome.
func (n *notifyDay) checkSMS(want notifyExpected) {
	t := n.t
	g := n.gw
	g.mu.Lock()
	sent := slices.Clone(g.sent)
	problems := slices.Clone(g.problems)
	heldHits := maps.Clone(g.heldHits)
	g.mu.Unlock()
	if len(problems) > 0 {
		t.Errorf("the gateway refused %d requests: %v", len(problems), problems[:min(len(problems), 5)])
	}
	byTo := map[string][]smsSent{}
	for _, m := range sent {
		byTo[m.To] = append(byTo[m.To], m)
		if enc, segs := message.Segments(m.Body); segs != 1 {
			t.Errorf("an SMS of %d %s segments: %q", segs, enc, m.Body)
		}
	}
	for _, to := range slices.Sorted(maps.Keys(byTo)) {
		if _, ok := want.sms[to]; !ok {
			t.Errorf("%d SMS to a recipient who should get none: %q", len(byTo[to]), byTo[to][0].Body)
		}
	}
	total := 0
	for to, exp := range want.sms {
		total += len(exp)
		bodies := map[string]int{}
		for _, m := range byTo[to] {
			bodies[m.Body]++
		}
		for _, nt := range exp {
			if bodies[nt.sms] == 0 {
				t.Errorf("%s: no SMS for %s (seq %d at %s): want %q", nt.ship.in.Tracking, nt.event.Type, nt.event.Seq,
					time.Unix(nt.event.Time, 0).In(nt.ship.zone).Format(time.TimeOnly), nt.sms)
				continue
			}
			bodies[nt.sms]--
		}
		for body, k := range bodies {
			if k > 0 {
				t.Errorf("%s: %d unexpected SMS %q", exp[0].ship.in.Tracking, k, body)
			}
		}
	}
	held := 0
	for _, s := range n.ships {
		if s.held {
			held++
			if heldHits[s.address(dispatch.ChannelSMS)] == 0 {
				t.Errorf("%s: held, but no SMS of it reached the gateway before the day was over", s.in.Tracking)
			}
		}
	}
	t.Logf("SMS: %d received, %d expected; %d recipients held", len(sent), total, held)
	if len(sent) != total || held == 0 {
		t.Errorf("%d SMS received, %d expected, %d recipients held", len(sent), total, held)
	}
}
