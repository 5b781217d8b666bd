"""Tier 1: what nobody expected still answers in the OpenAI envelope: a malformed 200 from the engine is a 502, a
failing handler a 500; one log line with the exception's type and the request id, never its message or the body."""

import logging

import pytest
from aiohttp import web

from serve.config import GatewaySettings, TermsSettings
from serve.gateway.admission.api_keys import KeyRing
from serve.gateway.app import GatewayConfig, create_app
from serve.gateway.stores.sqlite import SqliteAckStore
from tests.conftest import ACK, KEY_SECRET, MODEL, VERSION, chat_body

CANARY = "CANARY-exception-text-7f3a"
PROMPT = "CANARY-prompt-b2c9"
RID = "req-unexpected-1"


def assert_envelope(body: dict, type_: str, code: str) -> None:
    error = body["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert (error["type"], error["code"]) == (type_, code)
    assert CANARY not in error["message"] and PROMPT not in error["message"]


def engine_answering(body: bytes) -> web.Application:
    """An engine whose every answer is a 200 `application/json` with this body."""

    async def answer(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(body=body, content_type="application/json")

    app = web.Application()
    app.router.add_post("/v1/chat/completions", answer)
    return app


class BrokenKeys(KeyRing):
    def verify(self, token):
        raise RuntimeError(f"{CANARY} {token}")


class BrokenStore(SqliteAckStore):
    async def acknowledge(self, key_hash: str, version: str) -> str:
        raise KeyError(CANARY)


@pytest.fixture
def build(aiohttp_client, engine, db, registry, access_log):
    async def make(*, upstream: str | None = None, keys: KeyRing | None = None, store=None, routes=()):
        gs = GatewaySettings(terms=TermsSettings(database=db))
        app = create_app(
            GatewayConfig(gs, [MODEL], upstream or str(engine.make_url("")).rstrip("/")),
            registry=registry,
            store=store or SqliteAckStore(db),
            keys=keys or KeyRing(),
            access_log=access_log,
        )
        for path, handler in routes:
            app.router.add_get(path, handler)
        return await aiohttp_client(app)

    return make


@pytest.mark.parametrize(
    "answer", [b'{"choices": [' + PROMPT.encode(), b'[{"id": "' + PROMPT.encode() + b'"}]']
)
async def test_a_malformed_200_from_the_engine_is_a_502_envelope(build, aiohttp_server, access_log, answer):
    engine = await aiohttp_server(engine_answering(answer))
    gw = await build(upstream=str(engine.make_url("")).rstrip("/"))
    resp = await gw.post("/v1/chat/completions", json=chat_body(), headers={**ACK, "X-Request-Id": RID})
    assert resp.status == 502 and resp.headers["X-Request-Id"] == RID
    assert_envelope(await resp.json(), "server_error", "engine_error")
    line = access_log.lines()[-1]
    assert (line["request_id"], line["status"], line["error"]) == (RID, 502, "engine_error")


async def test_a_failing_model_handler_is_one_500_envelope_and_one_log_line(
    build, access_log, caplog, registry
):
    gw = await build(keys=BrokenKeys(["sk-x"], secret=KEY_SECRET))
    headers = {**ACK, "X-Request-Id": RID, "Authorization": "Bearer sk-x"}
    with caplog.at_level(logging.INFO):
        resp = await gw.post("/v1/chat/completions", json=chat_body(pad=PROMPT), headers=headers)
    assert resp.status == 500 and resp.headers["X-Request-Id"] == RID
    assert_envelope(await resp.json(), "server_error", "internal_error")
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(errors) == 1 and RID in errors[0] and "RuntimeError" in errors[0]
    assert CANARY not in caplog.text and PROMPT not in caplog.text and "sk-x" not in caplog.text
    line = access_log.lines()[-1]
    assert (line["request_id"], line["status"], line["error"]) == (RID, 500, "internal_error")
    assert registry.get_sample_value("medgemma_gateway_errors_total", {"code": "internal_error"}) == 1


async def test_a_failing_service_handler_is_a_500_envelope(build, db, caplog):
    gw = await build(keys=KeyRing(["sk-x"], secret=KEY_SECRET), store=BrokenStore(db))
    headers = {"X-Request-Id": RID, "Authorization": "Bearer sk-x"}
    with caplog.at_level(logging.INFO):
        resp = await gw.post("/v1/terms/acknowledge", json={"version": VERSION}, headers=headers)
    assert resp.status == 500 and resp.headers["X-Request-Id"] == RID
    assert_envelope(await resp.json(), "server_error", "internal_error")
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(errors) == 1 and RID in errors[0] and "KeyError" in errors[0]
    assert CANARY not in caplog.text


async def test_aiohttp_answers_raised_by_handlers_keep_working(build):
    async def redirect(request: web.Request) -> web.Response:
        raise web.HTTPFound("/v1/terms")

    async def unavailable(request: web.Request) -> web.Response:
        raise web.HTTPServiceUnavailable(text="busy")

    async def bug(request: web.Request) -> web.Response:
        raise ValueError(CANARY)

    gw = await build(routes=[("/redirect", redirect), ("/unavailable", unavailable), ("/bug", bug)])
    resp = await gw.get("/redirect", allow_redirects=False)
    assert resp.status == 302 and resp.headers["Location"] == "/v1/terms"
    resp = await gw.get("/unavailable")
    assert resp.status == 503 and await resp.text() == "busy"
    resp = await gw.get("/bug")
    assert resp.status == 500 and len(resp.headers["X-Request-Id"]) == 32
    assert_envelope(await resp.json(), "server_error", "internal_error")
    resp = await gw.get("/no/such/route")
    assert resp.status == 404 and (await resp.json())["error"]["code"] == "route_not_found"
