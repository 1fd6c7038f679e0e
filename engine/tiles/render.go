package tiles

import (
	"fmt"
	"math"
	"slices"

	"github.com/paulmach/orb"
	"github.com/paulmach/orb/clip"
	"github.com/paulmach/orb/encoding/mvt"
	"github.com/paulmach/orb/geojson"
	"github.com/paulmach/orb/simplify"

	"github.com/lastmile/lastmile/graph"
)

// mvtVersion is the version field of every layer: the major version of the
// Vector Tile specification 2.1 (§4.1). orb's mvt.NewLayer would write 1.
const mvtVersion = 2

// scratch holds the buffers of one render, reused through Tiler.scratch.
type scratch struct {
	keys  []uint64          // class rank << 32 | piece, sorted
	line  orb.LineString    // the piece in tile coordinates
	arena []orb.Point       // rounded output points of all features
	feats []geojson.Feature // output features
	ptrs  []*geojson.Feature

	// Properties of named features: one map per distinct (name, class,
	// oneway) of the tile, found by propKey; the maps are cleared and
	// refilled by later renders instead of being allocated again.
	propKey  map[uint64]int
	propMaps []geojson.Properties
	nprops   int
}

// namedProps returns the properties of a feature of class c, one-way or
// not, named t.names[name] (name > 0), shared by the features of this
// render that have the same three.
func (s *scratch) namedProps(t *Tiler, c graph.RoadClass, oneway bool, name uint32) geojson.Properties {
	ow := b2i(oneway)
	k := uint64(name)<<8 | uint64(c)<<1 | uint64(ow)
	if i, ok := s.propKey[k]; ok {
		return s.propMaps[i]
	}
	if s.nprops == len(s.propMaps) {
		s.propMaps = append(s.propMaps, make(geojson.Properties, 3))
	}
	m := s.propMaps[s.nprops]
	clear(m)
	for key, v := range t.props[c][ow] {
		m[key] = v
	}
	m["name"] = t.names[name]
	s.propKey[k] = s.nprops
	s.nprops++
	return m
}

// render draws tile z/x/y; the caller has checked the range.
func (t *Tiler) render(z, x, y int) ([]byte, error) {
	s, _ := t.scratch.Get().(*scratch)
	if s == nil {
		s = new(scratch)
	}
	defer t.scratch.Put(s)

	ext := float64(t.opt.Extent)
	buf := float64(t.opt.Buffer)
	scale := math.Ldexp(ext, z) // world -> tile units
	ox, oy := float64(x)*ext, float64(y)*ext
	lo, hi := -buf, ext+buf
	clipBox := orb.Bound{Min: orb.Point{lo, lo}, Max: orb.Point{hi, hi}}
	qmin := [2]float64{(ox + lo) / scale, (oy + lo) / scale}
	qmax := [2]float64{(ox + hi) / scale, (oy + hi) / scale}

	maxClass := MaxClassAt(z)
	s.keys = s.keys[:0]
	for b := range numBands {
		if bandFirst(b) > maxClass {
			break
		}
		t.trees[b].Search(qmin, qmax, func(_, _ [2]float64, p uint32) bool {
			if c := t.class[p]; c <= maxClass {
				s.keys = append(s.keys, uint64(graph.NumClasses-1-c)<<32|uint64(p))
			}
			return true
		})
	}
	if len(s.keys) == 0 {
		return t.empty, nil
	}
	slices.Sort(s.keys)

	tol := t.opt.Tolerance
	if z == t.opt.MaxZoom {
		tol /= 4
	}
	dp := simplify.DouglasPeucker(tol)
	s.arena = s.arena[:0]
	s.feats = s.feats[:0]
	if s.propKey == nil {
		s.propKey = map[uint64]int{}
	}
	clear(s.propKey)
	s.nprops = 0
	var parts orb.MultiLineString
	for _, k := range s.keys {
		p := uint32(k)
		s.line = s.line[:0]
		for _, q := range t.pts[t.off[p]:t.off[p+1]] {
			s.line = append(s.line, orb.Point{q[0]*scale - ox, q[1]*scale - oy})
		}
		if b := t.box[p]; b.Min[0] >= qmin[0] && b.Min[1] >= qmin[1] && b.Max[0] <= qmax[0] && b.Max[1] <= qmax[1] {
			parts = append(parts[:0], s.line)
		} else {
			parts = clip.LineString(clipBox, s.line)
		}
		var geom orb.MultiLineString
		for _, part := range parts {
			if tol > 0 && len(part) > 2 {
				part = dp.LineString(part)
			}
			start := len(s.arena)
			for _, q := range part {
				r := orb.Point{snap(q[0], lo, hi), snap(q[1], lo, hi)}
				if len(s.arena) > start && s.arena[len(s.arena)-1] == r {
					continue // §4.3.3.2: no zero-length segment
				}
				s.arena = append(s.arena, r)
			}
			if len(s.arena)-start < 2 {
				s.arena = s.arena[:start] // degenerate: a point
				continue
			}
			geom = append(geom, orb.LineString(s.arena[start:len(s.arena):len(s.arena)]))
		}
		if len(geom) == 0 {
			continue
		}
		c := t.class[p]
		props := t.props[c][b2i(t.oneway[p])]
		if name := t.name[p]; name != 0 && z >= NameMinZoom(c) {
			props = s.namedProps(t, c, t.oneway[p], name)
		}
		f := geojson.Feature{
			Type:       "Feature",
			ID:         uint64(t.edge[p]),
			Properties: props,
		}
		if len(geom) == 1 {
			f.Geometry = geom[0]
		} else {
			f.Geometry = geom
		}
		s.feats = append(s.feats, f)
	}
	if len(s.feats) == 0 {
		return t.empty, nil
	}
	s.ptrs = s.ptrs[:0]
	for i := range s.feats {
		s.ptrs = append(s.ptrs, &s.feats[i])
	}
	layer := &mvt.Layer{Name: LayerName, Version: mvtVersion, Extent: uint32(t.opt.Extent), Features: s.ptrs}
	raw, err := mvt.Marshal(mvt.Layers{layer})
	if err != nil {
		return nil, fmt.Errorf("tiles: encode %d/%d/%d: %w", z, x, y, err)
	}
	out, err := t.compress(raw)
	if err != nil {
		return nil, fmt.Errorf("tiles: compress %d/%d/%d: %w", z, x, y, err)
	}
	return out, nil
}

// snap rounds a tile coordinate down to the integer grid, as
// mvt.Layer.ProjectToTile does, and clamps it to [lo, hi] against the float
// error of clipping at the buffer edge.
func snap(v, lo, hi float64) float64 {
	return min(max(math.Floor(v), lo), hi)
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
