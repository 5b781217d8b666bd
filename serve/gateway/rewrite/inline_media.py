"""Large base64 data URLs cut out of a request body before its JSON is parsed (pure): parsing a CT volume's 60 MB
on the event loop held it ~100 ms; the cut document is a few kB. Each URL becomes a placeholder string, read
back through `resolve` and put back, byte for byte, into the body forwarded to the engine by `restore_pieces`. Images
the gateway makes (a volume's slices) are held the same way: the body goes to the engine as pieces, and the
megabytes of base64 are never re-encoded nor copied on the event loop."""

from __future__ import annotations

import codecs
import secrets
from dataclasses import dataclass, field
from typing import Any, cast

from serve.gateway.errors import bad_request
from serve.gateway.rewrite.data_urls import MIN_URL_BYTES, spans
from serve.imaging.shared_bytes import SharedBytes, SharedText

MIN_BODY_BYTES = 1 << 20  # smaller bodies keep the plain parse: one length check is all they pay
# A placeholder is NUL, a per-request random token, the index, NUL: JSON spells NUL only as \u0000, and a client
# cannot guess the token, so no client string is ever taken for one.
NUL = "\x00"
JSON_NUL = b"\\u0000"
Body = bytes | list[bytes | memoryview]  # a body to forward: whole, or pieces written one after another


@dataclass(frozen=True)
class InlineMedia:
    raw: bytes  # the body as received: the URLs stay there, unparsed and uncopied
    spans: tuple[tuple[int, int], ...]  # [start, end) of each URL's text in raw, quotes excluded
    token: str
    # Data URLs made here (hold()), numbered after the spans.
    made: list[bytes | memoryview] = field(default_factory=list, compare=False)

    def hold(self, url: bytes | memoryview) -> str:
        """A placeholder for a data URL made here (ASCII: base64 needs no JSON escape), put back by restore_pieces."""
        self.made.append(url)
        return self.placeholder(len(self.spans) + len(self.made) - 1)

    def placeholder(self, k: int) -> str:
        return f"{NUL}{self.token}:{k}{NUL}"

    def index(self, value: str) -> int | None:
        """The span a placeholder names, None for any other string."""
        head = NUL + self.token + ":"
        if not (value.startswith(head) and value.endswith(NUL)):
            return None
        digits = value[len(head) : -1]
        k = int(digits) if digits.isdigit() and digits.isascii() else -1
        return k if 0 <= k < len(self.spans) + len(self.made) and value == self.placeholder(k) else None

    def url(self, k: int) -> str:
        if k >= len(self.spans):
            return bytes(self.made[k - len(self.spans)]).decode("ascii")
        start, end = self.spans[k]
        # Not UTF-8: the parser's refusal. (Raw control characters, which the parser also refuses, are not looked
        # for here, a pass over every payload: the worker's strict base64 decode refuses them, also with a 400.)
        try:
            return str(memoryview(self.raw)[start:end], "utf-8")
        except UnicodeDecodeError:
            raise bad_request(
                "The request body is not valid JSON: str is not valid UTF-8.", code="invalid_json"
            ) from None


class CutText:
    """A cut data URL left in the request body for a worker: a slice reads those characters alone, and pickling
    (done by the pool's own thread) makes the str in the worker, so the event loop never copies the whole URL.
    Bytes that are not UTF-8 read as U+FFFD, which the worker's strict base64 decode refuses."""

    __slots__ = ("end", "raw", "start")

    def __init__(self, raw: bytes, start: int, end: int) -> None:
        self.raw, self.start, self.end = raw, start, end

    def __len__(self) -> int:
        return self.end - self.start

    def __getitem__(self, at: slice) -> str:
        first, stop, _ = at.indices(len(self))
        return _text(memoryview(self.raw)[self.start + first : self.start + stop])

    def part(self, start: int, stop: int) -> CutText:
        """Characters [start, stop) (clamped, as slicing), still uncopied."""
        first, end, _ = slice(start, stop).indices(len(self))
        return CutText(self.raw, self.start + first, self.start + max(first, end))

    def __reduce__(self) -> tuple[Any, ...]:
        if isinstance(self.raw, SharedBytes):  # the worker reads the characters from the shared body itself
            return SharedText(self.raw, self.start, self.end).__reduce__()
        return codecs.decode, (bytes(memoryview(self.raw)[self.start : self.end]), "utf-8", "replace")


def as_worker_text(text: str | CutText) -> str:
    """What a worker job receives: a CutText arrives there as the str it spells (its pickle makes it)."""
    return cast(str, text)


def _text(view: memoryview) -> str:
    return str(view, "utf-8", "replace")


def cut(
    raw: bytes, *, min_body: int = MIN_BODY_BYTES, min_url: int = MIN_URL_BYTES
) -> tuple[bytes, InlineMedia | None]:
    """(the document to parse, the URLs cut from it); small bodies come back as they are, with None. Only string
    values of the strict shape are cut (data_urls.py; a body that arrived as ScannedBytes was looked through as it
    came), each replaced by another string: the JSON's structure and validity are unchanged, and what does not
    match is left for the parser to judge."""
    if len(raw) < min_body:
        return raw, None
    found = spans(raw, min_url)
    if not found:
        return raw, None
    token = secrets.token_hex(8)
    pieces: list[bytes] = []
    done = 0
    for k, (start, end) in enumerate(found):
        pieces += [raw[done:start], b"%s%s:%d%s" % (JSON_NUL, token.encode(), k, JSON_NUL)]
        done = end
    pieces.append(raw[done:])
    return b"".join(pieces), InlineMedia(raw, tuple(found), token)


def deferred(value: Any, media: InlineMedia | None) -> Any:
    """As resolve, but a cut URL comes back as CutText, read when and where it is needed."""
    if media is None or type(value) is not str or not value.startswith(NUL):
        return value
    k = media.index(value)
    if k is None or k >= len(media.spans):
        return resolve(value, media)
    return CutText(media.raw, *media.spans[k])


def resolve(value: Any, media: InlineMedia | None) -> Any:
    """The data URL a placeholder stands for; any other value as it is. Every reader of an image URL goes
    through here."""
    if media is None or type(value) is not str or not value.startswith(NUL):
        return value
    k = media.index(value)
    return value if k is None else media.url(k)


def restore_pieces(encoded: bytes, media: InlineMedia | None) -> Body:
    """The engine's body with every placeholder still in it (images the gateway left alone, images it made) put
    back as their bytes, as the pieces to write one after another (views, no copy); `encoded` itself if it holds
    no placeholder. orjson writes NUL as \\u0000, and the URLs hold nothing it would escape."""
    if media is None:
        return encoded
    needle = JSON_NUL + media.token.encode() + b":"
    at = encoded.find(needle)
    if at == -1:
        return encoded
    view, out, cuts = memoryview(media.raw), memoryview(encoded), len(media.spans)
    pieces: list[bytes | memoryview] = []
    done = 0
    while at != -1:
        stop = encoded.find(JSON_NUL, at + len(needle))
        k = int(encoded[at + len(needle) : stop])
        if k < cuts:
            start, end = media.spans[k]
            pieces += [out[done:at], view[start:end]]
        else:
            pieces += [out[done:at], media.made[k - cuts]]
        done = stop + len(JSON_NUL)
        at = encoded.find(needle, done)
    pieces.append(out[done:])
    return pieces


def empty() -> InlineMedia:
    """A holder for images the gateway makes, for a request that had no data URL to cut (a DICOMweb volume)."""
    return InlineMedia(b"", (), secrets.token_hex(8))
