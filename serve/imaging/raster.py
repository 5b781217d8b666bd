"""PNG, JPEG and WebP decoding with Pillow under the gateway's limits (decompression bombs, dimensions)."""

from __future__ import annotations

import io
import warnings

from PIL import Image, UnidentifiedImageError

from serve.config import ImageSettings
from serve.imaging.errors import ImageRefused

MEDIA_FORMATS = {"image/png": "PNG", "image/jpeg": "JPEG", "image/jpg": "JPEG", "image/webp": "WEBP"}


def decode(media: str, data: bytes, settings: ImageSettings) -> Image.Image:
    """Open and fully decode; a refusal names what is wrong."""
    if media not in MEDIA_FORMATS:
        raise ImageRefused(
            "unsupported_media_type",
            f"media type {media!r} is not an image this gateway "
            f"takes ({', '.join(sorted([*MEDIA_FORMATS, 'application/dicom']))}).",
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
            check_size(img.size, settings)
            img.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise too_big(settings) from None
    except ImageRefused:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise ImageRefused(
            "invalid_image", f"the image cannot be decoded ({type(exc).__name__}: truncated or corrupt?)."
        ) from None
    if img.format != MEDIA_FORMATS[media]:
        raise ImageRefused("media_type_mismatch", f"the data URL says {media} but the data is {img.format}.")
    return img


def check_size(size: tuple[int, int], settings: ImageSettings) -> None:
    w, h = size
    if w < 1 or h < 1 or max(w, h) > settings.max_side or w * h > settings.max_pixels:
        raise too_big(settings, f"{w}x{h}")


def too_big(settings: ImageSettings, dims: str = "too many pixels") -> ImageRefused:
    return ImageRefused(
        "image_dimensions",
        f"image dimensions {dims} exceed this gateway's limits "
        f"({settings.max_side} px a side, {settings.max_pixels} pixels).",
    )
