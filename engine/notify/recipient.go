package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/lastmile/lastmile/engine/dispatch"
	"github.com/lastmile/lastmile/engine/notify/mail"
	"github.com/lastmile/lastmile/engine/notify/message"
	"github.com/lastmile/lastmile/engine/notify/sms"
	"github.com/lastmile/lastmile/engine/store"
)

// DefaultEmailEvents and DefaultSMSEvents are what a recipient is told of
// when the shipment names no preference: every state change by e-mail;
// by SMS, the ones worth a text (no countdown of stops, no delay notice
// that a later "arriving soon" makes moot).
var (
	DefaultEmailEvents = []string{dispatch.EventOutForDelivery, dispatch.EventArrivingSoon, dispatch.EventDelayed,
		dispatch.EventDelivered, dispatch.EventFailed}
	DefaultSMSEvents = []string{dispatch.EventOutForDelivery, dispatch.EventArrivingSoon, dispatch.EventDelivered, dispatch.EventFailed}
)

// Default night hours (recipient's local time) without SMS.
const (
	DefaultNightStart = 21
	DefaultNightEnd   = 8
)

// RecipientsConfig configures the recipient channels.
type RecipientsConfig struct {
	// Templates render the messages (message.Load of TemplatesDir); the
	// templates stored through the API are applied over them.
	Templates    *message.Templates
	TemplatesDir string
	// Mail sends e-mail (nil: no e-mail channel).
	Mail *mail.Sender
	// SMS sends text messages (nil: no SMS channel).
	SMS *sms.Sender
	// PublicURL is the engine's address as recipients reach it
	// ("https://track.example.com"), the base of tracking and
	// unsubscribe links.
	PublicURL string
	// Carrier is the sender's name in messages.
	Carrier string
	// EmailEvents and SMSEvents are the defaults (nil: DefaultEmailEvents,
	// DefaultSMSEvents).
	EmailEvents, SMSEvents []string
	// NightStart and NightEnd are the recipient's local hours without SMS
	// except delivered and failed (both 0: 21 to 8; equal: no night).
	NightStart, NightEnd int
}

// Recipients sends notifications to recipients by e-mail and SMS. Safe
// for concurrent use.
type Recipients struct {
	cfg   RecipientsConfig
	zones sync.Map // IANA name -> *time.Location
	tpl   templateSet
}

// NewRecipients checks cfg and builds the recipient channels.
func NewRecipients(cfg RecipientsConfig) (*Recipients, error) {
	if cfg.Templates == nil {
		return nil, errors.New("notify: recipient channels need templates")
	}
	if cfg.Mail == nil && cfg.SMS == nil {
		return nil, errors.New("notify: recipient channels need an SMTP relay or an SMS gateway")
	}
	if !strings.HasPrefix(cfg.PublicURL, "https://") && !strings.HasPrefix(cfg.PublicURL, "http://") {
		return nil, fmt.Errorf("notify: public URL %q: want http(s)://host, the address recipients open links at", cfg.PublicURL)
	}
	cfg.PublicURL = strings.TrimRight(cfg.PublicURL, "/")
	if cfg.EmailEvents == nil {
		cfg.EmailEvents = DefaultEmailEvents
	}
	if cfg.SMSEvents == nil {
		cfg.SMSEvents = DefaultSMSEvents
	}
	if cfg.NightStart == 0 && cfg.NightEnd == 0 {
		cfg.NightStart, cfg.NightEnd = DefaultNightStart, DefaultNightEnd
	}
	if cfg.NightStart < 0 || cfg.NightStart > 23 || cfg.NightEnd < 0 || cfg.NightEnd > 23 {
		return nil, fmt.Errorf("notify: night hours %d-%d: want hours 0-23", cfg.NightStart, cfg.NightEnd)
	}
	for _, evs := range [][]string{cfg.EmailEvents, cfg.SMSEvents} {
		for _, e := range evs {
			if !slices.Contains(dispatch.RecipientEventTypes, e) {
				return nil, fmt.Errorf("notify: %q is not an event recipients can be told of (%s)", e, strings.Join(dispatch.RecipientEventTypes, ", "))
			}
		}
	}
	return &Recipients{cfg: cfg, tpl: templateSet{version: -1}}, nil
}

// channels lists the configured channels.
func (r *Recipients) channels() []string {
	var out []string
	if r.cfg.Mail != nil {
		out = append(out, store.ChannelEmail)
	}
	if r.cfg.SMS != nil {
		out = append(out, store.ChannelSMS)
	}
	return out
}

// messageIDDomain is the right side of the e-mails' Message-IDs: the
// public host.
func (r *Recipients) messageIDDomain() string {
	h := strings.TrimPrefix(strings.TrimPrefix(r.cfg.PublicURL, "https://"), "http://")
	if i := strings.IndexAny(h, ":/"); i >= 0 {
		h = h[:i]
	}
	if h == "" {
		return "lastmile.invalid"
	}
	return h
}

// wants reports whether a shipment with stored preferences prefs takes
// event on channel.
func (r *Recipients) wants(channel, prefs, event string) bool {
	if !slices.Contains(dispatch.RecipientEventTypes, event) {
		return false
	}
	p, err := dispatch.DecodeNotify(prefs)
	if err != nil {
		p = dispatch.NotifyPrefs{} // unreadable: the defaults
	}
	evs, def := p.Email, r.cfg.EmailEvents
	if channel == store.ChannelSMS {
		evs, def = p.SMS, r.cfg.SMSEvents
	}
	if evs == nil {
		return slices.Contains(def, event)
	}
	return slices.Contains(*evs, event)
}

// zone returns the location named tz (UTC when empty or unknown).
func (r *Recipients) zone(tz string) *time.Location {
	if tz == "" {
		return time.UTC
	}
	if l, ok := r.zones.Load(tz); ok {
		return l.(*time.Location)
	}
	l, err := time.LoadLocation(tz)
	if err != nil {
		l = time.UTC
	}
	r.zones.Store(tz, l)
	return l
}

// night reports whether t is in the night hours at loc.
func (r *Recipients) night(t time.Time, loc *time.Location) bool {
	h, a, b := t.In(loc).Hour(), r.cfg.NightStart, r.cfg.NightEnd
	switch {
	case a == b:
		return false
	case a < b:
		return h >= a && h < b
	default:
		return h >= a || h < b
	}
}

// timely events lose their point once the parcel is delivered or the
// attempt failed: a backlog sent after an outage skips them.
var timely = []string{dispatch.EventOutForDelivery, dispatch.EventStopsAway, dispatch.EventArrivingSoon, dispatch.EventDelayed}

// UnsubscribeURL is where a recipient of a shipment (by its tracking
// token) stops notifications on channel.
func (r *Recipients) UnsubscribeURL(token, channel string) string {
	return r.cfg.PublicURL + "/track/" + token + "/unsubscribe?channel=" + channel
}

// skip finishes a delivery with nothing sent.
func skip(d store.Delivery, why string) store.Outcome {
	return store.Outcome{ID: d.ID, State: store.DeliverySkipped, Error: why}
}

// sendRecipient makes one attempt at an e-mail or SMS to a shipment's
// recipient.
func (s *Service) sendRecipient(ctx context.Context, d store.Delivery, e store.Event) store.Outcome {
	r := s.cfg.Recipients
	sh, err := s.st.ShipmentByTracking(ctx, e.Tracking)
	if errors.Is(err, store.ErrNotFound) {
		return skip(d, "shipment gone")
	}
	if err != nil {
		return s.failure(d, 0, "reading the shipment: "+err.Error(), 0, int64(s.cfg.RecipientAttempts))
	}
	if sh.Erased != 0 {
		return skip(d, "personal data erased")
	}
	if slices.Contains(timely, e.Type) && (sh.Status == dispatch.StatusDelivered || sh.Status == dispatch.StatusFailed) {
		return skip(d, "stale: the shipment is "+sh.Status)
	}
	var addr string
	switch d.Channel {
	case store.ChannelEmail:
		addr = sh.Recipient.Email
	case store.ChannelSMS:
		addr, _ = sms.NormalizeNumber(sh.Recipient.Phone)
	}
	if addr == "" {
		return skip(d, "no "+d.Channel+" address")
	}
	out, err := s.st.OptedOut(ctx, d.Channel, s.st.Ring().MACs([]byte(strings.ToLower(addr))))
	if err != nil {
		return s.failure(d, 0, err.Error(), 0, int64(s.cfg.RecipientAttempts))
	}
	if out {
		return skip(d, "recipient opted out")
	}
	loc := r.zone(sh.TZ)
	// The night is judged at the state change (the event's time): a
	// backlog sent later has dropped its timely events above.
	if d.Channel == store.ChannelSMS && r.night(time.Unix(e.Time, 0), loc) && e.Type != dispatch.EventDelivered && e.Type != dispatch.EventFailed {
		return skip(d, "night hours")
	}
	in := message.Input{Event: e.Type, Time: e.Time, Tracking: sh.Tracking, Name: sh.Recipient.Name, Language: sh.Language,
		Location: loc, TimeWindow: sh.Window, TrackingURL: r.cfg.PublicURL + "/track/" + sh.Token,
		UnsubscribeURL: r.UnsubscribeURL(sh.Token, d.Channel), Carrier: r.cfg.Carrier}
	var data struct {
		ETA    *message.ETA `json:"eta"`
		Stops  int          `json:"stops"`
		Reason string       `json:"reason"`
	}
	if e.Data != "" {
		_ = json.Unmarshal([]byte(e.Data), &data)
	}
	in.ETA, in.Stops, in.Reason = data.ETA, data.Stops, data.Reason
	var sendErr error
	switch d.Channel {
	case store.ChannelEmail:
		m, err := s.templates(ctx).Email(in)
		if errors.Is(err, message.ErrNoTemplate) {
			return skip(d, "no template")
		}
		if err != nil {
			return store.Outcome{ID: d.ID, State: store.DeliveryDead, Error: "template: " + err.Error(), Counted: true}
		}
		sendErr = r.cfg.Mail.Send(ctx, mail.Message{To: addr, Subject: m.Subject, Text: m.Text, HTML: m.HTML,
			MessageID: e.ID + "@" + r.messageIDDomain(), ListUnsubscribe: in.UnsubscribeURL,
			OneClick: strings.HasPrefix(in.UnsubscribeURL, "https://")})
	case store.ChannelSMS:
		body, err := s.templates(ctx).SMS(in)
		if errors.Is(err, message.ErrNoTemplate) {
			return skip(d, "no template")
		}
		if err != nil {
			return store.Outcome{ID: d.ID, State: store.DeliveryDead, Error: "template: " + err.Error(), Counted: true}
		}
		_, sendErr = r.cfg.SMS.Send(ctx, addr, body)
	}
	if sendErr == nil {
		return store.Outcome{ID: d.ID, State: store.DeliverySent, Counted: true, NextAt: d.NextAt}
	}
	if ctx.Err() != nil {
		return store.Outcome{ID: d.ID, State: store.DeliveryPending, NextAt: d.NextAt}
	}
	permanent := (d.Channel == store.ChannelEmail && mail.Permanent(sendErr)) || (d.Channel == store.ChannelSMS && sms.Permanent(sendErr))
	if permanent {
		return store.Outcome{ID: d.ID, State: store.DeliveryDead, Error: clip(sendErr.Error(), 300), Counted: true}
	}
	var ra time.Duration
	var se *sms.Error
	if errors.As(sendErr, &se) {
		ra = se.RetryAfter
	}
	return s.failure(d, 0, sendErr.Error(), ra, int64(s.cfg.RecipientAttempts))
}

// Unsubscribe records that the recipient of the shipment with that
// tracking token wants nothing more on channel (an unsubscribe link).
// Unknown tokens are NotFound, like the tracking page's.
func (s *Service) Unsubscribe(ctx context.Context, token, channel string) error {
	if channel != store.ChannelEmail && channel != store.ChannelSMS {
		return errorf("InvalidValue", "channel: want email or sms")
	}
	sh, err := s.st.ShipmentByToken(ctx, token)
	if errors.Is(err, store.ErrNotFound) {
		return errorf("NotFound", "not found")
	}
	if err != nil {
		return err
	}
	addr := sh.Recipient.Email
	if channel == store.ChannelSMS {
		addr, _ = sms.NormalizeNumber(sh.Recipient.Phone)
	}
	if addr == "" {
		return nil
	}
	return s.st.AddOptOut(ctx, channel, s.st.Ring().MAC([]byte(strings.ToLower(addr))), s.cfg.Now().Unix())
}
