package message

import (
	"strings"
	"testing"
)

func TestSegments(t *testing.T) {
	r := strings.Repeat
	for _, tc := range []struct {
		name, body string
		enc        string
		n          int
	}{
		{"empty", "", EncodingGSM7, 0},
		{"one char", "a", EncodingGSM7, 1},
		{"160 basic", r("a", 160), EncodingGSM7, 1},
		{"161 basic", r("a", 161), EncodingGSM7, 2},
		{"306 basic", r("a", 306), EncodingGSM7, 2},
		{"307 basic", r("a", 307), EncodingGSM7, 3},
		{"basic table", "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./09:;<=>?¡AZÄÖÑÜ§¿azäöñüà", EncodingGSM7, 1},
		{"80 euro = 160 septets", r("€", 80), EncodingGSM7, 1},
		{"81 euro = 162 septets", r("€", 81), EncodingGSM7, 2},
		{"extension chars count 2", r("a", 150) + "{}[]~", EncodingGSM7, 1},
		{"extension chars over 160", r("a", 151) + "{}[]~", EncodingGSM7, 2},
		{"escape pair not split", r("a", 152) + "€" + r("a", 10), EncodingGSM7, 2},
		{"escape pair at part end", r("a", 151) + "€" + r("a", 153), EncodingGSM7, 2},
		{"escape pair pushed over", r("a", 152) + "€" + r("a", 153), EncodingGSM7, 3},
		{"70 ucs2", r("ã", 70), EncodingUCS2, 1},
		{"71 ucs2", r("ã", 71), EncodingUCS2, 2},
		{"134 ucs2", r("ã", 134), EncodingUCS2, 2},
		{"135 ucs2", r("ã", 135), EncodingUCS2, 3},
		{"one non-GSM char switches", r("a", 69) + "ç", EncodingUCS2, 1},
		{"35 emoji = 70 units", r("📦", 35), EncodingUCS2, 1},
		{"36 emoji = 72 units", r("📦", 36), EncodingUCS2, 2},
		{"surrogate pair not split", r("a", 66) + "📦" + r("a", 10), EncodingUCS2, 2},
		{"tab is not GSM", "a\tb", EncodingUCS2, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			enc, n := Segments(tc.body)
			if enc != tc.enc || n != tc.n {
				t.Errorf("Segments = %s, %d; want %s, %d", enc, n, tc.enc, tc.n)
			}
		})
	}
}

func TestToGSM(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"ã õ ç á â ê í ó ú Ã Õ Á Â Ê Í Ó Ú", "a o c a a e i o u A O A A E I O U"},
		{"é è à ù ì ò ñ ü Ç É Ñ Ü", "é è à ù ì ò ñ ü Ç É Ñ Ü"},
		{"bientôt, vôtre, être, île, œuvre", "bientot, votre, etre, ile, oeuvre"},
		{"“quoted” ‘x’ – — … «a»", "\"quoted\" 'x' - - ... \"a\""},
		{"a\u00a0b\u202fc", "a b c"},
		{"box 📦 日本", "box 📦 日本"},
	} {
		if got := toGSM(tc.in); got != tc.want {
			t.Errorf("toGSM(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestFitSMS(t *testing.T) {
	pt := "Acme: a sua encomenda LM0123456789 saiu para entrega, previsão 14:10-14:40. https://track.example.com/track/AbCdEfGhIjKlMnOpQrStUv"
	for _, tc := range []struct {
		name, in, want string
	}{
		{"gsm stays", "Parcel à la carte: é ñ", "Parcel à la carte: é ñ"},
		{"short ucs2 stays", "previsão 14:10", "previsão 14:10"},
		{"transliterated to one segment", pt, strings.Replace(pt, "previsão", "previsao", 1)},
		{"emoji cannot be transliterated", pt + " 📦", pt + " 📦"},
		{"too long even transliterated", strings.Repeat("ã", 161), strings.Repeat("ã", 161)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := fitSMS(tc.in); got != tc.want {
				t.Errorf("fitSMS = %q, want %q", got, tc.want)
			}
		})
	}
}
