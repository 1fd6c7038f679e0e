package dispatch

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/lastmile/lastmile/engine/seal"
	"github.com/lastmile/lastmile/engine/store"
	"github.com/lastmile/lastmile/vrp"
)

// WindowOffers are the delivery windows a carrier offers recipients:
// slots of Slot length from From to To o'clock (local time of the
// shipment), today and the next Days days, starting at least Lead from
// now. Zero fields take the defaults given.
type WindowOffers struct {
	// Slot is the length of a window (default 2 h).
	Slot time.Duration
	// From and To are the first and last hours of the delivery day
	// (default 9 and 21).
	From, To int
	// Days is how many days after today are offered (default 2).
	Days int
	// Lead is the least time from now to a window's start (default 1 h).
	Lead time.Duration
}

func (o WindowOffers) withDefaults() WindowOffers {
	if o.Slot <= 0 {
		o.Slot = 2 * time.Hour
	}
	if o.From <= 0 && o.To <= 0 {
		o.From, o.To = 9, 21
	}
	if o.To <= o.From || o.To > 24 || o.From < 0 {
		o.From, o.To = 9, 21
	}
	if o.Days <= 0 {
		o.Days = 2
	}
	if o.Lead <= 0 {
		o.Lead = time.Hour
	}
	return o
}

// Windows returns the windows on offer at now in time zone tz (UTC when
// unknown), in time order, leaving out the current one.
func (o WindowOffers) Windows(tz string, now time.Time, current [2]int64) [][2]int64 {
	loc, err := time.LoadLocation(tz)
	if err != nil || tz == "" {
		loc = time.UTC
	}
	local := now.In(loc)
	out := [][2]int64{}
	for d := 0; d <= o.Days; d++ {
		day := time.Date(local.Year(), local.Month(), local.Day()+d, 0, 0, 0, 0, loc)
		for t := day.Add(time.Duration(o.From) * time.Hour); !t.Add(o.Slot).After(day.Add(time.Duration(o.To) * time.Hour)); t = t.Add(o.Slot) {
			if t.Before(now.Add(o.Lead)) {
				continue
			}
			w := [2]int64{t.Unix(), t.Add(o.Slot).Unix()}
			if w != current {
				out = append(out, w)
			}
		}
	}
	return out
}

// Limits of what a recipient may write.
const (
	maxInstructions = 500
	maxMessage      = 1000
	maxComment      = 1000
	maxClientID     = 100
)

// SetInstructions replaces the delivery instructions of a shipment still
// to be delivered (the recipient's page; the driver's app shows them).
func (s *Service) SetInstructions(ctx context.Context, sh store.Shipment, text string) error {
	text = strings.TrimSpace(text)
	if err := checkText("instructions", text, maxInstructions, true); err != nil {
		return err
	}
	if sh.Status == StatusDelivered || sh.Status == StatusCancelled {
		return errorf("Conflict", "the delivery is %s", sh.Status)
	}
	_, err := s.st.Tx(ctx, func(tx *store.Tx) error {
		return tx.SetInstructions(sh.ID, sh.Tracking, text, s.now())
	})
	return err
}

// MessageInput is a message sent from the recipient's page or the
// driver's app. ClientID is the sender's idempotency key (a retry with the
// same one is stored once).
type MessageInput struct {
	Text     string `json:"text"`
	ClientID string `json:"-"`
}

// Message senders.
const (
	FromRecipient = "recipient"
	FromDriver    = "driver"
)

// PostMessage adds a message to the thread of a shipment not yet
// delivered and reports whether it is new (false: a retry).
func (s *Service) PostMessage(ctx context.Context, sh store.Shipment, from string, in MessageInput) (MessageView, bool, error) {
	text := strings.TrimSpace(in.Text)
	if text == "" {
		return MessageView{}, false, errorf("InvalidValue", "text: empty message")
	}
	if err := checkText("text", text, maxMessage, true); err != nil {
		return MessageView{}, false, err
	}
	if in.ClientID == "" {
		in.ClientID = seal.Token()
	}
	if err := checkText("Idempotency-Key", in.ClientID, maxClientID, false); err != nil {
		return MessageView{}, false, err
	}
	if sh.Status == StatusDelivered || sh.Status == StatusCancelled || sh.Erased != 0 {
		return MessageView{}, false, errorf("Conflict", "the delivery is %s: its thread is closed", sh.Status)
	}
	m := store.Message{Shipment: sh.ID, From: from, Text: text, ClientID: in.ClientID, Created: s.now()}
	var created bool
	_, err := s.st.Tx(ctx, func(tx *store.Tx) error {
		var err error
		created, err = tx.InsertMessage(&m)
		return err
	})
	if err != nil {
		return MessageView{}, false, err
	}
	return MessageView{ID: m.ID, From: m.From, Text: m.Text, Time: m.Created}, created, nil
}

// Messages returns a shipment's thread, oldest first.
func (s *Service) Messages(ctx context.Context, shipment int64) ([]MessageView, error) {
	ms, err := s.st.Messages(ctx, shipment)
	if err != nil {
		return nil, err
	}
	out := make([]MessageView, 0, len(ms))
	for _, m := range ms {
		out = append(out, MessageView{ID: m.ID, From: m.From, Text: m.Text, Time: m.Created})
	}
	return out, nil
}

// RatingInput rates a delivery: 1 to 5 stars and an optional comment.
type RatingInput struct {
	Stars   int64  `json:"stars"`
	Comment string `json:"comment,omitempty"`
}

// Rate records (or replaces) the recipient's rating of a delivered
// shipment.
func (s *Service) Rate(ctx context.Context, sh store.Shipment, in RatingInput) error {
	if in.Stars < 1 || in.Stars > 5 {
		return errorf("InvalidValue", "stars: want 1 to 5")
	}
	in.Comment = strings.TrimSpace(in.Comment)
	if err := checkText("comment", in.Comment, maxComment, true); err != nil {
		return err
	}
	if sh.Status != StatusDelivered {
		return errorf("Conflict", "a delivery can be rated once delivered")
	}
	_, err := s.st.Tx(ctx, func(tx *store.Tx) error {
		return tx.PutRating(store.Rating{Shipment: sh.ID, Stars: in.Stars, Comment: in.Comment, Created: s.now()})
	})
	return err
}

// Window request answers.
const (
	WindowAccepted = "accepted"
	WindowDeclined = "declined"
)

// RequestWindow answers a recipient's request for another delivery window
// among the offered ones. A shipment not on a van's route yet (or whose
// attempt failed) takes any offered window. One on a route takes it when
// the route can still keep every window with it: the van's open stops are
// solved again from its position now (from the depot before it leaves)
// with the new window; then the window moves (ChangeWindow: the van is
// re-routed at its next ping if its order no longer keeps the window).
// Otherwise the request is declined with the reason, and the window stays.
// Either way the answer is stored and shown on the page.
func (s *Service) RequestWindow(ctx context.Context, sh store.Shipment, w [2]int64) (WindowRequestView, error) {
	now := s.cfg.Now()
	if !slices.Contains(s.cfg.Offers.Windows(sh.TZ, now, sh.Window), w) {
		return WindowRequestView{}, errorf("InvalidValue", "time_window: not one of the windows on offer")
	}
	if sh.Status == StatusDelivered || sh.Status == StatusCancelled || sh.Status == StatusArrived {
		return WindowRequestView{}, errorf("Conflict", "the delivery is %s", sh.Status)
	}
	state, reason := WindowAccepted, ""
	st, err := s.st.LatestStop(ctx, sh.ID)
	switch {
	case errors.Is(err, store.ErrNotFound):
	case err != nil:
		return WindowRequestView{}, err
	case open(st.Status):
		ok, why, err := s.windowFits(ctx, st, w, now)
		if err != nil {
			return WindowRequestView{}, err
		}
		if !ok {
			state, reason = WindowDeclined, why
		}
	}
	if state == WindowAccepted {
		if _, err := s.ChangeWindow(ctx, sh.Tracking, WindowInput{TimeWindow: w}); err != nil {
			return WindowRequestView{}, err
		}
	}
	r := store.WindowRequest{Shipment: sh.ID, Window: w, State: state, Reason: reason, Created: now.Unix()}
	if _, err := s.st.Tx(ctx, func(tx *store.Tx) error { return tx.InsertWindowRequest(&r) }); err != nil {
		return WindowRequestView{}, err
	}
	return WindowRequestView{TimeWindow: w, State: state, Reason: reason, Time: r.Created}, nil
}

// windowFits reports whether stop st's route can keep every window with
// st's moved to w, solving the route's open stops from the van's position
// (the depot before it left) at now within the driver's shift.
func (s *Service) windowFits(ctx context.Context, st store.Stop, w [2]int64, now time.Time) (bool, string, error) {
	route, err := s.st.Route(ctx, st.Route)
	if err != nil {
		return false, "", err
	}
	vs, err := parseVehicles([]json.RawMessage{json.RawMessage(route.Spec)})
	if err != nil {
		return false, "", err
	}
	v := vs[0].v
	t := now.Unix()
	if route.Status == store.RouteActive {
		if veh, err := s.st.Vehicle(ctx, route.Vehicle); err == nil && veh.LastMS > 0 {
			v.Start = vrp.CoordLocation(veh.Lon, veh.Lat)
		}
		v.TimeWindow.Start = max(v.TimeWindow.Start, t)
	}
	if v.TimeWindow.End == 0 {
		v.TimeWindow.End = vrp.MaxTime
	}
	if v.TimeWindow.End <= w[0] {
		return false, "the driver's day ends before that window", nil
	}
	if s.cfg.Solve == nil {
		// No road graph to solve on: the window must hold the ETA.
		if st.ETA > 0 && st.ETA >= w[0] && st.ETA <= w[1] {
			return true, "", nil
		}
		return false, "the van is not due then", nil
	}
	v.Capacity = nil
	stops, err := s.st.RouteStops(ctx, route.ID)
	if err != nil {
		return false, "", err
	}
	p := &vrp.Problem{Vehicles: []vrp.Vehicle{v}}
	for _, x := range stops {
		if x.Status != StatusPlanned && x.Status != StatusOutForDelivery {
			continue
		}
		win := x.Window
		if x.ID == st.ID {
			win = w
		}
		j := vrp.Job{ID: uint64(len(p.Jobs) + 1), Location: vrp.CoordLocation(x.Location[0], x.Location[1]), Service: x.Service}
		if win != [2]int64{} {
			j.TimeWindows = []vrp.TimeWindow{{Start: win[0], End: max(win[1], t)}}
		}
		p.Jobs = append(p.Jobs, j)
	}
	sol, err := s.cfg.Solve(p, s.cfg.rerouteBudget(1))
	if err != nil {
		return false, "", err
	}
	if len(sol.Unassigned) > 0 {
		return false, "the van's route cannot keep every delivery with that window", nil
	}
	return true, "", nil
}

// RotateLink replaces a shipment's tracking link: the old one stops
// working at once (revocation) and the new one is returned.
func (s *Service) RotateLink(ctx context.Context, tracking string) (ShipmentCreated, error) {
	if checkTracking(tracking) != nil {
		return ShipmentCreated{}, errorf("NotFound", "shipment %q: unknown", tracking)
	}
	token := seal.Token()
	_, err := s.st.Tx(ctx, func(tx *store.Tx) error {
		sh, err := tx.LockShipment(tracking)
		if errors.Is(err, store.ErrNotFound) {
			return errorf("NotFound", "shipment %q: unknown", tracking)
		}
		if err != nil {
			return err
		}
		if sh.Erased != 0 {
			return errorf("Conflict", "shipment %q: its personal data was erased", tracking)
		}
		return tx.SetToken(sh.ID, tracking, token, s.now())
	})
	if err != nil {
		return ShipmentCreated{}, err
	}
	return ShipmentCreated{Tracking: tracking, TrackingURL: "/track/" + token}, nil
}
