// Package smtptest runs a real SMTP server on loopback for tests:
// smtpd.py (embedded here), an aiosmtpd server that requires STARTTLS and
// AUTH and stores every message it accepts in a Maildir, which Messages
// reads back and decodes.
//
//	srv := smtptest.Start(t) // skips (or fails, see RequireEnv) without aiosmtpd
//	cfg := mail.Config{Host: srv.Host, Port: srv.Port, Username: srv.User,
//		Password: srv.Password, RootCAs: srv.RootCAs, From: "notify@example.test"}
//	...
//	for _, m := range srv.Messages(t, "ana@example.com") { ... m.Subject, m.Text, m.HTML ... }
//
// The server runs with Debian's python3 (Python, not whatever python3 is
// first on PATH, which may lack the package) and its python3-aiosmtpd
// package. It accepts mail for every recipient except at reject.example
// (550) and tempfail.example (451), and prefixes each stored message with
// Return-Path, Delivered-To and X-Test-Session (the SMTP session, see
// Sessions). Its certificate is self-signed for 127.0.0.1 and localhost
// and trusted by RootCAs only.
package smtptest

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	_ "embed"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Python is the interpreter the server runs with: Debian's, whose
// python3-aiosmtpd package CI installs.
const Python = "/usr/bin/python3"

// RequireEnv names the environment variable that, set to 1, turns the
// skip of a test without aiosmtpd into a failure (CI installs it, so the
// SMTP tests must run there).
const RequireEnv = "LASTMILE_TEST_SMTP_REQUIRED"

// The credentials the server requires (AUTH PLAIN or LOGIN, after
// STARTTLS).
const (
	User     = "notify"
	Password = "correct horse battery staple"
)

// readyTimeout bounds the wait for the server's ready line.
const readyTimeout = 30 * time.Second

//go:embed smtpd.py
var script []byte

// Need skips the test when Python cannot import aiosmtpd, or fails it
// when RequireEnv is 1.
func Need(t testing.TB) {
	t.Helper()
	out, err := exec.Command(Python, "-c", "import aiosmtpd").CombinedOutput()
	if err == nil {
		return
	}
	msg := fmt.Sprintf("%s cannot import aiosmtpd (%v: %s): install the Debian package python3-aiosmtpd to run the SMTP tests",
		Python, err, strings.TrimSpace(string(out)))
	if os.Getenv(RequireEnv) == "1" {
		t.Fatalf("%s (%s=1 requires them)", msg, RequireEnv)
	}
	t.Skip(msg)
}

// Server is a running smtpd.py. Its fields do not change after Start: a
// Restart listens on the same port.
type Server struct {
	// Host and Port are where it listens (Host is "127.0.0.1").
	Host string
	Port int
	// User and Password are the credentials it requires.
	User, Password string
	// RootCAs trusts its certificate (and nothing else).
	RootCAs *x509.CertPool
	// Dir holds the script, the certificate and key, the logs and the
	// Maildir (a temporary directory of the test).
	Dir string
	// Maildir is where accepted messages are stored (new/ holds them).
	Maildir string

	mu      sync.Mutex
	cmd     *exec.Cmd
	stdin   io.WriteCloser // held open while the server runs
	exited  chan struct{}
	started int // how many times it started (names the log file)
}

// Start writes the script and a fresh certificate to a temporary
// directory of t, starts the server on a free loopback port and waits
// until it listens. It skips the test without aiosmtpd (see Need); the
// server stops when the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	Need(t)
	dir := t.TempDir()
	s := &Server{Host: "127.0.0.1", User: User, Password: Password, Dir: dir, Maildir: filepath.Join(dir, "Maildir")}
	if err := os.WriteFile(filepath.Join(dir, "smtpd.py"), script, 0o600); err != nil {
		t.Fatal(err)
	}
	pool, err := writeCert(filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	s.RootCAs = pool
	t.Cleanup(s.Stop)
	if err := s.run(); err != nil {
		t.Fatal(err)
	}
	return s
}

// Addr is the server's host:port.
func (s *Server) Addr() string { return net.JoinHostPort(s.Host, strconv.Itoa(s.Port)) }

// Restart stops the server if it runs (open sessions die with it, as a
// crashing server's would) and starts it again on the same port, with
// the same Maildir.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	s.Stop()
	if err := s.run(); err != nil {
		t.Fatal(err)
	}
}

// run starts the server (on Port when it is set) and waits for its ready
// line.
func (s *Server) run() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.started++
	logf, err := os.Create(s.logFile())
	if err != nil {
		return fmt.Errorf("smtptest: %w", err)
	}
	defer logf.Close()
	cmd := exec.Command(Python, filepath.Join(s.Dir, "smtpd.py"), "--port", strconv.Itoa(s.Port),
		"--cert", filepath.Join(s.Dir, "cert.pem"), "--key", filepath.Join(s.Dir, "key.pem"),
		"--user", s.User, "--password", s.Password, "--maildir", s.Maildir, "--watch-stdin")
	cmd.Stderr = logf
	// The server stops when this pipe closes: when this process dies
	// without stopping it (a test timeout's panic, a kill).
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return fmt.Errorf("smtptest: %w", err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return fmt.Errorf("smtptest: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("smtptest: starting smtpd.py: %w", err)
	}
	exited := make(chan struct{})
	s.cmd, s.exited, s.stdin = cmd, exited, stdin
	ready := make(chan int, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if p, ok := strings.CutPrefix(sc.Text(), "READY "); ok {
				n, _ := strconv.Atoi(p)
				ready <- n
			}
		}
		_ = cmd.Wait()
		close(exited)
	}()
	select {
	case port := <-ready:
		if s.Port != 0 && port != s.Port {
			s.stopLocked()
			return fmt.Errorf("smtptest: restarted on port %d, not %d", port, s.Port)
		}
		s.Port = port
		return nil
	case <-exited:
		s.cmd, s.stdin = nil, nil
		return fmt.Errorf("smtptest: smtpd.py exited before it was ready:\n%s", s.logLocked())
	case <-time.After(readyTimeout):
		s.stopLocked()
		return fmt.Errorf("smtptest: smtpd.py not ready after %v:\n%s", readyTimeout, s.logLocked())
	}
}

// Stop ends the server (SIGTERM, SIGKILL after 10 s) and waits for it to
// exit. Stopping a stopped server does nothing.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopLocked()
}

func (s *Server) stopLocked() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.exited
	}
	s.cmd, s.stdin = nil, nil
}

func (s *Server) logFile() string {
	return filepath.Join(s.Dir, fmt.Sprintf("smtpd-%d.log", s.started))
}

// Log is the standard error of the server's latest run, for failure
// messages.
func (s *Server) Log() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.logLocked()
}

func (s *Server) logLocked() string {
	b, _ := os.ReadFile(s.logFile())
	return string(b)
}

// Message is a message as the server stored it, decoded.
type Message struct {
	// File is its name in the Maildir.
	File string
	// Header holds the header fields as stored (RFC 2047 words not
	// decoded; see Get), the server's Return-Path, Delivered-To and
	// X-Test-Session included.
	Header mail.Header
	// Subject is the decoded Subject.
	Subject string
	// Text and HTML are the decoded text/plain and text/html bodies (of a
	// multipart/alternative or a single part), line ends as "\n"; "" when
	// absent.
	Text, HTML string
	// Raw is the stored message.
	Raw []byte
}

// Get returns the header field name with its RFC 2047 encoded words
// decoded.
func (m Message) Get(name string) string {
	v := m.Header.Get(name)
	d, err := new(mime.WordDecoder).DecodeHeader(v)
	if err != nil {
		return v
	}
	return d
}

// To returns the envelope recipients (the server's Delivered-To fields).
func (m Message) To() []string { return m.Header["Delivered-To"] }

// Messages returns the messages stored so far whose envelope recipient
// (Delivered-To) is to ("" = all), oldest first. A message that does not
// parse fails the test.
func (s *Server) Messages(t testing.TB, to string) []Message {
	t.Helper()
	ms, err := s.ReadMessages(to)
	if err != nil {
		t.Fatal(err)
	}
	return ms
}

// ReadMessages is Messages returning its error.
func (s *Server) ReadMessages(to string) ([]Message, error) {
	dir := filepath.Join(s.Maildir, "new")
	ents, err := os.ReadDir(dir)
	if err != nil && !os.IsNotExist(err) {
		return nil, fmt.Errorf("smtptest: %w", err)
	}
	// The names start with the time of arrival in nanoseconds: ReadDir's
	// order is the order of arrival.
	var out []Message
	for _, e := range ents {
		raw, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("smtptest: %w", err)
		}
		m, err := Parse(raw)
		if err != nil {
			return nil, fmt.Errorf("smtptest: stored message %s: %w", e.Name(), err)
		}
		m.File = e.Name()
		if to == "" || slices.Contains(m.To(), to) {
			out = append(out, m)
		}
	}
	return out, nil
}

// Parse decodes a message: its header, its subject and its text/plain
// and text/html bodies (quoted-printable and base64 decoded). A part of
// another type is an error.
func Parse(raw []byte) (Message, error) {
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return Message{}, fmt.Errorf("does not parse: %w", err)
	}
	m := Message{Header: msg.Header, Raw: raw}
	m.Subject = m.Get("Subject")
	part := func(ctype, cte string, body io.Reader) error {
		mt, _, err := mime.ParseMediaType(ctype)
		if err != nil {
			return fmt.Errorf("Content-Type %q: %w", ctype, err)
		}
		switch strings.ToLower(cte) {
		case "quoted-printable":
			body = quotedprintable.NewReader(body)
		case "base64":
			body = base64.NewDecoder(base64.StdEncoding, body)
		}
		b, err := io.ReadAll(body)
		if err != nil {
			return fmt.Errorf("%s body: %w", mt, err)
		}
		text := strings.ReplaceAll(string(b), "\r\n", "\n")
		switch mt {
		case "text/plain":
			m.Text = text
		case "text/html":
			m.HTML = text
		default:
			return fmt.Errorf("unexpected part %s", mt)
		}
		return nil
	}
	mt, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil {
		return Message{}, fmt.Errorf("Content-Type: %w", err)
	}
	if !strings.HasPrefix(mt, "multipart/") {
		if err := part(msg.Header.Get("Content-Type"), msg.Header.Get("Content-Transfer-Encoding"), msg.Body); err != nil {
			return Message{}, err
		}
		return m, nil
	}
	mr := multipart.NewReader(msg.Body, params["boundary"])
	for {
		p, err := mr.NextRawPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			return Message{}, fmt.Errorf("multipart: %w", err)
		}
		if err := part(p.Header.Get("Content-Type"), p.Header.Get("Content-Transfer-Encoding"), p); err != nil {
			return Message{}, err
		}
	}
	return m, nil
}

// Sessions is the set of SMTP sessions (X-Test-Session) that carried ms,
// in order of first use.
func Sessions(ms []Message) []string {
	var out []string
	for _, m := range ms {
		if s := m.Header.Get("X-Test-Session"); !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// writeCert writes a self-signed certificate for 127.0.0.1 and localhost
// and its key (PEM) and returns a pool that trusts it.
func writeCert(certFile, keyFile string) (*x509.CertPool, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("smtptest: key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: "smtpd.lastmile.test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("smtptest: certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("smtptest: key: %w", err)
	}
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		return nil, fmt.Errorf("smtptest: %w", err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return nil, fmt.Errorf("smtptest: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("smtptest: %w", err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return pool, nil
}
