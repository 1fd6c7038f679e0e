package tiles

import (
	"fmt"
	"os"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/lastmile/lastmile/datasets"
	"github.com/lastmile/lastmile/graph"
	"github.com/lastmile/lastmile/osmimport"
)

// porto imports $LASTMILE_DATA/osm/porto.osm.pbf once (about half a
// second); nil when the file is missing.
var porto = sync.OnceValues(func() (*graph.Network, error) {
	p := datasets.Path("osm", "porto.osm.pbf")
	if _, err := os.Stat(p); err != nil {
		return nil, nil
	}
	n, _, err := osmimport.ReadFile(p, osmimport.Options{})
	return n, err
})

func portoNet(b *testing.B) *graph.Network {
	b.Helper()
	n, err := porto()
	if err != nil {
		b.Fatal(err)
	}
	if n == nil {
		datasets.Require(b, "osm", "porto.osm.pbf") // skips
	}
	return n
}

// tileKey names a tile.
type tileKey struct{ z, x, y int }

// portoCentre lists the tiles of zoom z covering Porto's centre, longitude
// −8.70..−8.55, latitude 41.10..41.20.
func portoCentre(z int) []tileKey {
	x0, y0 := tileAt(-8.70, 41.20, z)
	x1, y1 := tileAt(-8.55, 41.10, z)
	var ks []tileKey
	for x := x0; x <= x1; x++ {
		for y := y0; y <= y1; y++ {
			ks = append(ks, tileKey{z, x, y})
		}
	}
	return ks
}

// BenchmarkTile renders Porto centre tiles without cache, cycling through
// all the tiles of the zoom level: ns/op is the time of one tile.
func BenchmarkTile(b *testing.B) {
	n := portoNet(b)
	tl := newTiler(b, n, Options{CacheBytes: -1})
	for z := 13; z <= 16; z++ {
		tiles := portoCentre(z)
		b.Run(fmt.Sprintf("z=%d", z), func(b *testing.B) {
			b.ReportAllocs()
			bytes, i := 0, 0
			for b.Loop() {
				k := tiles[i%len(tiles)]
				i++
				t, err := tl.Tile(k.z, k.x, k.y)
				if err != nil {
					b.Fatal(err)
				}
				bytes += len(t)
			}
			b.ReportMetric(float64(bytes)/float64(i), "B/tile")
		})
	}
}

// BenchmarkTileCached reads a Porto tile from the cache.
func BenchmarkTileCached(b *testing.B) {
	n := portoNet(b)
	tl := newTiler(b, n, Options{})
	k := portoCentre(14)[20]
	if _, err := tl.Tile(k.z, k.x, k.y); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tl.Tile(k.z, k.x, k.y); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkNew builds the Porto index; heap-MB is the heap a Tiler keeps
// (measured once, outside the timed loop).
func BenchmarkNew(b *testing.B) {
	n := portoNet(b)
	var m0, m1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m0)
	kept := newTiler(b, n, Options{})
	runtime.GC()
	runtime.ReadMemStats(&m1)
	runtime.KeepAlive(kept)
	b.ReportAllocs()
	for b.Loop() {
		newTiler(b, n, Options{})
	}
	b.ReportMetric(float64(int64(m1.HeapAlloc)-int64(m0.HeapAlloc))/(1<<20), "heap-MB")
	b.ReportMetric(float64(len(n.Edges)), "edges")
}

// BenchmarkPortoCentre renders every tile covering Porto's centre at zooms
// 13 to 16, uncached, once per iteration, and reports the latency
// percentiles per tile and the compressed sizes. Run it with
// -bench PortoCentre -benchtime 5x -v to see the table.
func BenchmarkPortoCentre(b *testing.B) {
	n := portoNet(b)
	start := time.Now()
	tl := newTiler(b, n, Options{CacheBytes: -1})
	b.Logf("index: %d edges -> %d pieces in %v", len(n.Edges), tl.Pieces(), time.Since(start))
	for z := 13; z <= 16; z++ {
		tiles := portoCentre(z)
		b.Run(fmt.Sprintf("z=%d", z), func(b *testing.B) {
			var lat []time.Duration
			var sizes []int
			for b.Loop() {
				sizes = sizes[:0]
				for _, k := range tiles {
					t0 := time.Now()
					t, err := tl.Tile(k.z, k.x, k.y)
					lat = append(lat, time.Since(t0))
					if err != nil {
						b.Fatal(err)
					}
					sizes = append(sizes, len(t))
				}
			}
			slices.Sort(lat)
			slices.Sort(sizes)
			pct := func(q float64) time.Duration { return lat[min(len(lat)-1, int(q*float64(len(lat))))] }
			ms := func(d time.Duration) float64 { return float64(d) / 1e6 }
			b.ReportMetric(ms(pct(0.5)), "p50-ms")
			b.ReportMetric(ms(pct(0.99)), "p99-ms")
			b.ReportMetric(float64(sizes[len(sizes)/2]), "med-B")
			b.ReportMetric(float64(sizes[len(sizes)-1]), "max-B")
			b.ReportMetric(0, "ns/op")
			b.Logf("z%d: %d tiles x %d runs: p50 %v p99 %v max %v; gzip size median %d B, max %d B",
				z, len(tiles), len(lat)/len(tiles), pct(0.5), pct(0.99), lat[len(lat)-1], sizes[len(sizes)/2], sizes[len(sizes)-1])
		})
	}
}

// BenchmarkTileMonaco renders the centre tile of Monaco at zoom 14
// uncached: a benchmark that needs no external data.
func BenchmarkTileMonaco(b *testing.B) {
	tl := newTiler(b, loadNetwork(b, "monaco.osm.pbf"), Options{CacheBytes: -1})
	x, y := tileAt(7.4246, 43.7384, 14)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tl.Tile(14, x, y); err != nil {
			b.Fatal(err)
		}
	}
}
