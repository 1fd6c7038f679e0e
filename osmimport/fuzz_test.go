package osmimport

import (
	"bytes"
	"fmt"
	"math"
	"os"
	"strings"
	"testing"

	"github.com/lastmile/lastmile/graph"
)

// sameNetwork compares two networks exactly, except that coordinates,
// distances and durations may differ by rounding (PBF stores coordinates
// as integers of 100 nanodegrees, XML as decimal text).
func sameNetwork(a, b *graph.Network) error {
	close := func(x, y []float64) bool {
		if len(x) != len(y) {
			return false
		}
		for i := range x {
			if math.Abs(x[i]-y[i]) > 1e-9*max(1, math.Abs(y[i])) {
				return false
			}
		}
		return true
	}
	if !close(a.Lat, b.Lat) || !close(a.Lon, b.Lon) || !close(a.ShapeLat, b.ShapeLat) || !close(a.ShapeLon, b.ShapeLon) {
		return fmt.Errorf("positions differ")
	}
	if fmt.Sprint(a.OSMNode) != fmt.Sprint(b.OSMNode) || fmt.Sprint(a.Restrictions) != fmt.Sprint(b.Restrictions) {
		return fmt.Errorf("node ids or restrictions differ")
	}
	if fmt.Sprintf("%q", a.Names) != fmt.Sprintf("%q", b.Names) {
		return fmt.Errorf("names %q vs %q", a.Names, b.Names)
	}
	if len(a.Edges) != len(b.Edges) {
		return fmt.Errorf("%d edges vs %d", len(a.Edges), len(b.Edges))
	}
	for i := range a.Edges {
		x, y := a.Edges[i], b.Edges[i]
		if !close([]float64{x.Distance, x.Duration}, []float64{y.Distance, y.Duration}) {
			return fmt.Errorf("edge %d: %+v vs %+v", i, x, y)
		}
		x.Distance, x.Duration = y.Distance, y.Duration
		if x != y {
			return fmt.Errorf("edge %d: %+v vs %+v", i, x, y)
		}
	}
	return nil
}

// specs are fixtures shared by the format-equivalence test and the fuzz seeds.
func specs() []fxSpec {
	return []fxSpec{
		crossSpec([]fxRel{
			restriction(1, 11, 5, 14, "restriction", "no_left_turn"),
			restriction(2, 12, 5, 14, "restriction", "only_straight_on"),
			restriction(3, 13, 5, 12, "restriction", "no_right_turn", "except", "psv"),
		}),
		barrierSpec([]string{"barrier", "bollard"}),
		barrierSpec([]string{"barrier", "gate"}),
		{
			[]fxNode{{1, 0, -1, nil}, {2, 1, 0, nil}, {3, 0, 1, nil}, {4, -1, 0, nil}, {5, 0, -3, nil}, {6, 0, 3, nil}},
			[]fxWay{
				{10, []int64{1, 2, 3, 4, 1}, []string{"highway", "primary", "junction", "roundabout", "maxspeed", "30 mph", "name", "Rotunda da Boavista"}},
				{11, []int64{5, 1}, []string{"highway", "tertiary", "maxspeed", "PT:urban", "ref", "M 1;N 2"}},
				{12, []int64{3, 6}, []string{"highway", "service", "access", "destination", "name", " Straße  東京 "}},
			},
			nil,
		},
	}
}

// TestPBFMatchesXML imports each fixture from XML, raw PBF and zlib PBF and
// requires identical networks: the PBF path goes through osmpbf and the
// block validator, the XML path through osmxml.
func TestPBFMatchesXML(t *testing.T) {
	for i, s := range specs() {
		want, wst, err := Read(strings.NewReader(s.xml()), FormatXML, Options{})
		if err != nil {
			t.Fatalf("spec %d xml: %v", i, err)
		}
		checkInvariants(t, want)
		for _, zip := range []bool{false, true} {
			got, gst, err := Read(bytes.NewReader(s.pbf(zip)), FormatAuto, Options{Workers: 2})
			if err != nil {
				t.Fatalf("spec %d pbf (zip %v): %v", i, zip, err)
			}
			if err := sameNetwork(got, want); err != nil {
				t.Errorf("spec %d pbf (zip %v): network differs from XML: %v\n%+v\n%+v", i, zip, err, got, want)
			}
			if gst.RestrictionRows != wst.RestrictionRows || gst.BarrierNodes != wst.BarrierNodes {
				t.Errorf("spec %d pbf (zip %v): stats differ", i, zip)
			}
		}
	}
}

func FuzzReadXML(f *testing.F) {
	for _, s := range specs() {
		f.Add([]byte(s.xml()))
	}
	f.Add([]byte(""))
	f.Add([]byte("<osm></osm>"))
	f.Add([]byte(`<osm><node id="1" lat="NaN" lon="1"/><node id="2" lat="91" lon="1"/><way id="1"><nd ref="1"/><nd ref="2"/><tag k="highway" v="primary"/></way></osm>`))
	f.Fuzz(func(t *testing.T, data []byte) {
		net, _, err := Read(bytes.NewReader(data), FormatXML, Options{Workers: 1})
		if err != nil {
			return
		}
		checkInvariants(t, net)
	})
}

func FuzzReadPBF(f *testing.F) {
	for _, s := range specs() {
		f.Add(s.pbf(false))
		f.Add(s.pbf(true))
	}
	f.Add([]byte{})
	f.Add([]byte{0, 0, 0, 0})
	f.Add([]byte{0, 0, 0, 13, 0x0a, 9, 'O', 'S', 'M', 'H', 'e', 'a', 'd', 'e', 'r', 0x18, 0})
	if data, err := os.ReadFile(extractPathOrEmpty("monaco.osm.pbf")); err == nil {
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		net, _, err := Read(bytes.NewReader(data), FormatPBF, Options{Workers: 2})
		if err != nil {
			return
		}
		checkInvariants(t, net)
	})
}
