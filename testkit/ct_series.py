"""CT and MR series written locally with pydicom and numpy, for tests and benchmarks: a 512x512 int16 body phantom
(air, lung, fat, soft tissue, liver, bone in Hounsfield units, with noise), one object per slice in shuffled
order, optional gantry tilt or an oblique stack, and enhanced multi-frame objects holding a whole series."""

from __future__ import annotations

import io
import math
import random
from dataclasses import dataclass

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import (
    UID,
    CTImageStorage,
    EnhancedCTImageStorage,
    EnhancedMRImageStorage,
    ExplicitVRLittleEndian,
    MRImageStorage,
    RLELossless,
    generate_uid,
)

AIR, LUNG, FAT, SOFT, LIVER, BONE = -1000, -850, -100, 40, 60, 700  # HU
NOISE_HU = 12.0
SPACING_MM = 1.25


def flat_hu(k: int) -> float:
    """Slice k's one value in a flat CT series."""
    return -1000.0 + 16.0 * k


@dataclass(frozen=True)
class Series:
    objects: list[bytes]  # as sent: shuffled unless asked otherwise
    depth: list[float]  # each object's true position along the slice normal (mm), for checking the order


def phantom_hu(size: int, z: float, rng: np.random.Generator) -> np.ndarray:
    """One axial slice at z in [0, 1] (feet to head): body, fat ring, lungs that grow towards the head, a liver
    low down, spine and ribs, and quantum noise."""
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) / size - 0.5
    body = (x / 0.42) ** 2 + (y / 0.32) ** 2 < 1
    hu = np.full((size, size), AIR, np.float32)
    hu[body] = FAT
    hu[(x / 0.39) ** 2 + (y / 0.29) ** 2 < 1] = SOFT
    lung = 0.05 + 0.13 * z
    for cx in (-0.17, 0.17):
        hu[((x - cx) / lung) ** 2 + ((y + 0.02) / (lung * 1.3)) ** 2 < 1] = LUNG
    if z < 0.5:
        hu[((x + 0.12) / 0.16) ** 2 + ((y + 0.05) / 0.12) ** 2 < 1] = LIVER
    hu[(x / 0.05) ** 2 + ((y - 0.22) / 0.05) ** 2 < 1] = BONE
    ring = np.abs(np.hypot(x / 0.37, y / 0.27) - 1) < 0.02
    hu[ring & (np.cos(40 * np.arctan2(y, x)) > 0.6)] = BONE
    hu += rng.normal(0.0, NOISE_HU, hu.shape).astype(np.float32) * body
    return hu


def ct_series(
    count: int = 220,
    size: int = 512,
    *,
    seed: int = 0,
    shuffle: bool = True,
    tilt_deg: float = 0.0,
    oblique: bool = False,
    slope: float = 1.0,
    intercept: float = -1024.0,
    syntax: str = ExplicitVRLittleEndian,
    series_uid: str | None = None,
    flat: bool = False,
) -> Series:
    """`count` CT Image Storage objects of one series; stored = (HU - intercept) / slope as int16. `flat`: slice
    k is one value, flat_hu(k), so a test can tell the slices apart after windowing and JPEG."""
    rng = np.random.default_rng(seed)
    row, col = orientation(tilt_deg, oblique)
    normal = np.cross(row, col)
    series_uid = series_uid or generate_uid()
    objects, depth = [], []
    for k in range(count):
        hu = (
            np.full((size, size), flat_hu(k), np.float32)
            if flat
            else phantom_hu(size, k / max(count - 1, 1), rng)
        )
        stored = np.round((hu - intercept) / slope).astype(np.int16)
        # The table moves along z; a tilted gantry keeps the image plane tilted (positions then leave the normal).
        origin = np.array([-160.0, -160.0, 0.0]) + k * SPACING_MM * (
            np.array([0, 0, 1.0]) if tilt_deg else normal
        )
        ds = base(CTImageStorage, "CT", series_uid, syntax)
        ds.update(image(stored, slope, intercept))
        ds.ImagePositionPatient = [round(float(v), 4) for v in origin]
        ds.ImageOrientationPatient = [round(float(v), 6) for v in (*row, *col)]
        ds.InstanceNumber = k + 1
        objects.append(write(ds, syntax))
        depth.append(float(origin @ normal))
    order = list(range(count))
    if shuffle:
        random.Random(seed).shuffle(order)
    return Series([objects[i] for i in order], [depth[i] for i in order])


def mr_series(
    count: int = 40, size: int = 256, *, seed: int = 1, shuffle: bool = True, flat: bool = False
) -> Series:
    """MR Image Storage, uint16 signal (no rescale): the recipe normalises over the series. `flat`: slice k is
    the one value 100 + 10 k."""
    rng = np.random.default_rng(seed)
    series_uid = generate_uid()
    objects, depth = [], []
    for k in range(count):
        hu = phantom_hu(size, k / max(count - 1, 1), rng)
        signal = np.clip((hu + 1000) * 0.8 + 40 * k, 0, 4095).astype(np.uint16)
        if flat:
            signal = np.full((size, size), 100 + 10 * k, np.uint16)
        ds = base(MRImageStorage, "MR", series_uid, ExplicitVRLittleEndian)
        ds.update(image(signal, None, None))
        ds.ImagePositionPatient = [-120.0, -120.0, 4.0 * k]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.InstanceNumber = k + 1
        objects.append(write(ds, ExplicitVRLittleEndian))
        depth.append(4.0 * k)
    order = list(range(count))
    if shuffle:
        random.Random(seed).shuffle(order)
    return Series([objects[i] for i in order], [depth[i] for i in order])


def enhanced(
    frames: int = 40,
    size: int = 128,
    *,
    modality: str = "CT",
    seed: int = 2,
    syntax: str = ExplicitVRLittleEndian,
) -> tuple[bytes, list[float]]:
    """One Enhanced CT or MR Image Storage object holding a whole stack, its frames stored in shuffled order;
    per-frame Plane Position, shared orientation and (CT) Pixel Value Transformation. Returns the object and
    each stored frame's depth."""
    rng = np.random.default_rng(seed)
    order = list(range(frames))
    random.Random(seed).shuffle(order)
    slices = [phantom_hu(size, k / max(frames - 1, 1), rng) for k in order]
    stored = np.stack([np.round(hu + 1024).astype(np.int16) for hu in slices])
    if modality == "MR":
        stored = np.clip(stored, 0, 4095).astype(np.uint16)
    ds = base(
        EnhancedCTImageStorage if modality == "CT" else EnhancedMRImageStorage,
        modality,
        generate_uid(),
        syntax,
    )
    ds.update(image(stored, None, None))
    ds.NumberOfFrames = frames
    shared = Dataset()
    shared.PlaneOrientationSequence = Sequence([item(ImageOrientationPatient=[1, 0, 0, 0, 1, 0])])
    if modality == "CT":
        shared.PixelValueTransformationSequence = Sequence(
            [item(RescaleSlope=1, RescaleIntercept=-1024, RescaleType="HU")]
        )
    ds.SharedFunctionalGroupsSequence = Sequence([shared])
    per_frame = [Dataset() for _ in order]
    for group, k in zip(per_frame, order, strict=True):
        group.PlanePositionSequence = Sequence([item(ImagePositionPatient=[-80.0, -80.0, 2.0 * k])])
    ds.PerFrameFunctionalGroupsSequence = Sequence(per_frame)
    return write(ds, syntax), [2.0 * k for k in order]


def orientation(tilt_deg: float, oblique: bool) -> tuple[np.ndarray, np.ndarray]:
    if oblique:  # a double-oblique plane, as an MR or a reformat has
        a, b = math.radians(20), math.radians(15)
        row = np.array([math.cos(a), math.sin(a), 0.0])
        col = np.array([-math.sin(a) * math.cos(b), math.cos(a) * math.cos(b), math.sin(b)])
        return row, col
    t = math.radians(tilt_deg)
    return np.array([1.0, 0.0, 0.0]), np.array([0.0, math.cos(t), -math.sin(t)])


def item(**attributes: object) -> Dataset:
    ds = Dataset()
    for keyword, value in attributes.items():
        setattr(ds, keyword, value)
    return ds


def base(sop_class: str, modality: str, series_uid: str, syntax: str) -> Dataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = UID(syntax)
    ds = Dataset()
    ds.file_meta = meta
    ds.preamble = b"\0" * 128
    ds.SOPClassUID, ds.SOPInstanceUID = sop_class, meta.MediaStorageSOPInstanceUID
    ds.Modality = modality
    ds.PatientName, ds.PatientID = "Phantom^Synthetic", "SYNTH-0"
    ds.StudyInstanceUID, ds.SeriesInstanceUID = "1.2.826.0.1.3680043.8.498.1", series_uid
    ds.FrameOfReferenceUID = "1.2.826.0.1.3680043.8.498.2"
    ds.PixelSpacing = [0.7, 0.7]
    ds.SliceThickness = SPACING_MM
    return ds


def image(stored: np.ndarray, slope: float | None, intercept: float | None) -> Dataset:
    ds = Dataset()
    ds.Rows, ds.Columns = stored.shape[-2:]
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 16, 15
    ds.PixelRepresentation = 1 if stored.dtype == np.int16 else 0
    if slope is not None and intercept is not None:
        ds.RescaleSlope, ds.RescaleIntercept, ds.RescaleType = slope, intercept, "HU"
    ds.PixelData = stored.tobytes()
    return ds


def write(ds: Dataset, syntax: str) -> bytes:
    if syntax == RLELossless and "NumberOfFrames" in ds:
        frames = np.frombuffer(ds.PixelData, "<i2" if ds.PixelRepresentation else "<u2").reshape(
            int(ds.NumberOfFrames), ds.Rows, ds.Columns
        )
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.compress(RLELossless, frames)
    elif syntax != ExplicitVRLittleEndian:
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.compress(syntax)
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


__all__ = ["Series", "ct_series", "enhanced", "mr_series", "phantom_hu"]
