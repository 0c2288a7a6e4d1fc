"""The one place domain errors become HTTP responses: `{"error": {"code", "message"}}`."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from .. import errors

log = logging.getLogger("runwire.http")

STATUS_BY_ERROR: list[tuple[type[errors.RunwireError], int]] = [
    # Most specific first: the first match wins.
    (errors.RequestTooLargeError, 413),
    (errors.InvalidRequestError, 400),
    (errors.AuthenticationError, 401),
    (errors.OrgForbiddenError, 403),
    (errors.NotFoundError, 404),
    (errors.RunConflictError, 409),
    (errors.RunFailedError, 502),
    (errors.QueueUnavailableError, 503),
    (errors.StorageError, 503),
]


class ErrorDetail(BaseModel):
    """What went wrong: `code` is stable and machine-readable, `message` is for people."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"additionalProperties": True})

    code: str = Field(description="Machine-readable, stable: e.g. `invalid_request`, `run_not_found`")
    message: str = Field(description="For people; may change")


class ErrorResponse(BaseModel):
    """Every error this API answers, whatever its status: `{"error": {"code", "message"}}`."""

    error: ErrorDetail


def status_for(error: errors.RunwireError) -> int:
    for error_type, status in STATUS_BY_ERROR:
        if isinstance(error, error_type):
            return status
    return 500


def error_body(code: str, message: str, **details: Any) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, **details}}


def error_response(error: errors.RunwireError, status: int | None = None) -> JSONResponse:
    status = status or status_for(error)
    headers = {"WWW-Authenticate": 'Bearer realm="runwire"'} if status == 401 else None
    return JSONResponse(error_body(error.code, error.message, **error.details), status_code=status, headers=headers)


UNKNOWN_FIELD_MESSAGE = "unknown field (this route accepts only the fields in its schema: see /docs)"


def _describe(validation: RequestValidationError) -> str:
    problems = []
    for problem in validation.errors():
        location = ".".join(str(part) for part in problem.get("loc", ()) if part != "body")
        message = UNKNOWN_FIELD_MESSAGE if problem.get("type") == "extra_forbidden" else problem.get("msg", "is invalid")
        problems.append(f"{location or 'body'}: {message}")
    return "; ".join(problems) or "the request is invalid"


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(errors.RunwireError)
    async def _domain(request: Request, exc: errors.RunwireError) -> JSONResponse:
        if status_for(exc) >= 500:
            log.error("request failed: %s", exc.message, exc_info=exc)
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(error_body("invalid_request", _describe(exc)), status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {400: "invalid_request", 404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        message = exc.detail if isinstance(exc.detail, str) else "request failed"
        if exc.status_code == 404 and message == "Not Found":
            message = f"no route for {request.method} {request.url.path}"
        return JSONResponse(error_body(code, message), status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return JSONResponse(error_body("internal_error", "Something went wrong on our side."), status_code=500)
