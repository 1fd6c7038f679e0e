package webhooktest

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The Standard Webhooks specification's published test vector (the
// reference libraries' signing test).
const (
	vectorSecret    = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	vectorID        = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	vectorTimestamp = 1614265330
	vectorBody      = `{"test": 2432232314}`
	vectorSignature = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
)

func vectorHeader(sig string) http.Header {
	h := http.Header{}
	h.Set(HeaderID, vectorID)
	h.Set(HeaderTimestamp, strconv.Itoa(vectorTimestamp))
	h.Set(HeaderSignature, sig)
	return h
}

// TestVerifyPublishedVector checks Sign and Verify against the published
// vector, and that Verify refuses what differs from it in any part.
func TestVerifyPublishedVector(t *testing.T) {
	got, err := Sign(vectorSecret, vectorID, vectorTimestamp, []byte(vectorBody))
	if err != nil || got != vectorSignature {
		t.Fatalf("Sign = %q, %v; want %q", got, err, vectorSignature)
	}
	otherKey := "whsec_" + base64.StdEncoding.EncodeToString([]byte("another key of the same length!"))
	for _, tc := range []struct {
		name   string
		secret string
		header http.Header
		body   string
		ok     bool
	}{
		{"the vector", vectorSecret, vectorHeader(vectorSignature), vectorBody, true},
		{"among other signatures", vectorSecret, vectorHeader("v1a,abc v2," + vectorSignature[3:] + " " + vectorSignature), vectorBody, true},
		{"secret without prefix", strings.TrimPrefix(vectorSecret, "whsec_"), vectorHeader(vectorSignature), vectorBody, true},
		{"body changed", vectorSecret, vectorHeader(vectorSignature), `{"test": 2432232315}`, false},
		{"body with a space more", vectorSecret, vectorHeader(vectorSignature), `{"test":  2432232314}`, false},
		{"other key", otherKey, vectorHeader(vectorSignature), vectorBody, false},
		{"zero signature", vectorSecret, vectorHeader("v1," + base64.StdEncoding.EncodeToString(make([]byte, 32))), vectorBody, false},
		{"wrong version", vectorSecret, vectorHeader("v2," + vectorSignature[3:]), vectorBody, false},
		{"no signature", vectorSecret, vectorHeader(""), vectorBody, false},
		{"not base64", vectorSecret, vectorHeader("v1,!!!"), vectorBody, false},
		{"timestamp changed", vectorSecret, func() http.Header {
			h := vectorHeader(vectorSignature)
			h.Set(HeaderTimestamp, strconv.Itoa(vectorTimestamp+1))
			return h
		}(), vectorBody, false},
		{"id changed", vectorSecret, func() http.Header {
			h := vectorHeader(vectorSignature)
			h.Set(HeaderID, vectorID+"x")
			return h
		}(), vectorBody, false},
		{"timestamp not a number", vectorSecret, func() http.Header {
			h := vectorHeader(vectorSignature)
			h.Set(HeaderTimestamp, "2021-02-26")
			return h
		}(), vectorBody, false},
		{"no id", vectorSecret, func() http.Header {
			h := vectorHeader(vectorSignature)
			h.Del(HeaderID)
			return h
		}(), vectorBody, false},
		{"secret not base64", "whsec_???", vectorHeader(vectorSignature), vectorBody, false},
		{"no secret", "", vectorHeader(vectorSignature), vectorBody, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := Verify(tc.secret, tc.header, []byte(tc.body))
			if (err == nil) != tc.ok {
				t.Errorf("Verify: %v, want ok=%v", err, tc.ok)
			}
		})
	}
}

func TestCheckAge(t *testing.T) {
	d := Delivery{Timestamp: strconv.Itoa(vectorTimestamp)}
	at := time.Unix(vectorTimestamp, 0)
	for _, tc := range []struct {
		now time.Time
		ok  bool
	}{
		{at, true},
		{at.Add(4 * time.Minute), true},
		{at.Add(-4 * time.Minute), true},
		{at.Add(6 * time.Minute), false},
		{at.Add(-6 * time.Minute), false},
	} {
		if err := CheckAge(d, tc.now, 5*time.Minute); (err == nil) != tc.ok {
			t.Errorf("now %v: %v, want ok=%v", tc.now.Sub(at), err, tc.ok)
		}
	}
	if CheckAge(Delivery{Timestamp: "x"}, at, time.Hour) == nil {
		t.Error("a timestamp that is not a number passes")
	}
}

// post sends a signed payload of e to the receiver.
func post(t *testing.T, rc *Receiver, secret string, e Event, client *http.Client) (int, error) {
	t.Helper()
	body := fmt.Appendf(nil, `{"type":%q,"timestamp":"2026-01-05T08:00:00Z","data":{"id":%q,"cursor":%d,"tracking":%q,"seq":%d,"type":%q,"time":%d,"data":{}}}`,
		e.Type, e.ID, e.Cursor, e.Tracking, e.Seq, e.Type, e.Time)
	ts := time.Now().Unix()
	sig, err := Sign(secret, e.ID, ts, body)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest("POST", rc.URL, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set(HeaderID, e.ID)
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(ts, 10))
	req.Header.Set(HeaderSignature, sig)
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// TestReceiver records requests, verifies them, answers as its behaviour
// says (status, headers, a delay the client gives up on) and CheckOrder
// judges the accepted stream.
func TestReceiver(t *testing.T) {
	rc := New(t)
	secret := "whsec_" + base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))
	rc.SetSecret(secret)
	rc.SetBehaviour(func(n int, r *http.Request, body []byte) Response {
		switch n {
		case 2:
			return Response{Status: 503, Header: http.Header{"Retry-After": {"1"}}}
		case 4:
			return Response{Delay: 2 * time.Second}
		}
		return Response{}
	})
	evs := []Event{
		{ID: "ev_a1", Tracking: "A", Seq: 1, Type: "out_for_delivery", Cursor: 1},
		{ID: "ev_b1", Tracking: "B", Seq: 1, Type: "out_for_delivery", Cursor: 2},
		{ID: "ev_a2", Tracking: "A", Seq: 2, Type: "delivered", Cursor: 3},
	}
	quick := &http.Client{Timeout: 300 * time.Millisecond}
	for k, tc := range []struct {
		e      Event
		status int // 0: the client gives up
	}{
		{evs[0], 204},
		{evs[1], 503}, // failed: sent again
		{evs[1], 204},
		{evs[2], 0}, // abandoned: sent again
		{evs[2], 204},
		{evs[2], 204}, // a duplicate, same id
	} {
		status, err := post(t, rc, secret, tc.e, quick)
		if tc.status == 0 && err == nil || tc.status != 0 && status != tc.status {
			t.Fatalf("post %d: %d %v, want %d", k+1, status, err, tc.status)
		}
	}
	time.Sleep(100 * time.Millisecond) // the abandoned request is recorded once the client hangs up
	got := rc.Deliveries()
	if len(got) != 6 || len(rc.Accepted()) != 4 || len(rc.BadSignatures()) != 0 {
		t.Fatalf("%d requests, %d accepted, %d bad signatures", len(got), len(rc.Accepted()), len(rc.BadSignatures()))
	}
	if d := got[1]; d.Status != 503 || d.ID != "ev_b1" || d.Payload.Data.Tracking != "B" {
		t.Errorf("second request: %+v", d)
	}
	var abandoned int
	for _, d := range got {
		if d.Abandoned {
			abandoned++
		}
	}
	if abandoned != 1 {
		t.Errorf("%d abandoned requests, want 1", abandoned)
	}
	if err := CheckOrder(rc.Accepted(), evs); err != nil {
		t.Errorf("CheckOrder: %v", err)
	}

	// A request signed with another secret is recorded as bad.
	if _, err := post(t, rc, "whsec_"+base64.StdEncoding.EncodeToString([]byte("wrong")), evs[0], quick); err != nil {
		t.Fatal(err)
	}
	if bad := rc.BadSignatures(); len(bad) != 1 || bad[0].N != 7 {
		t.Errorf("bad signatures: %+v", bad)
	}

	// A dropped connection: the client gets no answer, the request is
	// recorded, not accepted.
	rc.SetBehaviour(func(int, *http.Request, []byte) Response { return Response{Drop: true} })
	if status, err := post(t, rc, secret, evs[0], quick); err == nil {
		t.Fatalf("dropped: answered %d", status)
	}
	if got := rc.Deliveries(); len(got) != 8 || !got[7].Dropped || got[7].Accepted() || len(rc.Accepted()) != 5 {
		t.Errorf("dropped: %d requests, the last %+v", len(got), got[len(got)-1])
	}

	// Requests before the secret is known are verified when it is set.
	late := New(t)
	if _, err := post(t, late, secret, evs[0], quick); err != nil {
		t.Fatal(err)
	}
	if bad := late.BadSignatures(); len(bad) != 1 || !errors.Is(bad[0].SignatureErr, ErrNoSecret) {
		t.Fatalf("before the secret: %+v", bad)
	}
	late.SetSecret(secret)
	if bad := late.BadSignatures(); len(bad) != 0 {
		t.Errorf("after the secret: %+v", bad)
	}
}

// TestCheckOrderFindsProblems feeds CheckOrder streams that break each of
// its rules.
func TestCheckOrderFindsProblems(t *testing.T) {
	evs := []Event{
		{ID: "ev_a1", Tracking: "A", Seq: 1, Type: "out_for_delivery"},
		{ID: "ev_a2", Tracking: "A", Seq: 2, Type: "arrived"},
		{ID: "ev_b1", Tracking: "B", Seq: 1, Type: "out_for_delivery"},
	}
	d := func(n int, e Event, id string) Delivery {
		return Delivery{N: n, ID: id, Status: 204, Payload: Payload{Type: e.Type, Data: e}}
	}
	for _, tc := range []struct {
		name string
		got  []Delivery
		want string // "" = no problem
	}{
		{"in order", []Delivery{d(1, evs[0], "ev_a1"), d(2, evs[2], "ev_b1"), d(3, evs[1], "ev_a2")}, ""},
		{"duplicate with same id", []Delivery{d(1, evs[0], "ev_a1"), d(2, evs[0], "ev_a1"), d(3, evs[2], "ev_b1"), d(4, evs[1], "ev_a2"), d(5, evs[0], "ev_a1")}, ""},
		{"out of order", []Delivery{d(1, evs[1], "ev_a2"), d(2, evs[0], "ev_a1"), d(3, evs[2], "ev_b1")}, "first accepted after seq 2"},
		{"missing", []Delivery{d(1, evs[0], "ev_a1"), d(2, evs[2], "ev_b1")}, "never accepted"},
		{"duplicate with another id", []Delivery{d(1, evs[0], "ev_a1"), d(2, evs[2], "ev_b1"), d(3, evs[1], "ev_a2"), d(4, evs[1], "ev_other")}, "want the event's id"},
		{"unknown event", []Delivery{d(1, evs[0], "ev_a1"), d(2, evs[2], "ev_b1"), d(3, evs[1], "ev_a2"), d(4, Event{ID: "ev_c1", Tracking: "C", Seq: 1}, "ev_c1")}, "not a wanted event"},
		{"wrong type", []Delivery{d(1, evs[0], "ev_a1"), d(2, evs[2], "ev_b1"), d(3, Event{ID: "ev_a2", Tracking: "A", Seq: 2, Type: "delivered"}, "ev_a2")}, `want "arrived"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckOrder(tc.got, evs)
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Errorf("CheckOrder: %v, want %q", err, tc.want)
			}
		})
	}
}
