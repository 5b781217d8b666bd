"""Phase 1 of a volume, in an image worker: each object's header (no pixels) as the slices it holds, read from the
first bytes of its data URL when they reach Pixel Data; a multi-frame object is read whole, to find its frames."""

from __future__ import annotations

import binascii
import io
from dataclasses import dataclass
from typing import Any

import pybase64
from pydicom import dcmread
from pydicom.tag import Tag
from pydicom.uid import UID

from serve.config import ImageSettings
from serve.imaging import dicom, inflate
from serve.imaging.errors import ImageRefused
from serve.imaging.frame_ranges import PixelLayout, frame_ranges
from serve.imaging.series import Slice

# Enough for the header of nearly every single-frame CT or MR object (vendor private blocks included); the rest
# of the object stays in the gateway until its slice is rendered. Base64 characters, a multiple of 4.
PREFIX_CHARS = 32 * 1024
PIXEL_TAGS = (b"\xe0\x7f\x10\x00", b"\x7f\xe0\x00\x10")  # (7FE0,0010) little and big endian
HEADER_KEYWORDS = [
    *dicom.PIXEL_KEYWORDS,
    *("Modality", "SOPClassUID", "SeriesInstanceUID", "InstanceNumber"),
    *("ImagePositionPatient", "ImageOrientationPatient"),
    *("SharedFunctionalGroupsSequence", "PerFrameFunctionalGroupsSequence"),
]
# As tags, once: pydicom would convert each keyword on every read (0.24 -> 0.16 ms a header, measured).
HEADER_TAGS = [Tag(keyword) for keyword in HEADER_KEYWORDS]


@dataclass(frozen=True)
class ObjectHeader:
    slices: list[Slice]
    layout: PixelLayout | None = None  # multi-frame objects: each frame is rendered from its own bytes


def read_headers(
    items: list[tuple[int, str, int, bool]], settings: ImageSettings
) -> list[ObjectHeader | ImageRefused | None]:
    """(source index, text, where its base64 starts, whether it is the whole object) for each object. None asks
    for the whole object (its header did not end within the prefix, or it holds several frames); a refusal names
    its object."""
    return [attempt(source, text[offset:], whole, settings) for source, text, offset, whole in items]


def attempt(
    source: int, text: str, whole: bool, settings: ImageSettings
) -> ObjectHeader | ImageRefused | None:
    try:
        return read_one(source, text, whole, settings)
    except ImageRefused as refusal:
        return refusal
    except MemoryError:
        return ImageRefused(
            "image_too_large",
            f"reading the object needs more than an image worker's {settings.worker_memory_mb} MiB.",
        )
    except Exception as exc:  # pydicom converts header values lazily: hostile bytes raise many types
        return ImageRefused("invalid_dicom", f"the DICOM header cannot be read ({type(exc).__name__}).")


def read_one(source: int, text: str, whole: bool, settings: ImageSettings) -> ObjectHeader | None:
    try:
        data = pybase64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ImageRefused("invalid_base64", "the DICOM data is not valid base64.") from None
    if whole:
        data = inflate.undeflated(data, settings)
    ds, at = parse(data, whole)
    if ds is None:
        return None
    frames = dicom.check(ds, settings)
    if frames > 1 and not whole:
        return None
    slices = [frame_slice(ds, source, frame, frames) for frame in range(frames)]
    if frames > 1:
        return ObjectHeader(slices, frame_ranges(ds, data, at, frames))
    if not whole and is_plain(
        ds
    ):  # phase 2 then decodes the pixel bytes alone: no second parse of the header
        return ObjectHeader(slices, frame_ranges(ds, data, at, 1, prefix=True))
    return ObjectHeader(slices)


def is_plain(ds: Any) -> bool:
    """Uncompressed little-endian pixels that the header's own attributes fully describe (no Modality LUT): a
    fixed run of bytes at a known place. Anything else is decoded from the whole object, as pydicom reads it."""
    uid = UID(ds.file_meta.TransferSyntaxUID)
    return (
        uid.is_little_endian
        and not uid.is_encapsulated
        and not uid.is_deflated
        and not ds.get("ModalityLUTSequence")
    )


def parse(data: bytes, whole: bool) -> tuple[Any, int]:
    """The header up to Pixel Data and where Pixel Data starts; (None, 0) when a prefix ends first."""
    fp = io.BytesIO(data)
    try:
        ds = dcmread(fp, stop_before_pixels=True, specific_tags=HEADER_TAGS)
    except Exception as exc:  # a prefix cut inside an element, or hostile bytes: the whole object decides
        if not whole:
            return None, 0
        raise ImageRefused(
            "invalid_dicom",
            f"the data is not a readable DICOM Part 10 file ({type(exc).__name__}; the 128-byte preamble "
            "and 'DICM' are required).",
        ) from None
    at = fp.tell()
    if data[at : at + 4] in PIXEL_TAGS:
        return ds, at
    if not whole:
        return None, 0
    raise ImageRefused("dicom_no_pixel_data", "the DICOM object has no Pixel Data (7FE0,0010) to show.")


def frame_slice(ds: Any, source: int, frame: int, frames: int) -> Slice:
    groups = frame_groups(ds, frame)
    position = vector(pick(groups, "PlanePositionSequence", "ImagePositionPatient", ds), 3)
    orientation = vector(pick(groups, "PlaneOrientationSequence", "ImageOrientationPatient", ds), 6)
    slope = number(pick(groups, "PixelValueTransformationSequence", "RescaleSlope", ds), 1.0)
    intercept = number(pick(groups, "PixelValueTransformationSequence", "RescaleIntercept", ds), 0.0)
    # Frames without positions keep their stored order; an object's Instance Number orders single-frame objects.
    instance = frame if frames > 1 else integer(ds.get("InstanceNumber"))
    return Slice(
        source=source,
        frame=frame,
        modality=modality(ds),
        series=str(ds.get("SeriesInstanceUID") or ""),
        rows=int(ds.Rows),
        columns=int(ds.Columns),
        position=position,  # type: ignore[arg-type]  # vector(..., 3) has three
        orientation=orientation,
        instance=instance,
        slope=slope,
        intercept=intercept,
    )


def frame_groups(ds: Any, frame: int) -> list[Any]:
    """An enhanced object's functional groups for one frame, its own before the shared ones (PS3.3 C.7.6.16)."""
    groups = []
    per_frame = ds.get("PerFrameFunctionalGroupsSequence")
    if per_frame is not None and frame < len(per_frame):
        groups.append(per_frame[frame])
    shared = ds.get("SharedFunctionalGroupsSequence")
    if shared:
        groups.append(shared[0])
    return groups


def pick(groups: list[Any], macro: str, keyword: str, ds: Any) -> Any:
    for group in groups:
        items = group.get(macro)
        if items and keyword in items[0]:
            return items[0].get(keyword)
    return ds.get(keyword)


def vector(value: Any, size: int) -> tuple[float, ...] | None:
    try:
        numbers = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        return None
    return numbers if len(numbers) == size else None


def integer(value: Any) -> int | None:
    try:
        return int(value) if value is not None and value != "" else None
    except (TypeError, ValueError):
        return None


def number(value: Any, default: float) -> float:
    try:
        return float(value) if value is not None and value != "" else default
    except (TypeError, ValueError):
        raise ImageRefused("invalid_dicom", "Rescale Slope or Intercept is not a number.") from None


def modality(ds: Any) -> str:
    """Modality (0008,0060), else the one the SOP class implies (CT and MR image storage, enhanced or not)."""
    given = str(ds.get("Modality") or "").strip().upper()
    if given:
        return given
    sop = ds.get("SOPClassUID") or ds.file_meta.get("MediaStorageSOPClassUID")
    name = UID(str(sop)).name if sop else ""
    return "CT" if "CT Image" in name else "MR" if "MR Image" in name else ""
