"""The image the engine's processor would make, made here once: oriented, RGB, shrunk to the model's input
size with the processor's own filter, encoded small. 16-bit images are windowed, never truncated."""

from __future__ import annotations

import contextlib
import io
import struct
from dataclasses import dataclass

import numpy as np
import pybase64
from PIL import Image, ImageOps

from serve.config import ImageSettings
from serve.imaging import window

RESAMPLE = {
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
}
HIGH_BIT_DEPTH = ("I;16", "I;16B", "I;16L", "I;16N", "I")
TRANSPARENT_MODES = ("RGBA", "LA", "PA")
PNG_COMPRESS_LEVEL = 1  # level 6 saves ~25% of bytes on loopback for twice the encode time
WHITE = (255, 255, 255)  # vLLM's default rgba_background_color
BMP_HEADER = struct.Struct("<2sIHHI IiiHHIIiiII")  # BITMAPFILEHEADER + BITMAPINFOHEADER: 54 bytes
BMP_PIXELS_PER_M = 2835  # 72 dpi: a resolution readers ignore


@dataclass(frozen=True)
class Encoded:
    media: str
    data: bytes

    def data_url(self) -> str:
        return f"data:{self.media};base64,{pybase64.b64encode(self.data).decode()}"

    def data_url_bytes(self) -> bytes:
        return b"".join(self.data_url_pieces())

    def data_url_pieces(self) -> tuple[bytes, bytes]:
        """The data URL as its head and its base64, for a writer that takes both (no 1 MB join)."""
        return b"data:%s;base64," % self.media.encode(), pybase64.b64encode(self.data)


def untouched_is_exact(img: Image.Image, size: int) -> bool:
    """An 8-bit image no larger than the model input: the engine makes the same pixels from it, so the original
    bytes go on (re-encoding could only add bytes or JPEG loss)."""
    return img.mode not in HIGH_BIT_DEPTH and img.width <= size and img.height <= size


def normalise(img: Image.Image, settings: ImageSettings, fmt: str | None = None) -> Encoded:
    """`fmt`: the format to forward (images.forward_format unless given)."""
    img, size, resample = eight_bit(img), settings.model_input_size, RESAMPLE[settings.resample]
    if img.mode == "L" and "transparency" not in img.info:
        small = shrink(img, size, resample).convert(
            "RGB"
        )  # one channel resized, then copied: exact, 3x cheaper
    else:
        small = shrink(to_rgb(img), size, resample)
    return encode(small, fmt or settings.forward_format, settings.jpeg_quality)


def lossless(img: Image.Image) -> Encoded:
    """Full size, bit-exact: what the engine gets from a DICOM object when normalisation is off. Decoded DICOM
    is 'L' or 'RGB' already, and the engine's own L -> RGB copy is exact, so gray stays one channel."""
    return encode(img, "png", 100)


def eight_bit(img: Image.Image) -> Image.Image:
    """Upright (EXIF orientation, as vLLM's loader does) and 8-bit: 16-bit gray is windowed as a DICOM without
    a window would be, where Pillow's convert (and so the engine) would clip it at 255."""
    with contextlib.suppress(Exception):  # as vLLM's loader: a malformed EXIF block leaves the image as it is
        ImageOps.exif_transpose(img, in_place=True)
    if img.mode in HIGH_BIT_DEPTH:
        return Image.fromarray(window.robust(np.asarray(img)))
    return img


def to_rgb(img: Image.Image) -> Image.Image:
    """vLLM's conversion: transparency over white, everything else by Pillow's convert. RGBX (the CT recipe's
    output) is RGB with a padding byte: resized as it is and converted only where the encoder needs RGB."""
    if img.mode in ("RGB", "RGBX"):
        return img
    if img.mode in TRANSPARENT_MODES or "transparency" in img.info:
        rgba = img.convert("RGBA")
        flat = Image.new("RGB", img.size, WHITE)
        flat.paste(rgba, mask=rgba.getchannel("A"))
        return flat
    return img.convert("RGB")


def shrink(img: Image.Image, size: int, resample: Image.Resampling) -> Image.Image:
    """Each side down to the model's input size, never up: the processor squashes every image to size x size,
    and its filter is separable, so an axis it would enlarge is left for it to enlarge (fewer bytes, same
    pixels)."""
    target = (min(img.width, size), min(img.height, size))
    return img if target == img.size else img.resize(target, resample)


def bmp(img: Image.Image) -> bytes:
    """A 24-bit BMP file (the fields and rows Pillow's BMP writer makes). Pillow's own packer lays out the rows
    (BGR, bottom-up, padded to 4 bytes) from RGB or RGBX in one pass; only the 54-byte header is written here,
    because Pillow's writer takes RGB alone, and copying a CT slice's RGBX into RGB first cost 0.78 vs 0.50 ms for
    a 512x512 slice with its windows (BENCHMARKS.md, "CT and MR volumes")."""
    if img.mode not in ("RGB", "RGBX"):
        img = img.convert("RGB")
    width, height = img.size
    stride = (width * 3 + 3) // 4 * 4
    rows = img.tobytes("raw", ("BGR", stride, -1))
    header = BMP_HEADER.pack(
        *(b"BM", BMP_HEADER.size + len(rows), 0, 0, BMP_HEADER.size),  # BITMAPFILEHEADER
        *(
            40,
            width,
            height,
            1,
            24,
            0,
            len(rows),
            BMP_PIXELS_PER_M,
            BMP_PIXELS_PER_M,
            0,
            0,
        ),  # BITMAPINFOHEADER
    )
    return header + rows


def encode(img: Image.Image, fmt: str, quality: int) -> Encoded:
    buf = io.BytesIO()
    if fmt == "jpeg":
        # 4:4:4: chroma subsampling would blur colour overlays and annotations the model should see.
        img.save(buf, format="JPEG", quality=quality, subsampling=0)
        return Encoded("image/jpeg", buf.getvalue())
    if fmt == "bmp":  # uncompressed: exact, and the cheapest to write and to read (a volume's slices)
        return Encoded("image/bmp", bmp(img))
    if img.mode == "RGBX":  # JPEG takes RGBX as it is (Pillow's raw mode RGBX -> RGB); PNG does not
        img = img.convert("RGB")
    img.save(buf, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
    return Encoded("image/png", buf.getvalue())
