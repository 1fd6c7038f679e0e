package vrp

import (
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
	"time"
)

func envSecs() int {
	n, _ := strconv.Atoi(os.Getenv("TMP200"))
	return n
}

func TestTmp200(t *testing.T) {
	if os.Getenv("TMP200") == "" {
		t.Skip()
	}
	for k := uint64(0); k < 3; k++ {
		r := rand.New(rand.NewPCG(200+k, 1))
		p := genProblem(r, genOpts{jobs: 200, vehicles: 25, tw: true, horizon: 30000})
		var res []int64
		for _, d := range []time.Duration{time.Duration(envSecs()) * time.Second} {
			s := solveAndCheck(t, p, Options{TimeLimit: d, Seed: 1})
			res = append(res, s.Summary.Cost)
		}
		ref := []int64{28574, 23399, 24670}[k]
		t.Logf("inst %d: 2s %d gap to 30s %.2f%%", k, res[0], 100*float64(res[0]-ref)/float64(ref))
	}
}
