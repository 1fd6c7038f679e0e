// Package webhooktest is a webhook receiver on loopback for tests: it
// records every request (its webhook-id, webhook-timestamp and
// webhook-signature headers, body, arrival time and the status answered),
// verifies the signatures with its own implementation of the Standard
// Webhooks specification (Verify: not the sender's library, so that a
// bug there is not checked against itself), answers as a test-supplied
// Behaviour says (faults: error statuses, Retry-After, slow answers), and
// checks what a receiver of an at-least-once, ordered stream must see
// (CheckOrder).
//
//	rc := webhooktest.New(t)
//	// create the subscription on rc.URL, then:
//	rc.SetSecret(secret)
//	...
//	if err := webhooktest.CheckOrder(rc.Accepted(), events); err != nil { t.Fatal(err) }
package webhooktest

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Header names of the Standard Webhooks specification.
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"
)

// secretPrefix starts a Standard Webhooks secret; the base64 key follows.
const secretPrefix = "whsec_"

// maxBody bounds what the receiver reads of a request.
const maxBody = 1 << 20

// Event is an event as a webhook's payload carries it (the "data" of
// Payload; the engine's GET /v1/events shape).
type Event struct {
	ID       string          `json:"id"`
	Cursor   int64           `json:"cursor"`
	Tracking string          `json:"tracking"`
	Seq      int64           `json:"seq"`
	Type     string          `json:"type"`
	Time     int64           `json:"time"`
	Data     json.RawMessage `json:"data"`
}

// Payload is a webhook body as the specification recommends it: the
// event type, a timestamp and the event.
type Payload struct {
	Type      string `json:"type"`
	Timestamp string `json:"timestamp"`
	Data      Event  `json:"data"`
}

// Delivery is one request the receiver got.
type Delivery struct {
	// N numbers the requests from 1 in order of arrival.
	N int
	// ID, Timestamp and Signature are the Standard Webhooks headers.
	ID, Timestamp, Signature string
	// Body is the request body and Payload its decoding (zero when it is
	// not a Payload; PayloadErr says why).
	Body       []byte
	Payload    Payload
	PayloadErr error
	// At is when the request arrived.
	At time.Time
	// Status is what the receiver answered; Abandoned reports that the
	// sender hung up before the answer (a Behaviour's Delay longer than
	// its timeout), so the sender saw a failure whatever Status says.
	Status    int
	Abandoned bool
	// Dropped reports that the receiver closed the connection without an
	// answer (Response.Drop).
	Dropped bool
	// SignatureErr is nil when a signature verified with the receiver's
	// secret (ErrNoSecret until one is set).
	SignatureErr error
}

// Accepted reports whether the receiver answered 2xx and the sender got
// the answer.
func (d Delivery) Accepted() bool {
	return d.Status >= 200 && d.Status < 300 && !d.Abandoned && !d.Dropped
}

// Response is how the receiver answers one request.
type Response struct {
	// Status is the HTTP status (0 = 204 No Content).
	Status int
	// Header is added to the answer (Retry-After, for instance).
	Header http.Header
	// Delay holds the answer back this long (or until the sender hangs
	// up).
	Delay time.Duration
	// Drop closes the connection without answering, as a receiver that
	// is down (or a proxy that lost it) does.
	Drop bool
}

// Behaviour decides the answer to the n-th request (from 1); it runs
// before the request is recorded and must be safe for concurrent use.
type Behaviour func(n int, r *http.Request, body []byte) Response

// Receiver is a webhook endpoint on a loopback httptest server. It is
// safe for concurrent use.
type Receiver struct {
	// URL is the endpoint to subscribe ("http://127.0.0.1:port/hook").
	URL string
	srv *httptest.Server

	mu        sync.Mutex
	secret    string
	behaviour Behaviour
	n         int
	got       []Delivery
}

// New starts a receiver that answers 204 to everything until told
// otherwise (SetBehaviour); it stops when the test ends.
func New(t testing.TB) *Receiver {
	rc := &Receiver{}
	rc.srv = httptest.NewServer(http.HandlerFunc(rc.serve))
	rc.URL = rc.srv.URL + "/hook"
	t.Cleanup(rc.srv.Close)
	return rc
}

// ErrNoSecret is the SignatureErr of a request that came before the
// receiver knew its secret; SetSecret verifies those.
var ErrNoSecret = errors.New("webhooktest: no secret set yet")

// SetSecret sets the subscription's secret ("whsec_..."), with which
// later requests are verified, and verifies the requests recorded before
// any secret was set (a subscription whose secret the test learns late).
func (rc *Receiver) SetSecret(secret string) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.secret = secret
	for i, d := range rc.got {
		if errors.Is(d.SignatureErr, ErrNoSecret) {
			h := http.Header{}
			h.Set(HeaderID, d.ID)
			h.Set(HeaderTimestamp, d.Timestamp)
			h.Set(HeaderSignature, d.Signature)
			rc.got[i].SignatureErr = Verify(secret, h, d.Body)
		}
	}
}

// verify checks a request with the secret known at its arrival.
func verify(secret string, h http.Header, body []byte) error {
	if secret == "" {
		return ErrNoSecret
	}
	return Verify(secret, h, body)
}

// SetBehaviour sets how later requests are answered (nil: 204 at once).
func (rc *Receiver) SetBehaviour(b Behaviour) {
	rc.mu.Lock()
	rc.behaviour = b
	rc.mu.Unlock()
}

func (rc *Receiver) serve(w http.ResponseWriter, r *http.Request) {
	at := time.Now()
	body, _ := io.ReadAll(io.LimitReader(r.Body, maxBody))
	rc.mu.Lock()
	rc.n++
	n, behaviour, secret := rc.n, rc.behaviour, rc.secret
	rc.mu.Unlock()
	var resp Response
	if behaviour != nil {
		resp = behaviour(n, r, body)
	}
	if resp.Status == 0 {
		resp.Status = http.StatusNoContent
	}
	d := Delivery{N: n, ID: r.Header.Get(HeaderID), Timestamp: r.Header.Get(HeaderTimestamp), Signature: r.Header.Get(HeaderSignature),
		Body: body, At: at, Status: resp.Status, SignatureErr: verify(secret, r.Header, body)}
	if err := json.Unmarshal(body, &d.Payload); err != nil {
		d.PayloadErr = err
	}
	if resp.Drop {
		d.Dropped, d.Status = true, 0
		rc.mu.Lock()
		rc.got = append(rc.got, d)
		rc.mu.Unlock()
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				conn.Close()
				return
			}
		}
		panic(http.ErrAbortHandler) // the server closes the connection
	}
	if resp.Delay > 0 {
		select {
		case <-time.After(resp.Delay):
		case <-r.Context().Done():
			d.Abandoned = true
		}
	}
	rc.mu.Lock()
	rc.got = append(rc.got, d)
	rc.mu.Unlock()
	if d.Abandoned {
		return
	}
	for k, v := range resp.Header {
		w.Header()[k] = v
	}
	w.WriteHeader(resp.Status)
}

// Deliveries returns every request recorded so far, in the order their
// answers were decided (a delayed answer is recorded when it goes).
func (rc *Receiver) Deliveries() []Delivery {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]Delivery(nil), rc.got...)
}

// Accepted returns the requests answered 2xx (not abandoned), in order.
func (rc *Receiver) Accepted() []Delivery {
	var out []Delivery
	for _, d := range rc.Deliveries() {
		if d.Accepted() {
			out = append(out, d)
		}
	}
	return out
}

// BadSignatures returns the requests whose signature did not verify.
func (rc *Receiver) BadSignatures() []Delivery {
	var out []Delivery
	for _, d := range rc.Deliveries() {
		if d.SignatureErr != nil {
			out = append(out, d)
		}
	}
	return out
}

// Key decodes a Standard Webhooks secret: the base64 after "whsec_" (a
// secret without the prefix is taken as the base64 itself).
func Key(secret string) ([]byte, error) {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, secretPrefix))
	if err != nil {
		return nil, fmt.Errorf("webhooktest: secret: %w", err)
	}
	if len(key) == 0 {
		return nil, errors.New("webhooktest: secret is empty")
	}
	return key, nil
}

// Sign computes the specification's signature of a message: "v1," and
// the base64 of HMAC-SHA256, keyed by the secret's key, of
// "id.timestamp.body".
func Sign(secret, id string, timestamp int64, body []byte) (string, error) {
	key, err := Key(secret)
	if err != nil {
		return "", err
	}
	return "v1," + base64.StdEncoding.EncodeToString(mac(key, id, strconv.FormatInt(timestamp, 10), body)), nil
}

func mac(key []byte, id, timestamp string, body []byte) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(id))
	h.Write([]byte{'.'})
	h.Write([]byte(timestamp))
	h.Write([]byte{'.'})
	h.Write(body)
	return h.Sum(nil)
}

// Verify checks a request's Standard Webhooks headers against its body
// (spec "Verifying signatures"): webhook-id and webhook-timestamp (Unix
// seconds) present, and among the space-separated signatures of
// webhook-signature at least one "v1,<base64>" equal (in constant time)
// to the HMAC-SHA256 of "id.timestamp.body". Signatures of other versions
// are ignored. It does not judge the timestamp's age (see CheckAge).
func Verify(secret string, h http.Header, body []byte) error {
	key, err := Key(secret)
	if err != nil {
		return err
	}
	id, ts := h.Get(HeaderID), h.Get(HeaderTimestamp)
	if id == "" || ts == "" {
		return errors.New("webhooktest: missing webhook-id or webhook-timestamp")
	}
	if _, err := strconv.ParseInt(ts, 10, 64); err != nil {
		return fmt.Errorf("webhooktest: webhook-timestamp %q is not Unix seconds", ts)
	}
	want := mac(key, id, ts, body)
	for _, sig := range strings.Fields(h.Get(HeaderSignature)) {
		version, b64, ok := strings.Cut(sig, ",")
		if !ok || version != "v1" {
			continue
		}
		got, err := base64.StdEncoding.DecodeString(b64)
		if err == nil && hmac.Equal(got, want) {
			return nil
		}
	}
	return fmt.Errorf("webhooktest: no matching v1 signature in %q", h.Get(HeaderSignature))
}

// CheckAge reports an error when a delivery's timestamp is further than
// tolerance from now (the specification's replay protection; it suggests
// 5 minutes).
func CheckAge(d Delivery, now time.Time, tolerance time.Duration) error {
	ts, err := strconv.ParseInt(d.Timestamp, 10, 64)
	if err != nil {
		return fmt.Errorf("webhooktest: webhook-timestamp %q is not Unix seconds", d.Timestamp)
	}
	if skew := now.Sub(time.Unix(ts, 0)); skew > tolerance || skew < -tolerance {
		return fmt.Errorf("webhooktest: webhook-timestamp %s is %v from now", d.Timestamp, skew)
	}
	return nil
}

// maxProblems bounds the problems CheckOrder reports.
const maxProblems = 20

// CheckOrder checks the accepted deliveries (Receiver.Accepted, in order)
// of a subscription to every one of want: each delivery is of a wanted
// event (its webhook-id is the event's id and its payload the event's
// tracking, seq and type), every wanted event was accepted at least once,
// and per shipment (payload data.tracking) the first acceptances of its
// events come in increasing data.seq. A duplicate (at-least-once
// delivery) must carry the same webhook-id as the first, so that the
// receiver can drop it. It returns nil or the problems found (at most 20).
func CheckOrder(accepted []Delivery, want []Event) error {
	type key struct {
		tracking string
		seq      int64
	}
	byKey := make(map[key]Event, len(want))
	for _, e := range want {
		byKey[key{e.Tracking, e.Seq}] = e
	}
	var errs []error
	problem := func(format string, args ...any) {
		if len(errs) < maxProblems {
			errs = append(errs, fmt.Errorf(format, args...))
		}
	}
	seen := map[key]bool{}
	last := map[string]int64{}
	for _, d := range accepted {
		if d.PayloadErr != nil {
			problem("request %d (webhook-id %q): body is not a payload: %v", d.N, d.ID, d.PayloadErr)
			continue
		}
		p := d.Payload
		k := key{p.Data.Tracking, p.Data.Seq}
		e, ok := byKey[k]
		switch {
		case !ok:
			problem("request %d: %s seq %d (%s) is not a wanted event", d.N, k.tracking, k.seq, p.Type)
			continue
		case d.ID != e.ID || p.Data.ID != e.ID:
			problem("request %d: %s seq %d has webhook-id %q and data.id %q, want the event's id %q", d.N, k.tracking, k.seq, d.ID, p.Data.ID, e.ID)
		case p.Type != e.Type || p.Data.Type != e.Type:
			problem("request %d: %s seq %d is a %q (data %q), want %q", d.N, k.tracking, k.seq, p.Type, p.Data.Type, e.Type)
		}
		if seen[k] {
			continue // a duplicate: its id was checked above
		}
		seen[k] = true
		if prev, ok := last[k.tracking]; ok && k.seq <= prev {
			problem("request %d: %s seq %d first accepted after seq %d", d.N, k.tracking, k.seq, prev)
		}
		last[k.tracking] = k.seq
	}
	missing := 0
	for _, e := range want {
		if !seen[key{e.Tracking, e.Seq}] {
			if missing == 0 {
				problem("%s seq %d (%s) never accepted", e.Tracking, e.Seq, e.Type)
			}
			missing++
		}
	}
	if missing > 1 {
		problem("%d of %d events never accepted", missing, len(want))
	}
	return errors.Join(errs...)
}
