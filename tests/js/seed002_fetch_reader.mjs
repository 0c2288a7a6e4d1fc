// Seed 002's "Client Example — JavaScript", verbatim but for the base URL ($BASE) and the token
// ($JWT). The agent id is the example's own, 'ag_c47e7c97_b2f2': an operator-defined agent
// (EXTRA_AGENTS) in the test stack. $MESSAGE, for the tests' own variants, is 'Hello' by default.
const BASE = process.env.BASE;
const YOUR_TOKEN = process.env.JWT;
const MESSAGE = process.env.MESSAGE ?? 'Hello';

const response = await fetch(`${BASE}/chat/stream`, {
method: 'POST',
headers: {
'Authorization': `Bearer ${YOUR_TOKEN}`,
'Content-Type': 'application/json',
},
body: JSON.stringify({
agent_id: 'ag_c47e7c97_b2f2',
message: MESSAGE,
}),
});
const reader = response.body.getReader();
const decoder = new TextDecoder();
while (true) {
const { done, value } = await reader.read();
if (done) break;
const text = decoder.decode(value);
for (const line of text.split('\n')) {
if (line.startsWith('data: ')) {
const event = JSON.parse(line.slice(6));
if (event.type === 'text') {
process.stdout.write(event.content);
}
}
}
}
