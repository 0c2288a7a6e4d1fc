"""Unknown fields are errors on the canonical routes (`/v1/…`), as OpenAI's and Stripe's APIs do.

A typo (`agentrole` for `agentRole`) silently ignored starts a run the client did not ask for
(issue 12, point 2). The surfaces that speak other clients' protocols (`/ai/…`, `/api/agent/…`,
`/chat/…`) keep ignoring what they do not know: their clients send extras (the AI SDK's `trigger`,
`messageId`…) they cannot be asked to drop.

The strictness is the route's, not the model's: the same `RunRequest` ignores unknown fields on
`POST /ai/agent/stream` and refuses them on `POST /v1/runs`. Every route whose path starts with
`/v1/` validates its JSON body with pydantic's `extra="forbid"`, at every depth (`settings.foo`
too); free-form objects (`context`, a tool's `inputSchema`) stay free-form. `refuse_unknown_fields_on_v1`
makes it the app's rule: a route added with `@app.post(…)` later gets it without a word.

Only the wire names count there: `WireModel` also takes its Python names (`populate_by_name`, so
code can build one), but the document declares the `/v1/` bodies closed with their camelCase names,
so `agent_role` is as unknown as `agentrole` (pydantic ≥ 2.11's `by_name=False` at validation time).
"""

from __future__ import annotations

import inspect
import types
from collections.abc import Callable
from typing import Annotated, Any, TypeVar, Union, get_args, get_origin, get_type_hints

from fastapi import FastAPI, params
from fastapi.routing import APIRoute
from pydantic import BaseModel, GetCoreSchemaHandler
from pydantic_core import CoreSchema, core_schema

CANONICAL_PREFIX = "/v1/"


class RefuseUnknownFields:
    """`Annotated[SomeModel, RefuseUnknownFields()]`: the model, validated with `extra="forbid"`.
    Pydantic's validation-time `extra` reaches nested models, whatever their own config says."""

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        model: type[BaseModel] = source

        def refuse(value: Any, validate: Callable[[Any], Any]) -> Any:
            if isinstance(value, model):
                return value
            # A ValidationError raised here keeps its own errors and their locations. Wire names
            # only, at every depth: `agent_role` is an unknown field like any other.
            return model.model_validate(value, extra="forbid", from_attributes=True, by_alias=True, by_name=False)

        return core_schema.no_info_wrap_validator_function(refuse, handler(source))


REFUSE_UNKNOWN_FIELDS = RefuseUnknownFields()
ModelT = TypeVar("ModelT", bound=BaseModel)
Canonical = Annotated[ModelT, REFUSE_UNKNOWN_FIELDS]
"""A body type that refuses unknown fields, for a route outside `/v1/` that wants to."""


def is_canonical(path: str) -> bool:
    return path.startswith(CANONICAL_PREFIX)


def refusing_unknown_fields(endpoint: Callable[..., Any]) -> Callable[..., Any]:
    """The endpoint, its JSON body's pydantic model marked `RefuseUnknownFields`: written bare
    (`body: RunRequest`), `Annotated` (`Annotated[RunRequest, Body()]`) or optional (`RunRequest | None`).

    FastAPI reads an endpoint's parameters from `inspect.signature`, which honours
    `__signature__`: only that is replaced; the function itself runs as it was written. A body
    type that holds a model some other way (`list[Model]`, a union of models) is refused when the
    route is built: it would silently not be strict."""
    hints = get_type_hints(endpoint, include_extras=True)
    signature = inspect.signature(endpoint)
    parameters = []
    for parameter in signature.parameters.values():
        annotation = hints.get(parameter.name, parameter.annotation)
        if not isinstance(parameter.default, (params.Depends, params.Param)):
            annotation = strict_body(annotation, f"{endpoint.__name__}({parameter.name})")
        parameters.append(parameter.replace(annotation=annotation))
    endpoint.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=parameters, return_annotation=hints.get("return", signature.return_annotation)
    )
    return endpoint


def strict_body(annotation: Any, where: str) -> Any:
    """`annotation` with its body model marked `RefuseUnknownFields`; unchanged if it is no body
    (a dependency, a query/header/path parameter, a plain type)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return Annotated[annotation, REFUSE_UNKNOWN_FIELDS]
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Annotated:
        inner, *metadata = args
        if any(isinstance(m, (params.Depends, params.Param)) for m in metadata):
            return annotation  # a dependency or a query/header/path/cookie parameter: not the body
        if REFUSE_UNKNOWN_FIELDS in metadata:
            return annotation
        return Annotated[(strict_body(inner, where), *metadata)]  # type: ignore[misc]
    if origin in (Union, types.UnionType) and type(None) in args:
        members = [a for a in args if a is not type(None)]
        if len(members) == 1:
            return Union[strict_body(members[0], where), None]  # noqa: UP007 - built at runtime
    if names_a_model(annotation):
        raise TypeError(f"{where}: cannot refuse unknown fields in a body of type {annotation!r}; "
                        "use a model, optionally Annotated or `| None`")
    return annotation


def names_a_model(annotation: Any) -> bool:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return True
    return any(names_a_model(arg) for arg in get_args(annotation))


class CanonicalRoute(APIRoute):
    """The apps' route class: a `/v1/` route's body refuses unknown fields (400 naming each)."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        if is_canonical(path):
            endpoint = refusing_unknown_fields(endpoint)
        super().__init__(path, endpoint, **kwargs)


def refuse_unknown_fields_on_v1(app: FastAPI) -> None:
    """Make every `/v1/` route added to `app` from now on refuse unknown body fields.

    A feature's own `APIRouter` keeps its route class when included (FastAPI includes a router's
    routes as they were built), so a router of `/v1/` routes is `APIRouter(route_class=CanonicalRoute)`;
    `tests/functional/test_unknown_fields.py` sends an unknown field to every `/v1/` body the
    OpenAPI document lists, so one that is not fails there."""
    for route in app.router.routes:
        if type(route) is APIRoute and is_canonical(route.path):
            raise RuntimeError(f"{route.path} was added before refuse_unknown_fields_on_v1: call it first")
    app.router.route_class = CanonicalRoute
