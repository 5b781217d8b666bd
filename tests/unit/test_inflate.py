"""Deflated DICOM inflated in bounded steps: a bomb stops at the cap, a real object decodes as before."""

import tracemalloc
import zlib

import numpy as np
import pytest
from pydicom.uid import DeflatedExplicitVRLittleEndian

from serve.config import ImageSettings
from serve.imaging import dicom as dm
from serve.imaging.errors import ImageRefused
from serve.imaging.inflate import bounded_inflate
from testkit.dicom_factory import dicom, radiograph16


def deflated(data: bytes) -> bytes:
    packer = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    return packer.compress(data) + packer.flush()


def test_inflation_stops_at_the_cap_without_inflating_the_whole_bomb():
    bomb = deflated(bytes(256 << 20))  # 256 MiB of zeros in ~250 kB
    tracemalloc.start()
    try:
        with pytest.raises(ImageRefused) as info:
            bounded_inflate(bomb, limit=4 << 20, chunk=1 << 20)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert info.value.code == "image_too_large" and peak < 16 << 20


def test_inflation_within_the_cap_is_exact():
    data = np.random.default_rng(0).integers(0, 255, 3 << 20, dtype=np.uint8).tobytes()
    assert bounded_inflate(deflated(data), limit=len(data), chunk=1 << 16) == data


def test_deflated_dicom_decodes_like_the_plain_one():
    img = radiograph16(64)
    plain = dm.decode(dicom(img, bits_stored=12), None, ImageSettings())
    packed = dm.decode(
        dicom(img, bits_stored=12, syntax=DeflatedExplicitVRLittleEndian), None, ImageSettings()
    )
    assert np.array_equal(np.asarray(plain), np.asarray(packed))


def test_deflated_dicom_past_the_cap_is_refused(monkeypatch):
    # 256x256 16-bit pixels inflate to 128 kB: past a 64 kB cap.
    monkeypatch.setattr("serve.imaging.inflate.inflate_limit", lambda settings: 64 << 10)
    data = dicom(np.zeros((256, 256), np.uint16), syntax=DeflatedExplicitVRLittleEndian)
    with pytest.raises(ImageRefused) as info:
        dm.decode(data, None, ImageSettings())
    assert info.value.code == "image_too_large" and "inflates past" in info.value.message
