"""Continuing a model answer that was cut off mid-text, so the client sees one seamless text.

When a model call breaks off after some text (a worker died, the stream broke), the run's log
already holds that partial text and the client has seen it. The core rebuilds the transcript so
that it ends with an assistant message whose last block is that partial text, and calls the
provider again: a *continuation request*. The provider must then stream only the rest.

Two shapes reach a model. With a *prefill*, the partial text is the final assistant message and
the model carries on from its last character; the Messages API refuses a final assistant message
that ends in whitespace, so it is sent as `prefill_text(partial)`. Where a model refuses prefill,
the provider asks for the rest in a user message instead, and a model answering that often
repeats the last few words before carrying on.

`ContinuationJoiner` turns the continuation the model streams into the text to show after the
partial text:
- whitespace: the partial text's trailing whitespace is already on the client's screen. If the
  continuation's leading whitespace starts with it, only the extra part is kept ("item.\\n" then
  "\\nNext" keeps the paragraph break); otherwise the leading whitespace is dropped
  ("Hello world " then " again" shows "Hello world again", not a double space) unless it holds a
  line break the partial text's does not (a new paragraph outweighs an invisible space before it);
- overlap (`drop_overlap=True`, the user-message shape only): the longest suffix of the partial
  text (at most `MAX_OVERLAP_CHARS`, whitespace-stripped, starting where a word starts) that the
  continuation begins with is dropped, so a repeated tail is not shown twice. The joiner buffers
  only while a longer overlap is still possible, then streams straight through.

A cut inside a word is ambiguous for the overlap rule ("lots of l" then "loops" may be "loops"
restarted or "l" + "oops"); the longest overlap wins, which is right for a model that restarts
the word, as models asked to continue tend to.
"""

from __future__ import annotations

from .transcript import Message, TextBlock

MAX_OVERLAP_CHARS = 200
"""How far back a repeated tail is looked for: a few sentences, more than models repeat."""


def prefill_text(partial: str) -> str:
    """The partial text as a prefill: the Messages API refuses a final assistant message ending in whitespace."""
    return partial.rstrip()


def partial_reply(messages: list[Message]) -> str | None:
    """The text of a cut-off answer when `messages` is a continuation request, else None.

    A continuation request ends with an assistant message whose last block is text."""
    if not messages or messages[-1].role != "assistant" or not messages[-1].blocks:
        return None
    last = messages[-1].blocks[-1]
    return last.text if isinstance(last, TextBlock) else None


def without_partial_reply(messages: list[Message]) -> list[Message]:
    """The transcript with the cut-off text removed: the request the interrupted call answered."""
    if partial_reply(messages) is None:
        return list(messages)
    blocks = messages[-1].blocks[:-1]
    return list(messages[:-1]) + ([Message("assistant", blocks)] if blocks else [])


class ContinuationJoiner:
    """Feed it the continuation's text deltas; it returns what to show after the partial text.

    `feed()` may return "" while it holds text back (leading whitespace, a possible overlap);
    `finish()` returns what it still holds. Call `finish()` before anything that must come after
    the text so far (a tool call, the end of the turn); later feeds stream straight through."""

    def __init__(self, partial: str, *, drop_overlap: bool = False) -> None:
        self._stem = prefill_text(partial)
        self._trailing = partial[len(self._stem) :]
        self._overlap_window = self._stem[-MAX_OVERLAP_CHARS:] if drop_overlap else ""
        self._window_is_whole = len(self._overlap_window) == len(self._stem)
        self._held = ""
        self._overlap_decided = not self._overlap_window
        self._whitespace_decided = not self._trailing
        self._done = False

    def feed(self, delta: str) -> str:
        if self._done:
            return delta
        self._held += delta
        return self._release(final=False)

    def finish(self) -> str:
        if self._done:
            return ""
        released = self._release(final=True)
        self._done = True
        return released

    # -------------------------------------------------------------------------------------------
    def _release(self, *, final: bool) -> str:
        if not self._overlap_decided:
            if not final and self._overlap_pending():
                return ""
            self._held = self._held[self._longest_overlap() :]
            self._overlap_decided = True
        if not self._whitespace_decided:
            if not final and not self._held.strip():
                return ""  # only whitespace so far: what it means depends on what comes next
            self._held = self._without_repeated_whitespace(self._held)
            self._whitespace_decided = True
        released, self._held = self._held, ""
        self._done = self._overlap_decided and self._whitespace_decided
        return released

    def _overlap_candidates(self) -> range:
        return range(len(self._overlap_window), 0, -1)

    def _starts_a_word(self, length: int) -> bool:
        window = self._overlap_window
        start = len(window) - length
        if window[start].isspace():
            return False  # a repeat starts with a word, never with the space before it
        if start == 0:
            return self._window_is_whole
        return window[start - 1].isspace() or not window[start].isalnum()

    def _overlap_pending(self) -> bool:
        """Could a suffix longer than the text held so far still turn out to be repeated?"""
        held = self._held
        return any(
            length > len(held) and self._overlap_window[-length:].startswith(held) and self._starts_a_word(length)
            for length in self._overlap_candidates()
        )

    def _longest_overlap(self) -> int:
        for length in self._overlap_candidates():
            if self._held.startswith(self._overlap_window[-length:]) and self._starts_a_word(length):
                return length
        return 0

    def _without_repeated_whitespace(self, text: str) -> str:
        body = text.lstrip()
        leading = text[: len(text) - len(body)]
        if leading.startswith(self._trailing):
            return leading[len(self._trailing) :] + body
        if "\n" in leading and "\n" not in self._trailing:
            return leading + body  # a paragraph break matters more than an invisible space before it
        return body
