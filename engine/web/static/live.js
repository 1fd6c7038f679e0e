// The dispatcher's live view: the vans and their open stops on a map
// (LastmileMap + Leaflet), kept current from GET /v1/live every 5 s and
// at once (debounced) when the event stream (GET /v1/events/stream,
// server-sent events named by event type) says something happened; a list
// of the vans, most at risk first; the latest 50 events. Clicking a van (on
// the map or in the list) selects it: its stops stand out and its route
// through them is drawn along the roads (GET /v1/route; straight lines
// until that answers). Text from the data (ids, driver names, tracking
// numbers) is set with textContent only; nothing becomes markup.
//
// body[data-ready="1"] once the first answer of /v1/live is drawn;
// body[data-polls] counts the polls done (answered or failed).
(function () {
  'use strict';
  var root = document.getElementById('live');
  if (!root) return;
  var body = document.body;
  var L = window.L;

  var POLL_MS = 5000, HIDDEN_POLL_MS = 30000, MAX_BACKOFF_MS = 15000;
  var FEED_MAX = 50;
  var RISKS = ['late', 'at_risk', 'on_time', 'unknown'];
  var RISK_LABEL = {on_time: 'on time', at_risk: 'at risk', late: 'late', unknown: 'unknown'};
  var RADIUS = {late: 7, at_risk: 6.5, on_time: 5, unknown: 4.5};
  // Event types the engine and callers emit: each is an SSE event name.
  var EVENT_TYPES = ['shipped', 'at_facility', 'in_transit', 'at_depot', 'exception', 'out_for_delivery', 'stops_away',
    'arriving_soon', 'eta_changed', 'delayed', 'arrived', 'delivered', 'failed', 'cancelled', 'rerouted'];
  var EVENT_LABEL = {shipped: 'Shipped', at_facility: 'At facility', in_transit: 'In transit', at_depot: 'At depot',
    exception: 'Exception', out_for_delivery: 'Out for delivery', stops_away: 'Stops away', arriving_soon: 'Arriving soon',
    eta_changed: 'ETA changed', delayed: 'Delayed', arrived: 'Arrived', delivered: 'Delivered', failed: 'Failed',
    cancelled: 'Cancelled', rerouted: 'Rerouted'};

  var mapEl = document.getElementById('live-map');
  var emptyEl = document.getElementById('live-empty');
  var listEl = document.getElementById('van-list');
  var countEl = document.getElementById('van-count');
  var statusEl = document.getElementById('live-status');
  var updatedEl = document.getElementById('live-updated');
  var banner = document.getElementById('live-banner');
  var bannerText = document.getElementById('live-banner-text');
  var signinLink = document.getElementById('live-signin');
  var feedEl = document.getElementById('events');
  var feedEmpty = document.getElementById('events-empty');
  var detail = document.getElementById('van-detail');
  var detailVan = document.getElementById('detail-van');
  var detailStops = document.getElementById('detail-stops');

  function reducedMotion() {
    return !!(window.matchMedia && window.matchMedia('(prefers-reduced-motion: reduce)').matches);
  }

  function pt(c) {
    return Array.isArray(c) && c.length >= 2 && isFinite(c[0]) && isFinite(c[1]) && c[0] !== null && c[1] !== null
      ? L.latLng(+c[1], +c[0]) : null;
  }

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text != null) e.textContent = text;
    return e;
  }

  // Times are shown in the stops' own time zone (time_zone of /v1/live),
  // not the browser's: a dispatcher abroad sees the recipients' clock.
  // fleetZone is the zone most of the stops have, for the event feed and
  // the update time; the browser's when none is given.
  var FORMATS = {
    clock: {hour: '2-digit', minute: '2-digit'},
    sec: {hour: '2-digit', minute: '2-digit', second: '2-digit'},
    day: {day: 'numeric', month: 'short'}
  };
  var formatters = {};
  var fleetZone = '';
  var zoneOf = new Map(); // tracking -> time zone
  function fmt(kind, tz) {
    var key = kind + '|' + (tz || '');
    if (!formatters[key]) {
      var o = Object.assign({}, FORMATS[kind]);
      if (tz) o.timeZone = tz;
      try { formatters[key] = new Intl.DateTimeFormat(undefined, o); } catch (e) { formatters[key] = new Intl.DateTimeFormat(undefined, FORMATS[kind]); }
    }
    return formatters[key];
  }
  function clock(t, kind, tz) {
    if (typeof t !== 'number' || !isFinite(t) || t <= 0) return '';
    var d = new Date(t * 1000);
    var z = tz || fleetZone;
    var s = fmt(kind || 'clock', z).format(d);
    var day = fmt('day', z);
    if (day.format(d) !== day.format(new Date())) s = day.format(d) + ' ' + s;
    return s;
  }
  // noteZones learns each stop's zone and the fleet's from an answer.
  function noteZones(list) {
    var count = {};
    list.forEach(function (v) {
      (v.stops || []).forEach(function (s) {
        if (typeof s.time_zone !== 'string' || !s.time_zone) return;
        zoneOf.set(s.tracking, s.time_zone);
        count[s.time_zone] = (count[s.time_zone] || 0) + 1;
      });
    });
    var best = '', n = 0;
    Object.keys(count).forEach(function (z) { if (count[z] > n) { best = z; n = count[z]; } });
    if (best) fleetZone = best;
  }
  var browserZone = (function () { try { return Intl.DateTimeFormat().resolvedOptions().timeZone || ''; } catch (e) { return ''; } })();

  function risk(s) {
    return RISK_LABEL[s && s.risk] ? s.risk : 'unknown';
  }

  // ---------------------------------------------------------------------
  // State

  var view = null; // LastmileMapView, made at the first position
  var vans = new Map(); // id -> {v, marker, anim, item}
  var stops = new Map(); // stop id -> {layer, tipEl, van, risk}
  var order = []; // van ids in list order
  var selected = null;
  var route = null;
  // The selected van's road, from GET /v1/route through its position and
  // its open stops in order (ROAD_STOPS at most): key names the van and
  // its stops, pts is the geometry ([lat, lng]), at when it was fetched.
  // Until it comes (or when it fails), straight lines stand in for it.
  var ROAD_STOPS = 24, ROAD_TTL_MS = 60000;
  var road = {key: '', pts: null, at: 0, pending: false};
  var fitted = false;

  function setClass(layer, cls, on) {
    var e = layer && layer.getElement && layer.getElement();
    if (e) e.classList.toggle(cls, !!on);
  }

  // ---------------------------------------------------------------------
  // Map

  function ensureMap(points) {
    if (view || !window.LastmileMap) return view;
    if (!points.length) return null;
    var b = L.latLngBounds(points);
    view = window.LastmileMap.create(mapEl, {center: [b.getCenter().lng, b.getCenter().lat], zoom: 12, interactive: true,
      label: mapEl.getAttribute('aria-label')});
    view.leaflet.on('click', function () { select(null); });
    return view;
  }

  function fitAll(animate) {
    if (!view) return;
    var pts = [];
    vans.forEach(function (x) {
      var p = pt(x.v.location);
      if (p) pts.push(p);
      (x.v.stops || []).forEach(function (s) { var q = pt(s.location); if (q) pts.push(q); });
    });
    if (!pts.length) return;
    view.leaflet.fitBounds(L.latLngBounds(pts), {padding: [30, 30], maxZoom: 15, animate: !!animate && !reducedMotion()});
  }

  function vanTitle(v) {
    return 'Van ' + v.id + (v.driver ? ', ' + v.driver : '') + ': ' + (v.late || 0) + ' late, ' + (v.at_risk || 0) +
      ' at risk, ' + (v.done || 0) + ' of ' + (v.total || 0) + ' done';
  }

  function vanRisk(v) {
    return v.late > 0 ? 'late' : v.at_risk > 0 ? 'at_risk' : 'on_time';
  }

  function makeVanMarker(x, at) {
    var box = el('span', 'live-van-box');
    box.appendChild(el('span', 'live-van-dot'));
    x.labelEl = el('span', 'live-van-label', x.v.id);
    box.appendChild(x.labelEl);
    var icon = L.divIcon({className: 'live-van', html: box, iconSize: [0, 0], iconAnchor: [0, 0]});
    var m = L.marker(at, {icon: icon, keyboard: true, zIndexOffset: 1000, riseOnHover: true});
    m.on('click', function (e) {
      L.DomEvent.stopPropagation(e); // a Leaflet event: marks it stopped, the map does not see it
      select(x.v.id === selected ? null : x.v.id, true);
    });
    m.on('add', function () { decorateVan(x); });
    return m;
  }

  function decorateVan(x) {
    var e = x.marker && x.marker.getElement();
    if (!e) return;
    e.setAttribute('role', 'button');
    e.setAttribute('aria-label', vanTitle(x.v));
    e.setAttribute('aria-pressed', x.v.id === selected ? 'true' : 'false');
    e.title = vanTitle(x.v);
    RISKS.forEach(function (r) { e.classList.toggle('risk-' + r, vanRisk(x.v) === r); });
    e.classList.toggle('selected', x.v.id === selected);
    e.classList.toggle('stale', x.v.status && x.v.status !== 'active');
    if (x.labelEl.textContent !== x.v.id) x.labelEl.textContent = x.v.id;
  }

  // Move a van's marker to p: a short glide (no jump), none when motion is
  // reduced or the van is far away (a new day, a fix after a gap).
  function moveVan(x, p) {
    var m = x.marker;
    if (x.anim) { cancelAnimationFrame(x.anim); x.anim = 0; }
    var from = m.getLatLng();
    var d = from.distanceTo(p);
    if (reducedMotion() || d < 0.5 || d > 5000 || document.hidden) { m.setLatLng(p); return; }
    var t0 = performance.now(), dur = 1200;
    var step = function (now) {
      var k = Math.min(1, (now - t0) / dur);
      var e = k < 0.5 ? 2 * k * k : 1 - Math.pow(-2 * k + 2, 2) / 2;
      m.setLatLng([from.lat + (p.lat - from.lat) * e, from.lng + (p.lng - from.lng) * e]);
      x.anim = k < 1 ? requestAnimationFrame(step) : 0;
    };
    x.anim = requestAnimationFrame(step);
  }

  function stopText(s, v) {
    var parts = ['#' + (s.position != null ? s.position : '?') + ' ' + (s.tracking || ''), 'van ' + v.id];
    if (s.eta && s.eta.arrival) parts.push('ETA ' + clock(s.eta.arrival, 'clock', s.time_zone));
    if (Array.isArray(s.time_window) && s.time_window.length === 2) parts.push('window ' + clock(s.time_window[0], 'clock', s.time_zone) + '–' + clock(s.time_window[1], 'clock', s.time_zone));
    parts.push(RISK_LABEL[risk(s)]);
    return parts.join(' · ');
  }

  function drawStops(list) {
    var seen = new Set();
    list.forEach(function (v) {
      (v.stops || []).forEach(function (s) {
        var p = pt(s.location);
        if (!p || s.id == null) return;
        var key = String(s.id);
        seen.add(key);
        var r = risk(s);
        var x = stops.get(key);
        if (!x) {
          x = {tipEl: el('span', 'live-stop-tip')};
          x.layer = L.circleMarker(p, {className: 'live-stop risk-' + r, radius: RADIUS[r], weight: 1.5, fillOpacity: 0.95,
            bubblingMouseEvents: false});
          x.layer.bindTooltip(x.tipEl, {direction: 'top', offset: [0, -4]});
          x.layer.on('click', function (e) {
            L.DomEvent.stopPropagation(e); // a Leaflet event: marks it stopped, the map does not see it
            select(x.van, true);
          });
          x.layer.addTo(view.leaflet);
          stops.set(key, x);
        } else {
          x.layer.setLatLng(p);
          x.layer.setRadius(RADIUS[r]);
        }
        if (x.risk !== r) {
          RISKS.forEach(function (k) { setClass(x.layer, 'risk-' + k, k === r); });
          x.risk = r;
        }
        x.van = v.id;
        x.tipEl.textContent = stopText(s, v);
      });
    });
    stops.forEach(function (x, key) {
      if (!seen.has(key)) { x.layer.remove(); stops.delete(key); }
    });
  }

  function drawSelection(refit) {
    var x = selected != null ? vans.get(selected) : null;
    if (!x) selected = null;
    stops.forEach(function (s) {
      setClass(s.layer, 'selected', selected != null && s.van === selected);
      setClass(s.layer, 'dim', selected != null && s.van !== selected);
      if (selected != null && s.van === selected) s.layer.bringToFront();
    });
    vans.forEach(decorateVan);
    vans.forEach(function (y) {
      if (y.item) y.item.setAttribute('aria-pressed', y.v.id === selected ? 'true' : 'false');
    });
    var pts = [];
    if (x) {
      var p = pt(x.v.location);
      if (p) pts.push(p);
      (x.v.stops || []).forEach(function (s) { var q = pt(s.location); if (q) pts.push(q); });
    }
    if (view && pts.length >= 2) {
      fetchRoad(x);
      var onRoads = !!road.pts && road.key === roadKey(x);
      var line = onRoads ? road.pts : pts;
      if (!route) {
        route = L.polyline(line, {className: 'live-route', weight: 4, opacity: 0.9, interactive: false, lineJoin: 'round'}).addTo(view.leaflet);
      } else {
        route.setLatLngs(line);
      }
      var path = route.getElement && route.getElement();
      if (path) path.setAttribute('data-roads', onRoads ? '1' : '0');
      route.bringToBack();
    } else if (route) {
      route.remove();
      route = null;
    }
    if (refit && view && pts.length) {
      view.leaflet.fitBounds(L.latLngBounds(pts), {padding: [40, 40], maxZoom: 16, animate: !reducedMotion()});
    }
    drawDetail(x);
  }

  // roadKey names a van's road: its id and its open stops, in order.
  function roadKey(x) {
    return x.v.id + '|' + (x.v.stops || []).slice(0, ROAD_STOPS).map(function (s) {
      return String(s.location);
    }).join(';');
  }

  // fetchRoad asks for the road from the van's position through its open
  // stops, once at a time and again only when they change or the last
  // answer is ROAD_TTL_MS old, then redraws the selection with it.
  function fetchRoad(x) {
    var key = roadKey(x);
    if (road.pending || (road.key === key && Date.now() - road.at < ROAD_TTL_MS)) return;
    var coords = [x.v.location].concat((x.v.stops || []).slice(0, ROAD_STOPS).map(function (s) { return s.location; }))
      .filter(function (c) { return pt(c); });
    if (coords.length < 2) return;
    var url = '/v1/route/' + coords.map(function (c) { return (+c[0]).toFixed(6) + ',' + (+c[1]).toFixed(6); }).join(';') +
      '?overview=full&geometries=geojson';
    road.pending = true;
    fetch(url, {credentials: 'same-origin', headers: {Accept: 'application/json'}})
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (j) {
        var g = j && j.routes && j.routes[0] && j.routes[0].geometry;
        road = {key: key, at: Date.now(), pending: false, pts: null};
        if (g && Array.isArray(g.coordinates)) {
          road.pts = g.coordinates.map(pt).filter(Boolean);
          if (road.pts.length < 2) road.pts = null;
        }
        if (road.pts && selected === x.v.id) drawSelection(false);
      })
      .catch(function () { road = {key: key, at: Date.now(), pending: false, pts: null}; });
  }

  function drawDetail(x) {
    if (!detail) return;
    if (!x) { detail.hidden = true; return; }
    detail.hidden = false;
    detailVan.textContent = x.v.id + (x.v.driver ? ' (' + x.v.driver + ')' : '');
    detailStops.textContent = '';
    var list = x.v.stops || [];
    if (!list.length) detailStops.appendChild(el('li', 'hint', 'No open stops.'));
    list.forEach(function (s) {
      var li = el('li', 'detail-stop');
      var r = risk(s);
      li.appendChild(el('span', 'swatch risk-' + r));
      li.appendChild(el('span', 'pos', '#' + (s.position != null ? s.position : '?')));
      li.appendChild(el('span', 'trk', s.tracking || ''));
      li.appendChild(el('span', 'eta', s.eta && s.eta.arrival ? clock(s.eta.arrival, 'clock', s.time_zone) : '–'));
      li.appendChild(el('span', 'risk-text', RISK_LABEL[r]));
      detailStops.appendChild(li);
    });
  }

  function select(id, refit) {
    selected = id;
    drawSelection(!!refit && id != null);
  }

  // ---------------------------------------------------------------------
  // The list of vans

  function compareVans(a, b) {
    return (b.late || 0) - (a.late || 0) || (b.at_risk || 0) - (a.at_risk || 0) ||
      ((b.total || 0) - (b.done || 0)) - ((a.total || 0) - (a.done || 0)) ||
      (String(a.id) < String(b.id) ? -1 : String(a.id) > String(b.id) ? 1 : 0);
  }

  function fillItem(btn, v) {
    btn.textContent = '';
    var top = el('span', 'van-top');
    top.appendChild(el('span', 'van-id', v.id));
    if (v.driver) top.appendChild(el('span', 'van-driver', v.driver));
    if (v.status && v.status !== 'active') top.appendChild(el('span', 'van-status', v.status));
    btn.appendChild(top);
    var mid = el('span', 'van-counts');
    mid.appendChild(el('span', 'badge risk-late' + (v.late ? '' : ' zero'), (v.late || 0) + ' late'));
    mid.appendChild(el('span', 'badge risk-at_risk' + (v.at_risk ? '' : ' zero'), (v.at_risk || 0) + ' at risk'));
    mid.appendChild(el('span', 'van-done', (v.done || 0) + '/' + (v.total || 0) + ' done'));
    btn.appendChild(mid);
    var bar = document.createElement('progress');
    bar.className = 'van-progress';
    bar.max = Math.max(v.total || 0, 1);
    bar.value = Math.min(v.done || 0, bar.max);
    bar.setAttribute('aria-hidden', 'true');
    btn.appendChild(bar);
    var next = (v.stops || [])[0];
    var eta = next && next.eta && next.eta.arrival ? clock(next.eta.arrival, 'clock', next.time_zone) : '';
    btn.appendChild(el('span', 'van-next', next ? 'Next stop ' + (next.tracking || '') + (eta ? ' · ETA ' + eta : ' · no ETA') : 'No open stops'));
    if (!pt(v.location)) btn.appendChild(el('span', 'van-nopos', 'No position yet'));
  }

  function drawList(list) {
    var sorted = list.slice().sort(compareVans);
    var focused = document.activeElement;
    var ids = sorted.map(function (v) { return v.id; });
    var same = ids.length === order.length && ids.every(function (id, i) { return id === order[i]; });
    sorted.forEach(function (v) {
      var x = vans.get(v.id);
      if (!x.item) {
        x.item = el('button', 'van-item');
        x.item.type = 'button';
        x.item.addEventListener('click', function () { select(x.v.id === selected ? null : x.v.id, true); });
        x.li = el('li');
        x.li.appendChild(x.item);
      }
      x.item.dataset.van = v.id;
      x.item.classList.toggle('risk-late', v.late > 0);
      x.item.classList.toggle('risk-at_risk', !(v.late > 0) && v.at_risk > 0);
      fillItem(x.item, v);
    });
    if (!same) {
      sorted.forEach(function (v) { listEl.appendChild(vans.get(v.id).li); });
      if (focused && focused !== document.activeElement && document.contains(focused)) focused.focus();
    }
    order = ids;
    countEl.textContent = '(' + sorted.length + ')';
    if (!sorted.length) {
      if (!listEl.querySelector('.none')) listEl.appendChild(el('li', 'none hint', 'No van is on the road.'));
    } else {
      var none = listEl.querySelector('.none');
      if (none) none.remove();
    }
  }

  // ---------------------------------------------------------------------
  // One answer of /v1/live

  function draw(d) {
    var list = (d && Array.isArray(d.vehicles) ? d.vehicles : []).filter(function (v) {
      return v && typeof v === 'object' && v.id != null;
    });
    list.forEach(function (v) { v.id = String(v.id); });
    var points = [];
    list.forEach(function (v) {
      var p = pt(v.location);
      if (p) points.push(p);
      (v.stops || []).forEach(function (s) { var q = pt(s.location); if (q) points.push(q); });
    });
    noteZones(list);
    ensureMap(points);
    if (emptyEl) emptyEl.hidden = !!view || points.length > 0;
    var seen = new Set();
    list.forEach(function (v) {
      seen.add(v.id);
      var x = vans.get(v.id);
      if (!x) { x = {anim: 0}; vans.set(v.id, x); }
      x.v = v;
      var p = pt(v.location);
      if (view && p) {
        if (!x.marker) {
          x.marker = makeVanMarker(x, p);
          x.marker.addTo(view.leaflet);
        } else {
          if (!view.leaflet.hasLayer(x.marker)) x.marker.setLatLng(p).addTo(view.leaflet);
          else moveVan(x, p);
        }
      } else if (x.marker) {
        x.marker.remove();
      }
    });
    vans.forEach(function (x, id) {
      if (seen.has(id)) return;
      if (x.anim) cancelAnimationFrame(x.anim);
      if (x.marker) x.marker.remove();
      if (x.li) x.li.remove();
      vans.delete(id);
    });
    if (view) drawStops(list);
    drawList(list);
    if (selected != null && !vans.has(selected)) selected = null;
    drawSelection(false);
    if (view && !fitted) {
      fitAll(false);
      fitted = true;
    }
    if (typeof d.time === 'number') {
      updatedEl.textContent = 'Updated ' + clock(d.time, 'sec') + (fleetZone && fleetZone !== browserZone ? ' (' + fleetZone + ' time)' : '');
    }
  }

  // ---------------------------------------------------------------------
  // Polling

  var pollTimer = 0, inFlight = false, again = false, failures = 0, polls = 0;
  var ready = false, streamStarted = false;
  var soonTimer = 0, soonFirst = 0;

  function showBanner(state) {
    if (!banner) return;
    if (!state) { banner.hidden = true; return; }
    banner.hidden = false;
    banner.dataset.state = state;
    bannerText.textContent = state === 'auth' ? 'Your session has ended.' : 'Connection lost. Retrying…';
    if (signinLink) signinLink.hidden = state !== 'auth';
  }

  function schedule() {
    clearTimeout(pollTimer);
    var wait = document.hidden ? HIDDEN_POLL_MS : POLL_MS;
    if (failures) wait = Math.min(POLL_MS * Math.pow(2, failures - 1), MAX_BACKOFF_MS);
    pollTimer = setTimeout(poll, wait);
  }

  function poll() {
    clearTimeout(pollTimer);
    clearTimeout(soonTimer);
    soonTimer = 0;
    soonFirst = 0;
    if (inFlight) { again = true; return; }
    inFlight = true;
    var auth = false;
    fetch('/v1/live', {credentials: 'same-origin', cache: 'no-store', headers: {Accept: 'application/json'}})
      .then(function (r) {
        if (r.status === 401 || r.status === 403) auth = true;
        if (!r.ok) throw new Error('/v1/live: HTTP ' + r.status);
        return r.json();
      })
      .then(function (d) {
        d = d && typeof d === 'object' ? d : {};
        draw(d);
        failures = 0;
        showBanner(null);
        setStatus();
        if (!ready) { ready = true; body.dataset.ready = '1'; }
        if (typeof d.cursor === 'number' && !(cursor > 0)) cursor = d.cursor;
      })
      .catch(function (e) {
        failures++;
        showBanner(auth ? 'auth' : 'lost');
        setStatus();
        if (window.console && !auth) console.warn('live: ' + (e && e.message));
      })
      .then(function () {
        inFlight = false;
        polls++;
        body.dataset.polls = String(polls);
        if (!streamStarted) { streamStarted = true; connect(); }
        if (again) { again = false; poll(); } else schedule();
      });
  }

  // A refresh soon after an event: events come in bursts, so wait for a
  // quiet 800 ms, but no longer than 3 s after the first.
  function refreshSoon() {
    var now = Date.now();
    if (!soonFirst) soonFirst = now;
    clearTimeout(soonTimer);
    soonTimer = setTimeout(poll, Math.max(0, Math.min(800, soonFirst + 3000 - now)));
  }

  document.addEventListener('visibilitychange', function () {
    if (!document.hidden) poll();
  });
  var retry = document.getElementById('live-retry');
  if (retry) retry.addEventListener('click', function () { failures = 0; poll(); if (!es) connect(); });

  // ---------------------------------------------------------------------
  // Event feed

  var cursor = parseInt(root.getAttribute('data-after') || '0', 10) || 0;
  var es = null, esFailures = 0, esTimer = 0, lastSeen = 0;
  var feed = []; // newest first
  var feedDirty = false;

  // The header's state: the polls' when they fail, else the stream's.
  var streamState = ['connecting', 'Connecting…'];
  function setStatus(state, text) {
    if (state) streamState = [state, text];
    var s = failures ? ['lost', 'Offline'] : streamState;
    statusEl.dataset.state = s[0];
    statusEl.textContent = s[1];
  }

  function connect() {
    clearTimeout(esTimer);
    if (!window.EventSource) { setStatus('polling', 'Updating every 5 s'); return; }
    if (es) es.close();
    es = new EventSource('/v1/events/stream' + (cursor > 0 ? '?after=' + encodeURIComponent(String(cursor)) : ''));
    EVENT_TYPES.concat(['message']).forEach(function (t) { es.addEventListener(t, onEvent); });
    es.onopen = function () { esFailures = 0; setStatus('live', 'Live'); };
    es.onerror = function () {
      if (!es) return;
      if (es.readyState === EventSource.CLOSED) {
        // Refused (a status other than 200, e.g. the session ended): the
        // browser gives up; try again later from the last event seen.
        es.close();
        es = null;
        esFailures++;
        setStatus('lost', 'Events paused');
        esTimer = setTimeout(connect, Math.min(2000 * Math.pow(2, esFailures), 60000));
      } else {
        setStatus('connecting', 'Reconnecting…');
      }
    };
  }

  function onEvent(m) {
    var e;
    try { e = JSON.parse(m.data); } catch (x) { return; }
    if (!e || typeof e !== 'object') return;
    var c = parseInt(m.lastEventId, 10) || (typeof e.cursor === 'number' ? e.cursor : 0);
    if (c) {
      if (c <= lastSeen) return; // seen (a reconnect may send it again)
      lastSeen = c;
      cursor = Math.max(cursor, c);
    }
    feed.unshift({cursor: c, type: String(e.type || m.type || ''), tracking: e.tracking == null ? '' : String(e.tracking),
      time: typeof e.time === 'number' ? e.time : 0, data: e.data && typeof e.data === 'object' ? e.data : {}});
    if (feed.length > FEED_MAX) feed.length = FEED_MAX;
    if (!feedDirty) {
      feedDirty = true;
      requestAnimationFrame(renderFeed);
    }
    refreshSoon();
  }

  function eventDetail(e) {
    var d = e.data;
    if (e.type === 'stops_away' && typeof d.stops === 'number') {
      return d.stops === 0 ? 'next stop' : d.stops === 1 ? '1 stop away' : d.stops + ' stops away';
    }
    if (e.type === 'failed' && d.reason) return String(d.reason).replace(/_/g, ' ');
    if (d.vehicle) return String(d.vehicle);
    return '';
  }

  function renderFeed() {
    feedDirty = false;
    feedEl.textContent = '';
    feed.forEach(function (e) {
      var li = el('li', 'event ev-' + e.type.replace(/[^a-z0-9_]/gi, ''));
      li.appendChild(el('span', 'ev-type', EVENT_LABEL[e.type] || e.type));
      li.appendChild(el('span', 'ev-tracking', e.tracking));
      var t = el('time', 'ev-time', clock(e.time, 'sec', zoneOf.get(e.tracking)));
      if (e.time) t.dateTime = new Date(e.time * 1000).toISOString();
      li.appendChild(t);
      var det = eventDetail(e);
      if (det) li.appendChild(el('span', 'ev-detail', det));
      feedEl.appendChild(li);
    });
    if (feedEmpty) feedEmpty.hidden = feed.length > 0;
  }

  // ---------------------------------------------------------------------

  var fitBtn = document.getElementById('fit-all');
  if (fitBtn) fitBtn.addEventListener('click', function () { select(null); fitAll(true); });
  var closeBtn = document.getElementById('detail-close');
  if (closeBtn) closeBtn.addEventListener('click', function () { select(null); });
  document.addEventListener('keydown', function (e) {
    if (e.key === 'Escape' && selected != null) select(null);
  });

  body.dataset.polls = '0';
  poll();
})();
