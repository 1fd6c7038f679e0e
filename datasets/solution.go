package datasets

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// CVRPSolution is a published route set: a CVRPLIB .sol file (also used for
// our Solomon solutions) or a SINTEF TOP solution file (Gehring-Homberger).
//
// Customer ids are as written in the file. In CVRPLIB files customer i is
// index i of the CVRP (file node i+1); in Solomon and SINTEF files it is
// CUST NO. i, index i of the VRPTW. The depot never appears in a route.
type CVRPSolution struct {
	Routes  [][]int           // customer ids of each route, in visiting order
	Cost    float64           // the Cost line; 0 when HasCost is false
	HasCost bool              // whether the file has a Cost line (SINTEF files do not)
	Header  map[string]string // SINTEF header fields ("Instance name", "Authors", ...); nil when none
}

// ReadCVRPSolutionFile reads a solution file from path.
func ReadCVRPSolutionFile(path string) (*CVRPSolution, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	defer f.Close()
	s, err := ReadCVRPSolution(f)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return s, nil
}

// ReadCVRPSolution parses a route file in either of two layouts:
//
//	Route #1: 31 46 35          CVRPLIB: routes, then "Cost X"
//	Cost 27591
//
//	Instance name : c1_2_1      SINTEF: "Key : value" header lines,
//	Solution                    a "Solution" line, then routes
//	Route 1 : 32 171 65
//
// Route numbers are not interpreted (the slice order is the file order).
// Customer ids must be positive integers; a route must not be empty. Blank
// lines and CRLF line ends are accepted. Any other line is an error.
func ReadCVRPSolution(r io.Reader) (*CVRPSolution, error) {
	lr := newLineReader(r)
	s := &CVRPSolution{}
	for lr.next() {
		line := strings.TrimSpace(lr.text)
		if line == "" {
			continue
		}
		switch {
		case hasPrefixFold(line, "Route"):
			route, err := parseRouteLine(line)
			if err != nil {
				return nil, lr.errorf("%v", err)
			}
			s.Routes = append(s.Routes, route)
		case hasPrefixFold(line, "Cost"):
			if s.HasCost {
				return nil, lr.errorf("duplicate Cost line")
			}
			v := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(line[len("Cost"):]), ":"))
			cost, ok := parseFloat(v, 1e18)
			if !ok || cost < 0 {
				return nil, lr.errorf("Cost: invalid value %q", v)
			}
			s.Cost, s.HasCost = cost, true
		case strings.EqualFold(line, "Solution"):
			if len(s.Routes) > 0 {
				return nil, lr.errorf("Solution line after routes")
			}
		default:
			i := strings.IndexByte(line, ':')
			if i <= 0 || len(s.Routes) > 0 || s.HasCost {
				return nil, lr.errorf("unexpected line %q", truncate(line, 40))
			}
			if s.Header == nil {
				s.Header = map[string]string{}
			}
			s.Header[strings.TrimSpace(line[:i])] = strings.TrimSpace(line[i+1:])
		}
	}
	if err := lr.err(); err != nil {
		return nil, err
	}
	if len(s.Routes) == 0 {
		return nil, fmt.Errorf("line %d: no routes", lr.line)
	}
	return s, nil
}

// parseRouteLine parses "Route #k: c1 c2 ..." or "Route k : c1 c2 ...".
func parseRouteLine(line string) ([]int, error) {
	rest := line[len("Route"):]
	colon := strings.IndexByte(rest, ':')
	if colon < 0 {
		return nil, fmt.Errorf("route: missing ':' in %q", truncate(line, 40))
	}
	num := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(rest[:colon]), "#"))
	if k, err := strconv.Atoi(num); err != nil || k < 0 {
		return nil, fmt.Errorf("route: invalid route number %q", truncate(num, 40))
	}
	f := strings.Fields(rest[colon+1:])
	if len(f) == 0 {
		return nil, fmt.Errorf("route %s: empty route", num)
	}
	route := make([]int, len(f))
	for i, s := range f {
		c, err := strconv.Atoi(s)
		if err != nil || c < 1 {
			return nil, fmt.Errorf("route %s: invalid customer %q", num, truncate(s, 40))
		}
		route[i] = c
	}
	return route, nil
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// truncate shortens s for error messages.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
