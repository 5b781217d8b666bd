"""Per API, how an engine answer carries the disclaimer (a whole JSON answer, a relayed stream) and where it reports
token usage: the one thing the forwarding code asks of each API (chat/completions here, /v1/responses apart)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from serve.gateway.rewrite import disclaimer as disc
from serve.gateway.rewrite import reasoning
from serve.gateway.rewrite.request_body import Prepared
from serve.gateway.rewrite.sse import StreamRewriter


class Relay(Protocol):
    """Rewrites one engine stream as it passes; what it kept is read by the metrics when the stream ends."""

    usage: dict[str, Any] | None  # prompt_tokens / completion_tokens, whatever the API calls them
    first_token_at: float | None
    last_token_at: float | None
    gaps: list[float]

    def feed(self, data: bytes, now: float) -> bytes: ...

    def close(self) -> bytes: ...


class Answers(Protocol):
    def attach(self, answer: dict[str, Any], prep: Prepared) -> None:
        """Put the disclaimer on a whole JSON answer, in place."""

    def usage(self, answer: dict[str, Any]) -> dict[str, Any] | None:
        """The answer's usage as prompt_tokens / completion_tokens (what the token metrics read)."""

    def relay(self, prep: Prepared) -> Relay:
        """A fresh rewriter for one streamed answer."""


@dataclass(frozen=True)
class Choices:
    """Chat completions and completions: answers with `choices` (serve/gateway/rewrite/disclaimer.py, sse.py)."""

    chat: bool
    disclaimer: str
    append: bool

    def attach(self, answer: dict[str, Any], prep: Prepared) -> None:
        disc.attach_to_json(
            answer, self.disclaimer, append=self.append, machine_readable=prep.machine_readable
        )
        if self.chat:
            reasoning.alias_choices(answer, "message")

    def usage(self, answer: dict[str, Any]) -> dict[str, Any] | None:
        usage = answer.get("usage")
        return usage if isinstance(usage, dict) else None

    def relay(self, prep: Prepared) -> Relay:
        return StreamRewriter(
            chat=self.chat,
            disclaimer=self.disclaimer,
            append=self.append,
            strip_usage=prep.strip_usage,
            machine_readable=prep.machine_readable,
        )
