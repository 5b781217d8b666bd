"""One image's bytes to what the engine is sent: decoded once, checked, and normalised when configured."""

from __future__ import annotations

from PIL import Image

from serve.config import ImageSettings
from serve.imaging import dicom, normalise, raster
from serve.imaging.errors import ImageRefused
from serve.imaging.normalise import Encoded


def convert(media: str, data: bytes, frame: int | None, settings: ImageSettings) -> Encoded | None:
    """The image to forward instead, or None when the original bytes should go on unchanged. Blocking."""
    if len(data) > settings.max_image_bytes:
        raise ImageRefused(
            "image_too_large", f"the image is {len(data)} bytes; the limit is {settings.max_image_bytes}."
        )
    if media == dicom.DICOM_MEDIA:
        img = dicom.decode(data, frame, settings)
        return normalise.normalise(img, settings) if settings.normalize else normalise.lossless(img)
    if frame is not None:
        raise ImageRefused("invalid_frame", "'frame' applies only to DICOM images (application/dicom).")
    img = raster.decode(media, data, settings)
    return _normalised(img, data, settings) if settings.normalize else None


def _normalised(img: Image.Image, data: bytes, settings: ImageSettings) -> Encoded | None:
    """None (forward the original) when the engine makes the same pixels from it at no more bytes: an 8-bit
    image that already fits, or one whose re-encoding came out larger (a JPEG barely above the input size)."""
    if normalise.untouched_is_exact(img, settings.model_input_size):
        return None
    encoded = normalise.normalise(img, settings)
    if img.mode not in normalise.HIGH_BIT_DEPTH and len(encoded.data) >= len(data):
        return None
    return encoded
