// Issue 20, accessibility: every page — signed out and in each role — passes axe-core
// (injected here, from npm) with no serious or critical violation, in light and dark
// colours; fits 320 px and 200 % text without horizontal scrolling; its touch targets are
// at least 44×44 px (links inside a sentence excepted, as WCAG 2.5.8 does); keyboard focus
// is visible; and `prefers-color-scheme: dark` gives dark pages. Called by walk.mjs with
// its helpers `t`.
import { readFileSync } from 'node:fs';

const AXE = readFileSync(new URL('./node_modules/axe-core/axe.min.js', import.meta.url), 'utf8');
const TAGS = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa', 'best-practice'];

// axe on the page as it is now: the serious and critical violations, described.
async function axe(page) {
  // Runtime.evaluate is not subject to the page's CSP (script-src 'self' stays as served).
  if (!(await page.evaluate(() => typeof window.axe === 'object'))) await page.evaluate(AXE);
  const r = await page.evaluate((tags) => window.axe.run(document, { runOnly: { type: 'tag', values: tags } }), TAGS);
  if (r.passes.length < 10) throw new Error(`axe ran only ${r.passes.length} rules`);
  return r.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.id} (${v.impact}): ${v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join(', ')}`);
}

// Targets smaller than 44×44 px: buttons, fields, and links that stand alone (a link
// whose parent holds nothing but it); a checkbox or radio counts with its label.
function smallTargets() {
  const out = [];
  const visible = (e) => e.getClientRects().length > 0 && getComputedStyle(e).visibility !== 'hidden';
  for (const e of document.querySelectorAll('button, a, input:not([type=hidden]), select, textarea, summary')) {
    if (!visible(e) || e.closest('.skip')) continue;
    if (e.tagName === 'A' && !e.classList.contains('button')) {
      const parent = e.parentElement;
      if (parent.textContent.trim() !== e.textContent.trim()) continue; // inside a sentence
    }
    let box = e.getBoundingClientRect();
    if (e.type === 'checkbox' || e.type === 'radio') {
      const label = e.labels[0];
      if (label) {
        const l = label.getBoundingClientRect();
        box = { width: Math.max(box.right, l.right) - Math.min(box.left, l.left), height: Math.max(box.bottom, l.bottom) - Math.min(box.top, l.top) };
      }
    }
    if (box.width < 44 - 0.5 || box.height < 44 - 0.5) {
      out.push(`${e.tagName.toLowerCase()}${e.name ? `[name=${e.name}]` : ''} "${(e.textContent || e.value || '').trim().slice(0, 30)}" ${Math.round(box.width)}×${Math.round(box.height)}`);
    }
  }
  return out;
}

const overflow = () => document.documentElement.scrollWidth - document.documentElement.clientWidth;

// Every check on the page now showing; `what` names it. `full`: also at 320 px and at
// 200 % text (once per page is enough; the walk does it at the phone size).
export async function audit(t, page, what, full) {
  // AUDIT_SOFT=1 (while mending pages): report every failure and go on.
  const check = process.env.AUDIT_SOFT ? (c, w) => { if (!c) console.log(`  FAIL: ${w}`); } : t.check;
  await page.emulateMedia({ colorScheme: 'light' });
  const light = await axe(page);
  check(light.length === 0, `${what}: axe, light — no serious or critical violation (${light.join(' | ')})`);
  await page.emulateMedia({ colorScheme: 'dark' });
  const bg = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
  const [r, g, b] = bg.match(/\d+/g).map(Number);
  check(r + g + b < 150, `${what}: dark mode honoured (background ${bg})`);
  const dark = await axe(page);
  if (process.env.SCREENSHOT_DIR && full) {
    const name = what.replace(/[^a-z0-9]+/gi, '-').replace(/^-|-$/g, '') || 'home';
    await page.screenshot({ path: `${process.env.SCREENSHOT_DIR}/dark-${name}.png`, fullPage: true });
  }
  check(dark.length === 0, `${what}: axe, dark — no serious or critical violation (${dark.join(' | ')})`);
  await page.emulateMedia({ colorScheme: 'light' });
  const small = await page.evaluate(smallTargets);
  check(small.length === 0, `${what}: touch targets at least 44×44 px (${small.join(', ')})`);
  if (!full) return;
  const size = page.viewportSize();
  await page.setViewportSize({ width: 320, height: 640 });
  const at320 = await page.evaluate(overflow);
  check(at320 <= 0, `${what}: 320 px wide, no horizontal scrolling (${at320} px over)`);
  await page.setViewportSize(size);
  await page.evaluate(() => { document.documentElement.style.fontSize = '200%'; });
  const at200 = await page.evaluate(overflow);
  check(at200 <= 0, `${what}: 200 % text, no horizontal scrolling (${at200} px over)`);
  await page.evaluate(() => { document.documentElement.style.fontSize = ''; });
  // Focus: the first stops of the keyboard's tab order are drawn with an outline.
  await page.evaluate(() => document.activeElement && document.activeElement.blur());
  const unseen = [];
  for (let i = 0; i < 6; i++) {
    await page.keyboard.press('Tab');
    const f = await page.evaluate(() => {
      const e = document.activeElement;
      if (!e || e === document.body) return null;
      const s = getComputedStyle(e);
      return { name: `${e.tagName.toLowerCase()} "${(e.textContent || e.value || '').trim().slice(0, 20)}"`, ok: s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) >= 2 };
    });
    if (f && !f.ok) unseen.push(f.name);
  }
  check(unseen.length === 0, `${what}: keyboard focus is visible (${unseen.join(', ')})`);
}

// Signs in through a login page (`/patients` for patients, `/providers/login` otherwise).
async function signIn(t, page, user, pass, portal) {
  await page.goto(`${t.base}${portal}`);
  const form = portal === '/patients'
    ? page.locator('section', { has: page.getByRole('heading', { name: 'Sign in', exact: true }) })
    : page;
  await form.getByLabel('Username').fill(user);
  await form.getByLabel('Password').fill(pass);
  await form.getByRole('button', { name: 'Sign in' }).click();
}

export async function auditWalk(t, viewport) {
  const { base } = t;
  const full = viewport.width < 600;
  const { context, page } = await t.pageAt(viewport);
  const at = async (path, what) => { await page.goto(`${base}${path}`); await audit(t, page, what || path, full); };

  // Signed out.
  for (const p of ['/', '/patients', '/providers/login', '/offline', '/recover']) await at(p);
  const before = t.problems.length;
  await page.goto(`${base}/no-such-page`);
  await audit(t, page, 'not found', full);
  // Chromium logs the 404 itself as a console error: that one is expected.
  const logged = t.problems.splice(before);
  t.check(logged.length === 1 && /status of 404/.test(logged[0]), `only the 404 was logged (${logged})`);

  // A patient with a record, shared with the provider.
  const user = `a11y-${viewport.width}-${Date.now() % 100000}`;
  const recordId = await t.patientWithRecord(page, user, { name: 'Ada Access', birth: '1990-01-01', condition: 'Low vision' });
  await audit(t, page, 'record stored', full);
  for (const p of ['/patient', '/patient/records', `/patient/records/${recordId}`, `/patient/records/${recordId}/edit`,
    '/patient/sharing', '/patient/access-log', '/patient/share-code', '/account', '/account/delete']) await at(p);
  await page.goto(`${base}/patient`);
  await page.getByRole('button', { name: 'Submit' }).click();
  await audit(t, page, 'new record, errors shown', full);
  await page.goto(`${base}/patient/share-code`);
  await page.getByLabel('Access expires on').fill(new Date(Date.now() + 86_400_000).toISOString().slice(0, 10));
  await page.getByRole('button', { name: 'Make the code' }).click();
  await audit(t, page, 'sharing code', full);
  const link = (await page.locator('#offer-link').textContent()).trim();
  await page.goto(`${base}/patient/sharing`);
  await page.getByLabel('Find a provider').fill(t.provider.user);
  await page.getByRole('button', { name: 'Search' }).click();
  await page.getByRole('radio', { name: new RegExp(t.provider.user) }).check();
  await page.getByLabel('Access expires on').fill(new Date(Date.now() + 86_400_000).toISOString().slice(0, 10));
  await page.getByRole('button', { name: 'Grant access' }).click();
  await audit(t, page, 'sharing, granted', full);
  await page.goto(`${base}/patient/records`);
  const patientId = (await page.locator('#patient-id').textContent()).trim();
  await page.getByRole('button', { name: 'Log out' }).click();

  // The provider.
  await signIn(t, page, t.provider.user, t.provider.pass, '/providers/login');
  await at('/provider');
  await page.goto(link);
  await audit(t, page, 'an offer', full);
  await at('/account', 'provider account');
  await page.goto(`${base}/provider`);
  const lookup = page.locator('form[action="/provider/records"]');
  await lookup.getByLabel('Patient ID').fill(patientId);
  await lookup.getByRole('button', { name: 'Get patient details' }).click();
  t.check(await page.getByText('Low vision').first().isVisible(), 'the provider reads the shared record');
  await audit(t, page, 'provider, a patient\'s records', full);
  await page.getByRole('button', { name: 'Log out' }).click();

  // The admin.
  await signIn(t, page, t.admin.user, t.admin.pass, '/providers/login');
  await at('/admin');
  await at('/account', 'admin account');
  await page.getByRole('button', { name: 'Log out' }).click();

  // The patient again: the provider's read, at the top of the pages.
  await signIn(t, page, user, 'correct horse battery staple', '/patients');
  await page.goto(`${base}/patient/records`);
  const notices = page.getByRole('region', { name: /^Since your last visit/ });
  t.check(await notices.getByText(`${t.provider.user} read record ${recordId}`).isVisible(), 'since your last visit: the provider\'s read');
  await audit(t, page, 'since your last visit', full);
  await context.close();
}
