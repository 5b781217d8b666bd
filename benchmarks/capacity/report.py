"""The capacity comparison's figures (pure): per-proxy throughput, added latency, CPU, ratios, bars, markdown."""

from __future__ import annotations

from typing import Any

DIRECT, OURS, LITELLM = "direct", "gateway", "litellm"
# The gateway's capacity bars (targets, one worker on one core with this harness); BENCHMARKS.md,
# "Gateway capacity against LiteLLM proxy", records which runs met them.
BARS = {
    "nonstream_rps_min": 4000.0,
    "added_p50_ms_max": 0.5,
    "added_p99_ms_max": 1.0,
    "added_first_chunk_p50_ms_max": 1.5,
    "added_first_chunk_p99_ms_max": 3.0,
    "stream_fraction_of_direct_min": 0.95,
    "cpu_per_request_ms_max": 0.25,
}
GOAL_RATIO = 5.0  # vs LiteLLM: throughput at least 5x, added latency at most 1/5


def _stat(result: dict[str, Any] | None, metric: str, stat: str) -> float | None:
    return None if result is None else (result.get(metric) or {}).get(stat)


def _sub(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


def _div(a: float | None, b: float | None) -> float | None:
    return None if a is None or not b else a / b


def proxy_figures(results: dict[str, dict[str, Any]], name: str) -> dict[str, Any]:
    """One proxy's row: throughput at high concurrency and latency added at c=1 over direct-to-upstream."""
    mine, direct = results.get(name, {}), results.get(DIRECT, {})
    ns, st = mine.get("nonstream_high"), mine.get("stream_high")
    return {
        "nonstream_rps": None if ns is None else ns["requests_per_s"],
        "streams_per_s": None if st is None else st["requests_per_s"],
        "direct_streams_per_s": (direct.get("stream_high") or {}).get("requests_per_s"),
        "added_p50_ms": _sub(
            _stat(mine.get("nonstream_c1"), "e2e_ms", "p50"),
            _stat(direct.get("nonstream_c1"), "e2e_ms", "p50"),
        ),
        "added_p99_ms": _sub(
            _stat(mine.get("nonstream_c1"), "e2e_ms", "p99"),
            _stat(direct.get("nonstream_c1"), "e2e_ms", "p99"),
        ),
        "added_first_chunk_p50_ms": _sub(
            _stat(mine.get("stream_c1"), "ttft_ms", "p50"), _stat(direct.get("stream_c1"), "ttft_ms", "p50")
        ),
        "added_first_chunk_p99_ms": _sub(
            _stat(mine.get("stream_c1"), "ttft_ms", "p99"), _stat(direct.get("stream_c1"), "ttft_ms", "p99")
        ),
        "cpu_per_request_ms": None if ns is None else ns.get("proxy_cpu_per_request_ms"),
        "cpu_per_stream_ms": None if st is None else st.get("proxy_cpu_per_request_ms"),
        "errors": {m: r["errors"] for m, r in mine.items() if r.get("errors")},
    }


def comparison(ours: dict[str, Any], litellm: dict[str, Any] | None) -> dict[str, Any]:
    """Ours over LiteLLM: throughput ratios (want >= 5) and added-latency ratios (want <= 1/5)."""
    if litellm is None:
        return {}
    out = {
        "nonstream_throughput_ratio": _div(ours["nonstream_rps"], litellm["nonstream_rps"]),
        "stream_throughput_ratio": _div(ours["streams_per_s"], litellm["streams_per_s"]),
        "added_p50_ratio": _div(ours["added_p50_ms"], litellm["added_p50_ms"]),
        "added_first_chunk_p50_ratio": _div(
            ours["added_first_chunk_p50_ms"], litellm["added_first_chunk_p50_ms"]
        ),
    }
    throughput = [v for k, v in out.items() if k.endswith("throughput_ratio") and v is not None]
    latency = [v for k, v in out.items() if k.startswith("added") and v is not None]
    out["goal_met"] = (
        bool(throughput and latency) and min(throughput) >= GOAL_RATIO and max(latency) <= 1 / GOAL_RATIO
    )
    return out


def bars(ours: dict[str, Any]) -> dict[str, bool | None]:
    def at_most(value: float | None, bound: float) -> bool | None:
        return None if value is None else value <= bound

    stream_share = _div(ours["streams_per_s"], ours["direct_streams_per_s"])
    return {
        "nonstream_rps": None
        if ours["nonstream_rps"] is None
        else ours["nonstream_rps"] >= BARS["nonstream_rps_min"],
        "added_p50": at_most(ours["added_p50_ms"], BARS["added_p50_ms_max"]),
        "added_p99": at_most(ours["added_p99_ms"], BARS["added_p99_ms_max"]),
        "added_first_chunk_p50": at_most(
            ours["added_first_chunk_p50_ms"], BARS["added_first_chunk_p50_ms_max"]
        ),
        "added_first_chunk_p99": at_most(
            ours["added_first_chunk_p99_ms"], BARS["added_first_chunk_p99_ms_max"]
        ),
        "streams_vs_direct": None
        if stream_share is None
        else stream_share >= BARS["stream_fraction_of_direct_min"],
        "cpu_per_request": at_most(ours["cpu_per_request_ms"], BARS["cpu_per_request_ms_max"]),
    }


def _f(value: float | None, digits: int = 0, suffix: str = "") -> str:
    return "-" if value is None else f"{value:,.{digits}f}{suffix}"


def markdown(figures: dict[str, dict[str, Any]], ratios: dict[str, Any], settings: dict[str, Any]) -> str:
    """The capacity table as BENCHMARKS.md records it: one row per proxy, against direct-to-upstream."""
    c, gap = settings["concurrency"], settings["gap_ms"]
    lines = [
        f"| proxy (one worker, one core) | non-stream req/s, c={c} | streams/s, c={c}, {gap:g} ms apart "
        f"| added at c=1, non-stream p50 / p99 | added to first chunk at c=1, p50 / p99 | proxy CPU per request |",
        "|---|---|---|---|---|---|",
    ]
    for name, fig in figures.items():
        lines.append(
            f"| {name} | {_f(fig['nonstream_rps'])} | {_f(fig['streams_per_s'])} "
            f"(direct {_f(fig['direct_streams_per_s'])}) "
            f"| +{_f(fig['added_p50_ms'], 2)} / +{_f(fig['added_p99_ms'], 2)} ms "
            f"| +{_f(fig['added_first_chunk_p50_ms'], 2)} / +{_f(fig['added_first_chunk_p99_ms'], 2)} ms "
            f"| {_f(fig['cpu_per_request_ms'], 3)} ms |"
        )
    lines += [
        "",
        f"Harness: {settings.get('client', 'raw')} client and {settings.get('upstream', 'fast')} fake upstream "
        f"({settings.get('chunks', 16)} chunks) on core {settings.get('harness_cpu', 1)}, each proxy alone on "
        f"core {settings.get('proxy_cpu', 0)}; {settings.get('duration', '-')} s per c={c} measurement, "
        f"{settings.get('latency_duration', '-')} s per c=1 measurement, {settings.get('rounds', 1)} round(s).",
    ]
    if ratios:
        lines += [
            "",
            f"Ours over LiteLLM: non-stream throughput x{_f(ratios['nonstream_throughput_ratio'], 1)}, "
            f"streams x{_f(ratios['stream_throughput_ratio'], 1)}; added latency "
            f"{_f(ratios['added_p50_ratio'], 3)} of LiteLLM's (p50, non-stream), "
            f"{_f(ratios['added_first_chunk_p50_ratio'], 3)} (first chunk). "
            f"Goal (>= {GOAL_RATIO:g}x, <= 1/{GOAL_RATIO:g}): {'met' if ratios['goal_met'] else 'NOT met'}.",
        ]
    return "\n".join(lines) + "\n"
