package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/lastmile/lastmile/engine/seal"
)

// RestartConfig configures Restart.
type RestartConfig struct {
	// Binary is the lastmile executable to start (`serve`).
	Binary string
	// Graph is the prepared graph (.lmg) the server loads.
	Graph string
	// State is a state folder (lastmile.db, data.key), for instance one
	// kept by `lastmile bench ingest --keep`; each run starts on a fresh
	// copy of it, as a server killed with it would find it.
	State string
	// Vehicle is the van read and pinged (default "van-1").
	Vehicle string
	// Runs is how many restarts are timed (default 5).
	Runs int
	// Poll is the time between a client's attempts (default 10 ms).
	Poll time.Duration
	// Timeout bounds each run (default 60 s).
	Timeout time.Duration
	Logger  *slog.Logger
}

// RestartRun is one timed start, from the process start: Reads is when
// GET /v1/vehicles/{id} first answered 200, Pings when POST /v1/positions
// with a ping at the present time first did (a ping is acknowledged once
// it is stored and applied, so after the live traffic is warmed from the
// stored pings).
type RestartRun struct {
	Reads, Pings time.Duration
}

// RestartResult is what Restart measured.
type RestartResult struct {
	Runs      []RestartRun
	StateSize int64 // bytes of the state folder copied for each run
}

// Restart times the start of `lastmile serve` on a day's state, cfg.Runs
// times: the server is started on a copy of the state, polled by this
// process (one client, one attempt per Poll, each on a new connection
// until the port listens) and killed with SIGKILL once a ping is accepted.
// The client runs in this process rather than as a command per attempt, so
// that it takes no CPU the server would need to start.
func Restart(ctx context.Context, cfg RestartConfig) (RestartResult, error) {
	if cfg.Vehicle == "" {
		cfg.Vehicle = "van-1"
	}
	if cfg.Runs <= 0 {
		cfg.Runs = 5
	}
	if cfg.Poll <= 0 {
		cfg.Poll = 10 * time.Millisecond
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = time.Minute
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	var res RestartResult
	for i := range cfg.Runs {
		dir, err := os.MkdirTemp("", "lastmile-restart-")
		if err != nil {
			return res, fmt.Errorf("bench: restart: %w", err)
		}
		n, err := copyDir(cfg.State, dir)
		if err == nil {
			res.StateSize = n
			var run RestartRun
			run, err = restartOnce(ctx, cfg, dir)
			if err == nil {
				res.Runs = append(res.Runs, run)
				cfg.Logger.Info("restart", "run", i+1, "reads", run.Reads, "pings", run.Pings)
			}
		}
		os.RemoveAll(dir)
		if err != nil {
			return res, fmt.Errorf("bench: restart run %d: %w", i+1, err)
		}
	}
	return res, nil
}

// restartOnce starts the server on dir and times it.
func restartOnce(ctx context.Context, cfg RestartConfig, dir string) (RestartRun, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return RestartRun{}, err
	}
	addr := ln.Addr().String()
	ln.Close()
	admin, _, _ := seal.NewAPIKey()
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	cmd := exec.Command(cfg.Binary, "serve", "--graph", cfg.Graph, "--state", dir, "--addr", addr, "--log-level", "warn")
	cmd.Env = append(os.Environ(), "LASTMILE_ADMIN_KEY="+admin)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		return RestartRun{}, err
	}
	defer func() {
		cmd.Process.Kill() // SIGKILL
		cmd.Wait()
	}()
	exited := make(chan struct{})
	go func() {
		cmd.Process.Wait()
		close(exited)
	}()
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Second}
	base := "http://" + addr
	var view struct {
		Location *[2]float64 `json:"location"`
	}
	call := func(method, path string, body []byte) int {
		req, err := http.NewRequestWithContext(ctx, method, base+path, bytes.NewReader(body))
		if err != nil {
			return 0
		}
		req.Header.Set("Authorization", "Bearer "+admin)
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := client.Do(req)
		if err != nil {
			return 0
		}
		defer resp.Body.Close()
		if method == "GET" && resp.StatusCode == http.StatusOK {
			if err := json.NewDecoder(resp.Body).Decode(&view); err != nil {
				return 0
			}
		}
		io.Copy(io.Discard, resp.Body)
		return resp.StatusCode
	}
	wait := func(what string, ok func() bool) (time.Duration, error) {
		for !ok() {
			select {
			case <-ctx.Done():
				return 0, fmt.Errorf("%s not served within %v: %s", what, cfg.Timeout, lastLines(stderr.String(), 5))
			case <-exited:
				return 0, fmt.Errorf("the server exited: %s", lastLines(stderr.String(), 5))
			case <-time.After(cfg.Poll):
			}
		}
		return time.Since(t0), nil
	}
	var run RestartRun
	if run.Reads, err = wait("GET /v1/vehicles/"+cfg.Vehicle, func() bool {
		return call("GET", "/v1/vehicles/"+cfg.Vehicle, nil) == http.StatusOK
	}); err != nil {
		return run, err
	}
	// A ping where the vehicle last was (Porto's centre if it has none),
	// at the present time.
	loc := [2]float64{-8.61, 41.15}
	if view.Location != nil {
		loc = *view.Location
	}
	run.Pings, err = wait("POST /v1/positions", func() bool {
		body, _ := json.Marshal(map[string]any{"positions": []map[string]any{{
			"vehicle": cfg.Vehicle, "time": float64(time.Now().UnixMilli()) / 1000, "location": loc}}})
		return call("POST", "/v1/positions", body) == http.StatusOK
	})
	return run, err
}

// copyDir copies the regular files of src into dst (one level: a state
// folder's database, its log and key; sub-folders such as blobs are not
// read at start) and returns the bytes copied.
func copyDir(src, dst string) (int64, error) {
	ents, err := os.ReadDir(src)
	if err != nil {
		return 0, err
	}
	var n int64
	for _, e := range ents {
		if !e.Type().IsRegular() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			return n, err
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, fs.FileMode(0o600)); err != nil {
			return n, err
		}
		n += int64(len(b))
	}
	return n, nil
}

// lastLines returns the last n lines of s.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], " | ")
}

// WriteRestart prints one line per run and the summary line
// "restart: runs N reads p50 X max Y pings p50 X max Y".
func WriteRestart(w io.Writer, r RestartResult) {
	var reads, pings []time.Duration
	fmt.Fprintf(w, "state: %.1f MB copied for each run\n", float64(r.StateSize)/1e6)
	for i, run := range r.Runs {
		fmt.Fprintf(w, "run %d: reads %.2f s, pings %.2f s\n", i+1, run.Reads.Seconds(), run.Pings.Seconds())
		reads, pings = append(reads, run.Reads), append(pings, run.Pings)
	}
	if len(r.Runs) == 0 {
		return
	}
	slices.Sort(reads)
	slices.Sort(pings)
	fmt.Fprintf(w, "restart: runs %d reads p50 %.2fs max %.2fs pings p50 %.2fs max %.2fs\n", len(r.Runs),
		reads[len(reads)/2].Seconds(), reads[len(reads)-1].Seconds(), pings[len(pings)/2].Seconds(), pings[len(pings)-1].Seconds())
}
