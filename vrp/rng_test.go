package vrp

import (
	"math"
	"testing"
)

// TestBlinkRate checks that blink is true with probability p per call and
// that successive calls are independent: the rate, and the rate right
// after a true, both match p within 5 standard deviations, also when p
// changes between calls.
func TestBlinkRate(t *testing.T) {
	for _, tc := range []struct {
		p []float64 // used in turn, 1000 calls each
	}{
		{[]float64{0.01}},
		{[]float64{0.3}},
		{[]float64{0.5, 0.05}},
		{[]float64{0}},
		{[]float64{1}},
	} {
		r := rng{s: 7}
		n := 400000
		hits := make([]int, len(tc.p))
		calls := make([]int, len(tc.p))
		after, afterHits := make([]int, len(tc.p)), make([]int, len(tc.p))
		prev := false
		for i := range n {
			k := (i / 1000) % len(tc.p)
			b := r.blink(tc.p[k])
			calls[k]++
			if b {
				hits[k]++
			}
			if prev {
				after[k]++
				if b {
					afterHits[k]++
				}
			}
			prev = b
		}
		for k, p := range tc.p {
			check := func(what string, h, c int) {
				if c == 0 {
					return
				}
				rate := float64(h) / float64(c)
				sd := math.Sqrt(p*(1-p)/float64(c)) + 1e-12
				if math.Abs(rate-p) > 5*sd {
					t.Errorf("p %v (of %v): %s rate %.5f over %d calls, want %.5f ± %.5f", p, tc.p, what, rate, c, p, 5*sd)
				}
			}
			check("blink", hits[k], calls[k])
			check("after a blink", afterHits[k], after[k])
		}
	}
}
