"""A pure Server-Sent Events encoder (WHATWG HTML § 9.2, "Server-sent events").

`ServerSentEvent.encode()` returns the exact bytes of one event; transports (ASGI responses)
live elsewhere. Divergences from the spec: none on output. `data` containing newlines is split
over several `data:` lines, as the spec's parser joins them back with "\n". Lines end in "\n"
only (the spec allows CR, LF or CRLF; LF is what every client handles).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ServerSentEvent:
    data: str | None = None
    event: str | None = None
    id: str | None = None
    retry_ms: int | None = None
    comment: str | None = None

    def encode(self) -> bytes:
        lines: list[str] = []
        if self.comment is not None:
            lines.extend(f": {line}" if line else ":" for line in self.comment.split("\n"))
        if self.id is not None:
            if "\n" in self.id or "\r" in self.id or "\0" in self.id:
                raise ValueError("an SSE id cannot contain newlines or NUL")
            lines.append(f"id: {self.id}")
        if self.event is not None:
            if "\n" in self.event or "\r" in self.event:
                raise ValueError("an SSE event name cannot contain newlines")
            lines.append(f"event: {self.event}")
        if self.retry_ms is not None:
            lines.append(f"retry: {int(self.retry_ms)}")
        if self.data is not None:
            lines.extend(f"data: {line}" for line in self.data.replace("\r\n", "\n").replace("\r", "\n").split("\n"))
        return ("\n".join(lines) + "\n\n").encode("utf-8")


PING = ServerSentEvent(comment="ping").encode()
"""A keep-alive comment: ignored by every SSE parser, keeps proxies from closing an idle stream."""
