// The playground's stream follower (followRun in runwire/http/static/playground/playground.js), the
// page's own code, run against scripted connections instead of a server: each scenario lists what
// each fetch of the run's stream gives (an exception, a status with headers, a body that closes or
// errors), and what GET /v1/runs/{id} answers. Sleeps are recorded, not waited.
//
// Usage: node playground_follow.mjs '<json: {"name": {"connections": [...], "run": {...}}, ...}>'
// A connection: {"throws": message} | {"status", "headers"?, "body"? (text), "json"?, "dropWith"? (message)}.
// Prints {name: {status, ended, failure, lastSeq, text, sleeps, lastEventIds, runReads}}.
import { followRun } from '../../layers/common/runwire/http/static/playground/playground.js';

const MAX_CONNECTIONS = 100;

function responseOf(spec) {
  if (spec.throws) throw new TypeError(spec.throws);
  const headers = { ...(spec.headers ?? {}) };
  if (spec.json !== undefined) {
    return new Response(JSON.stringify(spec.json), { status: spec.status, headers: { 'Content-Type': 'application/json', ...headers } });
  }
  if (spec.status === 204) return new Response(null, { status: 204, headers });
  const bytes = new TextEncoder().encode(spec.body ?? '');
  let pulls = 0;
  const body = new ReadableStream({
    pull(controller) {
      // The bytes first; the drop (or the close) on the next read, as a connection cut after them.
      pulls += 1;
      if (pulls === 1 && bytes.length) controller.enqueue(bytes);
      else if (spec.dropWith) controller.error(new TypeError(spec.dropWith));
      else controller.close();
    },
  });
  return new Response(body, { status: spec.status, headers: { 'Content-Type': 'text/event-stream', ...headers } });
}

async function follow(scenario) {
  const turn = {
    runId: 'run_1', status: 'queued', phase: null, text: '', activity: [], events: [], lastSeq: 0, pending: [],
    answered: {}, usage: null, ended: false, failure: null, connection: null,
  };
  const sleeps = [];
  const lastEventIds = [];
  let connections = 0;
  let runReads = 0;
  await followRun(turn, {
    headers: () => ({ Authorization: 'Bearer t' }),
    sleep: async (ms) => { sleeps.push(ms); },
    changed: () => {},
    fetch: async (url, init) => {
      if (url === '/v1/runs/run_1') {
        runReads += 1;
        return responseOf(scenario.run);
      }
      if (url !== '/v1/runs/run_1/stream') throw new Error(`unexpected fetch ${url}`);
      lastEventIds.push(init.headers['Last-Event-ID'] ?? null);
      if (connections >= MAX_CONNECTIONS || connections >= scenario.connections.length) {
        throw new Error('the scenario has no more connections');
      }
      connections += 1;
      return responseOf(scenario.connections[connections - 1]);
    },
  });
  return {
    status: turn.status, ended: turn.ended, failure: turn.failure, lastSeq: turn.lastSeq, text: turn.text,
    sleeps, lastEventIds, runReads, pending: turn.pending.length,
  };
}

const scenarios = JSON.parse(process.argv[2]);
const result = {};
for (const [name, scenario] of Object.entries(scenarios)) result[name] = await follow(scenario);
process.stdout.write(JSON.stringify(result) + '\n');
