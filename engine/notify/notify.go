// Package notify delivers the dispatch events: signed webhooks to the
// business's systems, e-mail and SMS to recipients. It owns the outbox
// policy (which event goes to whom) and the workers that drain it
// (Service.Run): at least once, in sequence order per shipment and
// target, with exponential backoff and jitter, honouring Retry-After,
// dead-lettering what a subscription that stays down for DisableAfter
// could not take. Recipient deliveries are queued by the transaction
// that commits their events (Service.fanout); webhook deliveries are
// queued from the event log by Run's claims, each subscription behind a
// cursor advanced with the deliveries it queues (Service.webhookFanout,
// store/queue.go), so either way an event and its deliveries cannot part.
// A slow or dead receiver holds back only its own deliveries and costs
// ingest no write: ingest never waits for a send. Several replicas may run
// workers on one PostgreSQL database: each delivery is claimed by one
// (store.FinishAndClaim) under a lease that lapses if its worker dies.
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
	// DefaultWorkers bounds the deliveries claimed and in flight: every
	// claim and every batch of outcomes waits for the database's writer
	// (SQLite has one, shared with ingest), so throughput is about
	// Workers per claim-send-record cycle.
	DefaultWorkers = 512
	// DefaultConnsPerHost bounds the connections to one receiver: sends
	// beyond wait for one, which a receiver prefers to a flood.
	DefaultConnsPerHost = 128
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
	// DefaultKeepSent is how long sent and skipped deliveries are kept
	// (for GET /v1/webhooks/{id}/deliveries) before they are pruned.
	DefaultKeepSent = 7 * 24 * time.Hour
	// pruneEvery is how often they are pruned.
	pruneEvery = 10 * time.Minute
	// DefaultPoll is how often the outbox is looked at without a wake-up
	// (another replica's events, backoffs running out).
	DefaultPoll = time.Second
	// maxRetryAfter caps a receiver's Retry-After.
	maxRetryAfter = time.Hour
	// claimPerWorker is how many deliveries a claim takes per free
	// worker.
	claimPerWorker = 4
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
	// KeepSent is how long finished deliveries stay listed.
	KeepSent time.Duration
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
	if c.KeepSent <= 0 {
		c.KeepSent = DefaultKeepSent
	}
	if c.Client == nil {
		c.Client = newClient(c.Timeout, c.AllowPrivate, DefaultConnsPerHost)
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
	s.st.SetWebhookFanout(s.webhookFanout, urgentEvents)
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

// urgentEvents are the event types whose notifications lose their worth
// within minutes: they go out before the others of their target (see
// store.Delivery.Urgent).
var urgentEvents = []string{dispatch.EventArrivingSoon, dispatch.EventDelayed, dispatch.EventArrived}

func urgent(typ string) bool { return slices.Contains(urgentEvents, typ) }

// webhookFanout returns the deliveries of events to subscription h: one
// per event its filter takes, keyed by the event's cursor.
func (s *Service) webhookFanout(h store.WebhookFilter, evs []store.Event, now int64) []store.Delivery {
	var ds []store.Delivery
	for _, e := range evs {
		if matches(h.Events, h.Tracking, e) {
			d := webhookDelivery(h.ID, e, now)
			d.Urgent = urgent(e.Type)
			ds = append(ds, d)
		}
	}
	return ds
}

// webhookDelivery is the delivery of event e to subscription id, due at
// now; its dedupe key is the event's cursor.
func webhookDelivery(id string, e store.Event, now int64) store.Delivery {
	return store.Delivery{Event: e.Cursor, Shipment: e.Shipment, Channel: store.ChannelWebhook, Target: id,
		Dedupe: strconv.FormatInt(e.Cursor, 10), NextAt: now, Created: now}
}

// fanout queues, in the transaction that commits events, their
// deliveries to recipients: one per channel the shipment's preferences
// ask for (never twice for the same state). Webhook deliveries are
// queued from the log by Run's claims (store.SetWebhookFanout).
func (s *Service) fanout(tx *store.Tx, evs []store.Event) error {
	now := s.nowMS()
	var ds []store.Delivery
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
						Target: store.TargetRecipient, Dedupe: recipientKey(e), NextAt: now, Created: now, Urgent: urgent(e.Type)})
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
// flight, records their outcomes and returns. Each turn records the
// outcomes that came in and claims as many due deliveries as there are
// free workers, in one transaction.
func (s *Service) Run(ctx context.Context) {
	outs := make(chan runDone, s.cfg.Workers)
	inflight := 0
	busy := map[string]int{} // runs in flight per target (channel/id)
	// heard: targets that took a delivery since start. Until one does, a
	// target gets one run at a time, as a failing one does: a receiver
	// that is down, refuses the certificate or answers 500 from the
	// start costs one failed request, not a connection per worker.
	heard := map[string]bool{}
	var done []store.Outcome
	land := func(r runDone) {
		done = append(done, r.outs...)
		inflight--
		busy[r.target]--
		if !heard[r.target] && slices.ContainsFunc(r.outs, func(o store.Outcome) bool { return o.State == store.DeliverySent }) {
			heard[r.target] = true
		}
	}
	var wg sync.WaitGroup
	timer := time.NewTimer(0)
	defer timer.Stop()
	var pruned time.Time
	for {
		if time.Since(pruned) > pruneEvery {
			pruned = time.Now()
			if n, err := s.st.PruneDeliveries(ctx, s.nowMS()-s.cfg.KeepSent.Milliseconds(), 10_000); err != nil && ctx.Err() == nil {
				s.log.Error("pruning finished deliveries", "err", err)
			} else if n > 0 {
				s.log.Info("pruned finished deliveries", "deliveries", n)
			}
		}
		// Collect what finished.
	collect:
		for {
			select {
			case r := <-outs:
				land(r)
			default:
				break collect
			}
		}
		if ctx.Err() != nil {
			break
		}
		free := max(s.cfg.Workers-inflight, 0)
		var claimed []store.Delivery
		if len(done) > 0 || free > 0 {
			now := s.nowMS()
			// Per target: at most ConnsPerHost runs in flight, so a slow
			// receiver holds only its own workers; one probe at a time to
			// a failing one. A claim may hold runs of one shipment's
			// deliveries, sent by one worker: it takes more deliveries
			// than free workers.
			limit := func(t store.Target) int {
				k := t.Channel + "/" + t.ID
				if t.Failures > 0 || !heard[k] {
					if busy[k] > 0 {
						return 0
					}
					return 1
				}
				return min(free, max(DefaultConnsPerHost-busy[k], 0)) * claimPerWorker
			}
			if free == 0 {
				limit = nil
			}
			disabled, c, err := s.st.FinishAndClaim(ctx, now, done, now-s.cfg.DisableAfter.Milliseconds(), now+s.cfg.Lease.Milliseconds(),
				s.recipientChannels(), limit)
			if err != nil {
				if ctx.Err() == nil {
					// The leases lapse and the deliveries are sent
					// again: at least once.
					s.log.Error("recording outcomes and claiming deliveries", "err", err, "outcomes", len(done))
				}
				done = done[:0]
				time.Sleep(50 * time.Millisecond)
				continue
			}
			for _, id := range disabled {
				s.log.Warn("webhook disabled: its receiver failed for too long; its deliveries are in the dead-letter list", "webhook", id)
			}
			done, claimed = done[:0], c
		}
		if len(claimed) > 0 {
			started, now := s.send(ctx, claimed, outs, &wg)
			for _, k := range started {
				busy[k]++
			}
			inflight += len(started)
			done = append(done, now...)
			continue
		}
		// Retries that come due are found within a Poll (or at the next
		// commit's wake-up).
		timer.Reset(s.cfg.Poll)
		select {
		case <-ctx.Done():
		case r := <-outs:
			land(r)
		case <-s.wake:
		case <-timer.C:
		}
	}
	// Shutting down: wait for the sends, record what they did.
	go func() {
		wg.Wait()
		close(outs)
	}()
	for r := range outs {
		done = append(done, r.outs...)
	}
	if len(done) > 0 {
		now := s.nowMS()
		if _, err := s.st.FinishDeliveries(context.Background(), now, done, now-s.cfg.DisableAfter.Milliseconds()); err != nil {
			s.log.Error("recording delivery outcomes at shutdown", "err", err, "outcomes", len(done))
		}
	}
}

// send starts the claimed deliveries and returns the targets of the
// goroutines it started (each reports its outcomes on outs) and the
// outcomes decided at once. A claim may hold a run of deliveries of one channel, target and
// shipment (store.FinishAndClaim): one goroutine sends it in order and
// stops at the first that is to be retried, releasing the rest untried
// behind it.
func (s *Service) send(ctx context.Context, claimed []store.Delivery, outs chan<- runDone, wg *sync.WaitGroup) (started []string, now []store.Outcome) {
	cursors := make([]int64, len(claimed))
	for i, d := range claimed {
		cursors[i] = d.Event
	}
	events, err := s.st.EventsByCursor(ctx, cursors)
	if err != nil {
		s.log.Error("reading events to deliver", "err", err)
		return nil, nil // leases lapse; tried again
	}
	type runKey struct {
		channel, target string
		shipment        int64
	}
	type step struct {
		d    store.Delivery
		send func() store.Outcome
	}
	runs := map[runKey][]step{}
	var order []runKey
	hooks := map[string]store.Webhook{}
	for _, d := range claimed { // urgent first; a shipment's in event order
		ev, ok := events[d.Event]
		if !ok {
			now = append(now, store.Outcome{ID: d.ID, State: store.DeliveryDead, Error: "event no longer stored"})
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
					continue // the lease lapses
				}
				hooks[d.Target] = h
			}
			o = func() store.Outcome { return s.sendWebhook(ctx, h, d, ev) }
		case store.ChannelEmail, store.ChannelSMS:
			if s.cfg.Recipients == nil {
				now = append(now, store.Outcome{ID: d.ID, State: store.DeliverySkipped, Error: "channel not configured"})
				continue
			}
			o = func() store.Outcome { return s.sendRecipient(ctx, d, ev) }
		default:
			now = append(now, store.Outcome{ID: d.ID, State: store.DeliveryDead, Error: "unknown channel " + d.Channel})
			continue
		}
		k := runKey{d.Channel, d.Target, d.Shipment}
		if _, ok := runs[k]; !ok {
			order = append(order, k)
		}
		runs[k] = append(runs[k], step{d, o})
	}
	for _, k := range order {
		run := runs[k]
		target := k.channel + "/" + k.target
		started = append(started, target)
		wg.Add(1)
		go func() {
			defer wg.Done()
			res := make([]store.Outcome, 0, len(run))
			stopped := false
			t0 := time.Now()
			for _, st := range run {
				if !stopped && time.Since(t0) > s.cfg.Lease/2 {
					// The rest would outlive the lease: left for the
					// next claim (released untried).
					stopped = true
				}
				if stopped {
					// Behind a delivery to be retried: untried, it waits
					// (the earlier one is not due, so it is not claimed).
					res = append(res, store.Outcome{ID: st.d.ID, State: store.DeliveryPending, NextAt: st.d.NextAt})
					continue
				}
				out := st.send()
				s.count(st.d.Channel, out)
				res = append(res, out)
				stopped = out.State == store.DeliveryPending
			}
			outs <- runDone{target, res}
		}()
	}
	return started, now
}

// runDone is what a run's goroutine reports: its target and outcomes.
type runDone struct {
	target string
	outs   []store.Outcome
}

// recipientChannels lists the configured recipient channels.
func (s *Service) recipientChannels() []string {
	if s.cfg.Recipients == nil {
		return nil
	}
	return s.cfg.Recipients.channels()
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
