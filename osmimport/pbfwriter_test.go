package osmimport

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"math"
)

// This file writes small OSM PBF files from the XML fixtures, so that the
// PBF path can be tested on the same networks and fuzzed from small seeds.

func zigzag(v int64) uint64 { return uint64(v<<1) ^ uint64(v>>63) }

func packedVarints(vals []uint64) []byte {
	var b []byte
	for _, v := range vals {
		b = binary.AppendUvarint(b, v)
	}
	return b
}

// fixturePBF encodes a fixture as PBF: one header block, then one data block
// each for nodes (dense), ways and relations; compressed with zlib if zip.
func fixturePBF(nodes []fxNode, ways []fxWay, rels []fxRel, zip bool) []byte {
	strs := []string{""}
	index := map[string]uint64{"": 0}
	sid := func(s string) uint64 {
		if i, ok := index[s]; ok {
			return i
		}
		index[s] = uint64(len(strs))
		strs = append(strs, s)
		return index[s]
	}

	// Dense nodes; coordinates in units of 100 nanodegrees (default granularity).
	var ids, lats, lons, kv []uint64
	var pid, plat, plon int64
	for _, n := range nodes {
		lat, lon := fxPos(n.x, n.y)
		la, lo := int64(math.Round(lat*1e7)), int64(math.Round(lon*1e7))
		ids = append(ids, zigzag(n.id-pid))
		lats = append(lats, zigzag(la-plat))
		lons = append(lons, zigzag(lo-plon))
		pid, plat, plon = n.id, la, lo
		for i := 0; i+1 < len(n.tags); i += 2 {
			kv = append(kv, sid(n.tags[i]), sid(n.tags[i+1]))
		}
		kv = append(kv, 0)
	}
	var dense []byte
	dense = appendBytesField(dense, 1, packedVarints(ids))
	dense = appendBytesField(dense, 8, packedVarints(lats))
	dense = appendBytesField(dense, 9, packedVarints(lons))
	dense = appendBytesField(dense, 10, packedVarints(kv))
	var nodeGroup []byte
	nodeGroup = appendBytesField(nodeGroup, 2, dense)

	var wayGroup []byte
	for _, w := range ways {
		var keys, vals, refs []uint64
		for i := 0; i+1 < len(w.tags); i += 2 {
			keys = append(keys, sid(w.tags[i]))
			vals = append(vals, sid(w.tags[i+1]))
		}
		var prev int64
		for _, r := range w.nodes {
			refs = append(refs, zigzag(r-prev))
			prev = r
		}
		var m []byte
		m = appendVarintField(m, 1, uint64(w.id))
		m = appendBytesField(m, 2, packedVarints(keys))
		m = appendBytesField(m, 3, packedVarints(vals))
		m = appendBytesField(m, 8, packedVarints(refs))
		wayGroup = appendBytesField(wayGroup, 3, m)
	}

	var relGroup []byte
	for _, r := range rels {
		var keys, vals, roles, memids, types []uint64
		for i := 0; i+1 < len(r.tags); i += 2 {
			keys = append(keys, sid(r.tags[i]))
			vals = append(vals, sid(r.tags[i+1]))
		}
		var prev int64
		for _, m := range r.members {
			roles = append(roles, sid(m.role))
			memids = append(memids, zigzag(m.ref-prev))
			prev = m.ref
			t := map[string]uint64{"node": 0, "way": 1, "relation": 2}[m.typ]
			types = append(types, t)
		}
		var m []byte
		m = appendVarintField(m, 1, uint64(r.id))
		m = appendBytesField(m, 2, packedVarints(keys))
		m = appendBytesField(m, 3, packedVarints(vals))
		m = appendBytesField(m, 8, packedVarints(roles))
		m = appendBytesField(m, 9, packedVarints(memids))
		m = appendBytesField(m, 10, packedVarints(types))
		relGroup = appendBytesField(relGroup, 4, m)
	}

	block := func(group []byte) []byte {
		var st []byte
		for _, s := range strs {
			st = appendBytesField(st, 1, []byte(s))
		}
		var b []byte
		b = appendBytesField(b, 1, st)
		return appendBytesField(b, 2, group)
	}
	var header []byte
	header = appendBytesField(header, 4, []byte("OsmSchema-V0.6"))
	header = appendBytesField(header, 4, []byte("DenseNodes"))

	var out []byte
	frame := func(typ string, payload []byte) {
		var blob []byte
		if zip {
			var z bytes.Buffer
			w := zlib.NewWriter(&z)
			w.Write(payload)
			w.Close()
			blob = appendVarintField(blob, 2, uint64(len(payload)))
			blob = appendBytesField(blob, 3, z.Bytes())
		} else {
			blob = appendBytesField(blob, 1, payload)
		}
		var hdr []byte
		hdr = appendBytesField(hdr, 1, []byte(typ))
		hdr = appendVarintField(hdr, 3, uint64(len(blob)))
		out = binary.BigEndian.AppendUint32(out, uint32(len(hdr)))
		out = append(out, hdr...)
		out = append(out, blob...)
	}
	frame("OSMHeader", header)
	// Build the groups first so the string table is complete, then write
	// every block with the full table.
	nb, wb, rb := block(nodeGroup), block(wayGroup), block(relGroup)
	frame("OSMData", nb)
	frame("OSMData", wb)
	if len(rels) > 0 {
		frame("OSMData", rb)
	}
	return out
}
