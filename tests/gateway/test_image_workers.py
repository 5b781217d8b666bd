"""Tier 1: image jobs in worker processes: off the gateway's process, replaced when they die or hang, cancelled
with their request, bounded gateway-wide. Jobs are injected (testkit/image_jobs.py)."""

import asyncio
import base64
import os
import time
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from serve.config import GatewaySettings, ImageSettings, TermsSettings
from serve.gateway.app import GatewayConfig, create_app
from serve.gateway.errors import GatewayError
from serve.gateway.rewrite.image_jobs import ImageJob, run_jobs
from serve.gateway.stores.sqlite import SqliteAckStore
from serve.imaging.pool import ImagePool
from testkit.image_jobs import scripted
from tests.conftest import ACK, MODEL

CHAT = "/v1/chat/completions"


def body(*payloads: str) -> dict:
    parts = [{"type": "image_url", "image_url": {"url": f"data:image/png;base64,{p}"}} for p in payloads]
    return {
        "model": MODEL,
        "messages": [{"role": "user", "content": [*parts, {"type": "text", "text": "?"}]}],
    }


@pytest.fixture
def scripted_gateway(aiohttp_client, engine, db, access_log):
    async def make(**images):
        settings = GatewaySettings(terms=TermsSettings(database=db), images=ImageSettings(**images))
        cfg = GatewayConfig(settings, [MODEL], str(engine.make_url("")).rstrip("/"))
        pool = ImagePool(settings.images, job=scripted)
        app = create_app(
            cfg,
            registry=CollectorRegistry(),
            store=SqliteAckStore(db),
            access_log=access_log,
            image_pool=pool,
        )
        return await aiohttp_client(app)

    return make


def worker_pids(script) -> list[int]:
    content = script.seen[-1]["messages"][-1]["content"]
    urls = [part["image_url"]["url"] for part in content if part["type"] == "image_url"]
    return [int(base64.b64decode(url.partition(",")[2])) for url in urls]


async def test_images_are_decoded_in_worker_processes_in_parallel(scripted_gateway, script):
    gw = await scripted_gateway(workers=2)
    assert (await gw.post(CHAT, json=body("pid", "pid", "pid", "pid"), headers=ACK)).status == 200
    pids = worker_pids(script)
    assert len(pids) == 4 and os.getpid() not in pids


async def test_a_worker_that_dies_is_a_clean_500_and_the_next_request_is_served(scripted_gateway, script):
    gw = await scripted_gateway(workers=1)
    resp = await gw.post(CHAT, json=body("exit"), headers=ACK)
    error = (await resp.json())["error"]
    assert resp.status == 500 and error["code"] == "image_worker_failed" and error["type"] == "server_error"
    assert error["param"] == "messages[0].content[0]"
    assert (await gw.post(CHAT, json=body("pid"), headers=ACK)).status == 200


async def test_a_decoder_crash_is_the_image_at_fault(scripted_gateway):
    gw = await scripted_gateway(workers=1)
    resp = await gw.post(CHAT, json=body("segv"), headers=ACK)
    assert resp.status == 400 and (await resp.json())["error"]["code"] == "image_decode_failed"


async def test_a_job_past_its_time_limit_is_killed_and_its_worker_replaced(
    scripted_gateway, script, tmp_path
):
    gw = await scripted_gateway(workers=1, job_timeout_s=1.0)
    marker = tmp_path / "pid"
    resp = await gw.post(CHAT, json=body(f"sleep:{marker}"), headers=ACK)
    assert resp.status == 400 and (await resp.json())["error"]["code"] == "image_decode_failed"
    assert (await gw.post(CHAT, json=body("pid"), headers=ACK)).status == 200
    assert worker_pids(script) != [int(marker.read_text())]
    assert gone(int(marker.read_text()))


async def test_more_images_than_the_gateway_queues_is_429_at_once(scripted_gateway, script):
    gw = await scripted_gateway(workers=1, max_pending_jobs=2)
    resp = await gw.post(CHAT, json=body("pid", "pid", "pid"), headers=ACK)
    assert resp.status == 429 and (await resp.json())["error"]["code"] == "too_many_image_jobs"
    assert script.seen == []


async def test_a_cancelled_request_cancels_its_running_and_queued_jobs(tmp_path):
    pool = ImagePool(ImageSettings(workers=1), job=scripted)
    await pool.start()
    try:
        running, queued = tmp_path / "running", tmp_path / "queued"
        jobs = [
            ImageJob(f"part{i}", "image/png", f"sleep:{m}", None) for i, m in enumerate((running, queued))
        ]
        request = asyncio.ensure_future(run_jobs(jobs, pool))
        await wait_for(running.exists)
        request.cancel()
        with pytest.raises(asyncio.CancelledError):
            await request
        assert pool.pending == 0
        await wait_for(lambda: gone(int(running.read_text())))
        await asyncio.sleep(0.5)
        assert not queued.exists()  # the queued job never started
    finally:
        await pool.close()


async def test_refusals_keep_their_code_across_the_process_boundary():
    pool = ImagePool(ImageSettings(workers=1))
    await pool.start()
    try:
        with pytest.raises(GatewayError) as info:
            await run_jobs([ImageJob("p", "image/png", "!!!", None)], pool)
        assert info.value.code == "invalid_base64" and info.value.status == 400
    finally:
        await pool.close()


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"  # exited, not yet reaped


async def wait_for(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)
