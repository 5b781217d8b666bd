"""Tier 3: studies in a real PACS (the session's Orthanc, which the stack's profile allow-lists) asked about by
reference through the gateway to the CPU engine: a CT series and a whole slide reach the engine as images (its own
prompt-token counter shows them), a wrong UID is a 404, and a PACS stopped mid-request is a clear 502 while the
gateway goes on serving."""

from __future__ import annotations

import threading
import time

import openai
import pytest

from serve import terms
from tests.engine.conftest import streamed
from tests.engine.test_volume_engine import PER_IMAGE, SLICES, prompt_tokens

pytestmark = pytest.mark.engine
INSTRUCTION = (
    "You are an instructor teaching medical students. Please review the images provided below carefully."
)


@pytest.fixture
def pacs_ready(pacs):
    assert pacs is not None, "Orthanc is not installed: run scripts/install-orthanc.sh (make install does)"
    return pacs


def part(url: str, **options) -> dict:
    return {"type": "image_dicom", "image_dicom": {"dicom_source": [url], **options}}


def ct_question(pacs) -> list[dict]:
    url = pacs.studies.ct.url(pacs.dicomweb_url)  # 120 slices in the PACS: the gateway samples 85
    return [{"type": "text", "text": INSTRUCTION}, part(url), {"type": "text", "text": "\n\nFindings?"}]


def test_a_ct_series_by_reference_is_answered_with_its_85_slices_in_the_prompt(stack, pacs_ready):
    before = prompt_tokens(stack)
    text, usage = streamed(stack, ct_question(pacs_ready))
    assert text.endswith(terms.DISCLAIMER)
    counted = prompt_tokens(stack) - before
    assert counted == usage
    assert SLICES * PER_IMAGE < counted < SLICES * PER_IMAGE + 1500  # plus instruction, labels, question


def test_a_whole_slide_by_reference_sends_its_patches_to_the_engine(stack, pacs_ready):
    slide = pacs_ready.studies.slide.url(pacs_ready.dicomweb_url)
    prompt = {"type": "text", "text": "Describe these pathology patches.\ncolon, biopsy:"}
    before = prompt_tokens(stack)
    text, usage = streamed(stack, [prompt, part(slide, max_patches=12)])
    assert text.endswith(terms.DISCLAIMER)
    assert prompt_tokens(stack) - before == usage
    assert 12 * PER_IMAGE < usage < 12 * PER_IMAGE + 200
    # Without max_patches: every tissue patch the slide has, as many as the context leaves room for.
    text, usage = streamed(stack, [prompt, part(slide)])
    assert text.endswith(terms.DISCLAIMER) and usage > 12 * PER_IMAGE


def test_a_wrong_uid_is_a_404_envelope(stack, pacs_ready):
    ct = pacs_ready.studies.ct
    wrong = f"{pacs_ready.dicomweb_url}/studies/{ct.study}/series/1.2.826.0.1.3680043.8.498.999"
    with pytest.raises(openai.NotFoundError) as caught:
        streamed(stack, [{"type": "text", "text": "Findings?"}, part(wrong)])
    assert caught.value.code == "dicomweb_not_found"


def test_a_pacs_stopped_mid_request_is_a_502_and_the_gateway_keeps_serving(stack, pacs_ready):
    server = pacs_ready.server
    outcome: dict[str, BaseException | str] = {}

    def ask() -> None:
        try:
            outcome["answer"] = streamed(stack, ct_question(pacs_ready))[0]
        except BaseException as exc:  # the assertion below reads it
            outcome["error"] = exc

    with server.slow():  # each PACS answer now takes 0.3 s, one at a time: the series takes ~25 s
        asking = threading.Thread(target=ask)
        asking.start()
        time.sleep(2.0)  # the gateway is retrieving the sampled instances
        server.kill()  # a crash: SIGTERM would let Orthanc serve what it had queued
    try:
        asking.join(timeout=120)
        error = outcome.get("error")
        assert isinstance(error, openai.APIStatusError) and error.status_code in (502, 504), outcome
        assert error.code == "dicomweb_unreachable"
        text, _ = streamed(stack, [{"type": "text", "text": "Still there?"}])
        assert text.endswith(terms.DISCLAIMER)
    finally:
        server.start()  # on its former port, with its studies: the profile still names it
    text, _ = streamed(stack, ct_question(pacs_ready))
    assert text.endswith(terms.DISCLAIMER)
