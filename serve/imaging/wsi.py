"""Whole-slide patches as Google's MedGemma 1.5 pathology notebook takes them (EZ-WSI's patch generator), pure:
the pyramid level nearest ~10x, a grid of non-overlapping patches on it, tissue found on a low-magnification level
(mean grey level per patch within a luminance band: bright glass and black padding are not tissue), and up to N
of the tissue patches sampled."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

from serve.imaging.errors import ImageRefused

# The notebook samples with random.sample; a fixed seed makes one slide one prompt (reproducible answers, and the
# engine's prefix cache sees the same images), and the patches go in reading order.
SEED = 0


@dataclass(frozen=True)
class Level:
    index: int
    width: int
    height: int
    um_per_px: float  # the smaller of row and column spacing, as EZ-WSI compares levels


@dataclass(frozen=True)
class Box:
    x: int
    y: int
    width: int
    height: int


def nearest(levels: Sequence[Level], um_per_px: float) -> Level:
    """The level whose spacing is closest to the target on a log scale (a 2x step either way weighs the same)."""
    if not levels:
        raise ImageRefused("invalid_slide", "the slide has no pyramid level with a pixel spacing.")
    return min(levels, key=lambda level: (abs(math.log(level.um_per_px / um_per_px)), level.index))


def grid(level: Level, patch: int) -> tuple[int, int]:
    """(columns, rows) of whole non-overlapping patches from the top left; the ragged right and bottom edges are
    left out, as EZ-WSI leaves them."""
    columns, rows = level.width // patch, level.height // patch
    if columns < 1 or rows < 1:
        raise ImageRefused(
            "invalid_slide",
            f"the slide's ~10x level ({level.width}x{level.height}) is smaller than one {patch}-pixel patch.",
        )
    return columns, rows


def tissue_cells(
    mask: Image.Image, level: Level, mask_level: Level, patch: int, low: int, high: int
) -> list[tuple[int, int]]:
    """(column, row) of each grid cell whose mean grey level on the mask image lies in [low, high]. The mask is
    cropped to the area the grid covers, then each cell averaged (Pillow's BOX filter, EZ-WSI's INTER_AREA)."""
    columns, rows = grid(level, patch)
    scale = level.um_per_px / mask_level.um_per_px  # mask pixels per target pixel
    covered = (
        max(1, min(mask.width, math.ceil(columns * patch * scale))),
        max(1, min(mask.height, math.ceil(rows * patch * scale))),
    )
    grey = mask.convert("L").crop((0, 0, *covered)).resize((columns, rows), Image.Resampling.BOX)
    means = np.asarray(grey)
    ys, xs = np.nonzero((means >= low) & (means <= high))
    return [(int(x), int(y)) for y, x in zip(ys, xs, strict=True)]


def sample(cells: Sequence[tuple[int, int]], count: int, patch: int) -> list[Box]:
    """`count` of the cells (all when there are fewer), as patch boxes in reading order."""
    chosen = cells if len(cells) <= count else random.Random(SEED).sample(list(cells), count)
    return [Box(x * patch, y * patch, patch, patch) for x, y in sorted(chosen, key=lambda c: (c[1], c[0]))]


def inside(boxes: Sequence[Box], level: Level) -> list[Box]:
    """The client's patches, each within the level (in its pixels)."""
    for k, box in enumerate(boxes):
        if box.x + box.width > level.width or box.y + box.height > level.height:
            raise ImageRefused(
                "invalid_patch_coordinates",
                f"patch {k} ({box.x}, {box.y}, {box.width}x{box.height}) lies outside the ~10x level, which is "
                f"{level.width}x{level.height} pixels.",
            )
    return list(boxes)


__all__ = ["Box", "Level", "grid", "inside", "nearest", "sample", "tissue_cells"]
