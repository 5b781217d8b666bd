"""Relays an engine SSE stream frame by frame: bytes pass as they are, except the few frames we must read."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from serve.gateway.errors import engine_failed
from serve.gateway.rewrite import disclaimer as disc
from serve.gateway.rewrite import reasoning

DONE = b"data: [DONE]"
USAGE_MARK = b'"choices":[]'
FINISH_MARK = b'"finish_reason":"'
ERROR_MARK = b'data: {"error"'


@dataclass
class StreamRewriter:
    """Feed it upstream bytes; it returns what to write to the client, and keeps timing and usage.

    Complete frames are released as soon as they arrive (a partial frame waits for its end). It parses JSON
    only for the first frame (id/model for our own chunk), finish frames and the usage frame. Every stream ends
    with a disclaimer-only chunk before usage and [DONE]; with `append`, a plain-text choice also gets the
    disclaimer's content chunk just before its finish_reason (never after it). A machine-readable request's
    content is relayed as the engine sent it.
    """

    chat: bool
    disclaimer: str
    append: bool
    strip_usage: bool
    machine_readable: bool = False
    usage: dict[str, Any] | None = None
    first_token_at: float | None = None
    last_token_at: float | None = None
    gaps: list[float] = field(default_factory=list)
    done: bool = False
    _buf: bytearray = field(default_factory=bytearray)  # a partial frame, waiting for its end
    _searched: int = 0  # bytes of _buf already searched for a frame end
    _meta: dict[str, Any] | None = None
    _disclaimed: bool = False
    _errored: bool = False

    def __post_init__(self) -> None:
        self._content = b'"content":"' if self.chat else b'"text":"'
        self._empty = b'"content":""' if self.chat else b'"text":""'
        self._append = self.append and not self.machine_readable

    def feed(self, data: bytes, now: float) -> bytes:
        block = self._complete_frames(data)
        if not block:
            return b""
        self._time(block, now)
        if self._meta is not None and not (
            FINISH_MARK in block
            or USAGE_MARK in block
            or DONE in block
            or ERROR_MARK in block
            or reasoning.MARK in block
        ):
            return (
                block  # the common case: token frames, relayed untouched (no generator: this runs per chunk)
            )
        return b"".join(self._frame(frame) for frame in block.split(b"\n\n") if frame.strip())

    def _complete_frames(self, data: bytes) -> bytes:
        """Every complete frame so far, in one block; a partial frame stays buffered. Each byte is searched
        once (plus one for a delimiter split across pieces): a 40 MB frame in 64 KB pieces costs linear time,
        not a re-scan of the whole buffer per piece. Whole frames in one piece, the common case, are not copied.
        """
        buf: bytes | bytearray = data
        if self._buf:
            self._buf += data
            buf = self._buf
        end = frame_end(buf, self._searched)
        if end < 0:
            if buf is data:
                self._buf = bytearray(data)
            self._searched = max(0, len(buf) - 1)  # a "\n\n" may straddle this piece and the next
            return b""
        cut = end + 2
        if buf is data:
            if cut < len(data):
                self._buf = bytearray(data[cut:])
            block = data[:cut]
        else:
            with memoryview(buf) as view:
                block = bytes(view[:cut])
            del self._buf[:cut]
        self._searched = max(0, len(self._buf) - 1)
        return block

    def close(self) -> bytes:
        """Call when the engine's stream ends; a stream cut before [DONE] ends with an in-band error."""
        if self.done:
            return b""
        return engine_failed("the stream ended before it was complete").to_sse()

    def _time(self, block: bytes, now: float) -> None:
        # A thought's tokens are tokens too: TTFT is the first token generated, whether thought or answer.
        tokens = block.count(self._content) - block.count(self._empty) + block.count(reasoning.MARK)
        if tokens <= 0:
            return
        if self.first_token_at is None:
            self.first_token_at = now
            tokens -= 1
        else:
            self.gaps.append(now - (self.last_token_at or now))
            tokens -= 1
        self.gaps.extend([0.0] * tokens)  # frames that arrived together reach the client together
        self.last_token_at = now

    def _frame(self, frame: bytes) -> bytes:
        frame = frame.strip(b"\r\n")
        if frame == DONE:
            self.done = True
            return self._disclaimer_frames() + frame + b"\n\n"
        if frame.startswith(ERROR_MARK):
            self._errored = True
            return frame + b"\n\n"
        thought = self.chat and reasoning.MARK in frame
        needs_json = self._meta is None or USAGE_MARK in frame or FINISH_MARK in frame or thought
        chunk = _load(frame) if needs_json else None
        if chunk is None:
            return frame + b"\n\n"
        if thought and reasoning.alias_choices(chunk, "delta"):
            frame = b"data: " + orjson.dumps(chunk)
        if self._meta is None:
            self._meta = {k: chunk[k] for k in ("id", "object", "created", "model") if k in chunk}
        if chunk.get("choices") == [] and "usage" in chunk:
            self.usage = chunk["usage"]
            return self._disclaimer_frames() + (b"" if self.strip_usage else frame + b"\n\n")
        if self._append and FINISH_MARK in frame:
            return disc.around_finish(frame + b"\n\n", chunk, self.disclaimer, chat=self.chat)
        return frame + b"\n\n"

    def _disclaimer_frames(self) -> bytes:
        if self._disclaimed or self._errored:
            return b""
        self._disclaimed = True
        meta = self._meta or {"object": "chat.completion.chunk" if self.chat else "text_completion"}
        return disc.final_frame(meta, self.disclaimer)


def frame_end(buf: bytes | bytearray, start: int) -> int:
    """Where the last frame delimiter in buf[start:] begins, or -1."""
    return buf.rfind(b"\n\n", start)


def _load(frame: bytes) -> dict[str, Any] | None:
    if not frame.startswith(b"data: {"):
        return None
    try:
        chunk = orjson.loads(frame[6:])
    except orjson.JSONDecodeError:
        return None
    return chunk if isinstance(chunk, dict) else None
