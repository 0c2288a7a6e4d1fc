"""`client.runs` and `client.conversations`: one method per route, sync and async side by side."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from pydantic.alias_generators import to_camel

from .models import ConversationMessages, EventsPage, Run, RunsPage, StartedRun
from .streaming import AsyncRunStream, RunStream, StreamOptions

if TYPE_CHECKING:
    from .client import AsyncRunwire, Runwire

WAIT_POLL_SECONDS = 20
"""`runs.wait`, once the server's own wait (at most 25 s) is over: the long-poll's wait per request."""


def wire_name(key: str) -> str:
    """`agent_role` → `agentRole`; a key without `_` is left as it is: pydantic's `to_camel` lowers
    an already camelCase `agentRole` to `agentrole` in some 2.x releases."""
    return to_camel(key) if "_" in key else key


def wire_fields(fields: Mapping[str, Any]) -> dict[str, Any]:
    """Top-level keyword arguments as the API spells them (`agent_role` → `agentRole`); values as given."""
    return {wire_name(key): value for key, value in fields.items() if value is not None}


def run_body(task: str, fields: Mapping[str, Any]) -> dict[str, Any]:
    return {"task": task, **wire_fields(fields)}


def answers_body(key: str, answers: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    return {key: [wire_fields(answer) for answer in answers]}


def listing_params(**params: Any) -> dict[str, Any]:
    return {wire_name(k): v for k, v in params.items() if v is not None}


def settled(page: EventsPage) -> bool:
    """`runs.wait` stops here: the run ended, or it waits for its client."""
    return page.done or page.status == "requires_action"


class Runs:
    def __init__(self, client: Runwire) -> None:
        self._client = client

    def create(self, task: str, **fields: Any) -> StartedRun:
        """`POST /v1/runs`: start a run. Fields as keywords, snake_case or camelCase
        (`agent_role="chat"`, `conversation_id="c1"`, `client_mcp_tools=[…]`); unknown ones are a 400."""
        return StartedRun.model_validate(self._client.request("POST", "/v1/runs", json=run_body(task, fields)))

    def get(self, run_id: str) -> Run:
        return Run.model_validate(self._client.request("GET", f"/v1/runs/{run_id}"))

    def cancel(self, run_id: str) -> Run:
        """Cancelling a finished run is a `ConflictError` (409); a cancelled one, a no-op."""
        return Run.model_validate(self._client.request("POST", f"/v1/runs/{run_id}/cancel"))

    def list(
        self, *, status: str | None = None, conversation_id: str | None = None, limit: int | None = None,
        cursor: str | None = None,
    ) -> RunsPage:
        params = listing_params(status=status, conversation_id=conversation_id, limit=limit, cursor=cursor)
        return RunsPage.model_validate(self._client.request("GET", "/v1/runs", params=params))

    def events(self, run_id: str, after: int = 0, *, wait: int | None = None) -> EventsPage:
        """`GET /v1/runs/{id}/events`: the events after `after` (typed chunks with `seq`); `wait`
        long-polls up to that many seconds (at most 20) for the next one."""
        params: dict[str, Any] = {"after": after, **({"wait": wait} if wait is not None else {})}
        return EventsPage.model_validate(self._client.request("GET", f"/v1/runs/{run_id}/events", params=params))

    def stream(self, run_id: str, after: int | None = None, *, options: StreamOptions | None = None) -> RunStream:
        """The run's chunks from after `after` (from its start when None) to `end`, resuming by itself."""
        return RunStream(self._client, run_id, after, options or self._client.stream_options)

    def wait(self, task: str, *, wait_seconds: float | None = None, **fields: Any) -> Run:
        """Start a run and return it once it has ended or waits for its client (`requires_action`).
        `POST /v1/runs/wait` holds the request up to `wait_seconds` (at most 25); a run still going
        then is waited for with the long-poll."""
        body = {**run_body(task, fields), **({"waitSeconds": wait_seconds} if wait_seconds is not None else {})}
        answer = self._client.request("POST", "/v1/runs/wait", json=body)
        run_id = answer["runId"]
        if "pollUrl" in answer:  # 202: still going after the server's wait
            after = 0
            while not settled(page := self.events(run_id, after, wait=WAIT_POLL_SECONDS)):
                after = page.last_seq
            return self.get(run_id)
        return Run.model_validate(answer)

    def submit_tool_outputs(self, run_id: str, tool_outputs: Iterable[Mapping[str, Any]]) -> Run:
        """Answer client tools: `[{"tool_call_id": …, "output": <JSON>, "is_error": False}]`."""
        body = answers_body("toolOutputs", tool_outputs)
        return Run.model_validate(self._client.request("POST", f"/v1/runs/{run_id}/tool-outputs", json=body))

    def submit_approvals(self, run_id: str, approvals: Iterable[Mapping[str, Any]]) -> Run:
        """Answer approvals: `[{"approval_id": …, "approved": True, "reason": "…"}]`."""
        body = answers_body("approvals", approvals)
        return Run.model_validate(self._client.request("POST", f"/v1/runs/{run_id}/approvals", json=body))


class Conversations:
    def __init__(self, client: Runwire) -> None:
        self._client = client

    def messages(self, conversation_id: str, *, limit: int | None = None) -> ConversationMessages:
        """The conversation's stored turns, oldest first."""
        params = listing_params(limit=limit)
        answer = self._client.request("GET", f"/v1/conversations/{conversation_id}/messages", params=params)
        return ConversationMessages.model_validate(answer)


class AsyncRuns:
    def __init__(self, client: AsyncRunwire) -> None:
        self._client = client

    async def create(self, task: str, **fields: Any) -> StartedRun:
        return StartedRun.model_validate(await self._client.request("POST", "/v1/runs", json=run_body(task, fields)))

    async def get(self, run_id: str) -> Run:
        return Run.model_validate(await self._client.request("GET", f"/v1/runs/{run_id}"))

    async def cancel(self, run_id: str) -> Run:
        return Run.model_validate(await self._client.request("POST", f"/v1/runs/{run_id}/cancel"))

    async def list(
        self, *, status: str | None = None, conversation_id: str | None = None, limit: int | None = None,
        cursor: str | None = None,
    ) -> RunsPage:
        params = listing_params(status=status, conversation_id=conversation_id, limit=limit, cursor=cursor)
        return RunsPage.model_validate(await self._client.request("GET", "/v1/runs", params=params))

    async def events(self, run_id: str, after: int = 0, *, wait: int | None = None) -> EventsPage:
        params: dict[str, Any] = {"after": after, **({"wait": wait} if wait is not None else {})}
        return EventsPage.model_validate(await self._client.request("GET", f"/v1/runs/{run_id}/events", params=params))

    def stream(self, run_id: str, after: int | None = None, *, options: StreamOptions | None = None) -> AsyncRunStream:
        return AsyncRunStream(self._client, run_id, after, options or self._client.stream_options)

    async def wait(self, task: str, *, wait_seconds: float | None = None, **fields: Any) -> Run:
        body = {**run_body(task, fields), **({"waitSeconds": wait_seconds} if wait_seconds is not None else {})}
        answer = await self._client.request("POST", "/v1/runs/wait", json=body)
        run_id = answer["runId"]
        if "pollUrl" in answer:  # 202: still going after the server's wait
            after = 0
            while not settled(page := await self.events(run_id, after, wait=WAIT_POLL_SECONDS)):
                after = page.last_seq
            return await self.get(run_id)
        return Run.model_validate(answer)

    async def submit_tool_outputs(self, run_id: str, tool_outputs: Iterable[Mapping[str, Any]]) -> Run:
        body = answers_body("toolOutputs", tool_outputs)
        return Run.model_validate(await self._client.request("POST", f"/v1/runs/{run_id}/tool-outputs", json=body))

    async def submit_approvals(self, run_id: str, approvals: Iterable[Mapping[str, Any]]) -> Run:
        body = answers_body("approvals", approvals)
        return Run.model_validate(await self._client.request("POST", f"/v1/runs/{run_id}/approvals", json=body))


class AsyncConversations:
    def __init__(self, client: AsyncRunwire) -> None:
        self._client = client

    async def messages(self, conversation_id: str, *, limit: int | None = None) -> ConversationMessages:
        params = listing_params(limit=limit)
        answer = await self._client.request("GET", f"/v1/conversations/{conversation_id}/messages", params=params)
        return ConversationMessages.model_validate(answer)
