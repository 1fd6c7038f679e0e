package dispatch

import (
	"context"
	"errors"
	"math"
	"strings"

	"github.com/lastmile/lastmile/engine/pod"
	"github.com/lastmile/lastmile/engine/store"
)

// DriverStop is one stop of a driver's day as the driver's app shows it:
// the recipient's name, address and instructions for the driver of this
// van only.
type DriverStop struct {
	ID           int64      `json:"id"`
	Position     int        `json:"position"`
	Tracking     string     `json:"tracking"`
	Status       string     `json:"status"`
	Reason       string     `json:"reason,omitempty"`
	Name         string     `json:"name"`
	Address      string     `json:"address"`
	Instructions string     `json:"instructions"`
	Location     [2]float64 `json:"location"`
	ETA          *ETA       `json:"eta"`
	TimeWindow   *[2]int64  `json:"time_window"`
	TZ           string     `json:"tz"`
	Messages     int        `json:"messages"`
}

// DriverRoute is a driver's day: the van's current route, stops in order.
type DriverRoute struct {
	Vehicle string       `json:"vehicle"`
	Route   *int64       `json:"route"`
	Stops   []DriverStop `json:"stops"`
}

// DriverRoute returns the stops of the vehicle's current route with what
// the driver needs at the door.
func (s *Service) DriverRoute(ctx context.Context, vehicle string) (DriverRoute, error) {
	out := DriverRoute{Vehicle: vehicle, Stops: []DriverStop{}}
	veh, err := s.st.Vehicle(ctx, vehicle)
	if errors.Is(err, store.ErrNotFound) {
		return out, nil
	}
	if err != nil {
		return DriverRoute{}, err
	}
	if veh.Route == 0 {
		return out, nil
	}
	rid := veh.Route
	out.Route = &rid
	stops, err := s.st.RouteStops(ctx, veh.Route)
	if err != nil {
		return DriverRoute{}, err
	}
	ids := make([]int64, 0, len(stops))
	for _, st := range stops {
		ids = append(ids, st.Shipment)
	}
	counts, err := s.st.MessageCounts(ctx, ids)
	if err != nil {
		return DriverRoute{}, err
	}
	for i, st := range stops {
		sh, err := s.st.ShipmentByTracking(ctx, st.Tracking)
		if err != nil {
			return DriverRoute{}, err
		}
		ds := DriverStop{ID: st.ID, Position: i + 1, Tracking: st.Tracking, Status: st.Status, Reason: st.Reason,
			Name: sh.Recipient.Name, Address: sh.Address, Instructions: sh.Instructions, Location: st.Location,
			TZ: sh.TZ, Messages: counts[st.Shipment]}
		if st.Window != [2]int64{} {
			w := st.Window
			ds.TimeWindow = &w
		}
		if open(st.Status) && st.ETA > 0 {
			ds.ETA = &ETA{st.ETA, st.P10, st.P90}
		}
		out.Stops = append(out.Stops, ds)
	}
	return out, nil
}

// StopShipment returns the shipment of a stop and the vehicle whose route
// holds it.
func (s *Service) StopShipment(ctx context.Context, stop int64) (store.Shipment, string, error) {
	vehicle, err := s.StopVehicle(ctx, stop)
	if err != nil {
		return store.Shipment{}, "", err
	}
	sh, err := s.st.ShipmentOfStop(ctx, stop)
	return sh, vehicle, err
}

// PodInput is a proof of delivery as uploaded by the driver's app: a photo
// and/or a signature (image bytes, checked and cleaned by package pod),
// who received the parcel, where the phone was ([lon, lat], accuracy in
// metres; HasGeo false when the phone gave no position), when (Unix
// seconds, 0: now) and the upload's idempotency key.
type PodInput struct {
	Photo, Signature []byte
	Name             string
	Geo              [2]float64
	Accuracy         float64
	HasGeo           bool
	Time             int64
	ClientID         string
}

// PodView answers a proof-of-delivery upload.
type PodView struct {
	ID        int64  `json:"id"`
	Stop      int64  `json:"stop"`
	Photo     string `json:"photo,omitempty"`
	Signature string `json:"signature,omitempty"`
	// Far flags a proof geotagged farther than Config.PodRadius from the
	// stop; Distance is that distance in metres (absent without a geotag).
	Far      bool     `json:"far"`
	Distance *float64 `json:"distance,omitempty"`
}

// RecordPod checks and stores a stop's proof of delivery: each image is
// checked by its content (type, size, dimensions, decodable) and
// re-encoded without its metadata (pod.CleanImage), stored by content in
// Config.Blobs, then recorded on the stop in one transaction. A retry with
// the same idempotency key returns the stored proof (created false). A
// proof before the stop is delivered is kept, and the delivered event
// then says so; a proof after it is kept too (a late upload). Images
// stored without their row (a crash between the two) are unreferenced and
// never shown.
func (s *Service) RecordPod(ctx context.Context, stop int64, in PodInput) (PodView, bool, error) {
	if s.cfg.Blobs == nil {
		return PodView{}, false, errorf("NotReady", "no blob store is configured for proofs of delivery")
	}
	if len(in.Photo) == 0 && len(in.Signature) == 0 {
		return PodView{}, false, errorf("InvalidValue", "a photo or a signature is needed")
	}
	in.Name = strings.TrimSpace(in.Name)
	if err := checkText("name", in.Name, 200, false); err != nil {
		return PodView{}, false, err
	}
	if in.ClientID == "" {
		return PodView{}, false, errorf("InvalidValue", "Idempotency-Key: a key per upload is needed, so a retried upload is stored once")
	}
	if err := checkText("Idempotency-Key", in.ClientID, maxClientID, false); err != nil {
		return PodView{}, false, err
	}
	if in.HasGeo {
		if err := checkLonLat("location", in.Geo); err != nil {
			return PodView{}, false, err
		}
		if math.IsNaN(in.Accuracy) || in.Accuracy < 0 || in.Accuracy > 1e6 {
			return PodView{}, false, errorf("InvalidValue", "accuracy: want metres >= 0")
		}
	}
	now := s.now()
	if in.Time == 0 {
		in.Time = now
	}
	if in.Time < 0 || in.Time > now+300 {
		return PodView{}, false, errorf("InvalidValue", "time: want Unix seconds, not in the future")
	}
	sh, _, err := s.StopShipment(ctx, stop)
	if err != nil {
		return PodView{}, false, err
	}
	// Check and clean every image before storing any, a few at a time (a
	// hostile image may need hundreds of MB to decode within the limits).
	select {
	case s.podSlots <- struct{}{}:
		defer func() { <-s.podSlots }()
	case <-ctx.Done():
		return PodView{}, false, ctx.Err()
	}
	type part struct {
		data []byte
		kind pod.Kind
		key  *string
	}
	p := store.Pod{Stop: stop, Shipment: sh.ID, Name: in.Name, ClientID: in.ClientID, Time: in.Time, Created: now}
	parts := []part{{in.Photo, pod.Photo, &p.Photo}, {in.Signature, pod.Signature, &p.Signature}}
	for i := range parts {
		if len(parts[i].data) == 0 {
			continue
		}
		img, err := pod.CleanImage(parts[i].data, s.cfg.PodLimits, parts[i].kind)
		if err != nil {
			return PodView{}, false, podError(parts[i].kind, err)
		}
		parts[i].data = img.Data
	}
	for _, pt := range parts {
		if len(pt.data) == 0 {
			continue
		}
		key, err := s.cfg.Blobs.Put(ctx, pt.data)
		if err != nil {
			return PodView{}, false, err
		}
		*pt.key = key
	}
	if in.HasGeo {
		p.HasGeo = true
		p.Geo = [3]float64{in.Geo[0], in.Geo[1], in.Accuracy}
		p.Distance = distance(sh.Location, in.Geo)
		p.Far = p.Distance > s.cfg.PodRadius
	}
	var created bool
	_, err = s.st.Tx(ctx, func(tx *store.Tx) error {
		var err error
		created, err = tx.InsertPod(&p)
		return err
	})
	if err != nil {
		return PodView{}, false, err
	}
	v := PodView{ID: p.ID, Stop: stop, Photo: p.Photo, Signature: p.Signature, Far: p.Far}
	if p.HasGeo {
		d := math.Round(p.Distance)
		v.Distance = &d
	}
	return v, created, nil
}

// podError turns pod's errors into clear API errors.
func podError(k pod.Kind, err error) error {
	what := "photo"
	if k == pod.Signature {
		what = "signature"
	}
	switch {
	case errors.Is(err, pod.ErrTooLarge):
		return errorf("TooBig", "%s: %v", what, err)
	case errors.Is(err, pod.ErrUnsupportedType):
		return errorf("UnsupportedMediaType", "%s: %v", what, err)
	case errors.Is(err, pod.ErrDimensions), errors.Is(err, pod.ErrCorrupt):
		return errorf("InvalidValue", "%s: %v", what, err)
	}
	return err
}

// podData is what the delivered event tells of the stop's proof.
func podData(pods []store.Pod) map[string]any {
	if len(pods) == 0 {
		return nil
	}
	p := pods[len(pods)-1]
	d := map[string]any{"photo": p.Photo != "", "signature": p.Signature != "", "name": p.Name != ""}
	if p.HasGeo {
		d["far"] = p.Far
		d["distance"] = math.Round(p.Distance)
	}
	return d
}
