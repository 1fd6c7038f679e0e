package mail

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/mail"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lastmile/lastmile/internal/smtptest"
)

// config is a Sender configuration for the test server.
func config(srv *smtptest.Server) Config {
	return Config{
		Host: srv.Host, Port: srv.Port, Username: srv.User, Password: srv.Password,
		From: "notify@lastmile.test", FromName: "Expedição Rápida", RootCAs: srv.RootCAs, Timeout: 10 * time.Second,
	}
}

func newSender(t testing.TB, cfg Config) *Sender {
	t.Helper()
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// testMessage is a message to the address to with non-ASCII text in
// every part.
func testMessage(to string) Message {
	return Message{
		To:      to,
		Subject: "A sua encomenda LM0123456789 chega em breve (14:10–14:40) ✓",
		Text: "Olá, Ana!\n\nA sua encomenda LM0123456789 chega em breve: prevemos chegar entre as 14:10 e as 14:40.\n\n" +
			"Acompanhe a sua encomenda: https://track.example.com/track/AbCdEfGhIjKlMnOpQrStUv\n" +
			"A line that is much longer than seventy-six characters, so that quoted-printable has to break it somewhere.\n" +
			".A line that starts with a dot\n",
		HTML:            "<!DOCTYPE html>\n<html lang=\"pt\"><body><p>Olá, Ana!</p><p>Chega <b>entre as 14:10 e as 14:40</b>.</p></body></html>\n",
		MessageID:       "<ev_AbCdEfGhIjKlMnOpQrStUv.email@notify.lastmile.test>",
		ListUnsubscribe: "https://track.example.com/unsubscribe/AbCdEfGhIjKlMnOpQrStUv",
		OneClick:        true,
	}
}

// TestSMTP sends through a real SMTP server (internal/smtptest) on
// loopback: STARTTLS, AUTH, the stored message, errors, session reuse and
// reconnection after a restart.
func TestSMTP(t *testing.T) {
	srv := smtptest.Start(t)
	ctx := context.Background()
	s := newSender(t, config(srv))

	t.Run("message", func(t *testing.T) {
		m := testMessage("ana@example.com")
		if err := s.Send(ctx, m); err != nil {
			t.Fatal(err)
		}
		got := srv.Messages(t, "ana@example.com")
		if len(got) != 1 {
			t.Fatalf("%d messages stored, want 1", len(got))
		}
		h := got[0].Header
		dec := new(mime.WordDecoder)
		from, err := (&mail.AddressParser{WordDecoder: dec}).Parse(h.Get("From"))
		if err != nil || from.Name != "Expedição Rápida" || from.Address != "notify@lastmile.test" {
			t.Errorf("From %q: %v %v", h.Get("From"), from, err)
		}
		to, err := mail.ParseAddress(h.Get("To"))
		if err != nil || to.Address != "ana@example.com" {
			t.Errorf("To %q: %v", h.Get("To"), err)
		}
		subject, err := dec.DecodeHeader(h.Get("Subject"))
		if err != nil || subject != m.Subject {
			t.Errorf("Subject %q decodes to %q (%v), want %q", h.Get("Subject"), subject, err, m.Subject)
		}
		for _, tc := range []struct{ name, want string }{
			{"Message-ID", m.MessageID},
			{"List-Unsubscribe", "<" + m.ListUnsubscribe + ">"},
			{"List-Unsubscribe-Post", "List-Unsubscribe=One-Click"},
			{"Auto-Submitted", "auto-generated"},
			{"MIME-Version", "1.0"},
			{"Delivered-To", "ana@example.com"},
			{"Return-Path", "<notify@lastmile.test>"},
		} {
			if got := h.Get(tc.name); got != tc.want {
				t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
			}
		}
		if _, err := h.Date(); err != nil {
			t.Errorf("Date: %v", err)
		}
		if mt, _, _ := mime.ParseMediaType(h.Get("Content-Type")); mt != "multipart/alternative" {
			t.Errorf("Content-Type %q, want multipart/alternative", h.Get("Content-Type"))
		}
		if got[0].Text != m.Text {
			t.Errorf("text part:\n%q\nwant\n%q", got[0].Text, m.Text)
		}
		if got[0].HTML != m.HTML {
			t.Errorf("HTML part:\n%q\nwant\n%q", got[0].HTML, m.HTML)
		}
		if strings.Contains(string(got[0].Raw), "Bcc") {
			t.Error("message has a Bcc header")
		}
	})

	t.Run("redelivery keeps the Message-ID", func(t *testing.T) {
		m := testMessage("redelivered@example.com")
		m.MessageID = "ev_0042.email@notify.lastmile.test" // without brackets
		for range 2 {
			if err := s.Send(ctx, m); err != nil {
				t.Fatal(err)
			}
		}
		got := srv.Messages(t, "redelivered@example.com")
		if len(got) != 2 || got[0].Header.Get("Message-ID") != "<"+m.MessageID+">" || got[1].Header.Get("Message-ID") != "<"+m.MessageID+">" {
			t.Errorf("%d messages, Message-IDs %q", len(got), smtptest.Sessions(got))
		}
	})

	t.Run("text only and HTML only", func(t *testing.T) {
		for _, m := range []Message{
			{To: "textonly@example.com", Subject: "plain", Text: "only text\n"},
			{To: "htmlonly@example.com", Subject: "html", HTML: "<p>only html</p>\n"},
		} {
			if err := s.Send(ctx, m); err != nil {
				t.Fatal(err)
			}
			got := srv.Messages(t, m.To)
			if len(got) != 1 || got[0].Text != m.Text || got[0].HTML != m.HTML {
				t.Errorf("%s: %d messages, text %q html %q", m.To, len(got), got[0].Text, got[0].HTML)
			}
			if got[0].Header.Get("Message-ID") == "" || got[0].Header.Get("List-Unsubscribe") != "" {
				t.Errorf("%s: Message-ID %q, List-Unsubscribe %q", m.To, got[0].Header.Get("Message-ID"), got[0].Header.Get("List-Unsubscribe"))
			}
		}
	})

	t.Run("wrong password is permanent", func(t *testing.T) {
		cfg := config(srv)
		cfg.Password = "wrong password"
		bad := newSender(t, cfg)
		err := bad.Send(ctx, testMessage("wrongpass@example.com"))
		var e *Error
		if !errors.As(err, &e) || e.Stage != "auth" || e.Code != 535 || !Permanent(err) {
			t.Fatalf("error %v: want a permanent auth error with code 535", err)
		}
		if strings.Contains(err.Error(), "wrong password") || strings.Contains(err.Error(), "wrongpass@") {
			t.Errorf("error shows the password or the address: %v", err)
		}
		if n := len(srv.Messages(t, "wrongpass@example.com")); n != 0 {
			t.Errorf("%d messages arrived", n)
		}
	})

	t.Run("header injection is refused and nothing arrives", func(t *testing.T) {
		before := len(srv.Messages(t, ""))
		for _, tc := range []struct {
			name string
			edit func(*Message)
		}{
			{"subject CRLF", func(m *Message) { m.Subject = "Hello\r\nBcc: x@evil.example" }},
			{"subject LF", func(m *Message) { m.Subject = "Hello\nBcc: x@evil.example" }},
			{"to CRLF", func(m *Message) { m.To = "injected@example.com\r\nBcc: x@evil.example" }},
			{"unsubscribe CRLF", func(m *Message) { m.ListUnsubscribe += "\r\nBcc: x@evil.example" }},
			{"message id CRLF", func(m *Message) { m.MessageID = "a@b\r\nBcc: x@evil.example" }},
		} {
			m := testMessage("injected@example.com")
			tc.edit(&m)
			err := s.Send(ctx, m)
			if !errors.Is(err, ErrInvalid) || !Permanent(err) || !strings.Contains(err.Error(), "line break") {
				t.Errorf("%s: error %v, want a permanent ErrInvalid about a line break", tc.name, err)
			}
		}
		if after := len(srv.Messages(t, "")); after != before {
			t.Errorf("%d messages arrived", after-before)
		}
	})

	t.Run("refused recipients", func(t *testing.T) {
		for _, tc := range []struct {
			to        string
			code      int
			permanent bool
		}{
			{"nobody@reject.example", 550, true},
			{"busy@tempfail.example", 451, false},
		} {
			err := s.Send(ctx, testMessage(tc.to))
			var e *Error
			if !errors.As(err, &e) || e.Stage != "send" || e.Code != tc.code || Permanent(err) != tc.permanent {
				t.Errorf("%s: error %v (%+v): want code %d, permanent %v", tc.to, err, e, tc.code, tc.permanent)
			}
			if err != nil && strings.Contains(err.Error(), tc.to) {
				t.Errorf("error shows the address: %v", err)
			}
		}
		// The sender goes on working.
		if err := s.Send(ctx, testMessage("after-refusal@example.com")); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("concurrent sends share the pool", func(t *testing.T) {
		cfg := config(srv)
		cfg.PoolSize = 3
		p := newSender(t, cfg)
		const n = 60
		var wg sync.WaitGroup
		errs := make(chan error, n)
		for i := range n {
			wg.Go(func() {
				m := testMessage("pool@example.com")
				m.MessageID = fmt.Sprintf("pool-%d@notify.lastmile.test", i)
				errs <- p.Send(ctx, m)
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		got := srv.Messages(t, "pool@example.com")
		if len(got) != n {
			t.Fatalf("%d messages arrived, want %d", len(got), n)
		}
		if ss := smtptest.Sessions(got); len(ss) > cfg.PoolSize {
			t.Errorf("%d messages came over %d SMTP sessions, want at most %d", n, len(ss), cfg.PoolSize)
		}
	})

	t.Run("untrusted certificate", func(t *testing.T) {
		cfg := config(srv)
		cfg.RootCAs = nil // the system's, which do not know the test CA
		u := newSender(t, cfg)
		err := u.Send(ctx, testMessage("untrusted@example.com"))
		var e *Error
		if !errors.As(err, &e) || e.Stage != "connect" || Permanent(err) || !strings.Contains(err.Error(), "certificate") {
			t.Errorf("error %v: want a temporary connect error about the certificate", err)
		}
	})

	t.Run("cancelled context", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		err := s.Send(cctx, testMessage("cancelled@example.com"))
		if !errors.Is(err, context.Canceled) || Permanent(err) {
			t.Errorf("error %v: want a temporary context.Canceled", err)
		}
	})

	t.Run("reconnects after a server restart", func(t *testing.T) {
		var logs bytes.Buffer
		cfg := config(srv)
		cfg.Logger = slog.New(slog.NewTextHandler(&syncWriter{w: &logs}, &slog.HandlerOptions{Level: slog.LevelDebug}))
		r := newSender(t, cfg)
		if err := r.Send(ctx, testMessage("restart@example.com")); err != nil {
			t.Fatal(err)
		}
		// The pooled session dies with the server; the next send opens a
		// new one without an error.
		srv.Restart(t)
		if err := r.Send(ctx, testMessage("restart@example.com")); err != nil {
			t.Fatalf("send after a restart: %v", err)
		}
		// While the server is down sends fail, temporarily; they work
		// again once it is back.
		srv.Stop()
		err := r.Send(ctx, testMessage("restart@example.com"))
		if err == nil || Permanent(err) {
			t.Errorf("send while the server is down: %v, want a temporary error", err)
		}
		srv.Restart(t)
		if err := r.Send(ctx, testMessage("restart@example.com")); err != nil {
			t.Fatalf("send after the server came back: %v", err)
		}
		got := srv.Messages(t, "restart@example.com")
		if len(got) != 3 || len(smtptest.Sessions(got)) != 3 {
			t.Errorf("%d messages over %d sessions, want 3 over 3", len(got), len(smtptest.Sessions(got)))
		}
		if !strings.Contains(logs.String(), "reconnecting") || strings.Contains(logs.String(), "@") {
			t.Errorf("log does not show the reconnection, or shows an address:\n%s", logs.String())
		}
	})

	t.Run("closed sender", func(t *testing.T) {
		c := newSender(t, config(srv))
		if err := c.Send(ctx, testMessage("closed@example.com")); err != nil {
			t.Fatal(err)
		}
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
		if err := c.Send(ctx, testMessage("closed@example.com")); !errors.Is(err, ErrClosed) {
			t.Errorf("Send after Close: %v, want ErrClosed", err)
		}
	})
}

// TestSendRefusesBeforeConnecting checks that an invalid message fails on
// its own, not on the server (there is none at the address).
func TestSendRefusesBeforeConnecting(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	s := newSender(t, Config{Host: "127.0.0.1", Port: port, From: "notify@lastmile.test", Timeout: time.Second})
	ok := testMessage("ana@example.com")
	for _, tc := range []struct {
		name string
		edit func(*Message)
		want string
	}{
		{"subject CRLF", func(m *Message) { m.Subject = "Hi\r\nBcc: x@evil.example" }, "subject: holds a line break (CR or LF)"},
		{"subject CR", func(m *Message) { m.Subject = "Hi\rBcc: x@evil.example" }, "line break"},
		{"subject control", func(m *Message) { m.Subject = "Hi\x00there" }, "control character"},
		{"subject not UTF-8", func(m *Message) { m.Subject = "caf\xe9" }, "UTF-8"},
		{"to CRLF", func(m *Message) { m.To = "ana@example.com\r\nBcc: x@evil.example" }, "recipient address holds a line break"},
		{"to with name", func(m *Message) { m.To = "Ana <ana@example.com>" }, "not a plain e-mail address"},
		{"to two addresses", func(m *Message) { m.To = "ana@example.com, bob@example.com" }, "not a plain e-mail address"},
		{"to empty", func(m *Message) { m.To = "" }, "recipient address"},
		{"to not an address", func(m *Message) { m.To = "ana" }, "not a plain e-mail address"},
		{"no body", func(m *Message) { m.Text, m.HTML = "", "" }, "no text or HTML body"},
		{"body not UTF-8", func(m *Message) { m.Text = "caf\xe9" }, "UTF-8"},
		{"message id without domain", func(m *Message) { m.MessageID = "abc" }, "Message-ID"},
		{"message id with space", func(m *Message) { m.MessageID = "a b@c" }, "Message-ID"},
		{"unsubscribe not absolute", func(m *Message) { m.ListUnsubscribe = "/unsubscribe/x" }, "List-Unsubscribe"},
		{"unsubscribe with bracket", func(m *Message) { m.ListUnsubscribe = "https://x.example/>, <mailto:a@b" }, "List-Unsubscribe"},
		{"one click over http", func(m *Message) { m.ListUnsubscribe = "http://x.example/u" }, "https"},
		{"one click without URL", func(m *Message) { m.ListUnsubscribe = "" }, "needs the unsubscribe URL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := ok
			tc.edit(&m)
			err := s.Send(context.Background(), m)
			if !errors.Is(err, ErrInvalid) || !Permanent(err) {
				t.Fatalf("error %v, want a permanent ErrInvalid", err)
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "nothing was sent") {
				t.Errorf("error %q lacks %q", err, tc.want)
			}
		})
	}
	// The valid message does reach for the server, and fails temporarily.
	err = s.Send(context.Background(), ok)
	var e *Error
	if !errors.As(err, &e) || e.Stage != "connect" || Permanent(err) {
		t.Errorf("error %v, want a temporary connect error", err)
	}
}

func TestNew(t *testing.T) {
	base := Config{Host: "smtp.example.com", From: "notify@example.com", Username: "u", Password: "p"}
	for _, tc := range []struct {
		name string
		edit func(*Config)
		want string // "" = valid
		port int
	}{
		{"defaults", func(*Config) {}, "", 587},
		{"implicit TLS port", func(c *Config) { c.TLS = ImplicitTLS }, "", 465},
		{"no TLS port", func(c *Config) { c.TLS, c.Username = NoTLS, "" }, "", 25},
		{"explicit port", func(c *Config) { c.Port = 2525 }, "", 2525},
		{"no TLS with AUTH on loopback", func(c *Config) { c.Host, c.TLS = "127.0.0.1", NoTLS }, "", 25},
		{"no TLS with AUTH", func(c *Config) { c.TLS = NoTLS }, "AUTH needs TLS", 0},
		{"no host", func(c *Config) { c.Host = "" }, "host", 0},
		{"bad port", func(c *Config) { c.Port = 70000 }, "port", 0},
		{"bad TLS mode", func(c *Config) { c.TLS = 9 }, "TLS mode", 0},
		{"no from", func(c *Config) { c.From = "" }, "from address", 0},
		{"from with name", func(c *Config) { c.From = "Acme <notify@example.com>" }, "from address", 0},
		{"from name CRLF", func(c *Config) { c.FromName = "Acme\r\nBcc: x@evil.example" }, "from name: holds a line break", 0},
		{"password CRLF", func(c *Config) { c.Password = "p\r\nMAIL FROM" }, "line breaks", 0},
		{"negative pool", func(c *Config) { c.PoolSize = -1 }, "pool size", 0},
		{"huge pool", func(c *Config) { c.PoolSize = 1000 }, "pool size", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := base
			tc.edit(&cfg)
			s, err := New(cfg)
			if tc.want != "" {
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Errorf("New: %v, want an error with %q", err, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if s.cfg.Port != tc.port || s.cfg.PoolSize != DefaultPoolSize || s.cfg.Timeout != DefaultTimeout {
				t.Errorf("port %d pool %d timeout %v", s.cfg.Port, s.cfg.PoolSize, s.cfg.Timeout)
			}
		})
	}
}

func TestParseTLSMode(t *testing.T) {
	for _, m := range []TLSMode{StartTLSRequired, StartTLSOpportunistic, ImplicitTLS, NoTLS} {
		got, err := ParseTLSMode(m.String())
		if err != nil || got != m {
			t.Errorf("ParseTLSMode(%q) = %v, %v", m.String(), got, err)
		}
	}
	if m, err := ParseTLSMode(""); err != nil || m != StartTLSRequired {
		t.Errorf(`ParseTLSMode("") = %v, %v`, m, err)
	}
	if _, err := ParseTLSMode("ssl"); err == nil {
		t.Error(`ParseTLSMode("ssl"): no error`)
	}
}

func TestPermanent(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"invalid", fmt.Errorf("x: %w", ErrInvalid), true},
		{"550", &Error{Stage: "send", Code: 550, Err: errors.New("550 no")}, true},
		{"535", &Error{Stage: "auth", Code: 535, Err: errors.New("535 no")}, true},
		{"no auth", &Error{Stage: "auth", Err: errNoAuth}, true},
		{"451", &Error{Stage: "send", Code: 451, Err: errors.New("451 later")}, false},
		{"network", &Error{Stage: "connect", Err: errors.New("connection refused")}, false},
		{"context", &Error{Stage: "send", Err: context.DeadlineExceeded}, false},
		{"closed", ErrClosed, false},
		{"nil", nil, false},
	} {
		if got := Permanent(tc.err); got != tc.want {
			t.Errorf("%s: Permanent = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestErrorRedactsAddresses(t *testing.T) {
	e := &Error{Stage: "send", Code: 550, Err: errors.New("sending SMTP RCPT TO command: 550 5.1.1 <ana.sousa@example.com>: unknown, affected recipient(s): ana.sousa@example.com, affected message ID: <ev_1@notify.example>")}
	if got := e.Error(); strings.Contains(got, "ana.sousa") || strings.Contains(got, "ev_1@") || !strings.Contains(got, "550 5.1.1") {
		t.Errorf("Error() = %q", got)
	}
}

// BenchmarkSend sends e-mails of a realistic size through the loopback
// server with the default pool and reports e-mails per second.
func BenchmarkSend(b *testing.B) {
	srv := smtptest.Start(b)
	s := newSender(b, config(srv))
	m := testMessage("bench@example.com")
	m.Text = strings.Repeat(m.Text, 4)
	m.HTML = strings.Repeat(m.HTML, 8)
	// Open the pool's sessions before timing.
	var wg sync.WaitGroup
	for range DefaultPoolSize {
		wg.Go(func() {
			if err := s.Send(context.Background(), m); err != nil {
				b.Error(err)
			}
		})
	}
	wg.Wait()
	b.Run(fmt.Sprintf("pool%d", DefaultPoolSize), func(b *testing.B) {
		b.SetParallelism(4) // more senders than sessions, as an outbox's workers would be
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := s.Send(context.Background(), m); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "emails/s")
	})
}

// syncWriter serialises writes to w.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// TestContextEndsConnect checks that a server that never greets does not
// hold Send beyond its context.
func TestContextEndsConnect(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close() // silent until the test ends
		}
	}()
	s := newSender(t, Config{Host: "127.0.0.1", Port: ln.Addr().(*net.TCPAddr).Port, From: "notify@lastmile.test", TLS: NoTLS})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	err = s.Send(ctx, testMessage("ana@example.com"))
	if !errors.Is(err, context.DeadlineExceeded) || Permanent(err) {
		t.Errorf("error %v, want a temporary deadline error", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Send took %v, its context ended after 200ms", d)
	}
}
