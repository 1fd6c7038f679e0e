package osmimport

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
)

// PBF limits from the OSM PBF format description
// (wiki.openstreetmap.org/wiki/PBF_Format, "File format").
const (
	maxBlobHeaderSize = 64 << 10
	maxBlobSize       = 32 << 20
	// maxDeflateRatio bounds the expansion of deflate (RFC 1951): a
	// 258-byte match costs at least two bits, so about 1032:1.
	maxDeflateRatio = 1032
)

// pbfCounts counts the elements of PBF blocks.
type pbfCounts struct {
	nodes, ways, relations int64
}

// pbfBlock is one block of a PBF file: its BlobHeader type and its
// uncompressed payload.
type pbfBlock struct {
	typ     string
	blob    []byte // the Blob message as read
	payload []byte // uncompressed HeaderBlock or PrimitiveBlock
	counts  pbfCounts
	err     error
}

// preparePBF checks a whole PBF file and returns an equivalent file whose
// blobs are all stored uncompressed ("raw").
//
// osmpbf decodes blocks in its own goroutines and panics there, out of
// reach of recover, on some malformed input (negative sizes, string-table
// indices out of range, member or coordinate arrays longer than their
// counterparts, non-dense nodes). So every block is decompressed and
// validated here first, by workers goroutines, and the decoded result is
// handed on raw so that osmpbf's two scans need not decompress again.
func preparePBF(data []byte, workers int) ([]byte, pbfCounts, error) {
	var total pbfCounts
	var blocks []pbfBlock
	off := 0
	for off < len(data) {
		n := len(blocks)
		if len(data)-off < 4 {
			return nil, total, fmt.Errorf("block %d: truncated length prefix", n)
		}
		hs := int(binary.BigEndian.Uint32(data[off:]))
		off += 4
		if hs == 0 || hs >= maxBlobHeaderSize || hs > len(data)-off {
			return nil, total, fmt.Errorf("block %d: blob header size %d out of range", n, hs)
		}
		typ, size, err := parseBlobHeader(data[off : off+hs])
		if err != nil {
			return nil, total, fmt.Errorf("block %d: blob header: %w", n, err)
		}
		off += hs
		if size >= maxBlobSize || size > int64(len(data)-off) {
			return nil, total, fmt.Errorf("block %d: blob size %d out of range", n, size)
		}
		want := "OSMData"
		if n == 0 {
			want = "OSMHeader"
		}
		if typ != want {
			return nil, total, fmt.Errorf("block %d: type %q, want %q", n, typ, want)
		}
		blocks = append(blocks, pbfBlock{typ: typ, blob: data[off : off+int(size)]})
		off += int(size)
	}
	if len(blocks) == 0 {
		return nil, total, errors.New("no blocks")
	}

	// Decompress and validate in parallel.
	var wg sync.WaitGroup
	next := make(chan int)
	for range max(workers, 1) {
		wg.Go(func() {
			for i := range next {
				b := &blocks[i]
				b.payload, b.err = blobPayload(b.blob)
				if b.err == nil && i > 0 {
					b.counts, b.err = checkPrimitiveBlock(b.payload)
				}
			}
		})
	}
	for i := range blocks {
		next <- i
	}
	close(next)
	wg.Wait()

	size := 0
	for i := range blocks {
		if blocks[i].err != nil {
			return nil, total, fmt.Errorf("block %d: %w", i, blocks[i].err)
		}
		size += len(blocks[i].payload) + 64
		total.nodes += blocks[i].counts.nodes
		total.ways += blocks[i].counts.ways
		total.relations += blocks[i].counts.relations
	}
	out := make([]byte, 0, size)
	for i := range blocks {
		b := &blocks[i]
		var blob []byte
		blob = appendBytesField(blob, 1, b.payload)
		blob = appendVarintField(blob, 2, uint64(len(b.payload)))
		var hdr []byte
		hdr = appendBytesField(hdr, 1, []byte(b.typ))
		hdr = appendVarintField(hdr, 3, uint64(len(blob)))
		out = binary.BigEndian.AppendUint32(out, uint32(len(hdr)))
		out = append(out, hdr...)
		out = append(out, blob...)
	}
	return out, total, nil
}

func appendVarintField(b []byte, num int, v uint64) []byte {
	b = binary.AppendUvarint(b, uint64(num)<<3)
	return binary.AppendUvarint(b, v)
}

func appendBytesField(b []byte, num int, v []byte) []byte {
	b = binary.AppendUvarint(b, uint64(num)<<3|2)
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}

// parseBlobHeader reads BlobHeader{1: type string, 2: indexdata bytes, 3: datasize int32}.
func parseBlobHeader(b []byte) (typ string, size int64, err error) {
	size = -1
	for len(b) > 0 {
		f, rest, err := protoField(b)
		if err != nil {
			return "", 0, err
		}
		b = rest
		switch {
		case f.num == 1 && f.wt == 2:
			typ = string(f.val)
		case f.num == 3 && f.wt == 0:
			size = int64(int32(f.x))
		}
	}
	if size < 0 {
		return typ, size, errors.New("missing or negative datasize")
	}
	return typ, size, nil
}

// blobPayload returns the uncompressed content of Blob{1: raw, 2:
// raw_size, 3: zlib_data}; other compressions are not supported.
func blobPayload(b []byte) ([]byte, error) {
	var raw, zdata []byte
	var hasRaw, hasZlib bool
	rawSize := int64(-1)
	for len(b) > 0 {
		f, rest, err := protoField(b)
		if err != nil {
			return nil, err
		}
		b = rest
		switch {
		case f.num == 1 && f.wt == 2:
			raw, hasRaw = f.val, true
		case f.num == 2 && f.wt == 0:
			rawSize = int64(int32(f.x))
		case f.num == 3 && f.wt == 2:
			zdata, hasZlib = f.val, true
		case f.num >= 4 && f.num <= 7:
			return nil, fmt.Errorf("unsupported blob compression (field %d)", f.num)
		}
	}
	switch {
	case hasRaw == hasZlib:
		return nil, errors.New("blob needs exactly one of raw or zlib_data")
	case hasRaw:
		return raw, nil
	case rawSize < 0 || rawSize > maxBlobSize:
		return nil, fmt.Errorf("raw_size %d out of range", rawSize)
	case rawSize > maxDeflateRatio*int64(len(zdata))+64:
		return nil, fmt.Errorf("raw_size %d impossible for %d compressed bytes", rawSize, len(zdata))
	}
	zr, err := zlib.NewReader(bytes.NewReader(zdata))
	if err != nil {
		return nil, fmt.Errorf("zlib: %w", err)
	}
	out := make([]byte, rawSize)
	if _, err := io.ReadFull(zr, out); err != nil {
		return nil, fmt.Errorf("zlib: %w", err)
	}
	// Reading past the end checks the stream's length and checksum.
	if n, err := zr.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		if err == nil || err == io.EOF {
			err = errors.New("more data than raw_size")
		}
		return nil, fmt.Errorf("zlib: %w", err)
	}
	return out, nil
}

// field is one decoded protobuf field.
type field struct {
	num uint64
	wt  uint8
	val []byte // payload of a length-delimited field
	x   uint64 // value of a varint or fixed field
}

// protoField decodes one protobuf field and returns the remaining bytes.
func protoField(b []byte) (field, []byte, error) {
	key, n := binary.Uvarint(b)
	if n <= 0 {
		return field{}, nil, errors.New("bad field key")
	}
	b = b[n:]
	f := field{num: key >> 3, wt: uint8(key & 7)}
	if f.num == 0 {
		return field{}, nil, errors.New("field number 0")
	}
	switch f.wt {
	case 0:
		f.x, n = binary.Uvarint(b)
		if n <= 0 {
			return field{}, nil, errors.New("bad varint")
		}
		return f, b[n:], nil
	case 1:
		if len(b) < 8 {
			return field{}, nil, errors.New("truncated fixed64")
		}
		f.x = binary.LittleEndian.Uint64(b)
		return f, b[8:], nil
	case 2:
		l, n := binary.Uvarint(b)
		if n <= 0 || l > uint64(len(b)-n) {
			return field{}, nil, errors.New("bad length")
		}
		b = b[n:]
		f.val = b[:l]
		return f, b[l:], nil
	case 5:
		if len(b) < 4 {
			return field{}, nil, errors.New("truncated fixed32")
		}
		f.x = uint64(binary.LittleEndian.Uint32(b))
		return f, b[4:], nil
	}
	return field{}, nil, fmt.Errorf("unsupported wire type %d", f.wt)
}

// fields walks a message, calling fn for each field; it stops at the first error.
func fields(b []byte, fn func(f field) error) error {
	for len(b) > 0 {
		f, rest, err := protoField(b)
		if err != nil {
			return err
		}
		if err := fn(f); err != nil {
			return err
		}
		b = rest
	}
	return nil
}

// packed decodes a packed varint array, calling fn for each value (fn may
// be nil), and returns the count the way osmpbf counts (bytes < 0x80).
func packed(b []byte, fn func(v uint64) error) (int, error) {
	count := 0
	for _, c := range b {
		if c < 0x80 {
			count++
		}
	}
	for len(b) > 0 {
		v, n := binary.Uvarint(b)
		if n <= 0 {
			return 0, errors.New("bad packed varint")
		}
		b = b[n:]
		if fn != nil {
			if err := fn(v); err != nil {
				return 0, err
			}
		}
	}
	return count, nil
}

var (
	errWireType = errors.New("unexpected wire type")
	errRepeated = errors.New("packed field repeated")
	errString   = errors.New("string table index out of range")
)

// want returns errWireType unless f has wire type wt.
func want(f field, wt uint8) error {
	if f.wt != wt {
		return fmt.Errorf("field %d: %w", f.num, errWireType)
	}
	return nil
}

// checkPrimitiveBlock validates a PrimitiveBlock (osmformat.proto) deeply
// enough that osmpbf cannot index out of range while decoding it.
func checkPrimitiveBlock(b []byte) (pbfCounts, error) {
	var c pbfCounts
	strs := 0
	var groups [][]byte
	err := fields(b, func(f field) error {
		switch f.num {
		case 1: // stringtable
			if err := want(f, 2); err != nil {
				return err
			}
			return fields(f.val, func(s field) error {
				if s.num == 1 {
					strs++
					return want(s, 2)
				}
				return nil
			})
		case 2: // primitivegroup
			if err := want(f, 2); err != nil {
				return err
			}
			groups = append(groups, f.val)
		case 17, 18, 19, 20:
			return want(f, 0)
		}
		return nil
	})
	if err != nil {
		return c, err
	}
	str := func(v uint64) error {
		if v >= uint64(strs) {
			return errString
		}
		return nil
	}
	for _, g := range groups {
		err := fields(g, func(f field) error {
			switch f.num {
			case 1:
				return errors.New("non-dense nodes are not supported")
			case 2:
				if err := want(f, 2); err != nil {
					return err
				}
				n, err := checkDense(f.val, strs, str)
				c.nodes += int64(n)
				return err
			case 3:
				if err := want(f, 2); err != nil {
					return err
				}
				c.ways++
				return checkWay(f.val, str)
			case 4:
				if err := want(f, 2); err != nil {
					return err
				}
				c.relations++
				return checkRelation(f.val, str)
			}
			return nil
		})
		if err != nil {
			return c, err
		}
	}
	return c, nil
}

// once returns an error if a packed field was already seen.
func once(seen *[16]bool, num uint64) error {
	if num < 16 {
		if seen[num] {
			return fmt.Errorf("field %d: %w", num, errRepeated)
		}
		seen[num] = true
	}
	return nil
}

func checkDense(b []byte, strs int, str func(uint64) error) (int, error) {
	var seen [16]bool
	ids := 0
	var usids []byte
	haveUsids := false
	err := fields(b, func(f field) error {
		switch f.num {
		case 1, 8, 9, 10:
			if err := want(f, 2); err != nil {
				return err
			}
			if err := once(&seen, f.num); err != nil {
				return err
			}
			var fn func(uint64) error
			if f.num == 10 {
				fn = str
			}
			n, err := packed(f.val, fn)
			if f.num == 1 {
				ids = n
			}
			return err
		case 5: // DenseInfo
			if err := want(f, 2); err != nil {
				return err
			}
			return fields(f.val, func(g field) error {
				if g.num >= 1 && g.num <= 6 {
					if err := want(g, 2); err != nil {
						return err
					}
					if g.num == 5 {
						usids, haveUsids = g.val, true
					}
					_, err := packed(g.val, nil)
					return err
				}
				return nil
			})
		}
		return nil
	})
	if err != nil || !haveUsids {
		return ids, err
	}
	// User names are delta-coded string indices, one per node.
	var usid int32
	for i := 0; i < ids && len(usids) > 0; i++ {
		v, n := binary.Uvarint(usids)
		if n <= 0 || v >= 1<<32 {
			return 0, errors.New("bad user_sid")
		}
		usids = usids[n:]
		usid += int32(uint32(v>>1) ^ -uint32(v&1)) // zigzag sint32
		if usid < 0 || int(usid) >= strs {
			return 0, errString
		}
	}
	return ids, nil
}

// checkInfo validates an Info message's user_sid.
func checkInfo(b []byte, str func(uint64) error) error {
	return fields(b, func(f field) error {
		if f.num >= 1 && f.num <= 6 {
			if err := want(f, 0); err != nil {
				return err
			}
			if f.num == 5 {
				return str(f.x)
			}
		}
		return nil
	})
}

// checkLists walks the fields ways and relations share: the id (1), info
// (4) and the packed lists 2, 3 and 8-10, each at most once, with the
// lists in strs holding string-table indices. It returns which lists were
// present and their lengths.
func checkLists(b []byte, str func(uint64) error, strs ...uint64) (seen [16]bool, counts [16]int, err error) {
	err = fields(b, func(f field) error {
		switch f.num {
		case 1:
			return want(f, 0)
		case 2, 3, 8, 9, 10:
			if err := want(f, 2); err != nil {
				return err
			}
			if err := once(&seen, f.num); err != nil {
				return err
			}
			var fn func(uint64) error
			if slices.Contains(strs, f.num) {
				fn = str
			}
			n, err := packed(f.val, fn)
			counts[f.num] = n
			return err
		case 4:
			if err := want(f, 2); err != nil {
				return err
			}
			return checkInfo(f.val, str)
		}
		return nil
	})
	return seen, counts, err
}

func checkWay(b []byte, str func(uint64) error) error {
	seen, counts, err := checkLists(b, str, 2, 3)
	if err != nil {
		return err
	}
	// osmpbf sizes the node list from the first of refs/lats/lons it meets.
	n := -1
	for _, k := range []uint64{8, 9, 10} {
		if c := counts[k]; seen[k] {
			if n >= 0 && c != n {
				return errors.New("way refs, lats and lons differ in length")
			}
			n = c
		}
	}
	return nil
}

func checkRelation(b []byte, str func(uint64) error) error {
	_, counts, err := checkLists(b, str, 2, 3, 8)
	if err != nil {
		return err
	}
	if counts[8] > counts[10] {
		return errors.New("relation has more roles than member types")
	}
	return nil
}
