package blob

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/lastmile/lastmile/internal/durable"
)

// tmpPrefix starts the name of every temporary file Put writes. No key
// starts with a dot, so a temporary file is never taken for a blob.
const tmpPrefix = ".tmp-"

// staleTempAge is how old a temporary file must be for NewFS to remove it.
// A Put finishes in well under a second, so an older temporary file was
// left by a crash; a younger one may belong to another process sharing the
// directory (during a rolling restart) and is left alone.
const staleTempAge = 15 * time.Minute

// FS is a Store keeping each blob in its own file under a root directory,
// fanned out by the first two bytes of the key: root/ab/cd/abcd…, so that
// no directory holds more than a few thousand entries even with hundreds of
// millions of blobs. Files are created 0600 and directories 0700.
//
// Invariants: a file under a blob's final name is complete, because Put
// writes a temporary file in the same directory, syncs it, renames it into
// place and then syncs the directories, so a crash leaves either the whole
// blob or no blob under the final name; a Put that returned nil survives a
// crash. Temporary files (".tmp-*") left by a crash are removed by NewFS.
// An FS is safe for concurrent use, and several processes may share a root.
type FS struct {
	root string
}

// NewFS returns an FS rooted at dir, creating dir (0700) if it does not
// exist, and removes the temporary files a crash left behind (those older
// than 15 minutes; younger ones may belong to another process using the
// same directory). This walks the fan-out directories, so it reads one
// directory entry per stored blob.
func NewFS(dir string) (*FS, error) {
	if dir == "" {
		return nil, errors.New("blob: empty directory name")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("blob: create %s: %w", dir, err)
	}
	st, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("blob: %w", err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("blob: %s is not a directory", dir)
	}
	s := &FS{root: dir}
	if err := s.removeStaleTemps(time.Now().Add(-staleTempAge)); err != nil {
		return nil, err
	}
	return s, nil
}

// Dir returns the root directory.
func (s *FS) Dir() string { return s.root }

// path returns the final file name of the blob with key k (k is valid).
func (s *FS) path(k string) string {
	return filepath.Join(s.root, k[0:2], k[2:4], k)
}

// Put implements Store. If a file already exists under the key with the
// same bytes it is kept (and its directories synced, in case another Put
// renamed it a moment ago and has not synced them yet); if it exists with
// other bytes (damaged), it is replaced.
func (s *FS) Put(ctx context.Context, data []byte) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("blob: put: %w", err)
	}
	key := KeyOf(data)
	final := s.path(key)
	leaf := filepath.Dir(final)

	old, err := os.ReadFile(final)
	switch {
	case err == nil && bytes.Equal(old, data):
		if err := s.syncDirs(leaf); err != nil {
			return "", fmt.Errorf("blob: put %s: %w", key, err)
		}
		return key, nil
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return "", fmt.Errorf("blob: put %s: %w", key, err)
	}

	if err := os.MkdirAll(leaf, 0o700); err != nil {
		return "", fmt.Errorf("blob: put %s: %w", key, err)
	}
	if err := writeAtomic(leaf, final, data); err != nil {
		return "", fmt.Errorf("blob: put %s: %w", key, err)
	}
	if err := s.syncDirs(leaf); err != nil {
		return "", fmt.Errorf("blob: put %s: %w", key, err)
	}
	return key, nil
}

// writeAtomic writes data to a new temporary file in dir, syncs and closes
// it and renames it to final. On error the temporary file is removed.
func writeAtomic(dir, final string, data []byte) (err error) {
	f, err := os.CreateTemp(dir, tmpPrefix+"*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if _, err = f.Write(data); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, final)
}

// syncDirs syncs the leaf directory of a blob, its parent and the root, so
// that the blob's directory entry and any directory created for it are
// durable.
func (s *FS) syncDirs(leaf string) error {
	for _, d := range []string{leaf, filepath.Dir(leaf), s.root} {
		if err := durable.SyncDir(d); err != nil {
			return err
		}
	}
	return nil
}

// Get implements Store.
func (s *FS) Get(ctx context.Context, key string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("blob: get: %w", err)
	}
	if !ValidKey(key) {
		return nil, fmt.Errorf("%w: %q", ErrInvalidKey, clip(key))
	}
	data, err := os.ReadFile(s.path(key))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, key)
	}
	if err != nil {
		return nil, fmt.Errorf("blob: get %s: %w", key, err)
	}
	sum := sha256.Sum256(data)
	if hex.EncodeToString(sum[:]) != key {
		return nil, fmt.Errorf("%w: %s: %d bytes on disk do not hash to the key", ErrCorrupt, key, len(data))
	}
	return data, nil
}

// Has implements Store.
func (s *FS) Has(ctx context.Context, key string) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, fmt.Errorf("blob: has: %w", err)
	}
	if !ValidKey(key) {
		return false, fmt.Errorf("%w: %q", ErrInvalidKey, clip(key))
	}
	st, err := os.Stat(s.path(key))
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("blob: has %s: %w", key, err)
	}
	return st.Mode().IsRegular(), nil
}

// Delete implements Store. The removal is synced to disk; the emptied
// fan-out directories are kept.
func (s *FS) Delete(ctx context.Context, key string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("blob: delete: %w", err)
	}
	if !ValidKey(key) {
		return fmt.Errorf("%w: %q", ErrInvalidKey, clip(key))
	}
	p := s.path(key)
	err := os.Remove(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("blob: delete %s: %w", key, err)
	}
	if err := durable.SyncDir(filepath.Dir(p)); err != nil {
		return fmt.Errorf("blob: delete %s: %w", key, err)
	}
	return nil
}

// removeStaleTemps removes the temporary files in the fan-out directories
// last modified before cutoff. It looks only at the two fan-out levels
// Put writes to, not at anything else under the root.
func (s *FS) removeStaleTemps(cutoff time.Time) error {
	tops, err := os.ReadDir(s.root)
	if err != nil {
		return fmt.Errorf("blob: clean %s: %w", s.root, err)
	}
	for _, top := range tops {
		if !top.IsDir() || !isHexPair(top.Name()) {
			continue
		}
		mid := filepath.Join(s.root, top.Name())
		leaves, err := os.ReadDir(mid)
		if err != nil {
			return fmt.Errorf("blob: clean %s: %w", mid, err)
		}
		for _, l := range leaves {
			if !l.IsDir() || !isHexPair(l.Name()) {
				continue
			}
			leaf := filepath.Join(mid, l.Name())
			files, err := os.ReadDir(leaf)
			if err != nil {
				return fmt.Errorf("blob: clean %s: %w", leaf, err)
			}
			for _, f := range files {
				if !strings.HasPrefix(f.Name(), tmpPrefix) || !f.Type().IsRegular() {
					continue
				}
				info, err := f.Info()
				if errors.Is(err, fs.ErrNotExist) {
					continue // renamed or removed meanwhile
				}
				if err != nil {
					return fmt.Errorf("blob: clean %s: %w", leaf, err)
				}
				if !info.ModTime().Before(cutoff) {
					continue
				}
				p := filepath.Join(leaf, f.Name())
				if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
					return fmt.Errorf("blob: clean: %w", err)
				}
			}
		}
	}
	return nil
}

// isHexPair reports whether name is a fan-out directory name: two
// lowercase hex digits.
func isHexPair(name string) bool {
	return len(name) == 2 && ValidKey(strings.Repeat(name, KeyLen/2))
}

// clip shortens a malformed key for an error message.
func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}
