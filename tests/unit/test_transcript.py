"""A run is its log: `rebuild()` turns any log a worker can write back into the transcript the
model saw, whatever the text's coalescing, and the worker that resumes a run rebuilds exactly the
transcript the worker before it held in memory."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter

from runwire.adapters.memory import InMemoryRunQueue, InMemoryRunStore
from runwire.adapters.scripted_provider import ScriptedProvider
from runwire.core import worker as worker_module
from runwire.core.actions import ActionService, apply_decisions, apply_tool_outputs
from runwire.core.agents import CHAT, default_catalog
from runwire.core.cancellation import CancellationToken
from runwire.core.chunks import CoalescingPolicy
from runwire.core.ending import pending_action
from runwire.core.models import (
    ApprovalAction,
    ApprovalDecision,
    Caller,
    Chunk,
    EndChunk,
    ErrorChunk,
    HistoryMessage,
    RequiresActionChunk,
    RunRecord,
    RunRequest,
    RunStatus,
    StepEndChunk,
    TextChunk,
    ToolOutput,
    ToolResultChunk,
    ToolUseChunk,
    UsageChunk,
)
from runwire.core.ports import TextDelta, ToolSpec
from runwire.core.run_service import RunService, RunServicePolicy
from runwire.core.stepper import RunTools, StepEnded, Stepper, Suspended, model_request
from runwire.core.tools import default_tools
from runwire.core.transcript import Message, TextBlock, ToolCallBlock, ToolResultBlock, TranscriptBuilder, rebuild
from runwire.core.worker import Outcome, RunWorker, WorkerPolicy

CALLER = Caller(user_id="u1", org_id="acme")
REQUEST = RunRequest(task="the task")
CHUNKS = TypeAdapter(list[Chunk])


# --- generated logs ---------------------------------------------------------------------------
@dataclass
class Call:
    id: str
    name: str
    input: dict[str, Any]
    kind: str
    """"server" (runs at once), "client" (the client runs it) or "approval" (runs once approved)."""
    result: ToolResultChunk | None = None


@dataclass
class Step:
    content: list[str | Call]
    """Text segments and tool calls, in the order the model streamed them."""
    answered: bool = True


@dataclass
class Log:
    history: list[HistoryMessage]
    steps: list[Step]
    chunks: list[Chunk] = field(default_factory=list)

    @property
    def waiting(self) -> bool:
        return bool(self.steps) and not self.steps[-1].answered


texts = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=12)
json_values = st.one_of(st.none(), st.booleans(), st.integers(-1000, 1000), st.text(max_size=8))
tool_inputs = st.dictionaries(st.text(min_size=1, max_size=6), json_values, max_size=3)


@st.composite
def logs(draw) -> Log:
    pairs = draw(st.integers(0, 2))
    history = [HistoryMessage(role=role, content=draw(texts)) for _ in range(pairs) for role in ("user", "assistant")]
    counter = iter(range(1, 1000))
    steps: list[Step] = []
    for _ in range(draw(st.integers(0, 3))):  # steps that call tools
        calls = st.builds(lambda name, arguments, kind: Call(f"toolu_{next(counter)}", name, arguments, kind),
                          st.sampled_from(["calculator", "get_location", "search"]), tool_inputs,
                          st.sampled_from(["server", "client", "approval"]))
        content = draw(st.lists(st.one_of(texts, calls), min_size=1, max_size=5).filter(
            lambda items: any(isinstance(i, Call) for i in items)))
        steps.append(Step(content))
    if steps and draw(st.booleans()) and any(c.kind != "server" for c in calls_of(steps[-1])):
        steps[-1].answered = False  # the log ends at the run's wait
    else:
        steps.append(Step(draw(st.lists(texts, max_size=4))))  # the model answers
    log = Log(history, steps)
    for number, step in enumerate(steps, start=1):
        log.chunks.extend(step_chunks(draw, number, step))
    if not log.waiting and draw(st.booleans()):  # a terminal sequence does not change the transcript
        log.chunks += [ErrorChunk(code="x", message="y"), UsageChunk(model="m", input_tokens=1, output_tokens=1),
                       EndChunk(status=RunStatus.FAILED)]
    return log


def calls_of(step: Step) -> list[Call]:
    return [item for item in step.content if isinstance(item, Call)]


def step_chunks(draw, number: int, step: Step) -> list[Chunk]:
    """What the worker writes for one step: its stream, its step_end, the server tools' results,
    then (if any call waits) requires_action and, once answered, the waiting calls' results."""
    chunks: list[Chunk] = []
    for item in step.content:
        if isinstance(item, Call):
            executor = "client" if item.kind == "client" else "server"
            chunks.append(ToolUseChunk(id=item.id, name=item.name, input=item.input, executor=executor))
        else:
            chunks.append(TextChunk(text=item))
    chunks.append(StepEndChunk(step=number, model="m", input_tokens=draw(st.integers(0, 500)),
                               output_tokens=draw(st.integers(0, 500))))
    calls = calls_of(step)
    waiting = [c for c in calls if c.kind != "server"]
    for call in [c for c in calls if c.kind == "server"] + ([] if not step.answered else waiting):
        denied = call.kind == "approval" and draw(st.booleans())
        output = {"denied": True, "reason": draw(texts)} if denied else draw(json_values)
        call.result = ToolResultChunk(id=call.id, output=output, is_error=denied or draw(st.booleans()))
    chunks += [c.result for c in calls if c.kind == "server"]
    if waiting:
        chunks.append(RequiresActionChunk(
            actions=[pending_action("run_1", block(c)).action for c in waiting], expires_at="2027-01-01T00:00:00.000Z"))
        if step.answered:
            chunks += [c.result for c in waiting]
    return chunks


def block(call: Call) -> ToolCallBlock:
    return ToolCallBlock(call.id, call.name, call.input, "client" if call.kind == "client" else "server",
                         needs_approval=call.kind == "approval")


def expected_transcript(log: Log) -> list[Message]:
    """The oracle: what the model must have seen, straight from the generated steps."""
    messages = [Message(m.role, (TextBlock(m.content),)) for m in log.history]
    messages.append(Message("user", (TextBlock(REQUEST.task),)))
    for step in log.steps:
        blocks: list[Any] = []
        for item in step.content:
            if isinstance(item, Call):
                blocks.append(block(item))
            elif blocks and isinstance(blocks[-1], TextBlock):
                blocks[-1] = TextBlock(blocks[-1].text + item)
            else:
                blocks.append(TextBlock(item))
        if blocks:
            messages.append(Message("assistant", tuple(blocks)))
        calls = calls_of(step)
        order = [c for c in calls if c.kind == "server"] + [c for c in calls if c.kind != "server"]
        results = [ToolResultBlock(c.id, c.result.output, c.result.is_error) for c in order if c.result is not None]
        if results:
            messages.append(Message("user", tuple(results)))
    return messages


@st.composite
def resplit(draw, chunks: list[Chunk]) -> list[Chunk]:
    """The same log with every text chunk cut anywhere (as a different coalescing window would)."""
    out: list[Chunk] = []
    for chunk in chunks:
        if not isinstance(chunk, TextChunk):
            out.append(chunk)
            continue
        cuts = sorted(draw(st.sets(st.integers(1, max(1, len(chunk.text) - 1)), max_size=len(chunk.text) - 1)))
        bounds = [0, *[c for c in cuts if c < len(chunk.text)], len(chunk.text)]
        out += [TextChunk(text=chunk.text[a:b]) for a, b in zip(bounds, bounds[1:], strict=False) if a < b]
    return out


@settings(max_examples=300, deadline=None)
@given(logs())
def test_rebuild_gives_the_transcript_the_model_saw(log):
    assert rebuild(REQUEST, log.history, log.chunks).transcript() == expected_transcript(log)


@settings(max_examples=300, deadline=None)
@given(logs())
def test_the_rebuilt_transcript_alternates_user_and_assistant(log):
    transcript = rebuild(REQUEST, log.history, log.chunks).transcript()
    roles = [m.role for m in transcript]
    assert roles[0] == "user"
    assert all(a != b for a, b in zip(roles, roles[1:], strict=False)), roles
    for message in transcript:
        assert message.blocks  # no empty message
        assert not any(isinstance(a, TextBlock) and isinstance(b, TextBlock)
                       for a, b in zip(message.blocks, message.blocks[1:], strict=False))
        if message.role == "assistant":
            assert not message.tool_results
        else:
            assert not message.tool_calls


@settings(max_examples=300, deadline=None)
@given(logs())
def test_every_answered_tool_call_has_its_result_in_the_next_user_message(log):
    built = rebuild(REQUEST, log.history, log.chunks)
    transcript = built.transcript()
    for index, message in enumerate(transcript):
        if message.role != "assistant" or not message.tool_calls:
            continue
        following = transcript[index + 1] if index + 1 < len(transcript) else Message("user", ())
        answered = {r.tool_call_id for r in following.tool_results}
        assert answered <= {c.id for c in message.tool_calls}  # no result without its call
        last = index == max(i for i, m in enumerate(transcript) if m.role == "assistant")
        if last and log.waiting:
            open_calls = [c for c in message.tool_calls if c.id not in answered]
            assert open_calls == built.unanswered_calls()
            assert open_calls and all(c.executor == "client" or c.needs_approval for c in open_calls)
        else:
            assert answered == {c.id for c in message.tool_calls}
    if not log.waiting:
        assert built.unanswered_calls() == []


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_rebuild_does_not_depend_on_how_the_text_was_split(data):
    log = data.draw(logs())
    split = data.draw(resplit(log.chunks))
    whole, pieces = rebuild(REQUEST, log.history, log.chunks), rebuild(REQUEST, log.history, split)
    assert pieces.transcript() == whole.transcript()
    assert pieces.reply_text == whole.reply_text
    assert (pieces.steps, pieces.usage) == (whole.steps, whole.usage)


@settings(max_examples=200, deadline=None)
@given(logs())
def test_rebuild_counts_steps_and_sums_their_usage(log):
    built = rebuild(REQUEST, log.history, log.chunks)
    steps = [c for c in log.chunks if isinstance(c, StepEndChunk)]
    assert built.steps == len(steps)
    if steps:
        assert (built.usage.input_tokens, built.usage.output_tokens) == (
            sum(s.input_tokens for s in steps), sum(s.output_tokens for s in steps))
    else:
        assert built.usage is None


@settings(max_examples=200, deadline=None)
@given(logs())
def test_a_log_read_back_from_storage_rebuilds_the_same(log):
    stored = CHUNKS.validate_json(CHUNKS.dump_json(log.chunks, by_alias=True))
    assert rebuild(REQUEST, log.history, stored).transcript() == rebuild(REQUEST, log.history, log.chunks).transcript()


# --- the stepper's transcript in memory is the one its log rebuilds ----------------------------
class FixedClock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


GET_LOCATION = ToolSpec("get_location", "Where the user is.", {"type": "object", "properties": {}})


def stepper_for(request: RunRequest, clock) -> Stepper:
    server = {tool.name: tool for tool in default_tools(clock).select(CHAT.tools, None)}
    client = {tool.name: GET_LOCATION for tool in request.client_mcp_tools or []}
    tools = RunTools(server, client, frozenset(request.approval_required or []))
    return Stepper(ScriptedProvider(clock, token_delay_seconds=0), tools,
                   model_request(CHAT, request, tools, default_model="m"), max_steps=8, clock=clock)


def as_logged(events: list[object], merge: list[bool]) -> list[Chunk]:
    """What the writer makes of the stepper's events: text deltas coalesced (`merge[i]`: delta i joins
    the chunk before it), tool calls and results as they are, a step's end as its step_end chunk."""
    chunks: list[Chunk] = []
    for index, event in enumerate(events):
        if isinstance(event, TextDelta):
            if chunks and isinstance(chunks[-1], TextChunk) and merge[index % len(merge)]:
                chunks[-1] = TextChunk(text=chunks[-1].text + event.text)
            else:
                chunks.append(TextChunk(text=event.text))
        elif isinstance(event, ToolUseChunk | ToolResultChunk):
            chunks.append(event)
        elif isinstance(event, StepEnded):
            chunks.append(event.chunk)
    return chunks


def step_once(request: RunRequest, run: RunRecord, transcript: TranscriptBuilder) -> list[object]:
    clock = FixedClock()
    events: list[object] = []
    stepper_for(request, clock).run(run, transcript, events.append, CancellationToken(), deadline=clock() + 60)
    return events


def record(request: RunRequest, status=RunStatus.RUNNING, actions=None) -> RunRecord:
    return RunRecord(run_id="run_1", org_id="acme", user_id="u1", agent_id="ag_chat", status=status,
                     request=request, created_at=0, expires_at=10**10, actions=actions)


@settings(max_examples=30, deadline=None)
@given(task=st.sampled_from(["Tell me about logs.", "What is 17 * 23?", "What is 2+3? And what day is it today?",
                             "My name is Alex."]),
       merge=st.lists(st.booleans(), min_size=1, max_size=8))
def test_the_stepper_holds_the_transcript_its_emitted_chunks_rebuild(task, merge):
    request = RunRequest(task=task)
    transcript = rebuild(request, [], [])
    events = step_once(request, record(request), transcript)
    assert any(isinstance(e, StepEnded) for e in events)
    assert rebuild(request, [], as_logged(events, merge)).transcript() == transcript.transcript()


@settings(max_examples=20, deadline=None)
@given(approve=st.booleans(), merge=st.lists(st.booleans(), min_size=1, max_size=8))
def test_a_resumed_stepper_carries_on_the_transcript_the_first_one_stopped_with(approve, merge):
    request = RunRequest.model_validate({"task": "What is 6*7? Use get_location.", "approvalRequired": ["calculator"],
                                         "clientMcpTools": [{"name": "get_location"}]})
    first = rebuild(request, [], [])
    events = step_once(request, record(request), first)
    [suspended] = [e for e in events if isinstance(e, Suspended)]
    logged = as_logged(events, merge) + [RequiresActionChunk(actions=[p.action for p in suspended.actions],
                                                             expires_at="2027-01-01T00:00:00.000Z")]
    # What a client answers, as ActionService records it.
    waiting = record(request, RunStatus.REQUIRES_ACTION, suspended.actions)
    client = next(p for p in suspended.actions if p.action.kind == "client_tool")
    approval = next(p.action for p in suspended.actions if isinstance(p.action, ApprovalAction))
    waiting = waiting.model_copy(update={"actions": apply_tool_outputs(waiting, [
        ToolOutput(tool_call_id=client.tool_call_id, output={"city": "Oslo"})])})
    waiting = waiting.model_copy(update={"actions": apply_decisions(waiting, [
        ApprovalDecision(approval_id=approval.approval_id, approved=approve)])})

    resumed = rebuild(request, [], logged)
    assert [c.id for c in resumed.unanswered_calls()] == [p.tool_call_id for p in suspended.actions]
    more = step_once(request, waiting.model_copy(update={"status": RunStatus.RUNNING}), resumed)
    assert rebuild(request, [], logged + as_logged(more, merge)).transcript() == resumed.transcript()
    results = {c.id: c for c in as_logged(more, merge) if isinstance(c, ToolResultChunk)}
    assert results[client.tool_call_id].output == {"city": "Oslo"}
    assert results[approval.tool_call_id].denied is (not approve)


# --- and so is the log the worker writes --------------------------------------------------------
@pytest.fixture
def recorded_steppers(monkeypatch):
    """The transcript every stepper the worker starts held when it stopped."""
    held: list[tuple[TranscriptBuilder, threading.Event]] = []

    class RecordingStepper(Stepper):
        def run(self, run, transcript, emit, cancellation, *, deadline):
            done = threading.Event()
            held.append((transcript, done))
            try:
                super().run(run, transcript, emit, cancellation, deadline=deadline)
            finally:
                done.set()

    monkeypatch.setattr(worker_module, "Stepper", RecordingStepper)

    def latest() -> TranscriptBuilder:
        transcript, done = held[-1]
        assert done.wait(5), "the stepper did not return"
        return transcript

    return latest


@pytest.fixture
def worker_system():
    store = InMemoryRunStore(time.time)
    queue = InMemoryRunQueue()
    service = RunService(store, queue, default_catalog(), RunServicePolicy(retention_seconds=300), time.time)
    worker = RunWorker(store, ScriptedProvider(time.time, token_delay_seconds=0.002), default_catalog(),
                       default_tools(time.time),
                       WorkerPolicy(max_run_seconds=30.0, coalescing=CoalescingPolicy(window_seconds=0.01)), time.time)
    return store, queue, service, worker, ActionService(store, queue, time.time, service.get)


def log_of(store, run_id) -> list[Chunk]:
    return [c.chunk for c in store.read_chunks(CALLER.org_id, run_id, after=0, limit=10_000)]


@pytest.mark.parametrize("task", [
    "Tell me how a streaming API stays resumable.", "What is 17 * 23?", "What is 2+3? And what day is it today?",
])
def test_a_finished_runs_log_rebuilds_the_transcript_its_worker_held(worker_system, recorded_steppers, task):
    store, queue, service, worker, _ = worker_system
    run = service.start(CALLER, RunRequest(task=task))
    assert worker.process(queue.messages[-1]) is Outcome.EXECUTED
    chunks = log_of(store, run.run_id)
    assert sum(isinstance(c, TextChunk) for c in chunks) >= 1
    assert rebuild(run.request, [], chunks).transcript() == recorded_steppers().transcript()


def test_a_run_that_waited_rebuilds_the_transcript_of_each_worker_that_held_it(worker_system, recorded_steppers):
    store, queue, service, worker, actions = worker_system
    run = service.start(CALLER, RunRequest.model_validate({
        "task": "Where am I? Use get_location.", "clientMcpTools": [{"name": "get_location"}]}))
    assert worker.process(queue.messages[-1]) is Outcome.SUSPENDED
    assert rebuild(run.request, [], log_of(store, run.run_id)).transcript() == recorded_steppers().transcript()
    [action] = [c for c in log_of(store, run.run_id) if isinstance(c, RequiresActionChunk)][0].actions
    actions.submit_tool_outputs(CALLER, run.run_id, [ToolOutput(tool_call_id=action.tool_call_id, output="Oslo")])
    assert worker.process(queue.messages[-1]) is Outcome.EXECUTED
    assert rebuild(run.request, [], log_of(store, run.run_id)).transcript() == recorded_steppers().transcript()


def test_a_run_that_waited_for_approval_rebuilds_the_transcript_of_each_worker_that_held_it(
    worker_system, recorded_steppers,
):
    store, queue, service, worker, actions = worker_system
    run = service.start(CALLER, RunRequest.model_validate({
        "task": "What is 6*7? Use get_location.", "clientMcpTools": [{"name": "get_location"}],
        "approvalRequired": ["calculator"]}))
    assert worker.process(queue.messages[-1]) is Outcome.SUSPENDED
    assert rebuild(run.request, [], log_of(store, run.run_id)).transcript() == recorded_steppers().transcript()
    requested = [c for c in log_of(store, run.run_id) if isinstance(c, RequiresActionChunk)][0].actions
    for action in requested:
        if isinstance(action, ApprovalAction):
            actions.submit_decisions(CALLER, run.run_id, [ApprovalDecision(approval_id=action.approval_id, approved=True)])
        else:
            actions.submit_tool_outputs(CALLER, run.run_id, [ToolOutput(tool_call_id=action.tool_call_id, output="Oslo")])
    assert worker.process(queue.messages[-1]) is Outcome.EXECUTED
    assert rebuild(run.request, [], log_of(store, run.run_id)).transcript() == recorded_steppers().transcript()
