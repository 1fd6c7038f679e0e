package eta

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"hash/fnv"
	"io"
	"math"
	"time"

	"github.com/lastmile/lastmile/graph"
)

// Profile file layout (little-endian): magic, version, the fingerprint of
// the road network the profile was fitted on, the time zone name, the
// fit statistics, the per-edge slots and the multiplier rows, then a
// CRC-32C of everything before it. A profile is only meaningful on the
// network whose edge indices it uses, hence the fingerprint.
const (
	profileMagic   = "LMPROFIL"
	profileVersion = 1
	maxZoneName    = 256
)

// ErrProfileMismatch is returned by ReadProfile for a profile fitted on
// another road network.
var ErrProfileMismatch = errors.New("eta: profile was fitted on another road network")

// NetworkFingerprint hashes the edges of a road network (end nodes and
// OSM way of each, in order) so that a saved profile can check it is read
// against the network whose edge indices it uses.
func NetworkFingerprint(net *graph.Network) uint64 {
	h := fnv.New64a()
	var b [16]byte
	binary.LittleEndian.PutUint64(b[:8], uint64(len(net.Edges)))
	h.Write(b[:8])
	for i := range net.Edges {
		e := &net.Edges[i]
		binary.LittleEndian.PutUint32(b[0:], e.From)
		binary.LittleEndian.PutUint32(b[4:], e.To)
		binary.LittleEndian.PutUint64(b[8:], uint64(e.WayID))
		h.Write(b[:])
	}
	return h.Sum64()
}

// WriteProfile writes p, fitted on net, so that a server can start with
// it (ReadProfile).
func WriteProfile(w io.Writer, p *Profile, net *graph.Network) error {
	if p == nil {
		return errors.New("eta: write profile: nil profile")
	}
	if len(p.slot) != len(net.Edges) {
		return fmt.Errorf("eta: write profile: %d edge slots for a network of %d edges", len(p.slot), len(net.Edges))
	}
	zone := p.loc.String()
	var buf bytes.Buffer
	buf.WriteString(profileMagic)
	st := p.stats
	hdr := []uint64{profileVersion, NetworkFingerprint(net), uint64(len(p.slot)), uint64(len(p.table) / NumBins),
		uint64(len(zone)), uint64(st.Used), uint64(st.UnknownEdge), uint64(st.Invalid), uint64(st.Implausible),
		uint64(st.Edges), uint64(st.Groups), uint64(st.Classes)}
	binary.Write(&buf, binary.LittleEndian, hdr)
	buf.WriteString(zone)
	binary.Write(&buf, binary.LittleEndian, p.slot)
	binary.Write(&buf, binary.LittleEndian, p.table)
	binary.Write(&buf, binary.LittleEndian, crc32.Checksum(buf.Bytes(), castagnoli))
	if _, err := w.Write(buf.Bytes()); err != nil {
		return fmt.Errorf("eta: write profile: %w", err)
	}
	return nil
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// ReadProfile reads a profile written by WriteProfile and checks it
// against net: a corrupt file, a truncated one, or a profile fitted on
// another network (ErrProfileMismatch) is an error, never a panic.
func ReadProfile(r io.Reader, net *graph.Network) (*Profile, error) {
	corrupt := func(format string, args ...any) error {
		return fmt.Errorf("eta: read profile: corrupt file: "+format, args...)
	}
	br := bufio.NewReader(r)
	// Everything before the checksum is read through the hash.
	h := crc32.New(castagnoli)
	tr := io.TeeReader(br, h)
	var magic [8]byte
	if _, err := io.ReadFull(tr, magic[:]); err != nil || string(magic[:]) != profileMagic {
		return nil, corrupt("not a lastmile profile (bad magic)")
	}
	var hdr [12]uint64
	if err := binary.Read(tr, binary.LittleEndian, &hdr); err != nil {
		return nil, corrupt("truncated header")
	}
	if hdr[0] != profileVersion {
		return nil, fmt.Errorf("eta: read profile: format version %d, this build reads %d", hdr[0], profileVersion)
	}
	if hdr[1] != NetworkFingerprint(net) || hdr[2] != uint64(len(net.Edges)) {
		return nil, fmt.Errorf("%w (%d edges in the profile, %d in the network)", ErrProfileMismatch, hdr[2], len(net.Edges))
	}
	nEdges, nRows, zoneLen := int(hdr[2]), hdr[3], hdr[4]
	if zoneLen > maxZoneName {
		return nil, corrupt("time zone name of %d bytes", zoneLen)
	}
	// Rows are per edge or per aggregate: at most one per edge, plus one per
	// group and class, each of which needs an edge.
	if nRows > 3*uint64(nEdges)+1 {
		return nil, corrupt("%d rows for %d edges", nRows, nEdges)
	}
	zone := make([]byte, zoneLen)
	if _, err := io.ReadFull(tr, zone); err != nil {
		return nil, corrupt("truncated time zone")
	}
	loc, err := time.LoadLocation(string(zone))
	if err != nil {
		return nil, fmt.Errorf("eta: read profile: time zone %q: %w", zone, err)
	}
	raw := make([]byte, 4*(nEdges+int(nRows)*NumBins))
	if _, err := io.ReadFull(tr, raw); err != nil {
		return nil, corrupt("truncated tables")
	}
	crc := h.Sum32()
	var want uint32
	if err := binary.Read(br, binary.LittleEndian, &want); err != nil {
		return nil, corrupt("missing checksum")
	}
	if want != crc {
		return nil, corrupt("checksum mismatch")
	}
	if _, err := br.ReadByte(); err != io.EOF {
		return nil, corrupt("trailing bytes after the checksum")
	}
	p := &Profile{loc: loc, slot: make([]int32, nEdges), table: make([]float32, int(nRows)*NumBins)}
	for i := range p.slot {
		s := int32(binary.LittleEndian.Uint32(raw[4*i:]))
		if s < -1 || int64(s) >= int64(nRows) {
			return nil, corrupt("edge %d: row %d of %d", i, s, nRows)
		}
		p.slot[i] = s
	}
	raw = raw[4*nEdges:]
	for i := range p.table {
		f := math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
		if !(f >= minFactor && f <= maxFactor) {
			return nil, corrupt("multiplier %v in row %d outside [%v, %v]", f, i/NumBins, minFactor, maxFactor)
		}
		p.table[i] = f
	}
	p.stats = ProfileStats{Used: int(hdr[5]), UnknownEdge: int(hdr[6]), Invalid: int(hdr[7]), Implausible: int(hdr[8]),
		Edges: int(hdr[9]), Groups: int(hdr[10]), Classes: int(hdr[11])}
	return p, nil
}
