package notify

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/lastmile/lastmile/engine/dispatch"
	"github.com/lastmile/lastmile/engine/seal"
	"github.com/lastmile/lastmile/engine/store"
)

// Limits of a subscription.
const (
	maxURL         = 2048
	maxDescription = 500
	maxReplay      = 100_000
	// secretBytes is the size of a subscription's secret: the Standard
	// Webhooks specification asks for 24 to 64 random bytes
	// (spec.md, "Symmetric signatures").
	secretBytes = 32
)

// Error is a failure the caller can act on; Code maps to an HTTP status
// as dispatch.Error's do (InvalidValue 400, NotFound 404, Conflict 409).
type Error = dispatch.Error

func errorf(code, format string, args ...any) error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// WebhookInput creates or changes a subscription.
type WebhookInput struct {
	URL string `json:"url"`
	// Events are the event types to send (["*"]: all).
	Events []string `json:"events"`
	// Tracking limits the subscription to one shipment.
	Tracking    string `json:"tracking,omitempty"`
	Description string `json:"description,omitempty"`
	// Enabled defaults to true at creation.
	Enabled *bool `json:"enabled,omitempty"`
}

// Webhook is a subscription as the API shows it (its secret only once,
// at creation).
type Webhook struct {
	ID          string   `json:"id"`
	URL         string   `json:"url"`
	Events      []string `json:"events"`
	Tracking    string   `json:"tracking,omitempty"`
	Description string   `json:"description,omitempty"`
	Enabled     bool     `json:"enabled"`
	// DisabledReason says why the engine turned it off.
	DisabledReason string `json:"disabled_reason,omitempty"`
	// FailingSince is when its current streak of failures began (Unix
	// seconds; absent when healthy); Failures its length.
	FailingSince int64 `json:"failing_since,omitempty"`
	Failures     int64 `json:"failures,omitempty"`
	Created      int64 `json:"created"`
	// Backlog counts the events committed that the subscription takes
	// or passes over and has not looked at yet (its deliveries are
	// queued from the event log a window at a time, and not while its
	// receiver fails); with no pending delivery, 0 means all are sent.
	Backlog int64  `json:"backlog"`
	Secret  string `json:"secret,omitempty"`
}

// webhookView is w as the API shows it; head is the last committed
// event's cursor.
func webhookView(w store.Webhook, head int64) Webhook {
	to := head
	if !w.Enabled {
		to = w.TakenTo
	}
	return Webhook{ID: w.ID, URL: w.URL, Events: w.Events, Tracking: w.Tracking, Description: w.Description,
		Enabled: w.Enabled, DisabledReason: w.DisabledReason, FailingSince: w.FailingSince / 1000, Failures: w.Failures,
		Created: w.Created, Backlog: max(to-w.QueuedTo, 0)}
}

// eventTypes are the types a subscription may name.
func eventTypes() []string {
	return append(slices.Clone(dispatch.EngineEventTypes), dispatch.CallerEventTypes...)
}

// validate checks a subscription's fields; the URL must be http(s) with a
// host and no credentials, and (unless private targets are allowed) not
// name a private, loopback or link-local address.
func (s *Service) validate(in *WebhookInput) error {
	if len(in.URL) > maxURL {
		return errorf("InvalidValue", "url: %d bytes, at most %d", len(in.URL), maxURL)
	}
	u, err := url.Parse(in.URL)
	if err != nil || !u.IsAbs() || u.Host == "" || u.Opaque != "" {
		return errorf("InvalidValue", "url: want an absolute http:// or https:// URL")
	}
	if u.Scheme != "https" && u.Scheme != "http" {
		return errorf("InvalidValue", "url: scheme %q: want https (or http)", clip(u.Scheme, 20))
	}
	if u.User != nil {
		return errorf("InvalidValue", "url: credentials in the URL are not allowed; verify the signature instead")
	}
	if u.Fragment != "" {
		return errorf("InvalidValue", "url: a fragment is not sent; remove it")
	}
	if strings.ContainsAny(in.URL, " \t\r\n") {
		return errorf("InvalidValue", "url: contains white space")
	}
	host := u.Hostname()
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return errorf("InvalidValue", "url: port %q is not a port", clip(p, 10))
		}
	}
	if !s.cfg.AllowPrivate {
		if a, err := netip.ParseAddr(host); err == nil && !publicAddr(a) {
			return errorf("InvalidValue", "url: %s is a private, loopback or link-local address (start the server with --webhook-allow-private to allow it)", a)
		}
		if h := strings.ToLower(strings.TrimSuffix(host, ".")); h == "localhost" || strings.HasSuffix(h, ".localhost") || strings.HasSuffix(h, ".local") || strings.HasSuffix(h, ".internal") {
			return errorf("InvalidValue", "url: %s names a local host (start the server with --webhook-allow-private to allow it)", clip(host, 80))
		}
	}
	if len(in.Events) == 0 {
		return errorf("InvalidValue", `events: name at least one event type, or ["*"] for all`)
	}
	known := eventTypes()
	if len(in.Events) > len(known)+1 {
		return errorf("InvalidValue", "events: at most %d types", len(known)+1)
	}
	for _, e := range in.Events {
		if e != "*" && !slices.Contains(known, e) {
			return errorf("InvalidValue", "events: %q is not an event type (known: %s, or *)", clip(e, 40), strings.Join(known, ", "))
		}
	}
	if in.Tracking != "" && (len(in.Tracking) > 64 || strings.ContainsFunc(in.Tracking, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.')
	})) {
		return errorf("InvalidValue", "tracking: not a tracking number")
	}
	if len(in.Description) > maxDescription || strings.ContainsFunc(in.Description, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return errorf("InvalidValue", "description: at most %d bytes without control characters", maxDescription)
	}
	return nil
}

// newSecret returns a Standard Webhooks secret: "whsec_" and the base64
// of secretBytes random bytes.
func newSecret() string {
	b := make([]byte, secretBytes)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("notify: no randomness: %v", err)) // crypto/rand does not fail on Linux
	}
	return "whsec_" + base64.StdEncoding.EncodeToString(b)
}

// CreateWebhook stores a subscription and returns it with its secret (the
// only time the secret is shown).
func (s *Service) CreateWebhook(ctx context.Context, in WebhookInput) (Webhook, error) {
	if err := s.validate(&in); err != nil {
		return Webhook{}, err
	}
	w := store.Webhook{ID: "wh_" + seal.Token(), URL: in.URL, Events: in.Events, Tracking: in.Tracking,
		Secret: newSecret(), Description: in.Description, Enabled: in.Enabled == nil || *in.Enabled, Created: s.cfg.Now().Unix()}
	if _, err := s.st.Tx(ctx, func(tx *store.Tx) error { return tx.InsertWebhook(w) }); err != nil {
		return Webhook{}, err
	}
	v := webhookView(w, 0)
	v.Secret = w.Secret
	return v, nil
}

// Webhooks lists the subscriptions.
func (s *Service) Webhooks(ctx context.Context) ([]Webhook, error) {
	head, err := s.st.EventCursor(ctx)
	if err != nil {
		return nil, err
	}
	ws, err := s.st.Webhooks(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]Webhook, len(ws))
	for i, w := range ws {
		out[i] = webhookView(w, head)
	}
	return out, nil
}

func notFound(id string) error {
	return errorf("NotFound", "webhook %q: unknown", clip(id, 40))
}

// Webhook returns one subscription.
func (s *Service) Webhook(ctx context.Context, id string) (Webhook, error) {
	head, err := s.st.EventCursor(ctx)
	if err != nil {
		return Webhook{}, err
	}
	w, err := s.st.Webhook(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return Webhook{}, notFound(id)
	}
	if err != nil {
		return Webhook{}, err
	}
	return webhookView(w, head), nil
}

// WebhookPatch changes a subscription: each field given replaces the
// stored one ("" for Tracking removes the shipment filter).
type WebhookPatch struct {
	URL         *string  `json:"url,omitempty"`
	Events      []string `json:"events,omitempty"`
	Tracking    *string  `json:"tracking,omitempty"`
	Description *string  `json:"description,omitempty"`
	Enabled     *bool    `json:"enabled,omitempty"`
}

// UpdateWebhook changes a subscription. Enabling a disabled subscription
// clears its failure streak; its dead letters stay until replayed.
func (s *Service) UpdateWebhook(ctx context.Context, id string, p WebhookPatch) (Webhook, error) {
	var out store.Webhook
	_, err := s.st.Tx(ctx, func(tx *store.Tx) error {
		w, err := tx.LockWebhook(id)
		if err != nil {
			return err
		}
		in := WebhookInput{URL: w.URL, Events: w.Events, Tracking: w.Tracking, Description: w.Description}
		if p.URL != nil {
			in.URL = *p.URL
		}
		if p.Events != nil {
			in.Events = p.Events
		}
		if p.Tracking != nil {
			in.Tracking = *p.Tracking
		}
		if p.Description != nil {
			in.Description = *p.Description
		}
		if err := s.validate(&in); err != nil {
			return err
		}
		w.URL, w.Events, w.Tracking, w.Description = in.URL, in.Events, in.Tracking, in.Description
		if p.Enabled != nil {
			if *p.Enabled && !w.Enabled {
				// A fresh start: no failure streak, no backoff.
				w.DisabledReason, w.Failures, w.FailingSince, w.BlockedUntil = "", 0, 0, 0
			}
			w.Enabled = *p.Enabled
		}
		w.Updated = s.cfg.Now().Unix()
		out = w
		return tx.UpdateWebhook(w)
	})
	if errors.Is(err, store.ErrNotFound) {
		return Webhook{}, notFound(id)
	}
	if err != nil {
		return Webhook{}, err
	}
	s.Wake()
	return s.Webhook(ctx, out.ID)
}

// DeleteWebhook removes a subscription and its deliveries.
func (s *Service) DeleteWebhook(ctx context.Context, id string) error {
	_, err := s.st.Tx(ctx, func(tx *store.Tx) error { return tx.DeleteWebhook(id) })
	if errors.Is(err, store.ErrNotFound) {
		return notFound(id)
	}
	return err
}

// ReplayInput selects the events to send again: a cursor range (after,
// until] and/or a time range [from, to] (Unix seconds). At least one
// bound is needed ({"after": 0} is every event).
type ReplayInput struct {
	After *int64 `json:"after,omitempty"`
	Until *int64 `json:"until,omitempty"`
	From  *int64 `json:"from,omitempty"`
	To    *int64 `json:"to,omitempty"`
}

// Replayed answers a replay.
type Replayed struct {
	// Queued counts the deliveries queued (events in the range that match
	// the subscription).
	Queued int `json:"queued"`
}

// Replay queues again every event in the range that the subscription
// takes, with the same webhook-id (the event id) as before, so that
// receivers that kept it drop the duplicates. Sent, dead and pending
// deliveries alike are re-sent, in sequence order per shipment.
func (s *Service) Replay(ctx context.Context, id string, in ReplayInput) (Replayed, error) {
	if in.After == nil && in.Until == nil && in.From == nil && in.To == nil {
		return Replayed{}, errorf("InvalidValue", `name a range: after/until (event cursors) or from/to (Unix seconds); {"after": 0} for every event`)
	}
	var r store.EventRange
	for _, b := range []struct {
		v   *int64
		dst *int64
	}{{in.After, &r.AfterCursor}, {in.Until, &r.UntilCursor}, {in.From, &r.FromTime}, {in.To, &r.ToTime}} {
		if b.v != nil {
			if *b.v < 0 {
				return Replayed{}, errorf("InvalidValue", "after, until, from and to: want non-negative numbers")
			}
			*b.dst = *b.v
		}
	}
	if (in.Until != nil && r.UntilCursor <= r.AfterCursor) || (in.To != nil && r.ToTime < r.FromTime) {
		return Replayed{}, errorf("InvalidValue", "the range is empty: until must exceed after, to must not precede from")
	}
	if in.Until != nil && r.UntilCursor == 0 || in.To != nil && r.ToTime == 0 {
		return Replayed{}, errorf("InvalidValue", "the range is empty")
	}
	r.Limit = maxReplay + 1
	w, err := s.st.Webhook(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return Replayed{}, notFound(id)
	}
	if err != nil {
		return Replayed{}, err
	}
	if !w.Enabled {
		return Replayed{}, errorf("Conflict", "webhook %s is disabled: enable it first (PATCH enabled: true)", id)
	}
	evs, err := s.st.EventsIn(ctx, r)
	if err != nil {
		return Replayed{}, err
	}
	if len(evs) > maxReplay {
		return Replayed{}, errorf("InvalidValue", "the range holds more than %d events: replay it in parts", maxReplay)
	}
	now := s.nowMS()
	var ds []store.Delivery
	for _, e := range evs {
		if matches(w.Events, w.Tracking, e) {
			ds = append(ds, webhookDelivery(w.ID, e, now))
		}
	}
	if _, err := s.st.Tx(ctx, func(tx *store.Tx) error { return tx.RequeueDeliveries(ds) }); err != nil {
		return Replayed{}, err
	}
	s.Wake()
	return Replayed{Queued: len(ds)}, nil
}

// DeliveryView is one delivery as the API lists it.
type DeliveryView struct {
	ID         int64  `json:"id"`
	Event      string `json:"event"`
	Cursor     int64  `json:"cursor"`
	Tracking   string `json:"tracking"`
	Type       string `json:"type"`
	State      string `json:"state"`
	Attempts   int64  `json:"attempts"`
	StatusCode int64  `json:"status_code,omitempty"`
	LastError  string `json:"last_error,omitempty"`
	// NextAt is when a pending delivery is tried next (Unix ms).
	NextAt  int64 `json:"next_at,omitempty"`
	Created int64 `json:"created"`
	DoneAt  int64 `json:"done_at,omitempty"`
}

// DeliveriesPage answers a listing.
type DeliveriesPage struct {
	Deliveries []DeliveryView `json:"deliveries"`
	// Next is the id to list after next (0: the end).
	Next int64 `json:"next"`
}

// Deliveries lists a subscription's deliveries in a state ("" for all;
// "dead" is the dead-letter list) after a delivery id.
func (s *Service) Deliveries(ctx context.Context, id, state string, after int64, limit int) (DeliveriesPage, error) {
	switch state {
	case "", store.DeliveryPending, store.DeliverySent, store.DeliveryDead:
	default:
		return DeliveriesPage{}, errorf("InvalidValue", "state: want pending, sent or dead")
	}
	if _, err := s.Webhook(ctx, id); err != nil {
		return DeliveriesPage{}, err
	}
	ds, err := s.st.Deliveries(ctx, store.DeliveryFilter{Channel: store.ChannelWebhook, Target: id, State: state, After: after, Limit: limit})
	if err != nil {
		return DeliveriesPage{}, err
	}
	cursors := make([]int64, len(ds))
	for i, d := range ds {
		cursors[i] = d.Event
	}
	evs, err := s.st.EventsByCursor(ctx, cursors)
	if err != nil {
		return DeliveriesPage{}, err
	}
	page := DeliveriesPage{Deliveries: make([]DeliveryView, len(ds))}
	for i, d := range ds {
		e := evs[d.Event]
		v := DeliveryView{ID: d.ID, Event: e.ID, Cursor: d.Event, Tracking: e.Tracking, Type: e.Type, State: d.State,
			Attempts: d.Attempts, StatusCode: d.StatusCode, LastError: d.LastError, Created: d.Created, DoneAt: d.DoneAt}
		if d.State == store.DeliveryPending {
			v.NextAt = d.NextAt
		}
		page.Deliveries[i] = v
	}
	if len(ds) == limit && limit > 0 {
		page.Next = ds[len(ds)-1].ID
	}
	return page, nil
}

// Payload is the JSON body of a webhook, in the shape the Standard
// Webhooks specification recommends (spec.md, "Payload structure"): the
// event type, the time of the attempt's message and the event itself as
// GET /v1/events lists it.
type Payload struct {
	Type      string         `json:"type"`
	Timestamp string         `json:"timestamp"`
	Data      dispatch.Event `json:"data"`
}

// PayloadOf builds a webhook body for an event.
func PayloadOf(e store.Event) ([]byte, error) {
	return json.Marshal(Payload{Type: e.Type, Timestamp: time.Unix(e.Time, 0).UTC().Format(time.RFC3339), Data: dispatch.EventOf(e)})
}

// sendWebhook makes one attempt at a webhook delivery.
func (s *Service) sendWebhook(ctx context.Context, h store.Webhook, d store.Delivery, e store.Event) store.Outcome {
	body, err := PayloadOf(e)
	if err != nil {
		return store.Outcome{ID: d.ID, State: store.DeliveryDead, Error: err.Error()}
	}
	now := s.cfg.Now()
	sig, err := signFor(h.Secret, e.ID, now, body)
	if err != nil {
		return store.Outcome{ID: d.ID, State: store.DeliveryDead, Error: err.Error()}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.URL, bytes.NewReader(body))
	if err != nil {
		return s.failure(d, 0, "request: "+err.Error(), 0, 0)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "lastmile-webhooks/1")
	req.Header.Set("webhook-id", e.ID)
	req.Header.Set("webhook-timestamp", strconv.FormatInt(now.Unix(), 10))
	req.Header.Set("webhook-signature", sig)
	resp, err := s.cfg.Client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			// Shutting down: released for the next process, uncounted.
			return store.Outcome{ID: d.ID, State: store.DeliveryPending, NextAt: d.NextAt}
		}
		return s.failure(d, 0, describe(err), 0, 0)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return store.Outcome{ID: d.ID, Target: h.ID, State: store.DeliverySent, StatusCode: int64(resp.StatusCode), Counted: true,
			NextAt: d.NextAt}
	}
	var ra time.Duration
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
		ra = retryAfter(resp.Header.Get("Retry-After"), now)
	}
	return s.failure(d, resp.StatusCode, "HTTP "+strconv.Itoa(resp.StatusCode), ra, 0)
}

// signFor signs a message with the Standard Webhooks reference library
// (github.com/standard-webhooks/standard-webhooks/libraries/go, kept by
// the specification's authors): "v1," and the base64 HMAC-SHA256 of
// id.timestamp.body keyed by the secret.
func signFor(secret, id string, t time.Time, body []byte) (string, error) {
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		return "", fmt.Errorf("webhook secret: %w", err)
	}
	sig, err := wh.Sign(id, t, body)
	if err != nil {
		return "", fmt.Errorf("sign: %w", err)
	}
	return sig, nil
}

// retryAfter parses a Retry-After header: delay seconds or an HTTP date
// (RFC 9110, section 10.2.3); 0 when absent or unparsable.
func retryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err == nil {
		if n <= 0 {
			return 0
		}
		return min(time.Duration(n)*time.Second, maxRetryAfter)
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return min(t.Sub(now), maxRetryAfter)
	}
	return 0
}

// describe turns a transport error into a short reason without the URL.
func describe(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	var certErr *tls.CertificateVerificationError
	switch {
	case errors.As(err, &certErr):
		return "TLS: " + certErr.Err.Error()
	case errors.Is(err, errPrivate):
		return err.Error()
	case errors.Is(err, context.DeadlineExceeded) || isTimeout(err):
		return "timeout"
	}
	return err.Error()
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// errPrivate refuses a connection to a non-public address.
var errPrivate = errors.New("refused: the target resolves to a private, loopback or link-local address")

// publicAddr reports whether a is a public unicast address: not private
// (RFC 1918, RFC 4193), loopback, link-local, multicast, unspecified,
// shared (RFC 6598), benchmarking (RFC 2544) or reserved.
func publicAddr(a netip.Addr) bool {
	a = a.Unmap()
	if !a.IsValid() || a.IsPrivate() || a.IsLoopback() || a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() ||
		a.IsInterfaceLocalMulticast() || a.IsMulticast() || a.IsUnspecified() {
		return false
	}
	for _, p := range blocked {
		if p.Contains(a) {
			return false
		}
	}
	return true
}

var blocked = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("100.64.0.0/10"),
	netip.MustParsePrefix("192.0.0.0/24"),
	netip.MustParsePrefix("198.18.0.0/15"),
	netip.MustParsePrefix("240.0.0.0/4"),
	netip.MustParsePrefix("64:ff9b::/96"),
	netip.MustParsePrefix("2001:db8::/32"),
}

// newClient builds the webhook client: TLS verified by the system's
// roots, no proxy from the environment, no redirects (a 3xx is a
// failure), and unless allowPrivate a check of every address it connects
// to, after name resolution, so that DNS cannot point it inside.
func newClient(timeout time.Duration, allowPrivate bool, conns int) *http.Client {
	d := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	if !allowPrivate {
		d.Control = func(network, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil || !publicAddr(ap.Addr()) {
				return errPrivate
			}
			return nil
		}
	}
	tr := &http.Transport{
		DialContext:           d.DialContext,
		TLSHandshakeTimeout:   10 * time.Second,
		MaxIdleConns:          conns * 2,
		MaxIdleConnsPerHost:   conns,
		MaxConnsPerHost:       conns,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: timeout,
		ForceAttemptHTTP2:     true,
	}
	return &http.Client{
		Transport:     tr,
		Timeout:       timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}
