"""The image benchmark's arithmetic and tables (pure): per image, arm and concurrency, from the raw cells."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from benchmarks.core.stats import percentile


def summarize(cells: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (image, concurrency, arm), pooling that cell's rounds."""
    groups: dict[tuple[str, int, str], list[dict[str, Any]]] = defaultdict(list)
    for cell in cells:
        groups[(cell["image"], cell["concurrency"], cell["arm"])].append(cell)
    return [_row(key, group) for key, group in groups.items()]


def _row(key: tuple[str, int, str], group: list[dict[str, Any]]) -> dict[str, Any]:
    records = [r for cell in group for r in cell["records"]]
    ok = [r for r in records if r["ok"]]
    wall = sum(cell["wall_s"] for cell in group)
    cpu = sum(cell["gateway_cpu_s"] for cell in group)
    ttfts = [r["ttft"] for r in ok if r["ttft"] is not None]
    return {
        "image": key[0],
        "concurrency": key[1],
        "arm": key[2],
        "requests": len(records),
        "errors": len(records) - len(ok),
        "ttft_p50_ms": 1000 * percentile(ttfts, 50) if ttfts else None,
        "ttft_p90_ms": 1000 * percentile(ttfts, 90) if ttfts else None,
        "requests_per_s": len(ok) / wall if wall else None,
        "gateway_cpu_ms_per_request": 1000 * cpu / len(records) if records else None,
    }


def markdown(report: dict[str, Any]) -> str:
    return (
        "\n".join(
            [
                *_offline_table(report, "offline", report["model_input_size"]),
                "",
                *_offline_table(report, "offline_896", 896),
                "",
                *_online_table(report["summary"]),
            ]
        )
        + "\n"
    )


def _offline_table(report: dict[str, Any], key: str, size: int) -> list[str]:
    lines = [
        f"Bytes and gateway CPU per image, target {size}x{size} (gateway code in-process, median of 5):",
        "",
        "| image | request bytes | arm | bytes to engine | reduction | gateway image CPU ms |",
        "|---|---:|---|---:|---:|---:|",
    ]
    for image, row in report[key].items():
        for arm, figures in row["arms"].items():
            out = figures["forwarded_bytes"]
            lines.append(
                f"| {image} | {row['request_bytes']:,} | {arm} | {out:,} | "
                f"{row['request_bytes'] / out:.1f}x | {figures['gateway_image_cpu_ms']:.1f} |"
            )
    return lines


def _online_table(rows: list[dict[str, Any]]) -> list[str]:
    lines = [
        "Through the gateway to the CPU engine, interleaved (TTFT and req/s pooled over rounds):",
        "",
        "| image | concurrency | arm | requests | errors | TTFT p50 ms | TTFT p90 ms | req/s | gateway CPU ms/req |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in sorted(rows, key=lambda r: (r["image"], r["concurrency"], r["arm"])):
        lines.append(
            f"| {r['image']} | {r['concurrency']} | {r['arm']} | {r['requests']} | {r['errors']} | "
            f"{_num(r['ttft_p50_ms'])} | {_num(r['ttft_p90_ms'])} | {_num(r['requests_per_s'], 2)} | "
            f"{_num(r['gateway_cpu_ms_per_request'])} |"
        )
    return lines


def _num(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:.{digits}f}"
