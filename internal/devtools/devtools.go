// Package devtools holds Chrome DevTools Protocol calls whose shape
// differs between the Chromium releases the tests and benchmarks meet,
// so that the engine's browser tests and `lastmile bench page` run on
// each.
package devtools

import (
	"context"
	"fmt"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// SetOffline takes the tab in ctx offline, service workers with it, or
// back online, without throttling.
func SetOffline(ctx context.Context, offline bool) error {
	yes := true
	return byRule(ctx, offline, &yes, network.Conditions{DownloadThroughput: -1, UploadThroughput: -1})
}

// Throttle applies c (latency, throughputs, connection type; its Offline
// is ignored) to every request of the tab in ctx.
func Throttle(ctx context.Context, c network.Conditions) error {
	return byRule(ctx, false, nil, c)
}

// byRule calls Network.emulateNetworkConditionsByRule with c as the one
// rule for every request.
//
// The command changed shape between Chromium releases: cdproto's form
// (offline in each rule, and emulateOfflineServiceWorker) is the newer one
// (Chromium 156); Debian bookworm's Chromium 148 wants offline beside the
// rules and refuses the newer form (-32602). The older form is sent when
// the newer one is refused.
func byRule(ctx context.Context, offline bool, serviceWorker *bool, c network.Conditions) error {
	c.Offline = offline
	_, err := chromedp.Call(ctx, network.EmulateNetworkConditionsByRule, network.EmulateNetworkConditionsByRuleParams{
		EmulateOfflineServiceWorker: serviceWorker, MatchedNetworkConditions: []*network.Conditions{&c}})
	if err == nil {
		return nil
	}
	older := olderParams{Offline: offline, MatchedNetworkConditions: []olderConditions{{URLPattern: c.URLPattern, Latency: c.Latency,
		DownloadThroughput: c.DownloadThroughput, UploadThroughput: c.UploadThroughput, ConnectionType: c.ConnectionType}}}
	if _, err2 := chromedp.Call(ctx, olderByRule, older); err2 != nil {
		return fmt.Errorf("devtools: emulate network conditions: %w; in the older form: %w", err, err2)
	}
	return nil
}

// olderParams and olderConditions are the parameters of
// Network.emulateNetworkConditionsByRule before Chromium moved offline into
// each rule.
type olderParams struct {
	Offline                  bool              `json:"offline"`
	MatchedNetworkConditions []olderConditions `json:"matchedNetworkConditions"`
}

type olderConditions struct {
	URLPattern         string                 `json:"urlPattern"`
	Latency            float64                `json:"latency"`
	DownloadThroughput float64                `json:"downloadThroughput"`
	UploadThroughput   float64                `json:"uploadThroughput"`
	ConnectionType     network.ConnectionType `json:"connectionType,omitempty"`
}

// olderByRule is Network.emulateNetworkConditionsByRule in its older form.
var olderByRule = cdp.Command[olderParams, network.EmulateNetworkConditionsByRuleResult]{
	Method: network.CommandEmulateNetworkConditionsByRule}
