# Seed 000's Python example, verbatim but for `base` and where `jwt` comes from.
import os

jwt = os.environ["JWT"]

import json

import requests
import sseclient

base = os.environ["BASE"]
headers = {
    'orgid': 'my-org',
    'Authorization': f'Bearer {jwt}',
    'Content-Type': 'application/json',
}
# Step 1
r = requests.post(
    f'{base}/ai/agent/stream',
    headers=headers,
    data=json.dumps({
        'task': 'List the steps to deploy a static site to Vercel.',
        'agentRole': 'chat',
        'conversationId': 'demo-1',
    }),
)
stream_id = r.json()['streamId']
# Step 2
r = requests.get(f'{base}/ai/stream/{stream_id}', headers=headers, stream=True)
client = sseclient.SSEClient(r)
for ev in client.events():
    if ev.event == 'end':
        break
    if ev.event == 'data':
        chunk = json.loads(ev.data)
        print(chunk)
