"""Short runs of the load tester against the scripted fake engine, direct and through the gateway."""

import io
import json

from rich.console import Console

from benchmarks.loadtest.cli import bench, parse_args, write_outputs
from benchmarks.loadtest.display import NullProgress
from benchmarks.loadtest.plot import plot
from tests.conftest import MODEL

SUMMARY_FIELDS = {
    "target",
    "level",
    "requests",
    "ok",
    "errors",
    "requests_per_s",
    "output_tokens_per_s",
    "goodput_per_s",
    "ttft_ms",
    "tpot_ms",
    "itl_ms",
    "e2e_ms",
    "generator_cpu_s",
    "generator_cpu_fraction",
    "wall_s",
}
RECORD_FIELDS = {"ok", "error", "ttft", "itl", "tpot", "e2e", "output_tokens", "disclaimer", "start", "kind"}


def url(server) -> str:
    return str(server.make_url("")).rstrip("/")


async def run(*argv: str, tmp_path=None):
    args = parse_args([*argv, "--quiet", "--no-plot", *(["--out", str(tmp_path)] if tmp_path else [])])
    return await bench(args, {"ttft": 1.0, "tpot": 0.5}, NullProgress()), args


async def test_sweep_against_the_engine_gives_a_valid_report(engine, script, tmp_path):
    script.chunks = 5
    doc, args = await run(
        "--base-url",
        url(engine) + "/v1",
        "--concurrency",
        "1,3",
        "--requests",
        "6",
        "--warmup",
        "1",
        "--output-tokens",
        "5",
        "--slo",
        "ttft_ms=1000",
        tmp_path=tmp_path,
    )
    assert doc["targets"]["engine"]["gateway"] is False and doc["settings"]["model"] == MODEL
    assert [s["level"] for s in doc["summaries"]] == ["c=1", "c=3"]
    for s in doc["summaries"]:
        assert set(s) >= SUMMARY_FIELDS
        assert s["ok"] == s["requests"] == 6 and s["errors"] == {}
        assert s["output_tokens"] == 30  # from the usage chunk
        assert s["ttft_ms"]["p50"] is not None and s["tpot_ms"]["p99"] is not None
    records = doc["runs"][0]["records"]
    assert len(records) == 6 and set(records[0]) >= RECORD_FIELDS
    assert len(records[0]["itl"]) == 4  # five content chunks, four gaps
    assert doc["comparison"] == [] and doc["machine"]["cpu_count"]
    sent = script.seen[-1]
    assert sent["ignore_eos"] is True and sent["max_tokens"] == 5 and sent["stream_options"]["include_usage"]
    assert len(script.seen) == 2 * (6 + 1)  # warm-up requests are sent, only not recorded

    write_outputs(doc, args, Console(file=io.StringIO()))
    [path] = tmp_path.glob("loadtest-*.json")
    assert json.loads(path.read_text())["schema"] == "medgemma-bench/loadtest/1"
    png = plot(doc["summaries"], tmp_path / "sweep.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


async def test_compare_engine_and_gateway_interleaved(engine, gateway):
    doc, _ = await run(
        "--target",
        f"engine={url(engine)}",
        "--target",
        f"gateway={url(gateway)}",
        "--concurrency",
        "2",
        "--requests",
        "4",
        "--rounds",
        "2",
        "--warmup",
        "0",
    )
    assert doc["targets"]["gateway"]["gateway"] and doc["targets"]["gateway"]["expect_disclaimer"]
    assert not doc["targets"]["engine"]["expect_disclaimer"]
    by_target = {s["target"]: s for s in doc["summaries"]}
    assert by_target["gateway"]["ok"] == 8 and by_target["gateway"]["disclaimer_seen"] == 8
    assert by_target["engine"]["ok"] == 8 and by_target["gateway"]["rounds"] == 2
    [row] = doc["comparison"]
    assert row["target"] == "gateway" and row["baseline"] == "engine"
    assert {"added_ttft_p50_ms", "added_ttft_p99_ms", "throughput_ratio"} <= set(row)
    assert [(r["target"], r["round"]) for r in doc["runs"]] == [
        ("engine", 0),
        ("gateway", 0),
        ("gateway", 1),
        ("engine", 1),
    ]


async def test_an_answer_without_the_disclaimer_is_an_error_when_expected(engine):
    doc, _ = await run(
        "--base-url",
        url(engine),
        "--expect-disclaimer",
        "on",
        "--concurrency",
        "2",
        "--requests",
        "3",
        "--warmup",
        "0",
    )
    [s] = doc["summaries"]
    assert s["ok"] == 0 and s["errors"] == {"missing_disclaimer": 3}


async def test_non_stream_and_poisson_rate_through_the_gateway(gateway):
    doc, _ = await run(
        "--base-url", url(gateway), "--no-stream", "--rate", "500", "--requests", "5", "--warmup", "0"
    )
    [s] = doc["summaries"]
    assert s["target"] == "gateway" and s["level"] == "rate=500/s"
    assert s["ok"] == 5 and s["disclaimer_seen"] == 5 and s["itl_ms"]["p50"] is None


async def test_image_workload_through_the_gateway(gateway, script):
    doc, _ = await run(
        "--base-url",
        url(gateway),
        "--workload",
        "mix",
        "--image-sizes",
        "48,64",
        "--concurrency",
        "2",
        "--requests",
        "6",
        "--warmup",
        "0",
    )
    [s] = doc["summaries"]
    assert s["ok"] == 6, s["errors"]
    kinds = {r["kind"] for r in doc["runs"][0]["records"]}
    assert kinds <= {"text", "image-48", "image-64"} and kinds & {"image-48", "image-64"}
    assert any(isinstance(m["content"], list) for body in script.seen for m in body["messages"])


async def test_http_errors_are_counted_by_status(engine, script):
    script.status = 503
    doc, _ = await run(
        "--base-url", url(engine), "--concurrency", "1", "--requests", "2", "--warmup", "0", "--model", MODEL
    )
    assert doc["summaries"][0]["errors"] == {"http_503": 2}
