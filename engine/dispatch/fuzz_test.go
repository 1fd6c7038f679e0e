package dispatch

import (
	"encoding/json"
	"testing"
)

// FuzzShipmentInput: validation of any decoded shipment never panics, and
// what it accepts keeps its limits.
func FuzzShipmentInput(f *testing.F) {
	f.Add([]byte(`{"tracking":"T1","recipient":{"name":"Ana","phone":"+351 912","email":"a@b.pt","language":"pt"},"location":[-8.6,41.1],"time_window":[1,2],"service":120,"parcels":{"count":1,"weight":2,"dimensions":[[1,2,3]]},"time_zone":"Europe/Lisbon"}`))
	f.Add([]byte(`{"tracking":"a/b","recipient":{"name":"\u0000"},"location":[0,0]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var in ShipmentInput
		if json.Unmarshal(b, &in) != nil {
			return
		}
		if in.validate() == nil {
			if len(in.Tracking) > maxTracking || len(in.Recipient.Name) > maxName || len(in.Address) > maxAddress {
				t.Fatalf("accepted over the limits: %+v", in)
			}
		}
	})
}

// FuzzParseVehicles: any plan vehicle list parses or fails with an *Error,
// never a panic.
func FuzzParseVehicles(f *testing.F) {
	f.Add([]byte(`[{"id":1,"vehicle":"van-1","driver":"Rui","start":[-8.6,41.1],"end":[-8.6,41.1],"time_window":[0,100],"capacity":[10],"breaks":[{"id":1,"time_windows":[[10,20]],"service":5}]}]`))
	f.Add([]byte(`[{"id":1,"vehicle":"","start":[1]}]`))
	f.Add([]byte(`[{"id":1,"vehicle":"v","start":[1,2],"steps":[]}]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var raws []json.RawMessage
		if json.Unmarshal(b, &raws) != nil {
			return
		}
		vs, err := parseVehicles(raws)
		if err != nil {
			if _, ok := err.(*Error); !ok {
				t.Fatalf("error of type %T: %v", err, err)
			}
			return
		}
		for _, v := range vs {
			if v.name == "" || !v.v.HasStart {
				t.Fatalf("accepted a vehicle without a name or start: %+v", v)
			}
		}
	})
}
