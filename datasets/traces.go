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

// TracePoint is one GPS fix of a trace.
type TracePoint struct {
	Time     int64   // Unix seconds; 0 when the source has no timestamps
	Lat, Lon float64 // WGS84 degrees
}

// Trace is one recorded trip: its id and its fixes in recorded order.
type Trace struct {
	ID     string
	Points []TracePoint
}

// tracesHeader is the header of the normalised trace CSV files.
var tracesHeader = [...]string{"trace_id", "timestamp_unix", "lat", "lon"}

// ReadTracesFile reads a normalised trace CSV from path.
func ReadTracesFile(path string) ([]Trace, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	defer f.Close()
	ts, err := ReadTraces(f)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return ts, nil
}

// ReadTraces parses the normalised trace CSV (traces/normalised/*.csv): the
// header trace_id,timestamp_unix,lat,lon, then one row per fix. A trace's
// rows must be contiguous (a trace id that reappears after another trace is
// an error). An empty timestamp gives Time 0. Latitudes must lie in
// [-90, 90] and longitudes in [-180, 180].
func ReadTraces(r io.Reader) ([]Trace, error) {
	cr := csv.NewReader(r)
	cr.ReuseRecord = true
	cr.FieldsPerRecord = len(tracesHeader)
	head, err := cr.Read()
	if err == io.EOF {
		return nil, errors.New("empty input, missing header")
	}
	if err != nil {
		return nil, err
	}
	for i, h := range head {
		if i == 0 {
			h = strings.TrimPrefix(h, "\ufeff")
		}
		if strings.TrimSpace(h) != tracesHeader[i] {
			return nil, fmt.Errorf("line 1: header column %d is %q, want %q", i+1, truncate(h, 40), tracesHeader[i])
		}
	}
	var out []Trace
	done := map[string]bool{} // ids of traces already closed
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		line, _ := cr.FieldPos(0)
		id := rec[0]
		if id == "" {
			return nil, fmt.Errorf("line %d: trace_id: empty", line)
		}
		var p TracePoint
		if ts := strings.TrimSpace(rec[1]); ts != "" {
			p.Time, err = strconv.ParseInt(ts, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("line %d: timestamp_unix: invalid %q", line, truncate(ts, 40))
			}
		}
		var ok bool
		if p.Lat, ok = parseFloat(strings.TrimSpace(rec[2]), 90); !ok {
			return nil, fmt.Errorf("line %d: lat: invalid %q", line, truncate(rec[2], 40))
		}
		if p.Lon, ok = parseFloat(strings.TrimSpace(rec[3]), 180); !ok {
			return nil, fmt.Errorf("line %d: lon: invalid %q", line, truncate(rec[3], 40))
		}
		if n := len(out); n == 0 || out[n-1].ID != id {
			if done[id] {
				return nil, fmt.Errorf("line %d: trace_id: rows of trace %q are not contiguous", line, truncate(id, 40))
			}
			if n > 0 {
				done[out[n-1].ID] = true
			}
			out = append(out, Trace{ID: id})
		}
		t := &out[len(out)-1]
		t.Points = append(t.Points, p)
	}
	return out, nil
}
