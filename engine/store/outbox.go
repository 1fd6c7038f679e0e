package store

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/lastmile/lastmile/engine/seal"
)

// Delivery channels.
const (
	ChannelWebhook = "webhook"
	ChannelEmail   = "email"
	ChannelSMS     = "sms"
)

// Delivery states: pending until sent, dead (given up, kept for replay) or
// skipped (nothing to send: no address, opted out, night hours).
const (
	DeliveryPending = "pending"
	DeliverySent    = "sent"
	DeliveryDead    = "dead"
	DeliverySkipped = "skipped"
)

// TargetRecipient is the target of the recipient channels (e-mail, SMS):
// the shipment's own recipient.
const TargetRecipient = "recipient"

// Delivery is one row of the outbox: event Event (its cursor) to be sent
// on Channel to Target (a webhook id, or TargetRecipient). Dedupe is
// unique per channel and target, so the same notification is never queued
// twice (a webhook's dedupe is the event's cursor; a recipient's names the
// shipment and the state reached). Deliveries of one channel, target and
// shipment are sent one at a time in event order. Times are Unix
// milliseconds.
type Delivery struct {
	ID       int64
	Event    int64
	Shipment int64
	Channel  string
	Target   string
	Dedupe   string
	State    string
	Attempts int64
	NextAt   int64
	// LeaseUntil is when a claim on a pending delivery lapses, so that
	// another worker takes it if the claiming one died.
	LeaseUntil int64
	StatusCode int64
	LastError  string
	Created    int64
	DoneAt     int64
	// Urgent deliveries are claimed before the others of their target
	// (with the pending deliveries of the same shipment before them, so
	// the shipment's order holds): a notification whose worth is gone in
	// minutes (arriving soon) must not queue behind a burst of ones that
	// keep (a fleet's vans all going out for delivery at once).
	Urgent bool
}

// Fanout decides, inside the transaction that commits events, which
// deliveries they cause, and adds them with Tx.AddDeliveries: an event
// and its deliveries commit together or not at all.
type Fanout func(tx *Tx, events []Event) error

// SetFanout installs the outbox's fanout, called at every commit that
// emits events. Call it before the store is used.
func (s *Store) SetFanout(f Fanout) { s.fanout = f }

// OnCommit adds f to the functions called after each commit that emitted
// events, with those events (for waking delivery workers, event streams
// and tracking pages). f must not block. Call it before the store is used.
func (s *Store) OnCommit(f func([]Event)) { s.onCommit = append(s.onCommit, f) }

// AddDeliveries queues deliveries in the transaction; one already queued
// with the same channel, target and dedupe key is left as it is.
func (tx *Tx) AddDeliveries(ds []Delivery) error {
	return tx.putDeliveries(ds, "NOTHING")
}

// RequeueDeliveries queues deliveries again: new ones are added, existing
// ones (sent, dead or pending) become pending and due at their NextAt with
// their attempts reset. It is how a replay re-sends with the same ids.
func (tx *Tx) RequeueDeliveries(ds []Delivery) error {
	return tx.putDeliveries(ds, `UPDATE SET state = 'pending', attempts = 0, next_at = excluded.next_at, lease_until = 0, done_at = NULL, last_error = ''`)
}

func (tx *Tx) putDeliveries(ds []Delivery, onConflict string) error {
	const batch = 200 // rows per statement (11 parameters each)
	for len(ds) > 0 {
		n := min(len(ds), batch)
		q, args := tx.s.values(`INSERT INTO deliveries (event, shipment, channel, target, dedupe, state, next_at, created, last_error, urgent, done_at) VALUES `,
			n, 11, ` ON CONFLICT (channel, target, dedupe) DO `+onConflict, func(i int, args []any) []any {
				d := &ds[i]
				state := d.State
				if state == "" {
					state = DeliveryPending
				}
				urgent := 0
				if d.Urgent {
					urgent = 1
				}
				return append(args, d.Event, d.Shipment, d.Channel, d.Target, d.Dedupe, state, d.NextAt, d.Created, d.LastError, urgent,
					nullInt(d.DoneAt))
			})
		if _, err := tx.q().ExecContext(tx.ctx, q, args...); err != nil {
			return fmt.Errorf("store: queue deliveries: %w", err)
		}
		if err := tx.promote(ds[:n]); err != nil {
			return err
		}
		ds = ds[n:]
	}
	return nil
}

// promote makes urgent the pending deliveries that come before an urgent
// one of ds in its shipment's order (same channel and target), so that
// they are claimed with it.
func (tx *Tx) promote(ds []Delivery) error {
	type chain struct {
		channel, target string
		shipment        int64
	}
	last := map[chain]int64{} // the latest urgent event of each chain
	var order []chain
	for _, d := range ds {
		c := chain{d.Channel, d.Target, d.Shipment}
		if !d.Urgent {
			continue
		}
		if _, ok := last[c]; !ok {
			order = append(order, c)
		}
		last[c] = max(last[c], d.Event)
	}
	for _, c := range order {
		// "urgent + 0" keeps SQLite's planner off deliveries_claim, which
		// ties with deliveries_order on equalities and would walk every
		// plain pending delivery of the target instead of the shipment's
		// few (30 % of the CPU with 1,000 vans before it).
		if _, err := tx.q().ExecContext(tx.ctx, `UPDATE deliveries SET urgent = 1 WHERE state = 'pending' AND channel = $1
			AND target = $2 AND shipment = $3 AND event < $4 AND urgent + 0 = 0`, c.channel, c.target, c.shipment, last[c]); err != nil {
			return fmt.Errorf("store: urgent deliveries: %w", err)
		}
	}
	return nil
}

const deliveryColumns = `d.id, d.event, d.shipment, d.channel, d.target, d.dedupe, d.state, d.attempts, d.next_at, d.lease_until,
	d.status_code, d.last_error, d.created, d.done_at`

func scanDelivery(row interface{ Scan(...any) error }) (Delivery, error) {
	var d Delivery
	var done sql.NullInt64
	err := row.Scan(&d.ID, &d.Event, &d.Shipment, &d.Channel, &d.Target, &d.Dedupe, &d.State, &d.Attempts, &d.NextAt,
		&d.LeaseUntil, &d.StatusCode, &d.LastError, &d.Created, &done)
	d.DoneAt = done.Int64
	return d, err
}

func queryDeliveries(ctx context.Context, q querier, query string, args ...any) ([]Delivery, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("store: deliveries: %w", err)
	}
	defer rows.Close()
	var out []Delivery
	for rows.Next() {
		d, err := scanDelivery(rows)
		if err != nil {
			return nil, fmt.Errorf("store: deliveries: %w", err)
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// Target is where deliveries go: a channel and a webhook id (or
// TargetRecipient), with the webhook's current failure streak.
type Target struct {
	Channel, ID string
	Failures    int64
	// filter, queuedTo and urgentTo: a webhook's filter, the cursor of
	// the last event it has taken and of the last it looked at for urgent
	// ones (see queue.go).
	filter             WebhookFilter
	queuedTo, urgentTo int64
}

// FinishAndClaim records outcomes (as FinishDeliveries) and then, in the
// same transaction (one turn of the database's writer, which on SQLite is
// shared with ingest), leases due deliveries until leaseUntil and returns
// them, urgent ones first (Delivery.Urgent), each group in event order.
// Targets are taken one by one: every enabled webhook
// not backing off, and the recipient channels named; limit says how many
// deliveries to take from each (0: none), so a slow or failing receiver
// is not read past. Per target, a delivery is due when it is pending, its
// NextAt has come, no claim on it is live, and every earlier pending
// delivery of the same shipment is due and unclaimed too (so it is in the
// same claim, earlier: the claimer sends such a run in order, and a
// shipment's notifications arrive in sequence order), and not less
// urgent (an urgent delivery's predecessors are made urgent with it, but
// a replay may queue an earlier one again). On PostgreSQL,
// claims of several replicas take turns (a transaction advisory lock: a
// claim sees the previous one's leases) and skip rows locked by other
// writers (FOR UPDATE SKIP LOCKED), so each delivery has one worker at a
// time.
func (s *Store) FinishAndClaim(ctx context.Context, nowMS int64, outs []Outcome, disableBeforeMS, leaseUntil int64,
	recipients []string, limit func(Target) int) (disabled []string, claimed []Delivery, err error) {
	if len(outs) == 0 {
		// Nothing to record: take the writer only if there is something
		// to claim (ingest shares it; a receiver that is down, slow or
		// backing off must not cost ingest a transaction per commit).
		if limit == nil {
			return nil, nil, nil
		}
		due, err := s.anyDue(ctx, nowMS, recipients, limit)
		if err != nil || !due {
			return nil, nil, err
		}
	}
	_, err = s.Tx(ctx, func(tx *Tx) error {
		var err error
		claimed = nil
		if disabled, err = tx.finish(nowMS, outs, disableBeforeMS); err != nil {
			return err
		}
		if limit == nil {
			return nil
		}
		if tx.s.dialect == Postgres {
			// Before reading the webhooks' cursors: a replica's queueing
			// and claims see the previous one's.
			if _, err := tx.q().ExecContext(tx.ctx, `SELECT pg_advisory_xact_lock($1)`, claimLock); err != nil {
				return fmt.Errorf("store: claim lock: %w", err)
			}
		}
		targets, err := tx.readyTargets(nowMS)
		if err != nil {
			return err
		}
		jobs, err := queueJobs(tx.ctx, tx.q(), targets, limit)
		if err != nil {
			return err
		}
		queued := map[string]int64{}
		for _, j := range jobs {
			if queued[j.hook.ID], err = tx.queue(j, nowMS); err != nil {
				return err
			}
		}
		for _, t := range targets {
			if n := limit(t); t.Failures == 0 && n > 0 {
				q, ok := queued[t.ID]
				if !ok {
					q = t.queuedTo
				}
				if err := tx.queueUrgent(t, q, n, nowMS); err != nil {
					return err
				}
			}
		}
		for _, ch := range recipients {
			targets = append(targets, Target{Channel: ch, ID: TargetRecipient})
		}
		for _, t := range targets {
			n := limit(t)
			if n <= 0 {
				continue
			}
			ds, err := tx.claim(t, nowMS, leaseUntil, n)
			if err != nil {
				return err
			}
			claimed = append(claimed, ds...)
		}
		// RETURNING keeps no order (PostgreSQL): event order, as claimed.
		slices.SortFunc(claimed, func(a, b Delivery) int { return cmp.Compare(a.Event, b.Event) })
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("store: outbox: %w", err)
	}
	return disabled, claimed, nil
}

// anyDue reports, from the read connections, whether a target with a
// positive limit has a delivery that is due and not claimed, or events to
// queue (queueJobs).
func (s *Store) anyDue(ctx context.Context, nowMS int64, recipients []string, limit func(Target) int) (bool, error) {
	targets, err := readyTargets(ctx, s.r(), nowMS)
	if err != nil {
		return false, err
	}
	jobs, err := queueJobs(ctx, s.r(), targets, limit)
	if err != nil {
		return false, err
	}
	for _, j := range jobs {
		if ok, err := anyEvents(ctx, s.r(), j.from, j.to); ok || err != nil {
			return ok, err
		}
	}
	for _, ch := range recipients {
		targets = append(targets, Target{Channel: ch, ID: TargetRecipient})
	}
	for _, t := range targets {
		if limit(t) <= 0 {
			continue
		}
		var n int
		err := s.r().QueryRowContext(ctx, `SELECT COUNT(*) FROM (SELECT 1 FROM deliveries WHERE state = 'pending' AND channel = $1
			AND target = $2 AND next_at <= $3 AND lease_until <= $3 LIMIT 1) x`, t.Channel, t.ID, nowMS).Scan(&n)
		if err != nil {
			return false, fmt.Errorf("store: due deliveries: %w", err)
		}
		if n > 0 {
			return true, nil
		}
	}
	return false, nil
}

// readyTargets lists the enabled webhooks not backing off at nowMS.
func (tx *Tx) readyTargets(nowMS int64) ([]Target, error) { return readyTargets(tx.ctx, tx.q(), nowMS) }

func readyTargets(ctx context.Context, q querier, nowMS int64) ([]Target, error) {
	rows, err := q.QueryContext(ctx, `SELECT id, failures, events, tracking, queued_to, urgent_to FROM webhooks
		WHERE enabled = 1 AND blocked_until <= $1 ORDER BY id`, nowMS)
	if err != nil {
		return nil, fmt.Errorf("store: ready webhooks: %w", err)
	}
	defer rows.Close()
	var out []Target
	for rows.Next() {
		t := Target{Channel: ChannelWebhook}
		var events string
		var tracking sql.NullString
		if err := rows.Scan(&t.ID, &t.Failures, &events, &tracking, &t.queuedTo, &t.urgentTo); err != nil {
			return nil, fmt.Errorf("store: ready webhooks: %w", err)
		}
		t.filter = WebhookFilter{ID: t.ID, Events: splitEvents(events), Tracking: tracking.String}
		out = append(out, t)
	}
	return out, rows.Err()
}

// claimLock is the PostgreSQL advisory lock key claims take turns on.
const claimLock = 0x6c6d_636c // "lmcl"

// claim leases up to limit due deliveries of one target, the urgent ones
// first, each group in event order.
func (tx *Tx) claim(t Target, nowMS, leaseUntil int64, limit int) ([]Delivery, error) {
	lock := ""
	if tx.s.dialect == Postgres {
		lock = " FOR UPDATE OF d SKIP LOCKED"
	}
	return queryDeliveries(tx.ctx, tx.q(), `UPDATE deliveries SET lease_until = $1 WHERE id IN (
		SELECT d.id FROM deliveries d
		WHERE d.state = 'pending' AND d.channel = $4 AND d.target = $5 AND d.next_at <= $2 AND d.lease_until <= $2
		AND NOT EXISTS (SELECT 1 FROM deliveries p WHERE p.state = 'pending' AND p.channel = d.channel
			AND p.target = d.target AND p.shipment = d.shipment AND p.event < d.event
			AND (p.next_at > $2 OR p.lease_until > $2 OR p.urgent < d.urgent))
		ORDER BY d.urgent DESC, d.event LIMIT $3`+lock+`)
		RETURNING id, event, shipment, channel, target, dedupe, state, attempts, next_at, lease_until, status_code, last_error, created, done_at`,
		leaseUntil, nowMS, limit, t.Channel, t.ID)
}

// Outcome is the result of one attempt at a claimed delivery.
type Outcome struct {
	ID     int64
	Target string // webhook id for webhook deliveries
	// State is DeliverySent, DeliverySkipped or DeliveryDead to finish
	// the delivery, or DeliveryPending to try again at NextAt.
	State      string
	NextAt     int64
	StatusCode int64
	Error      string
	// Counted reports an attempt that reached (or tried to reach) the
	// target; a skip is not one.
	Counted bool
	// TargetBlockedUntil, for a failed webhook attempt, holds back all
	// the subscription's deliveries until then (its backoff or the
	// receiver's Retry-After).
	TargetBlockedUntil int64
}

// FinishDeliveries records outcomes in one transaction and updates the
// webhooks' health: a success clears a subscription's failure streak; a
// failure starts or extends it. A subscription failing since before
// disableBeforeMS (0: never) is disabled and its pending deliveries go to
// the dead-letter list. It returns the ids of subscriptions it disabled.
func (s *Store) FinishDeliveries(ctx context.Context, nowMS int64, outs []Outcome, disableBeforeMS int64) ([]string, error) {
	disabled, _, err := s.FinishAndClaim(ctx, nowMS, outs, disableBeforeMS, 0, nil, nil)
	return disabled, err
}

func (tx *Tx) finish(nowMS int64, outs []Outcome, disableBeforeMS int64) ([]string, error) {
	var disabled []string
	failed := map[string]int64{} // webhook -> blocked until
	ok := map[string]bool{}
	if err := tx.recordOutcomes(nowMS, outs); err != nil {
		return nil, err
	}
	for _, o := range outs {
		if o.Target == "" || !o.Counted {
			continue
		}
		if o.State == DeliverySent {
			ok[o.Target] = true
		} else if o.State == DeliveryPending {
			failed[o.Target] = max(failed[o.Target], o.TargetBlockedUntil)
		}
	}
	for id := range ok {
		if _, err := tx.q().ExecContext(tx.ctx, `UPDATE webhooks SET failures = 0, failing_since = NULL WHERE id = $1`, id); err != nil {
			return nil, fmt.Errorf("store: webhook %s health: %w", id, err)
		}
	}
	for id, until := range failed {
		// A failure holds the subscription back even when another
		// attempt of the batch succeeded (a 429's Retry-After is for
		// every request); only a streak without success counts
		// towards disabling.
		streak := int64(1)
		if ok[id] {
			streak = 0
		}
		var since sql.NullInt64
		err := tx.q().QueryRowContext(tx.ctx, `UPDATE webhooks SET failures = failures + $1,
			failing_since = CASE WHEN $1 = 1 THEN COALESCE(failing_since, $2) ELSE failing_since END,
			blocked_until = CASE WHEN blocked_until > $3 THEN blocked_until ELSE $3 END WHERE id = $4 RETURNING failing_since`,
			streak, nowMS, until, id).Scan(&since)
		if errors.Is(err, sql.ErrNoRows) {
			continue // deleted meanwhile
		}
		if err != nil {
			return nil, fmt.Errorf("store: webhook %s health: %w", id, err)
		}
		if disableBeforeMS > 0 && since.Valid && since.Int64 < disableBeforeMS {
			if err := tx.disableWebhook(id, nowMS, "failing since "+msTime(since.Int64)); err != nil {
				return nil, err
			}
			disabled = append(disabled, id)
		}
	}
	return disabled, nil
}

// recordOutcomes writes the outcomes, 200 to a statement (UPDATE ... FROM
// VALUES: on PostgreSQL one round trip instead of one per delivery).
func (tx *Tx) recordOutcomes(nowMS int64, outs []Outcome) error {
	const per = 200
	for start := 0; start < len(outs); start += per {
		part := outs[start:min(start+per, len(outs))]
		var b strings.Builder
		args := make([]any, 0, 7*len(part))
		b.WriteString(`UPDATE deliveries SET state = v.column2, attempts = attempts + v.column3, next_at = v.column4, lease_until = 0,
			status_code = v.column5, last_error = v.column6, done_at = v.column7 FROM (VALUES `)
		for i, o := range part {
			if i > 0 {
				b.WriteByte(',')
			}
			const big, text = "CAST(%s AS BIGINT)", "CAST(%s AS TEXT)"
			tx.s.row(&b, 7*i, 7, big, text, big, big, big, text, big)
			counted := int64(0)
			if o.Counted {
				counted = 1
			}
			var done any
			if o.State != DeliveryPending {
				done = nowMS
			}
			args = append(args, o.ID, o.State, counted, o.NextAt, o.StatusCode, o.Error, done)
		}
		b.WriteString(`) AS v WHERE deliveries.id = v.column1 AND deliveries.state = 'pending'`)
		if _, err := tx.q().ExecContext(tx.ctx, b.String(), args...); err != nil {
			return fmt.Errorf("store: record delivery outcomes: %w", err)
		}
	}
	return nil
}

// disableWebhook turns a subscription off and moves its pending
// deliveries to the dead-letter list; the events it took and has not
// queued yet (up to the last committed) follow them there (queueJobs).
func (tx *Tx) disableWebhook(id string, nowMS int64, reason string) error {
	if _, err := tx.q().ExecContext(tx.ctx, `UPDATE webhooks SET enabled = 0, disabled_reason = $1, updated = $2,
		taken_to = (SELECT value FROM counters WHERE name = 'event_cursor') WHERE id = $3`,
		reason, nowMS/1000, id); err != nil {
		return fmt.Errorf("store: disable webhook %s: %w", id, err)
	}
	if _, err := tx.q().ExecContext(tx.ctx, `UPDATE deliveries SET state = 'dead', lease_until = 0, done_at = $1,
		last_error = CASE WHEN last_error = '' THEN 'subscription disabled' ELSE last_error END
		WHERE channel = 'webhook' AND target = $2 AND state = 'pending'`, nowMS, id); err != nil {
		return fmt.Errorf("store: dead-letter webhook %s: %w", id, err)
	}
	return nil
}

// DeliveryFilter selects deliveries to list.
type DeliveryFilter struct {
	Channel string // "" for all
	Target  string // "" for all
	State   string // "" for all
	After   int64  // delivery id to list from (exclusive)
	Limit   int
}

// Deliveries lists deliveries in id order.
func (s *Store) Deliveries(ctx context.Context, f DeliveryFilter) ([]Delivery, error) {
	where := []string{"d.id > $1"}
	args := []any{f.After}
	add := func(col, v string) {
		if v != "" {
			args = append(args, v)
			where = append(where, fmt.Sprintf("d.%s = $%d", col, len(args)))
		}
	}
	add("channel", f.Channel)
	add("target", f.Target)
	add("state", f.State)
	args = append(args, max(f.Limit, 1))
	return queryDeliveries(ctx, s.r(), `SELECT `+deliveryColumns+` FROM deliveries d WHERE `+strings.Join(where, " AND ")+
		fmt.Sprintf(" ORDER BY d.id LIMIT $%d", len(args)), args...)
}

// OutboxStats summarises the outbox for metrics.
type OutboxStats struct {
	// Pending counts deliveries waiting; Unqueued the events that
	// subscriptions have yet to take (cursors past theirs: see queue.go);
	// OldestPending is the creation time (ms) of the oldest of either (0:
	// none). Dead counts the dead letters.
	Pending, Unqueued, OldestPending, Dead int64
}

// OutboxStats counts the outbox's pending deliveries and dead letters
// (through partial indexes: it does not read the sent ones).
func (s *Store) OutboxStats(ctx context.Context) (OutboxStats, error) {
	var st OutboxStats
	if err := s.r().QueryRowContext(ctx, `SELECT COUNT(*) FROM deliveries WHERE state = 'pending'`).Scan(&st.Pending); err != nil {
		return st, fmt.Errorf("store: outbox stats: %w", err)
	}
	if err := s.r().QueryRowContext(ctx, `SELECT COUNT(*) FROM deliveries WHERE state = 'dead'`).Scan(&st.Dead); err != nil {
		return st, fmt.Errorf("store: outbox stats: %w", err)
	}
	if st.Pending > 0 {
		err := s.r().QueryRowContext(ctx, `SELECT COALESCE(MIN(created), 0) FROM deliveries WHERE state = 'pending'`).Scan(&st.OldestPending)
		if err != nil {
			return st, fmt.Errorf("store: outbox stats: %w", err)
		}
	}
	var first sql.NullInt64
	err := s.r().QueryRowContext(ctx, `SELECT COALESCE(SUM(b), 0), MIN(q) FROM (
		SELECT CASE WHEN w.enabled = 1 THEN c.value ELSE w.taken_to END - w.queued_to AS b, w.queued_to AS q
		FROM webhooks w, counters c WHERE c.name = 'event_cursor') x WHERE b > 0`).Scan(&st.Unqueued, &first)
	if err != nil {
		return st, fmt.Errorf("store: outbox stats: %w", err)
	}
	if first.Valid {
		var created int64 // Unix seconds
		err := s.r().QueryRowContext(ctx, `SELECT created FROM events WHERE cursor = $1`, first.Int64+1).Scan(&created)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return st, fmt.Errorf("store: outbox stats: %w", err)
		}
		if created > 0 && (st.OldestPending == 0 || created*1000 < st.OldestPending) {
			st.OldestPending = created * 1000
		}
	}
	return st, nil
}

// PruneDeliveries deletes sent and skipped deliveries finished before
// beforeMS (dead letters stay until their subscription is deleted or
// they are replayed), at most limit rows; it returns how many.
func (s *Store) PruneDeliveries(ctx context.Context, beforeMS int64, limit int) (int64, error) {
	var n int64
	_, err := s.Tx(ctx, func(tx *Tx) error {
		res, err := tx.q().ExecContext(tx.ctx, `DELETE FROM deliveries WHERE id IN (SELECT id FROM deliveries
			WHERE state IN ('sent', 'skipped') AND done_at < $1 LIMIT $2)`, beforeMS, limit)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("store: prune deliveries: %w", err)
	}
	return n, nil
}

// EventsByCursor returns the events with those cursors, by cursor.
func (s *Store) EventsByCursor(ctx context.Context, cursors []int64) (map[int64]Event, error) {
	out := make(map[int64]Event, len(cursors))
	for len(cursors) > 0 {
		n := min(len(cursors), 500)
		var b strings.Builder
		args := make([]any, n)
		for i, c := range cursors[:n] {
			args[i] = c
		}
		s.row(&b, 0, n)
		evs, err := queryEvents(ctx, s.r(), `SELECT `+eventColumns+` FROM events e JOIN shipments s ON s.id = e.shipment
			WHERE e.cursor IN `+b.String(), args...)
		if err != nil {
			return nil, err
		}
		for _, e := range evs {
			out[e.Cursor] = e
		}
		cursors = cursors[n:]
	}
	return out, nil
}

// EventRange selects events by cursor and by time (zero bounds: open).
type EventRange struct {
	AfterCursor, UntilCursor int64 // (after, until]
	FromTime, ToTime         int64 // [from, to] Unix seconds
	Limit                    int
}

// EventsIn returns up to r.Limit events in the range, in cursor order.
func (s *Store) EventsIn(ctx context.Context, r EventRange) ([]Event, error) {
	where := []string{"e.cursor > $1"}
	args := []any{r.AfterCursor}
	add := func(cond string, v int64) {
		if v != 0 {
			args = append(args, v)
			where = append(where, fmt.Sprintf(cond, len(args)))
		}
	}
	add("e.cursor <= $%d", r.UntilCursor)
	add("e.time >= $%d", r.FromTime)
	add("e.time <= $%d", r.ToTime)
	args = append(args, max(r.Limit, 1))
	return queryEvents(ctx, s.r(), `SELECT `+eventColumns+` FROM events e JOIN shipments s ON s.id = e.shipment
		WHERE `+strings.Join(where, " AND ")+fmt.Sprintf(" ORDER BY e.cursor LIMIT $%d", len(args)), args...)
}

// ShipmentsNotify returns the notification preferences (Shipment.Notify)
// and language of shipments by id, read in the transaction.
func (tx *Tx) ShipmentsNotify(ids []int64) (map[int64][2]string, error) {
	out := make(map[int64][2]string, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	var b strings.Builder
	args := make([]any, len(ids))
	for i, id := range ids {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "$%d", i+1)
		args[i] = id
	}
	rows, err := tx.q().QueryContext(tx.ctx, `SELECT id, notify, language FROM shipments WHERE id IN (`+b.String()+`)`, args...)
	if err != nil {
		return nil, fmt.Errorf("store: shipments' preferences: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		var n, lang string
		if err := rows.Scan(&id, &n, &lang); err != nil {
			return nil, fmt.Errorf("store: shipments' preferences: %w", err)
		}
		out[id] = [2]string{n, lang}
	}
	return out, rows.Err()
}

// SetShipmentNotify replaces a shipment's notification preferences.
func (tx *Tx) SetShipmentNotify(id int64, notify string, t int64) error {
	_, err := tx.q().ExecContext(tx.ctx, `UPDATE shipments SET notify = $1, updated = $2 WHERE id = $3`, notify, t, id)
	if err != nil {
		return fmt.Errorf("store: shipment preferences: %w", err)
	}
	return nil
}

// AddOptOut records that an address (its keyed hash, never the address)
// wants nothing more on a channel.
func (s *Store) AddOptOut(ctx context.Context, channel string, addrMAC []byte, t int64) error {
	_, err := s.Tx(ctx, func(tx *Tx) error {
		_, err := tx.q().ExecContext(tx.ctx, `INSERT INTO optouts (channel, address, created) VALUES ($1, $2, $3)
			ON CONFLICT (channel, address) DO NOTHING`, channel, addrMAC, t)
		return err
	})
	if err != nil {
		return fmt.Errorf("store: opt-out: %w", err)
	}
	return nil
}

// OptedOut reports whether the address opted out of the channel: macs
// are its keyed hashes under each key of the ring (seal.Ring.MACs).
func (s *Store) OptedOut(ctx context.Context, channel string, macs [][]byte) (bool, error) {
	if len(macs) == 0 {
		return false, nil
	}
	var b strings.Builder
	args := []any{channel}
	for i, m := range macs {
		if i > 0 {
			b.WriteString(", ")
		}
		args = append(args, m)
		fmt.Fprintf(&b, "$%d", len(args))
	}
	var n int
	err := s.r().QueryRowContext(ctx, `SELECT COUNT(*) FROM optouts WHERE channel = $1 AND address IN (`+b.String()+`)`, args...).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("store: opt-out: %w", err)
	}
	return n > 0, nil
}

// Ring returns the key ring that seals the store's personal data.
func (s *Store) Ring() *seal.Ring { return s.ring }
