"""In-memory fakes of the webhook ports: they pass the same contract tests as the real adapters
(tests/contract/test_webhook_store_contract.py)."""

from __future__ import annotations

import threading
from collections.abc import Sequence

from ..core.webhooks import OutboxEvent, WebhookDelivery, WebhookEndpoint
from ..errors import ConditionFailedError


class InMemoryWebhookStore:
    def __init__(self) -> None:
        self._secrets: dict[str, str] = {}
        self._endpoints: dict[str, dict[str, WebhookEndpoint]] = {}
        self._lock = threading.Lock()

    def ensure_secret(self, org_id: str, candidate: str) -> str:
        with self._lock:
            return self._secrets.setdefault(org_id, candidate)

    def secret(self, org_id: str) -> str | None:
        with self._lock:
            return self._secrets.get(org_id)

    def add_endpoint(self, endpoint: WebhookEndpoint, *, limit: int, secret_candidate: str) -> str:
        with self._lock:
            endpoints = self._endpoints.setdefault(endpoint.org_id, {})
            if len(endpoints) >= limit or endpoint.endpoint_id in endpoints:
                raise ConditionFailedError("the org has as many webhook endpoints as it may")
            endpoints[endpoint.endpoint_id] = endpoint
            return self._secrets.setdefault(endpoint.org_id, secret_candidate)

    def endpoints(self, org_id: str) -> list[WebhookEndpoint]:
        with self._lock:
            found = list(self._endpoints.get(org_id, {}).values())
        return sorted(found, key=lambda e: (e.created_at, e.endpoint_id))

    def endpoint(self, org_id: str, endpoint_id: str) -> WebhookEndpoint | None:
        with self._lock:
            return self._endpoints.get(org_id, {}).get(endpoint_id)

    def delete_endpoint(self, org_id: str, endpoint_id: str) -> bool:
        with self._lock:
            return self._endpoints.get(org_id, {}).pop(endpoint_id, None) is not None


class InMemoryWebhookOutbox:
    """Keeps what was sent, in order: `events`, `deliveries`, `dead_letters`."""

    def __init__(self) -> None:
        self.events: list[OutboxEvent] = []
        self.deliveries: list[WebhookDelivery] = []
        self.dead_letters: list[WebhookDelivery] = []

    def send_event(self, event: OutboxEvent) -> None:
        self.events.append(event)

    def send_deliveries(self, deliveries: Sequence[WebhookDelivery]) -> None:
        self.deliveries.extend(deliveries)

    def dead_letter(self, delivery: WebhookDelivery) -> None:
        self.dead_letters.append(delivery)
