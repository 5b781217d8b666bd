"""Where each frame of a multi-frame object lies in its bytes, so that one slice job gets one frame's bytes (the
gateway cuts them from the data URL) rather than the whole object. Native frames are fixed-size runs; encapsulated
frames are item runs found by the fragment count or the basic or extended offset table."""

from __future__ import annotations

import itertools
import struct
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pydicom.uid import UID

from serve.imaging.errors import ImageRefused

ITEM, SEQUENCE_END = (0xFFFE, 0xE000), (0xFFFE, 0xE0DD)
UNDEFINED = 0xFFFFFFFF
MAX_FRAGMENTS_PER_FRAME = 64  # bounds the item walk over hostile bytes
LAYOUT_KEYWORDS = (
    *("Rows", "Columns", "SamplesPerPixel", "PhotometricInterpretation", "PlanarConfiguration"),
    *("BitsAllocated", "BitsStored", "HighBit", "PixelRepresentation"),
)


@dataclass(frozen=True)
class PixelLayout:
    transfer_syntax: str
    attributes: dict[str, Any]  # the image pixel attributes a frame needs to be decoded on its own
    encapsulated: bool
    ranges: list[tuple[int, int]] = field(default_factory=list)  # [start, end) of each frame in the object


def refused(message: str) -> ImageRefused:
    return ImageRefused(
        "invalid_dicom", f"the multi-frame pixel data cannot be split into frames ({message})."
    )


def frame_ranges(ds: Any, data: bytes, at: int, frames: int, *, prefix: bool = False) -> PixelLayout:
    """`at`: where the Pixel Data element starts in `data` (its tag). `prefix`: `data` is the object's first
    bytes only (native frames; a frame cut short is refused when it is decoded)."""
    uid = UID(ds.file_meta.TransferSyntaxUID)
    if not uid.is_little_endian:
        raise ImageRefused(
            "unsupported_transfer_syntax", "multi-frame objects in big endian are not supported as volumes."
        )
    attributes = {k: ds.get(k) for k in LAYOUT_KEYWORDS if ds.get(k) is not None}
    if uid.is_implicit_VR:
        (length,) = struct.unpack_from("<I", data, at + 4)
        start = at + 8
    else:
        (length,) = struct.unpack_from("<I", data, at + 8)
        start = at + 12
    if not uid.is_encapsulated:
        return PixelLayout(str(uid), attributes, False, native(ds, data, start, length, frames, prefix))
    if length != UNDEFINED:
        raise refused("encapsulated pixel data with a defined length")
    return PixelLayout(str(uid), attributes, True, encapsulated(ds, data, start, frames))


def native(
    ds: Any, data: bytes, start: int, length: int, frames: int, prefix: bool = False
) -> list[tuple[int, int]]:
    bits = int(ds.BitsAllocated)
    if bits % 8:
        raise refused(f"{bits} bits allocated")
    size = int(ds.Rows) * int(ds.Columns) * int(ds.get("SamplesPerPixel") or 1) * bits // 8
    if length < size * frames or (not prefix and start + size * frames > len(data)):
        raise refused("fewer pixel bytes than the frames need")
    return [(start + i * size, start + (i + 1) * size) for i in range(frames)]


def items(data: bytes, start: int, limit: int) -> list[tuple[int, int]]:
    """(item start, value end) of each item up to the sequence delimiter; the first is the basic offset table."""
    found: list[tuple[int, int]] = []
    pos = start
    while True:
        if pos + 8 > len(data) or len(found) > limit:
            raise refused("truncated, or more fragments than frames can use")
        group, element, length = struct.unpack_from("<HHI", data, pos)
        if (group, element) == SEQUENCE_END:
            return found
        if (group, element) != ITEM or length == UNDEFINED or pos + 8 + length > len(data):
            raise refused("a malformed item")
        found.append((pos, pos + 8 + length))
        pos += 8 + length


def encapsulated(ds: Any, data: bytes, start: int, frames: int) -> list[tuple[int, int]]:
    table, *fragments = items(data, start, MAX_FRAGMENTS_PER_FRAME * frames + 1)
    if len(fragments) == frames:
        return fragments
    offsets = offset_table(ds, data, table, frames)
    if not fragments or offsets is None:
        raise refused("several fragments per frame and no offset table")
    first = fragments[0][0]
    starts = {item_start - first: i for i, (item_start, _) in enumerate(fragments)}
    if any(offset not in starts for offset in offsets):
        raise refused("an offset table that points between fragments")
    bounds = [starts[offset] for offset in offsets] + [len(fragments)]
    if any(b <= a for a, b in itertools.pairwise(bounds)):
        raise refused("offsets that are not ascending")
    return [(fragments[a][0], fragments[b - 1][1]) for a, b in itertools.pairwise(bounds)]


def offset_table(ds: Any, data: bytes, table: tuple[int, int], frames: int) -> list[int] | None:
    """The extended offset table, else the basic one; None when neither has one offset per frame."""
    extended = ds.get("ExtendedOffsetTable")
    if extended is not None:
        offsets = np.frombuffer(bytes(extended), "<u8").tolist()
    else:
        offsets = np.frombuffer(data[table[0] + 8 : table[1]], "<u4").tolist()
    return offsets if len(offsets) == frames else None


def fragments_of(frame: bytes) -> list[bytes]:
    """The values of the items that make up one encapsulated frame (as cut by `encapsulated`)."""
    values = []
    for item_start, value_end in items(
        frame + struct.pack("<HHI", *SEQUENCE_END, 0), 0, MAX_FRAGMENTS_PER_FRAME
    ):
        values.append(frame[item_start + 8 : value_end])
    return values
