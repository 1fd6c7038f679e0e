// The recipient's tracking page: keeps the server-rendered page current
// from the live stream (/track/TOKEN/live, server-sent events), falling back
// to polling /track/TOKEN/view.json; draws the map (LastmileMap) with the
// recipient's stop and, when it may be shown, the van. All text from the
// server is set with textContent: nothing becomes markup.
(function () {
  'use strict';
  var root = document.getElementById('track');
  if (!root) return;
  var token = root.getAttribute('data-token');
  var status = root.getAttribute('data-status');
  var base = '/track/' + encodeURIComponent(token);
  var map = null;
  var early = null; // the last update that came before the map was drawn
  var mapEl = document.getElementById('map');

  function num(el, name) {
    var v = el.getAttribute(name);
    return v === null || v === '' ? null : parseFloat(v);
  }

  function setText(id, value) {
    var el = document.getElementById(id);
    if (el && el.textContent !== value) el.textContent = value || '';
  }

  // The view in which a and b ([lon, lat]) fit el with pad px around
  // them, as Leaflet's fitBounds picks it (Web Mercator, whole zooms): the
  // map starts there rather than at zoom 15 then zooming, which would ask
  // for a first set of tiles of the wrong zoom.
  function fittedView(a, b, el, pad, maxZoom) {
    function my(lat) { var s = Math.sin(lat * Math.PI / 180); return 0.5 - Math.log((1 + s) / (1 - s)) / (4 * Math.PI); }
    var x0 = (a[0] + 180) / 360, x1 = (b[0] + 180) / 360, y0 = my(a[1]), y1 = my(b[1]);
    var w = Math.max(el.clientWidth - 2 * pad, 1), h = Math.max(el.clientHeight - 2 * pad, 1);
    var dx = Math.max(Math.abs(x1 - x0), 1e-12), dy = Math.max(Math.abs(y1 - y0), 1e-12);
    var z = Math.log(Math.min(w / (256 * dx), h / (256 * dy))) / Math.LN2;
    z = Math.max(8, Math.min(maxZoom, Math.floor(Math.round(z * 100) / 100)));
    var lat = Math.atan(Math.sinh(Math.PI * (1 - (y0 + y1)))) * 180 / Math.PI;
    return {center: [(a[0] + b[0]) / 2, lat], zoom: z};
  }

  // mapStyles applies the map's stylesheets, fetched ahead by the page
  // as preloads, then calls done (at once when there are none).
  function mapStyles(done) {
    var links = document.querySelectorAll('link[rel="preload"][as="style"]');
    var left = links.length;
    function one() {
      if (--left === 0) done(); // each link fires load or error, once
    }
    if (!left) { done(); return; }
    Array.prototype.forEach.call(links, function (l) {
      l.addEventListener('load', one);
      l.addEventListener('error', one);
      l.rel = 'stylesheet';
    });
  }

  function initMap() {
    if (!mapEl || !window.LastmileMap) return;
    var slon = num(mapEl, 'data-stop-lon'), slat = num(mapEl, 'data-stop-lat');
    var vlon = num(mapEl, 'data-van-lon'), vlat = num(mapEl, 'data-van-lat');
    var hasVan = vlon !== null && vlat !== null;
    var view = hasVan ? fittedView([slon, slat], [vlon, vlat], mapEl, 40, 16) : {center: [slon, slat], zoom: 15};
    map = window.LastmileMap.create(mapEl, {center: view.center, zoom: view.zoom, interactive: true});
    map.setStop(slon, slat, {label: mapEl.getAttribute('aria-label')});
    if (hasVan) map.setVan(vlon, vlat, {});
  }

  function li(cls, parts) {
    var item = document.createElement('li');
    if (cls) item.className = cls;
    parts.forEach(function (p) {
      var el = document.createElement(p[0]);
      if (p[1]) el.className = p[1];
      el.textContent = p[2];
      item.appendChild(el);
      item.appendChild(document.createTextNode(' '));
    });
    return item;
  }

  function list(id, items, make) {
    var ol = document.getElementById(id);
    if (!ol) return;
    var frag = document.createDocumentFragment();
    items.forEach(function (x) { frag.appendChild(make(x)); });
    if (!items.length) return;
    ol.textContent = '';
    ol.appendChild(frag);
  }

  var lastVan = null, fitted = false;
  function apply(u) {
    if (u.status !== status) {
      // A new state (delivered, failed) changes what the page holds: the
      // server renders it (without the last form's notice).
      window.location.replace(window.location.pathname);
      return;
    }
    setText('headline', u.headline);
    setText('detail', u.detail);
    setText('stops', u.stops);
    setText('promised', u.promised);
    list('timeline', u.timeline || [], function (e) {
      return li('ev-' + e.type, [['span', 'what', e.label], ['time', '', e.time]]);
    });
    list('messages', u.messages || [], function (m) {
      var item = li('from-' + m.from, [['span', 'who', m.who], ['time', '', m.time]]);
      var p = document.createElement('p');
      p.className = 'text';
      p.textContent = m.text;
      item.appendChild(p);
      return item;
    });
    if (!map) early = u;
    var van = u.view && u.view.van;
    var note = document.getElementById('map-note');
    if (map && van) {
      var key = van.location[0] + ',' + van.location[1] + ',' + van.time;
      if (key !== lastVan) {
        map.setVan(van.location[0], van.location[1], {path: van.path || null});
        lastVan = key;
        if (mapEl) {
          mapEl.setAttribute('data-van-lon', String(van.location[0]));
          mapEl.setAttribute('data-van-lat', String(van.location[1]));
        }
      }
      map.setRoute(van.route || null);
      if (!fitted) {
        var s = u.view.location;
        map.fit([[s[0], s[1]], [van.location[0], van.location[1]]], {padding: 40, maxZoom: 16});
        fitted = true;
      }
      if (note) note.hidden = true;
    } else if (map) {
      map.hideVan();
      map.setRoute(null);
      lastVan = null;
      if (note) note.hidden = false;
    }
  }

  var live = document.getElementById('live');
  var pollTimer = null;
  function poll() {
    fetch(base + '/view.json', {credentials: 'omit', cache: 'no-store'}).then(function (r) {
      if (r.status === 404) { window.location.replace(window.location.pathname); return null; }
      return r.ok ? r.json() : null;
    }).then(function (u) { if (u) apply(u); }).catch(function () {}).then(function () {
      pollTimer = setTimeout(poll, 15000);
    });
  }

  function connect() {
    if (!window.EventSource) { poll(); return; }
    var es = new EventSource(base + '/live');
    var failures = 0;
    es.addEventListener('update', function (ev) {
      failures = 0;
      if (live) live.hidden = false;
      try { apply(JSON.parse(ev.data)); } catch (e) { /* a bad frame: wait for the next */ }
    });
    es.onerror = function () {
      if (live) live.hidden = true;
      failures++;
      if (es.readyState === EventSource.CLOSED || failures > 3) {
        es.close();
        if (!pollTimer) poll();
      }
    };
  }

  mapStyles(function () {
    initMap();
    if (map && early) { var u = early; early = null; apply(u); }
  });
  if (status !== 'delivered' && status !== 'cancelled') connect();
})();
