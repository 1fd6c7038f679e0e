package store

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

// migrations is the schema history, oldest first: migration i brings the
// schema from version i to i+1. Never edit an entry that has shipped; add
// one. The SQL is shared by both dialects with these placeholders:
// {id} an auto-numbered primary key, {blob} binary data, {real} a double.
// Times are Unix seconds (pings: milliseconds); booleans are 0/1 integers.
var migrations = []string{
	// 1: keys, shipments, the event log, plans, routes, stops, pings,
	// vehicles.
	`CREATE TABLE keys (
		id TEXT PRIMARY KEY,
		hash {blob} NOT NULL UNIQUE,
		scope TEXT NOT NULL,
		vehicle TEXT,
		name TEXT NOT NULL DEFAULT '',
		created BIGINT NOT NULL,
		revoked BIGINT
	);
	CREATE TABLE shipments (
		id {id},
		tracking TEXT NOT NULL UNIQUE,
		token_hash {blob} NOT NULL UNIQUE,
		token {blob} NOT NULL,
		status TEXT NOT NULL,
		recipient {blob},
		language TEXT NOT NULL DEFAULT '',
		address {blob},
		instructions {blob},
		lon {real} NOT NULL,
		lat {real} NOT NULL,
		tw_start BIGINT NOT NULL DEFAULT 0,
		tw_end BIGINT NOT NULL DEFAULT 0,
		service BIGINT NOT NULL DEFAULT 0,
		parcels TEXT NOT NULL DEFAULT '',
		tz TEXT NOT NULL DEFAULT '',
		seq BIGINT NOT NULL DEFAULT 0,
		created BIGINT NOT NULL,
		updated BIGINT NOT NULL,
		done_at BIGINT,
		erased BIGINT
	);
	CREATE INDEX shipments_done ON shipments (done_at) WHERE erased IS NULL;
	CREATE TABLE counters (
		name TEXT PRIMARY KEY,
		value BIGINT NOT NULL
	);
	INSERT INTO counters (name, value) VALUES ('event_cursor', 0);
	CREATE TABLE events (
		cursor BIGINT PRIMARY KEY,
		id TEXT NOT NULL UNIQUE,
		shipment BIGINT NOT NULL REFERENCES shipments (id),
		seq BIGINT NOT NULL,
		type TEXT NOT NULL,
		time BIGINT NOT NULL,
		data TEXT NOT NULL DEFAULT '',
		caller_id TEXT,
		created BIGINT NOT NULL,
		UNIQUE (shipment, seq),
		UNIQUE (shipment, caller_id)
	);
	CREATE TABLE plans (
		id {id},
		created BIGINT NOT NULL,
		request TEXT NOT NULL DEFAULT ''
	);
	CREATE TABLE routes (
		id {id},
		plan BIGINT NOT NULL REFERENCES plans (id),
		vehicle TEXT NOT NULL,
		spec TEXT NOT NULL DEFAULT '',
		status TEXT NOT NULL,
		version BIGINT NOT NULL DEFAULT 1,
		started BIGINT,
		eta_time BIGINT NOT NULL DEFAULT 0,
		created BIGINT NOT NULL
	);
	CREATE INDEX routes_vehicle ON routes (vehicle, status);
	CREATE TABLE stops (
		id {id},
		route BIGINT NOT NULL REFERENCES routes (id),
		shipment BIGINT NOT NULL REFERENCES shipments (id),
		position BIGINT NOT NULL,
		attempt BIGINT NOT NULL DEFAULT 1,
		status TEXT NOT NULL,
		reason TEXT NOT NULL DEFAULT '',
		planned BIGINT NOT NULL DEFAULT 0,
		eta BIGINT NOT NULL DEFAULT 0,
		p10 BIGINT NOT NULL DEFAULT 0,
		p90 BIGINT NOT NULL DEFAULT 0,
		arrived_at BIGINT,
		done_at BIGINT,
		away_fired BIGINT NOT NULL DEFAULT 0,
		soon_fired BIGINT NOT NULL DEFAULT 0,
		delayed BIGINT NOT NULL DEFAULT 0,
		eta_sent BIGINT NOT NULL DEFAULT 0
	);
	CREATE INDEX stops_route ON stops (route, position);
	CREATE INDEX stops_shipment ON stops (shipment);
	CREATE TABLE pings (
		vehicle TEXT NOT NULL,
		time_ms BIGINT NOT NULL,
		lon {real} NOT NULL,
		lat {real} NOT NULL,
		speed {real},
		heading {real},
		PRIMARY KEY (vehicle, time_ms)
	);
	CREATE TABLE vehicles (
		id TEXT PRIMARY KEY,
		route BIGINT,
		last_ms BIGINT NOT NULL DEFAULT 0,
		lon {real} NOT NULL DEFAULT 0,
		lat {real} NOT NULL DEFAULT 0,
		state TEXT NOT NULL DEFAULT '',
		updated BIGINT NOT NULL DEFAULT 0
	);`,
	// 2: a version per vehicle row, bumped by every write, so that work
	// computed outside a transaction can check it still applies.
	`ALTER TABLE vehicles ADD COLUMN version BIGINT NOT NULL DEFAULT 0;`,
	// 3: notifications: webhook subscriptions, the outbox of deliveries
	// (one row per event and target, written in the event's transaction),
	// recipients' preferences and opt-outs. Delivery times are
	// milliseconds.
	`CREATE TABLE webhooks (
		id TEXT PRIMARY KEY,
		url TEXT NOT NULL,
		events TEXT NOT NULL,
		tracking TEXT,
		secret {blob} NOT NULL,
		description TEXT NOT NULL DEFAULT '',
		enabled BIGINT NOT NULL DEFAULT 1,
		disabled_reason TEXT NOT NULL DEFAULT '',
		failures BIGINT NOT NULL DEFAULT 0,
		failing_since BIGINT,
		blocked_until BIGINT NOT NULL DEFAULT 0,
		created BIGINT NOT NULL,
		updated BIGINT NOT NULL
	);
	CREATE TABLE deliveries (
		id {id},
		event BIGINT NOT NULL,
		shipment BIGINT NOT NULL,
		channel TEXT NOT NULL,
		target TEXT NOT NULL,
		dedupe TEXT NOT NULL,
		state TEXT NOT NULL,
		attempts BIGINT NOT NULL DEFAULT 0,
		next_at BIGINT NOT NULL,
		lease_until BIGINT NOT NULL DEFAULT 0,
		status_code BIGINT NOT NULL DEFAULT 0,
		last_error TEXT NOT NULL DEFAULT '',
		created BIGINT NOT NULL,
		done_at BIGINT,
		UNIQUE (channel, target, dedupe)
	);
	CREATE INDEX deliveries_pending ON deliveries (channel, target, event) WHERE state = 'pending';
	CREATE INDEX deliveries_order ON deliveries (channel, target, shipment, event) WHERE state = 'pending';
	CREATE INDEX deliveries_dead ON deliveries (target, event) WHERE state = 'dead';
	ALTER TABLE shipments ADD COLUMN notify TEXT NOT NULL DEFAULT '';
	CREATE TABLE optouts (
		channel TEXT NOT NULL,
		address {blob} NOT NULL,
		created BIGINT NOT NULL,
		PRIMARY KEY (channel, address)
	);`,
	// 4: message templates overriding the built-in ones, set through the
	// API, with a version replicas reload on.
	`CREATE TABLE templates (
		name TEXT PRIMARY KEY,
		body TEXT NOT NULL,
		updated BIGINT NOT NULL
	);
	INSERT INTO counters (name, value) VALUES ('templates', 0);`,
	// 5: the recipient's page and the driver's app: messages between
	// them, proofs of delivery, ratings, requests for another window,
	// driver sessions. Text and positions of people are sealed.
	`CREATE TABLE messages (
		id {id},
		shipment BIGINT NOT NULL REFERENCES shipments (id),
		sender TEXT NOT NULL,
		body {blob} NOT NULL,
		client_id TEXT NOT NULL,
		created BIGINT NOT NULL,
		UNIQUE (shipment, client_id)
	);
	CREATE TABLE pods (
		id {id},
		stop BIGINT NOT NULL REFERENCES stops (id),
		shipment BIGINT NOT NULL REFERENCES shipments (id),
		photo TEXT NOT NULL DEFAULT '',
		signature TEXT NOT NULL DEFAULT '',
		name {blob},
		geo {blob},
		far BIGINT NOT NULL DEFAULT 0,
		distance {real},
		client_id TEXT NOT NULL,
		time BIGINT NOT NULL,
		created BIGINT NOT NULL,
		UNIQUE (stop, client_id)
	);
	CREATE INDEX pods_shipment ON pods (shipment);
	CREATE TABLE ratings (
		shipment BIGINT PRIMARY KEY REFERENCES shipments (id),
		stars BIGINT NOT NULL,
		comment {blob},
		created BIGINT NOT NULL
	);
	CREATE TABLE window_requests (
		id {id},
		shipment BIGINT NOT NULL REFERENCES shipments (id),
		tw_start BIGINT NOT NULL,
		tw_end BIGINT NOT NULL,
		state TEXT NOT NULL,
		reason TEXT NOT NULL DEFAULT '',
		created BIGINT NOT NULL
	);
	CREATE INDEX window_requests_shipment ON window_requests (shipment, id);
	CREATE TABLE sessions (
		hash {blob} PRIMARY KEY,
		key_id TEXT NOT NULL,
		vehicle TEXT NOT NULL,
		csrf TEXT NOT NULL,
		created BIGINT NOT NULL,
		expires BIGINT NOT NULL
	);`,
	// 6: analytics. What the plan expected of each leg and what the
	// recipient was shown (ETA snapshots); the driver and vehicle class of
	// a route; one fact per ended stop attempt, written with the status
	// that ended it (or imported), numbered by the 'facts' counter in
	// commit order; rollups of the facts per day, rebuilt for the days
	// whose facts are newer than the 'rollups' counter.
	`ALTER TABLE stops ADD COLUMN planned_drive BIGINT NOT NULL DEFAULT 0;
	ALTER TABLE stops ADD COLUMN planned_dist BIGINT NOT NULL DEFAULT 0;
	ALTER TABLE stops ADD COLUMN eta60 BIGINT NOT NULL DEFAULT 0;
	ALTER TABLE stops ADD COLUMN eta30 BIGINT NOT NULL DEFAULT 0;
	ALTER TABLE stops ADD COLUMN eta10 BIGINT NOT NULL DEFAULT 0;
	ALTER TABLE stops ADD COLUMN soon_at BIGINT NOT NULL DEFAULT 0;
	ALTER TABLE stops ADD COLUMN soon_p10 BIGINT NOT NULL DEFAULT 0;
	ALTER TABLE stops ADD COLUMN soon_p90 BIGINT NOT NULL DEFAULT 0;
	ALTER TABLE routes ADD COLUMN driver TEXT NOT NULL DEFAULT '';
	ALTER TABLE routes ADD COLUMN class TEXT NOT NULL DEFAULT '';
	CREATE TABLE stop_facts (
		key TEXT PRIMARY KEY,
		seq BIGINT NOT NULL UNIQUE,
		day BIGINT NOT NULL,
		hour BIGINT NOT NULL,
		plan BIGINT NOT NULL,
		vehicle TEXT NOT NULL,
		driver TEXT NOT NULL,
		class TEXT NOT NULL,
		tracking TEXT NOT NULL,
		cell BIGINT NOT NULL,
		status TEXT NOT NULL,
		reason TEXT NOT NULL,
		attempt BIGINT NOT NULL,
		tw_start BIGINT NOT NULL,
		tw_end BIGINT NOT NULL,
		planned BIGINT NOT NULL,
		arrival BIGINT NOT NULL,
		done BIGINT NOT NULL,
		planned_drive BIGINT NOT NULL,
		drive BIGINT NOT NULL,
		planned_service BIGINT NOT NULL,
		service BIGINT NOT NULL,
		wait BIGINT NOT NULL,
		planned_dist BIGINT NOT NULL,
		eta60 BIGINT NOT NULL,
		eta30 BIGINT NOT NULL,
		eta10 BIGINT NOT NULL,
		soon_at BIGINT NOT NULL,
		soon_p10 BIGINT NOT NULL,
		soon_p90 BIGINT NOT NULL
	);
	CREATE INDEX stop_facts_day ON stop_facts (day);
	CREATE TABLE rollups (
		level BIGINT NOT NULL,
		day BIGINT NOT NULL,
		hour BIGINT NOT NULL,
		plan BIGINT NOT NULL,
		vehicle TEXT NOT NULL,
		driver TEXT NOT NULL,
		class TEXT NOT NULL,
		cell BIGINT NOT NULL,
		data {blob} NOT NULL,
		PRIMARY KEY (level, day, hour, plan, vehicle, driver, class, cell)
	);
	INSERT INTO counters (name, value) VALUES ('facts', 0);
	INSERT INTO counters (name, value) VALUES ('rollups', 0);`,
	// 7: urgent deliveries (Delivery.Urgent), claimed first through an
	// index in that order.
	`ALTER TABLE deliveries ADD COLUMN urgent BIGINT NOT NULL DEFAULT 0;
	CREATE INDEX deliveries_claim ON deliveries (channel, target, urgent DESC, event) WHERE state = 'pending';`,
	// 8: deliveries_claim serves what deliveries_pending did (the same
	// leading columns): one index less to write per delivery.
	`DROP INDEX deliveries_pending;`,
	// 9: fewer index pages per ingest transaction. On SQLite the event
	// log is rebuilt so that cursor is the rowid (a BIGINT primary key
	// is a separate index there); on both, the caller-id uniqueness
	// covers only the caller's milestones instead of indexing a NULL for
	// every engine event (postgresMigrations[8] is PostgreSQL's form).
	`CREATE TABLE events_v9 (
		cursor INTEGER PRIMARY KEY,
		id TEXT NOT NULL UNIQUE,
		shipment BIGINT NOT NULL REFERENCES shipments (id),
		seq BIGINT NOT NULL,
		type TEXT NOT NULL,
		time BIGINT NOT NULL,
		data TEXT NOT NULL DEFAULT '',
		caller_id TEXT,
		created BIGINT NOT NULL,
		UNIQUE (shipment, seq)
	);
	INSERT INTO events_v9 (cursor, id, shipment, seq, type, time, data, caller_id, created)
		SELECT cursor, id, shipment, seq, type, time, data, caller_id, created FROM events ORDER BY cursor;
	DROP TABLE events;
	ALTER TABLE events_v9 RENAME TO events;
	CREATE UNIQUE INDEX events_caller ON events (shipment, caller_id) WHERE caller_id IS NOT NULL;`,
	// 10: webhook deliveries are queued from the event log by the outbox's
	// worker (queue.go): each subscription's cursor, the last event it
	// looked at for urgent ones, and the last event a disabled one takes. The existing ones took every event so far.
	`ALTER TABLE webhooks ADD COLUMN queued_to BIGINT NOT NULL DEFAULT 0;
	ALTER TABLE webhooks ADD COLUMN taken_to BIGINT NOT NULL DEFAULT 0;
	ALTER TABLE webhooks ADD COLUMN urgent_to BIGINT NOT NULL DEFAULT 0;
	UPDATE webhooks SET queued_to = (SELECT value FROM counters WHERE name = 'event_cursor'),
		urgent_to = (SELECT value FROM counters WHERE name = 'event_cursor');`,
	// 11: routes lose eta_time, which nothing read: writing it at every
	// ETA update rewrote a page of the routes table per vehicle in each
	// batch of pings.
	`ALTER TABLE routes DROP COLUMN eta_time;`,
	// 12: each shipment's event sequence moves to a narrow table of its
	// own. Counting it in the shipment's row rewrote a page of wide,
	// sealed rows per event (on SQLite 9 of the 65 pages an ingest
	// transaction wrote); hundreds of counters share a page here. The
	// counter's row stays the lock that orders two replicas' events of
	// one shipment on PostgreSQL.
	`CREATE TABLE event_seqs (
		shipment INTEGER PRIMARY KEY REFERENCES shipments (id),
		seq BIGINT NOT NULL
	);
	INSERT INTO event_seqs (shipment, seq) SELECT id, seq FROM shipments WHERE seq > 0;
	ALTER TABLE shipments DROP COLUMN seq;`,
	// 13: pings packed, a row per vehicle and transaction (pings.go);
	// movePings carries the stored ones over and drops their table.
	`CREATE TABLE ping_batches (
		id {id},
		vehicle TEXT NOT NULL,
		first_ms BIGINT NOT NULL,
		last_ms BIGINT NOT NULL,
		n BIGINT NOT NULL,
		data {blob} NOT NULL
	);
	CREATE INDEX ping_batches_vehicle ON ping_batches (vehicle, last_ms);`,
	// 14: a route's ETAs packed in a row of their own (Tx.SetRouteETAs).
	// Writing the eta, p10 and p90 columns of every open stop at each ETA
	// update was 7 % of the CPU of ping ingest on SQLite, and a fifth of
	// the writer's time (postgresMigrations[13] is PostgreSQL's form).
	`CREATE TABLE route_etas (
		route INTEGER PRIMARY KEY REFERENCES routes (id),
		etas BLOB NOT NULL
	);`,
	// 15: a vehicle's ping batches chained from its row, newest first
	// (pings.go), instead of indexed by (vehicle, last_ms): the index took
	// an entry into the middle of its B-tree per vehicle and transaction,
	// 14 of the 62 pages an ingest commit wrote on SQLite. The existing
	// batches are chained in the order they were written.
	`ALTER TABLE ping_batches ADD COLUMN prev BIGINT NOT NULL DEFAULT 0;
	ALTER TABLE ping_batches ADD COLUMN reach BIGINT NOT NULL DEFAULT 0;
	ALTER TABLE vehicles ADD COLUMN ping_head BIGINT NOT NULL DEFAULT 0;
	ALTER TABLE vehicles ADD COLUMN ping_reach BIGINT NOT NULL DEFAULT 0;
	UPDATE ping_batches SET prev = c.prev, reach = c.reach FROM (
		SELECT id, COALESCE(LAG(id) OVER w, 0) AS prev, MAX(last_ms) OVER w AS reach FROM ping_batches
		WINDOW w AS (PARTITION BY vehicle ORDER BY id)) AS c
		WHERE ping_batches.id = c.id;
	INSERT INTO vehicles (id) SELECT DISTINCT vehicle FROM ping_batches WHERE true ON CONFLICT (id) DO NOTHING;
	UPDATE vehicles SET ping_head = h.head, ping_reach = h.reach FROM (
		SELECT vehicle, MAX(id) AS head, MAX(last_ms) AS reach FROM ping_batches GROUP BY vehicle) AS h
		WHERE vehicles.id = h.vehicle;
	DROP INDEX ping_batches_vehicle;`,
}

// migrationSteps are the migrations (by index in migrations) that go on
// in Go after their SQL, in the same transaction.
var migrationSteps = map[int]func(s *Store, ctx context.Context, tx *sql.Tx) error{
	12: (*Store).movePings,
}

// movePings moves the rows of the pings table into ping_batches, up to
// batchPings of a vehicle to a row, and drops the table. It reads the
// table in key order a page of s.movePage rows at a time, so that its
// memory does not grow with the table.
func (s *Store) movePings(ctx context.Context, tx *sql.Tx) error {
	var ps []Ping // read, not yet moved: the tail of one vehicle's pings
	after := Ping{Vehicle: "", TimeMS: math.MinInt64}
	for {
		rows, err := tx.QueryContext(ctx, `SELECT vehicle, time_ms, lon, lat, speed, heading FROM pings
			WHERE vehicle > $1 OR (vehicle = $1 AND time_ms > $2) ORDER BY vehicle, time_ms LIMIT `+strconv.Itoa(s.movePage),
			after.Vehicle, after.TimeMS)
		if err != nil {
			return err
		}
		n := 0
		for rows.Next() {
			var p Ping
			var speed, heading sql.NullFloat64
			if err := rows.Scan(&p.Vehicle, &p.TimeMS, &p.Lon, &p.Lat, &speed, &heading); err != nil {
				rows.Close()
				return err
			}
			p.Speed, p.Heading = math.NaN(), math.NaN()
			if speed.Valid {
				p.Speed = speed.Float64
			}
			if heading.Valid {
				p.Heading = heading.Float64
			}
			ps = append(ps, p)
			n++
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		last := n < s.movePage
		if n > 0 {
			after = ps[len(ps)-1]
		}
		// Move every full batch, and the rest once no more can follow.
		for len(ps) > 0 {
			k := 1
			for k < len(ps) && k < batchPings && ps[k].Vehicle == ps[0].Vehicle {
				k++
			}
			if k < batchPings && k == len(ps) && !last {
				break // the vehicle's pings may go on in the next page
			}
			if err := movePingBatch(ctx, tx, ps[:k]); err != nil {
				return err
			}
			ps = ps[k:]
		}
		ps = slices.Clip(ps)
		if last {
			break
		}
	}
	_, err := tx.ExecContext(ctx, `DROP TABLE pings`)
	return err
}

// movePage is the rows movePings reads at a time (Options.movePage).
const movePage = 50_000

// postgresMigrations replaces, on PostgreSQL, the migrations (by index in
// migrations) whose SQL differs there.
var postgresMigrations = map[int]string{
	8: `ALTER TABLE events DROP CONSTRAINT events_shipment_caller_id_key;
	CREATE UNIQUE INDEX events_caller ON events (shipment, caller_id) WHERE caller_id IS NOT NULL;`,
	11: `CREATE TABLE event_seqs (
		shipment BIGINT PRIMARY KEY REFERENCES shipments (id),
		seq BIGINT NOT NULL
	);
	INSERT INTO event_seqs (shipment, seq) SELECT id, seq FROM shipments WHERE seq > 0;
	ALTER TABLE shipments DROP COLUMN seq;`,
	13: `CREATE TABLE route_etas (
		route BIGINT PRIMARY KEY REFERENCES routes (id),
		etas BYTEA NOT NULL
	);`,
}

// migrationSQL returns migration v (an index in migrations) written for d.
func migrationSQL(d Dialect, v int) string {
	if m, ok := postgresMigrations[v]; ok && d == Postgres {
		return m
	}
	return schemaSQL(d, migrations[v])
}

// schemaSQL returns migration m written for d.
func schemaSQL(d Dialect, m string) string {
	id, blob, real := "INTEGER PRIMARY KEY", "BLOB", "REAL"
	if d == Postgres {
		id, blob, real = "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY", "BYTEA", "DOUBLE PRECISION"
	}
	return strings.NewReplacer("{id}", id, "{blob}", blob, "{real}", real).Replace(m)
}

// migrationLock is the PostgreSQL advisory lock key held while migrating,
// so that replicas starting together apply each migration once.
const migrationLock = 0x6c6d_6d69 // "lmmi"

// migrate applies the migrations the database lacks (up to version upto
// when it is positive), each in its own transaction with its version
// number.
func (s *Store) migrate(ctx context.Context, upto int) error {
	if upto <= 0 || upto > len(migrations) {
		upto = len(migrations)
	}
	conn, err := s.wdb.Conn(ctx)
	if err != nil {
		return fmt.Errorf("store: migrate: %w", err)
	}
	defer conn.Close()
	if s.dialect == Postgres {
		if _, err := conn.ExecContext(ctx, "SELECT pg_advisory_lock($1)", migrationLock); err != nil {
			return fmt.Errorf("store: migrate: lock: %w", err)
		}
		defer conn.ExecContext(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", migrationLock)
	}
	if _, err := conn.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL)`); err != nil {
		return fmt.Errorf("store: migrate: %w", err)
	}
	var have int
	err = conn.QueryRowContext(ctx, `SELECT version FROM schema_version`).Scan(&have)
	switch {
	case err == sql.ErrNoRows:
		if _, err := conn.ExecContext(ctx, `INSERT INTO schema_version (version) VALUES (0)`); err != nil {
			return fmt.Errorf("store: migrate: %w", err)
		}
	case err != nil:
		return fmt.Errorf("store: migrate: read version: %w", err)
	}
	if have > len(migrations) {
		return fmt.Errorf("store: the database has schema version %d, newer than this binary's %d: upgrade lastmile", have, len(migrations))
	}
	for v := have; v < upto; v++ {
		tx, err := conn.BeginTx(ctx, nil)
		if err != nil {
			return fmt.Errorf("store: migrate to %d: %w", v+1, err)
		}
		if _, err := tx.ExecContext(ctx, migrationSQL(s.dialect, v)); err != nil {
			tx.Rollback()
			return fmt.Errorf("store: migrate to %d: %w", v+1, err)
		}
		if step := migrationSteps[v]; step != nil {
			if err := step(s, ctx, tx); err != nil {
				tx.Rollback()
				return fmt.Errorf("store: migrate to %d: %w", v+1, err)
			}
		}
		if _, err := tx.ExecContext(ctx, `UPDATE schema_version SET version = $1`, v+1); err != nil {
			tx.Rollback()
			return fmt.Errorf("store: migrate to %d: %w", v+1, err)
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("store: migrate to %d: %w", v+1, err)
		}
	}
	return nil
}

// Version returns the schema version of the database.
func (s *Store) Version(ctx context.Context) (int, error) {
	var v int
	err := s.rdb.QueryRowContext(ctx, `SELECT version FROM schema_version`).Scan(&v)
	return v, err
}
