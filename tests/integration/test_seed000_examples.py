"""Seed 000's own client examples, run unchanged (base URL and token aside) against the local stack."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).parent / "seed_examples"


def test_seed000_python_example_prints_text_chunks_and_usage(stack):
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / "seed000_python.py")],
        env={**os.environ, "BASE": stack.base_url, "JWT": stack.token()},
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    chunks = [ast.literal_eval(line) for line in result.stdout.splitlines()]
    text = "".join(c["text"] for c in chunks if c["type"] == "text")
    assert "deploy a static site to Vercel" in text
    assert chunks[-1]["type"] == "usage" and chunks[-1]["outputTokens"] > 0


def test_seed000_curl_example_streams_data_events_then_end(stack, tmp_path):
    result = subprocess.run(
        ["bash", str(EXAMPLES / "seed000_curl.sh")],
        env={**os.environ, "BASE": stack.base_url, "JWT": stack.token(), "OUT": str(tmp_path)},
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    blocks = [b for b in result.stdout.strip().split("\n\n") if b]
    assert all(b.startswith("id: ") for b in blocks)
    assert blocks[0].splitlines()[1] == "event: data"
    assert '"type":"text"' in blocks[0]
    assert blocks[-2].splitlines()[2].startswith('data: {"type":"usage"')
    assert blocks[-1].splitlines()[1:] == ["event: end", 'data: {"status":"succeeded"}']
    ids = [int(b.splitlines()[0][4:]) for b in blocks]
    assert ids == list(range(1, len(blocks) + 1))


def test_seed000_server_loaded_history_turn_two_right_after_turn_one_knows_alex(stack):
    """Seed 000's "Server-loaded history": turn 2 is posted as soon as turn 1's POST answers, with the
    same conversationId and no strategy; it waits its turn and knows what turn 1 told it."""
    import json
    import uuid

    import httpx

    conversation = f"conv-alex-{uuid.uuid4().hex[:8]}"
    headers = {"orgid": "my-org", "Authorization": f"Bearer {stack.token()}", "Content-Type": "application/json"}
    with httpx.Client(base_url=stack.base_url, timeout=60) as client:
        turns = [client.post("/ai/agent/stream", headers=headers, json={"task": task, "conversationId": conversation})
                 for task in ("My name is Alex.", "What is my name?")]
        assert [t.status_code for t in turns] == [202, 202]
        with client.stream("GET", f"/ai/stream/{turns[1].json()['streamId']}", headers=headers) as stream:
            data = [json.loads(line[6:]) for line in stream.iter_lines() if line.startswith("data: ")]
    answer = "".join(chunk.get("text", "") for chunk in data if chunk.get("type") == "text")
    assert "Alex" in answer
