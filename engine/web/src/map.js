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

// Draw the "roads" layer. sub: which part of the source tile this canvas
// shows when overzooming (dx, dy in sub-tile units, scale = 2^(z-16)).
function drawRoads(canvas, layer, z, sub) {
	const ctx = paintBackground(canvas);
	if (!layer || !layer.length) return;
	const px = canvas.width / TILE_SIZE; // device px per CSS px
	const extent = layer.extent || 4096;
	const k = (canvas.width * sub.scale) / extent; // tile units -> device px
	const ox = sub.dx * canvas.width;
	const oy = sub.dy * canvas.height;

	// Bucket features by class, keeping only what is drawn at this zoom.
	const buckets = STYLES.map(() => []);
	for (let i = 0; i < layer.length; i++) {
		const f = layer.feature(i);
		if (f.type !== 2) continue; // LineString only
		let ci = CLASS_INDEX[f.properties.class];
		if (ci === undefined) ci = OTHER;
		if (z < STYLES[ci][1].minz) continue;
		buckets[ci].push({geom: f.loadGeometry(), oneway: f.properties.oneway == 1});
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
