package notify

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lastmile/lastmile/engine/notify/mail"
	"github.com/lastmile/lastmile/engine/notify/message"
	"github.com/lastmile/lastmile/engine/store"
)

func testRecipients(t *testing.T, night [2]int) *Recipients {
	t.Helper()
	tpl, err := message.Load("")
	if err != nil {
		t.Fatal(err)
	}
	m, err := mail.New(mail.Config{Host: "127.0.0.1", Port: 2525, From: "a@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	r, err := NewRecipients(RecipientsConfig{Templates: tpl, Mail: m, PublicURL: "https://t.example.com/", NightStart: night[0], NightEnd: night[1]})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestWants(t *testing.T) {
	r := testRecipients(t, [2]int{})
	for _, c := range []struct {
		channel, prefs, event string
		want                  bool
	}{
		{"email", "", "delivered", true},
		{"email", "", "stops_away", false},
		{"email", "", "rerouted", false},
		{"sms", "", "arriving_soon", true},
		{"sms", "", "delayed", false},
		{"email", `{"email":["stops_away"]}`, "stops_away", true},
		{"email", `{"email":["stops_away"]}`, "delivered", false},
		{"sms", `{"email":["stops_away"]}`, "delivered", true},
		{"sms", `{"sms":[]}`, "delivered", false},
		{"email", `{"email":["rerouted"]}`, "rerouted", false},
		{"email", `not json`, "delivered", true},
	} {
		if got := r.wants(c.channel, c.prefs, c.event); got != c.want {
			t.Errorf("wants(%s, %s, %s) = %v", c.channel, c.prefs, c.event, got)
		}
	}
}

func TestNight(t *testing.T) {
	lisbon, err := time.LoadLocation("Europe/Lisbon")
	if err != nil {
		t.Skip("no time zone data")
	}
	at := func(h int) time.Time { return time.Date(2026, 7, 1, h, 30, 0, 0, lisbon) }
	for _, c := range []struct {
		night [2]int
		hour  int
		want  bool
	}{
		{[2]int{}, 20, false}, {[2]int{}, 21, true}, {[2]int{}, 3, true}, {[2]int{}, 7, true}, {[2]int{}, 8, false},
		{[2]int{1, 5}, 0, false}, {[2]int{1, 5}, 1, true}, {[2]int{1, 5}, 5, false},
		{[2]int{6, 6}, 6, false}, {[2]int{6, 6}, 23, false},
	} {
		if got := testRecipients(t, c.night).night(at(c.hour), lisbon); got != c.want {
			t.Errorf("night %v at %d:30 = %v", c.night, c.hour, got)
		}
	}
}

func TestRecipientKey(t *testing.T) {
	for _, c := range []struct {
		e    store.Event
		want string
	}{
		{store.Event{Shipment: 7, Type: "delivered"}, "7:1:delivered"},
		{store.Event{Shipment: 7, Type: "out_for_delivery", Data: `{"attempt":2}`}, "7:2:out_for_delivery"},
		{store.Event{Shipment: 7, Type: "stops_away", Data: `{"stops":3}`}, "7:1:stops_away:3"},
		{store.Event{Shipment: 7, Type: "arriving_soon", Data: `{"eta":{"arrival":5}}`}, "7:1:arriving_soon"},
	} {
		if got := recipientKey(c.e); got != c.want {
			t.Errorf("recipientKey(%+v) = %q, want %q", c.e, got, c.want)
		}
	}
}

// TestStoredTemplates: a template stored through the service is what the
// next message renders with; a broken or oversized one is refused with a
// caller's error and changes nothing; deleting it brings the built-in back.
func TestStoredTemplates(t *testing.T) {
	st := openStore(t, filepath.Join(t.TempDir(), "x.db"), testRing(t))
	s, err := New(Config{Store: st, Recipients: testRecipients(t, [2]int{})})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	in := message.Input{Event: "delivered", Tracking: "T1", Language: "pt", TrackingURL: "https://t.example.com/track/x", Carrier: "Acme"}
	before, err := s.templates(ctx).SMS(in)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.PutTemplate(ctx, "pt", "delivered.sms.tmpl", []byte("Entregue: {{.Tracking}} {{.TrackingURL}}")); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.templates(ctx).SMS(in); got != "Entregue: T1 https://t.example.com/track/x" {
		t.Fatalf("stored template not used: %q", got)
	}
	for _, c := range []struct {
		lang, file, text, code string
	}{
		{"pt", "delivered.sms.tmpl", "{{.NoSuchField}}", "InvalidValue"},
		{"pt", "delivered.sms.tmpl", "{{if}}", "InvalidValue"},
		{"pt", "delivered.sms.tmpl", strings.Repeat("x", message.MaxOverride+1), "TooBig"},
		{"pt", "nothing.sms.tmpl", "x", "InvalidValue"},
		{"..", "delivered.sms.tmpl", "x", "InvalidValue"},
	} {
		_, err := s.PutTemplate(ctx, c.lang, c.file, []byte(c.text))
		var e *Error
		if !errors.As(err, &e) || e.Code != c.code {
			t.Errorf("%s/%s %.20q: %v, want %s", c.lang, c.file, c.text, err, c.code)
		}
	}
	if got, _ := s.templates(ctx).SMS(in); got != "Entregue: T1 https://t.example.com/track/x" {
		t.Fatalf("a refused template changed the one in use: %q", got)
	}
	if err := s.DeleteTemplate(ctx, "pt", "delivered.sms.tmpl"); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.templates(ctx).SMS(in); got != before {
		t.Fatalf("after delete: %q, want the built-in %q", got, before)
	}
	var e *Error
	if err := s.DeleteTemplate(ctx, "pt", "delivered.sms.tmpl"); !errors.As(err, &e) || e.Code != "NotFound" {
		t.Fatalf("second delete: %v", err)
	}
}
