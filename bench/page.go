package bench

// The tracking page's first view in headless Chromium (lastmile bench
// page): cold loads of /track/{token} for a shipment out for delivery
// with its van on the map, on an emulated phone with and without CPU and
// network throttling, timed from navigation start (paints, DOM events,
// the map's tiles drawn, the live stream's first update) and weighed in
// bytes on the wire per kind of request.

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/performance"
	"github.com/chromedp/chromedp"

	"github.com/lastmile/lastmile/engine"
	"github.com/lastmile/lastmile/graph"
	"github.com/lastmile/lastmile/internal/devtools"
)

// DefaultChromium is Debian's Chromium.
const DefaultChromium = "/usr/bin/chromium"

// Targets of the tracking page (issue): first render under 1 s and the
// first view under 500 kB on the wire, on the throttled phone profile.
const (
	PageRenderTarget = time.Second
	PageBytesTarget  = 500_000
)

// PageProfile is an emulated device and network.
type PageProfile struct {
	Name          string
	Width, Height int64   // viewport, CSS pixels
	DPR           float64 // device pixel ratio
	CPU           float64 // CPU slowdown (Emulation.setCPUThrottlingRate); <= 1: none
	// Latency (added to every request, as DevTools throttling does),
	// Down and Up (bytes/s); all zero: no network throttling.
	Latency  time.Duration
	Down, Up float64
}

// Throttled reports whether the profile throttles the network.
func (p PageProfile) Throttled() bool { return p.Latency > 0 || p.Down > 0 || p.Up > 0 }

// String describes the profile in one line.
func (p PageProfile) String() string {
	s := fmt.Sprintf("%dx%d @%gx", p.Width, p.Height, p.DPR)
	if p.CPU > 1 {
		s += fmt.Sprintf(", CPU %gx slower", p.CPU)
	} else {
		s += ", CPU unthrottled"
	}
	if p.Throttled() {
		s += fmt.Sprintf(", network %v RTT, %.2f Mbit/s down, %.0f kbit/s up", p.Latency, p.Down*8/1e6, p.Up*8/1e3)
	} else {
		s += ", network unthrottled (loopback)"
	}
	return s
}

// PhoneSlow4G is a mid-range phone as Lighthouse's mobile preset models
// it: 4x CPU slowdown, "Slow 4G" (150 ms RTT, 1.6 Mbit/s down, 750 kbit/s
// up), here on a 390x844 viewport at 3x.
var PhoneSlow4G = PageProfile{Name: "phone-slow4g", Width: 390, Height: 844, DPR: 3, CPU: 4,
	Latency: 150 * time.Millisecond, Down: 1.6e6 / 8, Up: 750e3 / 8}

// PhoneUnthrottled is the same viewport without CPU or network throttling.
var PhoneUnthrottled = PageProfile{Name: "phone-unthrottled", Width: 390, Height: 844, DPR: 3, CPU: 1}

// PageConfig configures Page.
type PageConfig struct {
	Graph    *graph.Graph
	Runs     int           // cold loads per profile (default 10)
	Profiles []PageProfile // default PhoneSlow4G, PhoneUnthrottled
	Chromium string        // default DefaultChromium
	Timeout  time.Duration // bound of one load (default 60 s)
	// Quiet is how long the network must be idle (the live stream aside)
	// after the map is drawn for the first view to end (default 500 ms).
	Quiet time.Duration
	// Artifacts, when set, receives a screenshot of each profile's last
	// load.
	Artifacts string
	Logger    *slog.Logger
}

// PageRequest is one request of a load.
type PageRequest struct {
	URL    string  `json:"url"` // the tracking token replaced by {token}
	Kind   string  `json:"kind"`
	Status int64   `json:"status"`
	Start  float64 `json:"start_ms"` // from the document's request
	End    float64 `json:"end_ms"`   // 0: still open
	Bytes  int64   `json:"bytes"`    // on the wire: headers and (compressed) body
	Failed string  `json:"failed,omitempty"`
}

// PageLoad is one cold load. Times are milliseconds from navigation
// start; 0 when the event did not happen.
type PageLoad struct {
	FP, FCP, LCP  float64
	DCL, Load     float64 // domContentLoadedEventEnd, loadEventEnd
	Tiles4        float64 // >= 4 map tiles drawn into their canvases
	MapDone       float64 // every tile of the map drawn (the last time it became so)
	Live          float64 // the live stream's first update shown (#live un-hidden)
	End           float64 // the first view's end: map done, live, network quiet
	Bytes         int64
	BytesByKind   map[string]int64
	Requests      int
	RequestsKind  map[string]int
	TilesByZoom   map[int]int
	Hosts         map[string]int
	ScriptMS      float64 // Performance.getMetrics: ScriptDuration
	TaskMS        float64 // TaskDuration (main thread busy)
	LayoutMS      float64 // LayoutDuration + RecalcStyleDuration
	HeapMB        float64 // JSHeapUsedSize
	Waterfall     []PageRequest
	TimedOut      bool
	CanvasesFinal int
}

// PageProfileResult is the loads of one profile.
type PageProfileResult struct {
	Profile PageProfile
	Loads   []PageLoad
}

// PageResult is the outcome of Page.
type PageResult struct {
	Chromium  string
	Stop, Van [2]float64 // the tracked stop and the van, [lon, lat]
	WarmUp    time.Duration
	Profiles  []PageProfileResult
	Total     time.Duration
	// LoadAvg is the 1-minute load average at the start and the end (the
	// machine may be shared: Chromium, the server and others' work).
	LoadAvg [2]float64
}

// pageSpot is where the bench puts its depot, stops and van.
type pageSpot struct {
	name     string
	depot    [2]float64
	stops    [][2]float64 // stops[0] is the tracked one, first on the route
	van      [2]float64
	timeZone string
	box      [4]float64 // the centre, for the tile measures
}

// Known places: Porto's centre (the van about 1 km from the stop, a city
// view) and Monaco's (as in engine/browser_test.go).
var pageSpots = []pageSpot{
	{name: "porto", depot: [2]float64{-8.6400, 41.1650},
		stops:    [][2]float64{{-8.6063, 41.1480}, {-8.6000, 41.1450}, {-8.5950, 41.1500}},
		van:      [2]float64{-8.6145, 41.1560},
		timeZone: "Europe/Lisbon", box: PagePortoCentre},
	{name: "monaco", depot: [2]float64{7.41993, 43.73141},
		stops:    [][2]float64{{7.42416, 43.73692}, {7.41520, 43.72790}, {7.42810, 43.74050}},
		van:      [2]float64{7.42150, 43.73350},
		timeZone: "Europe/Monaco", box: [4]float64{7.405, 43.725, 7.440, 43.750}},
}

// pageSpotFor picks the known place inside the graph's bounds.
func pageSpotFor(g *graph.Graph) (pageSpot, error) {
	n := g.Road
	if n == nil || len(n.Lat) == 0 {
		return pageSpot{}, errors.New("bench: page: the graph has no road nodes")
	}
	lo := [2]float64{math.Inf(1), math.Inf(1)}
	hi := [2]float64{math.Inf(-1), math.Inf(-1)}
	for i := range n.Lat {
		lo[0], hi[0] = min(lo[0], n.Lon[i]), max(hi[0], n.Lon[i])
		lo[1], hi[1] = min(lo[1], n.Lat[i]), max(hi[1], n.Lat[i])
	}
	in := func(p [2]float64) bool { return p[0] >= lo[0] && p[0] <= hi[0] && p[1] >= lo[1] && p[1] <= hi[1] }
	for _, s := range pageSpots {
		ok := in(s.depot) && in(s.van)
		for _, p := range s.stops {
			ok = ok && in(p)
		}
		if ok {
			// On the road: pings must match within 50 m, a stop snaps.
			s.depot, s.van = pageSnap(n, s.depot), pageSnap(n, s.van)
			s.stops = slices.Clone(s.stops)
			for i := range s.stops {
				s.stops[i] = pageSnap(n, s.stops[i])
			}
			return s, nil
		}
	}
	return pageSpot{}, fmt.Errorf("bench: page: the graph (lon %.3f..%.3f, lat %.3f..%.3f) covers neither Porto nor Monaco",
		lo[0], hi[0], lo[1], hi[1])
}

// pageSnap returns the road node nearest p.
func pageSnap(n *graph.Network, p [2]float64) [2]float64 {
	k := math.Cos(p[1] * math.Pi / 180)
	best, bd := 0, math.Inf(1)
	for i := range n.Lat {
		dx, dy := (n.Lon[i]-p[0])*k, n.Lat[i]-p[1]
		if d := dx*dx + dy*dy; d < bd {
			best, bd = i, d
		}
	}
	return [2]float64{n.Lon[best], n.Lat[best]}
}

// pageFixture is a server with one shipment out for delivery whose van
// the page shows.
type pageFixture struct {
	srv   *stateServer
	base  string
	token string // the tracking link's token
	path  string // /track/{token}
	spot  pageSpot
}

// pageCall sends a JSON request with a bearer key and decodes the answer.
func pageCall(hc *http.Client, base, method, path, key string, body, into any, want int) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = strings.NewReader(string(b))
	}
	req, err := http.NewRequest(method, base+path, rd)
	if err != nil {
		return err
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		return fmt.Errorf("%s %s: HTTP %d (want %d): %.300s", method, path, resp.StatusCode, want, b)
	}
	if into != nil {
		return json.Unmarshal(b, into)
	}
	return nil
}

// startPageFixture starts the server and makes the shipment: three
// stops on one van, the tracked one first, the van pinged away from its
// depot (out for delivery, shown on the map).
func startPageFixture(g *graph.Graph, log *slog.Logger) (*pageFixture, error) {
	spot, err := pageSpotFor(g)
	if err != nil {
		return nil, err
	}
	srv, err := startStateServer(g, "", "", 4, engine.ServerConfig{TrackRate: -1}, log)
	if err != nil {
		return nil, fmt.Errorf("bench: page: server: %w", err)
	}
	f := &pageFixture{srv: srv, base: "http://" + srv.c.Addr, spot: spot}
	if err := f.setup(); err != nil {
		srv.close()
		return nil, fmt.Errorf("bench: page: setup: %w", err)
	}
	return f, nil
}

func (f *pageFixture) setup() error {
	hc := &http.Client{Timeout: time.Minute}
	defer hc.CloseIdleConnections()
	admin := strings.TrimPrefix(f.srv.auth, "Bearer ")
	var k struct {
		Key string `json:"key"`
	}
	if err := pageCall(hc, f.base, "POST", "/v1/keys", admin, map[string]any{"scope": "dispatcher", "name": "bench page"}, &k, 201); err != nil {
		return err
	}
	disp := k.Key
	now := time.Now().Unix()
	tracking := []string{"P1", "P2", "P3"}
	for i, trk := range tracking {
		var c struct {
			TrackingURL string `json:"tracking_url"`
		}
		if err := pageCall(hc, f.base, "POST", "/v1/shipments", disp, map[string]any{"tracking": trk,
			"recipient": map[string]any{"name": "Recipient " + trk, "language": "en"}, "location": f.spot.stops[i],
			"address":     fmt.Sprintf("%d Bench Street", 10+i),
			"time_window": []int64{now - 3600, now + 3*3600}, "time_zone": f.spot.timeZone, "service": 120}, &c, 201); err != nil {
			return err
		}
		if i == 0 {
			f.path = c.TrackingURL
			if u, err := url.Parse(c.TrackingURL); err == nil && u.Host != "" {
				f.path = u.Path // a public URL: keep the path, serve from here
			}
			f.token = strings.TrimPrefix(f.path, "/track/")
		}
	}
	if f.token == "" || !strings.HasPrefix(f.path, "/track/") {
		return fmt.Errorf("no tracking link (%q)", f.path)
	}
	if err := pageCall(hc, f.base, "POST", "/v1/plans", disp, map[string]any{
		"vehicles": []any{map[string]any{"id": 1, "vehicle": "van-1", "start": f.spot.depot, "end": f.spot.depot}},
		"routes":   []any{map[string]any{"vehicle": "van-1", "shipments": tracking}}}, nil, 201); err != nil {
		return err
	}
	var pos json.RawMessage
	if err := pageCall(hc, f.base, "POST", "/v1/positions", disp, map[string]any{"positions": []any{
		map[string]any{"vehicle": "van-1", "time": now - 60, "location": f.spot.van}}}, &pos, 200); err != nil {
		return err
	}
	// The page must show the van: wait for the view to have it.
	var v struct {
		Status string `json:"status"`
		View   struct {
			Van *struct {
				Location [2]float64 `json:"location"`
			} `json:"van"`
		} `json:"view"`
	}
	for t0 := time.Now(); ; time.Sleep(100 * time.Millisecond) {
		if err := pageCall(hc, f.base, "GET", f.path+"/view.json", "", nil, &v, 200); err != nil {
			return err
		}
		if v.View.Van != nil {
			return nil
		}
		if time.Since(t0) > 10*time.Second {
			return fmt.Errorf("the tracking view shows no van after 10 s (status %q; the ping's answer: %s)", v.Status, pos)
		}
	}
}

func (f *pageFixture) close() { f.srv.close() }

// pageProbe is evaluated in the page once it had its first contentful
// paint (CDP lifecycle event): nothing of the bench runs in the page
// before, as with a recipient's browser, and the served page is
// unchanged. The map's tiles and the live stream come after the page's
// deferred scripts, so after it. It records, in performance.now() time, when the map first has 4 tiles
// drawn (Leaflet marks a tile leaflet-tile-loaded after map.js drew it),
// when every tile present is drawn, when #live shows, and the LCP.
const pageProbe = `(() => {
  if (window.__lmBench) return;
  const b = {tiles4: 0, mapDone: 0, complete: false, live: 0, lcp: 0, tiles: 0, loaded: 0};
  Object.defineProperty(window, '__lmBench', {value: b});
  const check = () => {
    const now = performance.now();
    const m = document.getElementById('map');
    if (m) {
      const all = m.getElementsByClassName('leaflet-tile').length;
      const loaded = m.getElementsByClassName('leaflet-tile-loaded').length;
      b.tiles = all; b.loaded = loaded;
      if (!b.tiles4 && loaded >= 4) b.tiles4 = now;
      const c = all >= 4 && loaded === all;
      if (c && !b.complete) b.mapDone = now;
      b.complete = c;
    }
    const l = document.getElementById('live');
    if (l && !l.hidden && !b.live) b.live = now;
  };
  new MutationObserver(check).observe(document, {subtree: true, childList: true, attributes: true, attributeFilter: ['class', 'hidden']});
  check();
  try {
    new PerformanceObserver((list) => { for (const e of list.getEntries()) b.lcp = e.startTime; })
      .observe({type: 'largest-contentful-paint', buffered: true});
  } catch (e) {}
})()`

// pageState is what the bench reads from the page.
type pageState struct {
	Tiles4   float64 `json:"tiles4"`
	MapDone  float64 `json:"mapDone"`
	Complete bool    `json:"complete"`
	Live     float64 `json:"live"`
	LCP      float64 `json:"lcp"`
	Tiles    int     `json:"tiles"`
	Loaded   int     `json:"loaded"`
	FP       float64 `json:"fp"`
	FCP      float64 `json:"fcp"`
	DCL      float64 `json:"dcl"`
	Load     float64 `json:"load"`
	Now      float64 `json:"now"`
	// The page has a map, and the script that shows #live (a delivered
	// page has neither; experiments may drop them).
	HasMap  bool `json:"hasMap"`
	HasLive bool `json:"hasLive"`
}

const pageStateJS = `(() => {
  const b = window.__lmBench || {};
  const p = {}; for (const e of performance.getEntriesByType('paint')) p[e.name] = e.startTime;
  const n = performance.getEntriesByType('navigation')[0] || {};
  return {tiles4: b.tiles4 || 0, mapDone: b.mapDone || 0, complete: !!b.complete, live: b.live || 0, lcp: b.lcp || 0,
    tiles: b.tiles || 0, loaded: b.loaded || 0, fp: p['first-paint'] || 0, fcp: p['first-contentful-paint'] || 0,
    dcl: n.domContentLoadedEventEnd || 0, load: n.loadEventEnd || 0, now: performance.now(),
    hasMap: !!document.getElementById('map') && !!document.querySelector('script[src*="/map.js"]'), hasLive: !!document.querySelector('script[src*="/track.js"]')};
})()`

// pageNetLog records a tab's network events (the listener runs on the
// target's goroutine; the bench reads from another).
type pageNetLog struct {
	mu   sync.Mutex
	reqs map[network.RequestID]*pageNetReq
	ord  []network.RequestID
	t0   float64 // the document request's timestamp (s)
	last time.Time
	// paints holds the loaders (documents) that had their first
	// contentful paint or their load event.
	paints map[cdp.LoaderID]bool
}

type pageNetReq struct {
	url, kind string
	status    int64
	start     float64
	end       float64
	head      float64 // bytes when the response headers arrived
	data      int64   // bytes of the body chunks so far (encodedDataLength)
	decoded   int64   // their decoded bytes (dataLength)
	encoded   bool    // the response has a Content-Encoding
	total     float64 // loadingFinished's encodedDataLength; -1 until then
	failed    string
	stream    bool
}

func newPageNetLog() *pageNetLog {
	return &pageNetLog{reqs: map[network.RequestID]*pageNetReq{}, last: time.Now(), paints: map[cdp.LoaderID]bool{}}
}

func (l *pageNetLog) on(ev any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch e := ev.(type) {
	case *page.EventLifecycleEvent:
		if e.Name == "firstContentfulPaint" || e.Name == "load" {
			l.paints[e.LoaderID] = true
		}
	case *network.EventRequestWillBeSent:
		r := l.reqs[e.RequestID]
		if r == nil {
			r = &pageNetReq{total: -1}
			l.reqs[e.RequestID] = r
			l.ord = append(l.ord, e.RequestID)
		}
		r.url, r.kind, r.start = e.Request.URL, string(e.Type), float64(e.Timestamp)
		r.stream = e.Type == network.ResourceTypeEventSource
		if len(l.ord) == 1 || e.Type == network.ResourceTypeDocument && l.t0 == 0 {
			l.t0 = float64(e.Timestamp)
		}
		l.last = time.Now()
	case *network.EventResponseReceived:
		if r := l.reqs[e.RequestID]; r != nil && e.Response != nil {
			r.status, r.head = e.Response.Status, e.Response.EncodedDataLength
			for k, v := range e.Response.Headers {
				if s, _ := v.(string); strings.EqualFold(k, "Content-Encoding") && s != "" && s != "identity" {
					r.encoded = true
				}
			}
		}
	case *network.EventDataReceived:
		if r := l.reqs[e.RequestID]; r != nil {
			r.data += e.EncodedDataLength
			r.decoded += e.DataLength
			if !r.stream {
				l.last = time.Now()
			}
		}
	case *network.EventLoadingFinished:
		if r := l.reqs[e.RequestID]; r != nil {
			r.total, r.end = e.EncodedDataLength, float64(e.Timestamp)
			l.last = time.Now()
		}
	case *network.EventLoadingFailed:
		if r := l.reqs[e.RequestID]; r != nil {
			r.failed, r.end = e.ErrorText, float64(e.Timestamp)
			if e.Canceled {
				r.failed = "canceled"
			}
			l.last = time.Now()
		}
	}
}

// painted reports whether the document of loader id had its first
// contentful paint or its load event.
func (l *pageNetLog) painted(id cdp.LoaderID) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.paints[id]
}

// idle reports whether no request but the live stream is open and the
// network has been quiet for d.
func (l *pageNetLog) idle(d time.Duration) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, r := range l.reqs {
		if r.end == 0 && !r.stream {
			return false
		}
	}
	return time.Since(l.last) >= d
}

// bytes of a request on the wire so far. Chromium reports the encoded
// size of the chunks of an open response (the live stream) as 0, so an
// uncompressed one counts its decoded bytes (chunked framing aside).
func (r *pageNetReq) bytes() int64 {
	if r.total >= 0 {
		return int64(r.total)
	}
	if !r.encoded && r.decoded > r.data {
		return int64(r.head) + r.decoded
	}
	return int64(r.head) + r.data
}

// pageKind groups requests: document, script, stylesheet, tiles, live
// (the event stream), other.
func pageKind(u *url.URL, kind string) string {
	switch {
	case strings.HasPrefix(u.Path, "/tiles/"):
		return "tiles"
	case kind == string(network.ResourceTypeDocument):
		return "document"
	case kind == string(network.ResourceTypeScript):
		return "script"
	case kind == string(network.ResourceTypeStylesheet):
		return "stylesheet"
	case kind == string(network.ResourceTypeEventSource):
		return "live"
	}
	return "other"
}

// PageKinds are the request kinds in report order.
var PageKinds = []string{"document", "stylesheet", "script", "tiles", "live", "other"}

// fill sets the load's byte and request figures from the log.
func (l *pageNetLog) fill(ld *PageLoad, token string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	ld.BytesByKind, ld.RequestsKind, ld.TilesByZoom, ld.Hosts = map[string]int64{}, map[string]int{}, map[int]int{}, map[string]int{}
	ms := func(t float64) float64 {
		if t == 0 {
			return 0
		}
		return (t - l.t0) * 1000
	}
	for _, id := range l.ord {
		r := l.reqs[id]
		u, err := url.Parse(r.url)
		if err != nil {
			u = &url.URL{Path: r.url}
		}
		host := u.Host
		if u.Scheme == "data" || u.Scheme == "blob" {
			host = u.Scheme + ":"
		}
		ld.Hosts[host]++
		k := pageKind(u, r.kind)
		b := r.bytes()
		ld.Bytes += b
		ld.BytesByKind[k] += b
		ld.Requests++
		ld.RequestsKind[k]++
		if k == "tiles" {
			if parts := strings.Split(strings.TrimPrefix(u.Path, "/tiles/"), "/"); len(parts) == 3 {
				if z, err := strconv.Atoi(parts[0]); err == nil {
					ld.TilesByZoom[z]++
				}
			}
		}
		p := u.Path
		if token != "" {
			p = strings.ReplaceAll(p, token, "{token}")
		}
		if u.RawQuery != "" && !strings.HasPrefix(p, "/static/") {
			p += "?" + u.RawQuery
		}
		ld.Waterfall = append(ld.Waterfall, PageRequest{URL: p, Kind: k, Status: r.status, Start: ms(r.start), End: ms(r.end),
			Bytes: b, Failed: r.failed})
	}
}

// newPageBrowser starts headless Chromium.
func newPageBrowser(path string) (context.Context, context.CancelFunc, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, nil, fmt.Errorf("bench: page: no browser at %s (apt-get install chromium): %w", path, err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.NoSandbox,
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-background-networking", true), chromedp.WindowSize(412, 915))
	actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
	bctx, bcancel := chromedp.NewContext(actx)
	cancel := func() { bcancel(); acancel() }
	if err := chromedp.Do(bctx); err != nil {
		cancel()
		return nil, nil, fmt.Errorf("bench: page: start chromium: %w", err)
	}
	return bctx, cancel, nil
}

// pageLoadOpts are the options of one load.
type pageLoadOpts struct {
	timeout, quiet time.Duration
	shot           string // screenshot file, "" for none
	// Optional, for experiments: more events, a step before the
	// navigation and one after the measure.
	listen func(ev any)
	before func(ctx context.Context) error
	after  func(ctx context.Context, ld *PageLoad)
}

// pageLoad opens url cold (a new browser context, cache disabled) in
// profile p and measures its first view.
func pageLoad(bctx context.Context, p PageProfile, pageURL, token string, o pageLoadOpts) (PageLoad, error) {
	var ld PageLoad
	nl := newPageNetLog()
	copts := []chromedp.ContextOption{chromedp.WithNewBrowserContext(), chromedp.WithListener(nl.on)}
	if o.listen != nil {
		copts = append(copts, chromedp.WithListener(o.listen))
	}
	tab, cancel := chromedp.NewContext(bctx, copts...)
	defer cancel()
	timeout, quiet, shot := o.timeout, o.quiet, o.shot
	ctx, tcancel := context.WithTimeout(tab, timeout)
	defer tcancel()
	if err := chromedp.Do(ctx); err != nil { // opens the tab
		return ld, fmt.Errorf("open tab: %w", err)
	}
	setup := func() error {
		if _, err := chromedp.Call(ctx, network.Enable, network.EnableParams{}); err != nil {
			return err
		}
		if _, err := chromedp.Call(ctx, network.SetCacheDisabled, network.SetCacheDisabledParams{CacheDisabled: true}); err != nil {
			return err
		}
		if p.Throttled() {
			down, up := p.Down, p.Up
			if down <= 0 {
				down = -1
			}
			if up <= 0 {
				up = -1
			}
			if err := devtools.Throttle(ctx, network.Conditions{Latency: float64(p.Latency) / float64(time.Millisecond),
				DownloadThroughput: down, UploadThroughput: up, ConnectionType: network.ConnectionTypeCellular4g}); err != nil {
				return fmt.Errorf("network throttling: %w", err)
			}
		}
		if p.CPU > 1 {
			if _, err := chromedp.Call(ctx, emulation.SetCPUThrottlingRate, emulation.SetCPUThrottlingRateParams{Rate: p.CPU}); err != nil {
				return fmt.Errorf("CPU throttling: %w", err)
			}
		}
		if _, err := chromedp.Call(ctx, performance.Enable, performance.EnableParams{}); err != nil {
			return err
		}
		if _, err := chromedp.Call(ctx, page.SetLifecycleEventsEnabled, page.SetLifecycleEventsEnabledParams{Enabled: true}); err != nil {
			return err
		}
		return chromedp.Do(ctx, chromedp.EmulateViewport(p.Width, p.Height, chromedp.EmulateScale(p.DPR), chromedp.EmulateMobile))
	}
	if err := setup(); err != nil {
		return ld, fmt.Errorf("set up the tab: %w", err)
	}
	if o.before != nil {
		if err := o.before(ctx); err != nil {
			return ld, err
		}
	}
	// Navigate without waiting for the load event: the bench polls.
	nav, err := chromedp.Call(ctx, page.Navigate, page.NavigateParams{URL: pageURL})
	if err != nil {
		return ld, fmt.Errorf("navigate: %w", err)
	}
	var st pageState
	probed := false
	for {
		if ctx.Err() != nil {
			ld.TimedOut = true
			break
		}
		time.Sleep(100 * time.Millisecond)
		if !probed {
			// Nothing of the bench runs in the page before its first
			// contentful paint (or its load event, for a page without).
			if !nl.painted(nav.LoaderID) {
				continue
			}
			if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](pageProbe+", true")); err != nil {
				continue
			}
			probed = true
		}
		s, err := chromedp.Run(ctx, chromedp.Evaluate[pageState](pageStateJS))
		if err != nil {
			continue // between documents
		}
		st = s
		mapDone := st.MapDone > 0 && st.Complete || !st.HasMap
		live := st.Live > 0 || !st.HasLive
		if mapDone && live && st.Load > 0 && nl.idle(quiet) {
			break
		}
	}
	// A timed-out load still reports what it got.
	rctx, rcancel := context.WithTimeout(tab, 20*time.Second)
	defer rcancel()
	if ld.TimedOut {
		if s, err := chromedp.Run(rctx, chromedp.Evaluate[pageState](pageStateJS)); err == nil {
			st = s
		}
	}
	ld.FP, ld.FCP, ld.LCP, ld.DCL, ld.Load = st.FP, st.FCP, st.LCP, st.DCL, st.Load
	ld.Tiles4, ld.MapDone, ld.Live, ld.End, ld.CanvasesFinal = st.Tiles4, st.MapDone, st.Live, st.Now, st.Tiles
	nl.fill(&ld, token)
	if m, err := chromedp.Call(rctx, performance.GetMetrics, cdp.Empty{}); err == nil {
		for _, x := range m.Metrics {
			switch x.Name {
			case "ScriptDuration":
				ld.ScriptMS = x.Value * 1000
			case "TaskDuration":
				ld.TaskMS = x.Value * 1000
			case "LayoutDuration", "RecalcStyleDuration":
				ld.LayoutMS += x.Value * 1000
			case "JSHeapUsedSize":
				ld.HeapMB = x.Value / (1 << 20)
			}
		}
	}
	if o.after != nil {
		o.after(rctx, &ld)
	}
	if shot != "" {
		// Unthrottle first: a screenshot under 4x CPU takes long.
		chromedp.Call(rctx, emulation.SetCPUThrottlingRate, emulation.SetCPUThrottlingRateParams{Rate: 1})
		if b, err := chromedp.Run(rctx, chromedp.CaptureScreenshot()); err == nil {
			os.WriteFile(shot, b, 0o644)
		}
	}
	return ld, nil
}

// Page measures cold first views of the tracking page in each profile.
func Page(cfg PageConfig) (*PageResult, error) {
	t0 := time.Now()
	if cfg.Graph == nil {
		return nil, errors.New("bench: page: a graph is needed")
	}
	if cfg.Runs <= 0 {
		cfg.Runs = 10
	}
	if cfg.Profiles == nil {
		cfg.Profiles = []PageProfile{PhoneSlow4G, PhoneUnthrottled}
	}
	if cfg.Chromium == "" {
		cfg.Chromium = DefaultChromium
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = time.Minute
	}
	if cfg.Quiet <= 0 {
		cfg.Quiet = 500 * time.Millisecond
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	f, err := startPageFixture(cfg.Graph, log)
	if err != nil {
		return nil, err
	}
	defer f.close()
	bctx, bcancel, err := newPageBrowser(cfg.Chromium)
	if err != nil {
		return nil, err
	}
	defer bcancel()
	res := &PageResult{Stop: f.spot.stops[0], Van: f.spot.van, LoadAvg: [2]float64{loadAvg(), 0}}
	if v, err := chromedp.CallBrowser(bctx, browser.GetVersion, cdp.Empty{}); err == nil {
		res.Chromium = v.Product
	}
	pageURL := f.base + f.path
	// A warm-up load (not counted) builds the server's tile index and
	// caches the tiles of the view, as on a server that has served maps.
	tw := time.Now()
	if _, err := pageLoad(bctx, PhoneUnthrottled, pageURL, f.token, pageLoadOpts{timeout: cfg.Timeout, quiet: cfg.Quiet}); err != nil {
		return nil, fmt.Errorf("bench: page: warm-up load: %w", err)
	}
	res.WarmUp = time.Since(tw)
	for _, p := range cfg.Profiles {
		pr := PageProfileResult{Profile: p}
		for i := range cfg.Runs {
			shot := ""
			if cfg.Artifacts != "" && i == cfg.Runs-1 {
				os.MkdirAll(cfg.Artifacts, 0o755)
				shot = filepath.Join(cfg.Artifacts, "page-"+p.Name+".png")
			}
			ld, err := pageLoad(bctx, p, pageURL, f.token, pageLoadOpts{timeout: cfg.Timeout, quiet: cfg.Quiet, shot: shot})
			if err != nil {
				return nil, fmt.Errorf("bench: page: %s load %d: %w", p.Name, i+1, err)
			}
			log.Info("bench page: load", "profile", p.Name, "run", i+1, "fcp_ms", math.Round(ld.FCP), "map_ms", math.Round(ld.MapDone),
				"live_ms", math.Round(ld.Live), "bytes", ld.Bytes, "requests", ld.Requests, "timed_out", ld.TimedOut)
			pr.Loads = append(pr.Loads, ld)
		}
		res.Profiles = append(res.Profiles, pr)
	}
	res.Total = time.Since(t0)
	res.LoadAvg[1] = loadAvg()
	return res, nil
}

// pageMedianMax returns the median and the largest of xs.
func pageMedianMax(xs []float64) (med, worst float64) {
	if len(xs) == 0 {
		return 0, 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		med = s[n/2]
	} else {
		med = (s[n/2-1] + s[n/2]) / 2
	}
	return med, s[n-1]
}

// pageLoadsOf maps the loads to one figure.
func pageLoadsOf(ls []PageLoad, f func(PageLoad) float64) []float64 {
	out := make([]float64, len(ls))
	for i, l := range ls {
		out[i] = f(l)
	}
	return out
}

// Summary returns the median and worst of a figure over a profile's loads.
func (pr PageProfileResult) Summary(f func(PageLoad) float64) (med, worst float64) {
	return pageMedianMax(pageLoadsOf(pr.Loads, f))
}

// medianLoad is the load whose map was done at the median time.
func (pr PageProfileResult) medianLoad() PageLoad {
	s := slices.Clone(pr.Loads)
	slices.SortFunc(s, func(a, b PageLoad) int { return cmp.Compare(a.MapDone, b.MapDone) })
	return s[(len(s)-1)/2]
}

// WritePage prints the tables of r.
func WritePage(w io.Writer, r *PageResult) {
	fmt.Fprintf(w, "tracking page, first view: %s; stop %.5f,%.5f, van %.5f,%.5f\n", r.Chromium, r.Stop[0], r.Stop[1], r.Van[0], r.Van[1])
	fmt.Fprintf(w, "each load: a new browser context, cache disabled, from navigation start; warm-up load (not counted) %v; total %v; load average %.2f at the start, %.2f at the end\n",
		r.WarmUp.Round(time.Millisecond), r.Total.Round(time.Second), r.LoadAvg[0], r.LoadAvg[1])
	for _, pr := range r.Profiles {
		fmt.Fprintf(w, "\n## %s: %s, %d cold loads\n\n", pr.Profile.Name, pr.Profile, len(pr.Loads))
		fmt.Fprintf(w, "| ms from navigation start | median | worst |\n|---|---:|---:|\n")
		rows := []struct {
			name string
			f    func(PageLoad) float64
		}{
			{"first paint", func(l PageLoad) float64 { return l.FP }},
			{"first contentful paint", func(l PageLoad) float64 { return l.FCP }},
			{"largest contentful paint", func(l PageLoad) float64 { return l.LCP }},
			{"DOMContentLoaded (end)", func(l PageLoad) float64 { return l.DCL }},
			{"load (end)", func(l PageLoad) float64 { return l.Load }},
			{"4 map tiles drawn", func(l PageLoad) float64 { return l.Tiles4 }},
			{"all map tiles drawn", func(l PageLoad) float64 { return l.MapDone }},
			{"live stream's first update shown", func(l PageLoad) float64 { return l.Live }},
			{"main thread busy (TaskDuration)", func(l PageLoad) float64 { return l.TaskMS }},
			{"of which script", func(l PageLoad) float64 { return l.ScriptMS }},
			{"of which style and layout", func(l PageLoad) float64 { return l.LayoutMS }},
		}
		for _, row := range rows {
			m, x := pr.Summary(row.f)
			fmt.Fprintf(w, "| %s | %.0f | %.0f |\n", row.name, m, x)
		}
		fmt.Fprintf(w, "\n| bytes on the wire (compressed, headers included) | median | worst | requests (median) |\n|---|---:|---:|---:|\n")
		for _, k := range PageKinds {
			m, x := pr.Summary(func(l PageLoad) float64 { return float64(l.BytesByKind[k]) })
			n, _ := pr.Summary(func(l PageLoad) float64 { return float64(l.RequestsKind[k]) })
			if x == 0 && n == 0 {
				continue
			}
			fmt.Fprintf(w, "| %s | %.0f | %.0f | %.0f |\n", k, m, x, n)
		}
		m, x := pr.Summary(func(l PageLoad) float64 { return float64(l.Bytes) })
		n, nx := pr.Summary(func(l PageLoad) float64 { return float64(l.Requests) })
		fmt.Fprintf(w, "| **total** | **%.0f** | **%.0f** | %.0f (worst %.0f) |\n", m, x, n, nx)
		hosts := map[string]int{}
		zooms := map[int][]float64{}
		timedOut := 0
		for _, l := range pr.Loads {
			for h, c := range l.Hosts {
				hosts[h] += c
			}
			for z := range l.TilesByZoom {
				zooms[z] = nil
			}
			if l.TimedOut {
				timedOut++
			}
		}
		var zs []string
		for _, z := range slices.Sorted(maps.Keys(zooms)) {
			m, x := pr.Summary(func(l PageLoad) float64 { return float64(l.TilesByZoom[z]) })
			zs = append(zs, fmt.Sprintf("z%d %.0f (worst %.0f)", z, m, x))
		}
		fmt.Fprintf(w, "\ntiles requested per zoom (median): %s\n", strings.Join(zs, ", "))
		var hs []string
		for _, h := range slices.Sorted(maps.Keys(hosts)) {
			hs = append(hs, fmt.Sprintf("%s: %d", h, hosts[h]))
		}
		fmt.Fprintf(w, "request hosts over all loads: %s\n", strings.Join(hs, ", "))
		if timedOut > 0 {
			fmt.Fprintf(w, "**%d load(s) timed out** before the map was drawn and the live stream shown\n", timedOut)
		}
		ml := pr.medianLoad()
		fmt.Fprintf(w, "\nwaterfall of the median load (all tiles drawn at %.0f ms):\n\n| start | end | bytes | kind | status | path |\n|---:|---:|---:|---|---:|---|\n", ml.MapDone)
		for _, q := range ml.Waterfall {
			end := fmt.Sprintf("%.0f", q.End)
			if q.End == 0 {
				end = "open"
			}
			status := fmt.Sprint(q.Status)
			if q.Failed != "" {
				status = q.Failed
			}
			fmt.Fprintf(w, "| %.0f | %s | %d | %s | %s | %s |\n", q.Start, end, q.Bytes, q.Kind, status, q.URL)
		}
	}
	for _, pr := range r.Profiles {
		if !pr.Profile.Throttled() || pr.Profile.CPU <= 1 {
			continue
		}
		fm, fx := pr.Summary(func(l PageLoad) float64 { return l.FCP })
		bm, bx := pr.Summary(func(l PageLoad) float64 { return float64(l.Bytes) })
		verdict := func(ok bool) string {
			if ok {
				return "met"
			}
			return "MISSED"
		}
		fmt.Fprintf(w, "\ntarget (%s): first render (FCP) < %v: median %.0f ms, worst %.0f ms: %s\n", pr.Profile.Name, PageRenderTarget,
			fm, fx, verdict(fx < float64(PageRenderTarget/time.Millisecond)))
		fmt.Fprintf(w, "target (%s): first view < %d kB on the wire: median %.1f kB, worst %.1f kB: %s\n", pr.Profile.Name, PageBytesTarget/1000,
			bm/1000, bx/1000, verdict(bx < PageBytesTarget))
	}
}
