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
  var mapEl = document.getElementById('map');

  function num(el, name) {
    var v = el.getAttribute(name);
    return v === null || v === '' ? null : parseFloat(v);
  }

  function setText(id, value) {
    var el = document.getElementById(id);
    if (el && el.textContent !== value) el.textContent = value || '';
  }

  function initMap() {
    if (!mapEl || !window.LastmileMap) return;
    var slon = num(mapEl, 'data-stop-lon'), slat = num(mapEl, 'data-stop-lat');
    map = window.LastmileMap.create(mapEl, {center: [slon, slat], zoom: 15, interactive: true});
    map.setStop(slon, slat, {label: mapEl.getAttribute('aria-label')});
    var vlon = num(mapEl, 'data-van-lon'), vlat = num(mapEl, 'data-van-lat');
    if (vlon !== null && vlat !== null) {
      map.setVan(vlon, vlat, {});
      map.fit([[slon, slat], [vlon, vlat]], {padding: 40, maxZoom: 16});
    }
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

  initMap();
  if (status !== 'delivered' && status !== 'cancelled') connect();
})();
