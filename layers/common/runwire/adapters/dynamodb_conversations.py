"""DynamoDB adapter for the `ConversationStore` port, in the runs table.

    pk = CONV#<org>#<conversation>   sk = MSG#<ms:013d>#<run>#<0|1>   a message (0 user, 1 assistant)
    pk = CONV#<org>#<conversation>   sk = ACTIVE                       the conversation's latest run

Sort keys order messages by their run's creation time, so "the last 20" is one Query read
backwards. Writing a turn twice (a retried worker) overwrites the same two items: idempotent.
"""

from __future__ import annotations

from typing import Any

from ..core.models import ConversationMessage
from ..core.ports import Clock
from .dynamodb import map_storage_errors

ACTIVE_SORT_KEY = "ACTIVE"
MESSAGE_PREFIX = "MSG#"


def conversation_key(org_id: str, conversation_id: str) -> str:
    return f"CONV#{org_id}#{conversation_id}"


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
