// LastmileMap: the basemap and markers for the tracking page, the driver app
// and the dispatcher dashboard.
//
// Leaflet (window.L, loaded from static/vendor/leaflet.js before this file)
// draws the map; the basemap is our own road graph served as Mapbox Vector
// Tiles by the engine at /tiles/{z}/{x}/{y}.mvt, decoded here with
// @mapbox/vector-tile + pbf and drawn on canvas tiles. Nothing is loaded from
// third parties, nothing uses eval or inline styles, so the pages work under
// `default-src 'self'` without 'unsafe-inline' / 'unsafe-eval'.
//
// Bundled by build-assets.sh (esbuild) into static/map.js as an IIFE that
// sets window.LastmileMap. Coordinates in this API are always [lon, lat].

import {VectorTile} from '@mapbox/vector-tile';
import {PbfReader} from 'pbf';

const L = window.L;

const BACKGROUND = '#f2efe9';
const DATA_MIN_ZOOM = 8; // the server has tiles for zooms 8..16
const DATA_MAX_ZOOM = 16; // beyond 16 we draw the right part of the z16 tile
const MAX_ZOOM = 19;
const TILE_SIZE = 256;

// Road styles, drawn in this order (later = on top). w: fill width in CSS px
// at zoom 16; c: casing width each side in CSS px; minz: first zoom drawn.
// Flat, muted OSM-Carto-like palette.
const STYLES = [
	['other', {fill: '#fbfaf7', casing: '#d6d0c4', w: 2, c: 0.6, minz: 15}],
	['service', {fill: '#ffffff', casing: '#cfc8bb', w: 3, c: 0.75, minz: 14}],
	['living_street', {fill: '#f4f4f4', casing: '#c6c0b4', w: 5, c: 1, minz: 13}],
	['residential', {fill: '#ffffff', casing: '#c6c0b4', w: 6, c: 1, minz: 12}],
	['unclassified', {fill: '#ffffff', casing: '#c2bbad', w: 6, c: 1, minz: 12}],
	['tertiary_link', {fill: '#fdf6d3', casing: '#c2b78f', w: 5, c: 1, minz: 13}],
	['secondary_link', {fill: '#f9e6a4', casing: '#c4ab66', w: 5, c: 1, minz: 13}],
	['primary_link', {fill: '#f8cf8b', casing: '#c59a5a', w: 5.5, c: 1, minz: 12}],
	['trunk_link', {fill: '#f4ab7e', casing: '#c27a55', w: 6, c: 1, minz: 11}],
	['motorway_link', {fill: '#ec9272', casing: '#b9644a', w: 6, c: 1, minz: 10}],
	['tertiary', {fill: '#fdf6d3', casing: '#c2b78f', w: 8, c: 1, minz: 11}],
	['secondary', {fill: '#f9e6a4', casing: '#c4ab66', w: 9, c: 1, minz: 9}],
	['primary', {fill: '#f8cf8b', casing: '#c59a5a', w: 10, c: 1.1, minz: 8}],
	['trunk', {fill: '#f4ab7e', casing: '#c27a55', w: 11, c: 1.1, minz: 8}],
	['motorway', {fill: '#ec9272', casing: '#b9644a', w: 12, c: 1.2, minz: 8}],
];
const CLASS_INDEX = Object.create(null);
STYLES.forEach(([name], i) => { CLASS_INDEX[name] = i; });
const OTHER = CLASS_INDEX.other;

// Fill width in CSS px at zoom z: halves (roughly) every zoom level out,
// grows a bit more slowly when overzooming, never vanishes.
function roadWidth(style, z) {
	const f = z <= 16 ? Math.pow(1.6, z - 16) : Math.pow(1.45, z - 16);
	return Math.max(style.w * f, 0.6);
}

function reducedMotion() {
	return !!(window.matchMedia && window.matchMedia('(prefers-reduced-motion: reduce)').matches);
}

function ll(lon, lat) {
	return L.latLng(+lat, +lon);
}

function toLatLngs(coords) {
	const out = [];
	if (!coords) return out;
	for (const c of coords) {
		if (c && isFinite(c[0]) && isFinite(c[1])) out.push(ll(c[0], c[1]));
	}
	return out;
}

// Bearing (degrees clockwise from north) between two LatLngs. Mercator is
// conformal, so this is also the on-screen angle with north up.
function bearing(a, b) {
	const dx = (b.lng - a.lng) * Math.cos((a.lat + b.lat) * Math.PI / 360);
	const dy = b.lat - a.lat;
	if (dx === 0 && dy === 0) return null;
	return (Math.atan2(dx, dy) * 180 / Math.PI + 360) % 360;
}

// Approximate ground distance in metres; only ratios matter (animation timing).
function dist(a, b) {
	const k = Math.cos((a.lat + b.lat) * Math.PI / 360);
	const dx = (b.lng - a.lng) * k;
	const dy = b.lat - a.lat;
	return Math.sqrt(dx * dx + dy * dy) * 111320;
}

// ---------------------------------------------------------------------------
// Vector tile layer

const VectorRoadLayer = L.GridLayer.extend({
	options: {
		tileSize: TILE_SIZE,
		minZoom: 0,
		maxZoom: MAX_ZOOM,
		// Data zoom range; outside it tiles are fetched from the nearest
		// available zoom (beyond 16: the z16 ancestor, drawn scaled, as vectors).
		minDataZoom: DATA_MIN_ZOOM,
		maxDataZoom: DATA_MAX_ZOOM,
		keepBuffer: 1,
	},

	initialize(url, options) {
		this._url = url;
		L.GridLayer.prototype.initialize.call(this, options);
		this.on('tileunload', this._onTileUnload, this);
	},

	createTile(coords, done) {
		const tile = document.createElement('canvas');
		tile.setAttribute('aria-hidden', 'true');
		const dpr = Math.min(Math.max(window.devicePixelRatio || 1, 1), 3);
		const size = this.getTileSize();
		tile.width = Math.round(size.x * dpr);
		tile.height = Math.round(size.y * dpr);
		const z = coords.z;
		if (z < this.options.minDataZoom) {
			// No data this far out: plain background, no request.
			paintBackground(tile);
			setTimeout(() => done(null, tile), 0);
			return tile;
		}
		const d = Math.max(0, z - this.options.maxDataZoom);
		const src = {x: coords.x >> d, y: coords.y >> d, z: z - d};
		const sub = {dx: coords.x - (src.x << d), dy: coords.y - (src.y << d), scale: 1 << d};
		const ctrl = typeof AbortController === 'function' ? new AbortController() : null;
		tile._lmAbort = ctrl;
		const url = L.Util.template(this._url, L.Util.extend({}, src, {s: ''}));
		fetch(url, {credentials: 'same-origin', signal: ctrl ? ctrl.signal : undefined})
			.then((res) => {
				if (res.status === 204 || res.status === 404) return null;
				if (!res.ok) throw new Error('tile ' + url + ': HTTP ' + res.status);
				return res.arrayBuffer();
			})
			.then((buf) => {
				tile._lmAbort = null;
				let layer = null;
				if (buf && buf.byteLength) {
					const vt = new VectorTile(new PbfReader(new Uint8Array(buf)));
					layer = vt.layers.roads || null;
				}
				drawRoads(tile, layer, z, sub);
				done(null, tile);
			})
			.catch((err) => {
				tile._lmAbort = null;
				if (err && err.name === 'AbortError') return; // tile unloaded
				paintBackground(tile);
				done(err, tile);
			});
		return tile;
	},

	_onTileUnload(e) {
		const ctrl = e.tile && e.tile._lmAbort;
		if (ctrl) {
			e.tile._lmAbort = null;
			ctrl.abort();
		}
	},
});

function paintBackground(canvas) {
	const ctx = canvas.getContext('2d');
	ctx.fillStyle = BACKGROUND;
	ctx.fillRect(0, 0, canvas.width, canvas.height);
	return ctx;
}

// Draw the "roads" layer, then the street names the tile carries (see
// drawLabels). sub: which part of the source tile this canvas shows when
// overzooming (dx, dy in sub-tile units, scale = 2^(z-16)).
function drawRoads(canvas, layer, z, sub) {
	const ctx = paintBackground(canvas);
	if (!layer || !layer.length) return;
	const px = canvas.width / TILE_SIZE; // device px per CSS px
	const extent = layer.extent || 4096;
	const k = (canvas.width * sub.scale) / extent; // tile units -> device px
	const ox = sub.dx * canvas.width;
	const oy = sub.dy * canvas.height;

	// Bucket features by class, keeping only what is drawn at this zoom;
	// group the named ones by name for the labels.
	const buckets = STYLES.map(() => []);
	const named = new Map();
	for (let i = 0; i < layer.length; i++) {
		const f = layer.feature(i);
		if (f.type !== 2) continue; // LineString only
		let ci = CLASS_INDEX[f.properties.class];
		if (ci === undefined) ci = OTHER;
		if (z < STYLES[ci][1].minz) continue;
		const geom = f.loadGeometry();
		buckets[ci].push({geom, oneway: f.properties.oneway == 1});
		const name = f.properties.name;
		if (typeof name === 'string' && name !== '') {
			const st = LABEL_STYLES[ci];
			let g = named.get(name);
			if (!g) named.set(name, g = {name, st, lines: []});
			if (st.rank > g.st.rank) g.st = st;
			for (const line of geom) if (line.length >= 2) g.lines.push(line);
		}
	}

	ctx.lineJoin = 'round';
	ctx.lineCap = 'round';
	const arrows = [];
	for (let ci = 0; ci < STYLES.length; ci++) {
		const feats = buckets[ci];
		if (!feats.length) continue;
		const st = STYLES[ci][1];
		const w = roadWidth(st, z);
		// Thin lines (low zooms) are drawn once, in the casing colour.
		const casing = w >= 2.5;
		// One path per class: casing first, then fill, so junctions of the same
		// class merge cleanly and more important classes sit on top.
		ctx.beginPath();
		for (const f of feats) {
			for (const line of f.geom) {
				for (let j = 0; j < line.length; j++) {
					const x = line[j].x * k - ox;
					const y = line[j].y * k - oy;
					if (j === 0) ctx.moveTo(x, y);
					else ctx.lineTo(x, y);
				}
			}
		}
		if (casing) {
			ctx.strokeStyle = st.casing;
			ctx.lineWidth = (w + 2 * st.c) * px;
			ctx.stroke();
		}
		ctx.strokeStyle = casing ? st.fill : st.casing;
		ctx.lineWidth = (casing ? w : w + st.c) * px;
		ctx.stroke();
		if (z >= 16 && w >= 4) {
			for (const f of feats) if (f.oneway) arrows.push({geom: f.geom, w});
		}
	}
	if (arrows.length) drawOnewayArrows(ctx, arrows, k, ox, oy, px);
	if (named.size) drawLabels(ctx, named, k, ox, oy, px);
}

// Small chevrons every ~90 CSS px along one-way roads (zoom >= 16).
function drawOnewayArrows(ctx, arrows, k, ox, oy, px) {
	const spacing = 90 * px;
	ctx.strokeStyle = '#8a8478';
	ctx.lineWidth = 1.2 * px;
	ctx.lineCap = 'round';
	ctx.lineJoin = 'miter';
	ctx.beginPath();
	for (const a of arrows) {
		const s = Math.min(a.w * 0.35, 3.5) * px;
		for (const line of a.geom) {
			let carry = spacing / 2;
			for (let j = 1; j < line.length; j++) {
				const x0 = line[j - 1].x * k - ox;
				const y0 = line[j - 1].y * k - oy;
				const x1 = line[j].x * k - ox;
				const y1 = line[j].y * k - oy;
				const len = Math.hypot(x1 - x0, y1 - y0);
				if (len === 0) continue;
				const ux = (x1 - x0) / len;
				const uy = (y1 - y0) / len;
				let t = carry;
				while (t < len) {
					const cx = x0 + ux * t;
					const cy = y0 + uy * t;
					ctx.moveTo(cx - ux * s - uy * s, cy - uy * s + ux * s);
					ctx.lineTo(cx, cy);
					ctx.lineTo(cx - ux * s + uy * s, cy - uy * s - ux * s);
					t += spacing;
				}
				carry = t - len;
			}
		}
	}
	ctx.stroke();
}

// ---------------------------------------------------------------------------
// Street names
//
// The tiles carry a road's name from the zoom where a label can fit (13 for
// main roads, 14 tertiary, 15 streets, 16 service roads; see the server's
// tiles.NameMinZoom), so every name a tile carries is a candidate. For each
// name the tile's pieces of that road are joined end to end, cut into
// straight stretches, and the label goes on the longest stretch that holds
// it: centred on the stretch's chord, rotated to its direction and never
// upside down, with a light halo. A label is placed only if its box lies
// inside the canvas (no label is cut at a tile edge) and overlaps no label
// placed before; more important roads, then longer ones, choose first, and
// each name gets at most one label per tile. Fonts are the system's: no
// request leaves the engine. The cost per tile is the placement, plain
// arithmetic on the tile's named lines (roads too short for their name are
// skipped first), and a stroke and a fill of text per label; text is
// measured once per character and font for the whole page.

const LABEL_FAMILY = 'system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif';
// Label styles: size in CSS px; rank orders the choice of places (higher
// first). Two fonts only: the first text drawn in a font costs a font
// lookup (6 to 10 ms on a desktop, 4 times that on a phone).
const LABEL_MAIN = {size: 11.5, weight: 600, color: '#2b2620', rank: 3};
const LABEL_LINK = {size: 11.5, weight: 600, color: '#2b2620', rank: 2};
const LABEL_STREET = {size: 11, weight: 400, color: '#2f2b27', rank: 1};
const LABEL_MINOR = {size: 11, weight: 400, color: '#4d4841', rank: 0};
const LABEL_HALO = 'rgba(255, 255, 255, 0.92)';
const LABEL_HALO_WIDTH = 3; // CSS px
// How far a road may stray from a label's baseline, as a share of the font
// size: gentle bends still take a straight label.
const LABEL_BEND = 0.35;
// A lower bound of the width of a character, in ems, for every font of the
// stack ("i" and "l" are narrower, but not whole names of them).
const LABEL_MIN_EM = 0.3;
// Where along the free part of a stretch a label is tried: the middle
// first.
const LABEL_TRIES = [0.5, 0.25, 0.75, 0, 1];
// Label style by class index (STYLES order).
const LABEL_STYLES = STYLES.map(([name]) => {
	if (/^(motorway|trunk|primary|secondary)$/.test(name)) return LABEL_MAIN;
	if (/_link$/.test(name) || name === 'tertiary') return LABEL_LINK;
	if (name === 'service' || name === 'other') return LABEL_MINOR;
	return LABEL_STREET;
});

// Character widths by font, shared by all tiles: a label's width is the sum
// of its characters' (kerning is within the box's padding), so that after
// the first tiles no text is measured at all. They are measured on a
// canvas of their own, which keeps its font between tiles.
const charWidths = new Map();
let measureCtx = null;
let measureFont = '';

function textWidth(font, text) {
	let widths = charWidths.get(font);
	if (!widths) charWidths.set(font, widths = new Map());
	let w = 0;
	for (const ch of text) {
		let cw = widths.get(ch);
		if (cw === undefined) {
			if (!measureCtx) measureCtx = document.createElement('canvas').getContext('2d');
			if (measureFont !== font) measureCtx.font = measureFont = font;
			cw = measureCtx.measureText(ch).width;
			if (widths.size < 2000) widths.set(ch, cw);
		}
		w += cw;
	}
	return w;
}

// Join the pieces of one road (tile units) into longer polylines where
// their ends meet; pieces keep their points, reversed where needed.
function chainLines(lines) {
	if (lines.length < 2) return lines;
	const key = (p) => (p.x + 32768) * 65536 + (p.y + 32768); // tile units are far within ±32768
	const ends = new Map();
	for (let i = 0; i < lines.length; i++) {
		const l = lines[i];
		for (const p of [l[0], l[l.length - 1]]) {
			const k = key(p);
			const a = ends.get(k);
			if (a) a.push(i);
			else ends.set(k, [i]);
		}
	}
	const used = new Uint8Array(lines.length);
	const take = (p) => {
		const a = ends.get(key(p));
		if (a) for (const i of a) if (!used[i]) { used[i] = 1; return i; }
		return -1;
	};
	const same = (a, b) => a.x === b.x && a.y === b.y;
	const out = [];
	for (let i = 0; i < lines.length; i++) {
		if (used[i]) continue;
		used[i] = 1;
		let chain = lines[i].slice();
		for (let j; (j = take(chain[chain.length - 1])) >= 0;) {
			const l = lines[j];
			const tail = same(l[0], chain[chain.length - 1]) ? l.slice(1) : l.slice(0, -1).reverse();
			for (const p of tail) chain.push(p);
		}
		for (let j; (j = take(chain[0])) >= 0;) {
			const l = lines[j];
			chain = (same(l[l.length - 1], chain[0]) ? l.slice(0, -1) : l.slice(1).reverse()).concat(chain);
		}
		out.push(chain);
	}
	return out;
}

// Straight stretches of a polyline given as flat device-px coordinates
// [x0, y0, x1, y1, ...]: for each start point, the longest run of points
// that stays within tol of its chord and does not turn back, when it is at
// least minLen long and not inside the previous start's run. Appends
// {ax, ay, bx, by, len} to out. Quadratic in the points of the line at
// worst; lines of a tile have tens of points.
function straightRuns(xy, tol, minLen, out) {
	const n = xy.length / 2;
	let prevEnd = 0;
	for (let s = 0; s < n - 1 && prevEnd < n - 1; s++) {
		let e = Math.max(prevEnd, s + 1);
		if (e > s + 1 && !fitsChord(xy, s, e, tol)) e = s + 1;
		while (e + 1 < n && fitsChord(xy, s, e + 1, tol)) e++;
		if (e <= prevEnd) continue;
		prevEnd = e;
		const ax = xy[2 * s], ay = xy[2 * s + 1], bx = xy[2 * e], by = xy[2 * e + 1];
		const len = Math.hypot(bx - ax, by - ay);
		if (len >= minLen) out.push({ax, ay, bx, by, len});
	}
	return out;
}

function fitsChord(xy, s, e, tol) {
	const ax = xy[2 * s], ay = xy[2 * s + 1];
	const dx = xy[2 * e] - ax, dy = xy[2 * e + 1] - ay;
	const len = Math.hypot(dx, dy);
	if (len === 0) return false;
	const ux = dx / len, uy = dy / len;
	let prev = 0;
	for (let i = s + 1; i < e; i++) {
		const px = xy[2 * i] - ax, py = xy[2 * i + 1] - ay;
		const along = px * ux + py * uy;
		if (Math.abs(px * uy - py * ux) > tol || along < prev - tol || along > len + tol) return false;
		prev = along;
	}
	return true;
}

// A line in tile units as flat device-px coordinates.
function toDevice(line, k, ox, oy) {
	const xy = new Float64Array(line.length * 2);
	for (let j = 0; j < line.length; j++) {
		xy[2 * j] = line[j].x * k - ox;
		xy[2 * j + 1] = line[j].y * k - oy;
	}
	return xy;
}

// The corners of a label box centred at (cx, cy), half sizes hw, hh,
// rotated by angle a (unit vector c, s).
function boxCorners(cx, cy, hw, hh, c, s) {
	return [
		cx - hw * c + hh * s, cy - hw * s - hh * c,
		cx + hw * c + hh * s, cy + hw * s - hh * c,
		cx + hw * c - hh * s, cy + hw * s + hh * c,
		cx - hw * c - hh * s, cy - hw * s + hh * c,
	];
}

// Separating-axis test of two convex quadrilaterals given by their corners.
function boxesOverlap(p, q) {
	for (const poly of [p, q]) {
		for (let i = 0; i < 4; i++) {
			const j = (i + 1) % 4;
			const nx = poly[2 * j + 1] - poly[2 * i + 1];
			const ny = poly[2 * i] - poly[2 * j];
			let pmin = Infinity, pmax = -Infinity, qmin = Infinity, qmax = -Infinity;
			for (let k = 0; k < 4; k++) {
				const a = p[2 * k] * nx + p[2 * k + 1] * ny;
				const b = q[2 * k] * nx + q[2 * k + 1] * ny;
				if (a < pmin) pmin = a;
				if (a > pmax) pmax = a;
				if (b < qmin) qmin = b;
				if (b > qmax) qmax = b;
			}
			if (pmax <= qmin || qmax <= pmin) return false;
		}
	}
	return true;
}

// drawLabels places and draws the names of one tile (see above). named
// maps a name to {name, st: its label style, lines: its lines in tile
// units}; k, ox, oy map tile units to device px, px is device px per CSS px.
function drawLabels(ctx, named, k, ox, oy, px) {
	const W = ctx.canvas.width;
	const H = ctx.canvas.height;
	const groups = [];
	// A road whose pieces in the tile are shorter in all than a lower bound
	// of its label (LABEL_MIN_EM of the font size per character) is skipped
	// before any work; so are roads without a straight stretch that long.
	for (const g of named.values()) {
		let len = 0;
		for (const l of g.lines) for (let j = 1; j < l.length; j++) len += Math.hypot(l[j].x - l[j - 1].x, l[j].y - l[j - 1].y);
		g.len = len * k;
		g.min = g.name.length * LABEL_MIN_EM * g.st.size * px;
		if (g.len >= g.min) groups.push(g);
	}
	// Important roads first; among equals, the one with more road in the tile.
	groups.sort((a, b) => b.st.rank - a.st.rank || b.len - a.len);
	const placed = [];
	const margin = 2 * px; // from the canvas edges
	const runs = [];
	for (const g of groups) {
		const st = g.st;
		const tol = LABEL_BEND * st.size * px;
		runs.length = 0;
		for (const line of chainLines(g.lines)) straightRuns(toDevice(line, k, ox, oy), tol, g.min, runs);
		if (!runs.length) continue;
		const font = st.weight + ' ' + (st.size * px).toFixed(1) + 'px ' + LABEL_FAMILY;
		const hw = textWidth(font, g.name) / 2 + 2 * px; // half the box, with the halo
		const hh = st.size * px * 0.62;
		const need = 2 * hw + 0.5 * st.size * px; // a little road each side
		runs.sort((a, b) => b.len - a.len);
		while (runs.length && runs[runs.length - 1].len < need) runs.pop();
		let done = false;
		for (let r = 0; r < runs.length && r < 4 && !done; r++) {
			const run = runs[r];
			const ux = (run.bx - run.ax) / run.len;
			const uy = (run.by - run.ay) / run.len;
			// Never upside down: the text runs left to right (or downwards).
			const c = ux < 0 || (ux === 0 && uy < 0) ? -ux : ux;
			const s = ux < 0 || (ux === 0 && uy < 0) ? -uy : uy;
			// The centre lies at distance d along the run: within the run,
			// and where the whole box is inside the canvas.
			let lo = need / 2;
			let hi = run.len - need / 2;
			const off = boxCorners(0, 0, hw, hh, c, s);
			for (let i = 0; i < 8 && lo <= hi; i++) {
				const u = i % 2 ? uy : ux;
				const a = (i % 2 ? run.ay : run.ax) + off[i];
				const max = (i % 2 ? H : W) - margin;
				if (u === 0) {
					if (a < margin || a > max) hi = lo - 1;
				} else if (u > 0) {
					lo = Math.max(lo, (margin - a) / u);
					hi = Math.min(hi, (max - a) / u);
				} else {
					lo = Math.max(lo, (max - a) / u);
					hi = Math.min(hi, (margin - a) / u);
				}
			}
			for (let t = 0; t < LABEL_TRIES.length && lo <= hi; t++) {
				const d = lo + (hi - lo) * LABEL_TRIES[t];
				const cx = run.ax + ux * d;
				const cy = run.ay + uy * d;
				const box = boxCorners(cx, cy, hw, hh, c, s);
				if (placed.some((p) => boxesOverlap(p.box, box))) continue;
				placed.push({box, cx, cy, c, s, font, st, name: g.name});
				done = true;
				break;
			}
		}
	}
	if (!placed.length) return;
	ctx.save();
	ctx.textAlign = 'center';
	ctx.textBaseline = 'middle';
	ctx.lineJoin = 'round';
	ctx.strokeStyle = LABEL_HALO;
	ctx.lineWidth = LABEL_HALO_WIDTH * px;
	let font = '';
	for (const p of placed) {
		if (p.font !== font) ctx.font = font = p.font;
		ctx.setTransform(p.c, p.s, -p.s, p.c, p.cx, p.cy);
		ctx.strokeText(p.name, 0, 0);
		ctx.fillStyle = p.st.color;
		ctx.fillText(p.name, 0, 0);
	}
	ctx.restore();
}

// ---------------------------------------------------------------------------
// Markers

// Never fall back to Leaflet's PNG default icon (we ship no images): any
// L.marker created without an icon gets a plain dot instead.
const DOT_ICON = L.divIcon({className: 'lm-marker', iconSize: [16, 16]});
L.Marker.mergeOptions({icon: DOT_ICON});

const VAN_SVG = '<svg class="lm-van-arrow" viewBox="0 0 24 24" width="22" height="22" aria-hidden="true" focusable="false">' +
	'<path d="M12 3.5l6.5 15.5-6.5-3.6-6.5 3.6z"/></svg>';
const STOP_HTML = '<span class="lm-stop-pin" aria-hidden="true"><span class="lm-stop-dot"></span></span>';

function setA11y(marker, label, title) {
	const el = marker.getElement();
	if (!el) return;
	el.setAttribute('role', 'img');
	if (label) el.setAttribute('aria-label', label);
	else el.removeAttribute('aria-label');
	if (title) el.title = title;
	else el.removeAttribute('title');
}

function a11yMarker(latlng, icon, label, title, zIndexOffset) {
	const m = L.marker(latlng, {icon, interactive: false, keyboard: false, zIndexOffset: zIndexOffset || 0});
	m._lmLabel = label;
	m._lmTitle = title;
	m.on('add', () => setA11y(m, m._lmLabel, m._lmTitle));
	return m;
}

// ---------------------------------------------------------------------------
// The API object

class LastmileMapView {
	constructor(element, opts) {
		opts = opts || {};
		const el = typeof element === 'string' ? document.getElementById(element) : element;
		if (!el) throw new Error('LastmileMap.create: no element');
		const interactive = opts.interactive !== false;
		const motion = !reducedMotion();
		const center = opts.center || [0, 0];
		const map = L.map(el, {
			center: ll(center[0], center[1]),
			zoom: opts.zoom != null ? opts.zoom : 15,
			minZoom: opts.minZoom != null ? opts.minZoom : DATA_MIN_ZOOM,
			maxZoom: opts.maxZoom != null ? opts.maxZoom : MAX_ZOOM,
			attributionControl: false,
			zoomControl: interactive,
			dragging: interactive,
			touchZoom: interactive,
			scrollWheelZoom: interactive,
			doubleClickZoom: interactive,
			boxZoom: interactive,
			keyboard: interactive,
			tapHold: false,
			zoomAnimation: motion,
			fadeAnimation: motion,
			markerZoomAnimation: motion,
		});
		L.DomUtil.addClass(el, 'lm-map');
		if (!el.hasAttribute('aria-label')) el.setAttribute('aria-label', opts.label || 'Map');
		if (!el.hasAttribute('role')) el.setAttribute('role', 'region');
		L.control.attribution({prefix: false})
			.addAttribution(opts.attribution != null ? opts.attribution : 'Map data © OpenStreetMap contributors (ODbL)')
			.addTo(map);
		this._roads = new VectorRoadLayer(opts.tiles || '/tiles/{z}/{x}/{y}.mvt').addTo(map);
		this.leaflet = map;
		this._markers = new Map();
		this._stop = null;
		this._van = null;
		this._vanHeading = null;
		this._anim = null;
		this._routeCasing = null;
		this._route = null;
	}

	setStop(lon, lat, opts) {
		opts = opts || {};
		const label = opts.label || 'Delivery stop';
		if (!this._stop) {
			const icon = L.divIcon({className: 'lm-stop', html: STOP_HTML, iconSize: [30, 40], iconAnchor: [15, 38]});
			this._stop = a11yMarker(ll(lon, lat), icon, label, opts.title || label, 500).addTo(this.leaflet);
		} else {
			this._stop._lmLabel = label;
			this._stop._lmTitle = opts.title || label;
			this._stop.setLatLng(ll(lon, lat));
			setA11y(this._stop, label, opts.title || label);
		}
		return this;
	}

	clearStop() {
		if (this._stop) this._stop.remove();
		this._stop = null;
		return this;
	}

	setVan(lon, lat, opts) {
		opts = opts || {};
		const target = ll(lon, lat);
		if (!isFinite(target.lat) || !isFinite(target.lng)) return this;
		const label = opts.label || 'Delivery van';
		if (!this._van) {
			const icon = L.divIcon({className: 'lm-van', html: VAN_SVG, iconSize: [30, 30], iconAnchor: [15, 15]});
			this._van = a11yMarker(target, icon, label, opts.title || label, 1000);
			// A re-added marker gets a fresh element: restore the heading arrow.
			this._van.on('add', () => this._setHeading(this._vanHeading));
		}
		this._van._lmLabel = label;
		this._van._lmTitle = opts.title || label;
		const wasShown = this.leaflet.hasLayer(this._van);
		if (!wasShown) {
			this._cancelAnim(false);
			this._van.setLatLng(target).addTo(this.leaflet);
			this._setHeading(opts.heading);
			return this;
		}
		setA11y(this._van, label, this._van._lmTitle);

		const path = toLatLngs(opts.path);
		if (path.length < 1 || reducedMotion()) {
			this._cancelAnim(false);
			this._van.setLatLng(target);
			if (path.length >= 2) this._setHeading(bearing(path[path.length - 2], path[path.length - 1]));
			this._setHeading(opts.heading);
			return this;
		}
		// Points to travel: the rest of a running animation (so an early
		// update keeps following the road), then the new path, ending at target.
		let pts = this._cancelAnim(true) || [this._van.getLatLng()];
		const first = path[0];
		if (!pts[pts.length - 1].equals(first)) pts.push(first);
		pts = pts.concat(path.slice(1));
		if (!pts[pts.length - 1].equals(target)) pts.push(target);
		const cum = [0];
		for (let i = 1; i < pts.length; i++) cum.push(cum[i - 1] + dist(pts[i - 1], pts[i]));
		const total = cum[cum.length - 1];
		if (!(total > 0.5)) {
			this._van.setLatLng(target);
			this._setHeading(opts.heading);
			return this;
		}
		const anim = {pts, cum, total, t0: performance.now(), dur: 1000, heading: opts.heading, raf: 0, seg: 1};
		const step = (now) => {
			if (this._anim !== anim) return;
			const p = Math.min((now - anim.t0) / anim.dur, 1);
			const pos = this._animPos(anim, p);
			this._van.setLatLng(pos.latlng);
			if (pos.bearing != null) this._setHeading(pos.bearing);
			if (p < 1) {
				anim.raf = requestAnimationFrame(step);
			} else {
				this._anim = null;
				this._setHeading(anim.heading);
			}
		};
		this._anim = anim;
		anim.raf = requestAnimationFrame(step);
		return this;
	}

	// Position and segment bearing at fraction p of the distance along anim.pts.
	_animPos(anim, p) {
		const d = p * anim.total;
		const {pts, cum} = anim;
		let i = Math.max(1, anim.seg);
		if (cum[i - 1] > d) i = 1;
		while (i < pts.length - 1 && cum[i] < d) i++;
		anim.seg = i;
		const a = pts[i - 1];
		const b = pts[i];
		const segLen = cum[i] - cum[i - 1];
		const f = segLen > 0 ? Math.min(Math.max((d - cum[i - 1]) / segLen, 0), 1) : 1;
		return {
			latlng: L.latLng(a.lat + (b.lat - a.lat) * f, a.lng + (b.lng - a.lng) * f),
			bearing: bearing(a, b),
			index: i,
		};
	}

	// Stop a running animation. With keepRest, return the points still to be
	// travelled (starting at the current position) instead of jumping.
	_cancelAnim(keepRest) {
		const anim = this._anim;
		if (!anim) return null;
		this._anim = null;
		cancelAnimationFrame(anim.raf);
		const p = Math.min((performance.now() - anim.t0) / anim.dur, 1);
		if (p >= 1 || !keepRest) {
			this._van.setLatLng(anim.pts[anim.pts.length - 1]);
			return null;
		}
		const pos = this._animPos(anim, p);
		this._van.setLatLng(pos.latlng);
		return [pos.latlng].concat(anim.pts.slice(pos.index));
	}

	_setHeading(deg) {
		if (deg == null || !isFinite(deg)) return;
		this._vanHeading = +deg;
		const el = this._van && this._van.getElement();
		const arrow = el && el.firstChild;
		if (arrow) arrow.style.transform = 'rotate(' + this._vanHeading.toFixed(1) + 'deg)';
		if (el) L.DomUtil.addClass(el, 'lm-van-heading');
	}

	hideVan() {
		if (this._van) {
			this._cancelAnim(false);
			this._van.remove();
		}
		return this;
	}

	setRoute(coords) {
		const lls = toLatLngs(coords);
		if (lls.length < 2) {
			if (this._route) {
				this._route.remove();
				this._routeCasing.remove();
			}
			this._route = this._routeCasing = null;
			return this;
		}
		if (!this._route) {
			const base = {interactive: false, lineCap: 'round', lineJoin: 'round', smoothFactor: 1};
			this._routeCasing = L.polyline(lls, L.Util.extend({className: 'lm-route-casing', color: '#ffffff', weight: 9, opacity: 0.9}, base)).addTo(this.leaflet);
			this._route = L.polyline(lls, L.Util.extend({className: 'lm-route', color: '#2563c9', weight: 5, opacity: 1}, base)).addTo(this.leaflet);
		} else {
			this._routeCasing.setLatLngs(lls);
			this._route.setLatLngs(lls);
		}
		return this;
	}

	fit(coords, opts) {
		opts = opts || {};
		const lls = toLatLngs(coords);
		if (!lls.length) return this;
		const maxZoom = opts.maxZoom != null ? opts.maxZoom : 16;
		const animate = !reducedMotion() && opts.animate !== false;
		if (lls.length === 1) {
			this.leaflet.setView(lls[0], Math.min(maxZoom, this.leaflet.getMaxZoom()), {animate});
			return this;
		}
		const p = opts.padding != null ? opts.padding : 40;
		this.leaflet.fitBounds(L.latLngBounds(lls), {padding: [p, p], maxZoom, animate});
		return this;
	}

	addMarker(id, lon, lat, opts) {
		opts = opts || {};
		const className = 'lm-marker' + (opts.className ? ' ' + opts.className : '');
		const label = opts.label || opts.title || '';
		let m = this._markers.get(id);
		if (!m) {
			const icon = L.divIcon({className, iconSize: opts.iconSize || [16, 16]});
			m = a11yMarker(ll(lon, lat), icon, label, opts.title || '', 0).addTo(this.leaflet);
			m._lmClass = className;
			this._markers.set(id, m);
			return m;
		}
		m.setLatLng(ll(lon, lat));
		m._lmLabel = label;
		m._lmTitle = opts.title || '';
		if (m._lmClass !== className) {
			const el = m.getElement();
			if (el) {
				el.classList.remove(...m._lmClass.split(/\s+/).filter(Boolean));
				el.classList.add(...className.split(/\s+/).filter(Boolean));
			}
			m.options.icon.options.className = className;
			m._lmClass = className;
		}
		setA11y(m, label, m._lmTitle);
		return m;
	}

	removeMarker(id) {
		const m = this._markers.get(id);
		if (m) {
			m.remove();
			this._markers.delete(id);
		}
		return this;
	}

	remove() {
		this._cancelAnim(false);
		this.leaflet.remove();
	}
}

window.LastmileMap = {
	create(element, opts) {
		return new LastmileMapView(element, opts);
	},
	VectorRoadLayer,
	styles: STYLES,
};
