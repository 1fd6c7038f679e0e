package mail

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
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
	"syscall"
	"testing"
	"time"
)

// The SMTP tests run testdata/smtpd.py, a real SMTP server (aiosmtpd)
// on loopback, with Debian's python3 (not whatever python3 is first on
// PATH, which may lack the package).
const (
	python       = "/usr/bin/python3"
	requireEnv   = "LASTMILE_TEST_SMTP_REQUIRED"
	testUser     = "notify"
	testPassword = "correct horse battery staple"
)

// needAiosmtpd skips the test when Debian's python3 cannot import
// aiosmtpd, or fails it when requireEnv is 1 (CI installs the package).
func needAiosmtpd(t testing.TB) {
	t.Helper()
	out, err := exec.Command(python, "-c", "import aiosmtpd").CombinedOutput()
	if err == nil {
		return
	}
	msg := fmt.Sprintf("%s cannot import aiosmtpd (%v: %s): install the Debian package python3-aiosmtpd to run the SMTP tests",
		python, err, strings.TrimSpace(string(out)))
	if os.Getenv(requireEnv) == "1" {
		t.Fatalf("%s (%s=1 requires them)", msg, requireEnv)
	}
	t.Skip(msg)
}

// smtpServer is a running testdata/smtpd.py.
type smtpServer struct {
	t         testing.TB
	dir       string // certificate, key, log and the Maildir
	maildir   string
	port      int
	roots     *x509.CertPool // trusts the server's certificate
	cmd       *exec.Cmd
	exited    chan struct{}
	startedAt int // how many times it started
}

// startSMTP starts the server on a free loopback port.
func startSMTP(t testing.TB) *smtpServer {
	t.Helper()
	needAiosmtpd(t)
	dir := t.TempDir()
	s := &smtpServer{t: t, dir: dir, maildir: filepath.Join(dir, "Maildir")}
	s.roots = writeCert(t, filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem"))
	s.start()
	t.Cleanup(s.stop)
	return s
}

// start runs the server (again, on the same port after the first time)
// and waits for its ready line.
func (s *smtpServer) start() {
	t := s.t
	t.Helper()
	s.startedAt++
	logf, err := os.Create(filepath.Join(s.dir, fmt.Sprintf("smtpd-%d.log", s.startedAt)))
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command(python, "testdata/smtpd.py", "--port", strconv.Itoa(s.port),
		"--cert", filepath.Join(s.dir, "cert.pem"), "--key", filepath.Join(s.dir, "key.pem"),
		"--user", testUser, "--password", testPassword, "--maildir", s.maildir)
	cmd.Stderr = logf
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting smtpd.py: %v", err)
	}
	s.cmd, s.exited = cmd, make(chan struct{})
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
		close(s.exited)
	}()
	select {
	case port := <-ready:
		s.port = port
	case <-s.exited:
		t.Fatalf("smtpd.py exited before it was ready:\n%s", s.log())
	case <-time.After(30 * time.Second):
		s.stop()
		t.Fatalf("smtpd.py not ready after 30 s:\n%s", s.log())
	}
}

// stop ends the server and waits for it to exit.
func (s *smtpServer) stop() {
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
	s.cmd = nil
}

// log is the server's stderr, for failure messages.
func (s *smtpServer) log() string {
	b, _ := os.ReadFile(filepath.Join(s.dir, fmt.Sprintf("smtpd-%d.log", s.startedAt)))
	return string(b)
}

// config is a Sender configuration for the server.
func (s *smtpServer) config() Config {
	return Config{
		Host: "127.0.0.1", Port: s.port, Username: testUser, Password: testPassword,
		From: "notify@lastmile.test", FromName: "Expedição Rápida", RootCAs: s.roots, Timeout: 10 * time.Second,
	}
}

// received is a message as stored by the server.
type received struct {
	header     mail.Header
	text, html string
	raw        []byte
}

// messages returns the messages stored so far whose Delivered-To is to
// ("" = all), oldest first.
func (s *smtpServer) messages(t testing.TB, to string) []received {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(s.maildir, "new"))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var out []received
	for _, e := range ents {
		raw, err := os.ReadFile(filepath.Join(s.maildir, "new", e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		m := parseMessage(t, raw)
		if to == "" || m.header.Get("Delivered-To") == to {
			out = append(out, m)
		}
	}
	return out
}

// parseMessage decodes a stored message: headers, and the text/plain and
// text/html bodies (of a multipart/alternative or a single part).
func parseMessage(t testing.TB, raw []byte) received {
	t.Helper()
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("stored message does not parse: %v\n%s", err, raw)
	}
	r := received{header: msg.Header, raw: raw}
	store := func(ctype, cte string, body io.Reader) {
		mt, _, err := mime.ParseMediaType(ctype)
		if err != nil {
			t.Fatalf("Content-Type %q: %v", ctype, err)
		}
		switch strings.ToLower(cte) {
		case "quoted-printable":
			body = quotedprintable.NewReader(body)
		case "base64":
			body = base64.NewDecoder(base64.StdEncoding, body)
		}
		b, err := io.ReadAll(body)
		if err != nil {
			t.Fatalf("%s body: %v", mt, err)
		}
		text := strings.ReplaceAll(string(b), "\r\n", "\n")
		switch mt {
		case "text/plain":
			r.text = text
		case "text/html":
			r.html = text
		default:
			t.Fatalf("unexpected part %s", mt)
		}
	}
	mt, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil {
		t.Fatalf("Content-Type: %v", err)
	}
	if !strings.HasPrefix(mt, "multipart/") {
		store(msg.Header.Get("Content-Type"), msg.Header.Get("Content-Transfer-Encoding"), msg.Body)
		return r
	}
	mr := multipart.NewReader(msg.Body, params["boundary"])
	for {
		p, err := mr.NextRawPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("multipart: %v", err)
		}
		store(p.Header.Get("Content-Type"), p.Header.Get("Content-Transfer-Encoding"), p)
	}
	return r
}

// writeCert writes a self-signed certificate for 127.0.0.1 and localhost
// and its key (PEM) and returns a pool that trusts it.
func writeCert(t testing.TB, certFile, keyFile string) *x509.CertPool {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
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
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return pool
}

// sessions is the set of SMTP sessions (X-Test-Session) that carried ms.
func sessions(ms []received) []string {
	var out []string
	for _, m := range ms {
		if s := m.header.Get("X-Test-Session"); !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}
