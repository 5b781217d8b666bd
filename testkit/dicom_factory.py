"""DICOM Part 10 objects and 16-bit radiographs written locally with pydicom and numpy, for tests and benchmarks."""

from __future__ import annotations

import base64
import io
from typing import Any

import numpy as np
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRLittleEndian,
    JPEGBaseline8Bit,
    SecondaryCaptureImageStorage,
    generate_uid,
)


def radiograph16(size: int = 2048, seed: int = 0, bits: int = 12) -> np.ndarray:
    """A size x size chest-film-like image in `bits` of a uint16: soft tissue, lungs, ribs, spine, a lead
    marker with sharp edges, and detector noise (a noiseless image would compress to nothing)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0 : 1 : size * 1j, 0 : 1 : size * 1j].astype(np.float32)
    body = np.exp(-((((x - 0.5) / 0.42) ** 2 + ((y - 0.55) / 0.48) ** 2) ** 3))
    lungs = _blob(x, y, 0.32, 0.45) + _blob(x, y, 0.68, 0.45)
    ribs = sum(np.exp(-(((y - 0.25 - 0.06 * k - 0.15 * (x - 0.5) ** 2) / 0.006) ** 2)) for k in range(9))
    spine = np.exp(-(((x - 0.5) / 0.035) ** 2)) * (y > 0.1)
    img = 0.15 + 0.58 * body - 0.37 * lungs + 0.17 * ribs * (lungs > 0.2) + 0.22 * spine
    img += rng.normal(0.0, 0.006, img.shape).astype(np.float32)
    top = 2**bits - 1
    img[int(size * 0.1) : int(size * 0.12), int(size * 0.8) : int(size * 0.85)] = 0.98
    return (np.clip(img, 0.0, 1.0) * top).astype(np.uint16)


def _blob(x: np.ndarray, y: np.ndarray, cx: float, cy: float) -> np.ndarray:
    return np.exp(-((((x - cx) / 0.13) ** 2 + ((y - cy) / 0.25) ** 2) ** 2))


def png16(pixels: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(pixels.astype(np.uint16)).save(buf, format="PNG")
    return buf.getvalue()


def dicom(
    pixels: np.ndarray,
    *,
    photometric: str = "MONOCHROME2",
    bits_stored: int | None = None,
    syntax: str = ExplicitVRLittleEndian,
    patient_name: str = "Anonymous^Patient",
    patient_id: str = "ANON-0",
    **attributes: Any,
) -> bytes:
    """A Secondary Capture object holding `pixels` ((rows, cols), (frames, rows, cols) or (..., 3) for RGB);
    `attributes` are set on the dataset by keyword (WindowCenter=..., RescaleSlope=..., VOILUTSequence=...)."""
    ds = _base(patient_name, patient_id)
    ds.set_pixel_data(pixels, photometric, bits_stored or pixels.dtype.itemsize * 8)
    for keyword, value in attributes.items():
        setattr(ds, keyword, value)
    if syntax == JPEGBaseline8Bit:
        _as_baseline_jpeg(ds, pixels)
    elif syntax == DeflatedExplicitVRLittleEndian:  # pydicom deflates the data set as it writes it
        ds.file_meta.TransferSyntaxUID = syntax
    elif syntax != ExplicitVRLittleEndian:
        ds.compress(syntax)
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def _base(patient_name: str, patient_id: str) -> Dataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.PatientName, ds.PatientID = patient_name, patient_id
    ds.PatientBirthDate, ds.InstitutionName = "19700101", "Synthetic General Hospital"
    ds.Modality, ds.StudyInstanceUID, ds.SeriesInstanceUID = "OT", generate_uid(), generate_uid()
    return ds


def _as_baseline_jpeg(ds: Dataset, pixels: np.ndarray) -> None:
    """pydicom has no JPEG encoder: Pillow writes the frames, pydicom encapsulates them."""
    frames = pixels if pixels.ndim == 3 and ds.SamplesPerPixel == 1 else pixels[None]
    encoded = []
    for frame in frames:
        buf = io.BytesIO()
        Image.fromarray(frame.astype(np.uint8)).save(buf, format="JPEG", quality=95)
        encoded.append(buf.getvalue())
    ds.PixelData = encapsulate(encoded)
    ds["PixelData"].VR = "OB"
    ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
    if ds.SamplesPerPixel == 3:
        ds.PhotometricInterpretation = "YBR_FULL_422"


def data_url(data: bytes, media: str = "application/dicom") -> str:
    return f"data:{media};base64,{base64.b64encode(data).decode()}"
