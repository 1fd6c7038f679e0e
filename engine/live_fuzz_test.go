package engine

import (
	"testing"
	"time"
)

// fuzzLive returns a Live on the Monaco graph without its update loop:
// the fuzz targets exercise decoding and ingestion, not customization.
func fuzzLive(f *testing.F) *Live {
	r := monaco(f).fork()
	l, err := NewLive(r, LiveConfig{Now: func() time.Time { return time.Unix(1767261600, 0) }})
	if err != nil {
		f.Fatal(err)
	}
	return l
}

// FuzzLiveRequests feeds arbitrary bodies to the three live endpoints'
// decoders and handlers: an error is fine, a panic is not.
func FuzzLiveRequests(f *testing.F) {
	l := fuzzLive(f)
	seeds := []string{
		`{"observations":[{"edge":0,"speed":12.5},{"way_id":1,"speed":20}]}`,
		`{"observations":[],"closures":[{"edge":3,"until":1767262000}]}`,
		`{"observations":[{"edge":5,"duration":3,"time":1767261000}]}`,
		`{"positions":[{"vehicle":"v","time":1767261600,"location":[7.41993,43.73141]},{"vehicle":"v","time":1767261610,"location":[7.42035,43.73175]}]}`,
		`{"positions":[{"vehicle":"v","time":1,"location":[7.5,43.7],"speed":3,"heading":90}]}`,
		`{"location":[7.41993,43.73141],"stops":[{"location":[7.42586,43.74087],"service":120,"time_windows":[[1767261600,1767270000]]}],"breaks":[{"time_windows":[[1767261600,1767265200]],"service":600}]}`,
		`{"vehicle":"v","mode":"historical","stops":[{"location":[7.4246,43.7384]}]}`,
		`{"observations":[{"edge":4294967295,"speed":-1}]}`,
		`[]`, `null`, `{`,
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var tr TrafficRequest
		if DecodeJSON(body, &tr) == nil && len(tr.Observations)+len(tr.Closures) <= 1000 {
			_, _, _ = l.Observe(&tr)
		}
		var pr PositionsRequest
		if DecodeJSON(body, &pr) == nil && len(pr.Positions) <= 1000 {
			l.Positions(&pr)
		}
		var er ETARequest
		if DecodeJSON(body, &er) == nil {
			_, _ = l.ETA(&er, 50)
		}
	})
}
