package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/lastmile/lastmile/engine/blob"
	"github.com/lastmile/lastmile/internal/browsertest"
)

// drawSignature draws a stroke on a canvas with pointer events.
func drawSignature(sel string) string {
	return fmt.Sprintf(`(() => {
		const c = document.querySelector(%q);
		const r = c.getBoundingClientRect();
		const ev = (type, i) => c.dispatchEvent(new PointerEvent(type, {bubbles: true, pointerId: 1, pointerType: 'touch', isPrimary: true,
			clientX: r.left + 20 + i * 12, clientY: r.top + r.height / 2 + Math.sin(i) * 15, pressure: 0.5}));
		ev('pointerdown', 0);
		for (let i = 1; i < 20; i++) ev('pointermove', i);
		ev('pointerup', 20);
		return true;
	})()`, sel)
}

// TestBrowserTrackAndDriver walks the recipient's page and the driver's
// app in headless Chromium on a phone-sized viewport, during a delivery:
// the van moves on the map, the page's ETA and stops match the API, the
// recipient's instruction and message reach the driver's app, two
// deliveries recorded offline reach the server once each, a delivery
// with photo and signature shows its proof on the page.
func TestBrowserTrackAndDriver(t *testing.T) {
	browser := browsertest.Start(t)
	dir := browsertest.Artefacts(t)
	ds := newDispatchServerWith(t, "sqlite", func(c *ServerConfig) {
		c.Blobs = blob.NewMem()
		c.TrackRate = -1
		c.MaxBodyBytes = 16 << 20
	})
	f := &trackFixture{dispatchServer: ds}
	_, f.disp = ds.key(t, "dispatcher", "")
	_, f.drv1 = ds.key(t, "driver", "van-1")
	now := time.Now().Unix()
	toks := map[string]string{}
	for i, trk := range []string{"T2", "T4", "T1"} {
		var c struct {
			TrackingURL string `json:"tracking_url"`
		}
		loc := [][2]float64{monacoStops[2], {7.42260, 43.73900}, monacoStops[0]}[i]
		ds.mustCall(t, 201, "POST", "/v1/shipments", f.disp, map[string]any{"tracking": trk,
			"recipient": map[string]any{"name": "Recipient " + trk, "language": "en"}, "location": loc, "address": "Street of " + trk,
			"time_window": []int64{now - 3600, now + 3*3600}, "time_zone": "Europe/Monaco", "service": 60}, &c)
		toks[trk] = c.TrackingURL
	}
	var plan struct {
		Routes []struct {
			Stops []struct {
				ID       int64
				Tracking string
			}
		}
	}
	ds.mustCall(t, 201, "POST", "/v1/plans", f.disp, map[string]any{
		"vehicles": []any{map[string]any{"id": 1, "vehicle": "van-1", "start": monacoDepot, "end": monacoDepot}},
		"routes":   []any{map[string]any{"vehicle": "van-1", "shipments": []string{"T2", "T4", "T1"}}}}, &plan)
	stops := map[string]int64{}
	for _, s := range plan.Routes[0].Stops {
		stops[s.Tracking] = s.ID
	}
	f.ping(t, "van-1", now-600, [2]float64{7.42150, 43.73350})

	// The recipient's page: first paint, ETA and stops as the API has them.
	track := browsertest.Tab(t, browser, 390, 844, true)
	browsertest.Do(t, track, 30*time.Second, "open the tracking page", chromedp.Navigate(ds.url+toks["T1"]), chromedp.WaitVisible(chromedp.CSS("#headline")))
	browsertest.WaitJS(t, track, 20*time.Second, "the van on the map", `!!document.querySelector('.lm-van') && !document.getElementById('live').hidden`)
	browsertest.WaitJS(t, track, 20*time.Second, "map tiles drawn", `document.querySelectorAll('#map canvas').length >= 4`)
	time.Sleep(500 * time.Millisecond)
	browsertest.Shoot(t, track, dir, "01-tracking-page.png")
	roads, colours := browsertest.MapDrawn(t, browsertest.ElementShot(t, track, "#map"))
	if roads < 0.03 || colours < 8 {
		t.Errorf("the map looks blank: %.1f%% of pixels off the land colour, %d colours", 100*roads, colours)
	}
	var api struct {
		ETA         struct{ Arrival, P10, P90 int64 }
		StopsBefore int `json:"stops_before"`
	}
	ds.mustCall(t, 200, "GET", "/v1/shipments/T1", f.disp, nil, &api)
	loc, _ := time.LoadLocation("Europe/Monaco")
	lo := time.Unix(api.ETA.P10-api.ETA.P10%300, 0).In(loc).Format("15:04")
	hi := time.Unix(api.ETA.P90+(300-api.ETA.P90%300)%300, 0).In(loc).Format("15:04")
	detail := browsertest.Eval[string](t, track, `document.getElementById('detail').textContent`)
	stopsText := browsertest.Eval[string](t, track, `document.getElementById('stops').textContent`)
	if detail != fmt.Sprintf("Arriving between %s and %s", lo, hi) {
		t.Errorf("page ETA %q, API says %s-%s", detail, lo, hi)
	}
	if stopsText != fmt.Sprintf("%d stops before yours", api.StopsBefore) {
		t.Errorf("page stops %q, API says %d", stopsText, api.StopsBefore)
	}
	// The van moves between two updates.
	before := browsertest.Eval[[]float64](t, track, `(() => { const r = document.querySelector('.lm-van').getBoundingClientRect(); return [r.x, r.y]; })()`)
	f.ping(t, "van-1", now-590, [2]float64{7.42230, 43.73420})
	browsertest.WaitJS(t, track, 15*time.Second, "the van to move",
		fmt.Sprintf(`(() => { const r = document.querySelector('.lm-van').getBoundingClientRect(); return Math.hypot(r.x - %f, r.y - %f) > 5; })()`, before[0], before[1]))
	time.Sleep(1500 * time.Millisecond) // the animation ends
	browsertest.Shoot(t, track, dir, "02-van-moved.png")

	// The recipient leaves an instruction and a message; text stays text.
	evil := `<script>window.pwned=1</script> leave with neighbour at no. 12`
	browsertest.Do(t, track, 20*time.Second, "instruction",
		chromedp.SetValue(chromedp.CSS("#instructions-text"), evil),
		chromedp.Click(chromedp.CSS("#instructions-save")),
		chromedp.WaitVisible(chromedp.CSS(".notice")))
	browsertest.Do(t, track, 20*time.Second, "message",
		chromedp.SetValue(chromedp.CSS("#message-text"), `Ring twice <a href="javascript:alert(1)">please</a>`),
		chromedp.Click(chromedp.CSS("#message-send")))
	// The page after the post (the one before has a notice too: waiting
	// for a notice raced the navigation and the screenshot failed).
	browsertest.WaitJS(t, track, 20*time.Second, "the page with the message",
		`document.readyState === 'complete' && !!document.querySelector('.notice') && (document.querySelector('#messages') || {textContent: ''}).textContent.includes('Ring twice')`)
	browsertest.Shoot(t, track, dir, "03-instruction-and-message.png")
	if browsertest.Eval[bool](t, track, `!!window.pwned || document.querySelectorAll('#messages a, .page script:not([src])').length > 0`) {
		t.Errorf("user text became markup on the page")
	}

	// The driver's app: sign in, see the instruction and the message.
	drv := browsertest.Tab(t, browser, 390, 844, true)
	browsertest.Do(t, drv, 30*time.Second, "sign in",
		chromedp.Navigate(ds.url+"/driver"),
		chromedp.WaitVisible(chromedp.CSS("#key")),
		chromedp.SetValue(chromedp.CSS("#key"), f.drv1),
		chromedp.Click(chromedp.CSS("#signin")),
		chromedp.WaitVisible(chromedp.CSS("#app")))
	browsertest.WaitJS(t, drv, 20*time.Second, "the service worker", `navigator.serviceWorker.getRegistration('/driver').then(r => !!(r && r.active))`)
	id1 := fmt.Sprint(stops["T1"])
	instr := browsertest.Eval[string](t, drv, fmt.Sprintf(`document.querySelector('#stop-%s .stop-instructions-text').textContent`, id1))
	if !strings.Contains(instr, "<script>window.pwned=1</script> leave with neighbour") {
		t.Errorf("driver sees instructions %q", instr)
	}
	browsertest.Tap(t, drv, fmt.Sprintf(`#stop-%s [data-action="messages"]`, id1))
	browsertest.WaitJS(t, drv, 10*time.Second, "the thread open", `document.getElementById('thread').open`)
	browsertest.WaitJS(t, drv, 20*time.Second, "the recipient's message", `[...document.querySelectorAll('#thread-list .msg-recipient .msg-text')].some(e => e.textContent.includes('Ring twice <a href='))`)
	browsertest.Do(t, drv, 20*time.Second, "reply",
		chromedp.SetValue(chromedp.CSS("#thread-input"), "I'll ring twice"),
		chromedp.Click(chromedp.CSS("#thread-send")))
	browsertest.Shoot(t, drv, dir, "04-driver-thread.png")
	browsertest.Do(t, drv, 10*time.Second, "close the thread", chromedp.Click(chromedp.CSS("#thread-close")))
	browsertest.WaitJS(t, track, 20*time.Second, "the driver's reply on the page", `[...document.querySelectorAll('#messages .text')].some(e => e.textContent === "I'll ring twice")`)
	if browsertest.Eval[bool](t, drv, `!!window.pwned`) {
		t.Errorf("user text ran as script in the driver's app")
	}
	browsertest.Shoot(t, drv, dir, "05-driver-stops.png")

	// Offline: two deliveries with signatures, then back online: each
	// reaches the server once.
	browsertest.SetOffline(t, drv, true)
	browsertest.WaitJS(t, drv, 10*time.Second, "offline banner", `document.getElementById('conn-banner').dataset.state === 'offline'`)
	for _, trk := range []string{"T2", "T4"} {
		id := fmt.Sprint(stops[trk])
		browsertest.Tap(t, drv, fmt.Sprintf(`#stop-%s [data-action="delivered"]`, id))
		browsertest.Do(t, drv, 20*time.Second, "deliver "+trk+" offline", chromedp.WaitVisible(chromedp.CSS("#proof-signature")))
		browsertest.Eval[bool](t, drv, drawSignature("#proof-signature"))
		browsertest.Do(t, drv, 20*time.Second, "confirm "+trk,
			chromedp.SetValue(chromedp.CSS("#proof-name"), "Neighbour of "+trk),
			chromedp.Click(chromedp.CSS("#proof-confirm")))
		browsertest.WaitJS(t, drv, 10*time.Second, "the proof panel to close", `!document.getElementById('proof').open`)
	}
	browsertest.WaitJS(t, drv, 10*time.Second, "4 actions queued", `document.getElementById('queue-count').dataset.count === '4'`)
	browsertest.Shoot(t, drv, dir, "06-driver-offline.png")
	for _, trk := range []string{"T2", "T4"} {
		var v struct{ Status string }
		ds.mustCall(t, 200, "GET", "/v1/shipments/"+trk, f.disp, nil, &v)
		if v.Status == "delivered" {
			t.Fatalf("%s delivered while the phone was offline", trk)
		}
	}
	browsertest.SetOffline(t, drv, false)
	browsertest.WaitJS(t, drv, 60*time.Second, "the queue to drain", `document.getElementById('queue-count').dataset.count === '0'`)
	for _, trk := range []string{"T2", "T4"} {
		var v struct {
			Status string
			Events []struct{ Type string }
		}
		ds.mustCall(t, 200, "GET", "/v1/shipments/"+trk, f.disp, nil, &v)
		n := 0
		for _, e := range v.Events {
			if e.Type == "delivered" {
				n++
			}
		}
		pods, err := ds.st.ShipmentPods(context.Background(), shipmentID(t, ds, trk))
		if v.Status != "delivered" || n != 1 || err != nil || len(pods) != 1 {
			t.Errorf("%s after the phone came back: status %s, %d delivered events, %d proofs (%v)", trk, v.Status, n, len(pods), err)
		}
	}

	// T1: delivered with a photo and a signature; the page shows the proof.
	photo := filepath.Join(t.TempDir(), "parcel.jpg")
	if err := os.WriteFile(photo, testJPEG(t, 1200, 900), 0o644); err != nil {
		t.Fatal(err)
	}
	browsertest.Tap(t, drv, fmt.Sprintf(`#stop-%s [data-action="delivered"]`, id1))
	browsertest.Do(t, drv, 20*time.Second, "deliver T1",
		chromedp.WaitVisible(chromedp.CSS("#proof-signature")),
		chromedp.SetUploadFiles(chromedp.CSS("#proof-photo"), []string{photo}))
	browsertest.WaitJS(t, drv, 20*time.Second, "the photo preview", `(() => { const p = document.getElementById('proof-photo-preview'); return p && !p.hidden && p.naturalWidth > 0; })()`)
	browsertest.Eval[bool](t, drv, drawSignature("#proof-signature"))
	browsertest.Do(t, drv, 10*time.Second, "name", chromedp.SetValue(chromedp.CSS("#proof-name"), "Recipient T1"))
	browsertest.Shoot(t, drv, dir, "07-driver-proof.png")
	browsertest.Do(t, drv, 10*time.Second, "confirm T1", chromedp.Click(chromedp.CSS("#proof-confirm")))
	browsertest.WaitJS(t, drv, 60*time.Second, "the delivery sent", `document.getElementById('queue-count').dataset.count === '0'`)
	browsertest.WaitJS(t, track, 30*time.Second, "the proof on the tracking page",
		`(() => { const p = document.getElementById('proof-photo'); return !!p && p.complete && p.naturalWidth > 0; })()`)
	if !browsertest.Eval[bool](t, track, `(() => { const s = document.getElementById('proof-signature'); return !!s && s.complete && s.naturalWidth > 0; })()`) {
		t.Errorf("no signature on the delivered page")
	}
	if browsertest.Eval[bool](t, track, `!!document.querySelector('#map, .lm-van, #messages')`) {
		t.Errorf("the delivered page still shows the map or the thread")
	}
	browsertest.Shoot(t, track, dir, "08-tracking-delivered.png")
	var v struct {
		Events []struct {
			Type string
			Data json.RawMessage
		}
	}
	ds.mustCall(t, 200, "GET", "/v1/shipments/T1", f.disp, nil, &v)
	if last := v.Events[len(v.Events)-1]; last.Type != "delivered" || !strings.Contains(string(last.Data), `"photo":true`) ||
		!strings.Contains(string(last.Data), `"signature":true`) {
		t.Errorf("T1's delivered event: %s %s", last.Type, last.Data)
	}
	t.Logf("screenshots in %s", dir)
}

// shipmentID reads a shipment's row id.
func shipmentID(t *testing.T, ds *dispatchServer, tracking string) int64 {
	t.Helper()
	sh, err := ds.st.ShipmentByTracking(context.Background(), tracking)
	if err != nil {
		t.Fatal(err)
	}
	return sh.ID
}
