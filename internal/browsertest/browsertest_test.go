package browsertest

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestRecord loads a page that breaks its own Content-Security-Policy and
// throws: the recorder has its requests, the page's headers, the
// violation and the exception; WaitJS follows the page to the next one.
func TestRecord(t *testing.T) {
	browser := Start(t)
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", "default-src 'self'; script-src 'self'")
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write([]byte(`<!doctype html><title>t</title><body><script>window.inline = 1</script><script src="/app.js"></script>`))
	})
	mux.HandleFunc("/app.js", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/javascript")
		w.Write([]byte(`document.body.dataset.ready = '1'; setTimeout(() => { location.assign('/next'); }, 300); throw new Error('boom');`))
	})
	mux.HandleFunc("/next", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write([]byte(`<!doctype html><title>next</title><body data-next="1">`))
	})
	ts := httptest.NewServer(mux)
	defer ts.Close()

	tab := Tab(t, browser, 800, 600, false)
	rec := Record(t, tab)
	Do(t, tab, 20*time.Second, "open the page", chromedp.Navigate(ts.URL+"/"))
	WaitJS(t, tab, 10*time.Second, "the next page", `document.body.dataset.next === '1'`)
	if w := Eval[float64](t, tab, `window.innerWidth`); w != 800 {
		t.Errorf("window width %v, want 800", w)
	}

	var paths []string
	for _, q := range rec.Requests() {
		paths = append(paths, strings.TrimPrefix(q.URL, ts.URL))
		if q.URL == ts.URL+"/" && (q.Status != 200 || !strings.Contains(q.Headers["content-security-policy"], "script-src 'self'") || q.Type != "Document") {
			t.Errorf("the page's request: %+v", q)
		}
	}
	if got := strings.Join(paths, " "); !strings.HasPrefix(got, "/ /app.js") || !strings.Contains(got, "/next") {
		t.Errorf("requests %q, want /, /app.js and /next", got)
	}
	problems := strings.Join(rec.Problems(), "\n")
	if !strings.Contains(problems, "boom") {
		t.Errorf("the exception is not among the problems:\n%s", problems)
	}
	if !strings.Contains(problems, "Content Security Policy") {
		t.Errorf("the CSP violation is not among the problems:\n%s", problems)
	}
}
