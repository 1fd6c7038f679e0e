package main

import (
	"errors"
	"flag"
	"io"
	"slices"
	"strings"
	"testing"
)

func TestParseFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		wantPos []string
		wantOut string
		wantN   int
		wantV   bool
		usage   bool
	}{
		{"flags after positional", []string{"in.pbf", "-o", "out.lmg"}, nil, []string{"in.pbf"}, "out.lmg", 0, false, false},
		{"negative coordinates are positional", []string{"--n", "3", "-8.61,41.15", "-8.6,41.1"}, nil, []string{"-8.61,41.15", "-8.6,41.1"}, "", 3, false, false},
		{"equals form and bool", []string{"-o=x", "-v", "a"}, nil, []string{"a"}, "x", 0, true, false},
		{"environment fills unset flags", []string{"a"}, map[string]string{"LASTMILE_O": "env.lmg", "LASTMILE_N": "7"}, []string{"a"}, "env.lmg", 7, false, false},
		{"flag wins over environment", []string{"-o", "flag.lmg"}, map[string]string{"LASTMILE_O": "env.lmg"}, nil, "flag.lmg", 0, false, false},
		{"unknown flag", []string{"--nope"}, nil, nil, "", 0, false, true},
		{"bad environment value", nil, map[string]string{"LASTMILE_N": "x"}, nil, "", 0, false, true},
		{"double dash", []string{"--", "-o"}, nil, []string{"-o"}, "", 0, false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			fs := flag.NewFlagSet("x", flag.ContinueOnError)
			out := fs.String("o", "", "output")
			n := fs.Int("n", 0, "count")
			v := fs.Bool("v", false, "verbose")
			pos, err := parseFlags(fs, tc.args)
			var ue *usageError
			if tc.usage {
				if !errors.As(err, &ue) {
					t.Fatalf("want a usage error, got %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(pos, tc.wantPos) || *out != tc.wantOut || *n != tc.wantN || *v != tc.wantV {
				t.Fatalf("got pos %q out %q n %d v %v", pos, *out, *n, *v)
			}
		})
	}
}

// TestBenchNames asks every benchmark the usage line lists for its help:
// each is known, and an unknown one is answered with the same list.
func TestBenchNames(t *testing.T) {
	for _, name := range strings.Split(benchNames, "|") {
		err := cmdBench([]string{name, "--help"}, io.Discard, io.Discard)
		if err == nil || strings.Contains(err.Error(), "unknown benchmark") {
			t.Errorf("bench %s --help: %v", name, err)
		}
	}
	err := cmdBench([]string{"nope"}, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "analytics") {
		t.Errorf("bench nope: %v", err)
	}
}
