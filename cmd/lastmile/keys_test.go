package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestKeysCommand creates, lists and revokes keys in a data folder, and
// checks the key file's and the admin key file's modes.
func TestKeysCommand(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("LASTMILE_DATA_KEY", "")
	t.Setenv("LASTMILE_STATE", "")
	t.Setenv("LASTMILE_DB", "")
	runOK := func(args ...string) string {
		t.Helper()
		var out, errb bytes.Buffer
		if code := run(args, &out, &errb); code != 0 {
			t.Fatalf("lastmile %s: exit %d: %s", strings.Join(args, " "), code, errb.String())
		}
		return out.String()
	}
	var k struct{ ID, Key, Scope, Vehicle string }
	if err := json.Unmarshal([]byte(runOK("keys", "create", "--scope", "driver", "--vehicle", "van-1", "--state", dir)), &k); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(k.Key, "lm_") || k.Scope != "driver" || k.Vehicle != "van-1" || k.ID == "" {
		t.Fatalf("created %+v", k)
	}
	if fi, err := os.Stat(filepath.Join(dir, "data.key")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("data.key: %v %v", fi, err)
	}
	list := runOK("keys", "list", "--state", dir)
	if !strings.Contains(list, k.ID) || strings.Contains(list, k.Key) {
		t.Fatalf("list shows the id, never the key:\n%s", list)
	}
	runOK("keys", "revoke", k.ID, "--state", dir)
	for _, c := range []struct {
		args []string
		code int
	}{
		{[]string{"keys", "revoke", k.ID, "--state", dir}, 1},
		{[]string{"keys", "create", "--scope", "root", "--state", dir}, 1},
		{[]string{"keys", "create", "--scope", "driver", "--state", dir}, 1},
		{[]string{"keys", "create", "--scope", "admin"}, 2},
		{[]string{"keys", "frobnicate", "--state", dir}, 2},
		{[]string{"keys"}, 2},
	} {
		var out, errb bytes.Buffer
		if code := run(c.args, &out, &errb); code != c.code {
			t.Errorf("lastmile %s: exit %d, want %d: %s", strings.Join(c.args, " "), code, c.code, errb.String())
		}
	}
	gen := strings.TrimSpace(runOK("keys", "generate"))
	if !strings.HasPrefix(gen, "lm_") || len(gen) != 46 {
		t.Errorf("generate: %q", gen)
	}
	// The admin key file of make run: created 0600, read back, refused
	// when others can read it.
	f := filepath.Join(dir, "admin.key")
	key, created, err := loadAdminKey(f)
	if err != nil || !created {
		t.Fatal(created, err)
	}
	again, created, err := loadAdminKey(f)
	if err != nil || created || again != key {
		t.Fatalf("reload: %v %v", created, err)
	}
	os.Chmod(f, 0o644)
	if _, _, err := loadAdminKey(f); err == nil {
		t.Error("an admin key file readable by others was accepted")
	}
}
