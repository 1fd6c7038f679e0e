package blob

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// stores returns one fresh store of each implementation.
func stores(t *testing.T) map[string]Store {
	t.Helper()
	f, err := NewFS(filepath.Join(t.TempDir(), "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	return map[string]Store{"FS": f, "Mem": NewMem()}
}

func TestKeyOf(t *testing.T) {
	// SHA-256 test vectors (FIPS 180-2).
	for _, tc := range []struct{ in, want string }{
		{"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
		{"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
	} {
		if got := KeyOf([]byte(tc.in)); got != tc.want {
			t.Errorf("KeyOf(%q) = %s, want %s", tc.in, got, tc.want)
		}
		if !ValidKey(tc.want) {
			t.Errorf("ValidKey(%s) = false", tc.want)
		}
	}
}

func TestValidKey(t *testing.T) {
	good := KeyOf([]byte("x"))
	for _, tc := range []struct {
		name string
		key  string
		want bool
	}{
		{"sha256 hex", good, true},
		{"empty", "", false},
		{"short", good[:63], false},
		{"long", good + "0", false},
		{"upper case", strings.ToUpper(good), false},
		{"non-hex", "g" + good[1:], false},
		{"path traversal", "../../../../etc/passwd" + good[22:], false},
		{"slash", good[:10] + "/" + good[11:], false},
		{"dot", "." + good[1:], false},
		{"NUL", "\x00" + good[1:], false},
		{"multi-byte", "é" + good[2:], false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := ValidKey(tc.key); got != tc.want {
				t.Errorf("ValidKey(%q) = %v, want %v", tc.key, got, tc.want)
			}
		})
	}
}

func TestRoundTrip(t *testing.T) {
	ctx := context.Background()
	for name, s := range stores(t) {
		t.Run(name, func(t *testing.T) {
			for _, data := range [][]byte{
				[]byte("a photo"),
				{},
				bytes.Repeat([]byte{0, 1, 2, 0xff}, 100000),
			} {
				key, err := s.Put(ctx, data)
				if err != nil {
					t.Fatal(err)
				}
				if key != KeyOf(data) {
					t.Fatalf("Put returned %s, want KeyOf = %s", key, KeyOf(data))
				}
				got, err := s.Get(ctx, key)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, data) {
					t.Fatalf("Get returned %d bytes, want the %d put", len(got), len(data))
				}
				ok, err := s.Has(ctx, key)
				if err != nil || !ok {
					t.Fatalf("Has = %v, %v; want true", ok, err)
				}
			}
		})
	}
}

func TestCopies(t *testing.T) {
	ctx := context.Background()
	for name, s := range stores(t) {
		t.Run(name, func(t *testing.T) {
			data := []byte("signature")
			key, err := s.Put(ctx, data)
			if err != nil {
				t.Fatal(err)
			}
			data[0] = 'X' // the caller reuses its buffer
			got, err := s.Get(ctx, key)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != "signature" {
				t.Fatalf("stored blob changed with the caller's slice: %q", got)
			}
			got[0] = 'Y' // the caller modifies what it got
			again, err := s.Get(ctx, key)
			if err != nil || string(again) != "signature" {
				t.Fatalf("Get after modifying a returned slice = %q, %v", again, err)
			}
		})
	}
}

func TestIdempotentPut(t *testing.T) {
	ctx := context.Background()
	for name, s := range stores(t) {
		t.Run(name, func(t *testing.T) {
			k1, err := s.Put(ctx, []byte("same"))
			if err != nil {
				t.Fatal(err)
			}
			k2, err := s.Put(ctx, []byte("same"))
			if err != nil {
				t.Fatal(err)
			}
			if k1 != k2 {
				t.Fatalf("keys differ: %s, %s", k1, k2)
			}
			if n := count(t, s); n != 1 {
				t.Fatalf("%d blobs stored, want 1", n)
			}
		})
	}
}

func TestMissingAndDelete(t *testing.T) {
	ctx := context.Background()
	for name, s := range stores(t) {
		t.Run(name, func(t *testing.T) {
			absent := KeyOf([]byte("never stored"))
			if _, err := s.Get(ctx, absent); !errors.Is(err, ErrNotFound) {
				t.Fatalf("Get(absent) error = %v, want ErrNotFound", err)
			}
			if ok, err := s.Has(ctx, absent); ok || err != nil {
				t.Fatalf("Has(absent) = %v, %v", ok, err)
			}
			if err := s.Delete(ctx, absent); err != nil {
				t.Fatalf("Delete(absent) = %v, want nil", err)
			}
			key, err := s.Put(ctx, []byte("to delete"))
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Delete(ctx, key); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Get(ctx, key); !errors.Is(err, ErrNotFound) {
				t.Fatalf("Get after Delete error = %v, want ErrNotFound", err)
			}
			if ok, err := s.Has(ctx, key); ok || err != nil {
				t.Fatalf("Has after Delete = %v, %v", ok, err)
			}
		})
	}
}

func TestBadKeys(t *testing.T) {
	ctx := context.Background()
	good := KeyOf([]byte("x"))
	bad := []string{"", "../" + good[3:], strings.ToUpper(good), good[:62] + "/.", good + "\x00"}
	for name, s := range stores(t) {
		t.Run(name, func(t *testing.T) {
			for _, k := range bad {
				if _, err := s.Get(ctx, k); !errors.Is(err, ErrInvalidKey) {
					t.Errorf("Get(%q) error = %v, want ErrInvalidKey", k, err)
				}
				if _, err := s.Has(ctx, k); !errors.Is(err, ErrInvalidKey) {
					t.Errorf("Has(%q) error = %v, want ErrInvalidKey", k, err)
				}
				if err := s.Delete(ctx, k); !errors.Is(err, ErrInvalidKey) {
					t.Errorf("Delete(%q) error = %v, want ErrInvalidKey", k, err)
				}
			}
		})
	}
}

func TestCanceledContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	key := KeyOf([]byte("x"))
	for name, s := range stores(t) {
		t.Run(name, func(t *testing.T) {
			if _, err := s.Put(ctx, []byte("x")); !errors.Is(err, context.Canceled) {
				t.Errorf("Put error = %v", err)
			}
			if _, err := s.Get(ctx, key); !errors.Is(err, context.Canceled) {
				t.Errorf("Get error = %v", err)
			}
			if _, err := s.Has(ctx, key); !errors.Is(err, context.Canceled) {
				t.Errorf("Has error = %v", err)
			}
			if err := s.Delete(ctx, key); !errors.Is(err, context.Canceled) {
				t.Errorf("Delete error = %v", err)
			}
		})
	}
}

func TestConcurrentPuts(t *testing.T) {
	ctx := context.Background()
	for name, s := range stores(t) {
		t.Run(name, func(t *testing.T) {
			same := bytes.Repeat([]byte("parcel at the door "), 5000)
			const n = 16
			var wg sync.WaitGroup
			keys := make([]string, 2*n)
			errs := make([]error, 2*n)
			for i := range n {
				wg.Add(2)
				go func() { // all the same content
					defer wg.Done()
					keys[i], errs[i] = s.Put(ctx, same)
				}()
				go func() { // each its own content, read back at once
					defer wg.Done()
					data := fmt.Appendf(nil, "blob %d", i)
					k, err := s.Put(ctx, data)
					if err == nil {
						var got []byte
						got, err = s.Get(ctx, k)
						if err == nil && !bytes.Equal(got, data) {
							err = fmt.Errorf("got %q back for %q", got, data)
						}
					}
					keys[n+i], errs[n+i] = k, err
				}()
			}
			wg.Wait()
			for i, err := range errs {
				if err != nil {
					t.Fatalf("put %d: %v", i, err)
				}
			}
			for i := range n {
				if keys[i] != KeyOf(same) {
					t.Fatalf("put %d returned key %s, want %s", i, keys[i], KeyOf(same))
				}
			}
			got, err := s.Get(ctx, KeyOf(same))
			if err != nil || !bytes.Equal(got, same) {
				t.Fatalf("Get after concurrent puts: %d bytes, %v", len(got), err)
			}
			if c := count(t, s); c != n+1 {
				t.Fatalf("%d blobs stored, want %d", c, n+1)
			}
			if f, ok := s.(*FS); ok {
				if tmp := temps(t, f.Dir()); len(tmp) != 0 {
					t.Fatalf("temporary files left: %v", tmp)
				}
			}
		})
	}
}

func TestFSLayoutAndPermissions(t *testing.T) {
	root := filepath.Join(t.TempDir(), "blobs")
	s, err := NewFS(root)
	if err != nil {
		t.Fatal(err)
	}
	key, err := s.Put(context.Background(), []byte("abc"))
	if err != nil {
		t.Fatal(err)
	}
	want := filepath.Join(root, "ba", "78", key)
	st, err := os.Stat(want)
	if err != nil {
		t.Fatalf("blob not at %s: %v", want, err)
	}
	if p := st.Mode().Perm(); p != 0o600 {
		t.Errorf("blob file mode %o, want 600", p)
	}
	for _, d := range []string{root, filepath.Join(root, "ba"), filepath.Join(root, "ba", "78")} {
		st, err := os.Stat(d)
		if err != nil {
			t.Fatal(err)
		}
		if p := st.Mode().Perm(); p != 0o700 {
			t.Errorf("directory %s mode %o, want 700", d, p)
		}
	}
}

func TestFSDetectsCorruption(t *testing.T) {
	ctx := context.Background()
	data := bytes.Repeat([]byte("proof of delivery "), 1000)
	for _, tc := range []struct {
		name   string
		damage func([]byte) []byte
	}{
		{"truncated", func(b []byte) []byte { return b[:len(b)/2] }},
		{"empty", func([]byte) []byte { return nil }},
		{"flipped byte", func(b []byte) []byte { b[100] ^= 1; return b }},
		{"appended", func(b []byte) []byte { return append(b, 0) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := NewFS(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			key, err := s.Put(ctx, data)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(s.path(key), tc.damage(bytes.Clone(data)), 0o600); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Get(ctx, key); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Get of a damaged blob: error %v, want ErrCorrupt", err)
			}
			// Putting the same content again repairs the blob.
			if _, err := s.Put(ctx, data); err != nil {
				t.Fatal(err)
			}
			got, err := s.Get(ctx, key)
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("Get after re-Put: %d bytes, %v", len(got), err)
			}
		})
	}
}

func TestNewFSRemovesStaleTemps(t *testing.T) {
	root := t.TempDir()
	s, err := NewFS(root)
	if err != nil {
		t.Fatal(err)
	}
	key, err := s.Put(context.Background(), []byte("kept"))
	if err != nil {
		t.Fatal(err)
	}
	leaf := filepath.Dir(s.path(key))
	other := filepath.Join(root, "0f", "a1")
	if err := os.MkdirAll(other, 0o700); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-time.Hour)
	stale := []string{filepath.Join(leaf, tmpPrefix+"123"), filepath.Join(other, tmpPrefix+"456")}
	fresh := filepath.Join(leaf, tmpPrefix+"789") // may be another process's Put in progress
	for _, p := range append(stale, fresh) {
		if err := os.WriteFile(p, []byte("half a pho"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range stale {
		if err := os.Chtimes(p, old, old); err != nil {
			t.Fatal(err)
		}
	}
	// Files that are not temporary files of a fan-out directory are not
	// touched, even when old.
	unrelated := []string{filepath.Join(root, tmpPrefix+"root"), filepath.Join(root, "README")}
	for _, p := range unrelated {
		if err := os.WriteFile(p, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, old, old); err != nil {
			t.Fatal(err)
		}
	}

	s, err = NewFS(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range stale {
		if _, err := os.Stat(p); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("stale temporary file %s not removed (%v)", p, err)
		}
	}
	for _, p := range append(unrelated, fresh, s.path(key)) {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s removed: %v", p, err)
		}
	}
	if got, err := s.Get(context.Background(), key); err != nil || string(got) != "kept" {
		t.Fatalf("Get after NewFS: %q, %v", got, err)
	}
}

func TestFSPartialWriteInvisible(t *testing.T) {
	// A crash in the middle of Put leaves a temporary file, never a blob:
	// the key is not found, and a later Put of the same bytes succeeds.
	ctx := context.Background()
	s, err := NewFS(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte("photo "), 1000)
	key := KeyOf(data)
	leaf := filepath.Dir(s.path(key))
	if err := os.MkdirAll(leaf, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(leaf, tmpPrefix+"crashed"), data[:100], 0o600); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.Has(ctx, key); ok || err != nil {
		t.Fatalf("Has = %v, %v after a crashed write", ok, err)
	}
	if _, err := s.Get(ctx, key); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get error %v, want ErrNotFound", err)
	}
	if _, err := s.Put(ctx, data); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Get(ctx, key); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("Get after Put: %d bytes, %v", len(got), err)
	}
}

func TestNewFSErrors(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{"", file, filepath.Join(file, "sub")} {
		if _, err := NewFS(dir); err == nil {
			t.Errorf("NewFS(%q) succeeded", dir)
		}
	}
}

// count returns the number of blobs in s.
func count(t *testing.T, s Store) int {
	t.Helper()
	switch s := s.(type) {
	case *Mem:
		return s.Len()
	case *FS:
		n := 0
		err := filepath.WalkDir(s.Dir(), func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.Type().IsRegular() && ValidKey(d.Name()) {
				n++
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	t.Fatalf("unknown store %T", s)
	return 0
}

// temps lists the temporary files under root.
func temps(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && strings.HasPrefix(d.Name(), tmpPrefix) {
			out = append(out, p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
