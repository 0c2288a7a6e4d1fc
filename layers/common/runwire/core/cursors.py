"""Opaque listing cursors: a store's position, sealed with an HMAC over the listing it belongs to.

A cursor is `<position>.<mac>` (both base64url). The MAC covers the listing's scope (the kind of
listing, the caller's org and its filters) and the position, so a cursor that was cut, altered, or
handed to another org or another filter fails to open: the caller gets a 400, never another
listing's page. The position itself is not secret (a sort key the caller has seen the items of).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

from ..errors import InvalidCursorError

KEY_PURPOSE = b"runwire/listing-cursors/v1"
MAC_BYTES = 16
MAX_CURSOR_CHARS = 512


def _encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _decode(text: str) -> bytes:
    raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    # The decoder ignores a last character's spare bits and skips stray characters: only the one
    # canonical spelling is accepted, so no altered cursor opens.
    if _encode(raw) != text:
        raise ValueError("not canonical base64url")
    return raw


class CursorSealer:
    def __init__(self, key: bytes) -> None:
        if len(key) < 16:
            raise ValueError("a cursor key needs at least 16 bytes")
        self._key = key

    @classmethod
    def from_secret(cls, secret: str) -> CursorSealer:
        """A key of its own, derived from a deployment secret (so cursors need no secret of their own)."""
        return cls(hmac.new(secret.encode(), KEY_PURPOSE, hashlib.sha256).digest())

    def _mac(self, scope: str, payload: str) -> bytes:
        return hmac.new(self._key, f"{scope}\n{payload}".encode(), hashlib.sha256).digest()[:MAC_BYTES]

    def seal(self, scope: str, position: str) -> str:
        payload = _encode(position.encode())
        return f"{payload}.{_encode(self._mac(scope, payload))}"

    def open(self, scope: str, cursor: str) -> str:
        """The position sealed in `cursor` for `scope`; InvalidCursorError if it is not one."""
        payload, _, mac = cursor.partition(".")
        try:
            if len(cursor) > MAX_CURSOR_CHARS or not hmac.compare_digest(_decode(mac), self._mac(scope, payload)):
                raise ValueError("wrong MAC")
            return _decode(payload).decode()
        except (ValueError, binascii.Error):
            raise InvalidCursorError(
                "the cursor is not one this listing handed out (it was altered, or it belongs to another org "
                "or to other filters): start again without a cursor"
            ) from None
