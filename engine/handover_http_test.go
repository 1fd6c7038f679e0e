package engine

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/lastmile/lastmile/internal/browsertest"
)

// TestHandoverHTTP runs a handover through the API on the Monaco graph
// with the live ETAs: van-1 has two 10-minute stops before L, whose
// window ends 5 min after van-1 leaves; van-2, out on the same plan, is
// 130 m from L with one stop to serve first. Van-1's departure hands L to
// van-2: the vehicles, the shipment and the drivers' keys all follow.
// With Chromium, the drivers' apps and the recipient's page are
// screenshot after it.
func TestHandoverHTTP(t *testing.T) {
	ds := newDispatchServerWith(t, "sqlite", func(c *ServerConfig) {
		c.TrackRate = -1
		c.Dispatch.Handover = true
		c.Dispatch.HandoverGain = time.Minute
	})
	f := &trackFixture{dispatchServer: ds}
	_, f.disp = ds.key(t, "dispatcher", "")
	_, drv1 := ds.key(t, "driver", "van-1")
	_, drv2 := ds.key(t, "driver", "van-2")
	tp := time.Now().Unix() - 600 // the first ping
	toks := map[string]string{}
	for _, s := range []struct {
		trk     string
		loc     [2]float64
		end     int64
		service int
	}{
		{"S1", monacoStops[1], tp + 7200, 600},
		{"S0", monacoStops[0], tp + 7200, 600},
		{"L", monacoStops[2], tp + 300, 60},
		{"M", [2]float64{7.42260, 43.73900}, tp + 7200, 60},
	} {
		var c struct {
			TrackingURL string `json:"tracking_url"`
		}
		ds.mustCall(t, 201, "POST", "/v1/shipments", f.disp, map[string]any{"tracking": s.trk,
			"recipient": map[string]any{"name": "Recipient " + s.trk, "language": "en"}, "location": s.loc, "address": "Street of " + s.trk,
			"time_window": []int64{tp - 3600, s.end}, "time_zone": "Europe/Monaco", "service": s.service}, &c)
		toks[s.trk] = c.TrackingURL
	}
	var plan struct {
		Routes []struct {
			Stops []struct {
				ID       int64
				Tracking string
			}
		}
	}
	ds.mustCall(t, 201, "POST", "/v1/plans", f.disp, map[string]any{
		"vehicles": []any{map[string]any{"id": 1, "vehicle": "van-1", "start": monacoDepot}, map[string]any{"id": 2, "vehicle": "van-2", "start": monacoDepot}},
		"routes": []any{map[string]any{"vehicle": "van-1", "shipments": []string{"S1", "S0", "L"}},
			map[string]any{"vehicle": "van-2", "shipments": []string{"M"}}}}, &plan)
	oldL := plan.Routes[0].Stops[2].ID
	f.ping(t, "van-2", tp, [2]float64{7.42700, 43.73960})
	f.ping(t, "van-1", tp+10, [2]float64{7.41800, 43.72950})

	type stopRow struct {
		ID       int64
		Tracking string
		Status   string
	}
	type vehicle struct {
		Version int64
		Stops   []stopRow
	}
	order := func(v vehicle) string {
		var out []string
		for _, s := range v.Stops {
			out = append(out, s.Tracking+":"+s.Status)
		}
		return strings.Join(out, " ")
	}
	var v1, v2 vehicle
	ds.mustCall(t, 200, "GET", "/v1/vehicles/van-1", f.disp, nil, &v1)
	ds.mustCall(t, 200, "GET", "/v1/vehicles/van-2", f.disp, nil, &v2)
	// (Re-routing may have moved L up van-1's route first.)
	if got := order(v1); !strings.Contains(got, "L:handed_over") || strings.Count(got, ":out_for_delivery") != 2 {
		t.Fatalf("van-1: %s, want L handed over, S1 and S0 out for delivery", got)
	}
	k := slices.IndexFunc(v1.Stops, func(s stopRow) bool { return s.Tracking == "L" })
	if v1.Stops[k].ID != oldL {
		t.Errorf("van-1's L is stop %d, the plan's %d", v1.Stops[k].ID, oldL)
	}
	if got, want := order(v2), "M:out_for_delivery L:out_for_delivery"; got != want {
		t.Fatalf("van-2: %s, want %s", got, want)
	}
	newL := v2.Stops[1].ID
	var sh struct {
		Status  string
		Vehicle string
		Stop    int64
		Events  []struct {
			Type string
			Data json.RawMessage
		}
	}
	ds.mustCall(t, 200, "GET", "/v1/shipments/L", f.disp, nil, &sh)
	last := sh.Events[len(sh.Events)-1]
	if sh.Status != "out_for_delivery" || sh.Vehicle != "van-2" || sh.Stop != newL || last.Type != "rerouted" ||
		!strings.Contains(string(last.Data), `"reason":"handover"`) || !strings.Contains(string(last.Data), `"from":"van-1"`) {
		t.Errorf("L after the handover: %s on %s (stop %d, new %d), last event %s %s", sh.Status, sh.Vehicle, sh.Stop, newL, last.Type, last.Data)
	}
	for _, e := range sh.Events {
		if e.Type == "delayed" {
			t.Errorf("L's recipient told of a delay the handover undid: %s", e.Data)
		}
	}

	{
		t.Run("pages", func(t *testing.T) {
			browser := browsertest.Start(t)
			dir := browsertest.Artefacts(t)
			for _, d := range []struct{ name, key, want, shot string }{
				{"van-1", drv1, fmt.Sprintf("#stop-%d", oldL), "handover-1-driver-van-1.png"},
				{"van-2", drv2, fmt.Sprintf("#stop-%d", newL), "handover-2-driver-van-2.png"},
			} {
				tab := browsertest.Tab(t, browser, 390, 844, true)
				browsertest.Do(t, tab, 30*time.Second, "sign in as "+d.name,
					chromedp.Navigate(ds.url+"/driver"),
					chromedp.WaitVisible(chromedp.CSS("#key")),
					chromedp.SetValue(chromedp.CSS("#key"), d.key),
					chromedp.Click(chromedp.CSS("#signin")),
					chromedp.WaitVisible(chromedp.CSS(d.want)))
				if d.name == "van-1" {
					browsertest.Do(t, tab, 10*time.Second, "open the done list", chromedp.Click(chromedp.CSS("#done summary")))
					if got := browsertest.Eval[string](t, tab, `document.getElementById('progress-text').textContent`); got != "0 of 2 done" {
						t.Errorf("van-1's progress: %q, want 0 of 2 done", got)
					}
				}
				browsertest.Shoot(t, tab, dir, d.shot)
				status := browsertest.Eval[string](t, tab, fmt.Sprintf(`document.querySelector('%s .stop-status').textContent`, d.want))
				actions := browsertest.Eval[int](t, tab, fmt.Sprintf(`document.querySelectorAll('%s [data-action="delivered"]').length`, d.want))
				switch {
				case d.name == "van-1" && (status != "Handed to another van" || actions != 0):
					t.Errorf("van-1's app: L shows %q with %d delivered buttons", status, actions)
				case d.name == "van-2" && (status != "On the way" || actions != 1):
					t.Errorf("van-2's app: L shows %q with %d delivered buttons", status, actions)
				}
				browsertest.Do(t, tab, 20*time.Second, "sign out "+d.name, chromedp.Click(chromedp.CSS("#logout")), chromedp.WaitVisible(chromedp.CSS("#key")))
			}
			track := browsertest.Tab(t, browser, 390, 844, true)
			browsertest.Do(t, track, 30*time.Second, "L's tracking page", chromedp.Navigate(ds.url+toks["L"]), chromedp.WaitVisible(chromedp.CSS("#headline")))
			time.Sleep(time.Second)
			browsertest.Shoot(t, track, dir, "handover-3-tracking-L.png")
			t.Logf("screenshots in %s", dir)
		})
	}

	// The old stop is over for van-1's driver; the new one is van-2's.
	ds.mustCall(t, 409, "POST", fmt.Sprintf("/v1/stops/%d/status", oldL), drv1, map[string]any{"status": "delivered"}, nil)
	ds.mustCall(t, 403, "POST", fmt.Sprintf("/v1/stops/%d/status", newL), drv1, map[string]any{"status": "delivered"}, nil)
	ds.mustCall(t, 200, "POST", fmt.Sprintf("/v1/stops/%d/status", newL), drv2, map[string]any{"status": "delivered"}, nil)
	ds.mustCall(t, 200, "GET", "/v1/shipments/L", f.disp, nil, &sh)
	if sh.Status != "delivered" {
		t.Errorf("L delivered by van-2: %s", sh.Status)
	}
}
