"""What a compressed frame says about itself before any decoder sees it: width, height and components read from
its codestream header (JPEG SOFn, JPEG-LS SOF55, JPEG 2000 SIZ, raw or JP2-boxed) and the RLE segment table.

Decoders allocate for these numbers, not for the DICOM header's Rows/Columns: a 2.6 kB frame can declare
20000x20000. Pure functions over bytes; a header that cannot be read is a `ValueError`.
"""

from __future__ import annotations

import itertools
import struct
from typing import NamedTuple

# Start-of-frame markers carrying P, Y, X, Nf: baseline, extended, progressive, lossless (Huffman and
# arithmetic), and JPEG-LS's SOF55. 0xC4 (DHT), 0xC8 (JPG) and 0xCC (DAC) share the range but are not frames.
SOF_MARKERS = frozenset({*range(0xC0, 0xD0), 0xF7}) - {0xC4, 0xC8, 0xCC}
SOS, EOI = 0xDA, 0xD9
STANDALONE = frozenset({0x01, *range(0xD0, 0xD8)})  # TEM, RSTn: no length field
J2K_SOC_SIZ = b"\xff\x4f\xff\x51"
JP2_SIGNATURE = b"\x00\x00\x00\x0cjP  \r\n\x87\n"
RLE_HEADER = 64


class FrameShape(NamedTuple):
    width: int
    height: int
    components: int


def jpeg_shape(frame: bytes) -> FrameShape:
    """The first SOFn (JPEG) or SOF55 (JPEG-LS) of a frame: the size its decoder will allocate for."""
    if frame[:2] != b"\xff\xd8":
        raise ValueError("no JPEG start-of-image marker")
    pos = 2
    while pos + 4 <= len(frame):
        if frame[pos] != 0xFF:
            raise ValueError(f"no JPEG marker at byte {pos}")
        marker = frame[pos + 1]
        if marker == 0xFF:  # fill byte before a marker
            pos += 1
            continue
        if marker in STANDALONE:
            pos += 2
            continue
        if marker in (SOS, EOI):
            break
        (length,) = struct.unpack_from(">H", frame, pos + 2)
        if marker in SOF_MARKERS:
            if length < 8 or pos + 10 > len(frame):
                raise ValueError("a truncated JPEG frame header")
            height, width, components = struct.unpack_from(">HHB", frame, pos + 5)
            return FrameShape(width, height, components)
        pos += 2 + length
    raise ValueError("no JPEG frame header before the scan data")


def j2k_shape(frame: bytes) -> FrameShape:
    """The SIZ segment of a JPEG 2000 (or HTJ2K) codestream, bare or inside a JP2 file's 'jp2c' box."""
    if frame.startswith(JP2_SIGNATURE):
        frame = jp2_codestream(frame)
    if not frame.startswith(J2K_SOC_SIZ) or len(frame) < 42:
        raise ValueError("no JPEG 2000 SOC and SIZ markers")
    # SIZ after its marker: Lsiz, Rsiz, Xsiz, Ysiz, XOsiz, YOsiz, XTsiz, YTsiz, XTOsiz, YTOsiz, Csiz.
    x, y, x0, y0 = struct.unpack_from(">IIII", frame, 8)
    (components,) = struct.unpack_from(">H", frame, 40)
    if x <= x0 or y <= y0:
        raise ValueError("a JPEG 2000 image area of no pixels")
    return FrameShape(x - x0, y - y0, components)


def jp2_codestream(data: bytes) -> bytes:
    """The contents of the top-level 'jp2c' box (ISO/IEC 15444-1 annex I)."""
    pos = 0
    while pos + 8 <= len(data):
        length, kind = struct.unpack_from(">I4s", data, pos)
        header = 8
        if length == 1:  # XLBox: a 64-bit length follows the type
            if pos + 16 > len(data):
                break
            (length,) = struct.unpack_from(">Q", data, pos + 8)
            header = 16
        elif length == 0:  # the last box runs to the end of the file
            length = len(data) - pos
        if length < header:
            raise ValueError("a JP2 box shorter than its own header")
        if kind == b"jp2c":
            return data[pos + header : pos + length]
        pos += length
    raise ValueError("no JP2 contiguous codestream box")


def check_rle(frame: bytes, segments: int, rows: int, columns: int) -> None:
    """A DICOM RLE frame (PS3.5 annex G): as many segments as samples x bytes per sample, offsets inside the
    frame and ascending, and no more encoded bytes than the segments could ever need (a run packs at most 128
    bytes in 2, a literal 1 in 1 + 1/128: any frame over segments x rows x columns x 2 is not this image)."""
    if len(frame) < RLE_HEADER:
        raise ValueError("a truncated RLE header")
    count, *offsets = struct.unpack_from("<16I", frame, 0)
    if count != segments:
        raise ValueError(f"{count} RLE segments where the header's samples and bits need {segments}")
    used = offsets[:count]
    if used[0] != RLE_HEADER or any(b <= a for a, b in itertools.pairwise(used)):
        raise ValueError("RLE segment offsets are not ascending from the end of the header")
    if used[-1] >= len(frame) or len(frame) > RLE_HEADER + 2 * segments * rows * columns + segments:
        raise ValueError("RLE segments that do not fit this frame")
