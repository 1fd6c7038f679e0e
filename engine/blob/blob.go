// Package blob stores immutable byte strings under the hex SHA-256 of their
// content. It has no HTTP and no database in it: the proof-of-delivery
// handler cleans an image (package pod), calls Store.Put and records the
// returned key on the event; the page that shows the image calls Store.Get.
//
// Content addressing makes Put idempotent (the same bytes give the same key
// and are stored once) and lets Get check what it returns: a blob whose
// bytes no longer hash to its key is reported as corrupt instead of being
// served.
//
// Two implementations: FS, files on a local disk written atomically and
// durably (the default), and Mem, a map for tests.
package blob

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
)

// KeyLen is the length of a key: 64 lowercase hexadecimal digits.
const KeyLen = 2 * sha256.Size

// ErrNotFound is returned (wrapped) by Get when no blob has the key.
var ErrNotFound = errors.New("blob: not found")

// ErrInvalidKey is returned (wrapped) by every method given a key that is
// not 64 lowercase hexadecimal digits; such a key never reaches the disk.
var ErrInvalidKey = errors.New("blob: invalid key")

// ErrCorrupt is returned (wrapped) by Get when the stored bytes no longer
// hash to their key (a truncated or damaged file).
var ErrCorrupt = errors.New("blob: corrupt")

// Store is a content-addressed blob store. Every implementation is safe for
// concurrent use, copies the slices it is given and returns fresh slices
// the caller may modify.
type Store interface {
	// Put stores data and returns its key, KeyOf(data). Putting bytes that
	// are already stored stores nothing new and returns the same key. When
	// Put returns nil the blob is durable (for FS: it survives a crash).
	Put(ctx context.Context, data []byte) (key string, err error)
	// Get returns the blob stored under key: an error wrapping ErrNotFound
	// if there is none, ErrInvalidKey for a malformed key, ErrCorrupt if
	// the stored bytes do not hash to key.
	Get(ctx context.Context, key string) ([]byte, error)
	// Has reports whether a blob is stored under key, without reading or
	// checking it.
	Has(ctx context.Context, key string) (bool, error)
	// Delete removes the blob stored under key; deleting a missing blob is
	// not an error. Blobs are shared by content: the caller must know that
	// no other record still refers to key (two stops whose signatures are
	// byte-identical share one blob).
	Delete(ctx context.Context, key string) error
}

// KeyOf returns the key of data: the lowercase hex SHA-256 of its bytes.
func KeyOf(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// ValidKey reports whether s is a well-formed key: exactly 64 characters,
// each 0-9 or a-f. Upper-case digits are refused so that one blob has one
// spelling.
func ValidKey(s string) bool {
	if len(s) != KeyLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}
