package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// groupCommit runs SQLite's transactions in groups: callers queue their
// transaction bodies in arrival order, and one of them at a time (the
// leader) runs the head of the queue, up to maxGroup bodies, in one
// database transaction with a savepoint around each, then commits once.
// A body that fails is rolled back to its savepoint alone; the others
// commit. SQLite has one writer, so the bodies would have run one after
// another anyway: grouping them shares the commit (its page writes and
// its fsync) and lets a caller that arrives while a group runs wait for
// one group, not for every transaction queued before it. The queue also
// keeps the callers' order, which database/sql alone does not: it hands
// a freed connection to a random waiter (connRequestSet.TakeRandom), and
// under load some requests waited many turns while later ones went first.
//
// Invariants: the queue is not empty only while leading is true; the
// leader's own job is the head of the queue when it starts a group (the
// first caller finds the queue empty; a promoted one is woken as the
// head); each job is finished (done set) exactly once, before its caller
// is woken.
type groupCommit struct {
	mu      sync.Mutex
	queue   []*txJob
	leading bool
	// commits counts the groups committed, bodies the bodies in them;
	// busy is the writer's wall time in groups and commit the part in
	// COMMIT (its page writes and fsync), in nanoseconds.
	commits, bodies, busy, commit atomic.Int64
}

// txJob is one caller's transaction body in the group queue.
type txJob struct {
	ctx   context.Context
	f     func(*Tx) error
	evs   []Event
	err   error
	panic any  // what f panicked with, raised again in its caller
	done  bool // finished; false when woken to lead
	wake  chan struct{}
}

// maxGroup is the most transaction bodies committed together: a group
// of one-vehicle ping batches is then still a few milliseconds.
const maxGroup = 32

// errGroupLost is the error of the bodies of a group that could not go on
// after another body's failure ended the whole transaction.
var errGroupLost = errors.New("store: the group's transaction ended with another body's failure")

// groupTx runs f in the next group and returns its events once the group
// committed.
func (s *Store) groupTx(ctx context.Context, f func(*Tx) error) ([]Event, error) {
	g := s.group
	job := &txJob{ctx: ctx, f: f, wake: make(chan struct{}, 1)}
	g.mu.Lock()
	g.queue = append(g.queue, job)
	lead := !g.leading
	g.leading = true
	g.mu.Unlock()
	if !lead {
		<-job.wake
	}
	if !job.done {
		s.leadGroup()
	}
	if job.panic != nil {
		panic(job.panic)
	}
	return job.evs, job.err
}

// leadGroup runs the head of the queue as one group, wakes its callers
// and hands the lead to the next queued job's caller, or gives it up.
func (s *Store) leadGroup() {
	g := s.group
	g.mu.Lock()
	n := min(len(g.queue), maxGroup)
	jobs := make([]*txJob, n)
	copy(jobs, g.queue)
	g.queue = append(g.queue[:0], g.queue[n:]...)
	g.mu.Unlock()

	t0 := time.Now()
	s.runGroup(jobs)
	g.busy.Add(int64(time.Since(t0)))

	g.mu.Lock()
	var next *txJob
	if len(g.queue) > 0 {
		next = g.queue[0]
	} else {
		g.leading = false
	}
	g.mu.Unlock()
	for i, j := range jobs {
		j.done = true
		if i > 0 { // jobs[0] is the leader's own
			j.wake <- struct{}{}
		}
	}
	if next != nil {
		next.wake <- struct{}{}
	}
}

// runGroup runs jobs in one transaction, each after a savepoint when
// there are several, and commits the ones that succeeded. The bodies'
// statements run without their callers' cancellation: interrupting a
// write would roll back the whole transaction (sqlite3_interrupt), the
// other bodies' work included. A cancelled caller's body is not started.
func (s *Store) runGroup(jobs []*txJob) {
	fail := func(err error) {
		for _, j := range jobs {
			if j.err == nil && j.panic == nil {
				j.err, j.evs = err, nil
			}
		}
	}
	sqlTx, err := s.wdb.BeginTx(context.Background(), nil)
	if err != nil {
		fail(fmt.Errorf("store: begin: %w", err))
		return
	}
	save := len(jobs) > 1
	ok := 0
	for _, j := range jobs {
		if err := j.ctx.Err(); err != nil {
			j.err = fmt.Errorf("store: begin: %w", err)
			continue
		}
		tx := &Tx{s: s, tx: sqlTx, ctx: context.WithoutCancel(j.ctx)}
		if save {
			if _, err := tx.q().ExecContext(tx.ctx, "SAVEPOINT g"); err != nil {
				_ = sqlTx.Rollback()
				fail(fmt.Errorf("store: savepoint: %w", err))
				return
			}
		}
		if j.err = runBody(tx, j); j.err != nil {
			if !save {
				_ = sqlTx.Rollback()
				return
			}
			if _, err := tx.q().ExecContext(tx.ctx, "ROLLBACK TO g"); err != nil {
				_ = sqlTx.Rollback()
				fail(fmt.Errorf("%w: %w", errGroupLost, err))
				return
			}
		} else {
			j.evs = tx.committed
			ok++
		}
		if save {
			if _, err := tx.q().ExecContext(tx.ctx, "RELEASE g"); err != nil {
				_ = sqlTx.Rollback()
				fail(fmt.Errorf("%w: %w", errGroupLost, err))
				return
			}
		}
	}
	if ok == 0 {
		_ = sqlTx.Rollback()
		return
	}
	t0 := time.Now()
	err = sqlTx.Commit()
	s.group.commit.Add(int64(time.Since(t0)))
	if err != nil {
		fail(fmt.Errorf("store: commit: %w", err))
		return
	}
	s.group.commits.Add(1)
	s.group.bodies.Add(int64(ok))
	for _, j := range jobs {
		if j.err == nil && j.panic == nil && len(j.evs) > 0 {
			for _, f := range s.onCommit {
				f(j.evs)
			}
		}
	}
}

// runBody runs a job's body and writes its events; a panic in the body
// becomes the job's panic (raised again in its caller) and an error here.
func runBody(tx *Tx, j *txJob) (err error) {
	defer func() {
		if p := recover(); p != nil {
			j.panic = p
			err = fmt.Errorf("store: transaction body panicked: %v", p)
		}
	}()
	if err := j.f(tx); err != nil {
		return err
	}
	return tx.flush()
}

// WriterStats are the cumulative figures of SQLite's writer.
type WriterStats struct {
	// Commits is the transactions committed, Bodies the Tx calls they held.
	Commits, Bodies int64
	// Busy is the wall time the writer spent running groups, Commit the
	// part of it in COMMIT (page writes and fsync).
	Busy, Commit time.Duration
}

// Writer returns the writer's figures; zero on PostgreSQL.
func (s *Store) Writer() WriterStats {
	g := s.group
	if g == nil {
		return WriterStats{}
	}
	return WriterStats{Commits: g.commits.Load(), Bodies: g.bodies.Load(), Busy: time.Duration(g.busy.Load()), Commit: time.Duration(g.commit.Load())}
}
