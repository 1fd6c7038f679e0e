package osmimport

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lastmile/lastmile/graph"
	"github.com/paulmach/osm"
	"github.com/paulmach/osm/osmpbf"
	"github.com/paulmach/osm/osmxml"
)

// Format is the encoding of an OSM input.
type Format uint8

// Input formats.
const (
	// FormatAuto sniffs the first bytes: XML starts with '<' (after
	// optional whitespace or a byte-order mark), anything else is taken as PBF.
	FormatAuto Format = iota
	// FormatPBF is the OSM protocol-buffer binary format (.osm.pbf).
	FormatPBF
	// FormatXML is the OSM XML format (.osm, .osm.xml).
	FormatXML
)

// String returns the format's name.
func (f Format) String() string {
	switch f {
	case FormatAuto:
		return "auto"
	case FormatPBF:
		return "pbf"
	case FormatXML:
		return "xml"
	}
	return "invalid"
}

// Options tune an import. The zero value is valid.
type Options struct {
	// Workers is the number of goroutines decoding PBF blocks; <= 0 means
	// runtime.GOMAXPROCS(0), and at most maxWorkers (64) are used.
	Workers int
	// Logger receives progress and summary logs; nil discards them.
	Logger *slog.Logger
	// Progress, if set, is called during long stages ("ways" and "nodes"
	// for PBF, "scan" for XML, then "scc") with the stage name, the
	// elements done and the total (0 where it is not known in advance, as
	// for XML). It may be called from decoder goroutines, but never
	// concurrently.
	Progress func(stage string, done, total int64)
}

// StageTime is the wall time one import stage took.
type StageTime struct {
	Name     string
	Duration time.Duration
}

// Reasons under which Stats.RestrictionsDropped counts dropped restrictions.
const (
	DropViaWay       = "via is a way (unsupported)"
	DropMalformed    = "missing or extra from/via/to members"
	DropExcept       = "except tag exempts cars"
	DropUnknownType  = "unknown restriction value"
	DropNotRoad      = "from or to way is not a car road"
	DropViaMissing   = "via node is not on a car road"
	DropViaBarrier   = "via node is a blocking barrier"
	DropNoTouch      = "from or to way does not touch the via node"
	DropOutsideLarge = "edges removed with the smaller components"
)

// Stats counts what an import did, for logs and tests.
type Stats struct {
	WaysRead        int64 // ways seen in the input
	WaysKept        int64 // ways the car profile accepts
	NodesRead       int64 // nodes seen in the input
	NodesReferenced int64 // distinct nodes referenced by kept ways
	NodesMissing    int64 // references of kept ways to nodes absent from the input (ways are cut there)

	BarrierNodes  int64 // blocking barrier nodes on kept ways
	BarrierCopies int64 // extra nodes made to cut roads at blocking barriers
	ChainNodes    int64 // degree-2 nodes contracted into edge shapes
	SelfLoops     int64 // edges dropped because they start and end at the same node

	MaxspeedUnparsed int64 // kept ways with a maxspeed value that fell back to the class default

	Components      int64 // strongly connected components before filtering
	SCCNodesRemoved int64 // nodes outside the largest component
	SCCEdgesRemoved int64 // edges outside the largest component

	Nodes       int64   // nodes in the network
	Edges       int64   // directed edges in the network
	ShapePoints int64   // intermediate shape points in the network
	RoadLength  float64 // sum of edge distances in metres (a two-way road counts twice)
	Names       int64   // distinct road names in the network (Network.Names but the empty one)

	RestrictionsRead    int64            // restriction relations that apply to cars
	RestrictionsApplied int64            // relations that produced at least one row in the network
	RestrictionRows     int64            // graph.TurnRestriction rows in the network
	RestrictionsDropped map[string]int64 // relations dropped, by reason (the Drop* constants)

	Stages []StageTime // wall time per stage, in order
}

func (s *Stats) drop(reason string) {
	if s.RestrictionsDropped == nil {
		s.RestrictionsDropped = make(map[string]int64)
	}
	s.RestrictionsDropped[reason]++
}

// stageTimer records stage durations into Stats and logs them.
type stageTimer struct {
	st    *Stats
	log   *slog.Logger
	name  string
	start time.Time
}

func (t *stageTimer) next(name string) {
	now := time.Now()
	if t.name != "" {
		d := now.Sub(t.start)
		t.st.Stages = append(t.st.Stages, StageTime{t.name, d})
		t.log.Debug("osmimport stage", "stage", t.name, "took", d)
	}
	t.name, t.start = name, now
}

// ReadFile imports the OSM file at path. The format comes from the
// extension (.pbf → PBF, .osm/.xml → XML), else from sniffing the first
// bytes. A PBF file is read into memory, decompressed and validated block
// by block (memory: its uncompressed size), then scanned twice: ways and
// relations first, then only the nodes the kept ways use.
func ReadFile(path string, opt Options) (*graph.Network, *Stats, error) {
	format := FormatAuto
	lower := strings.ToLower(path)
	switch {
	case strings.HasSuffix(lower, ".pbf"):
		format = FormatPBF
	case strings.HasSuffix(lower, ".osm"), strings.HasSuffix(lower, ".xml"):
		format = FormatXML
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("osmimport: %w", err)
	}
	defer f.Close()
	net, st, err := read(f, format, path, opt)
	if err != nil {
		return nil, st, fmt.Errorf("osmimport: read %s: %w", path, err)
	}
	return net, st, nil
}

// Read imports OSM data from r. PBF input is buffered in memory
// (uncompressed) and scanned twice, as for ReadFile; XML input is streamed
// in a single pass that keeps the coordinates of every node until the ways
// are known.
func Read(r io.Reader, format Format, opt Options) (*graph.Network, *Stats, error) {
	net, st, err := read(r, format, "input", opt)
	if err != nil {
		return nil, st, fmt.Errorf("osmimport: %w", err)
	}
	return net, st, nil
}

func read(r io.Reader, format Format, name string, opt Options) (*graph.Network, *Stats, error) {
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	if opt.Workers <= 0 {
		opt.Workers = runtime.GOMAXPROCS(0)
	}
	opt.Workers = min(opt.Workers, maxWorkers)
	st := &Stats{}
	tm := &stageTimer{st: st, log: opt.Logger}
	start := time.Now()
	var (
		c   *collector
		nt  *nodeTable
		err error
	)
	switch format {
	case FormatAuto, FormatPBF, FormatXML:
	default:
		return nil, st, fmt.Errorf("unknown format %d", format)
	}
	br := bufio.NewReaderSize(r, 1<<16)
	if format == FormatAuto {
		format = sniff(br)
	}
	if format == FormatPBF {
		c, nt, err = readPBF(br, opt, st, tm)
	} else {
		c, nt, err = readXML(br, opt, st, tm)
	}
	if err != nil {
		return nil, st, err
	}
	if len(c.ways) == 0 {
		return nil, st, fmt.Errorf("no routable roads in %s", name)
	}
	net, err := build(c, nt, st, opt, tm)
	tm.next("")
	if err != nil {
		return nil, st, err
	}
	if len(net.Edges) == 0 {
		return nil, st, fmt.Errorf("no routable roads in %s", name)
	}
	opt.Logger.Info("osmimport done", "input", name, "format", format.String(),
		"nodes", st.Nodes, "edges", st.Edges, "restrictions", st.RestrictionRows, "names", st.Names,
		"took", time.Since(start))
	return net, st, nil
}

// sniff guesses the format from the first bytes.
func sniff(br *bufio.Reader) Format {
	b, _ := br.Peek(512)
	b = bytes.TrimPrefix(b, []byte("\xef\xbb\xbf"))
	b = bytes.TrimLeft(b, " \t\r\n")
	if len(b) > 0 && b[0] == '<' {
		return FormatXML
	}
	return FormatPBF
}

// rawWay is a kept way: its id, its node references refs[first:last],
// what the car profile made of it and its name (an index into
// collector.names).
type rawWay struct {
	id          int64
	first, last uint32
	name        uint32
	prof        wayProfile
}

// rawRestriction is a turn restriction relation before mapping to edges.
type rawRestriction struct {
	id       int64
	from, to []int64 // way ids
	via      int64   // node id
	only     bool
	uturn    bool
}

// collector gathers kept ways and restrictions in input order, and the
// names of the kept ways, each once: names[0] is "" (unnamed) and nameIdx
// maps every other name to its index.
type collector struct {
	ways    []rawWay
	refs    []int64
	rests   []rawRestriction
	names   []string
	nameIdx map[string]uint32
	st      *Stats
}

// intern returns the index of name in c.names, adding it if needed. The
// string is cloned, so that it does not keep the decoder's buffer alive.
func (c *collector) intern(name string) uint32 {
	if len(c.names) == 0 {
		c.names = append(c.names, "")
		c.nameIdx = map[string]uint32{}
	}
	if name == "" {
		return 0
	}
	if i, ok := c.nameIdx[name]; ok {
		return i
	}
	i := uint32(len(c.names))
	name = strings.Clone(name)
	c.names = append(c.names, name)
	c.nameIdx[name] = i
	return i
}

// maxRefs bounds the total number of way node references (uint32 indices).
const maxRefs = 1<<32 - 2

func (c *collector) addWay(w *osm.Way) error {
	p, ok := evalWay(w.Tags)
	if !ok || len(w.Nodes) < 2 {
		return nil
	}
	c.st.MaxspeedUnparsed += int64(p.unparsed)
	if len(c.refs)+len(w.Nodes) > maxRefs {
		return errors.New("too many way node references")
	}
	first := uint32(len(c.refs))
	for _, n := range w.Nodes {
		c.refs = append(c.refs, int64(n.ID))
	}
	c.ways = append(c.ways, rawWay{id: int64(w.ID), first: first, last: uint32(len(c.refs)), name: c.intern(wayName(w.Tags)), prof: p})
	c.st.WaysKept++
	return nil
}

// isRestriction reports whether a relation is a turn restriction.
func isRestriction(r *osm.Relation) bool {
	t := r.Tags.Find("type")
	return t == "restriction" || t == "restriction:motorcar"
}

func (c *collector) addRelation(r *osm.Relation) {
	if !isRestriction(r) {
		return
	}
	v, ok := findTag(r.Tags, "restriction", ":motorcar")
	if !ok {
		v, ok = findTag(r.Tags, "restriction", "")
	}
	if !ok {
		return // e.g. only restriction:hgv or restriction:conditional
	}
	c.st.RestrictionsRead++
	for part := range strings.SplitSeq(r.Tags.Find("except"), ";") {
		switch strings.TrimSpace(part) {
		case "motorcar", "motor_vehicle", "vehicle":
			c.st.drop(DropExcept)
			return
		}
	}
	rr := rawRestriction{id: int64(r.ID)}
	switch strings.TrimSpace(v) {
	case "no_left_turn", "no_right_turn", "no_straight_on", "no_entry", "no_exit":
	case "no_u_turn":
		rr.uturn = true
	case "only_left_turn", "only_right_turn", "only_straight_on":
		rr.only = true
	case "only_u_turn":
		rr.only, rr.uturn = true, true
	default:
		c.st.drop(DropUnknownType)
		return
	}
	nvia := 0
	for _, m := range r.Members {
		switch m.Role {
		case "from":
			if m.Type != osm.TypeWay {
				c.st.drop(DropMalformed)
				return
			}
			rr.from = append(rr.from, m.Ref)
		case "to":
			if m.Type != osm.TypeWay {
				c.st.drop(DropMalformed)
				return
			}
			rr.to = append(rr.to, m.Ref)
		case "via":
			switch m.Type {
			case osm.TypeWay:
				c.st.drop(DropViaWay)
				return
			case osm.TypeNode:
				rr.via = m.Ref
				nvia++
			default:
				c.st.drop(DropMalformed)
				return
			}
		}
	}
	if nvia != 1 || len(rr.from) == 0 || len(rr.to) == 0 {
		c.st.drop(DropMalformed)
		return
	}
	c.rests = append(c.rests, rr)
}

// nodeTable holds the nodes that kept ways reference, by index into the
// sorted unique ids.
type nodeTable struct {
	ids      []int64
	lat, lon []float64
	found    []uint32 // 1 once the node was read (atomic: PBF decoders fill it concurrently)
	barrier  []bool
}

func newNodeTable(refs []int64) *nodeTable {
	ids := slices.Clone(refs)
	slices.Sort(ids)
	ids = slices.Compact(ids)
	n := len(ids)
	return &nodeTable{
		ids: ids, lat: make([]float64, n), lon: make([]float64, n),
		found: make([]uint32, n), barrier: make([]bool, n),
	}
}

// set records a node; it is safe for concurrent use with distinct or
// duplicate ids (the first writer wins).
func (nt *nodeTable) set(n *osm.Node) {
	i, ok := slices.BinarySearch(nt.ids, int64(n.ID))
	if !ok || !atomic.CompareAndSwapUint32(&nt.found[i], 0, 1) {
		return
	}
	nt.lat[i], nt.lon[i] = n.Lat, n.Lon
	if len(n.Tags) > 0 && barrierBlocks(n.Tags) {
		nt.barrier[i] = true
	}
}

// progress serialises Progress calls coming from decoder goroutines.
type progress struct {
	mu sync.Mutex
	fn func(stage string, done, total int64)
}

func (p *progress) report(stage string, done, total int64) {
	if p.fn == nil {
		return
	}
	p.mu.Lock()
	p.fn(stage, done, total)
	p.mu.Unlock()
}

// maxWorkers caps Options.Workers.
const maxWorkers = 64

// progressEvery is how many elements pass between progress reports.
const progressEvery = 1 << 16

// readPBF reads a PBF stream in two passes over an in-memory copy.
func readPBF(r io.Reader, opt Options, st *Stats, tm *stageTimer) (*collector, *nodeTable, error) {
	tm.next("read")
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, nil, err
	}
	if len(data) == 0 {
		return nil, nil, errors.New("empty input")
	}
	tm.next("check")
	data, counts, err := preparePBF(data, opt.Workers)
	if err != nil {
		return nil, nil, fmt.Errorf("invalid pbf: %w", err)
	}
	prog := &progress{fn: opt.Progress}

	tm.next("ways")
	c := &collector{st: st}
	var waysRead atomic.Int64
	sc := osmpbf.New(context.Background(), bytes.NewReader(data), opt.Workers)
	sc.SkipNodes = true
	sc.FilterWay = func(w *osm.Way) bool {
		if n := waysRead.Add(1); n%progressEvery == 0 {
			prog.report("ways", n, counts.ways)
		}
		_, ok := highwayClass(w.Tags.Find("highway"))
		return ok
	}
	sc.FilterRelation = isRestriction
	for sc.Scan() {
		switch o := sc.Object().(type) {
		case *osm.Way:
			if err := c.addWay(o); err != nil {
				sc.Close()
				return nil, nil, err
			}
		case *osm.Relation:
			c.addRelation(o)
		}
	}
	err = sc.Err()
	sc.Close()
	st.WaysRead = waysRead.Load()
	prog.report("ways", st.WaysRead, st.WaysRead)
	if err != nil {
		return nil, nil, fmt.Errorf("scan ways: %w", err)
	}

	tm.next("nodes")
	nt := newNodeTable(c.refs)
	var nodesRead atomic.Int64
	sc = osmpbf.New(context.Background(), bytes.NewReader(data), opt.Workers)
	sc.SkipWays, sc.SkipRelations = true, true
	sc.FilterNode = func(n *osm.Node) bool {
		if k := nodesRead.Add(1); k%progressEvery == 0 {
			prog.report("nodes", k, counts.nodes)
		}
		nt.set(n)
		return false
	}
	for sc.Scan() {
	}
	err = sc.Err()
	sc.Close()
	st.NodesRead = nodesRead.Load()
	prog.report("nodes", st.NodesRead, st.NodesRead)
	if err != nil {
		return nil, nil, fmt.Errorf("scan nodes: %w", err)
	}
	return c, nt, nil
}

// readXML streams OSM XML once, keeping every node's position and barrier
// flag until the ways are known.
func readXML(r io.Reader, opt Options, st *Stats, tm *stageTimer) (*collector, *nodeTable, error) {
	tm.next("scan")
	c := &collector{st: st}
	var (
		ids      []int64
		lat, lon []float64
		barrier  []bool
	)
	prog := &progress{fn: opt.Progress}
	sc := osmxml.New(context.Background(), r)
	defer sc.Close()
	var n int64
	for sc.Scan() {
		if n++; n%progressEvery == 0 {
			prog.report("scan", n, 0)
		}
		switch o := sc.Object().(type) {
		case *osm.Node:
			st.NodesRead++
			ids = append(ids, int64(o.ID))
			lat = append(lat, o.Lat)
			lon = append(lon, o.Lon)
			barrier = append(barrier, len(o.Tags) > 0 && barrierBlocks(o.Tags))
		case *osm.Way:
			st.WaysRead++
			if err := c.addWay(o); err != nil {
				return nil, nil, err
			}
		case *osm.Relation:
			c.addRelation(o)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, nil, fmt.Errorf("scan xml: %w", err)
	}
	prog.report("scan", n, n)
	if n == 0 {
		return nil, nil, errors.New("no OSM elements (empty or not OSM XML)")
	}
	tm.next("nodes")
	nt := newNodeTable(c.refs)
	for i, id := range ids {
		k, ok := slices.BinarySearch(nt.ids, id)
		if !ok || nt.found[k] != 0 {
			continue
		}
		nt.found[k] = 1
		nt.lat[k], nt.lon[k], nt.barrier[k] = lat[i], lon[i], barrier[i]
	}
	return c, nt, nil
}
