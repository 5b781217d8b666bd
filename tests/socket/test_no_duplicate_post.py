"""A generation never runs twice: a request the engine may have read is never resent (its loss is a 502), and
only a connection seen closed before the request was written is passed over for a fresh one."""

from __future__ import annotations

import asyncio
import json

import aiohttp

from serve.gateway.engine_client.http1 import Pool
from testkit.fake_engine import Script, whole_answer
from tests.conftest import ACK, chat_body
from tests.socket.gateway_on_socket import CHAT, WAIT_S, eventually, serve
from tests.socket.test_http1 import Reader, Server, Writer, answer

DIE = "read me, then drop the connection"


def dies_on_request() -> Server:
    """Keep-alive engine: answers each chat request, except one saying DIE: read, then closed unanswered."""

    async def handler(reader: Reader, writer: Writer, n: int) -> None:
        while True:
            request = json.loads((await server.read_request(reader)).partition(b"\r\n\r\n")[2])
            if request["messages"][-1]["content"] == DIE:
                return  # the engine died, or its keep-alive timer fired, after reading the request
            writer.write(answer(json.dumps(whole_answer(Script(), request, chat=True)).encode()))

    server = Server(handler)
    return server


async def test_a_request_the_engine_read_then_dropped_is_a_502_and_never_resent(tmp_path, access_log):
    async with dies_on_request() as engine:
        gateway = await serve(engine.url, tmp_path / "a.db", access_log)
        try:
            async with aiohttp.ClientSession(headers=ACK) as session:
                for stream in (False, True):
                    # the first leaves a pooled keep-alive connection, which the second is written to
                    async with session.post(gateway.url + CHAT, json=chat_body(stream=False)) as ok:
                        assert ok.status == 200
                    body = chat_body(stream=stream, messages=[{"role": "user", "content": DIE}])
                    async with session.post(gateway.url + CHAT, json=body) as lost:
                        error = (await asyncio.wait_for(lost.json(), WAIT_S))["error"]
                        assert lost.status == 502 and error["code"] == "engine_error"
        finally:
            await gateway.runner.cleanup()
    assert len(engine.requests) == 4  # each once: none of them twice
    assert sum(DIE.encode() in r for r in engine.requests) == 2


async def test_a_pooled_connection_the_engine_closed_while_idle_is_passed_over_for_a_fresh_one():
    async def handler(reader: Reader, writer: Writer, n: int) -> None:
        await server.read_request(reader)
        writer.write(answer(b'{"n": %d}' % n))  # keep-alive, as far as the client knows
        await writer.drain()  # then the server's keep-alive timer fires: closed idle

    server = Server(handler)
    async with server:
        pool = Pool(server.url)
        assert await (await pool.request("POST", "/a", b"{}")).read() == b'{"n": 1}'
        await eventually(lambda: all(c.closed for c in pool._idle), "the pool saw the server close")
        assert await (await pool.request("POST", "/b", b"{}")).read() == b'{"n": 2}'
        pool.close()
    assert server.connections == 2 and len(server.requests) == 2


def test_idle_connections_are_dropped_two_seconds_before_vllms_keep_alive_timeout():
    vllm_keep_alive_s = 5  # VLLM_HTTP_TIMEOUT_KEEP_ALIVE's default (vllm/envs.py)
    assert Pool("http://127.0.0.1:1").keepalive_s <= vllm_keep_alive_s - 2
