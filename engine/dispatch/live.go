package dispatch

import (
	"context"
	"time"
)

// Risks of an open stop in the dispatcher's live view.
const (
	RiskOnTime  = "on_time"
	RiskAtRisk  = "at_risk"
	RiskLate    = "late"
	RiskUnknown = "unknown"
)

// LiveView is every van of the current plans for the dispatcher's live
// view (GET /v1/live).
type LiveView struct {
	Time     int64         `json:"time"`
	Vehicles []LiveVehicle `json:"vehicles"`
}

// LiveVehicle is one van: its latest position (null before the first
// ping), the counts of its stops (done, in total, open stops late or at
// risk) and its open stops in order.
type LiveVehicle struct {
	ID       string      `json:"id"`
	Driver   string      `json:"driver,omitempty"`
	Route    int64       `json:"route"`
	Status   string      `json:"status"`
	Location *[2]float64 `json:"location"`
	Time     *int64      `json:"time"`
	Done     int         `json:"done"`
	Total    int         `json:"total"`
	Late     int         `json:"late"`
	AtRisk   int         `json:"at_risk"`
	Stops    []LiveStop  `json:"stops"`
}

// LiveStop is an open stop with its risk of lateness: late when the ETA
// is past the window's end, at_risk when only its P90 is, on_time
// otherwise (or without a window), unknown without an ETA.
type LiveStop struct {
	ID         int64      `json:"id"`
	Tracking   string     `json:"tracking"`
	Position   int64      `json:"position"`
	Status     string     `json:"status"`
	Location   [2]float64 `json:"location"`
	TimeWindow *[2]int64  `json:"time_window"`
	ETA        *ETA       `json:"eta"`
	Risk       string     `json:"risk"`
	// TimeZone is the IANA zone of the shipment ("" when it has none):
	// the view shows the stop's times in it.
	TimeZone string `json:"time_zone,omitempty"`
}

// risk classifies an open stop.
func risk(st StopView) string {
	if st.ETA == nil {
		if st.ArrivedAt > 0 && st.TimeWindow != nil && st.ArrivedAt > st.TimeWindow[1] {
			return RiskLate
		}
		if st.ArrivedAt > 0 {
			return RiskOnTime
		}
		return RiskUnknown
	}
	if st.TimeWindow == nil || st.TimeWindow[1] == 0 {
		return RiskOnTime
	}
	switch end := st.TimeWindow[1]; {
	case st.ETA.Arrival > end:
		return RiskLate
	case st.ETA.P90 > end:
		return RiskAtRisk
	}
	return RiskOnTime
}

// Live returns the vans of the current plans with their open stops.
func (s *Service) Live(ctx context.Context) (LiveView, error) {
	routes, err := s.st.LiveRoutes(ctx)
	if err != nil {
		return LiveView{}, err
	}
	v := LiveView{Time: time.Now().Unix(), Vehicles: make([]LiveVehicle, 0, len(routes))}
	if s.cfg.Now != nil {
		v.Time = s.cfg.Now().Unix()
	}
	for _, lr := range routes {
		lv := LiveVehicle{ID: lr.Vehicle.ID, Driver: lr.Route.Driver, Route: lr.Route.ID, Status: lr.Route.Status, Stops: []LiveStop{}}
		if lr.Vehicle.LastMS > 0 {
			ll, t := [2]float64{lr.Vehicle.Lon, lr.Vehicle.Lat}, lr.Vehicle.LastMS/1000
			lv.Location, lv.Time = &ll, &t
		}
		for _, st := range lr.Stops {
			if st.Status == StatusCancelled || st.Status == StatusHandedOver {
				continue
			}
			lv.Total++
			if !open(st.Status) {
				lv.Done++
				continue
			}
			sv := stopView(st, lr.Vehicle.ID)
			ls := LiveStop{ID: st.ID, Tracking: st.Tracking, Position: st.Position, Status: st.Status, Location: st.Location,
				TimeWindow: sv.TimeWindow, ETA: sv.ETA, Risk: risk(sv), TimeZone: st.TZ}
			switch ls.Risk {
			case RiskLate:
				lv.Late++
			case RiskAtRisk:
				lv.AtRisk++
			}
			lv.Stops = append(lv.Stops, ls)
		}
		v.Vehicles = append(v.Vehicles, lv)
	}
	return v, nil
}
