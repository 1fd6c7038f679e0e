package osmimport

import (
	"math"
	"strings"
	"testing"

	"github.com/lastmile/lastmile/graph"
	"github.com/paulmach/osm"
)

// tagsOf builds osm.Tags from alternating keys and values.
func tagsOf(kv ...string) osm.Tags {
	var t osm.Tags
	for i := 0; i+1 < len(kv); i += 2 {
		t = append(t, osm.Tag{Key: kv[i], Value: kv[i+1]})
	}
	return t
}

func TestParseMaxspeed(t *testing.T) {
	tests := []struct {
		in   string
		want float64
		kind limitKind
	}{
		{"50", 50, limitValue},
		{" 50 ", 50, limitValue},
		{"50 km/h", 50, limitValue},
		{"50km/h", 50, limitValue},
		{"50 kmh", 50, limitValue},
		{"50 kph", 50, limitValue},
		{"30 mph", 30 * 1.609344, limitValue},
		{"30mph", 30 * 1.609344, limitValue},
		{"10 knots", 18.52, limitValue},
		{"12.5", 12.5, limitValue},
		{"none", 0, limitNone},
		{"walk", walkSpeedLimit, limitValue},
		{"signals", 0, limitDefault},
		{"variable", 0, limitDefault},
		{"DE:urban", 50, limitValue},
		{"DE:rural", 100, limitValue},
		{"DE:motorway", 0, limitNone},
		{"DE:living_street", walkSpeedLimit, limitValue},
		{"DE:zone30", 30, limitValue},
		{"DE:zone:30", 30, limitValue},
		{"zone30", 30, limitValue},
		{"FR:urban", 50, limitValue},
		{"FR:rural", 80, limitValue},
		{"FR:motorway", 130, limitValue},
		{"PT:rural", 90, limitValue},
		{"PT:urban", 50, limitValue},
		{"GB:nsl_single", 60 * 1.609344, limitValue},
		{"GB:nsl_dual", 70 * 1.609344, limitValue},
		{"RU:living_street", 20, limitValue},
		{"RU:urban", 60, limitValue},
		{"XY:urban", 50, limitValue}, // unknown country: generic row
		{"AT:walk", walkSpeedLimit, limitValue},
		{"60;50", 50, limitValue},
		{"signals;70", 70, limitValue},
		{"", 0, limitInvalid},
		{"fast", 0, limitInvalid},
		{"0", 0, limitInvalid},
		{"0.5", 0, limitInvalid},
		{"1", 1, limitValue},
		{"-30", 0, limitInvalid},
		{"9999", 0, limitInvalid},
		{"50 furlongs", 0, limitInvalid},
		{"DE:nonsense", 0, limitInvalid},
		{"1.2.3", 0, limitInvalid},
		{"zone", 0, limitInvalid},
		{"NaN", 0, limitInvalid},
	}
	for _, tc := range tests {
		got, kind := parseMaxspeed(tc.in)
		if kind != tc.kind || math.Abs(got-tc.want) > 1e-9 {
			t.Errorf("parseMaxspeed(%q) = %v, %v; want %v, %v", tc.in, got, kind, tc.want, tc.kind)
		}
	}
}

func TestParseOneway(t *testing.T) {
	tests := []struct {
		in      string
		implied bool
		want    onewayMode
	}{
		{"yes", false, onewayForward},
		{"true", false, onewayForward},
		{"1", false, onewayForward},
		{"-1", false, onewayBackward},
		{"reverse", false, onewayBackward},
		{"no", false, onewayNo},
		{"no", true, onewayNo},
		{"", false, onewayNo},
		{"", true, onewayForward},
		{"bogus", true, onewayForward},
		{"reversible", false, onewayReversible},
		{"alternating", true, onewayReversible},
	}
	for _, tc := range tests {
		if got := parseOneway(tc.in, tc.implied); got != tc.want {
			t.Errorf("parseOneway(%q, %v) = %v, want %v", tc.in, tc.implied, got, tc.want)
		}
	}
}

func TestCarAccess(t *testing.T) {
	tests := []struct {
		name   string
		tags   osm.Tags
		suffix string
		want   accessDecision
	}{
		{"none", tagsOf("highway", "residential"), "", accessUnknown},
		{"access=no", tagsOf("access", "no"), "", accessNo},
		{"access=private", tagsOf("access", "private"), "", accessNo},
		{"access=no motorcar=yes", tagsOf("access", "no", "motorcar", "yes"), "", accessYes},
		{"access=yes motor_vehicle=no", tagsOf("access", "yes", "motor_vehicle", "no"), "", accessNo},
		{"vehicle=no motor_vehicle=destination", tagsOf("vehicle", "no", "motor_vehicle", "destination"), "", accessRestricted},
		{"motorcar beats motor_vehicle", tagsOf("motor_vehicle", "no", "motorcar", "permissive"), "", accessYes},
		{"unknown value falls through", tagsOf("motorcar", "unknown", "access", "agricultural"), "", accessNo},
		{"delivery", tagsOf("access", "delivery"), "", accessRestricted},
		{"list most permissive", tagsOf("access", "private;delivery"), "", accessRestricted},
		{"forestry", tagsOf("access", "forestry"), "", accessNo},
		{"designated", tagsOf("motor_vehicle", "designated"), "", accessYes},
		{"forward suffix wins", tagsOf("motor_vehicle", "yes", "motor_vehicle:forward", "no"), ":forward", accessNo},
		{"backward suffix ignored going forward", tagsOf("motor_vehicle:backward", "no"), ":forward", accessUnknown},
		{"specific key beats suffixed general key", tagsOf("motorcar", "yes", "vehicle:forward", "no"), ":forward", accessYes},
	}
	for _, tc := range tests {
		if got := carAccess(tc.tags, tc.suffix); got != tc.want {
			t.Errorf("%s: carAccess = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestBarrierBlocks(t *testing.T) {
	tests := []struct {
		tags osm.Tags
		want bool
	}{
		{tagsOf("highway", "crossing"), false},
		{tagsOf("barrier", "bollard"), true},
		{tagsOf("barrier", "block"), true},
		{tagsOf("barrier", "jersey_barrier"), true},
		{tagsOf("barrier", "chain"), true},
		{tagsOf("barrier", "kerb"), true},
		{tagsOf("barrier", "something_new"), true},
		{tagsOf("barrier", "gate"), false},
		{tagsOf("barrier", "lift_gate"), false},
		{tagsOf("barrier", "toll_booth"), false},
		{tagsOf("barrier", "cattle_grid"), false},
		{tagsOf("barrier", "border_control"), false},
		{tagsOf("barrier", "entrance"), false},
		{tagsOf("barrier", "height_restrictor"), false},
		{tagsOf("barrier", "no"), false},
		{tagsOf("barrier", "bollard", "motorcar", "yes"), false},
		{tagsOf("barrier", "bollard", "access", "destination"), false},
		{tagsOf("barrier", "gate", "access", "private"), true},
		{tagsOf("barrier", "gate", "access", "private", "motor_vehicle", "yes"), false},
		{tagsOf("access", "no"), false}, // no barrier tag: never a barrier
	}
	for _, tc := range tests {
		if got := barrierBlocks(tc.tags); got != tc.want {
			t.Errorf("barrierBlocks(%v) = %v, want %v", tc.tags, got, tc.want)
		}
	}
}

func TestEvalWay(t *testing.T) {
	const f = maxspeedFactor
	tests := []struct {
		name           string
		tags           osm.Tags
		ok             bool
		class          graph.RoadClass
		fwd, back      bool
		speedF, speedB float64
		unparsed       int
	}{
		{"motorway implied oneway", tagsOf("highway", "motorway"), true, graph.ClassMotorway, true, false, 90, 90, 0},
		{"motorway oneway=no", tagsOf("highway", "motorway", "oneway", "no"), true, graph.ClassMotorway, true, true, 90, 90, 0},
		{"motorway_link implied", tagsOf("highway", "motorway_link"), true, graph.ClassMotorwayLink, true, false, 45, 45, 0},
		{"trunk", tagsOf("highway", "trunk"), true, graph.ClassTrunk, true, true, 85, 85, 0},
		{"primary", tagsOf("highway", "primary"), true, graph.ClassPrimary, true, true, 65, 65, 0},
		{"secondary_link", tagsOf("highway", "secondary_link"), true, graph.ClassSecondaryLink, true, true, 25, 25, 0},
		{"tertiary", tagsOf("highway", "tertiary"), true, graph.ClassTertiary, true, true, 40, 40, 0},
		{"unclassified", tagsOf("highway", "unclassified"), true, graph.ClassUnclassified, true, true, 25, 25, 0},
		{"residential", tagsOf("highway", "residential"), true, graph.ClassResidential, true, true, 25, 25, 0},
		{"living_street", tagsOf("highway", "living_street"), true, graph.ClassLivingStreet, true, true, 10, 10, 0},
		{"service", tagsOf("highway", "service"), true, graph.ClassService, true, true, 15, 15, 0},
		{"parking aisle", tagsOf("highway", "service", "service", "parking_aisle"), true, graph.ClassService, true, true, 5, 5, 0},
		{"road", tagsOf("highway", "road"), true, graph.ClassOther, true, true, 20, 20, 0},
		{"roundabout", tagsOf("highway", "primary", "junction", "roundabout"), true, graph.ClassPrimary, true, false, 65, 65, 0},
		{"oneway -1", tagsOf("highway", "residential", "oneway", "-1"), true, graph.ClassResidential, false, true, 25, 25, 0},
		{"maxspeed", tagsOf("highway", "primary", "maxspeed", "50"), true, graph.ClassPrimary, true, true, 50 * f, 50 * f, 0},
		{"maxspeed forward/backward", tagsOf("highway", "primary", "maxspeed", "50", "maxspeed:backward", "30"), true, graph.ClassPrimary, true, true, 50 * f, 30 * f, 0},
		{"maxspeed none motorway", tagsOf("highway", "motorway", "maxspeed", "none"), true, graph.ClassMotorway, true, false, noneSpeedLimit * f, noneSpeedLimit * f, 0},
		{"maxspeed none residential", tagsOf("highway", "residential", "maxspeed", "none"), true, graph.ClassResidential, true, true, 25, 25, 0},
		{"maxspeed garbage", tagsOf("highway", "residential", "maxspeed", "fast"), true, graph.ClassResidential, true, true, 25, 25, 1},
		{"destination slowed", tagsOf("highway", "residential", "access", "destination"), true, graph.ClassResidential, true, true, 25 * restrictedSpeedFactor, 25 * restrictedSpeedFactor, 0},
		{"private", tagsOf("highway", "residential", "access", "private"), false, 0, false, false, 0, 0, 0},
		{"motor_vehicle=no", tagsOf("highway", "residential", "motor_vehicle", "no"), false, 0, false, false, 0, 0, 0},
		{"access=no motorcar=yes", tagsOf("highway", "residential", "access", "no", "motorcar", "yes"), true, graph.ClassResidential, true, true, 25, 25, 0},
		{"vehicle:backward=no", tagsOf("highway", "residential", "vehicle:backward", "no"), true, graph.ClassResidential, true, false, 25, 25, 0},
		{"reversible", tagsOf("highway", "primary", "oneway", "reversible"), false, 0, false, false, 0, 0, 0},
		{"area", tagsOf("highway", "service", "area", "yes"), false, 0, false, false, 0, 0, 0},
		{"emergency access", tagsOf("highway", "service", "service", "emergency_access"), false, 0, false, false, 0, 0, 0},
		{"impassable", tagsOf("highway", "residential", "impassable", "yes"), false, 0, false, false, 0, 0, 0},
		{"footway", tagsOf("highway", "footway"), false, 0, false, false, 0, 0, 0},
		{"track", tagsOf("highway", "track", "motor_vehicle", "yes"), false, 0, false, false, 0, 0, 0},
		{"construction", tagsOf("highway", "construction"), false, 0, false, false, 0, 0, 0},
		{"ferry", tagsOf("route", "ferry"), false, 0, false, false, 0, 0, 0},
	}
	for _, tc := range tests {
		p, ok := evalWay(tc.tags)
		if ok != tc.ok {
			t.Errorf("%s: ok = %v, want %v", tc.name, ok, tc.ok)
			continue
		}
		if !ok {
			continue
		}
		if p.class != tc.class || p.forward != tc.fwd || p.back != tc.back ||
			math.Abs(p.speedFwd-tc.speedF) > 1e-9 || math.Abs(p.speedBack-tc.speedB) > 1e-9 || p.unparsed != tc.unparsed {
			t.Errorf("%s: got %+v, want class %v fwd %v back %v speeds %v/%v unparsed %d",
				tc.name, p, tc.class, tc.fwd, tc.back, tc.speedF, tc.speedB, tc.unparsed)
		}
	}
}

func TestEffectiveSpeedNeverAboveLimit(t *testing.T) {
	for _, v := range []string{"1", "5", "20", "30 mph", "50", "90", "130", "walk", "DE:urban", "GB:nsl_dual"} {
		limit, kind := parseMaxspeed(v)
		if kind != limitValue {
			t.Fatalf("%q: kind %v", v, kind)
		}
		for c := graph.RoadClass(0); c < graph.NumClasses; c++ {
			hw := c.String()
			if c == graph.ClassOther {
				hw = "road"
			}
			p, ok := evalWay(tagsOf("highway", hw, "maxspeed", v, "oneway", "no"))
			if !ok {
				t.Fatalf("%v %q not routable", c, v)
			}
			if p.speedFwd > limit || p.speedBack > limit {
				t.Errorf("%v maxspeed=%q: speed %v/%v above limit %v", c, v, p.speedFwd, p.speedBack, limit)
			}
		}
	}
}

func TestWayName(t *testing.T) {
	long := strings.Repeat("é", maxNameRunes+10)
	tests := []struct {
		name string
		tags osm.Tags
		want string
	}{
		{"name", tagsOf("highway", "residential", "name", "Rua de Santa Catarina"), "Rua de Santa Catarina"},
		{"name wins over ref", tagsOf("highway", "motorway", "name", "Autoestrada do Norte", "ref", "A1"), "Autoestrada do Norte"},
		{"ref without name", tagsOf("highway", "motorway", "ref", "A28"), "A28"},
		{"several refs", tagsOf("highway", "trunk", "ref", "N13;N14 ; "), "N13 / N14"},
		{"blank name falls back", tagsOf("highway", "primary", "name", "  ", "ref", "N12"), "N12"},
		{"neither", tagsOf("highway", "service"), ""},
		{"white space", tagsOf("highway", "residential", "name", "  Rua\tdo \n Almada "), "Rua do Almada"},
		{"control characters", tagsOf("highway", "residential", "name", "Rua\x00 X\x7f"), "Rua X"},
		{"invalid UTF-8", tagsOf("highway", "residential", "name", "Pra\xe7a"), "Pra\uFFFDa"},
		{"non-ASCII", tagsOf("highway", "residential", "name", "Straße 東京"), "Straße 東京"},
		{"too long", tagsOf("highway", "residential", "name", long), strings.Repeat("é", maxNameRunes)},
	}
	for _, tc := range tests {
		if got := wayName(tc.tags); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}
