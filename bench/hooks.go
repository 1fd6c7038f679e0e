package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Receiver modes of the ingest benchmark's webhook receiver: a healthy
// one and the faults of the notification issue.
const (
	HookOK   = "ok"   // answers 204 at once
	HookDown = "down" // nothing listens (connection refused)
	HookSlow = "slow" // answers 204 after 10 s
	Hook500  = "500"  // answers 500
	Hook429  = "429"  // answers 429 with Retry-After: 60
	HookTLS  = "tls"  // HTTPS with a certificate nobody trusts
)

// HookModes lists the receiver modes.
var HookModes = []string{HookOK, HookDown, HookSlow, Hook500, Hook429, HookTLS}

// hookReceiver is the benchmark's webhook receiver on loopback. It
// records, per delivery, the arrival time and what identifies the ping
// that caused it (vehicle and ping time of arriving_soon events).
type hookReceiver struct {
	url  string
	srv  *httptest.Server
	mu   sync.Mutex
	got  int
	ids  map[string]int
	soon []soonArrival
}

// soonArrival is an arriving_soon webhook received.
type soonArrival struct {
	tracking string
	time     int64 // the event's (ping's) time, Unix s
	at       time.Time
}

// startHookReceiver starts a receiver in the given mode.
func startHookReceiver(mode string) (*hookReceiver, error) {
	h := &hookReceiver{ids: map[string]int{}}
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		var p struct {
			Type string `json:"type"`
			Data struct {
				Tracking string `json:"tracking"`
				Time     int64  `json:"time"`
			} `json:"data"`
		}
		_ = json.Unmarshal(body, &p)
		switch mode {
		case HookSlow:
			time.Sleep(10 * time.Second)
		case Hook500:
			w.WriteHeader(500)
			return
		case Hook429:
			w.Header().Set("Retry-After", "60")
			w.WriteHeader(429)
			return
		}
		h.mu.Lock()
		h.got++
		h.ids[r.Header.Get("webhook-id")]++
		if p.Type == "arriving_soon" {
			h.soon = append(h.soon, soonArrival{p.Data.Tracking, p.Data.Time, time.Now()})
		}
		h.mu.Unlock()
		w.WriteHeader(204)
	})
	switch mode {
	case HookOK, HookSlow, Hook500, Hook429:
		h.srv = httptest.NewServer(handler)
		h.url = h.srv.URL
	case HookTLS:
		h.srv = httptest.NewTLSServer(handler)
		h.url = h.srv.URL
	case HookDown:
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		h.url = "http://" + ln.Addr().String()
		ln.Close() // the port is free: connections are refused
	default:
		return nil, fmt.Errorf("bench: webhook receiver mode %q: want one of %s", mode, strings.Join(HookModes, ", "))
	}
	return h, nil
}

func (h *hookReceiver) close() {
	if h.srv != nil {
		h.srv.CloseClientConnections()
		h.srv.Close()
	}
}

// counts returns the deliveries received and the distinct webhook ids.
func (h *hookReceiver) counts() (got, distinct int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.got, len(h.ids)
}

// pingLog remembers when each van's pings were posted (wall clock, by
// van and ping second), to time a webhook from the ping that caused it.
type pingLog struct {
	mu   sync.Mutex
	sent map[string]map[int64]time.Time
}

func (l *pingLog) add(van string, t int64, at time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.sent == nil {
		l.sent = map[string]map[int64]time.Time{}
	}
	m := l.sent[van]
	if m == nil {
		m = map[int64]time.Time{}
		l.sent[van] = m
	}
	m[t] = at
}

// latencies returns, for each arriving_soon webhook received whose ping
// was posted at or after from, the time from the post of the ping that
// made it true to its arrival, sorted. vanOf maps a tracking number to
// its van.
func (h *hookReceiver) latencies(l *pingLog, vanOf func(string) string, from time.Time) []time.Duration {
	h.mu.Lock()
	soon := slices.Clone(h.soon)
	h.mu.Unlock()
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []time.Duration
	for _, s := range soon {
		if at, ok := l.sent[vanOf(s.tracking)][s.time]; ok && !at.Before(from) {
			out = append(out, s.at.Sub(at))
		}
	}
	slices.Sort(out)
	return out
}

// ingestVanOf maps the ingest benchmark's tracking numbers ("I<van>-<k>")
// to their van ("van-<van>").
func ingestVanOf(tracking string) string {
	v, _, ok := strings.Cut(strings.TrimPrefix(tracking, "I"), "-")
	if !ok {
		return ""
	}
	if _, err := strconv.Atoi(v); err != nil {
		return ""
	}
	return "van-" + v
}
