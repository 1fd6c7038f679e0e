package store

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
)

// Ping is one stored GPS fix of a vehicle. TimeMS is Unix milliseconds;
// Speed (m/s) and Heading (degrees) are NaN when the device gave none.
type Ping struct {
	Vehicle  string
	TimeMS   int64
	Lon, Lat float64
	Speed    float64
	Heading  float64
}

func nullFloat(v float64) any {
	if math.IsNaN(v) {
		return nil
	}
	return v
}

// Pings are stored packed: one row of ping_batches per vehicle and
// transaction (at most batchPings pings), its pings encoded in data
// (encodePings), first_ms and last_ms their first and last times. A row
// per ping, keyed by vehicle and time, put ten rows of each vehicle into
// the middle of one B-tree in every ingest transaction, and SQLite kept
// rebalancing its nearly full pages: 24 of the 65 pages a transaction
// wrote. A batch row is appended at the end of the table.
//
// A vehicle's batches form a chain, newest written first: the vehicle's
// row holds the newest one's id (ping_head) and each batch the id of the
// one written before it (prev, 0 for none). Each batch also holds reach,
// the latest ping time in it and in every batch before it, so a walk for
// the pings from some time on stops at the first batch whose reach is
// earlier: for recent pings it reads a few rows. (An index by vehicle and
// time took an entry into the middle of its B-tree per vehicle and
// transaction: 14 of the 62 pages an ingest commit wrote.)
//
// Invariants: a vehicle's stored pings have distinct times (InsertPings
// drops a ping whose time is stored already; the vehicle's row lock,
// taken before, orders two writers of one vehicle); the vehicle's row
// holds its head batch's id and reach (ping_reach, 0 without batches).

// batchPings is the most pings one ping_batches row holds.
const batchPings = 256

// pingFormat is the first byte of the data column: the encoding's
// version.
const pingFormat = 1

// Flags of an encoded ping.
const (
	pingSpeed   = 1 << 0
	pingHeading = 1 << 1
)

// encodePings encodes pings (time order, distinct times, the first at
// first) as: the format byte, then per ping its time after the previous
// one's (the first: after first) as a uvarint, a flags byte, longitude
// and latitude, and speed and heading when flagged, as little-endian
// IEEE 754 doubles.
func encodePings(ps []Ping) []byte {
	b := make([]byte, 0, 1+len(ps)*19)
	b = append(b, pingFormat)
	prev := ps[0].TimeMS
	for _, p := range ps {
		b = binary.AppendUvarint(b, uint64(p.TimeMS-prev))
		prev = p.TimeMS
		var flags byte
		if !math.IsNaN(p.Speed) {
			flags |= pingSpeed
		}
		if !math.IsNaN(p.Heading) {
			flags |= pingHeading
		}
		b = append(b, flags)
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(p.Lon))
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(p.Lat))
		if flags&pingSpeed != 0 {
			b = binary.LittleEndian.AppendUint64(b, math.Float64bits(p.Speed))
		}
		if flags&pingHeading != 0 {
			b = binary.LittleEndian.AppendUint64(b, math.Float64bits(p.Heading))
		}
	}
	return b
}

// errPingData reports a data column encodePings did not write.
var errPingData = errors.New("store: malformed ping data")

// decodePings appends the pings of data (encodePings) of a vehicle
// whose first ping is at first.
func decodePings(out []Ping, vehicle string, first int64, data []byte) ([]Ping, error) {
	if len(data) == 0 || data[0] != pingFormat {
		return out, errPingData
	}
	b := data[1:]
	t := first
	f64 := func() (float64, bool) {
		if len(b) < 8 {
			return 0, false
		}
		v := math.Float64frombits(binary.LittleEndian.Uint64(b))
		b = b[8:]
		return v, true
	}
	for len(b) > 0 {
		d, n := binary.Uvarint(b)
		if n <= 0 || d > math.MaxInt64/2 || len(b) < n+1 {
			return out, errPingData
		}
		t += int64(d)
		flags := b[n]
		b = b[n+1:]
		if flags&^(pingSpeed|pingHeading) != 0 {
			return out, errPingData
		}
		p := Ping{Vehicle: vehicle, TimeMS: t, Speed: math.NaN(), Heading: math.NaN()}
		var ok1, ok2 bool
		p.Lon, ok1 = f64()
		p.Lat, ok2 = f64()
		if !ok1 || !ok2 {
			return out, errPingData
		}
		if flags&pingSpeed != 0 {
			if p.Speed, ok1 = f64(); !ok1 {
				return out, errPingData
			}
		}
		if flags&pingHeading != 0 {
			if p.Heading, ok1 = f64(); !ok1 {
				return out, errPingData
			}
		}
		out = append(out, p)
	}
	return out, nil
}

// InsertPings stores pings, skipping any whose (vehicle, time) is stored
// already or comes twice (a client resending a batch), and returns how
// many were new. The caller holds the row locks of the pings' vehicles
// (Tx.LockVehicle).
func (tx *Tx) InsertPings(pings []Ping) (int64, error) {
	if len(pings) == 0 {
		return 0, nil
	}
	ps := slices.Clone(pings)
	slices.SortStableFunc(ps, func(a, b Ping) int {
		return cmp.Or(strings.Compare(a.Vehicle, b.Vehicle), cmp.Compare(a.TimeMS, b.TimeMS))
	})
	ps = slices.CompactFunc(ps, func(a, b Ping) bool { return a.Vehicle == b.Vehicle && a.TimeMS == b.TimeMS })
	var total int64
	for len(ps) > 0 {
		n := 1
		for n < len(ps) && ps[n].Vehicle == ps[0].Vehicle {
			n++
		}
		k, err := tx.insertVehiclePings(ps[:n])
		total += k
		if err != nil {
			return total, err
		}
		ps = ps[n:]
	}
	return total, nil
}

// insertVehiclePings stores the new ones of one vehicle's pings (time
// order, distinct times) at the head of its chain.
func (tx *Tx) insertVehiclePings(ps []Ping) (int64, error) {
	vehicle := ps[0].Vehicle
	// The row lock (the caller's already, on PostgreSQL) keeps two
	// writers from chaining batches to the same head.
	// A vehicle this transaction locked has its head at hand; else it is
	// locked here (made on its first pings).
	if _, ok := tx.heads[vehicle]; !ok {
		if _, err := tx.LockVehicle(vehicle); err != nil {
			return 0, fmt.Errorf("store: insert pings: %w", err)
		}
	}
	head, reach := tx.heads[vehicle].head, tx.heads[vehicle].reach
	fresh := ps
	if ps[0].TimeMS <= reach && head != 0 {
		// A backlog or a resent batch: drop the times stored already.
		stored, err := walkPings(tx.ctx, tx.q(), head, vehicle, ps[0].TimeMS, ps[len(ps)-1].TimeMS)
		if err != nil {
			return 0, err
		}
		fresh = ps[:0:0]
		for _, p := range ps {
			if _, found := slices.BinarySearchFunc(stored, p.TimeMS, func(s Ping, t int64) int { return cmp.Compare(s.TimeMS, t) }); !found {
				fresh = append(fresh, p)
			}
		}
		if len(fresh) == 0 {
			return 0, nil
		}
	}
	for start := 0; start < len(fresh); start += batchPings {
		part := fresh[start:min(start+batchPings, len(fresh))]
		reach = max(reach, part[len(part)-1].TimeMS)
		err := tx.q().QueryRowContext(tx.ctx, `INSERT INTO ping_batches (vehicle, first_ms, last_ms, n, data, prev, reach)
			VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id`,
			vehicle, part[0].TimeMS, part[len(part)-1].TimeMS, len(part), encodePings(part), head, reach).Scan(&head)
		if err != nil {
			return int64(start), fmt.Errorf("store: insert pings: %w", err)
		}
	}
	// The vehicle's row takes the new head with PutVehicle, or at the
	// end of the transaction (flushHeads).
	if tx.heads == nil {
		tx.heads = map[string]pingHead{}
	}
	tx.heads[vehicle] = pingHead{head: head, reach: reach, dirty: true}
	return int64(len(fresh)), nil
}

// pingHead is a vehicle's newest ping batch and the latest time stored
// (vehicles.ping_head, ping_reach); dirty when its row does not hold them
// yet.
type pingHead struct {
	head, reach int64
	dirty       bool
}

// flushHeads writes the chain heads InsertPings moved and no PutVehicle
// wrote, in vehicle order.
func (tx *Tx) flushHeads() error {
	var ids []string
	for id, h := range tx.heads {
		if h.dirty {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	for _, id := range ids {
		h := tx.heads[id]
		if _, err := tx.q().ExecContext(tx.ctx, `UPDATE vehicles SET ping_head = $1, ping_reach = $2 WHERE id = $3`, h.head, h.reach, id); err != nil {
			return fmt.Errorf("store: insert pings: %w", err)
		}
		h.dirty = false
		tx.heads[id] = h
	}
	return nil
}

// movePingBatch stores pings (one vehicle's, time order, at most
// batchPings) as one ping_batches row of migration 13, before the rows
// were chained (migration 15 chains them).
func movePingBatch(ctx context.Context, q querier, ps []Ping) error {
	_, err := q.ExecContext(ctx, `INSERT INTO ping_batches (vehicle, first_ms, last_ms, n, data) VALUES ($1, $2, $3, $4, $5)`,
		ps[0].Vehicle, ps[0].TimeMS, ps[len(ps)-1].TimeMS, len(ps), encodePings(ps))
	if err != nil {
		return fmt.Errorf("store: insert pings: %w", err)
	}
	return nil
}

// PingsBetween returns the vehicle's pings with fromMS <= time <= toMS, in
// time order.
func (s *Store) PingsBetween(ctx context.Context, vehicle string, fromMS, toMS int64) ([]Ping, error) {
	return pingsBetween(ctx, s.r(), vehicle, fromMS, toMS)
}

func pingsBetween(ctx context.Context, q querier, vehicle string, fromMS, toMS int64) ([]Ping, error) {
	var head int64
	err := q.QueryRowContext(ctx, `SELECT ping_head FROM vehicles WHERE id = $1`, vehicle).Scan(&head)
	if errors.Is(err, sql.ErrNoRows) || err == nil && head == 0 {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("store: pings: %w", err)
	}
	return walkPings(ctx, q, head, vehicle, fromMS, toMS)
}

// walkPings returns the pings with fromMS <= time <= toMS of the chain of
// batches from head (vehicle's), in time order. It follows prev while the
// batches' reach is not before fromMS.
func walkPings(ctx context.Context, q querier, head int64, vehicle string, fromMS, toMS int64) ([]Ping, error) {
	rows, err := q.QueryContext(ctx, `WITH RECURSIVE chain (id, prev) AS (
			SELECT id, prev FROM ping_batches WHERE id = $1 AND reach >= $2
			UNION ALL
			SELECT b.id, b.prev FROM ping_batches b JOIN chain c ON b.id = c.prev WHERE b.reach >= $2)
		SELECT b.first_ms, b.data FROM chain c JOIN ping_batches b ON b.id = c.id WHERE b.last_ms >= $2 AND b.first_ms <= $3`,
		head, fromMS, toMS)
	if err != nil {
		return nil, fmt.Errorf("store: pings: %w", err)
	}
	defer rows.Close()
	var all []Ping
	for rows.Next() {
		var first int64
		var data []byte
		if err := rows.Scan(&first, &data); err != nil {
			return nil, fmt.Errorf("store: pings: %w", err)
		}
		if all, err = decodePings(all, vehicle, first, data); err != nil {
			return nil, fmt.Errorf("%w (vehicle %q)", err, vehicle)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: pings: %w", err)
	}
	out := all[:0]
	for _, p := range all {
		if p.TimeMS >= fromMS && p.TimeMS <= toMS {
			out = append(out, p)
		}
	}
	slices.SortFunc(out, func(a, b Ping) int { return cmp.Compare(a.TimeMS, b.TimeMS) })
	return out, nil
}

// CountPings returns the number of stored pings.
func (s *Store) CountPings(ctx context.Context) (int64, error) {
	var n sql.NullInt64
	err := s.r().QueryRowContext(ctx, `SELECT SUM(n) FROM ping_batches`).Scan(&n)
	return n.Int64, err
}
