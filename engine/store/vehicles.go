package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// ActiveVehicles returns the vehicles whose current route is out for
// delivery.
func (s *Store) ActiveVehicles(ctx context.Context) ([]Vehicle, error) {
	rows, err := s.r().QueryContext(ctx, `SELECT v.id, v.route, v.last_ms, v.lon, v.lat, v.state, v.updated, v.version
		FROM vehicles v JOIN routes r ON r.id = v.route WHERE r.status = $1 ORDER BY v.id`, RouteActive)
	if err != nil {
		return nil, fmt.Errorf("store: active vehicles: %w", err)
	}
	defer rows.Close()
	var out []Vehicle
	for rows.Next() {
		v, err := scanVehicle(rows)
		if err != nil {
			return nil, fmt.Errorf("store: active vehicles: %w", err)
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// Vehicle is the dispatch state of one vehicle: its current route (0:
// none), its latest processed ping (time and position) and the dispatch
// package's tracking state (State, opaque JSON: dwell detection and the
// like), so that any replica can continue where another stopped.
type Vehicle struct {
	ID      string
	Route   int64
	LastMS  int64
	Lon     float64
	Lat     float64
	State   string
	Updated int64
	// Version counts the writes of the row (PutVehicle adds one): equal
	// versions mean the same route, stops and tracking state.
	Version int64
}

const vehicleColumns = `id, route, last_ms, lon, lat, state, updated, version`

// scanVehicle scans vehicleColumns, then into extra the columns selected
// after them.
func scanVehicle(row interface{ Scan(...any) error }, extra ...any) (Vehicle, error) {
	var v Vehicle
	var route sql.NullInt64
	err := row.Scan(append([]any{&v.ID, &route, &v.LastMS, &v.Lon, &v.Lat, &v.State, &v.Updated, &v.Version}, extra...)...)
	v.Route = route.Int64
	return v, err
}

// LockVehicle reads the vehicle's state, creating an empty one the first
// time, and on PostgreSQL locks it until the transaction ends: every
// change of a vehicle's route or tracking state takes this lock first. The
// row is read first and inserted only when missing (an insert that
// conflicts costs a statement per vehicle of every ping request); the
// head of its ping chain is kept for InsertPings in this transaction.
func (tx *Tx) LockVehicle(id string) (Vehicle, error) {
	lock := `SELECT ` + vehicleColumns + `, ping_head, ping_reach FROM vehicles WHERE id = $1` + tx.forUpdate()
	var h pingHead
	scan := func() (Vehicle, error) {
		return scanVehicle(tx.q().QueryRowContext(tx.ctx, lock, id), &h.head, &h.reach)
	}
	v, err := scan()
	if errors.Is(err, sql.ErrNoRows) {
		if _, err = tx.q().ExecContext(tx.ctx, `INSERT INTO vehicles (id) VALUES ($1) ON CONFLICT (id) DO NOTHING`, id); err == nil {
			v, err = scan()
		}
	}
	if err != nil {
		return Vehicle{}, fmt.Errorf("store: vehicle %q: %w", id, err)
	}
	if tx.heads == nil {
		tx.heads = map[string]pingHead{}
	}
	if _, ok := tx.heads[id]; !ok { // else InsertPings moved it since
		tx.heads[id] = h
	}
	return v, nil
}

// PutVehicle writes a vehicle's state (locked by LockVehicle) and bumps
// its version, with the head of its ping chain when InsertPings moved it
// in this transaction (one statement instead of two).
func (tx *Tx) PutVehicle(v Vehicle) error {
	q := `UPDATE vehicles SET route = $1, last_ms = $2, lon = $3, lat = $4, state = $5, updated = $6, version = version + 1`
	args := []any{nullInt(v.Route), v.LastMS, v.Lon, v.Lat, v.State, v.Updated, v.ID}
	h, ok := tx.heads[v.ID]
	moved := ok && h.dirty
	if moved {
		q += `, ping_head = $8, ping_reach = $9`
		args = append(args, h.head, h.reach)
	}
	if _, err := tx.q().ExecContext(tx.ctx, q+` WHERE id = $7`, args...); err != nil {
		return fmt.Errorf("store: put vehicle %q: %w", v.ID, err)
	}
	if moved {
		h.dirty = false
		tx.heads[v.ID] = h
	}
	return nil
}

// Vehicle reads a vehicle's state; ErrNotFound when it never had one.
func (s *Store) Vehicle(ctx context.Context, id string) (Vehicle, error) {
	v, err := scanVehicle(s.r().QueryRowContext(ctx, `SELECT `+vehicleColumns+` FROM vehicles WHERE id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Vehicle{}, ErrNotFound
	}
	if err != nil {
		return Vehicle{}, fmt.Errorf("store: vehicle %q: %w", id, err)
	}
	return v, nil
}

// LiveRoute is a vehicle with its current route (planned or out for
// delivery) and the route's stops in order.
type LiveRoute struct {
	Vehicle Vehicle
	Route   Route
	Stops   []Stop
}

// LiveRoutes returns every vehicle whose current route is planned or out
// for delivery, by vehicle id, with its stops: three queries whatever the
// number of vans.
func (s *Store) LiveRoutes(ctx context.Context) ([]LiveRoute, error) {
	const current = `SELECT v.route FROM vehicles v JOIN routes r ON r.id = v.route WHERE r.status IN ('planned', 'active')`
	rows, err := s.r().QueryContext(ctx, `SELECT v.id, v.route, v.last_ms, v.lon, v.lat, v.state, v.updated, v.version
		FROM vehicles v JOIN routes r ON r.id = v.route WHERE r.status IN ('planned', 'active') ORDER BY v.id`)
	if err != nil {
		return nil, fmt.Errorf("store: live routes: %w", err)
	}
	var out []LiveRoute
	byRoute := map[int64]int{}
	for rows.Next() {
		v, err := scanVehicle(rows)
		if err != nil {
			rows.Close()
			return nil, fmt.Errorf("store: live routes: %w", err)
		}
		byRoute[v.Route] = len(out)
		out = append(out, LiveRoute{Vehicle: v})
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: live routes: %w", err)
	}
	rrows, err := s.r().QueryContext(ctx, `SELECT `+routeColumns+` FROM routes WHERE id IN (`+current+`)`)
	if err != nil {
		return nil, fmt.Errorf("store: live routes: %w", err)
	}
	for rrows.Next() {
		r, err := scanRoute(rrows)
		if err != nil {
			rrows.Close()
			return nil, fmt.Errorf("store: live routes: %w", err)
		}
		if i, ok := byRoute[r.ID]; ok {
			out[i].Route = r
		}
	}
	rrows.Close()
	stops, err := queryStops(ctx, s.r(), `st.route IN (`+current+`) ORDER BY st.route, st.position, st.id`)
	if err != nil {
		return nil, err
	}
	for _, st := range stops {
		if i, ok := byRoute[st.Route]; ok {
			out[i].Stops = append(out[i].Stops, st)
		}
	}
	return out, nil
}
