// Walks the SecureEHR web UI in Debian's chromium, at 390×844 and at 1280×800:
// a patient signs up and stores a record, grants a provider; the provider reads it; the
// patient revokes; the provider is denied; the patient's access log shows the read.
// An XSS payload typed into every text field is shown escaped and never runs. Then the
// chart: a patient uploads a FHIR file (lab results as a table with units, ranges and
// flags; medications; allergies with criticality), grants reading and writing; the
// provider sees the timeline and adds a lab result; the patient sees who wrote it.
// Any console error, page error or horizontal scrolling fails the walk.
//
// Usage: node walk.mjs <base-url>   (env: PROVIDER_USER, PROVIDER_PASS, ADMIN_USER,
// ADMIN_PASS; CHROMIUM, default /usr/bin/chromium; for an https:// base, CERT_FILE: the
// server's certificate, the only one chromium is told to accept). Exit 0 = every check passed.
import { createHash, createHmac, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { auditWalk } from './audit.mjs';
import { installWalk, shareWalk } from './phone.mjs';

const base = process.argv[2];
if (!base) throw new Error('usage: node walk.mjs <base-url>');
const env = (k) => {
  const v = process.env[k];
  if (!v) throw new Error(`${k} is not set`);
  return v;
};
const provider = { user: env('PROVIDER_USER'), pass: env('PROVIDER_PASS') };
const admin = { user: env('ADMIN_USER'), pass: env('ADMIN_PASS') };
const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';
const https = base.startsWith('https://');
// Over HTTPS chromium accepts exactly the test server's key (its SPKI pin), not any
// certificate: --ignore-certificate-errors would hide a server presenting the wrong one.
const tlsArgs = [];
if (https) {
  const cert = new X509Certificate(readFileSync(env('CERT_FILE')));
  const spki = cert.publicKey.export({ type: 'spki', format: 'der' });
  tlsArgs.push(`--ignore-certificate-errors-spki-list=${createHash('sha256').update(spki).digest('base64')}`);
}

// Runs if ever parsed as HTML; every check below asserts window.__xss stays unset.
const XSS = `<script>window.__xss=1</script><img src=x onerror="window.__xss=1">"'&`;
const PASSWORD = 'correct horse battery staple';
// One first-start server per size (no admin yet): its one-time set-up link.
const setupLinks = env('SETUP_LINKS').split(' ');

function check(cond, what) {
  if (!cond) throw new Error(`check failed: ${what}`);
  console.log(`  ok: ${what}`);
}

const launchArgs = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--no-first-run', ...tlsArgs,
];
const browser = await chromium.launch({
  executablePath,
  headless: true,
  args: launchArgs,
  // playwright gives every launch a fresh temporary profile (--user-data-dir) of its own.
});

const problems = [];
// What the walks in other files (phone.mjs) use of this one.
const helpers = { base, check, pageAt, patientWithRecord, problems, persistentAt, provider, admin };
const only = process.env.WALK_ONLY ? process.env.WALK_ONLY.split(',') : null;
try {
  for (const viewport of [{ width: 390, height: 844 }, { width: 1280, height: 800 }]) {
    console.log(`== ${viewport.width}x${viewport.height}`);
    if (only) {
      // WALK_ONLY=install,share (while working on one walk): just those.
      for (const name of only) await ({ install: installWalk, share: shareWalk, audit: auditWalk }[name])(helpers, viewport);
      continue;
    }
    await setupWalk(viewport, setupLinks.shift());
    const { patient, recoveryCode } = await walk(viewport);
    await chartWalk(viewport, patient, recoveryCode);
    await totpWalk(viewport);
    await leaveWalk(viewport);
    await documentWalk(viewport);
    await installWalk(helpers, viewport);
    await shareWalk(helpers, viewport);
    await auditWalk(helpers, viewport);
  }
  check(problems.length === 0, `no console or page errors (${problems.join(' | ')})`);
} finally {
  await browser.close();
}
console.log('walk passed');

async function walk(viewport) {
  const context = await browser.newContext({ viewport, javaScriptEnabled: true });
  const page = await context.newPage();
  page.on('console', (m) => { if (m.type() === 'error') problems.push(`console: ${m.text()}`); });
  page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
  const patient = `pat-${viewport.width}-${Date.now() % 100000}`;

  // Every page: fits the width, no script ran, no error so far.
  const settle = async (what) => {
    const { sw, cw } = await page.evaluate(() => ({
      sw: document.documentElement.scrollWidth, cw: document.documentElement.clientWidth,
    }));
    check(sw <= cw, `${what}: no horizontal scrolling (${sw} <= ${cw})`);
    check(await page.evaluate(() => window.__xss === undefined), `${what}: no injected script ran`);
    const unlabelled = await page.evaluate(() => [...document.querySelectorAll('input, select, textarea')]
      .filter((e) => e.type !== 'hidden' && e.labels.length === 0 && !e.getAttribute('aria-label'))
      .map((e) => e.name));
    check(unlabelled.length === 0, `${what}: every field has a label (${unlabelled})`);
    check(problems.length === 0, `${what}: no console errors so far (${problems.join(' | ')})`);
  };
  const section = (heading) =>
    page.locator('section', { has: page.getByRole('heading', { name: heading, exact: true }) });
  const logout = async () => {
    await page.getByRole('button', { name: 'Log out' }).click();
    await page.waitForURL(`${base}/`);
  };

  // Home.
  const home = await page.goto(base);
  if (https) {
    check(home.url().startsWith('https://'), 'served over HTTPS');
    check(home.headers()['strict-transport-security'] === 'max-age=31536000', 'HSTS header');
    const cookies = await context.cookies();
    check(cookies.length > 0 && cookies.every((c) => c.secure && c.name.startsWith('__Host-')),
      `cookies are Secure and __Host- (${cookies.map((c) => c.name)})`);
  }
  check(await page.getByRole('link', { name: 'Patients', exact: true }).isVisible(), 'home links "Patients"');
  check(await page.getByRole('link', { name: 'Medical Providers Login' }).first().isVisible(), 'home links "Medical Providers Login"');
  await settle('home');

  // Patients: sign-up with an XSS username is refused inline, naming the field, escaped.
  await page.getByRole('link', { name: 'Patients', exact: true }).click();
  const signup = section('Sign up');
  await signup.getByLabel('Username').fill(XSS);
  await signup.getByLabel('Password').fill(PASSWORD);
  await signup.getByRole('button', { name: 'Sign up' }).click();
  check(await signup.getByRole('alert').filter({ hasText: 'Username:' }).isVisible(), 'bad username: inline error names "Username"');
  check(await signup.getByLabel('Username').inputValue() === XSS, 'bad username: value shown back escaped');
  await settle('signup error');

  await signup.getByLabel('Username').fill(patient);
  await signup.getByLabel('Password').fill(PASSWORD);
  await signup.getByRole('button', { name: 'Sign up' }).click();
  // The recovery code, shown once, then on to the record form.
  check(await page.getByRole('heading', { name: 'Your recovery code' }).isVisible(), 'signed up: the recovery code page');
  const recoveryCode = (await page.locator('#recovery-code').textContent()).trim();
  check(/^([0-9A-HJKMNP-TV-Z]{5}-){4}[0-9A-HJKMNP-TV-Z]{5}$/.test(recoveryCode), `a 25-character code in five groups (${recoveryCode.length})`);
  await settle('recovery code');
  if (process.env.SCREENSHOT_DIR) {
    await page.screenshot({ path: `${process.env.SCREENSHOT_DIR}/recovery-code-${viewport.width}.png`, fullPage: true });
  }
  await page.getByRole('link', { name: 'Continue to your records' }).click();
  await page.waitForURL(`${base}/patient`);
  check(await page.getByRole('heading', { name: 'New health record' }).isVisible(), 'signed up: record form shown');

  // The form: exactly the seed's labels; a bad phone fails inline and stores nothing.
  for (const label of ['Patient Name', 'Birth Date', 'Address', 'Phone No', 'Health Condition']) {
    check(await page.getByLabel(label, { exact: true }).count() === 1, `form has a field labelled "${label}"`);
  }
  check(await page.getByLabel('Birth Date').getAttribute('type') === 'date', 'Birth Date is a date picker');
  await page.getByLabel('Patient Name').fill(XSS);
  await page.getByLabel('Birth Date').fill('1984-02-29');
  await page.getByLabel('Address').fill(XSS);
  await page.getByLabel('Phone No').fill(XSS);
  await page.getByLabel('Health Condition').fill(XSS);
  await page.getByRole('button', { name: 'Submit' }).click();
  check(await page.getByRole('alert').filter({ hasText: 'Phone No:' }).isVisible(), 'bad phone: inline error names "Phone No"');
  check(await page.getByLabel('Phone No').getAttribute('aria-invalid') === 'true', 'bad phone: field marked invalid');
  for (const label of ['Patient Name', 'Address', 'Phone No', 'Health Condition']) {
    check(await page.getByLabel(label).inputValue() === XSS, `bad phone: "${label}" kept, escaped`);
  }
  await settle('record form error');
  await page.getByRole('link', { name: 'My records' }).click();
  check(await page.getByText('No records yet').isVisible(), 'bad input stored nothing');
  const patientId = (await page.locator('#patient-id').textContent()).trim();
  check(/^\d+$/.test(patientId), `patient id shown (${patientId})`);

  // Store a record with the payload in the text fields.
  await page.getByRole('link', { name: 'New record' }).click();
  await page.getByLabel('Patient Name').fill(XSS);
  await page.getByLabel('Birth Date').fill('1984-02-29');
  await page.getByLabel('Address').fill(XSS);
  await page.getByLabel('Phone No').fill('+1 555 010 0199');
  await page.getByLabel('Health Condition').fill(XSS);
  await page.getByRole('button', { name: 'Submit' }).click();
  await page.waitForURL(/\/patient\/records\/\d+\/stored/);
  const stored = await page.getByRole('status').textContent();
  const m = stored.match(/Record stored in IPFS and in Blockchain with ID: (\d+)/);
  check(m !== null, `result page says "Record stored in IPFS and in Blockchain with ID: N" (${stored.trim()})`);
  const recordId = m[1];
  check((await page.locator('#manifest-cid').textContent()).trim().length > 10, 'result page shows the hash code');
  check(/^0x[0-9a-f]{64}$/.test((await page.locator('#tx-hash').textContent()).trim()), 'result page shows the transaction hash');
  await settle('stored');

  // My records: view shows the payload as text; edit makes version 2.
  await page.getByRole('link', { name: 'View this version' }).click();
  check(await page.getByText(XSS, { exact: true }).first().isVisible(), 'record view shows the payload as text');
  await settle('record view');
  await page.getByRole('link', { name: 'Edit (new version)' }).click();
  check(await page.getByLabel('Patient Name').inputValue() === XSS, 'edit form prefilled');
  await page.getByLabel('Health Condition').fill('Diabetes mellitus type 2');
  await page.getByRole('button', { name: 'Submit' }).click();
  await page.waitForURL(/\/stored/);
  check((await page.getByRole('status').textContent()).includes(`with ID: ${recordId}`), 'edit keeps the record ID');
  check((await page.locator('dl.facts dd').first().textContent()).trim() === '2', 'edit made version 2');
  await page.getByRole('link', { name: 'My records' }).first().click();
  await page.getByText('Versions (2)').click();
  check(await page.getByRole('link', { name: 'Version 1' }).isVisible(), 'both versions listed');
  await settle('my records');

  // Sharing: grant the provider, expiring in 30 days.
  await page.getByRole('link', { name: 'Sharing' }).click();
  const expiry = new Date(Date.now() + 30 * 86400e3).toISOString().slice(0, 10);
  // Finding the provider: a search by name, organisation or specialty.
  await page.getByLabel('Find a provider').fill('no such doctor anywhere');
  await page.getByRole('button', { name: 'Search' }).click();
  check(await page.getByText(/No provider matches/).isVisible(), 'a search that finds nobody says so');
  await settle('provider search, nothing found');
  await page.getByLabel('Find a provider').fill(provider.user);
  await page.getByRole('button', { name: 'Search' }).click();
  await page.getByRole('radio', { name: new RegExp(provider.user) }).check();
  await page.getByLabel('Access expires on').fill(expiry);
  await page.getByRole('button', { name: 'Grant access' }).click();
  await page.waitForURL(/done=granted/);
  check(await page.getByText('Access granted.').isVisible(), 'grant confirmed');
  check(await page.getByRole('button', { name: `Revoke ${provider.user}` }).isVisible(), 'grant listed with a revoke button');
  await settle('sharing');
  await logout();

  // The provider reads it.
  const providerLogin = async () => {
    await page.getByRole('link', { name: 'Medical Providers Login' }).first().click();
    await page.getByLabel('Username').fill(provider.user);
    await page.getByLabel('Password').fill(provider.pass);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL(`${base}/provider`);
    check(await page.getByRole('heading', { name: 'Access Patient Records' }).isVisible(), 'provider sees "Access Patient Records"');
  };
  const lookup = page.locator('form[action="/provider/records"]');
  await providerLogin();
  await lookup.getByLabel('Patient ID').fill(patientId);
  await lookup.getByRole('button', { name: 'Get patient details' }).click();
  check(await page.locator('article.record').count() === 1, 'provider reads the granted record');
  check(await page.locator('article.record').getByText(XSS, { exact: true }).first().isVisible(), 'provider sees the payload as text');
  check(await page.getByText('Diabetes mellitus type 2').isVisible(), 'provider sees the latest version');
  await settle('provider read');
  await logout();

  // The patient revokes.
  const patientLogin = async () => {
    await page.getByRole('link', { name: 'Patients', exact: true }).click();
    const signin = section('Sign in');
    await signin.getByLabel('Username').fill(patient);
    await signin.getByLabel('Password').fill(PASSWORD);
    await signin.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL(`${base}/patient`);
  };
  await patientLogin();
  await page.getByRole('link', { name: 'Sharing' }).click();
  await page.getByRole('button', { name: `Revoke ${provider.user}` }).click();
  await page.waitForURL(/done=revoked/);
  check(await page.getByText('Access revoked.').isVisible(), 'revoke confirmed');
  check(await page.getByRole('button', { name: `Revoke ${provider.user}` }).count() === 0, 'no active grant left');
  await settle('revoked');
  await logout();

  // The provider is denied, and sees nothing else; break-glass needs a reason.
  await providerLogin();
  await lookup.getByLabel('Patient ID').fill(patientId);
  await lookup.getByRole('button', { name: 'Get patient details' }).click();
  check(await page.getByRole('alert').filter({ hasText: 'Access denied' }).isVisible(), 'provider gets a clear "access denied"');
  check(await page.locator('article.record').count() === 0, 'denied: no record shown');
  check(await page.getByText(XSS).count() === 0, 'denied: no record data shown');
  await lookup.getByLabel('Patient ID').fill(XSS);
  await lookup.getByRole('button', { name: 'Get patient details' }).click();
  check(await page.getByRole('alert').filter({ hasText: 'Patient ID:' }).isVisible(), 'bad patient id: inline error names "Patient ID"');
  const glass = page.locator('form[action="/provider/emergency"]');
  await glass.getByLabel('Patient ID').fill(patientId);
  await glass.getByRole('button', { name: 'Open emergency access' }).click();
  check(await glass.getByRole('alert').filter({ hasText: 'Reason:' }).isVisible(), 'emergency without a reason: inline error names "Reason"');
  check(await page.locator('article.record').count() === 0, 'emergency without a reason: nothing shown');
  await glass.getByLabel('Reason').fill(`Unconscious in A&E ${XSS}`);
  await glass.getByRole('button', { name: 'Open emergency access' }).click();
  check(await page.locator('article.record').count() === 1, 'emergency access shows the record');
  check(await page.getByText('Emergency access — logged').isVisible(), 'emergency read is marked');
  await settle('provider denied, then emergency');
  await logout();

  // The patient's access log shows the reads, the emergency one highlighted.
  await patientLogin();
  await page.getByRole('link', { name: 'Access log' }).click();
  const entries = page.locator('ol.log > li');
  const readerEntries = entries.filter({ hasText: provider.user });
  check(await readerEntries.count() >= 2, 'access log lists the provider\'s reads');
  const emergencyEntries = page.locator('ol.log > li.emergency');
  check(await emergencyEntries.count() >= 1, 'emergency access highlighted');
  check(await emergencyEntries.first().getByText('Emergency access').isVisible(), 'emergency entry labelled');
  check(await emergencyEntries.first().getByText(`Reason: Unconscious in A&E ${XSS}`).isVisible(), 'reason shown, escaped');
  await settle('access log');

  // The sharing page shows the open break-glass windows, each with a button that ends it.
  await page.getByRole('link', { name: 'Sharing' }).click();
  check(await page.getByRole('heading', { name: 'Emergency access open now' }).isVisible(), 'open emergency access listed');
  check(await page.getByText(`Reason: Unconscious in A&E ${XSS}`).first().isVisible(), 'its reason shown, escaped');
  const endButtons = page.getByRole('button', { name: new RegExp(`^End emergency access of ${provider.user} to record`) });
  const open = await endButtons.count();
  check(open >= 1, 'an end button per open window');
  await settle('sharing with emergency access');
  await endButtons.first().click();
  check(await page.getByText('Emergency access ended.').isVisible(), 'emergency access ended');
  check(await endButtons.count() === open - 1, 'that window is gone');
  await logout();

  // Admin: node set and chain status; a bad provider password is refused inline.
  await page.getByRole('link', { name: 'Medical Providers Login' }).first().click();
  await page.getByLabel('Username').fill(admin.user);
  await page.getByLabel('Password').fill(admin.pass);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL(`${base}/admin`);
  check(await page.getByRole('heading', { name: /^Nodes/ }).isVisible(), 'admin sees the node set');
  check(await page.getByRole('heading', { name: 'Chain' }).isVisible(), 'admin sees the chain status');
  await page.getByLabel('Username').fill(`dr-${viewport.width}`);
  await page.getByLabel('Password', { exact: true }).fill('short');
  await page.getByRole('button', { name: 'Register provider' }).click();
  check(await page.getByRole('alert').filter({ hasText: 'Password:' }).isVisible(), 'short password: inline error names "Password"');
  check(await page.getByText(`dr-${viewport.width}`, { exact: true }).count() === 0, 'short password: no provider added');
  await settle('admin');
  // Disable the provider (deregistered, signed out, no logins), then enable it again.
  await page.getByRole('button', { name: `Disable ${provider.user}` }).click();
  check(await page.getByText('Provider disabled').isVisible(), 'provider disabled');
  check(await page.getByRole('button', { name: `Enable ${provider.user}` }).isVisible(), 'an enable button for it');
  await settle('admin, provider disabled');
  await page.getByRole('button', { name: `Enable ${provider.user}` }).click();
  check(await page.getByText('Provider enabled').isVisible(), 'provider enabled');
  check(await page.getByRole('button', { name: `Disable ${provider.user}` }).isVisible(), 'a disable button again');
  // Reset the provider's password (its key stays): a short one is refused inline, then
  // set (to the one the walk signs in with).
  await page.getByText(`Reset ${provider.user}'s password`).click();
  const resetField = page.getByLabel(`New password for ${provider.user}`);
  await resetField.fill('short');
  await page.getByRole('button', { name: 'Reset password' }).click();
  check(await page.getByRole('alert').filter({ hasText: 'New password:' }).isVisible(), 'short reset password: inline error');
  await settle('admin, reset refused');
  await page.getByLabel(`New password for ${provider.user}`).fill(provider.pass);
  await page.getByRole('button', { name: 'Reset password' }).click();
  await page.waitForURL(/done=reset/);
  check(await page.getByText('Password reset').isVisible(), 'provider password reset');
  await logout();
  await context.close();
  return { patient, recoveryCode };
}

// The rich record: uploaded as a file, read as a chart, written to by a provider.
async function chartWalk(viewport, patient, recoveryCode) {
  const context = await browser.newContext({ viewport, javaScriptEnabled: true });
  const page = await context.newPage();
  page.on('console', (m) => { if (m.type() === 'error') problems.push(`console: ${m.text()}`); });
  page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
  const settle = async (what) => {
    const { sw, cw } = await page.evaluate(() => ({
      sw: document.documentElement.scrollWidth, cw: document.documentElement.clientWidth,
    }));
    check(sw <= cw, `${what}: no horizontal scrolling (${sw} <= ${cw})`);
    const unlabelled = await page.evaluate(() => [...document.querySelectorAll('input, select, textarea')]
      .filter((e) => e.type !== 'hidden' && e.labels.length === 0 && !e.getAttribute('aria-label'))
      .map((e) => e.name));
    check(unlabelled.length === 0, `${what}: every field has a label (${unlabelled})`);
    check(await page.evaluate(() => window.__xss === undefined && !document.querySelector('main script')),
      `${what}: no narrative script in the page`);
  };
  const logout = async () => {
    await page.getByRole('button', { name: 'Log out' }).click();
    await page.waitForURL(`${base}/`);
  };
  const section = (heading) =>
    page.locator('section', { has: page.getByRole('heading', { name: heading, exact: true }) });

  const patientLogin = async () => {
    await page.getByRole('link', { name: 'Patients', exact: true }).click();
    const signin = section('Sign in');
    await signin.getByLabel('Username').fill(patient);
    await signin.getByLabel('Password').fill(PASSWORD);
    await signin.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL(`${base}/patient`);
  };
  await page.goto(base);
  await patientLogin();
  const rich = fileURLToPath(new URL('../../../fhir/testdata/rich-bundle.json', import.meta.url));
  await page.getByLabel('FHIR JSON file').setInputFiles(rich);
  await page.getByRole('button', { name: 'Upload' }).click();
  await page.waitForURL(/\/patient\/records\/\d+\/stored/);
  const recordId = (await page.locator('#record-id').textContent()).trim();
  await page.getByRole('link', { name: 'View this version' }).click();

  const labs = page.getByRole('region', { name: 'Lab results' });
  const hba1c = labs.getByRole('row', { name: /Hemoglobin A1c/ });
  check(await hba1c.isVisible(), 'lab results: a row per test');
  const cells = await hba1c.locator('td').allTextContents();
  check(cells[0] === '6.9' && cells[1] === '%', `lab value with its unit (${cells})`);
  check(cells[2] === 'High', `flag shown (${cells[2]})`);
  check(cells[3].includes('4') && cells[3].includes('5.6'), `reference range shown (${cells[3]})`);
  check(await page.getByRole('region', { name: 'Vital signs' }).getByText('mmHg').isVisible(), 'vital signs with units');
  const meds = page.getByRole('region', { name: 'Medications' });
  check(await meds.getByText('lisinopril 10 MG Oral Tablet').isVisible(), 'medications listed');
  check(await meds.getByText('Dosage: 500 mg twice a day with meals').isVisible(), 'with their dosage');
  const allergies = page.getByRole('region', { name: 'Allergies' });
  check(await allergies.getByText('Penicillin G').isVisible(), 'allergies listed');
  check((await allergies.locator('.criticality').first().textContent()) === 'High', 'with their criticality');
  await settle('chart');
  // SCREENSHOT_DIR=dir keeps a picture of the chart at each size, to look at.
  if (process.env.SCREENSHOT_DIR) {
    await page.screenshot({ path: `${process.env.SCREENSHOT_DIR}/chart-${viewport.width}.png`, fullPage: true });
  }

  // Reading and writing for the provider.
  await page.getByRole('link', { name: 'Sharing' }).click();
  const expiry = new Date(Date.now() + 30 * 86400e3).toISOString().slice(0, 10);
  await page.getByLabel('Find a provider').fill(provider.user);
  await page.getByRole('button', { name: 'Search' }).click();
  await page.getByRole('radio', { name: new RegExp(provider.user) }).check();
  await page.getByLabel('Access expires on').fill(expiry);
  await page.getByLabel(/Also let them add/).check();
  await page.getByRole('button', { name: 'Grant access' }).click();
  await page.waitForURL(/done=granted/);
  check(await page.getByText(/may add to it until/).first().isVisible(), 'the grant shows writing');
  await settle('sharing with writing');
  const patientId = await (async () => {
    await page.getByRole('link', { name: 'My records' }).click();
    return (await page.locator('#patient-id').textContent()).trim();
  })();
  await logout();

  await page.getByRole('link', { name: 'Medical Providers Login' }).first().click();
  await page.getByLabel('Username').fill(provider.user);
  await page.getByLabel('Password').fill(provider.pass);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL(`${base}/provider`);
  check(await page.getByText('Protect this account').isVisible(), 'a provider without two-factor is asked to turn it on');
  const lookup = page.locator('form[action="/provider/records"]');
  await lookup.getByLabel('Patient ID').fill(patientId);
  await lookup.getByRole('button', { name: 'Get patient details' }).click();
  const timeline = page.getByRole('region', { name: 'Timeline' });
  check(await timeline.isVisible(), 'the provider sees a timeline');
  const items = await timeline.locator('li').allTextContents();
  check(items.length >= 8 && items[0] > items[items.length - 1], `timeline newest first (${items.length} items)`);
  await settle('provider timeline');
  if (process.env.SCREENSHOT_DIR) {
    await page.screenshot({ path: `${process.env.SCREENSHOT_DIR}/provider-${viewport.width}.png`, fullPage: true });
  }
  const add = page.locator('form[action="/provider/add"]');
  await add.getByLabel('Record').selectOption(recordId);
  await add.getByLabel('What').selectOption('result');
  await add.getByLabel('Test, medication or title').fill('Glucose');
  await add.getByLabel('Result value').fill('5.4');
  await add.getByLabel(/^Unit/).fill('mmol/L');
  await add.getByLabel('Reference range low').fill('3.9');
  await add.getByLabel('Reference range high').fill('5.6');
  await add.getByRole('button', { name: 'Add to the record' }).click();
  await page.waitForURL(/added=/);
  check(await page.getByText(/Added: record \d+, version 2/).isVisible(), 'the result was added as version 2');
  await settle('provider added');
  await logout();

  await patientLogin();
  await page.getByRole('link', { name: 'My records' }).click();
  const card = section(`Record ${recordId}`);
  await card.getByText('Versions (2)').click();
  check(await card.getByText(`written by ${provider.user}`).isVisible(), 'the patient sees who wrote version 2');
  await card.getByRole('link', { name: 'View', exact: true }).click();
  check(await page.getByRole('region', { name: 'Lab results' }).getByRole('row', { name: /Glucose/ }).isVisible(),
    'the added result is in her chart');
  await settle('chart with the added result');

  // Account: a new password keeps everything; the old one no longer signs in.
  const NEW_PASSWORD = 'another long passphrase';
  await page.getByRole('link', { name: 'Account' }).click();
  const [download] = await Promise.all([
    page.waitForEvent('download'),
    page.getByRole('link', { name: 'Download your keystore file' }).click(),
  ]);
  const keyfile = JSON.parse(readFileSync(await download.path(), 'utf8'));
  check(keyfile.version === 3 && /^UTC--/.test(download.suggestedFilename()),
    `the keystore file downloads (${download.suggestedFilename()})`);
  await page.getByLabel('Current password').fill(PASSWORD);
  await page.getByLabel('New password', { exact: true }).fill(NEW_PASSWORD);
  await page.getByLabel('New password again').fill(NEW_PASSWORD);
  await page.getByRole('button', { name: 'Change password' }).click();
  await page.waitForURL(/done=password/);
  check(await page.getByText('Password changed.').isVisible(), 'password changed');
  await settle('account');
  // A new recovery code replaces the sign-up's.
  check(await page.getByText('You have a recovery code, made').isVisible(), 'the account page says a code exists');
  await page.getByLabel('Your password', { exact: true }).fill(NEW_PASSWORD);
  await page.getByRole('button', { name: 'Make a new recovery code' }).click();
  check(await page.getByRole('heading', { name: 'Your recovery code' }).isVisible(), 'a new recovery code is shown');
  const newCode = (await page.locator('#recovery-code').textContent()).trim();
  check(newCode !== recoveryCode, 'a different code');
  await settle('new recovery code');
  await page.getByRole('link', { name: 'Back to your account' }).click();
  await logout();
  await page.getByRole('link', { name: 'Patients', exact: true }).click();
  const signin = section('Sign in');
  await signin.getByLabel('Username').fill(patient);
  await signin.getByLabel('Password').fill(PASSWORD);
  await signin.getByRole('button', { name: 'Sign in' }).click();
  check(await signin.getByRole('alert').isVisible(), 'the old password is refused');
  await signin.getByLabel('Password').fill(NEW_PASSWORD);
  await signin.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL(`${base}/patient`);
  await page.getByRole('link', { name: 'My records' }).click();
  check(await section(`Record ${recordId}`).isVisible(), 'the records are still hers');
  // Take your data: one FHIR Bundle with every version, grants and access log.
  const [exported] = await Promise.all([
    page.waitForEvent('download'),
    page.getByRole('link', { name: 'Download everything' }).click(),
  ]);
  const bundle = JSON.parse(readFileSync(await exported.path(), 'utf8'));
  const types = new Set(bundle.entry.map((e) => e.resource.resourceType));
  check(bundle.type === 'collection' && types.has('Consent') && types.has('AuditEvent') && types.has('Observation'),
    `the export downloads (${exported.suggestedFilename()}: ${bundle.entry.length} resources)`);
  check(bundle.entry.some((e) => e.resource.meta && e.resource.meta.versionId === '2'), 'with every version');
  await logout();

  // Forgot the password: the sign-up's recovery code sets a new one; the key stays.
  await page.getByRole('link', { name: 'Patients', exact: true }).click();
  await page.getByRole('link', { name: 'Forgot your password?' }).click();
  await page.waitForURL(`${base}/recover`);
  await page.getByLabel('Username').fill(patient);
  await page.getByLabel('Recovery code').fill(recoveryCode);
  await page.getByLabel('New password', { exact: true }).fill(PASSWORD);
  await page.getByLabel('New password again').fill(PASSWORD);
  await page.getByRole('button', { name: 'Set the new password' }).click();
  check(await page.getByRole('alert').filter({ hasText: 'Recovery code:' }).isVisible(), 'the replaced sign-up code: inline error');
  await settle('recover, wrong code');
  await page.getByLabel('Recovery code').fill(newCode.toLowerCase());
  await page.getByLabel('New password', { exact: true }).fill(PASSWORD);
  await page.getByLabel('New password again').fill(PASSWORD);
  await page.getByRole('button', { name: 'Set the new password' }).click();
  check(await page.getByRole('heading', { name: 'Your recovery code' }).isVisible(), 'password set: the next code is shown');
  const next = (await page.locator('#recovery-code').textContent()).trim();
  check(next !== newCode, 'the code used is replaced');
  await settle('recovered');
  await page.getByRole('link', { name: 'Sign in with your new password' }).click();
  await page.waitForURL(`${base}/patients`);
  const again = section('Sign in');
  await again.getByLabel('Username').fill(patient);
  await again.getByLabel('Password').fill(PASSWORD);
  await again.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL(`${base}/patient`);
  await page.getByRole('link', { name: 'My records' }).click();
  check(await section(`Record ${recordId}`).isVisible(), 'after recovery the records are still hers');
  await logout();

  // The provider's own directory entry, on its Account page: a new name, then back to its
  // username (an empty name). (Patients finding it by the new name: tests/web/account.rs.)
  const providerLogin = async () => {
    await page.getByRole('link', { name: 'Medical Providers Login' }).first().click();
    await page.getByLabel('Username').fill(provider.user);
    await page.getByLabel('Password').fill(provider.pass);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL(`${base}/provider`);
  };
  await providerLogin();
  await page.getByRole('link', { name: 'Account' }).click();
  await page.getByLabel('Display name').fill(`Dr Walk ${viewport.width}`);
  await page.getByLabel('Specialty').fill('General practice');
  await page.getByRole('button', { name: 'Save directory entry' }).click();
  await page.waitForURL(/done=profile/);
  check(await page.getByText('Directory entry changed').isVisible(), 'the provider changed its directory entry');
  check(await page.getByLabel('Display name').inputValue() === `Dr Walk ${viewport.width}`, 'the new name is its entry');
  await settle('provider account');
  await page.getByLabel('Display name').fill('');
  await page.getByLabel('Specialty').fill('');
  await page.getByRole('button', { name: 'Save directory entry' }).click();
  await page.waitForURL(/done=profile/);
  check(await page.getByLabel('Display name').inputValue() === provider.user, 'an empty name is the username');
  await logout();
  await context.close();
}

// A first start: the set-up link creates the admin once; a wrong token is refused, a used
// link is gone.
async function setupWalk(viewport, link) {
  const context = await browser.newContext({ viewport, javaScriptEnabled: true });
  const page = await context.newPage();
  page.on('console', (m) => { if (m.type() === 'error' && !/40[34]/.test(m.text())) problems.push(`console: ${m.text()}`); });
  page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
  const wrong = link.replace(/token=./, (t) => `token=${t.endsWith('0') ? '1' : '0'}`);
  check((await page.goto(wrong)).status() === 403, 'a wrong set-up token: 403');
  check((await page.goto(link)).status() === 200, 'the set-up link opens the form');
  check(await page.getByRole('heading', { name: 'Set up SecureEHR' }).isVisible(), 'the set-up page');
  await page.getByLabel('Username').fill('root');
  await page.getByLabel('Password').fill('short');
  await page.getByRole('button', { name: 'Create the admin' }).click();
  check(await page.getByRole('alert').filter({ hasText: 'Password:' }).isVisible(), 'a short password: inline error');
  const { sw, cw } = await page.evaluate(() => ({
    sw: document.documentElement.scrollWidth, cw: document.documentElement.clientWidth,
  }));
  check(sw <= cw, `set-up page: no horizontal scrolling (${sw} <= ${cw})`);
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Create the admin' }).click();
  check(await page.getByRole('heading', { name: 'Admin created' }).isVisible(), 'the admin is created');
  check((await page.goto(link)).status() === 404, 'the used link is gone: 404');
  const base = new URL(link).origin;
  await page.goto(`${base}/providers/login`);
  await page.getByLabel('Username').fill('root');
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL(`${base}/admin`);
  check(await page.getByRole('heading', { name: 'Administration' }).isVisible(), 'the new admin signs in');
  await context.close();
}

// RFC 6238 TOTP (HMAC-SHA-1, 30 s, 6 digits) computed here with node's own crypto: an
// implementation independent of the server's.
function totpCode(secretBase32, unix = Date.now() / 1000) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = '';
  for (const c of secretBase32.replace(/\s/g, '')) bits += alphabet.indexOf(c).toString(2).padStart(5, '0');
  const key = Buffer.from(bits.match(/.{8}/g).map((b) => parseInt(b, 2)));
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(unix / 30)));
  const h = createHmac('sha1', key).update(counter).digest();
  const o = h[h.length - 1] & 0x0f;
  return String((h.readUInt32BE(o) & 0x7fffffff) % 1e6).padStart(6, '0');
}

// Two-factor: set up on the account page with the QR code, then needed at sign-in; a
// backup code signs in once; off with the password and a code.
async function totpWalk(viewport) {
  const context = await browser.newContext({ viewport, javaScriptEnabled: true });
  const page = await context.newPage();
  page.on('console', (m) => { if (m.type() === 'error') problems.push(`console: ${m.text()}`); });
  page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
  const fits = async (what) => {
    const { sw, cw } = await page.evaluate(() => ({
      sw: document.documentElement.scrollWidth, cw: document.documentElement.clientWidth,
    }));
    check(sw <= cw, `${what}: no horizontal scrolling (${sw} <= ${cw})`);
  };
  const user = `tf-${viewport.width}-${Date.now() % 100000}`;
  await page.goto(`${base}/patients`);
  const signup = page.locator('section', { has: page.getByRole('heading', { name: 'Sign up', exact: true }) });
  await signup.getByLabel('Username').fill(user);
  await signup.getByLabel('Password').fill(PASSWORD);
  await signup.getByRole('button', { name: 'Sign up' }).click();
  await page.getByRole('link', { name: 'Continue to your records' }).click();
  await page.getByRole('link', { name: 'Account' }).click();
  await page.getByRole('button', { name: 'Set up two-factor sign-in' }).click();
  check(await page.locator('figure.qr svg').isVisible(), 'the QR code is drawn (SVG)');
  const secret = (await page.locator('#totp-secret').textContent()).replace(/\s/g, '');
  await fits('two-factor set-up');
  await page.getByLabel('Code from your app').fill(totpCode(secret));
  await page.getByRole('button', { name: 'Turn on two-factor sign-in' }).click();
  check(await page.getByRole('heading', { name: 'Two-factor sign-in is on' }).isVisible(), 'two-factor is on (code from node crypto)');
  const backups = (await page.locator('ol.backup-codes code').allTextContents()).map((c) => c.trim());
  check(backups.length === 10, `ten backup codes (${backups.length})`);
  await fits('backup codes');
  await page.getByRole('button', { name: 'Log out' }).click();
  await page.waitForURL(`${base}/`);
  await page.goto(`${base}/patients`);
  const signin = page.locator('section', { has: page.getByRole('heading', { name: 'Sign in', exact: true }) });
  await signin.getByLabel('Username').fill(user);
  await signin.getByLabel('Password').fill(PASSWORD);
  await signin.getByRole('button', { name: 'Sign in' }).click();
  check(await signin.getByRole('alert').filter({ hasText: 'two-factor' }).isVisible(), 'without a code: asked for it');
  await signin.getByLabel('Password').fill(PASSWORD);
  await signin.getByLabel('Authentication code').fill(backups[0]);
  await signin.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL(`${base}/patient`);
  check(true, 'a backup code signs in');
  await page.getByRole('link', { name: 'Account' }).click();
  check(await page.getByText('one of your 9 unused backup codes').isVisible(), 'nine backup codes left');
  await page.getByLabel('Password, to turn it off').fill(PASSWORD);
  await page.getByLabel('Code from your app, or a backup code').fill(backups[1]);
  await page.getByRole('button', { name: 'Turn two-factor off' }).click();
  await page.waitForURL(/done=totp-off/);
  check(await page.getByText('Two-factor sign-in is off.').isVisible(), 'two-factor off');
  await fits('account, two-factor off');
  await context.close();
}

// Leaving: a fresh patient with a record deletes the account from the account page — the
// confirmation lists the record and needs the box and the password — and gets the
// receipt, signed out.
// A page of its own at `viewport` (console errors and page errors are problems), and the
// check that it fits: no horizontal scrolling, every field labelled.
async function pageAt(viewport) {
  const context = await browser.newContext({ viewport, javaScriptEnabled: true });
  const page = await context.newPage();
  page.on('console', (m) => { if (m.type() === 'error') problems.push(`console: ${m.text()}`); });
  page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
  const fits = async (what) => {
    const { sw, cw } = await page.evaluate(() => ({
      sw: document.documentElement.scrollWidth, cw: document.documentElement.clientWidth,
    }));
    check(sw <= cw, `${what}: no horizontal scrolling (${sw} <= ${cw})`);
    const unlabelled = await page.evaluate(() => [...document.querySelectorAll('input, select, textarea')]
      .filter((e) => e.type !== 'hidden' && e.labels.length === 0 && !e.getAttribute('aria-label'))
      .map((e) => e.name));
    check(unlabelled.length === 0, `${what}: every field has a label (${unlabelled})`);
  };
  return { context, page, fits };
}

// A page in a browser with a profile on disk (`pageAt`'s contexts are incognito, where
// Chromium installs no app), closed with `close()`.
async function persistentAt(viewport) {
  const profile = mkdtempSync(path.join(tmpdir(), 'secure-ehr-profile-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath, headless: true, args: launchArgs, viewport,
  });
  const page = context.pages()[0] || await context.newPage();
  page.on('console', (m) => { if (m.type() === 'error') problems.push(`console: ${m.text()}`); });
  page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
  const close = async () => { await context.close(); rmSync(profile, { recursive: true, force: true }); };
  return { context, page, close };
}

// A new patient `user`, signed in, with one record stored from the form; its record ID.
async function patientWithRecord(page, user, form) {
  await page.goto(`${base}/patients`);
  const signup = page.locator('section', { has: page.getByRole('heading', { name: 'Sign up', exact: true }) });
  await signup.getByLabel('Username').fill(user);
  await signup.getByLabel('Password').fill(PASSWORD);
  await signup.getByRole('button', { name: 'Sign up' }).click();
  await page.getByRole('link', { name: 'Continue to your records' }).click();
  await page.getByLabel('Patient Name').fill(form.name);
  await page.getByLabel('Birth Date').fill(form.birth);
  await page.getByLabel('Health Condition').fill(form.condition);
  await page.getByRole('button', { name: 'Submit' }).click();
  await page.waitForURL(/\/patient\/records\/\d+\/stored/);
  return (await page.getByRole('status').textContent()).match(/with ID: (\d+)/)[1];
}

async function leaveWalk(viewport) {
  const { context, page, fits } = await pageAt(viewport);
  const user = `leave-${viewport.width}-${Date.now() % 100000}`;
  const recordId = await patientWithRecord(page, user, { name: 'Lea Leaving', birth: '1990-05-17', condition: 'Asthma' });

  await page.getByRole('link', { name: 'Account' }).click();
  await page.getByRole('link', { name: 'Delete your account…' }).click();
  await page.waitForURL(`${base}/account/delete`);
  check(await page.getByText(`record ${recordId}`).first().isVisible(), `the confirmation lists record ${recordId}`);
  check(await page.getByRole('link', { name: 'Download everything' }).isVisible(), 'the confirmation offers the export first');
  await fits('delete confirmation');
  // The box not ticked: the form again, with the error on the box; nothing erased.
  await page.getByLabel('Your password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Delete my account and erase my records' }).click();
  check(await page.getByRole('alert').filter({ hasText: 'tick the box' }).first().isVisible(), 'unticked: asked to tick the box');
  check(await page.getByLabel(/I understand/).getAttribute('aria-invalid') === 'true', 'unticked: the box is marked invalid');
  await fits('delete confirmation, error');
  await page.getByLabel('Your password').fill(PASSWORD);
  await page.getByLabel(/I understand/).check();
  await page.getByRole('button', { name: 'Delete my account and erase my records' }).click();
  check(await page.getByRole('heading', { name: 'Your account is deleted' }).isVisible(), 'the receipt');
  check((await page.locator('#erased-records td').first().textContent()).trim() === recordId, 'the receipt lists the record');
  const confirmed = await page.locator('#erasure-nodes td', { hasText: 'Confirmed' }).count();
  check(confirmed === 5, `every node confirmed (${confirmed} of 5)`);
  check(await page.getByRole('button', { name: 'Log out' }).count() === 0, 'signed out');
  await fits('erasure receipt');
  await page.goto(`${base}/patient/records`);
  check(await page.getByRole('heading', { name: 'Sign in', exact: true }).isVisible(), 'the account pages ask to sign in again');
  await context.close();
}

// Issue 19: a patient adds a scanned letter (a PDF over two 1 MiB segments) and a photo
// from the record page; both are listed with type, size and date, the photo opens in the
// browser as an image and the PDF comes back whole, served in place.
async function documentWalk(viewport) {
  const { context, page, fits } = await pageAt(viewport);
  const user = `docs-${viewport.width}-${Date.now() % 100000}`;
  const recordId = await patientWithRecord(page, user, { name: 'Dora Documents', birth: '1979-11-02', condition: 'Fractured wrist' });
  await page.goto(`${base}/patient/records/${recordId}`);
  check(await page.getByLabel('File', { exact: true }).getAttribute('accept') === 'image/*,application/pdf,application/dicom,.dcm', 'the file input takes images and PDFs');
  check(await page.getByLabel('Or take a photo').getAttribute('capture') === 'environment', 'a phone offers its camera');
  await fits('record, add a document');

  const pdf = Buffer.concat([Buffer.from('%PDF-1.4\n'), Buffer.alloc(2_500_000, 'x')]);
  await page.getByLabel('Title (optional)').fill('Discharge letter');
  await page.getByLabel('File', { exact: true }).setInputFiles({ name: 'letter.pdf', mimeType: 'application/pdf', buffer: pdf });
  await page.getByRole('button', { name: 'Add to record' }).click();
  await page.waitForURL(`${base}/patient/records/${recordId}`);
  const docs = page.getByRole('region', { name: 'Documents' });
  check(await docs.getByText('Discharge letter').isVisible(), 'the letter is listed');
  check(await docs.getByText(/PDF · 2\.5 MB · \d{4}-\d{2}-\d{2}/).isVisible(), 'with its type, size and date');

  const png = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==', 'base64');
  await page.getByLabel('Or take a photo').setInputFiles({ name: 'wrist.png', mimeType: 'image/png', buffer: png });
  await page.getByRole('button', { name: 'Add to record' }).click();
  await page.waitForURL(`${base}/patient/records/${recordId}`);
  check(await docs.getByText('wrist.png').isVisible(), 'the photo is listed by its name');
  check(await page.getByRole('heading', { name: /version 3/ }).isVisible(), 'each document made a version');
  await fits('record with documents');
  if (process.env.SCREENSHOT_DIR) {
    await page.screenshot({ path: `${process.env.SCREENSHOT_DIR}/documents-${viewport.width}.png`, fullPage: true });
  }

  const open = docs.getByRole('link', { name: 'Open' });
  const letterHref = await open.nth(0).getAttribute('href');
  const photoHref = await open.nth(1).getAttribute('href');
  // Fetched by the page itself (its cookies, its view of the certificate).
  const letter = await page.evaluate(async (u) => {
    const r = await fetch(u);
    const digest = await crypto.subtle.digest('SHA-256', await r.arrayBuffer());
    return {
      status: r.status, type: r.headers.get('content-type'), disposition: r.headers.get('content-disposition'),
      sha256: [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, '0')).join(''),
    };
  }, letterHref);
  check(letter.status === 200 && letter.type === 'application/pdf', `the letter is served as a PDF (${letter.status} ${letter.type})`);
  check(letter.disposition.startsWith('inline'), 'in place');
  check(letter.sha256 === createHash('sha256').update(pdf).digest('hex'), 'the letter comes back whole');
  await page.goto(`${base}${photoHref}`);
  const shown = await page.evaluate(() => { const i = document.querySelector('img'); return i && i.naturalWidth; });
  check(shown === 1, `the photo opens in the browser as an image (${shown})`);
  await context.close();
}
