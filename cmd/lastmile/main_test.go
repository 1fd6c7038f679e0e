package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

var (
	monacoOnce sync.Once
	monacoLMG  string
	monacoErr  string
)

// preparedMonaco prepares the committed Monaco extract once per test binary
// through the CLI and returns the .lmg path.
func preparedMonaco(t *testing.T) string {
	t.Helper()
	monacoOnce.Do(func() {
		dir, err := os.MkdirTemp("", "lastmile-cli-*")
		if err != nil {
			monacoErr = err.Error()
			return
		}
		monacoLMG = filepath.Join(dir, "monaco.lmg")
		var out, errb bytes.Buffer
		if code := run([]string{"prepare", "../../datasets/osm/monaco.osm.pbf", "-o", monacoLMG, "--quiet"}, &out, &errb); code != 0 {
			monacoErr = errb.String()
		}
	})
	if monacoErr != "" {
		t.Fatalf("prepare: %s", monacoErr)
	}
	return monacoLMG
}

func TestCLI(t *testing.T) {
	g := preparedMonaco(t)
	problem := filepath.Join(t.TempDir(), "p.json")
	if err := os.WriteFile(problem, []byte(`{"vehicles":[{"id":1,"start":[7.4197,43.7311],"end":[7.4197,43.7311],"capacity":[4]}],
		"jobs":[{"id":1,"location":[7.4246,43.7396],"delivery":[1]},{"id":2,"location":[7.4280,43.7420],"delivery":[1]},
		{"id":3,"location":[7.4130,43.7330],"delivery":[9]}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		args     []string
		code     int
		stdout   []string // substrings
		stderr   string
		jsonKeys []string
	}{
		{"route", []string{"route", "--graph", g, "7.4197,43.7311", "7.4246,43.7396"}, 0, []string{`"code":"Ok"`}, "", []string{"routes", "waypoints"}},
		{"route geojson three points", []string{"route", "--graph", g, "--geometries", "geojson", "7.4197,43.7311", "7.4246,43.7396", "7.4280,43.7420"}, 0, []string{`"LineString"`}, "", []string{"routes"}},
		{"table", []string{"table", "--graph", g, "7.4197,43.7311", "7.4246,43.7396", "7.4280,43.7420"}, 0, []string{`"durations"`, `"distances"`}, "", []string{"durations"}},
		{"solve with coordinates", []string{"solve", "--graph", g, "--time", "300ms", problem}, 0, []string{`"routes"`, `"reason"`}, "", []string{"summary", "routes", "unassigned"}},
		{"route off the map", []string{"route", "--graph", g, "2.35,48.85", "7.4246,43.7396"}, 1, nil, "NoSegment", nil},
		{"route bad coordinate", []string{"route", "--graph", g, "7.4,91", "7.4246,43.7396"}, 2, nil, "latitude", nil},
		{"route one point", []string{"route", "--graph", g, "7.4197,43.7311"}, 2, nil, "usage", nil},
		{"missing graph file", []string{"route", "--graph", "/nonexistent.lmg", "7.4197,43.7311", "7.4246,43.7396"}, 1, nil, "nonexistent", nil},
		{"corrupt graph file", []string{"route", "--graph", problem, "7.4197,43.7311", "7.4246,43.7396"}, 1, nil, "p.json", nil},
		{"solve without graph", []string{"solve", problem}, 1, nil, "graph", nil},
		{"solve bad JSON", []string{"solve", "--graph", g, "/dev/null"}, 1, nil, "JSON", nil},
		{"unknown command", []string{"fly"}, 2, nil, "unknown command", nil},
		{"unknown flag", []string{"route", "--nope"}, 2, nil, "nope", nil},
		{"prepare without output", []string{"prepare", "x.osm.pbf"}, 2, nil, "usage", nil},
		{"profile without output", []string{"profile", "--graph", g, "--traces", problem}, 2, nil, "usage", nil},
		{"profile bad time zone", []string{"profile", "--graph", g, "--traces", problem, "-o", filepath.Join(t.TempDir(), "p.lmp"), "--tz", "Mars/Olympus"}, 2, nil, "Mars/Olympus", nil},
		{"profile bad traces", []string{"profile", "--graph", g, "--traces", problem, "-o", filepath.Join(t.TempDir(), "p.lmp")}, 1, nil, "p.json", nil},
		{"serve missing profile", []string{"serve", "--graph", g, "--addr", "127.0.0.1:0", "--profile", "/nonexistent.lmp"}, 1, nil, "nonexistent.lmp", nil},
		{"prepare empty file", []string{"prepare", "/dev/null", "-o", filepath.Join(t.TempDir(), "x.lmg")}, 1, nil, "/dev/null", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := run(tc.args, &out, &errb)
			if code != tc.code {
				t.Fatalf("exit %d, want %d; stderr: %s", code, tc.code, errb.String())
			}
			for _, s := range tc.stdout {
				if !strings.Contains(out.String(), s) {
					t.Errorf("stdout lacks %q: %.300s", s, out.String())
				}
			}
			if tc.stderr != "" && !strings.Contains(errb.String(), tc.stderr) {
				t.Errorf("stderr lacks %q: %s", tc.stderr, errb.String())
			}
			if tc.code != 0 && strings.Count(strings.TrimSpace(errb.String()), "\n") > 0 && !strings.Contains(errb.String(), "level=") {
				t.Errorf("error is not one line: %q", errb.String())
			}
			if len(tc.jsonKeys) > 0 {
				var m map[string]any
				if err := json.Unmarshal(out.Bytes(), &m); err != nil {
					t.Fatalf("stdout is not one JSON document: %v", err)
				}
				for _, k := range tc.jsonKeys {
					if _, ok := m[k]; !ok {
						t.Errorf("JSON lacks %q", k)
					}
				}
			}
		})
	}
}

// TestSolveUnassignedReason checks that a job over every capacity comes back
// unassigned with a reason while the others are planned.
func TestSolveUnassignedReason(t *testing.T) {
	g := preparedMonaco(t)
	problem := filepath.Join(t.TempDir(), "p.json")
	os.WriteFile(problem, []byte(`{"vehicles":[{"id":1,"start":[7.4197,43.7311],"capacity":[4]}],
		"jobs":[{"id":1,"location":[7.4246,43.7396],"delivery":[1]},{"id":3,"location":[7.4130,43.7330],"delivery":[9]}]}`), 0o644)
	var out, errb bytes.Buffer
	if code := run([]string{"solve", "--graph", g, "--time", "200ms", problem}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	var sol struct {
		Unassigned []struct {
			ID     int    `json:"id"`
			Reason string `json:"reason"`
		} `json:"unassigned"`
		Routes []any `json:"routes"`
	}
	if err := json.Unmarshal(out.Bytes(), &sol); err != nil {
		t.Fatal(err)
	}
	if len(sol.Unassigned) != 1 || sol.Unassigned[0].ID != 3 || sol.Unassigned[0].Reason == "" || len(sol.Routes) != 1 {
		t.Fatalf("want job 3 unassigned with a reason and one route, got %s", out.String())
	}
}

// TestServeBadAdminKey: an admin key of the wrong form stops serve with
// a one-line error (it panicked before).
func TestServeBadAdminKey(t *testing.T) {
	g := preparedMonaco(t)
	t.Setenv("LASTMILE_ADMIN_KEY", "lm_restart_admin_key_0123456789abcdef")
	var out, errb bytes.Buffer
	code := run([]string{"serve", "--graph", g, "--addr", "127.0.0.1:0", "--state", t.TempDir()}, &out, &errb)
	if code != 1 || !strings.Contains(errb.String(), "LASTMILE_ADMIN_KEY") {
		t.Fatalf("exit %d, want 1 with the reason; stderr: %s", code, errb.String())
	}
}

// TestBenchRestart keeps the state of a small ingest on Monaco and times
// two restarts of serve on it through `lastmile bench restart`.
func TestBenchRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("starts servers")
	}
	g := preparedMonaco(t)
	state := t.TempDir()
	var out, errb bytes.Buffer
	if code := run([]string{"bench", "ingest", "--graph", g, "--vans", "4", "--stops", "3", "--pings", "200", "--interval", "4s",
		"--clients", "2", "--batch", "20", "--vans-per-batch", "2",
		"--keep", state}, &out, &errb); code != 0 {
		t.Fatalf("bench ingest: %s", errb.String())
	}
	t.Setenv(envAsCLI, "1") // the server is this binary, run as lastmile
	out.Reset()
	errb.Reset()
	if code := run([]string{"bench", "restart", "--graph", g, "--state", state, "--runs", "2"}, &out, &errb); code != 0 {
		t.Fatalf("bench restart: %s\n%s", out.String(), errb.String())
	}
	last := strings.TrimSpace(out.String())
	last = last[strings.LastIndex(last, "\n")+1:]
	if !strings.HasPrefix(last, "restart: runs 2 reads p50 ") || !strings.Contains(last, " pings p50 ") {
		t.Fatalf("last line %q", last)
	}
	t.Log(out.String())
}
