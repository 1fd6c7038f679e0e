package analytics

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/lastmile/lastmile/engine/store"
)

// FactInput is one ended stop attempt as the import (POST
// /v1/analytics/facts, one JSON object per line) and package dispatch
// give it. Times are Unix seconds, durations seconds, distances metres.
type FactInput struct {
	// ID is unique per attempt: the caller's id of an imported one (a
	// line sent again is skipped).
	ID       string `json:"id"`
	Plan     int64  `json:"plan,omitempty"`
	Vehicle  string `json:"vehicle"`
	Driver   string `json:"driver,omitempty"`
	Class    string `json:"class,omitempty"`
	Tracking string `json:"tracking"`
	// Location is the stop [lon, lat]; TimeZone the IANA zone its day
	// and hour are counted in (default: the server's).
	Location [2]float64 `json:"location"`
	TimeZone string     `json:"time_zone,omitempty"`
	// Status is delivered or failed (with Reason, one of FailReasons);
	// Attempt counts the shipment's attempts from 1.
	Status     string    `json:"status"`
	Reason     string    `json:"reason,omitempty"`
	Attempt    int64     `json:"attempt"`
	TimeWindow *[2]int64 `json:"time_window,omitempty"`
	// Planned is the arrival the plan expected, Arrival the actual one,
	// Done when the driver reported the outcome.
	Planned int64 `json:"planned,omitempty"`
	Arrival int64 `json:"arrival"`
	Done    int64 `json:"done"`
	// PlannedDrive and Drive are the planned and actual drive time of the
	// leg to the stop (Drive null: unknown), PlannedService and Service
	// the service times, Wait the time between arrival and the window's
	// start, PlannedDistance the leg's planned length.
	PlannedDrive    int64  `json:"planned_drive,omitempty"`
	Drive           *int64 `json:"drive"`
	PlannedService  int64  `json:"planned_service,omitempty"`
	Service         int64  `json:"service"`
	Wait            int64  `json:"wait,omitempty"`
	PlannedDistance int64  `json:"planned_distance,omitempty"`
	// ETA60, ETA30 and ETA10 are the arrival predicted when it was first
	// predicted within 60, 30 and 10 minutes (0: never).
	ETA60 int64 `json:"eta_60,omitempty"`
	ETA30 int64 `json:"eta_30,omitempty"`
	ETA10 int64 `json:"eta_10,omitempty"`
	// Soon is the arriving_soon notification: when it went and the
	// window [P10, P90] it showed (null: none went).
	Soon *SoonInput `json:"soon,omitempty"`
}

// SoonInput is the arriving_soon notice of a FactInput.
type SoonInput struct {
	Time int64 `json:"time"`
	P10  int64 `json:"p10"`
	P90  int64 `json:"p90"`
}

// maxDuration bounds every duration of a fact (a day).
const maxDuration = 86400

// Fact checks the input and returns its fact under key (Seq unset). loc
// is the zone of an input without one.
func (in *FactInput) Fact(key string, loc *time.Location) (store.Fact, error) {
	bad := func(format string, args ...any) (store.Fact, error) {
		return store.Fact{}, errorf("InvalidValue", format, args...)
	}
	text := func(name, v string, n int, required bool) error {
		if required && v == "" {
			return errorf("InvalidValue", "%s: required", name)
		}
		if len(v) > n || strings.ContainsFunc(v, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
			return errorf("InvalidValue", "%s: at most %d characters, no control characters", name, n)
		}
		return nil
	}
	for _, e := range []error{text("vehicle", in.Vehicle, 128, true), text("driver", in.Driver, 200, false),
		text("class", in.Class, 64, false), text("tracking", in.Tracking, 128, true), text("time_zone", in.TimeZone, 64, false)} {
		if e != nil {
			return store.Fact{}, e
		}
	}
	lon, lat := in.Location[0], in.Location[1]
	if math.IsNaN(lon) || math.IsNaN(lat) || lon < -180 || lon > 180 || lat < -90 || lat > 90 || (lon == 0 && lat == 0) {
		return bad("location: want [lon, lat]")
	}
	if in.TimeZone != "" {
		l, err := time.LoadLocation(in.TimeZone)
		if err != nil {
			return bad("time_zone: unknown zone %q", in.TimeZone)
		}
		loc = l
	}
	switch in.Status {
	case "delivered":
		if in.Reason != "" {
			return bad("reason: only with failed")
		}
	case "failed":
		if !slices.Contains(FailReasons, in.Reason) {
			return bad("reason %q: want one of %s", in.Reason, strings.Join(FailReasons, ", "))
		}
	default:
		return bad("status %q: want delivered or failed", in.Status)
	}
	if in.Attempt < 1 || in.Attempt > 100 {
		return bad("attempt: want 1 to 100")
	}
	// Unix seconds between 2000 and 2200.
	const lo, hi = 946684800, 7258118400
	okTime := func(t int64) bool { return t >= lo && t < hi }
	if !okTime(in.Arrival) || !okTime(in.Done) || in.Done < in.Arrival || in.Done-in.Arrival > maxDuration {
		return bad("arrival, done: want Unix seconds, done at or after arrival, within a day")
	}
	var w [2]int64
	if in.TimeWindow != nil {
		w = *in.TimeWindow
		if !okTime(w[0]) || !okTime(w[1]) || w[1] < w[0] {
			return bad("time_window: want [start, end] in Unix seconds")
		}
	}
	for name, t := range map[string]int64{"planned": in.Planned, "eta_60": in.ETA60, "eta_30": in.ETA30, "eta_10": in.ETA10} {
		if t != 0 && !okTime(t) {
			return bad("%s: want Unix seconds", name)
		}
	}
	drive := int64(-1)
	if in.Drive != nil {
		if *in.Drive < 0 {
			return bad("drive: want seconds from 0 to %d, or null", maxDuration)
		}
		drive = *in.Drive
	}
	for name, d := range map[string]int64{"planned_drive": in.PlannedDrive, "drive": max(drive, 0), "planned_service": in.PlannedService,
		"service": in.Service, "wait": in.Wait} {
		if d < 0 || d > maxDuration {
			return bad("%s: want seconds from 0 to %d", name, maxDuration)
		}
	}
	if in.PlannedDistance < 0 || in.PlannedDistance > 1e6 {
		return bad("planned_distance: want metres from 0 to 1000000")
	}
	var soon SoonInput
	if in.Soon != nil {
		soon = *in.Soon
		if !okTime(soon.Time) || !okTime(soon.P10) || !okTime(soon.P90) || soon.P90 < soon.P10 {
			return bad("soon: want time, p10 <= p90 in Unix seconds")
		}
	}
	class := in.Class
	if class == "" {
		class = DefaultClass
	}
	day, hour, cell := Place(lat, lon, in.Arrival, loc)
	return store.Fact{Key: key, Day: day, Hour: hour, Plan: in.Plan, Vehicle: in.Vehicle, Driver: in.Driver, Class: class,
		Tracking: in.Tracking, Cell: cell, Status: in.Status, Reason: in.Reason, Attempt: in.Attempt, Window: w,
		Planned: in.Planned, Arrival: in.Arrival, Done: in.Done, PlannedDrive: in.PlannedDrive, Drive: drive,
		PlannedService: in.PlannedService, Service: in.Service, Wait: in.Wait, PlannedDist: in.PlannedDistance,
		ETA60: in.ETA60, ETA30: in.ETA30, ETA10: in.ETA10, SoonAt: soon.Time, SoonP10: soon.P10, SoonP90: soon.P90}, nil
}

// ImportBatch is the number of facts per import transaction.
const ImportBatch = 5000

// Import stores imported facts (keyed "i:" and their id), in
// transactions of ImportBatch; a fact whose id was imported before is
// skipped. It returns how many were new. The whole input is checked
// first: a bad line stores nothing.
func (s *Service) Import(ctx context.Context, in []FactInput, loc *time.Location) (int, error) {
	facts := make([]store.Fact, len(in))
	seen := make(map[string]bool, len(in))
	zones := map[string]*time.Location{"": loc} // LoadLocation reads the zone's file each time
	for i := range in {
		z, ok := zones[in[i].TimeZone]
		if !ok {
			if l, err := time.LoadLocation(in[i].TimeZone); err == nil {
				z = l
				zones[in[i].TimeZone] = l
			}
		}
		if err := text64(in[i].ID); err != nil {
			return 0, errorf("InvalidValue", "line %d: id: %v", i+1, err)
		}
		if seen[in[i].ID] {
			return 0, errorf("InvalidValue", "line %d: id %q appears twice", i+1, in[i].ID)
		}
		seen[in[i].ID] = true
		fi := in[i]
		if z != nil {
			fi.TimeZone = "" // known: counted in z
		}
		f, err := fi.Fact("i:"+in[i].ID, cmp.Or(z, loc))
		if err != nil {
			e := err.(*Error)
			return 0, errorf(e.Code, "line %d: %s", i+1, e.Message)
		}
		facts[i] = f
	}
	n := 0
	for start := 0; start < len(facts); start += ImportBatch {
		part := facts[start:min(start+ImportBatch, len(facts))]
		var k int
		_, err := s.st.Tx(ctx, func(tx *store.Tx) error {
			var err error
			k, err = tx.InsertFacts(part)
			return err
		})
		if err != nil {
			return n, fmt.Errorf("analytics: import: %w", err)
		}
		n += k
	}
	return n, nil
}

func text64(id string) error {
	if id == "" || len(id) > 64 || strings.ContainsFunc(id, func(r rune) bool { return r <= 0x20 || r == 0x7f }) {
		return fmt.Errorf("want 1 to 64 characters, no spaces or control characters")
	}
	return nil
}
