// Package sms sends SMS through an HTTP gateway that takes Twilio's
// Messages request: POST {BaseURL}/2010-04-01/Accounts/{AccountSID}/Messages.json,
// form-encoded To, From and Body, HTTP basic authentication with the
// account SID and auth token, a JSON answer whose "sid" names the message.
// Twilio itself and gateways that copy its API (or a local relay) work
// alike.
//
// Send makes one attempt; the caller retries. Its errors say whether a
// retry can help (Permanent) and how long the gateway asked to wait
// (Error.RetryAfter).
package sms

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// DefaultBaseURL is Twilio's API.
const DefaultBaseURL = "https://api.twilio.com"

// DefaultTimeout bounds one Send when Config.Timeout is 0.
const DefaultTimeout = 15 * time.Second

// MaxBody is the longest body Send accepts, in characters (Twilio's limit
// for a concatenated message).
const MaxBody = 1600

// maxAnswer bounds how much of the gateway's answer is read.
const maxAnswer = 64 << 10

// ErrInvalid is wrapped by the errors of a request that Send refuses to
// make (a bad number or body); Permanent is true for them.
var ErrInvalid = errors.New("invalid SMS")

// Config configures a Sender.
type Config struct {
	// BaseURL is the gateway's scheme and host, with an optional path
	// prefix ("" = DefaultBaseURL). It must be https, except on a
	// loopback host (a local relay or a test).
	BaseURL string
	// AccountSID and AuthToken are the basic-authentication credentials;
	// the SID is also in the request path (letters and digits).
	AccountSID, AuthToken string
	// From is the sender: an E.164 number or an alphanumeric sender ID.
	From string
	// Timeout bounds a whole request, answer included (0 =
	// DefaultTimeout).
	Timeout time.Duration
}

// Sender sends SMS through one gateway account. It is safe for concurrent
// use and keeps its HTTP connections alive between sends.
type Sender struct {
	endpoint string // the Messages URL
	sid      string
	token    string
	from     string
	client   *http.Client
}

// New validates cfg and returns a Sender.
func New(cfg Config) (*Sender, error) {
	base := cfg.BaseURL
	if base == "" {
		base = DefaultBaseURL
	}
	u, err := url.Parse(base)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("sms: base URL %q: want https://host[/prefix]", base)
	}
	if u.Scheme == "http" && !isLoopback(u.Hostname()) {
		return nil, fmt.Errorf("sms: base URL %q: plain http is allowed only to a loopback host (the auth token would travel in clear)", base)
	}
	if cfg.AccountSID == "" || strings.IndexFunc(cfg.AccountSID, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9')
	}) >= 0 {
		return nil, errors.New("sms: account SID: want letters and digits")
	}
	if cfg.AuthToken == "" {
		return nil, errors.New("sms: auth token is empty")
	}
	if err := checkFrom(cfg.From); err != nil {
		return nil, err
	}
	timeout := cfg.Timeout
	if timeout == 0 {
		timeout = DefaultTimeout
	}
	if timeout < 0 {
		return nil, fmt.Errorf("sms: timeout %v is negative", timeout)
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.MaxIdleConnsPerHost = 16
	return &Sender{
		endpoint: strings.TrimRight(u.String(), "/") + "/2010-04-01/Accounts/" + cfg.AccountSID + "/Messages.json",
		sid:      cfg.AccountSID, token: cfg.AuthToken, from: cfg.From,
		client: &http.Client{
			Timeout:   timeout,
			Transport: transport,
			// A redirect would resend the credentials elsewhere and turn
			// the POST into a GET: the 3xx is returned as an error.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}, nil
}

// isLoopback reports a loopback host name or address.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// checkFrom accepts an E.164 number or an alphanumeric sender ID (1 to 11
// letters, digits and spaces, at least one letter).
func checkFrom(from string) error {
	if ValidNumber(from) {
		return nil
	}
	letter := false
	for _, r := range from {
		switch {
		case r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z':
			letter = true
		case r >= '0' && r <= '9' || r == ' ':
		default:
			return fmt.Errorf("sms: sender %q: want an E.164 number (+ and digits) or an alphanumeric sender ID", from)
		}
	}
	if !letter || len(from) > 11 {
		return fmt.Errorf("sms: sender %q: want an E.164 number (+ and digits) or an alphanumeric sender ID of up to 11 characters", from)
	}
	return nil
}

// ValidNumber reports whether s is an E.164 number as Send takes it: "+",
// a non-zero digit, then 6 to 14 more digits, nothing else.
func ValidNumber(s string) bool {
	if len(s) < 8 || len(s) > 16 || s[0] != '+' || s[1] < '1' || s[1] > '9' {
		return false
	}
	for i := 2; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// NormalizeNumber turns a phone number written with spaces, dashes, dots
// or parentheses ("+351 912-345 678") into E.164 ("+351912345678"). It
// needs the leading "+" (it does not guess a country) and reports false
// when the result is not ValidNumber.
func NormalizeNumber(s string) (string, bool) {
	var b strings.Builder
	for _, r := range strings.TrimSpace(s) {
		switch r {
		case ' ', '-', '.', '(', ')', '\u00a0':
			continue
		}
		b.WriteRune(r)
	}
	n := b.String()
	return n, ValidNumber(n)
}

// Error is a send that failed at the gateway or on the way to it.
type Error struct {
	// Status is the HTTP status of the answer, 0 when there was none
	// (a network error or a timeout).
	Status int
	// RetryAfter is how long the gateway asked to wait (its Retry-After,
	// in seconds or as an HTTP date, counted from the answer), 0 when it
	// did not say.
	RetryAfter time.Duration
	// Code is the gateway's error code from the JSON answer (Twilio's
	// "code"), 0 when there is none.
	Code int
	// Message is the gateway's error text from the JSON answer. It may
	// quote the recipient's number, so Error leaves it out: log it only
	// where personal data may go.
	Message string
	// Err is the underlying error when there was no usable answer.
	Err error
}

// Error describes the failure without personal data.
func (e *Error) Error() string {
	var b strings.Builder
	if e.Status == 0 {
		b.WriteString("sms: gateway unreachable")
	} else {
		fmt.Fprintf(&b, "sms: gateway answered %d %s", e.Status, http.StatusText(e.Status))
	}
	if e.Code != 0 {
		fmt.Fprintf(&b, " (error code %d)", e.Code)
	}
	if e.RetryAfter > 0 {
		fmt.Fprintf(&b, ", retry after %v", e.RetryAfter)
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap returns Err.
func (e *Error) Unwrap() error { return e.Err }

// Permanent reports whether retrying err cannot help: a request Send
// refused (ErrInvalid), or a 4xx answer other than 408 Request Timeout and
// 429 Too Many Requests (bad credentials, a number the gateway rejects).
// Network errors, timeouts, 408, 429 and 5xx are temporary.
func Permanent(err error) bool {
	if errors.Is(err, ErrInvalid) {
		return true
	}
	var e *Error
	if !errors.As(err, &e) {
		return false
	}
	return e.Status >= 400 && e.Status < 500 && e.Status != http.StatusRequestTimeout && e.Status != http.StatusTooManyRequests
}

// Send sends body to the E.164 number to and returns the gateway's message
// id. It makes one attempt: its error is an *Error (see Permanent) or wraps
// ErrInvalid when to or body are not acceptable, in which case nothing is
// sent. A 2xx answer without a message id is an *Error too, but a
// permanent one: the message may have gone, and a retry could send it
// twice.
func (s *Sender) Send(ctx context.Context, to, body string) (messageID string, err error) {
	if !ValidNumber(to) {
		return "", fmt.Errorf("sms: recipient is not an E.164 number (+ and 7 to 15 digits): %w", ErrInvalid)
	}
	if body == "" || !utf8.ValidString(body) || utf8.RuneCountInString(body) > MaxBody {
		return "", fmt.Errorf("sms: body must be 1 to %d characters of UTF-8: %w", MaxBody, ErrInvalid)
	}
	form := url.Values{"To": {to}, "From": {s.from}, "Body": {body}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.endpoint, strings.NewReader(form))
	if err != nil {
		return "", fmt.Errorf("sms: request: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	req.SetBasicAuth(s.sid, s.token)
	resp, err := s.client.Do(req)
	if err != nil {
		// url.Error quotes the URL, which holds only the account SID.
		return "", &Error{Err: err}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil && resp.StatusCode/100 != 2 {
		return "", &Error{Status: resp.StatusCode, Err: fmt.Errorf("reading the answer: %w", err)}
	}
	var answer struct {
		SID     string          `json:"sid"`
		Code    json.RawMessage `json:"code"`
		Message string          `json:"message"`
	}
	jsonErr := json.Unmarshal(data, &answer)
	if resp.StatusCode/100 == 2 {
		if err != nil || jsonErr != nil || answer.SID == "" {
			return "", &Error{Status: resp.StatusCode, Err: errNoSID}
		}
		return answer.SID, nil
	}
	e := &Error{Status: resp.StatusCode, Message: answer.Message, RetryAfter: retryAfter(resp.Header.Get("Retry-After"), time.Now())}
	if n, err := strconv.Atoi(strings.Trim(string(answer.Code), `"`)); err == nil {
		e.Code = n
	}
	return "", e
}

// errNoSID is the error of a 2xx answer without a message id. It wraps
// ErrInvalid so that Permanent is true: the gateway took the request, and
// a retry could send the message twice.
var errNoSID = fmt.Errorf("the answer has no message sid; the message may have been sent: %w", ErrInvalid)

// retryAfter parses a Retry-After value: delay seconds or an HTTP date
// (relative to now, never negative); 0 when absent or unreadable.
func retryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n <= 0 {
			return 0
		}
		return time.Duration(min(n, 86400)) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return min(d.Round(time.Second), 24*time.Hour)
		}
	}
	return 0
}
