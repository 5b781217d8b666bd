"""Phase 2 of a volume, in an image worker: each slice's pixels through the CT or MR recipe, resized and encoded
as the model's image (a data URL, base64 included, so the gateway's event loop never encodes it). A job takes a
run of slices (a job costs ~0.5 ms of pickling and scheduling). For MR, a first pass reports each sampled slice's
value range: the recipe needs the series' extremes."""

from __future__ import annotations

import binascii
import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import pybase64
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.pixels import apply_modality_lut, get_decoder, pixel_array
from pydicom.uid import UID

from serve.config import ImageSettings
from serve.imaging import dicom, inflate, normalise, recipes, shared_bytes
from serve.imaging.errors import ImageRefused
from serve.imaging.frame_ranges import PixelLayout, fragments_of
from serve.imaging.frames import check_frame

T = TypeVar("T")


@dataclass(frozen=True)
class SliceTask:
    # Base64 of the whole object (a data URL, from `offset`) or of the bytes around one frame of a multi-frame
    # object; or the object's own bytes (a DICOMweb instance: nothing to decode).
    text: str | bytes
    modality: str  # "CT" or "MR"
    slope: float = 1.0  # a cut frame's rescale (a whole object's own header says its own)
    intercept: float = 0.0
    layout: PixelLayout | None = None  # set for a cut frame: how to decode its bytes on their own
    skip: int = 0  # bytes before the frame once `text` is decoded (a cut starts on a base64 boundary)
    length: int = 0
    mr_range: tuple[float, float] | None = None  # the series' (min, max), for the MR recipe
    offset: int = 0  # where the base64 begins in `text` (a whole data URL is sent as the request holds it)
    # Where to write the data URL instead of returning it: (shared file, start, room); see url_room.
    out: tuple[shared_bytes.Ref, int, int] | None = None


def render_all(tasks: list[SliceTask], settings: ImageSettings) -> list[bytes | int | ImageRefused]:
    """Each slice's data URL, or its refusal (the gateway names the slice's object)."""
    return [attempt(render, task, settings) for task in tasks]


def ranges_all(tasks: list[SliceTask], settings: ImageSettings) -> list[tuple[float, float] | ImageRefused]:
    return [attempt(value_range, task, settings) for task in tasks]


def attempt(
    fn: Callable[[SliceTask, ImageSettings], T], task: SliceTask, settings: ImageSettings
) -> T | ImageRefused:
    try:
        return fn(task, settings)
    except ImageRefused as refusal:
        return refusal


def url_room(rows: int, columns: int, size: int, fmt: str) -> int:
    """Room for a slice's data URL, known before it is made, so the gateway can give each slice its place in
    shared memory: a BMP's exact length (shrunk to the model size, 24-bit rows padded to 4 bytes after a 54-byte
    header); for JPEG, twice the RGB bytes (q100 4:4:4 of pure noise is ~1.2x them; room never written is never
    touched, the file is sparse). A JPEG that would not fit comes back through the pipe instead."""
    width, height = min(columns, size), min(rows, size)
    data = 54 + (width * 3 + 3) // 4 * 4 * height if fmt == "bmp" else 2 * width * height * 3 + 1024
    return len(f"data:image/{fmt};base64,") + 4 * -(-data // 3)


def render(task: SliceTask, settings: ImageSettings) -> bytes | int:
    """The slice as the data URL the engine is sent (ASCII bytes: the gateway splices them into the body), or,
    once written where `task.out` says, its length."""
    with refusals(settings):
        pixels, to_hu, table = stored(task, settings)
        if task.modality == "CT":
            rgbx = recipes.ct_rgbx(pixels, table, to_hu)
            rows, cols = pixels.shape
            img = Image.frombuffer("RGBX", (cols, rows), rgbx, "raw", "RGBX", 0, 1)  # encoded as it is
        else:
            low, high = task.mr_range or recipes.value_range(pixels)
            img = Image.fromarray(recipes.mr_gray(pixels, low, high))
        fmt = settings.volumes.slice_format
        if settings.normalize:
            encoded = normalise.normalise(img, settings, fmt)
        else:  # as the single-image path: normalisation off sends the full-size slice, losslessly
            encoded = normalise.encode(img, "bmp", 100) if fmt == "bmp" else normalise.lossless(img)
    if task.out is None:
        return encoded.data_url_bytes()
    pieces = encoded.data_url_pieces()
    ref, start, room = task.out
    length = sum(map(len, pieces))
    if length > room:
        return b"".join(pieces)
    shared_bytes.write(ref, start, *pieces)
    return length


def value_range(task: SliceTask, settings: ImageSettings) -> tuple[float, float]:
    with refusals(settings):
        return recipes.value_range(stored(task, settings)[0])


@contextmanager
def refusals(settings: ImageSettings) -> Iterator[None]:
    """Untrusted bytes through pydicom and third-party codecs: any failure is a bad object (as in dicom.decode),
    and running out of the worker's memory cap is an object too large."""
    try:
        yield
    except (ImageRefused, KeyboardInterrupt, SystemExit):
        raise
    except MemoryError:
        raise ImageRefused(
            "image_too_large",
            f"decoding the slice needs more than an image worker's {settings.worker_memory_mb} MiB.",
        ) from None
    except BaseException as exc:  # incl. a Rust decoder's panic (a BaseException), as in dicom.decode
        raise ImageRefused(
            "invalid_dicom",
            f"the DICOM pixel data cannot be read ({type(exc).__name__}: truncated or corrupt?)",
        ) from None


def stored(task: SliceTask, settings: ImageSettings) -> tuple[np.ndarray, recipes.ToHU, np.ndarray | None]:
    """The slice's stored values, its values-to-HU function and, where one applies, its CT lookup table."""
    if isinstance(task.text, bytes):
        data = task.text
    else:
        try:
            data = pybase64.b64decode(task.text[task.offset :] if task.offset else task.text, validate=True)
        except (binascii.Error, ValueError):
            raise ImageRefused("invalid_base64", "the DICOM data is not valid base64.") from None
    ds: Any = None
    if task.layout is not None and not task.layout.encapsulated:  # a plain frame: its bytes are its pixels
        pixels = native_frame(task.layout, data[task.skip : task.skip + task.length], settings)
    else:
        ds = frame_dataset(task, data) if task.layout else whole_object(data, settings)
        frames = dicom.check(ds, settings)
        check_frame(ds, 0, frames, settings)
        pixels = pixel_array(ds, index=0)
    if pixels.ndim != 2:
        raise ImageRefused("invalid_series", "a volume's slices must be single-sample (monochrome) images.")
    if ds is not None and ds.get("ModalityLUTSequence"):
        return pixels, lambda values: apply_modality_lut(values, ds), None
    slope, intercept = (task.slope, task.intercept) if task.layout else rescale_of(ds)
    to_hu = recipes.rescale(slope, intercept)
    usable = task.modality == "CT" and pixels.dtype.type in recipes.LUT_DTYPES
    return pixels, to_hu, ct_table(pixels.dtype.str, slope, intercept) if usable else None


def whole_object(data: bytes, settings: ImageSettings) -> Any:
    if len(data) > settings.max_image_bytes:
        raise ImageRefused(
            "image_too_large", f"a slice is {len(data)} bytes; the limit is {settings.max_image_bytes}."
        )
    return dicom.read(inflate.undeflated(data, settings))


class FrameHeader:
    """A frame's layout read as dicom.check reads a dataset (`get`, `file_meta`)."""

    def __init__(self, layout: PixelLayout) -> None:
        self.attributes = {**layout.attributes, "NumberOfFrames": 1}
        self.file_meta = {"TransferSyntaxUID": UID(layout.transfer_syntax)}

    def get(self, keyword: str, default: Any = None) -> Any:
        return self.attributes.get(keyword, default)


def native_frame(layout: PixelLayout, frame: bytes, settings: ImageSettings) -> np.ndarray:
    """A native (uncompressed) frame's pixels, by pydicom's decoder from the frame's bytes and its layout: building
    a Dataset around them first, for pixel_array, made this step 0.33 ms a slice instead of 0.14 (measured:
    BENCHMARKS.md, "CT and MR volumes", round 4); the checks and the decoder are the same."""
    header = FrameHeader(layout)
    dicom.check(header, settings)
    get = header.get
    options: dict[str, Any] = {
        "rows": int(get("Rows")),
        "columns": int(get("Columns")),
        "samples_per_pixel": int(get("SamplesPerPixel") or 1),
        "bits_allocated": int(get("BitsAllocated")),
        "bits_stored": int(get("BitsStored") or get("BitsAllocated")),
        "pixel_representation": int(get("PixelRepresentation") or 0),
        "photometric_interpretation": str(get("PhotometricInterpretation")),
        "number_of_frames": 1,
        "pixel_keyword": "PixelData",
    }
    if get("PlanarConfiguration") is not None:
        options["planar_configuration"] = int(get("PlanarConfiguration"))
    pixels, _ = get_decoder(header.file_meta["TransferSyntaxUID"]).as_array(frame, index=0, **options)
    return pixels


def frame_dataset(task: SliceTask, data: bytes) -> Dataset:
    """One compressed frame cut from a multi-frame object, as a single-frame dataset the usual checks and decoders
    take (its fragments, one item; native frames need no dataset: native_frame)."""
    layout = task.layout
    assert layout is not None
    frame = data[task.skip : task.skip + task.length]
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = UID(layout.transfer_syntax)
    for keyword, value in layout.attributes.items():
        setattr(ds, keyword, value)
    ds.NumberOfFrames = 1
    ds.add_new(0x7FE00010, "OB", encapsulate([b"".join(fragments_of(frame))]))
    return ds


def rescale_of(ds: Any) -> tuple[float, float]:
    slope, intercept = ds.get("RescaleSlope"), ds.get("RescaleIntercept")
    return (
        float(slope) if slope not in (None, "") else 1.0,
        float(intercept) if intercept not in (None, "") else 0.0,
    )


@functools.lru_cache(maxsize=8)
def ct_table(dtype: str, slope: float, intercept: float) -> np.ndarray:
    """One table per dtype, slope and intercept, kept in the worker: a series usually shares all three."""
    return recipes.ct_table(np.dtype(dtype), recipes.rescale(slope, intercept))
