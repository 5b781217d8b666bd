"""Reducing high-bit-depth pixel values to 8 bits: DICOM windows (PS3.3 C.11.2.1.2) and a robust fallback."""

from __future__ import annotations

import numpy as np

# Percentiles of the fallback window: clinical viewers' "auto" window ignores the extreme tails (burned-in
# text, collimator edges, hot pixels), which a plain min/max would stretch over the whole range.
ROBUST_PERCENTILES = (0.5, 99.5)
SAMPLE_BUDGET = 1 << 20  # percentiles from ~1M evenly strided pixels cost ~10 ms and move by < 1 level


def linear(values: np.ndarray, center: float, width: float) -> np.ndarray:
    """DICOM 'LINEAR': the window's centre sits at c - 0.5 and it spans w - 1 values."""
    if width <= 1:
        return to_uint8(np.where(values > center - 0.5, 1.0, 0.0))
    return to_uint8((values - (center - 0.5)) / (width - 1) + 0.5)


def linear_exact(values: np.ndarray, center: float, width: float) -> np.ndarray:
    """DICOM 'LINEAR_EXACT': the window spans exactly [c - w/2, c + w/2]."""
    return to_uint8((values - center) / width + 0.5)


def sigmoid(values: np.ndarray, center: float, width: float) -> np.ndarray:
    return to_uint8(1.0 / (1.0 + np.exp(-4.0 * (values - center) / width)))


FUNCTIONS = {"LINEAR": linear, "LINEAR_EXACT": linear_exact, "SIGMOID": sigmoid}


def window(values: np.ndarray, center: float, width: float, function: str = "LINEAR") -> np.ndarray:
    """One window of a DICOM VOI LUT module; an unknown function name is read as LINEAR, as the standard's
    default."""
    return FUNCTIONS.get(function.upper(), linear)(values.astype(np.float32), center, width)


def robust_range(values: np.ndarray) -> tuple[float, float]:
    """(low, high): the robust window of an image that names none."""
    flat = values.reshape(-1)
    sample = flat[:: max(1, flat.size // SAMPLE_BUDGET)]
    low, high = np.percentile(sample, ROBUST_PERCENTILES)
    return float(low), float(high)


def robust(values: np.ndarray) -> np.ndarray:
    low, high = robust_range(values)
    return stretch(values, low, high)


def stretch(values: np.ndarray, low: float, high: float) -> np.ndarray:
    """low -> 0, high -> 255, linearly; a flat image (high == low) becomes black."""
    span = high - low
    if span <= 0:
        return np.zeros(values.shape, np.uint8)
    return to_uint8((values.astype(np.float32) - low) / span)


def to_uint8(unit: np.ndarray) -> np.ndarray:
    """[0, 1] floats to 0..255, rounded; out-of-window values saturate."""
    return (np.clip(unit, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
