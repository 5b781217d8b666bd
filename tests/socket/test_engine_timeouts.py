"""Engine deadlines through a gateway on a real socket: a whole answer has one total limit, a stream a first-byte
then a stall limit, and a client too slow to read is never taken for a stalled engine (limits are tiny here)."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import orjson
import pytest
from aiohttp import web

from serve.gateway.engine_client import http1
from serve.gateway.engine_client.http1 import Pool
from testkit.fake_engine import Script, create_fake_upstream, stream_frames
from tests.conftest import ACK, MODEL, chat_body
from tests.socket.gateway_on_socket import (
    CHAT,
    WAIT_S,
    Running,
    connect,
    eventually,
    request_head,
    serve,
)
from tests.socket.test_http1 import STREAM_HEAD, Reader, Server, Writer, chunk

SHORT = 0.3  # a limit the scripted engine overruns
LONG = 60.0  # a limit it never reaches


@pytest.fixture
async def start(tmp_path, access_log):
    """start(engine_url, **timeouts) -> a gateway on a real socket in front of that engine."""
    running: list[Running] = []

    async def start(engine_url: str, **timeouts: float) -> Running:
        gateway = await serve(engine_url, tmp_path / "a.db", access_log, timeouts=timeouts)
        running.append(gateway)
        return gateway

    yield start
    for gateway in running:
        await gateway.runner.cleanup()


async def fake_engine(aiohttp_server, script: Script) -> str:
    return str((await aiohttp_server(create_fake_upstream(script))).make_url("")).rstrip("/")


async def post(url: str, **body) -> tuple[int, str]:  # type: ignore[no-untyped-def]
    async with (
        aiohttp.ClientSession() as session,
        session.post(url + CHAT, json=chat_body(**body), headers=ACK) as resp,
    ):
        return resp.status, await asyncio.wait_for(resp.text(), WAIT_S)


def sse_data(text: str) -> list[str]:
    return [f.removeprefix("data: ") for f in text.split("\n\n") if f]


def until_eof(head: bytes = b"") -> Server:
    """An engine that reads a request, sends `head`, then nothing until its client goes (server.closed)."""

    async def handler(reader: Reader, writer: Writer, n: int) -> None:
        await server.read_request(reader)
        writer.write(head)
        assert await reader.read() == b""

    server = Server(handler)
    return server


async def test_a_whole_answer_slower_than_the_stream_limits_but_within_the_total_succeeds(
    aiohttp_server, start
):
    engine = await fake_engine(aiohttp_server, Script(model=MODEL, delay_s=1.0))
    gateway = await start(engine, first_byte_s=SHORT, stream_stall_s=SHORT, total_s=LONG)
    status, body = await post(gateway.url)
    assert status == 200 and json.loads(body)["choices"][0]["message"]["content"].startswith("tok0")


async def test_a_whole_answer_past_the_total_limit_is_504_and_the_engine_sees_the_connection_close(start):
    async with until_eof() as engine:
        gateway = await start(engine.url, first_byte_s=LONG, stream_stall_s=LONG, total_s=SHORT)
        status, body = await post(gateway.url)
        assert status == 504
        error = json.loads(body)["error"]
        assert error["code"] == "engine_timeout" and "total limit" in error["message"]
        await asyncio.wait_for(engine.closed.wait(), WAIT_S)  # vLLM aborts a request whose client went
    assert len(engine.requests) == 1


async def test_a_stream_without_a_head_past_the_first_byte_limit_is_a_504_envelope(aiohttp_server, start):
    engine = await fake_engine(aiohttp_server, Script(model=MODEL, delay_s=1.0))
    gateway = await start(engine, first_byte_s=SHORT, stream_stall_s=LONG, total_s=LONG)
    status, body = await post(gateway.url, stream=True)
    assert status == 504
    error = json.loads(body)["error"]
    assert error["code"] == "engine_timeout" and "first byte" in error["message"]


async def test_a_stream_whose_first_chunk_comes_past_the_first_byte_limit_ends_in_band(start):
    """vLLM sends a stream's head at once and its first chunk after queueing and prefill: the head alone does
    not end the first-byte limit."""
    async with until_eof(STREAM_HEAD) as engine:
        gateway = await start(engine.url, first_byte_s=SHORT, stream_stall_s=LONG, total_s=LONG)
        status, body = await post(gateway.url, stream=True)
        assert status == 200
        frames = sse_data(body)
        assert frames[-1] == "[DONE]"
        error = json.loads(frames[-2])["error"]
        assert error["code"] == "engine_timeout" and "first byte" in error["message"]
        await asyncio.wait_for(engine.closed.wait(), WAIT_S)


async def test_a_first_chunk_slower_than_the_stall_limit_but_within_the_first_byte_limit_is_relayed(
    aiohttp_server, start
):
    async def chat(request: web.Request) -> web.StreamResponse:
        body = await request.json()
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)  # the head at once, as vLLM does
        await asyncio.sleep(1.0)  # queueing and prefill
        for frame in stream_frames(Script(model=MODEL), body, chat=True):
            await resp.write(frame)
        return resp

    app = web.Application()
    app.router.add_post(CHAT, chat)
    engine = str((await aiohttp_server(app)).make_url("")).rstrip("/")
    gateway = await start(engine, first_byte_s=LONG, stream_stall_s=SHORT, total_s=SHORT)
    status, body = await post(gateway.url, stream=True)
    frames = sse_data(body)
    assert status == 200 and frames[-1] == "[DONE]" and not any('"error"' in f for f in frames)


async def test_a_stream_that_stalls_between_chunks_ends_with_an_in_band_504_then_done(aiohttp_server, start):
    script = Script(model=MODEL, chunks=4, gap_s=2.0)
    engine = await fake_engine(aiohttp_server, script)
    gateway = await start(engine, first_byte_s=LONG, stream_stall_s=SHORT, total_s=SHORT)
    status, body = await post(gateway.url, stream=True)
    frames = sse_data(body)
    assert status == 200 and frames[-1] == "[DONE]"
    error = json.loads(frames[-2])["error"]
    assert error["code"] == "engine_timeout" and "stall limit" in error["message"]
    await eventually(lambda: script.cancelled == 1, "the engine saw its client go")


def big_frames_engine(frames: int) -> web.Application:
    """Streams `frames` SSE chunks of 256 KiB as fast as it may: far more than every buffer on the way holds."""
    meta = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": MODEL}
    delta = {"index": 0, "delta": {"content": "x" * 256 * 1024}}
    frame = b"data: " + orjson.dumps({**meta, "choices": [delta]}) + b"\n\n"

    async def chat(request: web.Request) -> web.StreamResponse:
        await request.read()
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        for _ in range(frames):
            await resp.write(frame)
        await resp.write(b"data: [DONE]\n\n")
        return resp

    app = web.Application()
    app.router.add_post(CHAT, chat)
    return app


def paused(gateway: Running) -> bool:
    """Whether the gateway has stopped reading an engine answer because its client is behind."""
    return any(c.response is not None and c.response._paused for c in list(gateway.gw.upstream._pool._all))


async def test_a_client_slower_than_the_engine_is_not_cut_by_the_stall_limit(aiohttp_server, start):
    frames = 24
    engine = str((await aiohttp_server(big_frames_engine(frames))).make_url("")).rstrip("/")
    gateway = await start(engine, first_byte_s=LONG, stream_stall_s=SHORT, total_s=SHORT)
    body = orjson.dumps(chat_body(stream=True))
    reader, writer = await connect(gateway.port, rcvbuf=4096)
    writer.write(request_head(length=len(body)) + body)
    await eventually(lambda: paused(gateway), "the gateway paused reading the engine")
    await asyncio.sleep(SHORT * 4)  # the client reads nothing, far past the stall limit
    received = b""
    async with asyncio.timeout(WAIT_S * 3):
        while not received.endswith(b"\r\n0\r\n\r\n"):  # the last chunk of a chunked answer
            data = await reader.read(2**20)
            assert data, "the gateway closed the stream"
            received += data
    writer.close()
    assert b'"error"' not in received and b"data: [DONE]" in received
    assert received.count(b"x") >= frames * 256 * 1024  # every frame, none cut


async def test_the_pool_stall_limit_ignores_time_its_caller_kept_reading_paused(monkeypatch):
    monkeypatch.setattr(http1, "HIGH_WATER", 4096)

    async def handler(reader: Reader, writer: Writer, n: int) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(STREAM_HEAD)
        for _ in range(64):  # steadily, as fast as the caller lets it
            writer.write(chunk(b"x" * 4096))
            await writer.drain()
        writer.write(b"0\r\n\r\n")
        await reader.read()

    async with Server(handler) as server:
        pool = Pool(server.url, first_byte_s=LONG, stream_stall_s=SHORT)
        resp = await pool.request("POST", "/s", b"{}", stream=True)
        await eventually(lambda: resp._paused, "reading paused at the high-water mark")
        await asyncio.sleep(SHORT * 4)  # the caller is slow, not the engine
        assert len(await resp.read()) == 64 * 4096
        pool.close()
