"""A slice's data URL fits the room the gateway reserved for it before it was made, whatever its shape (a BMP
to the byte), one that would not comes back instead of being written, and a BMP reads back as exactly the
recipe's pixels (it is uncompressed), as Pillow's own BMP writer's would."""

import base64
import io

import numpy as np
import pytest
from PIL import Image

from serve.config import ImageSettings
from serve.imaging import normalise, shared_bytes
from serve.imaging.shared_bytes import SharedBytes
from serve.imaging.volume_slices import SliceTask, render, url_room
from testkit.ct_series import ct_series


@pytest.mark.parametrize(
    ("rows", "columns", "size"), [(512, 512, 896), (300, 511, 896), (1024, 1000, 896), (7, 3, 64)]
)
def test_the_reserved_room_holds_the_data_url(rows, columns, size):
    rng = np.random.default_rng(rows)
    img = Image.fromarray(
        rng.integers(0, 256, (rows, columns, 3), dtype=np.uint8)
    )  # noise: JPEG's worst case
    settings = ImageSettings(model_input_size=size)
    bmp = normalise.normalise(img, settings, "bmp").data_url_bytes()
    assert url_room(rows, columns, size, "bmp") == len(bmp)  # to the byte
    jpeg = normalise.normalise(img, settings, "jpeg").data_url_bytes()
    assert len(jpeg) <= url_room(rows, columns, size, "jpeg")


@pytest.mark.skipif(not shared_bytes.supported(), reason="needs memfd and /proc (Linux)")
def test_a_slice_is_written_in_its_place_or_sent_back_when_it_would_not_fit():
    obj = ct_series(1, 64).objects[0]
    settings = ImageSettings(model_input_size=64)
    task = SliceTask(base64.b64encode(obj).decode(), "CT")
    url = render(task, settings)
    out = SharedBytes(len(url) + 10)
    assert render(SliceTask(task.text, "CT", out=(out.ref, 10, len(url))), settings) == len(url)
    assert out[10:] == url
    assert render(SliceTask(task.text, "CT", out=(out.ref, 0, len(url) - 1)), settings) == url


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
