package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Webhook is a subscription: events of the listed types (["*"] for all),
// of one shipment when Tracking is set, are POSTed to URL signed with
// Secret (Standard Webhooks, "whsec_..."; sealed at rest). A disabled
// subscription gets nothing new; DisabledReason says why when the engine
// turned it off. Failures counts consecutive failed attempts since
// FailingSince (Unix ms); BlockedUntil (ms) holds its deliveries back
// while it backs off. Created and Updated are Unix seconds.
type Webhook struct {
	ID             string
	URL            string
	Events         []string
	Tracking       string
	Secret         string
	Description    string
	Enabled        bool
	DisabledReason string
	Failures       int64
	FailingSince   int64
	BlockedUntil   int64
	Created        int64
	Updated        int64
	// QueuedTo is the cursor of the last event the subscription has taken
	// into its deliveries (see queue.go); TakenTo, while it is disabled,
	// the last event it takes (the last committed when it was turned
	// off). UpdateWebhook keeps both: they are the store's.
	QueuedTo, TakenTo int64
}

// msTime formats Unix milliseconds as RFC 3339 UTC.
func msTime(ms int64) string { return time.UnixMilli(ms).UTC().Format(time.RFC3339) }

func webhookAAD(id string) []byte { return []byte("webhooks.secret:" + id) }

// joinEvents and splitEvents store a subscription's event types as one
// comma-separated column (type names have no commas).
func joinEvents(evs []string) string { return strings.Join(evs, ",") }

func splitEvents(s string) []string {
	var out []string
	start := 0
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == ',' {
			if i > start {
				out = append(out, s[start:i])
			}
			start = i + 1
		}
	}
	return out
}

// InsertWebhook stores a new subscription.
func (tx *Tx) InsertWebhook(w Webhook) error {
	// It takes the events committed after it.
	_, err := tx.q().ExecContext(tx.ctx, `INSERT INTO webhooks (id, url, events, tracking, secret, description, enabled, created, updated,
		queued_to, urgent_to) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, (SELECT value FROM counters WHERE name = 'event_cursor'),
		(SELECT value FROM counters WHERE name = 'event_cursor'))`,
		w.ID, w.URL, joinEvents(w.Events), nullString(w.Tracking), tx.s.ring.Seal([]byte(w.Secret), webhookAAD(w.ID)),
		w.Description, boolInt(w.Enabled), w.Created)
	if uniqueViolation(err) {
		return ErrExists
	}
	if err != nil {
		return fmt.Errorf("store: insert webhook: %w", err)
	}
	return nil
}

// UpdateWebhook writes a subscription's URL, events, shipment filter,
// description, enabled flag and health fields as given. Disabled, a
// subscription takes the events committed until then (they are queued,
// and sent once it is enabled again); enabled again, it queues what it
// had still to take (dead letters if the engine had disabled it) and then
// takes the events committed from then on.
func (tx *Tx) UpdateWebhook(w Webhook) error {
	var enabled, queuedTo, takenTo int64
	var reason string
	err := tx.q().QueryRowContext(tx.ctx, `SELECT enabled, queued_to, taken_to, disabled_reason FROM webhooks WHERE id = $1`+tx.forUpdate(),
		w.ID).Scan(&enabled, &queuedTo, &takenTo, &reason)
	if errors.Is(err, sql.ErrNoRows) {
		return ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("store: update webhook: %w", err)
	}
	switch {
	case enabled == 1 && !w.Enabled:
		if _, err := tx.q().ExecContext(tx.ctx, `UPDATE webhooks SET taken_to = (SELECT value FROM counters WHERE name = 'event_cursor')
			WHERE id = $1`, w.ID); err != nil {
			return fmt.Errorf("store: update webhook: %w", err)
		}
	case enabled == 0 && w.Enabled:
		at := queuedTo
		for at < takenTo {
			next, err := tx.queue(queueJob{hook: WebhookFilter{ID: w.ID, Events: w.Events, Tracking: w.Tracking}, from: at,
				to: min(takenTo, at+queueRead), dead: reason != ""}, w.Updated*1000)
			if err != nil {
				return err
			}
			if next == at {
				break
			}
			at = next
		}
		if _, err := tx.q().ExecContext(tx.ctx, `UPDATE webhooks SET taken_to = 0,
			queued_to = (SELECT value FROM counters WHERE name = 'event_cursor'),
			urgent_to = (SELECT value FROM counters WHERE name = 'event_cursor') WHERE id = $1`, w.ID); err != nil {
			return fmt.Errorf("store: update webhook: %w", err)
		}
	}
	res, err := tx.q().ExecContext(tx.ctx, `UPDATE webhooks SET url = $1, events = $2, tracking = $3, description = $4,
		enabled = $5, disabled_reason = $6, failures = $7, failing_since = $8, blocked_until = $9, updated = $10 WHERE id = $11`,
		w.URL, joinEvents(w.Events), nullString(w.Tracking), w.Description, boolInt(w.Enabled), w.DisabledReason,
		w.Failures, nullInt(w.FailingSince), w.BlockedUntil, w.Updated, w.ID)
	if err != nil {
		return fmt.Errorf("store: update webhook: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}

// DisableWebhook turns a subscription off and dead-letters its pending
// deliveries.
func (tx *Tx) DisableWebhook(id string, nowMS int64, reason string) error {
	return tx.disableWebhook(id, nowMS, reason)
}

// DeleteWebhook removes a subscription and its deliveries.
func (tx *Tx) DeleteWebhook(id string) error {
	if _, err := tx.q().ExecContext(tx.ctx, `DELETE FROM deliveries WHERE channel = 'webhook' AND target = $1`, id); err != nil {
		return fmt.Errorf("store: delete webhook deliveries: %w", err)
	}
	res, err := tx.q().ExecContext(tx.ctx, `DELETE FROM webhooks WHERE id = $1`, id)
	if err != nil {
		return fmt.Errorf("store: delete webhook: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

const webhookColumns = `id, url, events, tracking, secret, description, enabled, disabled_reason, failures, failing_since,
	blocked_until, created, updated, queued_to, taken_to`

func (s *Store) scanWebhook(row interface{ Scan(...any) error }) (Webhook, error) {
	var w Webhook
	var events string
	var tracking sql.NullString
	var secret []byte
	var enabled int64
	var since sql.NullInt64
	err := row.Scan(&w.ID, &w.URL, &events, &tracking, &secret, &w.Description, &enabled, &w.DisabledReason, &w.Failures,
		&since, &w.BlockedUntil, &w.Created, &w.Updated, &w.QueuedTo, &w.TakenTo)
	if err != nil {
		return w, err
	}
	w.Events, w.Tracking, w.Enabled, w.FailingSince = splitEvents(events), tracking.String, enabled == 1, since.Int64
	pt, err := s.ring.Open(secret, webhookAAD(w.ID))
	if err != nil {
		return w, fmt.Errorf("store: webhook %s: open secret: %w", w.ID, err)
	}
	w.Secret = string(pt)
	return w, nil
}

func (s *Store) queryWebhooks(ctx context.Context, q querier, where string, args ...any) ([]Webhook, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+webhookColumns+` FROM webhooks `+where, args...)
	if err != nil {
		return nil, fmt.Errorf("store: webhooks: %w", err)
	}
	defer rows.Close()
	var out []Webhook
	for rows.Next() {
		w, err := s.scanWebhook(rows)
		if err != nil {
			return nil, fmt.Errorf("store: webhooks: %w", err)
		}
		out = append(out, w)
	}
	return out, rows.Err()
}

// Webhooks lists the subscriptions by creation.
func (s *Store) Webhooks(ctx context.Context) ([]Webhook, error) {
	return s.queryWebhooks(ctx, s.r(), `ORDER BY created, id`)
}

// Webhook returns one subscription; ErrNotFound when there is none.
func (s *Store) Webhook(ctx context.Context, id string) (Webhook, error) {
	ws, err := s.queryWebhooks(ctx, s.r(), `WHERE id = $1`, id)
	if err != nil {
		return Webhook{}, err
	}
	if len(ws) == 0 {
		return Webhook{}, ErrNotFound
	}
	return ws[0], nil
}

// LockWebhook reads a subscription in the transaction, locked on
// PostgreSQL until it ends.
func (tx *Tx) LockWebhook(id string) (Webhook, error) {
	ws, err := tx.s.queryWebhooks(tx.ctx, tx.q(), `WHERE id = $1`+tx.forUpdate(), id)
	if err != nil {
		return Webhook{}, err
	}
	if len(ws) == 0 {
		return Webhook{}, ErrNotFound
	}
	return ws[0], nil
}

// WebhookFilter is the part of a subscription that decides which events
// it takes.
type WebhookFilter struct {
	ID       string
	Events   []string
	Tracking string
}
