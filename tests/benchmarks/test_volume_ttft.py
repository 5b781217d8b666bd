"""The volume TTFT benchmark's pure parts: ABBA order, the paired interval, and that the direct arm is, message for
message and pixel for pixel, what the gateway sends the engine for the DICOM arm (fake engine)."""

import random

import orjson

from benchmarks.volumes.ttft_arms import (
    abba,
    dicom_urls,
    direct_body,
    gateway_body,
    paired_difference,
    rendered,
)
from serve.config import GatewaySettings
from testkit.ct_series import ct_series
from tests.conftest import ACK, MODEL

IMAGES = {"model_input_size": 224}


def test_the_arms_alternate_abba():
    assert abba(4) == ["gateway", "direct", "direct", "gateway"] * 2
    assert abba(3).count("gateway") == abba(3).count("direct") == 3


def test_the_paired_interval_holds_a_known_shift_and_zero_when_there_is_none():
    rng = random.Random(1)
    base = [5.0 + rng.gauss(0, 0.5) for _ in range(12)]  # pairs drift together: the difference cancels it
    shifted = [b + 0.3 + rng.gauss(0, 0.02) for b in base]
    moved = paired_difference(shifted, base)
    assert moved["pairs"] == 12 and moved["ci95"][0] < 0.3 < moved["ci95"][1] and moved["ci95"][0] > 0
    same = paired_difference([b + 0.02 * (-1) ** k * (k + 1) for k, b in enumerate(base)], base)
    assert same["ci95"][0] < 0 < same["ci95"][1]


async def test_the_direct_arm_is_what_the_gateway_sends_the_engine(make_gateway, script):
    gw = await make_gateway(images=IMAGES)
    urls = dicom_urls(ct_series(90, 64, seed=2).objects)  # 90 slices: the gateway samples 85
    resp = await gw.post("/v1/chat/completions", data=gateway_body(MODEL, urls, 8), headers=ACK)
    assert resp.status == 200
    await resp.read()
    settings = GatewaySettings(images=IMAGES)
    slices = rendered(urls, settings.images)
    direct = orjson.loads(direct_body(MODEL, slices, settings.disclaimer.text, 8))
    assert len(slices) == 85
    assert script.seen[-1]["messages"] == direct["messages"]
    sent = {k: v for k, v in script.seen[-1].items() if k != "messages"}
    assert sent == {k: v for k, v in direct.items() if k != "messages"}
