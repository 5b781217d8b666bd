"""Slow, idle and non-reading clients over raw sockets: each limit of gateway.client closes or refuses them, and
none of them holds a concurrency slot (settings are tiny here so the tests do not wait)."""

from __future__ import annotations

import asyncio
import logging

import aiohttp
import orjson
import pytest
from aiohttp import web

from serve.gateway.connections import GuardedHandler
from testkit.fake_engine import Script, create_fake_upstream
from tests.conftest import ACK, MODEL, chat_body
from tests.socket.gateway_on_socket import (
    CHAT,
    closed_by_server,
    connect,
    eventually,
    read_response,
    request_head,
    serve,
)

BIG = (
    256 * 1024
)  # per engine frame: a few dozen fill every buffer between the engine and a client not reading


@pytest.fixture
async def start(aiohttp_server, tmp_path, access_log):
    """start(engine_app=None, **gateway settings) -> a gateway on a real socket in front of that engine."""
    running = []

    async def start(engine_app: web.Application | None = None, **settings):  # type: ignore[no-untyped-def]
        engine = await aiohttp_server(engine_app or create_fake_upstream(Script(model=MODEL)))
        gateway = await serve(str(engine.make_url("")).rstrip("/"), tmp_path / "a.db", access_log, **settings)
        running.append(gateway)
        return gateway

    yield start
    for gateway in running:
        await gateway.runner.cleanup()


def big_answers_engine(frames: int = 64) -> web.Application:
    """An engine whose answers are far larger than socket buffers: `frames` SSE frames, or one huge JSON (a
    request's max_tokens, when given, is the number of frames: a small answer for a client that reads)."""
    content = "x" * BIG
    meta = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": MODEL}
    frame = (
        b"data: " + orjson.dumps({**meta, "choices": [{"index": 0, "delta": {"content": content}}]}) + b"\n\n"
    )

    async def chat(request: web.Request) -> web.StreamResponse:
        body = await request.json()
        n = body.get("max_tokens", frames)
        if not body.get("stream"):
            message = {"role": "assistant", "content": content * n}
            return web.json_response(
                {**meta, "object": "chat.completion", "choices": [{"index": 0, "message": message}]}
            )
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        for _ in range(n):
            await resp.write(frame)
        await resp.write(b"data: [DONE]\n\n")
        return resp

    app = web.Application(client_max_size=2**20)
    app.router.add_post(CHAT, chat)
    return app


def errors_of(access_log) -> list[str | None]:  # type: ignore[no-untyped-def]
    return [line.get("error") for line in access_log.lines()]


async def post_ok(url: str, **body) -> int:  # type: ignore[no-untyped-def]
    async with (
        aiohttp.ClientSession() as session,
        session.post(url + CHAT, json=chat_body(**body), headers=ACK) as r,
    ):
        await r.read()
        return r.status


async def test_a_request_head_not_complete_in_time_is_closed_on_new_and_keep_alive_connections(start):
    gateway = await start(client={"header_timeout_s": 1.0, "idle_timeout_s": 60})
    reader, writer = await connect(gateway.port)
    writer.write(b"POST /v1/chat/completions HTTP/1.1\r\nHost: gateway\r\n")  # and nothing more
    assert await closed_by_server(reader)

    reader, writer = await connect(gateway.port)
    writer.write(request_head("/v1/terms", method="GET"))
    assert (await read_response(reader))[0] == 200
    await asyncio.sleep(1.5)  # idle between requests is the idle timeout's: the head deadline is not running
    writer.write(request_head("/v1/terms", method="GET"))
    assert (await read_response(reader))[0] == 200
    writer.write(b"GET /v1/terms HTTP/1.1\r\n")  # a keep-alive request's head starts its own deadline
    assert await closed_by_server(reader)


async def test_an_idle_connection_is_closed_after_the_idle_timeout(start):
    gateway = await start(client={"idle_timeout_s": 0.3, "header_timeout_s": 60})
    silent, _ = await connect(gateway.port)
    reader, writer = await connect(gateway.port)
    writer.write(request_head("/v1/terms", method="GET"))
    assert (await read_response(reader))[0] == 200
    assert await closed_by_server(reader)
    assert await closed_by_server(silent)


async def test_stalled_bodies_hold_no_slot_and_get_a_408_envelope(start):
    gateway = await start(limits={"max_concurrent": 2}, client={"body_timeout_s": 1.0})
    stalled = []
    for _ in range(4):  # twice the slots: each sends its head and the start of its body, then nothing
        reader, writer = await connect(gateway.port)
        writer.write(request_head(length=200) + b'{"model":')
        stalled.append((reader, writer))
    await eventually(lambda: gateway.gw.bodies.held == 4 * 200, "the four bodies are being read")
    assert gateway.gw.limiter.active == 0
    assert await post_ok(gateway.url) == 200  # a whole request still gets through
    for reader, _ in stalled:
        status, headers, body = await read_response(reader)
        assert status == 408 and headers["connection"] == "close"
        assert orjson.loads(body)["error"]["code"] == "request_body_timeout"
    await eventually(lambda: gateway.gw.bodies.held == 0, "the stalled bodies' bytes are released")


async def test_bodies_beyond_the_buffer_cap_are_refused_before_they_are_read(start):
    gateway = await start(
        max_body_bytes=1000,
        images={"volumes": {"max_body_bytes": 1000}},
        client={"max_buffered_body_bytes": 1500, "body_timeout_s": 60},
    )
    _, writer = await connect(gateway.port)
    writer.write(request_head(length=1000) + b'{"model":')  # holds 1000 of the 1500 bytes while it stalls
    await eventually(lambda: gateway.gw.bodies.held == 1000, "the stalled body is counted")
    refused, headers, body = await _raw_post(gateway.port, orjson.dumps(chat_body(pad="p" * 600)))
    assert (refused, headers["retry-after"]) == (503, "1")
    assert orjson.loads(body)["error"]["code"] == "request_buffer_full"
    assert (await _raw_post(gateway.port, orjson.dumps(chat_body())))[0] == 200  # a small one fits
    chunked = b"".join(b"%x\r\n%s\r\n" % (200, b" " * 200) for _ in range(3)) + b"0\r\n\r\n"
    status, _, body = await _raw_post(gateway.port, chunked, chunked=True)  # counted as it arrives
    assert status == 503 and orjson.loads(body)["error"]["code"] == "request_buffer_full"
    too_big, _, body = await _raw_post(gateway.port, b"", declared=5000)  # refused from its Content-Length
    assert too_big == 413 and orjson.loads(body)["error"]["code"] == "request_too_large"
    writer.close()
    await eventually(lambda: gateway.gw.bodies.held == 0, "every body's bytes are released")


async def _raw_post(port: int, body: bytes, *, chunked: bool = False, declared: int | None = None):  # type: ignore[no-untyped-def]
    reader, writer = await connect(port)
    writer.write(request_head(length=None if chunked else (declared or len(body))) + body)
    try:
        return await read_response(reader)
    finally:
        writer.close()


async def test_a_client_that_stops_reading_a_stream_loses_it_and_its_slot(start, access_log, caplog):
    caplog.set_level(logging.DEBUG)
    gateway = await start(big_answers_engine(), limits={"max_concurrent": 1}, client={"write_timeout_s": 0.5})
    reader, writer = await connect(gateway.port, rcvbuf=4096)
    body = orjson.dumps(chat_body(stream=True))
    writer.write(request_head(length=len(body)) + body)  # and never read
    await eventually(
        lambda: "client_write_timeout" in errors_of(access_log), "the stream ended on its deadline"
    )
    assert access_log.lines()[-1]["status"] == 408  # a client-side timeout, not a server error
    assert gateway.gw.limiter.active == 0 and await post_ok(gateway.url, stream=True, max_tokens=1) == 200
    assert await closed_by_server(reader)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_a_client_that_stops_reading_a_whole_answer_is_dropped(start, caplog):
    caplog.set_level(logging.INFO)
    gateway = await start(big_answers_engine(), client={"write_timeout_s": 0.5})
    reader, writer = await connect(gateway.port, rcvbuf=4096)
    body = orjson.dumps(chat_body())
    writer.write(request_head(length=len(body)) + body)
    await eventually(
        lambda: "client-side timeout" in caplog.text, "the connection was dropped on its deadline"
    )
    await eventually(lambda: gateway.runner.server.open == 0, "no connection is left open")  # type: ignore[union-attr]
    assert await closed_by_server(reader)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_connections_beyond_the_cap_are_closed_at_once(start):
    gateway = await start(client={"max_connections": 2})
    held = [await connect(gateway.port) for _ in range(2)]
    await eventually(lambda: gateway.runner.server.open == 2, "both connections are accepted")  # type: ignore[union-attr]
    extra, _ = await connect(gateway.port)
    assert await closed_by_server(extra)
    held[0][1].close()
    await eventually(lambda: gateway.runner.server.open == 1, "a connection was freed")  # type: ignore[union-attr]
    reader, writer = await connect(gateway.port)
    writer.write(request_head("/v1/terms", method="GET"))
    assert (await read_response(reader))[0] == 200


async def test_an_answer_outlasting_the_head_deadline_is_never_cut_by_it(start, monkeypatch):
    """Body bytes that arrive after aiohttp hands the request over but before its handler's task first runs
    (a body sent after its head: the usual case for a large one) must not start a new head deadline: that closed
    the connection header_timeout_s into a long answer. The race is made certain here by feeding such bytes."""
    original = GuardedHandler._handle_request

    def body_bytes_in_the_gap(self, *args):  # type: ignore[no-untyped-def]
        handling = original(self, *args)
        self.data_received(b"")  # what more of the body, arriving in the same loop turn, does first
        return handling

    monkeypatch.setattr(GuardedHandler, "_handle_request", body_bytes_in_the_gap)
    script = Script(model=MODEL, chunks=12, gap_s=0.2)  # ~2.4 s of answer: past the 0.5 s head deadline
    gateway = await start(create_fake_upstream(script), client={"header_timeout_s": 0.5})
    async with (
        aiohttp.ClientSession() as session,
        session.post(gateway.url + CHAT, json=chat_body(stream=True), headers=ACK) as resp,
    ):
        text = await resp.text()  # a cut connection raises here
    assert resp.status == 200 and text.rstrip().endswith("data: [DONE]")
