package osmimport

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"strings"
	"testing"
)

// rawPBF frames an OSMHeader block and the given PrimitiveBlocks as raw blobs.
func rawPBF(blocks ...[]byte) []byte {
	var header []byte
	header = appendBytesField(header, 4, []byte("OsmSchema-V0.6"))
	var out []byte
	for i, p := range append([][]byte{header}, blocks...) {
		typ := "OSMData"
		if i == 0 {
			typ = "OSMHeader"
		}
		out = appendFrame(out, typ, appendBytesField(nil, 1, p))
	}
	return out
}

func appendFrame(out []byte, typ string, blob []byte) []byte {
	var hdr []byte
	hdr = appendBytesField(hdr, 1, []byte(typ))
	hdr = appendVarintField(hdr, 3, uint64(len(blob)))
	out = binary.BigEndian.AppendUint32(out, uint32(len(hdr)))
	out = append(out, hdr...)
	return append(out, blob...)
}

// primBlock builds a PrimitiveBlock with the string table strs and groups.
func primBlock(strs []string, groups ...[]byte) []byte {
	var st []byte
	for _, s := range strs {
		st = appendBytesField(st, 1, []byte(s))
	}
	b := appendBytesField(nil, 1, st)
	for _, g := range groups {
		b = appendBytesField(b, 2, g)
	}
	return b
}

func msg(fs ...[]byte) []byte     { return bytes.Join(fs, nil) }
func vf(num int, v uint64) []byte { return appendVarintField(nil, num, v) }
func bf(num int, b []byte) []byte { return appendBytesField(nil, num, b) }
func pk(vals ...uint64) []byte    { return packedVarints(vals) }

// TestPBFValidation feeds blocks that would make osmpbf panic in its
// decoder goroutines (or that are simply corrupt) and expects clear errors.
func TestPBFValidation(t *testing.T) {
	strs := []string{"", "highway", "residential"}
	way := func(fields ...[]byte) []byte { return bf(3, msg(append([][]byte{vf(1, 7)}, fields...)...)) }
	dense := func(fields ...[]byte) []byte { return bf(2, msg(fields...)) }
	zipped := func(payload []byte, rawSize uint64, corrupt bool) []byte {
		var z bytes.Buffer
		w := zlib.NewWriter(&z)
		w.Write(payload)
		w.Close()
		data := z.Bytes()
		if corrupt {
			data[len(data)-1] ^= 0xff
		}
		blob := msg(vf(2, rawSize), bf(3, data))
		header := rawPBF()
		return appendFrame(header, "OSMData", blob)
	}
	good := primBlock(strs, way(bf(2, pk(1)), bf(3, pk(2)), bf(8, pk(2, 2))))
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"way key out of range", rawPBF(primBlock(strs, way(bf(2, pk(9)), bf(3, pk(2)), bf(8, pk(2, 2))))), "string table"},
		{"way val out of range", rawPBF(primBlock(strs, way(bf(2, pk(1)), bf(3, pk(3)), bf(8, pk(2, 2))))), "string table"},
		{"way user out of range", rawPBF(primBlock(strs, way(bf(4, vf(5, 3)), bf(8, pk(2, 2))))), "string table"},
		{"way lats longer than refs", rawPBF(primBlock(strs, way(bf(8, pk(2)), bf(9, pk(2, 2, 2))))), "differ in length"},
		{"way refs repeated", rawPBF(primBlock(strs, way(bf(8, pk(2)), bf(8, pk(2, 2))))), "repeated"},
		{"plain nodes", rawPBF(primBlock(strs, bf(1, msg(vf(1, 2))))), "non-dense"},
		{"dense key out of range", rawPBF(primBlock(strs, dense(bf(1, pk(2)), bf(8, pk(0)), bf(9, pk(0)), bf(10, pk(5, 1, 0))))), "string table"},
		{"dense negative user", rawPBF(primBlock(strs, dense(bf(1, pk(2)), bf(5, bf(5, pk(1))), bf(8, pk(0)), bf(9, pk(0))))), "string table"},
		{"relation roles beyond types", rawPBF(primBlock(strs, bf(4, msg(vf(1, 1), bf(8, pk(0, 0)), bf(9, pk(2, 2)), bf(10, pk(1)))))), "more roles"},
		{"relation role out of range", rawPBF(primBlock(strs, bf(4, msg(vf(1, 1), bf(8, pk(7)), bf(9, pk(2)), bf(10, pk(1)))))), "string table"},
		{"wrong wire type", rawPBF(primBlock(strs, vf(3, 1))), "wire type"},
		{"negative raw_size", zipped(good, 1<<64-1, false), "raw_size"},
		{"raw_size too large for data", zipped(good, 30<<20, false), "impossible"},
		{"raw_size too small", zipped(good, 3, false), "more data than raw_size"},
		{"raw_size too big", zipped(good, uint64(len(good)+1), false), "unexpected EOF"},
		{"corrupt zlib", zipped(good, uint64(len(good)), true), "zlib"},
		{"second header", append(rawPBF(), rawPBF()...), "want \"OSMData\""},
		{"truncated", rawPBF(good)[:40], "out of range"},
		{"lzma", appendFrame(rawPBF(), "OSMData", bf(4, []byte{1})), "unsupported blob compression"},
	}
	// A header whose datasize is -1.
	var neg []byte
	neg = appendBytesField(neg, 1, []byte("OSMHeader"))
	neg = appendVarintField(neg, 3, 1<<64-1)
	negFrame := binary.BigEndian.AppendUint32(nil, uint32(len(neg)))
	tests = append(tests, struct {
		name string
		data []byte
		want string
	}{"negative datasize", append(negFrame, neg...), "negative datasize"})

	for _, tc := range tests {
		_, _, err := Read(bytes.NewReader(tc.data), FormatPBF, Options{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want it to contain %q", tc.name, err, tc.want)
		}
	}
	// The well-formed block passes validation (it holds no routable road:
	// the way has one distinct node and no node positions).
	if _, c, err := preparePBF(rawPBF(good), 1); err != nil || c != (pbfCounts{0, 1, 0}) {
		t.Errorf("good block rejected: %v, counts %+v", err, c)
	}
}
