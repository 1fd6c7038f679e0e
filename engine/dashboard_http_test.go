package engine

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// dashSession signs the dashboard in with key and returns the session
// cookie (nil when refused), the answer's status and Location.
func dashSession(t *testing.T, ds *dispatchServer, key, next string) (*http.Cookie, int, string) {
	t.Helper()
	resp, err := noRedirect.PostForm(ds.url+"/dashboard/session", url.Values{"key": {key}, "next": {next}})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	for _, c := range resp.Cookies() {
		if c.Name == sessionCookie && c.Value != "" {
			if !c.HttpOnly || !c.Secure || c.SameSite != http.SameSiteStrictMode {
				t.Fatalf("session cookie %+v", c)
			}
			return c, resp.StatusCode, resp.Header.Get("Location")
		}
	}
	return nil, resp.StatusCode, resp.Header.Get("Location")
}

// withCookie sends a request with a session cookie and optional CSRF
// token and form.
func withCookie(t *testing.T, ds *dispatchServer, c *http.Cookie, method, path, csrf string, form url.Values) (int, string, http.Header) {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, _ := http.NewRequest(method, ds.url+path, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if c != nil {
		req.AddCookie(c)
	}
	if csrf != "" {
		req.Header.Set("X-CSRF-Token", csrf)
	}
	resp, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

// TestDashboardAccess checks who may see the dashboard and the analytics:
// dispatcher and admin keys sign in, driver keys do not; a driver session
// cannot read figures; only admin keys import; sign-in never redirects
// off the site; sign-out needs the CSRF token and ends the session.
func TestDashboardAccess(t *testing.T) {
	ds := newDispatchServer(t, "sqlite")
	_, disp := ds.key(t, "dispatcher", "")
	_, drv := ds.key(t, "driver", "van-1")

	code, body, h := withCookie(t, ds, nil, "GET", "/dashboard", "", nil)
	if code != 200 || !strings.Contains(body, `id="signin-form"`) || !strings.Contains(h.Get("Content-Security-Policy"), "default-src 'self'") {
		t.Fatalf("signed out: %d %s", code, clip([]byte(body), 200))
	}
	if c, code, _ := dashSession(t, ds, drv, "/dashboard"); c != nil || code != 401 {
		t.Fatalf("a driver key signed the dashboard in: %d", code)
	}
	for next, want := range map[string]string{
		"/dashboard?group=hour": "/dashboard?group=hour", "/dashboard/live": "/dashboard/live",
		"https://evil.example/": "/dashboard", "//evil.example/dashboard": "/dashboard", "/driver": "/dashboard",
	} {
		if c, code, loc := dashSession(t, ds, disp, next); c == nil || code != 303 || loc != want {
			t.Errorf("next %q: %d to %q, want 303 to %q", next, code, loc, want)
		}
	}
	c, _, _ := dashSession(t, ds, disp, "/dashboard")
	// The environment's admin key (no row in keys) signs in too.
	ac, _, _ := dashSession(t, ds, ds.admin, "/dashboard")
	if code, body, _ := withCookie(t, ds, ac, "GET", "/dashboard", "", nil); ac == nil || code != 200 || !strings.Contains(body, `id="initial"`) {
		t.Fatalf("the environment's admin key: %d", code)
	}

	// Three facts through the import (admin only), read back signed in.
	facts := `{"id":"a","vehicle":"van-1","tracking":"T1","location":[7.42,43.73],"status":"delivered","attempt":1,"time_window":[1767600000,1767607200],"arrival":1767601000,"done":1767601100,"service":100,"drive":300}
{"id":"b","vehicle":"van-1","tracking":"T2","location":[7.42,43.74],"status":"failed","reason":"refused","attempt":1,"time_window":[1767600000,1767607200],"arrival":1767609000,"done":1767609050,"service":50,"drive":200}
{"id":"c","vehicle":"van-2","driver":"Ana <b>","tracking":"T3","location":[7.41,43.73],"status":"delivered","attempt":2,"arrival":1767602000,"done":1767602060,"service":60,"drive":null}`
	if code, body := ds.call(t, "POST", "/v1/analytics/facts", disp, facts); code != 403 {
		t.Fatalf("a dispatcher imported: %d %s", code, body)
	}
	ds.mustCall(t, 200, "POST", "/v1/analytics/facts", ds.admin, facts, nil)
	code, body, _ = withCookie(t, ds, c, "GET", "/v1/analytics/on_time?from=2026-01-05&to=2026-01-05&group=vehicle", "", nil)
	var res struct {
		Rows  []map[string]any `json:"rows"`
		Total map[string]any   `json:"total"`
	}
	if code != 200 || json.Unmarshal([]byte(body), &res) != nil || res.Total["stops"] != 2.0 || res.Total["late"] != 1.0 || len(res.Rows) != 2 || res.Rows[1]["on_time_rate"] != nil {
		t.Fatalf("on_time signed in: %d %s", code, body)
	}
	code, body, _ = withCookie(t, ds, c, "GET", "/dashboard?from=2026-01-05&to=2026-01-05&group=driver", "", nil)
	if code != 200 || !strings.Contains(body, `id="initial"`) || strings.Contains(body, "Ana <b>") {
		t.Fatalf("dashboard: %d %s", code, clip([]byte(body), 300))
	}
	csrf := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(body)
	if csrf == nil {
		t.Fatal("no csrf field in the dashboard")
	}
	if code, _, _ := withCookie(t, ds, c, "GET", "/dashboard/live", "", nil); code != 200 {
		t.Fatalf("live page: %d", code)
	}
	code, body, _ = withCookie(t, ds, c, "GET", "/v1/live", "", nil)
	if code != 200 || !strings.Contains(body, `"vehicles":[]`) {
		t.Fatalf("/v1/live: %d %s", code, body)
	}
	// A session changes nothing without its CSRF token.
	if code, _, _ := withCookie(t, ds, c, "POST", "/v1/analytics/facts", "", nil); code != 403 {
		t.Fatalf("a change without CSRF: %d", code)
	}

	// A driver's session reads no figures and gets the sign-in form.
	dc, _ := (&trackFixture{dispatchServer: ds}).session(t, drv)
	if code, _, _ := withCookie(t, ds, dc, "GET", "/v1/analytics/on_time", "", nil); code != 403 {
		t.Fatalf("a driver session read figures: %d", code)
	}
	if _, body, _ := withCookie(t, ds, dc, "GET", "/dashboard", "", nil); !strings.Contains(body, `id="signin-form"`) {
		t.Fatal("a driver session opened the dashboard")
	}

	// Sign out: the token is needed, then the session is gone.
	if code, _, _ := withCookie(t, ds, c, "POST", "/dashboard/logout", "", url.Values{"csrf": {"wrong"}}); code != 403 {
		t.Fatalf("sign-out without the token: %d", code)
	}
	if code, _, _ := withCookie(t, ds, c, "POST", "/dashboard/logout", "", url.Values{"csrf": {csrf[1]}}); code != 303 {
		t.Fatalf("sign-out: %d", code)
	}
	if code, _, _ := withCookie(t, ds, c, "GET", "/v1/analytics/on_time", "", nil); code != 401 {
		t.Fatalf("after sign-out: %d", code)
	}
}
