package datasets

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// BKS is one row of a bks.csv file: the best-known solution of an instance.
type BKS struct {
	Instance string  // file name without extension, also the name inside the file
	Vehicles int     // bks_vehicles
	Distance float64 // bks_distance (2 decimals for Solomon/Homberger, integer for CVRPLIB)
	// DistanceOnly is the best known distance when only distance is
	// minimised and the fleet is free (Solomon bks_distance_only); 0 if absent.
	DistanceOnly float64
	// DistanceOnlyVehicles is the vehicle count of DistanceOnly
	// (Solomon bks_distance_only_vehicles); 0 if absent.
	DistanceOnlyVehicles int
	// Distance4DP is bks_distance with 4 decimals (Homberger bks_distance_4dp); 0 if absent.
	Distance4DP float64
	Source      string // source column: origin and authors of the BKS
}

// ReadBKS reads a bks.csv file (header instance,bks_vehicles,bks_distance,
// source plus the optional extra columns of each set, in any order) into a
// map keyed by instance name. Unknown columns are ignored; a duplicate
// instance, a missing required column or a bad number is an error.
func ReadBKS(path string) (map[string]BKS, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	defer f.Close()
	m, err := readBKS(f)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return m, nil
}

func readBKS(r io.Reader) (map[string]BKS, error) {
	cr := csv.NewReader(r)
	cr.ReuseRecord = true
	head, err := cr.Read()
	if err == io.EOF {
		return nil, errors.New("empty file, missing header")
	}
	if err != nil {
		return nil, err
	}
	col := map[string]int{}
	for i, h := range head {
		h = strings.TrimSpace(strings.TrimPrefix(h, "\ufeff"))
		if _, dup := col[h]; dup {
			return nil, fmt.Errorf("line 1: duplicate column %q", h)
		}
		col[h] = i
	}
	for _, k := range []string{"instance", "bks_vehicles", "bks_distance", "source"} {
		if _, ok := col[k]; !ok {
			return nil, fmt.Errorf("line 1: missing column %q", k)
		}
	}
	out := map[string]BKS{}
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		line, _ := cr.FieldPos(0)
		get := func(k string) (string, bool) {
			i, ok := col[k]
			if !ok {
				return "", false
			}
			return strings.TrimSpace(rec[i]), true
		}
		var b BKS
		b.Instance, _ = get("instance")
		if b.Instance == "" {
			return nil, fmt.Errorf("line %d: instance: empty", line)
		}
		if _, dup := out[b.Instance]; dup {
			return nil, fmt.Errorf("line %d: instance: duplicate %q", line, b.Instance)
		}
		b.Source, _ = get("source")
		ints := []struct {
			col      string
			dst      *int
			required bool
		}{
			{"bks_vehicles", &b.Vehicles, true},
			{"bks_distance_only_vehicles", &b.DistanceOnlyVehicles, false},
		}
		for _, c := range ints {
			s, ok := get(c.col)
			if !ok || (s == "" && !c.required) {
				continue
			}
			n, err := strconv.Atoi(s)
			if err != nil || n <= 0 {
				return nil, fmt.Errorf("line %d: %s: invalid %q", line, c.col, s)
			}
			*c.dst = n
		}
		floats := []struct {
			col      string
			dst      *float64
			required bool
		}{
			{"bks_distance", &b.Distance, true},
			{"bks_distance_only", &b.DistanceOnly, false},
			{"bks_distance_4dp", &b.Distance4DP, false},
		}
		for _, c := range floats {
			s, ok := get(c.col)
			if !ok || (s == "" && !c.required) {
				continue
			}
			x, ok := parseFloat(s, 1e18)
			if !ok || x <= 0 {
				return nil, fmt.Errorf("line %d: %s: invalid %q", line, c.col, s)
			}
			*c.dst = x
		}
		out[b.Instance] = b
	}
	return out, nil
}
