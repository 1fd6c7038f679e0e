package pgtest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

func TestMain(m *testing.M) { Main(m) }

// connect opens a connection to dsn, closed when t ends.
func connect(t testing.TB, dsn string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connecting to %s: %v", dsn, err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func exec1(t testing.TB, conn *pgx.Conn, sql string, args ...any) {
	t.Helper()
	if _, err := conn.Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

func dbNameOf(t testing.TB, dsn string) string {
	t.Helper()
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	return cfg.Database
}

func userTables(t testing.TB, conn *pgx.Conn) int {
	t.Helper()
	var n int
	err := conn.QueryRow(context.Background(),
		"SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "+
			"WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'").Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// databaseExists asks the server of dsn, on a connection to its postgres
// database, whether database name exists.
func databaseExists(t testing.TB, dsn, name string) bool {
	t.Helper()
	other, err := withDatabase(dsn, "postgres")
	if err != nil {
		t.Fatal(err)
	}
	conn := connect(t, other)
	var n int
	if err := conn.QueryRow(context.Background(), "SELECT count(*) FROM pg_database WHERE datname = $1", name).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n == 1
}

func TestDSNGivesAnEmptyWorkingDatabase(t *testing.T) {
	start := time.Now()
	dsn := DSN(t)
	t.Logf("first DSN (server start-up included) took %v: %s", time.Since(start), dsn)
	if os.Getenv(EnvServer) == "" {
		prefix := "postgres://" + Role + "@127.0.0.1:"
		if !strings.HasPrefix(dsn, prefix) || !strings.HasSuffix(dsn, "?sslmode=disable") {
			t.Errorf("DSN = %q, want %s<port>/<db>?sslmode=disable", dsn, prefix)
		}
		mu.Lock()
		srv := state.backend.srv
		mu.Unlock()
		t.Logf("server: %s, pid %d, port %d, started in %v", srv.bins.postgres, srv.pid, srv.port, srv.startup)
	}
	conn := connect(t, dsn)
	if n := userTables(t, conn); n != 0 {
		t.Fatalf("fresh database has %d relations outside the system schemas", n)
	}
	var settings struct{ user, encoding, fsync, syncCommit, listen string }
	err := conn.QueryRow(context.Background(),
		"SELECT current_user, pg_encoding_to_char(encoding), current_setting('fsync'), "+
			"current_setting('synchronous_commit'), current_setting('listen_addresses') "+
			"FROM pg_database WHERE datname = current_database()").
		Scan(&settings.user, &settings.encoding, &settings.fsync, &settings.syncCommit, &settings.listen)
	if err != nil {
		t.Fatal(err)
	}
	if settings.encoding != "UTF8" {
		t.Errorf("encoding %s, want UTF8", settings.encoding)
	}
	if os.Getenv(EnvServer) == "" {
		want := struct{ user, encoding, fsync, syncCommit, listen string }{Role, "UTF8", "on", "on", "127.0.0.1"}
		if settings != want {
			t.Errorf("settings %+v, want %+v", settings, want)
		}
	}
	exec1(t, conn, "CREATE TABLE stop (id bigint PRIMARY KEY, name text NOT NULL)")
	exec1(t, conn, "INSERT INTO stop VALUES ($1, $2), ($3, $4)", 1, "Rua das Flores 12", 2, "Praça da Ribeira")
	var name string
	if err := conn.QueryRow(context.Background(), "SELECT name FROM stop WHERE id = 2").Scan(&name); err != nil {
		t.Fatal(err)
	}
	if name != "Praça da Ribeira" {
		t.Errorf("read back %q", name)
	}
}

func TestTwoDSNsAreIndependent(t *testing.T) {
	a, b := DSN(t), DSN(t)
	if dbNameOf(t, a) == dbNameOf(t, b) {
		t.Fatalf("two DSN calls gave the same database: %s", a)
	}
	ca, cb := connect(t, a), connect(t, b)
	exec1(t, ca, "CREATE TABLE item (v int)")
	exec1(t, ca, "INSERT INTO item VALUES (1)")
	if n := userTables(t, cb); n != 0 {
		t.Fatalf("the second database sees %d relations created in the first", n)
	}
	exec1(t, cb, "CREATE TABLE item (v int)")
	exec1(t, cb, "INSERT INTO item VALUES (2), (3)")
	for _, c := range []struct {
		conn *pgx.Conn
		want int
	}{{ca, 1}, {cb, 2}} {
		var n int
		if err := c.conn.QueryRow(context.Background(), "SELECT count(*) FROM item").Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != c.want {
			t.Errorf("%d rows, want %d", n, c.want)
		}
	}
}

func TestDatabaseIsDroppedAfterTheTest(t *testing.T) {
	var dsn, name string
	var open *pgx.Conn
	t.Run("uses", func(t *testing.T) {
		dsn = DSN(t)
		name = dbNameOf(t, dsn)
		ctx := context.Background()
		var err error
		// Left open past the test on purpose: the drop must force it out.
		open, err = pgx.Connect(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := open.Exec(ctx, "CREATE TABLE t (v int)"); err != nil {
			t.Fatal(err)
		}
		if !databaseExists(t, dsn, name) {
			t.Fatalf("database %s does not exist during the test", name)
		}
	})
	if open != nil {
		defer open.Close(context.Background())
	}
	if dsn == "" {
		t.Skip("the subtest got no database")
	}
	if databaseExists(t, dsn, name) {
		t.Fatalf("database %s still exists after its test", name)
	}
}

func TestParallelDSNs(t *testing.T) {
	for i := range 4 {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			t.Parallel()
			conn := connect(t, DSN(t))
			exec1(t, conn, "CREATE TABLE p (v int)")
			exec1(t, conn, "INSERT INTO p VALUES ($1)", i)
			var v int
			if err := conn.QueryRow(context.Background(), "SELECT v FROM p").Scan(&v); err != nil || v != i {
				t.Fatalf("got %d, %v; want %d", v, err, i)
			}
		})
	}
}

func TestDumpContainsTheTable(t *testing.T) {
	dsn := DSN(t)
	conn := connect(t, dsn)
	exec1(t, conn, "CREATE TABLE customer (id int, email text)")
	exec1(t, conn, "INSERT INTO customer VALUES (1, 'ada@example.org')")
	dump := Dump(t, dsn)
	for _, want := range []string{"CREATE TABLE public.customer", "ada@example.org"} {
		if !bytes.Contains(dump, []byte(want)) {
			t.Errorf("dump lacks %q:\n%s", want, dump)
		}
	}
}

func TestExistingServer(t *testing.T) {
	// The server of this test binary stands in for an existing one.
	DSN(t)
	mu.Lock()
	admin := state.backend.admin
	mu.Unlock()
	b := &backend{admin: admin}
	var dsn string
	t.Run("database", func(t *testing.T) {
		dsn = newDatabase(t, b)
		want, _ := withDatabase(admin, dbNameOf(t, dsn))
		if dsn != want {
			t.Errorf("DSN %q, want %q", dsn, want)
		}
		conn := connect(t, dsn)
		if n := userTables(t, conn); n != 0 {
			t.Errorf("%d relations in a fresh database", n)
		}
	})
	if dsn != "" && databaseExists(t, dsn, dbNameOf(t, dsn)) {
		t.Errorf("database of %s not dropped", dsn)
	}
}

func TestWithDatabase(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"postgres://u:p@h:5/old?sslmode=disable", "postgres://u:p@h:5/new_db?sslmode=disable"},
		{"postgresql://u@h", "postgresql://u@h/new_db"},
		{"host=h user=u dbname=old", "host=h user=u dbname=old dbname=new_db"},
	} {
		got, err := withDatabase(c.in, "new_db")
		if err != nil || got != c.want {
			t.Errorf("withDatabase(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
		if cfg, err := pgx.ParseConfig(got); err != nil || cfg.Database != "new_db" {
			t.Errorf("%q parses to database %q, %v", got, cfg.Database, err)
		}
	}
}

func TestDatabaseName(t *testing.T) {
	seen := map[string]bool{}
	for _, test := range []string{"TestX", "TestX", strings.Repeat("TestVeryLong/sub_test#01", 10), "Test/é/ü"} {
		n := databaseName(test)
		if len(n) > 63 || seen[n] {
			t.Errorf("databaseName(%q) = %q: too long or repeated", test, n)
		}
		seen[n] = true
		for _, r := range n {
			if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_') {
				t.Errorf("databaseName(%q) = %q has %q", test, n, r)
			}
		}
	}
}

func TestFindBinaries(t *testing.T) {
	root := t.TempDir()
	if _, err := findBinaries(search{glob: filepath.Join(root, "*", "bin"), path: root}); !errors.As(err, new(skipError)) ||
		!strings.Contains(err.Error(), "install Debian's postgresql") {
		t.Errorf("no binaries: %v, want a skip naming the package", err)
	}
	for _, v := range []string{"9.6", "15", "10", "16"} {
		dir := filepath.Join(root, v, "bin")
		names := []string{"postgres", "initdb", "pg_dump"}
		if v == "16" {
			names = names[:1] // incomplete: no initdb
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, n := range names {
			if err := os.WriteFile(filepath.Join(dir, n), []byte("#!/bin/sh\n"), 0o755); err != nil {
				t.Fatal(err)
			}
		}
	}
	b, err := findBinaries(search{glob: filepath.Join(root, "*", "bin")})
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(root, "15", "bin"); b.dir != want || b.pgDump != filepath.Join(want, "pg_dump") {
		t.Errorf("found %+v, want the complete highest version in %s", b, want)
	}
	b, err = findBinaries(search{path: filepath.Join(root, "10", "bin")})
	if err != nil || b.dir != filepath.Join(root, "10", "bin") {
		t.Errorf("PATH search: %+v, %v", b, err)
	}
}

// refused reports whether nothing accepts connections on the loopback port.
func refused(port int) bool {
	c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
	if err != nil {
		return true
	}
	c.Close()
	return false
}

func TestStopTerminatesTheServer(t *testing.T) {
	srv, err := start()
	if err != nil {
		skipOrFail(t, err)
	}
	t.Logf("second server started in %v", srv.startup)
	stopped := false
	defer func() {
		if !stopped {
			_ = srv.stop()
		}
	}()
	conn := connect(t, srv.adminDSN())
	if !alive(srv.pid, srv.dataDir()) || refused(srv.port) {
		t.Fatalf("server not running: pid %d port %d", srv.pid, srv.port)
	}
	// A session in a transaction does not hold the stop up.
	exec1(t, conn, "BEGIN")
	began := time.Now()
	if err := srv.stop(); err != nil {
		t.Fatal(err)
	}
	stopped = true
	t.Logf("stop took %v", time.Since(began))
	if alive(srv.pid, srv.dataDir()) {
		t.Errorf("postmaster %d still running after stop", srv.pid)
	}
	if !refused(srv.port) {
		t.Errorf("port %d still accepts connections after stop", srv.port)
	}
	if _, err := os.Stat(srv.dir); !os.IsNotExist(err) {
		t.Errorf("directory %s not removed: %v", srv.dir, err)
	}
	if err := srv.stop(); err != nil {
		t.Errorf("second stop: %v", err)
	}
}

const helperEnv = "PGTEST_HELPER"

// TestHelperProcess is run by TestServerNeverOutlivesTheTestProcess in a
// child test process; it does nothing otherwise.
func TestHelperProcess(t *testing.T) {
	mode := os.Getenv(helperEnv)
	if mode == "" {
		t.Skip("helper of TestServerNeverOutlivesTheTestProcess and TestAbsentPostgreSQL")
	}
	if mode == "absent" {
		searchFor = func() search { return search{} }
		DSN(t)
		t.Fatal("DSN returned without PostgreSQL")
	}
	dsn := DSN(t)
	mu.Lock()
	srv := state.backend.srv
	mu.Unlock()
	connect(t, dsn)
	fmt.Printf("%s pid=%d port=%d dir=%s\n", helperEnv, srv.pid, srv.port, srv.dir)
	switch mode {
	case "panic":
		panic("pgtest helper: a test panics")
	case "exit":
		os.Exit(3) // no deferred code runs
	case "kill":
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {}
	}
}

// runHelper runs TestHelperProcess in a child test process, without
// EnvServer and EnvRequired, with the given extra environment.
func runHelper(ctx context.Context, mode string, env ...string) (stdout, stderr string, err error) {
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestHelperProcess$", "-test.v")
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, EnvServer+"=") && !strings.HasPrefix(kv, EnvRequired+"=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(append(cmd.Env, helperEnv+"="+mode), env...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	return out.String(), errOut.String(), err
}

// TestAbsentPostgreSQL checks that DSN skips, saying what is missing, when no
// PostgreSQL is found, and fails instead when EnvRequired is set.
func TestAbsentPostgreSQL(t *testing.T) {
	if os.Getenv(helperEnv) != "" {
		t.Skip("in a helper")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, stderr, err := runHelper(ctx, "absent")
	if err != nil || !strings.Contains(out, "--- SKIP: TestHelperProcess") ||
		!strings.Contains(out, "no PostgreSQL server binaries found") || !strings.Contains(out, "install Debian's postgresql") {
		t.Errorf("without PostgreSQL: %v\n%s%s", err, out, stderr)
	}
	out, stderr, err = runHelper(ctx, "absent", EnvRequired+"=1")
	if err == nil || !strings.Contains(out, "--- FAIL: TestHelperProcess") || !strings.Contains(out, EnvRequired+" is set") {
		t.Errorf("without PostgreSQL, %s=1: %v\n%s%s", EnvRequired, err, out, stderr)
	}
}

// TestServerNeverOutlivesTheTestProcess runs a test binary that starts a
// server and then ends normally (Main stops the server), panics, exits
// with os.Exit or is killed with SIGKILL (the Pdeathsig safety net).
func TestServerNeverOutlivesTheTestProcess(t *testing.T) {
	if os.Getenv(helperEnv) != "" {
		t.Skip("in a helper")
	}
	if testing.Short() {
		t.Skip("starts four servers")
	}
	for _, mode := range []string{"return", "panic", "exit", "kill"} {
		t.Run(mode, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			stdout, stderr, runErr := runHelper(ctx, mode)
			var pid, port int
			var dir string
			found := false
			sc := bufio.NewScanner(strings.NewReader(stdout))
			var out strings.Builder
			for sc.Scan() {
				out.WriteString(sc.Text() + "\n")
				if _, err := fmt.Sscanf(sc.Text(), helperEnv+" pid=%d port=%d dir=%s", &pid, &port, &dir); err == nil {
					found = true
				}
			}
			if !found {
				if strings.Contains(out.String(), "--- SKIP") && !required() {
					t.Skipf("helper skipped:\n%s", out.String())
				}
				t.Fatalf("helper (%v) printed no server:\n%s%s", runErr, out.String(), stderr)
			}
			if (mode == "return") != (runErr == nil) {
				t.Errorf("helper exit: %v", runErr)
			}
			dataDir := filepath.Join(dir, "data")
			deadline := time.Now().Add(10 * time.Second)
			for alive(pid, dataDir) && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
			}
			if alive(pid, dataDir) {
				_ = syscall.Kill(pid, syscall.SIGKILL)
				t.Fatalf("postmaster %d outlived the test process", pid)
			}
			if !refused(port) {
				t.Errorf("port %d still accepts connections", port)
			}
			_, statErr := os.Stat(dir)
			if mode == "return" && !os.IsNotExist(statErr) {
				t.Errorf("Main left %s behind: %v", dir, statErr)
			}
			if statErr == nil {
				if err := os.RemoveAll(dir); err != nil {
					t.Error(err)
				}
			}
		})
	}
}

// TestStaleDirectoriesAreSwept checks that a directory left by a dead test
// process is removed by the next start's sweep, and a live one is kept.
func TestStaleDirectoriesAreSwept(t *testing.T) {
	base := t.TempDir()
	old := time.Now().Add(-time.Hour)
	mk := func(owner int) string {
		dir, err := os.MkdirTemp(base, dirPrefix+"*")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, ownerFile), []byte(fmt.Sprintln(owner)), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(dir, old, old); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	// A process that has exited (and been reaped) gives a dead pid.
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Skip(err)
	}
	stale, live := mk(dead.Process.Pid), mk(os.Getpid())
	sweepStale(base)
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("stale %s kept: %v", stale, err)
	}
	if _, err := os.Stat(live); err != nil {
		t.Errorf("live %s removed: %v", live, err)
	}
}

// TestStartFailureShowsTheLog starts fake binaries whose postgres fails: the
// skip message names the failure and carries the log's tail.
func TestStartFailureShowsTheLog(t *testing.T) {
	dir, err := os.MkdirTemp("", "pgtest-fake-*")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "1", "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil { // reachable by the postgres user
		t.Fatal(err)
	}
	scripts := map[string]string{
		"initdb":   "#!/bin/sh\nfor a; do case $a in --pgdata=*) mkdir -p \"${a#--pgdata=}\";; esac; done\necho 'fake initdb ran'\n",
		"postgres": "#!/bin/sh\necho 'FATAL:  fake postgres cannot start' >&2\nexit 1\n",
	}
	for name, text := range scripts {
		if err := os.WriteFile(filepath.Join(bin, name), []byte(text), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	saved := searchFor
	defer func() { searchFor = saved }()
	searchFor = func() search { return search{glob: filepath.Join(dir, "*", "bin")} }
	srv, err := start()
	if err == nil {
		srv.stop()
		t.Fatal("start succeeded with a failing postgres")
	}
	msg := err.Error()
	for _, want := range []string{"postgres exited before accepting connections", "fake initdb ran", "fake postgres cannot start"} {
		if !strings.Contains(msg, want) {
			t.Errorf("start error lacks %q:\n%s", want, msg)
		}
	}
	if !errors.As(err, new(skipError)) {
		t.Errorf("start error %T is not a skip", err)
	}
	t.Log(msg)
}
