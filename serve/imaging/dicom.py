"""DICOM Part 10 objects to 8-bit pixels: header checks, one frame decoded, modality and VOI LUTs, MONOCHROME1.

Only the image-pixel attributes are parsed (`specific_tags`): patient and study attributes are never read into
Python objects, so they cannot reach a log line, an error message or the engine. Only pixels go on.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import numpy as np
from PIL import Image
from pydicom import dcmread
from pydicom.pixels import apply_color_lut, apply_modality_lut, apply_voi, get_decoder, pixel_array

from serve.config import ImageSettings
from serve.imaging import inflate, window
from serve.imaging.errors import ImageRefused
from serve.imaging.frames import check_frame

DICOM_MEDIA = "application/dicom"
MONOCHROME = ("MONOCHROME1", "MONOCHROME2")
# pydicom converts YBR_FULL/422 to RGB; the JPEG 2000 codecs decode YBR_ICT/RCT to RGB themselves.
COLOR = ("RGB", "YBR_FULL", "YBR_FULL_422", "YBR_ICT", "YBR_RCT")
PALETTE = "PALETTE COLOR"
PIXEL_KEYWORDS = [
    *("Rows", "Columns", "SamplesPerPixel", "PhotometricInterpretation", "PlanarConfiguration"),
    *("BitsAllocated", "BitsStored", "HighBit", "PixelRepresentation", "NumberOfFrames"),
    *("PixelData", "ExtendedOffsetTable", "ExtendedOffsetTableLengths"),
    *("RescaleSlope", "RescaleIntercept", "ModalityLUTSequence"),
    *("WindowCenter", "WindowWidth", "VOILUTFunction", "VOILUTSequence"),
    *(
        f"{c}PaletteColorLookupTable{part}"
        for c in ("Red", "Green", "Blue")
        for part in ("Descriptor", "Data")
    ),
    *(f"Segmented{c}PaletteColorLookupTableData" for c in ("Red", "Green", "Blue")),
]


def decode(data: bytes, frame: int | None, settings: ImageSettings) -> Image.Image:
    """One frame of a DICOM object as an 8-bit 'L' or 'RGB' image; refusals name the problem."""
    ds = read(inflate.undeflated(data, settings))
    try:
        count = check(ds, settings)
        index = choose_frame(count, frame)
        check_frame(ds, index, count, settings)
        return Image.fromarray(to_8bit(ds, pixel_array(ds, index=index)))
    except (ImageRefused, MemoryError, KeyboardInterrupt, SystemExit):  # MemoryError: the worker's cap
        raise
    # Untrusted bytes through pydicom's lazy value parsing and third-party codecs: any failure is a bad object,
    # including a Rust decoder's panic (pylibjpeg-rle raises pyo3's PanicException, a BaseException).
    except BaseException as exc:
        raise ImageRefused(
            "invalid_dicom",
            f"the DICOM image attributes or pixel data cannot be read "
            f"({type(exc).__name__}: truncated or corrupt?)",
        ) from None


def read(data: bytes) -> Any:
    try:
        ds = dcmread(io.BytesIO(data), specific_tags=PIXEL_KEYWORDS)
    except Exception as exc:  # pydicom raises many types on hostile input; the type name is enough
        raise ImageRefused(
            "invalid_dicom",
            f"the data is not a readable DICOM Part 10 file "
            f"({type(exc).__name__}; the 128-byte preamble and 'DICM' are required).",
        ) from None
    if "PixelData" not in ds:
        raise ImageRefused(
            "dicom_no_pixel_data",
            "the DICOM object has no Pixel Data (7FE0,0010) to show (or the file ends before it).",
        )
    return ds


def check(ds: Any, settings: ImageSettings) -> int:
    """The number of frames, once the transfer syntax, geometry and photometric interpretation are usable."""
    check_transfer_syntax(ds)
    rows, cols = int(ds.get("Rows") or 0), int(ds.get("Columns") or 0)
    if rows < 1 or cols < 1 or max(rows, cols) > settings.max_side or rows * cols > settings.max_pixels:
        raise ImageRefused(
            "image_dimensions",
            f"DICOM image dimensions {cols}x{rows} exceed this gateway's "
            f"limits ({settings.max_side} px a side, {settings.max_pixels} pixels).",
        )
    frames = int(ds.get("NumberOfFrames") or 1)
    if frames > settings.max_frames:
        raise ImageRefused(
            "too_many_frames",
            f"the DICOM object has {frames} frames; this gateway takes at most {settings.max_frames}.",
        )
    photometric = str(ds.get("PhotometricInterpretation", ""))
    if photometric not in (*MONOCHROME, *COLOR, PALETTE):
        raise ImageRefused(
            "unsupported_photometric_interpretation",
            f"photometric interpretation "
            f"{photometric!r} is not supported ({', '.join((*MONOCHROME, 'RGB', 'YBR_*', PALETTE))}).",
        )
    return frames


def check_transfer_syntax(ds: Any) -> None:
    uid = ds.file_meta.get("TransferSyntaxUID")
    if uid is None:
        raise ImageRefused("invalid_dicom", "the DICOM file meta has no Transfer Syntax UID (0002,0010).")
    try:
        usable = get_decoder(uid).is_available
    except NotImplementedError:
        usable = False
    if not usable:
        raise ImageRefused(
            "unsupported_transfer_syntax",
            f"the DICOM transfer syntax {uid.name} ({uid}) is "
            "not supported; send it uncompressed, RLE, JPEG, JPEG-LS or JPEG 2000.",
        )


def choose_frame(count: int, requested: int | None) -> int:
    """The requested frame, else the middle one: in a cine or a stack the anatomy of interest is usually
    central, while the first frames of an angiography run are often the pre-contrast mask."""
    if requested is None:
        return count // 2
    if requested >= count:
        raise ImageRefused(
            "invalid_frame",
            f"frame {requested} was asked for; the DICOM object has {count} frame(s), numbered from 0.",
        )
    return requested


def to_8bit(ds: Any, pixels: np.ndarray) -> np.ndarray:
    photometric = str(ds.PhotometricInterpretation)
    if photometric in MONOCHROME:
        gray = voi(ds, modality(ds, pixels))
        return 255 - gray if photometric == "MONOCHROME1" else gray
    if photometric == PALETTE:
        pixels = apply_color_lut(pixels, ds)[..., :3]
        return scale_bits(pixels, 16 if pixels.dtype == np.uint16 else 8)
    return scale_bits(pixels, int(ds.get("BitsStored") or ds.BitsAllocated))


def modality(ds: Any, pixels: np.ndarray) -> np.ndarray:
    """Stored values to modality values (e.g. Hounsfield units): the Modality LUT, else slope/intercept."""
    if ds.get("ModalityLUTSequence"):
        return apply_modality_lut(pixels, ds)
    slope, intercept = float(ds.get("RescaleSlope") or 1.0), float(ds.get("RescaleIntercept") or 0.0)
    if slope == 1.0 and intercept == 0.0:
        return pixels
    return pixels.astype(np.float32) * slope + intercept


def voi(ds: Any, values: np.ndarray) -> np.ndarray:
    """The object's first VOI LUT, else its first window, else the robust window; 8-bit stored values without
    any of these are display values already and go on as they are."""
    if ds.get("VOILUTSequence"):
        return voi_lut(ds, values)
    center, width = first(ds.get("WindowCenter")), first(ds.get("WindowWidth"))
    if center is not None and width is not None and width > 0:
        return window.window(values, center, width, str(ds.get("VOILUTFunction") or "LINEAR"))
    bits = int(ds.get("BitsStored") or ds.BitsAllocated)
    if bits <= 8 and np.issubdtype(values.dtype, np.integer):
        return scale_bits(values, bits)
    return window.robust(values)


def voi_lut(ds: Any, values: np.ndarray) -> np.ndarray:
    """A VOI LUT's output spans its own entries' range (the descriptor's nominal bit depth is often wider)."""
    entries, first_mapped = ds.VOILUTSequence[0].LUTDescriptor[:2]
    table = apply_voi(np.arange(first_mapped, first_mapped + (entries or 2**16)), ds)
    mapped = apply_voi(np.rint(values).astype(np.int64), ds)
    return window.stretch(mapped, float(table.min()), float(table.max()))


def first(value: Any) -> float | None:
    """Window attributes may hold several values (alternative views): the first is the default view."""
    if isinstance(value, Sequence) and not isinstance(value, str):
        value = value[0] if len(value) else None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def scale_bits(pixels: np.ndarray, bits: int) -> np.ndarray:
    if pixels.dtype == np.uint8 and bits <= 8:
        return pixels
    return window.stretch(pixels, 0.0, float(2**bits - 1))
