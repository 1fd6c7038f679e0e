package engine

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"sync"
	"testing"
)

// checkKeysTokens is the reference for keyChecker: the json.Decoder
// token stream walk DecodeJSON used before (session 16). It reads one
// JSON value from dec (known to be valid) and checks that every object key
// names a field of t exactly, once.
func checkKeysTokens(dec *json.Decoder, t reflect.Type, at string) error {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t != nil && (t.Implements(unmarshalerType) || reflect.PointerTo(t).Implements(unmarshalerType)) {
		t = nil // opaque: its own decoder judges it
	}
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	switch tok {
	case json.Delim('{'):
		var fields map[string]reflect.Type
		if t != nil && t.Kind() == reflect.Struct {
			fields = jsonFields(t)
		}
		seen := map[string]bool{}
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				return err
			}
			key := kt.(string)
			path := key
			if at != "" {
				path = at + "." + key
			}
			if seen[key] {
				return fmt.Errorf("field %s given twice", path)
			}
			seen[key] = true
			var ft reflect.Type
			switch {
			case fields != nil:
				var ok bool
				if ft, ok = fields[key]; !ok {
					return fmt.Errorf("unknown field %q (names are case-sensitive)", path)
				}
			case t != nil && t.Kind() == reflect.Map:
				ft = t.Elem()
			}
			if err := checkKeysTokens(dec, ft, path); err != nil {
				return err
			}
		}
		_, err = dec.Token()
		return err
	case json.Delim('['):
		var et reflect.Type
		if t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
			et = t.Elem()
		}
		for i := 0; dec.More(); i++ {
			if err := checkKeysTokens(dec, et, fmt.Sprintf("%s[%d]", at, i)); err != nil {
				return err
			}
		}
		_, err = dec.Token()
		return err
	}
	return nil
}

// keyDoc exercises every kind of value keyChecker meets: embedded and
// nested structs, slices, maps, pointers, opaque values, an interface.
type keyDoc struct {
	keyBase
	Jobs   []keyInner          `json:"jobs"`
	ByName map[string]keyInner `json:"by_name"`
	Ptr    *keyInner           `json:"ptr"`
	Grid   [][]keyInner        `json:"grid"`
	Raw    json.RawMessage     `json:"raw"`
	Any    any                 `json:"any"`
	Skip   int                 `json:"-"`
	Plain  int
}

type keyBase struct {
	Version int `json:"version"`
}

type keyInner struct {
	ID   int    `json:"id"`
	Note string `json:"note,omitempty"`
}

// compareKeyCheckers runs both checkers on body (valid JSON) for the
// type of v and reports a difference.
func compareKeyCheckers(t *testing.T, body []byte, v any) {
	t.Helper()
	var cache sync.Map
	got := checkKeys(body, reflect.TypeOf(v), &cache)
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	want := checkKeysTokens(dec, reflect.TypeOf(v), "")
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("%s into %T: keyChecker %v, token walk %v", body, v, got, want)
	}
}

// TestKeyCheckerMatchesTokens compares the byte scanner with the token
// walk on valid bodies: the same verdicts and messages.
func TestKeyCheckerMatchesTokens(t *testing.T) {
	bodies := []string{
		`{"version":1,"jobs":[{"id":1},{"id":2,"note":"x"}],"by_name":{"A":{"id":3}},"raw":{"Any":[1]},"Plain":2}`,
		`{"jobs":[{"id":1},{"ID":2}]}`,
		`{"jobs":[{"id":1,"id":2}]}`,
		`{"by_name":{"a":{"Id":1}}}`,
		`{"Version":1}`, `{"plain":1}`, `{"Skip":1}`,
		` { "jobs" : [ ] , "grid" : [ [ { "id" : 1 } , { "nope" : 2 } ] ] } `,
		`{"ptr":{"id":1,"note":"a\"b"}}`, `{"ptr":null}`, `{"ptr":{"i\u0064":1}}`,
		`{"any":{"X":[{"Y":1}]},"version":-1.5e3}`,
		`{"by_name":{"k1":{},"k2":{"id":true},"k1":{}}}`,
		`{"raw":[1,{"a":2}],"jobs":[{},{},{"note":"n"}]}`,
		`{"\u0076ersion":1,"version":2}`,
		`{"a":1,"b":2,"c":3,"d":4,"e":5,"f":6,"g":7,"h":8,"i":9,"j":10,"k":11,"l":12,"m":13,"n":14,"o":15,"p":16,"q":17,"a":18}`,
		`[]`, `[{"id":1},{"x":2}]`, `"s"`, `12`, `null`, `{}`,
	}
	for _, b := range bodies {
		if !json.Valid([]byte(b)) {
			t.Fatalf("not valid JSON: %s", b)
		}
		compareKeyCheckers(t, []byte(b), &keyDoc{})
		compareKeyCheckers(t, []byte(b), &map[string]keyDoc{})
		compareKeyCheckers(t, []byte(b), &[]keyInner{})
		compareKeyCheckers(t, []byte(b), &PositionsRequest{})
	}
}

// FuzzKeyChecker compares the scanner with the token walk on any valid
// JSON, and runs the scanner alone on invalid text (an error is fine, a
// panic is not).
func FuzzKeyChecker(f *testing.F) {
	f.Add([]byte(`{"version":1,"jobs":[{"id":1},{"ID":2}],"by_name":{"a":{"id":1}},"Plain":2}`))
	f.Add([]byte(`{"positions":[{"vehicle":"v","time":1,"location":[7.5,43.7],"speed":3}]}`))
	f.Add([]byte(`{"a":"\"\\","b":[[],{}],"c":{"d":null}}`))
	f.Add([]byte(`{"jobs":[{"id":1,"id":2}]`))
	f.Fuzz(func(t *testing.T, body []byte) {
		if !json.Valid(body) {
			var cache sync.Map
			_ = checkKeys(body, reflect.TypeOf(&keyDoc{}), &cache)
			return
		}
		compareKeyCheckers(t, body, &keyDoc{})
		compareKeyCheckers(t, body, &PositionsRequest{})
	})
}

// BenchmarkDecodePositions decodes a batch of 100 pings strictly:
// "scanner" is DecodeJSON, "tokens" the same with the token walk it
// replaced, for the ratio in one run.
func BenchmarkDecodePositions(b *testing.B) {
	var req PositionsRequest
	for i := range 100 {
		req.Positions = append(req.Positions, Position{Vehicle: fmt.Sprintf("van-%d", i/10), Time: 1767261600 + float64(10*i),
			Location: LonLat{-8.61 + float64(i)*1e-4, 41.15 + float64(i)*1e-4}})
	}
	body, _ := json.Marshal(&req)
	b.Run("scanner", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		for b.Loop() {
			var r PositionsRequest
			if err := DecodeJSON(body, &r); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("tokens", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		for b.Loop() {
			var r PositionsRequest
			if err := json.Unmarshal(body, &r); err != nil {
				b.Fatal(err)
			}
			dec := json.NewDecoder(bytes.NewReader(body))
			dec.UseNumber()
			if err := checkKeysTokens(dec, reflect.TypeOf(&r), ""); err != nil {
				b.Fatal(err)
			}
		}
	})
}
