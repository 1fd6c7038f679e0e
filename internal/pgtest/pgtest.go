// Package pgtest gives tests a real PostgreSQL server: a fresh, empty database
// per [DSN] call on a server that the test binary starts on loopback the
// first time it is needed and stops when its tests end.
//
// Use it from a package's TestMain:
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
//
//	func TestStore(t *testing.T) {
//		dsn := pgtest.DSN(t) // postgres://lastmile@127.0.0.1:PORT/pgtest_teststore_1a2b3c4d?sslmode=disable
//		...
//	}
//
// # The server
//
// The first DSN call of a test binary finds the PostgreSQL server binaries
// (`pg_config --bindir`, then the highest /usr/lib/postgresql/*/bin, then
// PATH), runs initdb into a new temporary directory (trust authentication,
// UTF8, locale C) and starts postgres listening on 127.0.0.1 only, on a free
// port, with its Unix socket inside that directory, shared_buffers=32MB,
// max_connections=100 and timezone UTC. fsync, synchronous_commit and
// full_page_writes keep their durable defaults, so durability tests mean what
// they say (only initdb's own final flush of the throwaway cluster is skipped
// with --no-sync). Each test binary has its own server, port and directory,
// so the packages of `go test ./...` run side by side. The server's log
// (and initdb's output) is postgres.log in that directory; its tail is part
// of every start or failure message.
//
// PostgreSQL refuses to run as root: when the tests run as root, initdb and
// postgres run as the "postgres" system user (which Debian's postgresql
// package creates) and the temporary directory is handed to it.
//
// Databases are created for the role "lastmile" (LOGIN, not a superuser),
// which owns them: store code runs with an owner's rights, as in production.
// They are copies of template0 (UTF8, collation C) and are dropped with
// DROP DATABASE ... WITH (FORCE) when the test ends.
//
// # Stopping
//
// [Main] (or [Run]) stops the server after the tests, also when m.Run panics
// and on SIGINT, SIGTERM and SIGHUP (the signal is re-raised afterwards).
// Stopping sends SIGQUIT to the postmaster (PostgreSQL's immediate shutdown:
// it terminates its backends first), waits for it, kills it with SIGKILL
// after 10 s, and removes the directory.
//
// Paths that run no deferred code (a test that panics, os.Exit, the -timeout
// panic, SIGKILL) are covered by a safety net: the postmaster is started
// directly (not through pg_ctl) as a child of the test process with
// Pdeathsig=SIGQUIT, from a goroutine that keeps its OS thread locked for the
// postmaster's lifetime, so the kernel shuts the server down as soon as the
// test process dies, whatever the reason. Backends notice the postmaster's
// death by themselves. What such a death leaves behind is the temporary
// directory; the next start removes directories of test processes that no
// longer exist.
//
// # Absent PostgreSQL
//
// When no binaries are found, or the server cannot be initialised or started,
// DSN skips the test with a message saying what is missing. Set
// LASTMILE_TEST_POSTGRES_REQUIRED=1 (as CI does) to make that a failure.
// A server that started and later breaks always fails the test.
//
// # An existing server
//
// Set LASTMILE_TEST_POSTGRES to the connection string of an existing server
// (URL or key=value form) to use it instead: DSN still creates and drops a
// fresh database per call there, with that user (who needs CREATEDB) as owner.
// A server named there that does not answer fails the tests instead of
// skipping them.
package pgtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"os/user"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

const (
	// EnvServer names the environment variable holding the connection
	// string of an existing server to use instead of starting one.
	EnvServer = "LASTMILE_TEST_POSTGRES"
	// EnvRequired names the environment variable that, set to a non-empty
	// value other than 0 or false, turns skips for a missing or unstartable
	// PostgreSQL into failures.
	EnvRequired = "LASTMILE_TEST_POSTGRES_REQUIRED"

	// Role is the login role that owns the databases created on a server
	// started by this package.
	Role = "lastmile"

	superuser     = "postgres" // bootstrap superuser of the clusters started here
	dirPrefix     = "lastmile-pgtest-"
	ownerFile     = "owner.pid"
	logFile       = "postgres.log"
	readyTimeout  = 30 * time.Second
	initdbTimeout = 2 * time.Minute
	stopTimeout   = 10 * time.Second
	sqlTimeout    = time.Minute
	dumpTimeout   = 5 * time.Minute
)

// Main runs the tests of m and exits with their status, stopping the server
// started for this test binary (if any) before exiting. Call it from the
// package's TestMain; DSN fails a test of a package that calls neither Main
// nor Run.
func Main(m *testing.M) {
	os.Exit(Run(m))
}

// Run is Main without the exit, for a TestMain with its own set-up and
// tear-down: it runs the tests of m, stops the server started for them (if
// any) and returns m.Run's status (os.Exit(pgtest.Run(m))).
func Run(m *testing.M) int {
	mainCalled.Store(true)
	sigs := make(chan os.Signal, 1)
	for _, sig := range []os.Signal{os.Interrupt, syscall.SIGTERM, syscall.SIGHUP} {
		if !signal.Ignored(sig) { // (nohup, background jobs): keep ignoring
			signal.Notify(sigs, sig)
		}
	}
	defer signal.Stop(sigs)
	go func() {
		sig, ok := <-sigs
		if !ok {
			return
		}
		// Stop the server, then die of the signal as without a handler.
		shutdown()
		signal.Reset(sig)
		if s, isSys := sig.(syscall.Signal); isSys {
			_ = syscall.Kill(os.Getpid(), s)
		}
		time.Sleep(time.Second)
		os.Exit(1)
	}()
	defer shutdown()
	return m.Run()
}

// DSN returns the connection string of a new, empty database created for t
// (postgres://lastmile@127.0.0.1:PORT/NAME?sslmode=disable on a started
// server) and drops the database when t ends. The first call of a test binary
// starts the server; when PostgreSQL is missing or cannot start, DSN skips t.
func DSN(t testing.TB) string {
	t.Helper()
	if !mainCalled.Load() {
		t.Fatal("pgtest: the package's TestMain must call pgtest.Main(m) or pgtest.Run(m) " +
			"(func TestMain(m *testing.M) { pgtest.Main(m) }) so that the server is stopped")
	}
	b, err := current()
	if err != nil {
		skipOrFail(t, err)
	}
	return newDatabase(t, b)
}

// Dump returns pg_dump's plain SQL dump of the database at dsn (as returned by
// DSN), so tests can check what a database holds in clear text. It skips t
// when no pg_dump is found.
func Dump(t testing.TB, dsn string) []byte {
	t.Helper()
	var bins *binaries
	mu.Lock()
	if state.backend != nil && state.backend.srv != nil {
		bins = &state.backend.srv.bins
	}
	mu.Unlock()
	if bins == nil {
		found, err := findBinaries(searchFor())
		if err != nil {
			skipOrFail(t, err)
		}
		bins = found
	}
	if bins.pgDump == "" {
		skipOrFail(t, skipError{"pgtest: no pg_dump found next to " + bins.dir +
			" or on PATH (install Debian's postgresql-client)", ""})
	}
	ctx, cancel := context.WithTimeout(context.Background(), dumpTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bins.pgDump, "--no-password", "--format=plain", "--dbname="+dsn)
	if os.Getenv(EnvServer) == "" {
		cmd.Env = childEnv()
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := runLocked(cmd); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if strings.Contains(msg, "server version mismatch") {
			skipOrFail(t, skipError{"pgtest: " + bins.pgDump + " is older than the server: " + msg, ""})
		}
		t.Fatalf("pgtest: %s: %v: %s", bins.pgDump, err, msg)
	}
	return stdout.Bytes()
}

// skipError is a reason to skip: PostgreSQL is missing or does not start.
type skipError struct {
	msg    string // what is missing
	detail string // "" or the tail of a log, starting with a newline
}

func (e skipError) Error() string { return e.msg + e.detail }

func skipOrFail(t testing.TB, err error) {
	t.Helper()
	var s skipError
	if errors.As(err, &s) {
		if required() {
			t.Fatalf("%s (%s is set, so this is a failure)%s", s.msg, EnvRequired, s.detail)
		}
		t.Skip(s.msg + ": skipping" + s.detail)
	}
	t.Fatal(err)
}

func required() bool {
	v := strings.ToLower(strings.TrimSpace(os.Getenv(EnvRequired)))
	return v != "" && v != "0" && v != "false" && v != "no"
}

// backend is where databases are created: a server started here or the
// server named by EnvServer.
type backend struct {
	admin string  // connection string of a user allowed to create databases
	owner string  // owner of created databases; "" for the admin user
	srv   *server // nil for an existing server
}

// dsnFor returns the connection string of database db on b.
func (b *backend) dsnFor(db string) (string, error) {
	if b.srv != nil {
		return fmt.Sprintf("postgres://%s@127.0.0.1:%d/%s?sslmode=disable", b.owner, b.srv.port, db), nil
	}
	return withDatabase(b.admin, db)
}

// withDatabase returns the connection string dsn with its database set to db.
func withDatabase(dsn, db string) (string, error) {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			return "", fmt.Errorf("pgtest: %s: %v", EnvServer, err)
		}
		u.Path, u.RawPath = "/"+db, ""
		return u.String(), nil
	}
	// key=value form: a later keyword wins over an earlier one.
	return strings.TrimSpace(dsn) + " dbname=" + db, nil
}

// logTail returns the tail of the started server's log, for messages.
func (b *backend) logTail() string {
	if b.srv == nil {
		return ""
	}
	return b.srv.logTail()
}

// exec runs statements on b's admin connection.
func (b *backend) exec(ctx context.Context, sql ...string) error {
	conn, err := pgx.Connect(ctx, b.admin)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	for _, s := range sql {
		if _, err := conn.Exec(ctx, s); err != nil {
			return err
		}
	}
	return nil
}

// check returns an error when b's started server has died.
func (b *backend) check() error {
	if b.srv == nil {
		return nil
	}
	select {
	case <-b.srv.exited:
		return fmt.Errorf("pgtest: the PostgreSQL server on port %d exited unexpectedly (%v)%s",
			b.srv.port, b.srv.exitErr, b.srv.logTail())
	default:
		return nil
	}
}

// newDatabase creates a database on b for t, dropped when t ends, and returns
// its connection string.
func newDatabase(t testing.TB, b *backend) string {
	t.Helper()
	if err := b.check(); err != nil {
		t.Fatal(err)
	}
	name := databaseName(t.Name())
	ident := pgx.Identifier{name}.Sanitize()
	create := "CREATE DATABASE " + ident + " TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C'"
	if b.owner != "" {
		create += " OWNER " + pgx.Identifier{b.owner}.Sanitize()
	}
	ctx, cancel := context.WithTimeout(context.Background(), sqlTimeout)
	defer cancel()
	if err := b.exec(ctx, create); err != nil {
		if b.srv == nil {
			t.Fatalf("pgtest: creating database %s on the server of %s: %v", name, EnvServer, err)
		}
		t.Fatalf("pgtest: creating database %s: %v%s", name, err, b.logTail())
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), sqlTimeout)
		defer cancel()
		if err := b.exec(ctx, "DROP DATABASE IF EXISTS "+ident+" WITH (FORCE)"); err != nil {
			t.Errorf("pgtest: dropping database %s: %v%s", name, err, b.logTail())
		}
	})
	dsn, err := b.dsnFor(name)
	if err != nil {
		t.Fatal(err)
	}
	return dsn
}

// databaseName returns a new database name derived from a test name:
// pgtest_<test>_<8 random hex digits>, at most 63 bytes of [a-z0-9_].
func databaseName(test string) string {
	var sb strings.Builder
	underscore := false
	for _, r := range strings.ToLower(test) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			sb.WriteRune(r)
			underscore = false
		} else if !underscore && sb.Len() > 0 {
			sb.WriteByte('_')
			underscore = true
		}
		if sb.Len() >= 40 {
			break
		}
	}
	var rnd [4]byte
	_, _ = rand.Read(rnd[:]) // never fails (crypto/rand)
	return "pgtest_" + strings.TrimRight(sb.String(), "_") + "_" + hex.EncodeToString(rnd[:])
}

// The process-wide state: the backend, once chosen, or why there is none.
var (
	mainCalled atomic.Bool
	mu         sync.Mutex
	state      struct {
		backend *backend
		err     error // sticky start error
		done    bool  // Main has finished the tests
	}
)

// current returns the backend of this test binary, starting the server on
// first use.
func current() (*backend, error) {
	mu.Lock()
	defer mu.Unlock()
	if state.done {
		return nil, errors.New("pgtest: DSN called after pgtest.Main stopped the server")
	}
	if state.backend != nil {
		if err := state.backend.check(); err != nil {
			return nil, err
		}
		return state.backend, nil
	}
	if state.err != nil {
		return nil, state.err
	}
	if dsn := os.Getenv(EnvServer); dsn != "" {
		b := &backend{admin: dsn}
		ctx, cancel := context.WithTimeout(context.Background(), sqlTimeout)
		defer cancel()
		if err := b.exec(ctx, "SELECT 1"); err != nil {
			state.err = fmt.Errorf("pgtest: %s is set but its server does not answer: %v", EnvServer, err)
			return nil, state.err
		}
		state.backend = b
		return b, nil
	}
	srv, err := start()
	if err != nil {
		state.err = err
		return nil, err
	}
	state.backend = &backend{
		admin: srv.adminDSN(),
		owner: Role,
		srv:   srv,
	}
	return state.backend, nil
}

// shutdown stops the server of this test binary, if one was started.
func shutdown() {
	mu.Lock()
	defer mu.Unlock()
	state.done = true
	if state.backend != nil && state.backend.srv != nil {
		_ = state.backend.srv.stop()
	}
}

// binaries are the PostgreSQL programs used here.
type binaries struct {
	dir      string // where postgres was found
	postgres string
	initdb   string
	pgDump   string // "" when not found
}

// search says where to look for binaries.
type search struct {
	pgConfig string // pg_config program ("" to skip)
	glob     string // pattern of versioned bin directories ("" to skip)
	path     string // PATH-style list ("" to skip)
}

// searchFor returns where to look (a variable for tests).
var searchFor = defaultSearch

func defaultSearch() search {
	return search{pgConfig: "pg_config", glob: "/usr/lib/postgresql/*/bin", path: os.Getenv("PATH")}
}

// findBinaries finds postgres and initdb (and pg_dump) in pg_config's bindir,
// the highest versioned directory matching s.glob, or s.path, in that order.
func findBinaries(s search) (*binaries, error) {
	var dirs []string
	if s.pgConfig != "" {
		if p, err := lookPath(s.pgConfig, s.path); err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			out, err := exec.CommandContext(ctx, p, "--bindir").Output()
			cancel()
			if err == nil {
				dirs = append(dirs, strings.TrimSpace(string(out)))
			}
		}
	}
	if s.glob != "" {
		matches, _ := filepath.Glob(s.glob)
		sort.SliceStable(matches, func(i, j int) bool {
			return versionLess(versionOf(matches[j]), versionOf(matches[i]))
		})
		dirs = append(dirs, matches...)
	}
	for _, d := range dirs {
		if d == "" {
			continue
		}
		b := binaries{dir: d, postgres: filepath.Join(d, "postgres"), initdb: filepath.Join(d, "initdb")}
		if !executable(b.postgres) || !executable(b.initdb) {
			continue
		}
		if p := filepath.Join(d, "pg_dump"); executable(p) {
			b.pgDump = p
		} else if p, err := lookPath("pg_dump", s.path); err == nil {
			b.pgDump = p
		}
		return &b, nil
	}
	if s.path != "" {
		pg, err1 := lookPath("postgres", s.path)
		initdb, err2 := lookPath("initdb", s.path)
		if err1 == nil && err2 == nil {
			b := binaries{postgres: resolve(pg), initdb: resolve(initdb)}
			b.dir = filepath.Dir(b.postgres)
			if p := filepath.Join(b.dir, "pg_dump"); executable(p) {
				b.pgDump = p
			} else if p, err := lookPath("pg_dump", s.path); err == nil {
				b.pgDump = p
			}
			return &b, nil
		}
	}
	return nil, skipError{"pgtest: no PostgreSQL server binaries found (looked for postgres and initdb in " +
		"`pg_config --bindir`, /usr/lib/postgresql/*/bin and PATH; install Debian's postgresql, " +
		"or set " + EnvServer + " to an existing server)", ""}
}

// lookPath is exec.LookPath over the directories of path.
func lookPath(name, path string) (string, error) {
	for _, d := range filepath.SplitList(path) {
		if d == "" {
			continue
		}
		if p := filepath.Join(d, name); executable(p) {
			return p, nil
		}
	}
	return "", exec.ErrNotFound
}

func executable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

func resolve(p string) string {
	if r, err := filepath.EvalSymlinks(p); err == nil {
		return r
	}
	return p
}

// versionOf parses the version directory of /usr/lib/postgresql/VERSION/bin.
func versionOf(bin string) []int {
	var v []int
	for _, f := range strings.Split(filepath.Base(filepath.Dir(bin)), ".") {
		n, err := strconv.Atoi(f)
		if err != nil {
			return nil
		}
		v = append(v, n)
	}
	return v
}

func versionLess(a, b []int) bool {
	for i := 0; i < len(a) && i < len(b); i++ {
		if a[i] != b[i] {
			return a[i] < b[i]
		}
	}
	return len(a) < len(b)
}

// server is a PostgreSQL server started by this package.
type server struct {
	bins    binaries
	dir     string // temporary directory: data/, postgres.log, owner.pid, socket
	port    int
	pid     int
	exited  chan struct{} // closed when the postmaster has exited
	exitErr error         // cmd.Wait's result, set before exited is closed
	startup time.Duration // from the start of initdb to the first connection
	stopped sync.Once
}

func (s *server) dataDir() string { return filepath.Join(s.dir, "data") }

func (s *server) adminDSN() string {
	return fmt.Sprintf("postgres://%s@127.0.0.1:%d/postgres?sslmode=disable&connect_timeout=10", superuser, s.port)
}

// logTail returns the last lines of the server's log, for error messages.
func (s *server) logTail() string {
	return tailOf(filepath.Join(s.dir, logFile))
}

func tailOf(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	const max = 3000
	if fi, err := f.Stat(); err == nil && fi.Size() > max {
		_, _ = f.Seek(fi.Size()-max, io.SeekStart)
	}
	data, _ := io.ReadAll(f)
	text := strings.TrimSpace(string(data))
	if text == "" {
		return ""
	}
	lines := strings.Split(text, "\n")
	if len(lines) > 25 {
		lines = lines[len(lines)-25:]
	}
	return "\n--- tail of " + path + " ---\n" + strings.Join(lines, "\n")
}

// start finds the binaries, creates a cluster and starts a server on a free
// loopback port. Errors for missing or unstartable PostgreSQL are skipErrors.
func start() (*server, error) {
	bins, err := findBinaries(searchFor())
	if err != nil {
		return nil, err
	}
	var cred *syscall.Credential
	var uid, gid = -1, -1
	if os.Geteuid() == 0 {
		u, err := user.Lookup(superuser)
		if err != nil {
			return nil, skipError{"pgtest: running as root, and PostgreSQL refuses to run as root, but there is no " +
				"'postgres' system user to run it as (install Debian's postgresql, which creates it)", ""}
		}
		uid, _ = strconv.Atoi(u.Uid)
		gid, _ = strconv.Atoi(u.Gid)
		cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}
	}
	base := tempBase(cred != nil)
	sweepStale(base)
	dir, err := os.MkdirTemp(base, dirPrefix+"*")
	if err != nil {
		return nil, skipError{fmt.Sprintf("pgtest: creating a directory for PostgreSQL: %v", err), ""}
	}
	began := time.Now()
	s := &server{bins: *bins, dir: dir}
	fail := func(format string, args ...any) (*server, error) {
		e := skipError{fmt.Sprintf(format, args...), s.logTail()}
		_ = os.RemoveAll(dir)
		return nil, e
	}
	if err := os.WriteFile(filepath.Join(dir, ownerFile), []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		return fail("pgtest: %v", err)
	}
	if cred != nil {
		if err := os.Chown(dir, uid, gid); err != nil {
			return fail("pgtest: handing %s to the postgres user: %v", dir, err)
		}
	}
	logf, err := os.OpenFile(filepath.Join(dir, logFile), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fail("pgtest: %v", err)
	}
	defer logf.Close()

	ctx, cancel := context.WithTimeout(context.Background(), initdbTimeout)
	defer cancel()
	initdb := exec.CommandContext(ctx, bins.initdb,
		"--pgdata="+s.dataDir(), "--username="+superuser, "--auth=trust",
		"--encoding=UTF8", "--locale=C", "--no-sync")
	initdb.Dir, initdb.Env, initdb.Stdout, initdb.Stderr = dir, childEnv(), logf, logf
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := runLocked(initdb); err != nil {
		return fail("pgtest: %s failed: %v", bins.initdb, err)
	}

	// A free port can be taken by another test binary before postgres binds
	// it: try a few.
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		port, err := freePort()
		if err != nil {
			return fail("pgtest: finding a free loopback port: %v", err)
		}
		s.port = port
		s.exited = make(chan struct{})
		bindFailed, err := s.launch(cred, logf)
		if err == nil {
			s.startup = time.Since(began)
			return s, nil
		}
		lastErr = err
		if !bindFailed {
			break
		}
	}
	return fail("pgtest: starting %s: %v", bins.postgres, lastErr)
}

// launch starts the postmaster on s.port and waits until it accepts
// connections, then creates the test role. bindFailed reports that the port
// was taken.
func (s *server) launch(cred *syscall.Credential, logf *os.File) (bindFailed bool, err error) {
	socketDir := s.dir
	if len(socketDir)+len("/.s.PGSQL.65535") >= 100 { // sun_path is 108 bytes
		socketDir = "" // TCP only
	}
	cmd := exec.Command(s.bins.postgres,
		"-D", s.dataDir(),
		"-p", strconv.Itoa(s.port),
		"-c", "listen_addresses=127.0.0.1",
		"-c", "unix_socket_directories="+socketDir,
		"-c", "shared_buffers=32MB",
		"-c", "max_connections=100",
		"-c", "fsync=on",
		"-c", "synchronous_commit=on",
		"-c", "full_page_writes=on",
		"-c", "huge_pages=off",
		"-c", "timezone=UTC",
		"-c", "logging_collector=off",
		"-c", "log_destination=stderr",
		"-c", "log_line_prefix=%m [%p] ",
	)
	cmd.Dir, cmd.Env, cmd.Stdout, cmd.Stderr = s.dir, childEnv(), logf, logf
	// Setpgid keeps a terminal's ^C for Main's handler; Pdeathsig=SIGQUIT is
	// the safety net: an immediate shutdown when the test process dies.
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGQUIT, Setpgid: true}
	started := make(chan error, 1)
	exited := s.exited
	go func() {
		// Pdeathsig fires when the thread that started the child exits, not
		// the process: keep this thread for as long as the postmaster runs.
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		s.exitErr = cmd.Wait()
		close(exited)
	}()
	if err := <-started; err != nil {
		close(exited)
		return false, err
	}
	s.pid = cmd.Process.Pid
	deadline := time.Now().Add(readyTimeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		conn, err := pgx.Connect(ctx, s.adminDSN())
		if err == nil {
			_, err = conn.Exec(ctx, "CREATE ROLE "+pgx.Identifier{Role}.Sanitize()+" LOGIN")
			conn.Close(context.Background())
			cancel()
			if err != nil {
				s.kill()
				return false, fmt.Errorf("creating role %s: %v", Role, err)
			}
			return false, nil
		}
		cancel()
		select {
		case <-exited:
			log := tailOf(filepath.Join(s.dir, logFile))
			return strings.Contains(log, "could not bind") || strings.Contains(log, "already in use"),
				fmt.Errorf("postgres exited before accepting connections (%v)", s.exitErr)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.kill()
			return false, fmt.Errorf("postgres did not accept connections on 127.0.0.1:%d within %v (last error: %v)",
				s.port, readyTimeout, err)
		}
	}
}

// kill stops the postmaster: SIGQUIT (immediate shutdown), then SIGKILL to
// its process group after stopTimeout. It waits for the postmaster to exit.
func (s *server) kill() {
	select {
	case <-s.exited:
		return
	default:
	}
	_ = syscall.Kill(s.pid, syscall.SIGQUIT)
	select {
	case <-s.exited:
		return
	case <-time.After(stopTimeout):
	}
	_ = syscall.Kill(-s.pid, syscall.SIGKILL)
	_ = syscall.Kill(s.pid, syscall.SIGKILL)
	select {
	case <-s.exited:
	case <-time.After(stopTimeout):
	}
}

// stop stops the server and removes its directory. It may be called more
// than once.
func (s *server) stop() error {
	var err error
	s.stopped.Do(func() {
		s.kill()
		select {
		case <-s.exited:
		default:
			err = fmt.Errorf("pgtest: postgres (pid %d) did not exit", s.pid)
			return // keep the directory: the process may still use it
		}
		err = os.RemoveAll(s.dir)
	})
	return err
}

// runLocked runs cmd from a goroutine locked to its OS thread, so that a
// Pdeathsig in cmd.SysProcAttr fires only when the process dies.
func runLocked(cmd *exec.Cmd) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	return cmd.Run()
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// childEnv is the environment of the PostgreSQL programs: this process's
// without PG* (which would redirect them), locale variables and TMPDIR, in
// the C locale.
func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "PG") || strings.HasPrefix(k, "LC_") || k == "LANG" || k == "LANGUAGE" {
			continue
		}
		env = append(env, kv)
	}
	return append(env, "LC_ALL=C")
}

// tempBase returns the directory for server directories. For a server run as
// the postgres user, os.TempDir() must be reachable by that user (every
// ancestor searchable by others); /tmp is used otherwise.
func tempBase(otherUser bool) string {
	base := os.TempDir()
	if !otherUser {
		return base
	}
	for d := resolve(base); ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil || fi.Mode().Perm()&0o001 == 0 {
			return "/tmp"
		}
		if d == filepath.Dir(d) {
			return base
		}
	}
}

// sweepStale removes server directories in base left by test processes that
// died without stopping their server (normally already shut down by the
// Pdeathsig safety net; a postmaster still running there gets SIGQUIT).
func sweepStale(base string) {
	dirs, _ := filepath.Glob(filepath.Join(base, dirPrefix+"*"))
	for _, dir := range dirs {
		fi, err := os.Stat(dir)
		if err != nil || !fi.IsDir() || time.Since(fi.ModTime()) < time.Minute {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, ownerFile))
		if err != nil {
			continue
		}
		owner, err := strconv.Atoi(strings.TrimSpace(string(data)))
		if err != nil || owner <= 0 || alive(owner, "") {
			continue
		}
		dataDir := filepath.Join(dir, "data")
		if pm := postmasterPID(dataDir); pm > 0 && alive(pm, dataDir) {
			_ = syscall.Kill(pm, syscall.SIGQUIT)
			for i := 0; i < 100 && alive(pm, dataDir); i++ {
				time.Sleep(50 * time.Millisecond)
			}
			if alive(pm, dataDir) {
				continue
			}
		}
		_ = os.RemoveAll(dir)
	}
}

// postmasterPID returns the pid in dataDir/postmaster.pid, or 0.
func postmasterPID(dataDir string) int {
	data, err := os.ReadFile(filepath.Join(dataDir, "postmaster.pid"))
	if err != nil {
		return 0
	}
	first, _, _ := strings.Cut(string(data), "\n")
	pid, _ := strconv.Atoi(strings.TrimSpace(first))
	return pid
}

// alive reports whether process pid runs (not a zombie) and, when mark is
// not empty, has mark in its command line.
func alive(pid int, mark string) bool {
	cmdline, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return false
		}
		return syscall.Kill(pid, 0) == nil // no /proc: assume it is ours
	}
	if len(cmdline) == 0 { // zombie or kernel thread
		return false
	}
	return mark == "" || bytes.Contains(cmdline, []byte(mark))
}
