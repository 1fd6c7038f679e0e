package graph

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"unsafe"
)

func serialize(t testing.TB, g *Graph) []byte {
	t.Helper()
	var buf bytes.Buffer
	n, err := g.WriteTo(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if n != int64(buf.Len()) {
		t.Fatalf("WriteTo reports %d bytes, wrote %d", n, buf.Len())
	}
	return buf.Bytes()
}

func TestWriteLoadRoundTrip(t *testing.T) {
	tc := testConfigs[3]
	n := genNetwork(tc.seed, tc.opt)
	g := mustBuild(t, n)
	data := serialize(t, g)
	g2, err := Load(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "g.lmch")
	if err := g.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	g3, err := LoadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	named := 0
	for e := range n.Edges {
		if n.Edges[e].Name != 0 {
			named++
		}
	}
	if named == 0 || named == len(n.Edges) || len(n.Names) < 3 {
		t.Fatalf("test network: %d of %d edges named with %d names, want some of each", named, len(n.Edges), len(n.Names))
	}
	for _, h := range []*Graph{g2, g3} {
		if !reflect.DeepEqual(h.Road, g.Road) {
			t.Fatal("road network differs after round trip")
		}
		for e := range n.Edges {
			if got, want := h.Road.EdgeName(uint32(e)), n.Names[n.Edges[e].Name]; got != want {
				t.Fatalf("edge %d: name %q after round trip, want %q", e, got, want)
			}
		}
		if !reflect.DeepEqual(h.fwd, g.fwd) || !reflect.DeepEqual(h.bwd, g.bwd) || !reflect.DeepEqual(h.rturnHead, g.rturnHead) {
			t.Fatal("hierarchy differs after round trip")
		}
		if h.Stats() != g.Stats() {
			t.Fatalf("stats differ: %+v vs %+v", h.Stats(), g.Stats())
		}
	}
	rev := reverseEdges(n)
	rng := rand.New(rand.NewPCG(5, 5))
	q, q2, q3 := g.NewQuery(), g2.NewQuery(), g3.NewQuery()
	for k := 0; k < 300; k++ {
		src, dst := randomEndpoint(rng, g, rev), randomEndpoint(rng, g, rev)
		r, err := q.Route(src, dst)
		if err != nil {
			t.Fatal(err)
		}
		for _, qq := range []*Query{q2, q3} {
			r2, err := qq.Route(src, dst)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(r, r2) {
				t.Fatalf("pair %d: route differs after round trip", k)
			}
		}
	}
	// Writing the loaded graph gives the same bytes.
	if !bytes.Equal(serialize(t, g2), data) {
		t.Fatal("re-serialized graph differs")
	}
}

// TestEdgeSize pins the size of Edge: Name lives in the padding after
// Class, so names cost the edge array nothing.
func TestEdgeSize(t *testing.T) {
	if s := unsafe.Sizeof(Edge{}); s != 48 {
		t.Errorf("Edge is %d bytes, want 48", s)
	}
}

// TestNamesRoundTrip writes networks without names, with only the empty
// name and with names that are empty strings besides name 0.
func TestNamesRoundTrip(t *testing.T) {
	for _, names := range [][]string{nil, {""}, {"", "", "Rua X", ""}} {
		n := genNetwork(4, testConfigs[0].opt)
		n.Names = names
		for i := range n.Edges {
			if len(names) > 0 {
				n.Edges[i].Name = uint32(i % len(names))
			} else {
				n.Edges[i].Name = 0
			}
		}
		g := mustBuild(t, n)
		h, err := Load(bytes.NewReader(serialize(t, g)))
		if err != nil {
			t.Fatalf("names %q: %v", names, err)
		}
		if !reflect.DeepEqual(h.Road.Names, names) || !reflect.DeepEqual(h.Road.Edges, n.Edges) {
			t.Errorf("names %q: loaded %q", names, h.Road.Names)
		}
	}
	// Build refuses inconsistent names like Load does.
	n := genNetwork(4, testConfigs[0].opt)
	n.Edges[3].Name = uint32(len(n.Names))
	if _, err := Build(n, BuildOptions{}); err == nil || !strings.Contains(err.Error(), "name") {
		t.Errorf("Build with a name index out of range: %v", err)
	}
	n = genNetwork(4, testConfigs[0].opt)
	n.Names[0] = "not empty"
	if _, err := Build(n, BuildOptions{}); err == nil || !strings.Contains(err.Error(), "name 0") {
		t.Errorf("Build with a non-empty name 0: %v", err)
	}
	n = genNetwork(4, testConfigs[0].opt)
	n.Names = nil
	if _, err := Build(n, BuildOptions{}); err == nil {
		t.Error("Build with named edges and no name table succeeded")
	}
}

// TestLoadOldVersion checks that a file of the previous format version is
// refused with an error that says what to do.
func TestLoadOldVersion(t *testing.T) {
	data := serialize(t, mustBuild(t, genNetwork(1, testConfigs[0].opt)))
	binary.LittleEndian.PutUint32(data[8:], 2)
	_, err := Load(bytes.NewReader(data))
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "format version 2, want 3") || !strings.Contains(err.Error(), "prepare") {
		t.Errorf("version 2 file: %v", err)
	}
}

// resign returns data with section id's first 4-byte element replaced by
// v, its checksum updated so that only the structural checks can object.
func resign(t *testing.T, data []byte, id, v uint32) []byte {
	t.Helper()
	b := bytes.Clone(data)
	nsec := int(binary.LittleEndian.Uint32(b[12:]))
	payload := b[headerSize:]
	for i := range nsec {
		e := payload[i*tableEntry:]
		if binary.LittleEndian.Uint32(e) != id {
			continue
		}
		if binary.LittleEndian.Uint64(e[8:]) == 0 {
			t.Fatalf("section %d is empty", id)
		}
		binary.LittleEndian.PutUint32(payload[binary.LittleEndian.Uint64(e[16:]):], v)
		binary.LittleEndian.PutUint32(b[24:], crc32.Checksum(payload, castagnoli))
		return b
	}
	t.Fatalf("no section %d", id)
	return nil
}

func TestLoadCorrupt(t *testing.T) {
	g := mustBuild(t, genNetwork(1, testConfigs[0].opt))
	data := serialize(t, g)
	mutate := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(data)) }
	tests := []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"short header", data[:10]},
		{"header only", data[:headerSize]},
		{"truncated payload", data[:len(data)-1]},
		{"truncated half", data[:len(data)/2]},
		{"wrong magic", mutate(func(b []byte) []byte { b[0] = 'X'; return b })},
		{"wrong version", mutate(func(b []byte) []byte { binary.LittleEndian.PutUint32(b[8:], 99); return b })},
		{"bit flip in payload", mutate(func(b []byte) []byte { b[len(b)/2] ^= 4; return b })},
		{"bit flip in table", mutate(func(b []byte) []byte { b[headerSize+5] ^= 1; return b })},
		{"checksum", mutate(func(b []byte) []byte { b[24] ^= 0x80; return b })},
		{"too many sections", mutate(func(b []byte) []byte { binary.LittleEndian.PutUint32(b[12:], 1000); return b })},
		{"huge payload length", mutate(func(b []byte) []byte { binary.LittleEndian.PutUint64(b[16:], 1<<40); return b })},
		{"name offsets past the name bytes", resign(t, data, secNameEnd, 1<<30)},
		{"name index past the name table", resign(t, data, secEdgeName, uint32(len(g.Road.Names)))},
		{"trailing garbage length", mutate(func(b []byte) []byte {
			binary.LittleEndian.PutUint64(b[16:], binary.LittleEndian.Uint64(b[16:])+8)
			return append(b, make([]byte, 8)...)
		})},
	}
	dir := t.TempDir()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(bytes.NewReader(tc.data))
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Load: err = %v, want ErrCorrupt", err)
			}
			path := filepath.Join(dir, "f")
			if err := os.WriteFile(path, tc.data, 0o644); err != nil {
				t.Fatal(err)
			}
			if _, err := LoadFile(path); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("LoadFile: err = %v, want ErrCorrupt", err)
			}
		})
	}
	if _, err := LoadFile(filepath.Join(dir, "missing")); err == nil || errors.Is(err, ErrCorrupt) {
		t.Fatalf("LoadFile of a missing file: %v", err)
	}
}

// TestLoadInconsistent re-signs payloads with bad contents so that the
// checksum passes and the structural validation must catch them.
func TestLoadInconsistent(t *testing.T) {
	g := mustBuild(t, genNetwork(2, testConfigs[1].opt))
	tests := []struct {
		name   string
		mutate func(h *Graph)
	}{
		{"head out of range", func(h *Graph) { h.fwd.Head[0] = uint32(len(h.edgeOfCH)) }},
		{"downward arc", func(h *Graph) { h.bwd.Head[len(h.bwd.Head)-1] = 0 }},
		{"middle node above", func(h *Graph) {
			for i, m := range h.fwd.Mid {
				if m != noNode {
					h.fwd.Mid[i] = uint32(len(h.edgeOfCH) - 1)
					return
				}
			}
		}},
		{"offsets", func(h *Graph) { h.turnFirst[1] = uint32(len(h.turnHead) + 5) }},
		{"repeated CH edge", func(h *Graph) { h.edgeOfCH[1] = h.edgeOfCH[0] }},
		{"negative weight", func(h *Graph) { h.bwd.Weight[0] = -1 }},
		{"edge weight", func(h *Graph) { h.weight[0] = 0 }},
		{"edge node", func(h *Graph) { h.Road.Edges[0].From = uint32(len(h.Road.Lat)) }},
		{"edge name", func(h *Graph) { h.Road.Edges[0].Name = uint32(len(h.Road.Names)) }},
		{"name 0 not empty", func(h *Graph) { h.Road.Names[0] = "x" }},
		{"names lost", func(h *Graph) { h.Road.Names = nil }},
		{"restriction", func(h *Graph) {
			h.Road.Restrictions = append(h.Road.Restrictions, TurnRestriction{From: 0, To: uint32(len(h.Road.Edges))})
		}},
		{"turn not connected", func(h *Graph) {
			for v := range h.edgeOfCH {
				if h.turnFirst[v+1] > h.turnFirst[v] {
					h.turnHead[h.turnFirst[v]] = uint32(v)
					if h.Road.Edges[h.edgeOfCH[v]].From != h.Road.Edges[h.edgeOfCH[v]].To {
						return
					}
				}
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h, err := Load(bytes.NewReader(serialize(t, g)))
			if err != nil {
				t.Fatal(err)
			}
			tc.mutate(h)
			if _, err := Load(bytes.NewReader(serialize(t, h))); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("err = %v, want ErrCorrupt", err)
			}
		})
	}
}

func FuzzLoad(f *testing.F) {
	g := mustBuild(f, genNetwork(1, testConfigs[0].opt))
	data := serialize(f, g)
	f.Add(data)
	if err := g.ComputeCCHOrder(1); err == nil {
		f.Add(serialize(f, g)) // with the optional CCH order section
	}
	f.Add(data[:headerSize])
	f.Add(data[:len(data)/3])
	f.Add([]byte(fileMagic))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		loadAndQuery(t, b)
		// Re-sign the input (consistent payload length and checksum) so that
		// mutations reach the structural validation behind the checksum.
		if len(b) >= headerSize {
			b = bytes.Clone(b)
			binary.LittleEndian.PutUint64(b[16:], uint64(len(b)-headerSize))
			binary.LittleEndian.PutUint32(b[24:], crc32.Checksum(b[headerSize:], castagnoli))
			loadAndQuery(t, b)
		}
	})
}

// loadAndQuery loads b and, if it is accepted, runs queries on it, which
// must not panic.
func loadAndQuery(t *testing.T, b []byte) {
	h, err := Load(bytes.NewReader(b))
	if err != nil {
		if !errors.Is(err, ErrCorrupt) {
			t.Fatalf("error does not wrap ErrCorrupt: %v", err)
		}
		return
	}
	{
		// A graph that loads must answer queries without panicking.
		q := h.NewQuery()
		var e uint32
		for ; int(e) < len(h.Road.Edges) && !h.Routable(e); e++ {
		}
		ep := Endpoint{Points: []EdgePoint{{e, 0.5}}}
		if _, err := q.Route(ep, ep); err != nil && !errors.Is(err, ErrNoRoute) {
			t.Logf("route: %v", err)
		}
		if _, err := h.Matrix([]Endpoint{ep}, []Endpoint{ep}, 1); err != nil {
			t.Logf("matrix: %v", err)
		}
	}
}
