package message

import (
	"strings"
	"unicode"
	"unicode/utf16"

	"golang.org/x/text/unicode/norm"
)

// SMS encodings that Segments reports.
const (
	// EncodingGSM7 is the GSM 03.38 default alphabet (7 bits a character,
	// 2 for a character of the extension table).
	EncodingGSM7 = "GSM-7"
	// EncodingUCS2 is UCS-2/UTF-16 (16 bits a code unit), used when the
	// body holds any character outside GSM-7.
	EncodingUCS2 = "UCS-2"
)

// Sizes of one SMS and of each part of a concatenated SMS (whose user data
// header takes 6 bytes), in septets for GSM-7 and UTF-16 code units for
// UCS-2.
const (
	gsmSingle  = 160
	gsmPart    = 153
	ucs2Single = 70
	ucs2Part   = 67
)

// gsmBasic is the GSM 03.38 default alphabet (one septet each), in code
// order; 0x1B, the escape to the extension table, is left out.
const gsmBasic = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?" +
	"¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"

// gsmExtension is the GSM 03.38 extension table (escape + one septet).
const gsmExtension = "\f^{}\\[~]|€"

// gsmSeptets is the size of r in GSM-7 septets: 1 in the basic alphabet,
// 2 in the extension table, 0 when GSM-7 cannot encode it.
func gsmSeptets(r rune) int {
	switch {
	case strings.ContainsRune(gsmBasic, r):
		return 1
	case strings.ContainsRune(gsmExtension, r):
		return 2
	}
	return 0
}

// Segments is how an SMS with this body is sent: the encoding (EncodingGSM7
// when every character is in the GSM 03.38 basic or extension table, else
// EncodingUCS2) and the number of segments, 1 for up to 160 septets (70
// UTF-16 code units) and otherwise parts of 153 septets (67 code units)
// each, an extension character or a surrogate pair never split across two
// parts. An empty body is 0 segments.
func Segments(body string) (encoding string, n int) {
	if body == "" {
		return EncodingGSM7, 0
	}
	sizes := make([]int, 0, len(body))
	gsm := true
	for _, r := range body {
		s := gsmSeptets(r)
		if s == 0 {
			gsm = false
			break
		}
		sizes = append(sizes, s)
	}
	single, part := gsmSingle, gsmPart
	encoding = EncodingGSM7
	if !gsm {
		encoding, single, part = EncodingUCS2, ucs2Single, ucs2Part
		sizes = sizes[:0]
		for _, r := range body {
			sizes = append(sizes, max(utf16.RuneLen(r), 1))
		}
	}
	total := 0
	for _, s := range sizes {
		total += s
	}
	if total <= single {
		return encoding, 1
	}
	n, used := 1, 0
	for _, s := range sizes {
		if used+s > part {
			n, used = n+1, 0
		}
		used += s
	}
	return encoding, n
}

// gsmFallback spells characters outside GSM-7 with GSM-7 ones where
// dropping the accent (which the decomposition in toGSM does) is not the
// right spelling or not enough.
var gsmFallback = map[rune]string{
	'ç': "c", // only the capital Ç is in the basic alphabet
	'œ': "oe", 'Œ': "OE", 'ÿ': "y", 'ł': "l", 'Ł': "L", 'đ': "d", 'Đ': "D",
	'‘': "'", '’': "'", '‚': "'", '‛': "'", '′': "'", '´': "'", '`': "'",
	'“': "\"", '”': "\"", '„': "\"", '«': "\"", '»': "\"", '″': "\"",
	'‐': "-", '‑': "-", '‒': "-", '–': "-", '—': "-", '―': "-", '−': "-",
	'…': "...", '•': "-", '·': ".",
	'\u00a0': " ", '\u2007': " ", '\u2009': " ", '\u202f': " ", '\t': " ",
}

// toGSM replaces the characters of s that GSM-7 cannot encode by GSM-7
// equivalents where there is one (ã → a, ç → c, ê → e, ’ → ', – → -,
// no-break space → space), keeping every GSM-7 character (é, à, ñ, ü…) as
// it is. Characters with no equivalent (emoji, other scripts) stay.
func toGSM(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		if gsmSeptets(r) > 0 {
			b.WriteRune(r)
			continue
		}
		if f, ok := gsmFallback[r]; ok {
			b.WriteString(f)
			continue
		}
		// A letter with a diacritic: its base letter when that is GSM-7
		// (NFD puts the base first, then combining marks).
		d := []rune(norm.NFD.String(string(r)))
		if len(d) > 1 && gsmSeptets(d[0]) > 0 && allMarks(d[1:]) {
			b.WriteRune(d[0])
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// allMarks reports whether every rune is a combining mark.
func allMarks(rs []rune) bool {
	for _, r := range rs {
		if !unicode.Is(unicode.Mn, r) {
			return false
		}
	}
	return true
}

// fitSMS is body as sent: body itself when it fits one segment, else its
// GSM-7 transliteration when that fits one segment, else body unchanged.
func fitSMS(body string) string {
	if _, n := Segments(body); n <= 1 {
		return body
	}
	t := toGSM(body)
	if enc, n := Segments(t); enc == EncodingGSM7 && n == 1 {
		return t
	}
	return body
}
