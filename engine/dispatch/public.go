package dispatch

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/lastmile/lastmile/engine/seal"
	"github.com/lastmile/lastmile/engine/store"
)

// ErrLinkNotFound is what every unknown, malformed, revoked, expired or
// erased tracking link gives, so that none can be told from another.
var ErrLinkNotFound = errorf("NotFound", "not found")

// PublicView is what a shipment's tracking link shows its recipient: the
// shipment's own state only, never another shipment's. Invariants: Van is
// set only while the shipment's stop is open on an active route, within
// Config.VanStops stops of the van; after the attempt ended (delivered,
// failed) ETA, StopsBefore and Van are nil; after delivery Events holds
// the delivered event only and Messages is empty (nothing but the
// delivered state and its proof).
type PublicView struct {
	Tracking string `json:"tracking"`
	Status   string `json:"status"`
	// Language is the recipient's language ("" when unknown) and TZ the
	// shipment's time zone (IANA name, "" for UTC).
	Language string `json:"language"`
	TZ       string `json:"tz"`
	// Address and Location are the recipient's own delivery address.
	Address  string     `json:"address,omitempty"`
	Location [2]float64 `json:"location"`
	// TimeWindow is the promised window (Unix seconds), nil when none.
	TimeWindow *[2]int64 `json:"time_window"`
	// ETA is the predicted arrival while the stop is open.
	ETA *ETA `json:"eta"`
	// StopsBefore counts the van's stops before this one while it is
	// open.
	StopsBefore *int `json:"stops_before"`
	// Van is the van's latest position, when it may be shown.
	Van *VanView `json:"van"`
	// Reason is the failure reason of a failed attempt.
	Reason string `json:"reason,omitempty"`
	// DoneAt is when the attempt ended (0 while open).
	DoneAt int64 `json:"done_at,omitempty"`
	// Events is the shipment's timeline (see PublicEvent).
	Events []PublicEvent `json:"events"`
	// Instructions are the delivery instructions.
	Instructions string `json:"instructions,omitempty"`
	// Messages is the thread with the driver, oldest first.
	Messages []MessageView `json:"messages"`
	// Proof is the proof of delivery, after delivery.
	Proof *ProofView `json:"proof"`
	// Rating is the recipient's rating, after delivery.
	Rating *RatingView `json:"rating"`
	// WindowRequest is the latest request for another window and its
	// answer.
	WindowRequest *WindowRequestView `json:"window_request"`
	// Offers are the windows the recipient may ask for now.
	Offers [][2]int64 `json:"offers"`
	// Seq is the sequence number of the shipment's latest event: a view
	// with the same Seq, van and thread is the same view.
	Seq int64 `json:"seq"`

	// The shipment, its stop and the stop's vehicle, for the server's
	// live updates (not shown).
	ShipmentID int64  `json:"-"`
	StopID     int64  `json:"-"`
	Vehicle    string `json:"-"`
}

// VanView is the van's position as a recipient sees it: [lon, lat] at
// Time (Unix seconds). Path and Route are filled by the server: the road
// geometry travelled since the previous position, and the road to this
// stop when it is the next one.
type VanView struct {
	Location [2]float64   `json:"location"`
	Time     int64        `json:"time"`
	Path     [][2]float64 `json:"path,omitempty"`
	Route    [][2]float64 `json:"route,omitempty"`
}

// PublicEvent is one event of a recipient's timeline: its type and time
// and, where it has one, the stops count, the ETA or the failure reason;
// nothing else of the event's data (a caller's note stays internal).
type PublicEvent struct {
	Type   string `json:"type"`
	Time   int64  `json:"time"`
	Stops  *int   `json:"stops,omitempty"`
	ETA    *ETA   `json:"eta,omitempty"`
	Reason string `json:"reason,omitempty"`
}

// MessageView is one message of the thread between recipient and driver.
type MessageView struct {
	ID   int64  `json:"id"`
	From string `json:"from"`
	Text string `json:"text"`
	Time int64  `json:"time"`
}

// ProofView is a proof of delivery as the recipient sees it: the content
// keys of the photo and the signature (the server turns them into
// short-lived signed URLs), who received the parcel and when.
type ProofView struct {
	Photo     string `json:"-"`
	Signature string `json:"-"`
	PhotoURL  string `json:"photo_url,omitempty"`
	SignURL   string `json:"signature_url,omitempty"`
	Name      string `json:"name,omitempty"`
	Time      int64  `json:"time"`
}

// RatingView is a recipient's rating of a delivery.
type RatingView struct {
	Stars   int64  `json:"stars"`
	Comment string `json:"comment,omitempty"`
}

// WindowRequestView is a request for another window and its answer.
type WindowRequestView struct {
	TimeWindow [2]int64 `json:"time_window"`
	State      string   `json:"state"`
	Reason     string   `json:"reason,omitempty"`
	Time       int64    `json:"time"`
}

// ShipmentByLink returns the shipment whose tracking link has token, or
// ErrLinkNotFound for a malformed, unknown, revoked (replaced), erased or
// expired one (Config.LinkTTL after its attempt ended). The token is
// found by its SHA-256 hash through the database's unique index, so the
// lookup takes the same time whatever prefix of a token matches.
func (s *Service) ShipmentByLink(ctx context.Context, token string) (store.Shipment, error) {
	if !seal.ValidToken(token) {
		return store.Shipment{}, ErrLinkNotFound
	}
	sh, err := s.st.ShipmentByToken(ctx, token)
	if errors.Is(err, store.ErrNotFound) {
		return store.Shipment{}, ErrLinkNotFound
	}
	if err != nil {
		return store.Shipment{}, err
	}
	if sh.Erased != 0 || sh.Token != token {
		return store.Shipment{}, ErrLinkNotFound
	}
	if sh.DoneAt > 0 && s.now() > sh.DoneAt+int64(s.cfg.LinkTTL/time.Second) {
		return store.Shipment{}, ErrLinkNotFound
	}
	return sh, nil
}

// PublicView returns what the shipment's tracking link shows.
func (s *Service) PublicView(ctx context.Context, sh store.Shipment) (PublicView, error) {
	v := PublicView{Tracking: sh.Tracking, Status: sh.Status, Language: sh.Language, TZ: sh.TZ,
		Address: sh.Address, Location: sh.Location, Instructions: sh.Instructions, Seq: sh.Seq, ShipmentID: sh.ID,
		Events: []PublicEvent{}, Messages: []MessageView{}, Offers: [][2]int64{}}
	if sh.Window != [2]int64{} {
		w := sh.Window
		v.TimeWindow = &w
	}
	st, err := s.st.LatestStop(ctx, sh.ID)
	hasStop := err == nil
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return PublicView{}, err
	}
	if hasStop {
		v.StopID, v.Reason = st.ID, st.Reason
		if !open(st.Status) {
			v.DoneAt = st.DoneAt
		}
		if st.Status == StatusOutForDelivery || st.Status == StatusArrived {
			if err := s.liveParts(ctx, st, &v); err != nil {
				return PublicView{}, err
			}
		} else if st.Status == StatusPlanned && st.ETA > 0 {
			v.ETA = &ETA{st.ETA, st.P10, st.P90}
		}
	}
	delivered := sh.Status == StatusDelivered
	evs, err := s.st.ShipmentEvents(ctx, sh.ID)
	if err != nil {
		return PublicView{}, err
	}
	for _, e := range evs {
		if delivered && e.Type != StatusDelivered {
			continue
		}
		v.Events = append(v.Events, publicEvent(e))
	}
	if delivered {
		pods, err := s.st.ShipmentPods(ctx, sh.ID)
		if err != nil {
			return PublicView{}, err
		}
		for _, p := range pods {
			if hasStop && p.Stop != st.ID {
				continue
			}
			v.Proof = &ProofView{Photo: p.Photo, Signature: p.Signature, Name: p.Name, Time: p.Time}
		}
		r, err := s.st.RatingOf(ctx, sh.ID)
		switch {
		case err == nil:
			v.Rating = &RatingView{Stars: r.Stars, Comment: r.Comment}
		case !errors.Is(err, store.ErrNotFound):
			return PublicView{}, err
		}
	} else {
		ms, err := s.st.Messages(ctx, sh.ID)
		if err != nil {
			return PublicView{}, err
		}
		for _, m := range ms {
			v.Messages = append(v.Messages, MessageView{ID: m.ID, From: m.From, Text: m.Text, Time: m.Created})
		}
		wr, err := s.st.LatestWindowRequest(ctx, sh.ID)
		switch {
		case err == nil:
			v.WindowRequest = &WindowRequestView{TimeWindow: wr.Window, State: wr.State, Reason: wr.Reason, Time: wr.Created}
		case !errors.Is(err, store.ErrNotFound):
			return PublicView{}, err
		}
		if sh.Status != StatusArrived {
			v.Offers = s.cfg.Offers.Windows(sh.TZ, s.cfg.Now(), sh.Window)
		}
	}
	return v, nil
}

// liveParts fills the ETA, the stops before and the van of an open stop
// out for delivery.
func (s *Service) liveParts(ctx context.Context, st store.Stop, v *PublicView) error {
	route, err := s.st.Route(ctx, st.Route)
	if err != nil {
		return err
	}
	n, err := s.st.StopsBefore(ctx, st, openStatuses...)
	if err != nil {
		return err
	}
	v.StopsBefore = &n
	if st.ETA > 0 {
		v.ETA = &ETA{st.ETA, st.P10, st.P90}
	}
	v.Vehicle = route.Vehicle
	if route.Status != store.RouteActive || n >= s.cfg.VanStops {
		return nil
	}
	veh, err := s.st.Vehicle(ctx, route.Vehicle)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if veh.Route != route.ID {
		return nil // the van works another route now
	}
	if veh.LastMS > 0 {
		v.Van = &VanView{Location: [2]float64{veh.Lon, veh.Lat}, Time: veh.LastMS / 1000}
	}
	return nil
}

// publicEvent keeps what a recipient's timeline shows of an event.
func publicEvent(e store.Event) PublicEvent {
	pe := PublicEvent{Type: e.Type, Time: e.Time}
	if e.Data == "" {
		return pe
	}
	var d struct {
		Stops  *int   `json:"stops"`
		ETA    *ETA   `json:"eta"`
		Reason string `json:"reason"`
	}
	if json.Unmarshal([]byte(e.Data), &d) != nil {
		return pe
	}
	switch e.Type {
	case "stops_away":
		pe.Stops = d.Stops
	case "arriving_soon", "eta_changed", "delayed":
		pe.ETA = d.ETA
	case StatusFailed:
		pe.Reason = d.Reason
	}
	return pe
}
