package datasets

import (
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"strconv"
	"strings"
)

// MaxDimension bounds the DIMENSION of a CVRP instance accepted by ReadCVRP.
// The largest CVRPLIB instances have about 30,000 nodes; the bound keeps an
// absurd header from driving allocation.
const MaxDimension = 1_000_000

// CVRP is a capacitated vehicle-routing instance read from a TSPLIB/CVRPLIB
// .vrp file with EDGE_WEIGHT_TYPE EUC_2D.
//
// Index 0 is always the depot. The other nodes follow in increasing file node
// number, skipping the depot: with depot node d, file node k maps to index
// k if k < d and to k-1 if k > d (see Index and FileNode). In every CVRPLIB
// file the depot is node 1, so index i is file node i+1, which is also the
// customer numbering of CVRPLIB .sol files (customer i = node i+1).
type CVRP struct {
	Name     string    // NAME
	Comment  string    // COMMENT, with surrounding quotes removed
	Capacity int       // CAPACITY of every vehicle
	Vehicles int       // VEHICLES when given; 0 means unlimited
	X, Y     []float64 // coordinates by index
	Demand   []int     // demand by index; Demand[0] is the depot's (0 in CVRPLIB)
	Depot    int       // file node number of the depot (index 0)
}

// N returns the number of nodes including the depot (DIMENSION).
func (c *CVRP) N() int { return len(c.X) }

// Dist returns the TSPLIB EUC_2D distance between indices i and j: the
// Euclidean distance rounded to the nearest integer, nint(x) = int(x + 0.5)
// (Reinelt 1995, TSPLIB documentation, section 2.1).
func (c *CVRP) Dist(i, j int) int {
	dx := c.X[i] - c.X[j]
	dy := c.Y[i] - c.Y[j]
	return int(math.Sqrt(dx*dx+dy*dy) + 0.5)
}

// Index returns the index of file node number node (1-based).
func (c *CVRP) Index(node int) int {
	switch {
	case node == c.Depot:
		return 0
	case node < c.Depot:
		return node
	default:
		return node - 1
	}
}

// FileNode returns the file node number (1-based) of index i.
func (c *CVRP) FileNode(i int) int {
	switch {
	case i == 0:
		return c.Depot
	case i < c.Depot:
		return i
	default:
		return i + 1
	}
}

// ReadCVRPFile reads a .vrp file from path.
func ReadCVRPFile(path string) (*CVRP, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	defer f.Close()
	c, err := ReadCVRP(f)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return c, nil
}

type coordEntry struct {
	node, line int
	x, y       float64
}

type demandEntry struct {
	node, line, demand int
}

// ReadCVRP parses a TSPLIB/CVRPLIB .vrp file. Accepted specification keywords
// (written "KEY : value", the colon optional for sections) are NAME, COMMENT,
// TYPE (CVRP), DIMENSION, CAPACITY, EDGE_WEIGHT_TYPE (EUC_2D only),
// VEHICLES, NODE_COORD_TYPE (TWOD_COORDS) and DISPLAY_DATA_TYPE (ignored);
// the sections are NODE_COORD_SECTION, DEMAND_SECTION and DEPOT_SECTION
// (one depot, terminated by -1); EOF ends the file and may be omitted.
// Any other keyword is an error, so that constraints such as DISTANCE or
// SERVICE_TIME are never silently dropped.
//
// Section rows are collected as read and checked against DIMENSION only at
// the end, so memory is proportional to the data actually present.
func ReadCVRP(r io.Reader) (*CVRP, error) {
	lr := newLineReader(r)
	c := &CVRP{}
	dim := 0
	seen := map[string]bool{}
	var coords []coordEntry
	var demands []demandEntry
	var depots []int
	depotEnded := false
	section := ""
lines:
	for lr.next() {
		line := strings.TrimSpace(lr.text)
		if line == "" {
			continue
		}
		if section != "" && isNumericStart(line[0]) {
			if dim == 0 {
				return nil, lr.errorf("%s before DIMENSION", section)
			}
			f := strings.Fields(line)
			switch section {
			case "NODE_COORD_SECTION":
				if len(f) != 3 {
					return nil, lr.errorf("NODE_COORD_SECTION: expected 3 fields (node x y), got %d", len(f))
				}
				node, err := strconv.Atoi(f[0])
				if err != nil || node < 1 || node > dim {
					return nil, lr.errorf("NODE_COORD_SECTION: invalid node %q (DIMENSION %d)", f[0], dim)
				}
				x, okx := parseFloat(f[1], maxCoord)
				y, oky := parseFloat(f[2], maxCoord)
				if !okx || !oky {
					return nil, lr.errorf("NODE_COORD_SECTION: node %d: invalid coordinates %q %q", node, f[1], f[2])
				}
				if len(coords) == dim {
					return nil, lr.errorf("NODE_COORD_SECTION: more than DIMENSION=%d nodes", dim)
				}
				coords = append(coords, coordEntry{node, lr.line, x, y})
			case "DEMAND_SECTION":
				if len(f) != 2 {
					return nil, lr.errorf("DEMAND_SECTION: expected 2 fields (node demand), got %d", len(f))
				}
				node, err := strconv.Atoi(f[0])
				if err != nil || node < 1 || node > dim {
					return nil, lr.errorf("DEMAND_SECTION: invalid node %q (DIMENSION %d)", f[0], dim)
				}
				d, err := strconv.Atoi(f[1])
				if err != nil || d < 0 {
					return nil, lr.errorf("DEMAND_SECTION: node %d: invalid demand %q", node, f[1])
				}
				if len(demands) == dim {
					return nil, lr.errorf("DEMAND_SECTION: more than DIMENSION=%d nodes", dim)
				}
				demands = append(demands, demandEntry{node, lr.line, d})
			case "DEPOT_SECTION":
				if depotEnded {
					return nil, lr.errorf("DEPOT_SECTION: data after the -1 terminator")
				}
				if len(f) != 1 {
					return nil, lr.errorf("DEPOT_SECTION: expected one node number per line, got %d fields", len(f))
				}
				node, err := strconv.Atoi(f[0])
				if err == nil && node == -1 {
					depotEnded = true
					continue
				}
				if err != nil || node < 1 || node > dim {
					return nil, lr.errorf("DEPOT_SECTION: invalid node %q (DIMENSION %d)", f[0], dim)
				}
				if len(depots) > 0 {
					return nil, lr.errorf("DEPOT_SECTION: more than one depot (%d and %d) is not supported", depots[0], node)
				}
				depots = append(depots, node)
			}
			continue
		}

		key, value := line, ""
		if i := strings.IndexByte(line, ':'); i >= 0 {
			key, value = strings.TrimSpace(line[:i]), strings.TrimSpace(line[i+1:])
		} else if f := strings.Fields(line); len(f) > 1 {
			key, value = f[0], strings.TrimSpace(line[len(f[0]):])
		}
		key = strings.ToUpper(key)
		if seen[key] {
			return nil, lr.errorf("duplicate %s", key)
		}
		if section == "DEPOT_SECTION" && !depotEnded {
			return nil, lr.errorf("DEPOT_SECTION: missing -1 terminator before %s", key)
		}
		section = ""
		switch key {
		case "EOF":
			seen[key] = true
			break lines
		case "NODE_COORD_SECTION", "DEMAND_SECTION", "DEPOT_SECTION":
			if value != "" {
				return nil, lr.errorf("%s: unexpected %q after the keyword", key, value)
			}
			section = key
		case "NAME":
			c.Name = value
		case "COMMENT":
			c.Comment = strings.Trim(value, `"`)
		case "TYPE":
			if value != "CVRP" {
				return nil, lr.errorf("TYPE: unsupported %q, want CVRP", value)
			}
		case "DIMENSION":
			n, err := strconv.Atoi(value)
			if err != nil || n < 2 || n > MaxDimension {
				return nil, lr.errorf("DIMENSION: invalid %q, want an integer in [2, %d]", value, MaxDimension)
			}
			dim = n
		case "CAPACITY":
			n, err := strconv.Atoi(value)
			if err != nil || n <= 0 {
				return nil, lr.errorf("CAPACITY: invalid %q", value)
			}
			c.Capacity = n
		case "VEHICLES":
			n, err := strconv.Atoi(value)
			if err != nil || n <= 0 {
				return nil, lr.errorf("VEHICLES: invalid %q", value)
			}
			c.Vehicles = n
		case "EDGE_WEIGHT_TYPE":
			if value != "EUC_2D" {
				return nil, lr.errorf("EDGE_WEIGHT_TYPE: unsupported %q, only EUC_2D is supported", value)
			}
		case "NODE_COORD_TYPE":
			if value != "TWOD_COORDS" {
				return nil, lr.errorf("NODE_COORD_TYPE: unsupported %q, only TWOD_COORDS is supported", value)
			}
		case "DISPLAY_DATA_TYPE":
		default:
			if len(key) > 40 {
				key = key[:40] + "..."
			}
			return nil, lr.errorf("unsupported keyword %q", key)
		}
		seen[key] = true
	}
	if err := lr.err(); err != nil {
		return nil, err
	}
	if section == "DEPOT_SECTION" && !depotEnded {
		return nil, fmt.Errorf("line %d: DEPOT_SECTION: unexpected end of input, missing -1 terminator", lr.line)
	}
	for _, k := range []string{"DIMENSION", "CAPACITY", "EDGE_WEIGHT_TYPE", "NODE_COORD_SECTION", "DEMAND_SECTION", "DEPOT_SECTION"} {
		if !seen[k] {
			return nil, fmt.Errorf("line %d: missing %s", lr.line, k)
		}
	}
	if len(coords) != dim {
		return nil, fmt.Errorf("NODE_COORD_SECTION: %d nodes, DIMENSION is %d", len(coords), dim)
	}
	if len(demands) != dim {
		return nil, fmt.Errorf("DEMAND_SECTION: %d nodes, DIMENSION is %d", len(demands), dim)
	}
	if len(depots) != 1 {
		return nil, fmt.Errorf("DEPOT_SECTION: no depot")
	}
	c.Depot = depots[0]
	// Every node occurs once in each section (the counts equal dim and the
	// duplicates are found below), so each index is written exactly once.
	c.X = make([]float64, dim)
	c.Y = make([]float64, dim)
	c.Demand = make([]int, dim)
	sort.Slice(coords, func(i, j int) bool { return coords[i].node < coords[j].node })
	for k, e := range coords {
		if k > 0 && coords[k-1].node == e.node {
			return nil, fmt.Errorf("line %d: NODE_COORD_SECTION: duplicate node %d", max(e.line, coords[k-1].line), e.node)
		}
		i := c.Index(e.node)
		c.X[i], c.Y[i] = e.x, e.y
	}
	sort.Slice(demands, func(i, j int) bool { return demands[i].node < demands[j].node })
	for k, e := range demands {
		if k > 0 && demands[k-1].node == e.node {
			return nil, fmt.Errorf("line %d: DEMAND_SECTION: duplicate node %d", max(e.line, demands[k-1].line), e.node)
		}
		c.Demand[c.Index(e.node)] = e.demand
	}
	return c, nil
}

// isNumericStart reports whether a line starting with b is a section data
// row rather than a keyword.
func isNumericStart(b byte) bool {
	return b >= '0' && b <= '9' || b == '-' || b == '+' || b == '.'
}
