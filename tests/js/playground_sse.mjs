// The playground's SSE decoder (sseEvents in runwire/http/static/playground/playground.js), fed
// each case's bytes whole, one byte per read, and split in two at every byte (inside multi-byte
// characters and between \r and \n too), as openai-python's streaming tests do.
//
// Usage: node playground_sse.mjs '<json: {"name": "stream text", ...}>'
// Prints {name: {"whole": [events], "splits": [[events] per split point], "bytewise": [events]}}.
import { sseEvents } from '../../layers/common/runwire/http/static/playground/playground.js';

function streamOf(parts) {
  return new ReadableStream({
    start(controller) {
      for (const part of parts) controller.enqueue(part);
      controller.close();
    },
  });
}

async function decode(parts) {
  const events = [];
  for await (const event of sseEvents(streamOf(parts))) events.push(event);
  return events;
}

const cases = JSON.parse(process.argv[2]);
const result = {};
for (const [name, text] of Object.entries(cases)) {
  const bytes = new TextEncoder().encode(text);
  const splits = [];
  for (let at = 1; at < bytes.length; at += 1) splits.push(await decode([bytes.slice(0, at), bytes.slice(at)]));
  result[name] = {
    whole: await decode([bytes]),
    splits,
    bytewise: await decode(Array.from(bytes, (b) => new Uint8Array([b]))),
  };
}
process.stdout.write(JSON.stringify(result) + '\n');
