"""A client that leaves mid non-streamed request: the gateway's handler is cancelled and closes its engine
connection, which is how vLLM learns to abort the generation (the streamed twin: tests/gateway/test_proxy.py)."""

from __future__ import annotations

import orjson

from testkit.fake_engine import Script, create_fake_upstream
from tests.conftest import MODEL, chat_body
from tests.socket.gateway_on_socket import connect, eventually, request_head, serve


async def test_client_disconnect_mid_unary_request_closes_the_engine_request(
    aiohttp_server, tmp_path, access_log
):
    script = Script(model=MODEL, delay_s=600)  # an answer that would take ten minutes
    engine = await aiohttp_server(create_fake_upstream(script))  # test servers cancel handlers on disconnect
    gateway = await serve(str(engine.make_url("")).rstrip("/"), tmp_path / "a.db", access_log)
    try:
        body = orjson.dumps(chat_body(max_tokens=4000))
        _, writer = await connect(gateway.port)
        writer.write(request_head(length=len(body), extra="X-Request-Id: gone-1\r\n") + body)
        await eventually(lambda: len(script.seen) == 1, "the engine received the request")
        writer.close()  # the client goes away before any answer
        await eventually(lambda: script.cancelled == 1, "the engine saw its request's connection close")
        await eventually(lambda: bool(access_log.lines()), "the access log line")
        line = access_log.lines()[-1]
        assert (line["request_id"], line["status"]) == ("gone-1", 499)
    finally:
        await gateway.runner.cleanup()
