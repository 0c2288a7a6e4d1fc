"""The local DynamoDB (moto) made to do transactions as DynamoDB does them: all or nothing, isolated
from other writes, at the cost of the items they touch.

Every chunk a worker writes is a `TransactWriteItems` (fenced by its lease), so the stand-in's
transactions matter. moto 5.2's deep-copies every table a transaction touches before it starts, to
roll back on failure, and applies the items one by one: a chunk write costs time in proportion to
the whole table (a local stack that has run for an hour slows to a crawl), a copy taken while
another thread writes fails with a 500, and a rollback erases whatever other requests wrote since
the copy. `apply()` replaces it in this process: the backend's writes run one at a time under a
lock (they are serialized on the GIL anyway), a transaction checks every condition before it writes
anything (so a refused one has nothing to undo), and it keeps copies of only the items it writes, to
put back should a write fail midway. What a client sees is what DynamoDB answers: the same
`TransactionCanceledException` with one reason per item, in order.
"""

from __future__ import annotations

import copy
import functools
import threading
from collections.abc import Callable
from typing import Any

_WRITES = threading.RLock()
_PATCHED = "_runwire_transactions"
_MUTATORS = ("put_item", "update_item", "delete_item")
_OPERATIONS = {"ConditionCheck", "Put", "Delete", "Update"}


def apply() -> None:
    """Patch moto's DynamoDB backend in this process (idempotent)."""
    from moto.dynamodb.models import DynamoDBBackend

    if getattr(DynamoDBBackend, _PATCHED, False):
        return
    for name in _MUTATORS:
        setattr(DynamoDBBackend, name, _serialized(getattr(DynamoDBBackend, name)))
    DynamoDBBackend.transact_write_items = _transact_write_items  # type: ignore[method-assign]
    setattr(DynamoDBBackend, _PATCHED, True)


def _serialized(write: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(write)
    def locked(*args: Any, **kwargs: Any) -> Any:
        with _WRITES:
            return write(*args, **kwargs)

    return locked


def _key(backend: Any, table_name: str, op_type: str, op: dict[str, Any]) -> dict[str, Any]:
    if op_type != "Put":
        return dict(op["Key"])
    table = backend.get_table(table_name)
    key = {table.hash_key_attr: op["Item"][table.hash_key_attr]}
    if table.range_key_attr is not None:
        key[table.range_key_attr] = op["Item"][table.range_key_attr]
    return key


def _transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
    from moto.dynamodb.comparisons import get_filter_expression
    from moto.dynamodb.exceptions import (
        MultipleTransactionsException,
        TooManyTransactionsException,
        TransactionCanceledException,
        TransactWriteSingleOpException,
    )

    if len(transact_items) > 100:
        raise TooManyTransactionsException()
    with _WRITES:
        plan: list[tuple[str, dict[str, Any], str, dict[str, Any], Any]] = []
        reasons: list[tuple[str | None, str | None, dict[str, Any] | None]] = []
        seen: set[tuple[str, str]] = set()
        for entry in transact_items:
            if len(entry) > 1:
                raise TransactWriteSingleOpException
            op_type, op = next(iter(entry.items()))
            if op_type not in _OPERATIONS:
                raise ValueError("Unsupported transaction operation")
            table_name = op["TableName"]
            key = _key(self, table_name, op_type, op)
            identity = (table_name, str(sorted(key.items())))
            if identity in seen:
                raise MultipleTransactionsException()
            seen.add(identity)
            current = self.get_item(table_name, key)
            condition = op.get("ConditionExpression")
            if condition is not None and not get_filter_expression(
                condition, op.get("ExpressionAttributeNames"), op.get("ExpressionAttributeValues")
            ).expr(current):
                old = current.to_json()["Attributes"] if current and op.get(
                    "ReturnValuesOnConditionCheckFailure") == "ALL_OLD" else None
                reasons.append(("ConditionalCheckFailed", "The conditional request failed", old))
            else:
                reasons.append((None, None, None))
            plan.append((op_type, op, table_name, key, current))
        if any(code is not None for code, _, _ in reasons):
            raise TransactionCanceledException(reasons)
        _write_all(self, plan)


def _write_all(backend: Any, plan: list[tuple[str, dict[str, Any], str, dict[str, Any], Any]]) -> None:
    """Write every item (their conditions held, and nothing else writes meanwhile); if one write
    fails (an invalid update expression), put the items written so far back as they were."""
    written: list[tuple[str, dict[str, Any], Any]] = []
    try:
        for op_type, op, table_name, key, current in plan:
            if op_type == "ConditionCheck":
                continue
            written.append((table_name, key, copy.deepcopy(current)))
            if op_type == "Put":
                backend.put_item(table_name, op["Item"])
            elif op_type == "Delete":
                backend.delete_item(table_name, key)
            else:
                backend.update_item(
                    table_name, key, update_expression=op["UpdateExpression"],
                    expression_attribute_names=op.get("ExpressionAttributeNames"),
                    expression_attribute_values=op.get("ExpressionAttributeValues"),
                )
    except Exception:
        for table_name, key, before in reversed(written):
            if before is None:
                backend.delete_item(table_name, key)
            else:
                backend.put_item(table_name, before.to_json()["Attributes"])
        raise
