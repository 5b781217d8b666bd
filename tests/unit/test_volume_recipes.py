"""Google's CT and MR recipes, value by value: each window against numbers computed by hand, the lookup table
against the notebook's own arithmetic on every 16-bit value, and the MR series normalisation."""

import numpy as np
import pytest

from serve.imaging import recipes


def notebook_window(hu: np.ndarray) -> np.ndarray:
    """Google-Health/medgemma high_dimensional_ct_hugging_face.ipynb, `norm`/`window` and the rounding after."""
    out = []
    for low, high in [(-1024, 1024), (-135, 215), (0, 80)]:
        v = np.clip(hu, low, high).astype(np.float32)
        v -= low
        v /= high - low
        v *= 255.0
        out.append(v)
    return np.round(np.stack(out, axis=-1), 0).astype(np.uint8)


@pytest.mark.parametrize(
    ("hu", "rgb"),
    [
        (-2000, (0, 0, 0)),  # below every window
        (-1024, (0, 0, 0)),
        (-1000, (3, 0, 0)),  # air: 24 / 2048 * 255 = 2.99
        (-135, (111, 0, 0)),  # fat edge: 889 / 2048 * 255 = 110.69
        (0, (128, 98, 0)),  # water: 127.5 -> 128 (half to even); 135 / 350 * 255 = 98.36
        (
            40,
            (132, 128, 128),
        ),  # soft tissue: 132.48; 175 / 350 * 255 = 127.5 -> 128; 40 / 80 * 255 = 127.5 -> 128
        (80, (137, 157, 255)),  # 137.46; 215 / 350 * 255 = 156.64
        (215, (154, 255, 255)),  # 1239 / 2048 * 255 = 154.27
        (1024, (255, 255, 255)),
        (3000, (255, 255, 255)),
    ],
)
def test_each_window_against_numbers_computed_by_hand(hu, rgb):
    assert tuple(recipes.ct_windows(np.array(float(hu)))) == rgb


def test_rescale_slope_and_intercept_give_hounsfield_units():
    stored = np.array([0, 1024, 1064, 2048], np.int16)
    hu = recipes.rescale(1.0, -1024.0)(stored)
    assert hu.tolist() == [-1024.0, 0.0, 40.0, 1024.0]
    assert recipes.rescale(2.0, -1000.0)(np.array([500], np.int16)).tolist() == [0.0]


@pytest.mark.parametrize(
    ("dtype", "slope", "intercept"),
    [("<i2", 1.0, -1024.0), ("<u2", 1.0, -1024.0), ("<i2", 0.5, -10.0), ("<u2", 2.5, -3000.0)],
)
def test_the_lookup_table_equals_the_notebook_on_every_stored_value(dtype, slope, intercept):
    info = np.iinfo(np.dtype(dtype))
    stored = np.arange(info.min, info.max + 1, dtype=np.int64).astype(dtype).reshape(256, 256)
    to_hu = recipes.rescale(slope, intercept)
    table = recipes.ct_table(stored.dtype, to_hu)
    rgbx = recipes.ct_rgbx(stored, table, to_hu)
    assert np.array_equal(rgbx[..., :3], notebook_window(stored.astype(np.float64) * slope + intercept))
    assert np.array_equal(recipes.ct_rgbx(stored, None, to_hu)[..., :3], rgbx[..., :3])


def test_mr_is_normalised_by_the_series_extremes_by_hand():
    values = np.array([[100, 150], [200, 175]], np.uint16)
    # (v - 100) / 100 * 255: 0, 127.5 -> 128 (half to even), 255, 191.25 -> 191
    assert recipes.mr_gray(values, 100, 200).tolist() == [[0, 128], [255, 191]]
    assert recipes.mr_gray(values, 50, 400).tolist() == [[36, 73], [109, 91]]  # 36.43, 72.86, 109.29, 91.07


def test_mr_lookup_equals_the_float_formula_and_a_flat_series_is_white():
    values = np.random.default_rng(0).integers(0, 4096, (64, 64)).astype(np.uint16)
    low, high = float(values.min()), float(values.max())
    expected = np.round((values.astype(np.float64) - low) / (high - low) * 255.0, 0).astype(np.uint8)
    assert np.array_equal(recipes.mr_gray(values, low, high), expected)
    assert np.array_equal(recipes.mr_gray(values.astype(np.float32), low, high), expected)
    assert recipes.mr_gray(np.full((2, 2), 7, np.uint16), 7, 7).tolist() == [[255, 255], [255, 255]]
