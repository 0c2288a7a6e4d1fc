"""Listing runs and conversations, and deleting conversations, for an authenticated caller.

Every listing is the caller's org's only (its partition key names the org) and newest first. Its
pages are cut by opaque cursors (`cursors.CursorSealer`) sealed to the org and the filters, so a
cursor never opens another listing. Stores hand out positions: a sort key `<ms:013d>#<id>` (see
`listing_sort_key`), the same in every adapter, resumed after.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic

from ..errors import ConditionFailedError, ConversationBusyError, ConversationNotFoundError, InvalidCursorError
from .cursors import CursorSealer
from .models import IDENTIFIER_PATTERN, Caller, ConversationSummary, ListedT, ListPage, RunStatus, RunSummary
from .ports import ConversationIndex, ConversationStore, RunIndex, RunStore
from .runs import run_holding_conversation

MAX_LIST_LIMIT = 100
DEFAULT_LIST_LIMIT = 20
_IDENTIFIER = re.compile(IDENTIFIER_PATTERN)
_POSITION = re.compile(r"^(\d{13})#([A-Za-z0-9][A-Za-z0-9._:-]{0,127})$")


def listing_sort_key(at: float, identifier: str) -> str:
    """What orders a listing: the time in milliseconds, zero-padded so it sorts as text, then the id
    (two items of the same millisecond still have a fixed order)."""
    return f"{int(at * 1000):013d}#{identifier}"


def listed_identifier(position: str) -> str:
    """The id in a position from `listing_sort_key`; InvalidCursorError if it is not one."""
    match = _POSITION.match(position)
    if match is None:
        raise InvalidCursorError("the cursor does not name a position in this listing")
    return match.group(2)


@dataclass(frozen=True)
class Listed(Generic[ListedT]):
    """A page as the API answers it: the items, and the cursor of the next page (None: the last)."""

    items: list[ListedT]
    next_cursor: str | None


class ListingService:
    def __init__(
        self,
        run_index: RunIndex,
        runs: RunStore,
        conversation_index: ConversationIndex,
        conversations: ConversationStore,
        sealer: CursorSealer,
    ) -> None:
        self._run_index = run_index
        self._runs = runs
        self._conversation_index = conversation_index
        self._conversations = conversations
        self._sealer = sealer

    def _page(self, scope: str, cursor: str | None, read: Callable[[str | None], ListPage[ListedT]]) -> Listed[ListedT]:
        page = read(self._sealer.open(scope, cursor) if cursor is not None else None)
        next_cursor = self._sealer.seal(scope, page.next_position) if page.next_position is not None else None
        return Listed(page.items, next_cursor)

    def list_runs(
        self, caller: Caller, *, status: RunStatus | None, conversation_id: str | None, limit: int, cursor: str | None
    ) -> Listed[RunSummary]:
        scope = f"runs|{caller.org_id}|{status.value if status else ''}|{conversation_id or ''}"
        return self._page(scope, cursor, lambda after: self._run_index.list_runs(
            caller.org_id, limit=limit, after=after, status=status, conversation_id=conversation_id))

    def list_conversations(self, caller: Caller, *, limit: int, cursor: str | None) -> Listed[ConversationSummary]:
        listed = self._page(f"conversations|{caller.org_id}", cursor, lambda after: (
            self._conversation_index.list_conversations(caller.org_id, limit=limit, after=after)))
        return Listed([self._with_active_run(caller, c) for c in listed.items], listed.next_cursor)

    def _active_run_id(self, caller: Caller, conversation_id: str) -> str | None:
        return self._active_run(caller, conversation_id)[1]

    def _active_run(self, caller: Caller, conversation_id: str) -> tuple[str | None, str | None]:
        """The conversation's pointer as read, and the run answering in it now: its latest run while
        it waits for its client, else the run that holds the conversation (queued or running: the
        latest run, or the one it was queued behind, if it was cancelled before it started)."""
        pointer = self._conversations.active_run(caller.org_id, conversation_id)
        latest = self._runs.get_run(caller.org_id, pointer) if pointer else None
        if latest is not None and latest.status is RunStatus.REQUIRES_ACTION:
            return pointer, latest.run_id
        holder = run_holding_conversation(latest, lambda run_id: self._runs.get_run(caller.org_id, run_id))
        return pointer, holder.run_id if holder else None

    def _with_active_run(self, caller: Caller, conversation: ConversationSummary) -> ConversationSummary:
        # The pointer lives as long as its run (minutes): older conversations cost no read here.
        return conversation.model_copy(update={"active_run_id": self._active_run_id(caller, conversation.conversation_id)})

    def delete_conversation(self, caller: Caller, conversation_id: str) -> None:
        """Delete a conversation's messages, its listing entry and its active-run pointer (its runs
        stay until they expire). ConversationBusyError while its run is queued, running or waiting:
        that run would write its turn after the delete."""
        if not _IDENTIFIER.fullmatch(conversation_id):
            raise ConversationNotFoundError(f"conversation {conversation_id[:80]!r} does not exist")
        pointer, active = self._active_run(caller, conversation_id)
        if active is not None:
            raise ConversationBusyError(
                f"conversation {conversation_id!r} has a run in progress ({active}): cancel it "
                f"(POST /v1/runs/{active}/cancel) or wait for it to end, then delete the conversation",
                details={"activeRunId": active},
            )
        try:
            deleted = self._conversation_index.delete_conversation(caller.org_id, conversation_id, expected_active=pointer)
        except ConditionFailedError:
            raise ConversationBusyError(
                f"conversation {conversation_id!r} has a run that started just now: wait for it to end, "
                "then delete the conversation") from None
        if not deleted:
            raise ConversationNotFoundError(f"conversation {conversation_id!r} does not exist or has expired")
