// Package browsertest drives the engine's pages in a headless Chromium
// for tests: it starts the browser (or skips the test without one), opens
// tabs of a given size, runs actions and JavaScript with time limits,
// waits for conditions, takes screenshots into the test's artefacts and
// records what a tab requests.
//
// Every helper fails the test (t.Fatalf) when the browser does not do what
// it is asked within its time limit.
package browsertest

import (
	"bytes"
	"context"
	"fmt"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/lastmile/lastmile/internal/devtools"
)

// ChromiumPath is Debian's Chromium, which .ci/run installs.
const ChromiumPath = "/usr/bin/chromium"

// RequiredEnv names the environment variable that makes a missing browser
// fail the test instead of skipping it (set in CI).
const RequiredEnv = "LASTMILE_TEST_BROWSER_REQUIRED"

// Start starts a headless Chromium for the test, or skips the test when it
// is not installed (fails it when LASTMILE_TEST_BROWSER_REQUIRED is set, as
// in CI). The browser ends with the test. Each tab is a context made from
// the returned one (see Tab).
func Start(t testing.TB) context.Context {
	t.Helper()
	if _, err := os.Stat(ChromiumPath); err != nil {
		if os.Getenv(RequiredEnv) != "" {
			t.Fatalf("chromium is required (%s) but %s is missing", RequiredEnv, ChromiumPath)
		}
		t.Skipf("no browser: %s is missing (apt-get install chromium)", ChromiumPath)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(ChromiumPath), chromedp.NoSandbox,
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

// Tab opens a tab of the browser Start returned, its viewport width x
// height CSS pixels: a phone when mobile (2 device pixels per CSS pixel,
// touch, mobile layout), else a desktop window (1 device pixel per CSS
// pixel, mouse). The tab closes with the test.
func Tab(t testing.TB, browser context.Context, width, height int, mobile bool) context.Context {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browser)
	t.Cleanup(cancel)
	opts := []chromedp.EmulateViewportOption{chromedp.EmulateScale(1)}
	if mobile {
		opts = []chromedp.EmulateViewportOption{chromedp.EmulateScale(2), chromedp.EmulateMobile}
	}
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(int64(width), int64(height), opts...)); err != nil {
		t.Fatal(err)
	}
	return ctx
}

// artefactDirs holds each test's folder of artefacts, so that all its
// screenshots land in one temporary folder.
var artefactDirs sync.Map // testing.TB -> string

// Artefacts returns the folder for the test's screenshots:
// $LASTMILE_ARTIFACTS/browser, or a temporary folder of the test (the same
// one on every call of a test).
func Artefacts(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("LASTMILE_ARTIFACTS")
	if dir == "" {
		if d, ok := artefactDirs.Load(t); ok {
			return d.(string)
		}
		dir = t.TempDir()
	}
	dir = filepath.Join(dir, "browser")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, loaded := artefactDirs.LoadOrStore(t, dir); !loaded {
		t.Cleanup(func() { artefactDirs.Delete(t) })
	}
	return dir
}

// Shoot saves a screenshot of the tab's whole page (of its viewport when
// the whole page cannot be taken) as dir/name, a PNG file.
func Shoot(t testing.TB, ctx context.Context, dir, name string) {
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

// ElementShot returns a PNG screenshot of the first element sel (a CSS
// selector) matches.
func ElementShot(t testing.TB, ctx context.Context, sel string) []byte {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	b, err := chromedp.Run(c, chromedp.Screenshot(chromedp.CSS(sel)))
	if err != nil {
		t.Fatalf("screenshot of %s: %v", sel, err)
	}
	return b
}

// Do runs steps in the tab within d; what names them in the failure.
func Do(t testing.TB, ctx context.Context, d time.Duration, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	if err := chromedp.Do(c, steps...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// Eval evaluates a JavaScript expression in the tab (within 20 s) and
// returns its value decoded as a T.
func Eval[T any](t testing.TB, ctx context.Context, expr string) T {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	v, err := chromedp.Run(c, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("eval %s: %v", expr, err)
	}
	return v
}

// WaitJS waits within d until a JavaScript expression is truthy, polling
// it again on the new page when the page navigates meanwhile. On failure
// it saves a screenshot named after what (failed-<what>.png) in Artefacts.
func WaitJS(t testing.TB, ctx context.Context, d time.Duration, what, expr string) {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var err error
	for {
		// A page that reloads itself (the tracking page on a new state)
		// or goes to another (a form sent) ends a poll: poll again on the
		// new page.
		_, err = chromedp.Run(c, chromedp.Poll[bool](expr, chromedp.WithPollingInterval(100*time.Millisecond)))
		if err == nil || c.Err() != nil || !navigated(err) {
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
			os.WriteFile(filepath.Join(Artefacts(t), name), b, 0o644)
		}
		t.Fatalf("waiting for %s (%s): %v", what, expr, err)
	}
}

// navigated reports whether err says the page went away under a
// script: reloaded, or its JavaScript context destroyed by a navigation.
func navigated(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "navigated") || strings.Contains(msg, "Cannot find context with specified id") ||
		strings.Contains(msg, "Execution context was destroyed")
}

// Tap clicks the first element sel (a CSS selector) matches through the
// page's DOM (element.click()), as a finger would once it reached it: the
// element may be scrolled away or in a collapsed list.
func Tap(t testing.TB, ctx context.Context, sel string) {
	t.Helper()
	if !Eval[bool](t, ctx, fmt.Sprintf(`(() => { const e = document.querySelector(%q); if (!e) return false; e.click(); return true; })()`, sel)) {
		t.Fatalf("no %s to tap", sel)
	}
}

// SetOffline turns the tab's network off or on (the page sees
// navigator.onLine and its online/offline events too; service workers are
// offline with it).
func SetOffline(t testing.TB, ctx context.Context, off bool) {
	t.Helper()
	err := chromedp.Do(ctx, chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
		if _, err := chromedp.Call(ctx, network.Enable, network.EnableParams{}); err != nil {
			return err
		}
		if err := devtools.SetOffline(ctx, off); err != nil {
			return err
		}
		_, err := chromedp.Call(ctx, network.OverrideNetworkState, network.OverrideNetworkStateParams{Offline: off, DownloadThroughput: -1, UploadThroughput: -1})
		return err
	}))
	if err != nil {
		t.Fatalf("offline %v: %v", off, err)
	}
}

// MapDrawn measures a PNG screenshot of the engine's map (LastmileMap):
// the share of pixels (of every other pixel in both directions) far from
// the basemap's land colour #f2efe9, which are roads or what is drawn on
// them, and the number of distinct colours (at 4 bits a channel). A blank
// or unloaded map has almost no pixels off the land colour and few
// colours.
func MapDrawn(t testing.TB, shot []byte) (roads float64, colours int) {
	t.Helper()
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

// Request is one request a tab sent: its URL, method and resource type
// (Document, Script, Fetch, EventSource...) and, once answered, the
// response's status and headers (names in lower case).
type Request struct {
	URL, Method, Type string
	Status            int64
	Headers           map[string]string
}

// Recorder records what a tab does from the moment Record is called: its
// requests (every URL it asks for, whatever the host) and its problems
// (uncaught exceptions, console errors, and the browser's own errors such
// as Content-Security-Policy violations).
type Recorder struct {
	mu       sync.Mutex
	requests []*Request
	byID     map[network.RequestID]*Request
	problems []string
}

// Record starts recording the tab's requests and problems; call it before
// the navigation whose requests matter.
func Record(t testing.TB, tab context.Context) *Recorder {
	t.Helper()
	r := &Recorder{byID: map[network.RequestID]*Request{}}
	err := chromedp.Listen(tab, func(ev any) {
		// The tab's message loop: record and return at once.
		r.mu.Lock()
		defer r.mu.Unlock()
		switch ev := ev.(type) {
		case *network.EventRequestWillBeSent:
			if ev.Request == nil {
				return
			}
			q := &Request{URL: ev.Request.URL, Method: ev.Request.Method, Type: string(ev.Type)}
			r.requests = append(r.requests, q)
			r.byID[ev.RequestID] = q // a redirect's next request replaces the first
		case *network.EventResponseReceived:
			q := r.byID[ev.RequestID]
			if q == nil || ev.Response == nil {
				return
			}
			q.Status = ev.Response.Status
			q.Headers = map[string]string{}
			for k, v := range ev.Response.Headers {
				q.Headers[strings.ToLower(k)] = fmt.Sprint(v)
			}
		case *runtime.EventExceptionThrown:
			if d := ev.ExceptionDetails; d != nil {
				msg := d.Text
				if d.Exception != nil && d.Exception.Description != "" {
					msg += " " + d.Exception.Description
				}
				r.problems = append(r.problems, fmt.Sprintf("exception at %s:%d: %s", d.URL, d.LineNumber+1, msg))
			}
		case *runtime.EventConsoleAPICalled:
			if ev.Type == runtime.ConsoleAPICalledTypeError {
				var parts []string
				for _, a := range ev.Args {
					if a.Description != "" {
						parts = append(parts, a.Description)
					} else {
						parts = append(parts, strings.Trim(string(a.Value), `"`))
					}
				}
				r.problems = append(r.problems, "console.error: "+strings.Join(parts, " "))
			}
		case *log.EventEntryAdded:
			if e := ev.Entry; e != nil && e.Level == log.EntryLevelError {
				r.problems = append(r.problems, fmt.Sprintf("%s error: %s (%s)", e.Source, e.Text, e.URL))
			}
		}
	})
	if err != nil {
		t.Fatalf("record the tab: %v", err)
	}
	return r
}

// Requests returns the requests recorded so far, in the order sent.
func (r *Recorder) Requests() []Request {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Request, len(r.requests))
	for i, q := range r.requests {
		out[i] = *q
		out[i].Headers = make(map[string]string, len(q.Headers))
		for k, v := range q.Headers {
			out[i].Headers[k] = v
		}
	}
	return out
}

// Problems returns the exceptions and errors recorded so far.
func (r *Recorder) Problems() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.problems...)
}
