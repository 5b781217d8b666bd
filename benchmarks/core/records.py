"""One request's outcome as the load tester records it, and the names of the ways a request can fail."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

# Error kinds (an HTTP status is recorded as "http_<status>").
CONNECT = "connect"
TIMEOUT = "timeout"
DISCONNECT = "disconnect"  # the connection broke mid-answer
STREAM_ERROR = "stream_error"  # an in-band `data: {"error": ...}` event
INCOMPLETE = "incomplete"  # the stream ended without `data: [DONE]`
NO_CONTENT = "no_content"  # a stream that never carried a token
MISSING_DISCLAIMER = "missing_disclaimer"
BAD_BODY = "bad_body"  # a 200 answer that is not the JSON it should be


def http_error(status: int) -> str:
    return f"http_{status}"


@dataclass
class RequestRecord:
    """Times are seconds; `start` is relative to the start of the run the request belongs to."""

    kind: str = "text"  # workload item: "text", "image-896", ...
    start: float = 0.0
    ok: bool = False
    error: str | None = None
    status: int | None = None
    ttft: float | None = None  # to the first non-empty content chunk (the whole answer when not streaming)
    e2e: float | None = None  # to the end of the response body
    itl: list[float] = field(default_factory=list)  # gaps between content chunks
    output_tokens: int | None = None  # from the usage chunk (or the answer's usage)
    prompt_tokens: int | None = None
    disclaimer: bool = False
    chunks: int = 0  # content chunks seen (streams)

    @property
    def tpot(self) -> float | None:
        """Mean time per output token after the first: (e2e - ttft) / (output_tokens - 1)."""
        if self.e2e is None or self.ttft is None or not self.output_tokens or self.output_tokens < 2:
            return None
        return (self.e2e - self.ttft) / (self.output_tokens - 1)

    def fail(self, error: str) -> RequestRecord:
        self.ok, self.error = False, error
        return self

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["tpot"] = self.tpot
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RequestRecord:
        return cls(**{k: v for k, v in data.items() if k != "tpot"})
