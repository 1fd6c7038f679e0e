package engine

// The OpenAPI operations of the pages (tracking page, driver's app), their
// scripts' endpoints, proofs of delivery and the basemap's tiles.

// pageTags tag what is served without a state store (assets, tiles);
// trackTags the pages and their endpoints, which need one (called with
// their examples by track_http_test.go, not by the OpenAPI test).
var (
	pageTags  = []string{"pages"}
	trackTags = []string{"tracking"}
)

var tokenParam = pathParam("token", "The shipment's tracking token (22 characters).", "AAAAAAAAAAAAAAAAAAAAAA")

var htmlPage = apiContent{Description: "An HTML page.", MediaType: "text/html", Schema: map[string]any{"type": "string"}}

var trackPageDoc = &apiOperation{
	ID: "trackPage", Summary: "The recipient's live tracking page", Tags: trackTags,
	Description: "Rendered by the server in the recipient's language and time zone (status, ETA window, stops before, timeline, " +
		"messages, instructions, other windows, proof of delivery and rating), then kept live by its script. The same 404 page " +
		"for every unknown, malformed, revoked or expired link; requests per client address are rate limited (429).",
	Params: []apiParam{tokenParam},
	OK:     htmlPage,
	Errors: []int{404, 429},
}

var trackViewDoc = &apiOperation{
	ID: "trackView", Summary: "The tracking page's data (the page's polling fallback)", Tags: trackTags,
	Description: "The shipment's public view and its texts in the recipient's language: only this shipment's data; the van " +
		"only while this stop is within the configured number of next stops.",
	Params: []apiParam{tokenParam},
	OK: apiContent{Description: "The page's update.", MediaType: "application/json",
		Schema: object([]string{"status", "view"}, map[string]any{"status": map[string]any{"type": "string"}, "view": map[string]any{"type": "object"}})},
	Errors: []int{404, 429},
}

var trackLiveDoc = &apiOperation{
	ID: "trackLive", Summary: "The tracking page's live updates (server-sent events)", Tags: trackTags,
	Description: "Event update with the same JSON as view.json: at once, then at each change of the shipment, its thread or " +
		"the van's position; ends after 30 minutes (the browser reconnects).",
	Params: []apiParam{tokenParam},
	OK:     apiContent{Description: "An event stream.", MediaType: "text/event-stream", Schema: map[string]any{"type": "string"}},
	Errors: []int{404, 429},
}

// trackFormDoc documents one of the page's forms.
func trackFormDoc(id, summary, fields string) *apiOperation {
	return &apiOperation{
		ID: id, Summary: summary, Tags: trackTags,
		Description: "A form of the tracking page (application/x-www-form-urlencoded: " + fields + "): 303 back to the page, or " +
			"the page with the error; with a JSON body the answer is JSON. The link itself is the credential.",
		Params: []apiParam{tokenParam},
		OK:     apiContent{Description: "The stored value (JSON requests).", MediaType: "application/json", Schema: map[string]any{"type": "object"}},
		Errors: []int{400, 404, 409, 429},
	}
}

var (
	trackInstructionsDoc = trackFormDoc("trackInstructions", "Set the delivery instructions", "instructions")
	trackMessageDoc      = trackFormDoc("trackMessage", "Send a message to the driver", "text, id (idempotency key)")
	trackWindowDoc       = trackFormDoc("trackWindow", "Ask for another delivery window (accepted or declined at once)", "window = START-END")
	trackRatingDoc       = trackFormDoc("trackRating", "Rate a delivered shipment", "stars 1-5, comment")
)

var trackProofDoc = &apiOperation{
	ID: "trackProof", Summary: "A proof-of-delivery image through a signed link of the page", Tags: trackTags,
	Description: "k (the image's content key), e (expiry, Unix seconds) and s (signature) as the page gives them; links " +
		"expire after 10 minutes.",
	Params: []apiParam{tokenParam},
	OK:     apiContent{Description: "The image (JPEG or PNG, metadata stripped).", MediaType: "image/jpeg", Schema: map[string]any{"type": "string"}},
	Errors: []int{404, 429},
}

var shipmentLinkDoc = &apiOperation{
	ID: "rotateTrackingLink", Summary: "Revoke a shipment's tracking link and issue a new one", Tags: []string{"dispatch"},
	Params:  []apiParam{trackingParam},
	Created: &apiContent{Description: "The new link.", MediaType: "application/json", Ref: "ShipmentCreated"},
	Errors:  append([]int{404, 409}, authErrors...),
}

var staticDoc = &apiOperation{
	ID: "staticAsset", Summary: "An embedded asset of the pages", Tags: pageTags,
	Params: []apiParam{pathParam("file", "The file name.", "track.js")},
	OK:     apiContent{Description: "The file (its own type; the example is a script); immutable for a year when asked with its hash (?v=).", MediaType: "text/javascript", Schema: map[string]any{"type": "string"}},
	Errors: []int{404},
}

var staticDirDoc = &apiOperation{
	ID: "staticVendorAsset", Summary: "A bundled third-party asset of the pages", Tags: pageTags,
	Params: []apiParam{pathParam("dir", "The folder.", "vendor"), pathParam("file", "The file name.", "leaflet.js")},
	OK:     apiContent{Description: "The file (its own type; the example is a script).", MediaType: "text/javascript", Schema: map[string]any{"type": "string"}},
	Errors: []int{404},
}

var tileDoc = &apiOperation{
	ID: "tile", Summary: "A vector tile of the road network (the pages' basemap)", Tags: pageTags,
	Description: "Mapbox Vector Tile 2.1, layer roads (class = OSM highway value, oneway = 1, name = the road's name or ref from zoom 13 for main roads, 14 tertiary, 15 streets, 16 service), zooms 8 to 16, gzip-compressed.",
	Params:      []apiParam{pathParam("z", "Zoom.", "14"), pathParam("x", "Column.", "7790"), pathParam("y", "Row and .mvt.", "6101.mvt")},
	OK:          apiContent{Description: "The tile.", MediaType: "application/vnd.mapbox-vector-tile", Schema: map[string]any{"type": "string"}},
	Errors:      []int{404, 503},
}

var driverPageDoc = &apiOperation{
	ID: "driverApp", Summary: "The driver's app (installable web app)", Tags: trackTags,
	Description: "The sign-in form, or the signed-in driver's stops of the day.",
	OK:          htmlPage,
}

var driverSignInDoc = &apiOperation{
	ID: "driverSignIn", Summary: "Sign the driver's app in with a driver key", Tags: trackTags,
	Description: "Form field key (a driver key): sets the session cookie (HttpOnly, Secure, SameSite=Strict; 16 h) and redirects " +
		"to /driver (303). The app's changes then send the session's CSRF token in X-CSRF-Token.",
	OK:     htmlPage,
	Errors: []int{401, 429},
}

var driverSignOutDoc = &apiOperation{
	ID: "driverSignOut", Summary: "Sign the driver's app out", Tags: trackTags,
	Description: "Form field csrf: ends the session and redirects to /driver (303).",
	OK:          htmlPage,
	Errors:      []int{403},
}

var driverAssetDoc = &apiOperation{
	ID: "driverAsset", Summary: "The app's service worker (sw.js) and manifest (manifest.webmanifest)", Tags: pageTags,
	Params: []apiParam{pathParam("file", "sw.js or manifest.webmanifest.", "sw.js")},
	OK:     apiContent{Description: "The file.", MediaType: "text/javascript", Schema: map[string]any{"type": "string"}},
	Errors: []int{404},
}

var driverRouteDoc = &apiOperation{
	ID: "driverRoute", Summary: "The driver's day: the van's stops in order with what the driver needs at the door", Tags: []string{"dispatch"},
	Description: "A driver key or app session gets its own vehicle's; others name it with ?vehicle=.",
	OK:          apiContent{Description: "The route.", MediaType: "application/json", Schema: map[string]any{"type": "object"}},
	Errors:      append([]int{400}, authErrors...),
}

var stopMessagesDoc = &apiOperation{
	ID: "stopMessages", Summary: "The thread between the stop's recipient and the driver", Tags: []string{"dispatch"},
	Params: []apiParam{idParam("stop")},
	OK:     apiContent{Description: "The messages, oldest first.", MediaType: "application/json", Schema: map[string]any{"type": "object"}},
	Errors: append([]int{404}, authErrors...),
}

var stopMessagePostDoc = &apiOperation{
	ID: "stopMessagePost", Summary: "Send a message to the stop's recipient", Tags: []string{"dispatch"},
	Description: "JSON {\"text\": ...}; the Idempotency-Key header makes a retry count once.",
	Params:      []apiParam{idParam("stop")},
	Created:     &apiContent{Description: "The message.", MediaType: "application/json", Schema: map[string]any{"type": "object"}},
	Errors:      append([]int{400, 404, 409}, authErrors...),
}

var stopPodDoc = &apiOperation{
	ID: "stopPod", Summary: "Upload a stop's proof of delivery", Tags: []string{"dispatch"},
	Description: "multipart/form-data: photo and/or signature (JPEG, PNG or WebP; checked by content, size and dimensions, " +
		"re-encoded without metadata and stored by content), name, lon, lat, accuracy, time. Idempotency-Key header required: " +
		"a retried upload is stored once (200). A geotag farther than the configured distance from the stop is flagged " +
		"(far) and the delivered event says so.",
	Params:  []apiParam{idParam("stop")},
	Created: &apiContent{Description: "The proof.", MediaType: "application/json", Schema: map[string]any{"type": "object"}},
	Errors:  append([]int{400, 404, 413, 415, 503}, authErrors...),
}
