package datasets

import (
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
)

// VRPTW is a vehicle-routing problem with time windows in the Solomon (1987)
// text format, also used by the Gehring & Homberger (1999) instances.
//
// Index 0 is the depot and index i is the customer with CUST NO. i: the
// reader requires the rows to be numbered 0, 1, 2, ... in order, so the
// customer ids of published solutions index these slices directly. Travel
// time equals distance (Dist); Ready, Due and Service are in the same unit.
type VRPTW struct {
	Name     string    // instance name, first line of the file
	Vehicles int       // size of the fleet (VEHICLE NUMBER)
	Capacity int       // capacity of every vehicle
	X, Y     []float64 // coordinates
	Demand   []int     // demand; 0 for the depot
	Ready    []float64 // earliest service start (READY TIME)
	Due      []float64 // latest service start (DUE DATE); for the depot, latest return
	Service  []float64 // service duration (SERVICE TIME)
}

// N returns the number of nodes including the depot.
func (v *VRPTW) N() int { return len(v.X) }

// Dist returns the real-valued Euclidean distance between nodes i and j,
// without rounding, the convention of the SINTEF/Solomon BKS tables.
func (v *VRPTW) Dist(i, j int) float64 {
	dx := v.X[i] - v.X[j]
	dy := v.Y[i] - v.Y[j]
	return math.Sqrt(dx*dx + dy*dy)
}

// ReadSolomonFile reads a Solomon-format instance from path.
func ReadSolomonFile(path string) (*VRPTW, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	defer f.Close()
	v, err := ReadSolomon(f)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return v, nil
}

// Parser states of ReadSolomon, in file order.
const (
	solName = iota
	solVehicleKeyword
	solVehicleHeader
	solVehicleValues
	solCustomerKeyword
	solCustomerHeader
	solRows
)

var solomonExpect = [...]string{
	solName:            "instance name",
	solVehicleKeyword:  "VEHICLE",
	solVehicleHeader:   "NUMBER CAPACITY header",
	solVehicleValues:   "vehicle number and capacity",
	solCustomerKeyword: "CUSTOMER",
	solCustomerHeader:  "CUST NO. header",
}

// ReadSolomon parses an instance in Solomon's text format: the name, a
// VEHICLE block (NUMBER, CAPACITY) and a CUSTOMER table with the columns
// CUST NO., XCOORD., YCOORD., DEMAND, READY TIME, DUE DATE, SERVICE TIME.
// Blank lines and CRLF line ends are accepted anywhere. Numbers of the
// table may be integers or decimals, except CUST NO. and DEMAND (integers).
func ReadSolomon(r io.Reader) (*VRPTW, error) {
	lr := newLineReader(r)
	v := &VRPTW{}
	state := solName
	for lr.next() {
		line := strings.TrimSpace(lr.text)
		if line == "" {
			continue
		}
		switch state {
		case solName:
			if strings.EqualFold(line, "VEHICLE") {
				return nil, lr.errorf("missing instance name before VEHICLE")
			}
			v.Name = line
		case solVehicleKeyword:
			if !strings.EqualFold(line, "VEHICLE") {
				return nil, lr.errorf("expected VEHICLE, got %q", line)
			}
		case solVehicleHeader:
			f := strings.Fields(line)
			if len(f) != 2 || !strings.EqualFold(f[0], "NUMBER") || !strings.EqualFold(f[1], "CAPACITY") {
				return nil, lr.errorf("expected NUMBER CAPACITY header, got %q", line)
			}
		case solVehicleValues:
			f := strings.Fields(line)
			if len(f) != 2 {
				return nil, lr.errorf("VEHICLE: expected 2 fields (number, capacity), got %d", len(f))
			}
			n, err := strconv.Atoi(f[0])
			if err != nil || n <= 0 {
				return nil, lr.errorf("VEHICLE: invalid number %q", f[0])
			}
			c, err := strconv.Atoi(f[1])
			if err != nil || c <= 0 {
				return nil, lr.errorf("VEHICLE: invalid capacity %q", f[1])
			}
			v.Vehicles, v.Capacity = n, c
		case solCustomerKeyword:
			if !strings.EqualFold(line, "CUSTOMER") {
				return nil, lr.errorf("expected CUSTOMER, got %q", line)
			}
		case solCustomerHeader:
			if !strings.HasPrefix(strings.ToUpper(line), "CUST") {
				return nil, lr.errorf("expected CUST NO. header, got %q", line)
			}
		case solRows:
			if err := v.parseRow(lr, line); err != nil {
				return nil, err
			}
			continue
		}
		state++
	}
	if err := lr.err(); err != nil {
		return nil, err
	}
	if state != solRows {
		return nil, fmt.Errorf("line %d: unexpected end of input: missing %s", lr.line, solomonExpect[state])
	}
	if len(v.X) < 2 {
		return nil, fmt.Errorf("line %d: unexpected end of input: need the depot and at least one customer, got %d rows", lr.line, len(v.X))
	}
	return v, nil
}

// parseRow parses and appends one row of the CUSTOMER table.
func (v *VRPTW) parseRow(lr *lineReader, line string) error {
	f := strings.Fields(line)
	if len(f) != 7 {
		return lr.errorf("CUSTOMER: expected 7 fields, got %d", len(f))
	}
	want := len(v.X)
	id, err := strconv.Atoi(f[0])
	if err != nil {
		return lr.errorf("CUSTOMER: invalid CUST NO. %q", f[0])
	}
	if id != want {
		return lr.errorf("CUSTOMER: CUST NO. %d out of sequence, expected %d", id, want)
	}
	var num [6]float64
	names := [6]string{"XCOORD.", "YCOORD.", "DEMAND", "READY TIME", "DUE DATE", "SERVICE TIME"}
	for k := 0; k < 6; k++ {
		x, ok := parseFloat(f[k+1], maxCoord)
		if !ok {
			return lr.errorf("CUSTOMER: customer %d: invalid %s %q", id, names[k], f[k+1])
		}
		num[k] = x
	}
	demand, err := strconv.Atoi(f[3])
	if err != nil || demand < 0 {
		return lr.errorf("CUSTOMER: customer %d: invalid DEMAND %q", id, f[3])
	}
	if num[3] < 0 || num[4] < num[3] {
		return lr.errorf("CUSTOMER: customer %d: invalid time window [%s, %s]", id, f[4], f[5])
	}
	if num[5] < 0 {
		return lr.errorf("CUSTOMER: customer %d: invalid SERVICE TIME %q", id, f[6])
	}
	v.X = append(v.X, num[0])
	v.Y = append(v.Y, num[1])
	v.Demand = append(v.Demand, demand)
	v.Ready = append(v.Ready, num[3])
	v.Due = append(v.Due, num[4])
	v.Service = append(v.Service, num[5])
	return nil
}
