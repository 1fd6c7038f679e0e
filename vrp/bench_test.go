package vrp

import (
	"bufio"
	"encoding/csv"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// dataDir finds the shared data sets through LASTMILE_DATA, falling back to
// the repository-relative path.
func dataDir() string {
	if d := os.Getenv("LASTMILE_DATA"); d != "" {
		return d
	}
	return filepath.Join("..", "..", "shared", "datasets")
}

// loadSolomon is a throwaway Solomon-format reader for measuring gaps: cost =
// travel time = Euclidean distance scaled by 1000 and rounded.
func loadSolomon(path string) (*Problem, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var nums [][]float64
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		var row []float64
		for _, x := range fs {
			v, err := strconv.ParseFloat(x, 64)
			if err != nil {
				row = nil
				break
			}
			row = append(row, v)
		}
		if len(row) > 0 {
			nums = append(nums, row)
		}
	}
	if len(nums) < 3 || len(nums[0]) != 2 {
		return nil, fmt.Errorf("%s: unexpected layout", path)
	}
	nv, capa := int(nums[0][0]), int64(nums[0][1])
	cs := nums[1:]
	n := len(cs)
	mx := make([][]int64, n)
	for i := range mx {
		mx[i] = make([]int64, n)
		for j := range mx[i] {
			mx[i][j] = int64(math.Round(1000 * math.Hypot(cs[i][1]-cs[j][1], cs[i][2]-cs[j][2])))
		}
	}
	p := &Problem{Matrices: map[string]*Matrix{"car": {Durations: mx, Distances: mx}}}
	for i := 1; i < n; i++ {
		c := cs[i]
		p.Jobs = append(p.Jobs, Job{ID: uint64(c[0]), Location: IndexLocation(i), Service: int64(c[6] * 1000),
			Delivery: []int64{int64(c[3])}, TimeWindows: []TimeWindow{{int64(c[4] * 1000), int64(c[5] * 1000)}}})
	}
	for k := 0; k < nv; k++ {
		p.Vehicles = append(p.Vehicles, Vehicle{ID: uint64(k + 1), Start: IndexLocation(0), End: IndexLocation(0), HasStart: true, HasEnd: true,
			Capacity: []int64{capa}, TimeWindow: TimeWindow{int64(cs[0][4] * 1000), int64(cs[0][5] * 1000)}, Costs: Costs{PerKm: 1000}})
	}
	return p, nil
}

// loadCVRP is a throwaway TSPLIB EUC_2D CVRP reader (rounded distances).
func loadCVRP(path string) (*Problem, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var capa int64
	var xy [][2]float64
	var dem []int64
	sec := ""
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		fs := strings.Fields(line)
		if len(fs) == 0 {
			continue
		}
		switch {
		case strings.HasPrefix(line, "CAPACITY"):
			capa, _ = strconv.ParseInt(strings.TrimSpace(strings.SplitN(line, ":", 2)[1]), 10, 64)
			continue
		case strings.HasPrefix(line, "NODE_COORD_SECTION"), strings.HasPrefix(line, "DEMAND_SECTION"), strings.HasPrefix(line, "DEPOT_SECTION"):
			sec = fs[0]
			continue
		}
		switch sec {
		case "NODE_COORD_SECTION":
			if len(fs) >= 3 {
				x, _ := strconv.ParseFloat(fs[1], 64)
				y, _ := strconv.ParseFloat(fs[2], 64)
				xy = append(xy, [2]float64{x, y})
			}
		case "DEMAND_SECTION":
			if len(fs) >= 2 {
				d, _ := strconv.ParseInt(fs[1], 10, 64)
				dem = append(dem, d)
			}
		}
	}
	n := len(xy)
	if n == 0 || len(dem) != n {
		return nil, fmt.Errorf("%s: bad file", path)
	}
	mx := make([][]int64, n)
	var total int64
	for i := range mx {
		mx[i] = make([]int64, n)
		for j := range mx[i] {
			mx[i][j] = int64(math.Round(math.Hypot(xy[i][0]-xy[j][0], xy[i][1]-xy[j][1])))
		}
		total += dem[i]
	}
	p := &Problem{Matrices: map[string]*Matrix{"car": {Durations: mx, Distances: mx}}}
	for i := 1; i < n; i++ {
		p.Jobs = append(p.Jobs, Job{ID: uint64(i), Location: IndexLocation(i), Delivery: []int64{dem[i]}})
	}
	nv := int(total/capa) + 1 + n/20
	for k := 0; k < nv; k++ {
		p.Vehicles = append(p.Vehicles, Vehicle{ID: uint64(k + 1), Start: IndexLocation(0), End: IndexLocation(0), HasStart: true, HasEnd: true,
			Capacity: []int64{capa}, Costs: Costs{PerKm: 1000}})
	}
	return p, nil
}

func readBKS(t *testing.T, path, col string) map[string]float64 {
	f, err := os.Open(path)
	if err != nil {
		t.Skipf("no BKS file %s: %v", path, err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	ci := -1
	for i, h := range rows[0] {
		if h == col {
			ci = i
		}
	}
	out := map[string]float64{}
	for _, r := range rows[1:] {
		v, err := strconv.ParseFloat(r[ci], 64)
		if err == nil {
			out[r[0]] = v
		}
	}
	return out
}

func solveAndCheck(t *testing.T, p *Problem, opt Options) *Solution {
	t.Helper()
	s, err := Solve(p, opt)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Validate(p, s); err != nil {
		t.Fatalf("invalid solution: %v", err)
	}
	return s
}

// TestBenchmarkGaps measures gaps on a few Solomon and X instances. By default
// it runs one short solve; set LASTMILE_VRP_BENCH=seconds to run the list
// with that time limit.
func TestBenchmarkGaps(t *testing.T) {
	dir := filepath.Join(dataDir(), "vrp")
	if _, err := os.Stat(dir); err != nil {
		t.Skipf("no data at %s (set LASTMILE_DATA)", dir)
	}
	secs, _ := strconv.ParseFloat(os.Getenv("LASTMILE_VRP_BENCH"), 64)
	sol := []string{"C101", "R101", "RC101", "C106", "R105", "R110", "R202", "R207", "RC106", "RC203"}
	xs := []string{"X-n101-k25", "X-n110-k13", "X-n157-k13", "X-n200-k36", "X-n256-k16"}
	if env := os.Getenv("LASTMILE_VRP_INST"); env != "" {
		sol, xs = nil, nil
		for _, s := range strings.Split(env, ",") {
			if strings.HasPrefix(s, "X-") {
				xs = append(xs, s)
			} else {
				sol = append(sol, s)
			}
		}
	}
	var iters int64
	opt := Options{Seed: 1, NoLocalSearch: os.Getenv("LASTMILE_VRP_NOLS") != "", Progress: func(it int64, _ int, _ int64) { iters = it }}
	if secs == 0 {
		sol, xs = sol[:1], nil
		opt.Iterations = 300
	} else {
		opt.TimeLimit = time.Duration(secs * float64(time.Second))
	}
	bks := readBKS(t, filepath.Join(dir, "solomon", "bks.csv"), "bks_distance_only")
	var sum float64
	var cnt int
	for _, name := range sol {
		p, err := loadSolomon(filepath.Join(dir, "solomon", name+".txt"))
		if err != nil {
			t.Logf("skip %s: %v", name, err)
			continue
		}
		st := time.Now()
		s := solveAndCheck(t, p, opt)
		got := float64(s.Summary.Cost) / 1000
		gap := 100 * (got - bks[name]) / bks[name]
		t.Logf("%s: %.2f bks %.2f gap %.2f%% routes %d unassigned %d in %v (%d it/worker)", name, got, bks[name], gap, s.Summary.Routes, s.Summary.Unassigned, time.Since(st).Round(time.Millisecond), iters)
		sum += gap
		cnt++
	}
	if cnt > 0 {
		t.Logf("Solomon mean gap %.2f%% over %d", sum/float64(cnt), cnt)
	}
	bx := readBKS(t, filepath.Join(dir, "cvrplib", "bks.csv"), "bks_distance")
	sum, cnt = 0, 0
	for _, name := range xs {
		p, err := loadCVRP(filepath.Join(dir, "cvrplib", name+".vrp"))
		if err != nil {
			t.Logf("skip %s: %v", name, err)
			continue
		}
		st := time.Now()
		s := solveAndCheck(t, p, opt)
		got := float64(s.Summary.Cost)
		gap := 100 * (got - bx[name]) / bx[name]
		t.Logf("%s: %.0f bks %.0f gap %.2f%% routes %d unassigned %d in %v (%d it/worker)", name, got, bx[name], gap, s.Summary.Routes, s.Summary.Unassigned, time.Since(st).Round(time.Millisecond), iters)
		sum += gap
		cnt++
	}
	if cnt > 0 {
		t.Logf("X mean gap %.2f%% over %d", sum/float64(cnt), cnt)
	}
}
