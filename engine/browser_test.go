package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/lastmile/lastmile/engine/blob"
)

// chromiumPath is Debian's Chromium, which .ci/run installs.
const chromiumPath = "/usr/bin/chromium"

// newBrowser starts a headless Chromium for the test, or skips when it is
// not installed (fails when LASTMILE_TEST_BROWSER_REQUIRED is set, as in
// CI). Each tab is a context made from the returned one.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		if os.Getenv("LASTMILE_TEST_BROWSER_REQUIRED") != "" {
			t.Fatalf("chromium is required (LASTMILE_TEST_BROWSER_REQUIRED) but %s is missing", chromiumPath)
		}
		t.Skipf("no browser: %s is missing (apt-get install chromium)", chromiumPath)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromiumPath), chromedp.NoSandbox,
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-component-update", true), chromedp.WindowSize(390, 844))
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancel)
	bctx, bcancel := chromedp.NewContext(actx)
	t.Cleanup(bcancel)
	if err := chromedp.Do(bctx); err != nil { // starts the browser
		t.Fatalf("start chromium: %v", err)
	}
	return bctx
}

// newTab opens a phone-sized tab (390x844 CSS pixels at 2x, touch).
func newTab(t *testing.T, browser context.Context) context.Context {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browser)
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2), chromedp.EmulateMobile)); err != nil {
		t.Fatal(err)
	}
	return ctx
}

// artefacts is where screenshots go: $LASTMILE_ARTIFACTS/browser, or a
// temporary folder.
func artefacts(t *testing.T) string {
	dir := os.Getenv("LASTMILE_ARTIFACTS")
	if dir == "" {
		dir = t.TempDir()
	}
	dir = filepath.Join(dir, "browser")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// shoot saves a screenshot of the tab.
func shoot(t *testing.T, ctx context.Context, dir, name string) {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	b, err := chromedp.Run(c, chromedp.FullScreenshot(100)) // 100: PNG
	if err != nil {
		// The whole page did not come; the viewport then.
		c2, cancel2 := context.WithTimeout(ctx, 15*time.Second)
		defer cancel2()
		if b, err = chromedp.Run(c2, chromedp.CaptureScreenshot()); err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// do runs steps within d.
func do(t *testing.T, ctx context.Context, d time.Duration, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	if err := chromedp.Do(c, steps...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// eval evaluates a JS expression in the tab.
func eval[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	v, err := chromedp.Run(c, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("eval %s: %v", expr, err)
	}
	return v
}

// waitJS waits until a JS expression is truthy.
func waitJS(t *testing.T, ctx context.Context, d time.Duration, what, expr string) {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var err error
	for {
		// A page that reloads itself (the tracking page on a new state)
		// ends a poll: poll again on the new page.
		_, err = chromedp.Run(c, chromedp.Poll[bool](expr, chromedp.WithPollingInterval(100*time.Millisecond)))
		if err == nil || c.Err() != nil || !strings.Contains(err.Error(), "navigated") {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err != nil {
		if b, err := chromedp.Run(ctx, chromedp.CaptureScreenshot()); err == nil {
			name := "failed-" + strings.Map(func(r rune) rune {
				if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
					return r
				}
				return '-'
			}, what) + ".png"
			os.WriteFile(filepath.Join(artefacts(t), name), b, 0o644)
		}
		t.Fatalf("waiting for %s (%s): %v", what, expr, err)
	}
}

// mapDrawn checks a screenshot of the map: roads drawn over the
// background (many pixels far from the land colour, and several colours).
func mapDrawn(t *testing.T, shot []byte) (roads float64, colours int) {
	img, err := png.Decode(bytes.NewReader(shot))
	if err != nil {
		t.Fatal(err)
	}
	b := img.Bounds()
	seen := map[uint32]bool{}
	n, far := 0, 0
	for y := b.Min.Y; y < b.Max.Y; y += 2 {
		for x := b.Min.X; x < b.Max.X; x += 2 {
			r, g, bl, _ := img.At(x, y).RGBA()
			r, g, bl = r>>8, g>>8, bl>>8
			seen[r>>4<<8|g>>4<<4|bl>>4] = true
			n++
			// The land is #f2efe9.
			if d := absDiff(r, 0xf2) + absDiff(g, 0xef) + absDiff(bl, 0xe9); d > 24 {
				far++
			}
		}
	}
	return float64(far) / float64(n), len(seen)
}

func absDiff(a, b uint32) uint32 {
	if a > b {
		return a - b
	}
	return b - a
}

// elementShot screenshots one element.
func elementShot(t *testing.T, ctx context.Context, sel string) []byte {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	b, err := chromedp.Run(c, chromedp.Screenshot(chromedp.CSS(sel)))
	if err != nil {
		t.Fatalf("screenshot of %s: %v", sel, err)
	}
	return b
}

// setOffline turns the tab's network off or on (the page sees
// navigator.onLine and its online/offline events too).
func setOffline(t *testing.T, ctx context.Context, off bool) {
	t.Helper()
	err := chromedp.Do(ctx, chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
		if _, err := chromedp.Call(ctx, network.Enable, network.EnableParams{}); err != nil {
			return err
		}
		yes := true
		if _, err := chromedp.Call(ctx, network.EmulateNetworkConditionsByRule, network.EmulateNetworkConditionsByRuleParams{
			EmulateOfflineServiceWorker: &yes,
			MatchedNetworkConditions:    []*network.Conditions{{Offline: off, DownloadThroughput: -1, UploadThroughput: -1}}}); err != nil {
			return err
		}
		_, err := chromedp.Call(ctx, network.OverrideNetworkState, network.OverrideNetworkStateParams{Offline: off, DownloadThroughput: -1, UploadThroughput: -1})
		return err
	}))
	if err != nil {
		t.Fatalf("offline %v: %v", off, err)
	}
}

// tap clicks an element through the page (the element may sit in a
// collapsed list, as a finger would reach it after opening it).
func tap(t *testing.T, ctx context.Context, sel string) {
	t.Helper()
	if !eval[bool](t, ctx, fmt.Sprintf(`(() => { const e = document.querySelector(%q); if (!e) return false; e.click(); return true; })()`, sel)) {
		t.Fatalf("no %s to tap", sel)
	}
}

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
	browser := newBrowser(t)
	dir := artefacts(t)
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
	track := newTab(t, browser)
	do(t, track, 30*time.Second, "open the tracking page", chromedp.Navigate(ds.url+toks["T1"]), chromedp.WaitVisible(chromedp.CSS("#headline")))
	waitJS(t, track, 20*time.Second, "the van on the map", `!!document.querySelector('.lm-van') && !document.getElementById('live').hidden`)
	waitJS(t, track, 20*time.Second, "map tiles drawn", `document.querySelectorAll('#map canvas').length >= 4`)
	time.Sleep(500 * time.Millisecond)
	shoot(t, track, dir, "01-tracking-page.png")
	roads, colours := mapDrawn(t, elementShot(t, track, "#map"))
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
	detail := eval[string](t, track, `document.getElementById('detail').textContent`)
	stopsText := eval[string](t, track, `document.getElementById('stops').textContent`)
	if detail != fmt.Sprintf("Arriving between %s and %s", lo, hi) {
		t.Errorf("page ETA %q, API says %s-%s", detail, lo, hi)
	}
	if stopsText != fmt.Sprintf("%d stops before yours", api.StopsBefore) {
		t.Errorf("page stops %q, API says %d", stopsText, api.StopsBefore)
	}
	// The van moves between two updates.
	before := eval[[]float64](t, track, `(() => { const r = document.querySelector('.lm-van').getBoundingClientRect(); return [r.x, r.y]; })()`)
	f.ping(t, "van-1", now-590, [2]float64{7.42230, 43.73420})
	waitJS(t, track, 15*time.Second, "the van to move",
		fmt.Sprintf(`(() => { const r = document.querySelector('.lm-van').getBoundingClientRect(); return Math.hypot(r.x - %f, r.y - %f) > 5; })()`, before[0], before[1]))
	time.Sleep(1500 * time.Millisecond) // the animation ends
	shoot(t, track, dir, "02-van-moved.png")

	// The recipient leaves an instruction and a message; text stays text.
	evil := `<script>window.pwned=1</script> leave with neighbour at no. 12`
	do(t, track, 20*time.Second, "instruction",
		chromedp.SetValue(chromedp.CSS("#instructions-text"), evil),
		chromedp.Click(chromedp.CSS("#instructions-save")),
		chromedp.WaitVisible(chromedp.CSS(".notice")))
	do(t, track, 20*time.Second, "message",
		chromedp.SetValue(chromedp.CSS("#message-text"), `Ring twice <a href="javascript:alert(1)">please</a>`),
		chromedp.Click(chromedp.CSS("#message-send")),
		chromedp.WaitVisible(chromedp.CSS(".notice")))
	shoot(t, track, dir, "03-instruction-and-message.png")
	if eval[bool](t, track, `!!window.pwned || document.querySelectorAll('#messages a, .page script:not([src])').length > 0`) {
		t.Errorf("user text became markup on the page")
	}

	// The driver's app: sign in, see the instruction and the message.
	drv := newTab(t, browser)
	do(t, drv, 30*time.Second, "sign in",
		chromedp.Navigate(ds.url+"/driver"),
		chromedp.WaitVisible(chromedp.CSS("#key")),
		chromedp.SetValue(chromedp.CSS("#key"), f.drv1),
		chromedp.Click(chromedp.CSS("#signin")),
		chromedp.WaitVisible(chromedp.CSS("#app")))
	waitJS(t, drv, 20*time.Second, "the service worker", `navigator.serviceWorker.getRegistration('/driver').then(r => !!(r && r.active))`)
	id1 := fmt.Sprint(stops["T1"])
	instr := eval[string](t, drv, fmt.Sprintf(`document.querySelector('#stop-%s .stop-instructions-text').textContent`, id1))
	if !strings.Contains(instr, "<script>window.pwned=1</script> leave with neighbour") {
		t.Errorf("driver sees instructions %q", instr)
	}
	tap(t, drv, fmt.Sprintf(`#stop-%s [data-action="messages"]`, id1))
	waitJS(t, drv, 20*time.Second, "the recipient's message", `[...document.querySelectorAll('#thread-list .msg-recipient .msg-text')].some(e => e.textContent.includes('Ring twice <a href='))`)
	do(t, drv, 20*time.Second, "reply",
		chromedp.SetValue(chromedp.CSS("#thread-input"), "I'll ring twice"),
		chromedp.Click(chromedp.CSS("#thread-send")))
	shoot(t, drv, dir, "04-driver-thread.png")
	do(t, drv, 10*time.Second, "close the thread", chromedp.Click(chromedp.CSS("#thread-close")))
	waitJS(t, track, 20*time.Second, "the driver's reply on the page", `[...document.querySelectorAll('#messages .text')].some(e => e.textContent === "I'll ring twice")`)
	if eval[bool](t, drv, `!!window.pwned`) {
		t.Errorf("user text ran as script in the driver's app")
	}
	shoot(t, drv, dir, "05-driver-stops.png")

	// Offline: two deliveries with signatures, then back online: each
	// reaches the server once.
	setOffline(t, drv, true)
	waitJS(t, drv, 10*time.Second, "offline banner", `document.getElementById('conn-banner').dataset.state === 'offline'`)
	for _, trk := range []string{"T2", "T4"} {
		id := fmt.Sprint(stops[trk])
		tap(t, drv, fmt.Sprintf(`#stop-%s [data-action="delivered"]`, id))
		do(t, drv, 20*time.Second, "deliver "+trk+" offline", chromedp.WaitVisible(chromedp.CSS("#proof-signature")))
		eval[bool](t, drv, drawSignature("#proof-signature"))
		do(t, drv, 20*time.Second, "confirm "+trk,
			chromedp.SetValue(chromedp.CSS("#proof-name"), "Neighbour of "+trk),
			chromedp.Click(chromedp.CSS("#proof-confirm")))
		waitJS(t, drv, 10*time.Second, "the proof panel to close", `!document.getElementById('proof').open`)
	}
	waitJS(t, drv, 10*time.Second, "4 actions queued", `document.getElementById('queue-count').dataset.count === '4'`)
	shoot(t, drv, dir, "06-driver-offline.png")
	for _, trk := range []string{"T2", "T4"} {
		var v struct{ Status string }
		ds.mustCall(t, 200, "GET", "/v1/shipments/"+trk, f.disp, nil, &v)
		if v.Status == "delivered" {
			t.Fatalf("%s delivered while the phone was offline", trk)
		}
	}
	setOffline(t, drv, false)
	waitJS(t, drv, 60*time.Second, "the queue to drain", `document.getElementById('queue-count').dataset.count === '0'`)
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
	tap(t, drv, fmt.Sprintf(`#stop-%s [data-action="delivered"]`, id1))
	do(t, drv, 20*time.Second, "deliver T1",
		chromedp.WaitVisible(chromedp.CSS("#proof-signature")),
		chromedp.SetUploadFiles(chromedp.CSS("#proof-photo"), []string{photo}))
	waitJS(t, drv, 20*time.Second, "the photo preview", `(() => { const p = document.getElementById('proof-photo-preview'); return p && !p.hidden && p.naturalWidth > 0; })()`)
	eval[bool](t, drv, drawSignature("#proof-signature"))
	do(t, drv, 10*time.Second, "name", chromedp.SetValue(chromedp.CSS("#proof-name"), "Recipient T1"))
	shoot(t, drv, dir, "07-driver-proof.png")
	do(t, drv, 10*time.Second, "confirm T1", chromedp.Click(chromedp.CSS("#proof-confirm")))
	waitJS(t, drv, 60*time.Second, "the delivery sent", `document.getElementById('queue-count').dataset.count === '0'`)
	waitJS(t, track, 30*time.Second, "the proof on the tracking page",
		`(() => { const p = document.getElementById('proof-photo'); return !!p && p.complete && p.naturalWidth > 0; })()`)
	if !eval[bool](t, track, `(() => { const s = document.getElementById('proof-signature'); return !!s && s.complete && s.naturalWidth > 0; })()`) {
		t.Errorf("no signature on the delivered page")
	}
	if eval[bool](t, track, `!!document.querySelector('#map, .lm-van, #messages')`) {
		t.Errorf("the delivered page still shows the map or the thread")
	}
	shoot(t, track, dir, "08-tracking-delivered.png")
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
