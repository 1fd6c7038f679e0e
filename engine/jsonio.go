package engine

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"
)

// appendJSONFloat appends x as encoding/json formats a float64 (the
// ECMAScript number-to-string rule: plain decimal between 1e-6 and 1e21,
// exponent form outside with a minimal exponent).
func appendJSONFloat(b []byte, x float64) []byte {
	abs := math.Abs(x)
	format := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, x, format, -1, 64)
	if format == 'e' {
		// e-07 becomes e-7.
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

// jsonKind names a Go type by the JSON value it decodes from ("an array
// of integers").
func jsonKind(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == reflect.TypeFor[json.RawMessage]() {
		return "a JSON value"
	}
	switch t.Kind() {
	case reflect.Slice, reflect.Array:
		if t.Elem() == reflect.TypeFor[json.RawMessage]() {
			return "an array of [lon, lat] arrays"
		}
		return "an array of " + jsonNoun(t.Elem()) + "s"
	case reflect.Struct, reflect.Map, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n := jsonNoun(t)
		if n[0] == 'o' || n[0] == 'i' || n[0] == 'a' {
			return "an " + n
		}
		return "a " + n
	}
	return "a " + jsonNoun(t)
}

func jsonNoun(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Slice, reflect.Array:
		return "array"
	case reflect.Struct, reflect.Map:
		return "object"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "integer"
	case reflect.Float32, reflect.Float64:
		return "number"
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean"
	case reflect.Interface:
		return "value"
	}
	return t.String()
}

func clip(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "..."
	}
	return string(b)
}

// DecodeJSON decodes a request body strictly: unknown fields, field names
// that differ from the declared ones in case only (encoding/json would
// accept them), duplicate fields and trailing data are rejected, and
// decoding failures become InvalidQuery errors naming the field.
func DecodeJSON(body []byte, v any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return &Error{"InvalidQuery", "empty body: want a JSON object"}
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var te *json.UnmarshalTypeError
		var se *json.SyntaxError
		var e *Error
		switch {
		case errors.As(err, &e):
			return e
		case errors.As(err, &te):
			field := te.Field
			if field == "" {
				field = "(top level)"
			}
			return &Error{"InvalidQuery", fmt.Sprintf("field %s: want %s, got %s", field, jsonKind(te.Type), te.Value)}
		case errors.As(err, &se):
			return &Error{"InvalidQuery", fmt.Sprintf("malformed JSON at byte %d: %v", se.Offset, err)}
		case errors.Is(err, io.ErrUnexpectedEOF):
			return &Error{"InvalidQuery", "malformed JSON: unexpected end of body"}
		}
		msg := strings.TrimPrefix(err.Error(), "json: ")
		return &Error{"InvalidQuery", msg}
	}
	if _, err := dec.Token(); err != io.EOF {
		return &Error{"InvalidQuery", "malformed JSON: trailing data after the object"}
	}
	// The body is valid JSON that decoded: check the names exactly.
	if err := checkKeys(body, reflect.TypeOf(v), &jsonFieldCache); err != nil {
		return &Error{"InvalidQuery", err.Error()}
	}
	return nil
}

var unmarshalerType = reflect.TypeFor[json.Unmarshaler]()

// keyChecker walks one JSON text that encoding/json has accepted and
// checks that every object key names a field of the type decoded into
// exactly (encoding/json matches names regardless of case), once. It
// scans the bytes itself: the json.Decoder token stream it replaces took
// three quarters of decoding a batch of pings. On a text that is not
// valid JSON it returns an error and does not panic.
//
// Field names per type are memoised in fields (a pure function of the
// type, as encoding/json caches its own). path is the location of the
// value being checked, for error messages ("jobs[1].id").
type keyChecker struct {
	b      []byte
	i      int
	path   []byte
	fields *sync.Map // reflect.Type -> map[string]reflect.Type
}

// jsonFieldCache memoises jsonFields for DecodeJSON.
var jsonFieldCache sync.Map

// errKeyScan is returned for a text the checker cannot walk (it was
// validated before, so only a bug makes one).
var errKeyScan = errors.New("malformed JSON")

// checkKeys checks the keys of body, one JSON value of type t.
func checkKeys(body []byte, t reflect.Type, fields *sync.Map) error {
	c := keyChecker{b: body, fields: fields}
	return c.value(t)
}

func (c *keyChecker) ws() {
	for c.i < len(c.b) {
		switch c.b[c.i] {
		case ' ', '\t', '\n', '\r':
			c.i++
		default:
			return
		}
	}
}

// str skips a string at c.i and returns its contents as encoding/json
// reads them (escapes undone, invalid UTF-8 as U+FFFD).
func (c *keyChecker) str() (string, error) {
	if c.i >= len(c.b) || c.b[c.i] != '"' {
		return "", errKeyScan
	}
	start, escaped := c.i, false
	for c.i++; c.i < len(c.b); c.i++ {
		switch c.b[c.i] {
		case '\\':
			escaped = true
			c.i++
		case '"':
			c.i++
			raw := c.b[start:c.i]
			for _, ch := range raw {
				escaped = escaped || ch >= utf8.RuneSelf
			}
			if !escaped {
				return string(raw[1 : len(raw)-1]), nil
			}
			var s string
			if err := json.Unmarshal(raw, &s); err != nil {
				return "", errKeyScan
			}
			return s, nil
		}
	}
	return "", errKeyScan
}

// value checks the value at c.i, decoded into t (nil: keys unchecked).
func (c *keyChecker) value(t reflect.Type) error {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t != nil && (t.Implements(unmarshalerType) || reflect.PointerTo(t).Implements(unmarshalerType)) {
		t = nil // opaque: its own decoder judges it
	}
	c.ws()
	if c.i >= len(c.b) {
		return errKeyScan
	}
	switch c.b[c.i] {
	case '{':
		return c.object(t)
	case '[':
		c.i++
		var et reflect.Type
		if t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
			et = t.Elem()
		}
		at := len(c.path)
		for k := 0; ; k++ {
			c.ws()
			if c.i < len(c.b) && c.b[c.i] == ']' && k == 0 {
				c.i++
				return nil
			}
			c.path = append(strconv.AppendInt(append(c.path[:at], '['), int64(k), 10), ']')
			if err := c.value(et); err != nil {
				return err
			}
			c.path = c.path[:at]
			if done, err := c.sep(']'); done || err != nil {
				return err
			}
		}
	case '"':
		_, err := c.str()
		return err
	}
	// A number or a literal: up to the next delimiter.
	for c.i < len(c.b) {
		switch c.b[c.i] {
		case ',', ']', '}', ' ', '\t', '\n', '\r':
			return nil
		}
		c.i++
	}
	return nil
}

// object checks the object at c.i.
func (c *keyChecker) object(t reflect.Type) error {
	c.i++
	var fields map[string]reflect.Type
	if t != nil && t.Kind() == reflect.Struct {
		if f, ok := c.fields.Load(t); ok {
			fields = f.(map[string]reflect.Type)
		} else {
			fields = jsonFields(t)
			c.fields.Store(t, fields)
		}
	}
	var seenSmall [16]string
	seen := seenSmall[:0]
	var seenMap map[string]bool
	at := len(c.path)
	for first := true; ; first = false {
		c.ws()
		if first && c.i < len(c.b) && c.b[c.i] == '}' {
			c.i++
			return nil
		}
		key, err := c.str()
		if err != nil {
			return err
		}
		if at > 0 {
			c.path = append(c.path[:at], '.')
		}
		c.path = append(c.path, key...)
		if seenMap != nil {
			if seenMap[key] {
				return fmt.Errorf("field %s given twice", c.path)
			}
			seenMap[key] = true
		} else {
			if slices.Contains(seen, key) {
				return fmt.Errorf("field %s given twice", c.path)
			}
			if seen = append(seen, key); len(seen) > len(seenSmall) {
				seenMap = make(map[string]bool, 2*len(seen))
				for _, k := range seen {
					seenMap[k] = true
				}
			}
		}
		var ft reflect.Type
		switch {
		case fields != nil:
			var ok bool
			if ft, ok = fields[key]; !ok {
				return fmt.Errorf("unknown field %q (names are case-sensitive)", c.path)
			}
		case t != nil && t.Kind() == reflect.Map:
			ft = t.Elem()
		}
		c.ws()
		if c.i >= len(c.b) || c.b[c.i] != ':' {
			return errKeyScan
		}
		c.i++
		if err := c.value(ft); err != nil {
			return err
		}
		c.path = c.path[:at]
		if done, err := c.sep('}'); done || err != nil {
			return err
		}
	}
}

// sep reads the comma or the closing bracket after a member or an
// element; done is true at the closing one.
func (c *keyChecker) sep(closing byte) (done bool, err error) {
	c.ws()
	if c.i >= len(c.b) {
		return false, errKeyScan
	}
	c.i++
	switch c.b[c.i-1] {
	case ',':
		return false, nil
	case closing:
		return true, nil
	}
	return false, errKeyScan
}

// jsonFields maps the JSON names of t's fields (as encoding/json names
// them, embedded structs flattened) to their types.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		ft := f.Type
		if f.Anonymous && name == "" {
			et := ft
			if et.Kind() == reflect.Pointer {
				et = et.Elem()
			}
			if et.Kind() == reflect.Struct {
				for k, v := range jsonFields(et) {
					if _, ok := out[k]; !ok {
						out[k] = v
					}
				}
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[name] = ft
	}
	return out
}

// appendJSONString appends s as a JSON string, escaping as encoding/json
// does (quotes, backslashes, control characters with \n \r \t \b \f
// short forms, <, >, &, U+2028, U+2029; invalid UTF-8 becomes U+FFFD).
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
