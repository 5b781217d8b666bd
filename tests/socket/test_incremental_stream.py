"""Tier 2: over a real socket, SSE chunks reach the client as the engine sends them, not all at the end."""

import itertools
import time

import aiohttp
from prometheus_client import CollectorRegistry

from serve.config import GatewaySettings, TermsSettings
from serve.gateway.admission.api_keys import KeyRing
from serve.gateway.app import GatewayConfig, create_app
from serve.gateway.server import start_site
from serve.gateway.stores.sqlite import SqliteAckStore
from testkit.fake_engine import Script, create_fake_upstream
from tests.conftest import ACK, MODEL, chat_body

GAP = 0.15


async def test_stream_chunks_arrive_incrementally_through_the_gateway(aiohttp_server, tmp_path):
    engine = await aiohttp_server(create_fake_upstream(Script(model=MODEL, chunks=6, gap_s=GAP)))
    cfg = GatewayConfig(
        GatewaySettings(terms=TermsSettings(database=tmp_path / "a.db")),
        [MODEL],
        str(engine.make_url("")).rstrip("/"),
    )
    app = create_app(
        cfg, registry=CollectorRegistry(), store=SqliteAckStore(tmp_path / "a.db"), keys=KeyRing()
    )
    runner = await start_site(app, "127.0.0.1", 0)  # a free port, read back: nothing can take it in between
    port = runner.addresses[0][1]
    arrivals: list[float] = []
    try:
        async with aiohttp.ClientSession() as session:
            url = f"http://127.0.0.1:{port}/v1/chat/completions"
            t0 = time.monotonic()
            async with session.post(url, json=chat_body(stream=True), headers=ACK) as resp:
                async for line in resp.content:
                    if line.startswith(b"data: ") and b'"content":"tok' in line:
                        arrivals.append(time.monotonic() - t0)
    finally:
        await runner.cleanup()
    assert len(arrivals) == 6
    # Buffered, all six would land together at the end; relayed, they are spread over ~5 gaps.
    assert arrivals[-1] - arrivals[0] > 3 * GAP
    assert all(b > a for a, b in itertools.pairwise(arrivals))
