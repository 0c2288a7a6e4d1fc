"""DynamoDB adapter for the `ConversationStore` port, in the runs table.

    pk = CONV#<org>#<conversation>   sk = MSG#<ms:013d>#<run>#<0|1>   a message (0 user, 1 assistant)
    pk = CONV#<org>#<conversation>   sk = ACTIVE                       the conversation's latest run
    pk = CONV#<org>#<conversation>   sk = SUMMARY                      its listing entry (latest turn)

Sort keys order messages by their run's creation time, so "the last 20" is one Query read
backwards. Writing a turn twice (a retried worker) overwrites the same two items: idempotent.

The summary carries `listPk = CONVS#<org>` and `listSk = <ms:013d>#<conversation>` (its latest
turn's time), the keys of the `OrgListing` index that lists runs too: most recent first is one Query
read backwards. Each turn moves it forward, never back (a late retry of an older turn leaves it).
"""

from __future__ import annotations

import time
from typing import Any

from ..core.listing import listed_identifier, listing_sort_key
from ..core.models import ConversationMessage, ConversationSummary, ListPage, listing_preview
from ..core.ports import Clock
from ..errors import ConditionFailedError, StorageError
from .dynamodb import ORG_LISTING_INDEX, map_storage_errors, query_listing

ACTIVE_SORT_KEY = "ACTIVE"
SUMMARY_SORT_KEY = "SUMMARY"
MESSAGE_PREFIX = "MSG#"
BATCH_WRITE_ITEMS = 25
"""BatchWriteItem's limit of requests per call."""
UNPROCESSED_RETRIES = 5
UNPROCESSED_BACKOFF_SECONDS = 0.025


def conversation_key(org_id: str, conversation_id: str) -> str:
    return f"CONV#{org_id}#{conversation_id}"


def conversations_listing_partition(org_id: str) -> str:
    return f"CONVS#{org_id}"


def _decode_summary(item: dict[str, Any]) -> ConversationSummary:
    return ConversationSummary(
        conversation_id=item["conversationId"]["S"],
        last_message_at=float(item["lastMessageAt"]["N"]),
        last_message=item["lastMessage"]["S"],
        last_run_id=item["lastRunId"]["S"],
        expires_at=int(item["expiresAt"]["N"]),
    )


class DynamoDBConversationStore:
    def __init__(self, client: Any, table_name: str, clock: Clock, *, retention_seconds: int) -> None:
        self._client = client
        self._table = table_name
        self._clock = clock
        self._retention = retention_seconds

    def recent_messages(self, org_id: str, conversation_id: str, *, limit: int) -> list[ConversationMessage]:
        now = self._clock()
        with map_storage_errors():
            response = self._client.query(
                TableName=self._table,
                KeyConditionExpression="pk = :pk AND begins_with(sk, :prefix)",
                ExpressionAttributeValues={
                    ":pk": {"S": conversation_key(org_id, conversation_id)},
                    ":prefix": {"S": MESSAGE_PREFIX},
                },
                ScanIndexForward=False,
                Limit=limit,
                ConsistentRead=True,  # the previous turn was written just before its run's end event
            )
        messages = [
            ConversationMessage(
                role="user" if item["sk"]["S"].endswith("#0") else "assistant",
                content=item["content"]["S"],
                run_id=item["runId"]["S"],
                created_at=float(item["createdAt"]["N"]),
            )
            for item in response.get("Items", [])
            if int(item["expiresAt"]["N"]) > now
        ]
        return list(reversed(messages))

    def append_turn(
        self, org_id: str, conversation_id: str, *, run_id: str, at: float, user: str, assistant: str
    ) -> None:
        expires_at = str(int(self._clock()) + self._retention)
        millis = f"{int(at * 1000):013d}"
        items = [
            {
                "PutRequest": {
                    "Item": {
                        "pk": {"S": conversation_key(org_id, conversation_id)},
                        "sk": {"S": f"{MESSAGE_PREFIX}{millis}#{run_id}#{index}"},
                        "content": {"S": content},
                        "runId": {"S": run_id},
                        "createdAt": {"N": repr(at)},
                        "expiresAt": {"N": expires_at},
                    }
                }
            }
            for index, content in enumerate((user, assistant))
        ]
        with map_storage_errors():
            response = self._client.batch_write_item(RequestItems={self._table: items})
            unprocessed = response.get("UnprocessedItems", {})
            for _ in range(5):  # throttled items come back unprocessed; retry them
                if not unprocessed:
                    break
                response = self._client.batch_write_item(RequestItems=unprocessed)
                unprocessed = response.get("UnprocessedItems", {})
        self._record_latest_turn(org_id, conversation_id, run_id=run_id, at=at, assistant=assistant, expires_at=expires_at)

    def _record_latest_turn(
        self, org_id: str, conversation_id: str, *, run_id: str, at: float, assistant: str, expires_at: str
    ) -> None:
        try:
            with map_storage_errors():
                self._client.update_item(
                    TableName=self._table,
                    Key={"pk": {"S": conversation_key(org_id, conversation_id)}, "sk": {"S": SUMMARY_SORT_KEY}},
                    UpdateExpression="SET conversationId = :id, listPk = :listPk, listSk = :listSk, lastMessageAt = :at, "
                                     "lastMessage = :preview, lastRunId = :run, expiresAt = :expiresAt",
                    ConditionExpression="attribute_not_exists(lastMessageAt) OR lastMessageAt <= :at",
                    ExpressionAttributeValues={
                        ":id": {"S": conversation_id},
                        ":listPk": {"S": conversations_listing_partition(org_id)},
                        ":listSk": {"S": listing_sort_key(at, conversation_id)},
                        ":at": {"N": repr(at)},
                        ":preview": {"S": listing_preview(assistant)},
                        ":run": {"S": run_id},
                        ":expiresAt": {"N": expires_at},
                    },
                )
        except ConditionFailedError:
            pass  # a later turn is the latest already (this is a late retry of an older one)

    def list_conversations(self, org_id: str, *, limit: int, after: str | None = None) -> ListPage[ConversationSummary]:
        partition = conversations_listing_partition(org_id)
        request: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": ORG_LISTING_INDEX,
            "KeyConditionExpression": "listPk = :partition",
            "FilterExpression": "expiresAt > :now",
            "ExpressionAttributeValues": {":partition": {"S": partition}, ":now": {"N": repr(self._clock())}},
            "ScanIndexForward": False,
        }
        start = None
        if after is not None:
            start = {"listPk": {"S": partition}, "listSk": {"S": after},
                     "pk": {"S": conversation_key(org_id, listed_identifier(after))}, "sk": {"S": SUMMARY_SORT_KEY}}
        items, next_position = query_listing(self._client, request, limit=limit, start=start)
        return ListPage([_decode_summary(item) for item in items], next_position)

    def delete_conversation(self, org_id: str, conversation_id: str, *, expected_active: str | None) -> bool:
        keys: list[dict[str, Any]] = []
        live = False
        now = self._clock()
        request: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": conversation_key(org_id, conversation_id)}},
            "ProjectionExpression": "pk, sk, expiresAt",
            "ConsistentRead": True,
        }
        with map_storage_errors():
            while True:
                response = self._client.query(**request)
                for item in response.get("Items", []):
                    keys.append({"pk": item["pk"], "sk": item["sk"]})
                    live = live or int(item["expiresAt"]["N"]) > now
                if "LastEvaluatedKey" not in response:
                    break
                request["ExclusiveStartKey"] = response["LastEvaluatedKey"]
        if not live:
            return False
        self._release_active_run(org_id, conversation_id, expected_active)
        # Then the messages, the summary last: a delete cut short leaves the conversation listed,
        # and the same DELETE again finishes it.
        keys = [key for key in keys if key["sk"]["S"] != ACTIVE_SORT_KEY]
        keys.sort(key=lambda key: key["sk"]["S"] == SUMMARY_SORT_KEY)
        for first in range(0, len(keys), BATCH_WRITE_ITEMS):
            self._delete_batch(keys[first:first + BATCH_WRITE_ITEMS])
        return True

    def _release_active_run(self, org_id: str, conversation_id: str, expected: str | None) -> None:
        """Delete the pointer if it still names `expected` (None: no live run); else ConditionFailedError."""
        if expected is None:
            condition, values = "attribute_not_exists(pk) OR expiresAt <= :now", {":now": {"N": str(int(self._clock()))}}
        else:
            condition, values = "attribute_not_exists(pk) OR expiresAt <= :now OR runId = :expected", {
                ":now": {"N": str(int(self._clock()))}, ":expected": {"S": expected}}
        with map_storage_errors():
            self._client.delete_item(
                TableName=self._table,
                Key={"pk": {"S": conversation_key(org_id, conversation_id)}, "sk": {"S": ACTIVE_SORT_KEY}},
                ConditionExpression=condition,
                ExpressionAttributeValues=values,
            )

    def _delete_batch(self, keys: list[dict[str, Any]]) -> None:
        requests: dict[str, Any] = {self._table: [{"DeleteRequest": {"Key": key}} for key in keys]}
        with map_storage_errors():
            for attempt in range(UNPROCESSED_RETRIES + 1):  # throttled deletes come back unprocessed
                if attempt:
                    time.sleep(UNPROCESSED_BACKOFF_SECONDS * 2**attempt)
                requests = self._client.batch_write_item(RequestItems=requests).get("UnprocessedItems", {})
                if not requests:
                    return
        raise StorageError("DynamoDB kept some of the conversation's items unprocessed: delete it again")

    def replace_active_run(
        self, org_id: str, conversation_id: str, run_id: str, *, expected: str | None, expires_at: int
    ) -> None:
        if expected is None:  # no pointer, or one that has expired (TTL deletes it late)
            condition, values = "attribute_not_exists(pk) OR expiresAt <= :now", {":now": {"N": str(int(self._clock()))}}
        else:
            condition, values = "runId = :expected", {":expected": {"S": expected}}
        with map_storage_errors():
            self._client.put_item(
                TableName=self._table,
                Item={
                    "pk": {"S": conversation_key(org_id, conversation_id)},
                    "sk": {"S": ACTIVE_SORT_KEY},
                    "runId": {"S": run_id},
                    "expiresAt": {"N": str(expires_at)},
                },
                ConditionExpression=condition,
                ExpressionAttributeValues=values,
            )

    def active_run(self, org_id: str, conversation_id: str) -> str | None:
        with map_storage_errors():
            item = self._client.get_item(
                TableName=self._table,
                Key={"pk": {"S": conversation_key(org_id, conversation_id)}, "sk": {"S": ACTIVE_SORT_KEY}},
                ConsistentRead=True,
            ).get("Item")
        if item is None or int(item["expiresAt"]["N"]) <= self._clock():
            return None
        return str(item["runId"]["S"])
