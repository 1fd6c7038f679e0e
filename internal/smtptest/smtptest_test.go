package smtptest

import (
	"crypto/tls"
	"net/smtp"
	"strings"
	"testing"
)

// send delivers one message to to over STARTTLS with AUTH PLAIN.
func send(t *testing.T, s *Server, to, msg string) error {
	t.Helper()
	c, err := smtp.Dial(s.Addr())
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.StartTLS(&tls.Config{ServerName: s.Host, RootCAs: s.RootCAs}); err != nil {
		return err
	}
	if err := c.Auth(smtp.PlainAuth("", s.User, s.Password, s.Host)); err != nil {
		return err
	}
	if err := c.Mail("sender@lastmile.test"); err != nil {
		return err
	}
	if err := c.Rcpt(to); err != nil {
		return err
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write([]byte(strings.ReplaceAll(msg, "\n", "\r\n"))); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	return c.Quit()
}

// TestServer sends through the server with net/smtp and reads the
// messages back: envelope recipient, decoded subject and parts, sessions;
// refused recipients; a restart on the same port keeps the Maildir.
func TestServer(t *testing.T) {
	s := Start(t)
	multipart := "From: a@lastmile.test\nTo: ana@example.com\nSubject: =?UTF-8?q?Ol=C3=A1?=\nMIME-Version: 1.0\n" +
		"Content-Type: multipart/alternative; boundary=b1\n\n--b1\nContent-Type: text/plain; charset=UTF-8\n" +
		"Content-Transfer-Encoding: quoted-printable\n\nOl=C3=A1, Ana!\n--b1\nContent-Type: text/html; charset=UTF-8\n" +
		"Content-Transfer-Encoding: base64\n\nPHA+T2zDoTwvcD4K\n--b1--\n"
	plain := "From: a@lastmile.test\nTo: bob@example.com\nSubject: plain\nContent-Type: text/plain\n\nhello\n"
	for _, tc := range []struct {
		to, msg string
		fails   string // "" = accepted
	}{
		{"ana@example.com", multipart, ""},
		{"bob@example.com", plain, ""},
		{"nobody@reject.example", plain, "550"},
		{"busy@tempfail.example", plain, "451"},
	} {
		err := send(t, s, tc.to, tc.msg)
		if tc.fails == "" && err != nil || tc.fails != "" && (err == nil || !strings.Contains(err.Error(), tc.fails)) {
			t.Errorf("%s: %v, want failure %q", tc.to, err, tc.fails)
		}
	}
	got := s.Messages(t, "ana@example.com")
	if len(got) != 1 {
		t.Fatalf("%d messages to ana, want 1", len(got))
	}
	m := got[0]
	if m.Subject != "Olá" || m.Text != "Olá, Ana!" || m.HTML != "<p>Olá</p>\n" || m.Get("Return-Path") != "<sender@lastmile.test>" {
		t.Errorf("decoded: subject %q text %q html %q return path %q", m.Subject, m.Text, m.HTML, m.Get("Return-Path"))
	}
	if all := s.Messages(t, ""); len(all) != 2 || all[1].Text != "hello\n" || len(Sessions(all)) != 2 {
		t.Errorf("%d messages over %d sessions", len(all), len(Sessions(all)))
	}
	port := s.Port
	s.Restart(t)
	if s.Port != port {
		t.Errorf("restarted on port %d, was %d", s.Port, port)
	}
	if err := send(t, s, "carla@example.com", plain); err != nil {
		t.Fatal(err)
	}
	if n := len(s.Messages(t, "")); n != 3 {
		t.Errorf("%d messages after the restart, want 3", n)
	}
	s.Stop()
	if err := send(t, s, "carla@example.com", plain); err == nil {
		t.Error("the stopped server accepted a message")
	}
	s.Stop() // again: nothing
}

// TestParseRejectsUnknownParts: a part other than text/plain or text/html
// is an error.
func TestParseRejectsUnknownParts(t *testing.T) {
	raw := "Subject: x\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: application/pdf\r\n\r\n%PDF\r\n--b--\r\n"
	if _, err := Parse([]byte(raw)); err == nil || !strings.Contains(err.Error(), "application/pdf") {
		t.Errorf("Parse: %v", err)
	}
}
