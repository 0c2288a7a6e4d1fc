// The /docs page in a real browser (Debian's Chromium, driven by playwright-core), as a person opens
// it on a machine without internet: every request to another origin is refused and recorded, so a
// page that needs a CDN shows up as blocked requests and no operations.
//
// Usage (env BASE; CHROMIUM defaults to /usr/bin/chromium): node docs_page.mjs
// Prints {"title", "operations": ["GET /v1/runs/{run_id}", ...], "authorize": bool,
//         "offOrigin": [urls], "pageErrors": [...], "failedResponses": [...]} on stdout.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const BASE = process.env.BASE;
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const TIMEOUT_MS = Number(process.env.DOCS_TIMEOUT_MS ?? 30000);
if (!BASE) throw new Error('set BASE');
const origin = new URL(BASE).origin;

const userDataDir = mkdtempSync(join(tmpdir(), 'runwire-docs-'));
const context = await chromium.launchPersistentContext(userDataDir, {
  executablePath: CHROMIUM,
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync'],
});
const result = { offOrigin: [], pageErrors: [], failedResponses: [] };
try {
  await context.route('**/*', (route) => {
    const url = route.request().url();
    if (new URL(url).origin === origin) return route.continue();
    result.offOrigin.push(url);
    return route.abort();
  });
  const page = await context.newPage();
  page.on('pageerror', (error) => result.pageErrors.push(String(error?.message ?? error)));
  page.on('response', (response) => {
    if (response.status() >= 400) result.failedResponses.push({ url: response.url(), status: response.status() });
  });
  await page.goto(`${BASE}/docs`);
  await page.waitForSelector('.opblock', { timeout: TIMEOUT_MS });
  result.title = await page.title();
  result.operations = await page.$$eval('.opblock', (blocks) => blocks.map((block) => {
    const method = block.querySelector('.opblock-summary-method')?.textContent?.trim() ?? '';
    const path = block.querySelector('.opblock-summary-path')?.getAttribute('data-path')
      ?? block.querySelector('.opblock-summary-path')?.textContent?.trim() ?? '';
    return `${method} ${path.replace(/\u200b/g, '')}`;
  }));
  result.authorize = (await page.$('.auth-wrapper .authorize')) !== null;
} finally {
  await context.close();
  rmSync(userDataDir, { recursive: true, force: true });
}
process.stdout.write(JSON.stringify(result) + '\n');
