"""Joining a model's continuation to the partial text the client has already seen."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from runwire.core.continuation import (
    MAX_OVERLAP_CHARS,
    ContinuationJoiner,
    partial_reply,
    prefill_text,
    without_partial_reply,
)
from runwire.core.transcript import Message, TextBlock, ToolCallBlock, ToolResultBlock


def joined(partial: str, deltas: list[str], *, drop_overlap: bool = False) -> tuple[list[str], str]:
    """(what each feed returned, everything shown after the partial text)."""
    joiner = ContinuationJoiner(partial, drop_overlap=drop_overlap)
    released = [joiner.feed(delta) for delta in deltas]
    released.append(joiner.finish())
    return released, "".join(released)


@pytest.mark.parametrize(
    ("partial", "deltas", "drop_overlap", "shown"),
    [
        pytest.param("Hello world ", [" again"], False, "again", id="no-double-space-after-a-trailing-space"),
        pytest.param("Hello world", [" again"], False, " again", id="space-kept-when-the-partial-has-none"),
        pytest.param("Hello wor", ["ld", " again"], False, "ld again", id="a-word-cut-in-half-is-finished"),
        pytest.param("Item one.\n", ["\n\n", "Item two"], False, "\nItem two", id="paragraph-break-completed"),
        pytest.param("Sentence. ", ["\n\n", "Next"], False, "\n\nNext", id="new-paragraph-kept-after-a-space"),
        pytest.param("Hello ", [" ", " ", "there"], False, " there", id="extra-whitespace-the-model-meant-kept"),
        pytest.param("", ["Fresh", " start"], False, "Fresh start", id="nothing-shown-yet"),
        pytest.param("The quick brown", ["quick", " brown", " fox"], True, " fox", id="repeated-tail-dropped"),
        pytest.param("The quick brown ", ["brown fox"], True, "fox", id="repeated-word-after-a-trailing-space"),
        pytest.param("The quick bro", ["brown", " fox"], True, "wn fox", id="restarted-word-completed"),
        pytest.param("The quick brown", [" fox", " jumps"], True, " fox jumps", id="no-repetition-passes-through"),
        pytest.param("The answer is", [" simple"], True, " simple", id="unrelated-start-passes-through"),
        pytest.param("Alpha beta", ["beta"], True, "", id="continuation-that-only-repeats-shows-nothing"),
    ],
)
def test_the_continuation_shows_only_what_is_new(partial, deltas, drop_overlap, shown):
    assert joined(partial, deltas, drop_overlap=drop_overlap)[1] == shown


def test_a_possible_overlap_is_held_only_until_it_is_decided_then_text_streams_through():
    released, _ = joined("one two three", ["two", " thr", "ee", " four", " five"], drop_overlap=True)

    assert released == ["", "", "", " four", " five", ""]


def test_text_after_finish_streams_through_unchanged():
    joiner = ContinuationJoiner("Hello ", drop_overlap=True)
    assert joiner.feed(" ") == ""
    assert joiner.finish() == ""
    assert joiner.feed(" world") == " world"


def test_only_the_last_max_overlap_chars_are_searched_for_a_repeat():
    partial = "x" * 10 + " " + "y" * MAX_OVERLAP_CHARS
    _, shown = joined(partial, ["x" * 10 + " " + "y" * MAX_OVERLAP_CHARS + " z"], drop_overlap=True)

    assert shown.endswith(" z") and len(shown) > 2, "a repeat longer than the window is not recognised"


def test_prefill_text_strips_trailing_whitespace_only():
    assert prefill_text("  Hello world \n\t") == "  Hello world"


def test_a_continuation_request_ends_with_assistant_text():
    user = Message("user", (TextBlock("Hi"),))
    call = ToolCallBlock("t1", "calculator", {"expression": "1+1"})
    assert partial_reply([user, Message("assistant", (TextBlock("Hel"),))]) == "Hel"
    assert partial_reply([user, Message("assistant", (call, TextBlock("So")))]) == "So"
    assert partial_reply([user, Message("assistant", (TextBlock("x"), call))]) is None
    assert partial_reply([user]) is None
    assert partial_reply([user, Message("user", (ToolResultBlock("t1", 2),))]) is None


def test_without_partial_reply_removes_only_the_cut_off_text():
    user = Message("user", (TextBlock("Hi"),))
    call = ToolCallBlock("t1", "calculator", {"expression": "1+1"})
    assert without_partial_reply([user, Message("assistant", (TextBlock("Hel"),))]) == [user]
    assert without_partial_reply([user, Message("assistant", (call, TextBlock("So")))]) == [
        user, Message("assistant", (call,))
    ]


# --- properties -------------------------------------------------------------------------------
# Letters distinct within a word: a word cut where its rest starts with the part already shown
# ("mur" of "murmur") is ambiguous for the overlap rule (see the module docstring), by design.
WORD = st.lists(st.sampled_from("abcdefghij"), min_size=1, max_size=6, unique=True).map("".join)
SEPARATOR = st.sampled_from([" ", "  ", "\n", "\n\n", " \n"])


@st.composite
def cut_answers(draw: st.DrawFn) -> tuple[str, int, list[int]]:
    """(an answer of distinct words, where it was cut, where the continuation's deltas split)."""
    words = draw(st.lists(WORD, min_size=2, max_size=25, unique=True))
    text = words[0] + "".join(draw(SEPARATOR) + word for word in words[1:])
    cut = draw(st.integers(1, len(text) - 1))
    splits = draw(st.lists(st.integers(0, len(text)), max_size=8))
    return text, cut, splits


def split_at(text: str, points: list[int]) -> list[str]:
    bounds = [0, *sorted({p for p in points if 0 < p < len(text)}), len(text)]
    return [text[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]


@given(cut_answers())
def test_a_prefill_continuation_joins_to_the_whole_answer(case):
    text, cut, splits = case
    partial = text[:cut]
    continuation = text[len(prefill_text(partial)) :]  # what a model prefilled with the stripped text writes

    _, shown = joined(partial, split_at(continuation, splits))

    assert partial + shown == text


@given(cut_answers(), st.integers(0, 4))
def test_a_continuation_that_repeats_the_last_words_joins_without_repeating_them(case, repeated_words):
    text, cut, splits = case
    partial = text[:cut]
    stem = prefill_text(partial)
    word_starts = [i for i in range(len(stem)) if not stem[i].isspace() and (i == 0 or stem[i - 1].isspace())]
    repeated = min(repeated_words, len(word_starts))
    start = word_starts[-repeated] if repeated else len(stem)
    continuation = text[start:]  # the model repeats the tail from the start of a word, then carries on

    _, shown = joined(partial, split_at(continuation, splits), drop_overlap=True)

    assert partial + shown == text
