"""The 8-bit reduction: DICOM's window functions (PS3.3 C.11.2.1.2) and the robust fallback window."""

import numpy as np
import pytest

from serve.imaging import window


def test_linear_window_follows_the_standard_formula():
    # c=2048, w=4096: the window spans 0..4095 and its centre maps to mid-grey.
    values = np.array([-10, 0, 2047.5, 4095, 5000], dtype=np.float32)
    assert window.window(values, 2048, 4096).tolist() == [0, 0, 128, 255, 255]


def test_linear_window_clips_outside_and_is_monotonic_inside():
    values = np.arange(0, 400, dtype=np.float32)
    out = window.window(values, 200, 100)
    assert out[:150].max() == 0 and out[251:].min() == 255
    assert np.all(np.diff(out.astype(int)) >= 0)


def test_width_one_is_a_threshold_at_the_centre():
    assert window.window(np.array([99.0, 100.0, 101.0]), 100, 1).tolist() == [0, 255, 255]


def test_linear_exact_and_sigmoid_centre_on_mid_grey():
    for function in ("LINEAR_EXACT", "SIGMOID"):
        out = window.window(np.array([0.0, 50.0, 100.0]), 50, 100, function)
        assert out[1] in (127, 128) and out[0] < out[1] < out[2]


def test_unknown_function_name_is_read_as_linear():
    values = np.array([0.0, 100.0, 200.0])
    assert window.window(values, 100, 200, "CUBIC").tolist() == window.window(values, 100, 200).tolist()


def test_robust_window_ignores_the_extreme_tails():
    rng = np.random.default_rng(0)
    values = rng.normal(1000, 50, (512, 512))
    values[:3, :3] = 65535  # a burned-in marker: a min/max window would crush the image into a few levels
    out = window.robust(values)
    assert out.dtype == np.uint8 and out[:3, :3].min() == 255
    assert out[10:].std() > 30  # the tissue keeps its contrast


@pytest.mark.parametrize("value", [0, 1000])
def test_flat_image_becomes_black_not_a_division_by_zero(value):
    assert window.robust(np.full((8, 8), value, np.uint16)).max() == 0
