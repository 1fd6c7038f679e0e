package engine

import "math"

// AppendPolyline appends the Encoded Polyline Algorithm Format encoding of
// points (Google's format, as used by OSRM's geometries=polyline with
// precision 5 and polyline6 with precision 6) to dst. Points are given as
// [lon, lat]; the format stores latitude first.
func AppendPolyline(dst []byte, points [][2]float64, precision int) []byte {
	factor := math.Pow10(precision)
	var plat, plon int64
	for _, p := range points {
		lat := int64(math.Round(p[1] * factor))
		lon := int64(math.Round(p[0] * factor))
		dst = appendPolylineValue(dst, lat-plat)
		dst = appendPolylineValue(dst, lon-plon)
		plat, plon = lat, lon
	}
	return dst
}

func appendPolylineValue(dst []byte, v int64) []byte {
	u := uint64(v) << 1
	if v < 0 {
		u = ^u
	}
	for u >= 0x20 {
		dst = append(dst, byte(0x20|(u&0x1f))+63)
		u >>= 5
	}
	return append(dst, byte(u)+63)
}

// DecodePolyline decodes an encoded polyline into [lon, lat] points; it is
// the inverse of AppendPolyline and is used by tests and clients.
func DecodePolyline(s string, precision int) ([][2]float64, bool) {
	factor := math.Pow10(precision)
	var out [][2]float64
	var lat, lon int64
	i := 0
	next := func() (int64, bool) {
		var u uint64
		shift := 0
		for {
			if i >= len(s) || shift > 60 {
				return 0, false
			}
			b := uint64(s[i]) - 63
			i++
			if s[i-1] < 63 {
				return 0, false
			}
			u |= (b & 0x1f) << shift
			shift += 5
			if b < 0x20 {
				break
			}
		}
		v := int64(u >> 1)
		if u&1 != 0 {
			v = ^v
		}
		return v, true
	}
	for i < len(s) {
		dlat, ok := next()
		if !ok {
			return nil, false
		}
		dlon, ok := next()
		if !ok {
			return nil, false
		}
		lat += dlat
		lon += dlon
		out = append(out, [2]float64{float64(lon) / factor, float64(lat) / factor})
	}
	return out, true
}
