package osmimport

import (
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/lastmile/lastmile/graph"
	"github.com/paulmach/osm"
)

// The car profile is described in the package documentation (doc.go).

// Class default speeds in km/h (the free-flow speeds OSRM's car profile uses).
var classSpeed = [graph.NumClasses]float64{
	graph.ClassMotorway:      90,
	graph.ClassMotorwayLink:  45,
	graph.ClassTrunk:         85,
	graph.ClassTrunkLink:     40,
	graph.ClassPrimary:       65,
	graph.ClassPrimaryLink:   30,
	graph.ClassSecondary:     55,
	graph.ClassSecondaryLink: 25,
	graph.ClassTertiary:      40,
	graph.ClassTertiaryLink:  20,
	graph.ClassUnclassified:  25,
	graph.ClassResidential:   25,
	graph.ClassLivingStreet:  10,
	graph.ClassService:       15,
	graph.ClassOther:         20,
}

const (
	// maxspeedFactor is the share of a posted limit that a car drives at.
	maxspeedFactor = 0.8
	// walkSpeedLimit is the limit, km/h, that maxspeed=walk stands for.
	walkSpeedLimit = 7
	// noneSpeedLimit is the limit, km/h, assumed for maxspeed=none on motorways and trunks.
	noneSpeedLimit = 130
	// serviceMinorSpeed is the speed, km/h, on parking aisles, driveways and alleys.
	serviceMinorSpeed = 5
	// restrictedSpeedFactor slows ways with destination/delivery/customers access.
	restrictedSpeedFactor = 0.5
	// maxPlausibleLimit bounds parsed limits, km/h; larger values are treated as unparseable.
	maxPlausibleLimit = 300
	// minSpeed is the slowest speed, km/h, any edge gets.
	minSpeed = 1
)

// highwayClass maps a highway value to its road class; ok is false for
// values a car cannot use.
func highwayClass(v string) (graph.RoadClass, bool) {
	switch v {
	case "motorway":
		return graph.ClassMotorway, true
	case "motorway_link":
		return graph.ClassMotorwayLink, true
	case "trunk":
		return graph.ClassTrunk, true
	case "trunk_link":
		return graph.ClassTrunkLink, true
	case "primary":
		return graph.ClassPrimary, true
	case "primary_link":
		return graph.ClassPrimaryLink, true
	case "secondary":
		return graph.ClassSecondary, true
	case "secondary_link":
		return graph.ClassSecondaryLink, true
	case "tertiary":
		return graph.ClassTertiary, true
	case "tertiary_link":
		return graph.ClassTertiaryLink, true
	case "unclassified":
		return graph.ClassUnclassified, true
	case "residential":
		return graph.ClassResidential, true
	case "living_street":
		return graph.ClassLivingStreet, true
	case "service":
		return graph.ClassService, true
	case "road":
		return graph.ClassOther, true
	}
	return 0, false
}

// accessDecision is the outcome of access tags for cars.
type accessDecision uint8

const (
	accessUnknown    accessDecision = iota // no known value: fall through to a less specific key
	accessNo                               // cars may not pass
	accessRestricted                       // allowed, but only to reach a destination (slowed down)
	accessYes                              // allowed
)

// accessValue classifies one access value, taking the most permissive entry
// of a ";"-separated list.
func accessValue(v string) accessDecision {
	best := accessUnknown
	for part := range strings.SplitSeq(v, ";") {
		var d accessDecision
		switch strings.TrimSpace(part) {
		case "yes", "permissive", "designated", "official", "discouraged":
			d = accessYes
		case "destination", "delivery", "customers":
			d = accessRestricted
		case "no", "private", "agricultural", "forestry", "emergency", "psv", "bus",
			"military", "permit", "use_sidepath":
			d = accessNo
		}
		if d > best {
			best = d
		}
	}
	return best
}

// accessKeys lists access keys from the most to the least specific for cars.
var accessKeys = [...]string{"motorcar", "motor_vehicle", "vehicle", "access"}

// carAccess returns the access decision for cars from tags, for the given
// direction suffix (":forward", ":backward" or "" for direction-less, e.g.
// on nodes). The most specific key with a known value wins.
func carAccess(tags osm.Tags, suffix string) accessDecision {
	for _, k := range accessKeys {
		if suffix != "" {
			if v, ok := findTag(tags, k, suffix); ok {
				if d := accessValue(v); d != accessUnknown {
					return d
				}
			}
		}
		if v, ok := findTag(tags, k, ""); ok {
			if d := accessValue(v); d != accessUnknown {
				return d
			}
		}
	}
	return accessUnknown
}

// findTag returns the value of key+suffix without building the
// concatenated string.
func findTag(tags osm.Tags, key, suffix string) (string, bool) {
	n := len(key) + len(suffix)
	for i := range tags {
		k := tags[i].Key
		if len(k) == n && k[:len(key)] == key && k[len(key):] == suffix {
			return tags[i].Value, true
		}
	}
	return "", false
}

// onewayMode is the direction rule of a way.
type onewayMode uint8

const (
	onewayNo         onewayMode = iota // both directions
	onewayForward                      // only along the way's node order
	onewayBackward                     // only against it
	onewayReversible                   // changes with time: not routable
)

// parseOneway interprets the oneway tag; implied is the default when the
// tag is absent or unknown (motorways, roundabouts).
func parseOneway(v string, implied bool) onewayMode {
	switch v {
	case "yes", "true", "1":
		return onewayForward
	case "-1", "reverse":
		return onewayBackward
	case "no", "false", "0":
		return onewayNo
	case "reversible", "alternating":
		return onewayReversible
	}
	if implied {
		return onewayForward
	}
	return onewayNo
}

// wayProfile is what the car profile makes of a way.
type wayProfile struct {
	class               graph.RoadClass
	forward, back       bool    // travel allowed along / against the node order
	speedFwd, speedBack float64 // km/h, > 0 where allowed
	unparsed            int     // maxspeed values that could not be parsed
}

// maxNameRunes bounds a road name, in characters: the OSM API's limit on
// tag values, which a hand-made extract may exceed.
const maxNameRunes = 255

// wayName returns the name a map shows for a way: its name tag, else its
// ref (";"-separated refs joined by " / "), "" when it has neither. The
// value is made valid UTF-8, control characters are dropped, runs of white
// space become one space, and it is cut at maxNameRunes characters.
func wayName(tags osm.Tags) string {
	if v := cleanName(tags.Find("name")); v != "" {
		return v
	}
	ref := cleanName(tags.Find("ref"))
	if !strings.Contains(ref, ";") {
		return ref
	}
	var parts []string
	for part := range strings.SplitSeq(ref, ";") {
		if part = strings.TrimSpace(part); part != "" {
			parts = append(parts, part)
		}
	}
	return strings.Join(parts, " / ")
}

// cleanName normalises a tag value for display (see wayName).
func cleanName(v string) string {
	if v == "" {
		return ""
	}
	v = strings.ToValidUTF8(v, "\uFFFD")
	v = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) && !unicode.IsSpace(r) {
			return -1
		}
		return r
	}, v)
	v = strings.Join(strings.Fields(v), " ")
	if utf8.RuneCountInString(v) > maxNameRunes {
		n := 0
		for i := range v {
			if n == maxNameRunes {
				v = strings.TrimSpace(v[:i])
				break
			}
			n++
		}
	}
	return v
}

// evalWay applies the car profile to a way's tags; ok is false when cars
// cannot use it in either direction.
func evalWay(tags osm.Tags) (p wayProfile, ok bool) {
	class, ok := highwayClass(tags.Find("highway"))
	if !ok {
		return p, false
	}
	if tags.Find("area") == "yes" || tags.Find("impassable") == "yes" ||
		tags.Find("status") == "impassable" {
		return p, false
	}
	service := tags.Find("service")
	if service == "emergency_access" {
		return p, false
	}
	junction := tags.Find("junction")
	implied := class == graph.ClassMotorway || class == graph.ClassMotorwayLink ||
		junction == "roundabout" || junction == "circular"
	mode := parseOneway(tags.Find("oneway"), implied)
	if mode == onewayReversible {
		return p, false
	}
	p.class = class
	p.forward = mode != onewayBackward
	p.back = mode != onewayForward

	base := classSpeed[class]
	if class == graph.ClassService {
		switch service {
		case "parking_aisle", "parking", "driveway", "alley", "drive-through", "drive-thru":
			base = serviceMinorSpeed
		}
	}
	common, okCommon := tags.Find("maxspeed"), tags.FindTag("maxspeed") != nil
	p.speedFwd = dirSpeed(tags, "maxspeed:forward", common, okCommon, class, base, &p.unparsed)
	p.speedBack = dirSpeed(tags, "maxspeed:backward", common, okCommon, class, base, &p.unparsed)
	p.unparsed = min(p.unparsed, 1) // count ways, not directions

	for i, suffix := range [2]string{":forward", ":backward"} {
		d := carAccess(tags, suffix)
		allowed := &p.forward
		speed := &p.speedFwd
		if i == 1 {
			allowed, speed = &p.back, &p.speedBack
		}
		switch d {
		case accessNo:
			*allowed = false
		case accessRestricted:
			*speed *= restrictedSpeedFactor
		}
		if *speed < minSpeed {
			*speed = minSpeed
		}
	}
	if !p.forward && !p.back {
		return p, false
	}
	return p, true
}

// dirSpeed returns the car speed for one direction: the direction-specific
// maxspeed if present, else the common one, else the class default base.
func dirSpeed(tags osm.Tags, dirKey, common string, haveCommon bool, class graph.RoadClass, base float64, unparsed *int) float64 {
	v, ok := tags.Find(dirKey), tags.FindTag(dirKey) != nil
	if !ok {
		v, ok = common, haveCommon
	}
	if !ok {
		return base
	}
	limit, kind := parseMaxspeed(v)
	switch kind {
	case limitValue:
		return limit * maxspeedFactor
	case limitNone:
		if class <= graph.ClassTrunkLink {
			return noneSpeedLimit * maxspeedFactor
		}
		return base
	case limitDefault:
		return base
	}
	*unparsed++
	return base
}

// limitKind says what a maxspeed value means.
type limitKind uint8

const (
	limitInvalid limitKind = iota // unparseable
	limitValue                    // a limit in km/h
	limitNone                     // no limit
	limitDefault                  // known, but gives no number (signals, variable)
)

const (
	kmhPerMph  = 1.609344
	kmhPerKnot = 1.852
)

// implicitLimits holds implicit limits (km/h) by "CC:type" for common
// countries, from the OSM wiki page "Default speed limits"; the "" country
// row is used for countries not in the table.
var implicitLimits = map[string]float64{
	":urban": 50, ":rural": 90, ":trunk": 100, ":motorway": 120, ":living_street": 20, ":walk": walkSpeedLimit,
	"AT:urban": 50, "AT:rural": 100, "AT:trunk": 100, "AT:motorway": 130,
	"BE:urban": 50, "BE:rural": 70, "BE-VLG:rural": 70, "BE-WAL:rural": 90, "BE:motorway": 120,
	"CH:urban": 50, "CH:rural": 80, "CH:trunk": 100, "CH:motorway": 120,
	"CZ:urban": 50, "CZ:rural": 90, "CZ:trunk": 110, "CZ:motorway": 130,
	"DE:urban": 50, "DE:rural": 100, "DE:bicycle_road": 30, "DE:living_street": walkSpeedLimit,
	"DK:urban": 50, "DK:rural": 80, "DK:motorway": 130,
	"ES:urban": 50, "ES:rural": 90, "ES:trunk": 100, "ES:motorway": 120,
	"FI:urban": 50, "FI:rural": 80, "FI:motorway": 120,
	"FR:urban": 50, "FR:rural": 80, "FR:trunk": 110, "FR:motorway": 130,
	"GB:urban": 30 * kmhPerMph, "GB:nsl_single": 60 * kmhPerMph, "GB:nsl_dual": 70 * kmhPerMph, "GB:motorway": 70 * kmhPerMph,
	"IT:urban": 50, "IT:rural": 90, "IT:trunk": 110, "IT:motorway": 130,
	"NL:urban": 50, "NL:rural": 80, "NL:trunk": 100, "NL:motorway": 130,
	"PL:urban": 50, "PL:rural": 90, "PL:trunk": 100, "PL:motorway": 140,
	"PT:urban": 50, "PT:rural": 90, "PT:trunk": 100, "PT:motorway": 120,
	"RU:urban": 60, "RU:rural": 90, "RU:living_street": 20, "RU:motorway": 110,
	"SE:urban": 50, "SE:rural": 70, "SE:motorway": 110,
}

// parseMaxspeed parses a maxspeed value to km/h. A ";"-separated list
// gives its lowest parseable limit.
func parseMaxspeed(v string) (float64, limitKind) {
	v = strings.TrimSpace(v)
	if strings.Contains(v, ";") {
		best, kind := 0.0, limitInvalid
		for part := range strings.SplitSeq(v, ";") {
			l, k := parseMaxspeed(part)
			switch {
			case k == limitValue && (kind != limitValue || l < best):
				best, kind = l, k
			case k != limitInvalid && kind == limitInvalid:
				kind = k
			}
		}
		return best, kind
	}
	switch v {
	case "none", "unlimited":
		return 0, limitNone
	case "signals", "variable":
		return 0, limitDefault
	case "walk":
		return walkSpeedLimit, limitValue
	}
	if l, ok := parseNumberUnit(v); ok {
		return l, limitValue
	}
	// Implicit values "CC:type", "CC-SUB:type", "zone30", "CC:zone30", "CC:zone:30".
	country, typ, found := strings.Cut(v, ":")
	if !found {
		country, typ = "", v
	}
	if z, ok := strings.CutPrefix(typ, "zone"); ok {
		z = strings.TrimPrefix(z, ":")
		if l, ok := parseNumberUnit(z); ok {
			return l, limitValue
		}
		return 0, limitInvalid
	}
	if typ == "none" && country != "" {
		return 0, limitNone
	}
	if typ == "walk" {
		return walkSpeedLimit, limitValue
	}
	if country == "DE" && typ == "motorway" {
		return 0, limitNone // Autobahn: no general limit
	}
	if l, ok := implicitLimits[country+":"+typ]; ok {
		return l, limitValue
	}
	if l, ok := implicitLimits[":"+typ]; ok && len(country) >= 2 && len(country) <= 6 {
		return l, limitValue
	}
	return 0, limitInvalid
}

// parseNumberUnit parses "50", "50 km/h", "50kmh", "30 mph", "10 knots".
func parseNumberUnit(s string) (float64, bool) {
	s = strings.TrimSpace(s)
	i := 0
	for i < len(s) && (s[i] >= '0' && s[i] <= '9' || s[i] == '.') {
		i++
	}
	if i == 0 {
		return 0, false
	}
	x, err := strconv.ParseFloat(s[:i], 64)
	if err != nil {
		return 0, false
	}
	switch strings.TrimSpace(s[i:]) {
	case "", "km/h", "kmh", "kph":
	case "mph":
		x *= kmhPerMph
	case "knots", "kn":
		x *= kmhPerKnot
	default:
		return 0, false
	}
	if !(x >= 1 && x <= maxPlausibleLimit) {
		return 0, false
	}
	return x, true
}

// barrierBlocks reports whether a node's tags make it a barrier that cars
// cannot pass (see the car profile above).
func barrierBlocks(tags osm.Tags) bool {
	b, ok := findTag(tags, "barrier", "")
	if !ok {
		return false
	}
	switch carAccess(tags, "") {
	case accessYes, accessRestricted:
		return false
	case accessNo:
		return true
	}
	switch b {
	case "gate", "lift_gate", "swing_gate", "sliding_gate", "toll_booth", "cattle_grid",
		"border_control", "entrance", "height_restrictor", "sally_port", "arch", "no", "":
		return false
	}
	return true
}
