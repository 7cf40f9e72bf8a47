// SecureEHR's service worker. It keeps the app shell only — the stylesheet, the icons, the
// manifest, this script's page and the offline page — and never a record, a log, a page
// behind a login or anything personal: every page comes from the network, and when the
// network is gone a page shows the offline page instead.
const CACHE = 'secure-ehr-shell-v1';
const SHELL = [
  '/offline',
  '/static/style.css',
  '/static/app.js',
  '/static/icon.svg',
  '/static/icon-192.png',
  '/static/icon-512.png',
  '/static/icon-maskable-512.png',
  '/manifest.webmanifest',
];

self.addEventListener('install', (event) => {
  event.waitUntil(caches.open(CACHE).then((c) => c.addAll(SHELL)).then(() => self.skipWaiting()));
});

self.addEventListener('activate', (event) => {
  event.waitUntil(
    caches.keys()
      .then((keys) => Promise.all(keys.filter((k) => k !== CACHE).map((k) => caches.delete(k))))
      .then(() => self.clients.claim()),
  );
});

self.addEventListener('fetch', (event) => {
  const request = event.request;
  if (request.method !== 'GET') return;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  if (request.mode === 'navigate') {
    // Pages: always the network; offline, the offline page (never a stored copy).
    event.respondWith(fetch(request).catch(() => caches.match('/offline')));
  } else if (SHELL.includes(url.pathname)) {
    // The shell: the network first (so it is never stale), the cache when offline.
    event.respondWith(fetch(request).catch(() => caches.match(url.pathname)));
  }
  // Anything else (the API, records, documents) is left to the network alone.
});
