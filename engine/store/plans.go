package store

import (
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
)

// Route statuses.
const (
	// RoutePlanned: stored, the van has not left.
	RoutePlanned = "planned"
	// RouteActive: the van is out for delivery.
	RouteActive = "active"
	// RouteDone: every stop ended, or the route was replaced by a newer plan.
	RouteDone = "done"
)

// Route is one van's sequence of stops in a plan. Spec is the VROOM
// vehicle object it was planned with (JSON; its shift, breaks, capacity,
// start and end). Version counts its re-routings from 1.
type Route struct {
	ID      int64
	Plan    int64
	Vehicle string
	Spec    string
	Status  string
	Version int64
	Started int64
	Created int64
	// Driver names who drives it and Class the vehicle's class (for
	// emission factors); both as the plan gave them, "" when not.
	Driver string
	Class  string
}

// Stop is one delivery attempt of a shipment on a route. Position orders
// the route's stops (re-routing renumbers them); Attempt counts the
// shipment's attempts from 1. Planned is the arrival the plan expected;
// ETA, P10 and P90 the latest prediction (0: none yet). AwayFired,
// SoonFired, Delayed and ETASent are the state of the event rules: the
// least stops_away count fired (0: none), whether arriving_soon fired,
// whether the stop is flagged delayed, and the arrival last published.
type Stop struct {
	ID        int64
	Route     int64
	Shipment  int64
	Tracking  string
	Position  int64
	Attempt   int64
	Status    string
	Reason    string
	Planned   int64
	ETA       int64
	P10       int64
	P90       int64
	ArrivedAt int64
	DoneAt    int64
	AwayFired int64
	SoonFired int64
	Delayed   int64
	ETASent   int64
	// PlannedDrive and PlannedDist are the plan's drive time (s) and
	// distance (m) of the leg to the stop (0: unknown).
	PlannedDrive int64
	PlannedDist  int64
	// ETA60, ETA30 and ETA10 are the predicted arrival at the first
	// update that came within 60, 30 and 10 minutes of it (0: none);
	// SoonAt is when arriving_soon fired and SoonP10, SoonP90 the window
	// it showed.
	ETA60, ETA30, ETA10      int64
	SoonAt, SoonP10, SoonP90 int64
	// Read from the shipment (not written by UpdateStop): its location
	// [lon, lat], promised window and service seconds.
	Location [2]float64
	Window   [2]int64
	Service  int64
	TZ       string
}

// InsertPlan stores a plan's request (JSON) and returns its id.
func (tx *Tx) InsertPlan(request string, created int64) (int64, error) {
	var id int64
	err := tx.q().QueryRowContext(tx.ctx, `INSERT INTO plans (created, request) VALUES ($1, $2) RETURNING id`, created, request).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("store: insert plan: %w", err)
	}
	return id, nil
}

// InsertRoute stores a route and sets r.ID.
func (tx *Tx) InsertRoute(r *Route) error {
	err := tx.q().QueryRowContext(tx.ctx, `INSERT INTO routes (plan, vehicle, spec, status, version, created, driver, class)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id`, r.Plan, r.Vehicle, r.Spec, r.Status, max(r.Version, 1), r.Created, r.Driver, r.Class).Scan(&r.ID)
	if err != nil {
		return fmt.Errorf("store: insert route: %w", err)
	}
	return nil
}

// UpdateRoute writes a route's status, version and start.
func (tx *Tx) UpdateRoute(r Route) error {
	_, err := tx.q().ExecContext(tx.ctx, `UPDATE routes SET status = $1, version = $2, started = $3 WHERE id = $4`,
		r.Status, r.Version, nullInt(r.Started), r.ID)
	if err != nil {
		return fmt.Errorf("store: update route: %w", err)
	}
	return nil
}

const routeColumns = `id, plan, vehicle, spec, status, version, started, created, driver, class`

func scanRoute(row interface{ Scan(...any) error }) (Route, error) {
	var r Route
	var started sql.NullInt64
	err := row.Scan(&r.ID, &r.Plan, &r.Vehicle, &r.Spec, &r.Status, &r.Version, &started, &r.Created, &r.Driver, &r.Class)
	r.Started = started.Int64
	return r, err
}

func routeByID(ctx context.Context, q querier, id int64, lock string) (Route, error) {
	r, err := scanRoute(q.QueryRowContext(ctx, `SELECT `+routeColumns+` FROM routes WHERE id = $1`+lock, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Route{}, ErrNotFound
	}
	if err != nil {
		return Route{}, fmt.Errorf("store: route: %w", err)
	}
	return r, nil
}

// Route reads a route in the transaction.
func (tx *Tx) Route(id int64) (Route, error) { return routeByID(tx.ctx, tx.q(), id, "") }

// Route reads a route.
func (s *Store) Route(ctx context.Context, id int64) (Route, error) {
	return routeByID(ctx, s.r(), id, "")
}

// PlanRoutes returns the routes of a plan in id order.
func (s *Store) PlanRoutes(ctx context.Context, plan int64) ([]Route, error) {
	rows, err := s.r().QueryContext(ctx, `SELECT `+routeColumns+` FROM routes WHERE plan = $1 ORDER BY id`, plan)
	if err != nil {
		return nil, fmt.Errorf("store: plan routes: %w", err)
	}
	defer rows.Close()
	var out []Route
	for rows.Next() {
		r, err := scanRoute(rows)
		if err != nil {
			return nil, fmt.Errorf("store: plan routes: %w", err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// InsertStop stores a stop and sets st.ID.
func (tx *Tx) InsertStop(st *Stop) error {
	err := tx.q().QueryRowContext(tx.ctx, `INSERT INTO stops (route, shipment, position, attempt, status, planned, planned_drive, planned_dist)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id`, st.Route, st.Shipment, st.Position, st.Attempt, st.Status, st.Planned,
		st.PlannedDrive, st.PlannedDist).Scan(&st.ID)
	if err != nil {
		return fmt.Errorf("store: insert stop: %w", err)
	}
	return nil
}

// UpdateStop writes a stop's status, times and rule state; MoveStop its
// position. (Writing the position, even unchanged, rewrites the stop's
// entry in the route's index: on SQLite 3.7 of the 82 pages an ingest
// transaction wrote, where stops rarely move.)
func (tx *Tx) UpdateStop(st Stop) error {
	_, err := tx.q().ExecContext(tx.ctx, `UPDATE stops SET status = $1, reason = $2, eta = $3, p10 = $4, p90 = $5,
		arrived_at = $6, done_at = $7, away_fired = $8, soon_fired = $9, delayed = $10, eta_sent = $11,
		eta60 = $12, eta30 = $13, eta10 = $14, soon_at = $15, soon_p10 = $16, soon_p90 = $17 WHERE id = $18`,
		st.Status, st.Reason, st.ETA, st.P10, st.P90, nullInt(st.ArrivedAt), nullInt(st.DoneAt),
		st.AwayFired, st.SoonFired, st.Delayed, st.ETASent, st.ETA60, st.ETA30, st.ETA10, st.SoonAt, st.SoonP10, st.SoonP90, st.ID)
	if err != nil {
		return fmt.Errorf("store: update stop: %w", err)
	}
	return nil
}

// MoveStop sets a stop's position in its route.
func (tx *Tx) MoveStop(id, position int64) error {
	if _, err := tx.q().ExecContext(tx.ctx, `UPDATE stops SET position = $1 WHERE id = $2`, position, id); err != nil {
		return fmt.Errorf("store: move stop: %w", err)
	}
	return nil
}

// SetRouteETAs stores the ETAs (eta, p10, p90) of a route's stops in one
// row of route_etas: every stop of stops whose ETA is not 0 (stops holds
// all of the route's that have one). Readers take a stop's ETA from there
// when the route's row lists it, else from the stop's own columns
// (queryStops), so every write of a route's stops that changes an ETA
// writes this row as well. One packed row per route instead of three
// columns of every open stop: an ETA update rewrote the row of each of
// them.
func (tx *Tx) SetRouteETAs(route int64, stops []Stop) error {
	b := make([]byte, 0, 16*len(stops))
	for i := range stops {
		if stops[i].ETA != 0 {
			b = appendETA(b, &stops[i])
		}
	}
	if _, err := tx.q().ExecContext(tx.ctx, `INSERT INTO route_etas (route, etas) VALUES ($1, $2)
		ON CONFLICT (route) DO UPDATE SET etas = excluded.etas`, route, b); err != nil {
		return fmt.Errorf("store: set ETAs of route %d: %w", route, err)
	}
	return nil
}

// appendETA appends a stop's id and ETAs to a route_etas row: the id and
// ETA, then P10 and P90 less the ETA, as signed varints.
func appendETA(b []byte, st *Stop) []byte {
	b = binary.AppendVarint(b, st.ID)
	b = binary.AppendVarint(b, st.ETA)
	b = binary.AppendVarint(b, st.P10-st.ETA)
	return binary.AppendVarint(b, st.P90-st.ETA)
}

// routeETA finds stop id in a route_etas row; ok is false when the row
// does not list it (or is malformed, then the stop's columns stand).
func routeETA(b []byte, id int64) (eta, p10, p90 int64, ok bool) {
	for len(b) > 0 {
		var v [4]int64
		for k := range v {
			x, n := binary.Varint(b)
			if n <= 0 {
				return 0, 0, 0, false
			}
			v[k], b = x, b[n:]
		}
		if v[0] == id {
			return v[1], v[1] + v[2], v[1] + v[3], true
		}
	}
	return 0, 0, 0, false
}

const stopColumns = `st.id, st.route, st.shipment, sh.tracking, st.position, st.attempt, st.status, st.reason, st.planned,
	st.eta, st.p10, st.p90, st.arrived_at, st.done_at, st.away_fired, st.soon_fired, st.delayed, st.eta_sent,
	st.planned_drive, st.planned_dist, st.eta60, st.eta30, st.eta10, st.soon_at, st.soon_p10, st.soon_p90,
	sh.lon, sh.lat, sh.tw_start, sh.tw_end, sh.service, sh.tz`

// scanStop scans a row of stopColumns and then the route's route_etas row
// into etas (nil without one).
func scanStop(row interface{ Scan(...any) error }, etas *[]byte) (Stop, error) {
	var st Stop
	var arrived, done sql.NullInt64
	err := row.Scan(&st.ID, &st.Route, &st.Shipment, &st.Tracking, &st.Position, &st.Attempt, &st.Status, &st.Reason,
		&st.Planned, &st.ETA, &st.P10, &st.P90, &arrived, &done, &st.AwayFired, &st.SoonFired, &st.Delayed, &st.ETASent,
		&st.PlannedDrive, &st.PlannedDist, &st.ETA60, &st.ETA30, &st.ETA10, &st.SoonAt, &st.SoonP10, &st.SoonP90,
		&st.Location[0], &st.Location[1], &st.Window[0], &st.Window[1], &st.Service, &st.TZ, etas)
	st.ArrivedAt, st.DoneAt = arrived.Int64, done.Int64
	return st, err
}

func queryStops(ctx context.Context, q querier, where string, args ...any) ([]Stop, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+stopColumns+`, re.etas FROM stops st JOIN shipments sh ON sh.id = st.shipment
		LEFT JOIN route_etas re ON re.route = st.route WHERE `+where, args...)
	if err != nil {
		return nil, fmt.Errorf("store: stops: %w", err)
	}
	defer rows.Close()
	var out []Stop
	var etas []byte
	for rows.Next() {
		st, err := scanStop(rows, &etas)
		if err != nil {
			return nil, fmt.Errorf("store: stops: %w", err)
		}
		if eta, p10, p90, ok := routeETA(etas, st.ID); ok {
			st.ETA, st.P10, st.P90 = eta, p10, p90
		}
		out = append(out, st)
	}
	return out, rows.Err()
}

// RouteStops returns a route's stops in position order.
func (tx *Tx) RouteStops(route int64) ([]Stop, error) {
	return queryStops(tx.ctx, tx.q(), `st.route = $1 ORDER BY st.position, st.id`, route)
}

// StopsBefore counts the stops of st's route ordered before it (by
// position, then id) whose status is one of statuses.
func (s *Store) StopsBefore(ctx context.Context, st Stop, statuses ...string) (int, error) {
	q := `SELECT COUNT(*) FROM stops WHERE route = $1 AND (position < $2 OR (position = $2 AND id < $3)) AND status IN (`
	args := []any{st.Route, st.Position, st.ID}
	for i, v := range statuses {
		if i > 0 {
			q += ", "
		}
		q += fmt.Sprintf("$%d", i+4)
		args = append(args, v)
	}
	var n int
	if err := s.r().QueryRowContext(ctx, q+")", args...).Scan(&n); err != nil {
		return 0, fmt.Errorf("store: stops before: %w", err)
	}
	return n, nil
}

// RouteStops returns a route's stops in position order.
func (s *Store) RouteStops(ctx context.Context, route int64) ([]Stop, error) {
	return queryStops(ctx, s.r(), `st.route = $1 ORDER BY st.position, st.id`, route)
}

// Stop reads one stop in the transaction.
func (tx *Tx) Stop(id int64) (Stop, error) {
	out, err := queryStops(tx.ctx, tx.q(), `st.id = $1`, id)
	if err != nil {
		return Stop{}, err
	}
	if len(out) == 0 {
		return Stop{}, ErrNotFound
	}
	return out[0], nil
}

// StopRoute returns the route id of a stop; ErrNotFound when there is no
// such stop.
func (s *Store) StopRoute(ctx context.Context, id int64) (int64, string, error) {
	var route int64
	var vehicle string
	err := s.r().QueryRowContext(ctx, `SELECT st.route, r.vehicle FROM stops st JOIN routes r ON r.id = st.route WHERE st.id = $1`, id).Scan(&route, &vehicle)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, "", ErrNotFound
	}
	if err != nil {
		return 0, "", fmt.Errorf("store: stop: %w", err)
	}
	return route, vehicle, nil
}

// LatestStop returns the shipment's most recent stop (its current
// attempt); ErrNotFound when it was never planned.
func (s *Store) LatestStop(ctx context.Context, shipment int64) (Stop, error) {
	out, err := queryStops(ctx, s.r(), `st.shipment = $1 ORDER BY st.attempt DESC, st.id DESC LIMIT 1`, shipment)
	if err != nil {
		return Stop{}, err
	}
	if len(out) == 0 {
		return Stop{}, ErrNotFound
	}
	return out[0], nil
}

// LatestStop returns the shipment's most recent stop in the transaction.
func (tx *Tx) LatestStop(shipment int64) (Stop, error) {
	out, err := queryStops(tx.ctx, tx.q(), `st.shipment = $1 ORDER BY st.attempt DESC, st.id DESC LIMIT 1`, shipment)
	if err != nil {
		return Stop{}, err
	}
	if len(out) == 0 {
		return Stop{}, ErrNotFound
	}
	return out[0], nil
}
