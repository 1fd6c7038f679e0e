package engine

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// Asynchronous solves (POST /v1/solve with "async": true, GET and DELETE
// /v1/jobs/{id}).
//
// A job is queued on submission and run, in submission order, in one of
// JobWorkers slots of its own pool, outside the MaxComputations slots of
// routes and tables, so that a batch solve does not starve the routing
// endpoints. At most MaxJobs jobs are queued or running at once; a
// submission beyond is refused with 429 TooManyJobs. A finished job (done
// or failed) stays readable for JobTTL, and at most MaxFinishedJobs
// finished jobs are kept (the oldest are dropped first); expired jobs are
// dropped lazily, on the next request touching the job table.
//
// Cancellation: DELETE of a queued or running job cancels it (the solver
// stops at its next check, every 32 iterations) and the job ends failed
// with code Cancelled; DELETE of a finished job removes it. Server.Shutdown
// cancels every queued and running job the same way, refuses new ones with
// 503 NotReady, and waits (within its context) for the job goroutines to
// return, so that none outlives the server.

// Job statuses, as GET /v1/jobs/{id} reports them.
const (
	jobQueued  = "queued"
	jobRunning = "running"
	jobDone    = "done"
	jobFailed  = "failed"
)

// solveFunc runs one solve under ctx, reporting progress, and returns the
// encoded solution.
type solveFunc func(ctx context.Context, progress func(iterations int64, unassigned int, cost int64)) ([]byte, error)

// job is one asynchronous solve. The fields under mu change as it runs.
type job struct {
	id      string
	created time.Time
	limit   time.Duration // the solver's time limit, for the progress report
	ctx     context.Context
	cancel  context.CancelCauseFunc
	solve   solveFunc
	start   chan struct{} // closed when the job is given a worker slot

	mu       sync.Mutex
	status   string
	started  time.Time
	finished time.Time
	progress jobProgress
	solution []byte // VROOM output when done
	err      *Error // when failed
}

// jobProgress is the cheap progress report of a running job: the solver
// reports after every epoch of search (20000 iterations).
type jobProgress struct {
	// Elapsed seconds since the job started and its time limit.
	Elapsed   float64 `json:"elapsed"`
	TimeLimit float64 `json:"time_limit"`
	// Iterations per worker, unassigned tasks and cost of the best
	// solution at the last epoch (absent before the first one).
	Iterations *int64 `json:"iterations,omitempty"`
	Unassigned *int   `json:"unassigned,omitempty"`
	Cost       *int64 `json:"cost,omitempty"`
}

// jobView is the JSON answer of GET /v1/jobs/{id} (schema Job).
type jobView struct {
	ID       string          `json:"id"`
	Status   string          `json:"status"`
	Location string          `json:"location"`
	Progress *jobProgress    `json:"progress,omitempty"`
	Solution json.RawMessage `json:"solution,omitempty"`
	Error    *jobError       `json:"error,omitempty"`
	Created  time.Time       `json:"created"`
	Started  *time.Time      `json:"started,omitempty"`
	Finished *time.Time      `json:"finished,omitempty"`
	Expires  *time.Time      `json:"expires,omitempty"`
}

type jobError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// jobAccepted is the 202 answer of an asynchronous POST /v1/solve.
type jobAccepted struct {
	ID       string `json:"id"`
	Status   string `json:"status"`
	Location string `json:"location"`
}

// jobsPath is the prefix of a job's URL.
const jobsPath = "/v1/jobs/"

// jobQueue holds the jobs of a server: a map by id, the finished ones in
// finishing order (for TTL and count eviction), JobWorkers slots given to
// the queued jobs first in, first out, and a wait group over job
// goroutines for shutdown.
//
// Invariant (under mu): free > 0 only when waiting is empty.
type jobQueue struct {
	maxJobs, maxFinished int
	ttl                  time.Duration
	log                  *slog.Logger

	mu       sync.Mutex
	jobs     map[string]*job
	finished []*job // oldest first
	pending  int    // queued + running
	closed   bool
	waiting  []*job // queued, oldest first
	free     int    // worker slots not held by a job

	wg sync.WaitGroup

	queued, running atomic.Int64
	done, failed    atomic.Uint64
	syncSolves      solveHistogram
	asyncSolves     solveHistogram
}

func newJobQueue(cfg ServerConfig, log *slog.Logger) *jobQueue {
	return &jobQueue{
		maxJobs: cfg.MaxJobs, maxFinished: cfg.MaxFinishedJobs, ttl: cfg.JobTTL, log: log,
		jobs: map[string]*job{}, free: cfg.JobWorkers,
	}
}

// newJobID returns 128 random bits from crypto/rand in hex: ids are
// unguessable, so a job is readable only by whoever submitted it (or was
// given its id).
func newJobID() string {
	var b [16]byte
	rand.Read(b[:]) // never fails (crypto/rand panics rather than return short)
	return hex.EncodeToString(b[:])
}

// submit queues a solve and starts its goroutine, or refuses it when the
// queue is full (TooManyJobs) or the server is shutting down (NotReady).
func (q *jobQueue) submit(limit time.Duration, solve solveFunc) (*job, error) {
	now := time.Now()
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return nil, &Error{"NotReady", "shutting down: no new jobs"}
	}
	q.sweepLocked(now)
	if q.pending >= q.maxJobs {
		return nil, &Error{"TooManyJobs", fmt.Sprintf("%d jobs queued or running, at most %d: retry later", q.pending, q.maxJobs)}
	}
	ctx, cancel := context.WithCancelCause(context.Background())
	j := &job{id: newJobID(), created: now, limit: limit, ctx: ctx, cancel: cancel, solve: solve, status: jobQueued, start: make(chan struct{})}
	for q.jobs[j.id] != nil { // 2^-128: never, but cheap to rule out
		j.id = newJobID()
	}
	q.jobs[j.id] = j
	q.pending++
	q.queued.Add(1)
	q.waiting = append(q.waiting, j)
	q.dispatchLocked()
	q.wg.Add(1)
	go q.run(j)
	return j, nil
}

// dispatchLocked gives the free worker slots to the oldest queued jobs.
func (q *jobQueue) dispatchLocked() {
	for q.free > 0 && len(q.waiting) > 0 {
		j := q.waiting[0]
		q.waiting[0] = nil
		q.waiting = q.waiting[1:]
		q.free--
		close(j.start)
	}
}

// release returns a worker slot, which goes to the oldest queued job.
func (q *jobQueue) release() {
	q.mu.Lock()
	q.free++
	q.dispatchLocked()
	q.mu.Unlock()
}

// unqueue removes j from the waiting list and reports whether it was
// there; false means it has been given a slot.
func (q *jobQueue) unqueue(j *job) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	for i, w := range q.waiting {
		if w == j {
			q.waiting = append(q.waiting[:i], q.waiting[i+1:]...)
			return true
		}
	}
	return false
}

// run waits for a worker slot (jobs get them in submission order), solves
// and records the outcome.
func (q *jobQueue) run(j *job) {
	defer q.wg.Done()
	select {
	case <-j.start:
	case <-j.ctx.Done():
		if q.unqueue(j) {
			q.queued.Add(-1)
			q.finish(j, nil, cancelled(j.ctx))
			return
		}
		<-j.start // given a slot as it was cancelled: the check below ends it
	}
	defer q.release()
	q.queued.Add(-1)
	if j.ctx.Err() != nil {
		q.finish(j, nil, cancelled(j.ctx))
		return
	}
	q.running.Add(1)
	defer q.running.Add(-1)
	j.mu.Lock()
	j.status, j.started = jobRunning, time.Now()
	j.mu.Unlock()
	res, err := q.safeSolve(j)
	if j.ctx.Err() != nil {
		res, err = nil, cancelled(j.ctx)
	}
	q.finish(j, res, err)
}

// safeSolve runs the job's solve, turning a panic into an InternalError.
func (q *jobQueue) safeSolve(j *job) (res []byte, err error) {
	defer func() {
		if p := recover(); p != nil {
			q.log.Error("panic in job", "job", j.id, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			res, err = nil, &Error{"InternalError", "internal error"}
		}
	}()
	j.mu.Lock()
	solve := j.solve
	j.mu.Unlock()
	return solve(j.ctx, func(it int64, un int, cost int64) {
		j.mu.Lock()
		j.progress.Iterations, j.progress.Unassigned, j.progress.Cost = &it, &un, &cost
		j.mu.Unlock()
	})
}

// cancelled is the error of a job whose context was cancelled.
func cancelled(ctx context.Context) *Error {
	var e *Error
	if errors.As(context.Cause(ctx), &e) {
		return e
	}
	return &Error{"Cancelled", "cancelled"}
}

// finish records the outcome of j and moves it to the finished list.
func (q *jobQueue) finish(j *job, res []byte, err error) {
	now := time.Now()
	j.mu.Lock()
	j.finished = now
	j.solve = nil // the problem and its matrices are no longer needed
	if err != nil {
		var e *Error
		if !errors.As(err, &e) {
			q.log.Error("job failed", "job", j.id, "err", err)
			e = &Error{"InternalError", "internal error"}
		}
		j.status, j.err = jobFailed, e
		q.failed.Add(1)
	} else {
		j.status, j.solution = jobDone, res
		q.done.Add(1)
	}
	j.mu.Unlock()
	j.cancel(nil) // release the context
	q.mu.Lock()
	q.pending--
	q.finished = append(q.finished, j)
	q.sweepLocked(now)
	q.mu.Unlock()
}

// sweepLocked drops finished jobs older than the TTL, and the oldest
// beyond MaxFinishedJobs.
func (q *jobQueue) sweepLocked(now time.Time) {
	n := 0
	for n < len(q.finished) {
		j := q.finished[n]
		j.mu.Lock()
		old := now.Sub(j.finished) >= q.ttl
		j.mu.Unlock()
		if !old && len(q.finished)-n <= q.maxFinished {
			break
		}
		if q.jobs[j.id] == j {
			delete(q.jobs, j.id)
		}
		n++
	}
	if n > 0 {
		clear(q.finished[:n])
		q.finished = q.finished[n:]
	}
}

// get returns the job of id, or nil.
func (q *jobQueue) get(id string) *job {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.sweepLocked(time.Now())
	return q.jobs[id]
}

// remove cancels a queued or running job, or forgets a finished one; it
// returns the job (nil when unknown).
func (q *jobQueue) remove(id string) *job {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.sweepLocked(time.Now())
	j := q.jobs[id]
	if j == nil {
		return nil
	}
	j.mu.Lock()
	st := j.status
	j.mu.Unlock()
	if st == jobDone || st == jobFailed {
		delete(q.jobs, id)
		return j
	}
	j.cancel(&Error{"Cancelled", "cancelled by DELETE " + jobsPath + id})
	return j
}

// shutdown refuses new jobs, cancels every queued and running one and
// waits until their goroutines have returned or ctx is done.
func (q *jobQueue) shutdown(ctx context.Context) error {
	q.mu.Lock()
	q.closed = true
	for _, j := range q.jobs {
		j.cancel(&Error{"Cancelled", "server shutting down"})
	}
	q.mu.Unlock()
	done := make(chan struct{})
	go func() {
		q.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("jobs still running: %w", ctx.Err())
	}
}

// view returns the job's state as GET /v1/jobs/{id} answers it.
func (q *jobQueue) view(j *job) *jobView {
	j.mu.Lock()
	defer j.mu.Unlock()
	v := &jobView{ID: j.id, Status: j.status, Location: jobsPath + j.id, Created: j.created.UTC()}
	if !j.started.IsZero() {
		st := j.started.UTC()
		v.Started = &st
	}
	switch j.status {
	case jobRunning:
		p := j.progress
		p.Elapsed = roundSeconds(time.Since(j.started))
		p.TimeLimit = roundSeconds(j.limit)
		v.Progress = &p
	case jobDone, jobFailed:
		fin, exp := j.finished.UTC(), j.finished.Add(q.ttl).UTC()
		v.Finished, v.Expires = &fin, &exp
		if j.err != nil {
			v.Error = &jobError{j.err.Code, j.err.Message}
		} else {
			v.Solution = j.solution
		}
	}
	return v
}

func roundSeconds(d time.Duration) float64 { return float64(d.Milliseconds()) / 1000 }

// solveBuckets are the upper bounds of the solve duration histogram, from
// 50 ms to 10 min (the default longest asynchronous solve).
var solveBuckets = []time.Duration{
	50 * time.Millisecond, 100 * time.Millisecond, 250 * time.Millisecond, 500 * time.Millisecond,
	time.Second, 2500 * time.Millisecond, 5 * time.Second, 10 * time.Second, 25 * time.Second,
	time.Minute, 150 * time.Second, 5 * time.Minute, 10 * time.Minute,
}

// solveHistogram counts solve durations (non-cumulative buckets, the last
// one for +Inf) and their sum.
type solveHistogram struct {
	buckets [14]atomic.Uint64 // len(solveBuckets)+1
	nanos   atomic.Uint64
}

func (h *solveHistogram) observe(d time.Duration) {
	b := len(solveBuckets)
	for k, ub := range solveBuckets {
		if d <= ub {
			b = k
			break
		}
	}
	h.buckets[b].Add(1)
	if d > 0 {
		h.nanos.Add(uint64(d))
	}
}

// appendMetrics appends the solve and job metrics in the Prometheus text
// format: lastmile_solve_duration_seconds{mode="sync|async"} (matrix,
// search and geometry of one solve), lastmile_jobs_queued,
// lastmile_jobs_running and lastmile_jobs_finished_total{status}.
func (q *jobQueue) appendMetrics(b []byte) []byte {
	b = append(b, "# HELP lastmile_solve_duration_seconds Time to compute one solve (matrix, search, geometry), by mode.\n"...)
	b = append(b, "# TYPE lastmile_solve_duration_seconds histogram\n"...)
	for _, h := range []struct {
		mode string
		h    *solveHistogram
	}{{"sync", &q.syncSolves}, {"async", &q.asyncSolves}} {
		var cum uint64
		for k := range h.h.buckets {
			cum += h.h.buckets[k].Load()
			le := "+Inf"
			if k < len(solveBuckets) {
				le = strconv.FormatFloat(solveBuckets[k].Seconds(), 'g', -1, 64)
			}
			b = append(b, `lastmile_solve_duration_seconds_bucket{mode="`...)
			b = append(b, h.mode...)
			b = append(b, `",le="`...)
			b = append(b, le...)
			b = append(b, `"} `...)
			b = strconv.AppendUint(b, cum, 10)
			b = append(b, '\n')
		}
		b = append(b, `lastmile_solve_duration_seconds_sum{mode="`...)
		b = append(b, h.mode...)
		b = append(b, `"} `...)
		b = strconv.AppendFloat(b, float64(h.h.nanos.Load())/1e9, 'g', -1, 64)
		b = append(b, "\nlastmile_solve_duration_seconds_count{mode=\""...)
		b = append(b, h.mode...)
		b = append(b, `"} `...)
		b = strconv.AppendUint(b, cum, 10)
		b = append(b, '\n')
	}
	b = append(b, "# HELP lastmile_jobs_queued Asynchronous solves waiting for a worker.\n# TYPE lastmile_jobs_queued gauge\nlastmile_jobs_queued "...)
	b = strconv.AppendInt(b, q.queued.Load(), 10)
	b = append(b, "\n# HELP lastmile_jobs_running Asynchronous solves running.\n# TYPE lastmile_jobs_running gauge\nlastmile_jobs_running "...)
	b = strconv.AppendInt(b, q.running.Load(), 10)
	b = append(b, "\n# HELP lastmile_jobs_finished_total Asynchronous solves finished, by status.\n# TYPE lastmile_jobs_finished_total counter\n"...)
	b = append(b, `lastmile_jobs_finished_total{status="done"} `...)
	b = strconv.AppendUint(b, q.done.Load(), 10)
	b = append(b, "\n"+`lastmile_jobs_finished_total{status="failed"} `...)
	b = strconv.AppendUint(b, q.failed.Load(), 10)
	return append(b, '\n')
}

// checkJobID rejects ids that newJobID cannot have made, so that a bad
// URL gets a clear message rather than a lookup.
func checkJobID(id []byte) error {
	if len(id) != 32 {
		return &Error{"NotFound", fmt.Sprintf("no job %q (ids are 32 hexadecimal digits)", clip(id, 40))}
	}
	for _, c := range id {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return &Error{"NotFound", fmt.Sprintf("no job %q (ids are 32 hexadecimal digits)", id)}
		}
	}
	return nil
}

// handleJobGet answers GET /v1/jobs/{id}: the job's status, progress while
// running, the solution when done, the error when failed.
func (s *Server) handleJobGet(ctx *fasthttp.RequestCtx, p pathParams) error {
	id := p.Get("id")
	if err := checkQuery(ctx.QueryArgs(), nil); err != nil {
		return err
	}
	if err := checkJobID(id); err != nil {
		return err
	}
	j := s.jobs.get(string(id))
	if j == nil {
		return &Error{"NotFound", fmt.Sprintf("no job %s (unknown, or finished more than %v ago)", id, s.cfg.JobTTL)}
	}
	return s.writeJSON(ctx, s.jobs.view(j))
}

// handleJobDelete answers DELETE /v1/jobs/{id}: a queued or running job is
// cancelled (it ends failed with code Cancelled and stays readable until it
// expires); a finished one is forgotten. The answer is the job as it was.
func (s *Server) handleJobDelete(ctx *fasthttp.RequestCtx, p pathParams) error {
	id := p.Get("id")
	if err := checkQuery(ctx.QueryArgs(), nil); err != nil {
		return err
	}
	if err := checkJobID(id); err != nil {
		return err
	}
	j := s.jobs.remove(string(id))
	if j == nil {
		return &Error{"NotFound", fmt.Sprintf("no job %s (unknown, or finished more than %v ago)", id, s.cfg.JobTTL)}
	}
	return s.writeJSON(ctx, s.jobs.view(j))
}
