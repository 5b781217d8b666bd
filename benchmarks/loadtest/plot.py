"""The sweep's picture: latency percentiles against throughput, one line per target (matplotlib, Agg)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

PANELS = (("ttft_ms", "TTFT"), ("tpot_ms", "TPOT"), ("itl_ms", "ITL"), ("e2e_ms", "end-to-end"))


def throughput_axis(pooled: list[dict[str, Any]]) -> tuple[str, str]:
    """Output tokens/s when the runs carried token counts, else requests/s."""
    if any(s.get("output_tokens_per_s") for s in pooled):
        return "output_tokens_per_s", "output tokens/s"
    return "requests_per_s", "requests/s"


def plot(pooled: list[dict[str, Any]], path: Path, title: str = "") -> Path:
    # The object API with an Agg canvas: no pyplot global state, no display needed.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    key, xlabel = throughput_axis(pooled)
    fig = Figure(figsize=(11, 8), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(2, 2).flatten()
    for ax, (metric, name) in zip(axes, PANELS, strict=True):
        _panel(ax, pooled, key, metric)
        ax.set(title=f"{name} (p50 solid, p99 dashed)", xlabel=xlabel, ylabel="ms")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize="small")
    if title:
        fig.suptitle(title)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return path


def _panel(ax: Any, pooled: list[dict[str, Any]], key: str, metric: str) -> None:
    for i, target in enumerate(dict.fromkeys(s["target"] for s in pooled)):
        points = sorted((s for s in pooled if s["target"] == target), key=lambda s: s["value"])
        xs = [s[key] for s in points]
        color = f"C{i}"
        for stat, style in (("p50", "-"), ("p99", "--")):
            ys = [s[metric][stat] for s in points]
            if all(y is None for y in ys):
                continue
            ys = [float("nan") if y is None else y for y in ys]
            ax.plot(xs, ys, style, marker="o", color=color, label=f"{target} {stat}")
        for s, x in zip(points, xs, strict=True):
            y = s[metric]["p50"]
            if y is not None:
                ax.annotate(s["level"], (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points")
