// lastmile driver service worker (served at /driver/sw.js, scope /driver).
// The app shell opens offline: /driver network-first (its last good HTML
// kept), /static/* cache-first (versioned URLs), the manifest
// stale-while-revalidate. /v1/* and every non-GET go to the network
// untouched: API answers are never cached (the page keeps its own copy
// and queues actions in IndexedDB).
'use strict';
const SHELL = 'lastmile-driver-shell-v1';
const PAGE = '/driver';
const MANIFEST = '/driver/manifest.webmanifest';
const PAGE_WAIT = 5000; // a slow network: answer from the cache after this

self.addEventListener('install', e => {
  e.waitUntil((async () => {
    const cache = await caches.open(SHELL);
    await Promise.all([PAGE, MANIFEST].map(u => fetch(u, { credentials: 'same-origin', cache: 'no-store' })
      .then(r => keep(cache, u, r)).catch(() => {})));
    await self.skipWaiting();
  })());
});

self.addEventListener('activate', e => {
  e.waitUntil((async () => {
    for (const k of await caches.keys()) if (k.startsWith('lastmile-driver-') && k !== SHELL) await caches.delete(k);
    await self.clients.claim();
  })());
});

// keep stores a good same-origin answer under key; a redirected one is
// stored as a fresh Response (a navigation may not use a redirected one).
async function keep(cache, key, res) {
  if (!res || !res.ok || res.status !== 200 || res.type !== 'basic') return;
  const copy = res.redirected ? new Response(await res.clone().blob(), { status: 200, statusText: res.statusText, headers: res.headers }) : res.clone();
  await cache.put(key, copy);
}

// The page posts its own asset URLs (it was loaded before this worker ran).
self.addEventListener('message', e => {
  const d = e.data;
  if (!d || d.type !== 'cache' || !Array.isArray(d.urls)) return;
  e.waitUntil((async () => {
    const cache = await caches.open(SHELL);
    for (const u of d.urls) {
      let url;
      try { url = new URL(u, self.location.href); } catch (err) { continue; }
      if (url.origin !== self.location.origin || !(url.pathname.startsWith('/static/') || url.pathname === MANIFEST)) continue;
      if (await cache.match(url.href)) continue;
      try { await staticPut(cache, url, await fetch(url.href, { credentials: 'same-origin' })); } catch (err) { /* offline */ }
    }
  })());
});

self.addEventListener('fetch', e => {
  const req = e.request;
  if (req.method !== 'GET') return;
  const url = new URL(req.url);
  if (url.origin !== self.location.origin || url.pathname.startsWith('/v1/')) return;
  if (req.mode === 'navigate' && url.pathname === PAGE) e.respondWith(page(e));
  else if (url.pathname.startsWith('/static/')) e.respondWith(cacheFirst(req, url));
  else if (url.pathname === MANIFEST) e.respondWith(revalidate(e, req));
});

async function page(e) {
  const cache = await caches.open(SHELL);
  const net = fetch(e.request).then(async r => { await keep(cache, PAGE, r); return r; });
  e.waitUntil(net.catch(() => {}));
  let timer;
  const slow = new Promise(res => { timer = setTimeout(res, PAGE_WAIT); });
  try {
    // The network's answer; the cached page when offline or slow.
    const first = await Promise.race([net, slow.then(() => null)]);
    if (first) return first;
    const hit = await cache.match(PAGE, { ignoreSearch: true, ignoreVary: true });
    return hit || await net;
  } catch (err) {
    const hit = await cache.match(PAGE, { ignoreSearch: true, ignoreVary: true });
    return hit || offline();
  } finally { clearTimeout(timer); }
}

function offline() {
  return new Response('<!doctype html><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">' +
    '<title>lastmile driver</title><h1>Offline</h1><p>Open the app once while online; it then works offline.</p>',
  { status: 503, headers: { 'Content-Type': 'text/html; charset=utf-8' } });
}

// staticPut caches a /static/ file and drops its older versions (another
// ?v=; the manifest's unversioned icon URLs are kept beside them).
async function staticPut(cache, url, res) {
  if (!res.ok || res.type !== 'basic') return;
  await cache.put(url.href, res.clone());
  const v = url.searchParams.get('v');
  if (!v) return;
  for (const k of await cache.keys()) {
    const u = new URL(k.url), kv = u.searchParams.get('v');
    if (u.pathname === url.pathname && kv && kv !== v) await cache.delete(k);
  }
}

async function cacheFirst(req, url) {
  const cache = await caches.open(SHELL);
  const hit = await cache.match(req, { ignoreVary: true });
  if (hit) return hit;
  const res = await fetch(req);
  staticPut(cache, url, res).catch(() => {});
  return res;
}

async function revalidate(e, req) {
  const cache = await caches.open(SHELL);
  const hit = await cache.match(req, { ignoreSearch: true, ignoreVary: true });
  const net = fetch(req).then(async r => { await keep(cache, MANIFEST, r); return r; });
  if (hit) { e.waitUntil(net.catch(() => {})); return hit; }
  return net;
}
