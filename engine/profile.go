package engine

import (
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"time"

	"github.com/lastmile/lastmile/datasets"
	"github.com/lastmile/lastmile/eta"
	"github.com/lastmile/lastmile/graph"
)

// ProfileFit reports what FitTracesProfile used.
type ProfileFit struct {
	Traces, Pings, Traversals int
	// Rejected counts pings the matcher rejected, by reason.
	Rejected map[string]int
	Profile  eta.ProfileStats
}

// FitTracesProfile matches recorded GPS traces onto g (HMM map matching)
// and fits a historical speed profile from the whole-edge traversals, in
// the time zone loc: the profile a server starts with (serve --profile)
// so that its "historical" ETAs come from real trips instead of free flow.
// Traces without timestamps are an error.
func FitTracesProfile(g *graph.Graph, traces []datasets.Trace, loc *time.Location, log *slog.Logger) (*eta.Profile, ProfileFit, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m, err := eta.NewMatcher(g, eta.MatchOptions{})
	if err != nil {
		return nil, ProfileFit{}, err
	}
	fit := ProfileFit{Rejected: map[string]int{}}
	var obs []eta.Observation
	var pings []eta.Ping
	last := time.Now()
	for i, tr := range traces {
		if pings, err = TracePings(pings[:0], tr); err != nil {
			return nil, fit, fmt.Errorf("fit profile: %w", err)
		}
		if len(pings) == 0 {
			continue
		}
		mr, err := m.Match(pings)
		if err != nil {
			return nil, fit, fmt.Errorf("fit profile: trace %s: %w", tr.ID, err)
		}
		fit.Traces++
		fit.Pings += len(pings)
		for r, n := range mr.Rejected {
			fit.Rejected[r] += n
		}
		for _, t := range mr.Traversals {
			if t.Full {
				obs = append(obs, eta.Observation{Edge: t.Edge, Time: t.Enter, Duration: t.Exit.Sub(t.Enter).Seconds()})
			}
		}
		if time.Since(last) > 2*time.Second {
			last = time.Now()
			log.Info("matching traces", "done", i+1, "total", len(traces), "traversals", len(obs))
		}
	}
	fit.Traversals = len(obs)
	p, err := eta.FitProfile(g.Road, obs, eta.ProfileOptions{Location: loc, Logger: log})
	if err != nil {
		return nil, fit, fmt.Errorf("fit profile: %w", err)
	}
	fit.Profile = p.Stats()
	return p, fit, nil
}

// TracePings appends the fixes of a recorded trace to dst as matcher pings
// (speed and heading unknown); a fix without a timestamp is an error.
func TracePings(dst []eta.Ping, tr datasets.Trace) ([]eta.Ping, error) {
	for _, p := range tr.Points {
		if p.Time == 0 {
			return dst, fmt.Errorf("trace %s has no timestamps", tr.ID)
		}
		dst = append(dst, eta.Ping{Time: time.Unix(p.Time, 0).UTC(), Lat: p.Lat, Lon: p.Lon, Speed: math.NaN(), Heading: math.NaN()})
	}
	return dst, nil
}

// SaveProfile writes p, fitted on g's road network, to path (replaced
// only once the new file is complete).
func SaveProfile(p *eta.Profile, g *graph.Graph, path string) error {
	return writeFileAtomic(path, func(w io.Writer) error { return eta.WriteProfile(w, p, g.Road) })
}

// LoadProfile reads a profile saved by SaveProfile and checks that it was
// fitted on g's road network.
func LoadProfile(path string, g *graph.Graph) (*eta.Profile, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("load profile: %w", err)
	}
	defer f.Close()
	p, err := eta.ReadProfile(f, g.Road)
	if err != nil {
		return nil, fmt.Errorf("load profile %s: %w", path, err)
	}
	return p, nil
}
