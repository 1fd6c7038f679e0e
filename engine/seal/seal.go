// Package seal encrypts personal data at rest and makes unguessable tokens
// and API keys. It has no HTTP and no database in it: the storage layer
// calls Ring.Seal before it writes a personal field and Ring.Open after it
// reads one, and the API layer calls Token, NewAPIKey and CheckAPIKey.
//
// # Threat model
//
// Protected: a leak of the database file, a dump or a backup. The personal
// fields of delivery recipients (names, phone numbers, e-mail addresses,
// address text, delivery instructions) are stored as AES-256-GCM
// ciphertexts, unreadable without the data key, and the key is kept outside
// the database (the LASTMILE_DATA_KEY environment variable or a 0600 key
// file, see LoadRing), so it is not in the dump. Every ciphertext is
// authenticated: a changed byte makes Open fail rather than return altered
// data. The associated data (see Seal and AAD) binds a ciphertext to its
// row and column, so someone who can write to the database cannot move a
// recipient's phone number into another shipment's row, or a name into an
// instructions column, and have it decrypt there. API keys and tracking
// tokens are stored as SHA-256 hashes, so a leaked table does not grant
// access.
//
// Not protected: fields that are not sealed, which by design include
// coordinates, time windows, tracking numbers, stop order and timestamps
// (the engine routes on them; coordinates of a delivery point are personal
// data too, so a dump still reveals where deliveries go). The length of a
// sealed field is visible (ciphertext length = plaintext length + 30). An
// attacker who can write to the database can blank a field (an empty
// plaintext is stored as an empty ciphertext, see Seal), replay an older
// ciphertext of the same row and column, or delete rows. Nothing here
// protects against an attacker who can read the process memory, the
// environment or the key file: they have the key.
package seal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Version is the format version byte that starts every sealed value.
const Version byte = 1

// KeySize is the size of a data key in bytes (AES-256).
const KeySize = 32

// NonceSize is the size of the random GCM nonce in a sealed value.
const NonceSize = 12

// TagSize is the size of the GCM authentication tag in a sealed value.
const TagSize = 16

// Overhead is the number of bytes a sealed value adds to its plaintext:
// version, key id, nonce and tag.
const Overhead = 2 + NonceSize + TagSize

// headerSize is the version byte and the key id byte.
const headerSize = 2

// Errors returned by Open, wrapped with context; test them with errors.Is.
// None of them carries any part of the ciphertext, the plaintext or a key.
var (
	// ErrTooShort: the value is shorter than Overhead bytes.
	ErrTooShort = errors.New("sealed value too short")
	// ErrVersion: the first byte is not a known format version.
	ErrVersion = errors.New("unknown sealed value version")
	// ErrUnknownKey: the key id is not in the ring (a key was removed too
	// early, or the wrong key set is configured).
	ErrUnknownKey = errors.New("unknown key id")
	// ErrAuth: GCM authentication failed: the value was altered, the
	// associated data differs (a value moved to another row or column), or
	// the key with this id is not the key that sealed it.
	ErrAuth = errors.New("authentication failed")
)

// Key is one data key of a ring: a 32-byte AES-256 key and its id.
//
// IDs are 1..255 (0 is never valid) and are written into every value the
// key seals, so a key's id must never be reused for another key while
// values sealed with the old one remain. String and GoString redact the
// secret, so a Key, a *Key or an exported Key field can be printed with any
// fmt verb without leaking it; fmt cannot call them on an unexported field,
// so do not keep Keys in structs: give them to NewRing (a Ring holds no
// raw key bytes and prints safely anywhere) and drop them.
type Key struct {
	ID     uint8
	Secret []byte
}

// String describes the key without its secret.
func (k Key) String() string {
	return "seal.Key{ID: " + strconv.Itoa(int(k.ID)) + ", Secret: <redacted>}"
}

// GoString describes the key without its secret (for %#v).
func (k Key) GoString() string { return k.String() }

// GenerateKey returns a new key with the given id and 32 bytes from
// crypto/rand.
func GenerateKey(id uint8) Key {
	k := Key{ID: id, Secret: make([]byte, KeySize)}
	rand.Read(k.Secret) // never returns an error (crypto/rand, Go 1.24+)
	return k
}

// Ring is a set of AES-256-GCM data keys with distinct ids in 1..255, one
// of them current: Seal always uses the current key, Open uses whichever
// key the value names. Rotation: put a new key first (it becomes current),
// keep the old ones until every value sealed with them has been resealed
// (see NeedsRotation and Reseal), then drop them.
//
// A Ring holds no raw key bytes, only the expanded AES-GCM states; it is
// immutable after NewRing and safe for concurrent use. The zero Ring is not
// usable: make one with NewRing or LoadRing.
type Ring struct {
	// aeads is by key id, nil where the ring has no key; behind a pointer
	// so that even a Ring printed inside another struct shows no key state.
	aeads *[256]cipher.AEAD
	// macs are the keys of MAC by key id: HMAC-SHA256 of the data key
	// and a fixed label, so that a MAC reveals nothing of the data key.
	macs    *[256][]byte
	current uint8
	ids     []uint8 // in the order given, current first
}

// NewRing makes a ring from keys, the first being current. It fails when
// there is no key, a key is not 32 bytes or is all zeros, an id is 0, or
// two keys share an id or a secret. The secrets are not retained.
func NewRing(keys ...Key) (*Ring, error) {
	if len(keys) == 0 {
		return nil, errors.New("seal: no key")
	}
	r := &Ring{aeads: new([256]cipher.AEAD), macs: new([256][]byte), current: keys[0].ID}
	for i, k := range keys {
		if err := checkKey(k); err != nil {
			return nil, fmt.Errorf("seal: key %d (id %d): %w", i+1, k.ID, err)
		}
		if r.aeads[k.ID] != nil {
			return nil, fmt.Errorf("seal: key %d: duplicate key id %d", i+1, k.ID)
		}
		for j := range i {
			if subtle.ConstantTimeCompare(keys[j].Secret, k.Secret) == 1 {
				return nil, fmt.Errorf("seal: keys %d and %d (ids %d and %d) have the same secret", j+1, i+1, keys[j].ID, k.ID)
			}
		}
		block, err := aes.NewCipher(k.Secret)
		if err != nil {
			return nil, fmt.Errorf("seal: key %d (id %d): %w", i+1, k.ID, err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("seal: key %d (id %d): %w", i+1, k.ID, err)
		}
		r.aeads[k.ID] = aead
		m := hmac.New(sha256.New, k.Secret)
		m.Write([]byte("lastmile seal: MAC key v1"))
		r.macs[k.ID] = m.Sum(nil)
		r.ids = append(r.ids, k.ID)
	}
	return r, nil
}

// checkKey reports why k cannot be a data key, without its secret.
func checkKey(k Key) error {
	if k.ID == 0 {
		return errors.New("key id 0 is not valid (ids are 1..255)")
	}
	if len(k.Secret) != KeySize {
		return fmt.Errorf("key is %d bytes, want %d", len(k.Secret), KeySize)
	}
	if subtle.ConstantTimeCompare(k.Secret, make([]byte, KeySize)) == 1 {
		return errors.New("key is all zeros")
	}
	return nil
}

// MAC returns a keyed hash of data under the current key (its id, then
// HMAC-SHA256): a value that can be looked up (an opted-out address)
// without storing it, and that cannot be brute-forced from a database dump
// without the key, as a plain hash of a phone number could.
func (r *Ring) MAC(data []byte) []byte { return r.macWith(r.current, data) }

// MACs returns data's MAC under every key of the ring, current first, to
// find values stored before a rotation.
func (r *Ring) MACs(data []byte) [][]byte {
	out := make([][]byte, len(r.ids))
	for i, id := range r.ids {
		out[i] = r.macWith(id, data)
	}
	return out
}

func (r *Ring) macWith(id uint8, data []byte) []byte {
	m := hmac.New(sha256.New, r.macs[id])
	m.Write(data)
	return m.Sum([]byte{id})
}

// Current returns the id of the key Seal uses.
func (r *Ring) Current() uint8 { return r.current }

// IDs returns the ids of the ring's keys, the current one first.
func (r *Ring) IDs() []uint8 { return append([]uint8(nil), r.ids...) }

// String describes the ring by its key ids, never its keys (a value
// receiver, so printing a Ring or a *Ring with any fmt verb is safe).
func (r Ring) String() string {
	var b strings.Builder
	b.WriteString("seal.Ring{current: ")
	b.WriteString(strconv.Itoa(int(r.current)))
	b.WriteString(", ids: [")
	for i, id := range r.ids {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(strconv.Itoa(int(id)))
	}
	b.WriteString("]}")
	return b.String()
}

// GoString describes the ring like String (for %#v).
func (r Ring) GoString() string { return r.String() }

// Seal encrypts plaintext with the ring's current key and returns
//
//	sealed = version (1 byte, = Version = 0x01)
//	      || key id  (1 byte, 1..255: the current key's id)
//	      || nonce   (12 bytes from crypto/rand)
//	      || GCM ciphertext (len(plaintext) bytes) || GCM tag (16 bytes)
//
// so len(sealed) = len(plaintext) + Overhead. The GCM additional data is
// the two header bytes followed by aad: the header is authenticated too.
//
// aad (associated data) is not stored in the output; Open must be given
// the same bytes or it fails with ErrAuth. Callers bind a value to where it
// is stored by passing its table, column and row, e.g.
// AAD("shipments", "recipient_name", trackingID) (or any other unambiguous
// encoding, such as "shipments.recipient_name:" + trackingID), so a value
// copied into another row or column does not open. The row part must be an
// identifier that never changes for the row (not a value that can be
// edited), or the field must be resealed when it changes.
//
// An empty (or nil) plaintext seals to nil, so an absent optional field
// stays absent (NULL or empty) in the database; Open of an empty value
// returns nil. Emptiness is therefore not authenticated: someone who can
// write to the database can blank a field, but cannot forge content.
//
// Nonces are random: a key should seal fewer than 2^32 values (NIST SP
// 800-38D); rotate long before (delivery volumes are far below it).
func (r *Ring) Seal(plaintext, aad []byte) []byte {
	if len(plaintext) == 0 {
		return nil
	}
	if r.aeads == nil {
		panic("seal: Seal on a Ring not made by NewRing or LoadRing")
	}
	aead := r.aeads[r.current]
	out := make([]byte, headerSize+NonceSize, len(plaintext)+Overhead)
	out[0] = Version
	out[1] = r.current
	rand.Read(out[headerSize:]) // never returns an error (crypto/rand, Go 1.24+)
	ad := make([]byte, 0, headerSize+len(aad))
	ad = append(append(ad, out[:headerSize]...), aad...)
	return aead.Seal(out, out[headerSize:], plaintext, ad)
}

// Open decrypts a value made by Seal with the same aad. An empty value
// opens to nil. Errors wrap ErrVersion, ErrTooShort, ErrUnknownKey or
// ErrAuth (checked in that order) and name at most the version byte and
// the key id, never data.
func (r *Ring) Open(sealed, aad []byte) ([]byte, error) {
	if len(sealed) == 0 {
		return nil, nil
	}
	if sealed[0] != Version {
		return nil, fmt.Errorf("seal: open: version %d: %w", sealed[0], ErrVersion)
	}
	if len(sealed) < Overhead {
		return nil, fmt.Errorf("seal: open: %d bytes, want at least %d: %w", len(sealed), Overhead, ErrTooShort)
	}
	id := sealed[1]
	if r.aeads == nil || r.aeads[id] == nil {
		return nil, fmt.Errorf("seal: open: key id %d: %w", id, ErrUnknownKey)
	}
	ad := make([]byte, 0, headerSize+len(aad))
	ad = append(append(ad, sealed[:headerSize]...), aad...)
	nonce := sealed[headerSize : headerSize+NonceSize]
	pt, err := r.aeads[id].Open(nil, nonce, sealed[headerSize+NonceSize:], ad)
	if err != nil {
		return nil, fmt.Errorf("seal: open (key id %d): %w", id, ErrAuth)
	}
	return pt, nil
}

// SealString is Seal for a string plaintext and a string aad. An empty
// string seals to nil.
func (r *Ring) SealString(plaintext, aad string) []byte {
	return r.Seal([]byte(plaintext), []byte(aad))
}

// OpenString is Open returning a string; an empty value opens to "".
func (r *Ring) OpenString(sealed []byte, aad string) (string, error) {
	pt, err := r.Open(sealed, []byte(aad))
	if err != nil {
		return "", err
	}
	return string(pt), nil
}

// KeyID returns the id of the key that sealed a value (read from its
// header, without authenticating it), and false for an empty value or one
// too short or of an unknown version to have a key id.
func KeyID(sealed []byte) (uint8, bool) {
	if len(sealed) < Overhead || sealed[0] != Version {
		return 0, false
	}
	return sealed[1], true
}

// NeedsRotation reports whether a stored value should be resealed: it is
// non-empty and its header is not the current version with the current
// key id. Malformed values (too short, unknown version) report true too, so
// a rotation pass reaches them and Reseal reports why they do not open.
// Only the header is read; nothing is decrypted.
func (r *Ring) NeedsRotation(sealed []byte) bool {
	if len(sealed) == 0 {
		return false
	}
	id, ok := KeyID(sealed)
	return !ok || id != r.current
}

// Reseal opens a value and seals it again with the current key when
// NeedsRotation says so, for lazy re-encryption after a rotation: the
// storage layer writes out back only when changed is true. A value that
// does not need it is returned as is (not authenticated).
func (r *Ring) Reseal(sealed, aad []byte) (out []byte, changed bool, err error) {
	if !r.NeedsRotation(sealed) {
		return sealed, false, nil
	}
	pt, err := r.Open(sealed, aad)
	if err != nil {
		return nil, false, fmt.Errorf("seal: reseal: %w", err)
	}
	return r.Seal(pt, aad), true, nil
}

// AAD encodes parts (typically table, column and a row's immutable id) as
// unambiguous associated data for Seal and Open: each part is written as
// its length (uvarint) then its bytes, so ("a:b", "c") and ("a", "b:c")
// give different results.
func AAD(parts ...string) []byte {
	n := 0
	for _, p := range parts {
		n += binary.MaxVarintLen64 + len(p)
	}
	b := make([]byte, 0, n)
	for _, p := range parts {
		b = binary.AppendUvarint(b, uint64(len(p)))
		b = append(b, p...)
	}
	return b
}
