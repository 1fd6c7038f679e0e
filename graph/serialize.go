package graph

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"os"
	"time"
	"unsafe"
)

// File format (all integers little-endian):
//
//	header, 32 bytes: magic "LMCHGRPH", format version (uint32), number of
//	    sections (uint32), payload length in bytes (uint64), CRC-32C
//	    (Castagnoli) of the payload (uint32), zero (uint32);
//	payload: the section table, 24 bytes per section: id (uint32), element
//	    size (uint32), element count (uint64), offset of the data from the
//	    payload start (uint64, a multiple of 8); then the section data, each
//	    a flat array padded with zeros to a multiple of 8 bytes.
//
// Arrays are written and, on little-endian hosts, read in bulk: a loaded
// graph's arrays alias the file buffer. Road names (Network.Names) are
// stored as their UTF-8 bytes concatenated plus the end offset of each;
// a loaded graph's names are substrings of one string copied from the file.
//
// Version 3 added the road names (Edge.Name, Network.Names). A file of
// another version is refused with an error wrapping ErrCorrupt that says to
// prepare it again; engine.Open does so by itself for a cached graph.

// ErrCorrupt is wrapped by the errors Load returns for files that are not
// valid graph files: wrong magic or version, truncated, checksum mismatch or
// inconsistent contents.
var ErrCorrupt = errors.New("graph: corrupt graph file")

const (
	fileMagic   = "LMCHGRPH"
	fileVersion = 3
	headerSize  = 32
	tableEntry  = 24
	maxSections = 64
)

// Section ids.
const (
	secLat = iota + 1
	secLon
	secOSMNode
	secShapeLat
	secShapeLon
	secEdgeFrom
	secEdgeTo
	secEdgeDist
	secEdgeDur
	secEdgeWay
	secEdgeClass
	secEdgeShapeStart
	secEdgeShapeEnd
	secRestrFrom
	secRestrTo
	secRestrOnly
	secWeight
	secEdgeOfCH
	secTurnFirst
	secTurnHead
	secFwdFirst
	secFwdHead
	secFwdWeight
	secFwdMid
	secBwdFirst
	secBwdHead
	secBwdWeight
	secBwdMid
	secTimes
	secRank
	// secCCHOrder, optional, holds the nested-dissection order of the
	// customizable hierarchy (rank -> CH node), so that a loaded graph
	// skips computing it. Older readers skip it as unknown.
	secCCHOrder
	// Road names, since version 3: Edge.Name per edge, the bytes of all
	// names concatenated, and the end offset of each name in them
	// (len(Network.Names) entries, 0 when the network has no names).
	secEdgeName
	secNameData
	secNameEnd
	// numSec is the largest section id this version knows.
	numSec = secNameEnd
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// littleEndian reports whether the host stores integers little-endian, in
// which case arrays are reinterpreted in place instead of decoded.
var littleEndian = func() bool {
	x := uint16(1)
	return *(*byte)(unsafe.Pointer(&x)) == 1
}()

type elem interface {
	~uint8 | ~uint32 | ~int64 | ~float64
}

// section is one array to write.
type section struct {
	id       uint32
	elemSize uint32
	count    uint64
	data     []byte
}

// toBytes returns the little-endian bytes of s, aliasing s when possible.
func toBytes[T elem](s []T) []byte {
	var zero T
	size := int(unsafe.Sizeof(zero))
	if len(s) == 0 {
		return nil
	}
	if littleEndian {
		return unsafe.Slice((*byte)(unsafe.Pointer(&s[0])), len(s)*size)
	}
	b := make([]byte, len(s)*size)
	for i, v := range s {
		putElem(b[i*size:], v)
	}
	return b
}

func putElem[T elem](b []byte, v T) {
	switch x := any(v).(type) {
	case uint8:
		b[0] = x
	case uint32:
		binary.LittleEndian.PutUint32(b, x)
	case int64:
		binary.LittleEndian.PutUint64(b, uint64(x))
	case float64:
		binary.LittleEndian.PutUint64(b, math.Float64bits(x))
	default: // named types with these underlying types
		switch unsafe.Sizeof(v) {
		case 1:
			b[0] = *(*uint8)(unsafe.Pointer(&v))
		case 4:
			binary.LittleEndian.PutUint32(b, *(*uint32)(unsafe.Pointer(&v)))
		case 8:
			binary.LittleEndian.PutUint64(b, *(*uint64)(unsafe.Pointer(&v)))
		}
	}
}

// fromBytes views (or, on big-endian hosts, decodes) b as []T. b must be
// 8-byte aligned and len(b) a multiple of the element size.
func fromBytes[T elem](b []byte) []T {
	var zero T
	size := int(unsafe.Sizeof(zero))
	n := len(b) / size
	if n == 0 {
		return nil
	}
	if littleEndian {
		return unsafe.Slice((*T)(unsafe.Pointer(&b[0])), n)
	}
	s := make([]T, n)
	for i := range s {
		p := unsafe.Pointer(&s[i])
		switch size {
		case 1:
			*(*uint8)(p) = b[i]
		case 4:
			*(*uint32)(p) = binary.LittleEndian.Uint32(b[i*4:])
		case 8:
			*(*uint64)(p) = binary.LittleEndian.Uint64(b[i*8:])
		}
	}
	return s
}

func mkSection[T elem](id uint32, s []T) section {
	var zero T
	return section{id: id, elemSize: uint32(unsafe.Sizeof(zero)), count: uint64(len(s)), data: toBytes(s)}
}

func pad8(n uint64) uint64 { return (n + 7) &^ 7 }

// WriteTo writes the graph, including its road network, in the binary
// format described above. It implements io.WriterTo.
func (g *Graph) WriteTo(w io.Writer) (int64, error) {
	n := g.Road
	ne := len(n.Edges)
	from, to := make([]uint32, ne), make([]uint32, ne)
	dist, dur := make([]float64, ne), make([]float64, ne)
	way := make([]int64, ne)
	class := make([]RoadClass, ne)
	ss, se, name := make([]uint32, ne), make([]uint32, ne), make([]uint32, ne)
	for i, e := range n.Edges {
		from[i], to[i], dist[i], dur[i], way[i], class[i], ss[i], se[i] = e.From, e.To, e.Distance, e.Duration, e.WayID, e.Class, e.ShapeStart, e.ShapeEnd
		name[i] = e.Name
	}
	nameData, nameEnd, err := encodeNames(n.Names)
	if err != nil {
		return 0, err
	}
	nr := len(n.Restrictions)
	rf, rt, ro := make([]uint32, nr), make([]uint32, nr), make([]uint8, nr)
	for i, r := range n.Restrictions {
		rf[i], rt[i] = r.From, r.To
		if r.Only {
			ro[i] = 1
		}
	}
	st := g.stats
	times := []int64{int64(st.TurnGraphTime), int64(st.SCCTime), int64(st.ContractTime), int64(st.TotalTime)}
	secs := []section{
		mkSection(secLat, n.Lat), mkSection(secLon, n.Lon), mkSection(secOSMNode, n.OSMNode),
		mkSection(secShapeLat, n.ShapeLat), mkSection(secShapeLon, n.ShapeLon),
		mkSection(secEdgeFrom, from), mkSection(secEdgeTo, to), mkSection(secEdgeDist, dist), mkSection(secEdgeDur, dur),
		mkSection(secEdgeWay, way), mkSection(secEdgeClass, class), mkSection(secEdgeShapeStart, ss), mkSection(secEdgeShapeEnd, se),
		mkSection(secRestrFrom, rf), mkSection(secRestrTo, rt), mkSection(secRestrOnly, ro),
		mkSection(secWeight, g.weight), mkSection(secEdgeOfCH, g.edgeOfCH),
		mkSection(secTurnFirst, g.turnFirst), mkSection(secTurnHead, g.turnHead),
		mkSection(secFwdFirst, g.fwd.First), mkSection(secFwdHead, g.fwd.Head), mkSection(secFwdWeight, g.fwd.Weight), mkSection(secFwdMid, g.fwd.Mid),
		mkSection(secBwdFirst, g.bwd.First), mkSection(secBwdHead, g.bwd.Head), mkSection(secBwdWeight, g.bwd.Weight), mkSection(secBwdMid, g.bwd.Mid),
		mkSection(secTimes, times), mkSection(secRank, g.rank),
		mkSection(secEdgeName, name), mkSection(secNameData, nameData), mkSection(secNameEnd, nameEnd),
	}
	if g.cchOrder != nil {
		secs = append(secs, mkSection(secCCHOrder, g.cchOrder))
	}
	table := make([]byte, len(secs)*tableEntry)
	off := uint64(len(table))
	for i, s := range secs {
		t := table[i*tableEntry:]
		binary.LittleEndian.PutUint32(t[0:], s.id)
		binary.LittleEndian.PutUint32(t[4:], s.elemSize)
		binary.LittleEndian.PutUint64(t[8:], s.count)
		binary.LittleEndian.PutUint64(t[16:], off)
		off += pad8(uint64(len(s.data)))
	}
	var zeros [8]byte
	crc := crc32.Update(0, castagnoli, table)
	for _, s := range secs {
		crc = crc32.Update(crc, castagnoli, s.data)
		crc = crc32.Update(crc, castagnoli, zeros[:pad8(uint64(len(s.data)))-uint64(len(s.data))])
	}
	var hdr [headerSize]byte
	copy(hdr[:], fileMagic)
	binary.LittleEndian.PutUint32(hdr[8:], fileVersion)
	binary.LittleEndian.PutUint32(hdr[12:], uint32(len(secs)))
	binary.LittleEndian.PutUint64(hdr[16:], off)
	binary.LittleEndian.PutUint32(hdr[24:], crc)
	var written int64
	write := func(b []byte) error {
		k, err := w.Write(b)
		written += int64(k)
		return err
	}
	if err := write(hdr[:]); err != nil {
		return written, fmt.Errorf("graph: write header: %w", err)
	}
	if err := write(table); err != nil {
		return written, fmt.Errorf("graph: write section table: %w", err)
	}
	for _, s := range secs {
		if err := write(s.data); err != nil {
			return written, fmt.Errorf("graph: write section %d: %w", s.id, err)
		}
		if err := write(zeros[:pad8(uint64(len(s.data)))-uint64(len(s.data))]); err != nil {
			return written, fmt.Errorf("graph: write section %d: %w", s.id, err)
		}
	}
	return written, nil
}

// encodeNames concatenates names and returns their bytes and the end
// offset of each.
func encodeNames(names []string) (data []byte, end []uint32, err error) {
	total := 0
	for _, s := range names {
		total += len(s)
	}
	if total > math.MaxUint32 {
		return nil, nil, fmt.Errorf("graph: road names take %d bytes, more than the format's 4 GiB", total)
	}
	data = make([]byte, 0, total)
	end = make([]uint32, len(names))
	for i, s := range names {
		data = append(data, s...)
		end[i] = uint32(len(data))
	}
	return data, end, nil
}

// decodeNames is the inverse of encodeNames: the names are substrings of
// one copy of data, so that they neither alias the file buffer nor cost an
// allocation each.
func decodeNames(data []byte, end []uint32) ([]string, error) {
	if len(end) == 0 {
		if len(data) != 0 {
			return nil, corrupt("%d bytes of road names without a name table", len(data))
		}
		return nil, nil
	}
	all := string(data)
	names := make([]string, len(end))
	prev := uint32(0)
	for i, e := range end {
		if e < prev || int(e) > len(all) {
			return nil, corrupt("road name %d ends at byte %d, after %d, of %d", i, e, prev, len(all))
		}
		names[i] = all[prev:e]
		prev = e
	}
	if int(prev) != len(all) {
		return nil, corrupt("road names use %d of %d bytes", prev, len(all))
	}
	return names, nil
}

// WriteFile writes the graph to a file (see WriteTo).
func (g *Graph) WriteFile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("graph: %w", err)
	}
	if _, err := g.WriteTo(f); err != nil {
		f.Close()
		return fmt.Errorf("graph: write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("graph: write %s: %w", path, err)
	}
	return nil
}

func corrupt(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrCorrupt, fmt.Sprintf(format, args...))
}

// parseHeader checks the header and returns the section count, payload
// length and checksum.
func parseHeader(hdr []byte) (nsec int, payload uint64, crc uint32, err error) {
	if string(hdr[:8]) != fileMagic {
		return 0, 0, 0, corrupt("bad magic %q", hdr[:8])
	}
	if v := binary.LittleEndian.Uint32(hdr[8:]); v != fileVersion {
		return 0, 0, 0, corrupt("format version %d, want %d: prepare the graph again from its OSM extract (lastmile prepare)", v, fileVersion)
	}
	nsec = int(binary.LittleEndian.Uint32(hdr[12:]))
	if nsec > maxSections {
		return 0, 0, 0, corrupt("%d sections", nsec)
	}
	payload = binary.LittleEndian.Uint64(hdr[16:])
	if payload < uint64(nsec*tableEntry) || payload > 1<<46 {
		return 0, 0, 0, corrupt("payload length %d", payload)
	}
	return nsec, payload, binary.LittleEndian.Uint32(hdr[24:]), nil
}

// alignedBuf returns a zeroed byte slice of length n whose start is 8-byte
// aligned, so that arrays can be viewed in place.
func alignedBuf(n uint64) []byte {
	if n == 0 {
		return nil
	}
	words := make([]uint64, (n+7)/8)
	return unsafe.Slice((*byte)(unsafe.Pointer(&words[0])), n)
}

// Load reads a graph written by WriteTo. Invalid input gives an error
// wrapping ErrCorrupt (or the reader's error), never a panic.
func Load(r io.Reader) (*Graph, error) {
	var hdr [headerSize]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, corrupt("truncated header: %v", err)
		}
		return nil, fmt.Errorf("graph: read header: %w", err)
	}
	nsec, plen, crc, err := parseHeader(hdr[:])
	if err != nil {
		return nil, err
	}
	// Read without trusting the length for the allocation size.
	data, err := io.ReadAll(io.LimitReader(r, int64(plen)))
	if err != nil {
		return nil, fmt.Errorf("graph: read payload: %w", err)
	}
	if uint64(len(data)) != plen {
		return nil, corrupt("truncated: payload has %d of %d bytes", len(data), plen)
	}
	if len(data) > 0 && uintptr(unsafe.Pointer(&data[0]))%8 != 0 {
		b := alignedBuf(plen)
		copy(b, data)
		data = b
	}
	return decode(data, nsec, crc)
}

// LoadFile reads a graph file written by WriteTo or WriteFile.
func LoadFile(path string) (*Graph, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("graph: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("graph: %w", err)
	}
	var hdr [headerSize]byte
	if _, err := io.ReadFull(f, hdr[:]); err != nil {
		return nil, fmt.Errorf("graph: load %s: %w", path, corrupt("truncated header: %v", err))
	}
	nsec, plen, crc, err := parseHeader(hdr[:])
	if err != nil {
		return nil, fmt.Errorf("graph: load %s: %w", path, err)
	}
	if uint64(fi.Size()) != headerSize+plen {
		return nil, fmt.Errorf("graph: load %s: %w", path, corrupt("file has %d bytes, header says %d", fi.Size(), headerSize+plen))
	}
	data := alignedBuf(plen)
	if _, err := io.ReadFull(f, data); err != nil {
		return nil, fmt.Errorf("graph: load %s: %w", path, err)
	}
	g, err := decode(data, nsec, crc)
	if err != nil {
		return nil, fmt.Errorf("graph: load %s: %w", path, err)
	}
	return g, nil
}

// decode checks the payload and builds the graph from it.
func decode(data []byte, nsec int, crc uint32) (*Graph, error) {
	if got := crc32.Checksum(data, castagnoli); got != crc {
		return nil, corrupt("checksum mismatch (got %08x, header says %08x)", got, crc)
	}
	var secs [numSec + 1][]byte
	var seen [numSec + 1]bool
	var cchOrder []byte
	want := [numSec + 1]uint32{}
	for id := 1; id <= numSec; id++ {
		switch id {
		case secLat, secLon, secShapeLat, secShapeLon, secEdgeDist, secEdgeDur, secOSMNode, secEdgeWay,
			secWeight, secFwdWeight, secBwdWeight, secTimes:
			want[id] = 8
		case secEdgeClass, secRestrOnly, secNameData:
			want[id] = 1
		default:
			want[id] = 4
		}
	}
	for i := 0; i < nsec; i++ {
		t := data[i*tableEntry:]
		id := binary.LittleEndian.Uint32(t[0:])
		size := binary.LittleEndian.Uint32(t[4:])
		count := binary.LittleEndian.Uint64(t[8:])
		off := binary.LittleEndian.Uint64(t[16:])
		if id == secCCHOrder {
			if cchOrder != nil || size != 4 || off%8 != 0 || off < uint64(nsec*tableEntry) || off > uint64(len(data)) ||
				count > (uint64(len(data))-off)/4 {
				return nil, corrupt("section %d (CCH order) malformed or repeated", id)
			}
			cchOrder = data[off : off+count*4]
			continue
		}
		if id == 0 || id > numSec {
			continue // unknown sections are skipped
		}
		if seen[id] {
			return nil, corrupt("section %d appears twice", id)
		}
		seen[id] = true
		if size != want[id] {
			return nil, corrupt("section %d: element size %d, want %d", id, size, want[id])
		}
		if off%8 != 0 || off < uint64(nsec*tableEntry) || off > uint64(len(data)) || count > (uint64(len(data))-off)/uint64(size) {
			return nil, corrupt("section %d: %d elements at offset %d exceed the %d-byte payload", id, count, off, len(data))
		}
		secs[id] = data[off : off+count*uint64(size)]
	}
	for id := 1; id <= numSec; id++ {
		if !seen[id] && id != secCCHOrder {
			return nil, corrupt("section %d missing", id)
		}
	}
	n := &Network{
		Lat: fromBytes[float64](secs[secLat]), Lon: fromBytes[float64](secs[secLon]),
		OSMNode:  fromBytes[int64](secs[secOSMNode]),
		ShapeLat: fromBytes[float64](secs[secShapeLat]), ShapeLon: fromBytes[float64](secs[secShapeLon]),
	}
	from, to := fromBytes[uint32](secs[secEdgeFrom]), fromBytes[uint32](secs[secEdgeTo])
	dist, dur := fromBytes[float64](secs[secEdgeDist]), fromBytes[float64](secs[secEdgeDur])
	way, class := fromBytes[int64](secs[secEdgeWay]), fromBytes[uint8](secs[secEdgeClass])
	ss, se := fromBytes[uint32](secs[secEdgeShapeStart]), fromBytes[uint32](secs[secEdgeShapeEnd])
	name := fromBytes[uint32](secs[secEdgeName])
	ne := len(from)
	for _, l := range []int{len(to), len(dist), len(dur), len(way), len(class), len(ss), len(se), len(name)} {
		if l != ne {
			return nil, corrupt("edge columns have different lengths")
		}
	}
	n.Edges = make([]Edge, ne)
	for i := range n.Edges {
		n.Edges[i] = Edge{From: from[i], To: to[i], Distance: dist[i], Duration: dur[i], WayID: way[i],
			Class: RoadClass(class[i]), Name: name[i], ShapeStart: ss[i], ShapeEnd: se[i]}
	}
	names, err := decodeNames(secs[secNameData], fromBytes[uint32](secs[secNameEnd]))
	if err != nil {
		return nil, err
	}
	n.Names = names
	rf, rt, ro := fromBytes[uint32](secs[secRestrFrom]), fromBytes[uint32](secs[secRestrTo]), fromBytes[uint8](secs[secRestrOnly])
	if len(rt) != len(rf) || len(ro) != len(rf) {
		return nil, corrupt("restriction columns have different lengths")
	}
	n.Restrictions = make([]TurnRestriction, len(rf))
	for i := range rf {
		n.Restrictions[i] = TurnRestriction{From: rf[i], To: rt[i], Only: ro[i] != 0}
	}
	if _, err := validateNetwork(n); err != nil {
		return nil, corrupt("%v", err)
	}
	g := &Graph{Road: n,
		weight:    fromBytes[int64](secs[secWeight]),
		edgeOfCH:  fromBytes[uint32](secs[secEdgeOfCH]),
		rank:      fromBytes[uint32](secs[secRank]),
		turnFirst: fromBytes[uint32](secs[secTurnFirst]), turnHead: fromBytes[uint32](secs[secTurnHead]),
		fwd: upGraph{First: fromBytes[uint32](secs[secFwdFirst]), Head: fromBytes[uint32](secs[secFwdHead]),
			Weight: fromBytes[int64](secs[secFwdWeight]), Mid: fromBytes[uint32](secs[secFwdMid])},
		bwd: upGraph{First: fromBytes[uint32](secs[secBwdFirst]), Head: fromBytes[uint32](secs[secBwdHead]),
			Weight: fromBytes[int64](secs[secBwdWeight]), Mid: fromBytes[uint32](secs[secBwdMid])},
	}
	if err := g.validate(); err != nil {
		return nil, err
	}
	if cchOrder != nil {
		g.cchOrder = fromBytes[uint32](cchOrder)
		if !isPermutation(g.cchOrder, len(g.edgeOfCH)) {
			return nil, corrupt("CCH order is not a permutation of the %d CH nodes", len(g.edgeOfCH))
		}
	}
	times := fromBytes[int64](secs[secTimes])
	if len(times) != 4 {
		return nil, corrupt("%d build times, want 4", len(times))
	}
	if err := g.derive(); err != nil {
		return nil, corrupt("%v", err)
	}
	g.stats = Stats{RoadNodes: len(n.Lat), RoadEdges: ne, CHNodes: len(g.edgeOfCH), TurnArcs: len(g.turnHead),
		TurnGraphTime: time.Duration(times[0]), SCCTime: time.Duration(times[1]), ContractTime: time.Duration(times[2]), TotalTime: time.Duration(times[3])}
	g.countStats()
	return g, nil
}

// isPermutation reports whether p holds each of 0..n-1 once.
func isPermutation(p []uint32, n int) bool {
	if len(p) != n {
		return false
	}
	seen := make([]bool, n)
	for _, v := range p {
		if int(v) >= n || seen[v] {
			return false
		}
		seen[v] = true
	}
	return true
}

// validate checks every index of a loaded graph against its array, so that
// queries on it cannot go out of range or loop.
func (g *Graph) validate() error {
	ne := len(g.Road.Edges)
	if len(g.weight) != ne {
		return corrupt("%d edge weights for %d edges", len(g.weight), ne)
	}
	for i, w := range g.weight {
		d, l := unpackWeight(w)
		if d < 1 || d >= maxEdgeDurMs || l < 1 || l >= maxEdgeDistCm {
			return corrupt("edge %d: weight %d out of range", i, w)
		}
	}
	nc := len(g.edgeOfCH)
	if nc == 0 || nc > ne {
		return corrupt("%d routable edges of %d", nc, ne)
	}
	g.chOfEdge = make([]uint32, ne)
	for i := range g.chOfEdge {
		g.chOfEdge[i] = noNode
	}
	for v, e := range g.edgeOfCH {
		if int(e) >= ne || g.chOfEdge[e] != noNode {
			return corrupt("CH node %d: road edge %d out of range or repeated", v, e)
		}
		g.chOfEdge[e] = uint32(v)
	}
	if len(g.rank) != nc {
		return corrupt("%d ranks for %d CH nodes", len(g.rank), nc)
	}
	seenRank := make([]bool, nc)
	for v, r := range g.rank {
		if int(r) >= nc || seenRank[r] {
			return corrupt("CH node %d: rank %d out of range or repeated", v, r)
		}
		seenRank[r] = true
	}
	if err := checkCSR("turn graph", g.turnFirst, g.turnHead, nc); err != nil {
		return err
	}
	for v := 0; v < nc; v++ {
		a := g.Road.Edges[g.edgeOfCH[v]]
		for _, h := range g.turnHead[g.turnFirst[v]:g.turnFirst[v+1]] {
			if g.Road.Edges[g.edgeOfCH[h]].From != a.To {
				return corrupt("turn %d->%d does not connect", v, h)
			}
		}
	}
	for _, u := range []struct {
		name string
		g    *upGraph
	}{{"forward up graph", &g.fwd}, {"backward up graph", &g.bwd}} {
		if err := checkCSR(u.name, u.g.First, u.g.Head, nc); err != nil {
			return err
		}
		if len(u.g.Weight) != len(u.g.Head) || len(u.g.Mid) != len(u.g.Head) {
			return corrupt("%s: %d heads, %d weights, %d middle nodes", u.name, len(u.g.Head), len(u.g.Weight), len(u.g.Mid))
		}
		for v := 0; v < nc; v++ {
			for i := u.g.First[v]; i < u.g.First[v+1]; i++ {
				h, m := u.g.Head[i], u.g.Mid[i]
				if g.rank[h] <= g.rank[v] {
					return corrupt("%s: arc %d->%d does not go up", u.name, v, h)
				}
				if m != noNode && (int(m) >= nc || g.rank[m] >= g.rank[v]) {
					return corrupt("%s: arc %d->%d has middle node %d above it", u.name, v, h, m)
				}
				if u.g.Weight[i] < 0 || u.g.Weight[i] >= infWeight/4 {
					return corrupt("%s: arc %d->%d has weight %d", u.name, v, h, u.g.Weight[i])
				}
			}
		}
	}
	return nil
}

// checkCSR checks that first is a valid offset array of len n+1 into head
// and that heads are below n.
func checkCSR(name string, first, head []uint32, n int) error {
	if len(first) != n+1 || first[0] != 0 || int(first[n]) != len(head) {
		return corrupt("%s: bad offsets (%d for %d nodes, %d arcs)", name, len(first), n, len(head))
	}
	for i := 0; i < n; i++ {
		if first[i] > first[i+1] {
			return corrupt("%s: offsets decrease at node %d", name, i)
		}
	}
	for i, h := range head {
		if int(h) >= n {
			return corrupt("%s: arc %d: head %d out of range", name, i, h)
		}
	}
	return nil
}
