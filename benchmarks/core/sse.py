"""Reads an OpenAI-style SSE stream as bytes arrive (pure): token timing, usage, disclaimer, in-band errors."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

DONE = b"[DONE]"
# A token frame as vLLM (and the fake) write it; anything else is parsed as JSON.
TOKEN = b'"delta":{"content":"'
SPECIAL = (b'"disclaimer"', b'"usage"', b'"error"', b'"finish_reason":"')


@dataclass
class StreamParser:
    """Feed it the body's bytes with their arrival time; read the outcome once the body ends.

    Each `data:` line is parsed on its own (OpenAI servers put one JSON object per line). The gateway's
    final chunk (it has a top-level `disclaimer`) is not a model token, so it is kept out of the timings.
    """

    first_at: float | None = None
    last_at: float | None = None
    gaps: list[float] = field(default_factory=list)
    chunks: int = 0
    usage: dict[str, Any] | None = None
    disclaimer: bool = False
    error: Any = None
    done: bool = False
    _buf: bytes = b""

    def feed(self, data: bytes, now: float) -> None:
        *lines, self._buf = (self._buf + data).split(b"\n")
        for line in lines:
            if line.startswith(b"data:"):
                self._data(line[5:].strip(), now)

    def _data(self, payload: bytes, now: float) -> None:
        if payload == DONE:
            self.done = True
            return
        if _plain_token(payload):  # the common frame, read without a JSON parse (the generator stays cheap)
            self._token(now)
            return
        try:
            chunk = json.loads(payload)
        except ValueError:
            self.error = self.error or "unparsable chunk"
            return
        if not isinstance(chunk, dict):
            return
        if "error" in chunk:
            self.error = chunk["error"]
        if chunk.get("usage"):
            self.usage = chunk["usage"]
        if "disclaimer" in chunk:
            self.disclaimer = True
        elif any(_text(c) for c in chunk.get("choices") or ()):
            self._token(now)

    def _token(self, now: float) -> None:
        if self.first_at is None:
            self.first_at = now
        else:
            self.gaps.append(now - (self.last_at or now))
        self.last_at = now
        self.chunks += 1

    @property
    def completion_tokens(self) -> int | None:
        tokens = (self.usage or {}).get("completion_tokens")
        return tokens if isinstance(tokens, int) else None

    @property
    def prompt_tokens(self) -> int | None:
        tokens = (self.usage or {}).get("prompt_tokens")
        return tokens if isinstance(tokens, int) else None


def _plain_token(payload: bytes) -> bool:
    """A compact one-choice frame with non-empty content and nothing else the parser must read."""
    at = payload.find(TOKEN)
    if at < 0 or payload[at + len(TOKEN) : at + len(TOKEN) + 1] == b'"' or payload.count(b'"index"') != 1:
        return False
    return not any(mark in payload for mark in SPECIAL)


def _text(choice: Any) -> str | None:
    if not isinstance(choice, dict):
        return None
    delta = choice.get("delta")
    if isinstance(delta, dict):
        return delta.get("content")
    return choice.get("text")
