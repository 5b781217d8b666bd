"""Tier 3: a DICOM file through the OpenAI SDK and the gateway to the real CPU engine (clients/dicom_chat.py)."""

import numpy as np
import openai
import pytest
from pydicom.uid import JPEG2000Lossless

from clients.dicom_chat import ask
from testkit.dicom_factory import dicom, radiograph16

pytestmark = pytest.mark.engine
QUESTION = "Is there a pneumothorax?"


def test_dicom_chat_reaches_the_engine_and_the_model_sees_an_image(stack):
    client = stack.client()
    text_only = client.chat.completions.create(
        model=stack.model, messages=[{"role": "user", "content": QUESTION}], max_tokens=4
    )
    scan = dicom(
        radiograph16(2048),
        bits_stored=12,
        WindowCenter=2000,
        WindowWidth=3000,
        patient_name="CANARY^ENGINE^TIER3",
    )
    out = ask(client, stack.model, scan, QUESTION, max_tokens=8)
    assert isinstance(out.choices[0].message.content, str)
    # 64 image tokens plus the image delimiters: the engine received and tokenised an image.
    assert out.usage.prompt_tokens >= text_only.usage.prompt_tokens + 64
    assert not any("CANARY" in line for line in stack.log)


def test_multi_frame_compressed_dicom_with_a_chosen_frame(stack):
    frames = np.stack([np.full((96, 96), 30 * i, np.uint16) for i in range(5)])
    scan = dicom(frames, bits_stored=12, syntax=JPEG2000Lossless)
    out = ask(stack.client(), stack.model, scan, QUESTION, frame=4, max_tokens=4)
    assert out.choices[0].finish_reason in ("stop", "length")


def test_broken_dicom_is_a_bad_request_and_the_stack_keeps_serving(stack):
    scan = dicom(radiograph16(256), bits_stored=12)[:-2000]
    with pytest.raises(openai.BadRequestError) as err:
        ask(stack.client(), stack.model, scan, QUESTION, max_tokens=4)
    assert err.value.code == "invalid_dicom" and "messages[0].content[0]" in err.value.message
    out = ask(stack.client(), stack.model, dicom(radiograph16(256), bits_stored=12), QUESTION, max_tokens=4)
    assert out.choices[0].finish_reason in ("stop", "length")
