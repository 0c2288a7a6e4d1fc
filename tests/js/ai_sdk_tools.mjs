// Seed 001's tool loop through the real AI SDK client: the `ai` package's own `AbstractChat` (what
// `useChat` wraps), over `DefaultChatTransport`, with nothing emulated. The chat reads each response
// into its UI messages; the user answers with the chat's own `addToolApprovalResponse` or, from
// `onToolCall`, `addToolOutput`; the chat's `sendAutomaticallyWhen` helper
// (`lastAssistantMessageIsCompleteWithApprovalResponses` / `...WithToolCalls`) decides when to send
// the answer, and the transport posts it as the next request. Only the state store is ours: the
// plain-array `ChatState` a framework binding (React, Vue, Svelte) would otherwise provide.
//
// Usage (env BASE = the stack's base URL, JWT = a bearer token):
//   node ai_sdk_tools.mjs approval '{"text": "What is 17 * 23?", "conversationId": "<uuid>",
//        "approved": true, "reason": "…", "body": {"approvalRequired": ["calculator"]}}'
//   node ai_sdk_tools.mjs client-tool '{"text": "Where am I? Use get_location.", "conversationId": "<uuid>",
//        "toolName": "get_location", "output": {...} | "errorText": "…", "body": {"clientMcpTools": [...]}}'
//   node ai_sdk_tools.mjs replay '{"path": "/v1/runs/<runId>/stream?format=ui-message-stream"}'
// Prints one JSON document on stdout; pytest asserts on it.
import {
  AbstractChat,
  DefaultChatTransport,
  isToolUIPart,
  lastAssistantMessageIsCompleteWithApprovalResponses,
  lastAssistantMessageIsCompleteWithToolCalls,
  readUIMessageStream,
} from 'ai';

const BASE = process.env.BASE;
const JWT = process.env.JWT;
if (!BASE) throw new Error('set BASE to the stack base URL');

const [mode = 'approval', rawArgs = '{}'] = process.argv.slice(2);
const args = JSON.parse(rawArgs);
const TIMEOUT_MS = 60_000;

// Every exchange the transport makes: what it posted, and the whole response body, so the test can
// check the wire itself (the transport hands the chat only the parsed chunks).
const exchanges = [];
const bodiesRead = [];
async function recordingFetch(url, init) {
  const response = await fetch(url, init);
  const exchange = {
    url: String(url),
    method: init?.method ?? 'GET',
    requestBody: init?.body ? JSON.parse(init.body) : null,
    status: response.status,
    headers: Object.fromEntries(response.headers),
    body: null,
  };
  exchanges.push(exchange);
  if (!response.body) return response;
  const [forClient, forRecord] = response.body.tee();
  bodiesRead.push(new Response(forRecord).text().then((text) => { exchange.body = text; }));
  return new Response(forClient, { status: response.status, statusText: response.statusText, headers: response.headers });
}

// The state store a framework binding provides (cf. @ai-sdk/react's ReactChatState): plain arrays,
// replaced on every change, and `structuredClone` snapshots.
class NodeChatState {
  constructor(messages = []) {
    this.messages = messages;
    this.status = 'ready';
    this.error = undefined;
  }
  pushMessage = (message) => { this.messages = this.messages.concat(message); };
  popMessage = () => { this.messages = this.messages.slice(0, -1); };
  replaceMessage = (index, message) => {
    this.messages = [...this.messages.slice(0, index), this.snapshot(message), ...this.messages.slice(index + 1)];
  };
  snapshot = (value) => structuredClone(value);
}

class Chat extends AbstractChat {
  constructor(init) {
    super({ ...init, state: new NodeChatState() });
  }
}

function makeTransport() {
  return new DefaultChatTransport({
    api: `${BASE}/api/agent/chat/stream`,
    headers: () => (JWT ? { Authorization: `Bearer ${JWT}` } : {}),
    // What a useChat app sends with every request: its conversation, its client tools, its policy.
    body: { conversationId: args.conversationId, ...args.body },
    fetch: recordingFetch,
  });
}

// Each time a response has been read to its end, `onFinish` reports it; `nextFinish()` waits for one.
const finishes = [];
const finishWaiters = [];
function onFinish({ message, isError, finishReason }) {
  const finish = { message: structuredClone(message), isError, finishReason: finishReason ?? null };
  finishes.push(finish);
  finishWaiters.splice(0).forEach((resolve) => resolve(finish));
}
function nextFinish() {
  return new Promise((resolve, reject) => {
    finishWaiters.push(resolve);
    setTimeout(() => reject(new Error(`no response finished within ${TIMEOUT_MS} ms`)), TIMEOUT_MS).unref();
  });
}

function summarize(message) {
  if (!message) return null;
  const parts = message.parts ?? [];
  return {
    id: message.id,
    role: message.role,
    metadata: message.metadata ?? null,
    partTypes: parts.map((p) => p.type),
    text: parts.filter((p) => p.type === 'text').map((p) => p.text).join(''),
    toolParts: parts.filter(isToolUIPart).map((p) => ({
      type: p.type,
      toolCallId: p.toolCallId,
      state: p.state,
      input: p.input ?? null,
      output: p.output ?? null,
      errorText: p.errorText ?? null,
      approval: p.approval ?? null,
      providerExecuted: p.providerExecuted ?? null,
    })),
  };
}

function chatResult(chat) {
  return {
    status: chat.status,
    error: chat.error ? String(chat.error.message ?? chat.error) : null,
    messageRoles: chat.messages.map((m) => m.role),
    final: summarize(chat.lastMessage),
    finishes: finishes.map((f) => ({ ...f, message: summarize(f.message) })),
  };
}

async function approval() {
  const chat = new Chat({
    id: args.conversationId,
    transport: makeTransport(),
    sendAutomaticallyWhen: lastAssistantMessageIsCompleteWithApprovalResponses,
    onFinish,
  });
  await chat.sendMessage({ text: args.text });
  const waiting = summarize(chat.lastMessage);
  const requested = chat.lastMessage.parts.find((p) => isToolUIPart(p) && p.state === 'approval-requested');
  if (!requested) return { waiting, ...chatResult(chat) };
  // The user clicks Approve / Deny: the chat marks the part and sends the answer by itself.
  const answered = nextFinish();
  await chat.addToolApprovalResponse({ id: requested.approval.id, approved: args.approved, reason: args.reason });
  await answered;
  return { waiting, approvalId: requested.approval.id, ...chatResult(chat) };
}

async function clientTool() {
  const calls = [];
  const chat = new Chat({
    id: args.conversationId,
    transport: makeTransport(),
    sendAutomaticallyWhen: lastAssistantMessageIsCompleteWithToolCalls,
    onFinish,
    // The useChat way: run the tool on `onToolCall` and hand its output to `addToolOutput`, without
    // awaiting it (awaiting inside the callback would deadlock the chat's job queue).
    onToolCall: ({ toolCall }) => {
      calls.push({ toolName: toolCall.toolName, toolCallId: toolCall.toolCallId, input: toolCall.input });
      if (toolCall.toolName !== args.toolName) return;
      if (args.errorText !== undefined) {
        chat.addToolOutput({ state: 'output-error', tool: toolCall.toolName, toolCallId: toolCall.toolCallId, errorText: args.errorText });
      } else {
        chat.addToolOutput({ tool: toolCall.toolName, toolCallId: toolCall.toolCallId, output: args.output });
      }
    },
  });
  // The answer goes out from inside this call: the chat sends it once the first response has ended.
  await chat.sendMessage({ text: args.text });
  return { calls, ...chatResult(chat) };
}

// A page that reloads and rebuilds a message from a stream URL (a GET through the transport).
async function replay() {
  const transport = new DefaultChatTransport({
    headers: () => (JWT ? { Authorization: `Bearer ${JWT}` } : {}),
    fetch: recordingFetch,
    prepareReconnectToStreamRequest: ({ headers }) => ({ api: `${BASE}${args.path}`, headers }),
  });
  const stream = await transport.reconnectToStream({ chatId: 'replay' });
  if (stream === null) return { message: null, errors: [] };
  const errors = [];
  let last;
  for await (const snapshot of readUIMessageStream({
    stream,
    terminateOnError: true,
    onError: (error) => errors.push(String(error?.message ?? error)),
  })) {
    last = snapshot;
  }
  return { message: summarize(last), errors };
}

const MODES = { approval, 'client-tool': clientTool, replay };

try {
  if (!MODES[mode]) throw new Error(`unknown mode ${mode}`);
  const result = await MODES[mode]();
  await Promise.all(bodiesRead);
  process.stdout.write(JSON.stringify({ ...result, exchanges }) + '\n');
} catch (error) {
  await Promise.allSettled(bodiesRead);
  process.stdout.write(JSON.stringify({ error: String(error?.stack ?? error), exchanges }) + '\n');
  process.exitCode = 3;
}
