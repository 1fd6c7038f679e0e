package dispatch

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"

	"github.com/lastmile/lastmile/engine/store"
)

// EngineEventTypes are the event types the engine emits itself.
var EngineEventTypes = []string{EventOutForDelivery, EventStopsAway, EventArrivingSoon, EventETAChanged, EventDelayed,
	EventArrived, EventDelivered, EventFailed, EventRerouted}

// RecipientEventTypes are the events a recipient may be notified of by
// e-mail or SMS; the others (arrived, eta_changed, rerouted and the
// milestones before the last mile) are for the business's systems.
var RecipientEventTypes = []string{EventOutForDelivery, EventStopsAway, EventArrivingSoon, EventDelayed, EventDelivered, EventFailed}

// Channels a recipient can be notified on.
const (
	ChannelEmail = store.ChannelEmail
	ChannelSMS   = store.ChannelSMS
)

// NotifyPrefs are a recipient's notification preferences: per channel,
// the events to be told of. A channel left out (nil) takes the carrier's
// defaults; an empty list turns the channel off for this shipment.
type NotifyPrefs struct {
	Email *[]string `json:"email,omitempty"`
	SMS   *[]string `json:"sms,omitempty"`
}

// validate checks that every event named is one a recipient can get.
func (p *NotifyPrefs) validate() error {
	for _, ch := range []struct {
		name string
		evs  *[]string
	}{{"email", p.Email}, {"sms", p.SMS}} {
		if ch.evs == nil {
			continue
		}
		if len(*ch.evs) > len(RecipientEventTypes) {
			return errorf("InvalidValue", "notify.%s: at most %d events", ch.name, len(RecipientEventTypes))
		}
		for _, e := range *ch.evs {
			if !slices.Contains(RecipientEventTypes, e) {
				return errorf("InvalidValue", "notify.%s: %q is not one of %s", ch.name, clipText(e, 40), strings.Join(RecipientEventTypes, ", "))
			}
		}
	}
	return nil
}

func clipText(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

// encodeNotify is the stored form of p ("" for all defaults).
func encodeNotify(p *NotifyPrefs) string {
	if p == nil || (p.Email == nil && p.SMS == nil) {
		return ""
	}
	b, _ := json.Marshal(p)
	return string(b)
}

// DecodeNotify parses the stored form of a shipment's preferences.
func DecodeNotify(s string) (NotifyPrefs, error) {
	var p NotifyPrefs
	if s == "" {
		return p, nil
	}
	err := json.Unmarshal([]byte(s), &p)
	return p, err
}

// SetNotify replaces a shipment's notification preferences; later events
// follow them (notifications already queued are sent).
func (s *Service) SetNotify(ctx context.Context, tracking string, p NotifyPrefs) (NotifyPrefs, error) {
	if err := p.validate(); err != nil {
		return NotifyPrefs{}, err
	}
	_, err := s.st.Tx(ctx, func(tx *store.Tx) error {
		sh, err := tx.LockShipment(tracking)
		if err != nil {
			return err
		}
		return tx.SetShipmentNotify(sh.ID, encodeNotify(&p), s.now())
	})
	if errors.Is(err, store.ErrNotFound) {
		return NotifyPrefs{}, errorf("NotFound", "shipment %q: unknown", tracking)
	}
	return p, err
}
