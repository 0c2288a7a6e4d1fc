"""The local SQS (moto) made to delete a message as SQS does: only with its latest receipt handle.

SQS hands a message received again a new receipt handle, and a DeleteMessage with an older one
"succeeds, but the message will not be deleted" (SQS Developer Guide, DeleteMessage). moto 5.2
deletes it with any handle it ever had. That matters here: a worker that was frozen past its lease
wakes, finds its run taken over, and returns; its invocation succeeds and the event source mapping
deletes the message with the handle it had, while the worker that took the run over holds the same
message under a newer handle. On SQS the message stays with the new worker; `apply()` makes moto
keep it too.
"""

from __future__ import annotations

from typing import Any

_PATCHED = "_runwire_latest_handle_only"


def apply() -> None:
    """Patch moto's SQS queues in this process (idempotent)."""
    from moto.sqs.models import Queue

    if getattr(Queue, _PATCHED, False):
        return
    delete = Queue.delete_message

    def delete_message(self: Any, receipt_handle: str) -> None:
        for message in self._messages:
            if message.had_receipt_handle(receipt_handle) and message.receipt_handle != receipt_handle:
                return  # received again since: SQS answers success and keeps the message
        delete(self, receipt_handle)

    Queue.delete_message = delete_message  # type: ignore[method-assign]
    setattr(Queue, _PATCHED, True)
