// Package notify delivers the dispatch events: signed webhooks to the
// business's systems, e-mail and SMS to recipients. It owns the outbox
// policy (which event goes to whom: Service.fanout, run inside the
// transaction that commits the events, so that an event and its
// deliveries are durable together) and the workers that drain it
// (Service.Run): at least once, in sequence order per shipment and
// target, with exponential backoff and jitter, honouring Retry-After,
// dead-lettering what a subscription that stays down for DisableAfter
// could not take. A slow or dead receiver holds back only its own
// deliveries: ingest never waits for a send. Several replicas may run
// workers on one PostgreSQL database: each delivery is claimed by one
// (store.ClaimDeliveries) under a lease that lapses if its worker dies.
//
// There is no HTTP server here; the engine's handlers call the Service.
package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lastmile/lastmile/engine/dispatch"
	"github.com/lastmile/lastmile/engine/store"
)

// Defaults of Config.
const (
	// DefaultWorkers bounds the sends in flight.
	DefaultWorkers = 64
	// DefaultLease is how long a claimed delivery stays with its worker
	// before another may take it: longer than a send can take.
	DefaultLease = 2 * time.Minute
	// DefaultTimeout bounds one webhook request (connect to last byte).
	DefaultTimeout = 30 * time.Second
	// DefaultBackoffBase and DefaultBackoffMax shape the retry schedule:
	// base·2^(n-1) after the n-th consecutive failure, capped, with
	// "equal jitter" (a uniform draw in [d/2, d]) so that receivers that
	// come back are not hit by every sender at once. The Standard
	// Webhooks specification recommends exponential backoff
	// (spec.md, "Retry schedule").
	DefaultBackoffBase = 5 * time.Second
	DefaultBackoffMax  = 15 * time.Minute
	// DefaultDisableAfter: a subscription whose every attempt failed for
	// this long is disabled and its deliveries dead-lettered.
	DefaultDisableAfter = 24 * time.Hour
	// DefaultRecipientAttempts bounds the attempts at an e-mail or SMS
	// before it is dead-lettered.
	DefaultRecipientAttempts = 8
	// DefaultPoll is how often the outbox is looked at without a wake-up
	// (another replica's events, backoffs running out).
	DefaultPoll = time.Second
	// maxRetryAfter caps a receiver's Retry-After.
	maxRetryAfter = time.Hour
	// probeWait is how long the deliveries held back behind a failing
	// subscription's probe wait before they are looked at again.
	probeWait = time.Second
	// flushEvery bounds how long outcomes wait to be written together.
	flushEvery = 5 * time.Millisecond
)

// Config configures a Service. Zero fields take the defaults.
type Config struct {
	Store  *store.Store
	Logger *slog.Logger
	// Now is the clock (time.Now).
	Now func() time.Time
	// AllowPrivate lets webhooks target private, loopback and link-local
	// addresses (off: a subscription cannot be turned against the
	// carrier's own network).
	AllowPrivate bool
	// Client sends webhooks; nil builds one that verifies TLS, follows no
	// redirect and (unless AllowPrivate) refuses private addresses at
	// connect time, so a name that resolves to one later is refused too.
	Client *http.Client
	// Timeout bounds one webhook request.
	Timeout time.Duration
	// Workers bounds the sends in flight.
	Workers int
	// Lease, BackoffBase, BackoffMax, DisableAfter, RecipientAttempts and
	// Poll: see the Default constants.
	Lease             time.Duration
	BackoffBase       time.Duration
	BackoffMax        time.Duration
	DisableAfter      time.Duration
	RecipientAttempts int
	Poll              time.Duration
	// Recipients sends e-mail and SMS to recipients (nil: none).
	Recipients *Recipients
}

func (c Config) withDefaults() Config {
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	if c.Workers <= 0 {
		c.Workers = DefaultWorkers
	}
	if c.Lease <= 0 {
		c.Lease = DefaultLease
	}
	if c.BackoffBase <= 0 {
		c.BackoffBase = DefaultBackoffBase
	}
	if c.BackoffMax <= 0 {
		c.BackoffMax = DefaultBackoffMax
	}
	if c.DisableAfter <= 0 {
		c.DisableAfter = DefaultDisableAfter
	}
	if c.RecipientAttempts <= 0 {
		c.RecipientAttempts = DefaultRecipientAttempts
	}
	if c.Poll <= 0 {
		c.Poll = DefaultPoll
	}
	if c.Client == nil {
		c.Client = newClient(c.Timeout, c.AllowPrivate, c.Workers)
	}
	return c
}

// Service is the notification outbox: it queues deliveries as events
// commit and sends them from Run. Safe for concurrent use.
type Service struct {
	cfg  Config
	st   *store.Store
	log  *slog.Logger
	wake chan struct{}
	bell *Bell
	// Counters for metrics.
	stats Stats
}

// Stats counts deliveries since start, by channel and outcome.
type Stats struct {
	mu sync.Mutex
	// Outcomes counts finished attempts by channel and outcome ("sent",
	// "failed", "dead", "skipped").
	outcomes map[[2]string]int64
	retries  atomic.Int64
}

// New builds the Service and installs its fanout and commit hook on the
// store: from then on every event queues its deliveries in its own
// transaction.
func New(cfg Config) (*Service, error) {
	if cfg.Store == nil {
		return nil, errors.New("notify: a store is needed")
	}
	cfg = cfg.withDefaults()
	s := &Service{cfg: cfg, st: cfg.Store, log: cfg.Logger, wake: make(chan struct{}, 1), bell: NewBell()}
	s.stats.outcomes = map[[2]string]int64{}
	s.st.SetFanout(s.fanout)
	s.st.OnCommit(func(evs []store.Event) {
		s.bell.Ring(evs[len(evs)-1].Cursor)
		s.Wake()
	})
	return s, nil
}

// Bell rings when events commit in this process (for event streams).
func (s *Service) Bell() *Bell { return s.bell }

// Wake makes Run look at the outbox now.
func (s *Service) Wake() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *Service) nowMS() int64 { return s.cfg.Now().UnixMilli() }

// fanout queues the deliveries of events committing in tx: one per
// enabled webhook whose filter matches, and one per recipient channel
// the shipment's preferences ask for (never twice for the same state).
func (s *Service) fanout(tx *store.Tx, evs []store.Event) error {
	hooks, err := tx.EnabledWebhooks()
	if err != nil {
		return err
	}
	now := s.nowMS()
	var ds []store.Delivery
	for _, e := range evs {
		for _, h := range hooks {
			if matches(h.Events, h.Tracking, e) {
				ds = append(ds, store.Delivery{Event: e.Cursor, Shipment: e.Shipment, Channel: store.ChannelWebhook,
					Target: h.ID, Dedupe: e.ID, NextAt: now, Created: now})
			}
		}
	}
	if r := s.cfg.Recipients; r != nil {
		var ids []int64
		for _, e := range evs {
			if slices.Contains(dispatch.RecipientEventTypes, e.Type) && !slices.Contains(ids, e.Shipment) {
				ids = append(ids, e.Shipment)
			}
		}
		prefs, err := tx.ShipmentsNotify(ids)
		if err != nil {
			return err
		}
		for _, e := range evs {
			p, ok := prefs[e.Shipment]
			if !ok {
				continue
			}
			for _, ch := range r.channels() {
				if r.wants(ch, p[0], e.Type) {
					ds = append(ds, store.Delivery{Event: e.Cursor, Shipment: e.Shipment, Channel: ch,
						Target: store.TargetRecipient, Dedupe: recipientKey(e), NextAt: now, Created: now})
				}
			}
		}
	}
	if len(ds) == 0 {
		return nil
	}
	return tx.AddDeliveries(ds)
}

// matches reports whether a subscription to types (["*"]: all) of
// tracking ("": every shipment) takes event e.
func matches(types []string, tracking string, e store.Event) bool {
	if tracking != "" && tracking != e.Tracking {
		return false
	}
	return slices.Contains(types, "*") || slices.Contains(types, e.Type)
}

// recipientKey names the state an event tells a recipient of: its
// shipment, attempt and type (and the count of stops_away), so that
// reaching the same state again notifies no one twice.
func recipientKey(e store.Event) string {
	var d struct {
		Attempt int64 `json:"attempt"`
		Stops   int64 `json:"stops"`
	}
	if e.Data != "" {
		_ = json.Unmarshal([]byte(e.Data), &d)
	}
	k := strconv.FormatInt(e.Shipment, 10) + ":" + strconv.FormatInt(max(d.Attempt, 1), 10) + ":" + e.Type
	if e.Type == dispatch.EventStopsAway {
		k += ":" + strconv.FormatInt(d.Stops, 10)
	}
	return k
}

// backoff is the wait after the n-th consecutive failure (n >= 1).
func (s *Service) backoff(n int64) time.Duration {
	d := s.cfg.BackoffBase
	for i := int64(1); i < n && d < s.cfg.BackoffMax; i++ {
		d *= 2
	}
	d = min(d, s.cfg.BackoffMax)
	return d/2 + rand.N(d/2+1)
}

// Run sends deliveries until ctx ends, then waits for the sends in
// flight (their outcomes are written) and returns.
func (s *Service) Run(ctx context.Context) {
	sem := make(chan struct{}, s.cfg.Workers)
	outs := make(chan store.Outcome, s.cfg.Workers)
	var wg sync.WaitGroup
	flushed := make(chan struct{})
	go func() {
		defer close(flushed)
		s.writeOutcomes(outs)
	}()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		free := s.cfg.Workers - len(sem)
		var claimed []store.Delivery
		if free > 0 {
			now := s.nowMS()
			var err error
			claimed, err = s.st.ClaimDeliveries(ctx, now, now+s.cfg.Lease.Milliseconds(), free)
			if err != nil && ctx.Err() == nil {
				s.log.Error("claiming deliveries", "err", err)
			}
		}
		if len(claimed) > 0 {
			s.send(ctx, claimed, sem, outs, &wg)
			continue
		}
		wait := s.cfg.Poll
		if next, err := s.st.NextDue(ctx); err == nil && next > 0 {
			wait = min(wait, max(time.Duration(next-s.nowMS())*time.Millisecond, 5*time.Millisecond))
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			wg.Wait()
			close(outs)
			<-flushed
			return
		case <-s.wake:
		case <-timer.C:
		}
	}
}

// writeOutcomes writes outcomes as they come, several per transaction.
func (s *Service) writeOutcomes(outs <-chan store.Outcome) {
	var batch []store.Outcome
	flush := func() {
		if len(batch) == 0 {
			return
		}
		now := s.nowMS()
		disabled, err := s.st.FinishDeliveries(context.Background(), now, batch, now-s.cfg.DisableAfter.Milliseconds())
		if err != nil {
			// The leases lapse and the deliveries are sent again: at
			// least once.
			s.log.Error("recording delivery outcomes", "err", err, "deliveries", len(batch))
		}
		for _, id := range disabled {
			s.log.Warn("webhook disabled: its receiver failed for too long; its deliveries are in the dead-letter list", "webhook", id)
		}
		batch = batch[:0]
		s.Wake() // the next deliveries of those shipments are due
	}
	for o := range outs {
		batch = append(batch, o)
	drain:
		for len(batch) < 512 {
			select {
			case o, ok := <-outs:
				if !ok {
					break drain
				}
				batch = append(batch, o)
			case <-time.After(flushEvery):
				break drain
			}
		}
		flush()
	}
	flush()
}

// send starts the claimed deliveries, each in its own goroutine bounded
// by sem. Webhook targets that are failing get one probe delivery; the
// rest are released untouched until it succeeds.
func (s *Service) send(ctx context.Context, claimed []store.Delivery, sem chan struct{}, outs chan<- store.Outcome, wg *sync.WaitGroup) {
	cursors := make([]int64, len(claimed))
	for i, d := range claimed {
		cursors[i] = d.Event
	}
	events, err := s.st.EventsByCursor(ctx, cursors)
	if err != nil {
		s.log.Error("reading events to deliver", "err", err)
		return // leases lapse; tried again
	}
	hooks := map[string]store.Webhook{}
	probing := map[string]bool{}
	for _, d := range claimed {
		ev, ok := events[d.Event]
		if !ok {
			outs <- store.Outcome{ID: d.ID, State: store.DeliveryDead, Error: "event no longer stored"}
			continue
		}
		var o func() store.Outcome
		switch d.Channel {
		case store.ChannelWebhook:
			h, ok := hooks[d.Target]
			if !ok {
				h, err = s.st.Webhook(ctx, d.Target)
				if err != nil {
					s.log.Error("reading webhook", "webhook", d.Target, "err", err)
					continue // lease lapses
				}
				hooks[d.Target] = h
			}
			if h.Failures > 0 {
				if probing[h.ID] {
					// Released uncounted, due again shortly: by then
					// the probe has told whether the receiver is back.
					outs <- store.Outcome{ID: d.ID, State: store.DeliveryPending, NextAt: s.nowMS() + probeWait.Milliseconds()}
					continue
				}
				probing[h.ID] = true
			}
			o = func() store.Outcome { return s.sendWebhook(ctx, h, d, ev) }
		case store.ChannelEmail, store.ChannelSMS:
			if s.cfg.Recipients == nil {
				outs <- store.Outcome{ID: d.ID, State: store.DeliverySkipped, Error: "channel not configured"}
				continue
			}
			o = func() store.Outcome { return s.sendRecipient(ctx, d, ev) }
		default:
			outs <- store.Outcome{ID: d.ID, State: store.DeliveryDead, Error: "unknown channel " + d.Channel}
			continue
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			out := o()
			s.count(d.Channel, out)
			outs <- out
		}()
	}
}

// count records an outcome in the metrics.
func (s *Service) count(channel string, o store.Outcome) {
	k := o.State
	if o.State == store.DeliveryPending {
		k = "failed"
		s.stats.retries.Add(1)
	}
	s.stats.mu.Lock()
	s.stats.outcomes[[2]string{channel, k}]++
	s.stats.mu.Unlock()
}

// failure is the outcome of a failed attempt: retried after a backoff,
// or dead once the attempts are spent (maxAttempts 0: no bound).
func (s *Service) failure(d store.Delivery, code int, msg string, retryAfter time.Duration, maxAttempts int64) store.Outcome {
	n := d.Attempts + 1
	wait := s.backoff(n)
	if retryAfter > 0 {
		wait = min(retryAfter, maxRetryAfter)
	}
	now := s.nowMS()
	o := store.Outcome{ID: d.ID, State: store.DeliveryPending, NextAt: now + wait.Milliseconds(), StatusCode: int64(code),
		Error: clip(msg, 300), Counted: true}
	if d.Channel == store.ChannelWebhook {
		o.Target, o.TargetBlockedUntil = d.Target, o.NextAt
	}
	if maxAttempts > 0 && n >= maxAttempts {
		o.State = store.DeliveryDead
	}
	return o
}

func clip(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// Snapshot is the metrics view of the Service.
type Snapshot struct {
	// Outcomes counts attempts by [channel, outcome].
	Outcomes map[[2]string]int64
	Retries  int64
	Outbox   store.OutboxStats
}

// Snapshot reads the counters and the outbox.
func (s *Service) Snapshot(ctx context.Context) (Snapshot, error) {
	s.stats.mu.Lock()
	out := Snapshot{Outcomes: make(map[[2]string]int64, len(s.stats.outcomes)), Retries: s.stats.retries.Load()}
	for k, v := range s.stats.outcomes {
		out.Outcomes[k] = v
	}
	s.stats.mu.Unlock()
	var err error
	out.Outbox, err = s.st.OutboxStats(ctx)
	if err != nil {
		return out, fmt.Errorf("notify: %w", err)
	}
	return out, nil
}
