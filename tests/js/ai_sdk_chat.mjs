// Seed 001's surface through the real AI SDK client: `DefaultChatTransport` does what `useChat`
// does on the wire (POST the UI messages, parse the UI message stream v1; GET to resume), and
// `readUIMessageStream` folds the chunks into the assistant's UI message, as a chat UI renders it.
//
// Usage (env BASE = the stack's base URL, JWT = a bearer token; ORGID optional):
//   node ai_sdk_chat.mjs send '{"text": "...", "conversationId": "<uuid>", "currentPage": "/x"}'
//   node ai_sdk_chat.mjs turns '{"texts": ["My name is Alex.", "What is my name?"], "conversationId": "<uuid>"}'
//   node ai_sdk_chat.mjs resume '{"text": "[[scripted tokens=40 delay_ms=60]]", "conversationId": "<uuid>"}'
//   node ai_sdk_chat.mjs reload '{"text": "...", "conversationId": "<uuid>", "extraBody": {...}}'
//   node ai_sdk_chat.mjs reconnect '{"conversationId": "<uuid>"}'
// `"chatId": "<id>"` sends that chat id (useChat's `id`) instead of the conversationId or a random
// one; `"defaultResumeUrl": true` resumes at the SDK's default URL, `{api}/{chatId}/stream`.
// Prints one JSON document on stdout; pytest asserts on it.
import { randomUUID } from 'node:crypto';
import { DefaultChatTransport, isToolUIPart, readUIMessageStream } from 'ai';

const BASE = process.env.BASE;
const JWT = process.env.JWT;
if (!BASE) throw new Error('set BASE to the stack base URL');

const [mode = 'send', rawArgs = '{}'] = process.argv.slice(2);
const args = JSON.parse(rawArgs);

// Every response the transport sees, so the caller can check status, headers and how the body
// ends (the transport itself hands back only the parsed chunks, and skips `data: [DONE]`).
const responses = [];
const bodiesRead = [];
async function recordingFetch(url, init) {
  const response = await fetch(url, init);
  const record = {
    url: String(url),
    method: init?.method ?? 'GET',
    status: response.status,
    headers: Object.fromEntries(response.headers),
    bodyTail: null,
  };
  responses.push(record);
  if (!response.body) return response;
  const [forClient, forRecord] = response.body.tee();
  bodiesRead.push(
    new Response(forRecord).text().then(
      (text) => { record.bodyTail = text.slice(-200); },
      (error) => { record.bodyTail = `(body not read to the end: ${error?.name ?? error})`; },
    ),
  );
  return new Response(forClient, { status: response.status, statusText: response.statusText, headers: response.headers });
}

function authHeaders() {
  const headers = {};
  if (JWT && !args.noAuth) headers.Authorization = `Bearer ${JWT}`;
  if (process.env.ORGID) headers.orgid = process.env.ORGID;
  return headers;
}

function makeTransport() {
  if (args.defaultResumeUrl) {
    return new DefaultChatTransport({ api: `${BASE}/api/agent/chat/stream`, headers: authHeaders, fetch: recordingFetch });
  }
  return new DefaultChatTransport({
    api: `${BASE}/api/agent/chat/stream`,
    headers: authHeaders,
    fetch: recordingFetch,
    // The resume route is /api/agent/chat/{conversationId}/stream, not the SDK's default
    // `${api}/${chatId}/stream`.
    prepareReconnectToStreamRequest: ({ id, headers }) => ({
      api: `${BASE}/api/agent/chat/${encodeURIComponent(id)}/stream`,
      headers,
    }),
  });
}

function userMessage(text) {
  return { id: randomUUID(), role: 'user', parts: [{ type: 'text', text }] };
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
    textParts: parts.filter((p) => p.type === 'text').map((p) => ({ text: p.text, state: p.state ?? null })),
    toolParts: parts.filter(isToolUIPart).map((p) => ({
      type: p.type,
      toolName: p.toolName ?? null,
      toolCallId: p.toolCallId,
      state: p.state,
      input: p.input ?? null,
      output: p.output ?? null,
      errorText: p.errorText ?? null,
    })),
    message,
  };
}

// Splits one chunk stream: one branch builds the UI message, the other keeps the raw chunks so
// the protocol itself (order, deltas) can be checked. `onChunk` sees each chunk as it arrives.
async function consume(stream, { onChunk } = {}) {
  const [forMessage, forChunks] = stream.tee();
  const chunks = [];
  const errors = [];
  const chunksDone = (async () => {
    const reader = forChunks.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      onChunk?.(value);
    }
  })();
  let last;
  for await (const snapshot of readUIMessageStream({
    stream: forMessage,
    terminateOnError: true,
    onError: (error) => errors.push(String(error?.message ?? error)),
  })) {
    last = snapshot;
  }
  await chunksDone;
  return {
    chunkTypes: chunks.map((c) => c.type),
    streamedText: chunks.filter((c) => c.type === 'text-delta').map((c) => c.delta).join(''),
    chunks,
    errors,
    ...summarize(last),
  };
}

function sendStream(transport, messages, { conversationId, currentPage, extraBody, abortSignal } = {}) {
  const body = { ...extraBody };
  if (conversationId) body.conversationId = conversationId;
  if (currentPage) body.currentPage = currentPage;
  return transport.sendMessages({
    chatId: args.chatId ?? conversationId ?? randomUUID(),
    messages,
    trigger: 'submit-message',
    messageId: undefined,
    abortSignal,
    body,
  });
}

async function send(transport, messages, options = {}) {
  return consume(await sendStream(transport, messages, options), { onChunk: options.onChunk });
}

async function reconnect(transport, conversationId) {
  const stream = await transport.reconnectToStream({ chatId: conversationId });
  if (stream === null) return null; // 204: nothing active for this conversation
  return consume(stream);
}

async function main() {
  const transport = makeTransport();
  switch (mode) {
    case 'send': {
      const result = await send(transport, [userMessage(args.text)], args);
      return { ...result, response: responses.at(-1) };
    }
    case 'turns': {
      // Seed 001: "on subsequent turns, send the full accumulated history".
      const history = [];
      const turns = [];
      for (const text of args.texts) {
        history.push(userMessage(text));
        const result = await send(transport, history, { conversationId: args.conversationId });
        history.push(result.message);
        turns.push({ ...result, response: responses.at(-1) });
      }
      return { turns };
    }
    case 'resume': {
      // Start a slow answer; once its first words have arrived, resume the same conversation from
      // a second connection (what a reloaded page does), and read both to the end.
      let resolveFirstDelta;
      let originalFinished = false;
      const firstDelta = new Promise((resolve) => { resolveFirstDelta = resolve; });
      const sent = send(transport, [userMessage(args.text)], {
        conversationId: args.conversationId,
        onChunk: (chunk) => {
          if (chunk.type === 'text-delta') resolveFirstDelta();
          if (chunk.type === 'finish') originalFinished = true;
        },
      });
      await Promise.race([firstDelta, sent]);
      const stream = await transport.reconnectToStream({ chatId: args.chatId ?? args.conversationId });
      const inFlightAtResume = !originalFinished;
      const resumed = stream === null ? null : await consume(stream);
      const original = await sent;
      const afterFinish = await reconnect(transport, args.chatId ?? args.conversationId);
      return { original, resumed, afterFinish, inFlightAtResume, responses };
    }
    case 'reload': {
      // A page reload: the first tab reads the first words and goes away (the fetch is aborted),
      // then the reloaded page resumes the conversation and must get the whole answer.
      const controller = new AbortController();
      const stream = await sendStream(transport, [userMessage(args.text)], {
        conversationId: args.conversationId,
        extraBody: args.extraBody,
        abortSignal: controller.signal,
      });
      const reader = stream.getReader();
      const seenBeforeReload = [];
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        seenBeforeReload.push(value.type);
        if (value.type === 'text-delta') break;
      }
      controller.abort();
      await reader.cancel().catch(() => {});
      const resumed = await reconnect(transport, args.conversationId);
      return { seenBeforeReload, resumed, responses };
    }
    case 'reconnect': {
      const resumed = await reconnect(transport, args.conversationId);
      return { resumed, responses };
    }
    default:
      throw new Error(`unknown mode ${mode}`);
  }
}

try {
  const result = await main();
  await Promise.all(bodiesRead);
  process.stdout.write(JSON.stringify(result) + '\n');
} catch (error) {
  // A failed request surfaces here as useChat's `error` would: the server's body as the message.
  await Promise.allSettled(bodiesRead);
  process.stdout.write(JSON.stringify({ error: String(error?.message ?? error), responses }) + '\n');
  process.exitCode = 3;
}
