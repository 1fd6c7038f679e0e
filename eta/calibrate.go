package eta

import (
	"math"
	"slices"
	"sync"
	"time"

	"gonum.org/v1/gonum/stat"
)

// Horizon buckets of the Calibrator, in minutes of predicted time to
// arrival: [0,5), [5,10), [10,20), [20,30), [30,45), [45,60), [60,90),
// [90,120) and 120+. The relative error shrinks and its absolute size grows
// with the horizon, so the residual distribution changes steadily with it:
// buckets must be narrow enough for the interval of each horizon to be
// calibrated, and wide enough to hold many residuals. Sparse buckets pool
// their neighbours (see quantiles).
var horizonBounds = [...]time.Duration{
	5 * time.Minute, 10 * time.Minute, 20 * time.Minute, 30 * time.Minute, 45 * time.Minute,
	60 * time.Minute, 90 * time.Minute, 120 * time.Minute,
}

const (
	numBuckets = len(horizonBounds) + 1
	// maxResiduals is how many recent residuals a bucket keeps (a ring), so
	// that the calibration follows changes in the model's errors.
	maxResiduals = 4096
	// minResiduals is the fewest residuals quantiles are computed from; a
	// bucket with fewer pools its neighbours.
	minResiduals = 30
)

// Calibrator learns the distribution of the residuals log(actual /
// predicted) of time to arrival per horizon bucket and turns a predicted
// time to arrival into a bias-corrected median and a P10/P90 interval
// (empirical quantiles, gonum/stat). Working on log ratios makes the
// interval proportional to the prediction within a bucket. It is safe for
// concurrent use.
type Calibrator struct {
	// IntervalOnly keeps the prediction as the point estimate and uses the
	// learnt quantiles for P10 and P90 only (Interval then returns the
	// prediction as the median). Set it when the residuals' median is not
	// a stable correction: in the simulated benchmark (bench.ETA) the
	// median learnt from other days and other times of day made the
	// 30-minute MAPE worse on validation days (see CalibrateMedian in
	// bench.ETAConfig). Set it before use.
	IntervalOnly bool
	// MedianBelow, with IntervalOnly, still corrects the median of
	// predictions made less than this ahead (the residuals' median helped
	// at short horizons only in bench.ETA). Set it before use.
	MedianBelow time.Duration
	// Prior, when set, are the p10, p50 and p90 log residuals used while
	// a horizon has too few residuals (a cold start: the first stops of
	// the day), so that the interval is not a point. Set it before use.
	Prior *[3]float64

	mu    sync.Mutex
	res   [numBuckets][]float64 // ring buffers of residuals
	head  [numBuckets]int
	added int // residuals added in total; versions the cache
	cache [numBuckets]struct {
		q     [3]float64 // p10, p50, p90 of the log residual
		ok    bool
		added int
	}
	scratch []float64
}

// NewCalibrator returns an empty Calibrator: until it has minResiduals
// residuals Interval returns the prediction unchanged.
func NewCalibrator() *Calibrator {
	return &Calibrator{}
}

// bucket returns the horizon bucket of h.
func bucket(h time.Duration) int {
	for i, b := range horizonBounds {
		if h < b {
			return i
		}
	}
	return len(horizonBounds)
}

// Add records one outcome: a prediction made horizon before the arrival
// (usually the predicted time to arrival itself) said predicted, the trip
// took actual. Non-positive or non-finite values are ignored.
func (c *Calibrator) Add(horizon, predicted, actual time.Duration) {
	if predicted <= 0 || actual <= 0 || horizon < 0 {
		return
	}
	r := math.Log(float64(actual) / float64(predicted))
	if math.IsNaN(r) || math.IsInf(r, 0) {
		return
	}
	b := bucket(horizon)
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.res[b]) < maxResiduals {
		c.res[b] = append(c.res[b], r)
	} else {
		c.res[b][c.head[b]] = r
		c.head[b] = (c.head[b] + 1) % maxResiduals
	}
	c.added++
}

// Len returns the number of residuals held.
func (c *Calibrator) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for b := range c.res {
		n += len(c.res[b])
	}
	return n
}

// quantiles returns the p10, p50 and p90 log residuals for bucket b, pooling
// the nearest buckets when b has fewer than minResiduals; ok is false when
// there are fewer in total. The caller holds the lock.
func (c *Calibrator) quantiles(b int) (q [3]float64, ok bool) {
	ch := &c.cache[b]
	// Recompute once 1 % more residuals arrived (sorting is the cost).
	if ch.added != 0 && c.added-ch.added <= ch.added/100 {
		return ch.q, ch.ok
	}
	c.scratch = append(c.scratch[:0], c.res[b]...)
	for d := 1; len(c.scratch) < minResiduals && d < numBuckets; d++ {
		if b-d >= 0 {
			c.scratch = append(c.scratch, c.res[b-d]...)
		}
		if b+d < numBuckets {
			c.scratch = append(c.scratch, c.res[b+d]...)
		}
	}
	ch.added = c.added
	ch.ok = len(c.scratch) >= minResiduals
	if ch.ok {
		slices.Sort(c.scratch)
		for i, p := range [3]float64{0.1, 0.5, 0.9} {
			ch.q[i] = stat.Quantile(p, stat.LinInterp, c.scratch, nil)
		}
	}
	return ch.q, ch.ok
}

// Interval returns the P10, P90 and median of the time to arrival for a
// prediction of predicted made horizon ahead: predicted × exp(q) for the
// learnt residual quantiles q of the horizon's bucket (the median stays
// predicted with IntervalOnly). With too few residuals all three are
// predicted.
func (c *Calibrator) Interval(horizon, predicted time.Duration) (p10, p90, median time.Duration) {
	if c == nil {
		return predicted, predicted, predicted
	}
	c.mu.Lock()
	q, ok := c.quantiles(bucket(horizon))
	c.mu.Unlock()
	if !ok {
		if c.Prior == nil {
			return predicted, predicted, predicted
		}
		q = *c.Prior
	}
	f := float64(predicted)
	median = time.Duration(f * math.Exp(q[1]))
	if c.IntervalOnly && horizon >= c.MedianBelow {
		median = predicted
	}
	return time.Duration(f * math.Exp(q[0])), time.Duration(f * math.Exp(q[2])), median
}

// Pending remembers the predictions made for one stop until the vehicle
// reaches it, so that the Calibrator can learn from every horizon at which
// the stop was predicted. Predictions closer than MinSpacing to the last
// one kept are skipped (successive predictions made seconds apart are
// nearly the same sample). The zero value is ready to use, with a spacing
// of one minute; a Pending is not safe for concurrent use.
type Pending struct {
	// MinSpacing is the least time between two kept predictions; 0 means
	// one minute.
	MinSpacing time.Duration
	made, pred []time.Time
}

// Add records a prediction made at now for an arrival at arrival (the
// uncorrected walk, not a calibrated Arrival). Predictions of an arrival
// before now are ignored.
func (p *Pending) Add(now, arrival time.Time) {
	if !arrival.After(now) {
		return
	}
	sp := p.MinSpacing
	if sp == 0 {
		sp = time.Minute
	}
	if n := len(p.made); n > 0 && now.Sub(p.made[n-1]) < sp {
		return
	}
	p.made = append(p.made, now)
	p.pred = append(p.pred, arrival)
}

// Len returns the number of predictions held.
func (p *Pending) Len() int { return len(p.made) }

// Resolve feeds every held prediction to c with the actual arrival time and
// forgets them, keeping the buffers. Predictions made after the actual
// arrival are dropped.
func (p *Pending) Resolve(c *Calibrator, actual time.Time) {
	for i, now := range p.made {
		if !actual.After(now) {
			continue
		}
		pred := p.pred[i].Sub(now)
		c.Add(pred, pred, actual.Sub(now))
	}
	p.made, p.pred = p.made[:0], p.pred[:0]
}
