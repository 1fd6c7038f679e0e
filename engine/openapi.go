package engine

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
)

// apiOperation is the OpenAPI 3.1 description of one endpoint: the
// document served at /v1/openapi.json is built from the route table, one
// operation per row, so that a route cannot exist undocumented.
type apiOperation struct {
	ID, Summary, Description string
	Tags                     []string
	Params                   []apiParam
	// Body names the components schema of a JSON request body ("" = none).
	Body        string
	BodyExample any
	// OK is the 200 answer.
	OK apiContent
	// Accepted, when set, is the 202 answer (an asynchronous operation
	// queued).
	Accepted *apiContent
	// Created, when set, is the 201 answer (a resource made); OK may then
	// be empty when 201 is the only success.
	Created *apiContent
	// Errors are the statuses of the specific error answers (each an
	// Error object); every operation also has a default Error answer.
	Errors []int
}

// apiParam is a path or query parameter. Schema is a JSON Schema object.
type apiParam struct {
	Name, In, Description string
	Required              bool
	Schema                map[string]any
	Example               any
}

// apiContent is a response body: a media type and either the name of a
// components schema or an inline schema.
type apiContent struct {
	Description string
	MediaType   string
	Ref         string
	Schema      map[string]any
}

var coordinatesParam = apiParam{
	Name: "coordinates", In: "path", Required: true,
	Description: "Waypoints in order as lon,lat pairs separated by ';' (OSRM's format), at least 2; an optional .json suffix is ignored.",
	Schema:      map[string]any{"type": "string", "pattern": `^-?[0-9.]+,-?[0-9.]+(;-?[0-9.]+,-?[0-9.]+)+(\.json)?$`},
	Example:     "7.41993,43.73141;7.42586,43.74087",
}

var routeDoc = &apiOperation{
	ID: "route", Summary: "Fastest route through the waypoints", Tags: []string{"routing"},
	Description: "OSRM-compatible route service: each coordinate is snapped to the nearest routable road, then the fastest route " +
		"through them in order is computed on the contraction hierarchy. Durations in seconds, distances in metres.",
	Params: []apiParam{
		coordinatesParam,
		{Name: "overview", In: "query", Description: "Geometry of the whole route: simplified (Douglas-Peucker, 1 m), full, or false (none).",
			Schema: map[string]any{"type": "string", "enum": []string{"simplified", "full", "false"}, "default": "simplified"}},
		{Name: "geometries", In: "query", Description: "Encoding of the geometry: Google encoded polyline with 5 or 6 decimals, or a GeoJSON LineString.",
			Schema: map[string]any{"type": "string", "enum": []string{"polyline", "polyline6", "geojson"}, "default": "polyline"}},
		{Name: "steps", In: "query", Description: "Accepted for OSRM compatibility; turn-by-turn steps are not produced.",
			Schema: map[string]any{"type": "string", "enum": []string{"false"}}},
		{Name: "alternatives", In: "query", Description: "Accepted for OSRM compatibility; one route is returned.",
			Schema: map[string]any{"type": "string", "enum": []string{"false", "0"}}},
		{Name: "annotations", In: "query", Description: "Accepted for OSRM compatibility; no annotations are produced.",
			Schema: map[string]any{"type": "string", "enum": []string{"false"}}},
	},
	OK:     apiContent{Description: "The route.", MediaType: "application/json", Ref: "RouteResponse"},
	Errors: []int{400, 413, 422, 431, 503},
}

var tableDoc = &apiOperation{
	ID: "table", Summary: "Many-to-many durations and distances", Tags: []string{"routing"},
	Description: "OSRM-compatible table service with the points in a JSON body: the fastest-route duration (s) and distance (m) " +
		"from every source to every destination; null where no route exists.",
	Body:        "TableRequest",
	BodyExample: map[string]any{"coordinates": [][2]float64{{7.41993, 43.73141}, {7.42586, 43.74087}, {7.4246, 43.7384}}, "sources": []int{0}},
	OK:          apiContent{Description: "The matrices.", MediaType: "application/json", Ref: "TableResponse"},
	Errors:      []int{400, 413, 422, 503},
}

var solveDoc = &apiOperation{
	ID: "solve", Summary: "Plan routes for a fleet (VROOM-compatible problem and solution)", Tags: []string{"planning"},
	Description: "A VROOM-format problem: jobs, shipments, vehicles (shifts, breaks, capacities, skills, costs). Locations given as " +
		"[lon, lat] are snapped to the road graph and the car matrix computed from it; problems with matrices are used as given. " +
		"The answer is VROOM's output (routes with steps, arrival, load, distance; summary; unassigned tasks with a reason). " +
		"Each step's arrival is its ETA, in seconds on the clock of the problem's time windows (relative or absolute as they are). " +
		"With \"options\": {\"g\": true} each route also gets its road geometry (encoded polyline, 5 decimals, as VROOM/OSRM): " +
		"every location must then have coordinates, else 400 InvalidOptions (with a matrix given, the geometry still follows the graph's fastest paths). " +
		"Synchronous by default: the solver runs for the time limit and the answer is 200. With \"async\": true at the top level " +
		"of the problem (or ?async=true) the solve is queued and the answer is 202 with the job's id and URL (also in the Location " +
		"header); poll GET /v1/jobs/{id}. 429 TooManyJobs (with Retry-After) when the job queue is full.",
	Params: []apiParam{
		{Name: "time", In: "query", Description: "Solver time limit in seconds (default 2, at most the server's maximum; asynchronous solves have a larger maximum).",
			Schema: map[string]any{"type": "number", "exclusiveMinimum": 0}},
		{Name: "seed", In: "query", Description: "Random seed (default 1).", Schema: map[string]any{"type": "integer"}},
		{Name: "async", In: "query", Description: "true queues the solve as a job (as \"async\": true in the body does).",
			Schema: map[string]any{"type": "boolean"}},
	},
	Body: "SolveRequest",
	BodyExample: map[string]any{
		"vehicles": []any{map[string]any{"id": 1, "start": []float64{7.41993, 43.73141}, "end": []float64{7.41993, 43.73141}, "capacity": []int{4}}},
		"jobs": []any{
			map[string]any{"id": 1, "location": []float64{7.42586, 43.74087}, "delivery": []int{1}},
			map[string]any{"id": 2, "location": []float64{7.4246, 43.7384}, "delivery": []int{1}, "time_windows": [][2]int{{0, 36000}}},
		},
	},
	OK:       apiContent{Description: "The solution.", MediaType: "application/json", Ref: "SolveResponse"},
	Accepted: &apiContent{Description: "The solve is queued as a job.", MediaType: "application/json", Ref: "JobAccepted"},
	Errors:   []int{400, 413, 422, 429, 503},
}

var jobIDParam = apiParam{Name: "id", In: "path", Required: true,
	Description: "The job's id, as POST /v1/solve answered it (32 hexadecimal digits, random).",
	Schema:      map[string]any{"type": "string", "pattern": "^[0-9a-f]{32}$"}, Example: "3f2a9c1e5b7d4e6f8a0b1c2d3e4f5a6b"}

var jobGetDoc = &apiOperation{
	ID: "getJob", Summary: "State of an asynchronous solve", Tags: []string{"planning"},
	Description: "Status queued, running (with progress), done (with the solution, as POST /v1/solve would answer it) or failed " +
		"(with the error; code Cancelled after DELETE or shutdown). Finished jobs are kept for the server's job TTL, then 404.",
	Params: []apiParam{jobIDParam},
	OK:     apiContent{Description: "The job.", MediaType: "application/json", Ref: "Job"},
	Errors: []int{404},
}

var jobDeleteDoc = &apiOperation{
	ID: "deleteJob", Summary: "Cancel an asynchronous solve, or forget a finished one", Tags: []string{"planning"},
	Description: "A queued or running job is cancelled: it ends failed with code Cancelled and stays readable until it expires. " +
		"A finished job is removed (then 404). The answer is the job as it was when the request arrived.",
	Params: []apiParam{jobIDParam},
	OK:     apiContent{Description: "The job.", MediaType: "application/json", Ref: "Job"},
	Errors: []int{404},
}

var nearestDoc = &apiOperation{
	ID: "nearest", Summary: "Snap a coordinate to the nearest routable road", Tags: []string{"routing"},
	Params: []apiParam{{Name: "coordinate", In: "path", Required: true, Description: "One lon,lat pair.",
		Schema: map[string]any{"type": "string", "pattern": `^-?[0-9.]+,-?[0-9.]+(\.json)?$`}, Example: "7.41993,43.73141"}},
	OK:     apiContent{Description: "The snapped waypoint.", MediaType: "application/json", Ref: "NearestResponse"},
	Errors: []int{400, 422, 503},
}

var openapiDoc = &apiOperation{
	ID: "openapi", Summary: "This OpenAPI 3.1 document", Tags: []string{"meta"},
	OK: apiContent{Description: "The document.", MediaType: "application/json", Schema: map[string]any{"type": "object", "required": []string{"openapi", "info", "paths"}}},
}

var healthDoc = &apiOperation{
	ID: "healthz", Summary: "Liveness probe: the process answers", Tags: []string{"meta"},
	OK: apiContent{Description: "Alive.", MediaType: "text/plain", Schema: map[string]any{"type": "string", "const": "ok\n"}},
}

var readyDoc = &apiOperation{
	ID: "readyz", Summary: "Readiness probe: 503 NotReady once shutdown has begun", Tags: []string{"meta"},
	OK:     apiContent{Description: "Ready to serve.", MediaType: "text/plain", Schema: map[string]any{"type": "string", "const": "ready\n"}},
	Errors: []int{503},
}

var metricsDoc = &apiOperation{
	ID: "metrics", Summary: "Prometheus metrics (text exposition format 0.0.4)", Tags: []string{"meta"},
	Description: "lastmile_http_requests_total{endpoint,method,code}, lastmile_http_request_duration_seconds histogram per endpoint, " +
		"lastmile_http_requests_in_flight, lastmile_solve_duration_seconds{mode=sync|async} histogram, lastmile_jobs_queued and " +
		"lastmile_jobs_running gauges, lastmile_jobs_finished_total{status=done|failed}, and Go runtime gauges.",
	OK: apiContent{Description: "The metrics.", MediaType: "text/plain; version=0.0.4", Schema: map[string]any{"type": "string"}},
}

// errorResponses names the components response of each error status.
var errorResponses = map[int]string{
	400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 409: "Conflict", 429: "TooManyJobs", 413: "TooBig", 415: "UnsupportedMediaType", 422: "Unprocessable", 431: "HeaderTooBig", 503: "Unavailable",
}

// buildOpenAPI returns the OpenAPI 3.1 document of the routes (compiled
// by compileRoutes), with the limits of cfg in the descriptions. The path
// keys are the patterns, "{name}" and all; each parameter of a pattern is
// a path parameter of its operations.
func buildOpenAPI(routes []endpoint, cfg ServerConfig) ([]byte, error) {
	paths := map[string]any{}
	for _, e := range routes {
		item, _ := paths[e.Pattern].(map[string]any)
		if item == nil {
			item = map[string]any{}
			paths[e.Pattern] = item
		}
		op, err := e.Doc.toOpenAPI(cfg, e.names)
		if err != nil {
			return nil, fmt.Errorf("openapi %s %s: %w", e.Method, e.Pattern, err)
		}
		item[strings.ToLower(e.Method)] = op
	}
	responses := map[string]any{}
	for status, name := range errorResponses {
		responses[name] = map[string]any{
			"description": http.StatusText(status) + " (see the Error schema for the codes)",
			"content":     map[string]any{"application/json": map[string]any{"schema": ref("Error")}},
		}
	}
	responses["Error"] = map[string]any{
		"description": "Any other error: 404 InvalidUrl, 405 MethodNotAllowed (with an Allow header), 408, 413, 431, 500.",
		"content":     map[string]any{"application/json": map[string]any{"schema": ref("Error")}},
	}
	doc := map[string]any{
		"openapi": "3.1.0",
		"info": map[string]any{
			"title":   "lastmile",
			"version": "1",
			"description": "Route optimisation and ETA engine. Routing services follow OSRM's conventions " +
				"(coordinates lon,lat; durations in seconds, distances in metres). Every error is a JSON Error object " +
				"with a stable code and a message naming the bad field or value.",
		},
		"paths": paths,
		"components": map[string]any{
			"schemas":   schemas(cfg),
			"responses": responses,
		},
	}
	return json.MarshalIndent(doc, "", "  ")
}

// toOpenAPI returns the operation object of op on a pattern with the
// path parameters names. Each of them must be described by one apiParam of
// op with In "path" (its name, schema and example), and op must describe
// no other path parameter: the parameters are listed path parameters
// first, in pattern order, then the others in op's order.
func (op *apiOperation) toOpenAPI(cfg ServerConfig, names []string) (map[string]any, error) {
	out := map[string]any{"operationId": op.ID, "summary": op.Summary}
	if op.Description != "" {
		out["description"] = op.Description
	}
	if len(op.Tags) > 0 {
		out["tags"] = op.Tags
	}
	params := make([]apiParam, 0, len(op.Params))
	for _, name := range names {
		k := slices.IndexFunc(op.Params, func(p apiParam) bool { return p.Name == name && p.In == "path" })
		if k < 0 {
			return nil, fmt.Errorf("path parameter {%s} is not described (want an apiParam with In \"path\")", name)
		}
		params = append(params, op.Params[k])
	}
	for i, p := range op.Params {
		switch {
		case p.In == "path" && !slices.Contains(names, p.Name):
			return nil, fmt.Errorf("path parameter %s described but not in the pattern", p.Name)
		case slices.ContainsFunc(op.Params[:i], func(q apiParam) bool { return q.Name == p.Name && q.In == p.In }):
			return nil, fmt.Errorf("%s parameter %s described twice", p.In, p.Name)
		case p.In != "path":
			params = append(params, p)
		}
	}
	if len(params) > 0 {
		var ps []any
		for _, p := range params {
			m := map[string]any{"name": p.Name, "in": p.In, "description": p.Description, "schema": p.Schema}
			if p.Required || p.In == "path" {
				m["required"] = true
			}
			if p.Example != nil {
				m["example"] = p.Example
			}
			if p.Name == "coordinates" {
				m["description"] = p.Description + fmt.Sprintf(" At most %d coordinates.", cfg.MaxRouteCoordinates)
			}
			ps = append(ps, m)
		}
		out["parameters"] = ps
	}
	if op.Body != "" {
		media := map[string]any{"schema": ref(op.Body)}
		if op.BodyExample != nil {
			media["example"] = op.BodyExample
		}
		out["requestBody"] = map[string]any{
			"required":    true,
			"description": fmt.Sprintf("JSON, at most %d bytes; unknown fields are rejected.", cfg.MaxBodyBytes),
			"content":     map[string]any{"application/json": media},
		}
	}
	var schema any = op.OK.Schema
	if op.OK.Ref != "" {
		schema = ref(op.OK.Ref)
	}
	resp := map[string]any{"default": map[string]any{"$ref": "#/components/responses/Error"}}
	switch {
	case schema != nil && op.OK.MediaType != "":
		resp["200"] = map[string]any{
			"description": op.OK.Description,
			"content":     map[string]any{op.OK.MediaType: map[string]any{"schema": schema}},
		}
	case op.Created == nil:
		return nil, fmt.Errorf("no 200 or 201 answer described")
	}
	if c := op.Created; c != nil {
		var cs any = c.Schema
		if c.Ref != "" {
			cs = ref(c.Ref)
		}
		resp["201"] = map[string]any{
			"description": c.Description,
			"content":     map[string]any{c.MediaType: map[string]any{"schema": cs}},
		}
	}
	if a := op.Accepted; a != nil {
		resp["202"] = map[string]any{
			"description": a.Description,
			"content":     map[string]any{a.MediaType: map[string]any{"schema": ref(a.Ref)}},
		}
	}
	for _, st := range op.Errors {
		name, ok := errorResponses[st]
		if !ok {
			return nil, fmt.Errorf("error status %d has no components response", st)
		}
		resp[fmt.Sprint(st)] = map[string]any{"$ref": "#/components/responses/" + name}
	}
	out["responses"] = resp
	return out, nil
}

func ref(name string) map[string]any { return map[string]any{"$ref": "#/components/schemas/" + name} }

func object(required []string, props map[string]any) map[string]any {
	return map[string]any{"type": "object", "required": required, "properties": props, "additionalProperties": false}
}

func arrayOf(items any) map[string]any { return map[string]any{"type": "array", "items": items} }

func number(desc string) map[string]any {
	return map[string]any{"type": "number", "description": desc}
}

// schemas are the JSON Schemas (2020-12, as OpenAPI 3.1 uses) of the
// request and response bodies.
func schemas(cfg ServerConfig) map[string]any {
	codes := make([]any, len(errorCodes))
	var desc strings.Builder
	desc.WriteString("Stable error code; the HTTP status follows from it:")
	for i, c := range errorCodes {
		codes[i] = c
		fmt.Fprintf(&desc, " %s %d;", c, statusOf(c))
	}
	lonLat := map[string]any{
		"type":        "array",
		"description": "[longitude, latitude] in WGS84 degrees.",
		"prefixItems": []any{
			map[string]any{"type": "number", "minimum": -180, "maximum": 180},
			map[string]any{"type": "number", "minimum": -90, "maximum": 90},
		},
		"minItems": 2, "maxItems": 2, "items": false,
	}
	cell := map[string]any{"type": []string{"number", "null"}}
	index := map[string]any{"type": "integer", "minimum": 0}
	indices := func(what string) map[string]any {
		return map[string]any{"type": []string{"array", "null"}, "items": index, "minItems": 1,
			"description": "Indices into coordinates of the " + what + "; absent or null means all."}
	}
	m := map[string]any{
		"Error": object([]string{"code", "message"}, map[string]any{
			"code":    map[string]any{"type": "string", "enum": codes, "description": strings.TrimSuffix(desc.String(), ";") + "."},
			"message": map[string]any{"type": "string", "description": "What is wrong, naming the field or value."},
		}),
		"LonLat": lonLat,
		"Waypoint": object([]string{"hint", "distance", "name", "location"}, map[string]any{
			"hint":     map[string]any{"type": "string", "description": "Always empty (no hints)."},
			"distance": number("Distance in metres from the given coordinate to the snapped location."),
			"name":     map[string]any{"type": "string", "description": "Street name (empty for now)."},
			"location": ref("LonLat"),
		}),
		"GeoJSONLine": object([]string{"type", "coordinates"}, map[string]any{
			"type":        map[string]any{"const": "LineString"},
			"coordinates": arrayOf(ref("LonLat")),
		}),
		"Leg": object([]string{"steps", "summary", "weight", "duration", "distance"}, map[string]any{
			"steps":    map[string]any{"type": "array", "maxItems": 0},
			"summary":  map[string]any{"type": "string"},
			"weight":   number("Equal to duration."),
			"duration": number("Seconds."),
			"distance": number("Metres."),
		}),
		"Route": object([]string{"legs", "weight_name", "weight", "duration", "distance"}, map[string]any{
			"geometry": map[string]any{
				"description": "Absent with overview=false; an encoded polyline string, or a GeoJSON LineString with geometries=geojson.",
				"oneOf":       []any{map[string]any{"type": "string"}, ref("GeoJSONLine")},
			},
			"legs":        arrayOf(ref("Leg")),
			"weight_name": map[string]any{"const": "duration"},
			"weight":      number("Equal to duration."),
			"duration":    number("Seconds."),
			"distance":    number("Metres."),
		}),
		"RouteResponse": object([]string{"code", "routes", "waypoints"}, map[string]any{
			"code":      map[string]any{"const": "Ok"},
			"routes":    map[string]any{"type": "array", "items": ref("Route"), "minItems": 1, "maxItems": 1},
			"waypoints": arrayOf(ref("Waypoint")),
		}),
		"NearestResponse": object([]string{"code", "waypoints"}, map[string]any{
			"code":      map[string]any{"const": "Ok"},
			"waypoints": map[string]any{"type": "array", "items": ref("Waypoint"), "minItems": 1, "maxItems": 1},
		}),
		"SolveRequest": map[string]any{"type": "object", "required": []string{"vehicles"},
			"description": "VROOM's input format (https://github.com/VROOM-Project/vroom/blob/master/docs/API.md); differences in vrp/README.md.",
			"properties": map[string]any{
				"jobs":      arrayOf(map[string]any{"type": "object"}),
				"shipments": arrayOf(map[string]any{"type": "object"}),
				"vehicles":  map[string]any{"type": "array", "items": map[string]any{"type": "object"}, "minItems": 1},
				"matrices":  map[string]any{"type": "object"},
				"async":     map[string]any{"type": "boolean", "description": "true queues the solve as a job (202); our extension."},
				"options": map[string]any{"type": "object", "additionalProperties": false, "properties": map[string]any{
					"g": map[string]any{"type": "boolean", "description": "Route geometry (VROOM's option g)."},
				}},
			}},
		"SolveResponse": map[string]any{"type": "object", "required": []string{"code", "summary", "unassigned", "routes"},
			"description": "VROOM's output format; unassigned tasks carry a reason (our extension).",
			"properties": map[string]any{
				"code":       map[string]any{"const": 0},
				"summary":    map[string]any{"type": "object", "required": []string{"cost", "routes", "unassigned"}},
				"unassigned": arrayOf(map[string]any{"type": "object", "required": []string{"id", "type", "reason"}}),
				"routes": arrayOf(map[string]any{"type": "object", "required": []string{"vehicle", "cost", "steps"},
					"properties": map[string]any{
						"geometry": map[string]any{"type": "string", "description": "Encoded polyline (5 decimals) of the route on the roads; only with options.g."},
						"steps": arrayOf(map[string]any{"type": "object", "required": []string{"type", "arrival", "duration", "load"},
							"properties": map[string]any{
								"type":    map[string]any{"enum": []string{"start", "job", "pickup", "delivery", "break", "end"}},
								"arrival": map[string]any{"type": "integer", "description": "ETA at the step, seconds on the clock of the time windows."},
							}}),
					}}),
			}},
		"JobAccepted": object([]string{"id", "status", "location"}, map[string]any{
			"id":       map[string]any{"type": "string", "pattern": "^[0-9a-f]{32}$"},
			"status":   map[string]any{"const": "queued"},
			"location": map[string]any{"type": "string", "description": "URL path of the job: /v1/jobs/{id}."},
		}),
		"Job": object([]string{"id", "status", "location", "created"}, map[string]any{
			"id":       map[string]any{"type": "string", "pattern": "^[0-9a-f]{32}$"},
			"status":   map[string]any{"enum": []string{"queued", "running", "done", "failed"}},
			"location": map[string]any{"type": "string"},
			"progress": object([]string{"elapsed", "time_limit"}, map[string]any{
				"elapsed":    number("Seconds since the solve started."),
				"time_limit": number("The solver's time limit in seconds."),
				"iterations": map[string]any{"type": "integer", "description": "Search iterations per worker at the last epoch (absent before the first)."},
				"unassigned": map[string]any{"type": "integer", "description": "Unassigned tasks of the best solution so far."},
				"cost":       map[string]any{"type": "integer", "description": "Cost of the best solution so far."},
			}),
			"solution": ref("SolveResponse"),
			"error": object([]string{"code", "message"}, map[string]any{
				"code":    map[string]any{"type": "string", "description": "An Error code, or Cancelled."},
				"message": map[string]any{"type": "string"},
			}),
			"created":  map[string]any{"type": "string", "description": "RFC 3339 time of submission."},
			"started":  map[string]any{"type": "string", "description": "RFC 3339 time the solve started."},
			"finished": map[string]any{"type": "string", "description": "RFC 3339 time the job finished."},
			"expires":  map[string]any{"type": "string", "description": "RFC 3339 time a finished job will be dropped."},
		}),
		"TableRequest": object([]string{"coordinates"}, map[string]any{
			"coordinates": map[string]any{"type": "array", "items": ref("LonLat"), "minItems": 1,
				"description": fmt.Sprintf("The points; sources x destinations at most %d cells.", cfg.MaxTableCells)},
			"sources":      indices("sources (rows)"),
			"destinations": indices("destinations (columns)"),
		}),
		"TableResponse": object([]string{"code", "durations", "distances", "sources", "destinations"}, map[string]any{
			"code":         map[string]any{"const": "Ok"},
			"durations":    map[string]any{"type": "array", "items": arrayOf(cell), "description": "Seconds; rows are sources, columns destinations."},
			"distances":    map[string]any{"type": "array", "items": arrayOf(cell), "description": "Metres; rows are sources, columns destinations."},
			"sources":      arrayOf(ref("Waypoint")),
			"destinations": arrayOf(ref("Waypoint")),
		}),
	}
	liveSchemas(m)
	dispatchSchemas(m)
	notifySchemas(m)
	return m
}
