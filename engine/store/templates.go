package store

import (
	"context"
	"fmt"
)

// StoredTemplate is a message template set through the API: its relative
// name ("pt/delivered.sms.tmpl"), text and when it was set (Unix s).
type StoredTemplate struct {
	Name    string
	Body    string
	Updated int64
}

// PutTemplate stores a template (replacing one of the same name) and
// bumps the templates' version.
func (s *Store) PutTemplate(ctx context.Context, name, body string, t int64) error {
	_, err := s.Tx(ctx, func(tx *Tx) error {
		if _, err := tx.q().ExecContext(tx.ctx, `INSERT INTO templates (name, body, updated) VALUES ($1, $2, $3)
			ON CONFLICT (name) DO UPDATE SET body = excluded.body, updated = excluded.updated`, name, body, t); err != nil {
			return err
		}
		_, err := tx.q().ExecContext(tx.ctx, `UPDATE counters SET value = value + 1 WHERE name = 'templates'`)
		return err
	})
	if err != nil {
		return fmt.Errorf("store: put template %s: %w", name, err)
	}
	return nil
}

// DeleteTemplate removes a stored template; ErrNotFound when there is
// none of that name.
func (s *Store) DeleteTemplate(ctx context.Context, name string) error {
	_, err := s.Tx(ctx, func(tx *Tx) error {
		res, err := tx.q().ExecContext(tx.ctx, `DELETE FROM templates WHERE name = $1`, name)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrNotFound
		}
		_, err = tx.q().ExecContext(tx.ctx, `UPDATE counters SET value = value + 1 WHERE name = 'templates'`)
		return err
	})
	if err != nil && err != ErrNotFound {
		return fmt.Errorf("store: delete template %s: %w", name, err)
	}
	return err
}

// Templates returns the stored templates by name and their version.
func (s *Store) Templates(ctx context.Context) ([]StoredTemplate, int64, error) {
	version, err := s.TemplatesVersion(ctx)
	if err != nil {
		return nil, 0, err
	}
	rows, err := s.r().QueryContext(ctx, `SELECT name, body, updated FROM templates ORDER BY name`)
	if err != nil {
		return nil, 0, fmt.Errorf("store: templates: %w", err)
	}
	defer rows.Close()
	var out []StoredTemplate
	for rows.Next() {
		var t StoredTemplate
		if err := rows.Scan(&t.Name, &t.Body, &t.Updated); err != nil {
			return nil, 0, fmt.Errorf("store: templates: %w", err)
		}
		out = append(out, t)
	}
	return out, version, rows.Err()
}

// TemplatesVersion is bumped by every change to the stored templates.
func (s *Store) TemplatesVersion(ctx context.Context) (int64, error) {
	var v int64
	if err := s.r().QueryRowContext(ctx, `SELECT value FROM counters WHERE name = 'templates'`).Scan(&v); err != nil {
		return 0, fmt.Errorf("store: templates version: %w", err)
	}
	return v, nil
}
