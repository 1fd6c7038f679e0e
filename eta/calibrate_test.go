package eta

import (
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"
)

func TestCalibratorLognormalCoverage(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	cal := NewCalibrator()
	// Per bucket a different bias and spread, as errors grow with horizon.
	type spec struct {
		h          time.Duration
		mu, sigma  float64
		wantMedian float64
	}
	specs := []spec{
		{3 * time.Minute, 0.02, 0.05, math.Exp(0.02)},
		{10 * time.Minute, 0.05, 0.1, math.Exp(0.05)},
		{20 * time.Minute, 0.08, 0.15, math.Exp(0.08)},
		{45 * time.Minute, -0.05, 0.2, math.Exp(-0.05)},
		{90 * time.Minute, 0.1, 0.3, math.Exp(0.1)},
	}
	draw := func(s spec) (time.Duration, time.Duration) {
		pred := s.h + time.Duration(rng.IntN(60))*time.Second
		return pred, time.Duration(float64(pred) * math.Exp(s.mu+s.sigma*rng.NormFloat64()))
	}
	for range 3000 {
		for _, s := range specs {
			p, a := draw(s)
			cal.Add(p, p, a)
		}
	}
	for _, s := range specs {
		in := 0
		const n = 4000
		for range n {
			p, a := draw(s)
			lo, hi, _ := cal.Interval(p, p)
			if lo <= a && a <= hi {
				in++
			}
		}
		cov := float64(in) / n
		if cov < 0.76 || cov > 0.84 {
			t.Errorf("horizon %v: coverage %.3f, want about 0.80", s.h, cov)
		}
		_, _, med := cal.Interval(s.h, s.h)
		if r := float64(med) / float64(s.h); math.Abs(r/s.wantMedian-1) > 0.02 {
			t.Errorf("horizon %v: median ratio %.4f, want %.4f", s.h, r, s.wantMedian)
		}
	}
	if cal.Len() != 5*3000 {
		t.Errorf("Len %d", cal.Len())
	}
}

func TestCalibratorSparse(t *testing.T) {
	cal := NewCalibrator()
	h := 20 * time.Minute
	if lo, hi, med := cal.Interval(h, h); lo != h || hi != h || med != h {
		t.Errorf("empty calibrator: %v %v %v", lo, hi, med)
	}
	// Bad values are ignored.
	cal.Add(h, 0, h)
	cal.Add(h, h, -h)
	cal.Add(-h, h, h)
	if cal.Len() != 0 {
		t.Errorf("bad residuals kept: %d", cal.Len())
	}
	// Half the minimum at 20 min (exact) and half at 40 min (doubling): the
	// 20-25 bucket pools its neighbours up to 40-50 to reach the minimum.
	for range minResiduals / 2 {
		cal.Add(h, h, h)
		cal.Add(40*time.Minute, time.Minute, 2*time.Minute)
	}
	lo, hi, med := cal.Interval(h, h)
	if !(lo >= h && hi <= 2*h && lo < hi) {
		t.Errorf("pooled interval %v %v (median %v)", lo, hi, med)
	}
	// Nil calibrator is the identity.
	var nilCal *Calibrator
	if lo, hi, med := nilCal.Interval(h, h); lo != h || hi != h || med != h {
		t.Error("nil calibrator not the identity")
	}
}

func TestCalibratorRingAndConcurrency(t *testing.T) {
	cal := NewCalibrator()
	h := 10 * time.Minute
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 2000 {
				if g%2 == 0 {
					cal.Add(h, h, time.Duration(float64(h)*(1+float64(i%10)/100)))
				} else {
					cal.Interval(h, h)
				}
			}
		}()
	}
	wg.Wait()
	if cal.Len() != 4000 {
		t.Errorf("Len %d", cal.Len())
	}
	// The ring keeps the newest maxResiduals: after many x2 residuals the
	// old x1.0-1.09 ones are gone.
	for range maxResiduals + 10 {
		cal.Add(h, h, 2*h)
	}
	if _, _, med := cal.Interval(h, h); med != 2*h {
		t.Errorf("median %v after the ring turned over, want %v", med, 2*h)
	}
}

func TestPending(t *testing.T) {
	t0 := etaAt(9, 0, 0)
	var p Pending
	// Every 15 s for 40 minutes a prediction of 09:45; kept once a minute.
	for s := 0; s < 40*60; s += 15 {
		p.Add(t0.Add(time.Duration(s)*time.Second), etaAt(9, 45, 0))
	}
	p.Add(t0, t0) // arrival not after now: ignored
	if p.Len() != 40 {
		t.Fatalf("Len %d, want 40", p.Len())
	}
	// Exact predictions: every residual is 0, the median is the prediction.
	exact := NewCalibrator()
	q := p
	q.made, q.pred = slices.Clone(p.made), slices.Clone(p.pred)
	q.Resolve(exact, etaAt(9, 45, 0))
	if q.Len() != 0 || exact.Len() != 40 {
		t.Fatalf("after Resolve: pending %d, calibrator %d", q.Len(), exact.Len())
	}
	if lo, hi, med := exact.Interval(20*time.Minute, 20*time.Minute); lo != 20*time.Minute || hi != lo || med != lo {
		t.Errorf("exact predictions: interval %v %v %v", lo, hi, med)
	}
	// Actual arrival at 09:48: the prediction made at 09:00+k min said 45-k
	// minutes and it took 48-k, a ratio between 48/45 (k = 0) and 9/6
	// (k = 39); predictions made after the arrival would be dropped.
	late := NewCalibrator()
	p.Resolve(late, etaAt(9, 48, 0))
	if late.Len() != 40 {
		t.Fatalf("calibrator %d", late.Len())
	}
	_, _, med := late.Interval(20*time.Minute, 20*time.Minute)
	lo, hi := 20*time.Minute*48/45, 20*time.Minute*9/6
	if med < lo || med > hi {
		t.Errorf("median %v outside [%v, %v]", med, lo, hi)
	}
}

// TestCalibratorIntervalOnly: the same residuals give the same P10/P90, but
// the median stays the prediction.
func TestCalibratorIntervalOnly(t *testing.T) {
	full, only := NewCalibrator(), NewCalibrator()
	only.IntervalOnly = true
	rng := rand.New(rand.NewPCG(7, 7))
	for range 500 {
		p := 20*time.Minute + time.Duration(rng.IntN(300))*time.Second
		a := time.Duration(float64(p) * math.Exp(0.1+0.2*rng.NormFloat64()))
		full.Add(p, p, a)
		only.Add(p, p, a)
	}
	h := 25 * time.Minute
	lo1, hi1, med1 := full.Interval(h, h)
	lo2, hi2, med2 := only.Interval(h, h)
	if lo1 != lo2 || hi1 != hi2 {
		t.Errorf("intervals differ: [%v, %v] vs [%v, %v]", lo1, hi1, lo2, hi2)
	}
	if med2 != h || !(med1 > h) {
		t.Errorf("median %v with IntervalOnly (want %v), %v without (want above)", med2, h, med1)
	}
	if !(lo2 < h && h < hi2) {
		t.Errorf("interval [%v, %v] misses the prediction %v", lo2, hi2, h)
	}
}

// TestCalibratorMedianBelow: with IntervalOnly and MedianBelow, the median
// is corrected below that horizon only.
func TestCalibratorMedianBelow(t *testing.T) {
	c := NewCalibrator()
	c.IntervalOnly, c.MedianBelow = true, 20*time.Minute
	rng := rand.New(rand.NewPCG(8, 8))
	for range 2000 {
		p := time.Duration(2+rng.IntN(58)) * time.Minute
		c.Add(p, p, time.Duration(float64(p)*math.Exp(-0.1+0.05*rng.NormFloat64())))
	}
	for _, tc := range []struct {
		h         time.Duration
		corrected bool
	}{{5 * time.Minute, true}, {15 * time.Minute, true}, {20 * time.Minute, false}, {40 * time.Minute, false}} {
		_, _, med := c.Interval(tc.h, tc.h)
		if got := med < tc.h; got != tc.corrected {
			t.Errorf("horizon %v: median %v, corrected %v, want %v", tc.h, med, got, tc.corrected)
		}
	}
}
