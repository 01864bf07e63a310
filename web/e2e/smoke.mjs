// Browser smoke test: drives /usr/bin/chromium against the mock API server
// (scripts/mock-server.mjs, started here) or against BASE=http://host:port
// (a real `parley serve` with a scripted upstream; mock-only checks are skipped).
// Checks the main flows, XSS inertness, CSP cleanliness and axe (serious/critical).
// Usage: npm run build && npm run e2e
import { spawn } from 'node:child_process';
import { readFileSync, mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { chromium } from 'playwright-core';

const require = createRequire(import.meta.url);
const axeSrc = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
const CHROME = process.env.CHROMIUM || '/usr/bin/chromium';
const SHOTS = process.env.SHOTS || 'test-output/e2e';
const external = !!process.env.BASE;
let server;
let BASE = process.env.BASE;
if (!external) {
  const port = 8300 + Math.floor(Math.random() * 500);
  BASE = `http://127.0.0.1:${port}`;
  server = spawn(process.execPath, [new URL('../scripts/mock-server.mjs', import.meta.url).pathname, String(port)], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise((r) => server.stdout.once('data', r));
}
mkdirSync(SHOTS, { recursive: true });

let failures = 0;
function check(cond, what) {
  console.log(`${cond ? 'ok  ' : 'FAIL'} ${what}`);
  if (!cond) failures++;
}

const browser = await chromium.launch({
  executablePath: CHROME,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const ctx = await browser.newContext({ viewport: { width: 1280, height: 850 } });
await ctx.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: BASE });
const page = await ctx.newPage();
const consoleErrors = [];
const dialogs = [];
page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(m.text()); });
page.on('pageerror', (e) => consoleErrors.push(`pageerror: ${e.message}`));
page.on('dialog', (d) => { dialogs.push(d.message()); void d.dismiss(); });

async function axe(name) {
  await page.evaluate(axeSrc); // evaluated through DevTools: not subject to the page CSP
  const r = await page.evaluate(async () => await window.axe.run(document, { resultTypes: ['violations'] }));
  const bad = r.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  for (const v of bad) console.log(`     [${v.impact}] ${v.id}: ${v.help} :: ${v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join(' | ')}`);
  check(bad.length === 0, `axe ${name}: no serious/critical violations (${r.violations.length} minor)`);
}
const assistant = () => page.locator('[data-testid=message][data-role=assistant]').last();
const waitDone = () => page.locator('[data-testid=message][data-role=assistant]:not([data-status=streaming])').last().waitFor({ timeout: 30000 })
  .then(() => page.getByTestId('send').waitFor({ timeout: 30000 }));

try {
  const email = `e2e-${Date.now()}@example.com`;
  await page.goto(`${BASE}/signup`);
  const first = await page.getByTestId('first-admin-notice').isVisible().catch(() => false);
  if (!external) check(first, 'first sign-up explains the first account becomes admin');
  await axe('sign-up');
  await page.fill('#auth-name', 'Ada Admin');
  await page.getByTestId('auth-email').fill(email);
  await page.getByTestId('auth-password').fill('correct horse battery');
  await page.getByTestId('auth-submit').click();
  await page.getByTestId('composer').waitFor();
  check(true, 'signed up and landed in the chat');

  await page.getByTestId('composer').fill(external ? 'Hello there' : 'think tool context hello');
  await page.keyboard.press('Enter');
  check(await page.getByTestId('stop').waitFor({ timeout: 5000 }).then(() => true, () => false), 'stop button while streaming');
  await waitDone();
  check(/\/c\//.test(page.url()), 'URL moved to /c/{id}');
  if (!external) {
    const a = assistant();
    check((await a.locator('table td').count()) === 4, 'GFM table rendered');
    check((await a.locator('.katex').count()) >= 2, 'KaTeX math rendered');
    check((await a.locator('.hljs-keyword').count()) > 0, 'code highlighted');
    check((await a.locator('img').count()) === 0 && (await a.locator('button.img-load').count()) === 1, 'images are click-to-load placeholders');
    check((await a.getByTestId('tool-step').count()) === 1 && (await a.getByTestId('thinking').count()) === 1, 'tool step and thinking shown');
    check((await a.getByTestId('context-notice').count()) === 1, 'context notice shown');
    check(/tokens/.test(await a.getByTestId('message-meta').textContent()), 'metadata has tokens');
    check((await page.getByTestId('sidebar-item').first().textContent()).includes('<b>title</b>'), 'HTML in titles shown as text');
  }
  await axe('chat (light)');
  await page.screenshot({ path: `${SHOTS}/chat-light.png` });

  await assistant().getByTestId('regenerate').click();
  await waitDone();
  check((await page.locator('[data-role=assistant] [data-testid=branch-label]').last().textContent()) === '2/2', 'regenerate creates 2/2');
  await page.locator('[data-role=assistant] [data-testid=branch-prev]').last().click();
  await page.waitForTimeout(300);
  check((await page.locator('[data-role=assistant] [data-testid=branch-label]').last().textContent()) === '1/2', 'branch prev shows 1/2');

  const u = page.locator('[data-testid=message][data-role=user]').last();
  await u.hover();
  await u.getByTestId('edit-message').click();
  await page.getByTestId('edit-input').fill('short edited question');
  await page.getByTestId('edit-submit').click();
  await waitDone();
  check((await page.locator('[data-role=user] [data-testid=branch-label]').last().textContent()) === '2/2', 'edit creates a user branch 2/2');

  if (!external) {
    await page.getByTestId('composer').fill('xss please');
    await page.getByTestId('send').click();
    await waitDone();
    const x = assistant();
    check((await x.locator('img, script, iframe, [onerror], [onload]').count()) === 0, 'XSS payloads inert in the stream and history');

    await page.getByTestId('composer').fill('long answer please');
    await page.getByTestId('send').click();
    await page.waitForTimeout(500);
    await page.keyboard.press('Escape');
    await waitDone();
    check((await assistant().getAttribute('data-status')) === 'cancelled', 'Esc stops generating');

    await page.getByTestId('composer').fill('please fail');
    await page.getByTestId('send').click();
    await page.getByTestId('message-error').last().waitFor({ timeout: 10000 });
    check((await page.getByTestId('retry').count()) >= 1, 'error shown with Retry');
  }

  await page.locator('[data-testid=thumbs-up]').first().click();
  await page.waitForTimeout(300);
  check((await page.locator('[data-testid=thumbs-up]').first().getAttribute('aria-pressed')) === 'true', 'thumbs up saved');

  await page.keyboard.press('Control+k');
  check(await page.getByTestId('search-input').evaluate((el) => el === document.activeElement), 'Ctrl+K focuses search');
  if (!external) {
    await page.keyboard.type('greet');
    await page.getByTestId('search-hit').first().waitFor({ timeout: 5000 });
    check((await page.getByTestId('search-hit').first().locator('mark').textContent()) === 'greet', 'search highlights with <mark>');
  }
  await page.getByTestId('search-input').fill('');

  await page.keyboard.press('Control+Shift+O');
  await page.waitForTimeout(200);
  check(new URL(page.url()).pathname === '/', 'Ctrl+Shift+O starts a new chat');

  await page.getByTestId('nav-settings').click();
  await page.getByTestId('theme-dark').check();
  await page.waitForTimeout(300);
  check((await page.evaluate(() => document.documentElement.dataset.theme)) === 'dark', 'dark theme applied');
  await axe('settings (dark)');
  await page.getByTestId('settings-tab-keys').click();
  await page.getByTestId('key-name').fill('laptop');
  await page.getByTestId('create-key').click();
  await page.getByTestId('created-key').waitFor();
  check((await page.locator('#new-key').inputValue()).startsWith('pk-'), 'API key shown once after creation');
  await axe('API keys (dark)');

  await page.getByTestId('nav-admin').click();
  await page.getByTestId('users-table').waitFor();
  await axe('admin users (dark)');
  await page.getByTestId('admin-tab-providers').click();
  await page.getByTestId('providers-table').waitFor();
  await axe('admin providers (dark)');

  await page.getByTestId('sidebar-item').first().locator('a').click();
  await page.locator('[data-testid=message]').first().waitFor();
  await page.waitForTimeout(400);
  await axe('chat (dark)');
  await page.setViewportSize({ width: 375, height: 740 });
  await page.waitForTimeout(300);
  check((await page.evaluate(() => document.documentElement.scrollWidth)) <= 375, 'no horizontal overflow at 375 px');
  await axe('chat at 375 px');
  await page.getByTestId('open-sidebar').click();
  await page.screenshot({ path: `${SHOTS}/mobile-sidebar.png` });
  await page.setViewportSize({ width: 1280, height: 850 });

  await page.keyboard.press('Control+/');
  check(await page.getByTestId('help-dialog').isVisible(), 'shortcut help dialog');
  await page.keyboard.press('Escape');

  const sw = await page.evaluate(async () => {
    if (!('serviceWorker' in navigator)) return 'unsupported';
    const reg = await Promise.race([navigator.serviceWorker.ready, new Promise((r) => setTimeout(() => r(null), 5000))]);
    if (!reg) return 'not registered';
    const names = [];
    for (const k of await caches.keys()) for (const req of await (await caches.open(k)).keys()) names.push(new URL(req.url).pathname);
    return names;
  });
  check(Array.isArray(sw) && sw.length > 0 && !sw.some((p) => p.startsWith('/api') || p.startsWith('/v1')), `service worker caches only the shell (${Array.isArray(sw) ? sw.length + ' entries' : sw})`);

  if (!external) {
    await page.evaluate(() => fetch('/api/test/expire', { method: 'POST', headers: { 'X-CSRF-Token': document.cookie.match(/parley_csrf=([^;]+)/)[1] } }));
    await page.getByTestId('nav-settings').click();
    await page.getByTestId('settings-tab-keys').click();
    await page.waitForURL(/\/login/, { timeout: 5000 }).catch(() => {});
    check(/session expired/i.test(await page.getByTestId('auth-flash').textContent().catch(() => '')), '401 sends to sign-in with "Your session expired"');
    await axe('sign-in');
  }
} catch (e) {
  check(false, `unexpected: ${e.message}`);
  await page.screenshot({ path: `${SHOTS}/failure.png` }).catch(() => {});
}

const cspErrors = consoleErrors.filter((t) => /Content Security Policy/i.test(t));
check(cspErrors.length === 0, `no CSP violations${cspErrors.length ? ': ' + cspErrors.join(' | ') : ''}`);
check(dialogs.length === 0, 'no alert() ever ran');
const unexpected = consoleErrors.filter((t) => !/status of 401|ERR_NAME_NOT_RESOLVED|Content Security Policy/.test(t));
check(unexpected.length === 0, `no unexpected console errors${unexpected.length ? ': ' + unexpected.join(' | ') : ''}`);
await browser.close();
server?.kill();
console.log(failures ? `${failures} check(s) failed` : 'all checks passed');
process.exit(failures ? 1 : 0);
