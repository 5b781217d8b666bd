"""Tier 3: every client example runs against the real stack, so none can silently rot."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from PIL import Image

from serve import terms
from testkit.pathology import patch_folder
from testkit.radiographs import radiograph
from tests.engine.conftest import ROOT, Proc, _wait_ready, free_port

pytestmark = pytest.mark.engine


def run(stack, *args: str, base: str | None = None, **env: str) -> subprocess.CompletedProcess:
    environ = {
        **os.environ,
        "MEDGEMMA_BASE_URL": (base or stack.gateway_url) + "/v1",
        "MEDGEMMA_MODEL": stack.model,
        **env,
    }
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=environ, capture_output=True, text=True, timeout=300
    )


def test_chat_example_prints_answer_and_disclaimer(stack):
    out = run(stack, "-m", "clients.chat")
    assert out.returncode == 0, out.stderr
    assert f"disclaimer field: {terms.DISCLAIMER}" in out.stdout


def test_stream_example_ends_with_the_disclaimer(stack):
    out = run(stack, "-m", "clients.stream_chat", "Hello")
    assert out.returncode == 0, out.stderr
    assert out.stdout.rstrip().endswith(terms.DISCLAIMER)


def test_thinking_example_prints_the_thought_and_the_answer_apart(stack):
    out = run(stack, "-m", "clients.thinking", "Hello", "16")
    assert out.returncode == 0, out.stderr
    assert "=== Answer ===" in out.stdout and "=== Thought ===" in out.stdout  # the demo model never thinks
    assert out.stdout.split("=== Thought ===")[0].rstrip().endswith(terms.DISCLAIMER)


def test_responses_example_prints_both_answers_with_the_disclaimer(stack):
    out = run(stack, "-m", "clients.responses_api")
    assert out.returncode == 0, out.stderr
    assert f"disclaimer field: {terms.DISCLAIMER}" in out.stdout
    assert f"streamed disclaimer field: {terms.DISCLAIMER}" in out.stdout
    assert out.stdout.count(terms.DISCLAIMER) == 4  # each answer's text ends with it, and each field holds it


def test_image_example_sends_a_local_file(stack, tmp_path):
    for name in ("scan.png", "scan.jpg"):
        Image.new("RGB", (300, 200), (90, 90, 90)).save(tmp_path / name)
        out = run(stack, "-m", "clients.image_chat", str(tmp_path / name))
        assert out.returncode == 0, out.stderr
        assert terms.DISCLAIMER in out.stdout


def test_localize_example_parses_json_boxes_with_the_disclaimer_beside_them(stack, tmp_path):
    image = tmp_path / "cxr.png"
    Image.fromarray(radiograph(256)[:, 20:220]).save(image)  # not square: the example pads it
    out = run(stack, "-m", "clients.localize_cxr", str(image), "left lung")
    assert out.returncode == 0, out.stderr
    assert re.search(r"^[a-z ]+: box_2d \[\d+, \d+, \d+, \d+\] \(pixels", out.stdout, re.M), out.stdout
    assert f"disclaimer field: {terms.DISCLAIMER}" in out.stdout


def test_longitudinal_example_sends_the_prior_then_the_current_film(stack, tmp_path):
    prior, current = tmp_path / "prior.png", tmp_path / "current.png"
    Image.fromarray(radiograph(256, seed=1)).save(prior)
    Image.fromarray(radiograph(256, seed=2)).save(current)
    out = run(stack, "-m", "clients.longitudinal_cxr", str(prior), str(current))
    assert out.returncode == 0, out.stderr
    assert out.stdout.rstrip().endswith(terms.DISCLAIMER)


def test_pathology_example_sends_a_folder_of_patches_or_one_image(stack, tmp_path):
    patch_folder(tmp_path / "slide", 5, size=448)
    out = run(stack, "-m", "clients.pathology_patches", str(tmp_path / "slide"), "colon, biopsy", "4")
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("4 patch(es), one request")
    assert out.stdout.rstrip().endswith(terms.DISCLAIMER)
    out = run(stack, "-m", "clients.pathology_patches", str(tmp_path / "slide" / "patch_000.jpg"))
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("1 patch(es), one request")
    assert out.stdout.rstrip().endswith(terms.DISCLAIMER)


def test_pacs_study_example_asks_about_a_series_and_a_slide_by_their_uids(stack, pacs):
    assert pacs is not None, "Orthanc is not installed: run scripts/install-orthanc.sh (make install does)"
    ct, slide = pacs.studies.ct, pacs.studies.slide
    args = ("-m", "clients.pacs_study", pacs.dicomweb_url)
    out = run(stack, *args, ct.study, ct.series, "Is there a liver lesion?", "--max-tokens", "16")
    assert out.returncode == 0, out.stderr
    assert out.stdout.rstrip().endswith(terms.DISCLAIMER)
    out = run(stack, *args, slide.study, slide.series, "colon, biopsy", "--slide", "--max-patches", "4")
    assert out.returncode == 0, out.stderr
    assert out.stdout.rstrip().endswith(terms.DISCLAIMER)


def test_ct_volume_example_sends_a_series_folder_or_a_multi_frame_file(stack, tmp_path):
    from testkit.ct_series import ct_series, enhanced

    (tmp_path / "series").mkdir()
    for k, obj in enumerate(ct_series(100, 64).objects):  # more than 85: the client samples before upload
        (tmp_path / "series" / f"IM{k:04d}").write_bytes(obj)
    out = run(stack, "-m", "clients.ct_volume", str(tmp_path / "series"), "Is there a liver lesion?")
    assert out.returncode == 0, out.stderr
    assert out.stdout.rstrip().endswith(terms.DISCLAIMER)
    (tmp_path / "enhanced.dcm").write_bytes(enhanced(12, 64)[0])
    out = run(stack, "-m", "clients.ct_volume", str(tmp_path / "enhanced.dcm"))
    assert out.returncode == 0, out.stderr
    assert out.stdout.rstrip().endswith(terms.DISCLAIMER)


def test_async_batch_example_gets_every_answer(stack):
    out = run(stack, "-m", "clients.async_batch", "16")
    assert out.returncode == 0, out.stderr
    assert "16 answers" in out.stdout


def test_errors_example_meets_each_refusal(stack):
    out = run(stack, "-m", "clients.errors")
    assert out.returncode == 0, out.stderr
    for kind in (
        "PermissionDeniedError (terms_not_acknowledged)",
        "NotFoundError (model_not_found)",
        "BadRequestError",
    ):
        assert kind in out.stdout


def test_acknowledge_example_by_header_and_per_key(stack, tmp_path):
    out = run(stack, "-m", "clients.acknowledge")
    assert out.returncode == 0, out.stderr
    assert "HAI-DEF Terms of Use, version 2024-11-15" in out.stdout
    with keyed_gateway(stack, tmp_path, key="sk-example-1") as url:
        out = run(stack, "-m", "clients.acknowledge", "sk-example-1", base=url)
        assert out.returncode == 0, out.stderr
        assert "acknowledged at" in out.stdout


def test_cli_streams_shows_disclaimer_and_explains_refusals(stack, tmp_path):
    image = tmp_path / "cxr.png"
    Image.new("L", (128, 128), 30).save(image)
    ok = run(
        stack,
        "-m",
        "clients.cli",
        "Any findings?",
        "--image",
        str(image),
        "--acknowledge-terms",
        "2024-11-15",
    )
    assert ok.returncode == 0, ok.stderr
    assert "Disclaimer:" in ok.stdout and terms.DISCLAIMER.split()[-1] in ok.stdout
    refused = run(stack, "-m", "clients.cli", "Any findings?", HAI_DEF_ACKNOWLEDGED="")
    assert refused.returncode == 4 and "--acknowledge-terms" in refused.stderr
    down = run(stack, "-m", "clients.cli", "hi", base=f"http://127.0.0.1:{free_port()}")
    assert down.returncode == 3 and "make serve" in down.stderr


def test_curl_examples_run(stack):
    out = subprocess.run(
        ["bash", "clients/curl_examples.sh"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "BASE": stack.gateway_url, "MODEL": stack.model},
    )
    assert out.returncode == 0, out.stderr
    assert '"disclaimer"' in out.stdout and "terms_not_acknowledged" in out.stdout and "[DONE]" in out.stdout


class keyed_gateway:
    """A second gateway with API keys in front of the session's engine (no second engine), on a port it binds
    itself and announces."""

    def __init__(self, stack, tmp: Path, key: str) -> None:
        raw = yaml.safe_load((ROOT / "configs" / "cpu-demo.yaml").read_text())
        raw["gateway"] = {
            "port": 0,
            "terms": {"database": str(tmp / "keyed.sqlite3")},
            "auth": {"api_keys_env": "EXAMPLE_KEYS"},
        }
        (tmp / "keyed.yaml").write_text(yaml.safe_dump(raw))
        cmd = [
            sys.executable,
            "-m",
            "serve",
            "gateway",
            "--profile",
            str(tmp / "keyed.yaml"),
            "--upstream",
            stack.engine_url,
        ]
        self.proc = Proc(cmd, env={"EXAMPLE_KEYS": key})

    def __enter__(self) -> str:
        return _wait_ready(self.proc)

    def __exit__(self, *exc) -> None:
        self.proc.popen.terminate()
        self.proc.popen.wait(timeout=10)
