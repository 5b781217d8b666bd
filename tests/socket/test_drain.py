"""Graceful drain: /health flips at once, the port stays open for the delay, requests in flight finish or are ended
server-side at the deadline (in-band error frame + [DONE] for streams, 503 otherwise), never cut silently."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sys
from pathlib import Path

import aiohttp
import pytest
import yaml

from serve.config import DrainSettings
from serve.gateway.drain import drain
from tests.conftest import ACK, MODEL
from tests.socket.gateway_on_socket import CHAT, WAIT_S, eventually, serve

ROOT = Path(__file__).resolve().parents[2]
STREAM = {"model": MODEL, "stream": True, "messages": [{"role": "user", "content": "hi"}]}
UNARY = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}


async def read_stream(resp: aiohttp.ClientResponse) -> list[str]:
    """Every `data:` payload of an SSE answer, in order."""
    frames = []
    async for line in resp.content:
        text = line.decode().strip()
        if text.startswith("data: "):
            frames.append(text[6:])
    return frames


async def refused(port: int) -> bool:
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return True
    writer.close()
    return False


async def test_drain_flips_health_keeps_serving_for_the_delay_and_lets_streams_finish(
    engine, script, tmp_path, access_log
):
    script.chunks, script.gap_s = 12, 0.15  # a stream of ~2 s, in flight when the drain starts
    running = await serve(str(engine.make_url("")).rstrip("/"), tmp_path / "acks.db", access_log)
    hurry = asyncio.Event()
    async with aiohttp.ClientSession(headers=ACK) as session:
        resp = await session.post(running.url + CHAT, json=STREAM)
        assert resp.status == 200
        reading = asyncio.create_task(read_stream(resp))
        draining = asyncio.create_task(
            drain(running.runner, DrainSettings(delay_s=1.0, deadline_s=WAIT_S * 3), hurry)
        )
        await eventually(lambda: running.gw.lifecycle.draining, "the drain began")

        async with session.get(running.url + "/health") as health:
            assert health.status == 503
            assert (await health.json())["status"] == "draining"
        async with session.post(
            running.url + CHAT, json=UNARY
        ) as during_delay:  # the balancer has not noticed yet
            assert during_delay.status == 200
            assert during_delay.headers.get("Connection", "").lower() == "close"

        frames = await asyncio.wait_for(reading, WAIT_S)
        await asyncio.wait_for(draining, WAIT_S)
    assert frames[-1] == "[DONE]"
    assert not any('"error"' in f for f in frames)
    assert sum('"content":"tok' in f for f in frames) == 12  # every token, none lost
    assert await refused(running.port)
    statuses = [line["status"] for line in access_log.lines()]
    assert statuses == [200, 200]


async def test_drain_deadline_ends_streams_in_band_and_unary_requests_with_503(
    engine, script, tmp_path, access_log
):
    script.chunks, script.gap_s = 400, 0.1  # far longer than the deadline
    running = await serve(str(engine.make_url("")).rstrip("/"), tmp_path / "acks.db", access_log)
    async with aiohttp.ClientSession(headers=ACK) as session:
        stream = await session.post(running.url + CHAT, json=STREAM)
        assert stream.status == 200
        first = await asyncio.wait_for(stream.content.readline(), WAIT_S)
        assert first.startswith(b"data: ")
        script.delay_s = 120.0  # the non-streamed answer is still being generated at the deadline
        unary = asyncio.create_task(session.post(running.url + CHAT, json=UNARY))
        await eventually(lambda: running.gw.lifecycle.in_flight == 2, "both requests reached the engine")
        await asyncio.wait_for(drain(running.runner, DrainSettings(delay_s=0.2, deadline_s=0.5)), WAIT_S)

        frames = await asyncio.wait_for(read_stream(stream), WAIT_S)
        answer = await asyncio.wait_for(unary, WAIT_S)
        assert answer.status == 503
        assert (await answer.json())["error"]["code"] == "server_shutting_down"
    assert frames[-1] == "[DONE]"
    assert json.loads(frames[-2])["error"]["code"] == "server_shutting_down"
    await eventually(lambda: script.cancelled >= 1, "the engine saw the stream's connection close")
    ended = [(line["status"], line.get("error")) for line in access_log.lines()]
    assert sorted(ended) == [(503, "server_shutting_down")] * 2  # server-side ends, not 499 (client closed)


async def test_a_second_signal_skips_the_rest_of_the_delay(engine, tmp_path, access_log):
    running = await serve(str(engine.make_url("")).rstrip("/"), tmp_path / "acks.db", access_log)
    hurry = asyncio.Event()
    draining = asyncio.create_task(
        drain(running.runner, DrainSettings(delay_s=3600.0, deadline_s=3600.0), hurry)
    )
    await eventually(lambda: running.gw.lifecycle.draining, "the drain began")
    hurry.set()
    await asyncio.wait_for(draining, WAIT_S)
    assert await refused(running.port)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
async def test_the_gateway_process_drains_on_a_signal_and_exits_0(engine, script, tmp_path, sig):
    """`python -m serve gateway` as deployments run it: port 0 (reported), a stream in flight at SIGTERM/Ctrl-C."""
    script.chunks, script.gap_s = 10, 0.2
    profile = yaml.safe_load((ROOT / "configs" / "cpu-demo.yaml").read_text())
    profile["model"]["served_name"] = MODEL
    profile["gateway"] = {
        "port": 0,
        "terms": {"database": str(tmp_path / "acks.db")},
        "drain": {"delay_s": 1.0, "deadline_s": 60.0},
        "images": {"workers": 0},
    }
    path = tmp_path / "profile.yaml"
    path.write_text(yaml.safe_dump(profile))
    upstream = str(engine.make_url("")).rstrip("/")
    argv = ["-m", "serve", "gateway", "--profile", str(path), "--upstream", upstream]
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        *argv,
        cwd=ROOT,
        stderr=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.DEVNULL,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        port = await asyncio.wait_for(_listening_port(proc.stderr), WAIT_S * 3)
        async with aiohttp.ClientSession(headers=ACK) as session:
            resp = await session.post(f"http://127.0.0.1:{port}{CHAT}", json=STREAM)
            reading = asyncio.create_task(read_stream(resp))
            proc.send_signal(sig)
            frames = await asyncio.wait_for(reading, WAIT_S)
        assert await asyncio.wait_for(proc.wait(), WAIT_S) == 0
        assert frames[-1] == "[DONE]" and not any('"error"' in f for f in frames), frames
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def _listening_port(stderr: asyncio.StreamReader) -> int:
    while line := await stderr.readline():
        found = re.search(rb"gateway listening on http://[\d.]+:(\d+)", line)
        if found:
            asyncio.get_running_loop().create_task(_discard(stderr))  # keep the pipe from filling
            return int(found.group(1))
    raise AssertionError("the gateway exited before listening")


async def _discard(stream: asyncio.StreamReader) -> None:
    while await stream.read(65536):
        pass
