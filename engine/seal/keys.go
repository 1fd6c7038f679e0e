package seal

import (
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/lastmile/lastmile/internal/durable"
)

// EnvVar is the environment variable the caller reads the data keys from
// and passes to LoadRing.
const EnvVar = "LASTMILE_DATA_KEY"

// KeyFileName is the key file LoadRing uses in the data directory when
// EnvVar is empty.
const KeyFileName = "data.key"

// maxKeysText bounds the size of a key list or key file (255 keys of about
// 50 characters, with room for comments).
const maxKeysText = 64 << 10

// keyFileHeader starts a key file LoadRing creates.
const keyFileHeader = `# lastmile data key: encrypts the personal fields in the database.
# Keep it out of the database and its backups, and back it up separately:
# without it the sealed fields cannot be read. LASTMILE_DATA_KEY overrides it.
# One ID:BASE64 key per line (ids 1..255, 32-byte keys); the first line is the
# current key (it seals), every key opens. Mode must be 0600.
`

// ParseKeys parses a key list as given in LASTMILE_DATA_KEY: one or more
// comma-separated entries, the first being the current key. An entry is
// ID:BASE64KEY, ID a decimal key id in 1..255 and BASE64KEY 32 bytes in
// standard or URL-safe base64, padded or not; a bare BASE64KEY (no colon)
// means id 1. Spaces around entries and around the colon are ignored. An
// empty entry (",," or a trailing comma), a bad id or base64, a key that is
// not 32 bytes or is all zeros, and two entries with the same id or the
// same key are errors that name the entry by position, never its text.
func ParseKeys(s string) ([]Key, error) {
	if len(s) > maxKeysText {
		return nil, fmt.Errorf("key list is %d bytes, more than %d", len(s), maxKeysText)
	}
	if strings.TrimSpace(s) == "" {
		return nil, errors.New("no key")
	}
	var keys []Key
	for i, e := range strings.Split(s, ",") {
		where := fmt.Sprintf("entry %d", i+1)
		e = strings.TrimSpace(e)
		if e == "" {
			return nil, fmt.Errorf("%s is empty", where)
		}
		k, err := parseEntry(e)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		if err := addKey(&keys, k, where); err != nil {
			return nil, err
		}
	}
	return keys, nil
}

// ParseKeyFile parses the contents of a key file: one ID:BASE64KEY entry
// per line in the format of ParseKeys (a bare key means id 1), the first
// being the current key. Blank lines and lines starting with '#' are
// ignored; CRLF line ends are accepted. Errors name the line, never its
// text.
func ParseKeyFile(data []byte) ([]Key, error) {
	if len(data) > maxKeysText {
		return nil, fmt.Errorf("key file is %d bytes, more than %d", len(data), maxKeysText)
	}
	var keys []Key
	for i, line := range strings.Split(string(data), "\n") {
		where := fmt.Sprintf("line %d", i+1)
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		k, err := parseEntry(line)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		if err := addKey(&keys, k, where); err != nil {
			return nil, err
		}
	}
	if len(keys) == 0 {
		return nil, errors.New("no key")
	}
	return keys, nil
}

// parseEntry parses one ID:BASE64KEY or bare BASE64KEY entry (trimmed,
// non-empty). Errors never quote the entry.
func parseEntry(e string) (Key, error) {
	id, b64 := uint8(1), e
	if i := strings.IndexByte(e, ':'); i >= 0 {
		s := strings.TrimSpace(e[:i])
		b64 = strings.TrimSpace(e[i+1:])
		n := 0
		for _, c := range []byte(s) {
			if c < '0' || c > '9' {
				n = -1
				break
			}
			n = n*10 + int(c-'0')
			if n > 255 {
				break
			}
		}
		if s == "" || n < 1 || n > 255 {
			return Key{}, errors.New("key id is not a decimal number in 1..255")
		}
		id = uint8(n)
	}
	secret, err := decodeKey(b64)
	if err != nil {
		return Key{}, fmt.Errorf("id %d: %w", id, err)
	}
	k := Key{ID: id, Secret: secret}
	if err := checkKey(k); err != nil {
		return Key{}, fmt.Errorf("id %d: %w", id, err)
	}
	return k, nil
}

// decodeKey decodes standard or URL-safe base64, padded or not, in its
// canonical form only; errors never quote the input.
func decodeKey(s string) ([]byte, error) {
	if s == "" {
		return nil, errors.New("key is empty")
	}
	url, std := false, false
	for _, c := range []byte(s) {
		switch {
		case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '=':
		case c == '-' || c == '_':
			url = true
		case c == '+' || c == '/':
			std = true
		default:
			return nil, errors.New("key is not base64 (a character outside the standard and URL-safe alphabets)")
		}
	}
	if url && std {
		return nil, errors.New("key is not base64 (mixes the standard and URL-safe alphabets)")
	}
	enc := base64.StdEncoding
	if url {
		enc = base64.URLEncoding
	}
	if !strings.HasSuffix(s, "=") {
		enc = enc.WithPadding(base64.NoPadding)
	}
	b, err := enc.Strict().DecodeString(s)
	if err != nil {
		return nil, errors.New("key is not valid base64")
	}
	if len(b) != KeySize {
		return nil, fmt.Errorf("key decodes to %d bytes, want %d", len(b), KeySize)
	}
	return b, nil
}

// addKey appends k to keys unless its id or secret is already there.
func addKey(keys *[]Key, k Key, where string) error {
	for _, o := range *keys {
		if o.ID == k.ID {
			return fmt.Errorf("%s: duplicate key id %d", where, k.ID)
		}
		if Equal(o.Secret, k.Secret) {
			return fmt.Errorf("%s: id %d has the same key as id %d", where, k.ID, o.ID)
		}
	}
	*keys = append(*keys, k)
	return nil
}

// FormatKeys writes keys as a LASTMILE_DATA_KEY value (ID:BASE64 entries,
// standard base64, comma-separated, the first being current), for a key
// generation or rotation command. It fails on keys NewRing would refuse.
func FormatKeys(keys ...Key) (string, error) {
	if _, err := NewRing(keys...); err != nil {
		return "", err
	}
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%d:%s", k.ID, base64.StdEncoding.EncodeToString(k.Secret))
	}
	return b.String(), nil
}

// FormatKeyFile writes keys as a key file: a comment header, then one
// ID:BASE64 line per key (standard base64), the first being current. It
// fails on keys NewRing would refuse.
func FormatKeyFile(keys ...Key) ([]byte, error) {
	if _, err := NewRing(keys...); err != nil {
		return nil, err
	}
	var b strings.Builder
	b.WriteString(keyFileHeader)
	for _, k := range keys {
		fmt.Fprintf(&b, "%d:%s\n", k.ID, base64.StdEncoding.EncodeToString(k.Secret))
	}
	return []byte(b.String()), nil
}

// LoadRing returns the data key ring. env is the value of LASTMILE_DATA_KEY
// (the caller passes os.Getenv(EnvVar)); when it is not blank it is parsed
// with ParseKeys and the key file is not read. Otherwise the ring is read
// from the key file dir/data.key (format of ParseKeyFile), which is created
// on first start with one new random key with id 1; created reports that,
// so the caller can tell the operator to back the file up.
//
// The key file must be a regular file that neither group nor others can
// access (mode 0600 or stricter; the check is skipped on Windows): a wider
// mode is refused, as ssh refuses a private key, rather than silently
// fixed. Creation is atomic and durable: the key is written to a 0600
// temporary file in dir and fsynced, then hard-linked to data.key (which,
// unlike a rename, never replaces a key another process created meanwhile:
// that key is loaded instead), and dir is fsynced. On file systems without
// hard links it falls back to a rename after checking data.key is absent.
// dir is created (0700) when missing. Errors name the file or variable and
// the problem, never key material.
func LoadRing(env, dir string) (r *Ring, created bool, err error) {
	if strings.TrimSpace(env) != "" {
		keys, err := ParseKeys(env)
		if err != nil {
			return nil, false, fmt.Errorf("seal: %s: %w", EnvVar, err)
		}
		r, err := NewRing(keys...)
		if err != nil {
			return nil, false, fmt.Errorf("seal: %s: %w", EnvVar, err)
		}
		return r, false, nil
	}
	if dir == "" {
		return nil, false, fmt.Errorf("seal: no data key: set %s or give a data directory for %s", EnvVar, KeyFileName)
	}
	path := filepath.Join(dir, KeyFileName)
	r, err = readKeyFile(path)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return r, false, err
	}
	return createKeyFile(dir, path)
}

// readKeyFile loads a ring from a key file after checking its mode.
func readKeyFile(path string) (*Ring, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("seal: key file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("seal: key file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("seal: key file %s is not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 && runtime.GOOS != "windows" {
		return nil, fmt.Errorf("seal: key file %s has mode %04o, which lets other users access it; it must be 0600 or stricter (chmod 600 %s)", path, perm, path)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxKeysText+1))
	if err != nil {
		return nil, fmt.Errorf("seal: key file %s: %w", path, err)
	}
	keys, err := ParseKeyFile(data)
	if err != nil {
		return nil, fmt.Errorf("seal: key file %s: %w", path, err)
	}
	r, err := NewRing(keys...)
	if err != nil {
		return nil, fmt.Errorf("seal: key file %s: %w", path, err)
	}
	return r, nil
}

// createKeyFile writes a new key file at path (see LoadRing) and returns
// its ring, or the ring of a key file that appeared meanwhile.
func createKeyFile(dir, path string) (*Ring, bool, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, false, fmt.Errorf("seal: key file: %w", err)
	}
	key := GenerateKey(1)
	data, err := FormatKeyFile(key)
	if err != nil {
		return nil, false, err
	}
	r, err := NewRing(key)
	if err != nil {
		return nil, false, err
	}
	tmp, err := os.CreateTemp(dir, "."+KeyFileName+".*.tmp") // mode 0600
	if err != nil {
		return nil, false, fmt.Errorf("seal: key file: %w", err)
	}
	tmpName := tmp.Name()
	defer os.Remove(tmpName) // after the link, drops the temporary name only
	if err := writeSync(tmp, data); err != nil {
		return nil, false, fmt.Errorf("seal: key file %s: %w", tmpName, err)
	}
	if err := os.Link(tmpName, path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			r, err := readKeyFile(path)
			return r, false, err
		}
		// No hard links here (some network or FUSE file systems): rename,
		// with a small window where a concurrent creation could be replaced.
		if _, serr := os.Lstat(path); serr == nil {
			r, err := readKeyFile(path)
			return r, false, err
		}
		if err := os.Rename(tmpName, path); err != nil {
			return nil, false, fmt.Errorf("seal: key file: %w", err)
		}
	}
	if err := durable.SyncDir(dir); err != nil {
		return nil, false, fmt.Errorf("seal: key file %s: %w", path, err)
	}
	return r, true, nil
}

// writeSync writes data to f, forces the mode to 0600, fsyncs and closes f.
func writeSync(f *os.File, data []byte) error {
	_, err := f.Write(data)
	if err == nil {
		err = f.Chmod(0o600)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
