"""Hostile DICOM objects for tests and benchmarks: compressed frames that declare more pixels than Rows and
Columns, and a deflated data set that inflates far past its size. Small on the wire by construction."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
from pydicom import dcmread
from pydicom.encaps import encapsulate, get_frame
from pydicom.uid import DeflatedExplicitVRLittleEndian, JPEG2000Lossless

from testkit.dicom_factory import dicom


def with_frame(data: bytes, frame: bytes, syntax: str | None = None) -> bytes:
    ds = dcmread(io.BytesIO(data))
    ds.PixelData = encapsulate([frame])
    if syntax is not None:
        ds.file_meta.TransferSyntaxUID = syntax
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def first_frame(data: bytes) -> bytes:
    return get_frame(dcmread(io.BytesIO(data)).PixelData, 0, number_of_frames=1)


def j2k_bomb(side: int = 20000) -> bytes:
    """A real 64x64 JPEG 2000 object whose SIZ is rewritten to one side x side tile (64x64 is about the
    smallest openjpeg encodes)."""
    data = dicom(np.zeros((64, 64), np.uint16), bits_stored=12, syntax=JPEG2000Lossless)
    stream = bytearray(first_frame(data))
    start = stream.index(b"\xff\x51")  # SIZ: marker, Lsiz, Rsiz, then Xsiz and Ysiz
    stream[start + 6 : start + 14] = struct.pack(">II", side, side)
    # One tile of that size too: a decoder allocates a tile whole.
    stream[start + 22 : start + 30] = struct.pack(">II", side, side)
    return with_frame(data, bytes(stream))


def deflate_bomb(inflated_bytes: int = 1 << 30) -> bytes:
    """A deflated 1x1 object with a private OB element of `inflated_bytes` zeros ahead of its pixels."""
    plain = dicom(np.zeros((1, 1), np.uint8), syntax=DeflatedExplicitVRLittleEndian)
    head = _meta_part(plain)
    dataset = zlib.decompress(plain[len(head) :], -zlib.MAX_WBITS)
    packer = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    private = struct.pack("<HH2sH", 0x0009, 0x0010, b"LO", 4) + b"BOMB"  # private creator (0009,0010)
    element = struct.pack("<HH2sHI", 0x0009, 0x1000, b"OB", 0, inflated_bytes)
    out = [head, packer.compress(_before_group(dataset, 0x0009) + private + element)]
    zeros = bytes(1 << 24)
    for _ in range(inflated_bytes >> 24):
        out.append(packer.compress(zeros))
    out.append(packer.compress(bytes(inflated_bytes & ((1 << 24) - 1))))
    out.append(packer.compress(_from_group(dataset, 0x0009)) + packer.flush())
    return b"".join(out)


def _meta_part(data: bytes) -> bytes:
    (length,) = struct.unpack_from("<I", data, 140)  # (0002,0000) group length, explicit VR UL at 132
    return data[: 144 + length]


def _group_offset(dataset: bytes, group: int) -> int:
    """Offset of the first element of a group at or after `group` (explicit VR little endian, top level)."""
    pos = 0
    while pos < len(dataset):
        tag_group, _, vr = struct.unpack_from("<HH2s", dataset, pos)
        if tag_group >= group:
            return pos
        if vr in (b"OB", b"OW", b"OF", b"SQ", b"UT", b"UN", b"UC", b"UR", b"OD", b"OL", b"OV"):
            pos += 12 + struct.unpack_from("<I", dataset, pos + 8)[0]
        else:
            pos += 8 + struct.unpack_from("<H", dataset, pos + 6)[0]
    return pos


def _before_group(dataset: bytes, group: int) -> bytes:
    return dataset[: _group_offset(dataset, group)]


def _from_group(dataset: bytes, group: int) -> bytes:
    return dataset[_group_offset(dataset, group) :]
