"""Tier 1: compressed DICOM frames whose own header disagrees with Rows/Columns are refused before any decoder
runs (the decoder allocates for the codestream's size: 2.6 kB once claimed 20000x20000 pixels)."""

import struct

import numpy as np
import pytest
from pydicom.uid import JPEGBaseline8Bit, JPEGLSLossless, RLELossless

from testkit.dicom_bombs import deflate_bomb, first_frame, j2k_bomb, with_frame
from testkit.dicom_factory import data_url, dicom
from tests.conftest import ACK
from tests.gateway.test_dicom import body_with

CHAT = "/v1/chat/completions"


def jpeg_bomb(marker: int, syntax: str) -> bytes:
    """A 1x1 8-bit object whose JPEG (or JPEG-LS) frame header declares 20000x20000."""
    sof = struct.pack(">BBHBHHB", 0xFF, marker, 11, 8, 20000, 20000, 1) + b"\x01\x11\x00"
    frame = b"\xff\xd8" + sof + b"\xff\xda\x00\x08\x01\x01\x00\x00\x3f\x00" + bytes(64) + b"\xff\xd9"
    return with_frame(dicom(np.zeros((1, 1), np.uint8), syntax=JPEGBaseline8Bit), frame, syntax)


def rle_mismatch() -> bytes:
    """A 1x1 16-bit RLE object whose header lists one segment where two byte planes need two."""
    data = dicom(np.zeros((1, 1), np.uint16), syntax=RLELossless)
    frame = bytearray(first_frame(data))
    frame[0:4] = struct.pack("<I", 1)
    return with_frame(data, bytes(frame))


BOMBS = {
    "jpeg2000": (j2k_bomb, "image_dimensions", "20000x20000"),
    "jpeg": (lambda: jpeg_bomb(0xC0, JPEGBaseline8Bit), "image_dimensions", "20000x20000"),
    "jpeg-ls": (lambda: jpeg_bomb(0xF7, JPEGLSLossless), "image_dimensions", "20000x20000"),
    "rle": (rle_mismatch, "dicom_frame_mismatch", "1 RLE segments"),
}


@pytest.fixture
def no_decoder(monkeypatch):
    """Decoding in the gateway's own threads (workers: 0) so that a decoder call can be seen here."""
    calls = []
    monkeypatch.setattr(
        "serve.imaging.dicom.pixel_array", lambda *a, **k: calls.append(a) or np.zeros((1, 1))
    )
    return calls


@pytest.mark.parametrize("kind", BOMBS)
async def test_frame_header_beyond_rows_and_columns_is_refused_before_decoding(
    make_gateway, script, no_decoder, kind
):
    build, code, named = BOMBS[kind]
    gw = await make_gateway(images={"workers": 0, "model_input_size": 224})
    resp = await gw.post(CHAT, json=body_with(data_url(build())), headers=ACK)
    error = (await resp.json())["error"]
    assert resp.status == 400 and error["code"] == code and named in error["message"]
    assert error["param"] == "messages[0].content[0]"
    assert no_decoder == [] and script.seen == []


async def test_bomb_is_refused_through_the_worker_pool(make_gateway, script):
    gw = await make_gateway(images={"model_input_size": 224})
    resp = await gw.post(CHAT, json=body_with(data_url(j2k_bomb())), headers=ACK)
    assert resp.status == 400 and (await resp.json())["error"]["code"] == "image_dimensions"


async def test_deflated_dicom_that_inflates_past_the_cap_is_refused(make_gateway, script):
    gw = await make_gateway(images={"model_input_size": 224, "max_pixels": 1_000_000})
    resp = await gw.post(CHAT, json=body_with(data_url(deflate_bomb(64 << 20))), headers=ACK)
    error = (await resp.json())["error"]
    assert resp.status == 400 and error["code"] == "image_too_large" and "inflates past" in error["message"]
    assert script.seen == []
