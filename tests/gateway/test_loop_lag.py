"""The event-loop lag meter: a loop held by blocking work shows in medgemma_gateway_event_loop_lag_seconds."""

import asyncio
import time

from prometheus_client import CollectorRegistry, Histogram

from serve.gateway.telemetry.loop_lag import LoopLag


def lag_histogram(registry: CollectorRegistry) -> Histogram:
    return Histogram("lag_seconds", "test", buckets=(0.01, 0.1, 1.0), registry=registry)


async def test_a_held_loop_is_measured_and_a_free_one_is_not():
    registry = CollectorRegistry()
    meter = LoopLag(lag_histogram(registry), interval_s=0.02)
    meter.start()
    try:
        await asyncio.sleep(0.2)  # free: every tick on time, give or take the machine
        free_slow = registry.get_sample_value("lag_seconds_count") - registry.get_sample_value(
            "lag_seconds_bucket", {"le": "0.1"}
        )
        time.sleep(0.3)  # the loop held, as a synchronous parse would hold it
        await asyncio.sleep(0.05)
    finally:
        meter.stop()
    held = registry.get_sample_value("lag_seconds_count") - registry.get_sample_value(
        "lag_seconds_bucket", {"le": "0.1"}
    )
    assert held >= free_slow + 1  # the tick due during the hold ran at least 0.1 s late


async def test_the_gateway_exports_its_loop_lag(make_gateway, registry):
    gw = await make_gateway()
    await asyncio.sleep(0.25)
    assert registry.get_sample_value("medgemma_gateway_event_loop_lag_seconds_count") >= 1
    metrics = await gw.get("/metrics")
    assert "medgemma_gateway_event_loop_lag_seconds_bucket" in await metrics.text()
