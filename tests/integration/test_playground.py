"""The playground (`/playground`, issue 11) in headless Chromium against the local stack, used as a
person uses it (tests/js/playground_page.mjs): paste a token, type a prompt, read the screen. What it
shows is checked against the API's own record of each run."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from runwire.adapters.tokens import JWTVerifier
from runwire.http.playground import CONTENT_SECURITY_POLICY

from .conftest import SECRET
from .test_js_clients import _missing_chromium, missing_js_tooling, node_json, numbered, require


@pytest.fixture(scope="module")
def playground(stack) -> dict[str, Any]:
    require(missing_js_tooling() or _missing_chromium())
    result = node_json(stack, "playground_page.mjs")
    for name, flow in result["flows"].items():
        assert "failed" not in flow, f"{name}: {json.dumps(flow)[:3000]}\nstack log:\n{stack.log_tail(40)}"
    return result


def run_of(stack, run_id: str) -> dict[str, Any]:
    response = httpx.get(f"{stack.base_url}/v1/runs/{run_id}", headers=stack.headers(), timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


def events_of(stack, run_id: str) -> list[dict[str, Any]]:
    response = httpx.get(f"{stack.base_url}/v1/runs/{run_id}/events", headers=stack.headers(), timeout=30)
    assert response.status_code == 200, response.text
    assert response.json()["done"]
    return response.json()["events"]


def test_the_page_loads_offline_with_its_csp_and_breaks_no_rule(playground):
    assert playground["landing"] == {"status": 200, "csp": CONTENT_SECURITY_POLICY}
    assert playground["title"] == "runwire playground"
    assert playground["offOrigin"] == []
    assert playground["pageErrors"] == []
    assert playground["cspViolations"] == []
    assert playground["failedResponses"] == []


def test_mint_local_fills_a_token_for_the_org_and_a_chat_runs_with_it(stack, playground):
    flow = playground["flows"]["mint"]

    claims = JWTVerifier(SECRET).verify(flow["minted"])
    assert claims.orgs == ("my-org",) and claims.subject == "dev-user"
    assert flow["minted"] != stack.token()
    assert flow["status"] == "succeeded" and flow["error"] == ""
    assert flow["answer"] and flow["answer"] == run_of(stack, flow["runId"])["output"]


def test_without_the_dev_token_route_as_deployed_the_page_offers_no_mint_button(playground):
    flow = playground["flows"]["noMint"]

    assert flow == {"probeStatus": 404, "mintButtonHidden": True, "mintButtonInPage": 1}


def test_a_typed_prompt_streams_its_answer_in_and_it_equals_the_runs_output(stack, playground):
    flow = playground["flows"]["streamed"]

    assert flow["status"] == "succeeded"
    assert flow["answer"] == numbered(40)
    assert flow["partial"] and flow["partial"] != flow["answer"] and flow["answer"].startswith(flow["partial"])
    run = run_of(stack, flow["runId"])
    assert flow["answer"] == run["output"]
    assert flow["usage"] == f"{run['usage']['model']}: {run['usage']['inputTokens']} in, {run['usage']['outputTokens']} out tokens"


def test_markup_in_a_prompt_and_its_answer_is_shown_as_text(stack, playground):
    flow = playground["flows"]["markup"]

    assert flow["injectedElements"] == 0
    assert flow["prompt"] == "Hello <img src=x id=injected> <b>bold</b>"
    assert "<img src=x id=injected>" in flow["answer"]
    assert flow["answer"] == run_of(stack, flow["runId"])["output"]


def test_approving_the_calculator_runs_it_and_the_answer_follows(stack, playground):
    flow = playground["flows"]["approval"]

    assert flow["asked"] == 'calculator({"expression":"17 * 23"}) waits for your approval.'
    assert flow["activityBeforeApproval"] == ['calls calculator({"expression":"17 * 23"})']
    assert flow["status"] == "succeeded"
    assert flow["approvals"] == 0, "the approval box is gone once the run carried on"
    assert flow["activity"][0] == 'calls calculator({"expression":"17 * 23"})'
    assert flow["activity"][1].startswith("result: ") and "391" in flow["activity"][1]
    assert "391" in flow["answer"]
    run = run_of(stack, flow["runId"])
    assert flow["answer"] == run["output"]
    chunks = [e["data"] for e in events_of(stack, flow["runId"]) if e["event"] == "data"]
    assert [c["type"] for c in chunks if c["type"] in ("tool_use", "requires_action", "tool_result")] == [
        "tool_use", "requires_action", "tool_result"]


def test_denying_the_calculator_shows_the_denial_and_the_tool_never_runs(stack, playground):
    flow = playground["flows"]["denial"]

    assert flow["status"] == "succeeded"
    assert flow["activity"] == ['calls calculator({"expression":"17 * 23"})',
                                'error: {"denied":true,"reason":"denied in the playground"}']
    assert "391" not in flow["answer"]
    assert flow["answer"] == run_of(stack, flow["runId"])["output"]


def test_a_reload_mid_answer_resumes_after_the_last_seq_and_the_answer_completes_once(stack, playground):
    flow = playground["flows"]["reload"]
    run_id = flow["startedRunId"]

    assert flow["runId"] == run_id and flow["turnsForRun"] == 1 and flow["turns"] == 1
    assert flow["afterReload"]["answer"], "the answer so far is back on screen after the reload"
    assert flow["status"] == "succeeded"
    run = run_of(stack, run_id)
    assert flow["answer"] == run["output"] == numbered(200)
    # The inspector lists every event once, seqs 1..N with no gap, as the API stored them.
    assert flow["seqs"] == list(range(1, run["lastSeq"] + 1))
    assert flow["seqs"] == [e["seq"] for e in events_of(stack, run_id)]
    # After the reload the page asked for the events after the last one it had, not from the start.
    requests = [r for r in playground["streamRequests"] if r["path"] == f"/v1/runs/{run_id}/stream"]
    assert requests[0]["lastEventId"] is None
    assert len(requests) >= 2 and requests[1]["lastEventId"] is not None
    assert 0 < int(requests[1]["lastEventId"]) < run["lastSeq"]
