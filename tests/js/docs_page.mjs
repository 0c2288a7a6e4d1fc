// The /docs page in a real browser (Debian's Chromium, driven by playwright-core), as a person opens
// it on a machine without internet: every request to another origin is refused and recorded, so a
// page that needs a CDN shows up as blocked requests and no operations.
//
// With JWT set, it then does what a person does: "Authorize" with the token, then "Try it out" on
// GET /v1/runs/{run_id} with RUN_ID, "Execute", and reads the status and body the page shows.
//
// Usage (env BASE, JWT and RUN_ID optional; CHROMIUM defaults to /usr/bin/chromium): node docs_page.mjs
// Prints {"title", "operations": ["GET /v1/runs/{run_id}", ...], "authorize": bool,
//         "tryItOut": {"status", "body"} (with JWT), "offOrigin": [urls], "pageErrors": [...],
//         "failedResponses": [...]} on stdout.
import { openOfflineBrowser } from './offline_browser.mjs';

const BASE = process.env.BASE;
const JWT = process.env.JWT;
const RUN_ID = process.env.RUN_ID ?? 'run_nobody';
const TIMEOUT_MS = Number(process.env.DOCS_TIMEOUT_MS ?? 30000);
if (!BASE) throw new Error('set BASE');
const origin = new URL(BASE).origin;

async function tryItOut(page) {
  await page.click('.auth-wrapper .authorize');
  const bearer = page.locator('.auth-container').filter({ hasText: 'bearerAuth' });
  await bearer.locator('input').fill(JWT);
  await bearer.locator('button.authorize').click();
  await page.click('.btn-done');
  const operation = page.locator('#operations-runs-get_run');
  await operation.locator('.opblock-summary').click();
  await operation.locator('.try-out__btn').click();
  await operation.locator('input[placeholder="run_id"]').fill(RUN_ID);
  await operation.locator('.execute').click();
  const live = operation.locator('.live-responses-table .response .response-col_status');
  await live.waitFor({ timeout: TIMEOUT_MS });
  return {
    status: (await live.textContent()).trim(),
    body: (await operation.locator('.live-responses-table .response-col_description pre').first().textContent()).trim(),
  };
}

const result = { offOrigin: [], pageErrors: [], failedResponses: [] };
const browser = await openOfflineBrowser('docs', origin, result.offOrigin);
const { context } = browser;
try {
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
  if (JWT && result.authorize) result.tryItOut = await tryItOut(page);
} finally {
  await browser.close();
}
process.stdout.write(JSON.stringify(result) + '\n');
