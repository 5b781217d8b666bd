"""What a person at the terminal sees: a rich progress bar per run, then concise tables."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from benchmarks.core.records import RequestRecord
from benchmarks.core.runner import OnDone


def ms(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


class RichProgress:
    """One bar per (target, level) run, showing completed requests and errors so far."""

    def __init__(self, console: Console) -> None:
        self._progress = Progress(
            TextColumn("{task.description:<28}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("errors {task.fields[errors]}"),
            TimeElapsedColumn(),
            console=console,
        )

    def __enter__(self) -> RichProgress:
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()

    def begin(self, label: str, total: int | None) -> OnDone:
        task = self._progress.add_task(label, total=total, errors=0)
        errors = 0

        def done(rec: RequestRecord) -> None:
            nonlocal errors
            errors += not rec.ok
            self._progress.update(task, advance=1, errors=errors)

        return done

    def end(self, label: str, summary: dict[str, Any]) -> None:
        for task in self._progress.tasks:
            if task.description == label and not task.finished:
                self._progress.update(task.id, total=task.completed)


class NullProgress:
    """For tests and --quiet."""

    def begin(self, label: str, total: int | None) -> OnDone:
        return lambda rec: None

    def end(self, label: str, summary: dict[str, Any]) -> None:
        pass


def summary_table(pooled: list[dict[str, Any]], title: str = "Load test (latencies in ms)") -> Table:
    table = Table(title=title, title_justify="left", caption=_errors_caption(pooled), caption_justify="left")
    for col in (
        "target",
        "level",
        "ok",
        "req/s",
        "tok/s",
        "good/s",
        "TTFT p50",
        "p99",
        "TPOT p50",
        "p99",
        "ITL p99",
        "E2E p50",
        "p99",
        "gen CPU",
    ):
        table.add_column(col, justify="left" if col in ("target", "level") else "right")
    for s in pooled:
        cpu = f"{100 * s['generator_cpu_fraction']:.0f}%" + (" SAT" if s["generator_saturated"] else "")
        ok = f"{s['ok']}/{s['requests']}" if s["ok"] < s["requests"] else str(s["ok"])
        table.add_row(
            s["target"],
            s["level"],
            ok,
            f"{s['requests_per_s']:,.2f}",
            f"{s['output_tokens_per_s']:,.0f}",
            f"{s['goodput_per_s']:,.2f}",
            ms(s["ttft_ms"]["p50"]),
            ms(s["ttft_ms"]["p99"]),
            ms(s["tpot_ms"]["p50"], 2),
            ms(s["tpot_ms"]["p99"], 2),
            ms(s["itl_ms"]["p99"], 2),
            ms(s["e2e_ms"]["p50"]),
            ms(s["e2e_ms"]["p99"]),
            cpu,
        )
    return table


def _errors_caption(pooled: list[dict[str, Any]]) -> str | None:
    lines = [
        f"errors {s['target']} {s['level']}: " + ", ".join(f"{k} {v}" for k, v in sorted(s["errors"].items()))
        for s in pooled
        if s["errors"]
    ]
    return "\n".join(lines) or None


def compare_table(rows: list[dict[str, Any]]) -> Table:
    table = Table(title="Compared with the baseline target", title_justify="left")
    for col in (
        "level",
        "target vs baseline",
        "added TTFT p50 ms",
        "added TTFT p99 ms",
        "added TPOT p50 ms",
        "throughput ratio",
        "out tok/s ratio",
    ):
        table.add_column(col, justify="left" if col.startswith(("level", "target")) else "right")
    for r in rows:
        table.add_row(
            r["level"],
            f"{r['target']} vs {r['baseline']}",
            ms(r["added_ttft_p50_ms"], 2),
            ms(r["added_ttft_p99_ms"], 2),
            ms(r["added_tpot_p50_ms"], 3),
            ms(r["throughput_ratio"], 3),
            ms(r["output_tokens_ratio"], 3),
        )
    return table
