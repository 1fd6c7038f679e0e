package eta

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/lastmile/lastmile/graph"
)

// ioProfile fits a small profile in Lisbon time on a three-edge network.
func ioProfile(t testing.TB) (*Profile, *graph.Network) {
	t.Helper()
	net := etaToyNetwork([]etaToyEdge{
		{etaLat, etaLon, 200, 20, graph.ClassPrimary, 1},
		{etaLat + 0.0005, etaLon, 200, 20, graph.ClassPrimary, 2},
		{etaLat + 0.001, etaLon, 300, 30, graph.ClassResidential, 3},
	})
	loc, err := time.LoadLocation("Europe/Lisbon")
	if err != nil {
		t.Skipf("no time zone data: %v", err)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	var obs []Observation
	for b := range NumBins {
		for k := range 6 {
			obs = append(obs, Observation{Edge: uint32(k % 2), Time: etaBinTime(b, k, rng), Duration: 20 * etaPattern(b)})
		}
	}
	p, err := FitProfile(net, obs, ProfileOptions{Location: loc})
	if err != nil {
		t.Fatal(err)
	}
	return p, net
}

func TestProfileRoundTrip(t *testing.T) {
	p, net := ioProfile(t)
	var buf bytes.Buffer
	if err := WriteProfile(&buf, p, net); err != nil {
		t.Fatal(err)
	}
	q, err := ReadProfile(bytes.NewReader(buf.Bytes()), net)
	if err != nil {
		t.Fatal(err)
	}
	if q.Location().String() != "Europe/Lisbon" || q.Stats() != p.Stats() {
		t.Fatalf("read zone %v stats %+v, wrote %v %+v", q.Location(), q.Stats(), p.Location(), p.Stats())
	}
	start := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC) // spans the change to summer time
	for e := range uint32(len(net.Edges)) {
		for tm := start; tm.Before(start.AddDate(0, 0, 8)); tm = tm.Add(7 * time.Minute) {
			if a, b := p.Factor(e, tm), q.Factor(e, tm); a != b {
				t.Fatalf("edge %d at %v: factor %v written, %v read", e, tm, a, b)
			}
		}
	}
	if p.Factor(0, start.Add(8*time.Hour)) == 1 {
		t.Fatal("the fitted profile is flat: the round trip proves nothing")
	}
}

func TestReadProfileErrors(t *testing.T) {
	p, net := ioProfile(t)
	var buf bytes.Buffer
	if err := WriteProfile(&buf, p, net); err != nil {
		t.Fatal(err)
	}
	good := buf.Bytes()
	// another network: one way id differs
	other := *net
	other.Edges = append([]graph.Edge(nil), net.Edges...)
	other.Edges[2].WayID = 99
	if _, err := ReadProfile(bytes.NewReader(good), &other); !errors.Is(err, ErrProfileMismatch) {
		t.Fatalf("other network: %v", err)
	}
	// every truncation and every single-byte change is an error
	for n := range len(good) {
		if _, err := ReadProfile(bytes.NewReader(good[:n]), net); err == nil {
			t.Fatalf("truncated to %d of %d bytes: no error", n, len(good))
		}
	}
	for i := range len(good) {
		bad := bytes.Clone(good)
		bad[i] ^= 0x41
		if _, err := ReadProfile(bytes.NewReader(bad), net); err == nil {
			t.Fatalf("byte %d changed: no error", i)
		}
	}
	if _, err := ReadProfile(bytes.NewReader(append(bytes.Clone(good), 0)), net); err == nil {
		t.Fatal("trailing byte: no error")
	}
	if err := WriteProfile(&buf, p, &other); err != nil {
		t.Fatal(err) // same edge count: allowed, the fingerprint tells on read
	}
	small := etaToyNetwork([]etaToyEdge{{etaLat, etaLon, 200, 20, graph.ClassPrimary, 1}})
	if err := WriteProfile(&buf, p, small); err == nil {
		t.Fatal("profile written against a network of another size")
	}
}

func FuzzReadProfile(f *testing.F) {
	p, net := ioProfile(f)
	var buf bytes.Buffer
	if err := WriteProfile(&buf, p, net); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	f.Add([]byte(profileMagic))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		q, err := ReadProfile(bytes.NewReader(b), net)
		if err != nil {
			return
		}
		for e := range uint32(len(net.Edges)) {
			if x := q.Factor(e, time.Unix(1.7e9, 0)); !(x >= minFactor && x <= maxFactor) {
				t.Fatalf("accepted profile gives factor %v", x)
			}
		}
	})
}
