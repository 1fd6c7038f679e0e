package engine

import (
	"github.com/lastmile/lastmile/engine/dispatch"
)

// The OpenAPI operations and schemas of the notification endpoints.

var webhookTags = []string{"notifications"}

var webhookCreateDoc = &apiOperation{
	ID: "createWebhook", Summary: "Subscribe a URL to events (admin, dispatcher)", Tags: webhookTags,
	Description: "Deliveries follow the Standard Webhooks specification: POST with headers webhook-id (the event id, the same on every " +
		"retry and replay: the idempotency key), webhook-timestamp and webhook-signature (v1, HMAC-SHA256 of id.timestamp.body " +
		"keyed by the secret). At least once, in sequence order per shipment, retried with exponential backoff and jitter " +
		"(Retry-After honoured on 429 and 503); a subscription failing for the configured time is disabled and its deliveries go " +
		"to the dead-letter list. TLS certificates are verified; private, loopback and link-local targets are refused unless " +
		"the server runs with --webhook-allow-private. The secret is shown once.",
	Body:        "WebhookInput",
	BodyExample: map[string]any{"url": "https://example.com/hooks/lastmile", "events": []string{"arriving_soon", "delivered"}},
	Created:     &apiContent{Description: "The subscription with its secret.", MediaType: "application/json", Ref: "Webhook"},
	Errors:      append([]int{400, 413}, authErrors...),
}

var webhookListDoc = &apiOperation{
	ID: "listWebhooks", Summary: "List the webhook subscriptions", Tags: webhookTags,
	OK: apiContent{Description: "The subscriptions, oldest first (without secrets).", MediaType: "application/json",
		Schema: object([]string{"webhooks"}, map[string]any{"webhooks": arrayOf(ref("Webhook"))})},
	Errors: authErrors,
}

var webhookGetDoc = &apiOperation{
	ID: "getWebhook", Summary: "A webhook subscription and its health", Tags: webhookTags,
	Params: []apiParam{idParam("webhook")},
	OK:     apiContent{Description: "The subscription.", MediaType: "application/json", Ref: "Webhook"},
	Errors: append([]int{404}, authErrors...),
}

var webhookUpdateDoc = &apiOperation{
	ID: "updateWebhook", Summary: "Change, disable or re-enable a subscription", Tags: webhookTags,
	Description: "Fields given replace the stored ones. Re-enabling clears the failure streak; dead letters stay until replayed.",
	Params:      []apiParam{idParam("webhook")},
	Body:        "WebhookPatch", BodyExample: map[string]any{"enabled": true},
	OK:     apiContent{Description: "The subscription.", MediaType: "application/json", Ref: "Webhook"},
	Errors: append([]int{400, 404}, authErrors...),
}

var webhookDeleteDoc = &apiOperation{
	ID: "deleteWebhook", Summary: "Delete a subscription and its deliveries", Tags: webhookTags,
	Params: []apiParam{idParam("webhook")},
	OK: apiContent{Description: "Deleted.", MediaType: "application/json", Schema: object([]string{"id", "deleted"}, map[string]any{
		"id": map[string]any{"type": "string"}, "deleted": map[string]any{"const": true}})},
	Errors: append([]int{404}, authErrors...),
}

var webhookReplayDoc = &apiOperation{
	ID: "replayWebhook", Summary: "Send a range of events again", Tags: webhookTags,
	Description: "Every event in the cursor range (after, until] and/or time range [from, to] that the subscription takes is queued " +
		"again, sent or not, with its original webhook-id. 409 when the subscription is disabled.",
	Params: []apiParam{idParam("webhook")},
	Body:   "ReplayInput", BodyExample: map[string]any{"after": 0, "until": 5000},
	OK: apiContent{Description: "How many deliveries were queued.", MediaType: "application/json",
		Schema: object([]string{"queued"}, map[string]any{"queued": map[string]any{"type": "integer"}})},
	Errors: append([]int{400, 404, 409}, authErrors...),
}

var webhookDeliveriesDoc = &apiOperation{
	ID: "listWebhookDeliveries", Summary: "A subscription's deliveries; state=dead is the dead-letter list", Tags: webhookTags,
	Params: []apiParam{idParam("webhook"),
		{Name: "state", In: "query", Description: "pending, sent or dead (default: all).", Schema: map[string]any{"enum": []any{"pending", "sent", "dead"}}},
		{Name: "after", In: "query", Description: "Delivery id to list after (default 0).", Schema: map[string]any{"type": "integer", "minimum": 0}},
		{Name: "limit", In: "query", Description: "At most this many (1-1000, default 100).", Schema: map[string]any{"type": "integer", "minimum": 1, "maximum": 1000}},
	},
	OK:     apiContent{Description: "A page of deliveries.", MediaType: "application/json", Ref: "DeliveriesPage"},
	Errors: append([]int{400, 404}, authErrors...),
}

var eventStreamDoc = &apiOperation{
	ID: "streamEvents", Summary: "The event log as server-sent events", Tags: []string{"dispatch"},
	Description: "text/event-stream: each event with its cursor as id and its type as event name, data the Event JSON. Resumes " +
		"after the Last-Event-ID header (what browsers' EventSource sends on reconnect) or ?after=. Live: an event is sent as " +
		"soon as it commits. A comment every 15 s keeps idle streams open. A driver key gets its own vehicle's shipments' events only.",
	Params: []apiParam{
		{Name: "after", In: "query", Description: "Cursor: events after it (default 0).", Schema: map[string]any{"type": "integer", "minimum": 0}},
		{Name: "types", In: "query", Description: "Comma-separated event types to send (default: all).", Schema: map[string]any{"type": "string"}},
	},
	OK:     apiContent{Description: "The stream.", MediaType: "text/event-stream", Schema: map[string]any{"type": "string"}},
	Errors: append([]int{400}, authErrors...),
}

var shipmentNotifyDoc = &apiOperation{
	ID: "setShipmentNotify", Summary: "Choose which notifications a recipient gets", Tags: []string{"notifications"},
	Description: "Per channel (email, sms), the events to notify the recipient of; a channel left out takes the carrier's defaults, " +
		"an empty list turns it off.",
	Params: []apiParam{trackingParam},
	Body:   "NotifyPrefs", BodyExample: map[string]any{"email": []string{"out_for_delivery", "delivered"}, "sms": []string{"arriving_soon"}},
	OK:     apiContent{Description: "The preferences.", MediaType: "application/json", Ref: "NotifyPrefs"},
	Errors: append([]int{400, 404}, authErrors...),
}

var (
	templateLangParam = pathParam("language", "The language: en, pt, es, fr.", "pt")
	templateFileParam = pathParam("file", "EVENT.KIND.tmpl with KIND subject, text, html or sms; or layout.text.tmpl, layout.html.tmpl.",
		"delivered.sms.tmpl")
)

var templatePutDoc = &apiOperation{
	ID: "putTemplate", Summary: "Override a message template (admin)", Tags: []string{"notifications"},
	Description: "The body is the template text (Go text/template; html/template for .html.tmpl), at most 64 KiB. It must parse " +
		"and render the sample inputs, or the answer is 400 with the reason; every replica uses it within 5 s.",
	Params: []apiParam{templateLangParam, templateFileParam},
	OK: apiContent{Description: "The stored template.", MediaType: "application/json", Schema: object([]string{"name", "bytes", "updated"},
		map[string]any{"name": map[string]any{"type": "string"}, "bytes": map[string]any{"type": "integer"}, "updated": map[string]any{"type": "integer"}})},
	Errors: append([]int{400, 413}, authErrors...),
}

var templateDeleteDoc = &apiOperation{
	ID: "deleteTemplate", Summary: "Remove a template override (admin)", Tags: []string{"notifications"},
	Params: []apiParam{templateLangParam, templateFileParam},
	OK: apiContent{Description: "Deleted: the built-in (or --templates folder's) template is used again.", MediaType: "application/json",
		Schema: object([]string{"name", "deleted"}, map[string]any{"name": map[string]any{"type": "string"}, "deleted": map[string]any{"const": true}})},
	Errors: append([]int{404}, authErrors...),
}

var templateListDoc = &apiOperation{
	ID: "listTemplates", Summary: "The template overrides stored through the API (admin)", Tags: []string{"notifications"},
	OK: apiContent{Description: "Their names, sizes and times.", MediaType: "application/json", Schema: object([]string{"templates"},
		map[string]any{"templates": arrayOf(object([]string{"name", "bytes", "updated"}, map[string]any{"name": map[string]any{"type": "string"},
			"bytes": map[string]any{"type": "integer"}, "updated": map[string]any{"type": "integer"}}))})},
	Errors: authErrors,
}

// unsubscribeDoc documents the page (GET) and its form's answer (POST).
func unsubscribeDoc(method string) *apiOperation {
	op := &apiOperation{
		ID: "unsubscribePage", Summary: "A recipient's unsubscribe link: the confirmation page", Tags: []string{"notifications"},
		Description: "Shows a confirmation page; its button POSTs. Unknown tokens: 404.",
		Params: []apiParam{pathParam("token", "The shipment's tracking token.", "AAAAAAAAAAAAAAAAAAAAAA"),
			{Name: "channel", In: "query", Description: "email or sms.", Schema: map[string]any{"enum": []any{"email", "sms"}}}},
		OK:     apiContent{Description: "An HTML page.", MediaType: "text/html", Schema: map[string]any{"type": "string"}},
		Errors: []int{400, 404},
	}
	if method == "POST" {
		op.ID, op.Summary = "unsubscribe", "Stop a channel's notifications to a recipient"
		op.Description = "The page's button, or RFC 8058 one-click from the mail client: stops the channel's notifications to the " +
			"recipient's address (kept as a keyed hash). Unknown tokens: 404."
	}
	return op
}

var unsubscribeGetDoc, unsubscribePostDoc = unsubscribeDoc("GET"), unsubscribeDoc("POST")

// notifySchemas adds the notification bodies' schemas.
func notifySchemas(m map[string]any) {
	str := map[string]any{"type": "string"}
	integer := map[string]any{"type": "integer"}
	types := make([]any, 0, len(dispatch.EngineEventTypes)+len(dispatch.CallerEventTypes)+1)
	types = append(types, "*")
	for _, t := range append(append([]string{}, dispatch.EngineEventTypes...), dispatch.CallerEventTypes...) {
		types = append(types, t)
	}
	events := map[string]any{"type": "array", "minItems": 1, "items": map[string]any{"enum": types}}
	recip := make([]any, len(dispatch.RecipientEventTypes))
	for i, t := range dispatch.RecipientEventTypes {
		recip[i] = t
	}
	url := map[string]any{"type": "string", "maxLength": 2048, "description": "An absolute https:// (or http://) URL."}
	m["WebhookInput"] = object([]string{"url", "events"}, map[string]any{"url": url, "events": events,
		"tracking": map[string]any{"type": "string", "description": "Only this shipment's events."}, "description": str,
		"enabled": map[string]any{"type": "boolean"}})
	m["WebhookPatch"] = object([]string{}, map[string]any{"url": url, "events": events, "tracking": str, "description": str,
		"enabled": map[string]any{"type": "boolean"}})
	m["Webhook"] = object([]string{"id", "url", "events", "enabled", "created"}, map[string]any{"id": str, "url": str, "events": events,
		"tracking": str, "description": str, "enabled": map[string]any{"type": "boolean"}, "disabled_reason": str,
		"failing_since": integer, "failures": integer, "created": integer,
		"secret": map[string]any{"type": "string", "pattern": "^whsec_", "description": "Only in the answer to its creation."}})
	m["ReplayInput"] = object([]string{}, map[string]any{"after": integer, "until": integer, "from": integer, "to": integer})
	m["DeliveriesPage"] = object([]string{"deliveries", "next"}, map[string]any{"next": integer,
		"deliveries": arrayOf(object([]string{"id", "event", "cursor", "tracking", "type", "state", "attempts", "created"}, map[string]any{
			"id": integer, "event": str, "cursor": integer, "tracking": str, "type": str,
			"state":    map[string]any{"enum": []any{"pending", "sent", "dead"}},
			"attempts": integer, "status_code": integer, "last_error": str, "next_at": integer, "created": integer, "done_at": integer}))})
	m["NotifyPrefs"] = object([]string{}, map[string]any{
		"email": map[string]any{"type": "array", "items": map[string]any{"enum": recip}},
		"sms":   map[string]any{"type": "array", "items": map[string]any{"enum": recip}}})
}
