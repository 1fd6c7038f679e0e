package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// paramDoc is an operation whose path parameters are names.
func paramDoc(names ...string) *apiOperation {
	op := *testDoc
	for _, n := range names {
		op.Params = append(op.Params, apiParam{Name: n, In: "path", Description: n + ".",
			Schema: map[string]any{"type": "string"}, Example: n + "-1"})
	}
	return &op
}

// patternParams are the parameter names of a pattern, read independently
// of the matcher.
func patternParams(pattern string) []string {
	var names []string
	for _, m := range regexp.MustCompile(`\{([^{}/]*)\}`).FindAllStringSubmatch(pattern, -1) {
		names = append(names, m[1])
	}
	return names
}

// checkPathParams checks that operation op of the OpenAPI document lists
// every parameter of pattern as a required path parameter, in pattern
// order, and no other path parameter.
func checkPathParams(doc *apiDoc, pattern string, op map[string]any) error {
	var got []string
	params, _ := op["parameters"].([]any)
	for _, pv := range params {
		p, _ := doc.resolve(pv).(map[string]any)
		if p["in"] != "path" {
			continue
		}
		name, _ := p["name"].(string)
		if p["required"] != true {
			return fmt.Errorf("path parameter %s not required", name)
		}
		if p["schema"] == nil {
			return fmt.Errorf("path parameter %s without a schema", name)
		}
		got = append(got, name)
	}
	if want := patternParams(pattern); !slices.Equal(got, want) {
		return fmt.Errorf("path parameters %q, want %q", got, want)
	}
	return nil
}

func noop(*Server, *fasthttp.RequestCtx, pathParams) error { return nil }

// dispatchRows is a route table in the shape of the dispatch endpoints,
// with the literal-beats-parameter cases.
func dispatchRows() []endpoint {
	ids := strings.NewReplacer("/", "_", "{", "", "}", "")
	row := func(method, pattern string) endpoint {
		doc := paramDoc(patternParams(pattern)...)
		doc.ID = strings.ToLower(method) + ids.Replace(pattern) // unique, as OpenAPI wants
		return endpoint{Method: method, Pattern: pattern, Handle: noop, Doc: doc}
	}
	return []endpoint{
		row("GET", "/v1/route/{coordinates}"),
		row("GET", "/v1/shipments"),
		row("POST", "/v1/shipments"),
		row("GET", "/v1/shipments/{tracking}"),
		row("PATCH", "/v1/shipments/{tracking}"),
		row("GET", "/v1/shipments/{tracking}/events"),
		row("GET", "/v1/shipments/{tracking}/events/{event}"),
		row("GET", "/v1/shipments/search"), // after the parameter row: precedence, not table order
		row("PUT", "/v1/stops/{id}/status"),
		row("POST", "/v1/webhooks/{id}/replay"),
		row("GET", "/v1/keys/{id}"),
		row("DELETE", "/v1/keys/{id}"),
		row("GET", "/v1/{a}/{b}/{c}/{d}"),
		row("GET", "/v1/{a}/x/{c}/{d}"),
		row("GET", "/healthz"),
	}
}

func TestRouteMatching(t *testing.T) {
	tbl, err := compileRoutes(dispatchRows())
	if err != nil {
		t.Fatal(err)
	}
	const coords = "7.41993,43.73141;7.42586,43.74087;-0.5,-1e-3"
	cases := []struct {
		method, path string
		pattern      string   // the row answering ("" for none)
		params       []string // name=value, in pattern order
		allow        string   // the Allow header of a 405 ("" for 404)
	}{
		// Literal patterns match exactly.
		{"GET", "/healthz", "/healthz", nil, ""},
		{"GET", "/healthz/", "", nil, ""},
		{"GET", "/healthzz", "", nil, ""},
		{"GET", "/v1/shipments", "/v1/shipments", nil, ""},
		{"POST", "/v1/shipments", "/v1/shipments", nil, ""},
		{"DELETE", "/v1/shipments", "", nil, "GET, POST"},
		{"GET", "/v1/shipments/", "", nil, ""},
		// The trailing parameter of /v1/route takes a whole segment: ';',
		// ',', '.', '-' and a .json suffix included, never '/'.
		{"GET", "/v1/route/" + coords, "/v1/route/{coordinates}", []string{"coordinates=" + coords}, ""},
		{"GET", "/v1/route/" + coords + ".json", "/v1/route/{coordinates}", []string{"coordinates=" + coords + ".json"}, ""},
		{"GET", "/v1/route/x", "/v1/route/{coordinates}", []string{"coordinates=x"}, ""},
		{"GET", "/v1/route/", "", nil, ""},
		{"GET", "/v1/route", "", nil, ""},
		{"GET", "/v1/route/" + coords + "/x", "", nil, ""},
		{"GET", "/v1/route/" + coords + "/", "", nil, ""},
		{"POST", "/v1/route/" + coords, "", nil, "GET"},
		// Middle and several parameters.
		{"GET", "/v1/shipments/LM123/events", "/v1/shipments/{tracking}/events", []string{"tracking=LM123"}, ""},
		{"GET", "/v1/shipments/LM123/events/e-9", "/v1/shipments/{tracking}/events/{event}", []string{"tracking=LM123", "event=e-9"}, ""},
		{"GET", "/v1/shipments/LM123/events/", "", nil, ""},
		{"GET", "/v1/shipments//events", "", nil, ""},
		{"GET", "/v1/shipments/LM123/other", "", nil, ""},
		{"GET", "/v1/shipments/LM123/events/e-9/x", "", nil, ""},
		{"PUT", "/v1/stops/s1/status", "/v1/stops/{id}/status", []string{"id=s1"}, ""},
		{"GET", "/v1/stops/s1/status", "", nil, "PUT"},
		{"GET", "/v1/stops/s1", "", nil, ""},
		{"POST", "/v1/webhooks/w%2F1/replay", "/v1/webhooks/{id}/replay", []string{"id=w%2F1"}, ""}, // not decoded here
		{"GET", "/v1/keys/k1", "/v1/keys/{id}", []string{"id=k1"}, ""},
		{"DELETE", "/v1/keys/k1", "/v1/keys/{id}", []string{"id=k1"}, ""},
		{"POST", "/v1/keys/k1", "", nil, "GET, DELETE"},
		{"GET", "/v1/a/b/c/d", "/v1/{a}/{b}/{c}/{d}", []string{"a=a", "b=b", "c=c", "d=d"}, ""},
		// A literal segment beats a parameter at the same position, the
		// leftmost difference deciding, whatever the table order.
		{"GET", "/v1/shipments/search", "/v1/shipments/search", nil, ""},
		{"GET", "/v1/shipments/searches", "/v1/shipments/{tracking}", []string{"tracking=searches"}, ""},
		{"GET", "/v1/a/x/c/d", "/v1/{a}/x/{c}/{d}", []string{"a=a", "c=c", "d=d"}, ""},
		{"GET", "/v1/shipments/y/c/d", "/v1/{a}/{b}/{c}/{d}", []string{"a=shipments", "b=y", "c=c", "d=d"}, ""},
		// A literal row takes its own methods only: another method falls
		// to the parameter row when it has the method, else 405 listing
		// the methods of every matching row, each once.
		{"PATCH", "/v1/shipments/search", "/v1/shipments/{tracking}", []string{"tracking=search"}, ""},
		{"DELETE", "/v1/shipments/search", "", nil, "GET, PATCH"},
		{"DELETE", "/v1/shipments/LM123", "", nil, "GET, PATCH"},
		// 404 otherwise.
		{"GET", "/", "", nil, ""},
		{"GET", "", "", nil, ""},
		{"GET", "/v2/shipments", "", nil, ""},
	}
	for _, c := range cases {
		t.Run(c.method+" "+c.path, func(t *testing.T) {
			var p pathParams
			i, allow := tbl.lookup([]byte(c.method), []byte(c.path), &p)
			if c.pattern == "" {
				if i >= 0 {
					t.Fatalf("matched %s %s", tbl.rows[i].Method, tbl.rows[i].Pattern)
				}
				if got := strings.Join(allow, ", "); got != c.allow {
					t.Fatalf("allow %q, want %q", got, c.allow)
				}
				return
			}
			if i < 0 {
				t.Fatalf("no match (allow %q), want %s", allow, c.pattern)
			}
			if e := tbl.rows[i]; e.Method != c.method || e.Pattern != c.pattern {
				t.Fatalf("matched %s %s, want %s %s", e.Method, e.Pattern, c.method, c.pattern)
			}
			var got []string
			for k := range p.Len() {
				name, v := p.At(k)
				got = append(got, name+"="+string(v))
				if string(p.Get(name)) != string(v) {
					t.Errorf("Get(%q) = %q, At(%d) = %q", name, p.Get(name), k, v)
				}
			}
			if !slices.Equal(got, c.params) {
				t.Fatalf("params %q, want %q", got, c.params)
			}
		})
	}
	// Get of a name the pattern lacks is a programming error.
	var p pathParams
	if i, _ := tbl.lookup([]byte("GET"), []byte("/v1/keys/k1"), &p); i < 0 {
		t.Fatal("no match")
	}
	func() {
		defer func() {
			if r := recover(); r == nil || !strings.Contains(fmt.Sprint(r), "{key}") {
				t.Errorf("Get of an unknown name: recovered %v", r)
			}
		}()
		p.Get("key")
	}()
}

// TestRouteOrderIsPrecedence checks the order rows are tried in: a row
// after every more specific row that can match the same path, table order
// otherwise.
func TestRouteOrderIsPrecedence(t *testing.T) {
	tbl, err := compileRoutes(dispatchRows())
	if err != nil {
		t.Fatal(err)
	}
	pos := map[string]int{}
	for k, i := range tbl.order {
		pos[tbl.rows[i].Method+" "+tbl.rows[i].Pattern] = k
	}
	if len(pos) != len(tbl.rows) {
		t.Fatalf("order has %d rows, table %d", len(pos), len(tbl.rows))
	}
	for _, before := range [][2]string{
		{"GET /v1/shipments/search", "GET /v1/shipments/{tracking}"},
		{"GET /v1/shipments/search", "PATCH /v1/shipments/{tracking}"},
		{"GET /v1/{a}/x/{c}/{d}", "GET /v1/{a}/{b}/{c}/{d}"},
		{"GET /v1/shipments/{tracking}/events/{event}", "GET /v1/{a}/{b}/{c}/{d}"},
		{"GET /v1/keys/{id}", "DELETE /v1/keys/{id}"}, // table order
		{"GET /v1/shipments/{tracking}", "PATCH /v1/shipments/{tracking}"},
		{"GET /v1/route/{coordinates}", "GET /v1/shipments"},
	} {
		if pos[before[0]] >= pos[before[1]] {
			t.Errorf("%s tried after %s", before[0], before[1])
		}
	}
	for _, a := range tbl.rows {
		for _, b := range tbl.rows {
			if overlap(&a, &b) && comparePrecedence(&a, &b) < 0 && pos[a.Method+" "+a.Pattern] > pos[b.Method+" "+b.Pattern] {
				t.Errorf("%s %s tried after the less specific %s %s", a.Method, a.Pattern, b.Method, b.Pattern)
			}
		}
	}
	// The server's table has no overlapping patterns: table order, the
	// route first.
	if tbl, err := compileRoutes(endpoints()); err != nil || !slices.IsSorted(tbl.order) {
		t.Errorf("order of endpoints(): %v %v", tbl.order, err)
	}
}

func TestCompileRoutesRejectsBadTables(t *testing.T) {
	row := func(method, pattern string) endpoint {
		return endpoint{Method: method, Pattern: pattern, Handle: noop, Doc: testDoc}
	}
	cases := []struct {
		rows []endpoint
		err  string
	}{
		{[]endpoint{row("GET", "/a"), row("GET", "/a")}, "registered twice"},
		{[]endpoint{row("GET", "/a/{x}"), row("GET", "/a/{x}")}, "registered twice"},
		{[]endpoint{row("GET", "a")}, "starting with '/'"},
		{[]endpoint{row("GET", "")}, "starting with '/'"},
		{[]endpoint{{Method: "GET", Pattern: "/a", Handle: noop}}, "a doc"},
		{[]endpoint{{Method: "GET", Pattern: "/a", Doc: testDoc}}, "a handler"},
		{[]endpoint{row("GET", "/")}, "empty path segment"},
		{[]endpoint{row("GET", "/a/")}, "empty path segment"},
		{[]endpoint{row("GET", "/a//b")}, "empty path segment"},
		{[]endpoint{row("GET", "/a/{x}/")}, "empty path segment"},
		{[]endpoint{row("GET", "/a{x}")}, "whole segment"},
		{[]endpoint{row("GET", "/a/{x}b")}, "whole segment"},
		{[]endpoint{row("GET", "/a/b{x}/c")}, "whole segment"},
		{[]endpoint{row("GET", "/a/{x")}, "whole segment"},
		{[]endpoint{row("GET", "/a/x}")}, "whole segment"},
		{[]endpoint{row("GET", "/a/{}")}, "whole segment"},
		{[]endpoint{row("GET", "/a/{{x}}")}, "whole segment"},
		{[]endpoint{row("GET", "/a/{x-y}")}, "whole segment"},
		{[]endpoint{row("GET", "/a/{x y}")}, "whole segment"},
		{[]endpoint{row("GET", "/a/{x}/b/{x}")}, "{x} given twice"},
		{[]endpoint{row("GET", "/{a}/{b}/{c}/{d}/{e}")}, "more than 4 parameters"},
		{[]endpoint{row("GET", "/a/{x}"), row("GET", "/a/{y}")}, "same pattern as GET /a/{x} but for parameter names"},
		{[]endpoint{row("GET", "/a/{x}/b/{y}"), row("POST", "/a/{x}/b/{y}"), row("GET", "/a/{y}/b/{x}")}, "same pattern as GET /a/{x}/b/{y}"},
		{[]endpoint{row("GET", "/a/{x}"), row("DELETE", "/a/{y}")}, "names the parameters of GET /a/{x} differently"},
	}
	for _, c := range cases {
		_, err := compileRoutes(c.rows)
		if err == nil || !strings.Contains(err.Error(), c.err) {
			t.Errorf("%s %s...: got %v, want an error containing %q", c.rows[0].Method, c.rows[0].Pattern, err, c.err)
		}
	}
	for _, rows := range [][]endpoint{
		endpoints(),
		dispatchRows(),
		{row("GET", "/a/{x}"), row("GET", "/a/b"), row("DELETE", "/a/{x}"), row("GET", "/{x}/b"), row("GET", "/a/{x}/{y}/{z}/{w}")},
	} {
		if _, err := compileRoutes(rows); err != nil {
			t.Error(err)
		}
	}
}

// TestRouteMatchAllocs holds matching to no allocation: the route hot
// path (a trailing parameter), a middle parameter, and the whole lookup
// through a table.
func TestRouteMatchAllocs(t *testing.T) {
	rows := endpoints()
	for _, e := range dispatchRows() {
		if !slices.ContainsFunc(rows, func(r endpoint) bool { return r.Method == e.Method && r.Pattern == e.Pattern }) {
			rows = append(rows, e)
		}
	}
	tbl, err := compileRoutes(rows)
	if err != nil {
		t.Fatal(err)
	}
	find := func(method, pattern string) *endpoint {
		for i := range tbl.rows {
			if e := &tbl.rows[i]; e.Method == method && e.Pattern == pattern {
				return e
			}
		}
		t.Fatalf("no row %s %s", method, pattern)
		return nil
	}
	route := []byte("/v1/route/7.41993,43.73141;7.42586,43.74087")
	events := []byte("/v1/shipments/LM123/events/e-9")
	nothing := []byte("/v1/nothing/here")
	var p pathParams
	for _, c := range []struct {
		name string
		f    func() bool
	}{
		{"match route", func() bool { return find("GET", "/v1/route/{coordinates}").match(route, &p) }},
		{"match middle parameter", func() bool {
			return find("GET", "/v1/shipments/{tracking}/events/{event}").match(events, &p)
		}},
		{"lookup route", func() bool { i, _ := tbl.lookup([]byte("GET"), route, &p); return i >= 0 }},
		{"lookup middle parameter", func() bool { i, _ := tbl.lookup([]byte("GET"), events, &p); return i >= 0 }},
		{"lookup 404", func() bool {
			i, allow := tbl.lookup([]byte("GET"), nothing, &p)
			return i < 0 && allow == nil
		}},
	} {
		var ok bool
		if n := testing.AllocsPerRun(200, func() { ok = c.f() }); n != 0 {
			t.Errorf("%s: %v allocations per run", c.name, n)
		}
		if !ok {
			t.Errorf("%s: no match", c.name)
		}
	}
}

// TestServerPathParams serves rows that echo their parameters, through
// the whole server: fasthttp's decoding, dispatch, precedence, 405, 404,
// metrics, and the OpenAPI document of their patterns.
func TestServerPathParams(t *testing.T) {
	echo := func(s *Server, ctx *fasthttp.RequestCtx, p pathParams) error {
		ctx.SetContentType("text/plain; charset=utf-8")
		var b strings.Builder
		for k := range p.Len() {
			name, v := p.At(k)
			fmt.Fprintf(&b, "%s=%s;", name, v)
		}
		ctx.SetBodyString(b.String())
		return nil
	}
	row := func(method, pattern string) endpoint {
		return endpoint{Method: method, Pattern: pattern, Handle: echo, Doc: paramDoc(patternParams(pattern)...)}
	}
	rows := []endpoint{
		row("GET", "/t/items/{id}/parts/{part}"),
		row("GET", "/t/items/{id}"),
		row("DELETE", "/t/items/{id}"),
		row("GET", "/t/items/fixed"),
		row("GET", "/t/{kind}/{id}/{part}"),
		row("GET", "/t/route/{coordinates}"),
	}
	s, err := newServer(nil, ServerConfig{}, rows)
	if err != nil {
		t.Fatal(err)
	}
	ts, done := serveTest(t, s)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	cases := []struct {
		method, path string
		status       int
		body         string // the echo, or the error code
	}{
		{"GET", "/t/items/a1/parts/p2", 200, "id=a1;part=p2;"},
		{"GET", "/t/items/a1", 200, "id=a1;"},
		{"DELETE", "/t/items/a1", 200, "id=a1;"},
		{"GET", "/t/items/fixed", 200, ""},
		{"DELETE", "/t/items/fixed", 200, "id=fixed;"},
		{"GET", "/t/items/fixed/parts/p", 200, "id=fixed;part=p;"},
		{"GET", "/t/things/a1/p2", 200, "kind=things;id=a1;part=p2;"},
		{"GET", "/t/route/7.41993,43.73141;7.42586,43.74087.json", 200, "coordinates=7.41993,43.73141;7.42586,43.74087.json;"},
		// ctx.Path() is percent-decoded: values are decoded, and an encoded
		// '/' separates segments like '/' (a value never holds '/').
		{"GET", "/t/items/caf%C3%A9%20au%20lait", 200, "id=café au lait;"},
		{"GET", "/t/items/a%2Fb", 200, "kind=items;id=a;part=b;"},
		{"GET", "/t/route/x%2Fa%2Fb", 404, "InvalidUrl"},
		{"GET", "/t/items/a1/parts/p%2F2", 404, "InvalidUrl"},
		{"PUT", "/t/items/a1", 405, "MethodNotAllowed"},
		{"GET", "/t/items/", 404, "InvalidUrl"},
		{"GET", "/t/items/a1/parts/p2/x", 404, "InvalidUrl"},
	}
	for _, c := range cases {
		a := ts.do(t, c.method, c.path, nil)
		if a.status != c.status {
			t.Errorf("%s %s: status %d, want %d: %s", c.method, c.path, a.status, c.status, a.body)
			continue
		}
		got := string(a.body)
		if c.status != 200 {
			var e struct{ Code string }
			if err := json.Unmarshal(a.body, &e); err != nil {
				t.Errorf("%s %s: %v: %s", c.method, c.path, err, a.body)
			}
			got = e.Code
		}
		if got != c.body {
			t.Errorf("%s %s: %q, want %q", c.method, c.path, got, c.body)
		}
		if c.status == 405 && a.header.Get("Allow") != "GET, DELETE" {
			t.Errorf("%s %s: Allow %q", c.method, c.path, a.header.Get("Allow"))
		}
	}
	// Metrics count by pattern.
	text := string(s.metrics.appendText(nil))
	for _, want := range []string{
		`lastmile_http_requests_total{endpoint="/t/items/{id}/parts/{part}",method="GET",code="200"} 2`,
		`lastmile_http_requests_total{endpoint="/t/items/{id}",method="DELETE",code="200"} 2`,
		`lastmile_http_requests_total{endpoint="unmatched",code="404"} 4`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	// The document lists every parameter as a required path parameter.
	var root map[string]any
	if err := json.Unmarshal(s.openapi, &root); err != nil {
		t.Fatal(err)
	}
	doc := &apiDoc{root}
	for _, e := range rows {
		op, _ := doc.get("paths", e.Pattern, strings.ToLower(e.Method)).(map[string]any)
		if op == nil {
			t.Errorf("%s %s not documented", e.Method, e.Pattern)
			continue
		}
		if err := checkPathParams(doc, e.Pattern, op); err != nil {
			t.Errorf("%s %s: %v", e.Method, e.Pattern, err)
		}
	}
}

// TestOpenAPIRejectsUndocumentedPathParams: each parameter of a pattern
// must be described once as a path parameter, and nothing else.
func TestOpenAPIRejectsUndocumentedPathParams(t *testing.T) {
	query := apiParam{Name: "q", In: "query", Schema: map[string]any{"type": "string"}}
	withQuery := paramDoc("a", "b")
	withQuery.Params = append(withQuery.Params, query)
	cases := []struct {
		pattern string
		doc     *apiOperation
		err     string // "" accepted
	}{
		{"/x/{a}/y/{b}", paramDoc("a", "b"), ""},
		{"/x/{a}/y/{b}", paramDoc("b", "a"), ""}, // listed in pattern order anyway
		{"/x/{a}/y/{b}", withQuery, ""},
		{"/x/{a}/y/{b}", paramDoc("a"), "{b} is not described"},
		{"/x/{a}/y/{b}", testDoc, "{a} is not described"},
		{"/x/{a}", paramDoc("a", "b"), "b described but not in the pattern"},
		{"/x", paramDoc("a"), "a described but not in the pattern"},
		{"/x/{a}", paramDoc("a", "a"), "path parameter a described twice"},
	}
	for _, c := range cases {
		tbl, err := compileRoutes([]endpoint{{Method: "GET", Pattern: c.pattern, Handle: noop, Doc: c.doc}})
		if err != nil {
			t.Fatal(err)
		}
		b, err := buildOpenAPI(tbl.rows, ServerConfig{}.withDefaults())
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%s: got %v, want an error containing %q", c.pattern, err, c.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", c.pattern, err)
			continue
		}
		var root map[string]any
		if err := json.Unmarshal(b, &root); err != nil {
			t.Fatal(err)
		}
		doc := &apiDoc{root}
		op, _ := doc.get("paths", c.pattern, "get").(map[string]any)
		if err := checkPathParams(doc, c.pattern, op); err != nil {
			t.Errorf("%s: %v", c.pattern, err)
		}
		if ps, _ := op["parameters"].([]any); len(ps) != len(c.doc.Params) {
			t.Errorf("%s: %d parameters, want %d", c.pattern, len(ps), len(c.doc.Params))
		}
	}
}

// TestServerDispatchAllocs holds the server's own dispatch (metrics,
// matching, the handler call with its parameters) to no allocation.
func TestServerDispatchAllocs(t *testing.T) {
	var got string
	rows := []endpoint{{Method: "GET", Pattern: "/t/items/{id}/parts/{part}", Doc: paramDoc("id", "part"),
		Handle: func(_ *Server, ctx *fasthttp.RequestCtx, p pathParams) error {
			if string(p.Get("id")) != "a1" || string(p.Get("part")) != "p2" {
				got = "wrong parameters"
			}
			return nil
		}}}
	s, err := newServer(nil, ServerConfig{}, rows)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown(context.Background())
	var ctx fasthttp.RequestCtx
	ctx.Request.SetRequestURI("/t/items/a1/parts/p2")
	n := testing.AllocsPerRun(200, func() {
		ctx.Response.Reset()
		s.handle(&ctx)
	})
	if ctx.Response.StatusCode() != 200 || got != "" {
		t.Fatalf("%d %s %s", ctx.Response.StatusCode(), ctx.Response.Body(), got)
	}
	if n != 0 {
		t.Errorf("%v allocations per request", n)
	}
}
