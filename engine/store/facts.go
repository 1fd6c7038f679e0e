package store

import (
	"context"
	"fmt"
)

// Fact is what happened at one ended stop attempt (delivered or failed),
// the input of every analytics figure. Key identifies it: "s" and the
// stop id for an attempt of this engine, "i:" and the caller's id for an
// imported one; Seq numbers facts in commit order (from the 'facts'
// counter). Day (yyyymmdd) and Hour are the local date and hour of the
// arrival in the shipment's time zone. Times are Unix seconds and
// durations seconds; Drive is -1 when the leg's start is unknown, the
// ETA and soon fields 0 when no prediction reached that point. Window is
// [0, 0] for a shipment without a promised window; Cell an H3 cell of the
// stop (resolution analytics.FactRes).
type Fact struct {
	Key            string
	Seq            int64
	Day, Hour      int64
	Plan           int64
	Vehicle        string
	Driver         string
	Class          string
	Tracking       string
	Cell           int64
	Status         string
	Reason         string
	Attempt        int64
	Window         [2]int64
	Planned        int64
	Arrival        int64
	Done           int64
	PlannedDrive   int64
	Drive          int64
	PlannedService int64
	Service        int64
	Wait           int64
	PlannedDist    int64
	ETA60          int64
	ETA30          int64
	ETA10          int64
	SoonAt         int64
	SoonP10        int64
	SoonP90        int64
}

const factColumns = `key, seq, day, hour, plan, vehicle, driver, class, tracking, cell, status, reason, attempt,
	tw_start, tw_end, planned, arrival, done, planned_drive, drive, planned_service, service, wait, planned_dist,
	eta60, eta30, eta10, soon_at, soon_p10, soon_p90`

// factColumnCount is the number of columns in factColumns.
const factColumnCount = 30

func (f *Fact) args() []any {
	return []any{f.Key, f.Seq, f.Day, f.Hour, f.Plan, f.Vehicle, f.Driver, f.Class, f.Tracking, f.Cell, f.Status, f.Reason,
		f.Attempt, f.Window[0], f.Window[1], f.Planned, f.Arrival, f.Done, f.PlannedDrive, f.Drive, f.PlannedService,
		f.Service, f.Wait, f.PlannedDist, f.ETA60, f.ETA30, f.ETA10, f.SoonAt, f.SoonP10, f.SoonP90}
}

func (f *Fact) dest() []any {
	return []any{&f.Key, &f.Seq, &f.Day, &f.Hour, &f.Plan, &f.Vehicle, &f.Driver, &f.Class, &f.Tracking, &f.Cell,
		&f.Status, &f.Reason, &f.Attempt, &f.Window[0], &f.Window[1], &f.Planned, &f.Arrival, &f.Done, &f.PlannedDrive,
		&f.Drive, &f.PlannedService, &f.Service, &f.Wait, &f.PlannedDist, &f.ETA60, &f.ETA30, &f.ETA10, &f.SoonAt,
		&f.SoonP10, &f.SoonP90}
}

// batchRows is the number of rows of cols parameters per multi-row
// INSERT: SQLite's driver finds each parameter by name in a list (time
// quadratic in the parameters of a statement: 20,000 facts took 28 s in
// rows of 500, 0.8 s in rows of 4), so its statements stay near 120
// parameters; PostgreSQL's under 30,000 (of 65,535).
func (tx *Tx) batchRows(cols int) int {
	if tx.s.dialect == Postgres {
		return 30000 / cols
	}
	return max(120/cols, 1)
}

// InsertFacts stores facts, numbering them from the 'facts' counter
// (which stays locked until commit, so numbers follow commit order). A
// fact whose key is stored already is skipped (an import sent again);
// it returns how many were new.
func (tx *Tx) InsertFacts(fs []Fact) (int, error) {
	if len(fs) == 0 {
		return 0, nil
	}
	var top int64
	err := tx.q().QueryRowContext(tx.ctx, `UPDATE counters SET value = value + $1 WHERE name = 'facts' RETURNING value`, len(fs)).Scan(&top)
	if err != nil {
		return 0, fmt.Errorf("store: fact sequence: %w", err)
	}
	first := top - int64(len(fs)) + 1
	n := 0
	batch := tx.batchRows(factColumnCount)
	for start := 0; start < len(fs); start += batch {
		part := fs[start:min(start+batch, len(fs))]
		q, args := tx.s.values(`INSERT INTO stop_facts (`+factColumns+`) VALUES `, len(part), factColumnCount, ` ON CONFLICT (key) DO NOTHING`,
			func(i int, args []any) []any {
				f := &part[i]
				f.Seq = first + int64(start+i)
				return append(args, f.args()...)
			})
		res, err := tx.q().ExecContext(tx.ctx, q, args...)
		if err != nil {
			return n, fmt.Errorf("store: insert facts: %w", err)
		}
		k, _ := res.RowsAffected()
		n += int(k)
	}
	return n, nil
}

// DayFacts returns the facts of one local day (yyyymmdd) in sequence
// order.
func (tx *Tx) DayFacts(day int64) ([]Fact, error) {
	rows, err := tx.q().QueryContext(tx.ctx, `SELECT `+factColumns+` FROM stop_facts WHERE day = $1 ORDER BY seq`, day)
	if err != nil {
		return nil, fmt.Errorf("store: facts of %d: %w", day, err)
	}
	defer rows.Close()
	var out []Fact
	for rows.Next() {
		var f Fact
		if err := rows.Scan(f.dest()...); err != nil {
			return nil, fmt.Errorf("store: facts of %d: %w", day, err)
		}
		out = append(out, f)
	}
	return out, rows.Err()
}

// Facts calls fn with every fact of the days from..to (yyyymmdd,
// inclusive) in sequence order.
func (s *Store) Facts(ctx context.Context, from, to int64, fn func(*Fact) error) error {
	rows, err := s.r().QueryContext(ctx, `SELECT `+factColumns+` FROM stop_facts WHERE day >= $1 AND day <= $2 ORDER BY seq`, from, to)
	if err != nil {
		return fmt.Errorf("store: facts: %w", err)
	}
	defer rows.Close()
	var f Fact
	for rows.Next() {
		if err := rows.Scan(f.dest()...); err != nil {
			return fmt.Errorf("store: facts: %w", err)
		}
		if err := fn(&f); err != nil {
			return err
		}
	}
	return rows.Err()
}

// Rollup is one row of the analytics rollups: the aggregate (Data,
// encoded by package analytics) of the facts of one Day that share the
// key; Level says which key fields are kept (the others are zero).
type Rollup struct {
	Level   int64
	Day     int64
	Hour    int64
	Plan    int64
	Vehicle string
	Driver  string
	Class   string
	Cell    int64
	Data    []byte
}

// RollupState reads the 'rollups' counter (facts with a greater Seq are
// not in the rollups yet) and the greatest fact Seq.
func (s *Store) RollupState(ctx context.Context) (built, top int64, err error) {
	err = s.r().QueryRowContext(ctx, `SELECT (SELECT value FROM counters WHERE name = 'rollups'),
		(SELECT value FROM counters WHERE name = 'facts')`).Scan(&built, &top)
	if err != nil {
		return 0, 0, fmt.Errorf("store: rollup state: %w", err)
	}
	return built, top, nil
}

// StaleDays returns the days that have facts numbered after seq, and the
// greatest number seen.
func (s *Store) StaleDays(ctx context.Context, seq int64) (days []int64, top int64, err error) {
	rows, err := s.r().QueryContext(ctx, `SELECT day, MAX(seq) FROM stop_facts WHERE seq > $1 GROUP BY day ORDER BY day`, seq)
	if err != nil {
		return nil, 0, fmt.Errorf("store: stale days: %w", err)
	}
	defer rows.Close()
	top = seq
	for rows.Next() {
		var d, m int64
		if err := rows.Scan(&d, &m); err != nil {
			return nil, 0, fmt.Errorf("store: stale days: %w", err)
		}
		days = append(days, d)
		top = max(top, m)
	}
	return days, top, rows.Err()
}

// LockRollups locks the 'rollups' counter until the transaction ends, so
// that replicas rebuild one at a time, and returns it.
func (tx *Tx) LockRollups() (int64, error) {
	var v int64
	err := tx.q().QueryRowContext(tx.ctx, `SELECT value FROM counters WHERE name = 'rollups'`+tx.forUpdate()).Scan(&v)
	if err != nil {
		return 0, fmt.Errorf("store: lock rollups: %w", err)
	}
	return v, nil
}

// SetRollups advances the 'rollups' counter to seq (never back).
func (tx *Tx) SetRollups(seq int64) error {
	_, err := tx.q().ExecContext(tx.ctx, `UPDATE counters SET value = $1 WHERE name = 'rollups' AND value < $1`, seq)
	if err != nil {
		return fmt.Errorf("store: set rollups: %w", err)
	}
	return nil
}

// ReplaceRollups replaces every rollup row of a day by rows.
func (tx *Tx) ReplaceRollups(day int64, rows []Rollup) error {
	if _, err := tx.q().ExecContext(tx.ctx, `DELETE FROM rollups WHERE day = $1`, day); err != nil {
		return fmt.Errorf("store: rollups of %d: %w", day, err)
	}
	const cols = 9
	batch := tx.batchRows(cols)
	for start := 0; start < len(rows); start += batch {
		part := rows[start:min(start+batch, len(rows))]
		q, args := tx.s.values(`INSERT INTO rollups (level, day, hour, plan, vehicle, driver, class, cell, data) VALUES `, len(part), cols, "",
			func(i int, args []any) []any {
				r := &part[i]
				return append(args, r.Level, day, r.Hour, r.Plan, r.Vehicle, r.Driver, r.Class, r.Cell, r.Data)
			})
		if _, err := tx.q().ExecContext(tx.ctx, q, args...); err != nil {
			return fmt.Errorf("store: rollups of %d: %w", day, err)
		}
	}
	return nil
}

// RollupFilter selects rollup rows: one level, days from..to (yyyymmdd,
// inclusive) and, where set, one plan, vehicle or driver.
type RollupFilter struct {
	Level    int64
	From, To int64
	Plan     int64
	Vehicle  string
	Driver   string
}

// Rollups calls fn with every rollup row the filter selects. The Rollup
// passed is reused between calls (Data too): copy what is kept.
func (s *Store) Rollups(ctx context.Context, f RollupFilter, fn func(*Rollup) error) error {
	q := `SELECT hour, plan, vehicle, driver, class, cell, day, data FROM rollups WHERE level = $1 AND day >= $2 AND day <= $3`
	args := []any{f.Level, f.From, f.To}
	if f.Plan != 0 {
		args = append(args, f.Plan)
		q += fmt.Sprintf(" AND plan = $%d", len(args))
	}
	if f.Vehicle != "" {
		args = append(args, f.Vehicle)
		q += fmt.Sprintf(" AND vehicle = $%d", len(args))
	}
	if f.Driver != "" {
		args = append(args, f.Driver)
		q += fmt.Sprintf(" AND driver = $%d", len(args))
	}
	rows, err := s.r().QueryContext(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("store: rollups: %w", err)
	}
	defer rows.Close()
	r := Rollup{Level: f.Level}
	for rows.Next() {
		if err := rows.Scan(&r.Hour, &r.Plan, &r.Vehicle, &r.Driver, &r.Class, &r.Cell, &r.Day, &r.Data); err != nil {
			return fmt.Errorf("store: rollups: %w", err)
		}
		if err := fn(&r); err != nil {
			return err
		}
	}
	return rows.Err()
}

// DeliveryCount is the number of outbox deliveries of one channel, state
// and UTC day (Unix days) queued, with their retries (attempts beyond
// the first).
type DeliveryCount struct {
	Channel string
	State   string
	Day     int64
	Count   int64
	Retries int64
}

// DeliveryCounts counts the deliveries queued in [fromMS, toMS).
func (s *Store) DeliveryCounts(ctx context.Context, fromMS, toMS int64) ([]DeliveryCount, error) {
	rows, err := s.r().QueryContext(ctx, `SELECT channel, state, created / 86400000, COUNT(*),
		SUM(CASE WHEN attempts > 1 THEN attempts - 1 ELSE 0 END) FROM deliveries
		WHERE created >= $1 AND created < $2 GROUP BY channel, state, created / 86400000`, fromMS, toMS)
	if err != nil {
		return nil, fmt.Errorf("store: delivery counts: %w", err)
	}
	defer rows.Close()
	var out []DeliveryCount
	for rows.Next() {
		var c DeliveryCount
		if err := rows.Scan(&c.Channel, &c.State, &c.Day, &c.Count, &c.Retries); err != nil {
			return nil, fmt.Errorf("store: delivery counts: %w", err)
		}
		out = append(out, c)
	}
	return out, rows.Err()
}
