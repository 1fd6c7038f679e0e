package sms

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

const (
	testSID   = "AC0123456789abcdef0123456789abcdef"
	testToken = "s3cret-token"
	testFrom  = "+15005550006"
	testTo    = "+351912345678"
)

// gateway is a loopback receiver with Twilio's Messages API shape. It
// checks every request as Twilio would and answers with the status its
// answer function picks (201 and a sid by default).
type gateway struct {
	t      *testing.T
	srv    *httptest.Server
	calls  atomic.Int64
	body   atomic.Value                     // the last request's Body field
	answer func(w http.ResponseWriter) bool // true when it answered
}

func newGateway(t *testing.T) *gateway {
	g := &gateway{t: t}
	g.srv = httptest.NewServer(http.HandlerFunc(g.serve))
	t.Cleanup(g.srv.Close)
	return g
}

func (g *gateway) serve(w http.ResponseWriter, r *http.Request) {
	n := g.calls.Add(1)
	fail := func(status int, code int, msg string) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		fmt.Fprintf(w, `{"code": %d, "message": %q, "status": %d}`, code, msg, status)
	}
	if r.Method != http.MethodPost {
		g.t.Errorf("method %s, want POST", r.Method)
		fail(405, 20004, "Method not allowed")
		return
	}
	if want := "/2010-04-01/Accounts/" + testSID + "/Messages.json"; r.URL.Path != want {
		g.t.Errorf("path %s, want %s", r.URL.Path, want)
		fail(404, 20404, "Not found")
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/x-www-form-urlencoded" {
		g.t.Errorf("content type %q", ct)
	}
	user, pass, ok := r.BasicAuth()
	if !ok || user != testSID || pass != testToken {
		fail(401, 20003, "Authenticate")
		return
	}
	if err := r.ParseForm(); err != nil {
		g.t.Errorf("form: %v", err)
	}
	if r.PostForm.Get("To") != testTo || r.PostForm.Get("From") != testFrom || r.PostForm.Get("Body") == "" {
		g.t.Errorf("form %v", r.PostForm)
		fail(400, 21211, "The 'To' number "+r.PostForm.Get("To")+" is not a valid phone number.")
		return
	}
	if len(r.PostForm) != 3 {
		g.t.Errorf("form has %d fields, want To, From and Body: %v", len(r.PostForm), r.PostForm)
	}
	g.body.Store(r.PostForm.Get("Body"))
	if g.answer != nil && g.answer(w) {
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	fmt.Fprintf(w, `{"sid": "SM%032d", "status": "queued", "body": %q}`, n, r.PostForm.Get("Body"))
}

func newSender(t *testing.T, base string, edit func(*Config)) *Sender {
	t.Helper()
	cfg := Config{BaseURL: base, AccountSID: testSID, AuthToken: testToken, From: testFrom, Timeout: 5 * time.Second}
	if edit != nil {
		edit(&cfg)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSend(t *testing.T) {
	g := newGateway(t)
	s := newSender(t, g.srv.URL, nil)
	body := "Acme: a sua encomenda LM0123456789 saiu para entrega — ção & +=?"
	id, err := s.Send(context.Background(), testTo, body)
	if err != nil {
		t.Fatal(err)
	}
	if id != fmt.Sprintf("SM%032d", 1) {
		t.Errorf("id %q", id)
	}
	// The body arrives intact (form encoding of non-ASCII, & + = ?).
	if got, _ := g.body.Load().(string); got != body {
		t.Errorf("body %q, want %q", got, body)
	}
}

func TestSendErrors(t *testing.T) {
	date := time.Now().Add(90 * time.Second).UTC().Format(http.TimeFormat)
	for _, tc := range []struct {
		name       string
		answer     func(w http.ResponseWriter) bool
		token      string
		status     int
		code       int
		permanent  bool
		retryAfter [2]time.Duration // accepted range
	}{
		{
			name: "429 with Retry-After seconds",
			answer: func(w http.ResponseWriter) bool {
				w.Header().Set("Retry-After", "7")
				w.WriteHeader(429)
				fmt.Fprint(w, `{"code": 20429, "message": "Too Many Requests"}`)
				return true
			},
			status: 429, code: 20429, retryAfter: [2]time.Duration{7 * time.Second, 7 * time.Second},
		},
		{
			name: "503 with Retry-After date",
			answer: func(w http.ResponseWriter) bool {
				w.Header().Set("Retry-After", date)
				w.WriteHeader(503)
				return true
			},
			status: 503, retryAfter: [2]time.Duration{80 * time.Second, 91 * time.Second},
		},
		{
			name:   "500",
			answer: func(w http.ResponseWriter) bool { w.WriteHeader(500); fmt.Fprint(w, "oops"); return true },
			status: 500,
		},
		{
			name:   "408",
			answer: func(w http.ResponseWriter) bool { w.WriteHeader(408); return true },
			status: 408,
		},
		{
			name: "400 invalid number",
			answer: func(w http.ResponseWriter) bool {
				w.WriteHeader(400)
				fmt.Fprint(w, `{"code": 21211, "message": "The 'To' number +351912345678 is not a valid phone number.", "status": 400}`)
				return true
			},
			status: 400, code: 21211, permanent: true,
		},
		{name: "bad credentials", token: "wrong", status: 401, code: 20003, permanent: true},
		{
			name: "redirect is not followed",
			answer: func(w http.ResponseWriter) bool {
				w.Header().Set("Location", "http://127.0.0.1:1/")
				w.WriteHeader(307)
				return true
			},
			status: 307,
		},
		{
			name: "201 without sid",
			answer: func(w http.ResponseWriter) bool {
				w.WriteHeader(201)
				fmt.Fprint(w, `{"status": "queued"}`)
				return true
			},
			status: 201, permanent: true,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := newGateway(t)
			g.answer = tc.answer
			s := newSender(t, g.srv.URL, func(c *Config) {
				if tc.token != "" {
					c.AuthToken = tc.token
				}
			})
			id, err := s.Send(context.Background(), testTo, "hello")
			if err == nil {
				t.Fatalf("no error, id %q", id)
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %T %v is not an *Error", err, err)
			}
			if e.Status != tc.status || e.Code != tc.code {
				t.Errorf("status %d code %d, want %d %d", e.Status, e.Code, tc.status, tc.code)
			}
			if Permanent(err) != tc.permanent {
				t.Errorf("Permanent = %v, want %v", !tc.permanent, tc.permanent)
			}
			if e.RetryAfter < tc.retryAfter[0] || e.RetryAfter > tc.retryAfter[1] {
				t.Errorf("RetryAfter %v, want %v..%v", e.RetryAfter, tc.retryAfter[0], tc.retryAfter[1])
			}
			if strings.Contains(err.Error(), testTo) || strings.Contains(err.Error(), testToken) {
				t.Errorf("error shows personal data or the token: %v", err)
			}
			if g.calls.Load() != 1 {
				t.Errorf("%d requests, want 1 (no retries inside Send)", g.calls.Load())
			}
		})
	}
}

func TestSendRefusesBeforeSending(t *testing.T) {
	g := newGateway(t)
	s := newSender(t, g.srv.URL, nil)
	for _, tc := range []struct{ name, to, body string }{
		{"no plus", "351912345678", "hi"},
		{"spaces", "+351 912 345 678", "hi"},
		{"letters", "+35191234567x", "hi"},
		{"leading zero", "+0351912345", "hi"},
		{"too short", "+12345", "hi"},
		{"too long", "+1234567890123456", "hi"},
		{"header injection", "+351912345678\r\nX: y", "hi"},
		{"empty body", testTo, ""},
		{"long body", testTo, strings.Repeat("a", MaxBody+1)},
		{"bad UTF-8", testTo, "caf\xe9"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.Send(context.Background(), tc.to, tc.body)
			if !errors.Is(err, ErrInvalid) || !Permanent(err) {
				t.Errorf("error %v, want a permanent ErrInvalid", err)
			}
		})
	}
	if n := g.calls.Load(); n != 0 {
		t.Errorf("%d requests reached the gateway", n)
	}
}

func TestSendNetworkErrorsAreTemporary(t *testing.T) {
	g := newGateway(t)
	url := g.srv.URL
	g.srv.Close()
	s := newSender(t, url, nil)
	_, err := s.Send(context.Background(), testTo, "hi")
	var e *Error
	if !errors.As(err, &e) || e.Status != 0 || Permanent(err) {
		t.Errorf("error %v: want a temporary *Error without status", err)
	}

	// A slow gateway: the context ends the request.
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Reading the whole body lets the server notice the client going.
		_, _ = io.Copy(io.Discard, r.Body)
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	}))
	defer slow.Close()
	s = newSender(t, slow.URL, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = s.Send(ctx, testTo, "hi")
	if err == nil || Permanent(err) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error %v: want a temporary deadline error", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Send took %v after its context ended", d)
	}
}

func TestNew(t *testing.T) {
	ok := Config{AccountSID: testSID, AuthToken: testToken, From: testFrom}
	for _, tc := range []struct {
		name string
		edit func(*Config)
		want string // "" = valid
	}{
		{"defaults", func(*Config) {}, ""},
		{"alphanumeric sender", func(c *Config) { c.From = "Acme Parcel" }, ""},
		{"loopback http", func(c *Config) { c.BaseURL = "http://127.0.0.1:8080/prefix/" }, ""},
		{"localhost http", func(c *Config) { c.BaseURL = "http://localhost:8080" }, ""},
		{"remote http", func(c *Config) { c.BaseURL = "http://sms.example.com" }, "plain http"},
		{"not a URL", func(c *Config) { c.BaseURL = "sms.example.com" }, "base URL"},
		{"sid with slash", func(c *Config) { c.AccountSID = "AC/../x" }, "account SID"},
		{"no sid", func(c *Config) { c.AccountSID = "" }, "account SID"},
		{"no token", func(c *Config) { c.AuthToken = "" }, "auth token"},
		{"no sender", func(c *Config) { c.From = "" }, "sender"},
		{"long sender id", func(c *Config) { c.From = "Acme Parcels Ltd" }, "sender"},
		{"negative timeout", func(c *Config) { c.Timeout = -time.Second }, "timeout"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := ok
			tc.edit(&cfg)
			_, err := New(cfg)
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Errorf("New: %v, want %q", err, tc.want)
			}
		})
	}
}

func TestNumbers(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		ok       bool
	}{
		{"+351912345678", "+351912345678", true},
		{"+351 912 345 678", "+351912345678", true},
		{" +1 (415) 555-0100 ", "+14155550100", true},
		{"+44.20.7946.0958", "+442079460958", true},
		{"912345678", "912345678", false},
		{"+351 91x", "+35191x", false},
	} {
		got, ok := NormalizeNumber(tc.in)
		if got != tc.want || ok != tc.ok {
			t.Errorf("NormalizeNumber(%q) = %q, %v; want %q, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 3, 4, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		v    string
		want time.Duration
	}{
		{"", 0},
		{"0", 0},
		{"-5", 0},
		{"120", 2 * time.Minute},
		{"99999999", 24 * time.Hour},
		{"Wed, 04 Mar 2026 12:01:30 GMT", 90 * time.Second},
		{"Wed, 04 Mar 2026 11:00:00 GMT", 0},
		{"soon", 0},
	} {
		if got := retryAfter(tc.v, now); got != tc.want {
			t.Errorf("retryAfter(%q) = %v, want %v", tc.v, got, tc.want)
		}
	}
}
