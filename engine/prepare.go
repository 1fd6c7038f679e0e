// Package engine ties the importer, the road graph, the VRP solver and the
// ETA model together behind the operations the command line and the HTTP
// server expose, and (in later issues) keeps the dispatch state.
package engine

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/lastmile/lastmile/graph"
	"github.com/lastmile/lastmile/osmimport"
)

// PrepareOptions configures Prepare and Open.
type PrepareOptions struct {
	// Workers is the number of goroutines used for contraction (0 = 2).
	Workers int
	// Logger receives progress and timings (nil = discard).
	Logger *slog.Logger
}

// PrepareStats reports where preprocessing time went.
type PrepareStats struct {
	// Import, Build (contraction) and CCH (the customizable hierarchy's
	// nested-dissection order, saved with the graph for live traffic).
	Import, Build, CCH time.Duration
	// ImportStats are the importer's counts.
	ImportStats *osmimport.Stats
}

// IsOSM reports whether path names an OpenStreetMap file (.osm.pbf, .osm,
// .osm.xml) rather than a prepared graph.
func IsOSM(path string) bool {
	p := strings.ToLower(path)
	return strings.HasSuffix(p, ".pbf") || strings.HasSuffix(p, ".osm") || strings.HasSuffix(p, ".osm.xml")
}

// Prepare imports an OpenStreetMap file with the car profile and builds the
// routable graph with its contraction hierarchy and the order of its
// customizable hierarchy (for live traffic; saved with the graph).
func Prepare(path string, opt PrepareOptions) (*graph.Graph, PrepareStats, error) {
	var st PrepareStats
	log := logger(opt.Logger)
	t0 := time.Now()
	net, ist, err := osmimport.ReadFile(path, osmimport.Options{Workers: opt.Workers, Logger: log, Progress: progress(log, "import")})
	if err != nil {
		return nil, st, fmt.Errorf("prepare %s: %w", path, err)
	}
	st.Import, st.ImportStats = time.Since(t0), ist
	log.Info("imported", "file", path, "nodes", len(net.Lat), "edges", len(net.Edges), "restrictions", len(net.Restrictions), "seconds", st.Import.Seconds())
	t1 := time.Now()
	g, err := graph.Build(net, graph.BuildOptions{Workers: opt.Workers, Logger: log, Progress: progress(log, "contract")})
	if err != nil {
		return nil, st, fmt.Errorf("prepare %s: %w", path, err)
	}
	st.Build = time.Since(t1)
	log.Info("contracted", "file", path, "seconds", st.Build.Seconds())
	t2 := time.Now()
	if err := g.ComputeCCHOrder(opt.Workers); err != nil {
		return nil, st, fmt.Errorf("prepare %s: %w", path, err)
	}
	st.CCH = time.Since(t2)
	log.Info("customizable hierarchy ordered", "file", path, "seconds", st.CCH.Seconds())
	return g, st, nil
}

// Save writes a prepared graph to path atomically (through a temporary
// file in the same directory), so that a crash never leaves half a file
// under the final name.
func Save(g *graph.Graph, path string) error {
	return writeFileAtomic(path, func(w io.Writer) error {
		_, err := g.WriteTo(w)
		return err
	})
}

// writeFileAtomic writes path through write into a temporary file beside
// it, renamed over path only when complete: a failed write never leaves a
// truncated file where a good one is expected.
func writeFileAtomic(path string, write func(io.Writer) error) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, ".lastmile-*.tmp")
	if err != nil {
		return fmt.Errorf("save %s: %w", path, err)
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if err := write(f); err != nil {
		f.Close()
		return fmt.Errorf("save %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("save %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("save %s: %w", path, err)
	}
	return nil
}

// Open returns the graph at path: a prepared .lmg file is loaded; an OSM
// file is prepared, and the result cached beside it as path+".lmg" (or in
// cacheDir when not empty) and reused while it is newer than the OSM file.
func Open(path, cacheDir string, opt PrepareOptions) (*graph.Graph, error) {
	log := logger(opt.Logger)
	if !IsOSM(path) {
		g, err := graph.LoadFile(path)
		if err != nil {
			return nil, err
		}
		return g, nil
	}
	src, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	cache := path + ".lmg"
	if cacheDir != "" {
		if err := os.MkdirAll(cacheDir, 0o755); err != nil {
			return nil, fmt.Errorf("open %s: cache dir: %w", path, err)
		}
		cache = filepath.Join(cacheDir, filepath.Base(path)+".lmg")
	}
	if c, err := os.Stat(cache); err == nil && c.ModTime().After(src.ModTime()) {
		g, err := graph.LoadFile(cache)
		if err == nil {
			log.Info("loaded cached graph", "file", cache)
			return g, nil
		}
		log.Warn("cached graph unusable, preparing again", "file", cache, "err", err)
	}
	g, _, err := Prepare(path, opt)
	if err != nil {
		return nil, err
	}
	if err := Save(g, cache); err != nil {
		log.Warn("could not cache the prepared graph", "err", err)
	}
	return g, nil
}

func logger(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.New(slog.DiscardHandler)
	}
	return l
}

// progress logs a stage's progress at most every 10 %; it may be called
// from several goroutines.
func progress(log *slog.Logger, what string) func(stage string, done, total int64) {
	var mu sync.Mutex
	last := map[string]int64{}
	return func(stage string, done, total int64) {
		if total <= 0 {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		pct := done * 10 / total
		if p, ok := last[stage]; ok && p == pct {
			return
		}
		last[stage] = pct
		log.Info(what, "stage", stage, "done", done, "total", total, "percent", pct*10)
	}
}
