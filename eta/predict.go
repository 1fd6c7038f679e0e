package eta

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/lastmile/lastmile/graph"
)

// Mode selects the travel-time model of Predict.
type Mode int

// Travel-time models, from the simplest.
const (
	// FreeFlow uses Edge.Duration.
	FreeFlow Mode = iota
	// Historical multiplies by the profile for the time each edge is entered.
	Historical
	// Live multiplies by the profile and the decaying live ratio.
	Live
)

// String names the mode.
func (m Mode) String() string {
	switch m {
	case FreeFlow:
		return "freeflow"
	case Historical:
		return "historical"
	case Live:
		return "live"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// Leg is the road path to one stop, as graph.Route gives it: the edge
// sequence, entered at SrcFraction of the first edge and left at
// DstFraction of the last (fractions of the edge's length from its From
// node). The first leg of a Plan starts at the vehicle's position.
type Leg struct {
	Edges                    []uint32
	SrcFraction, DstFraction float64
}

// RouteLeg returns the Leg of a route found by the graph package.
func RouteLeg(r *graph.Route) Leg {
	return Leg{Edges: r.Edges, SrcFraction: r.SrcFraction, DstFraction: r.DstFraction}
}

// Stop is a planned stop: its service time and optional time window. A
// vehicle arriving before Open waits until Open; arriving after Close is
// late (Prediction.Late), the stop is still served.
type Stop struct {
	Service     time.Duration
	Open, Close time.Time // zero = no bound
}

// Break is a driver break of Duration to be taken in [Open, Close]. It is
// taken once, at the first stop departure at or after Open (so a window that
// passes while driving is honoured at the next stop, late); a break whose
// window opens after the last departure is not taken.
type Break struct {
	Open, Close time.Time
	Duration    time.Duration
}

// Plan is a vehicle's remaining route at time Now: Legs[i] leads to
// Stops[i] (len(Legs) == len(Stops)).
type Plan struct {
	Now    time.Time
	Legs   []Leg
	Stops  []Stop
	Breaks []Break
	// Bias corrects the travel times of the Live mode for what the
	// vehicle's own progress today revealed (see Progress); the zero value
	// changes nothing.
	Bias Bias
}

// Bias is a multiplicative correction of a vehicle's predicted travel
// times: an edge entered lag after Plan.Now takes exp(Log·w(lag)) times
// the Live model's time, where w falls linearly from 1 at lag 0 to 0 at
// Horizon (a zero Horizon means no decay). The decay reflects that what a
// vehicle learnt about its surroundings (a congested district, a slow
// profile) holds less the further ahead it drives.
type Bias struct {
	Log     float64
	Horizon time.Duration
}

// factor returns the multiplier exp(Log·w(lag)).
func (b *Bias) factor(lag time.Duration) float64 {
	if b.Log == 0 {
		return 1
	}
	w := 1.0
	if b.Horizon > 0 {
		w = max(0, 1-float64(lag)/float64(b.Horizon))
	}
	return math.Exp(b.Log * w)
}

// Progress learns a vehicle's travel-time bias from its own driving today:
// each completed stretch (typically the rest of a leg, predicted when the
// vehicle was first seen on it) gives the log ratio of the actual to the
// predicted travel time, and Bias returns their recency-weighted mean
// shrunk toward 0 (no bias), in the manner of a normal-normal empirical
// Bayes estimate: Σ a_i r_i / (Σ a_i + Prior), a_i = exp(-(now-t_i)/Memory).
// It captures what the live traffic feed misses on the vehicle's own roads
// (a district slower than the probes show, roads the probes rarely
// cover). The zero value is ready to use with the defaults; a Progress is
// not safe for concurrent use.
type Progress struct {
	// Prior is the weight, in stretches, of the prior bias 0: with Prior
	// 2 one observed stretch counts one third. 0 (or any value that is
	// not positive and finite) means 2.
	Prior float64
	// Memory is the time constant of the recency weighting; 0 means
	// none (all of today's stretches count alike).
	Memory time.Duration
	at     []time.Time
	r      []float64
}

// Observe records a stretch whose travel the model predicted as predicted
// and which took actual, completed at time at. Non-positive durations are
// ignored; the log ratio is clamped to [-1, 1] so that one odd stretch (a
// stop on the way, a closure) cannot dominate.
func (p *Progress) Observe(at time.Time, predicted, actual time.Duration) {
	if predicted <= 0 || actual <= 0 {
		return
	}
	r := math.Log(float64(actual) / float64(predicted))
	if math.IsNaN(r) {
		return
	}
	p.at = append(p.at, at)
	p.r = append(p.r, max(-1, min(1, r)))
}

// Len returns the number of stretches observed.
func (p *Progress) Len() int { return len(p.r) }

// Residuals returns the (clamped) log ratios of the stretches observed, in
// order; the slice is the Progress's own and valid until the next Observe
// or Reset.
func (p *Progress) Residuals() []float64 { return p.r }

// ProgressPrior estimates the Prior of Progress from past vehicle-days,
// each the residuals of one vehicle on one day (Progress.Residuals), by
// the method of moments of the one-way random-effects model r_ij = μ_i +
// ε_ij, Var ε = σ², E μ_i² = τ² (Morris, "Parametric empirical Bayes
// inference", JASA 1983): σ² is the pooled within-vehicle-day variance,
// τ² the mean of m_i² − σ²/n_i over the vehicle-days (m_i their means,
// the prior mean being 0), and the prior σ²/τ², the number of stretches
// at which a vehicle's own mean counts as much as the prior. When the
// vehicles show no bias beyond the noise (τ² <= 0) it returns 1000, which
// all but turns the bias off. ok is false with fewer than 2 vehicle-days
// of at least 2 stretches.
func ProgressPrior(days [][]float64) (prior float64, ok bool) {
	const minPrior, maxPrior = 0.25, 1000
	var ss, tau float64
	dof, k := 0, 0
	for _, r := range days {
		if len(r) < 2 {
			continue
		}
		m := 0.0
		for _, x := range r {
			m += x
		}
		m /= float64(len(r))
		for _, x := range r {
			ss += (x - m) * (x - m)
		}
		dof += len(r) - 1
		k++
	}
	if k < 2 || dof == 0 {
		return 0, false
	}
	s2 := ss / float64(dof)
	for _, r := range days {
		if len(r) < 2 {
			continue
		}
		m := 0.0
		for _, x := range r {
			m += x
		}
		m /= float64(len(r))
		tau += m*m - s2/float64(len(r))
	}
	tau /= float64(k)
	if !(tau > 0) {
		return maxPrior, true
	}
	return max(minPrior, min(maxPrior, s2/tau)), true
}

// Reset forgets every stretch (a new day or a new vehicle), keeping the
// buffers.
func (p *Progress) Reset() { p.at, p.r = p.at[:0], p.r[:0] }

// Bias returns the shrunk log bias at now (stretches completed after now
// do not count).
func (p *Progress) Bias(now time.Time) float64 { return p.BiasToward(now, 0) }

// BiasToward is Bias shrunk toward mean instead of 0: (Σ a_i r_i + Prior ·
// mean) / (Σ a_i + Prior). With the bias of the whole fleet as mean
// (another Progress fed every vehicle's stretches) this is a two-level
// hierarchical estimate: what is common to the day (a city-wide slow day)
// is learnt from all vehicles, what is particular to a vehicle's district
// from its own stretches. mean is clamped to [-1, 1] (NaN counts as 0), so
// the result is a valid Bias.Log.
func (p *Progress) BiasToward(now time.Time, mean float64) float64 {
	if math.IsNaN(mean) {
		mean = 0
	}
	mean = max(-maxBiasLog, min(maxBiasLog, mean))
	prior := p.Prior
	if !(prior > 0) || math.IsInf(prior, 0) {
		prior = 2
	}
	var sum, w float64
	for i, r := range p.r {
		lag := now.Sub(p.at[i])
		if lag < 0 {
			continue
		}
		a := 1.0
		if p.Memory > 0 {
			a = math.Exp(-float64(lag) / float64(p.Memory))
		}
		sum += a * r
		w += a
	}
	return (sum + prior*mean) / (w + prior)
}

// Prediction is the forecast for one stop. Arrival is the expected arrival
// (bias-corrected when a Calibrator is given), P10 and P90 the 10th and 90th
// percentile of the arrival, Waiting the wait for the window to open, Break
// the break taken after service and Departure when the vehicle leaves
// (after service and break).
type Prediction struct {
	Arrival, Departure, P10, P90 time.Time
	Waiting                      time.Duration
	Break                        time.Duration
	// Late reports an Arrival after the stop's Close.
	Late bool
	// Raw is the arrival of the walk before the calibrator's correction
	// (Arrival itself without a calibrator): what a Pending remembers.
	Raw time.Time
}

// maxBiasLog bounds |Bias.Log|: a vehicle 2.7 times slower or faster than
// the model on average is a broken plan or clock, not a bias.
const maxBiasLog = 1

// maxEdgeSeconds bounds one edge's travel time (a week): beyond it the
// network's free-flow duration is corrupt.
const maxEdgeSeconds = 7 * 24 * 3600

// errPlan wraps plan validation errors.
var errPlan = errors.New("invalid plan")

// validate checks the plan against the network.
func (t *Traffic) validate(p *Plan, mode Mode) error {
	if mode < FreeFlow || mode > Live {
		return fmt.Errorf("%w: unknown mode %d", errPlan, int(mode))
	}
	if p.Now.IsZero() {
		return fmt.Errorf("%w: zero Now", errPlan)
	}
	if len(p.Legs) != len(p.Stops) {
		return fmt.Errorf("%w: %d legs for %d stops", errPlan, len(p.Legs), len(p.Stops))
	}
	if !(math.Abs(p.Bias.Log) <= maxBiasLog) || p.Bias.Horizon < 0 {
		return fmt.Errorf("%w: bias %v over horizon %v (want |log| <= %v, horizon >= 0)", errPlan, p.Bias.Log, p.Bias.Horizon, maxBiasLog)
	}
	for i := range p.Legs {
		l := &p.Legs[i]
		if !(l.SrcFraction >= 0 && l.SrcFraction <= 1 && l.DstFraction >= 0 && l.DstFraction <= 1) {
			return fmt.Errorf("%w: leg %d: fractions %v, %v outside [0, 1]", errPlan, i, l.SrcFraction, l.DstFraction)
		}
		if len(l.Edges) == 1 && l.DstFraction < l.SrcFraction {
			return fmt.Errorf("%w: leg %d: target fraction %v before source %v on its only edge", errPlan, i, l.DstFraction, l.SrcFraction)
		}
		for _, e := range l.Edges {
			if int(e) >= len(t.net.Edges) {
				return fmt.Errorf("%w: leg %d: edge %d out of range (%d edges)", errPlan, i, e, len(t.net.Edges))
			}
		}
		s := &p.Stops[i]
		if s.Service < 0 {
			return fmt.Errorf("%w: stop %d: negative service %v", errPlan, i, s.Service)
		}
		if !s.Open.IsZero() && !s.Close.IsZero() && s.Close.Before(s.Open) {
			return fmt.Errorf("%w: stop %d: window closes %v before it opens %v", errPlan, i, s.Close, s.Open)
		}
	}
	for i := range p.Breaks {
		b := &p.Breaks[i]
		if b.Duration < 0 {
			return fmt.Errorf("%w: break %d: negative duration %v", errPlan, i, b.Duration)
		}
		if !b.Close.IsZero() && b.Close.Before(b.Open) {
			return fmt.Errorf("%w: break %d: window closes %v before it opens %v", errPlan, i, b.Close, b.Open)
		}
	}
	return nil
}

// seconds converts float seconds to a Duration, rounding to the nanosecond.
func seconds(s float64) time.Duration {
	return time.Duration(math.Round(s * 1e9))
}

// Predict forecasts arrival and departure at every stop of the plan. It
// walks the legs from p.Now: each edge takes its free-flow duration times
// the fraction travelled (1 - SrcFraction on a leg's first edge,
// DstFraction on its last, DstFraction - SrcFraction when both are the same
// edge) times the multiplier of the mode for the time the vehicle enters
// the edge, so that a leg departing later sees later traffic. The
// multiplier is evaluated once per edge at entry (a bin boundary crossed
// inside an edge does not split it). At a stop the vehicle waits for Open,
// serves, and takes any break that is due (see Break).
//
// With a non-nil Calibrator the Arrival becomes Now plus the calibrated
// median of the walked time to arrival and P10/P90 its calibrated
// quantiles for that horizon, and Waiting and Departure follow from the
// corrected Arrival; the walk itself (and later stops) use the uncorrected
// times, the corrections being learnt on cumulative times to arrival.
// Without one, P10 = P90 = Arrival. A closed edge on the way gives an error.
func (t *Traffic) Predict(p Plan, mode Mode, cal *Calibrator) ([]Prediction, error) {
	if err := t.validate(&p, mode); err != nil {
		return nil, err
	}
	out := make([]Prediction, len(p.Stops))
	now := p.Now.UnixNano()
	taken := make([]bool, len(p.Breaks))
	look := make([]bool, len(p.Breaks))
	cur := p.Now
	var memo groupMemo
	if mode == Live {
		memo.reset()
		t.mu.RLock()
		defer t.mu.RUnlock()
	}
	for i := range p.Legs {
		l := &p.Legs[i]
		n := len(l.Edges)
		for j, e := range l.Edges {
			frac := 1.0
			switch {
			case n == 1:
				frac = l.DstFraction - l.SrcFraction
			case j == 0:
				frac = 1 - l.SrcFraction
			case j == n-1:
				frac = l.DstFraction
			}
			var f float64
			switch mode {
			case FreeFlow:
				f = 1
			case Historical:
				f = t.prof.Factor(e, cur)
			default:
				f = t.factorLocked(e, now, cur, &memo)
			}
			if math.IsInf(f, 1) {
				return nil, fmt.Errorf("predict: leg %d: edge %d is closed at %v", i, e, cur)
			}
			if mode == Live {
				f *= p.Bias.factor(cur.Sub(p.Now))
			}
			d := t.net.Edges[e].Duration * frac * f
			if !(d >= 0) || d > maxEdgeSeconds {
				return nil, fmt.Errorf("predict: leg %d: edge %d: travel time %v s (free flow %v s, factor %v)", i, e, d, t.net.Edges[e].Duration, f)
			}
			cur = cur.Add(seconds(d))
		}
		s := &p.Stops[i]
		pr := &out[i]
		pr.Arrival, pr.P10, pr.P90, pr.Raw = cur, cur, cur, cur
		if cal != nil {
			h := cur.Sub(p.Now)
			lo, hi, med := cal.Interval(h, h)
			pr.Arrival, pr.P10, pr.P90 = p.Now.Add(med), p.Now.Add(lo), p.Now.Add(hi)
		}
		pr.Late = !s.Close.IsZero() && pr.Arrival.After(s.Close)
		// The corrected arrival decides this stop's wait and departure; the
		// walk continues from the uncorrected one.
		copy(look, taken)
		pr.Waiting, pr.Break, pr.Departure = serve(pr.Arrival, s, p.Breaks, look)
		_, _, cur = serve(cur, s, p.Breaks, taken)
	}
	return out, nil
}

// serve returns the wait for the window, the break taken and the departure
// of a vehicle arriving at stop s at time arr. taken marks the breaks
// already taken and is updated.
func serve(arr time.Time, s *Stop, breaks []Break, taken []bool) (wait, brk time.Duration, dep time.Time) {
	start := arr
	if !s.Open.IsZero() && start.Before(s.Open) {
		wait = s.Open.Sub(start)
		start = s.Open
	}
	dep = start.Add(s.Service)
	for k := range breaks {
		if taken[k] {
			continue
		}
		b := &breaks[k]
		if !dep.Before(b.Open) {
			brk += b.Duration
			dep = dep.Add(b.Duration)
			taken[k] = true
		}
	}
	return wait, brk, dep
}
