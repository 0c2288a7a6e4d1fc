"""The playground's stream follower (`followRun` in playground.js, the page's own code) against
scripted connections, run with node: which connections count towards giving up, how long it waits
before each reconnect, and how a turn ends when the page stops following its run.

The stream function closes every connection after at most 300 s and a run waiting for an approval
sends only pings meanwhile, so a connection that delivered any bytes is alive; only one that could
not be opened, or closed before its first byte, is a failure (review of issue 11, point 2)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

JS = Path(__file__).resolve().parents[1] / "js"
BACKOFF = [500, 1000, 2000, 4000, 8000]
PING = {"status": 200, "body": ": ping\n\n"}
REFUSED = {"throws": "Failed to fetch"}


def chunk(seq: int, data: dict[str, Any]) -> str:
    return f"id: {seq}\nevent: data\ndata: {json.dumps(data)}\n\n"


def end(seq: int, status: str = "succeeded") -> str:
    return f"id: {seq}\nevent: end\ndata: {json.dumps({'status': status})}\n\n"


ASKS = chunk(1, {"type": "tool_use", "id": "t1", "name": "calculator", "input": {"expression": "1+1"}}) + chunk(
    2, {"type": "requires_action", "actions": [{"kind": "approval", "approvalId": "ap_1", "name": "calculator",
                                                "input": {"expression": "1+1"}}]})
ANSWERS = chunk(3, {"type": "text", "text": "2"}) + end(4)


def node_follow(scenarios: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    if shutil.which("node") is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("CI must install node")
        pytest.skip("node is not installed")
    completed = subprocess.run(["node", "playground_follow.mjs", json.dumps(scenarios)], cwd=JS,
                               capture_output=True, text=True, timeout=60, check=False)
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout)


@pytest.fixture(scope="module")
def followed() -> dict[str, dict[str, Any]]:
    return node_follow({
        # An approval waits for an hour: twelve 300 s connections with only pings, then the answer.
        "a_run_waiting_for_approval": {"connections": [
            {"status": 200, "body": ASKS}, *[PING] * 12, {"status": 200, "body": ANSWERS}]},
        "a_stream_that_never_opens": {"connections": [REFUSED] * 10},
        "streams_that_close_before_their_first_byte": {"connections": [{"status": 200, "body": ""}] * 10},
        "failures_around_a_live_connection": {"connections": [
            REFUSED, REFUSED, REFUSED, PING, REFUSED, {"status": 502, "json": {"message": "Bad Gateway"}},
            {"status": 200, "body": ANSWERS}]},
        "throttled": {"connections": [
            {"status": 429, "headers": {"Retry-After": "7"}, "json": {"error": {"code": "throttled", "message": "slow down"}}},
            {"status": 503, "json": {"error": {"code": "unavailable", "message": "try later"}}},
            {"status": 200, "body": ANSWERS}]},
        "a_drop_mid_stream": {"connections": [
            {"status": 200, "body": ASKS, "dropWith": "network error"}, {"status": 200, "body": ANSWERS}]},
        "a_stream_ending_in_204": {"connections": [{"status": 204}], "run": {"status": 200, "json": {"status": "cancelled"}}},
        "a_204_whose_run_cannot_be_read": {"connections": [{"status": 204}],
                                            "run": {"status": 500, "json": {"error": {"code": "internal_error", "message": "boom"}}}},
        "an_expired_token": {"connections": [
            {"status": 401, "json": {"error": {"code": "unauthorized", "message": "the token has expired"}}}]},
    })


def test_pings_keep_a_run_waiting_for_approval_followed_until_its_answer(followed):
    turn = followed["a_run_waiting_for_approval"]

    assert turn["status"] == "succeeded" and turn["ended"] and turn["failure"] is None
    assert turn["text"] == "2" and turn["lastSeq"] == 4
    # 13 closes, more than the 5 failures allowed in a row: none counted, each reconnect after 0.5 s.
    assert turn["sleeps"] == [500] * 13
    assert turn["lastEventIds"] == [None, *["2"] * 13]


def test_a_stream_that_never_opens_ends_the_turn_disconnected_after_five_reconnects(followed):
    turn = followed["a_stream_that_never_opens"]

    assert turn["ended"] and turn["status"] == "disconnected"
    assert "5 reconnects" in turn["failure"] and "Failed to fetch" in turn["failure"]
    assert turn["sleeps"] == BACKOFF
    assert len(turn["lastEventIds"]) == 6


def test_a_stream_that_closes_before_its_first_byte_counts_as_a_failure(followed):
    turn = followed["streams_that_close_before_their_first_byte"]

    assert turn["ended"] and turn["status"] == "disconnected"
    assert "closed before sending anything" in turn["failure"]
    assert turn["sleeps"] == BACKOFF


def test_a_connection_that_delivered_bytes_starts_the_failure_count_again(followed):
    turn = followed["failures_around_a_live_connection"]

    assert turn["status"] == "succeeded" and turn["failure"] is None
    assert turn["sleeps"] == [500, 1000, 2000, 500, 500, 1000]


def test_a_429_waits_at_least_its_retry_after(followed):
    turn = followed["throttled"]

    assert turn["status"] == "succeeded"
    assert turn["sleeps"] == [7000, 1000]


def test_a_drop_mid_stream_reconnects_after_the_last_event_applied(followed):
    turn = followed["a_drop_mid_stream"]

    assert turn["status"] == "succeeded" and turn["text"] == "2" and turn["failure"] is None
    assert turn["lastEventIds"] == [None, "2"]
    assert turn["sleeps"] == [500]


def test_a_204_ends_the_turn_with_the_runs_own_status(followed):
    turn = followed["a_stream_ending_in_204"]

    assert turn["ended"] and turn["status"] == "cancelled" and turn["failure"] is None
    assert turn["runReads"] == 1 and turn["sleeps"] == []


def test_a_204_whose_run_cannot_be_read_still_ends_the_turn(followed):
    turn = followed["a_204_whose_run_cannot_be_read"]

    assert turn["ended"] and turn["status"] == "disconnected"
    assert "boom" in turn["failure"]


def test_a_4xx_other_than_429_stops_following_at_once(followed):
    turn = followed["an_expired_token"]

    assert turn["ended"] and turn["status"] == "disconnected"
    assert "the token has expired" in turn["failure"]
    assert turn["sleeps"] == [] and len(turn["lastEventIds"]) == 1
