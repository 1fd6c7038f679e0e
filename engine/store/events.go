package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"
)

// Event is one entry of a shipment's timeline: a milestone from the
// business's systems (CallerID set) or a last-mile event of the engine.
// Cursor orders all events globally in commit order; Seq numbers a
// shipment's events 1, 2, 3... without gaps. Data is a JSON object ("" for
// none). Time is when it happened (Unix seconds), Created when it was
// recorded.
type Event struct {
	Cursor   int64
	ID       string
	Shipment int64
	Tracking string
	Seq      int64
	Type     string
	Time     int64
	Data     string
	CallerID string
	Created  int64
}

// newEventID returns an event id, also the idempotency key of its
// deliveries: "ev_" and 22 characters encoding 128 bits, the creation
// time's Unix milliseconds (48 bits) then 80 random ones, in an alphabet
// that keeps byte order. Ids made later sort after earlier ones, so the
// unique index on events.id grows at its end (a random id dirtied an
// index page per event of an ingest transaction); the random part keeps
// them unique and unguessable.
func newEventID(now time.Time) string {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(now.UnixMilli())<<16)
	rand.Read(b[6:]) // never returns an error (crypto/rand, Go 1.24+)
	return "ev_" + eventIDEncoding.EncodeToString(b[:])
}

// eventIDEncoding is base64 without padding over an alphabet in ASCII
// order (URL-safe), so that encoded ids sort as their bytes do.
var eventIDEncoding = base64.NewEncoding("-0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz").WithPadding(base64.NoPadding)

// Emit queues an event for the transaction's commit, where it gets its
// id (unless set), sequence number and cursor. Events of one transaction
// keep the order they were emitted in.
func (tx *Tx) Emit(e Event) {
	if e.ID == "" {
		e.ID = newEventID(time.Now())
	}
	tx.events = append(tx.events, e)
}

// flush writes what the transaction deferred: the ping chain heads no
// PutVehicle wrote, then the queued events.
func (tx *Tx) flush() error {
	if err := tx.flushHeads(); err != nil {
		return err
	}
	return tx.flushEvents()
}

// flushEvents writes the queued events: the shipments' next sequence
// numbers from their counters (event_seqs, taken in shipment id order,
// the lock order), then the cursors from the counter row, which stays
// locked until commit so that cursors follow commit order. Both the
// counters and the events are written by multi-row statements
// (eventRows at a time): one statement per event and shipment cost 20 µs
// an event on SQLite, most of it the statement's own overhead.
func (tx *Tx) flushEvents() error {
	if len(tx.events) == 0 {
		return nil
	}
	byShipment := map[int64][]int{}
	var ids []int64
	for i, e := range tx.events {
		if _, ok := byShipment[e.Shipment]; !ok {
			ids = append(ids, e.Shipment)
		}
		byShipment[e.Shipment] = append(byShipment[e.Shipment], i)
	}
	slices.Sort(ids)
	for start := 0; start < len(ids); start += eventRows {
		part := ids[start:min(start+eventRows, len(ids))]
		q, args := tx.s.values(`INSERT INTO event_seqs (shipment, seq) VALUES `, len(part), 2,
			` ON CONFLICT (shipment) DO UPDATE SET seq = event_seqs.seq + excluded.seq RETURNING shipment, seq`,
			func(k int, args []any) []any { return append(args, part[k], len(byShipment[part[k]])) })
		rows, err := tx.q().QueryContext(tx.ctx, q, args...)
		if err != nil {
			return fmt.Errorf("store: event sequences: %w", err)
		}
		got := 0
		for rows.Next() {
			var id, last int64
			if err := rows.Scan(&id, &last); err != nil {
				rows.Close()
				return fmt.Errorf("store: event sequences: %w", err)
			}
			idx := byShipment[id]
			for k, i := range idx {
				tx.events[i].Seq = last - int64(len(idx)-1-k)
			}
			got++
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("store: event sequences: %w", err)
		}
		if got != len(part) {
			return fmt.Errorf("store: event sequences: %d counters for %d shipments", got, len(part))
		}
	}
	var top int64
	err := tx.q().QueryRowContext(tx.ctx, `UPDATE counters SET value = value + $1 WHERE name = 'event_cursor' RETURNING value`,
		len(tx.events)).Scan(&top)
	if err != nil {
		return fmt.Errorf("store: event cursor: %w", err)
	}
	first := top - int64(len(tx.events)) + 1
	for i := range tx.events {
		tx.events[i].Cursor = first + int64(i)
	}
	const per = 9
	for start := 0; start < len(tx.events); start += eventRows {
		part := tx.events[start:min(start+eventRows, len(tx.events))]
		q, args := tx.s.values(`INSERT INTO events (cursor, id, shipment, seq, type, time, data, caller_id, created) VALUES `, len(part), per, "",
			func(k int, args []any) []any {
				e := &part[k]
				return append(args, e.Cursor, e.ID, e.Shipment, e.Seq, e.Type, e.Time, e.Data, nullString(e.CallerID), e.Created)
			})
		_, err := tx.q().ExecContext(tx.ctx, q, args...)
		if uniqueViolation(err) {
			e := part[0]
			if len(part) > 1 {
				return fmt.Errorf("store: events of shipments %d and others: %w", e.Shipment, ErrExists)
			}
			return fmt.Errorf("store: event %s of shipment %d: %w", e.Type, e.Shipment, ErrExists)
		}
		if err != nil {
			return fmt.Errorf("store: insert events: %w", err)
		}
	}
	tx.committed, tx.events = tx.events, nil
	if tx.s.fanout != nil {
		if err := tx.s.fanout(tx, tx.committed); err != nil {
			return fmt.Errorf("store: outbox: %w", err)
		}
	}
	return nil
}

// eventRows is the most rows of one multi-row statement of flushEvents
// (9 parameters each: 900 of SQLite's 32,766 and PostgreSQL's 65,535).
const eventRows = 100

const eventColumns = `e.cursor, e.id, e.shipment, s.tracking, e.seq, e.type, e.time, e.data, e.caller_id, e.created`

func scanEvent(row interface{ Scan(...any) error }) (Event, error) {
	var e Event
	var caller sql.NullString
	err := row.Scan(&e.Cursor, &e.ID, &e.Shipment, &e.Tracking, &e.Seq, &e.Type, &e.Time, &e.Data, &caller, &e.Created)
	e.CallerID = caller.String
	return e, err
}

func queryEvents(ctx context.Context, q querier, query string, args ...any) ([]Event, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("store: events: %w", err)
	}
	defer rows.Close()
	var out []Event
	for rows.Next() {
		e, err := scanEvent(rows)
		if err != nil {
			return nil, fmt.Errorf("store: events: %w", err)
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// CallerEvent returns the event a caller recorded on the shipment with
// its own id; ErrNotFound when there is none.
func (tx *Tx) CallerEvent(shipment int64, callerID string) (Event, error) {
	e, err := scanEvent(tx.q().QueryRowContext(tx.ctx, `SELECT `+eventColumns+` FROM events e JOIN shipments s ON s.id = e.shipment
		WHERE e.shipment = $1 AND e.caller_id = $2`, shipment, callerID))
	if errors.Is(err, sql.ErrNoRows) {
		return Event{}, ErrNotFound
	}
	if err != nil {
		return Event{}, fmt.Errorf("store: caller event: %w", err)
	}
	return e, nil
}

// ShipmentEvents returns a shipment's events in sequence order.
func (s *Store) ShipmentEvents(ctx context.Context, shipment int64) ([]Event, error) {
	return queryEvents(ctx, s.r(), `SELECT `+eventColumns+` FROM events e JOIN shipments s ON s.id = e.shipment
		WHERE e.shipment = $1 ORDER BY e.seq`, shipment)
}

// EventsAfter returns up to limit events with a cursor above after, in
// cursor order.
func (s *Store) EventsAfter(ctx context.Context, after int64, limit int) ([]Event, error) {
	return queryEvents(ctx, s.r(), `SELECT `+eventColumns+` FROM events e JOIN shipments s ON s.id = e.shipment
		WHERE e.cursor > $1 ORDER BY e.cursor LIMIT $2`, after, limit)
}

// VehicleEventsAfter is EventsAfter for the shipments that have (or had)
// a stop on a route of vehicle: what its driver may read.
func (s *Store) VehicleEventsAfter(ctx context.Context, vehicle string, after int64, limit int) ([]Event, error) {
	return queryEvents(ctx, s.r(), `SELECT `+eventColumns+` FROM events e JOIN shipments s ON s.id = e.shipment
		WHERE e.cursor > $1 AND e.shipment IN (SELECT st.shipment FROM stops st JOIN routes r ON r.id = st.route WHERE r.vehicle = $3)
		ORDER BY e.cursor LIMIT $2`, after, limit, vehicle)
}

// EventCursor returns the cursor of the latest committed event (0:
// none).
func (s *Store) EventCursor(ctx context.Context) (int64, error) {
	var v int64
	if err := s.r().QueryRowContext(ctx, `SELECT value FROM counters WHERE name = 'event_cursor'`).Scan(&v); err != nil {
		return 0, fmt.Errorf("store: event cursor: %w", err)
	}
	return v, nil
}
