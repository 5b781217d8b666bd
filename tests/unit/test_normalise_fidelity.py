"""Normalised images give the engine's own processor the input it would have made from the original.

The engine's path is vLLM's image loader (EXIF orientation, transparency over white, RGB) then the checkpoint's
Gemma 3 image processor (antialiased bilinear resize to size x size, rescale, normalise). Both are run here on the
original and on what the gateway forwards; the difference is measured in 8-bit levels of the processor's input
(|delta pixel_values| x 127.5). Stated tolerance: PNG at most 1 level anywhere (resize rounding), mean under 0.2;
JPEG q100 4:4:4 at most 1 level on a radiograph, and on noisy colour (JPEG's worst case) at most 4 levels, or 5
when the source was itself a JPEG, mean under 0.6. Measured figures: BENCHMARKS.md, "Image ingestion".
"""

import functools
import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from serve.config import ImageSettings
from serve.imaging import window
from serve.imaging.pipeline import convert
from testkit.dicom_factory import png16, radiograph16

pytestmark = pytest.mark.full  # vLLM's image loader and transformers' processor: the full install (make test)

CHECKPOINT = Path(__file__).resolve().parents[2] / ".cache/checkpoints/demo-tiny-gemma3-random-v1"
TOLERANCE = {"png": (1.0, 0.2), "jpeg": (5.0, 0.6)}  # (max, mean) levels


def encoded(img: Image.Image, fmt: str = "PNG", **options) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **options)
    return buf.getvalue()


def colour(w: int, h: int) -> Image.Image:
    """Texture (the worst case for JPEG), saturated shapes, a thin line and text: what a pathology or
    dermatology photograph with annotations throws at an encoder."""
    rng = np.random.default_rng(1)
    base = rng.random((h, w, 3)) * 40 + np.linspace(0, 200, w)[None, :, None]
    img = Image.fromarray(base.astype(np.uint8))
    draw = ImageDraw.Draw(img)
    draw.rectangle((w // 5, h // 5, w // 2, h // 2), fill=(255, 0, 0))
    draw.line((0, h - 1, w - 1, 0), fill=(0, 255, 0), width=3)
    draw.text((10, 10), "L  R  12 mm", fill=(255, 255, 0))
    return img


def rotated_jpeg() -> bytes:
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90": the engine turns it upright, so must we
    return encoded(colour(1000, 600), "JPEG", quality=90, exif=exif.tobytes())


def palette_with_transparency() -> bytes:
    img = colour(1100, 900).convert("P", palette=Image.Palette.ADAPTIVE)
    return encoded(img, transparency=0)


CASES = {  # built on first use, not at collection
    "radiograph 2048x2048": lambda: (
        "image/png",
        encoded(Image.fromarray((radiograph16(2048) >> 4).astype(np.uint8))),
    ),
    "colour 1200x700 RGBA": lambda: ("image/png", encoded(colour(1200, 700).convert("RGBA"))),
    "wide 1500x300 (one axis enlarged)": lambda: ("image/png", encoded(colour(1500, 300))),
    "JPEG with EXIF rotation": lambda: ("image/jpeg", rotated_jpeg()),
    "palette PNG with transparency": lambda: ("image/png", palette_with_transparency()),
}


@functools.cache
def case_data(name: str) -> tuple[str, bytes]:
    return CASES[name]()


@pytest.fixture(scope="module")
def engine_view():
    """pixel_values the engine would compute from image bytes, for the demo checkpoint's processor (224) and a
    MedGemma-sized one (896, bilinear, as in google/medgemma-4b-it's preprocessor_config.json)."""
    # Imported here, not at the top: test-fast collects this module on the light install, then deselects it.
    from transformers import AutoImageProcessor
    from transformers.models.gemma3 import Gemma3ImageProcessor
    from vllm.multimodal.media.image import ImageMediaIO

    media_io = ImageMediaIO()

    served = (
        AutoImageProcessor.from_pretrained(CHECKPOINT)
        if (CHECKPOINT / "processor_config.json").exists()
        else Gemma3ImageProcessor(
            size={"height": 224, "width": 224}, do_pan_and_scan=False
        )  # what it is built with
    )
    processors = {
        224: served,
        896: Gemma3ImageProcessor(size={"height": 896, "width": 896}, do_pan_and_scan=False),
    }
    assert processors[224].size.height == 224 and processors[224].resample == 2

    @functools.cache  # each original is seen by both formats' tests
    def view(data: bytes, size: int) -> np.ndarray:
        return processors[size](media_io.load_bytes(data).media, return_tensors="np")["pixel_values"][0]

    return view


def levels(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    delta = np.abs(a - b) * 127.5
    return float(delta.max()), float(delta.mean())


@pytest.mark.parametrize("fmt", ["png", "jpeg"])
@pytest.mark.parametrize("size", [224, 896])
@pytest.mark.parametrize("case", sorted(CASES))
def test_forwarded_image_gives_the_processor_the_same_input(engine_view, case, size, fmt):
    media, original = case_data(case)
    out = convert(media, original, None, ImageSettings(model_input_size=size, forward_format=fmt))
    forwarded = original if out is None else out.data
    worst, mean = levels(engine_view(forwarded, size), engine_view(original, size))
    limit_max, limit_mean = (1.0, 0.1) if case.startswith("radiograph") else TOLERANCE[fmt]
    assert worst <= limit_max + 1e-3 and mean <= limit_mean, (
        f"{case}: max {worst:.2f}, mean {mean:.3f} levels"
    )
    assert len(forwarded) <= len(original)


@pytest.mark.parametrize("size", [224, 896])
def test_16_bit_png_is_windowed_then_matches_the_processor(engine_view, size):
    pixels = radiograph16(1024)
    out = convert(
        "image/png", png16(pixels), None, ImageSettings(model_input_size=size, forward_format="png")
    )
    windowed = encoded(Image.fromarray(window.robust(pixels)))  # what a viewer shows at full size
    worst, _ = levels(engine_view(out.data, size), engine_view(windowed, size))
    assert worst <= 1.0 + 1e-3
    truncated = engine_view(png16(pixels), size)  # the engine alone clips 16-bit values at 255: white
    assert truncated.min() > 0.99
