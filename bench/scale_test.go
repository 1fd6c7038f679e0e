package bench

import (
	"path/filepath"
	"testing"

	"github.com/lastmile/lastmile/graph"
	"github.com/lastmile/lastmile/osmimport"
)

// TestTileNetwork checks that the copies of a network build into one
// graph and keep their roads' names.
func TestTileNetwork(t *testing.T) {
	net, _, err := osmimport.ReadFile(filepath.Join("..", "datasets", "osm", "monaco.osm.pbf"), osmimport.Options{})
	if err != nil {
		t.Fatal(err)
	}
	const k = 3
	tiled := TileNetwork(net, k)
	if got, want := len(tiled.Edges), k*len(net.Edges)+2*(k-1); got != want {
		t.Fatalf("%d edges, want %d", got, want)
	}
	if _, err := graph.Build(tiled, graph.BuildOptions{}); err != nil {
		t.Fatalf("the tiled network does not build: %v", err)
	}
	named := 0
	for i := range net.Edges {
		name := net.EdgeName(uint32(i))
		for c := range k {
			if got := tiled.EdgeName(uint32(c*len(net.Edges) + i)); got != name {
				t.Fatalf("copy %d, edge %d: name %q, want %q", c, i, got, name)
			}
		}
		if name != "" {
			named++
		}
	}
	if named == 0 {
		t.Fatal("Monaco has no named road: the test checks nothing")
	}
}
