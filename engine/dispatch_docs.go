package engine

import (
	"github.com/lastmile/lastmile/engine/dispatch"
)

// The OpenAPI operations and schemas of the dispatch endpoints.

func pathParam(name, desc string, example any) apiParam {
	return apiParam{Name: name, In: "path", Required: true, Description: desc, Schema: map[string]any{"type": "string"}, Example: example}
}

var (
	trackingParam = pathParam("tracking", "The shipment's tracking number.", "T1")
	idParam       = func(what string) apiParam { return pathParam("id", "The "+what+"'s id.", "1") }
	authErrors    = []int{401, 403}
)

var keyCreateDoc = &apiOperation{
	ID: "createKey", Summary: "Create an API key (admin)", Tags: []string{"access"},
	Description: "Scopes: admin (everything), dispatcher (shipments, plans, statuses, reads), driver (bound to one vehicle: its pings " +
		"and its stops' statuses), readonly. The key is shown once; the server keeps its SHA-256 only.",
	Body: "KeyInput", BodyExample: map[string]any{"scope": "driver", "vehicle": "van-1"},
	Created: &apiContent{Description: "The key (shown once).", MediaType: "application/json", Ref: "KeyCreated"},
	Errors:  append([]int{400}, authErrors...),
}

var keyListDoc = &apiOperation{
	ID: "listKeys", Summary: "List API keys (admin; never the secrets)", Tags: []string{"access"},
	OK:     apiContent{Description: "The keys, oldest first.", MediaType: "application/json", Ref: "KeyList"},
	Errors: authErrors,
}

var keyRevokeDoc = &apiOperation{
	ID: "revokeKey", Summary: "Revoke an API key (admin)", Tags: []string{"access"},
	Description: "The key stops working at once on this server, within 2 s on other replicas.",
	Params:      []apiParam{idParam("key")},
	OK: apiContent{Description: "Revoked.", MediaType: "application/json", Schema: object([]string{"id", "revoked"}, map[string]any{
		"id": map[string]any{"type": "string"}, "revoked": map[string]any{"const": true}})},
	Errors: append([]int{404}, authErrors...),
}

var shipmentCreateDoc = &apiOperation{
	ID: "createShipment", Summary: "Create a shipment", Tags: []string{"dispatch"},
	Description: "Recipient name, phone, e-mail, address and instructions are encrypted at rest (AES-256-GCM) and erased after the " +
		"retention period. 409 Conflict when the tracking number exists.",
	Body: "ShipmentInput",
	BodyExample: map[string]any{"tracking": "T1", "recipient": map[string]any{"name": "Ana Silva", "phone": "+351912345678",
		"email": "ana@example.com", "language": "pt"}, "location": []float64{-8.6110, 41.1496}, "address": "Rua das Flores 12, Porto",
		"time_window": []int64{1767603600, 1767610800}, "service": 120},
	Created: &apiContent{Description: "The shipment and its public tracking link.", MediaType: "application/json", Ref: "ShipmentCreated"},
	Errors:  append([]int{400, 409, 413}, authErrors...),
}

var shipmentGetDoc = &apiOperation{
	ID: "getShipment", Summary: "A shipment's status, ETA and timeline", Tags: []string{"dispatch"},
	Params: []apiParam{trackingParam},
	OK:     apiContent{Description: "The shipment.", MediaType: "application/json", Ref: "Shipment"},
	Errors: append([]int{404}, authErrors...),
}

var shipmentEventDoc = &apiOperation{
	ID: "addShipmentEvent", Summary: "Add a milestone to a shipment's timeline", Tags: []string{"dispatch"},
	Description: "Milestones before the last mile from the business's systems (types: shipped, at_facility, in_transit, at_depot, " +
		"exception). Idempotent by the caller's id: the same id again answers 200 with the event recorded the first time; the same " +
		"id with another body is 409 Conflict.",
	Params: []apiParam{trackingParam},
	Body:   "CallerEventInput", BodyExample: map[string]any{"id": "wms-81723", "type": "shipped", "time": 1767590000},
	Created: &apiContent{Description: "Recorded.", MediaType: "application/json", Ref: "Event"},
	OK:      apiContent{Description: "Recorded before (same id).", MediaType: "application/json", Ref: "Event"},
	Errors:  append([]int{400, 404, 409}, authErrors...),
}

var planCreateDoc = &apiOperation{
	ID: "createPlan", Summary: "Plan a delivery day: routes for vans, a stop per shipment", Tags: []string{"dispatch"},
	Description: "vehicles are VROOM vehicle objects (start, end, time_window, breaks, capacity as [parcels, kg, litres], skills, ...) " +
		"each naming the vehicle as pings and driver keys do (vehicle) and optionally its driver. Without routes the engine solves " +
		"the shipments onto them on the live road graph (options.time seconds, default 2; or options.iterations per solver worker, the same plan on every run); with routes (vehicle and shipments in " +
		"order) the plan is taken as sequenced. A vehicle whose route has not left gets the new one; one out for delivery with " +
		"open stops is 409 Conflict. A failed shipment planned again is a new attempt.",
	Body: "PlanInput",
	BodyExample: map[string]any{"vehicles": []any{map[string]any{"id": 1, "vehicle": "van-1", "driver": "Rui",
		"start": []float64{-8.6, 41.15}, "end": []float64{-8.6, 41.15}, "time_window": []int64{1767600000, 1767636000}}},
		"shipments": []string{"T1"}},
	Created: &apiContent{Description: "The plan.", MediaType: "application/json", Ref: "Plan"},
	Errors:  append([]int{400, 404, 409, 413, 503}, authErrors...),
}

var stopStatusDoc = &apiOperation{
	ID: "setStopStatus", Summary: "The driver's update of a stop: arrived, delivered, failed, cancelled", Tags: []string{"dispatch"},
	Description: "A driver key may update the stops of its own vehicle (not cancel them). failed needs a reason: not_home, refused, " +
		"address_not_found, access, damaged, other. time (Unix seconds) defaults to now, for a phone that was offline. The same " +
		"status again changes nothing; another change of an ended stop is 409 Conflict.",
	Params: []apiParam{idParam("stop")},
	Body:   "StatusInput", BodyExample: map[string]any{"status": "failed", "reason": "not_home"},
	OK:     apiContent{Description: "The stop.", MediaType: "application/json", Ref: "Stop"},
	Errors: append([]int{400, 404, 409}, authErrors...),
}

var vehicleGetDoc = &apiOperation{
	ID: "getVehicle", Summary: "A vehicle's position, route and stops with ETAs", Tags: []string{"dispatch"},
	Params: []apiParam{pathParam("id", "The vehicle's name.", "van-1")},
	OK:     apiContent{Description: "The vehicle.", MediaType: "application/json", Ref: "Vehicle"},
	Errors: append([]int{404}, authErrors...),
}

var routeAddStopDoc = &apiOperation{
	ID: "addRouteStop", Summary: "Add a shipment to a route that has not ended", Tags: []string{"dispatch"},
	Description: "A new attempt of the shipment at position (among the route's open stops, 0 first; default last). On a route out " +
		"for delivery the stop is out for delivery at once (out_for_delivery fires), the stops behind it get rerouted, and the " +
		"ETAs follow at the van's next ping. 409 Conflict when the shipment is delivered or on another open stop, or the route " +
		"ended or is not its vehicle's current one.",
	Params:      []apiParam{idParam("route")},
	Body:        "AddStopInput",
	BodyExample: map[string]any{"tracking": "T1", "position": 0},
	Created:     &apiContent{Description: "The new stop.", MediaType: "application/json", Ref: "Stop"},
	Errors:      append([]int{400, 404, 409}, authErrors...),
}

var shipmentWindowDoc = &apiOperation{
	ID: "changeShipmentWindow", Summary: "Move a shipment's promised window", Tags: []string{"dispatch"},
	Description: "The recipient chose another slot: the stop is predicted again at the van's next ping through the same rules " +
		"(re-routing when the van cannot keep it; delayed re-armed for the new window).",
	Params: []apiParam{trackingParam},
	Body:   "WindowInput", BodyExample: map[string]any{"time_window": []int64{1767610800, 1767618000}},
	OK:     apiContent{Description: "The shipment.", MediaType: "application/json", Ref: "Shipment"},
	Errors: append([]int{400, 404, 409}, authErrors...),
}

var eventsDoc = &apiOperation{
	ID: "listEvents", Summary: "The event log after a cursor", Tags: []string{"dispatch"},
	Description: "Every event of every shipment in commit order: a reader that asks again from next never misses one. A driver key " +
		"reads the events of its own vehicle's shipments only.",
	Params: []apiParam{
		{Name: "after", In: "query", Description: "Cursor: events after it (default 0).", Schema: map[string]any{"type": "integer", "minimum": 0}},
		{Name: "limit", In: "query", Description: "At most this many (1-1000, default 100).", Schema: map[string]any{"type": "integer", "minimum": 1, "maximum": 1000}},
	},
	OK:     apiContent{Description: "A page of events.", MediaType: "application/json", Ref: "EventsPage"},
	Errors: append([]int{400}, authErrors...),
}

// dispatchSchemas adds the dispatch bodies' schemas.
func dispatchSchemas(m map[string]any) {
	str := map[string]any{"type": "string"}
	integer := map[string]any{"type": "integer"}
	nullable := func(s any) map[string]any { return map[string]any{"oneOf": []any{s, map[string]any{"type": "null"}}} }
	window := map[string]any{"type": "array", "items": integer, "minItems": 2, "maxItems": 2, "description": "[start, end] Unix seconds."}
	scopes := make([]any, len(dispatch.Scopes))
	for i, s := range dispatch.Scopes {
		scopes[i] = s
	}
	eta := object([]string{"arrival", "p10", "p90"}, map[string]any{
		"arrival": integer, "p10": integer, "p90": integer})
	m["ETA"] = eta
	m["KeyInput"] = object([]string{"scope"}, map[string]any{
		"scope": map[string]any{"enum": scopes}, "vehicle": str, "name": str})
	m["KeyCreated"] = object([]string{"id", "key", "scope"}, map[string]any{
		"id": str, "key": map[string]any{"type": "string", "pattern": "^lm_[A-Za-z0-9_-]{43}$"}, "scope": str, "vehicle": str})
	m["KeyList"] = object([]string{"keys"}, map[string]any{"keys": arrayOf(object([]string{"id", "scope", "created"}, map[string]any{
		"id": str, "scope": str, "vehicle": str, "name": str, "created": integer, "revoked": integer}))})
	m["ShipmentInput"] = object([]string{"tracking", "recipient", "location"}, map[string]any{
		"tracking": map[string]any{"type": "string", "pattern": "^[A-Za-z0-9._-]{1,64}$"},
		"recipient": object([]string{"name"}, map[string]any{"name": str, "phone": str, "email": str,
			"language": map[string]any{"type": "string", "description": "BCP 47 tag, e.g. pt or en-GB."}}),
		"location": ref("LonLat"), "address": str, "instructions": str, "time_window": window,
		"service":   map[string]any{"type": "number", "description": "Seconds at the stop (default 120)."},
		"parcels":   object([]string{}, map[string]any{"count": integer, "weight": map[string]any{"type": "number"}, "dimensions": arrayOf(arrayOf(map[string]any{"type": "number"}))}),
		"time_zone": map[string]any{"type": "string", "description": "IANA zone of the recipient, e.g. Europe/Lisbon."},
		"notify":    ref("NotifyPrefs"),
	})
	m["ShipmentCreated"] = object([]string{"tracking", "tracking_url"}, map[string]any{"tracking": str,
		"tracking_url": map[string]any{"type": "string", "description": "/track/TOKEN: the recipient's link (128-bit random token)."}})
	m["Event"] = object([]string{"id", "cursor", "tracking", "seq", "type", "time", "data"}, map[string]any{
		"id": str, "cursor": integer, "tracking": str,
		"seq":  map[string]any{"type": "integer", "minimum": 1, "description": "Gapless per shipment from 1."},
		"type": str, "time": integer, "data": map[string]any{"type": "object"},
	})
	m["CallerEventInput"] = object([]string{"id", "type", "time"}, map[string]any{
		"id": str, "type": map[string]any{"enum": []any{"shipped", "at_facility", "in_transit", "at_depot", "exception"}},
		"time": integer, "location": ref("LonLat"), "note": str})
	m["Shipment"] = object([]string{"tracking", "status", "eta", "stops_before", "vehicle", "stop", "time_window", "events"}, map[string]any{
		"tracking": str, "status": str, "eta": nullable(ref("ETA")), "stops_before": nullable(integer),
		"vehicle": nullable(str), "stop": nullable(integer), "attempt": integer, "reason": str,
		"time_window": nullable(window), "events": arrayOf(ref("Event")),
	})
	m["PlanInput"] = object([]string{"vehicles"}, map[string]any{
		"vehicles":  map[string]any{"type": "array", "minItems": 1, "items": map[string]any{"type": "object", "required": []string{"id", "vehicle", "start"}}},
		"shipments": arrayOf(str),
		"routes":    arrayOf(object([]string{"vehicle", "shipments"}, map[string]any{"vehicle": str, "shipments": arrayOf(str)})),
		"options": object([]string{}, map[string]any{
			"time":       map[string]any{"type": "number", "description": "Solver seconds (default 2, at most 300)."},
			"iterations": map[string]any{"type": "integer", "description": "Solver iterations per worker instead of a time (at most 1,000,000): the same plan on every run."}}),
	})
	m["Plan"] = object([]string{"plan", "routes", "unassigned"}, map[string]any{
		"plan": integer,
		"routes": arrayOf(object([]string{"vehicle", "route", "stops"}, map[string]any{"vehicle": str, "route": integer,
			"stops": arrayOf(object([]string{"id", "tracking", "arrival"}, map[string]any{"id": integer, "tracking": str, "arrival": integer}))})),
		"unassigned": arrayOf(object([]string{"tracking", "reason"}, map[string]any{"tracking": str, "reason": str})),
	})
	m["StatusInput"] = object([]string{"status"}, map[string]any{
		"status": map[string]any{"enum": []any{"arrived", "delivered", "failed", "cancelled"}},
		"reason": map[string]any{"enum": []any{"not_home", "refused", "address_not_found", "access", "damaged", "other"}},
		"time":   integer})
	m["Stop"] = object([]string{"id", "tracking", "vehicle", "route", "position", "attempt", "status", "location", "time_window", "eta"}, map[string]any{
		"id": integer, "tracking": str, "vehicle": str, "route": integer, "position": integer, "attempt": integer,
		"status": map[string]any{"enum": []any{"planned", "out_for_delivery", "arrived", "delivered", "failed", "cancelled", "handed_over"}},
		"reason": str, "location": ref("LonLat"), "time_window": nullable(window), "planned": integer,
		"eta": nullable(ref("ETA")), "arrived_at": integer, "done_at": integer})
	m["Vehicle"] = object([]string{"id", "location", "time", "route", "stops"}, map[string]any{
		"id": str, "location": nullable(ref("LonLat")), "time": nullable(integer), "route": nullable(integer),
		"status": str, "version": integer, "stops": arrayOf(ref("Stop"))})
	m["AddStopInput"] = object([]string{"tracking"}, map[string]any{"tracking": str, "position": map[string]any{"type": "integer", "minimum": 0}})
	m["WindowInput"] = object([]string{"time_window"}, map[string]any{"time_window": window})
	m["EventsPage"] = object([]string{"events", "next"}, map[string]any{"events": arrayOf(ref("Event")), "next": integer})
}
