package analytics

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/lastmile/lastmile/engine/store"
	"github.com/uber/h3-go/v4"
)

// FactRes is the H3 resolution of store.Fact.Cell (about 0.1 km² per
// cell) and RollupRes that of the cells rollups are kept by (about
// 0.7 km²): figures group or filter by cells of resolution MinRes to
// RollupRes (see https://h3geo.org/docs/core-library/restable).
const (
	FactRes   = 8
	RollupRes = 8
	MinRes    = 4
)

// Rollup levels: which key fields of store.Rollup a level keeps. Level
// day keeps the day, plan, vehicle, driver and class (a few rows per van
// and day); level cell adds the hour and the RollupRes cell (a few rows
// per van and hour); levels hour and area keep the day, the class and
// the hour or the cell only (for the whole fleet: a dozen and about a
// hundred rows a day). A query reads the smallest level that has its
// groups and filters (Query.level).
const (
	levelDay  = 1
	levelCell = 2
	levelHour = 3
	levelArea = 4
)

// levels are every level, in the order Rollups builds them.
var levels = []int64{levelDay, levelCell, levelHour, levelArea}

// FailReasons are the reasons of a failed delivery, in the order the
// failures figure lists them (dispatch.FailReasons).
var FailReasons = []string{"not_home", "refused", "address_not_found", "access", "damaged", "other"}

// Counters of an aggregate, in encoding order. Sums are seconds or
// metres; the *N counters count the stops a sum covers.
const (
	cStops = iota
	cWindowed
	cOnTime
	cEarly
	cLate
	cLateSum
	cLateMax
	cFirst
	cFirstDelivered
	cDelivered
	cFailed
	cDrivePlannedSum
	cDrivePlannedN
	cDriveSum
	cDriveN
	cServicePlannedSum
	cServiceSum
	cWaitSum
	cDistSum
	cWorkedSum
	cWorkedN
	cErr60N
	cErr60Sum
	cErr30N
	cErr30Sum
	cErr10N
	cErr10Sum
	cWinN
	cWinIn
	cSoonN
	cSoonSum
	// cFail0 counts failures with reason FailReasons[0], … and
	// cFail0+len(FailReasons) those with another reason.
	cFail0
	nCounters = cFail0 + 7
)

// Distributions an aggregate keeps as histograms of whole minutes
// (ceil(seconds/60), values of HistMinutes minutes and more share the
// last bucket), from which percentiles are read.
const (
	hLate = iota
	hErr60
	hErr30
	hErr10
	hSoon
	nHists
)

// HistMinutes is the largest minute a histogram tells apart: percentiles
// beyond 10 hours read as 10 hours.
const HistMinutes = 600

// agg is the aggregate of a set of facts: counters and minute histograms.
// The histograms are allocated on first use.
type agg struct {
	c [nCounters]int64
	h *[nHists][HistMinutes + 1]int64
	// dist is the planned distance in metres by vehicle class (at query
	// time, for the emissions).
	dist map[string]int64
}

func minutes(s int64) int {
	if s <= 0 {
		return 0
	}
	return int(min((s+59)/60, HistMinutes))
}

func (a *agg) hist(k int, seconds int64) {
	if a.h == nil {
		a.h = new([nHists][HistMinutes + 1]int64)
	}
	a.h[k][minutes(seconds)]++
}

func abs(v int64) int64 {
	if v < 0 {
		return -v
	}
	return v
}

// add counts one fact.
func (a *agg) add(f *store.Fact) {
	c := &a.c
	c[cStops]++
	if f.Window[1] > 0 && f.Arrival > 0 {
		c[cWindowed]++
		switch {
		case f.Arrival < f.Window[0]:
			c[cEarly]++
		case f.Arrival > f.Window[1]:
			late := f.Arrival - f.Window[1]
			c[cLate]++
			c[cLateSum] += late
			c[cLateMax] = max(c[cLateMax], late)
			a.hist(hLate, late)
		default:
			c[cOnTime]++
		}
	}
	if f.Attempt == 1 {
		c[cFirst]++
		if f.Status == "delivered" {
			c[cFirstDelivered]++
		}
	}
	if f.Status == "delivered" {
		c[cDelivered]++
	} else {
		c[cFailed]++
		r := len(FailReasons)
		for i, x := range FailReasons {
			if x == f.Reason {
				r = i
			}
		}
		c[cFail0+r]++
	}
	if f.PlannedDrive > 0 {
		c[cDrivePlannedSum] += f.PlannedDrive
		c[cDrivePlannedN]++
	}
	if f.Drive >= 0 {
		c[cDriveSum] += f.Drive
		c[cDriveN]++
		c[cWorkedSum] += f.Drive + f.Wait + f.Service
		c[cWorkedN]++
	}
	c[cServicePlannedSum] += f.PlannedService
	c[cServiceSum] += f.Service
	c[cWaitSum] += f.Wait
	c[cDistSum] += f.PlannedDist
	if f.Arrival > 0 {
		for k, e := range [3]int64{f.ETA60, f.ETA30, f.ETA10} {
			if e > 0 {
				err := abs(f.Arrival - e)
				c[cErr60N+2*k]++
				c[cErr60Sum+2*k] += err
				a.hist(hErr60+k, err)
			}
		}
		if f.SoonAt > 0 {
			c[cSoonN]++
			lead := max(f.Arrival-f.SoonAt, 0)
			c[cSoonSum] += lead
			a.hist(hSoon, lead)
			if f.SoonP90 > 0 {
				c[cWinN]++
				if f.Arrival >= f.SoonP10 && f.Arrival <= f.SoonP90 {
					c[cWinIn]++
				}
			}
		}
	}
}

// encode appends the aggregate (without CO2, which depends on the key's
// class) to b: the counters as varints, then per histogram the number of
// non-zero buckets and (bucket gap, count) pairs.
func (a *agg) encode(b []byte) []byte {
	b = binary.AppendUvarint(b, nCounters)
	for _, v := range a.c {
		b = binary.AppendUvarint(b, uint64(max(v, 0)))
	}
	for k := range nHists {
		if a.h == nil {
			b = append(b, 0)
			continue
		}
		n := 0
		for _, v := range a.h[k] {
			if v != 0 {
				n++
			}
		}
		b = binary.AppendUvarint(b, uint64(n))
		last := 0
		for m, v := range a.h[k] {
			if v != 0 {
				b = binary.AppendUvarint(b, uint64(m-last))
				b = binary.AppendUvarint(b, uint64(v))
				last = m
			}
		}
	}
	return b
}

var errCorrupt = errors.New("analytics: corrupt rollup")

// merge adds an encoded aggregate.
func (a *agg) merge(b []byte) error {
	n, k := binary.Uvarint(b)
	if k <= 0 || n != nCounters {
		return fmt.Errorf("%w: %d counters, want %d", errCorrupt, n, nCounters)
	}
	b = b[k:]
	for i := range nCounters {
		v, k := binary.Uvarint(b)
		if k <= 0 {
			return errCorrupt
		}
		b = b[k:]
		if i == cLateMax {
			a.c[i] = max(a.c[i], int64(v))
		} else {
			a.c[i] += int64(v)
		}
	}
	for h := range nHists {
		n, k := binary.Uvarint(b)
		if k <= 0 {
			return errCorrupt
		}
		b = b[k:]
		if n > 0 && a.h == nil {
			a.h = new([nHists][HistMinutes + 1]int64)
		}
		m := 0
		for range n {
			gap, k1 := binary.Uvarint(b)
			if k1 <= 0 {
				return errCorrupt
			}
			v, k2 := binary.Uvarint(b[k1:])
			if k2 <= 0 || m+int(gap) > HistMinutes {
				return errCorrupt
			}
			b = b[k1+k2:]
			m += int(gap)
			a.h[h][m] += int64(v)
		}
	}
	return nil
}

// quantile returns the nearest-rank q-quantile of histogram k in seconds
// (a whole number of minutes), and false when it is empty.
func (a *agg) quantile(k int, q float64) (int64, bool) {
	if a.h == nil {
		return 0, false
	}
	var n int64
	for _, v := range a.h[k] {
		n += v
	}
	if n == 0 {
		return 0, false
	}
	rank := rankOf(q, n)
	var cum int64
	for m, v := range a.h[k] {
		cum += v
		if cum >= rank {
			return int64(m) * 60, true
		}
	}
	return HistMinutes * 60, true
}

// rankOf is the 1-based nearest rank of quantile q among n values:
// ceil(q·n), at least 1.
func rankOf(q float64, n int64) int64 {
	r := int64(q*float64(n) + 0.999999999)
	return min(max(r, 1), n)
}

// Place returns where a fact belongs: the local day (yyyymmdd) and hour
// of t in loc, and the FactRes H3 cell of (lat, lon).
func Place(lat, lon float64, t int64, loc *time.Location) (day, hour, cell int64) {
	lt := time.Unix(t, 0).In(loc)
	day = int64(lt.Year()*10000 + int(lt.Month())*100 + lt.Day())
	return day, int64(lt.Hour()), int64(h3.LatLngToCell(h3.NewLatLng(lat, lon), FactRes))
}

// rollupKey is the key of a fact at a level.
func rollupKey(level int64, f *store.Fact) store.Rollup {
	r := store.Rollup{Level: level, Day: f.Day, Class: f.Class}
	if level == levelDay || level == levelCell {
		r.Plan, r.Vehicle, r.Driver = f.Plan, f.Vehicle, f.Driver
	}
	if level == levelCell || level == levelHour {
		r.Hour = f.Hour
	}
	if level == levelCell || level == levelArea {
		r.Cell = int64(h3.Cell(f.Cell).Parent(RollupRes))
	}
	return r
}

// Rollups aggregates the facts of one day into its rollup rows, at every
// level.
func Rollups(facts []store.Fact) []store.Rollup {
	type key struct {
		level, hour, plan, cell int64
		vehicle, driver, class  string
	}
	aggs := map[key]*agg{}
	var keys []store.Rollup
	for i := range facts {
		f := &facts[i]
		for _, level := range levels {
			r := rollupKey(level, f)
			k := key{r.Level, r.Hour, r.Plan, r.Cell, r.Vehicle, r.Driver, r.Class}
			a := aggs[k]
			if a == nil {
				a = &agg{}
				aggs[k] = a
				keys = append(keys, r)
			}
			a.add(f)
		}
	}
	for i := range keys {
		r := &keys[i]
		r.Data = aggs[key{r.Level, r.Hour, r.Plan, r.Cell, r.Vehicle, r.Driver, r.Class}].encode(nil)
	}
	return keys
}
