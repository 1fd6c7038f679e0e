package osmimport

import (
	"strings"
	"testing"
)

// TestOnlyRestrictionIntoRemovedPart checks that an only_* restriction whose
// permitted exit is removed with a small component still forbids the other
// exits of its from edge: the only legal move from the oneway a was into
// the oneway dead end c, which the connectivity filter drops, so no route
// may turn from a onto b.
func TestOnlyRestrictionIntoRemovedPart(t *testing.T) {
	const doc = `<?xml version="1.0" encoding="UTF-8"?>
<osm version="0.6">
  <node id="1" lat="43.730" lon="7.420"/>
  <node id="2" lat="43.731" lon="7.420"/>
  <node id="3" lat="43.732" lon="7.420"/>
  <node id="4" lat="43.731" lon="7.421"/>
  <node id="5" lat="43.730" lon="7.421"/>
  <node id="6" lat="43.731" lon="7.419"/>
  <way id="10"><nd ref="1"/><nd ref="2"/><tag k="highway" v="residential"/><tag k="oneway" v="yes"/></way>
  <way id="11"><nd ref="2"/><nd ref="3"/><nd ref="4"/><nd ref="5"/><nd ref="1"/><tag k="highway" v="residential"/></way>
  <way id="12"><nd ref="2"/><nd ref="6"/><tag k="highway" v="service"/><tag k="oneway" v="yes"/></way>
  <relation id="20"><member type="way" ref="10" role="from"/><member type="node" ref="2" role="via"/><member type="way" ref="12" role="to"/><tag k="type" v="restriction"/><tag k="restriction" v="only_straight_on"/></relation>
</osm>`
	net, _, err := Read(strings.NewReader(doc), FormatXML, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var fromA []int
	for i, e := range net.Edges {
		if e.WayID == 12 {
			t.Fatalf("the dead-end oneway 12 should be outside the largest component")
		}
		if e.WayID == 10 {
			fromA = append(fromA, i)
		}
	}
	if len(fromA) != 1 {
		t.Fatalf("want one edge on way 10, got %d", len(fromA))
	}
	a := uint32(fromA[0])
	banned := map[uint32]bool{}
	for _, r := range net.Restrictions {
		if r.From == a && !r.Only {
			banned[r.To] = true
		}
	}
	for i, e := range net.Edges {
		if e.From == net.Edges[a].To && !banned[uint32(i)] {
			t.Errorf("exit %d (way %d) from the restricted edge is still allowed", i, e.WayID)
		}
	}
	if len(banned) == 0 {
		t.Fatal("no exit of way 10 is banned")
	}
}
