"""The compressed frame about to be decoded, checked against the DICOM header and the gateway's limits first:
decoders allocate for the size the codestream declares, whatever Rows and Columns say."""

from __future__ import annotations

from typing import Any

from pydicom.encaps import get_frame
from pydicom.uid import (
    UID,
    JPEG2000TransferSyntaxes,
    JPEGLSTransferSyntaxes,
    JPEGTransferSyntaxes,
    RLELossless,
)

from serve.config import ImageSettings
from serve.imaging import codestream
from serve.imaging.errors import ImageRefused

JPEG_FAMILY = frozenset({*JPEGTransferSyntaxes, *JPEGLSTransferSyntaxes})  # SOFn, or SOF55 for JPEG-LS
J2K_FAMILY = frozenset(JPEG2000TransferSyntaxes)  # JPEG 2000 and HTJ2K: SIZ


def check_frame(ds: Any, index: int, frames: int, settings: ImageSettings) -> None:
    """Refuses a compressed frame whose own header disagrees with Rows, Columns and Samples per Pixel, or
    exceeds the limits; native (uncompressed) pixel data is sized by the header itself."""
    uid = UID(ds.file_meta.TransferSyntaxUID)
    if not uid.is_encapsulated:
        return
    data = frame_bytes(ds, index, frames)
    rows, cols, samples = int(ds.Rows), int(ds.Columns), int(ds.get("SamplesPerPixel") or 1)
    try:
        if uid == RLELossless:
            bytes_per_sample = (int(ds.BitsAllocated) + 7) // 8
            codestream.check_rle(data, samples * bytes_per_sample, rows, cols)
            return
        shape = declared_shape(uid, data)
    except (ValueError, IndexError) as exc:
        raise ImageRefused(
            "dicom_frame_mismatch",
            f"frame {index}'s compressed header does not match the DICOM header ({exc}).",
        ) from None
    check_shape(shape, (cols, rows, samples), index, settings)


def declared_shape(uid: UID, data: bytes) -> codestream.FrameShape:
    if uid in JPEG_FAMILY:
        return codestream.jpeg_shape(data)
    if uid in J2K_FAMILY:
        return codestream.j2k_shape(data)
    # Fail closed: a compressed syntax whose header this module cannot read is never handed to a decoder.
    raise ImageRefused(
        "unsupported_transfer_syntax",
        f"the DICOM transfer syntax {uid.name} ({uid}) is not supported; "
        "send it uncompressed, RLE, JPEG, JPEG-LS or JPEG 2000.",
    )


def check_shape(
    shape: codestream.FrameShape, expected: tuple[int, int, int], index: int, settings: ImageSettings
) -> None:
    width, height, components = shape
    if max(width, height) > settings.max_side or width * height > settings.max_pixels:
        raise ImageRefused(
            "image_dimensions",
            f"frame {index}'s compressed data declares {width}x{height} pixels, beyond this gateway's limits "
            f"({settings.max_side} px a side, {settings.max_pixels} pixels).",
        )
    if tuple(shape) != expected:
        cols, rows, samples = expected
        raise ImageRefused(
            "dicom_frame_mismatch",
            f"frame {index}'s compressed data is {width}x{height} with {components} component(s); the DICOM "
            f"header says {cols}x{rows} with {samples} sample(s) per pixel.",
        )


def frame_bytes(ds: Any, index: int, frames: int) -> bytes:
    """The encapsulated frame, found by pydicom's own offset tables (basic or extended)."""
    table, lengths = ds.get("ExtendedOffsetTable"), ds.get("ExtendedOffsetTableLengths")
    extended = (table, lengths) if table is not None and lengths is not None else None
    try:
        return get_frame(ds.PixelData, index, number_of_frames=frames, extended_offsets=extended)
    except Exception as exc:  # hostile fragments and offset tables raise many types; the name is enough
        raise ImageRefused(
            "invalid_dicom",
            f"frame {index} cannot be found in the encapsulated pixel data ({type(exc).__name__}).",
        ) from None
