package notify

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lastmile/lastmile/engine/seal"
	"github.com/lastmile/lastmile/engine/store"
	"github.com/lastmile/lastmile/internal/pgtest"
	"github.com/lastmile/lastmile/internal/webhooktest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// TestSignatureVectors checks both the sender's signature and the test's
// own verifier (internal/webhooktest, independent of the library the
// sender uses) against the Standard Webhooks published test vector (the
// reference libraries' "sign" test).
func TestSignatureVectors(t *testing.T) {
	const (
		secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
		id     = "msg_p5jXN8AQM9LWM0D4loKWxJek"
		ts     = "1614265330"
		body   = `{"test": 2432232314}`
		want   = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
	)
	h := http.Header{}
	h.Set("webhook-id", id)
	h.Set("webhook-timestamp", ts)
	h.Set("webhook-signature", want)
	if err := webhooktest.Verify(secret, h, []byte(body)); err != nil {
		t.Fatalf("verifier rejects the published vector: %v", err)
	}
	h.Set("webhook-signature", "v1,"+base64.StdEncoding.EncodeToString(make([]byte, 32)))
	if webhooktest.Verify(secret, h, []byte(body)) == nil {
		t.Fatal("verifier accepts a wrong signature")
	}
	got, err := signFor(secret, id, time.Unix(1614265330, 0), []byte(body))
	if err != nil || got != want {
		t.Fatalf("sender signs %q (%v), want %q", got, err, want)
	}
}

type backend struct {
	name string
	dsn  func(t *testing.T) string
}

func backends() []backend {
	return []backend{
		{"sqlite", func(t *testing.T) string { return filepath.Join(t.TempDir(), "lastmile.db") }},
		{"postgres", func(t *testing.T) string { return pgtest.DSN(t) }},
	}
}

func openStore(t *testing.T, dsn string, ring *seal.Ring) *store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), dsn, store.Options{Ring: ring})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func testRing(t *testing.T) *seal.Ring {
	r, err := seal.NewRing(seal.GenerateKey(1))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// fastConfig is a Config with a compressed retry schedule.
func fastConfig(st *store.Store) Config {
	return Config{Store: st, AllowPrivate: true, BackoffBase: 20 * time.Millisecond, BackoffMax: 200 * time.Millisecond,
		Poll: 50 * time.Millisecond, Timeout: 5 * time.Second, Lease: 10 * time.Second}
}

// start runs s until the test ends.
func start(t *testing.T, s *Service) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
}

// newReceiver starts a webhook endpoint on loopback that records what
// it gets (internal/webhooktest).
func newReceiver(t *testing.T) *webhooktest.Receiver { return webhooktest.New(t) }

// emitDay stores n shipments and k events for each, interleaved across
// shipments over several transactions, and returns the events.
func emitDay(t *testing.T, st *store.Store, n, k int) []store.Event {
	t.Helper()
	ctx := context.Background()
	ids := make([]int64, n)
	for i := range n {
		sh := store.Shipment{Tracking: fmt.Sprintf("T%03d", i), Token: seal.Token(), Status: "created",
			Location: [2]float64{-8.6, 41.1}, Created: 1}
		if _, err := st.Tx(ctx, func(tx *store.Tx) error { return tx.InsertShipment(&sh) }); err != nil {
			t.Fatal(err)
		}
		ids[i] = sh.ID
	}
	types := []string{"out_for_delivery", "stops_away", "arriving_soon", "arrived", "delivered"}
	var all []store.Event
	for j := range k {
		for i := 0; i < n; i += 3 {
			evs, err := st.Tx(ctx, func(tx *store.Tx) error {
				for m := i; m < min(i+3, n); m++ {
					tx.Emit(store.Event{Shipment: ids[m], Tracking: fmt.Sprintf("T%03d", m), Type: types[j%len(types)],
						Time: int64(1000 + j), Created: 1})
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			all = append(all, evs...)
		}
	}
	return all
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// checkOrder asserts that every event arrived (accepted) at least once,
// that each shipment's first acceptances come in sequence order, that
// every delivery carried the event's own id, and that every signature
// verified.
func checkOrder(t *testing.T, rc *webhooktest.Receiver, evs []store.Event) {
	t.Helper()
	want := make([]webhooktest.Event, len(evs))
	for i, e := range evs {
		want[i] = webhooktest.Event{ID: e.ID, Cursor: e.Cursor, Tracking: e.Tracking, Seq: e.Seq, Type: e.Type, Time: e.Time}
	}
	if err := webhooktest.CheckOrder(rc.Accepted(), want); err != nil {
		t.Fatal(err)
	}
	if bad := rc.BadSignatures(); len(bad) > 0 {
		t.Fatalf("%d deliveries with a bad signature: %v", len(bad), bad[0].SignatureErr)
	}
}

func createHook(t *testing.T, s *Service, rc *webhooktest.Receiver, events ...string) Webhook {
	t.Helper()
	if len(events) == 0 {
		events = []string{"*"}
	}
	w, err := s.CreateWebhook(context.Background(), WebhookInput{URL: rc.URL, Events: events})
	if err != nil {
		t.Fatal(err)
	}
	rc.SetSecret(w.Secret)
	return w
}

// TestDeliveryFaults drives a receiver through faults (500s, a 429 with
// Retry-After, an outage) and checks that every event arrives, signed, in
// sequence order per shipment, duplicates only with the same id.
func TestDeliveryFaults(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			st := openStore(t, b.dsn(t), testRing(t))
			s, err := New(fastConfig(st))
			if err != nil {
				t.Fatal(err)
			}
			rc := newReceiver(t)
			var throttledAt time.Time
			var mu sync.Mutex
			rc.SetBehaviour(func(n int, _ *http.Request, _ []byte) webhooktest.Response {
				mu.Lock()
				defer mu.Unlock()
				switch {
				case n <= 5:
					return webhooktest.Response{Status: 500}
				case n == 6:
					throttledAt = time.Now()
					return webhooktest.Response{Status: 429, Header: http.Header{"Retry-After": {"1"}}}
				case n > 40 && n <= 60:
					return webhooktest.Response{Status: 503} // an outage mid-stream
				}
				return webhooktest.Response{Status: 204}
			})
			createHook(t, s, rc)
			start(t, s)
			evs := emitDay(t, st, 12, 8)
			waitFor(t, 60*time.Second, "every event accepted", func() bool { return len(rc.Accepted()) >= len(evs) })
			checkOrder(t, rc, evs)
			// Requests in flight when the 429 came may land just after
			// it; none may start within the second it asked for.
			mu.Lock()
			for _, d := range rc.Deliveries() {
				if gap := d.At.Sub(throttledAt); gap > 150*time.Millisecond && gap < 900*time.Millisecond {
					t.Errorf("a request %v after a 429 with Retry-After: 1", gap)
				}
			}
			mu.Unlock()
			// The receiver counts a delivery when it answers; the service
			// records it once it has read the answer: wait for that.
			var snap Snapshot
			deadline := time.Now().Add(10 * time.Second)
			for {
				if snap, err = s.Snapshot(context.Background()); err != nil {
					t.Fatal(err)
				}
				if snap.Outcomes[[2]string{"webhook", "sent"}] >= int64(len(evs)) || time.Now().After(deadline) {
					break
				}
				time.Sleep(10 * time.Millisecond)
			}
			if snap.Outcomes[[2]string{"webhook", "sent"}] < int64(len(evs)) || snap.Retries == 0 {
				t.Errorf("metrics: %+v", snap)
			}
		})
	}
}

// TestDisableDeadLetterReplay: a receiver that only fails gets its
// subscription disabled and its deliveries dead-lettered; re-enabled and
// replayed, every event arrives with its original id.
func TestDisableDeadLetterReplay(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			st := openStore(t, b.dsn(t), testRing(t))
			cfg := fastConfig(st)
			cfg.DisableAfter = 300 * time.Millisecond
			s, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			rc := newReceiver(t)
			var down sync.Mutex
			broken := true
			rc.SetBehaviour(func(int, *http.Request, []byte) webhooktest.Response {
				down.Lock()
				defer down.Unlock()
				if broken {
					return webhooktest.Response{Status: 500}
				}
				return webhooktest.Response{Status: 200}
			})
			w := createHook(t, s, rc, "delivered", "arrived")
			start(t, s)
			evs := emitDay(t, st, 5, 5)
			var want []store.Event
			for _, e := range evs {
				if e.Type == "delivered" || e.Type == "arrived" {
					want = append(want, e)
				}
			}
			ctx := context.Background()
			waitFor(t, 20*time.Second, "the subscription disabled", func() bool {
				v, err := s.Webhook(ctx, w.ID)
				return err == nil && !v.Enabled
			})
			// The events it had not queued follow its pending deliveries
			// into the dead-letter list.
			waitFor(t, 20*time.Second, "every event it took looked at", func() bool {
				v, err := s.Webhook(ctx, w.ID)
				return err == nil && v.Backlog == 0
			})
			dead, err := s.Deliveries(ctx, w.ID, "dead", 0, 1000)
			if err != nil {
				t.Fatal(err)
			}
			if len(dead.Deliveries) != len(want) {
				t.Fatalf("%d dead letters, want %d", len(dead.Deliveries), len(want))
			}
			if _, err := s.Replay(ctx, w.ID, ReplayInput{After: ptr(int64(0))}); err == nil {
				t.Fatal("replay accepted on a disabled subscription")
			}
			down.Lock()
			broken = false
			down.Unlock()
			on := true
			if _, err := s.UpdateWebhook(ctx, w.ID, WebhookPatch{Enabled: &on}); err != nil {
				t.Fatal(err)
			}
			r, err := s.Replay(ctx, w.ID, ReplayInput{From: ptr(int64(1)), To: ptr(int64(5000))})
			if err != nil {
				t.Fatal(err)
			}
			if r.Queued != len(want) {
				t.Fatalf("replay queued %d, want %d", r.Queued, len(want))
			}
			waitFor(t, 20*time.Second, "the replay accepted", func() bool { return len(rc.Accepted()) >= len(want) })
			checkOrder(t, rc, want)
		})
	}
}

// TestTwoWorkersOnePostgres runs two services (as two replicas would) on
// one PostgreSQL database: each delivery goes out once.
func TestTwoWorkersOnePostgres(t *testing.T) {
	dsn := pgtest.DSN(t)
	ring := testRing(t)
	st1, st2 := openStore(t, dsn, ring), openStore(t, dsn, ring)
	s1, err := New(fastConfig(st1))
	if err != nil {
		t.Fatal(err)
	}
	s2, err := New(fastConfig(st2))
	if err != nil {
		t.Fatal(err)
	}
	rc := newReceiver(t)
	createHook(t, s1, rc)
	start(t, s1)
	start(t, s2)
	evs := emitDay(t, st1, 30, 5)
	evs = append(evs, emitDay2(t, st2, 30)...)
	waitFor(t, 30*time.Second, "every event accepted", func() bool { return len(rc.Accepted()) >= len(evs) })
	time.Sleep(200 * time.Millisecond)
	checkOrder(t, rc, evs)
	if n := len(rc.Accepted()); n != len(evs) {
		t.Fatalf("%d deliveries of %d events: duplicates without a fault", n, len(evs))
	}
}

// emitDay2 emits one more event on each of the first n shipments.
func emitDay2(t *testing.T, st *store.Store, n int) []store.Event {
	var out []store.Event
	for i := range n {
		sh, err := st.ShipmentByTracking(context.Background(), fmt.Sprintf("T%03d", i))
		if err != nil {
			t.Fatal(err)
		}
		evs, err := st.Tx(context.Background(), func(tx *store.Tx) error {
			tx.Emit(store.Event{Shipment: sh.ID, Tracking: sh.Tracking, Type: "delivered", Time: 9000, Created: 1})
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, evs...)
	}
	return out
}

func TestValidateTargets(t *testing.T) {
	st := openStore(t, filepath.Join(t.TempDir(), "x.db"), testRing(t))
	s, err := New(Config{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	long := "https://example.com/" + strings.Repeat("a", 3000)
	for _, c := range []struct {
		url    string
		events []string
		ok     bool
	}{
		{"https://example.com/hook", []string{"*"}, true},
		{"http://203.0.113.9:8080/hook", []string{"delivered"}, true},
		{"https://127.0.0.1/hook", []string{"*"}, false},
		{"https://10.1.2.3/hook", []string{"*"}, false},
		{"https://192.168.0.1/hook", []string{"*"}, false},
		{"https://169.254.169.254/latest/meta-data", []string{"*"}, false},
		{"https://[::1]/hook", []string{"*"}, false},
		{"https://[fd00::1]/hook", []string{"*"}, false},
		{"https://[::ffff:127.0.0.1]/hook", []string{"*"}, false},
		{"https://100.64.0.1/hook", []string{"*"}, false},
		{"https://localhost/hook", []string{"*"}, false},
		{"https://db.internal/hook", []string{"*"}, false},
		{"ftp://example.com/hook", []string{"*"}, false},
		{"/relative", []string{"*"}, false},
		{"https://user:pw@example.com/hook", []string{"*"}, false},
		{"https://example.com:99999/hook", []string{"*"}, false},
		{"https://example.com/hook", nil, false},
		{"https://example.com/hook", []string{"no_such_event"}, false},
		{"https://exa mple.com/hook", []string{"*"}, false},
		{long, []string{"*"}, false},
	} {
		_, err := s.CreateWebhook(context.Background(), WebhookInput{URL: c.url, Events: c.events})
		if (err == nil) != c.ok {
			t.Errorf("%.60s %v: err %v, want ok=%v", c.url, c.events, err, c.ok)
		}
		if err != nil {
			if _, isErr := err.(*Error); !isErr {
				t.Errorf("%.60s: %T is not a caller's error", c.url, err)
			}
		}
	}
	for _, a := range []string{"8.8.8.8", "2606:4700::1111"} {
		if !publicAddr(netip.MustParseAddr(a)) {
			t.Errorf("%s is public", a)
		}
	}
}

// TestConnectTimeGuard: without AllowPrivate the client refuses to
// connect to a loopback address even when the URL got past validation
// (a name that resolves inside), and a TLS receiver with an unknown
// certificate fails verification.
func TestConnectTimeGuard(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) }))
	defer srv.Close()
	_, err := newClient(time.Second, false, 1).Post(srv.URL, "application/json", strings.NewReader("{}"))
	if err == nil || !strings.Contains(describe(err), "private") {
		t.Fatalf("loopback connect: %v", err)
	}
	tsrv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) }))
	defer tsrv.Close()
	_, err = newClient(time.Second, true, 1).Post(tsrv.URL, "application/json", strings.NewReader("{}"))
	if err == nil || !strings.HasPrefix(describe(err), "TLS:") {
		t.Fatalf("self-signed TLS: %v (%s)", err, describe(err))
	}
}

func ptr[T any](v T) *T { return &v }

// TestUnheardReceiverOneAtATime: a receiver that has not yet taken a
// delivery gets one request at a time (one failed request, not one per
// worker, when it is down from the start); once it answers 2xx, many.
func TestUnheardReceiverOneAtATime(t *testing.T) {
	st := openStore(t, filepath.Join(t.TempDir(), "lastmile.db"), testRing(t))
	s, err := New(fastConfig(st))
	if err != nil {
		t.Fatal(err)
	}
	rc := newReceiver(t)
	var inflight, most, broken atomic.Int64
	broken.Store(1)
	rc.SetBehaviour(func(int, *http.Request, []byte) webhooktest.Response {
		n := inflight.Add(1)
		defer inflight.Add(-1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		time.Sleep(20 * time.Millisecond)
		if broken.Load() == 1 {
			return webhooktest.Response{Status: 500}
		}
		return webhooktest.Response{}
	})
	w := createHook(t, s, rc)
	evs := emitDay(t, st, 150, 1)
	start(t, s)
	waitFor(t, 10*time.Second, "a few failed attempts", func() bool { return len(rc.Deliveries()) >= 3 })
	if m := most.Load(); m != 1 {
		t.Fatalf("%d requests at once to a receiver that never answered 2xx, want 1", m)
	}
	// Nor more than a probe's worth of its deliveries queued.
	if p, err := s.Deliveries(context.Background(), w.ID, "pending", 0, 1000); err != nil || len(p.Deliveries) > 64 {
		t.Fatalf("%d deliveries queued for a receiver that never answered 2xx (%v), want at most 64", len(p.Deliveries), err)
	}
	broken.Store(0)
	waitFor(t, 20*time.Second, "every event accepted", func() bool { return len(rc.Accepted()) >= len(evs) })
	checkOrder(t, rc, evs)
	if m := most.Load(); m < 4 {
		t.Errorf("at most %d requests at once once the receiver answered, want several", m)
	}
}
