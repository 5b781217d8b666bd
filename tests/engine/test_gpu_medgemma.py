"""GPU only: MedGemma 1.5 4B from local weights, served by the launcher's own command (skipped without CUDA)."""

import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from openai import OpenAI

from serve import terms

pytestmark = [pytest.mark.gpu, pytest.mark.engine]
ROOT = Path(__file__).resolve().parents[2]


def test_medgemma_answers_through_the_gateway(tmp_path):
    weights = os.environ.get("MEDGEMMA_WEIGHTS")
    if not weights:
        pytest.skip("set MEDGEMMA_WEIGHTS to a local copy of google/medgemma-1.5-4b-it")
    profile = tmp_path / "p.yaml"
    text = (ROOT / "configs" / "medgemma-1.5-4b-it.yaml").read_text()
    profile.write_text(text.replace("source: google/medgemma-1.5-4b-it", f"source: {weights}"))
    env = {**os.environ, "HAI_DEF_TERMS_ACCEPTED": terms.TERMS_VERSION}
    proc = subprocess.Popen(
        [sys.executable, "-m", "serve", "up", "--profile", str(profile)], cwd=ROOT, env=env
    )
    try:
        for _ in range(900):
            try:
                if urllib.request.urlopen("http://127.0.0.1:8000/health", timeout=2).status == 200:
                    break
            except OSError:
                time.sleep(1)
        client = OpenAI(
            base_url="http://127.0.0.1:8000/v1",
            api_key="local",
            max_retries=0,
            default_headers={terms.ACK_HEADER: terms.TERMS_VERSION},
        )
        out = client.chat.completions.create(
            model="medgemma-1.5-4b-it",
            messages=[{"role": "user", "content": "What is a pneumothorax?"}],
            max_tokens=64,
        )
        assert "pneumothorax" in out.choices[0].message.content.lower()
    finally:
        proc.terminate()
        proc.wait(timeout=120)
