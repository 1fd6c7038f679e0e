package web

import (
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/lastmile/lastmile/engine/dispatch"
	"github.com/lastmile/lastmile/engine/notify/message"
)

// TrackPage is the recipient's tracking page as rendered by the server:
// every text already in the recipient's language and time zone, so the
// first paint is complete before any script runs. The script then keeps
// it current from the same view (GET /track/{token}/view.json or the live
// stream).
type TrackPage struct {
	Lang     string
	Token    string
	Tracking string
	Status   string
	// Headline is the status in words; Detail the ETA window or the
	// outcome; Stops the stops before this one in words.
	Headline, Detail, Stops, Promised string
	Address, Instructions             string
	Timeline                          []TimelineItem
	Messages                          []MessageItem
	Offers                            []OfferItem
	WindowAnswer                      string
	WindowDeclined                    bool
	Proof                             *dispatch.ProofView
	ProofName                         string
	Rating                            string
	Open, Delivered, Failed           bool
	// Map: the recipient's stop and, when it may be shown, the van.
	StopLon, StopLat string
	VanLon, VanLat   string
	// Notice is the answer to the form just sent ("saved"), Error its
	// failure.
	Notice, Error string
	// FormID is a fresh idempotency key for the message form, so that a
	// form sent twice (a double tap, a reload) posts one message.
	FormID string
	// StarValues are the ratings offered.
	StarValues []int
}

// TimelineItem is one line of the timeline: what happened and when
// (local time).
type TimelineItem struct {
	Label string `json:"label"`
	Time  string `json:"time"`
	Type  string `json:"type"`
}

// MessageItem is one message of the thread.
type MessageItem struct {
	From string `json:"from"`
	Who  string `json:"who"`
	Text string `json:"text"`
	Time string `json:"time"`
}

// OfferItem is a window on offer: the form value and its label.
type OfferItem struct {
	Value, Label string
}

// Stars are the rating values offered, worst first.
var Stars = []int{1, 2, 3, 4, 5}

// zones caches loaded time zones by name (time.LoadLocation reads the
// zone database at every call; pages ask for a zone at every update). It
// holds immutable values, at most one per IANA zone.
var zones sync.Map

// location returns the time zone tz, UTC when unknown.
func location(tz string) *time.Location {
	if tz == "" {
		return time.UTC
	}
	if l, ok := zones.Load(tz); ok {
		return l.(*time.Location)
	}
	loc, err := time.LoadLocation(tz)
	if err != nil {
		return time.UTC // not kept: the cache holds real zones only
	}
	zones.Store(tz, loc)
	return loc
}

func coord(v float64) string { return strconv.FormatFloat(v, 'f', 6, 64) }

// NewTrackPage builds the page of view v at now for the link token.
func NewTrackPage(v dispatch.PublicView, token string, now time.Time) TrackPage {
	lang := message.Lang(v.Language)
	loc := location(v.TZ)
	tf := func(key string, args ...any) string {
		if len(args) == 0 {
			return text(lang, key)
		}
		return fmt.Sprintf(text(lang, key), args...)
	}
	clock := func(t int64) string { return time.Unix(t, 0).In(loc).Format("15:04") }
	p := TrackPage{Lang: lang, Token: token, Tracking: v.Tracking, Status: v.Status, Address: v.Address,
		Instructions: v.Instructions, Proof: v.Proof,
		Delivered: v.Status == dispatch.StatusDelivered, Failed: v.Status == dispatch.StatusFailed,
		StopLon: coord(v.Location[0]), StopLat: coord(v.Location[1]), StarValues: Stars}
	p.Open = !p.Delivered && v.Status != dispatch.StatusCancelled
	p.Headline = tf("status." + v.Status)
	if p.Headline == "status."+v.Status {
		p.Headline = tf("title")
	}
	if e := v.ETA; e != nil && p.Open {
		lo, hi := e.P10, e.P90
		if lo == 0 || hi == 0 {
			lo, hi = e.Arrival, e.Arrival
		}
		w := message.WindowIn(lang, loc, now, lo, hi)
		if w.SameDay {
			p.Detail = tf("arriving", w.From, w.To)
		} else {
			p.Detail = tf("arriving.day", w.On, w.From, w.To)
		}
	}
	if tw := v.TimeWindow; tw != nil && p.Open {
		w := message.WindowIn(lang, loc, now, tw[0], tw[1])
		if w.SameDay {
			p.Promised = tf("promised", w.From, w.To)
		} else {
			p.Promised = tf("promised.day", w.Date, w.From, w.To)
		}
	}
	if n := v.StopsBefore; n != nil && p.Open {
		switch *n {
		case 0:
			p.Stops = tf("stops.next")
		case 1:
			p.Stops = tf("stops.one")
		default:
			p.Stops = tf("stops.before", *n)
		}
	}
	if p.Delivered && v.DoneAt > 0 {
		w := message.WindowIn(lang, loc, now, v.DoneAt, v.DoneAt)
		if w.SameDay {
			p.Detail = tf("delivered.at", clock(v.DoneAt))
		} else {
			p.Detail = tf("delivered.on", w.On, clock(v.DoneAt))
		}
	}
	if p.Failed {
		p.Detail = tf("failed.because", message.ReasonText(lang, v.Reason))
	}
	if v.Van != nil {
		p.VanLon, p.VanLat = coord(v.Van.Location[0]), coord(v.Van.Location[1])
	}
	for _, e := range v.Events {
		label := tf("status." + e.Type)
		if label == "status."+e.Type {
			label = tf("event." + e.Type)
		}
		if e.Type == "stops_away" && e.Stops != nil {
			switch *e.Stops {
			case 0:
				label = tf("stops.next")
			case 1:
				label = tf("event.stops_away.one")
			default:
				label = tf("event.stops_away", *e.Stops)
			}
		}
		when := time.Unix(e.Time, 0).In(loc)
		ts := when.Format("15:04")
		if y, m, d := when.Date(); y != now.In(loc).Year() || m != now.In(loc).Month() || d != now.In(loc).Day() {
			ts = message.WindowIn(lang, loc, now, e.Time, e.Time).Short + " " + ts
		}
		p.Timeline = append(p.Timeline, TimelineItem{Label: label, Time: ts, Type: e.Type})
	}
	for _, m := range v.Messages {
		p.Messages = append(p.Messages, MessageItem{From: m.From, Who: tf("from." + m.From), Text: m.Text, Time: clock(m.Time)})
	}
	for _, o := range v.Offers {
		w := message.WindowIn(lang, loc, now, o[0], o[1])
		label := w.From + "–" + w.To
		if !w.SameDay {
			label = w.Short + " " + label
		}
		p.Offers = append(p.Offers, OfferItem{Value: strconv.FormatInt(o[0], 10) + "-" + strconv.FormatInt(o[1], 10), Label: label})
	}
	if r := v.WindowRequest; r != nil {
		w := message.WindowIn(lang, loc, now, r.TimeWindow[0], r.TimeWindow[1])
		label := w.Short + " " + w.From + "–" + w.To
		if r.State == dispatch.WindowAccepted {
			p.WindowAnswer = tf("window.accepted", label)
		} else {
			p.WindowAnswer, p.WindowDeclined = tf("window.declined", label, r.Reason), true
		}
	}
	if v.Proof != nil && v.Proof.Name != "" {
		p.ProofName = tf("proof.name", v.Proof.Name)
	}
	if v.Rating != nil {
		p.Rating = tf("rate.thanks", v.Rating.Stars)
	}
	return p
}

// NotFoundPage is the one body of every unknown, expired, revoked or
// malformed link, in English (nothing tells which it was).
func (s *Site) NotFoundPage() TrackPage {
	return TrackPage{Lang: "en"}
}

// T returns a word of the page in its language.
func (p TrackPage) T(key string) string { return text(p.Lang, key) }

// LiveUpdate is what the tracking page's script receives (live stream
// and polling): the view and its texts in the recipient's language, so
// the page words every state as the server-rendered page does.
type LiveUpdate struct {
	Status   string              `json:"status"`
	Headline string              `json:"headline"`
	Detail   string              `json:"detail"`
	Stops    string              `json:"stops"`
	Promised string              `json:"promised"`
	Timeline []TimelineItem      `json:"timeline"`
	Messages []MessageItem       `json:"messages"`
	View     dispatch.PublicView `json:"view"`
}

// NewLiveUpdate returns the update for view v at now.
func NewLiveUpdate(v dispatch.PublicView, now time.Time) LiveUpdate {
	p := NewTrackPage(v, "", now)
	u := LiveUpdate{Status: v.Status, Headline: p.Headline, Detail: p.Detail, Stops: p.Stops, Promised: p.Promised,
		Timeline: p.Timeline, Messages: p.Messages, View: v}
	if u.Timeline == nil {
		u.Timeline = []TimelineItem{}
	}
	if u.Messages == nil {
		u.Messages = []MessageItem{}
	}
	return u
}
