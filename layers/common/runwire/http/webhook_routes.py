"""`/v1/webhooks`: an org registers, lists and deletes its webhook endpoints, and reads its signing secret."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Path, Response
from pydantic import ConfigDict, Field, StrictStr
from pydantic.alias_generators import to_camel

from ..core.models import WireModel
from ..core.webhooks import WebhookEndpoint, WebhookEventType, WebhookService
from .auth import BearerCallerDep, CallerDep
from .unknown_fields import CanonicalRoute
from .views import iso

WEBHOOK_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "Invalid body, an unknown event type, a refused target (`webhook_target_refused`), "
                         "or the org's limit reached (`webhook_limit_reached`)"},
    401: {"description": "Missing, invalid or expired token"},
    403: {"description": "The token does not grant the requested org"},
}


class CreateWebhookRequest(WireModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, strict=True, extra="forbid")

    url: Annotated[str, Field(min_length=1, max_length=2048)]
    events: Annotated[list[Annotated[WebhookEventType, Field(strict=False)]],
                      Field(min_length=1, max_length=len(WebhookEventType))] | None = None
    """The event types to send (default: all of them)."""


class WebhookView(WireModel):
    id: StrictStr
    url: StrictStr
    events: list[WebhookEventType]
    created_at: StrictStr
    """ISO 8601 (UTC, milliseconds), as every `createdAt` of the API."""

    @classmethod
    def of(cls, endpoint: WebhookEndpoint) -> WebhookView:
        return cls(id=endpoint.endpoint_id, url=endpoint.url, events=endpoint.events,
                   created_at=iso(endpoint.created_at))


class CreatedWebhookView(WebhookView):
    secret: StrictStr
    """The org's signing secret (`whsec_…`), the same for all its endpoints and its runs' webhooks."""


class WebhookList(WireModel):
    data: list[WebhookView]


class WebhookSecretView(WireModel):
    secret: StrictStr


def install_webhook_routes(app: FastAPI, webhooks: WebhookService) -> None:
    router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"], route_class=CanonicalRoute)

    @router.post("", status_code=201, response_model=CreatedWebhookView, responses=WEBHOOK_ERRORS)
    def create_webhook(body: CreateWebhookRequest, who: CallerDep) -> CreatedWebhookView:
        """Register an endpoint for the org's run events. The answer carries the org's signing secret."""
        registered = webhooks.register(who, body.url, body.events)
        view = WebhookView.of(registered.endpoint)
        return CreatedWebhookView(**view.model_dump(), secret=registered.secret)

    @router.get("", response_model=WebhookList, responses=WEBHOOK_ERRORS)
    def list_webhooks(who: CallerDep) -> WebhookList:
        """The org's endpoints, oldest first (at most 10)."""
        return WebhookList(data=[WebhookView.of(e) for e in webhooks.endpoints(who)])

    @router.get("/secret", response_model=WebhookSecretView, responses=WEBHOOK_ERRORS)
    def webhook_secret(who: BearerCallerDep) -> WebhookSecretView:
        """The org's signing secret (created now if the org has none): verify every event with it.
        `Authorization: Bearer` only: the `access_token` cookie does not authorize this GET."""
        return WebhookSecretView(secret=webhooks.secret(who))

    @router.delete("/{webhook_id}", status_code=204, response_class=Response,
                   responses={**WEBHOOK_ERRORS, 404: {"description": "No such endpoint in this org"}})
    def delete_webhook(webhook_id: Annotated[str, Path(max_length=128)], who: CallerDep) -> Response:
        """Remove an endpoint: it gets no more events, nor retries of earlier ones."""
        webhooks.delete(who, webhook_id)
        return Response(status_code=204)

    app.include_router(router)

