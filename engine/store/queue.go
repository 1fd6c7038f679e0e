package store

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Webhook deliveries are queued from the event log rather than by the
// transaction that commits the events: each subscription keeps the cursor
// of the last event it has taken (webhooks.queued_to), advanced in the
// transaction that queues the deliveries of the events up to it, so an
// event is queued for a subscription once and a crash loses none (the
// log commits with the state change that emitted it). The outbox's
// worker queues in the transaction where it claims (FinishAndClaim), and
// only a window ahead of what the subscription has yet to take: a
// receiver that is down, failing or slow stops the queueing, and ingest
// writes nothing for it. The recipient channels (e-mail, SMS) are still
// queued by the events' own transaction (Fanout): they depend on the
// shipment's preferences of that moment.
const (
	// queueAhead is how far (in event cursors) a healthy subscription's
	// deliveries are queued past its oldest pending one, or past its
	// cursor when none is pending: room for a few claims (claims take up
	// to 512 per target) and for the urgent ones among them to go first.
	queueAhead = 4096
	// probeAhead: a failing subscription (a failure streak), or one that
	// may take one delivery at a time, gets new deliveries only when none
	// is pending, this many cursors' worth, so that there is something to
	// probe it with.
	probeAhead = 64
	// queueRead bounds the events read for one subscription in one turn.
	queueRead = 4096
)

// urgentAhead bounds the urgent events queued past a subscription's
// window in one turn (queueUrgent): as many as a claim may take from a
// target (128 connections x 4). With 128, 4 saturated subscriptions got
// arriving_soon 2.0-2.5 s after its ping at the median, against 1.3-1.6
// s with 512 (bench/RESULTS.md, session 13).
const urgentAhead = 512

// WebhookFanout returns the deliveries of events to a subscription: one
// per event its filter takes, created at nowMS, urgent (Delivery.Urgent)
// for the event types named to SetWebhookFanout.
type WebhookFanout func(h WebhookFilter, events []Event, nowMS int64) []Delivery

// SetWebhookFanout installs the policy that turns events into webhook
// deliveries as they are queued, and names the event types it makes
// urgent (looked for past the window: queueUrgent). Call it before the
// store is used; without it no webhook delivery is queued.
func (s *Store) SetWebhookFanout(f WebhookFanout, urgent []string) {
	s.webhookFanout, s.urgentTypes = f, urgent
}

// queueJob is one subscription's share of the event log to queue in a
// turn: the events with cursors in (from, to], as pending deliveries or
// (dead) straight into the dead-letter list of a subscription the engine
// disabled.
type queueJob struct {
	hook     WebhookFilter
	from, to int64
	dead     bool
}

// queueJobs decides what to queue this turn: for each ready webhook
// target that limit lets claim, the window past its cursor (see
// queueAhead, probeAhead), and for each disabled subscription the events
// it took before it was turned off and has not queued yet.
func queueJobs(ctx context.Context, q querier, targets []Target, limit func(Target) int) ([]queueJob, error) {
	var jobs []queueJob
	for _, t := range targets {
		n := limit(t)
		if t.Channel != ChannelWebhook || n <= 0 {
			continue
		}
		oldest, pending, err := oldestPending(ctx, q, t.ID)
		if err != nil {
			return nil, err
		}
		// A target that may claim one delivery is probed: it is failing,
		// or (Service.Run) not yet heard from.
		probe := t.Failures > 0 || n == 1
		var to int64
		switch {
		case probe && pending:
			continue
		case probe:
			to = t.queuedTo + probeAhead
		case pending:
			to = min(oldest, t.queuedTo) + queueAhead
		default:
			to = t.queuedTo + queueAhead
		}
		if to = min(to, t.queuedTo+queueRead); to > t.queuedTo {
			jobs = append(jobs, queueJob{hook: t.filter, from: t.queuedTo, to: to})
		}
	}
	rows, err := q.QueryContext(ctx, `SELECT id, events, tracking, queued_to, taken_to, disabled_reason FROM webhooks
		WHERE enabled = 0 AND queued_to < taken_to ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("store: disabled webhooks: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var j queueJob
		var events, reason string
		var tracking sql.NullString
		if err := rows.Scan(&j.hook.ID, &events, &tracking, &j.from, &j.to, &reason); err != nil {
			return nil, fmt.Errorf("store: disabled webhooks: %w", err)
		}
		j.hook.Events, j.hook.Tracking = splitEvents(events), tracking.String
		j.to, j.dead = min(j.to, j.from+queueRead), reason != ""
		jobs = append(jobs, j)
	}
	return jobs, rows.Err()
}

// oldestPending returns the event cursor of a subscription's oldest
// pending delivery (two seeks in deliveries_claim, one per urgency).
func oldestPending(ctx context.Context, q querier, id string) (int64, bool, error) {
	var v sql.NullInt64
	err := q.QueryRowContext(ctx, `SELECT MIN(e) FROM (
		SELECT (SELECT event FROM deliveries WHERE state = 'pending' AND channel = 'webhook' AND target = $1 AND urgent = 1
			ORDER BY event LIMIT 1) AS e
		UNION ALL
		SELECT (SELECT event FROM deliveries WHERE state = 'pending' AND channel = 'webhook' AND target = $1 AND urgent = 0
			ORDER BY event LIMIT 1)) x`, id).Scan(&v)
	if err != nil {
		return 0, false, fmt.Errorf("store: oldest pending delivery of %s: %w", id, err)
	}
	return v.Int64, v.Valid, nil
}

// anyEvents reports whether the log holds an event with a cursor in
// (from, to].
func anyEvents(ctx context.Context, q querier, from, to int64) (bool, error) {
	var c int64
	err := q.QueryRowContext(ctx, `SELECT cursor FROM events WHERE cursor > $1 AND cursor <= $2 ORDER BY cursor LIMIT 1`, from, to).Scan(&c)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("store: events to queue: %w", err)
	}
	return true, nil
}

// queueUrgent queues, for a healthy webhook target that may claim n
// deliveries, up to min(n, urgentAhead) urgent events past its window
// that it takes, each with the events of its shipment before it that it
// has not queued (promoted with it: the shipment's order holds), so that
// an arriving_soon does not wait behind a backlog of events that keep.
// The subscription's urgent_to is the last event looked at this way; the
// window's queueing passes over what is queued already (same dedupe
// key). queuedTo is the target's cursor after this turn's window.
func (tx *Tx) queueUrgent(t Target, queuedTo int64, n int, nowMS int64) error {
	if tx.s.webhookFanout == nil {
		return nil
	}
	var types []string
	for _, typ := range tx.s.urgentTypes {
		if slices.Contains(t.filter.Events, "*") || slices.Contains(t.filter.Events, typ) {
			types = append(types, typ)
		}
	}
	if n = min(n, urgentAhead); len(types) == 0 || n <= 0 {
		return nil
	}
	from := max(t.urgentTo, queuedTo)
	var head int64
	if err := tx.q().QueryRowContext(tx.ctx, `SELECT value FROM counters WHERE name = 'event_cursor'`).Scan(&head); err != nil {
		return fmt.Errorf("store: event cursor: %w", err)
	}
	if from >= head {
		return nil
	}
	args := []any{from, head, n}
	in := make([]string, len(types))
	for i, typ := range types {
		args = append(args, typ)
		in[i] = fmt.Sprintf("$%d", len(args))
	}
	cond := ``
	if t.filter.Tracking != "" {
		args = append(args, t.filter.Tracking)
		cond = fmt.Sprintf(` AND s.tracking = $%d`, len(args))
	}
	found, err := tx.queueEvents(`e.cursor > $1 AND e.cursor <= $2 AND e.type IN (`+strings.Join(in, ", ")+`)`+cond+
		` ORDER BY e.cursor LIMIT $3`, args...)
	if err != nil {
		return err
	}
	to := head
	if len(found) == n {
		to = found[len(found)-1].Cursor
	}
	var evs []Event
	for _, u := range found {
		before, err := tx.queueEvents(`e.shipment = $1 AND e.cursor > $2 AND e.cursor < $3 ORDER BY e.cursor`,
			u.Shipment, queuedTo, u.Cursor)
		if err != nil {
			return err
		}
		evs = append(append(evs, before...), u)
	}
	slices.SortFunc(evs, func(a, b Event) int { return cmp.Compare(a.Cursor, b.Cursor) })
	evs = slices.CompactFunc(evs, func(a, b Event) bool { return a.Cursor == b.Cursor })
	if err := tx.AddDeliveries(tx.s.webhookFanout(t.filter, evs, nowMS)); err != nil {
		return err
	}
	if _, err := tx.q().ExecContext(tx.ctx, `UPDATE webhooks SET urgent_to = $1 WHERE id = $2`, to, t.ID); err != nil {
		return fmt.Errorf("store: webhook %s urgent cursor: %w", t.ID, err)
	}
	return nil
}

// queueEvents reads events for queueing (cursor, shipment, type,
// tracking) that satisfy where (over events e and shipments s).
func (tx *Tx) queueEvents(where string, args ...any) ([]Event, error) {
	rows, err := tx.q().QueryContext(tx.ctx, `SELECT e.cursor, e.shipment, e.type, s.tracking FROM events e
		JOIN shipments s ON s.id = e.shipment WHERE `+where, args...)
	if err != nil {
		return nil, fmt.Errorf("store: events to queue: %w", err)
	}
	defer rows.Close()
	var evs []Event
	for rows.Next() {
		var e Event
		if err := rows.Scan(&e.Cursor, &e.Shipment, &e.Type, &e.Tracking); err != nil {
			return nil, fmt.Errorf("store: events to queue: %w", err)
		}
		evs = append(evs, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: events to queue: %w", err)
	}
	return evs, nil
}

// queue runs a job: it reads the events of its range, queues the
// deliveries the subscription takes and moves its cursor past them, and
// returns the new cursor (from when the range held no event yet).
func (tx *Tx) queue(j queueJob, nowMS int64) (int64, error) {
	evs, err := tx.queueEvents(`e.cursor > $1 AND e.cursor <= $2 ORDER BY e.cursor LIMIT $3`, j.from, j.to, queueRead)
	if err != nil {
		return j.from, err
	}
	if len(evs) == 0 {
		return j.from, nil
	}
	if tx.s.webhookFanout != nil {
		ds := tx.s.webhookFanout(j.hook, evs, nowMS)
		if j.dead {
			for i := range ds {
				ds[i].State, ds[i].LastError, ds[i].DoneAt, ds[i].Urgent = DeliveryDead, "subscription disabled", nowMS, false
			}
		}
		if err := tx.AddDeliveries(ds); err != nil {
			return j.from, err
		}
	}
	last := evs[len(evs)-1].Cursor
	if _, err := tx.q().ExecContext(tx.ctx, `UPDATE webhooks SET queued_to = $1 WHERE id = $2`, last, j.hook.ID); err != nil {
		return j.from, fmt.Errorf("store: webhook %s cursor: %w", j.hook.ID, err)
	}
	return last, nil
}
