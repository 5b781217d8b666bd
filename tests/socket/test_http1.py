"""The gateway's upstream client (serve.gateway.engine_client.http1) against scripted servers on real loopback sockets."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from serve.gateway.engine_client import http1
from serve.gateway.engine_client.http1 import ConnectFailed, Disconnected, Interrupted, Pool, ReadTimeout

Reader, Writer = asyncio.StreamReader, asyncio.StreamWriter
Handler = Callable[[Reader, Writer, int], Awaitable[None]]


class Server:
    """Calls `handler(reader, writer, connection number)` per connection; keeps what each request sent."""

    def __init__(self, handler: Handler) -> None:
        self.handler, self.connections, self.requests = handler, 0, []
        self.closed = asyncio.Event()

    async def __aenter__(self) -> Server:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.server.close()

    async def _serve(self, reader: Reader, writer: Writer) -> None:
        self.connections += 1
        try:
            await self.handler(reader, writer, self.connections)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self.closed.set()
            writer.close()

    async def read_request(self, reader: Reader) -> bytes:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            (
                int(line.split(b":")[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            ),
            0,
        )
        request = head + await reader.readexactly(length)
        self.requests.append(request)
        return request


def answer(body: bytes, extra: bytes = b"") -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n%s\r\n%s" % (
        len(body),
        extra,
        body,
    )


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def replies(raw: bytes, *, linger: bool = False) -> Handler:
    """A server that reads a request head, sends `raw`, then closes (or, lingering, waits for the client to)."""

    async def handler(reader: Reader, writer: Writer, n: int) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(raw)
        if linger:
            await reader.read()

    return handler


STREAM_HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"


def keep_answering(body: bytes | None = None) -> Server:
    """A server that answers every request on a connection: `body`, or {"n": <connection number>}."""

    async def handler(reader: Reader, writer: Writer, n: int) -> None:
        while True:
            await server.read_request(reader)
            writer.write(answer(body if body is not None else b'{"n": %d}' % n))

    server = Server(handler)
    return server


async def test_requests_reuse_one_keep_alive_connection_and_send_what_was_asked():
    async with keep_answering() as server:
        pool = Pool(server.url + "/prefix/")
        for _ in range(3):
            async with await pool.request("POST", "/v1/x", b'{"a":1}', {"X-Request-Id": "r-1"}) as resp:
                assert (resp.status, resp.content_type, await resp.read()) == (
                    200,
                    "application/json",
                    b'{"n": 1}',
                )
        pool.close()
    assert server.connections == 1
    head, _, body = server.requests[0].partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert lines[0] == b"POST /prefix/v1/x HTTP/1.1"
    assert {
        b"Host: 127.0.0.1:%d" % int(server.url.rsplit(":", 1)[1]),
        b"X-Request-Id: r-1",
        b"Content-Length: 7",
    } <= set(lines[1:])
    assert body == b'{"a":1}'


async def test_a_stream_arrives_chunk_by_chunk_and_dechunked():
    go_on = asyncio.Event()

    async def handler(reader: Reader, writer: Writer, n: int) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(STREAM_HEAD + chunk(b"data: 1\n\n"))
        await go_on.wait()
        writer.write(chunk(b"data: 2\n\n") + b"0\r\n\r\n")
        await reader.read()

    async with Server(handler) as server:
        pool = Pool(server.url)
        resp = await pool.request("GET", "/s")
        got = [await resp.__anext__()]
        go_on.set()  # the second chunk is sent only after the first was received
        got += [data async for data in resp]
        resp.close()
        pool.close()
    assert got == [b"data: 1\n\n", b"data: 2\n\n"]


async def test_a_request_written_to_a_pooled_connection_then_unanswered_is_an_error_never_a_resend():
    async def handler(reader: Reader, writer: Writer, n: int) -> None:
        await server.read_request(reader)
        writer.write(answer(b"first"))
        await writer.drain()
        await server.read_request(reader)  # read the next request, then close without a byte: it may have run
        await asyncio.sleep(1)

    server = Server(handler)
    async with server:
        pool = Pool(server.url)
        assert await (await pool.request("GET", "/a")).read() == b"first"
        with pytest.raises(Disconnected, match="before answering"):
            await pool.request("POST", "/b", b"{}", stream=True)
        pool.close()
    assert server.connections == 1 and len(server.requests) == 2


async def test_a_fresh_connection_closed_unanswered_is_an_error_not_a_retry():
    async with Server(replies(b"")) as server:
        with pytest.raises(Disconnected, match="before answering"):
            await Pool(server.url).request("GET", "/a")
    assert server.connections == 1


async def test_idle_connections_expire_before_the_servers_keep_alive_timeout():
    async with keep_answering() as server:
        pool = Pool(server.url, keepalive_s=0.05)
        await (await pool.request("GET", "/a")).read()
        await asyncio.sleep(0.1)
        await (await pool.request("GET", "/b")).read()
        pool.close()
    assert server.connections == 2


async def test_connection_close_in_the_answer_is_honoured():
    async def handler(reader: Reader, writer: Writer, n: int) -> None:
        await server.read_request(reader)
        writer.write(answer(b"bye", b"Connection: close\r\n"))
        await writer.drain()
        await reader.read()

    server = Server(handler)
    async with server:
        pool = Pool(server.url)
        for _ in range(2):
            assert await (await pool.request("GET", "/a")).read() == b"bye"
        pool.close()
    assert server.connections == 2


async def test_a_stream_silent_past_its_stall_limit_is_a_read_timeout():
    async with Server(replies(STREAM_HEAD + chunk(b"data: 1\n\n"), linger=True)) as server:
        pool = Pool(server.url, stream_stall_s=0.2)
        resp = await pool.request("GET", "/s", stream=True)
        assert await resp.__anext__() == b"data: 1\n\n"
        with pytest.raises(ReadTimeout):
            await resp.read()
        await asyncio.wait_for(server.closed.wait(), 2)  # the connection was closed, not left hanging


async def test_an_answer_cut_mid_body_is_a_disconnect():
    async with Server(replies(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial")) as server:
        resp = await Pool(server.url).request("GET", "/a")
        with pytest.raises(Disconnected, match="mid-answer"):
            await resp.read()


async def test_an_answer_without_framing_ends_with_its_connection():
    async with Server(replies(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nall of it")) as server:
        resp = await Pool(server.url).request("GET", "/a")
        assert (resp.content_type, await resp.read()) == ("text/plain", b"all of it")


async def test_a_malformed_answer_is_a_disconnect():
    async with Server(replies(b"NOT HTTP AT ALL\r\n\r\n", linger=True)) as server:
        with pytest.raises(Disconnected, match="malformed"):
            await Pool(server.url).request("GET", "/a")


async def test_nobody_listening_is_a_connect_failure_without_the_address():
    async with keep_answering() as server:
        url = server.url
    with pytest.raises(ConnectFailed) as caught:
        await Pool(url).request("GET", "/a")
    assert caught.value.kind == "connect" and "127.0.0.1" not in str(caught.value)


async def test_closing_an_unfinished_answer_closes_its_connection():
    async def handler(reader: Reader, writer: Writer, n: int) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(STREAM_HEAD + chunk(b"data: 1\n\n"))
        assert await reader.read() == b""  # EOF: what vLLM takes as the client going away

    async with Server(handler) as server:
        pool = Pool(server.url)
        resp = await pool.request("GET", "/s")
        await resp.__anext__()
        resp.close()
        await asyncio.wait_for(server.closed.wait(), 2)
        assert pool._idle == []


async def test_a_body_read_slower_than_it_comes_pauses_the_upstream_and_arrives_whole(monkeypatch):
    monkeypatch.setattr(http1, "HIGH_WATER", 4096)
    blob = bytes(range(256)) * 4096  # 1 MiB

    async def handler(reader: Reader, writer: Writer, n: int) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(answer(blob))
        await writer.drain()
        await reader.read()

    async with Server(handler) as server:
        pool = Pool(server.url)
        resp = await pool.request("GET", "/big")
        await asyncio.sleep(0.1)  # the server writes; nobody reads
        assert resp._fed < len(blob)  # reading stopped at the high-water mark
        assert await resp.read() == blob
        pool.close()


async def test_an_answer_that_ends_in_the_read_that_paused_it_leaves_its_connection_reading(monkeypatch):
    monkeypatch.setattr(http1, "HIGH_WATER", 4096)
    blob = b"x" * 8192
    async with keep_answering(blob) as server:
        pool = Pool(server.url)
        for _ in range(3):
            resp = await pool.request("GET", "/big")
            await asyncio.sleep(0.05)  # the whole answer is in before anyone reads
            assert await resp.read() == blob
        pool.close()
    assert server.connections == 1


async def test_fail_in_flight_ends_every_answer_awaited_or_being_read_and_drops_its_connection():
    gone: list[bytes] = []

    async def handler(reader: Reader, writer: Writer, n: int) -> None:
        while True:
            path = (await server.read_request(reader)).split(b" ")[1]
            if path == b"/idle":
                writer.write(answer(b"{}"))
                continue
            if path == b"/stream":
                writer.write(STREAM_HEAD + chunk(b"data: 1\n\n"))
            assert await reader.read() == b""  # the client went: vLLM aborts the generation
            gone.append(path)
            return

    server = Server(handler)
    async with server:
        pool = Pool(server.url)
        await (await pool.request("GET", "/idle")).read()
        awaiting_head = asyncio.create_task(pool.request("POST", "/head", b"{}", stream=True))
        reading = await pool.request("POST", "/stream", b"{}", stream=True)
        assert await reading.__anext__() == b"data: 1\n\n"
        await (await pool.request("GET", "/idle")).read()  # an idle connection: nothing in flight on it
        while len(server.requests) < 4:
            await asyncio.sleep(0.01)

        assert pool.fail_in_flight(Interrupted("the gateway is shutting down")) == 2
        with pytest.raises(Interrupted, match="shutting down"):
            await awaiting_head
        with pytest.raises(Interrupted):
            await reading.read()
        async with asyncio.timeout(20):
            while len(gone) < 2:
                await asyncio.sleep(0.01)
        assert sorted(gone) == [b"/head", b"/stream"]
        assert await (await pool.request("GET", "/idle")).read() == b"{}"  # the pool serves on
        pool.close()
    assert Interrupted("x").kind == "shutdown"


def test_only_plain_http_upstreams_and_no_header_injection():
    with pytest.raises(ValueError, match="http://"):
        Pool("https://engine.internal:8443")
    with pytest.raises(ValueError, match="line breaks"):
        Pool("http://127.0.0.1:1")._encode("GET", "/", b"", {"X-Request-Id": "a\r\nEvil: 1"})


def test_serve_gateway_refuses_an_upstream_it_cannot_speak_to_with_a_clear_error(capsys):
    from serve.__main__ import main

    assert main(["gateway", "--upstream", "https://engine.internal:8443"]) == 2
    assert "--upstream: the upstream must be an http:// URL" in capsys.readouterr().err
