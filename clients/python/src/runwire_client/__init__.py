"""runwire's Python SDK: `Runwire` and `AsyncRunwire` (httpx), typed chunks, resumable streams."""

from __future__ import annotations

from .chunks import (
    AnyChunk,
    ApprovalAction,
    Chunk,
    ClientToolAction,
    EndChunk,
    ErrorChunk,
    InterruptedChunk,
    RequiresActionChunk,
    StatusChunk,
    StepEndChunk,
    TextChunk,
    ToolResultChunk,
    ToolUseChunk,
    UnknownAction,
    UnknownChunk,
    UsageChunk,
    parse_chunk,
)
from .client import AsyncRunwire, Runwire
from .config import ClientConfig
from .errors import (
    APIConnectionError,
    APIError,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    InsufficientBalanceError,
    InternalServerError,
    NotFoundError,
    PaymentRequiredError,
    PermissionDeniedError,
    RateLimitError,
    RequestTooLargeError,
    RunwireClientError,
    StreamError,
)
from .models import ConversationMessage, ConversationMessages, EventsPage, Run, RunsPage, RunSummary, StartedRun, Usage
from .streaming import AsyncRunStream, RunStream, StreamOptions
from .transport import RetryPolicy

__version__ = "0.1.0"

__all__ = [
    "APIConnectionError", "APIError", "AnyChunk", "ApprovalAction", "AsyncRunStream", "AsyncRunwire",
    "AuthenticationError", "BadRequestError", "Chunk", "ClientConfig", "ClientToolAction", "ConflictError",
    "ConversationMessage", "ConversationMessages", "EndChunk", "ErrorChunk", "EventsPage", "InsufficientBalanceError",
    "InternalServerError", "InterruptedChunk", "NotFoundError", "PaymentRequiredError",
    "PermissionDeniedError", "RateLimitError",
    "RequestTooLargeError", "RequiresActionChunk", "RetryPolicy", "Run", "RunStream", "RunSummary", "Runwire",
    "RunwireClientError", "RunsPage", "StartedRun", "StatusChunk", "StepEndChunk", "StreamError", "StreamOptions",
    "TextChunk", "ToolResultChunk", "ToolUseChunk", "UnknownAction", "UnknownChunk", "Usage", "UsageChunk",
    "parse_chunk",
]
