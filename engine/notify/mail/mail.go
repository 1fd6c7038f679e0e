// Package mail sends e-mail through an SMTP relay (a submission server:
// the operator's mail server or an e-mail service's SMTP endpoint).
//
// The SMTP protocol and the message format come from
// github.com/wneessen/go-mail: it is actively maintained, has no
// dependencies beyond golang.org/x, and does what net/smtp and a
// hand-written MIME writer would otherwise have to: STARTTLS and implicit
// TLS, SMTP AUTH (PLAIN, LOGIN) that refuses to send a password in clear,
// multipart/alternative bodies, RFC 2047 encoding of non-ASCII subjects
// and display names, quoted-printable bodies, dot-stuffing, and errors
// that carry the SMTP reply code. This package adds what a notification
// outbox needs around it: validation before anything is sent, a small
// pool of authenticated sessions reused across sends, and the split of
// failures into permanent and temporary (Permanent).
package mail

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/mail"
	"net/textproto"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	gomail "github.com/wneessen/go-mail"
	"github.com/wneessen/go-mail/smtp"
)

// TLSMode is how a Sender protects its SMTP connection.
type TLSMode int

// TLS modes. The zero value, StartTLSRequired, is the default.
const (
	// StartTLSRequired upgrades the connection with STARTTLS and fails
	// when the server does not offer it (default port 587).
	StartTLSRequired TLSMode = iota
	// StartTLSOpportunistic uses STARTTLS when the server offers it and
	// goes on in clear otherwise (AUTH is then refused, except to a
	// loopback server).
	StartTLSOpportunistic
	// ImplicitTLS speaks TLS from the first byte ("SMTPS", default port
	// 465).
	ImplicitTLS
	// NoTLS never encrypts: only for a relay on the same host or a
	// trusted network (default port 25).
	NoTLS
)

var tlsModeNames = map[TLSMode]string{
	StartTLSRequired:      "starttls",
	StartTLSOpportunistic: "starttls-opportunistic",
	ImplicitTLS:           "tls",
	NoTLS:                 "none",
}

// String is the mode's name as ParseTLSMode reads it.
func (m TLSMode) String() string {
	if s, ok := tlsModeNames[m]; ok {
		return s
	}
	return fmt.Sprintf("TLSMode(%d)", int(m))
}

// ParseTLSMode reads a mode name: "starttls" (or ""), "starttls-opportunistic",
// "tls" or "none".
func ParseTLSMode(s string) (TLSMode, error) {
	if s == "" {
		return StartTLSRequired, nil
	}
	for m, name := range tlsModeNames {
		if name == s {
			return m, nil
		}
	}
	return 0, fmt.Errorf("mail: TLS mode %q: want starttls, starttls-opportunistic, tls or none", s)
}

// Defaults of a Config's zero fields.
const (
	DefaultTimeout       = 30 * time.Second
	DefaultPoolSize      = 4
	DefaultMaxIdle       = 30 * time.Second
	DefaultMaxPerSession = 100
)

// Config configures a Sender.
type Config struct {
	// Host is the SMTP server's name (also the name its certificate must
	// have) and Port its port (0 = 465 with ImplicitTLS, 25 with NoTLS,
	// else 587).
	Host string
	Port int
	// Username and Password authenticate with AUTH PLAIN (or LOGIN when
	// the server offers only that); no AUTH when Username is "". The
	// password is never sent without TLS, except to a loopback server.
	Username, Password string
	// From is the sender's plain address and FromName its display name
	// ("Acme Parcels"; may be non-ASCII).
	From, FromName string
	// TLS is the connection's protection (default StartTLSRequired).
	TLS TLSMode
	// RootCAs verifies the server's certificate (nil = the system's).
	RootCAs *x509.CertPool
	// Timeout bounds connecting (TCP, greeting, TLS, AUTH) and each SMTP
	// command of a send (0 = DefaultTimeout).
	Timeout time.Duration
	// PoolSize is the most SMTP sessions open at once, and so the most
	// sends under way at once (0 = DefaultPoolSize).
	PoolSize int
	// MaxIdle closes a session unused this long instead of reusing it
	// (0 = DefaultMaxIdle): servers drop idle clients after a while.
	MaxIdle time.Duration
	// MaxPerSession is how many messages a session sends before it is
	// closed and a new one opened (0 = DefaultMaxPerSession).
	MaxPerSession int
	// HELO is the name the client gives in EHLO ("" = the host name).
	HELO string
	// Logger receives connection events (never addresses or content);
	// nil = none.
	Logger *slog.Logger
}

// OneClickPost is the List-Unsubscribe-Post value of RFC 8058.
const OneClickPost = "List-Unsubscribe=One-Click"

// Message is one e-mail to one recipient.
type Message struct {
	// To is the recipient's plain address ("ana@example.com").
	To string
	// Subject is one line (no CR, LF or other control characters).
	Subject string
	// Text and HTML are the bodies; with both the message is
	// multipart/alternative. At least one is required.
	Text, HTML string
	// MessageID is the Message-ID, "id@domain" with or without angle
	// brackets ("" = a random one). Derive it from the notification's
	// event so that a redelivered notification keeps its Message-ID.
	MessageID string
	// ListUnsubscribe is the recipient's unsubscribe URL (absolute http
	// or https), sent as "List-Unsubscribe: <URL>" ("" = no header).
	ListUnsubscribe string
	// OneClick adds "List-Unsubscribe-Post: List-Unsubscribe=One-Click"
	// (RFC 8058): a POST of that body to ListUnsubscribe unsubscribes at
	// once. It needs an https ListUnsubscribe.
	OneClick bool
}

// ErrInvalid is wrapped by the errors of a message (or configuration)
// that Send refuses before connecting: nothing was sent, and Permanent is
// true.
var ErrInvalid = errors.New("invalid e-mail")

// ErrClosed is returned by Send after Close.
var ErrClosed = errors.New("mail: sender is closed")

// Error is a send that failed at the SMTP server or on the way to it.
// Its text leaves out every e-mail address the underlying error or the
// server's reply may quote.
type Error struct {
	// Stage is where it failed: "connect" (TCP, greeting, EHLO, TLS),
	// "auth", or "send" (MAIL, RCPT, DATA).
	Stage string
	// Code is the SMTP reply code (550, 451…), 0 when the failure was not
	// a reply (network, TLS, timeout).
	Code int
	// Err is the underlying error (its text may hold addresses).
	Err error
}

// Error describes the failure without e-mail addresses.
func (e *Error) Error() string {
	return "mail: " + e.Stage + ": " + redact(e.Err.Error())
}

// Unwrap returns Err.
func (e *Error) Unwrap() error { return e.Err }

// addressLike matches what looks like an e-mail address (or a Message-ID)
// in an error text.
var addressLike = regexp.MustCompile(`[^\s<>"'(),;:\[\]]+@[^\s<>"'(),;:\[\]]+`)

// redact replaces every e-mail address in s.
func redact(s string) string { return addressLike.ReplaceAllString(s, "[address]") }

// Permanent reports whether retrying err cannot help: a message Send
// refused (ErrInvalid: a bad address, a line break in a header), a 5xx
// reply (a recipient the server refuses, AUTH refused), or a server that
// offers no usable AUTH. Temporary are 4xx replies, network and TLS
// failures, timeouts and a cancelled context: retry those later.
func Permanent(err error) bool {
	if errors.Is(err, ErrInvalid) || errors.Is(err, errNoAuth) {
		return true
	}
	var e *Error
	return errors.As(err, &e) && e.Code >= 500 && e.Code < 600
}

// errNoAuth is the error of a server that offers no AUTH PLAIN or LOGIN.
var errNoAuth = errors.New("the server offers no AUTH PLAIN or LOGIN")

// Sender sends e-mail through one SMTP server, reusing up to
// Config.PoolSize authenticated sessions. It is safe for concurrent use.
type Sender struct {
	cfg    Config
	from   string // the From address
	client *gomail.Client
	log    *slog.Logger
	slots  chan struct{} // one token per session in use

	mu     sync.Mutex
	idle   []*session // most recently used last
	closed bool
}

// session is one connected, authenticated SMTP session.
type session struct {
	c    *smtp.Client
	conn net.Conn // the TCP connection under c (under TLS too)
	used time.Time
	sent int
	dead bool // its connection was closed under it (a context ended)
}

// dialKey is the context key under which dial finds the connRecord of
// the session being opened.
type dialKey struct{}

// connRecord holds the connection of a session being opened, so that the
// end of the caller's context can close it mid-handshake.
type connRecord struct {
	mu        sync.Mutex
	conn      net.Conn
	cancelled bool
}

// set records conn; it closes conn at once when the context already ended.
func (r *connRecord) set(conn net.Conn) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.conn = conn
	if r.cancelled {
		conn.Close()
	}
}

// cancel closes the recorded connection, now or when it is set.
func (r *connRecord) cancel() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cancelled = true
	if r.conn != nil {
		r.conn.Close()
	}
}

// get returns the recorded connection (nil before dial).
func (r *connRecord) get() net.Conn {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.conn
}

// New validates cfg and returns a Sender. It does not connect: the first
// Send does.
func New(cfg Config) (*Sender, error) {
	if cfg.Host == "" || strings.ContainsAny(cfg.Host, " /\r\n") {
		return nil, fmt.Errorf("mail: host %q: want a host name or address", cfg.Host)
	}
	if _, ok := tlsModeNames[cfg.TLS]; !ok {
		return nil, fmt.Errorf("mail: unknown TLS mode %d", int(cfg.TLS))
	}
	if cfg.Port == 0 {
		switch cfg.TLS {
		case ImplicitTLS:
			cfg.Port = 465
		case NoTLS:
			cfg.Port = 25
		default:
			cfg.Port = 587
		}
	}
	if cfg.Port < 1 || cfg.Port > 65535 {
		return nil, fmt.Errorf("mail: port %d: want 1 to 65535", cfg.Port)
	}
	from, err := plainAddress(cfg.From)
	if err != nil {
		return nil, fmt.Errorf("mail: from address: %w", err)
	}
	if err := headerText(cfg.FromName); err != nil {
		return nil, fmt.Errorf("mail: from name: %w", err)
	}
	if strings.ContainsAny(cfg.Username+cfg.Password, "\r\n") {
		return nil, errors.New("mail: username and password must not hold line breaks")
	}
	if cfg.Username != "" && cfg.TLS == NoTLS && !isLoopback(cfg.Host) {
		return nil, errors.New("mail: AUTH needs TLS: with TLS mode none the password would travel in clear")
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.PoolSize == 0 {
		cfg.PoolSize = DefaultPoolSize
	}
	if cfg.MaxIdle == 0 {
		cfg.MaxIdle = DefaultMaxIdle
	}
	if cfg.MaxPerSession == 0 {
		cfg.MaxPerSession = DefaultMaxPerSession
	}
	if cfg.Timeout < 0 || cfg.PoolSize < 0 || cfg.PoolSize > 64 || cfg.MaxIdle < 0 || cfg.MaxPerSession < 0 {
		return nil, errors.New("mail: timeout, pool size (at most 64), idle time and messages per session must not be negative")
	}
	tlsConfig := &tls.Config{ServerName: cfg.Host, RootCAs: cfg.RootCAs, MinVersion: tls.VersionTLS12}
	s := &Sender{cfg: cfg, from: from, log: cfg.Logger, slots: make(chan struct{}, cfg.PoolSize)}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	policy := gomail.TLSMandatory
	switch cfg.TLS {
	case StartTLSOpportunistic:
		policy = gomail.TLSOpportunistic
	case ImplicitTLS, NoTLS:
		// Implicit TLS is set up by dial, below STARTTLS's level.
		policy = gomail.NoTLS
	}
	opts := []gomail.Option{
		gomail.WithPort(cfg.Port),
		gomail.WithTimeout(cfg.Timeout),
		gomail.WithTLSPolicy(policy),
		gomail.WithTLSConfig(tlsConfig),
		gomail.WithDialContextFunc(func(ctx context.Context, network, addr string) (net.Conn, error) {
			return s.dial(ctx, network, addr, tlsConfig)
		}),
		// A session is checked by the send itself (see Send), not by a
		// NOOP before each message; after a completed DATA the next MAIL
		// needs no RSET.
		gomail.WithoutNoop(),
		gomail.WithoutRset(),
	}
	if cfg.HELO != "" {
		opts = append(opts, gomail.WithHELO(cfg.HELO))
	}
	// AUTH is done by connect with a mechanism chosen per session, so the
	// go-mail client itself does none.
	s.client, err = gomail.NewClient(cfg.Host, opts...)
	if err != nil {
		return nil, fmt.Errorf("mail: %w", err)
	}
	return s, nil
}

// dial opens the TCP (and with ImplicitTLS the TLS) connection of a new
// session and records it where connect asked (see dialKey).
func (s *Sender) dial(ctx context.Context, network, addr string, tlsConfig *tls.Config) (net.Conn, error) {
	var d net.Dialer
	raw, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	if rec, ok := ctx.Value(dialKey{}).(*connRecord); ok {
		rec.set(raw)
	}
	if s.cfg.TLS != ImplicitTLS {
		return raw, nil
	}
	conn := tls.Client(raw, tlsConfig)
	if err := conn.HandshakeContext(ctx); err != nil {
		raw.Close()
		return nil, err
	}
	return conn, nil
}

// connect opens a new session: connection, greeting, EHLO, STARTTLS and
// AUTH as configured. The end of ctx aborts it at once.
func (s *Sender) connect(ctx context.Context) (*session, error) {
	rec := &connRecord{}
	stop := context.AfterFunc(ctx, rec.cancel)
	fail := func(err error) (*session, error) {
		stop()
		if raw := rec.get(); raw != nil {
			raw.Close()
		}
		if ctx.Err() != nil {
			err = &Error{Stage: "connect", Err: fmt.Errorf("%w (%v)", ctx.Err(), err)}
		}
		return nil, err
	}
	c, err := s.client.DialToSMTPClientWithContext(context.WithValue(ctx, dialKey{}, rec))
	if err != nil {
		return fail(&Error{Stage: "connect", Code: replyCode(err), Err: err})
	}
	if s.cfg.Username != "" {
		if err := s.auth(c); err != nil {
			return fail(err)
		}
	}
	if !stop() {
		return fail(&Error{Stage: "connect", Err: ctx.Err()})
	}
	s.log.Debug("mail: SMTP session opened", "host", s.cfg.Host, "port", s.cfg.Port)
	return &session{c: c, conn: rec.get()}, nil
}

// auth authenticates c with PLAIN, or LOGIN when the server offers only
// that. The mechanisms refuse to send the password without TLS unless the
// server is on loopback.
func (s *Sender) auth(c *smtp.Client) error {
	ok, mechs := c.Extension("AUTH")
	var a smtp.Auth
	switch list := strings.Fields(strings.ToUpper(mechs)); {
	case ok && containsWord(list, "PLAIN"):
		a = smtp.PlainAuth("", s.cfg.Username, s.cfg.Password, s.cfg.Host, false)
	case ok && containsWord(list, "LOGIN"):
		a = smtp.LoginAuth(s.cfg.Username, s.cfg.Password, s.cfg.Host, false)
	default:
		return &Error{Stage: "auth", Err: errNoAuth}
	}
	if err := c.Auth(a); err != nil {
		return &Error{Stage: "auth", Code: replyCode(err), Err: err}
	}
	return nil
}

func containsWord(list []string, w string) bool {
	for _, x := range list {
		if x == w {
			return true
		}
	}
	return false
}

// replyCode is the SMTP reply code in err, 0 when there is none.
func replyCode(err error) int {
	var te *textproto.Error
	if errors.As(err, &te) {
		return te.Code
	}
	var se *gomail.SendError
	if errors.As(err, &se) {
		return se.ErrorCode()
	}
	return 0
}

// Send sends m. It validates m first and sends nothing when m is not
// acceptable (the error wraps ErrInvalid and says why). It makes one
// attempt, except that a pooled session found dead before MAIL FROM was
// accepted is replaced by a new one; the caller retries what Permanent
// reports as temporary. ctx bounds the wait for a session and the send.
func (s *Sender) Send(ctx context.Context, m Message) error {
	msg, err := s.build(m)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return &Error{Stage: "connect", Err: err}
	}
	select {
	case s.slots <- struct{}{}:
	case <-ctx.Done():
		return &Error{Stage: "connect", Err: fmt.Errorf("waiting for a free SMTP session: %w", ctx.Err())}
	}
	defer func() { <-s.slots }()

	sess, reused, err := s.take(ctx)
	if err != nil {
		return err
	}
	err = s.sendOn(ctx, sess, msg)
	if err != nil && reused && staleSession(err) && ctx.Err() == nil {
		// The server dropped the idle session (a restart, an idle
		// timeout): no transaction began, so a new session may try.
		s.log.Info("mail: SMTP session was closed by the server; reconnecting", "host", s.cfg.Host)
		s.discard(sess)
		if sess, err = s.connect(ctx); err != nil {
			return err
		}
		err = s.sendOn(ctx, sess, msg)
	}
	if err != nil {
		s.discard(sess)
		return err
	}
	s.put(sess)
	return nil
}

// staleSession reports a send that failed on a dead connection before the
// server accepted MAIL FROM (no reply code): nothing was delivered.
func staleSession(err error) bool {
	var se *gomail.SendError
	if !errors.As(err, &se) || se.ErrorCode() != 0 {
		return false
	}
	return se.Reason == gomail.ErrConnCheck || se.Reason == gomail.ErrSMTPMailFrom
}

// sendOn sends msg over sess; ctx's end closes the connection, which ends
// the exchange at once.
func (s *Sender) sendOn(ctx context.Context, sess *session, msg *gomail.Msg) error {
	stop := context.AfterFunc(ctx, func() { sess.conn.Close() })
	err := s.client.SendWithSMTPClient(sess.c, msg)
	if !stop() {
		sess.dead = true
	}
	sess.used = time.Now()
	if err == nil {
		sess.sent++
		return nil
	}
	if ctx.Err() != nil {
		return &Error{Stage: "send", Err: fmt.Errorf("%w (%v)", ctx.Err(), err)}
	}
	code := replyCode(err)
	var se *gomail.SendError
	if errors.As(err, &se) && (se.Reason == gomail.ErrGetSender || se.Reason == gomail.ErrGetRcpts) {
		err = fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return &Error{Stage: "send", Code: code, Err: err}
}

// take returns an idle session (reused true) or a new one.
func (s *Sender) take(ctx context.Context) (sess *session, reused bool, err error) {
	now := time.Now()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, false, ErrClosed
	}
	var old []*session
	for len(s.idle) > 0 {
		n := len(s.idle) - 1
		cand := s.idle[n]
		s.idle = s.idle[:n]
		if now.Sub(cand.used) < s.cfg.MaxIdle {
			sess = cand
			break
		}
		old = append(old, cand)
	}
	s.mu.Unlock()
	for _, o := range old {
		s.quit(o)
	}
	if sess != nil {
		return sess, true, nil
	}
	sess, err = s.connect(ctx)
	return sess, false, err
}

// put returns a healthy session to the pool, or closes it when the Sender
// is closed or the session has sent its share.
func (s *Sender) put(sess *session) {
	s.mu.Lock()
	if sess.dead {
		s.mu.Unlock()
		s.discard(sess)
		return
	}
	if !s.closed && sess.sent < s.cfg.MaxPerSession {
		s.idle = append(s.idle, sess)
		sess = nil
	}
	s.mu.Unlock()
	if sess != nil {
		s.quit(sess)
	}
}

// quit ends a healthy session politely (QUIT, bounded by a short
// deadline) and closes it.
func (s *Sender) quit(sess *session) {
	_ = sess.conn.SetDeadline(time.Now().Add(2 * time.Second))
	_ = sess.c.Quit()
	sess.conn.Close()
}

// discard closes a session after an error, without a word to the server.
func (s *Sender) discard(sess *session) { sess.conn.Close() }

// Close ends the idle sessions; sessions in use end when their send
// returns. Send fails with ErrClosed afterwards. Close is idempotent.
func (s *Sender) Close() error {
	s.mu.Lock()
	idle := s.idle
	s.idle, s.closed = nil, true
	s.mu.Unlock()
	for _, sess := range idle {
		s.quit(sess)
	}
	return nil
}

// build validates m and makes its go-mail message.
func (s *Sender) build(m Message) (*gomail.Msg, error) {
	invalid := func(format string, args ...any) error {
		return fmt.Errorf("mail: %s; nothing was sent: %w", fmt.Sprintf(format, args...), ErrInvalid)
	}
	if strings.ContainsAny(m.To, "\r\n") {
		return nil, invalid("the recipient address holds a line break (CR or LF)")
	}
	to, err := plainAddress(m.To)
	if err != nil {
		return nil, invalid("recipient address: %v", err)
	}
	if err := headerText(m.Subject); err != nil {
		return nil, invalid("subject: %v", err)
	}
	if m.Text == "" && m.HTML == "" {
		return nil, invalid("the message has no text or HTML body")
	}
	if !utf8.ValidString(m.Text) || !utf8.ValidString(m.HTML) {
		return nil, invalid("a body is not valid UTF-8")
	}
	id, err := messageID(m.MessageID)
	if err != nil {
		return nil, invalid("Message-ID: %v", err)
	}
	if m.ListUnsubscribe != "" || m.OneClick {
		if err := unsubscribeURL(m.ListUnsubscribe, m.OneClick); err != nil {
			return nil, invalid("List-Unsubscribe: %v", err)
		}
	}

	msg := gomail.NewMsg()
	if s.cfg.FromName != "" {
		err = msg.FromFormat(s.cfg.FromName, s.from)
	} else {
		err = msg.From(s.from)
	}
	if err != nil {
		return nil, invalid("from: %v", err)
	}
	if err := msg.To(to); err != nil {
		return nil, invalid("recipient address: %v", redact(err.Error()))
	}
	msg.Subject(m.Subject)
	msg.SetDate()
	if id != "" {
		msg.SetMessageIDWithValue(id)
	} else {
		msg.SetMessageID()
	}
	if m.ListUnsubscribe != "" {
		msg.SetGenHeader(gomail.HeaderListUnsubscribe, "<"+m.ListUnsubscribe+">")
		if m.OneClick {
			msg.SetGenHeader(gomail.HeaderListUnsubscribePost, OneClickPost)
		}
	}
	// RFC 3834: an automatic message; out-of-office replies stay away.
	msg.SetGenHeader(gomail.Header("Auto-Submitted"), "auto-generated")
	msg.SetUserAgent("lastmile")
	switch {
	case m.Text != "" && m.HTML != "":
		msg.SetBodyString(gomail.TypeTextPlain, m.Text)
		msg.AddAlternativeString(gomail.TypeTextHTML, m.HTML)
	case m.Text != "":
		msg.SetBodyString(gomail.TypeTextPlain, m.Text)
	default:
		msg.SetBodyString(gomail.TypeTextHTML, m.HTML)
	}
	return msg, nil
}

// plainAddress accepts a bare address ("ana@example.com": no display
// name, no angle brackets) of at most 254 bytes.
func plainAddress(s string) (string, error) {
	if strings.ContainsAny(s, "\r\n") {
		return "", errors.New("holds a line break (CR or LF)")
	}
	if s == "" || len(s) > 254 {
		return "", errors.New("want 1 to 254 characters")
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Name != "" || a.Address != s {
		return "", errors.New("not a plain e-mail address")
	}
	return s, nil
}

// headerText accepts a header value: UTF-8 with no line break or other
// control character, at most 998 bytes.
func headerText(s string) error {
	if strings.ContainsAny(s, "\r\n") {
		return errors.New("holds a line break (CR or LF)")
	}
	if !utf8.ValidString(s) {
		return errors.New("not valid UTF-8")
	}
	if strings.IndexFunc(s, unicode.IsControl) >= 0 || strings.ContainsAny(s, "\u2028\u2029") {
		return errors.New("holds a control character")
	}
	if len(s) > 998 {
		return fmt.Errorf("%d bytes, at most 998", len(s))
	}
	return nil
}

// messageID validates a Message-ID and returns it without angle brackets
// ("" stays "").
func messageID(s string) (string, error) {
	if strings.ContainsAny(s, "\r\n") {
		return "", errors.New("holds a line break (CR or LF)")
	}
	s = strings.TrimSuffix(strings.TrimPrefix(s, "<"), ">")
	if s == "" {
		return "", nil
	}
	left, right, ok := strings.Cut(s, "@")
	if !ok || left == "" || right == "" || strings.Contains(right, "@") || len(s) > 250 {
		return "", errors.New("want id@domain, at most 250 characters")
	}
	for _, r := range s {
		if r <= ' ' || r >= 0x7f || strings.ContainsRune(`<>()[]\,;:"`, r) {
			return "", fmt.Errorf("character %q is not allowed", r)
		}
	}
	return s, nil
}

// unsubscribeURL validates a List-Unsubscribe URL.
func unsubscribeURL(s string, oneClick bool) error {
	if strings.ContainsAny(s, "\r\n") {
		return errors.New("holds a line break (CR or LF)")
	}
	if s == "" {
		return errors.New("one-click unsubscribe needs the unsubscribe URL")
	}
	for _, r := range s {
		if r <= ' ' || r >= 0x7f || r == '<' || r == '>' {
			return errors.New("want a URL of printable ASCII without spaces or angle brackets")
		}
	}
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return errors.New("want an absolute http or https URL")
	}
	if oneClick && u.Scheme != "https" {
		return errors.New("one-click unsubscribe (RFC 8058) needs an https URL")
	}
	if len(s) > 900 {
		return errors.New("the URL is longer than 900 bytes")
	}
	return nil
}

// isLoopback reports a loopback host name or address.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
