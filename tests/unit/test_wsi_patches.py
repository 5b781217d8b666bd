"""Whole-slide patch planning (pure), after EZ-WSI as Google's pathology notebook uses it: the level nearest 10x,
whole non-overlapping patches, tissue by mean grey level on the mask level, a fixed-seed sample in reading order."""

import numpy as np
import pytest
from PIL import Image

from serve.imaging import wsi
from serve.imaging.errors import ImageRefused

PYRAMID = [wsi.Level(k, 16384 >> k, 12288 >> k, 0.25 * (1 << k)) for k in range(7)]  # 40x down to 0.625x


def test_the_level_nearest_the_target_spacing_is_chosen_on_a_log_scale():
    assert wsi.nearest(PYRAMID, 1.0).index == 2  # 40x scan: 10x is level 2
    assert wsi.nearest(PYRAMID, 8.0).index == 5  # the mask's 1.25x
    assert (
        wsi.nearest([wsi.Level(0, 10, 10, 0.5), wsi.Level(1, 5, 5, 2.1)], 1.0).index == 0
    )  # 2x off vs 2.1x off
    with pytest.raises(ImageRefused):
        wsi.nearest([], 1.0)


def test_the_grid_holds_whole_patches_only():
    assert wsi.grid(PYRAMID[2], 896) == (4096 // 896, 3072 // 896)
    with pytest.raises(ImageRefused):
        wsi.grid(wsi.Level(0, 800, 2000, 1.0), 896)


def test_tissue_cells_are_those_whose_mean_grey_is_in_the_band():
    target = wsi.Level(0, 4 * 896, 2 * 896, 1.0)
    mask_level = wsi.Level(3, 448, 224, 8.0)  # 112 mask pixels per patch
    grey = np.full((224, 448), 240, np.uint8)  # glass
    grey[:112, 112:224] = 150  # cell (1, 0): tissue
    grey[112:, 336:] = 0  # cell (3, 1): black padding, not tissue
    grey[112:, :112][:, :40] = 150  # cell (0, 1): a third tissue, mean ~207: not enough
    grey[:112, 336:][:80] = 150  # cell (3, 0): ~70 % tissue, mean ~175: tissue
    cells = wsi.tissue_cells(Image.fromarray(grey), target, mask_level, 896, 1, 204)
    assert sorted(cells) == [(1, 0), (3, 0)]


def test_the_mask_is_cropped_to_the_area_the_grid_covers():
    target = wsi.Level(0, 896 + 500, 896, 1.0)  # one whole patch and a ragged edge
    mask_level = wsi.Level(3, 174, 112, 8.0)
    grey = np.full((112, 174), 240, np.uint8)
    grey[:, 112:] = 100  # tissue only in the ragged edge: no patch covers it
    assert wsi.tissue_cells(Image.fromarray(grey), target, mask_level, 896, 1, 204) == []


def test_a_sample_is_reproducible_in_reading_order_and_never_larger_than_asked():
    cells = [(x, y) for y in range(10) for x in range(10)]
    boxes = wsi.sample(cells, 7, 896)
    assert boxes == wsi.sample(cells, 7, 896)  # one slide, one prompt
    assert len(boxes) == 7 and boxes == sorted(boxes, key=lambda b: (b.y, b.x))
    assert all(b.width == b.height == 896 and b.x % 896 == b.y % 896 == 0 for b in boxes)
    assert len(wsi.sample(cells[:3], 7, 896)) == 3


def test_client_patches_must_lie_within_the_level():
    level = wsi.Level(1, 2000, 1000, 1.0)
    assert wsi.inside([wsi.Box(1104, 104, 896, 896)], level) == [wsi.Box(1104, 104, 896, 896)]
    with pytest.raises(ImageRefused):
        wsi.inside([wsi.Box(1105, 0, 896, 896)], level)
