"""The capacity harness's own HTTP: response framing, the raw client, and the bare-protocol fake upstream."""

import asyncio
import json

import pytest

from benchmarks.core import records as R
from benchmarks.core.client import Target, make_session, request_headers, send
from benchmarks.core.procs import free_port
from benchmarks.core.raw_client import RawClient, ResponseReader, request_bytes
from testkit.fake_engine import Script
from testkit.fast_engine import serve
from tests.conftest import MODEL

CHUNKED = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"5\r\nhello\r\n7\r\n, world\r\n0\r\n\r\n"
)
FIXED = b"HTTP/1.1 404 Not Found\r\nContent-Length: 4\r\nConnection: close\r\n\r\nnope"


@pytest.mark.parametrize("raw", [CHUNKED, FIXED])
def test_reader_decodes_the_body_whatever_the_read_boundaries(raw):
    whole = ResponseReader()
    expected = whole.feed(raw)
    assert whole.done
    for cut in range(1, len(raw)):
        reader = ResponseReader()
        got = reader.feed(raw[:cut]) + reader.feed(raw[cut:])
        assert got == expected and reader.done
    assert expected in (b"hello, world", b"nope")


def test_reader_reads_status_and_connection_close():
    reader = ResponseReader()
    reader.feed(FIXED)
    assert reader.status == 404 and not reader.keep_alive
    chunked = ResponseReader()
    chunked.feed(CHUNKED[:90])
    assert chunked.status == 200 and not chunked.done


def test_request_bytes_carry_length_and_the_acknowledgement():
    raw = request_bytes(Target("t", "http://127.0.0.1:9"), b"{}", request_headers())
    head, body = raw.split(b"\r\n\r\n")
    assert head.startswith(b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:9")
    assert b"HAI-DEF-Acknowledged: 2024-11-15" in head and b"Content-Length: 2" in head and body == b"{}"


def chat(stream: bool) -> bytes:
    body = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "stream": stream}
    if stream:
        body["stream_options"] = {"include_usage": True}
    return json.dumps(body).encode()


@pytest.fixture
async def fast_upstream():
    bound: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(serve(Script(chunks=4, model=MODEL, record=False), "127.0.0.1", 0, bound))
    yield f"http://127.0.0.1:{await bound}"
    task.cancel()


async def test_raw_client_through_the_gateway_sees_the_disclaimer(gateway):
    target = Target("gateway", str(gateway.make_url("")).rstrip("/"), expect_disclaimer=True)
    client = RawClient(target)
    for stream in (False, True, False):  # the connection is reused between them
        rec = await client.send(request_bytes(target, chat(stream), request_headers()), stream=stream)
        assert rec.ok and rec.disclaimer and rec.output_tokens == 8, rec
    assert len(client._idle) == 1
    client.close()


async def test_raw_client_reports_status_and_connect_errors(gateway):
    target = Target("gateway", str(gateway.make_url("")).rstrip("/"))
    refused = await RawClient(target).send(request_bytes(target, chat(False), {}), stream=False)
    assert refused.error == R.http_error(403)
    nowhere = Target("x", f"http://127.0.0.1:{free_port()}")
    assert (await RawClient(nowhere).send(b"", stream=False)).error == R.CONNECT


async def test_fast_upstream_answers_like_the_aiohttp_fake(fast_upstream, engine, script):
    script.chunks = 4
    target, twin = Target("fast", fast_upstream), Target("fake", str(engine.make_url("")).rstrip("/"))
    async with make_session() as session:
        for stream in (False, True):
            fast = await send(session, target, chat(stream), stream=stream)
            fake = await send(session, twin, chat(stream), stream=stream)
            assert fast.ok and fake.ok
            assert (
                (fast.output_tokens, fast.chunks)
                == (fake.output_tokens, fake.chunks)
                == (4, 4 if stream else 0)
            )
        async with session.get(fast_upstream + "/health") as resp:
            assert resp.status == 200
        async with session.post(fast_upstream + "/nowhere", data=b"{}") as resp:
            assert resp.status == 404
