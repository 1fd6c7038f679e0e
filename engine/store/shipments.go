package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/lastmile/lastmile/engine/seal"
)

// Recipient is the person a shipment is for. Name, Phone and Email are
// personal data: sealed at rest, erased after retention. Language is a
// preference (BCP 47 tag) kept in clear.
type Recipient struct {
	Name  string `json:"name,omitempty"`
	Phone string `json:"phone,omitempty"`
	Email string `json:"email,omitempty"`
}

// Parcels describes what a shipment holds, for vehicle capacities.
type Parcels struct {
	Count  int     `json:"count,omitempty"`
	Weight float64 `json:"weight,omitempty"` // kg
	// Dimensions of each parcel in cm (length, width, height).
	Dimensions [][3]float64 `json:"dimensions,omitempty"`
}

// Shipment is one parcel delivery (possibly several parcels) to one
// recipient, identified by its unique tracking number; Token is the
// unguessable part of its public tracking link (stored sealed, found by
// its SHA-256 hash, so a leaked table gives no working links). Status is the latest
// status of its timeline (created, a caller's milestone, or the status of
// its current stop). Seq is the sequence number of its latest event.
// Window is the promised delivery window [start, end] in Unix seconds
// (zero: none). Erased is when its personal data was erased (0: not).
type Shipment struct {
	ID           int64
	Tracking     string
	Token        string
	Status       string
	Recipient    Recipient
	Language     string
	Address      string
	Instructions string
	Location     [2]float64 // lon, lat
	Window       [2]int64
	Service      int64 // seconds
	Parcels      Parcels
	TZ           string
	// Notify is the recipient's notification preferences as JSON ("" for
	// the defaults); the notify package reads it.
	Notify  string
	Seq     int64
	Created int64
	Updated int64
	DoneAt  int64
	Erased  int64
}

// aad binds a sealed column of a shipment to the shipment and the column.
func aad(tracking, column string) []byte {
	return []byte("shipments." + column + ":" + tracking)
}

func (s *Store) sealString(v, tracking, column string) []byte {
	if v == "" {
		return nil
	}
	return s.ring.Seal([]byte(v), aad(tracking, column))
}

func (s *Store) openString(ct []byte, tracking, column string) (string, error) {
	if len(ct) == 0 {
		return "", nil
	}
	pt, err := s.ring.Open(ct, aad(tracking, column))
	if err != nil {
		return "", fmt.Errorf("store: shipment %s: open %s: %w", tracking, column, err)
	}
	return string(pt), nil
}

// InsertShipment stores a new shipment and sets sh.ID; ErrExists when the
// tracking number (or token) is taken.
func (tx *Tx) InsertShipment(sh *Shipment) error {
	var rec []byte
	if sh.Recipient != (Recipient{}) {
		b, err := json.Marshal(sh.Recipient)
		if err != nil {
			return fmt.Errorf("store: insert shipment: %w", err)
		}
		rec = tx.s.ring.Seal(b, aad(sh.Tracking, "recipient"))
	}
	parcels, err := json.Marshal(sh.Parcels)
	if err != nil {
		return fmt.Errorf("store: insert shipment: %w", err)
	}
	err = tx.q().QueryRowContext(tx.ctx, `INSERT INTO shipments (tracking, token_hash, token, status, recipient, language, address, instructions,
		lon, lat, tw_start, tw_end, service, parcels, tz, notify, created, updated)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $17, $16, $16) RETURNING id`,
		sh.Tracking, seal.HashToken(sh.Token), tx.s.sealString(sh.Token, sh.Tracking, "token"), sh.Status, rec, sh.Language, tx.s.sealString(sh.Address, sh.Tracking, "address"),
		tx.s.sealString(sh.Instructions, sh.Tracking, "instructions"), sh.Location[0], sh.Location[1],
		sh.Window[0], sh.Window[1], sh.Service, string(parcels), sh.TZ, sh.Created, sh.Notify).Scan(&sh.ID)
	if uniqueViolation(err) {
		return ErrExists
	}
	if err != nil {
		return fmt.Errorf("store: insert shipment: %w", err)
	}
	sh.Updated = sh.Created
	return nil
}

const shipmentColumns = `id, tracking, token, status, recipient, language, address, instructions, lon, lat,
	tw_start, tw_end, service, parcels, tz, notify,
	COALESCE((SELECT seq FROM event_seqs q WHERE q.shipment = shipments.id), 0), created, updated, done_at, erased`

func (s *Store) scanShipment(row interface{ Scan(...any) error }) (Shipment, error) {
	var sh Shipment
	var rec, addr, instr, token []byte
	var parcels string
	var done, erased sql.NullInt64
	err := row.Scan(&sh.ID, &sh.Tracking, &token, &sh.Status, &rec, &sh.Language, &addr, &instr,
		&sh.Location[0], &sh.Location[1], &sh.Window[0], &sh.Window[1], &sh.Service, &parcels, &sh.TZ, &sh.Notify,
		&sh.Seq, &sh.Created, &sh.Updated, &done, &erased)
	if err != nil {
		return sh, err
	}
	sh.DoneAt, sh.Erased = done.Int64, erased.Int64
	if parcels != "" {
		if err := json.Unmarshal([]byte(parcels), &sh.Parcels); err != nil {
			return sh, fmt.Errorf("store: shipment %s: parcels: %w", sh.Tracking, err)
		}
	}
	if len(rec) > 0 {
		pt, err := s.ring.Open(rec, aad(sh.Tracking, "recipient"))
		if err != nil {
			return sh, fmt.Errorf("store: shipment %s: open recipient: %w", sh.Tracking, err)
		}
		if err := json.Unmarshal(pt, &sh.Recipient); err != nil {
			return sh, fmt.Errorf("store: shipment %s: recipient: %w", sh.Tracking, err)
		}
	}
	if sh.Token, err = s.openString(token, sh.Tracking, "token"); err != nil {
		return sh, err
	}
	if sh.Address, err = s.openString(addr, sh.Tracking, "address"); err != nil {
		return sh, err
	}
	sh.Instructions, err = s.openString(instr, sh.Tracking, "instructions")
	return sh, err
}

func (s *Store) shipmentWhere(ctx context.Context, q querier, where, lock string, arg any) (Shipment, error) {
	sh, err := s.scanShipment(q.QueryRowContext(ctx, `SELECT `+shipmentColumns+` FROM shipments WHERE `+where+lock, arg))
	if errors.Is(err, sql.ErrNoRows) {
		return Shipment{}, ErrNotFound
	}
	if err != nil {
		return Shipment{}, fmt.Errorf("store: shipment: %w", err)
	}
	return sh, nil
}

// ShipmentByTracking returns the shipment with that tracking number.
func (s *Store) ShipmentByTracking(ctx context.Context, tracking string) (Shipment, error) {
	return s.shipmentWhere(ctx, s.r(), "tracking = $1", "", tracking)
}

// ShipmentByToken returns the shipment whose tracking link has that token.
func (s *Store) ShipmentByToken(ctx context.Context, token string) (Shipment, error) {
	return s.shipmentWhere(ctx, s.r(), "token_hash = $1", "", seal.HashToken(token))
}

// ShipmentOfStop returns the shipment that stop id delivers.
func (s *Store) ShipmentOfStop(ctx context.Context, stop int64) (Shipment, error) {
	return s.shipmentWhere(ctx, s.r(), "id = (SELECT shipment FROM stops WHERE id = $1)", "", stop)
}

// LockShipment reads the shipment with that tracking number and, on
// PostgreSQL, locks it until the transaction ends.
func (tx *Tx) LockShipment(tracking string) (Shipment, error) {
	return tx.s.shipmentWhere(tx.ctx, tx.q(), "tracking = $1", tx.forUpdate(), tracking)
}

// ShipmentByID reads a shipment in the transaction.
func (tx *Tx) ShipmentByID(id int64) (Shipment, error) {
	return tx.s.shipmentWhere(tx.ctx, tx.q(), "id = $1", "", id)
}

// ShipmentsByTracking reads the shipments with these tracking numbers in
// the transaction, keyed by tracking number (missing ones are absent).
func (tx *Tx) ShipmentsByTracking(trackings []string) (map[string]Shipment, error) {
	out := make(map[string]Shipment, len(trackings))
	for start := 0; start < len(trackings); start += 500 {
		part := trackings[start:min(start+500, len(trackings))]
		args := make([]any, len(part))
		ph := make([]string, len(part))
		for i, t := range part {
			args[i] = t
			ph[i] = fmt.Sprintf("$%d", i+1)
		}
		rows, err := tx.q().QueryContext(tx.ctx, `SELECT `+shipmentColumns+` FROM shipments WHERE tracking IN (`+strings.Join(ph, ",")+`)`, args...)
		if err != nil {
			return nil, fmt.Errorf("store: shipments: %w", err)
		}
		for rows.Next() {
			sh, err := tx.s.scanShipment(rows)
			if err != nil {
				rows.Close()
				return nil, fmt.Errorf("store: shipments: %w", err)
			}
			out[sh.Tracking] = sh
		}
		if err := rows.Close(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// SetShipmentStatus records a shipment's latest status at t; done, when
// non-zero, is when its last-mile attempt ended (delivered or failed).
func (tx *Tx) SetShipmentStatus(id int64, status string, t, done int64) error {
	_, err := tx.q().ExecContext(tx.ctx, `UPDATE shipments SET status = $1, updated = $2, done_at = COALESCE($3, done_at) WHERE id = $4`,
		status, t, nullInt(done), id)
	if err != nil {
		return fmt.Errorf("store: shipment status: %w", err)
	}
	return nil
}

// SetShipmentWindow changes a shipment's promised window at t.
func (tx *Tx) SetShipmentWindow(id int64, w [2]int64, t int64) error {
	_, err := tx.q().ExecContext(tx.ctx, `UPDATE shipments SET tw_start = $1, tw_end = $2, updated = $3 WHERE id = $4`, w[0], w[1], t, id)
	if err != nil {
		return fmt.Errorf("store: shipment window: %w", err)
	}
	return nil
}

// EraseExpired erases the personal data (recipient, address,
// instructions, the tracking token: its link stops working) of shipments
// whose attempt ended before cutoff, at t, and
// returns how many it erased. What analytics needs stays: status, times,
// window, location.
func (tx *Tx) EraseExpired(cutoff, t int64) (int64, error) {
	res, err := tx.q().ExecContext(tx.ctx, `UPDATE shipments SET recipient = NULL, address = NULL, instructions = NULL, token = $3, erased = $1
		WHERE erased IS NULL AND done_at IS NOT NULL AND done_at < $2`, t, cutoff, []byte{})
	if err != nil {
		return 0, fmt.Errorf("store: erase: %w", err)
	}
	return res.RowsAffected()
}
