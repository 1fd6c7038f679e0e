// Package message renders the notifications a shipment's recipient gets
// (e-mail and SMS) from its delivery events, in the recipient's language
// and time zone.
//
// Each event type with a recipient notification (Events) has four
// templates per language (en, pt, es, fr): an e-mail subject, a plain-text
// e-mail body, an HTML e-mail body and an SMS body. The defaults are
// embedded (templates/); Load replaces any of them by a file of the same
// relative name in a directory, so an operator can reword a message
// without a new build.
//
// Template files, by name relative to the template directory:
//
//	LANG/EVENT.subject.tmpl  e-mail subject, text/template, one line
//	LANG/EVENT.text.tmpl     plain-text e-mail content, text/template
//	LANG/EVENT.html.tmpl     HTML e-mail content, html/template
//	LANG/EVENT.sms.tmpl      SMS body, text/template
//	LANG/layout.text.tmpl    the plain-text e-mail around the content
//	LANG/layout.html.tmpl    the HTML e-mail around the content
//
// Every template executes with a Data. A layout shows its event's content
// with {{template "content" .}}; a content file holds no {{define}}.
package message

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"io"
	"io/fs"
	"net/url"
	"os"
	"slices"
	"strings"
	"text/template"
	"time"
	"unicode"
	"unicode/utf8"
)

// Channels that Has takes.
const (
	ChannelEmail = "email"
	ChannelSMS   = "sms"
)

// events are the event types that have recipient templates (see Events).
var events = []string{"out_for_delivery", "stops_away", "arriving_soon", "delayed", "delivered", "failed"}

// Events returns the event types that have recipient templates, in the
// order a delivery goes through them. Other event types (arrived,
// eta_changed, rerouted…) have none: Has is false and the caller sends
// nothing.
func Events() []string { return slices.Clone(events) }

// Template parts: the middle of a content file's name.
const (
	partSubject = "subject"
	partText    = "text"
	partHTML    = "html"
	partSMS     = "sms"
)

var parts = []string{partSubject, partText, partHTML, partSMS}

// MaxOverride is the largest override file Load and CheckOverride accept,
// in bytes.
const MaxOverride = 64 << 10

// MaxSubject is the most characters (runes) a rendered subject keeps; a
// longer one is cut at a word and ends with "…".
const MaxSubject = 150

// maxOutput bounds what one template execution may write, so that an
// override cannot produce an unbounded body.
const maxOutput = 256 << 10

// ErrNoTemplate is returned (wrapped) by Email and SMS for an event type
// that has no template for the channel.
var ErrNoTemplate = errors.New("no template for this event")

//go:embed templates
var defaultFS embed.FS

// ETA is a predicted arrival with its P10–P90 interval, Unix seconds, as
// the events' "eta" data holds it. A zero P10 or P90 stands for Arrival.
type ETA struct {
	Arrival int64 `json:"arrival"`
	P10     int64 `json:"p10"`
	P90     int64 `json:"p90"`
}

// Input is what a notification is about: one event of one shipment, and
// the recipient it goes to. Event, Tracking, Carrier and TrackingURL are
// required; the rest may be zero.
type Input struct {
	// Event is the event type (one of Events() for a rendered message).
	Event string
	// Time is when the event happened, Unix seconds; dates are shown only
	// for times on another local day than this (always when it is 0).
	Time int64
	// Tracking is the shipment's tracking number.
	Tracking string
	// Name is the recipient's name; its first word is the greeting's name.
	Name string
	// Language is the recipient's language tag ("pt-BR"); it falls back
	// to its primary language ("pt") and then to "en".
	Language string
	// Location is the recipient's time zone (nil = UTC).
	Location *time.Location
	// ETA is the predicted arrival (nil when there is none).
	ETA *ETA
	// TimeWindow is the promised delivery window, Unix seconds ([0, 0] =
	// none).
	TimeWindow [2]int64
	// Stops is the count of stops before the recipient's (stops_away).
	Stops int
	// Reason is the failure reason code (failed): not_home, refused,
	// address_not_found, access, damaged or other.
	Reason string
	// TrackingURL is the shipment's public tracking page (absolute URL).
	TrackingURL string
	// UnsubscribeURL is where the recipient stops these notifications
	// (absolute URL, or "" for none).
	UnsubscribeURL string
	// Carrier is the sender's display name ("Acme Parcels").
	Carrier string
}

// Window is a time interval as the templates show it: clock times in the
// recipient's time zone (24-hour "14:10") and the date of its start.
type Window struct {
	// From and To are the start and end, "15:04".
	From, To string
	// Date is the start's date in full ("Tuesday 4 March", "terça-feira,
	// 4 de março").
	Date string
	// On is Date as an adverbial ("on Tuesday 4 March", "na terça-feira,
	// 4 de março", "el martes 4 de marzo", "le mardi 4 mars").
	On string
	// Short is a compact date for SMS ("Tue 4 Mar", "4/3").
	Short string
	// SameDay is true when the window starts on the local day of the
	// event: templates then leave the date out.
	SameDay bool
}

// Data is what every template executes with. Text values are plain
// (html/template escapes them in HTML).
type Data struct {
	// Lang is the template language: en, pt, es or fr.
	Lang string
	// Event, Tracking, Carrier, TrackingURL, UnsubscribeURL, Stops and
	// Reason are the Input's (Reason "" reads as "other").
	Event, Tracking, Carrier    string
	TrackingURL, UnsubscribeURL string
	Stops                       int
	Reason                      string
	// Name is the recipient's full name and FirstName its first word
	// (both "" when unknown).
	Name, FirstName string
	// Time is the event's local clock time ("14:23"), "" when unknown.
	Time string
	// ETA is the predicted window, P10 rounded down and P90 rounded up to
	// 5 minutes (nil when there is none).
	ETA *Window
	// Promised is the promised delivery window (nil when there is none).
	Promised *Window
	// ReasonText is Reason as a clause in the language, written to follow
	// a colon ("nobody was at home").
	ReasonText string
	// Subject is the rendered e-mail subject (in the e-mail bodies only).
	Subject string
}

// Email is a rendered e-mail.
type Email struct {
	// Subject is one line of at most MaxSubject characters, with no
	// control characters.
	Subject string
	// Text is the plain-text body and HTML the HTML body.
	Text, HTML string
}

// Templates is a complete set of parsed templates: every part of every
// event in every language. It is immutable and safe for concurrent use.
type Templates struct {
	sets map[string]*set // by lang + "/" + event
}

// set is the parsed templates of one event in one language.
type set struct {
	subject, text, sms *template.Template
	html               *htmltemplate.Template
}

// contentName is a content file's name, "en/delivered.sms.tmpl".
func contentName(lang, event, part string) string {
	return lang + "/" + event + "." + part + ".tmpl"
}

// layoutName is a layout file's name, "en/layout.html.tmpl".
func layoutName(lang, part string) string { return lang + "/layout." + part + ".tmpl" }

// templateNames are all template file names, defaults and overrides alike.
func templateNames() []string {
	var names []string
	for _, lang := range langs {
		names = append(names, layoutName(lang, partText), layoutName(lang, partHTML))
		for _, ev := range events {
			for _, p := range parts {
				names = append(names, contentName(lang, ev, p))
			}
		}
	}
	return names
}

// Load parses the default templates, each replaced by the file of the same
// relative name in dir where there is one ("" = defaults only). Files and
// folders whose name starts with "." are ignored; any other file must be a
// template name, at most MaxOverride bytes of UTF-8, parse, and execute
// without error against sample inputs, else Load fails naming the file.
func Load(dir string) (*Templates, error) { return LoadWith(dir, nil) }

// LoadWith is Load with stored overrides (by relative name, e.g. kept in
// the database through the API) applied over the folder's, each checked
// as CheckOverride does.
func LoadWith(dir string, stored map[string][]byte) (*Templates, error) {
	src, err := defaults()
	if err != nil {
		return nil, err
	}
	overridden := map[string]bool{}
	if dir != "" {
		fsys := os.DirFS(dir)
		err := fs.WalkDir(fsys, ".", func(name string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if name != "." && strings.HasPrefix(d.Name(), ".") {
				if d.IsDir() {
					return fs.SkipDir
				}
				return nil
			}
			if d.IsDir() {
				return nil
			}
			text, err := readOverride(fsys, name)
			if err != nil {
				return err
			}
			if err := checkName(name); err != nil {
				return err
			}
			if err := checkText(name, text); err != nil {
				return err
			}
			src[name], overridden[name] = text, true
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("message: templates in %s: %w", dir, err)
		}
	}
	for name, text := range stored {
		if err := checkName(name); err != nil {
			return nil, fmt.Errorf("message: stored template: %w", err)
		}
		if len(text) > MaxOverride {
			return nil, fmt.Errorf("message: stored template %s is %d bytes; the limit is %d bytes", name, len(text), MaxOverride)
		}
		if err := checkText(name, text); err != nil {
			return nil, fmt.Errorf("message: stored template: %w", err)
		}
		src[name], overridden[name] = text, true
	}
	t, err := build(src, overridden)
	if err != nil {
		return nil, fmt.Errorf("message: templates in %s: %w", dir, err)
	}
	return t, nil
}

// CheckOverride validates one override file as Load would: name is its
// relative name ("pt/delivered.sms.tmpl") and text its content. It is
// checked against the default templates (a content file with the default
// layout, a layout with every default content of its language). The error
// is a sentence that names the file and what is wrong with it.
func CheckOverride(name string, text []byte) error {
	if err := checkName(name); err != nil {
		return err
	}
	if len(text) > MaxOverride {
		return fmt.Errorf("template %s is %d bytes; the limit is %d bytes", name, len(text), MaxOverride)
	}
	if err := checkText(name, text); err != nil {
		return err
	}
	src, err := defaults()
	if err != nil {
		return err
	}
	src[name] = text
	_, err = build(src, map[string]bool{name: true})
	return err
}

// readOverride reads a file of at most MaxOverride bytes.
func readOverride(fsys fs.FS, name string) ([]byte, error) {
	f, err := fsys.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	text, err := io.ReadAll(io.LimitReader(f, MaxOverride+1))
	if err != nil {
		return nil, fmt.Errorf("reading template %s: %w", name, err)
	}
	if len(text) > MaxOverride {
		return nil, fmt.Errorf("template %s is more than %d bytes, the limit", name, MaxOverride)
	}
	return text, nil
}

// checkName rejects a name that is not a template name.
func checkName(name string) error {
	if slices.Contains(templateNames(), name) {
		return nil
	}
	return fmt.Errorf("%q is not a template name: want LANG/EVENT.PART.tmpl or LANG/layout.PART.tmpl, "+
		"with LANG one of %s, EVENT one of %s and PART one of %s (layouts: text, html)",
		name, strings.Join(langs, ", "), strings.Join(events, ", "), strings.Join(parts, ", "))
}

// checkText rejects text that is not UTF-8.
func checkText(name string, text []byte) error {
	if !utf8.Valid(text) {
		return fmt.Errorf("template %s is not valid UTF-8", name)
	}
	return nil
}

// defaults reads the embedded templates, by name.
func defaults() (map[string][]byte, error) {
	src := map[string][]byte{}
	for _, name := range templateNames() {
		text, err := defaultFS.ReadFile("templates/" + name)
		if err != nil {
			return nil, fmt.Errorf("message: default template %s: %w", name, err)
		}
		src[name] = text
	}
	return src, nil
}

// build parses every set from src and executes each against the sample
// inputs. Errors name the file; overridden marks the files that did not
// come with the build, for the message.
func build(src map[string][]byte, overridden map[string]bool) (*Templates, error) {
	kind := func(name string) string {
		if overridden[name] {
			return "template override " + name
		}
		return "default template " + name
	}
	t := &Templates{sets: map[string]*set{}}
	for _, lang := range langs {
		for _, ev := range events {
			s := &set{}
			var err error
			if s.subject, err = parseText(src, contentName(lang, ev, partSubject), ""); err != nil {
				return nil, fmt.Errorf("%s does not parse: %w", kind(contentName(lang, ev, partSubject)), err)
			}
			if s.sms, err = parseText(src, contentName(lang, ev, partSMS), ""); err != nil {
				return nil, fmt.Errorf("%s does not parse: %w", kind(contentName(lang, ev, partSMS)), err)
			}
			if s.text, err = parseText(src, contentName(lang, ev, partText), layoutName(lang, partText)); err != nil {
				return nil, fmt.Errorf("%s does not parse: %w", kind(contentName(lang, ev, partText)), err)
			}
			if s.html, err = parseHTML(src, contentName(lang, ev, partHTML), layoutName(lang, partHTML)); err != nil {
				return nil, fmt.Errorf("%s does not parse: %w", kind(contentName(lang, ev, partHTML)), err)
			}
			t.sets[lang+"/"+ev] = s
		}
	}
	// Execute every template against the samples, blaming the file that
	// was overridden when a layout and a content file run together.
	for _, lang := range langs {
		for _, ev := range events {
			for _, sm := range samples(ev, lang) {
				in := sm.in
				blame := func(p string) string {
					c := contentName(lang, ev, p)
					if l := layoutName(lang, p); (p == partText || p == partHTML) && overridden[l] && !overridden[c] {
						return kind(l) + " (with " + c + ")"
					}
					return kind(c)
				}
				e, err := t.Email(in)
				if err != nil {
					var pe *partError
					if errors.As(err, &pe) {
						return nil, fmt.Errorf("%s fails on %s: %w", blame(pe.part), sm.name, pe.err)
					}
					return nil, fmt.Errorf("%s/%s on %s: %w", lang, ev, sm.name, err)
				}
				if e.Subject == "" || strings.TrimSpace(e.Text) == "" || strings.TrimSpace(e.HTML) == "" {
					return nil, fmt.Errorf("the %s/%s e-mail has an empty subject or body on %s", lang, ev, sm.name)
				}
				sms, err := t.SMS(in)
				if err != nil {
					var pe *partError
					if errors.As(err, &pe) {
						return nil, fmt.Errorf("%s fails on %s: %w", blame(pe.part), sm.name, pe.err)
					}
					return nil, fmt.Errorf("%s/%s on %s: %w", lang, ev, sm.name, err)
				}
				if sms == "" {
					return nil, fmt.Errorf("%s renders an empty SMS on %s", kind(contentName(lang, ev, partSMS)), sm.name)
				}
			}
		}
	}
	return t, nil
}

// parseText parses a text/template; with a layout, the layout is the
// template executed and the content is its "content".
func parseText(src map[string][]byte, content, layout string) (*template.Template, error) {
	c, err := template.New(content).Parse(string(src[content]))
	if err != nil {
		return nil, err
	}
	if layout == "" {
		return c, nil
	}
	l, err := c.New(layout).Parse(string(src[layout]))
	if err != nil {
		return nil, err
	}
	if _, err := l.AddParseTree("content", c.Tree); err != nil {
		return nil, err
	}
	return l, nil
}

// parseHTML is parseText for html/template.
func parseHTML(src map[string][]byte, content, layout string) (*htmltemplate.Template, error) {
	c, err := htmltemplate.New(content).Parse(string(src[content]))
	if err != nil {
		return nil, err
	}
	l, err := c.New(layout).Parse(string(src[layout]))
	if err != nil {
		return nil, err
	}
	if _, err := l.AddParseTree("content", c.Tree); err != nil {
		return nil, err
	}
	return l, nil
}

// partError is a template execution error with the part that failed.
type partError struct {
	part string
	err  error
}

func (e *partError) Error() string { return e.part + " template: " + e.err.Error() }
func (e *partError) Unwrap() error { return e.err }

// executor is what text/template and html/template have in common.
type executor interface {
	Execute(w io.Writer, data any) error
}

// execute runs a template into a string of at most maxOutput bytes.
func execute(part string, t executor, d *Data) (string, error) {
	var b bytes.Buffer
	if err := t.Execute(&limitWriter{w: &b, n: maxOutput}, d); err != nil {
		return "", &partError{part, err}
	}
	return b.String(), nil
}

// limitWriter fails once more than n bytes are written.
type limitWriter struct {
	w io.Writer
	n int
}

func (l *limitWriter) Write(p []byte) (int, error) {
	if len(p) > l.n {
		return 0, fmt.Errorf("output is more than %d bytes", maxOutput)
	}
	l.n -= len(p)
	return l.w.Write(p)
}

// Has reports whether event has templates for channel (ChannelEmail or
// ChannelSMS). Every template language has the same events.
func (t *Templates) Has(event, channel string) bool {
	if channel != ChannelEmail && channel != ChannelSMS {
		return false
	}
	_, ok := t.sets[defaultLang+"/"+event]
	return ok
}

// lookup validates in and returns its templates and data.
func (t *Templates) lookup(in Input) (*set, *Data, error) {
	if err := in.validate(); err != nil {
		return nil, nil, err
	}
	lang := resolveLang(in.Language)
	s, ok := t.sets[lang+"/"+in.Event]
	if !ok {
		return nil, nil, fmt.Errorf("message: event type %q: %w", in.Event, ErrNoTemplate)
	}
	return s, newData(in, lang), nil
}

// Email renders the e-mail for in. The subject is one line of at most
// MaxSubject characters whatever the template and the data; user data is
// escaped in the HTML.
func (t *Templates) Email(in Input) (Email, error) {
	s, d, err := t.lookup(in)
	if err != nil {
		return Email{}, err
	}
	subject, err := execute(partSubject, s.subject, d)
	if err != nil {
		return Email{}, fmt.Errorf("message: %s/%s e-mail: %w", d.Lang, in.Event, err)
	}
	d.Subject = cleanSubject(subject)
	text, err := execute(partText, s.text, d)
	if err != nil {
		return Email{}, fmt.Errorf("message: %s/%s e-mail: %w", d.Lang, in.Event, err)
	}
	html, err := execute(partHTML, s.html, d)
	if err != nil {
		return Email{}, fmt.Errorf("message: %s/%s e-mail: %w", d.Lang, in.Event, err)
	}
	return Email{Subject: d.Subject, Text: cleanText(text), HTML: strings.TrimSpace(html) + "\n"}, nil
}

// SMS renders the SMS body for in: one segment where the template allows
// it, characters outside GSM-7 spelled in GSM-7 (ã → a) when only they
// make it longer than one segment. See Segments.
func (t *Templates) SMS(in Input) (string, error) {
	s, d, err := t.lookup(in)
	if err != nil {
		return "", err
	}
	body, err := execute(partSMS, s.sms, d)
	if err != nil {
		return "", fmt.Errorf("message: %s/%s SMS: %w", d.Lang, in.Event, err)
	}
	return fitSMS(cleanSMS(body)), nil
}

// validate checks the required fields of in.
func (in *Input) validate() error {
	switch {
	case in.Event == "":
		return errors.New("message: input has no event type")
	case strings.TrimSpace(in.Tracking) == "":
		return errors.New("message: input has no tracking number")
	case strings.TrimSpace(in.Carrier) == "":
		return errors.New("message: input has no carrier name")
	}
	if err := checkURL(in.TrackingURL); err != nil {
		return fmt.Errorf("message: tracking URL: %w", err)
	}
	if in.UnsubscribeURL != "" {
		if err := checkURL(in.UnsubscribeURL); err != nil {
			return fmt.Errorf("message: unsubscribe URL: %w", err)
		}
	}
	return nil
}

// checkURL accepts an absolute http or https URL.
func checkURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return errors.New("not a URL")
	}
	if (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return errors.New("want an absolute http or https URL")
	}
	return nil
}

// newData is the template data of in in language lang.
func newData(in Input, lang string) *Data {
	loc := in.Location
	if loc == nil {
		loc = time.UTC
	}
	l := locales[lang]
	d := &Data{
		Lang: lang, Event: in.Event, Tracking: oneLine(in.Tracking), Carrier: oneLine(in.Carrier),
		TrackingURL: in.TrackingURL, UnsubscribeURL: in.UnsubscribeURL, Stops: in.Stops,
		Reason: in.Reason, ReasonText: l.reasonText(in.Reason), Name: oneLine(in.Name),
	}
	if d.Reason == "" {
		d.Reason = "other"
	}
	if f := strings.Fields(d.Name); len(f) > 0 {
		d.FirstName = f[0]
	}
	var day time.Time // the event's local day, zero when unknown
	if in.Time > 0 {
		t := time.Unix(in.Time, 0).In(loc)
		d.Time = t.Format("15:04")
		day = t
	}
	if e := in.ETA; e != nil {
		lo, hi := e.P10, e.P90
		if lo == 0 {
			lo = e.Arrival
		}
		if hi == 0 {
			hi = e.Arrival
		}
		if lo > hi {
			lo, hi = hi, lo
		}
		if lo > 0 {
			d.ETA = window(l, loc, day, lo, hi)
		}
	}
	if w := in.TimeWindow; w[0] > 0 && w[1] >= w[0] {
		d.Promised = window(l, loc, day, w[0], w[1])
	}
	return d
}

// window is [lo, hi] (Unix seconds) rounded outward to 5 minutes, at
// least 5 minutes long, in loc.
func window(l *locale, loc *time.Location, day time.Time, lo, hi int64) *Window {
	const step = 300
	lo = lo - ((lo%step)+step)%step
	if r := ((hi % step) + step) % step; r != 0 {
		hi += step - r
	}
	if hi <= lo {
		hi = lo + step
	}
	from, to := time.Unix(lo, 0).In(loc), time.Unix(hi, 0).In(loc)
	w := &Window{
		From: from.Format("15:04"), To: to.Format("15:04"),
		Date: l.long(l, from), On: l.on(l, from), Short: l.short(l, from),
	}
	if !day.IsZero() {
		y1, m1, d1 := day.Date()
		y2, m2, d2 := from.Date()
		w.SameDay = y1 == y2 && m1 == m2 && d1 == d2
	}
	return w
}

// isBidiControl reports the explicit bidirectional formatting characters,
// which could make a subject read differently from what it holds.
func isBidiControl(r rune) bool {
	return r >= 0x202A && r <= 0x202E || r >= 0x2066 && r <= 0x2069 || r == 0x200E || r == 0x200F
}

// oneLine turns every control, line or paragraph separator character into
// a space and drops bidirectional controls.
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case isBidiControl(r):
			return -1
		case unicode.IsControl(r) || r == '\u2028' || r == '\u2029':
			return ' '
		}
		return r
	}, s)
}

// cleanSubject makes a rendered subject one line of single spaces, at most
// MaxSubject runes (cut at a word, with "…").
func cleanSubject(s string) string {
	s = strings.Join(strings.Fields(oneLine(s)), " ")
	if utf8.RuneCountInString(s) <= MaxSubject {
		return s
	}
	r := []rune(s)[:MaxSubject-1]
	cut := len(r)
	for i := len(r) - 1; i > MaxSubject/2; i-- {
		if r[i] == ' ' {
			cut = i
			break
		}
	}
	return strings.TrimRight(string(r[:cut]), " ,.;:-") + "…"
}

// cleanLines drops control characters other than newline (and tab when
// keepTab), trims each line's end and keeps at most one empty line in a
// row; the result has no leading or trailing empty lines.
func cleanLines(s string, keepTab bool) string {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	s = strings.Map(func(r rune) rune {
		switch {
		case r == '\n' || keepTab && r == '\t':
			return r
		case isBidiControl(r):
			return -1
		case unicode.IsControl(r) || r == '\u2028' || r == '\u2029':
			return ' '
		}
		return r
	}, s)
	var out []string
	blank := true // no empty line at the start
	for _, line := range strings.Split(s, "\n") {
		line = strings.TrimRightFunc(line, unicode.IsSpace)
		if line == "" {
			if blank {
				continue
			}
			blank = true
		} else {
			blank = false
		}
		out = append(out, line)
	}
	return strings.TrimRight(strings.Join(out, "\n"), "\n")
}

// cleanText tidies a plain-text body (see cleanLines); it ends with a
// newline.
func cleanText(s string) string { return cleanLines(s, true) + "\n" }

// cleanSMS tidies an SMS body: no tabs, no empty lines at either end.
func cleanSMS(s string) string { return cleanLines(s, false) }

// sample is an input a template must execute against without error.
type sample struct {
	name string // for error messages
	in   Input
}

// samples are the inputs a template must execute against without error:
// with and without a name, an ETA, a promised window and a known event
// time, on the event's day and the next.
func samples(event, lang string) []sample {
	loc, err := time.LoadLocation("Europe/Lisbon")
	if err != nil {
		loc = time.FixedZone("WET", 0)
	}
	const t0 = 1772611200 // 2026-03-04 08:00 UTC
	base := Input{
		Event: event, Tracking: "LM0123456789", Language: lang,
		TrackingURL: "https://track.example.com/track/AbCdEfGhIjKlMnOpQrStUv", Carrier: "Acme Parcels",
	}
	full := base
	full.Time, full.Name, full.Location, full.Stops, full.Reason = t0, "Ana Maria Sousa", loc, 3, "not_home"
	full.ETA = &ETA{Arrival: t0 + 3*3600, P10: t0 + 3*3600 - 600, P90: t0 + 3*3600 + 900}
	full.TimeWindow = [2]int64{t0 + 2*3600, t0 + 4*3600}
	full.UnsubscribeURL = "https://track.example.com/unsubscribe/AbCdEfGhIjKlMnOpQrStUv"
	nextDay := full
	nextDay.Stops, nextDay.Reason, nextDay.Name = 1, "other", "José"
	nextDay.ETA = &ETA{Arrival: t0 + 26*3600}
	nextDay.TimeWindow = [2]int64{t0 + 24*3600, t0 + 28*3600}
	bare := base
	bare.Stops = 0
	return []sample{
		{"the sample with a name, a same-day ETA, a promised window, 3 stops and reason not_home", full},
		{"the sample with an ETA and a promised window on the next day, 1 stop and reason other", nextDay},
		{"the sample without name, ETA, promised window or event time", bare},
	}
}
