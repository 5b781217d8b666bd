"""Canary: requests aiohttp's parser refuses (a key or patient text next to a control character) leave neither the
key nor the text in any log: aiohttp's own server log, our loggers, or the access log."""

from __future__ import annotations

import logging

import pytest

from testkit.fake_engine import Script, create_fake_upstream
from tests.conftest import MODEL
from tests.socket.gateway_on_socket import closed_by_server, connect, serve

KEY = "sk-canary-3f9a1c7e5b"
PHI = "PATIENT%20Jane%20Canary%20DOB%201961-04-02"
MALFORMED = [
    b"POST /v1/chat/completions HTTP/1.1\r\nHost: g\r\nAuthorization: Bearer "
    + KEY.encode()
    + b"\x01\r\n\r\n",
    b"GET /v1/models?note=" + PHI.encode() + b"\x01 HTTP/1.1\r\nHost: g\r\n\r\n",
    b"GET /v1/models?note="
    + PHI.encode()
    + b" HTTP/1.1\r\nHost: g\r\nX-Note: "
    + PHI.encode()
    + b"\x7f\r\n\r\n",
    b"POST /v1/chat/completions HTTP/1.1\r\nHost: g\r\nContent-Length: 5\r\nContent-Length: "
    + KEY.encode()
    + b"\r\n\r\n",
]


@pytest.fixture
async def gateway(aiohttp_server, tmp_path, access_log):
    engine = await aiohttp_server(create_fake_upstream(Script(model=MODEL)))
    running = await serve(str(engine.make_url("")).rstrip("/"), tmp_path / "a.db", access_log)
    yield running
    await running.runner.cleanup()


@pytest.mark.parametrize(
    "raw", MALFORMED, ids=["key-in-header", "phi-in-request-line", "phi-in-header", "key-in-length"]
)
async def test_malformed_requests_leave_no_key_or_patient_text_in_any_log(gateway, access_log, caplog, raw):
    caplog.set_level(logging.DEBUG)
    reader, writer = await connect(gateway.port)
    writer.write(raw)
    reply = await reader.read(200)
    assert reply.split(b"\r\n")[0].endswith(b" 400 Bad Request")  # aiohttp refused it ...
    assert await closed_by_server(reader)
    logged = caplog.text + "".join(str(line) for line in access_log.lines())
    for secret in (KEY, PHI, "Jane", "Canary"):
        assert secret not in logged
    assert any("refused a malformed request" in r.getMessage() for r in caplog.records)  # ... and logged that
