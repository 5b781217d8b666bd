"""The series module: order along the slice normal (Instance Number as fallback), even sampling by Google's
formula, and the refusals of mixed series and inconsistent geometry."""

import itertools
import math
import random

import numpy as np
import pytest

from serve.imaging.errors import ImageRefused
from serve.imaging.series import Slice, check_one_series, order, sample

AXIAL = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)


def axial(z: float, source: int = 0, **kw) -> Slice:
    fields = dict(modality="CT", series="1.2.3", rows=64, columns=64, instance=None, orientation=AXIAL)
    fields.update(kw)
    return Slice(source=source, frame=0, position=(-100.0, -100.0, z), **fields)


def test_sampling_all_when_the_series_is_short_enough():
    assert sample(85, 85) == list(range(85))
    assert sample(3, 85) == [0, 1, 2]


def test_sampling_by_the_notebook_formula_computed_by_hand():
    # index_i = round(i * (n - 1) / N), i = 1..N; n = 10, N = 4: 2.25, 4.5, 6.75, 9 -> 2, 4 (half to even), 7, 9
    assert sample(10, 4) == [2, 4, 7, 9]
    picked = sample(300, 85)
    assert picked[:5] == [4, 7, 11, 14, 18] and picked[-1] == 299 and len(picked) == 85


def test_sampling_is_strictly_increasing_for_every_length():
    for count in range(86, 3000):
        picked = sample(count, 85)
        assert len(picked) == 85 and all(b > a for a, b in itertools.pairwise(picked))
        assert picked[-1] == count - 1


def test_slices_are_ordered_along_the_normal_whatever_order_they_came_in():
    slices = [axial(z, source=k) for k, z in enumerate([5.0, -2.5, 0.0, 2.5, 10.0])]
    random.Random(3).shuffle(slices)
    assert [s.position[2] for s in order(slices)] == [-2.5, 0.0, 2.5, 5.0, 10.0]


def test_a_tilted_gantry_is_ordered_by_the_projection_on_the_normal():
    t = math.radians(25)
    tilted = (1.0, 0.0, 0.0, 0.0, math.cos(t), -math.sin(t))
    slices = [Slice(k, 0, "CT", "s", 8, 8, (0.0, 0.0, 2.0 * k), tilted, None) for k in (3, 0, 2, 1)]
    assert [s.source for s in order(slices)] == [0, 1, 2, 3]


def test_a_reversed_orientation_reverses_the_order():
    flipped = (1.0, 0.0, 0.0, 0.0, -1.0, 0.0)  # normal -z
    slices = [Slice(k, 0, "MR", "s", 8, 8, (0.0, 0.0, float(k)), flipped, None) for k in range(3)]
    assert [s.source for s in order(slices)] == [2, 1, 0]


def test_instance_number_orders_slices_without_positions():
    slices = [Slice(k, 0, "CT", "s", 8, 8, None, None, n) for k, n in enumerate([3, 1, 2])]
    assert [s.instance for s in order(slices)] == [1, 2, 3]


@pytest.mark.parametrize(
    ("slices", "words"),
    [
        ([axial(0.0), axial(0.0, source=1)], "same position"),
        (
            [axial(0.0), Slice(1, 0, "CT", "1.2.3", 64, 64, (0.0, 0.0, 1.0), (0, 1, 0, 1, 0, 0), None)],
            "Orientation",
        ),
        (
            [Slice(0, 0, "CT", "s", 8, 8, None, None, 1), Slice(1, 0, "CT", "s", 8, 8, None, None, 1)],
            "Instance",
        ),
        (
            [Slice(0, 0, "CT", "s", 8, 8, None, None, None), Slice(1, 0, "CT", "s", 8, 8, None, None, 2)],
            "ordered",
        ),
        (
            [axial(0.0, orientation=(1, 0, 0, 1, 0, 0)), axial(1.0, orientation=(1, 0, 0, 1, 0, 0))],
            "independent",
        ),
    ],
)
def test_geometry_that_cannot_be_ordered_is_refused(slices, words):
    with pytest.raises(ImageRefused) as refused:
        order(slices)
    assert refused.value.code == "invalid_series" and words in refused.value.message


@pytest.mark.parametrize(
    ("slices", "code", "words"),
    [
        ([axial(0.0), axial(1.0, series="9.9")], "invalid_series", "2 series"),
        ([axial(0.0), axial(1.0, modality="MR")], "invalid_series", "modalities"),
        ([axial(0.0), axial(1.0, rows=32)], "invalid_series", "size"),
        ([axial(0.0, modality="CR")], "unsupported_modality", "CR"),
        ([axial(0.0, modality="")], "unsupported_modality", "unknown"),
    ],
)
def test_one_ct_or_mr_series_of_one_size_is_required(slices, code, words):
    with pytest.raises(ImageRefused) as refused:
        check_one_series(slices)
    assert refused.value.code == code and words in refused.value.message


def test_the_modality_of_a_good_series():
    assert check_one_series([axial(0.0), axial(1.0)]) == "CT"
    assert np.isfinite(len(order([axial(0.0), axial(1.0)])))
