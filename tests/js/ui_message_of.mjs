// Reads a UI message stream body (the bytes runwire sent) on stdin, folds it into the assistant's UI
// message with the `ai` package's own parser and reader, and prints what useChat's automatic
// re-send helpers decide about that message.
//   node ui_message_of.mjs < body.txt
import {
  lastAssistantMessageIsCompleteWithApprovalResponses,
  lastAssistantMessageIsCompleteWithToolCalls,
  parseJsonEventStream,
  readUIMessageStream,
  uiMessageChunkSchema,
} from 'ai';

const chunks = [];
for await (const piece of process.stdin) chunks.push(piece);
const body = new Blob(chunks).stream();
const parsed = parseJsonEventStream({ stream: body, schema: uiMessageChunkSchema }).pipeThrough(
  new TransformStream({
    transform(result, controller) {
      if (!result.success) throw result.error;
      controller.enqueue(result.value);
    },
  }),
);
let message = null;
for await (const snapshot of readUIMessageStream({ stream: parsed })) message = snapshot;
const messages = message ? [message] : [];
console.log(JSON.stringify({
  partTypes: message ? message.parts.map((p) => p.type) : [],
  completeWithToolCalls: lastAssistantMessageIsCompleteWithToolCalls({ messages }),
  completeWithApprovalResponses: lastAssistantMessageIsCompleteWithApprovalResponses({ messages }),
}));
