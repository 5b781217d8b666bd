"""The image benchmark's pure parts: the interleaved schedule, the summary and the offline figures."""

from benchmarks.images.cli import schedule
from benchmarks.images.payloads import Payload, offline
from benchmarks.images.report import markdown, summarize
from testkit.dicom_factory import data_url, dicom, radiograph16


def test_schedule_interleaves_every_cell_each_round_and_rotates_the_arms():
    order = schedule(3, [1, 8], ["a", "b"], ["off", "on"])
    assert len(order) == 3 * 2 * 2 * 2
    firsts = [arm for rnd, c, image, arm in order if c == 1 and image == "a"]
    assert firsts == ["off", "on", "on", "off", "off", "on"]


def record(ok=True, ttft=0.1):
    return {"ok": ok, "ttft": ttft if ok else None}


def test_summary_pools_rounds_and_counts_errors():
    cells = [
        {
            "image": "x",
            "concurrency": 1,
            "arm": "on",
            "wall_s": 1.0,
            "gateway_cpu_s": 0.2,
            "records": [record(ttft=0.1), record(ttft=0.3)],
        },
        {
            "image": "x",
            "concurrency": 1,
            "arm": "on",
            "wall_s": 1.0,
            "gateway_cpu_s": 0.2,
            "records": [record(ttft=0.2), record(ok=False)],
        },
    ]
    (row,) = summarize(cells)
    assert row["requests"] == 4 and row["errors"] == 1
    assert abs(row["ttft_p50_ms"] - 200) < 1e-6 and row["requests_per_s"] == 1.5
    assert abs(row["gateway_cpu_ms_per_request"] - 100) < 1e-6


def test_offline_figures_show_the_reduction_and_render():
    scan = Payload("dicom", data_url(dicom(radiograph16(512), bits_stored=12)))
    row = offline(scan, "m", 224, repeats=1)
    assert row["arms"]["on-jpeg"]["forwarded_bytes"] * 10 < row["request_bytes"]
    report = {
        "model_input_size": 224,
        "offline": {"dicom": row},
        "offline_896": {"dicom": row},
        "summary": [],
    }
    assert "| dicom |" in markdown(report)
