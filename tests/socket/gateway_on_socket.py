"""A gateway served by start_site on a free port (port 0, read back), and a raw HTTP/1.1 client for it."""

from __future__ import annotations

import asyncio
import socket
from dataclasses import dataclass

from aiohttp import web
from prometheus_client import CollectorRegistry

from serve.config import GatewaySettings, TermsSettings
from serve.gateway.admission.api_keys import KeyRing
from serve.gateway.app import GatewayConfig, create_app
from serve.gateway.dependencies import GATEWAY, Gateway
from serve.gateway.server import start_site
from serve.gateway.stores.sqlite import SqliteAckStore
from tests.conftest import MODEL, VERSION, AccessLines

CHAT = "/v1/chat/completions"
WAIT_S = 20.0  # a generous bound on what should take well under a second


@dataclass
class Running:
    runner: web.AppRunner
    port: int

    @property
    def gw(self) -> Gateway:
        return self.runner.app[GATEWAY]  # type: ignore[attr-defined]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


async def serve(engine_url: str, db, access_log: AccessLines, **settings) -> Running:  # type: ignore[no-untyped-def]
    gs = GatewaySettings(terms=TermsSettings(database=db), **settings)
    app = create_app(
        GatewayConfig(gs, [MODEL], engine_url),
        registry=CollectorRegistry(),
        store=SqliteAckStore(db),
        keys=KeyRing(),
        access_log=access_log,
    )
    runner = await start_site(app, "127.0.0.1", 0)
    return Running(runner, runner.addresses[0][1])


def request_head(
    path: str = CHAT, *, length: int | None = None, method: str = "POST", extra: str = ""
) -> bytes:
    framing = "Transfer-Encoding: chunked\r\n" if length is None else f"Content-Length: {length}\r\n"
    if method == "GET":
        framing = ""
    return (
        f"{method} {path} HTTP/1.1\r\nHost: gateway\r\nContent-Type: application/json\r\n"
        f"HAI-DEF-Acknowledged: {VERSION}\r\n{framing}{extra}\r\n"
    ).encode()


async def connect(
    port: int, *, rcvbuf: int | None = None
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A raw connection; `rcvbuf` shrinks its receive buffer (a client that reads nothing stalls sooner)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
    return await asyncio.open_connection(sock=sock, limit=1024 if rcvbuf else 2**16)


async def read_response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), WAIT_S)
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
    body = await asyncio.wait_for(reader.readexactly(int(headers.get("content-length", 0))), WAIT_S)
    return int(lines[0].split()[1]), headers, body


async def closed_by_server(reader: asyncio.StreamReader) -> bool:
    """Reads (and drops) whatever comes until the server closes; False if it is still open after WAIT_S."""
    try:
        async with asyncio.timeout(WAIT_S):
            while await reader.read(2**16):
                pass
    except TimeoutError:
        return False
    except ConnectionResetError:
        pass
    return True


async def eventually(predicate, what: str) -> None:  # type: ignore[no-untyped-def]
    try:
        async with asyncio.timeout(WAIT_S):
            while not predicate():
                await asyncio.sleep(0.02)
    except TimeoutError:
        raise AssertionError(f"not within {WAIT_S} s: {what}") from None
