// Package datasets locates and parses the shared benchmark data of lastmile:
// OSM extracts, Solomon and Gehring-Homberger VRPTW instances, CVRPLIB/TSPLIB
// CVRP instances, their best-known solutions (BKS) and GPS traces.
//
// The data lives outside the repository (see Dir) and every folder documents
// its formats and counts in a SOURCES.md file. The parsers here are strict:
// malformed input yields an error naming the line and field, never a panic
// and never a partially filled value, so that benchmark results are computed
// on exactly the published instances.
package datasets

import (
	"os"
	"path/filepath"
	"sort"
	"testing"
)

// EnvVar is the environment variable that overrides the data folder.
const EnvVar = "LASTMILE_DATA"

// Dir returns the shared data folder: the value of $LASTMILE_DATA when set
// (used as given; a relative value is relative to the working directory), else ../shared/datasets relative to the repository root. The root is found
// by walking up from the working directory to the first directory holding a
// go.mod file, so Dir works from the tests of any package and from a binary
// run anywhere inside the repository. When no go.mod is found the path is
// taken relative to the working directory.
func Dir() string {
	if d := os.Getenv(EnvVar); d != "" {
		return d
	}
	wd, err := os.Getwd()
	if err != nil {
		return filepath.Join("..", "shared", "datasets")
	}
	for d := wd; ; {
		if st, err := os.Stat(filepath.Join(d, "go.mod")); err == nil && !st.IsDir() {
			return filepath.Join(filepath.Dir(d), "shared", "datasets")
		}
		parent := filepath.Dir(d)
		if parent == d {
			break
		}
		d = parent
	}
	return filepath.Join(wd, "..", "shared", "datasets")
}

// Path joins parts below Dir, e.g. Path("vrp", "solomon", "C101.txt").
func Path(parts ...string) string {
	return filepath.Join(append([]string{Dir()}, parts...)...)
}

// Require returns Path(parts...) and skips the test or benchmark with a clear
// message when that file or folder does not exist, so that tests depending
// on the (large, external) data pass cleanly on machines without it.
func Require(t testing.TB, parts ...string) string {
	t.Helper()
	p := Path(parts...)
	if _, err := os.Stat(p); err != nil {
		t.Skipf("dataset %s missing: set %s (looked at %s)", filepath.Join(parts...), EnvVar, p)
	}
	return p
}

// OSMExtracts lists the files osm/*.osm.pbf of the data folder, smallest
// first, so that callers can run quick checks on the first and full runs on
// the last. It returns nil when the folder is missing or empty.
func OSMExtracts() []string {
	paths, err := filepath.Glob(Path("osm", "*.osm.pbf"))
	if err != nil || len(paths) == 0 {
		return nil
	}
	type entry struct {
		path string
		size int64
	}
	es := make([]entry, 0, len(paths))
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil || st.IsDir() {
			continue
		}
		es = append(es, entry{p, st.Size()})
	}
	sort.Slice(es, func(i, j int) bool {
		if es[i].size != es[j].size {
			return es[i].size < es[j].size
		}
		return es[i].path < es[j].path
	})
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.path
	}
	if len(out) == 0 {
		return nil
	}
	return out
}
