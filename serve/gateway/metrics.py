"""Every gateway metric, built against an injected registry; bounded labels only (no keys, ids or paths)."""

from __future__ import annotations

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
OTHER_MODEL = "other"


class GatewayMetrics:
    def __init__(self, registry: CollectorRegistry, models: list[str]) -> None:
        self.models = frozenset(models)
        p = PREFIX
        self.request_duration = Histogram(
            f"{p}_request_duration_seconds",
            "End-to-end request time as the gateway sees it.",
            ["route", "model", "status", "stream"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.requests = Counter(
            f"{p}_requests_total",
            "Requests answered, by status.",
            ["route", "model", "status"],
            registry=registry,
        )
        self.ttft = Histogram(
            f"{p}_time_to_first_token_seconds",
            "Time to the first content chunk of a stream.",
            ["route", "model"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.itl = Histogram(
            f"{p}_inter_token_latency_seconds",
            "Gap between consecutive content chunks of a stream.",
            ["route", "model"],
            buckets=TOKEN_GAP_BUCKETS,
            registry=registry,
        )
        self.tpot = Histogram(
            f"{p}_time_per_output_token_seconds",
            "Per request: (end - first token) / (output tokens - 1).",
            ["route", "model"],
            buckets=TOKEN_GAP_BUCKETS,
            registry=registry,
        )
        self.overhead = Histogram(
            f"{p}_added_latency_seconds",
            "Time spent in the gateway's own code per request.",
            ["route"],
            buckets=OVERHEAD_BUCKETS,
            registry=registry,
        )
        self.in_flight = Gauge(
            f"{p}_requests_in_flight", "Requests being served now.", ["route"], registry=registry
        )
        self.terms_refusals = Counter(
            f"{p}_terms_refusals_total",
            "Requests refused for missing HAI-DEF acknowledgement.",
            ["reason"],
            registry=registry,
        )
        self.upstream_errors = Counter(
            f"{p}_upstream_errors_total",
            "Engine failures seen by the gateway, by kind.",
            ["kind"],
            registry=registry,
        )
        self.errors = Counter(
            f"{p}_errors_total",
            "Errors the gateway itself answered, by OpenAI error code.",
            ["code"],
            registry=registry,
        )
        self.prompt_tokens = Counter(
            f"{p}_prompt_tokens_total", "Prompt tokens reported by the engine.", ["model"], registry=registry
        )
        self.completion_tokens = Counter(
            f"{p}_completion_tokens_total",
            "Completion tokens reported by the engine.",
            ["model"],
            registry=registry,
        )

    def model_label(self, model: object) -> str:
        return model if isinstance(model, str) and model in self.models else OTHER_MODEL

    def count_tokens(self, model: str, usage: object) -> tuple[int, int]:
        if not isinstance(usage, dict):
            return 0, 0
        prompt, completion = usage.get("prompt_tokens") or 0, usage.get("completion_tokens") or 0
        if prompt:
            self.prompt_tokens.labels(model).inc(prompt)
        if completion:
            self.completion_tokens.labels(model).inc(completion)
        return prompt, completion
