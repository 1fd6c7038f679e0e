package seal

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"strings"
)

// TokenBytes is the number of random bytes in a Token (128 bits).
const TokenBytes = 16

// TokenLen is the length of a Token: TokenBytes in base64url without
// padding.
const TokenLen = (TokenBytes*8 + 5) / 6

// APIKeyPrefix starts every API key, so keys are recognisable in
// configuration files and by secret scanners.
const APIKeyPrefix = "lm_"

// APIKeyBytes is the number of random bytes in an API key (256 bits).
const APIKeyBytes = 32

// APIKeyLen is the length of an API key: the prefix and APIKeyBytes in
// base64url without padding.
const APIKeyLen = len(APIKeyPrefix) + (APIKeyBytes*8+5)/6

// APIKeyIDLen is the length of an API key id (8 bytes in hex).
const APIKeyIDLen = 16

// Token returns a new unguessable URL-safe token, for tracking links
// (/track/TOKEN) and similar capabilities: 16 bytes (128 bits) from
// crypto/rand in base64url without padding, TokenLen = 22 characters of
// [A-Za-z0-9_-]. A token is a secret: store HashToken(token), not the
// token, when the link only has to be recognised later.
func Token() string {
	var b [TokenBytes]byte
	rand.Read(b[:]) // never returns an error (crypto/rand, Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// ValidToken reports whether s has the form of a Token (TokenLen
// characters, canonical base64url), so malformed path segments are
// rejected before any lookup.
func ValidToken(s string) bool {
	return len(s) == TokenLen && canonicalB64URL(s, TokenBytes)
}

// HashToken returns SHA-256 of a token, the form to store and look up:
// tokens carry 128 random bits, so a fast hash suffices (no one can try
// 2^128 candidates) and a leaked table does not reveal working links.
func HashToken(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

// NewAPIKey returns a new API key, its public id and the hash to store.
//
// key is APIKeyPrefix + base64url without padding of 32 bytes from
// crypto/rand (APIKeyLen = 46 characters); it is shown to the user once and
// never stored. hash is HashAPIKey(key). id is APIKeyID(key): the first 8
// bytes of hash in hex, public, for listing and revoking keys; the user can
// recompute it from the key, and it reveals nothing usable about the key.
func NewAPIKey() (key, id string, hash []byte) {
	var b [APIKeyBytes]byte
	rand.Read(b[:]) // never returns an error (crypto/rand, Go 1.24+)
	key = APIKeyPrefix + base64.RawURLEncoding.EncodeToString(b[:])
	hash = HashAPIKey(key)
	return key, hex.EncodeToString(hash[:APIKeyIDLen/2]), hash
}

// HashAPIKey returns SHA-256 of an API key (32 bytes), the only form in
// which keys are stored. A slow password hash (bcrypt, argon2) is not
// needed: keys carry 256 random bits, so they cannot be guessed from the
// hash, and a fast hash keeps authenticating each request cheap.
func HashAPIKey(key string) []byte {
	h := sha256.Sum256([]byte(key))
	return h[:]
}

// APIKeyID returns the public id of an API key (see NewAPIKey), or "" when
// key does not have the API key format.
func APIKeyID(key string) string {
	if !ValidKeyFormat(key) {
		return ""
	}
	return hex.EncodeToString(HashAPIKey(key)[:APIKeyIDLen/2])
}

// ValidKeyFormat reports whether key has the form of an API key made by
// NewAPIKey (exactly APIKeyLen characters: APIKeyPrefix then canonical
// base64url of 32 bytes), so malformed or oversized bearer tokens are
// rejected before any lookup.
func ValidKeyFormat(key string) bool {
	return len(key) == APIKeyLen && strings.HasPrefix(key, APIKeyPrefix) &&
		canonicalB64URL(key[len(APIKeyPrefix):], APIKeyBytes)
}

// CheckAPIKey reports whether key is well formed and hashes to stored (a
// HashAPIKey value), comparing in constant time.
func CheckAPIKey(key string, stored []byte) bool {
	return ValidKeyFormat(key) && Equal(HashAPIKey(key), stored)
}

// Equal reports whether two secrets (or hashes of secrets) are equal, in
// time that depends on their lengths but not their contents.
func Equal(a, b []byte) bool {
	return subtle.ConstantTimeCompare(a, b) == 1
}

// EqualString is Equal for strings.
func EqualString(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// canonicalB64URL reports whether s is the canonical unpadded base64url
// encoding of n bytes (every character in the alphabet, unused low bits
// of the last character zero).
func canonicalB64URL(s string, n int) bool {
	for _, c := range []byte(s) { // the decoder would skip '\r' and '\n'
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	return err == nil && len(b) == n
}
