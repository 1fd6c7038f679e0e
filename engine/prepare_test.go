package engine

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lastmile/lastmile/graph"
)

// TestOpenRebuildsRefusedCache checks what happens to a prepared graph of
// an older file format (here: the current file with its version field set
// to 2, the format before road names): a cached graph beside an OSM
// extract is prepared again and the cache rewritten, while a prepared file
// named directly gives an error that says to prepare it again.
func TestOpenRebuildsRefusedCache(t *testing.T) {
	osmPath := filepath.Join("..", "datasets", "osm", "monaco.osm.pbf")
	if _, err := os.Stat(osmPath); err != nil {
		t.Skipf("committed Monaco extract missing (%v): run from a full checkout", err)
	}
	r := monaco(t)
	var buf bytes.Buffer
	if _, err := r.G.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	old := buf.Bytes()
	binary.LittleEndian.PutUint32(old[8:], 2) // the header's format version

	dir := t.TempDir()
	cache := filepath.Join(dir, "monaco.osm.pbf.lmg")
	if err := os.WriteFile(cache, old, 0o644); err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(time.Hour) // newer than the extract: Open tries it first
	if err := os.Chtimes(cache, later, later); err != nil {
		t.Fatal(err)
	}
	g, err := Open(osmPath, dir, PrepareOptions{Workers: 2})
	if err != nil {
		t.Fatalf("Open with a cached graph of an old format: %v", err)
	}
	if len(g.Road.Names) < 2 {
		t.Errorf("prepared again, the graph has %d names", len(g.Road.Names))
	}
	if _, err := graph.LoadFile(cache); err != nil {
		t.Errorf("the cache was not rewritten in the current format: %v", err)
	}

	direct := filepath.Join(dir, "old.lmg")
	if err := os.WriteFile(direct, old, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = Open(direct, "", PrepareOptions{})
	if !errors.Is(err, graph.ErrCorrupt) || !strings.Contains(err.Error(), "format version 2") || !strings.Contains(err.Error(), "lastmile prepare") {
		t.Errorf("Open of a prepared file of an old format: %v, want an error that says to prepare it again", err)
	}
}
