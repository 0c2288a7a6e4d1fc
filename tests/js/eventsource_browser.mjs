// Seed 000's browser flow in a real browser: Debian's Chromium, driven by playwright-core.
// The JWT sits in the `access_token` cookie (as sign-in would leave it); a page on the stack's own
// origin runs seed 000's step 1 (fetch POST /ai/agent/stream) and step 2 (EventSource on
// /ai/stream/{streamId}?orgid=my-org with withCredentials), collecting `data` chunks until `end`.
//
// Usage (env BASE, JWT; CHROMIUM defaults to /usr/bin/chromium):
//   node eventsource_browser.mjs '{"flows": [{"name": "bearer", "auth": "header", "task": "..."},
//                                             {"name": "cookie", "auth": "cookie", "task": "..."}]}'
// `auth: "header"` sends step 1 with `Authorization: Bearer` as the seed shows; `auth: "cookie"`
// leaves it out, so the cookie alone authenticates both steps (an httpOnly cookie is all a page has).
// Prints {"<name>": {status, streamId, chunks, ended, errors, ...}, "userAgent": ...} on stdout.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const BASE = process.env.BASE;
const JWT = process.env.JWT;
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const TIMEOUT_MS = Number(process.env.FLOW_TIMEOUT_MS ?? 30000);
if (!BASE || !JWT) throw new Error('set BASE and JWT');
const { flows } = JSON.parse(process.argv[2] ?? '{"flows": []}');

// Runs inside the page. Step 1 and step 2 are seed 000's code; what the handlers do with the
// events is ours (collect them), and a timeout keeps a stream that never ends from hanging.
async function seed000Flow({ jwt, auth, task, timeoutMs }) {
  const headers = {
    orgid: 'my-org',
    'Content-Type': 'application/json',
  };
  if (auth === 'header') headers.Authorization = `Bearer ${jwt}`;

  // Step 1: kick off the run
  const response = await fetch('/ai/agent/stream', {
    method: 'POST',
    headers,
    body: JSON.stringify({
      task,
      agentRole: 'chat',
      conversationId: 'conv-123',
      context: { aiMode: 'auto' },
    }),
  });
  const started = await response.json();
  if (!response.ok) return { status: response.status, body: started, chunks: [], ended: false, errors: [] };
  const { streamId } = started;

  // Step 2: open the SSE stream
  return await new Promise((resolve) => {
    const chunks = [];
    const errors = [];
    const lastEventIds = [];
    const es = new EventSource(`/ai/stream/${streamId}?orgid=my-org`, {
      withCredentials: true,
    });
    const finish = (ended) => {
      clearTimeout(timer);
      es.close();
      resolve({ status: response.status, streamId, chunks, ended, errors, lastEventIds });
    };
    const timer = setTimeout(() => {
      errors.push({ timeout: true, readyState: es.readyState });
      finish(false);
    }, timeoutMs);
    es.addEventListener('data', (ev) => {
      const chunk = JSON.parse(ev.data);
      chunks.push(chunk);
      lastEventIds.push(ev.lastEventId);
    });
    es.addEventListener('end', () => finish(true));
    es.addEventListener('error', () => {
      // EventSource reports a failed or dropped connection as a bare event; keep its readyState
      // (2 = closed for good, 0 = it will reconnect) and stop, as the seed's handler does.
      errors.push({ readyState: es.readyState });
      finish(false);
    });
  });
}

// A fresh profile each run, so no cookie, cache or service worker of an earlier run is reused.
const userDataDir = mkdtempSync(join(tmpdir(), 'runwire-chromium-'));
const context = await chromium.launchPersistentContext(userDataDir, {
  executablePath: CHROMIUM,
  headless: true,
  args: [
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
  ],
});
const results = {};
try {
  await context.addCookies([
    { name: 'access_token', value: JWT, url: BASE, httpOnly: true, sameSite: 'Lax' },
  ]);
  const page = await context.newPage();
  // Failed responses the page saw, but the favicon the browser asks for on its own.
  const failedResponses = [];
  page.on('response', (response) => {
    if (response.status() >= 400 && !new URL(response.url()).pathname.endsWith('/favicon.ico')) {
      failedResponses.push({ url: response.url(), status: response.status() });
    }
  });
  // Any page of the stack's origin will do: the fetch and the EventSource are same-origin.
  const landing = await page.goto(`${BASE}/healthz`);
  results.landingStatus = landing?.status() ?? null;
  results.userAgent = await page.evaluate(() => navigator.userAgent);
  for (const flow of flows) {
    results[flow.name] = await page.evaluate(seed000Flow, {
      jwt: JWT,
      auth: flow.auth ?? 'header',
      task: flow.task,
      timeoutMs: TIMEOUT_MS,
    });
  }
  results.failedResponses = failedResponses;
} finally {
  await context.close();
  rmSync(userDataDir, { recursive: true, force: true });
}
process.stdout.write(JSON.stringify(results) + '\n');
