"""Tier 1: DICOM and large images through the gateway: what the engine is sent, and what it never is."""

import base64
import io
import json
import logging

import numpy as np
import pytest
from PIL import Image
from pydicom.uid import JPEG2000Lossless, RLELossless

from testkit.dicom_factory import data_url, dicom, png16, radiograph16
from tests.conftest import ACK, MODEL, chat_body

CHAT = "/v1/chat/completions"
CANARIES = ("CANARY^PATIENT^7F3A", "CANARY-ID-91C2")
SMALL = {"images": {"model_input_size": 224}}


def body_with(url: str, **spec) -> dict:
    parts = [{"type": "image_url", "image_url": {"url": url, **spec}}, {"type": "text", "text": "Findings?"}]
    return {"model": MODEL, "messages": [{"role": "user", "content": parts}]}


def forwarded_spec(script) -> dict:
    return script.seen[-1]["messages"][-1]["content"][0]["image_url"]


def forwarded_image(script) -> tuple[str, Image.Image]:
    url = forwarded_spec(script)["url"]
    header, _, payload = url.partition(",")
    img = Image.open(io.BytesIO(base64.b64decode(payload)))
    img.load()
    return header, img


def canary_dicom(**kw) -> bytes:
    return dicom(radiograph16(512), bits_stored=12, patient_name=CANARIES[0], patient_id=CANARIES[1], **kw)


async def test_dicom_reaches_the_engine_as_a_model_sized_rgb_jpeg(make_gateway, script):
    gw = await make_gateway(**SMALL)
    resp = await gw.post(CHAT, json=body_with(data_url(canary_dicom())), headers=ACK)
    assert resp.status == 200
    header, img = forwarded_image(script)
    assert header == "data:image/jpeg;base64" and img.size == (224, 224) and img.mode == "RGB"
    assert 60 < np.asarray(img).mean() < 200  # windowed: neither black nor clipped white


async def test_forward_format_png_is_configurable(make_gateway, script):
    gw = await make_gateway(images={"model_input_size": 224, "forward_format": "png"})
    assert (await gw.post(CHAT, json=body_with(data_url(canary_dicom())), headers=ACK)).status == 200
    header, img = forwarded_image(script)
    assert header == "data:image/png;base64" and img.format == "PNG" and img.size == (224, 224)


@pytest.mark.parametrize("syntax", [RLELossless, JPEG2000Lossless])
async def test_compressed_dicom_is_decoded(make_gateway, script, syntax):
    gw = await make_gateway(**SMALL)
    assert (
        await gw.post(CHAT, json=body_with(data_url(canary_dicom(syntax=syntax))), headers=ACK)
    ).status == 200
    assert forwarded_image(script)[1].size == (224, 224)


async def test_patient_attributes_reach_neither_the_engine_nor_the_logs(
    make_gateway, script, caplog, access_log
):
    caplog.set_level(logging.DEBUG)
    gw = await make_gateway(**SMALL)
    ok = await gw.post(CHAT, json=body_with(data_url(canary_dicom())), headers=ACK)
    broken = await gw.post(CHAT, json=body_with(data_url(canary_dicom()[:-5000])), headers=ACK)
    assert ok.status == 200 and broken.status == 400
    forwarded = json.dumps(script.seen)
    logged = caplog.text + json.dumps(access_log.lines())
    assert len(access_log.lines()) == 2
    image_bytes = base64.b64decode(forwarded_spec(script)["url"].partition(",")[2])
    for canary in CANARIES:
        for where in (forwarded, logged, await ok.text(), await broken.text()):
            assert canary not in where and canary.lower() not in where.lower()
        assert canary.encode() not in image_bytes


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"\0" * 128 + b"DICM" + b"\xff" * 64, "dicom_no_pixel_data"),
        (b"%PDF-1.7 not a DICOM file" * 10, "invalid_dicom"),
        (dicom(radiograph16(64), bits_stored=12)[:-300], "invalid_dicom"),
        (dicom(np.zeros((9, 4, 4), np.uint8)), "too_many_frames"),
    ],
)
@pytest.mark.filterwarnings("ignore:End of file reached:UserWarning")  # pydicom on the garbage case
async def test_bad_dicom_is_a_400_naming_the_part_and_the_gateway_keeps_serving(
    make_gateway, script, data, code
):
    gw = await make_gateway(images={"model_input_size": 224, "max_frames": 8})
    resp = await gw.post(CHAT, json=body_with(data_url(data)), headers=ACK)
    assert resp.status == 400
    error = (await resp.json())["error"]
    assert (
        error["code"] == code
        and error["param"] == "messages[0].content[0]"
        and error["type"] == "invalid_request_error"
    )
    assert error["message"].startswith("messages[0].content[0]: ")
    assert script.seen == []
    assert (await gw.post(CHAT, json=chat_body(), headers=ACK)).status == 200


async def test_the_requested_frame_is_sent_and_the_option_is_not_forwarded(make_gateway, script):
    frames = np.stack([np.full((32, 32), 20 * i, np.uint8) for i in range(7)])
    gw = await make_gateway(**SMALL)
    assert (await gw.post(CHAT, json=body_with(data_url(dicom(frames)), frame=6), headers=ACK)).status == 200
    assert np.asarray(forwarded_image(script)[1]).mean() == pytest.approx(120, abs=2)
    assert "frame" not in forwarded_spec(script)
    assert (await gw.post(CHAT, json=body_with(data_url(dicom(frames))), headers=ACK)).status == 200
    assert np.asarray(forwarded_image(script)[1]).mean() == pytest.approx(60, abs=2)  # the middle frame, 3


@pytest.mark.parametrize("frame", [-1, "2", True, 1.5])
async def test_a_frame_that_is_not_a_frame_number_is_400(gateway, frame):
    resp = await gateway.post(CHAT, json=body_with(data_url(canary_dicom()), frame=frame), headers=ACK)
    assert resp.status == 400 and (await resp.json())["error"]["code"] == "invalid_frame"


async def test_frame_on_a_png_is_400(gateway):
    url = data_url(png16(radiograph16(64)), "image/png")
    resp = await gateway.post(CHAT, json=body_with(url, frame=0), headers=ACK)
    assert resp.status == 400 and "only to DICOM" in (await resp.json())["error"]["message"]


async def test_large_png_is_shrunk_and_16_bit_is_windowed_not_clipped(make_gateway, script):
    gw = await make_gateway(**SMALL)
    big = data_url(png16(radiograph16(1024)), "image/png")
    assert (await gw.post(CHAT, json=body_with(big), headers=ACK)).status == 200
    img = forwarded_image(script)[1]
    assert img.size == (224, 224) and img.mode == "RGB" and np.asarray(img).mean() < 200
    assert len(forwarded_spec(script)["url"]) * 10 < len(big)


async def test_normalisation_off_passes_images_unchanged_but_still_converts_dicom(make_gateway, script):
    gw = await make_gateway(images={"normalize": False})
    big = data_url(png16(radiograph16(512)), "image/png")
    assert (await gw.post(CHAT, json=body_with(big), headers=ACK)).status == 200
    assert forwarded_spec(script)["url"] == big
    assert (await gw.post(CHAT, json=body_with(data_url(canary_dicom())), headers=ACK)).status == 200
    header, img = forwarded_image(script)
    assert header == "data:image/png;base64" and img.size == (512, 512)  # lossless, full size


def test_model_input_size_beyond_max_side_is_a_config_error():
    from pydantic import ValidationError

    from serve.config import ImageSettings

    with pytest.raises(ValidationError, match="model_input_size"):
        ImageSettings(model_input_size=2048, max_side=1024)
