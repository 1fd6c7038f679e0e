package engine

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/valyala/fasthttp"
)

// endpoint is one row of the route table: a method, a path pattern, the
// handler and its OpenAPI operation.
//
// A pattern is '/' followed by '/'-separated segments, each either literal
// text or a whole-segment parameter "{name}" (name: letters, digits, '_';
// at most maxPathParams per pattern, each name once): "/v1/table",
// "/v1/route/{coordinates}", "/v1/shipments/{tracking}/events". A literal
// segment matches itself; a parameter matches one non-empty segment, that
// is any bytes but '/'. No segment is empty: a pattern has no "//" and no
// trailing '/', so "/v1/table/" does not match "/v1/table".
//
// Patterns match ctx.Path(), which fasthttp has percent-decoded and
// normalized ("//" collapsed, "." and ".." segments resolved). An encoded
// slash (%2F) is therefore a segment separator like '/': a parameter never
// contains '/' and never spans two segments, and "/v1/jobs/a%2Fb" is the
// three-segment path "/v1/jobs/a/b" (404 here). Every other decoded byte,
// ';', ',' and '.' included, may be part of a parameter (which is never
// "." or "..": fasthttp resolves those segments).
type endpoint struct {
	Method  string
	Pattern string
	Handle  func(s *Server, ctx *fasthttp.RequestCtx, p pathParams) error
	Doc     *apiOperation
	// Guard says who may call it (dispatch_http.go); the zero value is
	// open to all.
	Guard guard

	segs   []segment // the pattern's segments
	names  []string  // its parameter names in pattern order (nil: none)
	first  int       // index in segs of the first parameter
	prefix string    // Pattern up to the first parameter (ending in '/'), or all of it
}

// segment is one segment of a compiled pattern.
type segment struct {
	lit   string // the literal text ("" for a parameter)
	param bool
}

// maxPathParams is the most parameters one pattern may have: pathParams
// holds their values in a fixed-size array, so that matching allocates
// nothing.
const maxPathParams = 4

// pathParams are the path parameters of the matched row, in pattern
// order. The values are slices of ctx.Path(), valid while the handler
// runs (copy them to keep them). Handlers get it by value: it lives on the
// stack, no allocation per request.
type pathParams struct {
	names []string // the row's parameter names (shared, read-only)
	vals  [maxPathParams][]byte
}

// Get returns the value of the parameter name (never empty). It panics
// when the row's pattern has no such parameter: a programming error, which
// the server answers 500 InternalError.
func (p *pathParams) Get(name string) []byte {
	for i, n := range p.names {
		if n == name {
			return p.vals[i]
		}
	}
	panic("engine: no path parameter {" + name + "} in the route's pattern")
}

// Len is the number of parameters of the row's pattern.
func (p *pathParams) Len() int { return len(p.names) }

// At returns the name and value of the i-th parameter of the pattern.
func (p *pathParams) At(i int) (name string, value []byte) { return p.names[i], p.vals[i] }

// routeTable is a compiled route table.
type routeTable struct {
	rows  []endpoint // in table order: metrics and the OpenAPI document follow it
	order []int      // indices of rows in the order they are tried (see compileRoutes)
}

// compileRoutes fills the matching fields of each row, orders the rows by
// precedence and rejects malformed patterns and duplicates (a programming
// error): a pattern not starting with '/', an empty segment, '{' or '}'
// elsewhere than around a whole segment, a bad or repeated parameter name,
// more than maxPathParams parameters, and two rows whose patterns are the
// same up to parameter names with the same method. Rows of different
// methods on the same pattern must name its parameters alike (they are
// one path of the OpenAPI document).
//
// Precedence: when the patterns of several rows match a path, the first
// segment where they differ decides, and a literal segment beats a
// parameter ("/v1/shipments/search" before "/v1/shipments/{tracking}").
// Patterns matching the same path have as many segments and the same
// literals, so this orders any two of them, except patterns identical up
// to parameter names, which differ in method. Rows are tried in table
// order, except that a row is tried after every more specific row that
// matches some path it matches: the first rows of the table (the hot
// route) are tried first.
func compileRoutes(rows []endpoint) (routeTable, error) {
	byShape := map[string]*endpoint{} // method + " " + pattern with "{}" for parameters
	paths := map[string]*endpoint{}   // pattern with "{}" for parameters
	for i := range rows {
		e := &rows[i]
		key := e.Method + " " + e.Pattern
		if !strings.HasPrefix(e.Pattern, "/") || e.Handle == nil || e.Doc == nil {
			return routeTable{}, fmt.Errorf("route %s: want a path starting with '/', a handler and a doc", key)
		}
		if err := e.compile(); err != nil {
			return routeTable{}, fmt.Errorf("route %s: %w", key, err)
		}
		shape := e.shape()
		if d := byShape[e.Method+" "+shape]; d != nil {
			if d.Pattern == e.Pattern {
				return routeTable{}, fmt.Errorf("route %s registered twice", key)
			}
			return routeTable{}, fmt.Errorf("route %s: same pattern as %s %s but for parameter names (one of them would never match)",
				key, d.Method, d.Pattern)
		}
		byShape[e.Method+" "+shape] = e
		if d := paths[shape]; d != nil && !slices.Equal(d.names, e.names) {
			return routeTable{}, fmt.Errorf("route %s: names the parameters of %s %s differently (one path, one set of names)",
				key, d.Method, d.Pattern)
		}
		paths[shape] = e
	}
	// A topological order of "more specific and overlapping", the lowest
	// table index first.
	t := routeTable{rows: rows, order: make([]int, 0, len(rows))}
	above := make([]int, len(rows)) // per row, the more specific overlapping rows not yet placed
	for a := range rows {
		for b := range rows {
			if overlap(&rows[a], &rows[b]) && comparePrecedence(&rows[a], &rows[b]) < 0 {
				above[b]++
			}
		}
	}
	placed := make([]bool, len(rows))
	for len(t.order) < len(rows) {
		a := 0
		for a < len(rows) && (placed[a] || above[a] > 0) {
			a++
		}
		if a == len(rows) {
			return routeTable{}, errors.New("route precedence has a cycle") // cannot happen: comparePrecedence is a preorder
		}
		placed[a] = true
		t.order = append(t.order, a)
		for b := range rows {
			if overlap(&rows[a], &rows[b]) && comparePrecedence(&rows[a], &rows[b]) < 0 {
				above[b]--
			}
		}
	}
	return t, nil
}

// compile splits e.Pattern (known to start with '/') into segments.
func (e *endpoint) compile() error {
	e.segs, e.names, e.first, e.prefix = nil, nil, -1, e.Pattern
	start := 1 // offset of the segment in Pattern
	for _, s := range strings.Split(e.Pattern[1:], "/") {
		switch {
		case s == "":
			return errors.New("empty path segment (no \"//\", no trailing '/')")
		case len(s) > 2 && s[0] == '{' && s[len(s)-1] == '}' && validParamName(s[1:len(s)-1]):
			name := s[1 : len(s)-1]
			if slices.Contains(e.names, name) {
				return fmt.Errorf("parameter {%s} given twice", name)
			}
			if len(e.names) == maxPathParams {
				return fmt.Errorf("more than %d parameters", maxPathParams)
			}
			if e.first < 0 {
				e.first, e.prefix = len(e.segs), e.Pattern[:start]
			}
			e.names = append(e.names, name)
			e.segs = append(e.segs, segment{param: true})
		case strings.ContainsAny(s, "{}"):
			return fmt.Errorf("segment %q: a parameter is a whole segment {name}, its name letters, digits and '_'", s)
		default:
			e.segs = append(e.segs, segment{lit: s})
		}
		start += len(s) + 1
	}
	return nil
}

func validParamName(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return s != ""
}

// shape is the pattern with every parameter written "{}".
func (e *endpoint) shape() string {
	var b strings.Builder
	for _, s := range e.segs {
		b.WriteByte('/')
		if s.param {
			b.WriteString("{}")
		} else {
			b.WriteString(s.lit)
		}
	}
	return b.String()
}

// overlap reports whether some path matches both patterns: they have as
// many segments, with the same literal wherever both have one.
func overlap(a, b *endpoint) bool {
	if len(a.segs) != len(b.segs) {
		return false
	}
	for k, s := range a.segs {
		if !s.param && !b.segs[k].param && s.lit != b.segs[k].lit {
			return false
		}
	}
	return true
}

// comparePrecedence orders overlapping patterns by their segments' kinds,
// left to right, a literal before a parameter.
func comparePrecedence(a, b *endpoint) int {
	for k := range min(len(a.segs), len(b.segs)) {
		if pa, pb := a.segs[k].param, b.segs[k].param; pa != pb {
			if pb {
				return -1
			}
			return 1
		}
	}
	return 0
}

// match reports whether path matches the row, with its parameters in p.
// It allocates nothing.
func (e *endpoint) match(path []byte, p *pathParams) bool {
	if e.names == nil {
		return string(path) == e.Pattern
	}
	if len(path) < len(e.prefix) || string(path[:len(e.prefix)]) != e.prefix {
		return false
	}
	path = path[len(e.prefix):] // segment e.first onwards
	n := 0
	for k, sg := range e.segs[e.first:] {
		if k > 0 {
			if len(path) == 0 || path[0] != '/' {
				return false
			}
			path = path[1:]
		}
		end := bytes.IndexByte(path, '/')
		if end < 0 {
			end = len(path)
		}
		if sg.param {
			if end == 0 {
				return false
			}
			p.vals[n] = path[:end]
			n++
		} else if string(path[:end]) != sg.lit {
			return false
		}
		path = path[end:]
	}
	if len(path) != 0 {
		return false
	}
	p.names = e.names
	return true
}

// lookup finds the row answering method on path: the first row in
// precedence order whose method is method and whose pattern matches the
// path, with its parameters in p. Without one it returns -1 and the
// methods of the rows whose pattern matches the path, each once, in
// precedence order (none: 404 InvalidUrl; some: 405 MethodNotAllowed with
// them in Allow). A matched request allocates nothing.
func (t *routeTable) lookup(method, path []byte, p *pathParams) (int, []string) {
	for _, i := range t.order {
		if e := &t.rows[i]; string(method) == e.Method && e.match(path, p) {
			return i, nil
		}
	}
	var allow []string
	for _, i := range t.order {
		if e := &t.rows[i]; !slices.Contains(allow, e.Method) && e.match(path, p) {
			allow = append(allow, e.Method)
		}
	}
	return -1, allow
}
