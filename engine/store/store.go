// Package store keeps the product layer's durable state (API keys,
// shipments, day plans, stops, vehicle pings and the event log) in SQLite
// or PostgreSQL behind one type, Store. It holds plain SQL per entity and
// no business rules: the dispatch package decides what to write.
//
// Guarantees:
//   - Every write happens inside Store.Tx; a transaction that returned nil
//     is committed and durable (SQLite in WAL mode with synchronous=FULL;
//     PostgreSQL with its default synchronous_commit=on), so a caller may
//     acknowledge it.
//   - Events queued with Tx.Emit get their per-shipment sequence number and
//     their global cursor at commit, in commit order: a reader that has seen
//     cursor c never later sees a new event below c (the cursor counter is
//     one row locked until commit on PostgreSQL; SQLite has one writer).
//   - Personal data (recipient name, phone, e-mail, address text,
//     instructions) is sealed with the Ring before it reaches the database
//     and opened after it is read, each field bound to its shipment and
//     column.
//
// The schema is one ordered list of migrations (migrations.go) applied at
// Open; several PostgreSQL replicas migrating at once serialize on an
// advisory lock.
package store

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"
	_ "modernc.org/sqlite"             // database/sql driver "sqlite" (pure Go)

	"github.com/lastmile/lastmile/engine/seal"
)

// ErrNotFound is returned when a looked-up row does not exist.
var ErrNotFound = errors.New("store: not found")

// ErrExists is returned when an insert conflicts with a unique key
// (a tracking number, an API key).
var ErrExists = errors.New("store: already exists")

// Dialect names the database behind a Store.
type Dialect int

const (
	// SQLite is the embedded default (modernc.org/sqlite, a file in the
	// data folder).
	SQLite Dialect = iota
	// Postgres is PostgreSQL (github.com/jackc/pgx/v5), for several
	// replicas sharing one database.
	Postgres
)

func (d Dialect) String() string {
	if d == Postgres {
		return "postgres"
	}
	return "sqlite"
}

// Store is the durable state of the product layer. It is safe for
// concurrent use. On SQLite all writes go through one connection (SQLite
// has one writer; queueing them in Go avoids busy retries) and reads
// through a small pool; on PostgreSQL both share one pool.
type Store struct {
	dialect Dialect
	rdb     *sql.DB // reads outside transactions
	wdb     *sql.DB // transactions
	// group queues SQLite's transactions for its one writer connection
	// and commits them in groups, in the order they asked (group.go; nil
	// on PostgreSQL).
	group *groupCommit
	ring  *seal.Ring
	// Prepared statements by SQL text, on SQLite (pgx caches its own):
	// parsing a statement costs more than running most of ours.
	rstmts, wstmts stmtCache
	// fanout queues the deliveries of a transaction's events before it
	// commits; onCommit hears of them after (both set once before use).
	fanout   Fanout
	onCommit []func([]Event)
	// webhookFanout turns events into webhook deliveries as they are
	// queued (queue.go; set once before use).
	webhookFanout WebhookFanout
	urgentTypes   []string
	// movePage is the rows migration 13 reads at a time (movePings).
	movePage int
}

// Options configure Open.
type Options struct {
	// Ring seals personal data (required).
	Ring *seal.Ring
	// MaxConns caps PostgreSQL connections (default 16) and SQLite read
	// connections (default 4).
	MaxConns int
	// schema, when positive, stops the migrations at that version (tests
	// of a migration on an older database); movePage, when positive,
	// replaces movePings's page size (tests of its paging).
	schema   int
	movePage int
}

// Open opens the store named by dsn, creating and migrating it as needed:
// a "postgres://" or "postgresql://" URL is a PostgreSQL database, anything
// else the path of an SQLite file (its folder is created).
func Open(ctx context.Context, dsn string, opt Options) (*Store, error) {
	if opt.Ring == nil {
		return nil, errors.New("store: a key ring is needed to seal personal data")
	}
	s := &Store{ring: opt.Ring}
	var err error
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		s.dialect = Postgres
		if s.wdb, err = sql.Open("pgx", dsn); err != nil {
			return nil, fmt.Errorf("store: open postgres: %w", err)
		}
		n := opt.MaxConns
		if n <= 0 {
			n = 16
		}
		s.wdb.SetMaxOpenConns(n)
		s.wdb.SetMaxIdleConns(n)
		s.rdb = s.wdb
	} else {
		if err := os.MkdirAll(filepath.Dir(dsn), 0o700); err != nil {
			return nil, fmt.Errorf("store: %w", err)
		}
		// Create the file private: it holds sealed personal data and key
		// hashes, and SQLite gives its -wal and -shm files the same mode.
		f, err := os.OpenFile(dsn, os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			return nil, fmt.Errorf("store: %w", err)
		}
		f.Close()
		// WAL: readers do not block the writer; synchronous=FULL: a
		// committed transaction survives a power cut, not only a crash.
		// Foreign keys are checked; a busy reader waits up to 10 s. A
		// 64 MB page cache per connection (default 2 MB) and statement
		// journals in memory; the log is checkpointed into the database
		// every 10,000 pages (40 MB) instead of 1,000, so that the pages
		// every batch of pings rewrites (vehicles, stops, indexes) are
		// copied into the file less often. Measured with `lastmile bench
		// ingest` (bench/RESULTS.md): checkpoints 4.2 % -> 1.6 % of the CPU.
		base := "file:" + dsn + "?_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=foreign_keys(1)&_pragma=busy_timeout(10000)&_pragma=cache_size(-65536)&_pragma=temp_store(MEMORY)&_pragma=wal_autocheckpoint(10000)"
		if s.wdb, err = sql.Open("sqlite", base+"&_txlock=immediate"); err != nil {
			return nil, fmt.Errorf("store: open %s: %w", dsn, err)
		}
		s.wdb.SetMaxOpenConns(1)
		s.wdb.SetConnMaxLifetime(0)
		s.group = &groupCommit{}
		if s.rdb, err = sql.Open("sqlite", base+"&_pragma=query_only(1)"); err != nil {
			s.wdb.Close()
			return nil, fmt.Errorf("store: open %s: %w", dsn, err)
		}
		n := opt.MaxConns
		if n <= 0 {
			n = 4
		}
		// Idle readers are kept, all of them: database/sql keeps two by
		// default, and with four busy it closed and reopened connections
		// under load (bench ingest: 2 % of the CPU in opening, preparing
		// statements again and closing, each new connection's cache cold).
		s.rdb.SetMaxOpenConns(n)
		s.rdb.SetMaxIdleConns(n)
	}
	if err := s.wdb.PingContext(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("store: connect %s: %w", s.dialect, err)
	}
	s.movePage = cmp.Or(opt.movePage, movePage)
	if err := s.migrate(ctx, opt.schema); err != nil {
		s.Close()
		return nil, err
	}
	if s.dialect == SQLite {
		s.rstmts = stmtCache{on: true, stmts: map[string]*sql.Stmt{}}
		s.wstmts = stmtCache{on: true, stmts: map[string]*sql.Stmt{}}
	}
	return s, nil
}

// Dialect reports which database is behind s.
func (s *Store) Dialect() Dialect { return s.dialect }

// Close closes the connections.
func (s *Store) Close() error {
	s.rstmts.close()
	s.wstmts.close()
	var errs []error
	if s.wdb != nil {
		errs = append(errs, s.wdb.Close())
	}
	if s.rdb != nil && s.rdb != s.wdb {
		errs = append(errs, s.rdb.Close())
	}
	return errors.Join(errs...)
}

// querier is what reads need: a *sql.DB or a *sql.Tx.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// Tx is one transaction. Its methods write and read within it; rows read
// with a lock (the Lock* methods) stay locked until it ends on PostgreSQL.
type Tx struct {
	s      *Store
	tx     *sql.Tx
	ctx    context.Context
	events []Event // queued by Emit, written at commit
	// Committed holds the events written, with their cursors and sequence
	// numbers, once Tx returns nil.
	committed []Event
	// heads are the ping chain heads of the vehicles this transaction
	// locked (LockVehicle), kept current by InsertPings.
	heads map[string]pingHead
}

// maxTxAttempts bounds the retries of a transaction that failed on a
// serialization failure or a deadlock (PostgreSQL).
const maxTxAttempts = 8

// Tx runs f in a transaction and commits it when f returns nil. On
// PostgreSQL a serialization failure or deadlock retries f from the start
// (f must not have effects outside the transaction). On SQLite f may
// share its transaction with other callers' (group commit, group.go),
// behind a savepoint of its own: it is rolled back alone when it fails,
// and Tx returns once the whole group committed. It returns the events
// the transaction emitted, with their cursors.
func (s *Store) Tx(ctx context.Context, f func(tx *Tx) error) ([]Event, error) {
	var err error
	for attempt := 0; attempt < maxTxAttempts; attempt++ {
		var evs []Event
		evs, err = s.tryTx(ctx, f)
		if err == nil {
			return evs, nil
		}
		if !retryable(err) {
			return nil, err
		}
		time.Sleep(time.Duration(attempt+1) * 5 * time.Millisecond)
	}
	return nil, err
}

func (s *Store) tryTx(ctx context.Context, f func(tx *Tx) error) (evs []Event, err error) {
	if s.group != nil {
		return s.groupTx(ctx, f)
	}
	sqlTx, err := s.wdb.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("store: begin: %w", err)
	}
	tx := &Tx{s: s, tx: sqlTx, ctx: ctx}
	ended := false
	defer func() {
		if !ended { // an error, or a panic in f
			_ = sqlTx.Rollback()
		}
	}()
	if err = f(tx); err != nil {
		return nil, err
	}
	if err = tx.flush(); err != nil {
		return nil, err
	}
	ended = true
	if err = sqlTx.Commit(); err != nil {
		return nil, fmt.Errorf("store: commit: %w", err)
	}
	if len(tx.committed) > 0 {
		for _, f := range s.onCommit {
			f(tx.committed)
		}
	}
	return tx.committed, nil
}

// retryable reports whether err is a PostgreSQL serialization failure
// (40001) or deadlock (40P01).
func retryable(err error) bool {
	var c interface{ SQLState() string }
	if errors.As(err, &c) {
		switch c.SQLState() {
		case "40001", "40P01":
			return true
		}
	}
	return false
}

// uniqueViolation reports whether err is a unique-constraint failure.
func uniqueViolation(err error) bool {
	if err == nil {
		return false
	}
	var c interface{ SQLState() string }
	if errors.As(err, &c) {
		return c.SQLState() == "23505"
	}
	// modernc.org/sqlite: SQLITE_CONSTRAINT_UNIQUE / PRIMARYKEY.
	msg := err.Error()
	return strings.Contains(msg, "UNIQUE constraint failed") || strings.Contains(msg, "PRIMARY KEY constraint failed")
}

// forUpdate is the row-locking suffix of a SELECT: PostgreSQL locks the
// rows until the transaction ends; SQLite's single writer already
// serializes transactions.
func (tx *Tx) forUpdate() string {
	if tx.s.dialect == Postgres {
		return " FOR UPDATE"
	}
	return ""
}

func (tx *Tx) q() querier {
	return cachedQuerier{db: tx.s.wdb, tx: tx.tx, cache: &tx.s.wstmts}
}

// r is the querier of reads outside transactions.
func (s *Store) r() querier { return cachedQuerier{db: s.rdb, cache: &s.rstmts} }

// stmtCache holds prepared statements by SQL text (nil map: caching off).
type stmtCache struct {
	mu    sync.Mutex
	on    bool
	stmts map[string]*sql.Stmt
	wg    sync.WaitGroup // background prepares
}

// maxCachedStmts bounds a cache; statements beyond run unprepared.
const maxCachedStmts = 4000

// get returns the statement of q prepared on db, or nil the first times:
// then it is prepared in the background, once db has a free connection
// (the writer's one connection is held by the transaction asking, so
// preparing now would wait for itself), and q runs unprepared meanwhile.
func (c *stmtCache) get(db *sql.DB, q string) *sql.Stmt {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.on {
		return nil
	}
	if st, ok := c.stmts[q]; ok {
		return st // nil while being prepared
	}
	if len(c.stmts) >= maxCachedStmts {
		return nil
	}
	c.stmts[q] = nil
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		st, err := db.Prepare(q)
		c.mu.Lock()
		defer c.mu.Unlock()
		switch {
		case err != nil && c.on:
			delete(c.stmts, q) // runs unprepared, with its error, and is tried again
		case err != nil:
		case c.on:
			c.stmts[q] = st
		default:
			st.Close() // the store closed meanwhile
		}
	}()
	return nil
}

// close closes the statements once the background prepares are done
// (one still opening a connection would recreate the database's -wal and
// -shm files after the store closed).
func (c *stmtCache) close() {
	c.mu.Lock()
	c.on = false
	c.mu.Unlock()
	c.wg.Wait()
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, st := range c.stmts {
		if st != nil {
			st.Close()
		}
	}
	c.stmts = nil
	c.on = false
}

// cachedQuerier runs statements prepared once per SQL text, in tx when
// set (database/sql reuses the statement of the transaction's connection).
type cachedQuerier struct {
	db    *sql.DB
	tx    *sql.Tx
	cache *stmtCache
}

func (c cachedQuerier) stmt(ctx context.Context, q string) *sql.Stmt {
	st := c.cache.get(c.db, q)
	if st != nil && c.tx != nil {
		st = c.tx.StmtContext(ctx, st)
	}
	return st
}

func (c cachedQuerier) plain() querier {
	if c.tx != nil {
		return c.tx
	}
	return c.db
}

func (c cachedQuerier) QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	if st := c.stmt(ctx, q); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return c.plain().QueryContext(ctx, q, args...)
}

func (c cachedQuerier) QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row {
	if st := c.stmt(ctx, q); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return c.plain().QueryRowContext(ctx, q, args...)
}

func (c cachedQuerier) ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error) {
	if st := c.stmt(ctx, q); st != nil {
		return st.ExecContext(ctx, args...)
	}
	return c.plain().ExecContext(ctx, q, args...)
}

// nullString maps "" to NULL.
func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// values builds one multi-row statement: head, then n rows of cols
// placeholders (row), then tail; add appends the cols values of row i to
// args and returns them.
func (s *Store) values(head string, n, cols int, tail string, add func(i int, args []any) []any) (string, []any) {
	var b strings.Builder
	args := make([]any, 0, n*cols)
	b.WriteString(head)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		s.row(&b, len(args), cols)
		args = add(i, args)
	}
	b.WriteString(tail)
	return b.String(), args
}

// row writes a row of a multi-row VALUES list (or an IN list): n
// placeholders for the arguments first+1 to first+n, each wrapped in
// casts[i] when given (a "%s" format such as "CAST(%s AS BIGINT)").
// PostgreSQL gets $k; SQLite gets anonymous "?", because SQLite looks
// each named parameter's name up in a list, so that binding n named ones
// costs n² (3 % of ingest's CPU with statements of hundreds of
// parameters). The statement must use no other parameter, and its rows
// must come in argument order.
func (s *Store) row(b *strings.Builder, first, n int, casts ...string) {
	b.WriteByte('(')
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		ph := "?"
		if s.dialect == Postgres {
			ph = "$" + strconv.Itoa(first+i+1)
		}
		if i < len(casts) && casts[i] != "" {
			// casts[i] wraps the placeholder: "CAST(%s AS BIGINT)".
			pre, post, _ := strings.Cut(casts[i], "%s")
			b.WriteString(pre)
			b.WriteString(ph)
			b.WriteString(post)
			continue
		}
		b.WriteString(ph)
	}
	b.WriteByte(')')
}

// nullInt maps 0 to NULL.
func nullInt(v int64) any {
	if v == 0 {
		return nil
	}
	return v
}
