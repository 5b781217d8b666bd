"""Shared fixtures: a fresh registry per test, the scripted fake engine, and a gateway factory around them."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from serve.config import GatewaySettings, TermsSettings
from serve.gateway.admission.api_keys import KeyRing
from serve.gateway.app import GatewayConfig, create_app
from serve.gateway.stores.sqlite import SqliteAckStore
from serve.gateway.telemetry.access_log import AccessLog
from testkit.fake_engine import Script, create_fake_upstream

MODEL = "demo-model"
VERSION = "2024-11-15"
ACK = {"HAI-DEF-Acknowledged": VERSION}
KEY_SECRET = b"test-key-hash-secret-0123456789"  # shared by a test's gateways, as on one store


@pytest.fixture
def script() -> Script:
    return Script(model=MODEL)


@pytest.fixture
async def engine(aiohttp_server, script):
    return await aiohttp_server(create_fake_upstream(script))


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "acks.sqlite3"


class AccessLines(AccessLog):
    """The access log into memory; `lines()` flushes and returns what was written, parsed."""

    def __init__(self) -> None:
        super().__init__(io.BytesIO())

    def lines(self) -> list[dict]:
        self.flush()
        return [json.loads(line) for line in self.stream.getvalue().splitlines()]


@pytest.fixture
def access_log() -> AccessLines:
    return AccessLines()


@pytest.fixture
def make_gateway(aiohttp_client, engine, registry, db, access_log):
    """Build a gateway app against the fake engine; keyword arguments change its settings."""

    made = []

    async def make(
        *,
        keys: list[str] | None = None,
        upstream: str | None = None,
        max_images: int | None = None,
        context_len: int | None = None,
        **settings,
    ):
        # max_images and context_len: the engine's image limit and context, what a profile's vllm section gives.
        terms = settings.pop("terms", {})
        gs = GatewaySettings(terms=TermsSettings(database=db, **terms), **settings)
        url = upstream or str(engine.make_url("")).rstrip("/")
        cfg = GatewayConfig(gs, [MODEL], url, max_images, context_len=context_len)
        # The first gateway of a test uses the test's registry; a "restarted" one gets its own, as a new
        # process would.
        reg = registry if not made else CollectorRegistry()
        made.append(reg)
        app = create_app(
            cfg,
            registry=reg,
            store=SqliteAckStore(db),
            keys=KeyRing(keys, secret=KEY_SECRET),
            access_log=access_log,
        )
        return await aiohttp_client(app)

    return make


@pytest.fixture
async def gateway(make_gateway):
    return await make_gateway()


def chat_body(**extra):
    return {"model": MODEL, "messages": [{"role": "user", "content": "What is a pneumothorax?"}], **extra}


def pytest_collection_modifyitems(config, items):
    """`disruptive` tests run after the rest (they restart the shared engine), `scaleout` ones last of all (they
    stop it to make room for several engines); `gpu` tests skip without a GPU."""
    from serve.launcher import has_nvidia_gpu

    items.sort(key=lambda item: ("scaleout" in item.keywords, "disruptive" in item.keywords))
    if has_nvidia_gpu():
        return
    skip = pytest.mark.skip(reason="needs an NVIDIA GPU (nvidia-smi did not answer)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
