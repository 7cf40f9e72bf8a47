// Issue 20, on the phone: the app installs (Chromium's own installability check), its
// service worker keeps only the app shell, and with the network cut a page behind a login
// shows the offline page, never a stored copy. Called by walk.mjs with its helpers `t`:
// { base, check, pageAt, persistentAt, patientWithRecord, problems }.

// What the service worker may keep: the shell, nothing personal.
const SHELL = new Set([
  '/offline', '/static/style.css', '/static/app.js', '/static/icon.svg', '/static/icon-192.png',
  '/static/icon-512.png', '/static/icon-maskable-512.png', '/manifest.webmanifest',
]);

export async function installWalk(t, viewport) {
  const { base, check } = t;
  const { context, page, close } = await t.persistentAt(viewport);
  await page.goto(`${base}/`);
  await page.evaluate(() => navigator.serviceWorker.ready);
  const cdp = await context.newCDPSession(page);
  const { installabilityErrors } = await cdp.send('Page.getInstallabilityErrors');
  check(installabilityErrors.length === 0, `installable: Chromium reports no installability errors (${JSON.stringify(installabilityErrors)})`);
  const app = await cdp.send('Page.getAppManifest');
  check(app.errors.length === 0, `the manifest parses clean (${JSON.stringify(app.errors)})`);
  const manifest = JSON.parse(app.data);
  const sizes = manifest.icons.map((i) => `${i.sizes} ${i.purpose}`);
  check(sizes.includes('192x192 any') && sizes.includes('512x512 any') && sizes.includes('512x512 maskable'),
    `icons 192 and 512 px and a maskable one (${sizes})`);
  check(manifest.display === 'standalone' && manifest.start_url === '/' && manifest.theme_color, 'standalone, start_url and theme colour');

  // A patient's pages, signed in: none of them is kept.
  const user = `pwa-${viewport.width}-${Date.now() % 100000}`;
  const recordId = await t.patientWithRecord(page, user, { name: 'Paula Offline', birth: '1984-02-29', condition: 'Migraine' });
  await page.goto(`${base}/patient/records/${recordId}`);
  check(await page.getByText('Paula Offline').first().isVisible(), 'online: the record shows');
  await page.goto(`${base}/patient/access-log`);
  const cached = await page.evaluate(async () => {
    const out = [];
    for (const name of await caches.keys()) {
      const cache = await caches.open(name);
      for (const r of await cache.keys()) out.push(new URL(r.url).pathname + new URL(r.url).search);
    }
    return out;
  });
  check(cached.includes('/offline'), `the offline page is cached (${cached})`);
  const kept = cached.filter((p) => !SHELL.has(p));
  check(kept.length === 0, `the service worker keeps the app shell only (${kept})`);

  await context.setOffline(true);
  await page.goto(`${base}/patient/records/${recordId}`);
  check(await page.getByRole('heading', { name: 'You are offline' }).isVisible(), 'offline: a page behind the login shows the offline page');
  const text = await page.locator('body').textContent();
  check(!text.includes('Paula') && !text.includes('Migraine') && !text.includes(user), 'and nothing of the record or the account');
  check(await page.getByText('need a connection', { exact: false }).count() + await page.getByText('needs a connection').count() > 0, 'it says the records need a connection');
  await context.setOffline(false);
  await page.goto(`${base}/patient/records/${recordId}`);
  check(await page.getByText('Paula Offline').first().isVisible(), 'back online: the record again');
  await close();
}
