import jsQR from 'jsqr';
import { PNG } from 'pngjs';

// Issue 20, on the phone: the app installs (Chromium's own installability check), its
// service worker keeps only the app shell, and with the network cut a page behind a login
// shows the offline page, never a stored copy. Called by walk.mjs with its helpers `t`:
// { base, check, pageAt, persistentAt, patientWithRecord, problems, provider }.

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

// Share by code: a patient makes a QR code for one record; the code is decoded from a
// screenshot by jsqr (an independent decoder) and followed by a signed-in provider, who
// sees the offer, accepts (redeemed on chain by the server) and reads the record. The same
// code again is "already used"; an altered one is "not valid"; neither changes anything.
export async function shareWalk(t, viewport) {
  const { base, check, provider } = t;
  const { context, page, fits } = await t.pageAt(viewport);
  const user = `qr-${viewport.width}-${Date.now() % 100000}`;
  const recordId = await t.patientWithRecord(page, user, { name: 'Quentin Code', birth: '1966-09-09', condition: 'Gout' });
  const other = await (async () => {
    await page.goto(`${base}/patient`);
    await page.getByLabel('Patient Name').fill('Quentin Code');
    await page.getByLabel('Birth Date').fill('1966-09-09');
    await page.getByLabel('Health Condition').fill('Hidden condition');
    await page.getByRole('button', { name: 'Submit' }).click();
    await page.waitForURL(/\/patient\/records\/\d+\/stored/);
    return (await page.getByRole('status').textContent()).match(/with ID: (\d+)/)[1];
  })();
  await page.goto(`${base}/patient/sharing`);
  await page.getByRole('link', { name: 'Share by code' }).click();
  await fits('share by code');
  await page.getByLabel('Records').selectOption(recordId);
  const until = new Date(Date.now() + 7 * 86_400_000).toISOString().slice(0, 10);
  await page.getByLabel('Access expires on').fill(until);
  await page.getByRole('button', { name: 'Make the code' }).click();
  check(await page.getByRole('heading', { name: 'Your sharing code' }).isVisible(), 'the code is made');
  check(await page.getByRole('status').filter({ hasText: '10 minutes' }).isVisible(), 'it says it lasts 10 minutes');
  await fits('the sharing code');
  const qr = page.locator('.qr svg');
  check(await qr.isVisible(), 'the QR code is drawn by the server (SVG)');
  const shot = PNG.sync.read(await qr.screenshot());
  const decoded = jsQR(new Uint8ClampedArray(shot.data), shot.width, shot.height);
  check(decoded !== null, 'jsqr decodes the QR code from a screenshot');
  const link = decoded.data;
  check(link === (await page.locator('#offer-link').textContent()).trim(), 'the code holds the link shown beside it');
  check(link.startsWith(`${base}/offer?o=`), `a link to this server (${link.slice(0, 40)}…)`);
  await context.close();

  // The provider follows the decoded link, signs in, and is back at the offer.
  const doc = await t.pageAt(viewport);
  const p = doc.page;
  await p.goto(link);
  check(await p.getByRole('heading', { name: 'Medical Providers Login' }).isVisible(), 'not signed in: the sign-in page first');
  await p.getByLabel('Username').fill(provider.user);
  await p.getByLabel('Password').fill(provider.pass);
  await p.getByRole('button', { name: 'Sign in' }).click();
  await p.waitForURL(link);
  check(await p.getByRole('heading', { name: 'A patient shares records with you' }).isVisible(), 'the provider sees the offer');
  check(await p.getByText(`Read record ${recordId}`).isVisible(), `what is offered: record ${recordId}`);
  check(await p.getByText(until).first().isVisible(), 'until when');
  await doc.fits('the offer');
  await p.getByRole('button', { name: 'Accept' }).click();
  check(await p.getByRole('heading', { name: 'Shared with you' }).isVisible(), 'accepted');
  await doc.fits('offer accepted');
  await p.getByRole('button', { name: /^Open patient \d+'s records$/ }).click();
  check(await p.getByText('Gout').first().isVisible(), 'the provider reads the offered record');
  check(await p.getByText('Hidden condition').count() === 0, `and not the other (record ${other})`);

  // Once only; an altered code is refused; neither changes anything. (Chromium logs each
  // refusal's status as a console error: those two, and only those, are expected.)
  const before = t.problems.length;
  const again = await p.goto(link);
  check(again.status() === 410, `the used code again: 410 (${again.status()})`);
  check(await p.getByRole('heading', { name: 'This code was already used' }).isVisible(), 'the used code: a clear page');
  const o = new URL(link).searchParams.get('o');
  const flipped = o.slice(0, 30) + (o[30] === 'A' ? 'B' : 'A') + o.slice(31);
  const forged = await p.goto(`${base}/offer?o=${flipped}`);
  check(forged.status() === 400, `an altered code: 400 (${forged.status()})`);
  check(await p.getByRole('heading', { name: 'This code is not valid' }).isVisible(), 'an altered code: a clear page');
  await doc.fits('a refused code');
  const expected = t.problems.splice(before);
  check(expected.length === 2 && expected.every((m) => /status of (410|400)/.test(m)), `only the two refusals were logged (${expected})`);
  await doc.context.close();
}
