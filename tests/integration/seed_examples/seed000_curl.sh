# Seed 000's curl example, verbatim but for the base URL ($BASE) and the token ($JWT).
set -eu
# Step 1
curl "$BASE"/ai/agent/stream \
-H "orgid: my-org" \
-H "Authorization: Bearer $JWT" \
-H "Content-Type: application/json" \
-d '{"task":"Hello","agentRole":"chat","conversationId":"c1"}' > "$OUT/step1.json"
# {"streamId":"abc123"}
stream_id=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["streamId"])' "$OUT/step1.json")
# Step 2
curl -N "$BASE"/ai/stream/$stream_id \
-H "orgid: my-org" \
-H "Authorization: Bearer $JWT"
