"""Listing cursors open only for the listing that sealed them."""

from __future__ import annotations

import pytest

from runwire.core.cursors import CursorSealer
from runwire.errors import InvalidCursorError

SEALER = CursorSealer.from_secret("a-deployment-secret")
SCOPE = "runs|acme|succeeded|"
POSITION = "1800000000123#run_0123"


def test_a_sealed_position_opens_for_its_own_listing() -> None:
    assert SEALER.open(SCOPE, SEALER.seal(SCOPE, POSITION)) == POSITION


@pytest.mark.parametrize("scope", ["runs|other-org|succeeded|", "runs|acme||", "runs|acme|succeeded|conv-1",
                                   "conversations|acme"])
def test_a_cursor_does_not_open_for_another_org_or_filter(scope: str) -> None:
    with pytest.raises(InvalidCursorError):
        SEALER.open(scope, SEALER.seal(SCOPE, POSITION))


def test_a_cursor_sealed_with_another_secret_does_not_open() -> None:
    with pytest.raises(InvalidCursorError):
        SEALER.open(SCOPE, CursorSealer.from_secret("another-secret").seal(SCOPE, POSITION))


def test_changing_any_character_of_a_cursor_makes_it_invalid() -> None:
    cursor = SEALER.seal(SCOPE, POSITION)
    for index, char in enumerate(cursor):
        for replacement in {"A", "b", ".", "-"} - {char}:
            altered = cursor[:index] + replacement + cursor[index + 1:]
            with pytest.raises(InvalidCursorError):
                SEALER.open(SCOPE, altered)


@pytest.mark.parametrize("garbage", ["", ".", "abc", "abc.def", "!!!.???", "é.é", "a" * 600])
def test_garbage_is_an_invalid_cursor(garbage: str) -> None:
    with pytest.raises(InvalidCursorError):
        SEALER.open(SCOPE, garbage)
