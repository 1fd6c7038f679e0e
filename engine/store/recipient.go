package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/lastmile/lastmile/engine/seal"
)

// Message is one message between a shipment's recipient and the driver.
// From is "recipient" or "driver"; Text is sealed at rest. ClientID is the
// sender's idempotency key: the same (shipment, ClientID) is stored once.
type Message struct {
	ID       int64
	Shipment int64
	From     string
	Text     string
	ClientID string
	Created  int64
}

// sealedAAD binds a sealed column of a product table to its row's owner.
func sealedAAD(table, column string, owner int64) []byte {
	return []byte(table + "." + column + ":" + strconv.FormatInt(owner, 10))
}

// InsertMessage stores m and sets its ID and Created; when a message with
// the same shipment and client id exists, it returns that one and
// created false.
func (tx *Tx) InsertMessage(m *Message) (created bool, err error) {
	body := tx.s.ring.Seal([]byte(m.Text), sealedAAD("messages", "body", m.Shipment))
	err = tx.q().QueryRowContext(tx.ctx, `INSERT INTO messages (shipment, sender, body, client_id, created) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (shipment, client_id) DO NOTHING RETURNING id`, m.Shipment, m.From, body, m.ClientID, m.Created).Scan(&m.ID)
	if errors.Is(err, sql.ErrNoRows) {
		old, err := tx.s.messagesWhere(tx.ctx, tx.q(), `shipment = $1 AND client_id = $2`, m.Shipment, m.ClientID)
		if err != nil || len(old) == 0 {
			return false, fmt.Errorf("store: message: read existing: %v", err)
		}
		*m = old[0]
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("store: insert message: %w", err)
	}
	return true, nil
}

// Messages returns the shipment's messages, oldest first.
func (s *Store) Messages(ctx context.Context, shipment int64) ([]Message, error) {
	return s.messagesWhere(ctx, s.r(), `shipment = $1`, shipment)
}

// MessageCounts returns the number of messages of each shipment given
// (shipments without any are absent).
func (s *Store) MessageCounts(ctx context.Context, shipments []int64) (map[int64]int, error) {
	out := make(map[int64]int, len(shipments))
	for start := 0; start < len(shipments); start += 500 {
		part := shipments[start:min(start+500, len(shipments))]
		args := make([]any, len(part))
		ph := make([]string, len(part))
		for i, id := range part {
			args[i] = id
			ph[i] = fmt.Sprintf("$%d", i+1)
		}
		rows, err := s.r().QueryContext(ctx, `SELECT shipment, COUNT(*) FROM messages WHERE shipment IN (`+strings.Join(ph, ",")+`) GROUP BY shipment`, args...)
		if err != nil {
			return nil, fmt.Errorf("store: message counts: %w", err)
		}
		for rows.Next() {
			var id int64
			var n int
			if err := rows.Scan(&id, &n); err != nil {
				rows.Close()
				return nil, fmt.Errorf("store: message counts: %w", err)
			}
			out[id] = n
		}
		if err := rows.Close(); err != nil {
			return nil, fmt.Errorf("store: message counts: %w", err)
		}
	}
	return out, nil
}

func (s *Store) messagesWhere(ctx context.Context, q querier, where string, args ...any) ([]Message, error) {
	rows, err := q.QueryContext(ctx, `SELECT id, shipment, sender, body, client_id, created FROM messages WHERE `+where+` ORDER BY id`, args...)
	if err != nil {
		return nil, fmt.Errorf("store: messages: %w", err)
	}
	defer rows.Close()
	var out []Message
	for rows.Next() {
		var m Message
		var body []byte
		if err := rows.Scan(&m.ID, &m.Shipment, &m.From, &body, &m.ClientID, &m.Created); err != nil {
			return nil, fmt.Errorf("store: messages: %w", err)
		}
		if len(body) > 0 {
			pt, err := s.ring.Open(body, sealedAAD("messages", "body", m.Shipment))
			if err != nil {
				return nil, fmt.Errorf("store: message %d: open: %w", m.ID, err)
			}
			m.Text = string(pt)
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

// Pod is a proof of delivery of a stop: the content keys of the photo and
// the signature in the blob store ("" when absent), who received the
// parcel, where the phone was (Geo [lon, lat, accuracy m], HasGeo false
// when the phone gave none) and whether that was farther from the stop
// than allowed (Far, Distance in metres). Name and Geo are sealed at rest.
// ClientID is the uploader's idempotency key (unique per stop).
type Pod struct {
	ID        int64
	Stop      int64
	Shipment  int64
	Photo     string
	Signature string
	Name      string
	Geo       [3]float64
	HasGeo    bool
	Far       bool
	Distance  float64
	ClientID  string
	Time      int64
	Created   int64
}

// InsertPod stores p and sets its ID; when the stop already has a proof
// with the same client id, it returns that one and created false.
func (tx *Tx) InsertPod(p *Pod) (created bool, err error) {
	var geo []byte
	if p.HasGeo {
		b, _ := json.Marshal(p.Geo)
		geo = tx.s.ring.Seal(b, sealedAAD("pods", "geo", p.Stop))
	}
	var name []byte
	if p.Name != "" {
		name = tx.s.ring.Seal([]byte(p.Name), sealedAAD("pods", "name", p.Stop))
	}
	far := 0
	if p.Far {
		far = 1
	}
	err = tx.q().QueryRowContext(tx.ctx, `INSERT INTO pods (stop, shipment, photo, signature, name, geo, far, distance, client_id, time, created)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT (stop, client_id) DO NOTHING RETURNING id`,
		p.Stop, p.Shipment, p.Photo, p.Signature, name, geo, far, p.Distance, p.ClientID, p.Time, p.Created).Scan(&p.ID)
	if errors.Is(err, sql.ErrNoRows) {
		old, err := tx.s.podsWhere(tx.ctx, tx.q(), `stop = $1 AND client_id = $2`, p.Stop, p.ClientID)
		if err != nil || len(old) == 0 {
			return false, fmt.Errorf("store: pod: read existing: %v", err)
		}
		*p = old[0]
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("store: insert pod: %w", err)
	}
	return true, nil
}

// StopPods returns the proofs of a stop, oldest first.
func (tx *Tx) StopPods(stop int64) ([]Pod, error) {
	return tx.s.podsWhere(tx.ctx, tx.q(), `stop = $1`, stop)
}

// ShipmentPods returns the proofs of all of a shipment's stops, oldest
// first.
func (s *Store) ShipmentPods(ctx context.Context, shipment int64) ([]Pod, error) {
	return s.podsWhere(ctx, s.r(), `shipment = $1`, shipment)
}

func (s *Store) podsWhere(ctx context.Context, q querier, where string, args ...any) ([]Pod, error) {
	rows, err := q.QueryContext(ctx, `SELECT id, stop, shipment, photo, signature, name, geo, far, distance, client_id, time, created
		FROM pods WHERE `+where+` ORDER BY id`, args...)
	if err != nil {
		return nil, fmt.Errorf("store: pods: %w", err)
	}
	defer rows.Close()
	var out []Pod
	for rows.Next() {
		var p Pod
		var name, geo []byte
		var far int64
		var dist sql.NullFloat64
		if err := rows.Scan(&p.ID, &p.Stop, &p.Shipment, &p.Photo, &p.Signature, &name, &geo, &far, &dist, &p.ClientID, &p.Time, &p.Created); err != nil {
			return nil, fmt.Errorf("store: pods: %w", err)
		}
		p.Far, p.Distance = far != 0, dist.Float64
		if len(name) > 0 {
			pt, err := s.ring.Open(name, sealedAAD("pods", "name", p.Stop))
			if err != nil {
				return nil, fmt.Errorf("store: pod %d: open name: %w", p.ID, err)
			}
			p.Name = string(pt)
		}
		if len(geo) > 0 {
			pt, err := s.ring.Open(geo, sealedAAD("pods", "geo", p.Stop))
			if err != nil {
				return nil, fmt.Errorf("store: pod %d: open geo: %w", p.ID, err)
			}
			if err := json.Unmarshal(pt, &p.Geo); err != nil {
				return nil, fmt.Errorf("store: pod %d: geo: %w", p.ID, err)
			}
			p.HasGeo = true
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// Rating is a recipient's rating of a delivery (1 to 5 stars) with an
// optional comment, sealed at rest; one per shipment.
type Rating struct {
	Shipment int64
	Stars    int64
	Comment  string
	Created  int64
}

// PutRating stores or replaces the shipment's rating.
func (tx *Tx) PutRating(r Rating) error {
	var c []byte
	if r.Comment != "" {
		c = tx.s.ring.Seal([]byte(r.Comment), sealedAAD("ratings", "comment", r.Shipment))
	}
	_, err := tx.q().ExecContext(tx.ctx, `INSERT INTO ratings (shipment, stars, comment, created) VALUES ($1, $2, $3, $4)
		ON CONFLICT (shipment) DO UPDATE SET stars = excluded.stars, comment = excluded.comment, created = excluded.created`,
		r.Shipment, r.Stars, c, r.Created)
	if err != nil {
		return fmt.Errorf("store: rating: %w", err)
	}
	return nil
}

// RatingOf returns the shipment's rating; ErrNotFound when none.
func (s *Store) RatingOf(ctx context.Context, shipment int64) (Rating, error) {
	r := Rating{Shipment: shipment}
	var c []byte
	err := s.r().QueryRowContext(ctx, `SELECT stars, comment, created FROM ratings WHERE shipment = $1`, shipment).Scan(&r.Stars, &c, &r.Created)
	if errors.Is(err, sql.ErrNoRows) {
		return Rating{}, ErrNotFound
	}
	if err != nil {
		return Rating{}, fmt.Errorf("store: rating: %w", err)
	}
	if len(c) > 0 {
		pt, err := s.ring.Open(c, sealedAAD("ratings", "comment", shipment))
		if err != nil {
			return Rating{}, fmt.Errorf("store: rating: open: %w", err)
		}
		r.Comment = string(pt)
	}
	return r, nil
}

// WindowRequest is a recipient's request for another delivery window and
// the answer: State "accepted" or "declined" (with Reason).
type WindowRequest struct {
	ID       int64
	Shipment int64
	Window   [2]int64
	State    string
	Reason   string
	Created  int64
}

// InsertWindowRequest stores r and sets its ID.
func (tx *Tx) InsertWindowRequest(r *WindowRequest) error {
	err := tx.q().QueryRowContext(tx.ctx, `INSERT INTO window_requests (shipment, tw_start, tw_end, state, reason, created)
		VALUES ($1, $2, $3, $4, $5, $6) RETURNING id`, r.Shipment, r.Window[0], r.Window[1], r.State, r.Reason, r.Created).Scan(&r.ID)
	if err != nil {
		return fmt.Errorf("store: window request: %w", err)
	}
	return nil
}

// LatestWindowRequest returns the shipment's latest window request;
// ErrNotFound when none.
func (s *Store) LatestWindowRequest(ctx context.Context, shipment int64) (WindowRequest, error) {
	r := WindowRequest{Shipment: shipment}
	err := s.r().QueryRowContext(ctx, `SELECT id, tw_start, tw_end, state, reason, created FROM window_requests WHERE shipment = $1 ORDER BY id DESC LIMIT 1`,
		shipment).Scan(&r.ID, &r.Window[0], &r.Window[1], &r.State, &r.Reason, &r.Created)
	if errors.Is(err, sql.ErrNoRows) {
		return WindowRequest{}, ErrNotFound
	}
	if err != nil {
		return WindowRequest{}, fmt.Errorf("store: window request: %w", err)
	}
	return r, nil
}

// SetInstructions replaces the shipment's delivery instructions at t.
func (tx *Tx) SetInstructions(id int64, tracking, text string, t int64) error {
	_, err := tx.q().ExecContext(tx.ctx, `UPDATE shipments SET instructions = $1, updated = $2 WHERE id = $3`,
		tx.s.sealString(text, tracking, "instructions"), t, id)
	if err != nil {
		return fmt.Errorf("store: instructions: %w", err)
	}
	return nil
}

// SetToken replaces the shipment's tracking token (the old link stops
// working at once).
func (tx *Tx) SetToken(id int64, tracking, token string, t int64) error {
	_, err := tx.q().ExecContext(tx.ctx, `UPDATE shipments SET token_hash = $1, token = $2, updated = $3 WHERE id = $4`,
		seal.HashToken(token), tx.s.sealString(token, tracking, "token"), t, id)
	if uniqueViolation(err) {
		return ErrExists
	}
	if err != nil {
		return fmt.Errorf("store: token: %w", err)
	}
	return nil
}

// Session is a signed-in driver's browser session: the SHA-256 hash of
// its cookie secret (never the secret), the API key and vehicle it acts
// for, its CSRF token and when it expires (Unix seconds).
type Session struct {
	Hash  []byte
	KeyID string
	// Scope is the key's scope (read from the key, not stored).
	Scope   string
	Vehicle string
	CSRF    string
	Created int64
	Expires int64
}

// InsertSession stores a new session.
func (tx *Tx) InsertSession(s Session) error {
	_, err := tx.q().ExecContext(tx.ctx, `INSERT INTO sessions (hash, key_id, vehicle, csrf, created, expires) VALUES ($1, $2, $3, $4, $5, $6)`,
		s.Hash, s.KeyID, s.Vehicle, s.CSRF, s.Created, s.Expires)
	if err != nil {
		return fmt.Errorf("store: insert session: %w", err)
	}
	return nil
}

// DeleteSession removes a session (sign-out), and every expired one.
func (tx *Tx) DeleteSession(hash []byte, now int64) error {
	if _, err := tx.q().ExecContext(tx.ctx, `DELETE FROM sessions WHERE hash = $1 OR expires < $2`, hash, now); err != nil {
		return fmt.Errorf("store: delete session: %w", err)
	}
	return nil
}

// SessionByHash returns the unexpired session with that hash whose API
// key is not revoked at now; ErrNotFound otherwise. Scope is "" when the
// key is not a stored one (the environment's admin key: the caller
// checks it).
func (s *Store) SessionByHash(ctx context.Context, hash []byte, now int64) (Session, error) {
	ss := Session{Hash: hash}
	err := s.r().QueryRowContext(ctx, `SELECT s.key_id, COALESCE(k.scope, ''), s.vehicle, s.csrf, s.created, s.expires FROM sessions s
		LEFT JOIN keys k ON k.id = s.key_id WHERE s.hash = $1 AND s.expires > $2 AND k.revoked IS NULL`, hash, now).
		Scan(&ss.KeyID, &ss.Scope, &ss.Vehicle, &ss.CSRF, &ss.Created, &ss.Expires)
	if errors.Is(err, sql.ErrNoRows) {
		return Session{}, ErrNotFound
	}
	if err != nil {
		return Session{}, fmt.Errorf("store: session: %w", err)
	}
	return ss, nil
}
