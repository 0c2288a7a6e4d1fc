// The /playground page in a real browser (Debian's Chromium, driven by playwright-core), used as a
// person uses it: paste the token, type a prompt, send, read the screen. Every request to another
// origin is refused and recorded; so are page errors and Content-Security-Policy violations.
//
// Flows, in one page (each after "New chat"):
//   mint      — "Mint (local)" (make dev's gateway only) fills the token field, and a chat works with it
//   streamed  — a slow scripted answer: the answer is seen part-written, then complete
//   markup    — a prompt with HTML in it: shown as text, no element made from it
//   approval  — "Ask me before running: calculator", "What is 17 * 23?": Approve, the tool runs
//   denial    — the same, Deny: the tool never runs, the model is told it was denied
//   reload    — a 200-token answer; the page is reloaded mid-answer and carries on
//   noMint    — another tab where GET /playground/dev-token is a 404, as deployed: no Mint button
//
// Usage (env BASE and JWT; CHROMIUM defaults to /usr/bin/chromium): node playground_page.mjs
// Prints one JSON object on stdout: {flows: {name: {runId, status, answer, prompt, activity, usage,
// seqs, turns, ...}}, streamRequests, offOrigin, pageErrors, cspViolations}.
import { openOfflineBrowser } from './offline_browser.mjs';

const BASE = process.env.BASE;
const JWT = process.env.JWT;
const TIMEOUT_MS = Number(process.env.PLAYGROUND_TIMEOUT_MS ?? 30000);
if (!BASE || !JWT) throw new Error('set BASE and JWT');
const origin = new URL(BASE).origin;

const lastTurn = '#turns > li.turn:last-child';

async function sendPrompt(page, text) {
  await page.fill('#prompt', text);
  await page.click('#send');
  await page.waitForSelector(`${lastTurn}[data-run-id]`, { timeout: TIMEOUT_MS });
  return page.getAttribute(lastTurn, 'data-run-id');
}

async function waitForEnd(page) {
  await page.waitForFunction((selector) => {
    const status = document.querySelector(selector)?.dataset.status;
    return ['succeeded', 'failed', 'cancelled', 'expired'].includes(status);
  }, lastTurn, { timeout: TIMEOUT_MS });
}

async function readTurn(page) {
  return page.evaluate((selector) => {
    const turn = document.querySelector(selector);
    return {
      runId: turn.dataset.runId,
      status: turn.dataset.status,
      prompt: turn.querySelector('.prompt').textContent,
      answer: turn.querySelector('.answer').textContent,
      activity: [...turn.querySelectorAll('.activity li')].map((li) => li.textContent),
      usage: turn.querySelector('.usage')?.textContent ?? null,
      approvals: turn.querySelectorAll('.approval').length,
      turns: document.querySelectorAll('#turns > li.turn').length,
      turnsForRun: document.querySelectorAll(`#turns > li.turn[data-run-id="${turn.dataset.runId}"]`).length,
      seqs: [...document.querySelectorAll('#events li[data-seq]')].map((li) => Number(li.dataset.seq)),
      inspected: document.querySelector('#inspected-run').textContent,
      error: document.querySelector('#error').textContent,
    };
  }, lastTurn);
}

async function newChat(page, { approvalRequired = '' } = {}) {
  await page.click('#new-chat');
  await page.fill('#approval-required', approvalRequired);
}

async function mint(page) {
  const button = page.locator('#mint-token');
  await button.waitFor({ state: 'visible', timeout: TIMEOUT_MS });
  await page.fill('#token', '');
  await page.fill('#org', '');
  await button.click();
  await page.waitForFunction(() => document.querySelector('#token').value.length > 0, null, { timeout: TIMEOUT_MS });
  const minted = await page.inputValue('#token');
  await newChat(page);
  await sendPrompt(page, 'Hello from a minted token');
  await waitForEnd(page);
  const turn = await readTurn(page);
  await page.fill('#token', JWT); // the other flows use the stack's own token
  return { minted, ...turn };
}

async function noMint(context) {
  const page = await context.newPage();
  try {
    await page.route('**/playground/dev-token', (route) => route.fulfill({
      status: 404, contentType: 'application/json', body: '{"error":{"code":"not_found","message":"no route"}}' }));
    const probed = page.waitForResponse((response) => response.url().endsWith('/playground/dev-token'), { timeout: TIMEOUT_MS });
    await page.goto(`${BASE}/playground`);
    const probe = await probed;
    await page.waitForLoadState('networkidle');
    return { probeStatus: probe.status(), mintButtonHidden: await page.locator('#mint-token').isHidden(),
      mintButtonInPage: await page.locator('#mint-token').count() };
  } finally {
    await page.close();
  }
}

async function streamed(page) {
  await newChat(page);
  await sendPrompt(page, '[[scripted tokens=40 delay_ms=40]]');
  // Part of the answer on screen while the run is still going: it streams in.
  const seen = await page.waitForFunction((selector) => {
    const turn = document.querySelector(selector);
    const text = turn.querySelector('.answer').textContent;
    return turn.dataset.status === 'running' && text.length > 0 && text;
  }, lastTurn, { timeout: TIMEOUT_MS });
  const partial = await seen.jsonValue();
  await waitForEnd(page);
  return { partial, ...(await readTurn(page)) };
}

async function markup(page) {
  await newChat(page);
  await sendPrompt(page, 'Hello <img src=x id=injected> <b>bold</b>');
  await waitForEnd(page);
  return { injectedElements: await page.locator('#injected, #turns b').count(), ...(await readTurn(page)) };
}

async function approval(page) {
  await newChat(page, { approvalRequired: 'calculator' });
  await sendPrompt(page, 'What is 17 * 23?');
  const approve = page.locator(`${lastTurn} .approval button.approve`);
  await approve.waitFor({ timeout: TIMEOUT_MS });
  const asked = await page.textContent(`${lastTurn} .approval p`);
  const activityBeforeApproval = await page.locator(`${lastTurn} .activity li`).allTextContents();
  await approve.click();
  await waitForEnd(page);
  return { asked, activityBeforeApproval, ...(await readTurn(page)) };
}

async function denial(page) {
  await newChat(page, { approvalRequired: 'calculator' });
  await sendPrompt(page, 'What is 17 * 23?');
  const deny = page.locator(`${lastTurn} .approval button.deny`);
  await deny.waitFor({ timeout: TIMEOUT_MS });
  await deny.click();
  await waitForEnd(page);
  return readTurn(page);
}

async function reload(page) {
  await newChat(page);
  const runId = await sendPrompt(page, '[[scripted tokens=200 delay_ms=20]]');
  await page.waitForFunction((selector) => {
    const turn = document.querySelector(selector);
    return turn.dataset.status === 'running' && turn.querySelector('.answer').textContent.length >= 40;
  }, lastTurn, { timeout: TIMEOUT_MS });
  await page.reload();
  const afterReload = await page.evaluate((selector) => {
    const turn = document.querySelector(selector);
    return { status: turn?.dataset.status ?? null, answer: turn?.querySelector('.answer').textContent ?? null };
  }, lastTurn);
  await waitForEnd(page);
  return { startedRunId: runId, afterReload, ...(await readTurn(page)) };
}

const result = { flows: {}, streamRequests: [], offOrigin: [], pageErrors: [], cspViolations: [], failedResponses: [] };
const browser = await openOfflineBrowser('playground', origin, result.offOrigin);
const { context } = browser;
try {
  const page = await context.newPage();
  page.on('pageerror', (error) => result.pageErrors.push(String(error?.message ?? error)));
  page.on('console', (message) => {
    if (/Content Security Policy/i.test(message.text())) result.cspViolations.push(message.text());
  });
  page.on('request', (request) => {
    const url = new URL(request.url());
    if (/^\/v1\/runs\/[^/]+\/stream$/.test(url.pathname)) {
      result.streamRequests.push({ path: url.pathname, lastEventId: request.headers()['last-event-id'] ?? null });
    }
  });
  page.on('response', (response) => {
    if (response.status() >= 400) result.failedResponses.push({ url: response.url(), status: response.status() });
  });
  const landing = await page.goto(`${BASE}/playground`);
  result.landing = { status: landing.status(), csp: landing.headers()['content-security-policy'] ?? null };
  result.title = await page.title();
  await page.fill('#token', JWT);
  for (const [name, flow] of Object.entries({ mint, streamed, markup, approval, denial, reload })) {
    try {
      result.flows[name] = await flow(page);
    } catch (error) {
      result.flows[name] = { failed: String(error?.message ?? error), ...(await readTurn(page).catch(() => ({}))) };
    }
  }
  try {
    result.flows.noMint = await noMint(context);
  } catch (error) {
    result.flows.noMint = { failed: String(error?.message ?? error) };
  }
} finally {
  await browser.close();
}
process.stdout.write(JSON.stringify(result) + '\n');
