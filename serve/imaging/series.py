"""A CT or MR series from its slices' headers: one series and one geometry checked, slices ordered along the
slice normal (Instance Number as the fallback), and N sampled evenly. Pure: refusals are ImageRefused."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from serve.imaging.errors import ImageRefused

VOLUME_MODALITIES = ("CT", "MR")
# Direction cosines and positions in a series are written with a few decimals; these absorb that rounding.
ORIENTATION_TOLERANCE = 1e-3
POSITION_TOLERANCE_MM = 1e-3


@dataclass(frozen=True)
class Slice:
    """One frame of one object, as its header describes it (no pixels)."""

    source: int  # the object's index in the request's dicom_source
    frame: int  # the frame within that object, from 0
    modality: str
    series: str  # Series Instance UID ("" when absent): only compared, never shown
    rows: int
    columns: int
    position: tuple[float, float, float] | None  # Image Position (Patient), mm
    orientation: tuple[float, ...] | None  # Image Orientation (Patient): row then column cosines
    instance: int | None  # Instance Number
    slope: float = 1.0
    intercept: float = 0.0


def invalid(message: str) -> ImageRefused:
    return ImageRefused("invalid_series", message)


def check_one_series(slices: Sequence[Slice]) -> str:
    """The series' modality, once every slice is of one CT or MR series with one matrix size."""
    modalities = {s.modality for s in slices}
    if len(modalities) > 1:
        raise invalid(f"the objects mix modalities ({', '.join(sorted(modalities))}); send one series.")
    (modality,) = modalities
    if modality not in VOLUME_MODALITIES:
        raise ImageRefused(
            "unsupported_modality",
            f"a volume is a CT or MR series; modality {modality or 'unknown'!r} is not (send radiographs "
            "such as CR or DX as 'image_url' parts, one image each).",
        )
    if len({s.series for s in slices}) > 1:
        raise invalid(f"the objects belong to {len({s.series for s in slices})} series; send one series.")
    if len({(s.rows, s.columns) for s in slices}) > 1:
        raise invalid("the slices differ in size (Rows x Columns): inconsistent geometry.")
    return modality


def order(slices: Sequence[Slice]) -> list[Slice]:
    """Slices along the normal of their common orientation, else by Instance Number; refuses what cannot be
    ordered: differing orientations, two slices at one position or with one number."""
    if len(slices) == 1:
        return list(slices)
    if all(s.position is not None and s.orientation is not None for s in slices):
        return by_position(slices)
    if all(s.instance is not None for s in slices):
        numbers = [s.instance for s in slices]
        if len(set(numbers)) < len(numbers):
            raise invalid("two slices share an Instance Number and have no position to order them by.")
        return sorted(slices, key=lambda s: (s.instance, s.source, s.frame))
    raise invalid(
        "the slices cannot be ordered: give each Image Position (Patient) with Image Orientation "
        "(Patient), or an Instance Number."
    )


def by_position(slices: Sequence[Slice]) -> list[Slice]:
    orientations = np.array([s.orientation for s in slices], dtype=np.float64)
    if np.abs(orientations - orientations[0]).max() > ORIENTATION_TOLERANCE:
        raise invalid("the slices differ in Image Orientation (Patient): inconsistent geometry.")
    normal = slice_normal(orientations[0])
    depth = np.array([s.position for s in slices], dtype=np.float64) @ normal
    ranked = np.argsort(depth, kind="stable")
    if np.diff(depth[ranked]).min() <= POSITION_TOLERANCE_MM:
        raise invalid(
            "two slices lie at the same position along the slice normal (several acquisitions or phases "
            "in one series?): send one stack."
        )
    return [slices[i] for i in ranked]


def slice_normal(orientation: np.ndarray) -> np.ndarray:
    """The cross product of the row and column direction cosines (PS3.3 C.7.6.2.1.1)."""
    row, col = orientation[:3], orientation[3:6]
    normal = np.cross(row, col)
    length = float(np.linalg.norm(normal))
    if not np.isfinite(length) or length < 0.5:  # unit vectors that are not orthogonal enough to span a plane
        raise invalid("Image Orientation (Patient) does not hold two independent direction cosines.")
    return normal / length


def sample(count: int, wanted: int) -> list[int]:
    """Indices of `wanted` slices spread evenly over `count` ordered ones: all when count <= wanted, else
    index_i = round(i * (count - 1) / wanted) for i = 1..wanted, written as Google's MedGemma 1.5 CT notebook
    writes it (so the same slices are picked; the first slice is never among them)."""
    if count <= wanted:
        return list(range(count))
    return [round(i / wanted * (count - 1)) for i in range(1, wanted + 1)]
