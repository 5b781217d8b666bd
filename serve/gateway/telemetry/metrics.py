"""Every gateway metric, built against an injected registry; bounded labels only (no keys, ids or paths)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

PREFIX = "medgemma_gateway"
# From a cached 10-token answer to a multi-minute long generation.
LATENCY_BUCKETS = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    20.0,
    30.0,
    60.0,
    120.0,
    300.0,
)
TOKEN_GAP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5)
OVERHEAD_BUCKETS = (0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1)
# How late a 100 ms timer fires: a healthy loop is late by well under a millisecond.
LOOP_LAG_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
OTHER_MODEL = "other"


class CachedFamily:
    """A labelled metric whose children are looked up once per label set: prometheus_client's labels()
    validates and takes a lock on every call, a measurable share of a request at thousands per second."""

    __slots__ = ("_children", "metric")

    def __init__(self, metric: Counter | Gauge | Histogram) -> None:
        self.metric = metric
        self._children: dict[tuple[str, ...], Any] = {}

    def labels(self, *values: str) -> Any:
        child = self._children.get(values)
        if child is None:
            child = self._children[values] = self.metric.labels(*values)
        return child


class GatewayMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        def histogram(name: str, doc: str, labels: Sequence[str], buckets: Sequence[float]) -> CachedFamily:
            return CachedFamily(
                Histogram(f"{PREFIX}_{name}", doc, labels, buckets=buckets, registry=registry)
            )

        def counter(name: str, doc: str, labels: Sequence[str]) -> CachedFamily:
            return CachedFamily(Counter(f"{PREFIX}_{name}", doc, labels, registry=registry))

        self.request_duration = histogram(
            "request_duration_seconds",
            "End-to-end request time as the gateway sees it.",
            ["route", "model", "status", "stream"],
            LATENCY_BUCKETS,
        )
        self.requests = counter(
            "requests_total", "Requests answered, by status.", ["route", "model", "status"]
        )
        self.ttft = histogram(
            "time_to_first_token_seconds",
            "Time to the first content chunk of a stream.",
            ["route", "model"],
            LATENCY_BUCKETS,
        )
        self.itl = histogram(
            "inter_token_latency_seconds",
            "Gap between consecutive content chunks of a stream.",
            ["route", "model"],
            TOKEN_GAP_BUCKETS,
        )
        self.tpot = histogram(
            "time_per_output_token_seconds",
            "Per request: (end - first token) / (output tokens - 1).",
            ["route", "model"],
            TOKEN_GAP_BUCKETS,
        )
        self.overhead = histogram(
            "added_latency_seconds",
            "Time spent in the gateway's own code per request.",
            ["route"],
            OVERHEAD_BUCKETS,
        )
        self.in_flight = CachedFamily(
            Gauge(f"{PREFIX}_requests_in_flight", "Requests being served now.", ["route"], registry=registry)
        )
        self.terms_refusals = counter(
            "terms_refusals_total", "Requests refused for missing HAI-DEF acknowledgement.", ["reason"]
        )
        self.upstream_errors = counter(
            "upstream_errors_total", "Engine failures seen by the gateway, by kind.", ["kind"]
        )
        self.errors = counter(
            "errors_total", "Errors the gateway itself answered, by OpenAI error code.", ["code"]
        )
        self.prompt_tokens = counter(
            "prompt_tokens_total", "Prompt tokens reported by the engine.", ["model"]
        )
        self.completion_tokens = counter(
            "completion_tokens_total", "Completion tokens reported by the engine.", ["model"]
        )
        # Starts when a 100 ms timer is due, ends when the event loop runs it: every stream of the gateway waits
        # at least this long whenever something holds the loop (serve/gateway/telemetry/loop_lag.py).
        self.loop_lag = Histogram(
            f"{PREFIX}_event_loop_lag_seconds",
            "How late the event loop ran a periodic timer.",
            buckets=LOOP_LAG_BUCKETS,
            registry=registry,
        )

    def count_tokens(self, model: str, usage: object) -> tuple[int, int]:
        if not isinstance(usage, dict):
            return 0, 0
        prompt, completion = usage.get("prompt_tokens") or 0, usage.get("completion_tokens") or 0
        if prompt:
            self.prompt_tokens.labels(model).inc(prompt)
        if completion:
            self.completion_tokens.labels(model).inc(completion)
        return prompt, completion
