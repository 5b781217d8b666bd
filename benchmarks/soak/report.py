"""The soak's outputs for people: a markdown snippet and a PNG of RSS, throughput and latency over time."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from benchmarks.soak.stats import RSS_GROWTH_TARGET

MIB = 2**20


def _fmt(value: float | None, spec: str = ",.1f") -> str:
    return "-" if value is None else format(value, spec)


def markdown(doc: dict[str, Any]) -> str:
    s = doc["summary"]
    rows = [
        ("duration", f"{s['wall_s'] / 60:.1f} min at {doc['rate']:.2f} req/s offered ({doc['rate_source']})"),
        ("requests", _requests(s)),
        ("errors (target 0)", _errors(s["errors"])),
        ("gateway RSS (target < 10% growth)", _rss(s["rss"])),
        ("gateway open fds", _fds(s["open_fds"])),
        ("TTFT p50 / p99", f"{_fmt(s['ttft_ms']['p50'])} / {_fmt(s['ttft_ms']['p99'])} ms"),
        ("E2E p50 / p99", f"{_fmt(s['e2e_ms']['p50'])} / {_fmt(s['e2e_ms']['p99'])} ms"),
        ("max in flight at a sample", str(s["max_in_flight"])),
    ]
    lines = ["| soak | figure |", "|---|---|", *(f"| {k} | {v} |" for k, v in rows)]
    return "\n".join(lines) + "\n"


def _requests(s: dict[str, Any]) -> str:
    rates = f"{s['requests_per_s']:.2f} req/s, {s['output_tokens_per_s']:.0f} output tokens/s"
    return f"{s['requests']:,} sent, {s['ok']:,} ok ({rates})"


def _fds(fds: dict[str, Any]) -> str:
    return f"{_fmt(fds['first'], '.0f')} -> {_fmt(fds['last'], '.0f')} (max {_fmt(fds['max'], '.0f')})"


def _errors(err: dict[str, Any]) -> str:
    gateway = "scrape failed"
    if err["gateway"] is not None:
        gateway = f"{err['gateway_total']}{_tally(gateway_counts(err))}"
    return f"client {err['client_total']}{_tally(err['client'])}; gateway {gateway}"


def _rss(rss: dict[str, Any]) -> str:
    growth = None if rss["growth_fraction"] is None else 100 * rss["growth_fraction"]
    start = f"{_mib(rss['start_bytes'])} MiB at {_fmt(rss['baseline_t_s'], '.0f')} s"
    extra = f"peak {_mib(rss['peak_bytes'])} MiB, trend {_mib(rss['slope_bytes_per_hour'])} MiB/h"
    return f"{start} -> {_mib(rss['end_bytes'])} MiB at the end: {_fmt(growth, '+.1f')}% ({extra})"


def gateway_counts(err: dict[str, Any]) -> dict[str, int]:
    """The gateway's three counters as one tally, each count named after what it counts."""
    g = err["gateway"]
    return {
        **{f"http_{k}": n for k, n in g["non_2xx_by_status"].items()},
        **g["errors_by_code"],
        **{f"upstream_{k}": n for k, n in g["upstream_errors_by_kind"].items()},
    }


def _tally(counts: dict[str, int]) -> str:
    return " (" + ", ".join(f"{k}: {n}" for k, n in counts.items()) + ")" if counts else ""


def _mib(value: float | None) -> str:
    return _fmt(None if value is None else value / MIB)


def plot(doc: dict[str, Any], path: Path) -> Path:
    # The object API with an Agg canvas: no pyplot global state, no display needed.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    samples = doc["samples"]
    minutes = [s["t"] / 60 for s in samples]
    # The first sample is the baseline scrape before any request ended: its window is empty by construction.
    later, later_min = samples[1:], minutes[1:]
    fig = Figure(figsize=(10, 8), layout="constrained")
    FigureCanvasAgg(fig)
    rss_ax, tput_ax, lat_ax = fig.subplots(3, 1, sharex=True)
    rss = [_nan(s["gateway"].get("rss_bytes"), MIB) for s in samples]
    rss_ax.plot(minutes, rss, marker=".", color="C0", label="RSS")
    start = doc["summary"]["rss"]["start_bytes"]
    if start:  # the budget in view, so a 1 MiB step is not read as a leak
        rss_ax.axhline(start * (1 + RSS_GROWTH_TARGET) / MIB, color="C3", linestyle="--", label="+10% target")
        rss_ax.legend(fontsize="small")
    rss_ax.set(ylabel="gateway RSS (MiB)", title="gateway resident memory")
    tput_ax.plot(later_min, [s["window"]["requests_per_s"] for s in later], color="C1", label="completed ok")
    tput_ax.axhline(doc["rate"], color="gray", linestyle="--", label="offered")
    tput_ax.set(ylabel="requests/s", title="throughput per sampling interval")
    tput_ax.legend(fontsize="small")
    for stat, style in (("p50", "-"), ("p99", "--")):
        ys = [_nan(s["window"]["ttft_ms"][stat]) for s in later]
        lat_ax.plot(later_min, ys, style, color="C2", label=f"TTFT {stat}")
    lat_ax.set(ylabel="ms", xlabel="minutes", title="TTFT of requests ending in each interval")
    lat_ax.legend(fontsize="small")
    warmup_min = doc["settings"]["warmup_s"] / 60
    for ax in (rss_ax, tput_ax, lat_ax):
        ax.axvspan(0, warmup_min, color="gray", alpha=0.12)
        ax.grid(alpha=0.3)
    fig.suptitle(
        f"soak through the gateway: {doc['rate']:.2f} req/s for {doc['settings']['minutes']:g} min "
        "(shaded: warm-up)"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    return path


def _nan(value: float | None, scale: float = 1.0) -> float:
    return float("nan") if value is None else value / scale
