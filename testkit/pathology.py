"""Synthetic H&E-stained tissue patches (numpy + Pillow): the pink stroma, purple nuclei and pale lumens of a
whole-slide patch, written as JPEG files the way Google's pathology notebook sends its patches."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

EOSIN = np.array([232, 160, 200], dtype=np.float32)  # stroma and cytoplasm
HEMATOXYLIN = np.array([80, 50, 140], dtype=np.float32)  # nuclei
LUMEN = np.array([246, 240, 244], dtype=np.float32)  # glass and gland spaces


def he_patch(size: int = 896, seed: int = 0) -> np.ndarray:
    """A size x size x 3 uint8 patch. Not histology, only its colours and texture: a flat or random image would
    compress to nothing or to noise and misstate upload sizes and decode work."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) / size
    fibres = 0.5 + 0.5 * np.sin(
        2 * np.pi * (rng.uniform(3, 9) * x + rng.uniform(3, 9) * y + 0.8 * np.sin(9 * y))
    )
    lumen = _blobs(rng, size, x, y, count=int(rng.integers(2, 6)), radius=(0.05, 0.16))
    nuclei = _blobs(rng, size, x, y, count=size // 3, radius=(0.004, 0.01)) * (1 - lumen)
    stroma = EOSIN * (0.85 + 0.15 * fibres[..., None])
    img = stroma * (1 - lumen[..., None]) + LUMEN * lumen[..., None]
    img = img * (1 - nuclei[..., None]) + HEMATOXYLIN * nuclei[..., None]
    img += rng.normal(0.0, 6.0, img.shape).astype(np.float32)
    return np.clip(img, 0, 255).astype(np.uint8)


def _blobs(rng, size, x, y, *, count: int, radius: tuple[float, float]) -> np.ndarray:
    """Soft-edged discs at random places, as a [0, 1] mask."""
    mask = np.zeros((size, size), dtype=np.float32)
    for cx, cy, r in zip(rng.random(count), rng.random(count), rng.uniform(*radius, count), strict=True):
        x0, x1 = max(int((cx - 2 * r) * size), 0), min(int((cx + 2 * r) * size) + 1, size)
        y0, y1 = max(int((cy - 2 * r) * size), 0), min(int((cy + 2 * r) * size) + 1, size)
        d2 = ((x[y0:y1, x0:x1] - cx) ** 2 + (y[y0:y1, x0:x1] - cy) ** 2) / r**2
        disc = 1.0 / (1.0 + np.exp(np.minimum(10.0 * (d2 - 1.0), 60.0)))
        mask[y0:y1, x0:x1] = np.maximum(mask[y0:y1, x0:x1], disc)
    return mask


def jpeg_bytes(pixels: np.ndarray, quality: int = 75) -> bytes:
    """JPEG at Pillow's default quality (75), which is what the notebook's `img.save(format="jpeg")` writes."""
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def patch_folder(folder: Path, count: int, size: int = 896) -> list[Path]:
    """`count` patch files named in order (patch_000.jpg ...), as a slide's patches exported to disk."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"patch_{i:03d}.jpg" for i in range(count)]
    for i, path in enumerate(paths):
        path.write_bytes(jpeg_bytes(he_patch(size, seed=i)))
    return paths
