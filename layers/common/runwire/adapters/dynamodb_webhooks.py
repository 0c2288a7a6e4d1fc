"""DynamoDB adapter for the `WebhookStore` port (core.webhooks), in the runs table:

    pk = WEBHOOKS#<org>   sk = ORG                  `secret` (whsec_…), `endpointCount`
    pk = WEBHOOKS#<org>   sk = ENDPOINT#<id>         `endpointId`, `url`, `events`, `registeredAt`

No `expiresAt`: an org's endpoints and secret stay until deleted. Nor `orgId` or `createdAt` (the
org is in the key): a run item's attributes, which an index of runs may be keyed on, never appear on
these items, so they never land in such an index. Registering an endpoint is one
TransactWriteItems: the org item's count goes up only while it is under the limit, and the endpoint is
put with it, so concurrent registrations never pass the limit; a delete takes the count down with it.
"""

from __future__ import annotations

import json
from typing import Any

from ..core.ports import Clock
from ..core.webhooks import WebhookEndpoint, WebhookEventType
from ..errors import ConditionFailedError
from .dynamodb import map_storage_errors, patiently

ORG_SORT_KEY = "ORG"
ENDPOINT_PREFIX = "ENDPOINT#"

UNDER_LIMIT = "attribute_not_exists(endpointCount) OR endpointCount < :limit"
ENDPOINT_NOT_EXISTS = "attribute_not_exists(pk)"
ENDPOINT_EXISTS = "attribute_exists(pk)"
SECRET_IF_NEW = "secret = if_not_exists(secret, :secret)"


WEBHOOKS_PREFIX = "WEBHOOKS#"


def webhooks_key(org_id: str) -> str:
    return f"{WEBHOOKS_PREFIX}{org_id}"


def _decode_endpoint(item: dict[str, Any]) -> WebhookEndpoint:
    return WebhookEndpoint(
        endpoint_id=item["endpointId"]["S"], org_id=item["pk"]["S"].removeprefix(WEBHOOKS_PREFIX),
        url=item["url"]["S"], events=[WebhookEventType(e) for e in json.loads(item["events"]["S"])],
        created_at=float(item["registeredAt"]["N"]),
    )


class DynamoDBWebhookStore:
    def __init__(self, client: Any, table_name: str, clock: Clock) -> None:
        self._client = client
        self._table = table_name
        self._clock = clock

    def _org_key(self, org_id: str) -> dict[str, Any]:
        return {"pk": {"S": webhooks_key(org_id)}, "sk": {"S": ORG_SORT_KEY}}

    def _endpoint_key(self, org_id: str, endpoint_id: str) -> dict[str, Any]:
        return {"pk": {"S": webhooks_key(org_id)}, "sk": {"S": ENDPOINT_PREFIX + endpoint_id}}

    def ensure_secret(self, org_id: str, candidate: str) -> str:
        with map_storage_errors():
            response = self._client.update_item(
                TableName=self._table, Key=self._org_key(org_id), UpdateExpression=f"SET {SECRET_IF_NEW}",
                ExpressionAttributeValues={":secret": {"S": candidate}}, ReturnValues="ALL_NEW",
            )
        return str(response["Attributes"]["secret"]["S"])

    def secret(self, org_id: str) -> str | None:
        with map_storage_errors():
            item = self._client.get_item(TableName=self._table, Key=self._org_key(org_id),
                                         ConsistentRead=True).get("Item")
        return str(item["secret"]["S"]) if item and "secret" in item else None

    def add_endpoint(self, endpoint: WebhookEndpoint, *, limit: int, secret_candidate: str) -> str:
        count = {
            "Update": {
                "TableName": self._table, "Key": self._org_key(endpoint.org_id),
                "UpdateExpression": f"SET {SECRET_IF_NEW} ADD endpointCount :one",
                "ConditionExpression": UNDER_LIMIT,
                "ExpressionAttributeValues": {":secret": {"S": secret_candidate}, ":one": {"N": "1"},
                                              ":limit": {"N": str(limit)}},
            }
        }
        put = {
            "Put": {
                "TableName": self._table,
                "Item": {
                    **self._endpoint_key(endpoint.org_id, endpoint.endpoint_id),
                    "endpointId": {"S": endpoint.endpoint_id},
                    "url": {"S": endpoint.url},
                    "events": {"S": json.dumps([e.value for e in endpoint.events])},
                    "registeredAt": {"N": repr(endpoint.created_at)},
                },
                "ConditionExpression": ENDPOINT_NOT_EXISTS,
            }
        }
        with map_storage_errors():  # concurrent registrations meet on the org item: tried again
            patiently(lambda: self._client.transact_write_items(TransactItems=[count, put]))
        secret = self.secret(endpoint.org_id)
        if secret is None:
            raise ConditionFailedError("the org's webhook secret vanished after it was written")
        return secret

    def endpoints(self, org_id: str) -> list[WebhookEndpoint]:
        items: list[dict[str, Any]] = []
        arguments: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)",
            "ExpressionAttributeValues": {":pk": {"S": webhooks_key(org_id)}, ":prefix": {"S": ENDPOINT_PREFIX}},
            "ConsistentRead": True,
        }
        with map_storage_errors():
            while True:
                response = self._client.query(**arguments)
                items.extend(response.get("Items", []))
                if "LastEvaluatedKey" not in response:
                    break
                arguments["ExclusiveStartKey"] = response["LastEvaluatedKey"]
        return sorted((_decode_endpoint(item) for item in items), key=lambda e: (e.created_at, e.endpoint_id))

    def endpoint(self, org_id: str, endpoint_id: str) -> WebhookEndpoint | None:
        with map_storage_errors():
            item = self._client.get_item(TableName=self._table, Key=self._endpoint_key(org_id, endpoint_id),
                                         ConsistentRead=True).get("Item")
        return _decode_endpoint(item) if item else None

    def delete_endpoint(self, org_id: str, endpoint_id: str) -> bool:
        delete = {"Delete": {"TableName": self._table, "Key": self._endpoint_key(org_id, endpoint_id),
                             "ConditionExpression": ENDPOINT_EXISTS}}
        count = {"Update": {"TableName": self._table, "Key": self._org_key(org_id),
                            "UpdateExpression": "ADD endpointCount :minus_one",
                            "ConditionExpression": "endpointCount > :zero",
                            "ExpressionAttributeValues": {":minus_one": {"N": "-1"}, ":zero": {"N": "0"}}}}
        try:
            with map_storage_errors():
                patiently(lambda: self._client.transact_write_items(TransactItems=[delete, count]))
        except ConditionFailedError:
            return False
        return True
