"""Relays a /v1/responses event stream: events pass as they come, except the few that carry the disclaimer."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from serve.gateway.errors import engine_failed
from serve.gateway.rewrite import disclaimer as disc
from serve.gateway.rewrite import responses_output as out

DELTA = b"event: response.output_text.delta"
TERMINAL = ("response.completed", "response.incomplete", "response.failed")
# Cheap test for a block of frames that holds nothing to change (a superset: a match is then parsed properly).
WATCHED = (
    b"event: response.output_text.done",
    b"event: response.content_part.done",
    b"event: response.output_item",
    b"event: response.created",
    b"event: response.completed",
    b"event: response.incomplete",
    b"event: response.failed",
    b"event: error",
    b'"error"',
)


@dataclass
class ResponsesRelay:
    """Feed it upstream bytes; it returns what to write to the client, and keeps timing and usage.

    The `disclaimer` field rides on the response object of response.created and of the final event
    (response.completed). With `append` (a plain-text answer), each text part gets one more
    response.output_text.delta holding "\\n\\n<disclaimer>" just before its response.output_text.done, and the
    done, content_part.done, output_item.done and final events carry the text with it, so what the SDK
    accumulates is the final text. A stream that ended without text gets a message holding only the disclaimer.
    Events after an inserted one are renumbered: sequence numbers stay consecutive.
    """

    disclaimer: str
    append: bool
    usage: dict[str, Any] | None = None
    first_token_at: float | None = None
    last_token_at: float | None = None
    gaps: list[float] = field(default_factory=list)
    done: bool = False
    _buf: bytearray = field(default_factory=bytearray)  # a partial frame, waiting for its end
    _shift: int = 0  # events inserted so far
    _appended: set[tuple[Any, Any]] = field(default_factory=set)  # (item_id, content_index) given the text
    _tools: bool = False  # a tool call was streamed: the answer is a program's to read

    def feed(self, data: bytes, now: float) -> bytes:
        block = self._complete_frames(data)
        if not block:
            return b""
        self._time(block, now)
        if not self._shift and not any(mark in block for mark in WATCHED):
            return block  # the common case: text deltas, relayed untouched
        return b"".join(self._frame(frame) for frame in block.split(b"\n\n") if frame.strip())

    def close(self) -> bytes:
        """Call when the engine's stream ends; a stream cut before its final event ends with an in-band error."""
        if self.done:
            return b""
        return engine_failed("the stream ended before it was complete").to_sse()

    def _complete_frames(self, data: bytes) -> bytes:
        """Every complete frame so far; a partial one stays buffered (searched once, not on every piece)."""
        searched = max(0, len(self._buf) - 1)  # a "\n\n" may straddle the buffer and this piece
        self._buf += data
        end = self._buf.rfind(b"\n\n", searched)
        if end < 0:
            return b""
        block = bytes(self._buf[: end + 2])
        del self._buf[: end + 2]
        return block

    def _time(self, block: bytes, now: float) -> None:
        tokens = block.count(DELTA)
        if tokens <= 0:
            return
        if self.first_token_at is None:
            self.first_token_at = now
        else:
            self.gaps.append(now - (self.last_token_at or now))
        self.gaps.extend([0.0] * (tokens - 1))  # frames that arrived together reach the client together
        self.last_token_at = now

    def _frame(self, frame: bytes) -> bytes:
        frame = frame.strip(b"\r\n")
        event = _load(frame)
        if event is None:
            return frame + b"\n\n"
        kind = event.get("type")
        if kind == "error" or isinstance(
            event.get("error"), dict
        ):  # the engine's in-band error ends the stream
            self.done = True
            return frame + b"\n\n"
        if self._shift and isinstance(event.get("sequence_number"), int):
            event["sequence_number"] += self._shift
        return b"".join(sse(e) for e in self._rewrite(kind, event))

    def _rewrite(self, kind: Any, event: dict[str, Any]) -> list[dict[str, Any]]:
        if kind == "response.created" and isinstance(event.get("response"), dict):
            event["response"]["disclaimer"] = self.disclaimer
        elif kind == "response.output_item.added":
            self._tools = self._tools or out.calls_tools([event.get("item")])
        elif kind == "response.output_text.done" and self.append and not self._tools:
            return self._text_done(event)
        elif kind == "response.content_part.done":
            self._extend(event.get("part"), (event.get("item_id"), event.get("content_index")))
        elif kind == "response.output_item.done" and isinstance(item := event.get("item"), dict):
            for i, part in enumerate(item.get("content") or ()):
                self._extend(part, (item.get("id"), i))
        elif kind in TERMINAL and isinstance(event.get("response"), dict):
            return self._final(event)
        return [event]

    def _text_done(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        delta = out.text_delta(event, disc.suffix(self.disclaimer))
        self._shift += 1
        event["sequence_number"] = delta["sequence_number"] + 1
        if isinstance(event.get("text"), str):
            event["text"] += disc.suffix(self.disclaimer)
        self._appended.add((event.get("item_id"), event.get("content_index")))
        return [delta, event]

    def _extend(self, part: Any, where: tuple[Any, Any]) -> None:
        if where in self._appended and isinstance(part, dict) and isinstance(part.get("text"), str):
            part["text"] += disc.suffix(self.disclaimer)

    def _final(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        self.done = True
        response = event["response"]
        self.usage = out.token_usage(response.get("usage"))
        output = response.get("output")
        append = self.append and not self._tools and isinstance(output, list)
        added: list[dict[str, Any]] = []
        item_id = None
        if append and not self._appended and not out.text_parts(output):
            item_id = out.new_item_id()
            added = out.disclaimer_item_events(item_id, len(output), self.disclaimer)
        first = event.get("sequence_number", 0)
        for n, extra in enumerate(added):
            extra["sequence_number"] = first + n
        self._shift += len(added)
        event["sequence_number"] = first + len(added)
        out.attach_to_response(response, self.disclaimer, append=append, item_id=item_id)
        return [*added, event]


def sse(event: dict[str, Any]) -> bytes:
    """One event as vLLM frames it: its type on an `event:` line, then the JSON."""
    return b"event: " + str(event.get("type")).encode() + b"\ndata: " + orjson.dumps(event) + b"\n\n"


def _load(frame: bytes) -> dict[str, Any] | None:
    start = frame.find(b"data:")
    if start < 0:
        return None
    try:
        event = orjson.loads(frame[start + 5 :])
    except orjson.JSONDecodeError:
        return None
    return event if isinstance(event, dict) else None
