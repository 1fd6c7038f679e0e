package engine

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/lastmile/lastmile/datasets"
	"github.com/lastmile/lastmile/eta"
)

// TestTracesProfile fits a profile from the real Porto taxi traces, saves
// and loads it, and checks that loading it against another network fails.
func TestTracesProfile(t *testing.T) {
	osm := filepath.Join(datasets.Dir(), "osm", "porto.osm.pbf")
	csv := filepath.Join(datasets.Dir(), "traces", "normalised", "porto_taxi_train-1000.csv")
	if _, err := os.Stat(osm); err != nil {
		t.Skipf("no Porto extract (%v): set LASTMILE_DATA", err)
	}
	if _, err := os.Stat(csv); err != nil {
		t.Skipf("no Porto traces (%v): set LASTMILE_DATA", err)
	}
	g, _, err := Prepare(osm, PrepareOptions{Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	traces, err := datasets.ReadTracesFile(csv)
	if err != nil {
		t.Fatal(err)
	}
	loc, err := time.LoadLocation("Europe/Lisbon")
	if err != nil {
		t.Skip(err)
	}
	p, fit, err := FitTracesProfile(g, traces[:300], loc, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", fit)
	if fit.Traces < 290 || fit.Traversals < 10*fit.Traces || fit.Profile.Edges == 0 || fit.Profile.Classes == 0 {
		t.Fatalf("fit %+v: too little matched", fit)
	}
	path := filepath.Join(t.TempDir(), "porto.lmp")
	if err := SaveProfile(p, g, path); err != nil {
		t.Fatal(err)
	}
	q, err := LoadProfile(path, g)
	if err != nil {
		t.Fatal(err)
	}
	// Traffic built on the loaded profile predicts what the fitted one does.
	differ := 0
	at := time.Date(2026, 11, 24, 8, 30, 0, 0, loc)
	for e := range uint32(len(g.Road.Edges)) {
		if a, b := p.Factor(e, at), q.Factor(e, at); a != b {
			t.Fatalf("edge %d: factor %v fitted, %v loaded", e, a, b)
		} else if a != 1 {
			differ++
		}
	}
	if differ == 0 {
		t.Fatal("the fitted profile is free flow everywhere at 08:30")
	}
	if _, err := LoadProfile(path, monaco(t).G); !errors.Is(err, eta.ErrProfileMismatch) {
		t.Fatalf("loaded against Monaco: %v", err)
	}
	if _, err := LoadProfile(filepath.Join(t.TempDir(), "none.lmp"), g); err == nil {
		t.Fatal("missing file: no error")
	}
}
