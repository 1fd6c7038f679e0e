package engine

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lastmile/lastmile/engine/notify"
)

// sseEvent is one server-sent event.
type sseEvent struct {
	id, event, data string
}

// openStream opens GET /v1/events/stream and returns a channel of its
// events (closed when the stream ends) and a cancel func.
func (ds *dispatchServer) openStream(t *testing.T, key, lastID, query string) (<-chan sseEvent, func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, "GET", ds.url+"/v1/events/stream"+query, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+key)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("stream: %d %s: %s", resp.StatusCode, resp.Header.Get("Content-Type"), b)
	}
	out := make(chan sseEvent, 1000)
	go func() {
		defer close(out)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		var ev sseEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if ev.data != "" {
					out <- ev
				}
				ev = sseEvent{}
			case strings.HasPrefix(line, "id: "):
				ev.id = line[4:]
			case strings.HasPrefix(line, "event: "):
				ev.event = line[7:]
			case strings.HasPrefix(line, "data: "):
				ev.data = line[6:]
			}
		}
	}()
	return out, cancel
}

func nextEvent(t *testing.T, ch <-chan sseEvent) sseEvent {
	t.Helper()
	select {
	case ev, ok := <-ch:
		if !ok {
			t.Fatal("stream ended")
		}
		return ev
	case <-time.After(10 * time.Second):
		t.Fatal("no event within 10 s")
	}
	return sseEvent{}
}

// TestEventStream: events reach an open stream as they commit, a stream
// resumes after Last-Event-ID, types filter, and a driver key is refused.
func TestEventStream(t *testing.T) {
	ds := newDispatchServer(t, "sqlite")
	ds.mustCall(t, 201, "POST", "/v1/shipments", ds.admin, map[string]any{"tracking": "S1", "recipient": map[string]any{"name": "A"},
		"location": []float64{7.4246, 43.7384}}, nil)
	stream, cancel := ds.openStream(t, ds.admin, "", "")
	for i, typ := range []string{"shipped", "at_facility", "in_transit"} {
		ds.mustCall(t, 201, "POST", "/v1/shipments/S1/events", ds.admin, map[string]any{"id": "c" + strconv.Itoa(i), "type": typ, "time": 1000 + i}, nil)
		ev := nextEvent(t, stream)
		var e struct {
			Type   string `json:"type"`
			Cursor int64  `json:"cursor"`
			Seq    int64  `json:"seq"`
		}
		if err := json.Unmarshal([]byte(ev.data), &e); err != nil {
			t.Fatal(err)
		}
		if ev.event != typ || e.Type != typ || ev.id != strconv.FormatInt(e.Cursor, 10) || e.Seq != int64(i+1) {
			t.Fatalf("event %d: %+v %+v", i, ev, e)
		}
	}
	cancel()
	resumed, cancel2 := ds.openStream(t, ds.admin, "1", "")
	defer cancel2()
	if ev := nextEvent(t, resumed); ev.id != "2" || ev.event != "at_facility" {
		t.Fatalf("resumed after 1: %+v", ev)
	}
	filtered, cancel3 := ds.openStream(t, ds.admin, "", "?types=in_transit")
	defer cancel3()
	if ev := nextEvent(t, filtered); ev.event != "in_transit" {
		t.Fatalf("filtered: %+v", ev)
	}
	// A driver's stream holds its own vehicle's shipments only: S1 is on
	// no route, so the first event it gets is the one on van-1's route.
	_, drv := ds.key(t, "driver", "van-1")
	drvStream, cancel4 := ds.openStream(t, drv, "", "")
	defer cancel4()
	ds.mustCall(t, 201, "POST", "/v1/shipments", ds.admin, map[string]any{"tracking": "S2", "recipient": map[string]any{"name": "B"},
		"location": []float64{7.4246, 43.7384}}, nil)
	ds.mustCall(t, 201, "POST", "/v1/plans", ds.admin, map[string]any{"vehicles": []any{map[string]any{"id": 1, "vehicle": "van-1",
		"start": []float64{7.4246, 43.7384}}}, "routes": []any{map[string]any{"vehicle": "van-1", "shipments": []string{"S2"}}}}, nil)
	ds.mustCall(t, 201, "POST", "/v1/shipments/S2/events", ds.admin, map[string]any{"id": "d1", "type": "shipped", "time": 2000}, nil)
	if ev := nextEvent(t, drvStream); !strings.Contains(ev.data, `"tracking":"S2"`) {
		t.Fatalf("driver stream: %+v", ev)
	}
	if status, _ := ds.call(t, "GET", "/v1/events/stream?after=x", ds.admin, nil); status != 400 {
		t.Fatalf("bad after: %d", status)
	}
}

// TestWebhookAPI: subscriptions through HTTP: scopes, validation, a
// signed delivery of a caller milestone to a receiver on loopback, the
// listing, replay and delete.
func TestWebhookAPI(t *testing.T) {
	strict := newDispatchServer(t, "sqlite")
	for _, c := range []struct {
		body string
		want int
	}{
		{`{"url": "https://127.0.0.1/x", "events": ["*"]}`, 400},
		{`{"url": "https://169.254.169.254/x", "events": ["*"]}`, 400},
		{`{"url": "javascript:alert(1)", "events": ["*"]}`, 400},
		{`{"url": "https://example.com/x", "events": ["nope"]}`, 400},
		{`{"url": "https://example.com/x", "events": ["*"], "extra": 1}`, 400},
		{`{"url": "https://example.com/x"`, 400},
		{`{"url": "https://example.com/` + strings.Repeat("a", 3000) + `", "events": ["*"]}`, 400},
		{`{"url": "https://example.com/x", "events": ["delivered"]}`, 201},
	} {
		status, body := strict.call(t, "POST", "/v1/webhooks", strict.admin, c.body)
		if status != c.want || (status >= 400 && !strings.Contains(string(body), `"code"`)) {
			t.Errorf("%.60s: %d %s, want %d", c.body, status, clip(body, 200), c.want)
		}
	}

	ds := newDispatchServerWith(t, "sqlite", func(c *ServerConfig) {
		c.Notify = notify.Config{AllowPrivate: true, BackoffBase: 20 * time.Millisecond, BackoffMax: 100 * time.Millisecond, Poll: 50 * time.Millisecond}
	})
	var mu sync.Mutex
	var got []http.Header
	var bodies [][]byte
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got, bodies = append(got, r.Header.Clone()), append(bodies, b)
		mu.Unlock()
		w.WriteHeader(204)
	}))
	defer rcv.Close()
	_, drv := ds.key(t, "driver", "van-1")
	_, ro := ds.key(t, "readonly", "")
	_, disp := ds.key(t, "dispatcher", "")
	in := map[string]any{"url": rcv.URL + "/hook", "events": []string{"shipped", "delivered"}}
	for _, k := range []string{drv, ro} {
		if status, _ := ds.call(t, "POST", "/v1/webhooks", k, in); status != 403 {
			t.Fatalf("webhook by a non-dispatcher: %d", status)
		}
	}
	var w notify.Webhook
	ds.mustCall(t, 201, "POST", "/v1/webhooks", disp, in, &w)
	if !strings.HasPrefix(w.Secret, "whsec_") || !strings.HasPrefix(w.ID, "wh_") || !w.Enabled {
		t.Fatalf("created %+v", w)
	}
	ds.mustCall(t, 201, "POST", "/v1/shipments", ds.admin, map[string]any{"tracking": "W1", "recipient": map[string]any{"name": "B"},
		"location": []float64{7.4246, 43.7384}}, nil)
	ds.mustCall(t, 201, "POST", "/v1/shipments/W1/events", disp, map[string]any{"id": "x1", "type": "shipped", "time": 5}, nil)
	ds.mustCall(t, 201, "POST", "/v1/shipments/W1/events", disp, map[string]any{"id": "x2", "type": "in_transit", "time": 6}, nil)
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		n := len(got)
		mu.Unlock()
		if n >= 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no delivery within 10 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	mu.Lock()
	h, body := got[0], bodies[0]
	mu.Unlock()
	var p notify.Payload
	if err := json.Unmarshal(body, &p); err != nil || p.Type != "shipped" || p.Data.Tracking != "W1" || h.Get("webhook-id") != p.Data.ID {
		t.Fatalf("delivery %s %v: %v", body, h, err)
	}
	var list struct{ Webhooks []notify.Webhook }
	ds.mustCall(t, 200, "GET", "/v1/webhooks", disp, nil, &list)
	if len(list.Webhooks) != 1 || list.Webhooks[0].Secret != "" {
		t.Fatalf("list %+v (secrets must not be listed)", list)
	}
	var page notify.DeliveriesPage
	for deadline := time.Now().Add(5 * time.Second); ; { // the outcome is written just after the answer
		ds.mustCall(t, 200, "GET", "/v1/webhooks/"+w.ID+"/deliveries?state=sent", disp, nil, &page)
		if len(page.Deliveries) > 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if len(page.Deliveries) != 1 || page.Deliveries[0].Type != "shipped" || page.Deliveries[0].Attempts != 1 {
		t.Fatalf("deliveries %+v", page)
	}
	status, metrics := ds.call(t, "GET", "/metrics", "", nil)
	for _, want := range []string{`lastmile_deliveries_total{channel="webhook",outcome="sent"} 1`, "lastmile_outbox_pending 0", "lastmile_dead_letters 0"} {
		if status != 200 || !strings.Contains(string(metrics), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	var rep notify.Replayed
	ds.mustCall(t, 200, "POST", "/v1/webhooks/"+w.ID+"/replay", disp, map[string]any{"after": 0}, &rep)
	if rep.Queued != 1 {
		t.Fatalf("replay %+v", rep)
	}
	ds.mustCall(t, 400, "POST", "/v1/webhooks/"+w.ID+"/replay", disp, map[string]any{}, nil)
	ds.mustCall(t, 400, "GET", "/v1/webhooks/"+w.ID+"/deliveries?state=odd", disp, nil, nil)
	off := false
	ds.mustCall(t, 200, "PATCH", "/v1/webhooks/"+w.ID, disp, map[string]any{"enabled": off}, &w)
	if w.Enabled {
		t.Fatal("not disabled")
	}
	ds.mustCall(t, 409, "POST", "/v1/webhooks/"+w.ID+"/replay", disp, map[string]any{"after": 0}, nil)
	ds.mustCall(t, 200, "DELETE", "/v1/webhooks/"+w.ID, disp, nil, nil)
	ds.mustCall(t, 404, "GET", "/v1/webhooks/"+w.ID, disp, nil, nil)
	ds.mustCall(t, 404, "GET", "/v1/webhooks/nope", disp, nil, nil)
	// Preferences.
	ds.mustCall(t, 200, "PUT", "/v1/shipments/W1/notify", disp, map[string]any{"email": []string{"delivered"}, "sms": []string{}}, nil)
	ds.mustCall(t, 400, "PUT", "/v1/shipments/W1/notify", disp, map[string]any{"email": []string{"rerouted"}}, nil)
	ds.mustCall(t, 404, "PUT", "/v1/shipments/NOPE/notify", disp, map[string]any{}, nil)
}

// TestTemplateAPI: admin only; oversized, broken and misnamed templates
// get JSON errors; a stored one is listed and can be deleted.
func TestTemplateAPI(t *testing.T) {
	// A body limit above the templates' own, so that their check answers.
	ds := newDispatchServerWith(t, "sqlite", func(c *ServerConfig) { c.MaxBodyBytes = 1 << 20 })
	_, disp := ds.key(t, "dispatcher", "")
	if status, _ := ds.call(t, "PUT", "/v1/templates/en/delivered.sms.tmpl", disp, "Delivered {{.Tracking}}"); status != 403 {
		t.Fatalf("dispatcher stores a template: %d", status)
	}
	for _, c := range []struct {
		path, body string
		want       int
	}{
		{"/v1/templates/en/delivered.sms.tmpl", "Delivered {{.Tracking}} {{.TrackingURL}}", 200},
		{"/v1/templates/en/delivered.sms.tmpl", "{{.Nope}}", 400},
		{"/v1/templates/en/delivered.sms.tmpl", "{{if}", 400},
		{"/v1/templates/en/delivered.subject.tmpl", strings.Repeat("a", 64<<10+1), 413},
		{"/v1/templates/en/nope.sms.tmpl", "x", 400},
		{"/v1/templates/xx/delivered.sms.tmpl", "x", 400},
	} {
		status, body := ds.call(t, "PUT", c.path, ds.admin, c.body)
		if status != c.want || (status >= 400 && !strings.Contains(string(body), `"message"`)) {
			t.Errorf("PUT %s %.20q: %d %s, want %d", c.path, c.body, status, clip(body, 200), c.want)
		}
	}
	var list struct {
		Templates []notify.TemplateInfo `json:"templates"`
	}
	ds.mustCall(t, 200, "GET", "/v1/templates", ds.admin, nil, &list)
	if len(list.Templates) != 1 || list.Templates[0].Name != "en/delivered.sms.tmpl" {
		t.Fatalf("list %+v", list)
	}
	ds.mustCall(t, 200, "DELETE", "/v1/templates/en/delivered.sms.tmpl", ds.admin, nil, nil)
	ds.mustCall(t, 404, "DELETE", "/v1/templates/en/delivered.sms.tmpl", ds.admin, nil, nil)
}

// TestUnsubscribePage: the page posts back the channel's own key (what
// the handler accepts), its only style is allowed by the CSP's hash,
// unknown and malformed tokens get the same 404.
func TestUnsubscribePage(t *testing.T) {
	ds := newDispatchServer(t, "sqlite")
	var created struct {
		TrackingURL string `json:"tracking_url"`
	}
	ds.mustCall(t, 201, "POST", "/v1/shipments", ds.admin, map[string]any{"tracking": "U1", "recipient": map[string]any{"name": "A",
		"email": "a@example.com", "phone": "+351912345678"}, "location": []float64{7.4246, 43.7384}}, &created)
	for _, ch := range []string{"email", "sms"} {
		page := created.TrackingURL + "/unsubscribe?channel=" + ch
		resp, err := http.Get(ds.url + page)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		sum := sha256.Sum256([]byte(unsubscribeStyle))
		if resp.StatusCode != 200 || !strings.Contains(string(body), `name="channel" value="`+ch+`"`) ||
			!strings.Contains(resp.Header.Get("Content-Security-Policy"), "'sha256-"+base64.StdEncoding.EncodeToString(sum[:])+"'") ||
			!strings.Contains(string(body), "<style>"+unsubscribeStyle+"</style>") {
			t.Fatalf("%s page: %d %s %s", ch, resp.StatusCode, resp.Header.Get("Content-Security-Policy"), body)
		}
		resp, err = http.PostForm(ds.url+page, url.Values{"channel": {ch}})
		if err != nil {
			t.Fatal(err)
		}
		body, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(body), "You are unsubscribed") {
			t.Fatalf("%s form post: %d %s", ch, resp.StatusCode, body)
		}
	}
	var first []byte
	for _, tok := range []string{"AAAAAAAAAAAAAAAAAAAAAA", "short", "%3Cscript%3E"} {
		status, body := ds.call(t, "GET", "/track/"+tok+"/unsubscribe?channel=email", "", nil)
		if status != 404 || (first != nil && string(body) != string(first)) {
			t.Fatalf("token %q: %d %s", tok, status, body)
		}
		first = body
	}
}
