package dispatch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/mail"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/lastmile/lastmile/engine/seal"
	"github.com/lastmile/lastmile/engine/store"
)

// Text limits of a shipment's fields (bytes of UTF-8).
const (
	maxTracking = 64
	maxName     = 200
	maxPhone    = 32
	maxEmail    = 254
	maxAddress  = 500
	maxNote     = 1000
	maxLanguage = 35
	maxCallerID = 128
)

// RecipientInput is the recipient of POST /v1/shipments.
type RecipientInput struct {
	Name     string `json:"name"`
	Phone    string `json:"phone,omitempty"`
	Email    string `json:"email,omitempty"`
	Language string `json:"language,omitempty"`
}

// ParcelsInput describes the parcels of a shipment.
type ParcelsInput struct {
	Count      int          `json:"count,omitempty"`
	Weight     float64      `json:"weight,omitempty"`     // kg
	Dimensions [][3]float64 `json:"dimensions,omitempty"` // cm per parcel
}

// ShipmentInput is the body of POST /v1/shipments.
type ShipmentInput struct {
	Tracking  string         `json:"tracking"`
	Recipient RecipientInput `json:"recipient"`
	// Location is [lon, lat] of the delivery point.
	Location     [2]float64    `json:"location"`
	Address      string        `json:"address,omitempty"`
	Instructions string        `json:"instructions,omitempty"`
	TimeWindow   *[2]int64     `json:"time_window,omitempty"` // Unix seconds
	Service      *float64      `json:"service,omitempty"`     // seconds, default 120
	Parcels      *ParcelsInput `json:"parcels,omitempty"`
	TimeZone     string        `json:"time_zone,omitempty"` // IANA name
	// Notify chooses the recipient's notifications (nil: the defaults).
	Notify *NotifyPrefs `json:"notify,omitempty"`
}

// ShipmentCreated answers POST /v1/shipments.
type ShipmentCreated struct {
	Tracking    string `json:"tracking"`
	TrackingURL string `json:"tracking_url"`
}

// checkText rejects text that is too long, not UTF-8 or holds control
// characters (other than tab and newline where multiline is allowed).
func checkText(field, v string, max int, multiline bool) error {
	if len(v) > max {
		return errorf("InvalidValue", "%s: %d bytes, at most %d", field, len(v), max)
	}
	if !utf8.ValidString(v) {
		return errorf("InvalidValue", "%s: not valid UTF-8", field)
	}
	for _, r := range v {
		if unicode.IsControl(r) && !(multiline && (r == '\n' || r == '\t')) {
			return errorf("InvalidValue", "%s: control character U+%04X", field, r)
		}
	}
	return nil
}

// checkTracking validates a tracking number: 1-64 characters of letters,
// digits and - _ . (so it is safe in a URL path).
func checkTracking(t string) error {
	if t == "" || len(t) > maxTracking {
		return errorf("InvalidValue", "tracking: want 1 to %d characters, got %d", maxTracking, len(t))
	}
	for _, r := range t {
		if !(r < utf8.RuneSelf && (unicode.IsLetter(r) || unicode.IsDigit(r) || r == '-' || r == '_' || r == '.')) {
			return errorf("InvalidValue", "tracking: only ASCII letters, digits, '-', '_' and '.' are allowed")
		}
	}
	return nil
}

func checkLonLat(field string, ll [2]float64) error {
	if math.IsNaN(ll[0]) || math.IsNaN(ll[1]) || ll[0] < -180 || ll[0] > 180 || ll[1] < -90 || ll[1] > 90 {
		return errorf("InvalidValue", "%s: [%v, %v] is not a [lon, lat] coordinate", field, ll[0], ll[1])
	}
	if ll == [2]float64{} {
		return errorf("InvalidValue", "%s: [0, 0] is not a delivery point (missing location?)", field)
	}
	return nil
}

func (in *ShipmentInput) validate() error {
	if err := checkTracking(in.Tracking); err != nil {
		return err
	}
	r := in.Recipient
	checks := []error{
		checkText("recipient.name", r.Name, maxName, false),
		checkText("recipient.phone", r.Phone, maxPhone, false),
		checkText("recipient.email", r.Email, maxEmail, false),
		checkText("recipient.language", r.Language, maxLanguage, false),
		checkText("address", in.Address, maxAddress, true),
		checkText("instructions", in.Instructions, maxNote, true),
		checkText("time_zone", in.TimeZone, 64, false),
		checkLonLat("location", in.Location),
	}
	if err := firstError(checks); err != nil {
		return err
	}
	if strings.TrimSpace(r.Name) == "" {
		return errorf("InvalidValue", "recipient.name: required")
	}
	if r.Phone != "" {
		for i, c := range r.Phone {
			if !(c >= '0' && c <= '9' || c == '+' && i == 0 || c == ' ' || c == '-') {
				return errorf("InvalidValue", "recipient.phone: want digits with an optional leading '+' (E.164)")
			}
		}
	}
	if r.Email != "" {
		a, err := mail.ParseAddress(r.Email)
		if err != nil || a.Address != r.Email || a.Name != "" {
			return errorf("InvalidValue", "recipient.email: not a plain e-mail address")
		}
	}
	if r.Language != "" {
		for _, c := range r.Language {
			if !(c < utf8.RuneSelf && (unicode.IsLetter(c) || unicode.IsDigit(c) || c == '-')) {
				return errorf("InvalidValue", "recipient.language: want a language tag such as pt or en-GB")
			}
		}
	}
	if in.Notify != nil {
		if err := in.Notify.validate(); err != nil {
			return err
		}
	}
	if in.TimeZone != "" {
		if _, err := time.LoadLocation(in.TimeZone); err != nil {
			return errorf("InvalidValue", "time_zone: unknown zone %q", in.TimeZone)
		}
	}
	if w := in.TimeWindow; w != nil {
		if w[0] <= 0 || w[1] < w[0] || w[1] > 1<<40 {
			return errorf("InvalidValue", "time_window: want [start, end] in Unix seconds with start <= end")
		}
	}
	if in.Service != nil && !(*in.Service >= 0 && *in.Service <= 86400) {
		return errorf("InvalidValue", "service: %v s is not in [0, 86400]", *in.Service)
	}
	if p := in.Parcels; p != nil {
		if p.Count < 0 || p.Count > 10000 || !(p.Weight >= 0 && p.Weight < 1e6) || len(p.Dimensions) > 10000 {
			return errorf("InvalidValue", "parcels: count, weight and dimensions must be non-negative and bounded")
		}
		for i, d := range p.Dimensions {
			for _, x := range d {
				if !(x >= 0 && x < 1e5) {
					return errorf("InvalidValue", "parcels.dimensions[%d]: want three lengths in cm", i)
				}
			}
		}
	}
	return nil
}

func firstError(errs []error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

// CreateShipment stores a new shipment; Conflict when its tracking number
// exists. The tracking URL's token is random (128 bits).
func (s *Service) CreateShipment(ctx context.Context, in ShipmentInput) (ShipmentCreated, error) {
	if err := in.validate(); err != nil {
		return ShipmentCreated{}, err
	}
	sh := store.Shipment{
		Tracking: in.Tracking, Token: seal.Token(), Status: StatusCreated,
		Recipient: store.Recipient{Name: in.Recipient.Name, Phone: in.Recipient.Phone, Email: in.Recipient.Email},
		Language:  in.Recipient.Language, Address: in.Address, Instructions: in.Instructions,
		Location: in.Location, Service: 120, TZ: in.TimeZone, Created: s.now(), Notify: encodeNotify(in.Notify),
	}
	if in.TimeWindow != nil {
		sh.Window = *in.TimeWindow
	}
	if in.Service != nil {
		sh.Service = int64(math.Round(*in.Service))
	}
	if p := in.Parcels; p != nil {
		sh.Parcels = store.Parcels{Count: p.Count, Weight: p.Weight, Dimensions: p.Dimensions}
	}
	_, err := s.st.Tx(ctx, func(tx *store.Tx) error { return tx.InsertShipment(&sh) })
	if errors.Is(err, store.ErrExists) {
		return ShipmentCreated{}, errorf("Conflict", "tracking %q exists", in.Tracking)
	}
	if err != nil {
		return ShipmentCreated{}, err
	}
	return ShipmentCreated{Tracking: sh.Tracking, TrackingURL: "/track/" + sh.Token}, nil
}

// CallerEventInput is the body of POST /v1/shipments/{tracking}/events.
type CallerEventInput struct {
	ID       string      `json:"id"`
	Type     string      `json:"type"`
	Time     int64       `json:"time"`
	Location *[2]float64 `json:"location,omitempty"`
	Note     string      `json:"note,omitempty"`
}

// Event is an event as the API shows it.
type Event struct {
	ID       string          `json:"id"`
	Cursor   int64           `json:"cursor"`
	Tracking string          `json:"tracking"`
	Seq      int64           `json:"seq"`
	Type     string          `json:"type"`
	Time     int64           `json:"time"`
	Data     json.RawMessage `json:"data"`
}

// EventOf is a stored event as the API shows it.
func EventOf(e store.Event) Event {
	data := json.RawMessage(e.Data)
	if len(data) == 0 {
		data = json.RawMessage("{}")
	}
	return Event{ID: e.ID, Cursor: e.Cursor, Tracking: e.Tracking, Seq: e.Seq, Type: e.Type, Time: e.Time, Data: data}
}

// AddCallerEvent records a milestone from the business's systems. The
// caller's id makes it idempotent: the same id again returns the event
// recorded the first time with created false (a different body under the
// same id is a Conflict).
func (s *Service) AddCallerEvent(ctx context.Context, tracking string, in CallerEventInput) (ev Event, created bool, err error) {
	if err := checkTracking(tracking); err != nil {
		return Event{}, false, errorf("NotFound", "shipment %q: unknown", tracking)
	}
	if in.ID == "" || len(in.ID) > maxCallerID {
		return Event{}, false, errorf("InvalidValue", "id: want the caller's event id, 1 to %d bytes", maxCallerID)
	}
	if err := checkText("id", in.ID, maxCallerID, false); err != nil {
		return Event{}, false, err
	}
	if !slices.Contains(CallerEventTypes, in.Type) {
		return Event{}, false, errorf("InvalidValue", "type %q: want one of %s", in.Type, strings.Join(CallerEventTypes, ", "))
	}
	if in.Time <= 0 || in.Time > 1<<40 {
		return Event{}, false, errorf("InvalidValue", "time: want Unix seconds")
	}
	if err := checkText("note", in.Note, maxNote, true); err != nil {
		return Event{}, false, err
	}
	data := map[string]any{}
	if in.Location != nil {
		if err := checkLonLat("location", *in.Location); err != nil {
			return Event{}, false, err
		}
		data["location"] = *in.Location
	}
	if in.Note != "" {
		data["note"] = in.Note
	}
	raw, _ := json.Marshal(data)
	var existing *store.Event
	evs, err := s.st.Tx(ctx, func(tx *store.Tx) error {
		sh, err := tx.LockShipment(tracking)
		if errors.Is(err, store.ErrNotFound) {
			return errorf("NotFound", "shipment %q: unknown", tracking)
		}
		if err != nil {
			return err
		}
		if e, err := tx.CallerEvent(sh.ID, in.ID); err == nil {
			existing = &e
			return nil
		} else if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		tx.Emit(store.Event{Shipment: sh.ID, Type: in.Type, Time: in.Time, Data: string(raw), CallerID: in.ID, Created: s.now()})
		// A milestone sets the status only before the last mile began.
		if sh.Status == StatusCreated || slices.Contains(CallerEventTypes, sh.Status) {
			return tx.SetShipmentStatus(sh.ID, in.Type, s.now(), 0)
		}
		return nil
	})
	if err != nil {
		return Event{}, false, err
	}
	if existing != nil {
		if existing.Type != in.Type || existing.Time != in.Time || existing.Data != string(raw) {
			return Event{}, false, errorf("Conflict", "event id %q was recorded with a different body", in.ID)
		}
		return EventOf(*existing), false, nil
	}
	e := evs[0]
	e.Tracking = tracking
	return EventOf(e), true, nil
}

// ETA is a predicted arrival with its P10-P90 interval, Unix seconds.
type ETA struct {
	Arrival int64 `json:"arrival"`
	P10     int64 `json:"p10"`
	P90     int64 `json:"p90"`
}

// ShipmentView answers GET /v1/shipments/{tracking}.
type ShipmentView struct {
	Tracking string `json:"tracking"`
	Status   string `json:"status"`
	// ETA is the predicted arrival while the shipment is on its way.
	ETA *ETA `json:"eta"`
	// StopsBefore counts the stops the van serves before this one.
	StopsBefore *int      `json:"stops_before"`
	Vehicle     *string   `json:"vehicle"`
	Stop        *int64    `json:"stop"`
	Attempt     int64     `json:"attempt,omitempty"`
	Reason      string    `json:"reason,omitempty"`
	TimeWindow  *[2]int64 `json:"time_window"`
	Events      []Event   `json:"events"`
}

// Shipment returns the shipment's status, ETA and timeline.
func (s *Service) Shipment(ctx context.Context, tracking string) (ShipmentView, error) {
	if checkTracking(tracking) != nil {
		return ShipmentView{}, errorf("NotFound", "shipment %q: unknown", tracking)
	}
	sh, err := s.st.ShipmentByTracking(ctx, tracking)
	if errors.Is(err, store.ErrNotFound) {
		return ShipmentView{}, errorf("NotFound", "shipment %q: unknown", tracking)
	}
	if err != nil {
		return ShipmentView{}, err
	}
	return s.view(ctx, sh)
}

func (s *Service) view(ctx context.Context, sh store.Shipment) (ShipmentView, error) {
	v := ShipmentView{Tracking: sh.Tracking, Status: sh.Status, Events: []Event{}}
	if sh.Window != [2]int64{} {
		w := sh.Window
		v.TimeWindow = &w
	}
	st, err := s.st.LatestStop(ctx, sh.ID)
	switch {
	case errors.Is(err, store.ErrNotFound):
	case err != nil:
		return ShipmentView{}, err
	default:
		route, err := s.st.Route(ctx, st.Route)
		if err != nil {
			return ShipmentView{}, err
		}
		id := st.ID
		v.Stop, v.Attempt, v.Reason = &id, st.Attempt, st.Reason
		veh := route.Vehicle
		v.Vehicle = &veh
		if open(st.Status) {
			n, err := s.st.StopsBefore(ctx, st, openStatuses...)
			if err != nil {
				return ShipmentView{}, err
			}
			v.StopsBefore = &n
			if st.ETA > 0 {
				v.ETA = &ETA{st.ETA, st.P10, st.P90}
			}
		}
	}
	evs, err := s.st.ShipmentEvents(ctx, sh.ID)
	if err != nil {
		return ShipmentView{}, err
	}
	for _, e := range evs {
		v.Events = append(v.Events, EventOf(e))
	}
	return v, nil
}

// openStatuses are the statuses of a stop still to be served.
var openStatuses = []string{StatusPlanned, StatusOutForDelivery, StatusArrived}

// open reports whether a stop is still to be served.
func open(status string) bool {
	return status == StatusPlanned || status == StatusOutForDelivery || status == StatusArrived
}

// Events returns up to limit events after cursor, and the cursor to ask
// from next (after itself when there are none).
func (s *Service) Events(ctx context.Context, after int64, limit int) ([]Event, int64, error) {
	return s.EventsFor(ctx, "", after, limit)
}

// EventsFor is Events limited to the shipments of a vehicle's routes
// (what its driver may read); "" is every shipment.
func (s *Service) EventsFor(ctx context.Context, vehicle string, after int64, limit int) ([]Event, int64, error) {
	if after < 0 {
		return nil, 0, errorf("InvalidValue", "after: want a cursor >= 0")
	}
	if limit <= 0 || limit > 1000 {
		return nil, 0, errorf("InvalidValue", "limit: want 1 to 1000")
	}
	var evs []store.Event
	var err error
	if vehicle == "" {
		evs, err = s.st.EventsAfter(ctx, after, limit)
	} else {
		evs, err = s.st.VehicleEventsAfter(ctx, vehicle, after, limit)
	}
	if err != nil {
		return nil, 0, err
	}
	out := make([]Event, len(evs))
	next := after
	for i, e := range evs {
		out[i] = EventOf(e)
		next = e.Cursor
	}
	return out, next, nil
}

func jsonData(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("dispatch: event data %T: %v", v, err)) // our own types
	}
	return string(b)
}
