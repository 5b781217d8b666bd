"""Deflated DICOM (1.2.840.10008.1.2.1.99) inflated in bounded steps: pydicom would inflate it whole before any
check (1 MB became 1.68 GB). The inflated dataset goes back to pydicom as plain explicit VR little endian."""

from __future__ import annotations

import io
import zlib

from pydicom.filebase import DicomBytesIO
from pydicom.filereader import _read_file_meta_info, read_preamble
from pydicom.filewriter import write_file_meta_info
from pydicom.uid import DeflatedExplicitVRLittleEndian, ExplicitVRLittleEndian

from serve.config import ImageSettings
from serve.imaging.errors import ImageRefused

CHUNK = 1 << 20


def inflate_limit(settings: ImageSettings) -> int:
    """The largest frame this gateway decodes (max_pixels of 8-bit RGB, or of 16-bit grey with room to spare)
    plus 1 MiB of other attributes: a deflated object is one frame's pixels and its header, in practice."""
    return 3 * settings.max_pixels + (1 << 20)


def undeflated(data: bytes, settings: ImageSettings) -> bytes:
    """`data` itself, or for a deflated object the same object re-framed as explicit VR little endian."""
    fp = io.BytesIO(data)
    try:
        preamble = read_preamble(fp, False)
        # pydicom's own file meta reader (no public form takes a buffer): the meta group is never deflated.
        meta = _read_file_meta_info(fp)
        deflated = meta.get("TransferSyntaxUID") == DeflatedExplicitVRLittleEndian
    except Exception:  # dcmread then refuses it with its own message
        return data
    if not deflated:
        return data
    body = bounded_inflate(data[fp.tell() :], inflate_limit(settings))
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    out = DicomBytesIO()
    out.write((preamble or b"\0" * 128) + b"DICM")
    write_file_meta_info(out, meta, enforce_standard=False)
    out.write(body)
    return out.getvalue()


def bounded_inflate(data: bytes, limit: int, chunk: int = CHUNK) -> bytes:
    """Raw deflate (PS3.5 A.5) inflated `chunk` bytes at a time; refused as soon as the output passes `limit`."""
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    out = bytearray()
    pending = data
    while True:
        try:
            piece = inflater.decompress(pending, chunk)
        except zlib.error:
            raise ImageRefused("invalid_dicom", "the deflated DICOM data set cannot be inflated.") from None
        out += piece
        if len(out) > limit:
            raise ImageRefused(
                "image_too_large",
                f"the deflated DICOM data set inflates past {limit} bytes, this gateway's limit.",
            )
        pending = inflater.unconsumed_tail
        if inflater.eof or (not pending and not piece):
            return bytes(out)
