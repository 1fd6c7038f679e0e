// lastmile driver app: the stop list, actions through an offline outbox
// (IndexedDB), proof of delivery, messages. No framework; user text only
// ever goes through textContent / text nodes, never innerHTML.
'use strict';
(() => {
  // ---- UI texts (English; the first paint's texts are in driver.html) ----
  const T = {
    status: { planned: 'Planned', out_for_delivery: 'On the way', arrived: 'Arrived', delivered: 'Delivered', failed: 'Failed', cancelled: 'Cancelled', handed_over: 'Handed to another van' },
    reasons: [
      ['not_home', 'Nobody home'],
      ['refused', 'Refused by the recipient'],
      ['address_not_found', 'Address not found'],
      ['access', 'No access (gate, door code)'],
      ['damaged', 'Parcel damaged'],
      ['other', 'Other'],
    ],
    waiting: 'waiting to send',
    progress: (d, n) => `${d} of ${n} done`,
    stop: n => `Stop ${n}`,
    eta: t => `ETA ${t}`,
    window: w => `Window ${w}`,
    instructions: 'Instructions',
    hasInstructions: 'Has instructions',
    navigate: 'Navigate', arrived: 'Arrived', delivered: 'Delivered', failed: 'Failed',
    messages: 'Messages', messagesN: n => `Messages (${n})`,
    allDone: 'All stops are done. Well done!', noStops: 'No stops on your route yet.',
    actions: n => (n === 1 ? '1 action' : `${n} actions`),
    offline: 'Offline', offlineQ: n => `Offline — ${T.actions(n)} waiting`,
    sending: n => `Sending ${T.actions(n)}…`,
    retry: n => `${T.actions(n)} waiting — will retry`,
    expiredQ: n => `${T.actions(n)} waiting to send`,
    signinQ: n => `${T.actions(n)} waiting — sign in to send`,
    queueLabel: n => `${T.actions(n)} waiting to send`,
    updated: t => `updated ${t}`,
    dropped: (s, what, msg) => `${s}: “${what}” was not saved — ${msg}`,
    what: { pod: 'Proof of delivery', message: 'Message' },
    serverError: code => `server said ${code}`,
    dismiss: 'Dismiss',
    proofFor: s => `Stop ${s.position} · ${s.name}`,
    needProof: 'Take a photo or ask for a signature.',
    photoBusy: 'Preparing the photo…', photoReady: kb => `Photo ready (${kb} kB)`,
    photoBad: 'This photo could not be read. Try again, or ask for a signature.',
    locating: 'Getting location…', confirm: 'Confirm delivery',
    retake: 'Retake photo', take: 'Take photo',
    pickReason: 'Choose a reason.',
    you: 'You', recipient: 'Recipient',
    noMessages: 'No messages yet.', loadingMessages: 'Loading…', threadOffline: 'Offline: showing saved messages.',
    saveFailed: e => `Could not save this on the phone (storage full?) ${e}`.trim(),
    logoutPending: n => `${T.actions(n)} not sent yet. They will be sent after you sign in again on this phone. Sign out?`,
  };
  const REASON = Object.fromEntries(T.reasons);
  const OPEN = new Set(['planned', 'out_for_delivery', 'arrived']);
  const ROUTE_EVERY = 30e3, QUEUE_EVERY = 15e3, GEO_WAIT = 10e3, PHOTO_MAX = 1600;

  const $ = id => document.getElementById(id);
  const unix = () => Math.floor(Date.now() / 1000);
  const csrf = () => { const m = document.querySelector('meta[name="csrf-token"]'); return m ? m.content : ''; };
  const uuid = () => {
    if (crypto.randomUUID) return crypto.randomUUID();
    const b = crypto.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 15) | 64; b[8] = (b[8] & 63) | 128;
    const x = [...b].map(v => v.toString(16).padStart(2, '0')).join('');
    return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`;
  };
  // h builds an element; string children become text nodes (never markup).
  function h(tag, attrs, ...kids) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v == null || v === false) continue;
      if (k === 'class') el.className = v;
      else el.setAttribute(k, v === true ? '' : String(v));
    }
    for (const k of kids.flat()) if (k != null && k !== false) el.append(k);
    return el;
  }

  // ---- storage: IndexedDB (outbox + key/value), memory when unavailable ----
  const DB = (() => {
    let dbp = null;
    const mem = { outbox: [], kv: new Map() };
    const open = () => dbp || (dbp = new Promise((res, rej) => {
      if (!window.indexedDB) return rej(new Error('no IndexedDB'));
      const r = indexedDB.open('lastmile-driver', 1);
      r.onupgradeneeded = () => {
        const d = r.result;
        d.createObjectStore('outbox', { keyPath: 'key' }).createIndex('seq', 'seq');
        d.createObjectStore('kv');
      };
      r.onsuccess = () => { const d = r.result; d.onversionchange = () => d.close(); res(d); };
      r.onerror = () => rej(r.error);
    }).catch(() => null));
    const run = (store, mode, fn) => open().then(d => d && new Promise((res, rej) => {
      const t = d.transaction(store, mode);
      let out;
      t.oncomplete = () => res(out && out.result !== undefined && out instanceof IDBRequest ? out.result : out);
      t.onerror = t.onabort = () => rej(t.error);
      out = fn(t.objectStore(store));
    }));
    return {
      async list() {
        const d = await open();
        if (!d) return mem.outbox.slice();
        return run('outbox', 'readonly', s => s.index('seq').getAll());
      },
      // add appends items in order, after the last queued one (atomically).
      async add(items) {
        const d = await open();
        if (!d) { let seq = mem.outbox.reduce((m, x) => Math.max(m, x.seq), 0); for (const it of items) it.seq = ++seq, mem.outbox.push(it); return; }
        await run('outbox', 'readwrite', s => {
          s.index('seq').openCursor(null, 'prev').onsuccess = e => {
            let seq = e.target.result ? e.target.result.value.seq : 0;
            for (const it of items) { it.seq = ++seq; s.add(it); }
          };
        });
      },
      async del(key) {
        const d = await open();
        if (!d) { mem.outbox = mem.outbox.filter(x => x.key !== key); return; }
        await run('outbox', 'readwrite', s => { s.delete(key); });
      },
      async get(k) {
        const d = await open();
        if (!d) return mem.kv.get(k);
        return run('kv', 'readonly', s => s.get(k)).catch(() => undefined);
      },
      async put(k, v) {
        const d = await open();
        if (!d) { mem.kv.set(k, v); return; }
        await run('kv', 'readwrite', s => { s.put(v, k); }).catch(() => {});
      },
      async clearKV() {
        const d = await open();
        if (!d) { mem.kv.clear(); return; }
        await run('kv', 'readwrite', s => { s.clear(); }).catch(() => {});
      },
    };
  })();
  const bc = window.BroadcastChannel ? new BroadcastChannel('lastmile-driver') : null;

  // ---- state ----
  const app = $('app');
  const lang = document.documentElement.lang || undefined;
  const S = {
    vehicle: app ? app.dataset.vehicle : '',
    stops: [],          // the server's view, route order
    updated: 0,         // ms of the last route from the server
    queue: [],          // the outbox, FIFO
    netDown: false,     // the last request failed on the network
    expired: false,     // 401/403: sign in again
    sending: false,
    retryAt: 0, tries: 0,
    gen: 0,             // bumped when a send changes a stop; older route fetches are stale
  };

  // ---- stops: from the server-rendered DOM, from the API ----
  const num = v => { const n = parseFloat(v); return Number.isFinite(n) ? n : 0; };
  const txt = (el, sel) => { const e = el.querySelector(sel); return e ? e.textContent : ''; };
  function fromDOM() {
    return [...document.querySelectorAll('#app .stop[data-stop-id]')].map(el => {
      const d = el.dataset;
      return {
        id: +d.stopId, position: +d.position || 0, tracking: d.tracking || '', status: d.status || 'planned', reason: '',
        name: txt(el, '.stop-name'), address: txt(el, '.stop-address'), instructions: txt(el, '.stop-instructions-text'),
        lat: num(d.lat), lon: num(d.lon), eta: d.eta || '', window: d.window || '', messages: +d.messages || 0, tz: '',
      };
    }).sort((a, b) => a.position - b.position);
  }
  const fmts = new Map();
  function hm(t, tz) {
    const k = tz || '';
    if (!fmts.has(k)) {
      const o = { hour: '2-digit', minute: '2-digit', hourCycle: 'h23' };
      let f;
      try { f = new Intl.DateTimeFormat(lang, tz ? { ...o, timeZone: tz } : o); } catch (e) { f = new Intl.DateTimeFormat(lang, o); }
      fmts.set(k, f);
    }
    return fmts.get(k).format(new Date(t * 1000));
  }
  function fromAPI(s) {
    const loc = s.location || [0, 0], tz = s.tz || '';
    const w = s.time_window;
    return {
      id: s.id, position: s.position || 0, tracking: s.tracking || '', status: s.status || 'planned', reason: s.reason || '',
      name: s.name || '', address: s.address || '', instructions: s.instructions || '',
      lat: +loc[1] || 0, lon: +loc[0] || 0, tz,
      eta: s.eta && s.eta.arrival ? hm(s.eta.arrival, tz) : '',
      window: w && w[0] && w[1] ? `${hm(w[0], tz)}–${hm(w[1], tz)}` : '',
      messages: s.messages || 0,
    };
  }
  // view: the server's stops with the queued actions applied (optimistic UI).
  function view() {
    const stops = S.stops.map(s => ({ ...s, pending: false, queuedMsgs: 0 }));
    const by = new Map(stops.map(s => [s.id, s]));
    for (const it of S.queue) {
      const m = it.meta || {}, s = by.get(m.stop);
      if (!s) continue;
      if (m.kind === 'status' && (OPEN.has(s.status) || s.status === m.status)) {
        s.status = m.status; s.reason = m.reason || ''; s.pending = true;
      } else if (m.kind === 'message') s.queuedMsgs++;
      else if (m.kind === 'pod') s.pending = true;
    }
    return stops;
  }
  const isOpen = s => OPEN.has(s.status);
  function current(stops) {
    return stops.find(s => s.status === 'arrived') || stops.find(isOpen) || null;
  }
  const stopOf = id => view().find(s => s.id === id);

  // ---- rendering ----
  const geoHref = s => {
    const ll = `${(+s.lat).toFixed(6)},${(+s.lon).toFixed(6)}`;
    // iOS has no geo: handler; Apple Maps takes the same coordinates.
    return /iPad|iPhone|iPod/.test(navigator.userAgent) || (/Macintosh/.test(navigator.userAgent) && navigator.maxTouchPoints > 1)
      ? `https://maps.apple.com/?daddr=${ll}` : `geo:${ll}?q=${ll}`;
  };
  function statusText(s) {
    let t = T.status[s.status] || s.status;
    if (s.status === 'failed' && s.reason) t += ` · ${REASON[s.reason] || s.reason}`;
    if (s.pending) t += ` · ${T.waiting}`;
    return t;
  }
  const badge = s => h('span', { class: 'stop-status', 'data-status': s.status, 'data-pending': s.pending && 'true' }, statusText(s));
  const data = (s, cls) => ({
    id: `stop-${s.id}`, class: `stop ${cls}`, 'data-stop-id': s.id, 'data-status': s.status, 'data-pending': s.pending && 'true',
    'data-position': s.position, 'data-tracking': s.tracking, 'data-lat': s.lat, 'data-lon': s.lon,
    'data-eta': s.eta, 'data-window': s.window, 'data-messages': s.messages,
  });
  const pos = s => h('span', { class: 'stop-pos', 'aria-label': T.stop(s.position) }, String(s.position));
  const msgN = s => s.messages + s.queuedMsgs;
  const times = s => (s.eta || s.window) && h('p', { class: 'stop-times' },
    s.eta && h('span', { class: 'stop-eta' }, T.eta(s.eta)), s.window && h('span', { class: 'stop-window' }, T.window(s.window)));
  const instr = s => s.instructions && h('div', { class: 'stop-instructions' },
    h('h3', { class: 'stop-instructions-title' }, T.instructions), h('p', { class: 'stop-instructions-text' }, s.instructions));
  const actions = s => h('div', { class: 'stop-actions' },
    h('a', { class: 'btn btn-nav', 'data-action': 'navigate', href: geoHref(s) }, T.navigate),
    s.status !== 'arrived' && h('button', { type: 'button', class: 'btn btn-arrived', 'data-action': 'arrived' }, T.arrived),
    h('button', { type: 'button', class: 'btn btn-ok', 'data-action': 'delivered' }, T.delivered),
    h('button', { type: 'button', class: 'btn btn-bad', 'data-action': 'failed' }, T.failed),
    h('button', { type: 'button', class: 'btn btn-ghost', 'data-action': 'messages' }, h('span', null, `${T.messages} (`, h('span', { class: 'msg-count' }, String(msgN(s))), ')')));
  const top = (s, withPos) => h('div', { class: 'stop-top' }, withPos && pos(s), badge(s), s.tracking && h('span', { class: 'stop-tracking' }, s.tracking));

  function currentCard(s) {
    return h('article', data(s, 'stop-current'), top(s, true),
      h('h2', { class: 'stop-name' }, s.name), h('p', { class: 'stop-address' }, s.address),
      times(s), instr(s), actions(s));
  }
  function upcomingItem(s, open) {
    return h('li', data(s, 'stop-upcoming'), h('details', { class: 'stop-more', open },
      h('summary', { class: 'stop-summary' }, pos(s),
        h('span', { class: 'stop-main' }, h('span', { class: 'stop-name' }, s.name), h('span', { class: 'stop-address' }, s.address)),
        h('span', { class: 'stop-side' }, s.eta && h('span', { class: 'stop-eta-short' }, s.eta),
          s.pending && h('span', { class: 'stop-flag stop-flag-pending', title: T.waiting, 'aria-label': T.waiting }, '⇡'),
          s.instructions && h('span', { class: 'stop-flag', title: T.hasInstructions, 'aria-label': T.hasInstructions }, '!'))),
      h('div', { class: 'stop-body' }, top(s, false), times(s), instr(s), actions(s))));
  }
  function doneItem(s) {
    return h('li', data(s, 'stop-done'), pos(s),
      h('span', { class: 'stop-main' }, h('span', { class: 'stop-name' }, s.name), badge(s), h('span', { class: 'stop-address' }, s.address)),
      h('button', { type: 'button', class: 'btn btn-small btn-ghost', 'data-action': 'messages', 'aria-label': T.messagesN(msgN(s)) },
        '✉ ', h('span', { class: 'msg-count' }, String(msgN(s)))));
  }

  let lastSig = '';
  function render() {
    renderBanner();
    if (!app) return;
    if (thread.id) renderThread();
    const stops = view();
    const sig = JSON.stringify([S.vehicle, stops]);
    if (sig === lastSig) return;
    lastSig = sig;
    const cur = current(stops);
    const upcoming = stops.filter(s => isOpen(s) && s !== cur);
    const done = stops.filter(s => !isOpen(s));
    // keep what the driver opened and where the focus was
    const opened = new Set([...document.querySelectorAll('#upcoming details[open]')].map(d => d.closest('.stop').dataset.stopId));
    const fa = document.activeElement;
    const focus = fa && fa.closest && fa.closest('#app .stop') && fa.dataset.action
      ? [fa.closest('.stop').dataset.stopId, fa.dataset.action] : null;

    $('vehicle').textContent = S.vehicle;
    document.title = `${S.vehicle} · lastmile driver`;
    // The progress counts the driver's own stops: not those cancelled or
    // handed to another van.
    const mine = stops.filter(s => s.status !== 'cancelled' && s.status !== 'handed_over');
    const served = mine.filter(s => !isOpen(s)).length;
    $('progress-text').textContent = T.progress(served, mine.length);
    const bar = $('progress-bar');
    bar.max = Math.max(mine.length, 1); bar.value = served;
    $('current').replaceChildren(cur ? currentCard(cur) : h('p', { class: 'empty' }, stops.length ? T.allDone : T.noStops));
    $('upcoming').replaceChildren(...upcoming.map(s => upcomingItem(s, opened.has(String(s.id)))));
    $('done-list').replaceChildren(...done.map(doneItem));
    $('done-count').textContent = String(done.length);
    if (focus) {
      const el = document.querySelector(`#stop-${focus[0]} [data-action="${focus[1]}"]`);
      if (el) el.focus({ preventScroll: true });
    }
  }

  function renderBanner() {
    const n = S.queue.length, q = $('queue-count');
    if (q) {
      q.textContent = String(n); q.dataset.count = String(n); q.hidden = n === 0;
      q.setAttribute('aria-label', T.queueLabel(n)); q.title = T.queueLabel(n);
    }
    const b = $('conn-banner');
    if (!b) return;
    const offline = !navigator.onLine || S.netDown;
    let state = 'online', text = '';
    if (!app && n) { state = 'expired'; text = T.signinQ(n); } else if (S.expired) { state = 'expired'; text = n ? T.expiredQ(n) : ''; } else if (offline) { state = 'offline'; text = n ? T.offlineQ(n) : T.offline; } else if (n && S.sending) { state = 'sending'; text = T.sending(n); } else if (n && S.retryAt > Date.now()) { state = 'retry'; text = T.retry(n); } else if (n) { state = 'sending'; text = T.sending(n); }
    b.dataset.state = state;
    b.dataset.count = String(n);
    if (b.textContent !== text) b.textContent = text;
    document.body.classList.toggle('is-offline', offline);
  }

  // ---- notices (server refusals, session) ----
  function notice(text) {
    const ul = $('notices');
    if (!ul) return;
    const li = h('li', { class: 'notice notice-error' }, h('span', { class: 'notice-text' }, text),
      h('button', { type: 'button', class: 'btn-icon notice-close', 'aria-label': T.dismiss }, '×'));
    ul.append(li);
  }
  function setExpired(v) {
    if (S.expired === v) return;
    S.expired = v;
    const n = $('session-notice');
    if (n) n.hidden = !v;
    renderBanner();
    if (!v) drain(true);
  }

  // ---- network ----
  function net(p) {
    return p.then(r => { S.netDown = false; return r; }, e => { S.netDown = true; renderBanner(); throw e; });
  }
  async function errorText(r) {
    try { const j = await r.json(); if (j && j.message) return String(j.message); } catch (e) { /* not JSON */ }
    return T.serverError(r.status);
  }
  let routeBusy = false;
  async function refreshRoute() {
    if (!app || routeBusy) return;
    routeBusy = true;
    const gen = S.gen;
    let again = false;
    try {
      const r = await net(fetch('/v1/driver/route', { headers: { Accept: 'application/json' }, cache: 'no-store', credentials: 'same-origin' }));
      if (r.status === 401 || r.status === 403) { setExpired(true); return; }
      if (!r.ok) return;
      const d = await r.json();
      setExpired(false);
      if (gen !== S.gen) { again = true; return; }
      S.vehicle = d.vehicle || S.vehicle;
      S.stops = (d.stops || []).map(fromAPI).sort((a, b) => a.position - b.position);
      S.updated = Date.now();
      DB.put('route', { vehicle: S.vehicle, stops: S.stops, updated: S.updated });
      render();
    } catch (e) {
      renderBanner();
    } finally {
      routeBusy = false;
      if (again) setTimeout(refreshRoute, 0);
    }
  }

  // ---- the outbox ----
  async function loadQueue() {
    try { S.queue = await DB.list(); } catch (e) { /* keep the last copy */ }
  }
  // enqueue appends actions (in this order) and starts the sender; false
  // when this phone could not store them (storage full).
  async function enqueue(items) {
    const list = items.map(x => {
      const key = uuid();
      const headers = { 'Idempotency-Key': key, 'X-CSRF-Token': csrf() };
      if (!x.form) headers['Content-Type'] = 'application/json';
      return { key, seq: 0, method: 'POST', url: x.url, headers, body: x.form ? null : x.body, form: x.form || null, meta: x.meta, created: Date.now() };
    });
    try { await DB.add(list); } catch (e) { notice(T.saveFailed(e && e.name || e)); return false; }
    await loadQueue();
    render();
    if (bc) bc.postMessage('queue');
    if (navigator.vibrate) navigator.vibrate(30);
    drain(true);
    return true;
  }
  function build(it) {
    // The CSRF token of this page: a queue kept over a new sign-in has a new one.
    const headers = { ...it.headers, 'Idempotency-Key': it.key, 'X-CSRF-Token': csrf(), Accept: 'application/json' };
    let body = it.body;
    if (it.form) {
      body = new FormData();
      for (const [k, v, file] of it.form) if (file) body.append(k, v, file); else body.append(k, v);
      delete headers['Content-Type'];
    }
    return [it.url, { method: it.method, headers, body, credentials: 'same-origin', cache: 'no-store' }];
  }
  let draining = false, drainAgain = false, retryTimer = 0;
  function drain(force) {
    if (!app && !force) return;
    if (draining) { drainAgain = drainAgain === 'force' || force ? 'force' : true; return; }
    if (!force && (S.expired || Date.now() < S.retryAt)) return;
    if (force) S.retryAt = 0;
    draining = true;
    const go = () => sendAll();
    const p = navigator.locks ? navigator.locks.request('lastmile-driver-outbox', { ifAvailable: true }, l => (l ? go() : null)) : go();
    p.catch(() => {}).then(() => {
      draining = false; S.sending = false;
      renderBanner();
      if (drainAgain) { const f = drainAgain === 'force'; drainAgain = false; drain(f); }
    });
  }
  function backoff(after) {
    S.tries++;
    const d = after || Math.min(60e3, 2e3 * 2 ** (S.tries - 1)) * (0.75 + Math.random() / 2);
    S.retryAt = Date.now() + d;
    clearTimeout(retryTimer);
    retryTimer = setTimeout(() => drain(), d + 50);
  }
  async function sendAll() {
    if (!app) return; // the sign-in page has no session: keep the queue
    let changed = false;
    for (;;) {
      await loadQueue();
      const it = S.queue[0];
      if (!it) { S.tries = 0; S.retryAt = 0; break; }
      S.sending = true; renderBanner();
      const [url, init] = build(it);
      const ac = new AbortController(), t = setTimeout(() => ac.abort(), it.form ? 120e3 : 20e3);
      let r;
      try {
        r = await net(fetch(url, { ...init, signal: ac.signal }));
      } catch (e) {
        backoff(); break; // offline or timed out: the same key next time
      } finally { clearTimeout(t); }
      if (r.ok) {
        S.tries = 0;
        await applied(it, r);
        await DB.del(it.key);
        changed = true;
        continue;
      }
      if (r.status === 401 || r.status === 403) { setExpired(true); break; }
      if ([408, 425, 429].includes(r.status) || r.status >= 500) {
        const ra = parseInt(r.headers.get('Retry-After'), 10);
        backoff(ra > 0 ? Math.min(ra, 600) * 1e3 : 0); break;
      }
      // Refused (409 already delivered, 422, ...): drop it, tell the driver.
      const msg = await errorText(r);
      await DB.del(it.key);
      changed = true;
      const s = S.stops.find(x => x.id === (it.meta || {}).stop);
      const m = it.meta || {};
      notice(T.dropped(s ? T.proofFor(s) : it.url, m.kind === 'status' ? T.status[m.status] || m.status : T.what[m.kind] || it.url, msg));
    }
    await loadQueue();
    S.sending = false;
    if (bc && changed) bc.postMessage('queue');
    render();
    if (changed) refreshRoute();
  }
  async function applied(it, r) {
    const m = it.meta || {};
    let j = null;
    try { j = await r.json(); } catch (e) { /* empty body */ }
    if (m.kind === 'status' && j && j.id) {
      const s = S.stops.find(x => x.id === j.id);
      if (s) { s.status = j.status || m.status; s.reason = j.reason || ''; }
      S.gen++;
      DB.put('route', { vehicle: S.vehicle, stops: S.stops, updated: S.updated });
    } else if (m.kind === 'message') {
      const s = S.stops.find(x => x.id === m.stop);
      if (s) s.messages++;
      S.gen++;
      if (thread.id === m.stop) setTimeout(loadThread, 0);
    }
  }

  // ---- actions ----
  const statusURL = id => `/v1/stops/${id}/status`;
  function setStatus(id, status, reason, time) {
    const body = { status, time: time || unix() };
    if (reason) body.reason = reason;
    return enqueue([{ url: statusURL(id), body: JSON.stringify(body), meta: { stop: id, kind: 'status', status, reason: reason || '' } }]);
  }
  function openDialog(d) {
    if (d.open) return;
    if (d.showModal) d.showModal(); else d.setAttribute('open', '');
  }
  function closeDialog(d) { if (d.open) { if (d.close) d.close(); else d.removeAttribute('open'); } }

  // failed: the reason picker
  let failStop = 0;
  function openFail(s) {
    failStop = s.id;
    $('fail-stop').textContent = T.proofFor(s);
    $('fail-error').textContent = '';
    for (const r of document.querySelectorAll('#fail-reasons input')) r.checked = false;
    openDialog($('fail'));
  }
  function initFail() {
    const fs = $('fail-reasons');
    for (const [v, label] of T.reasons) {
      fs.append(h('label', { class: 'choice', for: `fail-reason-${v}` },
        h('input', { type: 'radio', name: 'reason', value: v, id: `fail-reason-${v}`, 'data-reason': v }), h('span', null, label)));
    }
    $('fail-form').addEventListener('submit', e => {
      e.preventDefault();
      const r = document.querySelector('#fail-reasons input:checked');
      if (!r) { $('fail-error').textContent = T.pickReason; return; }
      const id = failStop;
      failStop = 0;
      closeDialog($('fail'));
      if (id) setStatus(id, 'failed', r.value);
    });
    $('fail-cancel').addEventListener('click', () => closeDialog($('fail')));
  }

  // delivered: the proof panel (photo, signature, name)
  const proof = { id: 0, photo: null, photoURL: '', geo: null, busy: false };
  const pad = { strokes: [], cur: null, pid: null, ctx: null, dpr: 1 };
  function padSize() {
    const c = $('proof-signature'), r = c.getBoundingClientRect();
    if (!r.width) return;
    pad.dpr = Math.min(window.devicePixelRatio || 1, 3);
    c.width = Math.round(r.width * pad.dpr); c.height = Math.round(r.height * pad.dpr);
    pad.ctx = c.getContext('2d');
    padDraw();
  }
  function padDraw() {
    const c = $('proof-signature'), x = pad.ctx;
    if (!x) return;
    x.setTransform(pad.dpr, 0, 0, pad.dpr, 0, 0);
    x.fillStyle = '#fff'; x.fillRect(0, 0, c.width, c.height);
    x.strokeStyle = '#111'; x.fillStyle = '#111'; x.lineWidth = 2.6; x.lineCap = 'round'; x.lineJoin = 'round';
    for (const s of pad.strokes) padStroke(s, 0);
    c.dataset.empty = String(pad.strokes.length === 0);
  }
  function padStroke(s, from) {
    const x = pad.ctx;
    if (!x) return;
    if (s.length === 1) { x.beginPath(); x.arc(s[0][0], s[0][1], 1.6, 0, 7); x.fill(); return; }
    x.beginPath();
    const i0 = Math.max(from - 1, 0);
    x.moveTo(s[i0][0], s[i0][1]);
    for (let i = i0 + 1; i < s.length; i++) x.lineTo(s[i][0], s[i][1]);
    x.stroke();
  }
  function initPad() {
    const c = $('proof-signature');
    const pt = e => { const r = c.getBoundingClientRect(); return [e.clientX - r.left, e.clientY - r.top]; };
    c.addEventListener('pointerdown', e => {
      if (pad.cur && pad.pid !== e.pointerId) return; // a second finger
      e.preventDefault();
      try { c.setPointerCapture(e.pointerId); } catch (err) { /* synthetic pointer */ }
      if (!pad.ctx) padSize();
      pad.pid = e.pointerId; pad.cur = [pt(e)]; pad.strokes.push(pad.cur);
      padStroke(pad.cur, 0);
      c.dataset.empty = 'false';
      $('proof-error').textContent = '';
    });
    c.addEventListener('pointermove', e => {
      if (!pad.cur || e.pointerId !== pad.pid) return;
      e.preventDefault();
      const evs = (e.getCoalescedEvents && e.getCoalescedEvents()) || [];
      const n = pad.cur.length;
      for (const ev of evs.length ? evs : [e]) pad.cur.push(pt(ev));
      padStroke(pad.cur, n);
    });
    const end = e => { if (e.pointerId === pad.pid) { pad.cur = null; pad.pid = null; } };
    c.addEventListener('pointerup', end);
    c.addEventListener('pointercancel', end);
    $('proof-signature-clear').addEventListener('click', () => { pad.strokes = []; pad.cur = null; pad.pid = null; padDraw(); });
    window.addEventListener('resize', () => { if ($('proof').open) padSize(); });
  }
  function setPhoto(blob) {
    if (proof.photoURL) URL.revokeObjectURL(proof.photoURL);
    proof.photoURL = blob ? URL.createObjectURL(blob) : '';
    const img = $('proof-photo-preview');
    if (blob) img.src = proof.photoURL; else img.removeAttribute('src');
    img.hidden = !blob;
    $('proof-photo-remove').hidden = !blob;
    $('proof-photo-button').textContent = blob ? T.retake : T.take;
  }
  // downscale: max PHOTO_MAX px on the long side, JPEG 0.85.
  async function downscale(file) {
    const url = URL.createObjectURL(file);
    try {
      const img = new Image();
      img.src = url;
      await img.decode();
      const w = img.naturalWidth, hgt = img.naturalHeight, k = Math.min(1, PHOTO_MAX / Math.max(w, hgt));
      const c = document.createElement('canvas');
      c.width = Math.max(1, Math.round(w * k)); c.height = Math.max(1, Math.round(hgt * k));
      const x = c.getContext('2d');
      x.fillStyle = '#fff'; x.fillRect(0, 0, c.width, c.height);
      x.drawImage(img, 0, 0, c.width, c.height);
      const blob = await new Promise(res => c.toBlob(res, 'image/jpeg', 0.85));
      if (!blob) throw new Error('toBlob');
      return blob;
    } finally { URL.revokeObjectURL(url); }
  }
  function locate() {
    // Resolves to a position or null (denied, unavailable, 10 s).
    return new Promise(res => {
      if (!navigator.geolocation) return res(null);
      const t = setTimeout(() => res(null), GEO_WAIT);
      navigator.geolocation.getCurrentPosition(p => { clearTimeout(t); res(p); }, () => { clearTimeout(t); res(null); },
        { enableHighAccuracy: true, timeout: GEO_WAIT, maximumAge: 30e3 });
    });
  }
  function openProof(s) {
    proof.id = s.id; proof.photo = null; proof.busy = false;
    setPhoto(null);
    $('proof-photo').value = '';
    $('proof-photo-status').textContent = '';
    $('proof-name').value = '';
    $('proof-error').textContent = '';
    $('proof-stop').textContent = T.proofFor(s);
    $('proof-confirm').disabled = false;
    $('proof-confirm').textContent = T.confirm;
    pad.strokes = []; pad.cur = null; pad.pid = null;
    openDialog($('proof'));
    padSize();
    proof.geo = locate();
  }
  function initProof() {
    const input = $('proof-photo');
    input.addEventListener('change', () => {
      const f = input.files && input.files[0];
      if (!f) return;
      const st = $('proof-photo-status');
      st.textContent = T.photoBusy;
      $('proof-error').textContent = '';
      const p = downscale(f);
      proof.photo = p;
      p.then(b => { if (proof.photo !== p) return; setPhoto(b); st.textContent = T.photoReady(Math.round(b.size / 1024)); },
        () => { if (proof.photo !== p) return; proof.photo = null; setPhoto(null); st.textContent = T.photoBad; });
    });
    $('proof-photo-remove').addEventListener('click', () => {
      proof.photo = null; input.value = ''; setPhoto(null); $('proof-photo-status').textContent = '';
    });
    $('proof-cancel').addEventListener('click', () => closeDialog($('proof')));
    $('proof').addEventListener('close', () => { proof.id = 0; setPhoto(null); });
    $('proof-form').addEventListener('submit', async e => {
      e.preventDefault();
      if (proof.busy || !proof.id) return;
      const time = unix(), id = proof.id, btn = $('proof-confirm');
      proof.busy = true; btn.disabled = true;
      try {
        const photo = proof.photo ? await proof.photo.catch(() => null) : null;
        const signed = pad.strokes.length > 0;
        // Photo or signature; without a photo the signature is the proof
        // and must not be empty.
        if (!photo && !signed) { $('proof-error').textContent = T.needProof; return; }
        const sig = signed ? await new Promise(res => $('proof-signature').toBlob(res, 'image/png')) : null;
        btn.textContent = T.locating;
        const p = await proof.geo;
        const form = [];
        if (photo) form.push(['photo', photo, 'photo.jpg']);
        if (sig) form.push(['signature', sig, 'signature.png']);
        const name = $('proof-name').value.trim();
        if (name) form.push(['name', name]);
        if (p && p.coords) {
          form.push(['lon', String(p.coords.longitude)], ['lat', String(p.coords.latitude)], ['accuracy', String(Math.round(p.coords.accuracy || 0))]);
        }
        form.push(['time', String(time)]);
        if (proof.id !== id) return; // closed meanwhile
        const queued = await enqueue([
          { url: `/v1/stops/${id}/pod`, form, meta: { stop: id, kind: 'pod' } },
          { url: statusURL(id), body: JSON.stringify({ status: 'delivered', time }), meta: { stop: id, kind: 'status', status: 'delivered' } },
        ]);
        if (queued) closeDialog($('proof'));
        else $('proof-error').textContent = T.saveFailed('');
      } finally {
        proof.busy = false; btn.disabled = false; btn.textContent = T.confirm;
      }
    });
  }

  // messages: a thread per stop
  const thread = { id: 0, messages: [], loading: false, offline: false, fresh: false, timer: 0 };
  function renderThread() {
    const s = stopOf(thread.id);
    if (!s) return;
    $('thread-stop').textContent = T.proofFor(s);
    const tz = s.tz;
    const items = thread.messages.map(m => ({ ...m, pending: false }));
    for (const it of S.queue) {
      const m = it.meta || {};
      if (m.kind === 'message' && m.stop === thread.id) items.push({ from: 'driver', text: m.text, time: m.time, pending: true });
    }
    const list = $('thread-list');
    const atEnd = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
    list.replaceChildren(...items.map(m => h('li', { class: `msg msg-${m.from === 'driver' ? 'driver' : 'recipient'}`, 'data-pending': m.pending && 'true', 'data-id': m.id },
      h('p', { class: 'msg-text' }, String(m.text || '')),
      h('p', { class: 'msg-meta' }, `${m.from === 'driver' ? T.you : m.from === 'recipient' || !m.from ? T.recipient : String(m.from)}${m.time ? ` · ${hm(m.time, tz)}` : ''}${m.pending ? ` · ${T.waiting}` : ''}`))));
    $('thread-status').textContent = thread.loading && !items.length ? T.loadingMessages : thread.offline ? T.threadOffline : items.length ? '' : T.noMessages;
    if (atEnd || thread.scroll) { list.scrollTop = list.scrollHeight; thread.scroll = false; }
  }
  async function loadThread() {
    const id = thread.id;
    if (!id || thread.loading) return;
    thread.loading = true;
    renderThread();
    try {
      const r = await net(fetch(`/v1/stops/${id}/messages`, { headers: { Accept: 'application/json' }, cache: 'no-store', credentials: 'same-origin' }));
      if (r.status === 401 || r.status === 403) setExpired(true);
      else if (r.ok) {
        const d = await r.json();
        if (thread.id === id) {
          thread.messages = Array.isArray(d.messages) ? d.messages : [];
          thread.offline = false;
          thread.fresh = true;
          DB.put(`thread:${id}`, thread.messages);
        }
      }
    } catch (e) {
      if (thread.id === id) thread.offline = true;
    } finally {
      thread.loading = false;
      if (thread.id === id) renderThread();
      else if (thread.id) loadThread(); // another thread opened meanwhile
    }
  }
  // openThread shows a stop's thread and loads it from the server at once;
  // the copy saved on the phone fills it meanwhile (and offline), unless the
  // server answered first: a slow IndexedDB never holds the thread back.
  async function openThread(s) {
    thread.id = s.id; thread.messages = []; thread.offline = false; thread.scroll = true; thread.fresh = false;
    $('thread-input').value = '';
    openDialog($('thread'));
    renderThread();
    loadThread();
    clearInterval(thread.timer);
    thread.timer = setInterval(() => { if (!document.hidden) loadThread(); }, QUEUE_EVERY);
    const saved = await DB.get(`thread:${s.id}`);
    if (thread.id === s.id && !thread.fresh && Array.isArray(saved)) {
      thread.messages = saved;
      thread.scroll = true;
      renderThread();
    }
  }
  function initThread() {
    $('thread-close').addEventListener('click', () => closeDialog($('thread')));
    $('thread').addEventListener('close', () => { thread.id = 0; clearInterval(thread.timer); });
    const input = $('thread-input');
    $('thread-form').addEventListener('submit', e => {
      e.preventDefault();
      const text = input.value.trim(), id = thread.id;
      if (!text || !id) return;
      input.value = '';
      thread.scroll = true;
      enqueue([{ url: `/v1/stops/${id}/messages`, body: JSON.stringify({ text }), meta: { stop: id, kind: 'message', text, time: unix() } }]);
    });
    input.addEventListener('keydown', e => {
      if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) { e.preventDefault(); $('thread-form').requestSubmit ? $('thread-form').requestSubmit() : $('thread-send').click(); }
    });
  }

  // ---- wiring ----
  function onAction(e) {
    const b = e.target.closest('[data-action]');
    if (!b || b.dataset.action === 'navigate') return;
    const el = b.closest('.stop');
    const s = el && stopOf(+el.dataset.stopId);
    if (!s) return;
    e.preventDefault();
    switch (b.dataset.action) {
      case 'arrived': setStatus(s.id, 'arrived'); break;
      case 'delivered': openProof(s); break;
      case 'failed': openFail(s); break;
      case 'messages': openThread(s); break;
      default:
    }
  }
  function registerSW() {
    if (!('serviceWorker' in navigator)) return;
    // Scope /driver (the page itself); the server allows it with
    // Service-Worker-Allowed: /driver on /driver/sw.js.
    navigator.serviceWorker.register('/driver/sw.js', { scope: '/driver' }).then(() => navigator.serviceWorker.ready).then(reg => {
      const urls = [...document.querySelectorAll('link[rel~="stylesheet"], link[rel~="icon"], link[rel="apple-touch-icon"], link[rel="manifest"], script[src]')]
        .map(e => e.href || e.src).filter(Boolean);
      if (reg.active) reg.active.postMessage({ type: 'cache', urls });
    }).catch(err => { if (window.console) console.warn('driver: no service worker:', err); });
  }

  async function start() {
    registerSW();
    await loadQueue();
    if (!app) { renderBanner(); return; } // the sign-in page: show what waits
    S.stops = fromDOM();
    // Offline, the page comes from the service worker's cache: the last
    // route the API gave (saved after every refresh) is at least as new.
    const saved = await DB.get('route');
    const useSaved = () => {
      if (saved && saved.vehicle === S.vehicle && Array.isArray(saved.stops) && (S.netDown || !navigator.onLine)) {
        S.stops = saved.stops; S.updated = saved.updated || 0; return true;
      }
      return false;
    };
    useSaved();
    initFail(); initPad(); initProof(); initThread();
    app.addEventListener('click', onAction);
    $('notices').addEventListener('click', e => { const b = e.target.closest('.notice-close'); if (b) b.closest('.notice').remove(); });
    const rb = $('refresh');
    rb.hidden = false;
    rb.addEventListener('click', () => { refreshRoute(); drain(true); });
    $('logout-form').addEventListener('submit', e => {
      if (S.queue.length && !window.confirm(T.logoutPending(S.queue.length))) { e.preventDefault(); return; }
      e.preventDefault();
      const f = e.target;
      DB.clearKV().finally(() => f.submit());
    });
    window.addEventListener('online', () => { S.netDown = false; renderBanner(); drain(true); refreshRoute(); });
    window.addEventListener('offline', renderBanner);
    document.addEventListener('visibilitychange', () => { if (!document.hidden) { refreshRoute(); drain(true); } });
    if (bc) bc.onmessage = () => loadQueue().then(render);
    setInterval(() => { if (!document.hidden) refreshRoute(); }, ROUTE_EVERY);
    setInterval(() => { loadQueue().then(() => { render(); drain(); }); }, QUEUE_EVERY);
    render();
    refreshRoute().then(() => { if (!S.updated && useSaved()) render(); });
    drain(true);
  }
  start();
})();
