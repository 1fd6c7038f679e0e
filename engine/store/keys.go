package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// Key is an API key as stored: its public id, the SHA-256 hash of the
// secret (never the secret), its scope and, for a driver key, the one
// vehicle it may act for. Revoked is 0 while the key is valid.
type Key struct {
	ID      string
	Hash    []byte
	Scope   string
	Vehicle string
	Name    string
	Created int64
	Revoked int64
}

// InsertKey stores a new key; ErrExists when its id or hash is taken.
func (tx *Tx) InsertKey(k Key) error {
	_, err := tx.q().ExecContext(tx.ctx, `INSERT INTO keys (id, hash, scope, vehicle, name, created) VALUES ($1, $2, $3, $4, $5, $6)`,
		k.ID, k.Hash, k.Scope, nullString(k.Vehicle), k.Name, k.Created)
	if uniqueViolation(err) {
		return ErrExists
	}
	if err != nil {
		return fmt.Errorf("store: insert key: %w", err)
	}
	return nil
}

// RevokeKey marks key id revoked at t; ErrNotFound when no valid key has
// that id.
func (tx *Tx) RevokeKey(id string, t int64) error {
	res, err := tx.q().ExecContext(tx.ctx, `UPDATE keys SET revoked = $1 WHERE id = $2 AND revoked IS NULL`, t, id)
	if err != nil {
		return fmt.Errorf("store: revoke key: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}

const keyColumns = `id, hash, scope, vehicle, name, created, revoked`

func scanKey(row interface{ Scan(...any) error }) (Key, error) {
	var k Key
	var vehicle sql.NullString
	var revoked sql.NullInt64
	err := row.Scan(&k.ID, &k.Hash, &k.Scope, &vehicle, &k.Name, &k.Created, &revoked)
	k.Vehicle, k.Revoked = vehicle.String, revoked.Int64
	return k, err
}

// KeyByHash returns the key whose secret hashes to hash, revoked or not;
// ErrNotFound when there is none.
func (s *Store) KeyByHash(ctx context.Context, hash []byte) (Key, error) {
	k, err := scanKey(s.r().QueryRowContext(ctx, `SELECT `+keyColumns+` FROM keys WHERE hash = $1`, hash))
	if errors.Is(err, sql.ErrNoRows) {
		return Key{}, ErrNotFound
	}
	if err != nil {
		return Key{}, fmt.Errorf("store: key: %w", err)
	}
	return k, nil
}

// Keys lists every key, oldest first.
func (s *Store) Keys(ctx context.Context) ([]Key, error) {
	rows, err := s.r().QueryContext(ctx, `SELECT `+keyColumns+` FROM keys ORDER BY created, id`)
	if err != nil {
		return nil, fmt.Errorf("store: keys: %w", err)
	}
	defer rows.Close()
	var out []Key
	for rows.Next() {
		k, err := scanKey(rows)
		if err != nil {
			return nil, fmt.Errorf("store: keys: %w", err)
		}
		out = append(out, k)
	}
	return out, rows.Err()
}
