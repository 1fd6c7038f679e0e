package pod

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"time"
)

// MinURLKeyLen is the shortest key VerifyURL accepts, in bytes. Use 32
// random bytes.
const MinURLKeyLen = 16

// urlDomain starts every signed message, so that a signature made here
// cannot be passed off as one made with the same key for another purpose.
const urlDomain = "lastmile-pod-url-v1|"

// Errors of VerifyURL.
var (
	// ErrURLExpired: the link was genuine but its expiry time has passed.
	ErrURLExpired = errors.New("pod: link expired")
	// ErrURLInvalid: the link was not signed with the key (tampered,
	// truncated or forged), or is malformed.
	ErrURLInvalid = errors.New("pod: invalid link signature")
)

// SignURL returns the query string of a link to the blob blobKey valid
// until expires (to the second, rounded down):
//
//	k=<blobKey>&e=<unix seconds>&s=<signature>
//
// where the signature is the unpadded base64url HMAC-SHA256 under key of
// "lastmile-pod-url-v1|" + blobKey + "|" + e. The caller picks the path and
// passes the three query values back to VerifyURL. key should be 32 random
// bytes kept by the server; with a key shorter than MinURLKeyLen the link
// is produced but never verifies.
func SignURL(key []byte, blobKey string, expires time.Time) string {
	e := strconv.FormatInt(expires.Unix(), 10)
	return "k=" + url.QueryEscape(blobKey) + "&e=" + e + "&s=" + urlMAC(key, blobKey, e)
}

// VerifyURL checks the query values k (blobKey), e and s of a link made by
// SignURL, at time now. It returns nil if s is the signature of blobKey
// and e under key and now is before e; an error wrapping ErrURLExpired if
// the signature is right but the link has expired; an error wrapping
// ErrURLInvalid otherwise (the signature is compared in constant time).
func VerifyURL(key []byte, blobKey, e, s string, now time.Time) error {
	if len(key) < MinURLKeyLen {
		return fmt.Errorf("%w: signing key shorter than %d bytes", ErrURLInvalid, MinURLKeyLen)
	}
	exp, err := parseUnix(e)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrURLInvalid, err)
	}
	got, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil || len(got) != sha256.Size {
		return fmt.Errorf("%w: malformed signature", ErrURLInvalid)
	}
	want, _ := base64.RawURLEncoding.DecodeString(urlMAC(key, blobKey, e))
	if !hmac.Equal(got, want) {
		return ErrURLInvalid
	}
	if now.Unix() >= exp {
		return fmt.Errorf("%w at %s", ErrURLExpired, time.Unix(exp, 0).UTC().Format(time.RFC3339))
	}
	return nil
}

// urlMAC returns the base64url signature of blobKey and the expiry text e.
func urlMAC(key []byte, blobKey, e string) string {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(urlDomain))
	mac.Write([]byte(blobKey))
	mac.Write([]byte{'|'})
	mac.Write([]byte(e))
	return base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// parseUnix parses the expiry as SignURL writes it: decimal digits with an
// optional leading minus, no sign otherwise, no leading zeros, so that one
// expiry has one spelling.
func parseUnix(e string) (int64, error) {
	v, err := strconv.ParseInt(e, 10, 64)
	if err != nil || strconv.FormatInt(v, 10) != e {
		return 0, fmt.Errorf("malformed expiry %q", clipText(e))
	}
	return v, nil
}

// clipText shortens client-supplied text for an error message.
func clipText(s string) string {
	if len(s) > 32 {
		return s[:32] + "…"
	}
	return s
}
