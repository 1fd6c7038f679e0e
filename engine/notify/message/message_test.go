package message

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"
)

const (
	testURL   = "https://track.example.com/track/AbCdEfGhIjKlMnOpQrStUv" // 22-character token
	testUnsub = "https://track.example.com/unsubscribe/AbCdEfGhIjKlMnOpQrStUv"
	// t0 is Wednesday 2026-03-04 08:00 UTC (08:00 in Lisbon, WET).
	t0 = 1772611200
)

func mustLoad(t testing.TB, dir string) *Templates {
	t.Helper()
	tp, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	return tp
}

func mustZone(t testing.TB, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Skipf("time zone %s: %v", name, err)
	}
	return loc
}

func input(event, lang string) Input {
	return Input{
		Event: event, Time: t0, Tracking: "LM0123456789", Name: "Ana Sousa", Language: lang,
		TrackingURL: testURL, UnsubscribeURL: testUnsub, Carrier: "Acme Parcels",
	}
}

func TestDefaultsRenderEveryEventAndLanguage(t *testing.T) {
	tp := mustLoad(t, "")
	for _, lang := range langs {
		for _, ev := range events {
			for i, sm := range samples(ev, lang) {
				in := sm.in
				e, err := tp.Email(in)
				if err != nil {
					t.Fatalf("%s/%s sample %d: %v", lang, ev, i, err)
				}
				for part, s := range map[string]string{"subject": e.Subject, "text": e.Text, "html": e.HTML} {
					if !strings.Contains(s, in.Tracking) {
						t.Errorf("%s/%s sample %d: %s does not show the tracking number:\n%s", lang, ev, i, part, s)
					}
					if strings.Contains(s, "<no value>") || strings.Contains(s, "{{") {
						t.Errorf("%s/%s sample %d: %s has template residue:\n%s", lang, ev, i, part, s)
					}
				}
				if !strings.Contains(e.Text, in.TrackingURL) || !strings.Contains(e.HTML, `href="`+in.TrackingURL+`"`) {
					t.Errorf("%s/%s sample %d: a body lacks the tracking link", lang, ev, i)
				}
				if in.UnsubscribeURL != "" && (!strings.Contains(e.Text, in.UnsubscribeURL) || !strings.Contains(e.HTML, in.UnsubscribeURL)) {
					t.Errorf("%s/%s sample %d: a body lacks the unsubscribe link", lang, ev, i)
				}
				if in.UnsubscribeURL == "" && strings.Contains(e.HTML, "unsubscribe") {
					t.Errorf("%s/%s sample %d: unsubscribe link without an URL", lang, ev, i)
				}
				if !strings.Contains(e.HTML, `<html lang="`+lang+`">`) {
					t.Errorf("%s/%s: HTML is not marked as %s", lang, ev, lang)
				}
			}
		}
	}
}

// TestHTMLHasNoExternalResources checks that the default HTML loads
// nothing (no images, fonts, style sheets or scripts) and links only to
// the tracking and unsubscribe pages.
func TestHTMLHasNoExternalResources(t *testing.T) {
	tp := mustLoad(t, "")
	href := regexp.MustCompile(`href="([^"]*)"`)
	for _, lang := range langs {
		for _, ev := range events {
			e, err := tp.Email(samples(ev, lang)[0].in)
			if err != nil {
				t.Fatal(err)
			}
			low := strings.ToLower(e.HTML)
			for _, bad := range []string{"<img", "<link", "<script", "<style", "<iframe", "<object", "src=", "url(", "@import", "@font-face"} {
				if strings.Contains(low, bad) {
					t.Errorf("%s/%s: HTML holds %q", lang, ev, bad)
				}
			}
			for _, m := range href.FindAllStringSubmatch(e.HTML, -1) {
				if m[1] != testURL && m[1] != "https://track.example.com/unsubscribe/AbCdEfGhIjKlMnOpQrStUv" {
					t.Errorf("%s/%s: link to %q", lang, ev, m[1])
				}
			}
		}
	}
}

// TestSMSFitsOneSegment renders every default SMS with long values: a
// 16-character carrier name, a 12-character tracking number, a tracking
// URL with a 22-character token, dates shown, every stop count and
// failure reason.
func TestSMSFitsOneSegment(t *testing.T) {
	tp := mustLoad(t, "")
	loc := mustZone(t, "Europe/Lisbon")
	for _, lang := range langs {
		for _, ev := range events {
			for _, stops := range []int{0, 1, 3, 5, 12} {
				for _, reason := range append([]string{""}, "not_home", "refused", "address_not_found", "access", "damaged", "other") {
					for _, next := range []int64{0, 26 * 3600} {
						in := input(ev, lang)
						in.Carrier, in.Location, in.Stops, in.Reason = "Acme Express Ltd", loc, stops, reason
						in.ETA = &ETA{Arrival: t0 + 3600 + next, P10: t0 + 3000 + next, P90: t0 + 4500 + next}
						in.TimeWindow = [2]int64{t0 + next, t0 + 7200 + next}
						body, err := tp.SMS(in)
						if err != nil {
							t.Fatal(err)
						}
						if enc, n := Segments(body); enc != EncodingGSM7 || n != 1 {
							t.Errorf("%s/%s stops %d %q next day %v: %s, %d segments (%d chars): %s",
								lang, ev, stops, reason, next > 0, enc, n, utf8.RuneCountInString(body), body)
						}
						if !strings.Contains(body, in.Tracking) || !strings.Contains(body, testURL) || !strings.HasPrefix(body, in.Carrier+":") {
							t.Errorf("%s/%s: SMS lacks the carrier, tracking number or URL: %s", lang, ev, body)
						}
					}
				}
			}
		}
	}
}

func TestSMSTransliteratesOnlyWhenNeeded(t *testing.T) {
	tp := mustLoad(t, "")
	in := input("out_for_delivery", "pt")
	in.ETA = &ETA{Arrival: t0 + 3600}
	body, err := tp.SMS(in)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(body, "previsao") {
		t.Errorf("Portuguese SMS over 70 characters is not spelled in GSM-7: %s", body)
	}
	// A short body with a character outside GSM-7 is one UCS-2 segment:
	// it keeps its spelling.
	in = input("delivered", "pt")
	in.Carrier, in.TrackingURL = "A", "https://t.example/x"
	dir := t.TempDir()
	writeFile(t, dir, "pt/delivered.sms.tmpl", "{{.Carrier}}: encomenda {{.Tracking}} entregue, obrigação cumprida.")
	body, err = mustLoad(t, dir).SMS(in)
	if err != nil {
		t.Fatal(err)
	}
	if want := "A: encomenda LM0123456789 entregue, obrigação cumprida."; body != want {
		t.Errorf("SMS = %q, want %q (one UCS-2 segment, no need to transliterate)", body, want)
	}
}

func TestWindow(t *testing.T) {
	lisbon := mustZone(t, "Europe/Lisbon")
	ny := mustZone(t, "America/New_York")
	kathmandu := mustZone(t, "Asia/Kathmandu")
	at := func(loc *time.Location, day, h, m, s int) int64 {
		return time.Date(2026, 3, day, h, m, s, 0, loc).Unix()
	}
	for _, tc := range []struct {
		name     string
		loc      *time.Location
		lang     string
		time     int64
		eta      ETA
		from, to string
		on       string // "" when the same day
	}{
		{"rounded outward", lisbon, "en", at(lisbon, 4, 9, 0, 0), ETA{at(lisbon, 4, 14, 25, 0), at(lisbon, 4, 14, 12, 30), at(lisbon, 4, 14, 37, 0)}, "14:10", "14:40", ""},
		{"on boundaries", lisbon, "en", at(lisbon, 4, 9, 0, 0), ETA{0, at(lisbon, 4, 14, 10, 0), at(lisbon, 4, 14, 40, 0)}, "14:10", "14:40", ""},
		{"arrival only", lisbon, "en", at(lisbon, 4, 9, 0, 0), ETA{Arrival: at(lisbon, 4, 14, 22, 0)}, "14:20", "14:25", ""},
		{"arrival on the grid", lisbon, "en", at(lisbon, 4, 9, 0, 0), ETA{Arrival: at(lisbon, 4, 14, 20, 0)}, "14:20", "14:25", ""},
		{"swapped p10 p90", lisbon, "en", at(lisbon, 4, 9, 0, 0), ETA{0, at(lisbon, 4, 14, 37, 0), at(lisbon, 4, 14, 12, 0)}, "14:10", "14:40", ""},
		{"recipient time zone", ny, "en", at(ny, 4, 9, 0, 0), ETA{0, at(ny, 4, 17, 1, 0), at(ny, 4, 17, 59, 0)}, "17:00", "18:00", ""},
		{"quarter-hour zone", kathmandu, "en", at(kathmandu, 4, 9, 0, 0), ETA{0, at(kathmandu, 4, 10, 47, 0), at(kathmandu, 4, 11, 3, 0)}, "10:45", "11:05", ""},
		{"next day en", lisbon, "en", at(lisbon, 4, 22, 0, 0), ETA{0, at(lisbon, 5, 9, 3, 0), at(lisbon, 5, 9, 33, 0)}, "09:00", "09:35", "on Thursday 5 March"},
		{"next day pt weekday", lisbon, "pt", at(lisbon, 4, 22, 0, 0), ETA{0, at(lisbon, 5, 9, 0, 0), at(lisbon, 5, 9, 30, 0)}, "09:00", "09:30", "na quinta-feira, 5 de março"},
		{"pt saturday", lisbon, "pt", at(lisbon, 6, 22, 0, 0), ETA{0, at(lisbon, 7, 9, 0, 0), at(lisbon, 7, 9, 30, 0)}, "09:00", "09:30", "no sábado, 7 de março"},
		{"es", lisbon, "es", at(lisbon, 4, 22, 0, 0), ETA{0, at(lisbon, 5, 9, 0, 0), at(lisbon, 5, 9, 30, 0)}, "09:00", "09:30", "el jueves 5 de marzo"},
		{"fr first of month", lisbon, "fr", time.Date(2026, 2, 28, 20, 0, 0, 0, lisbon).Unix(), ETA{0, at(lisbon, 1, 9, 0, 0), at(lisbon, 1, 9, 30, 0)}, "09:00", "09:30", "le dimanche 1er mars"},
		{"same UTC day, other local day", ny, "en", at(ny, 4, 22, 0, 0), ETA{0, at(ny, 5, 0, 10, 0), at(ny, 5, 0, 40, 0)}, "00:10", "00:40", "on Thursday 5 March"},
		{"unknown event time shows the date", lisbon, "en", 0, ETA{0, at(lisbon, 4, 9, 0, 0), at(lisbon, 4, 9, 30, 0)}, "09:00", "09:30", "on Wednesday 4 March"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := input("arriving_soon", tc.lang)
			in.Location, in.Time, in.ETA = tc.loc, tc.time, &tc.eta
			d := newData(in, resolveLang(tc.lang))
			w := d.ETA
			if w == nil {
				t.Fatal("no window")
			}
			if w.From != tc.from || w.To != tc.to {
				t.Errorf("window %s–%s, want %s–%s", w.From, w.To, tc.from, tc.to)
			}
			if got := map[bool]string{true: "", false: w.On}[w.SameDay]; got != tc.on {
				t.Errorf("date %q, want %q", got, tc.on)
			}
		})
	}
}

func TestEmailShowsWindowAndDate(t *testing.T) {
	tp := mustLoad(t, "")
	loc := mustZone(t, "Europe/Lisbon")
	in := input("out_for_delivery", "en")
	in.Location = loc
	in.ETA = &ETA{P10: time.Date(2026, 3, 4, 14, 12, 0, 0, loc).Unix(), P90: time.Date(2026, 3, 4, 14, 37, 0, 0, loc).Unix()}
	e, err := tp.Email(in)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(e.Text, "between 14:10 and 14:40.") || strings.Contains(e.Text, "March") {
		t.Errorf("same-day text:\n%s", e.Text)
	}
	in.ETA = &ETA{P10: time.Date(2026, 3, 5, 9, 0, 0, 0, loc).Unix(), P90: time.Date(2026, 3, 5, 9, 30, 0, 0, loc).Unix()}
	e, err = tp.Email(in)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(e.Text, "on Thursday 5 March between 09:00 and 09:30.") {
		t.Errorf("next-day text:\n%s", e.Text)
	}
	in.ETA = nil
	e, err = tp.Email(in)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(e.Text, "between") {
		t.Errorf("text shows a window without an ETA:\n%s", e.Text)
	}
}

func TestLanguageFallback(t *testing.T) {
	tp := mustLoad(t, "")
	for _, tc := range []struct{ tag, want string }{
		{"", "Your parcel"},
		{"en", "Your parcel"},
		{"en-GB", "Your parcel"},
		{"pt", "A sua encomenda"},
		{"pt-BR", "A sua encomenda"},
		{"PT_br", "A sua encomenda"},
		{"es-419", "Su paquete"},
		{"fr-CA", "Votre colis"},
		{"de", "Your parcel"},
		{"zz-Latn-XX", "Your parcel"},
	} {
		e, err := tp.Email(input("delivered", tc.tag))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(e.Subject, tc.want) {
			t.Errorf("language %q: subject %q, want it to start with %q", tc.tag, e.Subject, tc.want)
		}
	}
}

func TestFailureReasons(t *testing.T) {
	tp := mustLoad(t, "")
	for _, tc := range []struct{ lang, reason, want string }{
		{"en", "not_home", "could not: nobody was at home."},
		{"en", "refused", "the delivery was refused"},
		{"en", "", "there was an unexpected problem"},
		{"en", "something_new", "there was an unexpected problem"},
		{"pt", "address_not_found", "o endereço não foi encontrado"},
		{"es", "damaged", "el paquete estaba dañado"},
		{"fr", "not_home", "le destinataire était absent"},
		{"fr", "access", "l’accès à l’adresse était impossible"},
	} {
		in := input("failed", tc.lang)
		in.Reason = tc.reason
		e, err := tp.Email(in)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(e.Text, tc.want) {
			t.Errorf("%s %q: text lacks %q:\n%s", tc.lang, tc.reason, tc.want, e.Text)
		}
	}
}

func TestStops(t *testing.T) {
	tp := mustLoad(t, "")
	for _, tc := range []struct {
		stops     int
		text, sms string
	}{
		{0, "yours is the next delivery", "is the next delivery"},
		{1, "the driver has 1 delivery to make before yours", "is 1 stop away"},
		{3, "the driver has 3 deliveries to make before yours", "is 3 stops away"},
	} {
		in := input("stops_away", "en")
		in.Stops = tc.stops
		e, err := tp.Email(in)
		if err != nil {
			t.Fatal(err)
		}
		sms, err := tp.SMS(in)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(e.Text, tc.text) || !strings.Contains(sms, tc.sms) {
			t.Errorf("stops %d:\n%s\n%s", tc.stops, e.Text, sms)
		}
	}
}

// TestUserDataIsInert checks that names and other values cannot add
// markup to the HTML or lines to the subject.
func TestUserDataIsInert(t *testing.T) {
	dir := t.TempDir()
	// An override that puts the name and the carrier in the subject.
	writeFile(t, dir, "en/delivered.subject.tmpl", "{{.FirstName}} from {{.Carrier}}: {{.Tracking}}\r\nX-Extra: 1\n")
	tp := mustLoad(t, dir)
	in := input("delivered", "en")
	in.Name = `<img src="https://evil.example/x.png" onerror="alert(1)">Ana`
	in.Carrier = "Evil\r\nBcc: victim@example.com\u2028\u202eCorp\x00"
	in.Tracking = "LM1\nBcc: x@example.com"
	e, err := tp.Email(in)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(e.HTML, "<img") || !strings.Contains(e.HTML, "&lt;img") {
		t.Errorf("the name is markup in the HTML:\n%s", e.HTML)
	}
	for _, r := range e.Subject {
		if unicode.IsControl(r) || r == '\u2028' || r == '\u202e' {
			t.Errorf("subject %q holds control character %U", e.Subject, r)
		}
	}
	if want := `<img from Evil Bcc: victim@example.com Corp : LM1 Bcc: x@example.com X-Extra: 1`; e.Subject != want {
		t.Errorf("subject %q, want %q", e.Subject, want)
	}
}

func TestSubjectLength(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "en/delivered.subject.tmpl", strings.Repeat("word ", 100)+"{{.Tracking}}")
	tp := mustLoad(t, dir)
	e, err := tp.Email(input("delivered", "en"))
	if err != nil {
		t.Fatal(err)
	}
	if n := utf8.RuneCountInString(e.Subject); n > MaxSubject || !strings.HasSuffix(e.Subject, "word…") {
		t.Errorf("subject of %d characters: %q", n, e.Subject)
	}
}

func TestInputErrors(t *testing.T) {
	tp := mustLoad(t, "")
	for _, tc := range []struct {
		name   string
		edit   func(*Input)
		want   string
		noTmpl bool
	}{
		{"no event", func(in *Input) { in.Event = "" }, "no event type", false},
		{"event without template", func(in *Input) { in.Event = "arrived" }, `event type "arrived"`, true},
		{"unknown event", func(in *Input) { in.Event = "nope" }, `event type "nope"`, true},
		{"no tracking", func(in *Input) { in.Tracking = " " }, "no tracking number", false},
		{"no carrier", func(in *Input) { in.Carrier = "" }, "no carrier name", false},
		{"relative tracking URL", func(in *Input) { in.TrackingURL = "/track/abc" }, "tracking URL", false},
		{"javascript URL", func(in *Input) { in.TrackingURL = "javascript:alert(1)" }, "tracking URL", false},
		{"bad unsubscribe URL", func(in *Input) { in.UnsubscribeURL = "mailto:x@example.com" }, "unsubscribe URL", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := input("delivered", "en")
			tc.edit(&in)
			_, err := tp.Email(in)
			_, smsErr := tp.SMS(in)
			for _, err := range []error{err, smsErr} {
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("error %v, want one with %q", err, tc.want)
				}
				if errors.Is(err, ErrNoTemplate) != tc.noTmpl {
					t.Errorf("errors.Is(%v, ErrNoTemplate) = %v", err, !tc.noTmpl)
				}
			}
		})
	}
}

func TestHas(t *testing.T) {
	tp := mustLoad(t, "")
	for _, tc := range []struct {
		event, channel string
		want           bool
	}{
		{"out_for_delivery", ChannelEmail, true},
		{"stops_away", ChannelSMS, true},
		{"arriving_soon", ChannelEmail, true},
		{"delayed", ChannelSMS, true},
		{"delivered", ChannelEmail, true},
		{"failed", ChannelSMS, true},
		{"eta_changed", ChannelEmail, false},
		{"arrived", ChannelSMS, false},
		{"rerouted", ChannelEmail, false},
		{"delivered", "push", false},
		{"", ChannelEmail, false},
	} {
		if got := tp.Has(tc.event, tc.channel); got != tc.want {
			t.Errorf("Has(%q, %q) = %v, want %v", tc.event, tc.channel, got, tc.want)
		}
	}
}

func writeFile(t testing.TB, dir, name, text string) {
	t.Helper()
	p := filepath.Join(dir, filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestLoadOverrides(t *testing.T) {
	t.Run("override is used, others stay", func(t *testing.T) {
		dir := t.TempDir()
		writeFile(t, dir, "pt/delivered.sms.tmpl", "{{.Carrier}}: entregue {{.Tracking}}")
		writeFile(t, dir, "en/layout.html.tmpl", `<html lang="{{.Lang}}"><body><p>{{.Carrier}}</p>{{template "content" .}}</body></html>`)
		writeFile(t, dir, ".git/config", "not a template")
		writeFile(t, dir, ".DS_Store", "x")
		tp := mustLoad(t, dir)
		sms, err := tp.SMS(input("delivered", "pt"))
		if err != nil || sms != "Acme Parcels: entregue LM0123456789" {
			t.Errorf("SMS = %q, %v", sms, err)
		}
		sms, err = tp.SMS(input("delivered", "en"))
		if err != nil || !strings.Contains(sms, "was delivered") {
			t.Errorf("en SMS = %q, %v", sms, err)
		}
		e, err := tp.Email(input("delivered", "en"))
		if err != nil || !strings.HasPrefix(e.HTML, `<html lang="en"><body><p>Acme Parcels</p><p style=`) {
			t.Errorf("en HTML = %q, %v", e.HTML, err)
		}
	})
	for _, tc := range []struct {
		name, file, text string
		want             []string // in the error
	}{
		{"parse error", "pt/delivered.sms.tmpl", "{{.Carrier", []string{"template override pt/delivered.sms.tmpl does not parse"}},
		{"unknown field", "es/failed.text.tmpl", "Motivo: {{.Motivo}}", []string{"template override es/failed.text.tmpl fails on the sample with a name", "Motivo"}},
		{"html parse error", "fr/delayed.html.tmpl", "<p>{{if .ETA}}</p>", []string{"template override fr/delayed.html.tmpl does not parse"}},
		{"bad layout", "en/layout.text.tmpl", "{{template \"content\" .}} {{.Nope}}", []string{"template override en/layout.text.tmpl", "fails on the sample with a name", "Nope"}},
		{"layout without content is fine but empty", "en/layout.html.tmpl", "   ", []string{"e-mail has an empty subject or body"}},
		{"branch only some samples reach", "en/stops_away.sms.tmpl", "{{.Carrier}} {{if .ETA}}{{.ETA.Nope}}{{end}}", []string{"en/stops_away.sms.tmpl fails on the sample with a name"}},
		{"empty SMS", "en/failed.sms.tmpl", "{{/* nothing */}}", []string{"template override en/failed.sms.tmpl renders an empty SMS"}},
		{"unknown name", "de/delivered.sms.tmpl", "x", []string{`"de/delivered.sms.tmpl" is not a template name`}},
		{"event without template", "en/arrived.sms.tmpl", "x", []string{`"en/arrived.sms.tmpl" is not a template name`}},
		{"too big", "en/delivered.text.tmpl", strings.Repeat("x", MaxOverride+1), []string{"en/delivered.text.tmpl", "65536"}},
		{"not UTF-8", "en/delivered.text.tmpl", "caf\xe9", []string{"template en/delivered.text.tmpl is not valid UTF-8"}},
		{"endless output", "en/delivered.text.tmpl", "{{range 100000000}}xxxxxxxx{{end}}", []string{"en/delivered.text.tmpl", "more than"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFile(t, dir, tc.file, tc.text)
			_, err := Load(dir)
			check := func(what string, err error) {
				if err == nil {
					t.Fatalf("%s: no error", what)
				}
				for _, w := range tc.want {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("%s: error %q lacks %q", what, err, w)
					}
				}
			}
			check("Load", err)
			check("CheckOverride", CheckOverride(tc.file, []byte(tc.text)))
		})
	}
	t.Run("missing directory", func(t *testing.T) {
		if _, err := Load(filepath.Join(t.TempDir(), "nope")); err == nil {
			t.Error("no error")
		}
	})
	t.Run("valid override", func(t *testing.T) {
		if err := CheckOverride("fr/failed.sms.tmpl", []byte("{{.Carrier}} : colis {{.Tracking}} non livré ({{.ReasonText}}). {{.TrackingURL}}")); err != nil {
			t.Error(err)
		}
	})
}
