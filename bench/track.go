package bench

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net"
	"net/http/httputil"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/lastmile/lastmile/datasets/sim"
	"github.com/lastmile/lastmile/engine"
	"github.com/lastmile/lastmile/engine/dispatch"
	"github.com/lastmile/lastmile/graph"
)

// TrackConfig configures Track. Zero values take the defaults given.
type TrackConfig struct {
	// Graph is the road graph (required).
	Graph *graph.Graph
	// Pages is the number of tracking pages open at once (default 5000),
	// one per shipment, spread evenly over Vans vans (default 50).
	Pages, Vans int
	// Period is the time between two pings of a van (default 5 s, at least
	// 1 s: a van's time on the page is in whole seconds); the vans' pings
	// are spread evenly over the period.
	Period time.Duration
	// Duration is the measured load (default 60 s), after the warm-up.
	Duration time.Duration
	// Drain bounds the wait, after the last ping was answered, for the
	// pages to see it (default 10 s); an update not seen by then is
	// missing.
	Drain time.Duration
	// ConnectTimeout bounds the warm-up: every page connected and shown
	// its van (default 3 min).
	ConnectTimeout time.Duration
	// Connect is the number of pages connecting at once (default 32).
	Connect int
	// Ramp spreads the pages' connections evenly over this time, as
	// browsers opening their pages over a while would (default 0: as fast
	// as they are answered, as after a server restart, which aligns the
	// streams' periodic refreshes).
	Ramp time.Duration
	// Target is the latency the issue asks of every update (default 2 s).
	Target time.Duration
	// VanStops is the server's dispatch.Config.VanStops (default
	// 1,000,000: every page follows its van, the worst case).
	VanStops int
	// Seed draws the stops and the vans' drives.
	Seed uint64
	// CPUProfile, when set, receives a CPU profile of the measured window
	// (server and clients: one process).
	CPUProfile string
	// Logger receives progress (nil: discard); the server logs there too.
	Logger *slog.Logger
}

// TrackResult holds the figures of one Track run. See Track for their
// definitions.
type TrackResult struct {
	Pages, Vans      int
	Period, Duration time.Duration
	Target, Ramp     time.Duration
	// Connected pages (stream open, van shown) at the end of the warm-up,
	// which took ConnectTime; ConnectFailed did not make it; Ended streams
	// ended before the end of the run (Connected streams only).
	Connected, ConnectFailed, Ended int
	ConnectTime                     time.Duration
	FirstError                      string
	// Setup is the time to draw the drives, create the shipments, store the
	// plan and send the first pings.
	Setup time.Duration

	// Pings posted in the window, Accepted by the server (the others are
	// not expected on the pages); PingP50/P99/Max the latency of POST
	// /v1/positions (one ping each) under the load.
	Pings, Accepted           int
	PingP50, PingP99, PingMax time.Duration

	// Expected updates: accepted pings times the connected pages of their
	// van. Seen: a frame with a van time at or after the ping's arrived on
	// the page; Missing = Expected - Seen. Coalesced counts the seen ones
	// whose first such frame carried a later van time (the server woke the
	// page once for two pings).
	Expected, Seen, Missing, Coalesced int
	// Latency of the seen updates (receive - post): quantiles, and how many
	// within Target.
	P50, P90, P99, Max time.Duration
	Within             int
	// Latencies are every seen update's latency, sorted.
	Latencies []time.Duration
	// PerPage counts the updates each connected page saw, by page index;
	// PerPageExpected what it should have seen.
	PerPage, PerPageExpected []int

	// Frames ("update" events) received in the window of Elapsed, their
	// rate and bytes (the data lines).
	Frames       int64
	FrameBytes   int64
	FramesPerSec float64
	Elapsed      time.Duration
	// CPU is the process's user+system CPU over the window (server and
	// clients share the process); CPUCores = CPU / Elapsed.
	CPU      time.Duration
	CPUCores float64
	// HostCores is the whole machine's busy CPU (cores) over the window,
	// from /proc/stat (0 where unavailable): above CPUCores, other
	// processes competed with the run.
	HostCores float64
	// RunDelay is how long the process's threads waited for a CPU over
	// the window (Linux schedstat; 0 where unavailable): time the kernel
	// gave to other processes while the run had work.
	RunDelay time.Duration
	// RSS at the end of the window and the process's peak.
	RSS, PeakRSS int64
	// Slots split the window in periods: the updates of the pings posted
	// in each and the process's CPU in it.
	Slots []TrackSlot
}

// TrackSlot is one period of the window: from Start (since the window's
// start), the updates seen of the pings posted in it, their latency
// quantiles, and the process's CPU (cores) over it.
type TrackSlot struct {
	Start         time.Duration
	Pings, Seen   int
	P50, P99, Max time.Duration
	CPUCores      float64
	// PostMax is the slowest POST /v1/positions of the slot.
	PostMax time.Duration
}

// WithinShare is the share of expected updates seen within Target.
func (r *TrackResult) WithinShare() float64 { return share(r.Within, r.Expected) }

// Met reports whether the target holds: every expected update seen
// within Target on every page.
func (r *TrackResult) Met() bool {
	return r.Expected > 0 && r.Within == r.Expected && r.Connected == r.Pages
}

// Summary is the one-line, stable summary of the figures.
func (r *TrackResult) Summary() string {
	return fmt.Sprintf("track: pages %d/%d vans %d period %v updates %d/%d missing %d p50 %.0fms p99 %.0fms max %.0fms within_%v %.2f%% frames/s %.0f cpu %.2f cores host %.2f cores cpu_wait %.1fs rss %.0fMiB ping_p99 %.1fms",
		r.Connected, r.Pages, r.Vans, r.Period, r.Seen, r.Expected, r.Missing, ms(r.P50), ms(r.P99), ms(r.Max), r.Target,
		100*r.WithinShare(), r.FramesPerSec, r.CPUCores, r.HostCores, r.RunDelay.Seconds(), float64(r.RSS)/(1<<20), ms(r.PingP99))
}

// String returns the table WriteTrack prints.
func (r *TrackResult) String() string {
	var b strings.Builder
	WriteTrack(&b, r)
	return b.String()
}

// WriteTrack prints the figures of a run as a table, then Summary.
func WriteTrack(w io.Writer, r *TrackResult) {
	check := "NOT met"
	if r.Met() {
		check = "met"
	}
	fmt.Fprintf(w, "%d pages on %d vans (%d per van), a ping per van every %v for %v; warm-up %.1fs (ramp %v; %d connected, %d failed, %d ended early), setup %.1fs\n",
		r.Pages, r.Vans, r.Pages/max(r.Vans, 1), r.Period, r.Duration, r.ConnectTime.Seconds(), r.Ramp, r.Connected, r.ConnectFailed, r.Ended, r.Setup.Seconds())
	if r.FirstError != "" {
		fmt.Fprintf(w, "first error: %s\n", r.FirstError)
	}
	if r.Elapsed > 0 && r.RunDelay > r.Elapsed/10 {
		fmt.Fprintf(w, "warning: other processes held the CPUs: this process's threads waited %.1f s for one in the %.0f s window (machine %.2f cores busy); the latencies are not the server's alone\n",
			r.RunDelay.Seconds(), r.Elapsed.Seconds(), r.HostCores)
	}
	fmt.Fprintf(w, "\n| figure | value |\n|---|---:|\n")
	row := func(k, v string, a ...any) { fmt.Fprintf(w, "| %s | %s |\n", k, fmt.Sprintf(v, a...)) }
	row("pings posted (accepted)", "%d (%d)", r.Pings, r.Accepted)
	row("updates expected", "%d", r.Expected)
	row("updates seen (coalesced)", "%d (%d)", r.Seen, r.Coalesced)
	row("updates missing", "%d", r.Missing)
	row("latency p50 / p90 / p99 / max", "%.0f / %.0f / %.0f / %.0f ms", ms(r.P50), ms(r.P90), ms(r.P99), ms(r.Max))
	row(fmt.Sprintf("seen within %v", r.Target), "%.2f %% (%d of %d)", 100*r.WithinShare(), r.Within, r.Expected)
	row("frames delivered", "%d (%.0f/s, %.1f MB/s)", r.Frames, r.FramesPerSec, float64(r.FrameBytes)/r.Elapsed.Seconds()/1e6)
	row("process CPU (server + clients)", "%.1f s in %.1f s: %.2f cores (machine: %.2f cores busy; waited %.1f s for a CPU)",
		r.CPU.Seconds(), r.Elapsed.Seconds(), r.CPUCores, r.HostCores, r.RunDelay.Seconds())
	row("RSS (peak)", "%.0f MiB (%.0f MiB)", float64(r.RSS)/(1<<20), float64(r.PeakRSS)/(1<<20))
	row("POST /v1/positions p50 / p99 / max", "%.1f / %.1f / %.1f ms", ms(r.PingP50), ms(r.PingP99), ms(r.PingMax))
	row(fmt.Sprintf("target: every update within %v", r.Target), "%s", check)
	if len(r.Slots) > 0 {
		fmt.Fprintf(w, "\nby period of the window (pings posted in it):\n\n| from (s) | pings | updates seen | p50 (ms) | p99 (ms) | max (ms) | CPU (cores) | slowest ping POST (ms) |\n|---:|---:|---:|---:|---:|---:|---:|---:|\n")
		for _, sl := range r.Slots {
			fmt.Fprintf(w, "| %.0f | %d | %d | %.0f | %.0f | %.0f | %.2f | %.0f |\n", sl.Start.Seconds(), sl.Pings, sl.Seen, ms(sl.P50), ms(sl.P99),
				ms(sl.Max), sl.CPUCores, ms(sl.PostMax))
		}
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, r.Summary())
}

func (c TrackConfig) withDefaults() TrackConfig {
	if c.Pages <= 0 {
		c.Pages = 5000
	}
	if c.Vans <= 0 {
		c.Vans = 50
	}
	c.Vans = min(c.Vans, c.Pages)
	if c.Period <= 0 {
		c.Period = 5 * time.Second
	}
	if c.Duration <= 0 {
		c.Duration = 60 * time.Second
	}
	if c.Drain <= 0 {
		c.Drain = 10 * time.Second
	}
	if c.ConnectTimeout <= 0 {
		c.ConnectTimeout = 3 * time.Minute
	}
	if c.Connect <= 0 {
		c.Connect = 32
	}
	if c.Target <= 0 {
		c.Target = 2 * time.Second
	}
	if c.VanStops <= 0 {
		c.VanStops = 1_000_000
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// trackPing is one ping of the load: the van time T (Unix seconds) and
// the wall time it was posted; void when the server did not accept it.
type trackPing struct {
	t      int64
	posted time.Time
	post   time.Duration // the POST's latency
	void   bool
}

// trackVan is one van: its drive, its load pings and its pages.
type trackVan struct {
	id     string
	drive  []sim.Ping
	next   int   // drive pings used
	lastT  int64 // van time of the last ping sent
	mu     sync.RWMutex
	pings  []trackPing // of the load, in order
	pages  []*trackPage
	tracks []string
	stops  [][2]float64
}

// trackSeen is one update seen by a page: the ping's index in its van's
// load and the latency.
type trackSeen struct {
	k         int32
	coalesced bool
	lat       time.Duration
}

// trackPage is one open tracking page.
type trackPage struct {
	van   *trackVan
	token string
	conn  net.Conn
	next  int // the van's first load ping not seen yet
	seen  []trackSeen
	ready bool // connected and shown its van
	err   error
}

// trackRun is the state of one run.
type trackRun struct {
	cfg    TrackConfig
	addr   string
	frames atomic.Int64
	bytes  atomic.Int64
	walked atomic.Int64 // (page, load ping) pairs walked past
	ended  atomic.Int64
	ready  atomic.Int64
	posted atomic.Int64 // load pings posted
	load   atomic.Bool  // the warm-up is over
	// closing: the run closes the pages' connections.
	closing atomic.Bool
}

// Track measures the fan-out of live van positions to open tracking
// pages over HTTP on loopback. An in-process server with a SQLite state
// store tracks Vans vans, each out for delivery on a sequenced route of
// Pages/Vans shipments (stops on the roads of Graph); the server shows
// the van on every page (VanStops very high, the worst case: every ping
// of a van updates all of its pages). Pages clients, in this process,
// each hold GET /track/{token}/live open (a raw connection, reading only
// the van's time of each "update" event). After the warm-up (every page
// connected and shown its van), each van pings (POST /v1/positions, one
// ping, timed with the wall clock in whole seconds, moving along its
// drive) every Period, the vans spread evenly over the period, for
// Duration.
//
// Counting: a page has seen ping (van v, time T) once a frame whose van
// time is T or later arrived; the latency is that frame's arrival minus
// the wall time just before the ping was posted. A page may never get a
// frame of time T exactly, when the server woke it once for two pings
// (Coalesced): it saw T through the later one. Updates not seen Drain
// after the last ping was answered are missing. Pings the server did not
// accept are not expected. Frames, CPU and RSS are measured over the
// load window only; server and clients share the process, so CPU is
// theirs together (a CPU profile splits them).
func Track(cfg TrackConfig) (*TrackResult, error) {
	cfg = cfg.withDefaults()
	if cfg.Graph == nil {
		return nil, errors.New("bench: track: a graph is needed")
	}
	if cfg.Period < time.Second {
		return nil, errors.New("bench: track: the period must be at least 1 s (van times are whole seconds)")
	}
	log := cfg.Logger
	t0 := time.Now()
	// Two sockets per page (client and server), and some for the rest.
	const spareFiles = 512
	if lim := raiseFileLimit(uint64(2*cfg.Pages + spareFiles)); lim < uint64(2*cfg.Pages+spareFiles) {
		return nil, fmt.Errorf("bench: track: the open-file limit (%d, not raisable further) allows about %d pages, not %d: raise the hard limit (ulimit -Hn) or open fewer pages",
			lim, (lim-min(lim, spareFiles))/2, cfg.Pages)
	}

	vans, depot, err := trackDrives(cfg)
	if err != nil {
		return nil, err
	}
	log.Info("track bench: drives drawn", "vans", len(vans), "pages", cfg.Pages, "seconds", time.Since(t0).Seconds())

	sc := engine.ServerConfig{TrackRate: -1, Dispatch: dispatch.Config{VanStops: cfg.VanStops}}
	ss, err := startStateServer(cfg.Graph, "", "", cfg.Vans+4, sc, log)
	if err != nil {
		return nil, fmt.Errorf("bench: track: server: %w", err)
	}
	defer ss.close()
	r := &trackRun{cfg: cfg, addr: ss.c.Addr}
	if err := r.setup(ss, vans, depot); err != nil {
		return nil, err
	}
	res := &TrackResult{Pages: cfg.Pages, Vans: cfg.Vans, Period: cfg.Period, Duration: cfg.Duration, Target: cfg.Target, Ramp: cfg.Ramp,
		Setup: time.Since(t0)}
	log.Info("track bench: shipments planned, vans out", "seconds", res.Setup.Seconds())

	// Warm-up: every page connected and shown its van.
	var pages []*trackPage
	for _, v := range vans {
		pages = append(pages, v.pages...)
	}
	t1 := time.Now()
	var wg sync.WaitGroup
	readyCh := make(chan struct{}, len(pages))
	sem := make(chan struct{}, cfg.Connect)
	deadline := t1.Add(cfg.Ramp + cfg.ConnectTimeout)
	go func() {
		for i, p := range pages {
			if cfg.Ramp > 0 {
				time.Sleep(time.Until(t1.Add(cfg.Ramp * time.Duration(i) / time.Duration(len(pages)))))
			}
			sem <- struct{}{}
			if time.Now().After(deadline) {
				<-sem
				readyCh <- struct{}{}
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				r.runPage(p, sem, readyCh, deadline)
			}()
		}
	}()
	progress := time.NewTicker(10 * time.Second)
	for n := 0; n < len(pages); {
		select {
		case <-readyCh:
			n++
		case <-progress.C:
			log.Info("track bench: connecting", "connected", r.ready.Load(), "of", len(pages))
		}
	}
	res.ConnectTime = time.Since(t1)
	for _, p := range pages {
		if p.ready {
			res.Connected++
		} else {
			res.ConnectFailed++
			if res.FirstError == "" && p.err != nil {
				res.FirstError = p.err.Error()
			}
		}
	}
	log.Info("track bench: pages connected", "connected", res.Connected, "failed", res.ConnectFailed, "seconds", res.ConnectTime.Seconds())
	if res.Connected == 0 {
		r.closePages(pages, &wg)
		return nil, fmt.Errorf("bench: track: no page connected: %s", res.FirstError)
	}

	// Load.
	if cfg.CPUProfile != "" {
		f, err := os.Create(cfg.CPUProfile)
		if err != nil {
			r.closePages(pages, &wg)
			return nil, err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			r.closePages(pages, &wg)
			return nil, err
		}
	}
	r.load.Store(true)
	runtime.GC()
	cpu0, _ := processCPU()
	host0, hostOK0 := hostBusy()
	wait0 := runDelay()
	frames0, bytes0 := r.frames.Load(), r.bytes.Load()
	t2 := time.Now()
	end := t2.Add(cfg.Duration)
	var (
		pwg     sync.WaitGroup
		pmu     sync.Mutex
		postLat []time.Duration
		perr    atomic.Value
	)
	for i, v := range vans {
		pwg.Add(1)
		go func() {
			defer pwg.Done()
			lat, err := r.drive(ss, v, t2.Add(cfg.Period*time.Duration(i)/time.Duration(len(vans))), end)
			if err != nil {
				perr.CompareAndSwap(nil, err.Error())
			}
			pmu.Lock()
			postLat = append(postLat, lat...)
			pmu.Unlock()
		}()
	}
	nslots := int((cfg.Duration + cfg.Period - 1) / cfg.Period)
	slotCPU := make([]time.Duration, nslots+1)
	slotCPU[0] = cpu0
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for i := 1; i <= nslots; i++ {
			time.Sleep(min(time.Until(t2.Add(cfg.Period*time.Duration(i))), time.Until(end)))
			slotCPU[i], _ = processCPU()
		}
	}()
	window := time.NewTimer(time.Until(end))
	drove := make(chan struct{})
	go func() { pwg.Wait(); close(drove) }()
	windowDone := false
	for !windowDone {
		select {
		case <-window.C:
			windowDone = true
		case <-progress.C:
			log.Info("track bench: load", "frames", r.frames.Load()-frames0, "pings", r.posted.Load(), "walked", r.walked.Load(),
				"open", int64(res.Connected)-r.ended.Load())
		}
	}
	res.Elapsed = time.Since(t2)
	cpu1, _ := processCPU()
	res.RunDelay = runDelay() - wait0
	if host1, ok := hostBusy(); ok && hostOK0 {
		res.HostCores = (host1 - host0).Seconds() / res.Elapsed.Seconds()
	}
	res.Frames, res.FrameBytes = r.frames.Load()-frames0, r.bytes.Load()-bytes0
	res.RSS = RSS()
	if cfg.CPUProfile != "" {
		pprof.StopCPUProfile()
	}
	res.CPU = cpu1 - cpu0
	res.CPUCores = res.CPU.Seconds() / res.Elapsed.Seconds()
	res.FramesPerSec = float64(res.Frames) / res.Elapsed.Seconds()
	<-drove
	<-sampled
	if e, ok := perr.Load().(string); ok && res.FirstError == "" {
		res.FirstError = e
	}

	// Drain: until every connected page walked past every ping, or Drain.
	total := int64(0)
	for _, v := range vans {
		n, k := 0, 0
		for _, p := range v.pages {
			if p.ready {
				n++
			}
		}
		for _, pg := range v.pings {
			if !pg.void {
				k++
			}
		}
		total += int64(n * k)
	}
	for t3 := time.Now(); r.walked.Load() < total && time.Since(t3) < cfg.Drain; {
		time.Sleep(20 * time.Millisecond)
	}
	res.PeakRSS = PeakRSS()
	r.closePages(pages, &wg)
	progress.Stop()

	// Figures.
	slices.Sort(postLat)
	res.Pings = len(postLat)
	if n := len(postLat); n > 0 {
		res.PingP50, res.PingP99, res.PingMax = postLat[n/2], postLat[n*99/100], postLat[n-1]
	}
	for _, v := range vans {
		for _, pg := range v.pings {
			if !pg.void {
				res.Accepted++
			}
		}
	}
	res.PerPage, res.PerPageExpected = make([]int, len(pages)), make([]int, len(pages))
	for i, p := range pages {
		if !p.ready {
			continue
		}
		if p.err != nil && res.FirstError == "" {
			res.FirstError = p.err.Error()
		}
		for _, pg := range p.van.pings {
			if !pg.void {
				res.PerPageExpected[i]++
			}
		}
		res.Expected += res.PerPageExpected[i]
		for _, s := range p.seen {
			if p.van.pings[s.k].void {
				continue
			}
			res.PerPage[i]++
			res.Latencies = append(res.Latencies, s.lat)
			if s.coalesced {
				res.Coalesced++
			}
		}
	}
	res.Slots = make([]TrackSlot, nslots)
	slotLat := make([][]time.Duration, nslots)
	slotOf := func(t time.Time) int { return min(nslots-1, max(0, int(t.Sub(t2)/cfg.Period))) }
	for i := range res.Slots {
		sl := &res.Slots[i]
		sl.Start = cfg.Period * time.Duration(i)
		span := min(cfg.Duration, cfg.Period*time.Duration(i+1)) - sl.Start
		sl.CPUCores = (slotCPU[i+1] - slotCPU[i]).Seconds() / span.Seconds()
	}
	for _, v := range vans {
		for _, pg := range v.pings {
			sl := &res.Slots[slotOf(pg.posted)]
			sl.PostMax = max(sl.PostMax, pg.post)
			if !pg.void {
				sl.Pings++
			}
		}
	}
	for _, p := range pages {
		if !p.ready {
			continue
		}
		for _, s := range p.seen {
			if pg := p.van.pings[s.k]; !pg.void {
				k := slotOf(pg.posted)
				slotLat[k] = append(slotLat[k], s.lat)
			}
		}
	}
	for i, lat := range slotLat {
		sl := &res.Slots[i]
		sl.Seen = len(lat)
		sl.P50, _, sl.P99, sl.Max, _ = latencyFigures(lat, cfg.Target)
	}
	res.Ended = int(r.ended.Load())
	res.Seen = len(res.Latencies)
	res.Missing = res.Expected - res.Seen
	res.P50, res.P90, res.P99, res.Max, res.Within = latencyFigures(res.Latencies, cfg.Target)
	log.Info("track bench: done", "seen", res.Seen, "expected", res.Expected, "p99_ms", ms(res.P99))
	return res, nil
}

// hostBusy returns the machine's busy CPU time so far (all CPUs: user,
// nice, system, irq, softirq, steal) from /proc/stat.
func hostBusy() (time.Duration, bool) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, false
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return 0, false
	}
	var ticks int64
	for _, i := range []int{1, 2, 3, 6, 7, 8} { // user nice system irq softirq steal
		v, err := strconv.ParseInt(f[i], 10, 64)
		if err != nil {
			return 0, false
		}
		ticks += v
	}
	return time.Duration(ticks) * time.Second / 100, true // USER_HZ
}

// runDelay returns how long the process's threads have waited on a run
// queue (the second field of /proc/self/task/*/schedstat; threads that
// ended are not counted), 0 where unavailable.
func runDelay() time.Duration {
	tasks, _ := os.ReadDir("/proc/self/task")
	var ns int64
	for _, t := range tasks {
		b, err := os.ReadFile("/proc/self/task/" + t.Name() + "/schedstat")
		if err != nil {
			continue
		}
		if f := strings.Fields(string(b)); len(f) >= 2 {
			v, _ := strconv.ParseInt(f[1], 10, 64)
			ns += v
		}
	}
	return time.Duration(ns)
}

// latencyFigures sorts lat and returns its p50, p90, p99 and max (the
// element at index ⌊q·n⌋) and how many are at most target.
func latencyFigures(lat []time.Duration, target time.Duration) (p50, p90, p99, mx time.Duration, within int) {
	slices.Sort(lat)
	n := len(lat)
	if n == 0 {
		return
	}
	q := func(f float64) time.Duration { return lat[min(n-1, int(f*float64(n)))] }
	within, _ = slices.BinarySearch(lat, target+1)
	return q(0.5), q(0.9), q(0.99), lat[n-1], within
}

// raiseFileLimit raises the process's open-file limit to at least n
// (two sockets per page: the client's and the server's), as far as it
// may, and returns the limit.
func raiseFileLimit(n uint64) uint64 {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return math.MaxUint64 // unknown: let the connections tell
	}
	if lim.Cur >= n {
		return lim.Cur
	}
	want := syscall.Rlimit{Cur: n, Max: max(lim.Max, n)}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want); err == nil {
		return n
	}
	want = syscall.Rlimit{Cur: lim.Max, Max: lim.Max}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want); err != nil {
		return lim.Cur
	}
	return lim.Max
}

// trackDrives draws the depot, each van's stops (nearest first from the
// depot) and its drive: pings every Period along shortest routes between
// random points, the first at least 500 m from the depot (the route is
// out for delivery from it).
func trackDrives(cfg TrackConfig) ([]*trackVan, graph.Endpoint, error) {
	g := cfg.Graph
	start := time.Now()
	w, err := sim.NewWorld(g.Road, sim.DefaultConfig(start.UTC().Truncate(24*time.Hour), 1, cfg.Seed))
	if err != nil {
		return nil, graph.Endpoint{}, err
	}
	rng := rand.New(rand.NewPCG(cfg.Seed, 11))
	depot := sim.RandomEndpoints(g, 1, rng)[0]
	q := g.NewQuery()
	need := int(cfg.Duration/cfg.Period) + 3
	vans := make([]*trackVan, cfg.Vans)
	for v := range vans {
		van := &trackVan{id: fmt.Sprintf("track-van-%d", v+1)}
		n := cfg.Pages / cfg.Vans
		if v < cfg.Pages%cfg.Vans {
			n++
		}
		stops, err := sim.RandomEndpointsWithin(g, n, depot.Lat, depot.Lon, 4000, rng)
		if err != nil {
			return nil, depot, err
		}
		for k, ep := range nearestFirst(depot, stops) {
			van.tracks = append(van.tracks, fmt.Sprintf("TRK%d-%d", v+1, k+1))
			van.stops = append(van.stops, [2]float64{ep.Lon, ep.Lat})
		}
		// The drive: from a point far from the depot, on to random points.
		var at graph.Endpoint
		for try := 0; ; try++ {
			at = sim.RandomEndpoints(g, 1, rng)[0]
			if graph.Haversine(at.Lat, at.Lon, depot.Lat, depot.Lon) >= 500 || try > 1000 {
				break
			}
		}
		t := start
		for fails := 0; len(van.drive) < need; {
			next := sim.RandomEndpoints(g, 1, rng)[0]
			rt, err := q.Route(at, next)
			if err == nil && len(rt.Edges) > 0 {
				var d sim.Drive
				if d, err = w.Drive(rt.Edges, rt.SrcFraction, rt.DstFraction, t, rng); err == nil {
					var ps []sim.Ping
					if ps, err = w.Pings(d, van.id, cfg.Period, 5, rng); err == nil {
						if k := len(van.drive); k > 0 && len(ps) > 0 && !ps[0].Time.After(van.drive[k-1].Time) {
							ps = ps[1:]
						}
						van.drive = append(van.drive, ps...)
						t, at = d.Arrive, next
						continue
					}
				}
			}
			if fails++; fails > 1000 {
				return nil, depot, fmt.Errorf("bench: track: no drive for %s: %v", van.id, err)
			}
		}
		vans[v] = van
	}
	return vans, depot, nil
}

// setup creates the shipments, the plan (one sequenced route per van)
// and sends each van's first ping: every route out for delivery.
func (r *trackRun) setup(ss *stateServer, vans []*trackVan, depot graph.Endpoint) error {
	now := time.Now().Unix()
	type job struct {
		van *trackVan
		k   int
	}
	var jobs []job
	for _, v := range vans {
		v.pages = make([]*trackPage, len(v.tracks))
		for k := range v.tracks {
			jobs = append(jobs, job{v, k})
		}
	}
	if err := parallel(4, len(jobs), func(i int) error {
		j := jobs[i]
		tr := j.van.tracks[j.k]
		body, _ := json.Marshal(map[string]any{"tracking": tr, "recipient": map[string]any{"name": "R " + tr, "language": "en"},
			"location": j.van.stops[j.k], "address": "Address of " + tr, "time_window": []int64{now - 3600, now + 8*3600},
			"time_zone": "Europe/Monaco", "service": 60})
		status, out, err := ss.post("/v1/shipments", body)
		if err != nil || status != 201 {
			return fmt.Errorf("bench: track: create shipment %s: %d %v %s", tr, status, err, ingestClip(out, 200))
		}
		var c dispatch.ShipmentCreated
		if err := json.Unmarshal(out, &c); err != nil || !strings.HasPrefix(c.TrackingURL, "/track/") {
			return fmt.Errorf("bench: track: shipment %s: no tracking URL in %s", tr, ingestClip(out, 200))
		}
		j.van.pages[j.k] = &trackPage{van: j.van, token: strings.TrimPrefix(c.TrackingURL, "/track/")}
		return nil
	}); err != nil {
		return err
	}
	// One plan per group of vans of at most 100 vans and 5,000 shipments
	// (the server's limit per plan).
	depotLL := [2]float64{depot.Lon, depot.Lat}
	for from := 0; from < len(vans); {
		var vehicles, routes []any
		n, v := 0, from
		for ; v < len(vans) && v-from < 100 && (v == from || n+len(vans[v].tracks) <= 5000); v++ {
			n += len(vans[v].tracks)
			vehicles = append(vehicles, map[string]any{"id": v + 1, "vehicle": vans[v].id, "start": depotLL, "end": depotLL,
				"time_window": []int64{now - 3600, now + 12*3600}})
			routes = append(routes, map[string]any{"vehicle": vans[v].id, "shipments": vans[v].tracks})
		}
		from = v
		body, _ := json.Marshal(map[string]any{"vehicles": vehicles, "routes": routes})
		status, out, err := ss.post("/v1/plans", body)
		if err != nil || status != 201 {
			return fmt.Errorf("bench: track: create plan: %d %v %s", status, err, ingestClip(out, 300))
		}
	}
	// The first ping, some seconds ago: the van leaves the depot.
	for _, v := range vans {
		p := v.drive[0]
		v.next, v.lastT = 1, time.Now().Unix()-2
		if ok, err := r.ping(ss, v, p, v.lastT); err != nil || !ok {
			return fmt.Errorf("bench: track: first ping of %s not accepted: %v", v.id, err)
		}
	}
	return nil
}

// ping posts one ping of van v at van time t; ok when accepted.
func (r *trackRun) ping(ss *stateServer, v *trackVan, p sim.Ping, t int64) (bool, error) {
	body, _ := json.Marshal(map[string]any{"positions": []any{map[string]any{"vehicle": v.id, "time": t,
		"location": [2]float64{p.Lon, p.Lat}, "speed": p.Speed, "heading": p.Heading}}})
	status, out, err := ss.post("/v1/positions", body)
	if err != nil {
		return false, err
	}
	if status != 200 {
		return false, fmt.Errorf("POST /v1/positions: %d %s", status, ingestClip(out, 200))
	}
	var a positionsAnswer
	if err := json.Unmarshal(out, &a); err != nil {
		return false, err
	}
	if a.Accepted != 1 {
		return false, fmt.Errorf("ping rejected: %v", a.Rejected)
	}
	return true, nil
}

// drive sends van v's pings every Period from first until end and
// returns the latencies of the posts.
func (r *trackRun) drive(ss *stateServer, v *trackVan, first, end time.Time) ([]time.Duration, error) {
	var lat []time.Duration
	var firstErr error
	for at := first; at.Before(end); at = at.Add(r.cfg.Period) {
		time.Sleep(time.Until(at))
		if v.next >= len(v.drive) {
			v.next = len(v.drive) - 1 // standing at the end of the drive
		}
		p := v.drive[v.next]
		v.next++
		now := time.Now()
		t := max(now.Unix(), v.lastT+1)
		v.lastT = t
		v.mu.Lock()
		k := len(v.pings)
		v.pings = append(v.pings, trackPing{t: t, posted: now})
		v.mu.Unlock()
		r.posted.Add(1)
		ok, err := r.ping(ss, v, p, t)
		d := time.Since(now)
		lat = append(lat, d)
		v.mu.Lock()
		v.pings[k].post, v.pings[k].void = d, !ok
		v.mu.Unlock()
		if !ok {
			if firstErr == nil {
				firstErr = fmt.Errorf("%s: %w", v.id, err)
			}
		}
	}
	return lat, firstErr
}

// closePages closes every page's connection and waits for their readers.
func (r *trackRun) closePages(pages []*trackPage, wg *sync.WaitGroup) {
	r.closing.Store(true)
	for _, p := range pages {
		if p.conn != nil {
			p.conn.Close()
		}
	}
	wg.Wait()
}

// runPage opens page p's live stream and reads it until the connection
// closes. It signals readyCh (and frees its slot of sem) once the page
// shows its van, or failed.
func (r *trackRun) runPage(p *trackPage, sem chan struct{}, readyCh chan<- struct{}, deadline time.Time) {
	signalled := false
	signal := func() {
		if !signalled {
			signalled = true
			<-sem
			readyCh <- struct{}{}
		}
	}
	defer signal()
	conn, err := net.DialTimeout("tcp", r.addr, 30*time.Second)
	if err != nil {
		p.err = err
		return
	}
	p.conn = conn // closed by closePages
	_ = conn.SetDeadline(deadline)
	if _, err := fmt.Fprintf(conn, "GET /track/%s/live HTTP/1.1\r\nHost: %s\r\nAccept: text/event-stream\r\nUser-Agent: lastmile-bench-track\r\n\r\n", p.token, r.addr); err != nil {
		p.err = err
		return
	}
	br := bufio.NewReaderSize(conn, 1024)
	status, err := br.ReadSlice('\n')
	if err != nil {
		p.err = fmt.Errorf("live stream: %w", err)
		return
	}
	if !bytes.HasPrefix(status, []byte("HTTP/1.1 200")) {
		p.err = fmt.Errorf("live stream: %s", bytes.TrimSpace(status))
		return
	}
	chunked := false
	for {
		h, err := br.ReadSlice('\n')
		if err != nil {
			p.err = fmt.Errorf("live stream headers: %w", err)
			return
		}
		if len(bytes.TrimSpace(h)) == 0 {
			break
		}
		if k, v, ok := bytes.Cut(h, []byte(":")); ok && strings.EqualFold(string(bytes.TrimSpace(k)), "transfer-encoding") &&
			bytes.Contains(bytes.ToLower(v), []byte("chunked")) {
			chunked = true
		}
	}
	var body io.Reader = br
	if chunked {
		body = httputil.NewChunkedReader(br)
	}
	lr := bufio.NewReaderSize(body, 4096)
	var acc []byte
	for {
		line, err := lr.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			// A long line: keep what the van's time needs, skip the rest.
			acc = append(acc[:0], line...)
			done := false
			for err == bufio.ErrBufferFull {
				if !done {
					_, _, done = vanTime(acc)
				}
				line, err = lr.ReadSlice('\n')
				if !done {
					acc = append(acc, line...)
				}
			}
			line = acc
		}
		if err != nil {
			if r.closing.Load() {
				return
			}
			if r.load.Load() && p.ready {
				r.ended.Add(1)
			}
			if p.err == nil {
				p.err = fmt.Errorf("live stream: %w", err)
			}
			return
		}
		if !bytes.HasPrefix(line, []byte("data:")) {
			continue
		}
		now := time.Now()
		r.frames.Add(1)
		r.bytes.Add(int64(len(line)))
		t, shown, ok := vanTime(line)
		if !ok || !shown {
			continue
		}
		if !p.ready {
			p.ready = true
			r.ready.Add(1)
			_ = conn.SetDeadline(time.Time{})
			signal()
			continue
		}
		p.saw(t, now, r)
	}
}

// saw records the van's load pings that a frame of van time t, arrived
// at now, shows.
func (p *trackPage) saw(t int64, now time.Time, r *trackRun) {
	v := p.van
	v.mu.RLock()
	defer v.mu.RUnlock()
	first := true
	for p.next < len(v.pings) && v.pings[p.next].t <= t {
		pg := v.pings[p.next]
		p.seen = append(p.seen, trackSeen{k: int32(p.next), lat: now.Sub(pg.posted), coalesced: !first || pg.t != t})
		p.next++
		first = false
		if !pg.void {
			r.walked.Add(1)
		}
	}
}

// vanTime finds the van of the view in an update's data line: its time
// (Unix seconds) and shown=true, shown=false for "van":null; ok=false
// when the line does not hold it (yet).
func vanTime(line []byte) (t int64, shown, ok bool) {
	i := bytes.Index(line, []byte(`"view":{`))
	if i < 0 {
		return 0, false, false
	}
	rest := line[i:]
	j := bytes.Index(rest, []byte(`"van":`))
	if j < 0 {
		return 0, false, false
	}
	rest = rest[j+len(`"van":`):]
	if bytes.HasPrefix(rest, []byte("null")) {
		return 0, false, true
	}
	k := bytes.Index(rest, []byte(`"time":`))
	if k < 0 {
		return 0, false, false
	}
	rest = rest[k+len(`"time":`):]
	e := 0
	for e < len(rest) && rest[e] >= '0' && rest[e] <= '9' {
		e++
	}
	if e == 0 || e == len(rest) {
		return 0, false, false // the number may go on in the next read
	}
	t, err := strconv.ParseInt(string(rest[:e]), 10, 64)
	if err != nil || t > math.MaxInt64/2 {
		return 0, false, false
	}
	return t, true, true
}
