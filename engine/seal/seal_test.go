package seal

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
)

// testKey returns a fixed, valid key whose secret bytes are derived from id
// and tag.
func testKey(id uint8, tag string) Key {
	h := sha256.Sum256([]byte(fmt.Sprintf("test key %d %s", id, tag)))
	return Key{ID: id, Secret: h[:]}
}

func mustRing(t testing.TB, keys ...Key) *Ring {
	t.Helper()
	r, err := NewRing(keys...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func b64(k Key) string { return base64.StdEncoding.EncodeToString(k.Secret) }

// secretForms lists the textual forms of a key's secret that must never
// appear in an error or a printed value.
func secretForms(k Key) []string {
	return []string{
		base64.StdEncoding.EncodeToString(k.Secret),
		base64.RawStdEncoding.EncodeToString(k.Secret),
		base64.RawURLEncoding.EncodeToString(k.Secret),
		hex.EncodeToString(k.Secret),
		string(k.Secret),
		fmt.Sprint(k.Secret),
	}
}

func TestRoundTrip(t *testing.T) {
	r := mustRing(t, testKey(7, "a"))
	big := bytes.Repeat([]byte("0123456789"), 100_000)
	for _, tc := range []struct {
		name      string
		plaintext []byte
		aad       []byte
	}{
		{"one byte", []byte{0}, nil},
		{"name", []byte("Maria da Silva"), []byte("shipments.recipient_name:TRK123")},
		{"unicode", []byte("Rua de Santa Catarina 1º esq., 4000-447 Porto 📦"), AAD("shipments", "address", "TRK9")},
		{"binary", []byte{0xff, 0, 1, 2, 0xfe}, []byte{0}},
		{"zeros", make([]byte, 64), []byte{}},
		{"1 MB", big, []byte("big")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := r.Seal(tc.plaintext, tc.aad)
			if len(s) != len(tc.plaintext)+Overhead {
				t.Fatalf("len %d, want %d", len(s), len(tc.plaintext)+Overhead)
			}
			if s[0] != Version || s[1] != 7 {
				t.Fatalf("header %x, want %02x07", s[:2], Version)
			}
			if len(tc.plaintext) >= 8 && bytes.Contains(s, tc.plaintext[:8]) {
				t.Fatal("plaintext visible in the sealed value")
			}
			got, err := r.Open(s, tc.aad)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, tc.plaintext) {
				t.Fatal("round trip changed the plaintext")
			}
			if id, ok := KeyID(s); !ok || id != 7 {
				t.Fatalf("KeyID = %d, %v", id, ok)
			}
		})
	}
}

func TestEmpty(t *testing.T) {
	r := mustRing(t, testKey(1, "a"))
	for _, pt := range [][]byte{nil, {}} {
		if s := r.Seal(pt, []byte("x")); s != nil {
			t.Fatalf("Seal(empty) = %x, want nil", s)
		}
	}
	if s := r.SealString("", "x"); s != nil {
		t.Fatalf("SealString(\"\") = %x, want nil", s)
	}
	for _, s := range [][]byte{nil, {}} {
		pt, err := r.Open(s, []byte("x"))
		if err != nil || pt != nil {
			t.Fatalf("Open(empty) = %x, %v; want nil, nil", pt, err)
		}
		str, err := r.OpenString(s, "x")
		if err != nil || str != "" {
			t.Fatalf("OpenString(empty) = %q, %v", str, err)
		}
		if r.NeedsRotation(s) {
			t.Fatal("NeedsRotation(empty) = true")
		}
	}
}

func TestStrings(t *testing.T) {
	r := mustRing(t, testKey(1, "a"))
	s := r.SealString("+351 912 345 678", "shipments.phone:TRK1")
	got, err := r.OpenString(s, "shipments.phone:TRK1")
	if err != nil || got != "+351 912 345 678" {
		t.Fatalf("OpenString = %q, %v", got, err)
	}
	if _, err := r.OpenString(s, "shipments.phone:TRK2"); !errors.Is(err, ErrAuth) {
		t.Fatalf("other row: %v, want ErrAuth", err)
	}
}

func TestWrongAAD(t *testing.T) {
	r := mustRing(t, testKey(1, "a"))
	for _, tc := range []struct {
		name       string
		seal, open []byte
	}{
		{"other row", []byte("shipments.recipient:TRK1"), []byte("shipments.recipient:TRK2")},
		{"other column", []byte("shipments.recipient:TRK1"), []byte("shipments.phone:TRK1")},
		{"missing aad", []byte("shipments.recipient:TRK1"), nil},
		{"unexpected aad", nil, []byte("x")},
		{"prefix", []byte("abc"), []byte("ab")},
		{"AAD parts shifted", AAD("a:b", "c"), AAD("a", "b:c")},
		{"AAD parts joined", AAD("ab", ""), AAD("a", "b")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := r.Seal([]byte("Maria da Silva"), tc.seal)
			pt, err := r.Open(s, tc.open)
			if !errors.Is(err, ErrAuth) || pt != nil {
				t.Fatalf("Open = %q, %v; want nil, ErrAuth", pt, err)
			}
			if strings.Contains(err.Error(), "Maria") {
				t.Fatalf("error echoes data: %v", err)
			}
		})
	}
	// nil and empty associated data are the same bytes.
	s := r.Seal([]byte("x"), nil)
	if _, err := r.Open(s, []byte{}); err != nil {
		t.Fatal(err)
	}
}

func TestAADEncoding(t *testing.T) {
	seen := map[string][]string{}
	for _, parts := range [][]string{
		{}, {""}, {"", ""}, {"a"}, {"a", ""}, {"", "a"}, {"ab"}, {"a", "b"},
		{"a:b", "c"}, {"a", "b:c"}, {"shipments", "recipient", "TRK1"},
		{"shipments", "recipientTRK1"}, {strings.Repeat("x", 200)}, {strings.Repeat("x", 199), "x"},
	} {
		k := string(AAD(parts...))
		if prev, ok := seen[k]; ok {
			t.Fatalf("AAD(%q) == AAD(%q)", parts, prev)
		}
		seen[k] = parts
	}
}

func TestTamper(t *testing.T) {
	r := mustRing(t, testKey(1, "a"), testKey(2, "b"))
	aad := []byte("shipments.instructions:TRK1")
	s := r.Seal([]byte("Leave at the back door, code 4711"), aad)
	for i := range s {
		for _, mask := range []byte{0x01, 0x80, 0xff} {
			c := bytes.Clone(s)
			c[i] ^= mask
			pt, err := r.Open(c, aad)
			if err == nil || pt != nil {
				t.Fatalf("byte %d ^ %#x: opened", i, mask)
			}
			var want []error
			switch i {
			case 0:
				want = []error{ErrVersion}
			case 1:
				want = []error{ErrUnknownKey, ErrAuth}
			default:
				want = []error{ErrAuth}
			}
			if !slicesErrIs(err, want) {
				t.Fatalf("byte %d ^ %#x: %v, want one of %v", i, mask, err, want)
			}
		}
	}
	for n := range len(s) {
		_, err := r.Open(s[:n], aad)
		switch {
		case n == 0 && err != nil:
			t.Fatalf("empty: %v", err)
		case n > 0 && n < Overhead && !errors.Is(err, ErrTooShort):
			t.Fatalf("truncated to %d: %v, want ErrTooShort", n, err)
		case n >= Overhead && !errors.Is(err, ErrAuth):
			t.Fatalf("truncated to %d: %v, want ErrAuth", n, err)
		}
	}
	if _, err := r.Open(append(bytes.Clone(s), 0), aad); !errors.Is(err, ErrAuth) {
		t.Fatalf("extended: %v, want ErrAuth", err)
	}
	// The original still opens: nothing above changed it.
	if _, err := r.Open(s, aad); err != nil {
		t.Fatal(err)
	}
}

func slicesErrIs(err error, targets []error) bool {
	for _, t := range targets {
		if errors.Is(err, t) {
			return true
		}
	}
	return false
}

func TestOpenErrors(t *testing.T) {
	r := mustRing(t, testKey(1, "a"))
	other := mustRing(t, testKey(3, "c"))
	sameID := mustRing(t, testKey(1, "different"))
	good := r.Seal([]byte("secret phone number"), nil)
	for _, tc := range []struct {
		name string
		ring *Ring
		in   []byte
		want error
		msg  string
	}{
		{"unknown key id", other, good, ErrUnknownKey, "key id 1"},
		{"same id, other key", sameID, good, ErrAuth, "authentication failed"},
		{"bad version", r, append([]byte{2}, good[1:]...), ErrVersion, "version 2"},
		{"version 0", r, make([]byte, 40), ErrVersion, "version 0"},
		{"too short", r, good[:Overhead-1], ErrTooShort, "29 bytes"},
		{"one byte", r, []byte{Version}, ErrTooShort, "too short"},
		{"zero ring", &Ring{}, good, ErrUnknownKey, "unknown key id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pt, err := tc.ring.Open(tc.in, nil)
			if !errors.Is(err, tc.want) || pt != nil {
				t.Fatalf("Open = %x, %v; want %v", pt, err, tc.want)
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("error %q does not say %q", err, tc.msg)
			}
			if strings.Contains(err.Error(), "phone") || strings.Contains(err.Error(), hex.EncodeToString(good[2:8])) {
				t.Fatalf("error echoes data: %v", err)
			}
		})
	}
}

func TestRotation(t *testing.T) {
	k1, k2 := testKey(1, "old"), testKey(2, "new")
	oldRing := mustRing(t, k1)
	ring := mustRing(t, k2, k1) // 2 current, 1 still opens
	if ring.Current() != 2 || fmt.Sprint(ring.IDs()) != "[2 1]" {
		t.Fatalf("Current %d, IDs %v", ring.Current(), ring.IDs())
	}
	aad := AAD("shipments", "recipient", "TRK1")
	old := oldRing.Seal([]byte("Ana"), aad)
	if id, _ := KeyID(old); id != 1 {
		t.Fatalf("old sealed with %d", id)
	}
	if got, err := ring.Open(old, aad); err != nil || string(got) != "Ana" {
		t.Fatalf("old ciphertext under the new ring: %q, %v", got, err)
	}
	fresh := ring.Seal([]byte("Ana"), aad)
	if id, _ := KeyID(fresh); id != 2 {
		t.Fatalf("new ciphertext sealed with key %d, want 2", id)
	}
	if _, err := oldRing.Open(fresh, aad); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("new ciphertext under the old ring: %v", err)
	}
	for _, tc := range []struct {
		name string
		in   []byte
		want bool
	}{
		{"old key", old, true},
		{"current key", fresh, false},
		{"empty", nil, false},
		{"unknown key", mustRing(t, testKey(9, "x")).Seal([]byte("a"), nil), true},
		{"bad version", append([]byte{9}, fresh[1:]...), true},
		{"too short", fresh[:5], true},
	} {
		if got := ring.NeedsRotation(tc.in); got != tc.want {
			t.Errorf("NeedsRotation(%s) = %v, want %v", tc.name, got, tc.want)
		}
	}
	// Reseal: old values move to key 2, current ones stay as they are.
	re, changed, err := ring.Reseal(old, aad)
	if err != nil || !changed {
		t.Fatalf("Reseal(old) = changed %v, %v", changed, err)
	}
	if id, _ := KeyID(re); id != 2 || ring.NeedsRotation(re) {
		t.Fatalf("resealed with key %d", id)
	}
	if got, err := ring.Open(re, aad); err != nil || string(got) != "Ana" {
		t.Fatalf("resealed value: %q, %v", got, err)
	}
	same, changed, err := ring.Reseal(fresh, aad)
	if err != nil || changed || !bytes.Equal(same, fresh) {
		t.Fatalf("Reseal(current) = changed %v, %v", changed, err)
	}
	if _, _, err := ring.Reseal(old, []byte("other row")); !errors.Is(err, ErrAuth) {
		t.Fatalf("Reseal with the wrong aad: %v", err)
	}
	// After the pass, key 1 can go.
	if got, err := mustRing(t, k2).Open(re, aad); err != nil || string(got) != "Ana" {
		t.Fatalf("after dropping key 1: %q, %v", got, err)
	}
}

func TestNewRingErrors(t *testing.T) {
	k1 := testKey(1, "a")
	for _, tc := range []struct {
		name string
		keys []Key
		msg  string
	}{
		{"no key", nil, "no key"},
		{"id 0", []Key{testKey(0, "a")}, "id 0"},
		{"short", []Key{{ID: 1, Secret: make([]byte, 16)}}, "16 bytes, want 32"},
		{"zeros", []Key{{ID: 1, Secret: make([]byte, 32)}}, "all zeros"},
		{"duplicate id", []Key{k1, testKey(1, "b")}, "duplicate key id 1"},
		{"duplicate secret", []Key{k1, {ID: 2, Secret: k1.Secret}}, "same secret"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewRing(tc.keys...)
			if err == nil || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("err = %v, want %q", err, tc.msg)
			}
			for _, k := range tc.keys {
				if len(k.Secret) == KeySize {
					noSecret(t, err.Error(), k)
				}
			}
		})
	}
}

func noSecret(t *testing.T, s string, k Key) {
	t.Helper()
	for _, f := range secretForms(k) {
		if strings.Contains(s, f) {
			t.Fatalf("key material in %q", s)
		}
	}
}

func TestRedacted(t *testing.T) {
	k := testKey(4, "a")
	r := mustRing(t, k, testKey(5, "b"))
	// fmt calls String on exported fields only, so a Key must not sit in
	// an unexported one (see Key's doc); a Ring may.
	type holder struct {
		ring Ring
		Key  Key
	}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x", "%q"} {
		for _, v := range []any{k, &k, r, *r, holder{*r, k}, []Key{k}} {
			out := fmt.Sprintf(verb, v)
			noSecret(t, out, k)
		}
	}
	if got := fmt.Sprint(r); got != "seal.Ring{current: 4, ids: [4 5]}" {
		t.Fatalf("Ring prints as %q", got)
	}
	if got := fmt.Sprint(k); got != "seal.Key{ID: 4, Secret: <redacted>}" {
		t.Fatalf("Key prints as %q", got)
	}
}

func TestNoncesDistinct(t *testing.T) {
	n := 100_000
	if testing.Short() {
		n = 10_000
	}
	r := mustRing(t, testKey(1, "a"))
	seen := make(map[[NonceSize]byte]struct{}, n)
	pt := []byte("same plaintext every time")
	for range n {
		s := r.Seal(pt, nil)
		var nonce [NonceSize]byte
		copy(nonce[:], s[2:2+NonceSize])
		if _, dup := seen[nonce]; dup {
			t.Fatalf("nonce repeated after %d seals", len(seen))
		}
		seen[nonce] = struct{}{}
	}
}

func TestConcurrentSeal(t *testing.T) {
	r := mustRing(t, testKey(2, "a"), testKey(1, "b"))
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Go(func() {
			for i := range 500 {
				aad := AAD("t", "c", fmt.Sprint(g, i))
				pt := []byte(fmt.Sprintf("value %d %d", g, i))
				got, err := r.Open(r.Seal(pt, aad), aad)
				if err != nil || !bytes.Equal(got, pt) {
					errs <- fmt.Errorf("goroutine %d seal %d: %q, %v", g, i, got, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

func TestParseKeys(t *testing.T) {
	k1, k2, k3 := testKey(1, "a"), testKey(2, "b"), testKey(3, "c")
	std := b64(k1)
	url := base64.RawURLEncoding.EncodeToString(k2.Secret)
	for _, tc := range []struct {
		name string
		in   string
		want []Key // nil: error
		msg  string
	}{
		{"one", "1:" + std, []Key{k1}, ""},
		{"bare key is id 1", std, []Key{k1}, ""},
		{"bare unpadded", base64.RawStdEncoding.EncodeToString(k1.Secret), []Key{k1}, ""},
		{"url unpadded", "2:" + url, []Key{k2}, ""},
		{"url padded", "2:" + base64.URLEncoding.EncodeToString(k2.Secret), []Key{k2}, ""},
		{"rotation, first current", "2:" + url + ",1:" + std, []Key{k2, k1}, ""},
		{"three with spaces", " 3 : " + b64(k3) + " , 2:" + url + ",\t" + std + " ", []Key{k3, k2, k1}, ""},
		{"id 255", "255:" + std, []Key{{ID: 255, Secret: k1.Secret}}, ""},

		{"empty", "", nil, "no key"},
		{"blank", "  ", nil, "no key"},
		{"empty entry", "1:" + std + ",,2:" + url, nil, "entry 2 is empty"},
		{"trailing comma", "1:" + std + ",", nil, "entry 2 is empty"},
		{"leading comma", ",1:" + std, nil, "entry 1 is empty"},
		{"empty key", "1:", nil, "entry 1: id 1: key is empty"},
		{"empty id", ":" + std, nil, "entry 1: key id is not a decimal number in 1..255"},
		{"id 0", "0:" + std, nil, "key id is not a decimal number"},
		{"id 256", "256:" + std, nil, "key id is not a decimal number"},
		{"id huge", "99999999999999999999:" + std, nil, "key id is not a decimal number"},
		{"id negative", "-1:" + std, nil, "key id is not a decimal number"},
		{"id word", "prod:" + std, nil, "key id is not a decimal number"},
		{"two colons", "1:2:" + std, nil, "key is not base64"},
		{"bad base64 char", "1:" + std[:10] + "*" + std[11:], nil, "entry 1: id 1: key is not base64"},
		{"bad base64 length", "1:" + std[:41], nil, "key is not valid base64"},
		{"non-canonical", "1:" + std[:42] + "B=", nil, "key is not valid base64"},
		{"mixed alphabets", "1:" + url[:10] + "+" + url[11:], nil, "mixes the standard and URL-safe"},
		{"newline in key", "1:" + std[:20] + "\n" + std[20:], nil, "key is not base64"},
		{"short key", "1:" + base64.StdEncoding.EncodeToString(k1.Secret[:31]), nil, "entry 1: id 1: key decodes to 31 bytes, want 32"},
		{"long key", "1:" + base64.StdEncoding.EncodeToString(append(bytes.Clone(k1.Secret), 0)), nil, "decodes to 33 bytes"},
		{"128-bit key", "1:" + base64.StdEncoding.EncodeToString(k1.Secret[:16]), nil, "decodes to 16 bytes"},
		{"zero key", "1:" + base64.StdEncoding.EncodeToString(make([]byte, 32)), nil, "all zeros"},
		{"duplicate ids", "1:" + std + ",1:" + url, nil, "entry 2: duplicate key id 1"},
		{"bare and id 1", std + ",1:" + url, nil, "entry 2: duplicate key id 1"},
		{"same key twice", "1:" + std + ",2:" + std, nil, "entry 2: id 2 has the same key as id 1"},
		{"too long", strings.Repeat("1:"+std+",", 2000), nil, "more than"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseKeys(tc.in)
			if tc.want == nil {
				if err == nil || !strings.Contains(err.Error(), tc.msg) {
					t.Fatalf("err = %v, want %q", err, tc.msg)
				}
				for _, k := range []Key{k1, k2, k3} {
					noSecret(t, err.Error(), k)
				}
				if strings.Contains(err.Error(), std[:20]) || strings.Contains(err.Error(), url[:20]) {
					t.Fatalf("error echoes its input: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			assertKeys(t, got, tc.want)
		})
	}
}

func assertKeys(t *testing.T, got, want []Key) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d keys, want %d", len(got), len(want))
	}
	for i := range got {
		if got[i].ID != want[i].ID || !bytes.Equal(got[i].Secret, want[i].Secret) {
			t.Fatalf("key %d: id %d, want id %d (or other secret)", i, got[i].ID, want[i].ID)
		}
	}
}

func TestParseKeyFile(t *testing.T) {
	k1, k2 := testKey(1, "a"), testKey(2, "b")
	for _, tc := range []struct {
		name string
		in   string
		want []Key
		msg  string
	}{
		{"one", "1:" + b64(k1) + "\n", []Key{k1}, ""},
		{"no final newline", "1:" + b64(k1), []Key{k1}, ""},
		{"bare", b64(k1) + "\n", []Key{k1}, ""},
		{"comments and blanks", "# header\n\n  # indented comment\n2:" + b64(k2) + "\n\n1:" + b64(k1) + "\n# end\n", []Key{k2, k1}, ""},
		{"crlf", "# x\r\n2:" + b64(k2) + "\r\n1:" + b64(k1) + "\r\n", []Key{k2, k1}, ""},

		{"empty", "", nil, "no key"},
		{"only comments", "# a\n\n# b\n", nil, "no key"},
		{"bad line", "# a\n1:" + b64(k1) + "\n2:xyz\n", nil, "line 3: id 2: key is not valid base64"},
		{"short key", "1:" + base64.StdEncoding.EncodeToString(k1.Secret[:30]) + "\n", nil, "line 1: id 1: key decodes to 30 bytes"},
		{"duplicate id", "1:" + b64(k1) + "\n\n1:" + b64(k2) + "\n", nil, "line 3: duplicate key id 1"},
		{"commas are not separators", "1:" + b64(k1) + ",2:" + b64(k2) + "\n", nil, "line 1: id 1: key is not base64"},
		{"too big", strings.Repeat("#", maxKeysText+1), nil, "more than"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseKeyFile([]byte(tc.in))
			if tc.want == nil {
				if err == nil || !strings.Contains(err.Error(), tc.msg) {
					t.Fatalf("err = %v, want %q", err, tc.msg)
				}
				noSecret(t, err.Error(), k1)
				noSecret(t, err.Error(), k2)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			assertKeys(t, got, tc.want)
		})
	}
}

func TestFormatKeys(t *testing.T) {
	keys := []Key{testKey(3, "c"), testKey(1, "a")}
	env, err := FormatKeys(keys...)
	if err != nil {
		t.Fatal(err)
	}
	if want := "3:" + b64(keys[0]) + ",1:" + b64(keys[1]); env != want {
		t.Fatalf("FormatKeys = %q", env)
	}
	got, err := ParseKeys(env)
	if err != nil {
		t.Fatal(err)
	}
	assertKeys(t, got, keys)
	file, err := FormatKeyFile(keys...)
	if err != nil {
		t.Fatal(err)
	}
	if got, err = ParseKeyFile(file); err != nil {
		t.Fatal(err)
	}
	assertKeys(t, got, keys)
	if _, err := FormatKeys(); err == nil {
		t.Fatal("FormatKeys() accepted no key")
	}
	if _, err := FormatKeyFile(keys[0], keys[0]); err == nil {
		t.Fatal("FormatKeyFile accepted a duplicate id")
	}
}

func TestGenerateKey(t *testing.T) {
	a, b := GenerateKey(1), GenerateKey(2)
	if a.ID != 1 || len(a.Secret) != KeySize || bytes.Equal(a.Secret, b.Secret) {
		t.Fatalf("GenerateKey: id %d, %d bytes, distinct %v", a.ID, len(a.Secret), !bytes.Equal(a.Secret, b.Secret))
	}
	mustRing(t, a, b)
}

func TestLoadRingEnv(t *testing.T) {
	k1, k2 := testKey(1, "a"), testKey(2, "b")
	dir := t.TempDir()
	r, created, err := LoadRing("2:"+b64(k2)+",1:"+b64(k1), dir)
	if err != nil || created {
		t.Fatalf("LoadRing = created %v, %v", created, err)
	}
	if r.Current() != 2 {
		t.Fatalf("current %d", r.Current())
	}
	if _, err := os.Stat(filepath.Join(dir, KeyFileName)); !os.IsNotExist(err) {
		t.Fatalf("a key file was created although the environment gave the key: %v", err)
	}
	// The environment wins over an existing key file.
	if _, _, err := LoadRing("", dir); err != nil {
		t.Fatal(err)
	}
	r, _, err = LoadRing(b64(k1), dir)
	if err != nil || r.Current() != 1 || len(r.IDs()) != 1 {
		t.Fatalf("env over file: %v, %v", r, err)
	}
	_, _, err = LoadRing("1:"+b64(k1)+",1:"+b64(k2), dir)
	if err == nil || !strings.Contains(err.Error(), EnvVar+": entry 2: duplicate key id 1") {
		t.Fatalf("bad env: %v", err)
	}
	noSecret(t, err.Error(), k1)
	noSecret(t, err.Error(), k2)
	if _, _, err := LoadRing("", ""); err == nil || !strings.Contains(err.Error(), EnvVar) {
		t.Fatalf("no env, no dir: %v", err)
	}
}

func TestLoadRingFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data", "nested")
	path := filepath.Join(dir, KeyFileName)
	r1, created, err := LoadRing("", dir)
	if err != nil || !created {
		t.Fatalf("first LoadRing = created %v, %v", created, err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %04o, want 0600", fi.Mode().Perm())
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := ParseKeyFile(data)
	if err != nil || len(keys) != 1 || keys[0].ID != 1 {
		t.Fatalf("created key file: %d keys, %v", len(keys), err)
	}
	if !bytes.HasPrefix(data, []byte("# ")) {
		t.Fatal("key file has no comment header")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("directory holds %d entries, want only %s (temporary file left?)", len(entries), KeyFileName)
	}

	r2, created, err := LoadRing("", dir)
	if err != nil || created {
		t.Fatalf("second LoadRing = created %v, %v", created, err)
	}
	aad := []byte("shipments.recipient:TRK1")
	if got, err := r2.Open(r1.Seal([]byte("Ana"), aad), aad); err != nil || string(got) != "Ana" {
		t.Fatalf("reloaded key differs: %q, %v", got, err)
	}
	after, _ := os.ReadFile(path)
	if !bytes.Equal(after, data) {
		t.Fatal("loading rewrote the key file")
	}

	// Rotation in the file: a new current key first, the old one kept.
	k9 := testKey(9, "rotated")
	rotated := append([]byte("9:"+b64(k9)+"\n"), data...)
	if err := os.WriteFile(path, rotated, 0o600); err != nil {
		t.Fatal(err)
	}
	r3, _, err := LoadRing("", dir)
	if err != nil || r3.Current() != 9 {
		t.Fatalf("rotated file: %v, %v", r3, err)
	}
	if _, err := r3.Open(r1.Seal([]byte("Ana"), aad), aad); err != nil {
		t.Fatal(err)
	}

	if runtime.GOOS == "windows" {
		return
	}
	for _, tc := range []struct {
		mode os.FileMode
		ok   bool
	}{
		{0o644, false}, {0o640, false}, {0o604, false}, {0o660, false}, {0o666, false}, {0o700, true}, {0o400, true}, {0o600, true},
	} {
		if err := os.Chmod(path, tc.mode); err != nil {
			t.Fatal(err)
		}
		_, _, err := LoadRing("", dir)
		if tc.ok && err != nil {
			t.Errorf("mode %04o: %v", tc.mode, err)
		}
		if !tc.ok {
			want := fmt.Sprintf("has mode %04o", tc.mode)
			if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "chmod 600 "+path) {
				t.Errorf("mode %04o: err = %v, want %q and the chmod hint", tc.mode, err, want)
			} else {
				noSecret(t, err.Error(), k9)
			}
		}
	}
	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatal(err)
	}
	// The refused file was left alone.
	if after, _ := os.ReadFile(path); !bytes.Equal(after, rotated) {
		t.Fatal("refusing the key file changed it")
	}
}

func TestLoadRingFileErrors(t *testing.T) {
	k := testKey(1, "a")
	for _, tc := range []struct {
		name    string
		setup   func(t *testing.T, dir string)
		msg     string
		windows bool // the check also applies on Windows
	}{
		{"bad content", func(t *testing.T, dir string) {
			writeFile(t, filepath.Join(dir, KeyFileName), "1:"+b64(k)+"\n2:"+b64(k)[:40]+"\n")
		}, "data.key: line 2: id 2: key decodes to 30 bytes, want 32", true},
		{"only comments", func(t *testing.T, dir string) {
			writeFile(t, filepath.Join(dir, KeyFileName), "# nothing\n")
		}, "data.key: no key", true},
		{"empty file", func(t *testing.T, dir string) {
			writeFile(t, filepath.Join(dir, KeyFileName), "")
		}, "no key", true},
		{"directory", func(t *testing.T, dir string) {
			if err := os.Mkdir(filepath.Join(dir, KeyFileName), 0o700); err != nil {
				t.Fatal(err)
			}
		}, "not a regular file", true},
		{"dangling symlink", func(t *testing.T, dir string) {
			if err := os.Symlink(filepath.Join(dir, "missing"), filepath.Join(dir, KeyFileName)); err != nil {
				t.Skip(err)
			}
		}, "no such file", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if runtime.GOOS == "windows" && !tc.windows {
				t.Skip("unix only")
			}
			dir := t.TempDir()
			tc.setup(t, dir)
			_, created, err := LoadRing("", dir)
			if err == nil || created || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("LoadRing = created %v, %v; want %q", created, err, tc.msg)
			}
			noSecret(t, err.Error(), k)
		})
	}
}

func writeFile(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestLoadRingConcurrentCreate starts several loaders on an empty directory:
// exactly one creates the key file and all of them end up with its key.
func TestLoadRingConcurrentCreate(t *testing.T) {
	dir := t.TempDir()
	const n = 16
	rings := make([]*Ring, n)
	createdBy := make([]bool, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			rings[i], createdBy[i], errs[i] = LoadRing("", dir)
		})
	}
	close(start)
	wg.Wait()
	creators := 0
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("loader %d: %v", i, errs[i])
		}
		if createdBy[i] {
			creators++
		}
	}
	if creators != 1 {
		t.Fatalf("%d loaders created the key file, want 1", creators)
	}
	s := rings[0].Seal([]byte("x"), nil)
	for i, r := range rings {
		if _, err := r.Open(s, nil); err != nil {
			t.Fatalf("loader %d has another key: %v", i, err)
		}
	}
}

func TestToken(t *testing.T) {
	a, b := Token(), Token()
	if a == b {
		t.Fatal("two tokens are equal")
	}
	seen := map[string]bool{}
	for range 10_000 {
		tok := Token()
		if len(tok) != TokenLen || TokenLen != 22 {
			t.Fatalf("token length %d, want 22", len(tok))
		}
		for _, c := range tok {
			if !strings.ContainsRune("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", c) {
				t.Fatalf("token %q has %q outside base64url", tok, c)
			}
		}
		if !ValidToken(tok) {
			t.Fatalf("ValidToken(%q) = false", tok)
		}
		if seen[tok] {
			t.Fatal("token repeated")
		}
		seen[tok] = true
	}
	if h := HashToken(a); len(h) != 32 || Equal(h, HashToken(b)) {
		t.Fatal("HashToken")
	}
	for _, s := range []string{
		"", a[:21], a + "A", a[:21] + "+", a[:21] + "=", a[:10] + "\n" + a[11:], a[:21] + "B", // B: non-zero unused bits
		strings.Repeat("A", 1000),
	} {
		if ValidToken(s) {
			t.Errorf("ValidToken(%q) = true", s)
		}
	}
	if !ValidToken(a[:21] + "A") {
		t.Error("ValidToken rejects a canonical last character")
	}
}

func TestAPIKey(t *testing.T) {
	key, id, hash := NewAPIKey()
	key2, id2, hash2 := NewAPIKey()
	if key == key2 || id == id2 || Equal(hash, hash2) {
		t.Fatal("two API keys share a key, id or hash")
	}
	if !strings.HasPrefix(key, "lm_") || len(key) != APIKeyLen || APIKeyLen != 46 {
		t.Fatalf("key %d bytes with prefix %q", len(key), key[:3])
	}
	raw, err := base64.RawURLEncoding.DecodeString(key[3:])
	if err != nil || len(raw) != 32 {
		t.Fatalf("key body: %d bytes, %v", len(raw), err)
	}
	sum := sha256.Sum256([]byte(key))
	if !bytes.Equal(hash, sum[:]) || !bytes.Equal(HashAPIKey(key), sum[:]) {
		t.Fatal("hash is not SHA-256 of the key")
	}
	if id != hex.EncodeToString(sum[:8]) || APIKeyID(key) != id || len(id) != APIKeyIDLen {
		t.Fatalf("id %q, APIKeyID %q", id, APIKeyID(key))
	}
	if strings.Contains(key, id) {
		t.Fatal("the id is part of the key")
	}
	if !ValidKeyFormat(key) || !CheckAPIKey(key, hash) {
		t.Fatal("a fresh key does not check")
	}
	if CheckAPIKey(key, hash2) || CheckAPIKey(key2, hash) || CheckAPIKey(key, nil) || CheckAPIKey(key, hash[:31]) {
		t.Fatal("CheckAPIKey accepted a wrong hash")
	}
	body := key[3:]
	for _, tc := range []struct {
		name string
		key  string
	}{
		{"empty", ""},
		{"prefix only", "lm_"},
		{"no prefix", body},
		{"other prefix", "sk_" + body},
		{"upper prefix", "LM_" + body},
		{"one short", key[:len(key)-1]},
		{"one long", key + "A"},
		{"huge", "lm_" + strings.Repeat("A", 1<<20)},
		{"bearer kept", "Bearer " + key},
		{"space", key[:20] + " " + key[21:]},
		{"newline", key[:20] + "\n" + key[21:]},
		{"std alphabet", key[:20] + "+" + key[21:]},
		{"padding", key[:45] + "="},
		{"non-canonical end", "lm_" + strings.Repeat("A", 42) + "B"},
		{"token", Token()},
	} {
		if ValidKeyFormat(tc.key) || CheckAPIKey(tc.key, HashAPIKey(tc.key)) || APIKeyID(tc.key) != "" {
			t.Errorf("%s: accepted", tc.name)
		}
	}
	if !ValidKeyFormat("lm_" + strings.Repeat("A", 42) + "E") {
		t.Error("canonical key rejected")
	}
}

func TestEqual(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want bool
	}{
		{"", "", true}, {"abc", "abc", true}, {"abc", "abd", false}, {"abc", "ab", false}, {"", "a", false},
	} {
		if Equal([]byte(tc.a), []byte(tc.b)) != tc.want || EqualString(tc.a, tc.b) != tc.want {
			t.Errorf("Equal(%q, %q) != %v", tc.a, tc.b, tc.want)
		}
	}
}

func TestSealZeroRingPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("Seal on a zero Ring did not panic")
		}
	}()
	var r Ring
	r.Seal([]byte("x"), nil)
}

// FuzzOpen: Open, KeyID, NeedsRotation and Reseal never panic, fail only
// with the documented errors, and whatever opens reseals and opens again.
func FuzzOpen(f *testing.F) {
	r := mustRing(f, testKey(2, "new"), testKey(1, "old"))
	old := mustRing(f, testKey(1, "old"))
	aad := []byte("shipments.recipient:TRK1")
	f.Add(r.Seal([]byte("Maria"), aad), aad)
	f.Add(old.Seal([]byte("Rua 1"), aad), aad)
	f.Add(r.Seal([]byte("x"), nil), []byte(nil))
	f.Add([]byte{}, []byte{})
	f.Add([]byte{Version}, []byte{})
	f.Add([]byte{Version, 2}, aad)
	f.Add(make([]byte, Overhead), aad)
	f.Add(append([]byte{Version, 3}, make([]byte, 40)...), aad)
	f.Fuzz(func(t *testing.T, sealed, aad []byte) {
		in := bytes.Clone(sealed)
		pt, err := r.Open(sealed, aad)
		if !bytes.Equal(in, sealed) {
			t.Fatal("Open modified its input")
		}
		KeyID(sealed)
		if err != nil {
			if pt != nil {
				t.Fatal("plaintext with an error")
			}
			if !slicesErrIs(err, []error{ErrVersion, ErrTooShort, ErrUnknownKey, ErrAuth}) {
				t.Fatalf("undocumented error %v", err)
			}
			_, changed, rerr := r.Reseal(sealed, aad)
			if r.NeedsRotation(sealed) != (rerr != nil) || changed {
				// A current-key header is left as is; anything else must
				// fail to open in Reseal as it did in Open.
				t.Fatalf("Reseal after Open failed: changed %v, %v", changed, rerr)
			}
			return
		}
		re, _, err := r.Reseal(sealed, aad)
		if err != nil {
			t.Fatal(err)
		}
		got, err := r.Open(re, aad)
		if err != nil || !bytes.Equal(got, pt) || r.NeedsRotation(re) {
			t.Fatalf("resealed value: %v", err)
		}
	})
}

// FuzzParseKeys: the key list and key file parsers never panic, and what
// they accept makes a ring and formats back to the same keys.
func FuzzParseKeys(f *testing.F) {
	k1, k2 := testKey(1, "a"), testKey(2, "b")
	env, _ := FormatKeys(k2, k1)
	file, _ := FormatKeyFile(k2, k1)
	for _, s := range []string{
		env, string(file), b64(k1), "1:" + base64.RawURLEncoding.EncodeToString(k2.Secret),
		"", ",", "1:", ":", "0:" + b64(k1), "256:" + b64(k1), "1:" + b64(k1) + ",1:" + b64(k2),
		"# c\r\n\r\n" + b64(k1) + "\r\n", "1:" + b64(k1)[:43], "1:=====",
	} {
		f.Add(s)
	}
	check := func(t *testing.T, keys []Key, err error) {
		if err != nil {
			if keys != nil {
				t.Fatal("keys with an error")
			}
			return
		}
		r, err := NewRing(keys...)
		if err != nil {
			t.Fatalf("parsed keys make no ring: %v", err)
		}
		if r.Current() != keys[0].ID || len(r.IDs()) != len(keys) {
			t.Fatal("ring differs from the keys")
		}
		s, err := FormatKeys(keys...)
		if err != nil {
			t.Fatal(err)
		}
		again, err := ParseKeys(s)
		if err != nil {
			t.Fatalf("formatted keys do not parse: %v", err)
		}
		assertKeys(t, again, keys)
	}
	f.Fuzz(func(t *testing.T, s string) {
		keys, err := ParseKeys(s)
		check(t, keys, err)
		if err != nil {
			for _, part := range strings.FieldsFunc(s, func(c rune) bool { return c == ',' || c == ':' || c == ' ' }) {
				if len(part) >= 12 && strings.Contains(err.Error(), part) {
					t.Fatalf("error %q echoes input %q", err, part)
				}
			}
		}
		keys, err = ParseKeyFile([]byte(s))
		check(t, keys, err)
	})
}

func TestMAC(t *testing.T) {
	k1, k2 := GenerateKey(1), GenerateKey(2)
	r1, err := NewRing(k1)
	if err != nil {
		t.Fatal(err)
	}
	r21, err := NewRing(k2, k1) // rotated: 2 current, 1 kept
	if err != nil {
		t.Fatal(err)
	}
	a, b := r1.MAC([]byte("+351912345678")), r1.MAC([]byte("+351912345678"))
	if !bytes.Equal(a, b) || len(a) != 33 || a[0] != 1 {
		t.Fatalf("MAC not deterministic or malformed: %x %x", a, b)
	}
	if bytes.Equal(a, r1.MAC([]byte("+351912345679"))) {
		t.Fatal("different data, same MAC")
	}
	if bytes.Equal(a[1:], r21.MAC([]byte("+351912345678"))[1:]) {
		t.Fatal("different keys, same MAC")
	}
	all := r21.MACs([]byte("+351912345678"))
	if len(all) != 2 || !bytes.Equal(all[1], a) || all[0][0] != 2 {
		t.Fatalf("MACs after rotation do not find the old value: %x", all)
	}
}
