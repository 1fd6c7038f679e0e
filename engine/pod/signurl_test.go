package pod

import (
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestSignURL(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	blobKey := "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
	now := time.Unix(1_750_000_000, 0)
	expires := now.Add(15 * time.Minute)
	q, err := url.ParseQuery(SignURL(key, blobKey, expires))
	if err != nil {
		t.Fatal(err)
	}
	k, e, s := q.Get("k"), q.Get("e"), q.Get("s")
	if k != blobKey || e != "1750000900" || len(s) != 43 {
		t.Fatalf("query k=%q e=%q s=%q", k, e, s)
	}
	flip := func(s string, i int) string {
		b := []byte(s)
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		return string(b)
	}
	for _, tc := range []struct {
		name    string
		key     []byte
		k, e, s string
		now     time.Time
		wantErr error
	}{
		{"valid", key, k, e, s, now, nil},
		{"valid one second before expiry", key, k, e, s, expires.Add(-time.Second), nil},
		{"expired at the expiry second", key, k, e, s, expires, ErrURLExpired},
		{"expired later", key, k, e, s, expires.Add(time.Hour), ErrURLExpired},
		{"other blob", key, flip(k, 0), e, s, now, ErrURLInvalid},
		{"expiry pushed back", key, k, "1750099999", s, now, ErrURLInvalid},
		{"expiry with leading zero", key, k, "0" + e, s, now, ErrURLInvalid},
		{"expiry with plus sign", key, k, "+" + e, s, now, ErrURLInvalid},
		{"expiry not a number", key, k, "soon", s, now, ErrURLInvalid},
		{"signature changed", key, k, e, flip(s, 10), now, ErrURLInvalid},
		{"signature last character changed", key, k, e, flip(s, 42), now, ErrURLInvalid},
		{"signature truncated", key, k, e, s[:40], now, ErrURLInvalid},
		{"signature padded", key, k, e, s + "=", now, ErrURLInvalid},
		{"signature empty", key, k, e, "", now, ErrURLInvalid},
		{"other key", []byte("fedcba9876543210fedcba9876543210"), k, e, s, now, ErrURLInvalid},
		{"short key", key[:8], k, e, s, now, ErrURLInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := VerifyURL(tc.key, tc.k, tc.e, tc.s, tc.now)
			if !errors.Is(err, tc.wantErr) || (err == nil) != (tc.wantErr == nil) {
				t.Fatalf("VerifyURL error %v, want %v", err, tc.wantErr)
			}
		})
	}
}

func TestSignURLEscapesAndBindsFields(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	exp := time.Unix(2_000_000_000, 0)
	// The blob key is escaped in the query, and the separator keeps two
	// different (blob key, expiry) pairs from signing the same message.
	q, err := url.ParseQuery(SignURL(key, "a b&c=d", exp))
	if err != nil || q.Get("k") != "a b&c=d" {
		t.Fatalf("query %v, %v", q, err)
	}
	s1 := urlMAC(key, "abc1", "23")
	s2 := urlMAC(key, "abc", "123")
	if s1 == s2 {
		t.Fatal("different fields give the same signature")
	}
	q, _ = url.ParseQuery(SignURL(key, "abc", exp))
	if strings.ContainsAny(q.Get("s"), "+/=") {
		t.Fatal("signature is not unpadded base64url")
	}
}
