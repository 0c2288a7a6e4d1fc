// The runwire playground (issue 11): start runs with POST /v1/runs, follow each with the native
// stream GET /v1/runs/{id}/stream (fetch and a streaming reader, so the token goes in the
// Authorization header), answer approvals with POST /v1/runs/{id}/approvals.
//
// Everything the page shows is built from one state object kept in sessionStorage, saved after
// every event it applies. A reload therefore finds the run, its text so far and the seq of the last
// event applied, and reconnects with `Last-Event-ID: <that seq>`: the server sends exactly the
// events after it, and an event at or below it is never applied twice.
//
// Model and tool text are rendered with textContent only, never parsed as markup.

const STORAGE_KEY = 'runwire.playground.v1';
const MAX_RECONNECTS = 5;
const RECONNECT_BASE_MS = 500;

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

function save() {
  sessionStorage.setItem(STORAGE_KEY, JSON.stringify(state));
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
      if (done) return; // an event without its blank line is dropped, as the spec says
      buffer += value;
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

// One follower per run id in this page.
const following = new Set();

async function follow(turn) {
  if (following.has(turn.runId)) return;
  following.add(turn.runId);
  let failures = 0;
  try {
    while (!turn.ended) {
      const headers = { ...authHeaders(), Accept: 'text/event-stream' };
      if (turn.lastSeq > 0) headers['Last-Event-ID'] = String(turn.lastSeq);
      let response;
      try {
        response = await fetch(`${runPath(turn.runId)}/stream`, { headers, cache: 'no-store' });
      } catch (error) {
        response = null;
        turn.connection = `connection failed: ${error.message}`;
      }
      if (response && response.status === 204) {
        // The run has ended and nothing lies after lastSeq: read how it ended.
        const run = await callApi('GET', runPath(turn.runId));
        turn.status = run.status;
        turn.ended = true;
        break;
      }
      if (response && !response.ok) {
        const error = await errorOf(response);
        if (response.status < 500 && response.status !== 429) {
          turn.connection = null;
          turn.failure = error.message;
          turn.ended = true;
          break;
        }
        turn.connection = error.message;
      }
      if (response && response.ok) {
        turn.connection = null;
        for await (const message of sseEvents(response.body)) {
          const before = turn.lastSeq;
          applyEvent(turn, message);
          if (turn.lastSeq > before) failures = 0;
          save();
          render();
        }
        if (turn.ended) break;
      }
      failures += 1;
      if (failures > MAX_RECONNECTS) {
        turn.failure = `the stream could not be resumed in ${MAX_RECONNECTS} reconnects; reload the page to try again`;
        break;
      }
      turn.connection = `reconnecting after seq ${turn.lastSeq}…`;
      render();
      await new Promise((resolve) => setTimeout(resolve, RECONNECT_BASE_MS * 2 ** (failures - 1)));
    }
  } catch (error) {
    turn.failure = error.message;
  } finally {
    following.delete(turn.runId);
    turn.connection = null;
    save();
    render();
  }
}

// --- user actions -----------------------------------------------------------------------------------
function showError(message) {
  document.getElementById('error').textContent = message ?? '';
}

function toolNames(text) {
  return text.split(/[\s,]+/).map((name) => name.trim()).filter(Boolean);
}

async function send(task) {
  const settings = state.settings;
  if (!settings.token.trim()) {
    showError('Paste a token first (locally: make token).');
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
  render();
  const decision = { approvalId: action.approvalId, approved };
  if (!approved) decision.reason = 'denied in the playground';
  try {
    await callApi('POST', `${runPath(turn.runId)}/approvals`, { approvals: [decision] });
    save();
  } catch (error) {
    delete turn.answered[action.approvalId];
    showError(error.message);
  }
  render();
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
  inspect.addEventListener('click', () => { state.inspected = turn.runId; save(); render(); });
  meta.append(inspect);
  item.append(meta);
  return item;
}

function renderInspector() {
  const turn = state.turns.find((t) => t.runId === state.inspected) ?? state.turns[state.turns.length - 1];
  const title = document.getElementById('inspected-run');
  const list = document.getElementById('events');
  if (!turn) {
    title.textContent = 'No run yet.';
    list.replaceChildren();
    return;
  }
  title.textContent = `${turn.runId}: ${turn.events.length} events, last seq ${turn.lastSeq}`;
  list.replaceChildren(...turn.events.map((e) => element('li', { 'data-seq': String(e.seq) },
    element('span', { className: 'seq', text: String(e.seq) }),
    element('span', { className: 'name', text: e.event }),
    element('span', { text: JSON.stringify(e.data) }))));
}

function render() {
  document.getElementById('turns').replaceChildren(...state.turns.map(renderTurn));
  renderInspector();
  const busy = Boolean(activeTurn());
  document.getElementById('send').disabled = busy;
  document.getElementById('cancel').disabled = !busy;
}

// --- wiring the page ------------------------------------------------------------------------------------
function bindSetting(id, key) {
  const input = document.getElementById(id);
  input.value = state.settings[key];
  input.addEventListener('input', () => { state.settings[key] = input.value; save(); });
}

function start() {
  state = loadState();
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
  render();
  const unfinished = activeTurn();
  if (unfinished) follow(unfinished); // a reload in the middle of a run: carry on after its last seq
}

if (typeof document !== 'undefined') start();
