"""Image-worker jobs for objects from a DICOMweb server: a series' WADO-RS metadata (DICOM JSON, no pixels) read
as the slices the volume recipe orders and samples, and one retrieved object decoded on the single-image path."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from pydicom.dataset import Dataset

from serve.config import ImageSettings
from serve.imaging import dicom
from serve.imaging.errors import ImageRefused
from serve.imaging.normalise import Encoded
from serve.imaging.pipeline import convert
from serve.imaging.series import Slice
from serve.imaging.volume_headers import frame_slice

SOP_INSTANCE_UID = "00080018"


@dataclass(frozen=True)
class InstanceHeader:
    instance: str  # SOP Instance UID: what WADO-RS retrieves it by (never shown or logged)
    frames: int
    slices: list[Slice]  # one per frame, `source` the instance's index in the metadata


def metadata_headers(bodies: list[bytes], settings: ImageSettings) -> list[InstanceHeader]:
    """Every instance of one or more metadata answers, in the order given."""
    try:
        items = [item for body in bodies for item in orjson.loads(body)]
    except (orjson.JSONDecodeError, TypeError):
        raise ImageRefused("dicomweb_bad_response", "the series metadata is not DICOM JSON.") from None
    return [instance_header(k, item, settings) for k, item in enumerate(items)]


def instance_header(index: int, item: Any, settings: ImageSettings) -> InstanceHeader:
    try:
        ds = Dataset.from_json(item, bulk_data_uri_handler=lambda *_: b"")
        instance = str(ds.SOPInstanceUID)
        frames = int(ds.get("NumberOfFrames") or 1)
        if frames > settings.max_frames:
            raise ImageRefused(
                "too_many_frames",
                f"an object has {frames} frames; this gateway takes at most {settings.max_frames}.",
            )
        return InstanceHeader(instance, frames, [frame_slice(ds, index, f, frames) for f in range(frames)])
    except ImageRefused:
        raise
    except Exception as exc:  # a hostile or broken server's JSON raises many types
        raise ImageRefused(
            "dicomweb_bad_response", f"an instance's metadata cannot be read ({type(exc).__name__})."
        ) from None


def decode_object(data: bytes, settings: ImageSettings) -> Encoded:
    """A retrieved Part 10 object (CR, DX, ...) as the one image the engine is sent."""
    try:
        encoded = convert(dicom.DICOM_MEDIA, data, None, settings)
    except MemoryError:
        raise ImageRefused(
            "image_too_large",
            f"decoding the image needs more than an image worker's {settings.worker_memory_mb} MiB.",
        ) from None
    assert encoded is not None  # DICOM is always re-encoded: the engine cannot read it
    return encoded


__all__ = ["InstanceHeader", "decode_object", "metadata_headers"]
