"""Capacity plateau detection on synthetic ramps, and the ramp's bookkeeping with a fake `send`."""

import pytest

from benchmarks.core.plateau import INDEX_STRIDE, Point, flattened, plateau, ramp
from benchmarks.core.records import RequestRecord


def points(*pairs):
    return [Point(c, rps) for c, rps in pairs]


def test_plateau_is_the_lowest_concurrency_within_tolerance_of_the_best():
    ramp_ = points((1, 2.0), (2, 3.9), (4, 7.0), (8, 9.6), (16, 10.0), (32, 9.8))
    assert plateau(ramp_) == Point(8, 9.6)  # 9.6 >= 0.9 * 10.0; 16 and 32 only queue
    assert plateau(ramp_, tolerance=0.01) == Point(16, 10.0)


def test_plateau_of_a_ramp_that_falls_after_its_peak_is_before_the_fall():
    assert plateau(points((1, 5.0), (2, 9.0), (4, 6.0), (8, 4.0))) == Point(2, 9.0)


def test_plateau_of_nothing_is_an_error():
    with pytest.raises(ValueError, match="no ramp levels"):
        plateau([])


def test_a_ramp_flattens_only_after_patience_levels_without_a_gain():
    rising = points((1, 1.0), (2, 2.0), (4, 4.0), (8, 7.5))
    assert not flattened(rising)
    one_flat = [*rising, Point(16, 7.9)]
    assert not flattened(one_flat)  # one level without a gain may be noise
    assert flattened([*one_flat, Point(32, 7.0)])
    assert not flattened([*one_flat, Point(32, 9.0)])  # a real gain after a flat level: keep climbing


def test_a_gain_counts_against_the_best_so_far_not_the_previous_level():
    dip_then_back = points((1, 5.0), (2, 10.0), (4, 6.0), (8, 10.5))
    assert flattened(dip_then_back)  # 10.5 is within 10% of 10.0, though far above 6.0


async def test_ramp_sends_fresh_prompts_per_level_and_names_a_level_it_ran():
    seen = []

    async def send(i):
        seen.append(i)
        return RequestRecord(ok=True, ttft=0.001, e2e=0.002, output_tokens=2)

    said = []
    result = await ramp(send, [1, 2, 4], duration_s=0.02, warmup=1, say=said.append)
    ran = [level["concurrency"] for level in result["levels"]]
    assert ran == [1, 2, 4][: len(ran)] and result["concurrency"] in ran
    assert len(said) == len(ran) and all(level["errors"] == {} for level in result["levels"])
    levels_seen = {i // INDEX_STRIDE for i in seen}
    assert levels_seen == set(range(len(ran)))  # each level drew from its own index range
