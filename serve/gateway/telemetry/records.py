"""Per-request bookkeeping: one record per request, turned into metric samples and one access log line."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from serve.gateway.rewrite.answers import Relay
from serve.gateway.telemetry.access_log import AccessLog
from serve.gateway.telemetry.metrics import OTHER_MODEL, GatewayMetrics

CLIENT_CLOSED = 499  # nginx's convention: the client went away before the answer was complete


@dataclass
class Record:
    route: str
    request_id: str
    started: float
    model: str = OTHER_MODEL
    stream: bool = False
    status: int = 500
    overhead: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    error_code: str | None = None
    ttft: float | None = None


def observe_stream(rec: Record, rewriter: Relay, metrics: GatewayMetrics) -> None:
    labels = (rec.route, rec.model)
    if rewriter.first_token_at is not None:
        rec.ttft = rewriter.first_token_at - rec.started
        metrics.ttft.labels(*labels).observe(rec.ttft)
    itl = metrics.itl.labels(*labels)
    for gap in rewriter.gaps:
        itl.observe(gap)
    rec.prompt_tokens, rec.completion_tokens = metrics.count_tokens(rec.model, rewriter.usage)
    first, last = rewriter.first_token_at, rewriter.last_token_at
    if first is not None and last is not None and rec.completion_tokens > 1:
        metrics.tpot.labels(*labels).observe((last - first) / (rec.completion_tokens - 1))


def finish(rec: Record, metrics: GatewayMetrics, access: AccessLog, now: float) -> None:
    status = str(rec.status)
    metrics.request_duration.labels(rec.route, rec.model, status, "true" if rec.stream else "false").observe(
        now - rec.started
    )
    metrics.requests.labels(rec.route, rec.model, status).inc()
    metrics.overhead.labels(rec.route).observe(rec.overhead)
    if rec.error_code:
        metrics.errors.labels(rec.error_code).inc()
    if access.enabled:
        access.write(access_line(rec, now))


def access_line(rec: Record, now: float) -> dict:
    """What is logged of a request: never prompt text, images, keys or the acknowledgement header."""
    line = {
        "time": datetime.now(UTC),
        "request_id": rec.request_id,
        "route": rec.route,
        "model": rec.model,
        "stream": rec.stream,
        "status": rec.status,
        "latency_ms": round((now - rec.started) * 1000, 2),
        "gateway_ms": round(rec.overhead * 1000, 3),
        "prompt_tokens": rec.prompt_tokens,
        "completion_tokens": rec.completion_tokens,
    }
    if rec.ttft is not None:
        line["ttft_ms"] = round(rec.ttft * 1000, 2)
    if rec.error_code:
        line["error"] = rec.error_code
    return line
