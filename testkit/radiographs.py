"""Synthetic chest-radiograph-like grayscale images, made locally (numpy + Pillow) and sent as PNG data URLs."""

from __future__ import annotations

import base64
import io

import numpy as np
from PIL import Image


def radiograph(size: int, seed: int = 0) -> np.ndarray:
    """A size x size uint8 image with the broad look of a PA chest film: dark lungs, ribs, spine, heart.

    Not anatomy, only a plausible distribution of grey levels and edges, so an image encoder does the work
    it does on a real film (a flat image can compress to nothing and flatter the upload and decode).
    """
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[-1 : 1 : size * 1j, -1 : 1 : size * 1j].astype(np.float32)
    body = np.exp(-(((x / 0.85) ** 2 + (y / 1.05) ** 2) ** 4))
    lungs = _ellipse(x, y, -0.38, -0.08, 0.27, 0.55) + _ellipse(x, y, 0.38, -0.08, 0.27, 0.55)
    ribs = 0.5 + 0.5 * np.cos(2 * np.pi * (7 * y - 2.4 * x**2))
    spine = np.exp(-((x / 0.07) ** 2))
    heart = _ellipse(x, y, 0.14, 0.24, 0.3, 0.22)
    lungs = lungs * (1 - 0.8 * heart)  # the heart shadow overlies the lower left lung
    img = 0.08 + 0.62 * body - 0.38 * lungs + 0.14 * lungs * ribs**6 + 0.3 * spine * body + 0.12 * heart
    img += rng.normal(0.0, 0.03, img.shape).astype(np.float32)
    return (np.clip(img, 0.0, 1.0) * 255).astype(np.uint8)


def _ellipse(x: np.ndarray, y: np.ndarray, cx: float, cy: float, rx: float, ry: float) -> np.ndarray:
    """A soft-edged filled ellipse in [0, 1]."""
    r2 = ((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2
    return 1.0 / (1.0 + np.exp(np.minimum(12.0 * (r2 - 1.0), 60.0)))


def png_data_url(pixels: np.ndarray) -> str:
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG")  # uint8 and 2-D: mode L
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


class ImageCache:
    """One data URL per size, made on first use: encoding a 2048x2048 PNG must not be timed per request."""

    def __init__(self, seed: int = 0) -> None:
        self._seed = seed
        self._urls: dict[int, str] = {}

    def data_url(self, size: int) -> str:
        if size not in self._urls:
            self._urls[size] = png_data_url(radiograph(size, self._seed))
        return self._urls[size]
