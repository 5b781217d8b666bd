"""The figures of a rolling-restart run (pure): requests and failures, streams cut, each restart's times, and
TTFT of requests started during a rolling restart against those started in steady load."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from benchmarks.core import records as R
from benchmarks.core.records import RequestRecord
from benchmarks.core.stats import distribution, errors_by_type
from benchmarks.rolling.restart import Restart

CUT = (
    R.INCOMPLETE,
    R.DISCONNECT,
    R.STREAM_ERROR,
)  # a 200 stream that did not end with its last token + [DONE]


def windows(restarts: Sequence[Restart]) -> list[tuple[float, float]]:
    """(start, end) of each rolling restart: consecutive slot restarts merge into one window."""
    spans: list[tuple[float, float]] = []
    for r in sorted(restarts, key=lambda r: r.began):
        if spans and r.began <= spans[-1][1] + 1e-9:
            spans[-1] = (spans[-1][0], max(spans[-1][1], r.ended))
        else:
            spans.append((r.began, r.ended))
    return spans


def during(rec: RequestRecord, spans: Sequence[tuple[float, float]]) -> bool:
    """A request started while a rolling restart was under way (its TTFT may include the restart's effects)."""
    return any(lo <= rec.start <= hi for lo, hi in spans)


def is_cut(rec: RequestRecord) -> bool:
    return rec.status == 200 and rec.error in CUT


def figures(records: Sequence[RequestRecord], restarts: Sequence[Restart], wall_s: float) -> dict[str, Any]:
    spans = windows(restarts)
    rolling = [r for r in records if during(r, spans)]
    steady = [r for r in records if not during(r, spans)]
    return {
        "requests": len(records),
        "ok": sum(1 for r in records if r.ok),
        "failed": sum(1 for r in records if not r.ok),
        "errors": errors_by_type(records),
        "streams_cut": sum(1 for r in records if is_cut(r)),
        "requests_during_restarts": len(rolling),
        "wall_s": wall_s,
        "ttft_ms": {"steady": _ttft(steady), "restarting": _ttft(rolling)},
        "restarts": [r.to_json() for r in restarts],
        "down_s": distribution([r.down_s for r in restarts], scale=1.0),
        "restart_up_s": distribution([r.up_s for r in restarts], scale=1.0),
        "old_exit_s": distribution([r.old_exit_s for r in restarts], scale=1.0),
        "old_exit_codes": sorted({-1 if r.old_exit_code is None else r.old_exit_code for r in restarts}),
    }


def _ttft(records: Sequence[RequestRecord]) -> dict[str, Any]:
    values = [r.ttft for r in records if r.ok and r.ttft is not None]
    return {"requests": len(records), **distribution(values)}


def markdown(fig: dict[str, Any], servers: dict[str, Any] | None = None) -> str:
    """The summary table and one row per slot restart."""
    steady, rolling = fig["ttft_ms"]["steady"], fig["ttft_ms"]["restarting"]
    rows = [
        "| requests | failed | streams cut | restarts | TTFT p50 / p99 ms steady | TTFT p50 / p99 ms restarting |",
        "|---|---|---|---|---|---|",
        f"| {fig['requests']} | {fig['failed']} | {fig['streams_cut']} | {len(fig['restarts'])} "
        f"| {_ms(steady['p50'])} / {_ms(steady['p99'])} ({steady['requests']} req) "
        f"| {_ms(rolling['p50'])} / {_ms(rolling['p99'])} ({rolling['requests']} req) |",
        "",
        "| slot | old DOWN in haproxy s | replacement ready s | back UP in haproxy s | old exited s (code) |",
        "|---|---|---|---|---|",
    ]
    for r in fig["restarts"]:
        rows.append(
            f"| {r['slot']} | {r['down_s']:.2f} | {r['replacement_ready_s']:.1f} | {r['up_s']:.1f} "
            f"| {r['old_exit_s']:.1f} ({r['old_exit_code']}) |"
        )
    if fig["errors"]:
        rows += ["", "Failures by kind: " + ", ".join(f"{k} {v}" for k, v in sorted(fig["errors"].items()))]
    if servers:
        retried = sum(s["retries"] for s in servers.values())
        moved = sum(s["redispatches"] for s in servers.values())
        rows += [
            "",
            f"haproxy, connections refused then retried: {retried} on the same gateway, {moved} on the other",
        ]
    return "\n".join(rows) + "\n"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"
