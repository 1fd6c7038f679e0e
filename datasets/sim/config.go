// Package sim is a traffic and trip simulator for testing ETA models on a
// real road network: it draws a ground-truth, time-dependent congestion
// field over the edges of a graph.Network (rush hours, a weekend pattern,
// per-day and per-region intensity, incidents that slow or close roads),
// drives vehicles along planned routes through it with per-traversal noise,
// and samples noisy GPS pings from their truth trajectories.
//
// The congestion is built so that no model wins by construction. It has
// three parts with distinct information content:
//
//  1. a weekly pattern (weekday morning and evening peaks, a daytime
//     plateau, a weekend midday bump, scaled per road class) that a
//     historical profile fitted on past days can learn;
//  2. day-specific parts that only live data of the same day reveals: a
//     city-wide random intensity and a random shift of the peak times per
//     day, a random intensity per day and region (coarse grid cells), and
//     random incidents;
//  3. irreducible per-traversal noise (lognormal, mean 1) that nothing can
//     predict, applied by Drive.
//
// The truth travel time of a full edge e entered at time t is
// Duration(e) · Factor(e, t) · ε with ε lognormal of mean 1 (see
// Config.NoiseSigma); Factor is
//
//	(1 + ClassWeight[class(e)] · m(day, region(e)) · c(day, t)) · incident(e, t)
//
// where c is the congestion curve of the day (weekly pattern with the
// day's random peak shift), m = exp(Zday + Zregion − (σday²+σregion²)/2)
// the day's random intensity (mean 1) and incident(e, t) the largest
// slowdown of the incidents active on e at t (+Inf for a closure).
//
// All randomness comes from math/rand/v2 PCG streams seeded by Config.Seed
// and the day index, so a World is a pure function of the network and the
// Config, and day d is the same whatever Config.Days is.
package sim

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/lastmile/lastmile/graph"
)

// Peak is a Gaussian bump of congestion over the time of day.
type Peak struct {
	// Centre is the time after midnight of the peak's maximum.
	Centre time.Duration
	// Width is the standard deviation of the bump.
	Width time.Duration
	// Height is the congestion intensity c at the maximum (an arterial road
	// with ClassWeight 1 and day intensity 1 then takes 1+Height times its
	// free-flow time).
	Height float64
}

// Config holds every parameter of the simulated world. DefaultConfig
// documents the defaults; the zero value is not usable.
type Config struct {
	// Seed makes the world reproducible.
	Seed uint64
	// Start is midnight (UTC) of day 0; days are consecutive 24 h periods
	// from it, and the weekday of each comes from Start.
	Start time.Time
	// Days is the number of simulated days (>= 1). Outside [Start,
	// Start+Days·24h) Factor uses the weekly pattern with day intensity 1,
	// no peak shift and no incidents.
	Days int

	// MorningPeak and EveningPeak are the weekday rush hours (default
	// 08:00 ± 1 h with height 0.9, 17:45 ± 1.25 h with height 0.8).
	MorningPeak, EveningPeak Peak
	// Daytime is a plateau of congestion between DaytimeFrom and DaytimeTo
	// on weekdays, with smooth (1 h logistic) edges (default 0.25, 07:00 to
	// 20:00).
	Daytime                float64
	DaytimeFrom, DaytimeTo time.Duration
	// WeekendPeak is the only congestion on Saturdays and Sundays (default
	// 13:30 ± 3 h, height 0.35).
	WeekendPeak Peak
	// ClassWeight scales the congestion per road class (default: 1 for
	// trunk and primary, 0.9 motorway and secondary, 0.7 tertiary, 0.5
	// unclassified and links, 0.35 residential, 0.2 living streets and
	// service roads, 0.3 other).
	ClassWeight [graph.NumClasses]float64

	// DaySigma is the standard deviation of the city-wide log intensity of
	// a day (default 0.25: a day is typically ±25 % more or less congested
	// than the weekly pattern).
	DaySigma float64
	// RegionSigma is the standard deviation of the log intensity of one
	// region on one day, independent across regions and days (default 0.3).
	RegionSigma float64
	// RegionSize is the side in metres of the square grid cells that form
	// the regions (default 2000).
	RegionSize float64
	// PeakShiftSigma is the standard deviation of the random shift of the
	// weekday peaks of a day, the same for both peaks (default 15 min).
	PeakShiftSigma time.Duration

	// IncidentRate is the expected number of incidents per day per 100 km
	// of directed road of the classes motorway to residential (Poisson;
	// default 1). Incidents start uniformly between IncidentFrom and
	// IncidentTo (default 06:00 to 22:00) and last a log-uniform time in
	// [IncidentMinDuration, IncidentMaxDuration] (default 15 min to 2 h).
	IncidentRate                             float64
	IncidentFrom, IncidentTo                 time.Duration
	IncidentMinDuration, IncidentMaxDuration time.Duration
	// ClosedShare is the probability that an incident closes its road in
	// both directions (default 0.15); otherwise it slows its edges by a
	// factor uniform in [SlowMin, SlowMax] (default 1.5 to 4).
	ClosedShare      float64
	SlowMin, SlowMax float64
	// IncidentLength is the length in metres of road an incident covers,
	// following the way from the drawn edge (default 400).
	IncidentLength float64

	// NoiseSigma is the σ of the lognormal per-traversal noise ε =
	// exp(σZ − σ²/2), mean 1, drawn independently per edge traversal
	// (default 0.15; 0 gives exact truth times).
	NoiseSigma float64
	// ServiceSigma is the σ of the lognormal noise (mean 1) on service
	// times at tour stops (default 0.3).
	ServiceSigma float64
}

// DefaultConfig returns the default world of days days from start (which
// should be a midnight UTC) with the given seed. The values are plausible
// for a European city, not fitted to any data; see the Config fields.
func DefaultConfig(start time.Time, days int, seed uint64) Config {
	c := Config{
		Seed:  seed,
		Start: start,
		Days:  days,

		MorningPeak: Peak{Centre: 8 * time.Hour, Width: time.Hour, Height: 0.9},
		EveningPeak: Peak{Centre: 17*time.Hour + 45*time.Minute, Width: 75 * time.Minute, Height: 0.8},
		Daytime:     0.25,
		DaytimeFrom: 7 * time.Hour,
		DaytimeTo:   20 * time.Hour,
		WeekendPeak: Peak{Centre: 13*time.Hour + 30*time.Minute, Width: 3 * time.Hour, Height: 0.35},

		DaySigma:       0.25,
		RegionSigma:    0.3,
		RegionSize:     2000,
		PeakShiftSigma: 15 * time.Minute,

		IncidentRate:        1,
		IncidentFrom:        6 * time.Hour,
		IncidentTo:          22 * time.Hour,
		IncidentMinDuration: 15 * time.Minute,
		IncidentMaxDuration: 2 * time.Hour,
		ClosedShare:         0.15,
		SlowMin:             1.5,
		SlowMax:             4,
		IncidentLength:      400,

		NoiseSigma:   0.15,
		ServiceSigma: 0.3,
	}
	w := &c.ClassWeight
	w[graph.ClassMotorway] = 0.9
	w[graph.ClassMotorwayLink] = 0.5
	w[graph.ClassTrunk] = 1
	w[graph.ClassTrunkLink] = 0.5
	w[graph.ClassPrimary] = 1
	w[graph.ClassPrimaryLink] = 0.5
	w[graph.ClassSecondary] = 0.9
	w[graph.ClassSecondaryLink] = 0.5
	w[graph.ClassTertiary] = 0.7
	w[graph.ClassTertiaryLink] = 0.5
	w[graph.ClassUnclassified] = 0.5
	w[graph.ClassResidential] = 0.35
	w[graph.ClassLivingStreet] = 0.2
	w[graph.ClassService] = 0.2
	w[graph.ClassOther] = 0.3
	return c
}

// errConfig is wrapped by every Config validation error.
var errConfig = errors.New("sim: invalid config")

func finiteNonNeg(v float64) bool { return v >= 0 && !math.IsInf(v, 0) }

// validate reports the first invalid field of c.
func (c *Config) validate() error {
	bad := func(field string, v any) error { return fmt.Errorf("%w: %s = %v", errConfig, field, v) }
	day := 24 * time.Hour
	switch {
	case c.Start.IsZero():
		return bad("Start", "zero time")
	case c.Days < 1 || c.Days > 100000:
		return bad("Days", c.Days)
	case !finiteNonNeg(c.Daytime):
		return bad("Daytime", c.Daytime)
	case c.DaytimeFrom < 0 || c.DaytimeTo > day || c.DaytimeFrom > c.DaytimeTo:
		return bad("DaytimeFrom/DaytimeTo", [2]time.Duration{c.DaytimeFrom, c.DaytimeTo})
	case !finiteNonNeg(c.DaySigma) || c.DaySigma > 3:
		return bad("DaySigma", c.DaySigma)
	case !finiteNonNeg(c.RegionSigma) || c.RegionSigma > 3:
		return bad("RegionSigma", c.RegionSigma)
	case !(c.RegionSize > 0) || math.IsInf(c.RegionSize, 0):
		return bad("RegionSize", c.RegionSize)
	case c.PeakShiftSigma < 0 || c.PeakShiftSigma > 6*time.Hour:
		return bad("PeakShiftSigma", c.PeakShiftSigma)
	case !finiteNonNeg(c.IncidentRate) || c.IncidentRate > 1e4:
		return bad("IncidentRate", c.IncidentRate)
	case c.IncidentFrom < 0 || c.IncidentTo > day || c.IncidentFrom > c.IncidentTo:
		return bad("IncidentFrom/IncidentTo", [2]time.Duration{c.IncidentFrom, c.IncidentTo})
	case c.IncidentMinDuration <= 0 || c.IncidentMaxDuration < c.IncidentMinDuration:
		return bad("IncidentMinDuration/IncidentMaxDuration", [2]time.Duration{c.IncidentMinDuration, c.IncidentMaxDuration})
	case !(c.ClosedShare >= 0 && c.ClosedShare <= 1):
		return bad("ClosedShare", c.ClosedShare)
	case !(c.SlowMin >= 1) || !(c.SlowMax >= c.SlowMin) || math.IsInf(c.SlowMax, 0):
		return bad("SlowMin/SlowMax", [2]float64{c.SlowMin, c.SlowMax})
	case !finiteNonNeg(c.IncidentLength):
		return bad("IncidentLength", c.IncidentLength)
	case !finiteNonNeg(c.NoiseSigma) || c.NoiseSigma > 3:
		return bad("NoiseSigma", c.NoiseSigma)
	case !finiteNonNeg(c.ServiceSigma) || c.ServiceSigma > 3:
		return bad("ServiceSigma", c.ServiceSigma)
	}
	names := [3]string{"MorningPeak", "EveningPeak", "WeekendPeak"}
	for i, p := range [3]Peak{c.MorningPeak, c.EveningPeak, c.WeekendPeak} {
		if p.Centre < 0 || p.Centre > day || p.Width <= 0 || !finiteNonNeg(p.Height) {
			return bad(names[i], p)
		}
	}
	for i, w := range c.ClassWeight {
		if !finiteNonNeg(w) {
			return bad(fmt.Sprintf("ClassWeight[%v]", graph.RoadClass(i)), w)
		}
	}
	return nil
}
