package web

import (
	"time"

	"github.com/lastmile/lastmile/engine/dispatch"
)

// DriverPage is the driver's app as rendered by the server: the sign-in
// form, or the day's stops in route order (the first paint; the app's
// script keeps it current from GET /v1/driver/route).
type DriverPage struct {
	Lang     string
	SignedIn bool
	// Error is the sign-in's failure.
	Error   string
	Vehicle string
	// CSRF is the session's token, which every change sends back.
	CSRF  string
	Stops []DriverStop
}

// DriverStop is one stop of the driver's day, times in the stop's time
// zone.
type DriverStop struct {
	ID           int64
	Position     int
	Tracking     string
	Status       string
	Name         string
	Address      string
	Instructions string
	Lon, Lat     float64
	ETA          string
	Window       string
	Messages     int
}

// NewDriverPage builds the signed-in app's page of route r at now.
func NewDriverPage(r dispatch.DriverRoute, csrf string, now time.Time) DriverPage {
	p := DriverPage{Lang: "en", SignedIn: true, Vehicle: r.Vehicle, CSRF: csrf}
	for _, st := range r.Stops {
		loc := location(st.TZ)
		ds := DriverStop{ID: st.ID, Position: st.Position, Tracking: st.Tracking, Status: st.Status, Name: st.Name,
			Address: st.Address, Instructions: st.Instructions, Lon: st.Location[0], Lat: st.Location[1], Messages: st.Messages}
		if st.ETA != nil {
			ds.ETA = time.Unix(st.ETA.Arrival, 0).In(loc).Format("15:04")
		}
		if w := st.TimeWindow; w != nil {
			ds.Window = time.Unix(w[0], 0).In(loc).Format("15:04") + "–" + time.Unix(w[1], 0).In(loc).Format("15:04")
		}
		p.Stops = append(p.Stops, ds)
	}
	return p
}
