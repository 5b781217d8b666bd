"""Where a JSON body's large base64 data URLs are (pure): found in one pass over a whole body, or piece by piece
as a body arrives (ScannedBytes, filled by admission/body.py), so a CT volume's 60 MB is never scanned at once
on the event loop (one scan held it ~10 ms: BENCHMARKS.md, "CT and MR volumes"). Both ways run the same Finder
and find the same spans, however the body is split."""

from __future__ import annotations

import re
from typing import cast

from serve.imaging.shared_bytes import SharedBytes

MIN_URL_BYTES = 64 << 10
# The strict shape of what is found: `data:<type>/<subtype>;base64,` then the payload up to the next quote.
HEADER = re.compile(rb"data:[A-Za-z0-9!#$&^_.+-]{1,64}/[A-Za-z0-9!#$&^_.+-]{1,64};base64,")
MAX_HEADER = 140
OPEN = b'"data:'
Span = tuple[int, int]  # [start, end) of a URL's text, quotes excluded


class Finder:
    """The spans of data URLs in bytes that arrive front to back: `feed(raw, end)` each time raw[:end] has
    arrived. A candidate is a quote opening `data:`; it ends at the next quote, and is a span when the quote is not
    escaped, the header has the strict shape, it holds no backslash (so no escape could make a parser end it
    elsewhere or read it differently) and it is at least `min_url` long. A candidate never closed ends the search."""

    __slots__ = ("at", "clean", "min_url", "quote", "spans")

    def __init__(self, min_url: int = MIN_URL_BYTES) -> None:
        self.min_url = min_url
        self.spans: list[Span] = []
        self.at = 0  # where the next look starts
        self.quote = -1  # the opening quote of the candidate whose end is still to come, or -1
        self.clean = True  # no backslash in that candidate so far

    def feed(self, raw: bytes, end: int) -> None:
        at = self.at
        while True:
            if self.quote < 0:
                quote = raw.find(OPEN, at, end)
                if quote == -1:
                    self.at = max(at, end - len(OPEN) + 1)  # an opening cut short by `end` is looked at again
                    return
                self.quote, self.clean, at = quote, True, quote + 1
            close = raw.find(b'"', at, end)
            if self.clean and raw.find(b"\\", at, end if close == -1 else close) != -1:
                self.clean = False
            if close == -1:
                self.at = end
                return
            start = self.quote + 1
            if self.clean and close - start >= self.min_url and _opens_data_url(raw, self.quote, close):
                self.spans.append((start, close))
            self.quote, at = -1, close


def spans(raw: bytes, min_url: int = MIN_URL_BYTES) -> list[Span]:
    """The data URLs of a whole body: found already if it arrived as ScannedBytes, else found now."""
    if isinstance(raw, ScannedBytes) and raw.filled == len(raw) and raw.finder.min_url == min_url:
        return raw.finder.spans
    finder = Finder(min_url)
    finder.feed(raw, len(raw))
    return finder.spans


class ScannedBytes(SharedBytes):
    """Shared bytes of a known size, filled front to back, their data URLs found as each piece is written."""

    finder: Finder
    filled: int

    def __new__(cls, size: int, min_url: int = MIN_URL_BYTES) -> ScannedBytes:
        self = cast(ScannedBytes, super().__new__(cls, size))
        self.finder, self.filled = Finder(min_url), 0
        return self

    def append(self, piece: bytes) -> None:
        end = self.filled + len(piece)
        self[self.filled : end] = piece
        self.filled = end
        self.finder.feed(self, end)  # type: ignore[arg-type]  # reads as bytes do


def _opens_data_url(raw: bytes, quote: int, close: int) -> bool:
    """An unescaped quote (an even run of backslashes before it) opening the strict header."""
    slashes = 0
    while quote - slashes - 1 >= 0 and raw[quote - slashes - 1] == 0x5C:
        slashes += 1
    return slashes % 2 == 0 and HEADER.match(raw, quote + 1, min(close, quote + 1 + MAX_HEADER)) is not None
