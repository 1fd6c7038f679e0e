package engine

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lastmile/lastmile/engine/seal"
	"github.com/lastmile/lastmile/engine/store"
	"github.com/lastmile/lastmile/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// dispatchServer is a test server on Monaco with a state store.
type dispatchServer struct {
	*testServer
	admin string
	where string // SQLite file or PostgreSQL DSN
	st    *store.Store
}

// newDispatchServer starts a server with a store on backend "sqlite" or
// "postgres" and an environment admin key.
func newDispatchServer(t *testing.T, backend string) *dispatchServer {
	t.Helper()
	return newDispatchServerWith(t, backend, nil)
}

// newDispatchServerWith is newDispatchServer with the configuration
// changed by edit (nil: none).
func newDispatchServerWith(t *testing.T, backend string, edit func(*ServerConfig)) *dispatchServer {
	t.Helper()
	r := monaco(t)
	var where string
	switch backend {
	case "sqlite":
		where = filepath.Join(t.TempDir(), StoreFile)
	case "postgres":
		where = pgtest.DSN(t)
	}
	ring, err := seal.NewRing(seal.GenerateKey(1))
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(context.Background(), where, store.Options{Ring: ring})
	if err != nil {
		t.Fatal(err)
	}
	admin, _, _ := seal.NewAPIKey()
	logs := &syncBuffer{}
	cfg := ServerConfig{Store: st, AdminKey: admin, MaxBodyBytes: 64 << 10, Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	if edit != nil {
		edit(&cfg)
	}
	s, err := newServer(r.fork(), cfg, endpoints())
	if err != nil {
		t.Fatal(err)
	}
	ts, done := serveTest(t, s)
	ts.logs = logs
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		s.Shutdown(ctx)
		<-done
		st.Close()
	})
	return &dispatchServer{testServer: ts, admin: admin, where: where, st: st}
}

// call sends a request with a bearer key ("" for none) and returns the
// status and body.
// oversized is a request body of that many bytes that call announces
// (Content-Length) without sending: a server that refuses it answers at
// once, where sending it would race the server's close (a connection
// reset instead of the answer).
type oversized int

// callOversized sends the request line and headers of a body of n bytes
// over a raw connection and reads the answer.
func (ds *dispatchServer) callOversized(t *testing.T, method, path, key string, n int) (int, []byte) {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(ds.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(conn, "%s %s HTTP/1.1\r\nHost: lastmile\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n",
		method, path, key, n)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("%s %s with a body of %d bytes: %v", method, path, n, err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out
}

func (ds *dispatchServer) call(t *testing.T, method, path, key string, body any) (int, []byte) {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case oversized:
		return ds.callOversized(t, method, path, key, int(b))
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	case string:
		rd = strings.NewReader(b)
	default:
		rd = bytes.NewReader(mustJSON(b))
	}
	req, err := http.NewRequest(method, ds.url+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out
}

func (ds *dispatchServer) mustCall(t *testing.T, want int, method, path, key string, body any, into any) {
	t.Helper()
	status, out := ds.call(t, method, path, key, body)
	if status != want {
		t.Fatalf("%s %s: status %d, want %d: %s", method, path, status, want, clip(out, 300))
	}
	if into != nil {
		if err := json.Unmarshal(out, into); err != nil {
			t.Fatalf("%s %s: %v: %s", method, path, err, clip(out, 300))
		}
	}
}

func (ds *dispatchServer) key(t *testing.T, scope, vehicle string) (id, key string) {
	t.Helper()
	var k struct{ ID, Key string }
	ds.mustCall(t, 201, "POST", "/v1/keys", ds.admin, map[string]any{"scope": scope, "vehicle": vehicle}, &k)
	return k.ID, k.Key
}

// Monaco points on roads.
var (
	monacoDepot = [2]float64{7.41993, 43.73141}
	monacoStops = [][2]float64{{7.42416, 43.73692}, {7.41520, 43.72790}, {7.42810, 43.74050}}
)

// TestDispatchAccess checks keys, scopes and bad input on every dispatch
// endpoint, and that no recipient's personal data reaches the database in
// clear or the logs.
func TestDispatchAccess(t *testing.T) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			ds := newDispatchServer(t, backend)
			_, disp := ds.key(t, "dispatcher", "")
			_, drv1 := ds.key(t, "driver", "van-1")
			_, drv2 := ds.key(t, "driver", "van-2")
			_, ro := ds.key(t, "readonly", "")
			revID, revoked := ds.key(t, "dispatcher", "")
			ds.mustCall(t, 200, "DELETE", "/v1/keys/"+revID, ds.admin, nil, nil)
			other, _, _ := seal.NewAPIKey()

			ship := func(tracking string) map[string]any {
				return map[string]any{"tracking": tracking, "recipient": map[string]any{"name": "Maria Secretname " + tracking,
					"phone": "+377612345678", "email": "maria.secret@example.test", "language": "fr"},
					"location": monacoStops[0], "address": "7 Avenue Secrète", "instructions": "code 1234 porte"}
			}
			ds.mustCall(t, 201, "POST", "/v1/shipments", disp, ship("T1"), nil)
			veh := map[string]any{"id": 1, "vehicle": "van-1", "start": monacoDepot, "end": monacoDepot}
			var plan struct {
				Routes []struct {
					Stops []struct{ ID int64 }
				}
			}
			ds.mustCall(t, 201, "POST", "/v1/plans", disp, map[string]any{"vehicles": []any{veh},
				"routes": []any{map[string]any{"vehicle": "van-1", "shipments": []string{"T1"}}}}, &plan)
			stop := fmt.Sprint(plan.Routes[0].Stops[0].ID)
			ping := func(v string) map[string]any {
				return map[string]any{"positions": []any{map[string]any{"vehicle": v, "time": 1767600000, "location": monacoDepot}}}
			}
			injection := `x'); DROP TABLE shipments; --`
			long := strings.Repeat("é", 5000)
			cases := []struct {
				name         string
				method, path string
				key          string
				body         any
				want         int
			}{
				{"no key", "GET", "/v1/shipments/T1", "", nil, 401},
				{"malformed key", "GET", "/v1/shipments/T1", "lm_nope", nil, 401},
				{"unknown key", "GET", "/v1/shipments/T1", other, nil, 401},
				{"revoked key", "GET", "/v1/shipments/T1", revoked, nil, 401},
				{"readonly reads", "GET", "/v1/shipments/T1", ro, nil, 200},
				{"readonly writes", "POST", "/v1/shipments", ro, ship("T2"), 403},
				{"driver creates keys", "POST", "/v1/keys", drv1, map[string]any{"scope": "admin"}, 403},
				{"dispatcher creates keys", "POST", "/v1/keys", disp, map[string]any{"scope": "admin"}, 403},
				{"driver plans", "POST", "/v1/plans", drv1, map[string]any{}, 403},
				{"driver pings its van", "POST", "/v1/positions", drv1, ping("van-1"), 200},
				{"driver pings another van", "POST", "/v1/positions", drv1, ping("van-2"), 403},
				{"no key pings when keys exist", "POST", "/v1/positions", "", ping("van-1"), 401},
				{"no key traffic when keys exist", "POST", "/v1/traffic", "", map[string]any{"observations": []any{}}, 401},
				{"routing needs a key when keys exist", "GET", "/v1/nearest/7.41993,43.73141", "", nil, 401},
				{"routing with a key", "GET", "/v1/nearest/7.41993,43.73141", ro, nil, 200},
				{"other driver's stop", "POST", "/v1/stops/" + stop + "/status", drv2, map[string]any{"status": "arrived"}, 403},
				{"driver cancels", "POST", "/v1/stops/" + stop + "/status", drv1, map[string]any{"status": "cancelled"}, 403},
				{"other driver's vehicle", "GET", "/v1/vehicles/van-1", drv2, nil, 403},
				{"own vehicle", "GET", "/v1/vehicles/van-1", drv1, nil, 200},
				{"driver reads the log", "GET", "/v1/events", drv1, nil, 200},
				{"unknown tracking", "GET", "/v1/shipments/NOPE", disp, nil, 404},
				{"injection as tracking", "GET", "/v1/shipments/" + "x%27%3B%20DROP%20TABLE%20shipments", disp, nil, 404},
				{"unknown stop", "POST", "/v1/stops/99999/status", disp, map[string]any{"status": "arrived"}, 404},
				{"stop not a number", "POST", "/v1/stops/abc/status", disp, map[string]any{"status": "arrived"}, 404},
				{"unknown vehicle", "GET", "/v1/vehicles/van-9", disp, nil, 404},
				{"malformed JSON", "POST", "/v1/shipments", disp, `{"tracking": "T3",`, 400},
				{"unknown field", "POST", "/v1/shipments", disp, `{"tracking": "T3", "evil": 1}`, 400},
				{"duplicate tracking", "POST", "/v1/shipments", disp, ship("T1"), 409},
				{"injection in name is data", "POST", "/v1/shipments", disp, func() any {
					b := ship("T4")
					b["recipient"].(map[string]any)["name"] = injection
					b["address"] = "<script>alert(1)</script>"
					return b
				}(), 201},
				{"injection as tracking number", "POST", "/v1/shipments", disp, func() any { b := ship("T5"); b["tracking"] = injection; return b }(), 400},
				{"long name", "POST", "/v1/shipments", disp, func() any { b := ship("T6"); b["recipient"].(map[string]any)["name"] = long; return b }(), 400},
				{"long address", "POST", "/v1/shipments", disp, func() any { b := ship("T7"); b["address"] = long; return b }(), 400},
				{"long instructions", "POST", "/v1/shipments", disp, func() any { b := ship("T8"); b["instructions"] = long; return b }(), 400},
				{"body over the limit", "POST", "/v1/shipments", disp, oversized(70 << 10), 413},
				{"event with a bad type", "POST", "/v1/shipments/T1/events", disp, map[string]any{"id": "e1", "type": "delivered", "time": 1}, 400},
				{"event with a long note", "POST", "/v1/shipments/T1/events", disp, map[string]any{"id": "e1", "type": "shipped", "time": 1, "note": long}, 400},
				{"event", "POST", "/v1/shipments/T1/events", disp, map[string]any{"id": injection, "type": "shipped", "time": 1767590000}, 201},
				{"event again", "POST", "/v1/shipments/T1/events", disp, map[string]any{"id": injection, "type": "shipped", "time": 1767590000}, 200},
				{"event on an unknown shipment", "POST", "/v1/shipments/NOPE/events", disp, map[string]any{"id": "e2", "type": "shipped", "time": 1}, 404},
				{"status with a bad reason", "POST", "/v1/stops/" + stop + "/status", drv1, map[string]any{"status": "failed", "reason": injection}, 400},
				{"events with a bad cursor", "GET", "/v1/events?after=-1", disp, nil, 400},
				{"events with an unknown parameter", "GET", "/v1/events?since=1", disp, nil, 400},
				{"plan of an unknown shipment", "POST", "/v1/plans", disp, map[string]any{"vehicles": []any{veh}, "shipments": []string{"NOPE"}}, 404},
				{"plan without vehicles", "POST", "/v1/plans", disp, map[string]any{"vehicles": []any{}, "shipments": []string{"T1"}}, 400},
				{"driver adds a stop", "POST", "/v1/routes/1/stops", drv1, map[string]any{"tracking": "T1"}, 403},
				{"stop on an unknown route", "POST", "/v1/routes/999/stops", disp, map[string]any{"tracking": "T1"}, 404},
				{"stop of an unknown shipment", "POST", "/v1/routes/1/stops", disp, map[string]any{"tracking": "NOPE"}, 404},
				{"window reversed", "POST", "/v1/shipments/T1/window", disp, map[string]any{"time_window": []int64{20, 10}}, 400},
				{"window by a driver", "POST", "/v1/shipments/T1/window", drv1, map[string]any{"time_window": []int64{10, 20}}, 403},
				{"driver delivers its stop", "POST", "/v1/stops/" + stop + "/status", drv1, map[string]any{"status": "delivered"}, 200},
				{"delivered again", "POST", "/v1/stops/" + stop + "/status", drv1, map[string]any{"status": "delivered"}, 200},
				{"failed after delivered", "POST", "/v1/stops/" + stop + "/status", disp, map[string]any{"status": "failed", "reason": "refused"}, 409},
			}
			for _, c := range cases {
				status, out := ds.call(t, c.method, c.path, c.key, c.body)
				if status != c.want {
					t.Errorf("%s: %s %s: status %d, want %d: %s", c.name, c.method, clip([]byte(c.path), 60), status, c.want, clip(out, 200))
					continue
				}
				if status >= 400 {
					var e struct{ Code, Message string }
					if err := json.Unmarshal(out, &e); err != nil || e.Code == "" || e.Message == "" {
						t.Errorf("%s: error body is not a JSON error: %s", c.name, clip(out, 200))
					}
				}
			}
			// The shipment's timeline over HTTP.
			var sh struct {
				Status string
				Events []struct {
					Type string
					Seq  int
				}
			}
			ds.mustCall(t, 200, "GET", "/v1/shipments/T1", disp, nil, &sh)
			var got []string
			for i, e := range sh.Events {
				got = append(got, e.Type)
				if e.Seq != i+1 {
					t.Errorf("event %d has seq %d", i, e.Seq)
				}
			}
			if sh.Status != "delivered" || strings.Join(got, " ") != "shipped out_for_delivery stops_away arriving_soon arrived delivered" {
				t.Errorf("T1: %s: %v", sh.Status, got)
			}
			var page EventsPage
			ds.mustCall(t, 200, "GET", "/v1/events?after=0&limit=1000", ro, nil, &page)
			if len(page.Events) != len(sh.Events) || page.Next != page.Events[len(page.Events)-1].Cursor {
				t.Errorf("event log: %d events, next %d", len(page.Events), page.Next)
			}
			// A driver's event log holds its own vehicle's shipments only.
			client.CloseIdleConnections() // the server closed some after the oversized cases
			ds.mustCall(t, 201, "POST", "/v1/shipments", disp, ship("T2"), nil)
			ds.mustCall(t, 201, "POST", "/v1/shipments/T2/events", disp, map[string]any{"id": "m1", "type": "shipped", "time": 1767590000}, nil)
			for _, c := range []struct {
				key  string
				want int
			}{{drv1, 1}, {drv2, 0}, {disp, 2}} {
				var page struct{ Events []struct{ Tracking string } }
				ds.mustCall(t, 200, "GET", "/v1/events?limit=1000", c.key, nil, &page)
				seen := map[string]bool{}
				for _, e := range page.Events {
					seen[e.Tracking] = true
				}
				if len(seen) != c.want || (c.key == drv1 && !seen["T1"]) {
					t.Errorf("event log: shipments %v, want %d", seen, c.want)
				}
			}
			// Stored inert.
			var s4 struct{ Tracking string }
			ds.mustCall(t, 200, "GET", "/v1/shipments/T4", disp, nil, &s4)
			if stored, err := ds.st.ShipmentByTracking(context.Background(), "T4"); err != nil || stored.Recipient.Name != injection {
				t.Errorf("T4 stored: %+v %v", stored.Recipient, err)
			}
			// No personal datum in clear: database files or dump, logs.
			var raw []byte
			if backend == "sqlite" {
				for _, suffix := range []string{"", "-wal"} {
					b, _ := os.ReadFile(ds.where + suffix)
					raw = append(raw, b...)
				}
			} else {
				raw = pgtest.Dump(t, ds.where)
			}
			logs := ds.logs.String()
			if !strings.Contains(logs, "/v1/shipments") {
				t.Fatalf("the debug log has no request lines: is it the server's?")
			}
			for _, secret := range []string{"Secretname", "612345678", "maria.secret", "Avenue Secr", "code 1234"} {
				if bytes.Contains(raw, []byte(secret)) {
					t.Errorf("%q in clear in the database", secret)
				}
				if strings.Contains(logs, secret) {
					t.Errorf("%q in the logs", secret)
				}
			}
		})
	}
}
