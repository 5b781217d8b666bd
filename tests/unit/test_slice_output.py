"""A slice's BMP data URL has the size the gateway reserved for it before it was made, whatever its shape, and
the engine reads back exactly the recipe's pixels (BMP is uncompressed)."""

import base64
import io

import numpy as np
import pytest
from PIL import Image

from serve.config import ImageSettings
from serve.imaging import normalise
from serve.imaging.volume_slices import bmp_url_size


@pytest.mark.parametrize(
    ("rows", "columns", "size"), [(512, 512, 896), (300, 511, 896), (1024, 1000, 896), (7, 3, 64)]
)
def test_the_reserved_size_is_the_data_urls_size(rows, columns, size):
    rng = np.random.default_rng(rows)
    img = Image.fromarray(rng.integers(0, 256, (rows, columns, 3), dtype=np.uint8))
    url = normalise.normalise(img, ImageSettings(model_input_size=size), "bmp").data_url_bytes()
    assert len(url) == bmp_url_size(rows, columns, size)


def test_an_rgbx_slice_comes_back_exactly_as_rgb():
    rng = np.random.default_rng(1)
    rgbx = rng.integers(0, 256, (40, 30, 4), dtype=np.uint8)
    img = Image.frombuffer("RGBX", (30, 40), rgbx.tobytes(), "raw", "RGBX", 0, 1)
    url = normalise.normalise(img, ImageSettings(model_input_size=64), "bmp").data_url_bytes()
    head, payload = url.split(b",", 1)
    assert head == b"data:image/bmp;base64"
    back = Image.open(io.BytesIO(base64.b64decode(payload)))
    back.load()
    assert back.mode == "RGB" and np.array_equal(np.asarray(back), rgbx[..., :3])


@pytest.mark.parametrize(("mode", "width"), [("RGB", 31), ("RGBX", 64), ("L", 5)])
def test_the_bmp_reads_back_as_pillows_own_bmp_writer_would(mode, width):
    rng = np.random.default_rng(width)
    img = Image.fromarray(rng.integers(0, 256, (9, width, 3), dtype=np.uint8)).convert(mode)
    ours = Image.open(io.BytesIO(normalise.bmp(img)))
    buf = io.BytesIO()
    img.convert("RGB").save(buf, format="BMP")
    theirs = Image.open(io.BytesIO(buf.getvalue()))
    assert len(normalise.bmp(img)) == len(buf.getvalue())
    assert ours.mode == theirs.mode == "RGB" and np.array_equal(np.asarray(ours), np.asarray(theirs))
