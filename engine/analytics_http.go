package engine

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/lastmile/lastmile/engine/analytics"
)

// maxImportLines caps the facts of one import request.
const maxImportLines = 100_000

// analyticsQuery reads the analytics query of a request.
func (s *Server) analyticsQuery(ctx *fasthttp.RequestCtx) (analytics.Query, error) {
	args := ctx.QueryArgs()
	return analytics.ParseQuery(func(name string) string { return string(args.Peek(name)) }, time.Now().UTC())
}

// wantsCSV reports whether the client asked for CSV (format=csv or an
// Accept header naming text/csv).
func wantsCSV(ctx *fasthttp.RequestCtx) bool {
	if f := string(ctx.QueryArgs().Peek("format")); f != "" {
		return f == "csv"
	}
	return bytes.Contains(ctx.Request.Header.Peek(fasthttp.HeaderAccept), []byte("text/csv"))
}

// handleAnalytics answers GET /v1/analytics/{figure}: the figure per
// group as JSON, or CSV.
func (s *Server) handleAnalytics(ctx *fasthttp.RequestCtx, p pathParams) error {
	if f := string(ctx.QueryArgs().Peek("format")); f != "" && f != "csv" && f != "json" {
		return &Error{"InvalidValue", fmt.Sprintf("format %q: want json or csv", clip([]byte(f), 20))}
	}
	q, err := s.analyticsQuery(ctx)
	if err != nil {
		return err
	}
	res, err := s.analytics.Figure(context.Background(), string(p.Get("figure")), q)
	if err != nil {
		return err
	}
	if wantsCSV(ctx) {
		return writeCSV(ctx, res)
	}
	return s.writeJSON(ctx, res)
}

// writeCSV writes a figure as CSV: a header of its columns, its rows,
// then the total (group "total"). Numbers keep full precision; an empty
// cell is no data.
func writeCSV(ctx *fasthttp.RequestCtx, res analytics.Result) error {
	ctx.SetContentType("text/csv; charset=utf-8")
	ctx.Response.Header.Set("Content-Disposition", fmt.Sprintf(`attachment; filename="%s_%s_%s.csv"`, res.Figure, res.From, res.To))
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	w.Write(res.Columns)
	rec := make([]string, len(res.Columns))
	for _, r := range append(res.Rows, res.Total) {
		for i, c := range res.Columns {
			rec[i] = csvCell(r[c])
		}
		w.Write(rec)
	}
	w.Flush()
	ctx.SetBody(b.Bytes())
	return w.Error()
}

// csvCell formats one value; text that a spreadsheet would take for a
// formula is prefixed with a quote (OWASP CSV injection).
func csvCell(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case int64:
		return strconv.FormatInt(x, 10)
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64)
	case string:
		if x != "" && strings.ContainsRune("=+-@\t\r", rune(x[0])) {
			return "'" + x
		}
		return x
	}
	return fmt.Sprint(v)
}

// importResult answers POST /v1/analytics/facts.
type importResult struct {
	Received int `json:"received"`
	Stored   int `json:"stored"`
}

// handleAnalyticsImport answers POST /v1/analytics/facts: ended stop
// attempts from another system, one JSON object per line (a history to
// compare with). Lines whose id came before are skipped; a bad line
// stores nothing and names its number.
func (s *Server) handleAnalyticsImport(ctx *fasthttp.RequestCtx, _ pathParams) error {
	sc := bufio.NewScanner(bytes.NewReader(ctx.PostBody()))
	sc.Buffer(make([]byte, 0, 64<<10), 64<<10)
	var in []analytics.FactInput
	line := 0
	for sc.Scan() {
		line++
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		if len(in) == maxImportLines {
			return &Error{"TooBig", fmt.Sprintf("more than %d facts: send them in several requests", maxImportLines)}
		}
		var f analytics.FactInput
		if err := DecodeJSON(b, &f); err != nil {
			e := err.(*Error)
			return &Error{e.Code, fmt.Sprintf("line %d: %s", line, e.Message)}
		}
		in = append(in, f)
	}
	if err := sc.Err(); err != nil {
		return &Error{"InvalidQuery", fmt.Sprintf("line %d: %v (at most 64 kB a line)", line+1, err)}
	}
	if len(in) == 0 {
		return &Error{"InvalidQuery", "empty body: want one JSON fact per line"}
	}
	n, err := s.analytics.Import(context.Background(), in, time.UTC)
	if err != nil {
		return err
	}
	return s.writeJSON(ctx, importResult{Received: len(in), Stored: n})
}

// handleLive answers GET /v1/live: the vans of the current plans with
// their open stops and risks.
func (s *Server) handleLive(ctx *fasthttp.RequestCtx, _ pathParams) error {
	v, err := s.disp.Live(context.Background())
	if err != nil {
		return err
	}
	ctx.Response.Header.Set("Cache-Control", "no-store")
	return s.writeJSON(ctx, v)
}

// jsonRaw encodes v for embedding in a page.
func jsonRaw(v any) (json.RawMessage, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode %T: %w", v, err)
	}
	return b, nil
}
