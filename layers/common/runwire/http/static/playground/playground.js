// The runwire playground (issue 11): start runs with POST /v1/runs, follow each with the native
// stream GET /v1/runs/{id}/stream (fetch and a streaming reader, so the token goes in the
// Authorization header), answer approvals with POST /v1/runs/{id}/approvals.
//
// Everything the page shows is built from one state object kept in sessionStorage, saved after
// every event it applies (bounded: the last turn keeps its last MAX_STORED_EVENTS events for the
// inspector, older turns none). A reload therefore finds the run, its text so far and the seq of
// the last event applied, and reconnects with `Last-Event-ID: <that seq>`: the server sends exactly
// the events after it, and an event at or below it is never applied twice.
//
// Model and tool text are rendered with textContent only, never parsed as markup.

const STORAGE_KEY = 'runwire.playground.v1';
const MAX_STORED_EVENTS = 500;
const DEV_TOKEN_PATH = '/playground/dev-token'; // make dev's gateway only (devstack/dev_token.py)
export const MAX_RECONNECTS = 5;
export const RECONNECT_BASE_MS = 500;
// The status a turn ends with when the page stops following its run (the run itself may go on).
export const DISCONNECTED = 'disconnected';

// --- state ------------------------------------------------------------------------------------------
function newConversationId() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

function freshState() {
  return {
    settings: { token: '', org: '', agentRole: 'chat', approvalRequired: '', conversationId: newConversationId() },
    turns: [],
    inspected: null,
  };
}

function loadState() {
  try {
    const saved = JSON.parse(sessionStorage.getItem(STORAGE_KEY) ?? 'null');
    if (saved && Array.isArray(saved.turns) && saved.settings) return saved;
  } catch {
    // an unreadable state starts afresh
  }
  return freshState();
}

let state; // loaded by start(): the module can be imported without a page (its SSE decoder's tests)

// What is stored: the whole state but the events, of which the last turn keeps its last `keep`.
// Saving after every event therefore costs at most MAX_STORED_EVENTS events, however long the chat.
function storedState(keep) {
  const last = state.turns.length - 1;
  const turns = state.turns.map((turn, index) => {
    const events = index === last && keep > 0 ? turn.events.slice(-keep) : [];
    return { ...turn, events, eventsNotKept: (turn.eventsNotKept ?? 0) + turn.events.length - events.length };
  });
  return { ...state, turns };
}

function save() {
  try {
    sessionStorage.setItem(STORAGE_KEY, JSON.stringify(storedState(MAX_STORED_EVENTS)));
  } catch {
    // Over the tab's quota: keep what a reload needs to resume (run ids, text, last seqs), no events.
    try {
      sessionStorage.setItem(STORAGE_KEY, JSON.stringify(storedState(0)));
    } catch {
      showError('This tab\'s storage is full: a reload will not find this chat.');
    }
  }
}

function activeTurn() {
  const last = state.turns[state.turns.length - 1];
  return last && !last.ended ? last : null;
}

// --- the API ------------------------------------------------------------------------------------------
class ApiError extends Error {
  constructor(status, code, message) {
    super(`${status} ${code}: ${message}`);
    this.status = status;
    this.code = code;
  }
}

function authHeaders() {
  const headers = { Authorization: `Bearer ${state.settings.token.trim()}` };
  if (state.settings.org.trim()) headers.orgid = state.settings.org.trim();
  return headers;
}

async function errorOf(response) {
  let body = null;
  try {
    body = await response.json();
  } catch {
    // not JSON: the status says enough
  }
  const error = body?.error ?? {};
  return new ApiError(response.status, error.code ?? 'http_error', error.message ?? response.statusText);
}

async function callApi(method, path, body) {
  const headers = authHeaders();
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  if (!response.ok) throw await errorOf(response);
  return response.status === 204 ? null : response.json();
}

const runPath = (runId) => `/v1/runs/${encodeURIComponent(runId)}`;

// --- Server-Sent Events, as the HTML spec's "event stream interpretation" reads them -----------------
// Yields {type, data, id} per dispatched event. `id` is the event's own id field, or null when it
// has none (the spec's "last event ID" buffer is kept by the caller: turn.lastSeq).
export async function* sseEvents(body) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  let event = { type: '', data: [], id: null };
  const field = (line) => {
    if (line.startsWith(':')) return; // a comment (the server's pings)
    const colon = line.indexOf(':');
    const name = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (name === 'event') event.type = value;
    else if (name === 'data') event.data.push(value);
    else if (name === 'id' && !value.includes('\0')) event.id = value;
  };
  try {
    for (;;) {
      const { value, done } = await reader.read();
      // At the end of the stream a last lone \r is a line end (no \n can follow it any more).
      // After that, an event without its blank line is dropped, as the spec says.
      if (done) buffer += buffer.endsWith('\r') ? '\n' : '';
      else buffer += value;
      for (;;) {
        const match = /\r\n|\r|\n/.exec(buffer);
        // A lone \r at the end may be the first half of \r\n: wait for the next read.
        if (!match || (match[0] === '\r' && match.index === buffer.length - 1)) break;
        const line = buffer.slice(0, match.index);
        buffer = buffer.slice(match.index + match[0].length);
        if (line !== '') {
          field(line);
        } else if (event.data.length) {
          yield { type: event.type || 'message', data: event.data.join('\n'), id: event.id };
          event = { type: '', data: [], id: null };
        } else {
          event = { type: '', data: [], id: null };
        }
      }
      if (done) return;
    }
  } finally {
    reader.cancel().catch(() => {});
  }
}

// --- applying a run's events ----------------------------------------------------------------------
function applyEvent(turn, message) {
  let data;
  try {
    data = JSON.parse(message.data);
  } catch {
    return;
  }
  if (message.id === null) {
    // no id: not a chunk of the run's log (the native stream's `status: recovering` notice)
    if (data.type === 'status') turn.phase = data.phase;
    return;
  }
  const seq = Number(message.id);
  if (!Number.isInteger(seq) || seq <= turn.lastSeq) return; // already applied: never twice
  turn.lastSeq = seq;
  turn.phase = null;
  turn.events.push({ seq, event: message.type, data });
  if (message.type === 'end') {
    turn.status = data.status;
    turn.ended = true;
    turn.pending = [];
    return;
  }
  turn.status = 'running';
  if (data.type !== 'requires_action') turn.pending = [];
  switch (data.type) {
    case 'text':
      turn.text += data.text;
      break;
    case 'tool_use':
      turn.activity.push({ kind: 'tool_use', text: `calls ${data.name}(${JSON.stringify(data.input)})${data.executor === 'client' ? ' on the client' : ''}` });
      break;
    case 'tool_result':
      turn.activity.push({ kind: data.isError ? 'error' : 'tool_result', text: `${data.isError ? 'error' : 'result'}: ${JSON.stringify(data.output)}` });
      break;
    case 'interrupted':
      turn.activity.push({ kind: 'error', text: `model call interrupted (${data.reason}); carrying on` });
      break;
    case 'requires_action':
      turn.status = 'requires_action';
      turn.pending = data.actions;
      break;
    case 'usage':
      turn.usage = { model: data.model, inputTokens: data.inputTokens, outputTokens: data.outputTokens };
      break;
    case 'error':
      turn.activity.push({ kind: 'error', text: `${data.code}: ${data.message}` });
      break;
    default:
      break; // step_end and others: shown in the inspector
  }
}

// --- following a run's stream -------------------------------------------------------------------------
// The stream function closes every connection after at most 300 s, and a run waiting for an approval
// (valid for an hour) sends only pings meanwhile. So a connection that delivered any bytes, pings
// included, was alive: the page reconnects after RECONNECT_BASE_MS and starts the count again. Only a
// connection that could not be opened (a network error, a 5xx or 429) or that closed before its first
// byte is a failure; after MAX_RECONNECTS failures in a row the page stops following the run.

// Retry-After (RFC 9110, 10.2.3): delay-seconds or an HTTP-date; null when absent or unreadable.
export function retryAfterMs(value, now = Date.now()) {
  const text = (value ?? '').trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  const date = text ? Date.parse(text) : NaN;
  return Number.isNaN(date) ? null : Math.max(0, date - now);
}

function stopFollowing(turn, message) {
  turn.status = DISCONNECTED;
  turn.failure = message;
  turn.ended = true; // pending approvals stay: answering one still works, and a reload follows on
}

async function readEnding(turn, io) {
  // The stream's 204: the run has ended and nothing lies after lastSeq; its record says how it ended.
  try {
    const response = await io.fetch(runPath(turn.runId), { headers: io.headers(), cache: 'no-store' });
    if (!response.ok) throw await errorOf(response);
    turn.status = (await response.json()).status;
    turn.ended = true;
    turn.pending = [];
  } catch (error) {
    stopFollowing(turn, `the run has ended, but reading how failed: ${error.message}`);
  }
}

// One connection: {alive: whether it delivered any bytes, waitMs: the server's Retry-After}.
async function connectOnce(turn, io) {
  const headers = { ...io.headers(), Accept: 'text/event-stream' };
  if (turn.lastSeq > 0) headers['Last-Event-ID'] = String(turn.lastSeq);
  let response;
  try {
    response = await io.fetch(`${runPath(turn.runId)}/stream`, { headers, cache: 'no-store' });
  } catch (error) {
    turn.connection = `connection failed: ${error.message}`;
    return { alive: false, waitMs: null };
  }
  if (response.status === 204) {
    await readEnding(turn, io);
    return { alive: true, waitMs: null };
  }
  if (!response.ok) {
    const error = await errorOf(response);
    if (response.status < 500 && response.status !== 429) stopFollowing(turn, error.message); // 401, 404…
    else turn.connection = error.message;
    return { alive: false, waitMs: retryAfterMs(response.headers.get('Retry-After')) };
  }
  turn.connection = null;
  let alive = false;
  const counted = response.body.pipeThrough(new TransformStream({
    transform(chunk, controller) {
      if (chunk.byteLength > 0) alive = true;
      controller.enqueue(chunk);
    },
  }));
  try {
    for await (const message of sseEvents(counted)) {
      applyEvent(turn, message);
      io.changed();
    }
  } catch (error) {
    turn.connection = `the stream dropped: ${error.message}`;
  }
  if (!alive && turn.connection === null) turn.connection = 'the stream closed before sending anything';
  return { alive, waitMs: null };
}

// Follows a run until its end event (or 204), or until the page gives up; either way the turn ends.
// io: {fetch, headers() (auth), sleep(ms), changed() (after each applied event or state change)}.
export async function followRun(turn, io) {
  let failures = 0;
  try {
    while (!turn.ended) {
      const { alive, waitMs } = await connectOnce(turn, io);
      if (turn.ended) break;
      failures = alive ? 0 : failures + 1;
      if (failures > MAX_RECONNECTS) {
        stopFollowing(turn, `the stream could not be reopened in ${MAX_RECONNECTS} reconnects (${turn.connection}); reload the page to try again`);
        break;
      }
      turn.connection = `reconnecting after seq ${turn.lastSeq}…`;
      io.changed();
      await io.sleep(Math.max(waitMs ?? 0, RECONNECT_BASE_MS * 2 ** Math.max(0, failures - 1)));
    }
  } catch (error) {
    stopFollowing(turn, error.message);
  } finally {
    turn.connection = null;
    io.changed();
  }
}

// One follower per run id in this page.
const following = new Set();

async function follow(turn) {
  if (following.has(turn.runId)) return;
  following.add(turn.runId);
  try {
    await followRun(turn, {
      fetch: (url, init) => fetch(url, init),
      headers: authHeaders,
      sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
      changed: () => {
        save();
        update(turn);
      },
    });
  } finally {
    following.delete(turn.runId);
  }
}

// --- user actions -----------------------------------------------------------------------------------
function showError(message) {
  document.getElementById('error').textContent = message ?? '';
}

// make dev's gateway answers GET /playground/dev-token with 204; anywhere else it is a 404 and the
// button stays hidden.
async function offerDevToken() {
  let response;
  try {
    response = await fetch(DEV_TOKEN_PATH, { cache: 'no-store' });
  } catch {
    return;
  }
  document.getElementById('mint-token').hidden = response.status !== 204;
}

async function mintDevToken() {
  const org = state.settings.org.trim();
  try {
    const response = await fetch(DEV_TOKEN_PATH, {
      method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(org ? { org } : {}),
    });
    if (!response.ok) throw await errorOf(response);
    state.settings.token = (await response.json()).token;
  } catch (error) {
    showError(error.message);
    return;
  }
  document.getElementById('token').value = state.settings.token;
  showError('');
  save();
}

function toolNames(text) {
  return text.split(/[\s,]+/).map((name) => name.trim()).filter(Boolean);
}

async function send(task) {
  const settings = state.settings;
  if (!settings.token.trim()) {
    showError('Paste a token first (locally: Mint (local), or make token).');
    return;
  }
  const body = { task, agentRole: settings.agentRole.trim() || 'chat' };
  if (settings.conversationId.trim()) body.conversationId = settings.conversationId.trim();
  const approvals = toolNames(settings.approvalRequired);
  if (approvals.length) body.approvalRequired = approvals;
  showError('');
  let started;
  try {
    started = await callApi('POST', '/v1/runs', body);
  } catch (error) {
    showError(error.message);
    return;
  }
  const turn = {
    prompt: task, runId: started.runId, agentRole: body.agentRole, status: started.status, phase: null,
    text: '', activity: [], events: [], lastSeq: 0, pending: [], answered: {}, usage: null,
    ended: false, failure: null, connection: null,
  };
  state.turns.push(turn);
  state.inspected = turn.runId;
  save();
  render();
  await follow(turn);
}

async function answerApproval(turn, action, approved) {
  turn.answered[action.approvalId] = approved ? 'approved' : 'denied';
  update(turn);
  const decision = { approvalId: action.approvalId, approved };
  if (!approved) decision.reason = 'denied in the playground';
  try {
    await callApi('POST', `${runPath(turn.runId)}/approvals`, { approvals: [decision] });
    save();
  } catch (error) {
    delete turn.answered[action.approvalId];
    showError(error.message);
  }
  update(turn);
}

async function cancel() {
  const turn = activeTurn();
  if (!turn) return;
  try {
    await callApi('POST', `${runPath(turn.runId)}/cancel`);
  } catch (error) {
    showError(error.message);
  }
}

// --- rendering (textContent only) ---------------------------------------------------------------------
function element(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (name === 'text') node.textContent = value;
    else if (name === 'className') node.className = value;
    else node.setAttribute(name, value);
  }
  for (const child of children) if (child) node.append(child);
  return node;
}

function renderApproval(turn, action) {
  const answer = turn.answered[action.approvalId];
  const box = element('div', { className: 'approval', 'data-approval-id': action.approvalId },
    element('p', { text: `${action.name}(${JSON.stringify(action.input)}) waits for your approval.` }));
  const approve = element('button', { type: 'button', className: 'approve', text: 'Approve' });
  const deny = element('button', { type: 'button', className: 'deny', text: 'Deny' });
  approve.disabled = deny.disabled = Boolean(answer);
  approve.addEventListener('click', () => answerApproval(turn, action, true));
  deny.addEventListener('click', () => answerApproval(turn, action, false));
  box.append(element('div', { className: 'row' }, approve, deny,
    answer ? element('span', { text: `${answer}; the run carries on…` }) : null));
  return box;
}

function renderTurn(turn) {
  const item = element('li', { className: 'turn', 'data-run-id': turn.runId, 'data-status': turn.status });
  item.append(element('div', { className: 'prompt', text: turn.prompt }));
  const activity = element('ul', { className: 'activity' });
  for (const entry of turn.activity) activity.append(element('li', { className: entry.kind, text: entry.text }));
  item.append(activity);
  for (const action of turn.pending) {
    if (action.kind === 'approval') item.append(renderApproval(turn, action));
    else activity.append(element('li', { className: 'error', text: `waits for client tool ${action.name}, which this page does not run` }));
  }
  item.append(element('div', { className: 'answer', text: turn.text }));
  const meta = element('div', { className: 'meta' },
    element('span', { className: 'status', text: turn.phase === 'recovering' ? 'recovering' : turn.status }),
    element('span', { text: turn.runId }));
  if (turn.usage) {
    meta.append(element('span', { className: 'usage',
      text: `${turn.usage.model}: ${turn.usage.inputTokens} in, ${turn.usage.outputTokens} out tokens` }));
  }
  if (turn.connection) meta.append(element('span', { text: turn.connection }));
  if (turn.failure) meta.append(element('span', { className: 'failure', text: turn.failure }));
  const inspect = element('button', { type: 'button', className: 'inspect', text: 'inspect' });
  inspect.addEventListener('click', () => { state.inspected = turn.runId; save(); renderInspector(); });
  meta.append(inspect);
  item.append(meta);
  return item;
}

function eventItem(e) {
  return element('li', { 'data-seq': String(e.seq) },
    element('span', { className: 'seq', text: String(e.seq) }),
    element('span', { className: 'name', text: e.event }),
    element('span', { text: JSON.stringify(e.data) }));
}

// The inspector appends the events it has not shown yet while it shows the same turn.
let inspectorShows = { turn: null, count: 0 };

function renderInspector() {
  const turn = state.turns.find((t) => t.runId === state.inspected) ?? state.turns[state.turns.length - 1];
  const title = document.getElementById('inspected-run');
  const list = document.getElementById('events');
  if (!turn) {
    title.textContent = 'No run yet.';
    list.replaceChildren();
    inspectorShows = { turn: null, count: 0 };
    return;
  }
  const notKept = turn.eventsNotKept
    ? `; the ${turn.eventsNotKept} before were not kept in this tab (GET /v1/runs/${turn.runId}/events has them)` : '';
  title.textContent = `${turn.runId}: ${turn.events.length} events, last seq ${turn.lastSeq}${notKept}`;
  if (inspectorShows.turn === turn && inspectorShows.count <= turn.events.length) {
    list.append(...turn.events.slice(inspectorShows.count).map(eventItem));
  } else {
    list.replaceChildren(...turn.events.map(eventItem));
  }
  inspectorShows = { turn, count: turn.events.length };
}

function renderControls() {
  const busy = Boolean(activeTurn());
  document.getElementById('send').disabled = busy;
  document.getElementById('cancel').disabled = !busy;
}

// The page's turns by run id, so an event re-renders its own turn only.
const turnNodes = new Map();

function render() {
  turnNodes.clear();
  document.getElementById('turns').replaceChildren(...state.turns.map((turn) => {
    const node = renderTurn(turn);
    turnNodes.set(turn.runId, node);
    return node;
  }));
  renderInspector();
  renderControls();
}

function update(turn) {
  const node = turnNodes.get(turn.runId);
  if (!node || !state.turns.includes(turn)) return; // a turn no longer on the page (New chat)
  const fresh = renderTurn(turn);
  node.replaceWith(fresh);
  turnNodes.set(turn.runId, fresh);
  renderInspector();
  renderControls();
}

// --- wiring the page ------------------------------------------------------------------------------------
function bindSetting(id, key) {
  const input = document.getElementById(id);
  input.value = state.settings[key];
  input.addEventListener('input', () => { state.settings[key] = input.value; save(); });
}

function start() {
  state = loadState();
  const last = state.turns[state.turns.length - 1];
  if (last?.status === DISCONNECTED) {
    // The page had stopped following this run: a reload tries again, from its last seq.
    last.ended = false;
    last.failure = null;
  }
  bindSetting('token', 'token');
  bindSetting('org', 'org');
  bindSetting('agent-role', 'agentRole');
  bindSetting('approval-required', 'approvalRequired');
  bindSetting('conversation-id', 'conversationId');
  document.getElementById('new-chat').addEventListener('click', () => {
    if (activeTurn()) return;
    state.settings.conversationId = newConversationId();
    document.getElementById('conversation-id').value = state.settings.conversationId;
    state.turns = [];
    state.inspected = null;
    save();
    showError('');
    render();
  });
  const prompt = document.getElementById('prompt');
  const composer = document.getElementById('composer');
  composer.addEventListener('submit', (event) => {
    event.preventDefault();
    const task = prompt.value.trim();
    if (!task || activeTurn()) return;
    prompt.value = '';
    send(task);
  });
  prompt.addEventListener('keydown', (event) => {
    if (event.key === 'Enter' && (event.ctrlKey || event.metaKey)) composer.requestSubmit();
  });
  document.getElementById('cancel').addEventListener('click', cancel);
  document.getElementById('mint-token').addEventListener('click', mintDevToken);
  offerDevToken();
  render();
  const unfinished = activeTurn();
  if (unfinished) follow(unfinished); // a reload in the middle of a run: carry on after its last seq
}

if (typeof document !== 'undefined') start();
