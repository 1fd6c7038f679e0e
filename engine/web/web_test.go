package web

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/lastmile/lastmile/engine/dispatch"
)

// TestTimelineWords checks the words of the timeline in each language,
// the stops-away counts included (0 is the next stop, 1 is singular).
func TestTimelineWords(t *testing.T) {
	n := func(k int) *int { return &k }
	now := time.Date(2026, 7, 6, 12, 0, 0, 0, time.UTC)
	cases := []struct {
		lang  string
		event dispatch.PublicEvent
		want  string
	}{
		{"en", dispatch.PublicEvent{Type: "stops_away", Stops: n(3)}, "3 stops away"},
		{"en", dispatch.PublicEvent{Type: "stops_away", Stops: n(1)}, "1 stop away"},
		{"en", dispatch.PublicEvent{Type: "stops_away", Stops: n(0)}, "You are the next stop"},
		{"pt", dispatch.PublicEvent{Type: "stops_away", Stops: n(1)}, "A 1 paragem"},
		{"fr", dispatch.PublicEvent{Type: "out_for_delivery"}, "En cours de livraison"},
		{"es", dispatch.PublicEvent{Type: "delayed"}, "Con retraso"},
		{"de", dispatch.PublicEvent{Type: "delivered"}, "Delivered"}, // unknown language: English
	}
	for _, c := range cases {
		c.event.Time = now.Unix()
		p := NewTrackPage(dispatch.PublicView{Tracking: "T1", Status: "out_for_delivery", Language: c.lang,
			Events: []dispatch.PublicEvent{c.event}}, "AAAAAAAAAAAAAAAAAAAAAA", now)
		if got := p.Timeline[0].Label; got != c.want {
			t.Errorf("%s %s: %q, want %q", c.lang, c.event.Type, got, c.want)
		}
	}
}

// TestPagesRender renders every page with user text full of markup: it
// comes out escaped, and every asset a page names exists.
func TestPagesRender(t *testing.T) {
	s, err := New()
	if err != nil {
		t.Fatal(err)
	}
	evil := `<script>alert(1)</script>"><img src=x onerror=alert(2)>`
	now := time.Now()
	eta := dispatch.ETA{Arrival: now.Unix() + 600, P10: now.Unix() + 300, P90: now.Unix() + 900}
	before := 2
	pages := map[string]any{
		"track": NewTrackPage(dispatch.PublicView{Tracking: "T1", Status: "out_for_delivery", Address: evil, Instructions: evil,
			ETA: &eta, StopsBefore: &before, Messages: []dispatch.MessageView{{From: "recipient", Text: evil}},
			Offers: [][2]int64{{now.Unix() + 7200, now.Unix() + 14400}}}, "AAAAAAAAAAAAAAAAAAAAAA", now),
		"not found": s.NotFoundPage(),
		"driver": NewDriverPage(dispatch.DriverRoute{Vehicle: "van-1", Stops: []dispatch.DriverStop{{ID: 1, Position: 1,
			Tracking: "T1", Status: "planned", Name: evil, Address: evil, Instructions: evil}}}, "csrf", now),
		"sign-in": DriverPage{Lang: "en", Error: evil},
	}
	for name, data := range pages {
		var b bytes.Buffer
		tmpl := "track.html"
		if strings.HasPrefix(name, "driver") || name == "sign-in" {
			tmpl = "driver.html"
		}
		if err := s.Render(&b, tmpl, data); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if strings.Contains(b.String(), "<script>alert") || strings.Contains(b.String(), "<img src=x") {
			t.Errorf("%s: user text became markup", name)
		}
		// Every inline style is allowed by its hash in the CSP, and
		// nothing else inline is (a changed byte would leave the page
		// unstyled in a browser).
		styles := styleRE.FindAllStringSubmatch(b.String(), -1)
		if tmpl == "track.html" && len(styles) == 0 {
			t.Errorf("%s: no inline style", name)
		}
		for _, m := range styles {
			sum := sha256.Sum256([]byte(m[1]))
			if h := "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"; !strings.Contains(CSP, h) {
				t.Errorf("%s: an inline style of %d bytes whose hash %s is not in the CSP", name, len(m[1]), h)
			}
		}
	}
}

// styleRE finds <style> elements and their text.
var styleRE = regexp.MustCompile(`(?s)<style>(.*?)</style>`)
