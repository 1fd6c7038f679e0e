package engine

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/lastmile/lastmile/engine/blob"
	"github.com/lastmile/lastmile/engine/dispatch"
	"github.com/lastmile/lastmile/engine/web"
)

// noRedirect is a client that shows redirects instead of following them.
var noRedirect = &http.Client{Timeout: 20 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error {
	return http.ErrUseLastResponse
}}

// trackFixture is a Monaco server with two shipments on van-1 (T2 first,
// then T1) out for delivery, and one (T3) on van-2.
type trackFixture struct {
	*dispatchServer
	disp, drv1   string
	tok1, tok2   string
	stop1, stop3 int64
	t0           int64
}

func newTrackFixture(t *testing.T, backend string) *trackFixture {
	t.Helper()
	ds := newDispatchServerWith(t, backend, func(c *ServerConfig) {
		c.Blobs = blob.NewMem()
		c.TrackRate = -1
		c.MaxBodyBytes = 16 << 20
	})
	f := &trackFixture{dispatchServer: ds}
	_, f.disp = ds.key(t, "dispatcher", "")
	_, f.drv1 = ds.key(t, "driver", "van-1")
	now := time.Now().Unix()
	f.t0 = now - 900
	ship := func(tracking, name string, loc [2]float64) string {
		var c struct {
			TrackingURL string `json:"tracking_url"`
		}
		ds.mustCall(t, 201, "POST", "/v1/shipments", f.disp, map[string]any{"tracking": tracking,
			"recipient": map[string]any{"name": name, "language": "en"}, "location": loc, "address": "Address of " + name,
			"time_window": []int64{now - 3600, now + 3*3600}, "time_zone": "Europe/Monaco", "service": 60}, &c)
		return strings.TrimPrefix(c.TrackingURL, "/track/")
	}
	f.tok1 = ship("T1", "Alice Recipient", monacoStops[0])
	f.tok2 = ship("T2", "Bob Neighbour", monacoStops[2])
	ship("T3", "Carol Elsewhere", monacoStops[1])
	vehicles := []any{map[string]any{"id": 1, "vehicle": "van-1", "start": monacoDepot, "end": monacoDepot},
		map[string]any{"id": 2, "vehicle": "van-2", "start": monacoDepot, "end": monacoDepot}}
	var plan struct {
		Routes []struct {
			Vehicle string
			Stops   []struct {
				ID       int64
				Tracking string
			}
		}
	}
	ds.mustCall(t, 201, "POST", "/v1/plans", f.disp, map[string]any{"vehicles": vehicles, "routes": []any{
		map[string]any{"vehicle": "van-1", "shipments": []string{"T2", "T1"}},
		map[string]any{"vehicle": "van-2", "shipments": []string{"T3"}}}}, &plan)
	for _, r := range plan.Routes {
		for _, s := range r.Stops {
			switch s.Tracking {
			case "T1":
				f.stop1 = s.ID
			case "T3":
				f.stop3 = s.ID
			}
		}
	}
	// van-1 leaves the depot: out for delivery, ETAs.
	f.ping(t, "van-1", f.t0, [2]float64{7.42150, 43.73350})
	return f
}

func (f *trackFixture) ping(t *testing.T, vehicle string, at int64, loc [2]float64) {
	t.Helper()
	f.mustCall(t, 200, "POST", "/v1/positions", f.disp, map[string]any{"positions": []any{
		map[string]any{"vehicle": vehicle, "time": at, "location": loc}}}, nil)
}

// get fetches a path without a key and returns status, body and headers.
func (f *trackFixture) get(t *testing.T, path string) (int, string, http.Header) {
	t.Helper()
	resp, err := noRedirect.Get(f.url + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

// postForm posts a form without a key.
func (f *trackFixture) postForm(t *testing.T, path string, v url.Values) (int, string, http.Header) {
	t.Helper()
	resp, err := noRedirect.PostForm(f.url+path, v)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

// holds reports whether s holds word as a whole token (not inside a
// random token or hash of base64url characters, where "T3" may occur by
// chance).
func holds(s, word string) bool {
	return regexp.MustCompile(`(^|[^A-Za-z0-9_-])` + regexp.QuoteMeta(word) + `([^A-Za-z0-9_-]|$)`).MatchString(s)
}

func TestTrackPage(t *testing.T) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			f := newTrackFixture(t, backend)
			code, page, h := f.get(t, "/track/"+f.tok1)
			if code != 200 {
				t.Fatalf("page: %d %s", code, clip([]byte(page), 300))
			}
			if h.Get("Content-Security-Policy") != web.CSP || h.Get("Referrer-Policy") != "no-referrer" {
				t.Errorf("headers: %v", h)
			}
			// Compressed when the browser accepts it, the same page.
			for _, enc := range []string{"gzip", "identity"} {
				req, _ := http.NewRequest("GET", f.url+"/track/"+f.tok1, nil)
				req.Header.Set("Accept-Encoding", enc)
				resp, err := noRedirect.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				raw, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				body := raw
				if got := resp.Header.Get("Content-Encoding"); enc == "gzip" {
					zr, err := gzip.NewReader(bytes.NewReader(raw))
					if got != "gzip" || err != nil {
						t.Fatalf("Accept-Encoding gzip: Content-Encoding %q (%v)", got, err)
					}
					if body, err = io.ReadAll(zr); err != nil {
						t.Fatal(err)
					}
					if len(raw)*2 > len(body) {
						t.Errorf("gzip: %d bytes for %d", len(raw), len(body))
					}
				} else if got != "" {
					t.Errorf("Accept-Encoding identity: Content-Encoding %q", got)
				}
				formID := regexp.MustCompile(`name="id" value="[^"]*"`)
				if a, b := formID.ReplaceAllString(string(body), ""), formID.ReplaceAllString(page, ""); a != b {
					t.Errorf("%s: the page differs (%d bytes, %d)", enc, len(a), len(b))
				}
				if !strings.Contains(resp.Header.Get("Vary"), "Accept-Encoding") {
					t.Errorf("%s: Vary %q", enc, resp.Header.Get("Vary"))
				}
			}
			// The first paint holds the state, the ETA window and the stops
			// before, as the API has them.
			var api struct {
				Status      string
				ETA         *struct{ Arrival, P10, P90 int64 }
				StopsBefore *int `json:"stops_before"`
			}
			f.mustCall(t, 200, "GET", "/v1/shipments/T1", f.disp, nil, &api)
			if api.ETA == nil || api.StopsBefore == nil || *api.StopsBefore != 1 {
				t.Fatalf("api: %+v", api)
			}
			loc, _ := time.LoadLocation("Europe/Monaco")
			for _, want := range []string{"Out for delivery", "1 stop before yours", "T1",
				time.Unix(api.ETA.P10-api.ETA.P10%300, 0).In(loc).Format("15:04")} {
				if !strings.Contains(page, want) {
					t.Errorf("page lacks %q", want)
				}
			}
			for _, leak := range []string{"Bob", "Neighbour", "T2", "Carol", "T3", "Address of Bob"} {
				if holds(page, leak) {
					t.Errorf("page shows another shipment's %q", leak)
				}
			}
			// Every request the page makes: nothing of another shipment.
			assets := regexp.MustCompile(`(?:src|href)="(/static/[^"]+)"`).FindAllStringSubmatch(page, -1)
			if len(assets) < 4 {
				t.Fatalf("page loads %d assets", len(assets))
			}
			paths := []string{"/track/" + f.tok1 + "/view.json"}
			for _, a := range assets {
				paths = append(paths, strings.ReplaceAll(a[1], "&amp;", "&"))
			}
			for _, p := range paths {
				code, body, _ := f.get(t, p)
				if code != 200 {
					t.Errorf("%s: %d", p, code)
				}
				for _, leak := range []string{"Bob", "T2", "Carol", "T3", f.tok2} {
					if holds(body, leak) {
						t.Errorf("%s holds another shipment's %q", p, leak)
					}
				}
			}
			var upd web.LiveUpdate
			_, body, _ := f.get(t, "/track/"+f.tok1+"/view.json")
			if err := json.Unmarshal([]byte(body), &upd); err != nil {
				t.Fatal(err)
			}
			if upd.View.ETA == nil || (dispatch.ETA{Arrival: api.ETA.Arrival, P10: api.ETA.P10, P90: api.ETA.P90}) != *upd.View.ETA || *upd.View.StopsBefore != 1 {
				t.Errorf("view %+v differs from the API %+v", upd.View, api)
			}
			if upd.View.Van == nil {
				t.Errorf("the van is 1 stop away but not shown")
			}
			// The same 404 for unknown, malformed and revoked links.
			_, notFound, _ := f.get(t, "/track/AAAAAAAAAAAAAAAAAAAAAA")
			var rotated struct {
				TrackingURL string `json:"tracking_url"`
			}
			f.mustCall(t, 201, "POST", "/v1/shipments/T2/link", f.disp, nil, &rotated)
			for _, p := range []string{"/track/AAAAAAAAAAAAAAAAAAAAAA", "/track/short", "/track/" + strings.Repeat("x", 200),
				"/track/" + f.tok2, "/track/%3Cscript%3E"} {
				code, body, _ := f.get(t, p)
				if code != 404 || body != notFound {
					t.Errorf("%s: %d, body differs: %v", p, code, body != notFound)
				}
			}
			if code, _, _ := f.get(t, rotated.TrackingURL); code != 200 {
				t.Errorf("the new link: %d", code)
			}
			// Text from users is inert.
			evil := `<script>alert(1)</script> <a href="javascript:alert(2)">x</a>`
			code, _, h = f.postForm(t, "/track/"+f.tok1+"/instructions", url.Values{"instructions": {evil}})
			if code != 303 || !strings.HasSuffix(h.Get("Location"), "?done=instructions") {
				t.Fatalf("instructions: %d %v", code, h)
			}
			for i := 0; i < 2; i++ { // the same form twice: one message
				if code, body, _ := f.postForm(t, "/track/"+f.tok1+"/messages", url.Values{"text": {evil}, "id": {"form-1"}}); code != 303 {
					t.Fatalf("message: %d %s", code, body)
				}
			}
			_, page, _ = f.get(t, "/track/"+f.tok1+"?done=message")
			if strings.Contains(page, "<script>alert") || strings.Contains(page, `href="javascript:`) {
				t.Errorf("user text became markup")
			}
			if strings.Count(page, "&lt;script&gt;alert(1)&lt;/script&gt;") != 2 {
				t.Errorf("want the text twice, escaped (instructions, one message): %d", strings.Count(page, "&lt;script&gt;alert(1)&lt;/script&gt;"))
			}
			if !strings.Contains(page, "Your message was sent.") {
				t.Errorf("no notice")
			}
			// Bad input: clear errors.
			if code, body, _ := f.postForm(t, "/track/"+f.tok1+"/instructions", url.Values{"instructions": {strings.Repeat("x", 600)}}); code != 400 || !strings.Contains(body, "at most 500") {
				t.Errorf("long instructions: %d", code)
			}
			if code, _, _ := f.postForm(t, "/track/"+f.tok1+"/window", url.Values{"window": {"1-2"}}); code != 400 {
				t.Errorf("window off offer: %d", code)
			}
			if code, _, _ := f.postForm(t, "/track/"+f.tok1+"/rating", url.Values{"stars": {"5"}}); code != 400 {
				t.Errorf("rating before delivery: %d", code)
			}
			// Another window on offer: answered at once.
			if len(upd.View.Offers) == 0 {
				t.Fatal("no windows on offer")
			}
			o := upd.View.Offers[len(upd.View.Offers)-1]
			if code, body, _ := f.postForm(t, "/track/"+f.tok1+"/window", url.Values{"window": {fmt.Sprintf("%d-%d", o[0], o[1])}}); code != 303 {
				t.Fatalf("window: %d %s", code, body)
			}
			_, body, _ = f.get(t, "/track/"+f.tok1+"/view.json")
			json.Unmarshal([]byte(body), &upd)
			if upd.View.WindowRequest == nil || upd.View.WindowRequest.TimeWindow != o {
				t.Errorf("window answer: %+v", upd.View.WindowRequest)
			}
		})
	}
}

// testJPEG returns a w x h JPEG.
func testJPEG(t *testing.T, w, h int) []byte {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			img.Set(x, y, color.RGBA{uint8(x), uint8(y), 128, 255})
		}
	}
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, nil); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func testPNG(t *testing.T, w, h int) []byte {
	img := image.NewGray(image.Rect(0, 0, w, h))
	for x := 0; x < w; x++ {
		img.SetGray(x, h/2, color.Gray{255})
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// multipartBody builds a proof upload.
func multipartBody(t *testing.T, files map[string][]byte, fields map[string]string) (string, []byte) {
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	for k, v := range fields {
		mw.WriteField(k, v)
	}
	for k, v := range files {
		w, err := mw.CreateFormFile(k, k+".bin")
		if err != nil {
			t.Fatal(err)
		}
		w.Write(v)
	}
	mw.Close()
	return mw.FormDataContentType(), b.Bytes()
}

// session signs the driver app in and returns its cookie and CSRF token.
func (f *trackFixture) session(t *testing.T, key string) (*http.Cookie, string) {
	t.Helper()
	code, _, h := f.postForm(t, "/driver/session", url.Values{"key": {key}})
	if code != 303 {
		t.Fatalf("sign-in: %d", code)
	}
	resp := http.Response{Header: h}
	var c *http.Cookie
	for _, ck := range resp.Cookies() {
		if ck.Name == sessionCookie {
			c = ck
		}
	}
	if c == nil || !c.HttpOnly || !c.Secure || c.SameSite != http.SameSiteStrictMode {
		t.Fatalf("session cookie %+v", c)
	}
	req, _ := http.NewRequest("GET", f.url+"/driver", nil)
	req.AddCookie(c)
	r, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	b, _ := io.ReadAll(r.Body)
	m := regexp.MustCompile(`name="csrf-token" content="([^"]+)"`).FindSubmatch(b)
	if m == nil {
		t.Fatalf("no csrf token in the app: %s", clip(b, 300))
	}
	return c, string(m[1])
}

// as sends a request with the session cookie (and CSRF token when not
// empty).
func (f *trackFixture) as(t *testing.T, c *http.Cookie, csrf, method, path, ctype string, body []byte, idem string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, f.url+path, bytes.NewReader(body))
	req.AddCookie(c)
	if csrf != "" {
		req.Header.Set("X-CSRF-Token", csrf)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if idem != "" {
		req.Header.Set("Idempotency-Key", idem)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestDriverAppAndProof(t *testing.T) {
	f := newTrackFixture(t, "sqlite")
	if code, _, _ := f.postForm(t, "/driver/session", url.Values{"key": {f.disp}}); code != 401 {
		t.Errorf("a dispatcher key signs the driver app in: %d", code)
	}
	c, csrf := f.session(t, f.drv1)
	stop := fmt.Sprint(f.stop1)
	// The day's route, with the recipient's instructions for this driver.
	code, body := f.as(t, c, "", "GET", "/v1/driver/route", "", nil, "")
	if code != 200 || !strings.Contains(body, "Alice Recipient") || strings.Contains(body, "Carol") {
		t.Fatalf("route: %d %s", code, clip([]byte(body), 300))
	}
	status := []byte(`{"status":"arrived"}`)
	if code, _ := f.as(t, c, "", "POST", "/v1/stops/"+stop+"/status", "application/json", status, ""); code != 403 {
		t.Errorf("a change without the CSRF token: %d", code)
	}
	if code, _ := f.as(t, c, "wrong", "POST", "/v1/stops/"+stop+"/status", "application/json", status, ""); code != 403 {
		t.Errorf("a change with a wrong CSRF token: %d", code)
	}
	if code, _ := f.as(t, c, csrf, "POST", fmt.Sprintf("/v1/stops/%d/status", f.stop3), "application/json", status, ""); code != 403 {
		t.Errorf("another van's stop: %d", code)
	}
	// Messages both ways.
	if code, b := f.as(t, c, csrf, "POST", "/v1/stops/"+stop+"/messages", "application/json", []byte(`{"text":"At the gate in 5 min"}`), "m1"); code != 201 {
		t.Fatalf("driver message: %d %s", code, b)
	}
	if code, _ := f.as(t, c, csrf, "POST", "/v1/stops/"+stop+"/messages", "application/json", []byte(`{"text":"At the gate in 5 min"}`), "m1"); code != 200 {
		t.Errorf("the same message again: %d", code)
	}
	_, page, _ := f.get(t, "/track/"+f.tok1)
	if strings.Count(page, "At the gate in 5 min") != 1 {
		t.Errorf("the driver's message on the page: %d times", strings.Count(page, "At the gate in 5 min"))
	}
	// Proof of delivery: bad uploads are refused whole.
	photo, sig := testJPEG(t, 640, 480), testPNG(t, 300, 100)
	cases := []struct {
		name  string
		files map[string][]byte
		idem  string
		want  int
	}{
		{"no image", nil, "p0", 400},
		{"html as photo", map[string][]byte{"photo": []byte("<html><script>alert(1)</script></html>")}, "p1", 415},
		{"corrupt jpeg", map[string][]byte{"photo": photo[:len(photo)/2]}, "p2", 400},
		{"oversized", map[string][]byte{"photo": append(bytes.Clone(photo), make([]byte, 9<<20)...)}, "p3", 413},
		{"good photo, corrupt signature", map[string][]byte{"photo": photo, "signature": sig[:40]}, "p4", 400},
		{"no idempotency key", map[string][]byte{"photo": photo}, "", 400},
	}
	for _, tc := range cases {
		ct, b := multipartBody(t, tc.files, map[string]string{"name": "Alice", "lon": "7.42416", "lat": "43.73692"})
		if code, body := f.as(t, c, csrf, "POST", "/v1/stops/"+stop+"/pod", ct, b, tc.idem); code != tc.want {
			t.Errorf("%s: %d, want %d: %s", tc.name, code, tc.want, body)
		}
	}
	ct, b := multipartBody(t, map[string][]byte{"photo": photo, "signature": sig},
		map[string]string{"name": "Alice R.", "lon": "7.43500", "lat": "43.74500", "accuracy": "12"})
	code, body = f.as(t, c, csrf, "POST", "/v1/stops/"+stop+"/pod", ct, b, "pod-1")
	if code != 201 {
		t.Fatalf("proof: %d %s", code, body)
	}
	var pv struct {
		ID         int64
		Photo, Sig string
		Far        bool
		Distance   float64
	}
	json.Unmarshal([]byte(body), &pv)
	if !pv.Far || pv.Distance < 500 {
		t.Errorf("a geotag %.0f m away is not flagged: %s", pv.Distance, body)
	}
	if code, again := f.as(t, c, csrf, "POST", "/v1/stops/"+stop+"/pod", ct, b, "pod-1"); code != 200 || !strings.Contains(again, fmt.Sprintf(`"id":%d`, pv.ID)) {
		t.Errorf("replayed upload: %d %s", code, again)
	}
	if pods, err := f.st.ShipmentPods(t.Context(), 1); err != nil || len(pods) != 1 {
		t.Errorf("%d proofs stored, want 1 (%v)", len(pods), err)
	}
	// Delivered: the event says a proof was taken far from the stop.
	if code, b := f.as(t, c, csrf, "POST", "/v1/stops/"+stop+"/status", "application/json", []byte(`{"status":"delivered"}`), "s1"); code != 200 {
		t.Fatalf("delivered: %d %s", code, b)
	}
	var sv struct {
		Events []struct {
			Type string
			Data json.RawMessage
		}
	}
	f.mustCall(t, 200, "GET", "/v1/shipments/T1", f.disp, nil, &sv)
	last := sv.Events[len(sv.Events)-1]
	if last.Type != "delivered" || !strings.Contains(string(last.Data), `"far":true`) || !strings.Contains(string(last.Data), `"photo":true`) {
		t.Errorf("delivered event: %s %s", last.Type, last.Data)
	}
	// The page shows the proof and nothing but the delivered state.
	_, page, _ = f.get(t, "/track/"+f.tok1)
	m := regexp.MustCompile(`id="proof-photo" class="proof-photo" src="([^"]+)"`).FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no proof photo on the page")
	}
	if strings.Contains(page, "At the gate") || strings.Contains(page, "Out for delivery") {
		t.Errorf("the delivered page shows more than the delivered state")
	}
	src := strings.ReplaceAll(m[1], "&amp;", "&")
	code, img, h := f.get(t, src)
	if code != 200 || h.Get("Content-Type") != "image/jpeg" || !bytes.HasPrefix([]byte(img), []byte{0xFF, 0xD8}) {
		t.Errorf("proof image: %d %s", code, h.Get("Content-Type"))
	}
	if code, _, _ := f.get(t, src[:len(src)-3]+"AAA"); code != 404 {
		t.Errorf("tampered proof link: %d", code)
	}
	if code, _, _ := f.get(t, strings.Replace(src, f.tok1, f.tok2, 1)); code != 404 {
		t.Errorf("proof link under another shipment's token: %d", code)
	}
	if code, body, _ := f.postForm(t, "/track/"+f.tok1+"/rating", url.Values{"stars": {"4"}, "comment": {"<b>fine</b>"}}); code != 303 {
		t.Errorf("rating: %d %s", code, body)
	}
	_, page, _ = f.get(t, "/track/"+f.tok1)
	if !strings.Contains(page, "Thank you for your rating: 4 of 5.") {
		t.Errorf("rating not shown")
	}
}

func TestTiles(t *testing.T) {
	f := newTrackFixture(t, "sqlite")
	// A server with tracking pages seeds the tile cache with the whole
	// extent at start, before any tile request.
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, m, _ := f.get(t, "/metrics")
		if strings.Contains(m, "\nlastmile_tiles_seeded 1\n") {
			if c := f.tiler.current().CacheStats(); c.Entries < 40 {
				t.Errorf("seeded, with %d tiles cached", c.Entries)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the tile cache not seeded within 30 s: %s", m[strings.Index(m, "# HELP lastmile_tiles"):])
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The tile of z14 over Monaco's centre, from the cache.
	before0 := f.tiler.current().CacheStats()
	code, body, h := f.get(t, "/tiles/14/8529/5974.mvt")
	if code != 200 || h.Get("Content-Type") != "application/vnd.mapbox-vector-tile" || len(body) < 100 {
		t.Fatalf("tile: %d %s %d bytes", code, h.Get("Content-Type"), len(body))
	}
	if c := f.tiler.current().CacheStats(); c.Hits != before0.Hits+1 || c.Misses != before0.Misses {
		t.Errorf("the first tile: %d hits, %d misses; want it from the cache", c.Hits-before0.Hits, c.Misses-before0.Misses)
	}
	for _, p := range []string{"/tiles/40/1/1.mvt", "/tiles/14/8529/5974.png", "/tiles/a/b/c.mvt"} {
		if code, _, _ := f.get(t, p); code != 404 {
			t.Errorf("%s: %d", p, code)
		}
	}
	// Live traffic swaps the routing graph for a new customization of the
	// same roads about every second: the basemap and its cache stay.
	tiler := f.tiler.t
	before := f.R.Current()
	for f.R.Current() == before {
		var tr TrafficResponse
		f.mustCall(t, 200, "POST", "/v1/traffic?wait=true", f.disp, map[string]any{"observations": []any{map[string]any{"edge": 0, "speed": 3}}}, &tr)
		if !tr.Applied {
			t.Fatalf("traffic not applied: %+v", tr)
		}
	}
	if code, again, _ := f.get(t, "/tiles/14/8529/5974.mvt"); code != 200 || again != body {
		t.Fatalf("the tile after a new customization: %d, %d bytes (before: %d)", code, len(again), len(body))
	}
	if f.tiler.t != tiler {
		t.Error("a new customization of the graph rebuilt the tiler")
	}
}
