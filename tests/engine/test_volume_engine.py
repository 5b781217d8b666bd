"""Tier 3: an 85-slice CT volume and a multi-frame MR object through the gateway to the CPU engine: a streamed
answer ending with the disclaimer, and the engine's own prompt-token counter showing every slice's image tokens."""

from __future__ import annotations

import base64
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from serve import terms
from serve.config import load_config
from testkit.ct_series import ct_series, enhanced
from tests.engine.conftest import ROOT, streamed

pytestmark = pytest.mark.engine
PROFILE = load_config(ROOT / "configs" / "cpu-demo.yaml")  # the session stack's profile derives from it
PER_IMAGE = PROFILE.gateway.images.tokens_per_image  # 64 image tokens + 3 delimiters on the demo checkpoint
SLICES = PROFILE.gateway.images.volumes.max_slices  # 85, Google's notebook
INSTRUCTION = (
    "You are an instructor teaching medical students. Please review the slices provided below carefully."
)


def prompt_tokens(stack) -> float:
    with urllib.request.urlopen(stack.engine_url + "/metrics", timeout=10) as resp:
        families = text_string_to_metric_families(resp.read().decode())
        return sum(
            s.value
            for f in families
            if f.name == "vllm:prompt_tokens"
            for s in f.samples
            if s.name.endswith("_total")
        )


def volume(objects: list[bytes], **options) -> dict:
    urls = ["data:application/dicom;base64," + base64.b64encode(o).decode() for o in objects]
    return {"type": "image_dicom", "image_dicom": {"dicom_source": urls, **options}}


def question(part: dict) -> list[dict]:
    return [{"type": "text", "text": INSTRUCTION}, part, {"type": "text", "text": "\n\nFindings?"}]


def test_an_85_slice_ct_volume_is_answered_with_every_slice_in_the_prompt(stack):
    series = ct_series(120, 512)  # more slices than the model sees: the gateway samples 85
    before = prompt_tokens(stack)
    text, usage = streamed(stack, question(volume(series.objects)))
    assert text.endswith(terms.DISCLAIMER)
    counted = prompt_tokens(stack) - before
    assert counted == usage  # the engine's own counter
    # 85 images at 67 tokens, plus the instruction, the "SLICE k" labels, the question and the disclaimer.
    assert SLICES * PER_IMAGE < counted < SLICES * PER_IMAGE + 1500


def test_without_labels_the_prompt_is_the_slices_and_the_text(stack):
    series = ct_series(10, 128, flat=True)
    _, labelled = streamed(stack, question(volume(series.objects)))
    text, bare = streamed(stack, question(volume(series.objects, slice_labels=False)))
    assert text.endswith(terms.DISCLAIMER)
    assert 10 * 2 <= labelled - bare <= 10 * 6  # "SLICE k" is a few tokens per slice


def test_one_multi_frame_mr_object_is_a_volume_too(stack):
    obj, _ = enhanced(20, 96, modality="MR")
    text, usage = streamed(stack, question(volume([obj])))
    assert text.endswith(terms.DISCLAIMER) and usage > 20 * PER_IMAGE


def test_a_max_tokens_past_the_context_left_is_answered_not_refused(stack):
    """The gateway's budget counts images, not the client's max_tokens: vLLM shortens an answer to the context
    left (a refusal here would turn away what the engine answers). The images-only refusal is tested at the
    gateway tier: on this profile the image limit (100 x 67 tokens) is reached before the context."""
    series = ct_series(SLICES, 16, flat=True)
    room = PROFILE.vllm["max-model-len"] - SLICES * PER_IMAGE  # 8192 - 5695: the answer cannot have it all
    text, _ = streamed(stack, question(volume(series.objects)), max_tokens=room + 1)
    assert text.endswith(terms.DISCLAIMER)
