# Seed 002's Python client example, verbatim but for the base URL ($BASE) and the token ($TOKEN).
import os

BASE = os.environ["BASE"]
YOUR_TOKEN = os.environ["TOKEN"]

import json

import httpx

with httpx.stream("POST", f"{BASE}/chat/stream",
    headers={"Authorization": f"Bearer {YOUR_TOKEN}"},
    json={"agent_id": "ag_c47e7c97_b2f2", "message": "Hello"}
) as response:
    for line in response.iter_lines():
        if line.startswith("data: "):
            event = json.loads(line[6:])
            if event["type"] == "text":
                print(event["content"], end="", flush=True)
