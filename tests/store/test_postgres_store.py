"""Several gateways sharing one real PostgreSQL server: shared acknowledgements, explicit migrations, 503s."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest
import yaml
from prometheus_client import CollectorRegistry

from serve.config import AuthSettings, GatewaySettings, StoreSettings, TermsSettings
from serve.gateway.admission.api_keys import KeyRing, legacy_hash
from serve.gateway.app import GATEWAY, GatewayConfig, create_app
from serve.gateway.stores.migrate import migrate_store
from serve.gateway.stores.postgres import PostgresAckStore
from tests.conftest import MODEL, VERSION, chat_body

ROOT = Path(__file__).resolve().parents[2]
DSN_ENV = "MEDGEMMA_TEST_ACK_DSN"
KEYS_ENV, SECRET_ENV = "MEDGEMMA_TEST_KEYS", "MEDGEMMA_TEST_KEY_SECRET"
ALICE = {"Authorization": "Bearer sk-alice"}
BOB = {"Authorization": "Bearer sk-bob"}
PG_TERMS = TermsSettings(store=StoreSettings(kind="postgres", dsn_env=DSN_ENV, timeout_s=1.0))
PG_AUTH = AuthSettings(api_keys_env=KEYS_ENV, hash_secret_env=SECRET_ENV)


@pytest.fixture
def pg_env(pg_dsn, monkeypatch) -> str:
    monkeypatch.setenv(DSN_ENV, pg_dsn)
    monkeypatch.setenv(KEYS_ENV, "sk-alice,sk-bob")
    monkeypatch.setenv(SECRET_ENV, "one-secret-every-gateway-shares")
    return pg_dsn


@pytest.fixture
def pg_gateway(aiohttp_client, engine, pg_env):
    """A gateway whose store and keys come from its config (postgres; DSN, keys and key-hash secret from the
    environment), as in production."""

    async def make():
        settings = GatewaySettings(terms=PG_TERMS, auth=PG_AUTH)
        cfg = GatewayConfig(settings, [MODEL], str(engine.make_url("")).rstrip("/"))
        return await aiohttp_client(create_app(cfg, registry=CollectorRegistry()))

    return make


async def _status(gw, headers) -> int:
    return (await gw.post("/v1/chat/completions", json=chat_body(), headers=headers)).status


async def test_migrations_are_idempotent_and_recorded(pg_env):
    first = await migrate_store(PG_TERMS)
    again = await migrate_store(PG_TERMS)
    assert "applied 1 acknowledgements" in first and "nothing to apply" in again
    async with await psycopg.AsyncConnection.connect(pg_env) as conn:
        rows = await (await conn.execute("SELECT version, name FROM schema_migrations")).fetchall()
    assert rows == [(1, "acknowledgements")]


def test_migrate_subcommand_is_the_explicit_step(pg_env, tmp_path):
    raw = yaml.safe_load((ROOT / "configs" / "cpu-demo.yaml").read_text())
    raw["gateway"] = {"terms": {"store": {"kind": "postgres", "dsn_env": DSN_ENV}}}
    profile = tmp_path / "pg.yaml"
    profile.write_text(yaml.safe_dump(raw))
    argv = [sys.executable, "-m", "serve", "migrate", "--profile", str(profile)]
    runs = [subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=60) for _ in range(2)]
    assert [r.returncode for r in runs] == [0, 0], runs[0].stderr
    assert "applied 1" in runs[0].stdout and "nothing to apply" in runs[1].stdout
    assert pg_env.split("@")[0] not in runs[0].stdout + runs[0].stderr  # the password is never printed


async def test_key_acknowledged_through_one_gateway_is_honoured_by_the_other(pg_gateway):
    await migrate_store(PG_TERMS)
    one, two = await pg_gateway(), await pg_gateway()
    assert isinstance(two.app[GATEWAY].store, PostgresAckStore)
    assert await _status(two, ALICE) == 403
    ack = await one.post("/v1/terms/acknowledge", json={"version": VERSION}, headers=ALICE)
    assert ack.status == 200 and (await ack.json())["acknowledged_at"].endswith("+00:00")
    assert await _status(two, ALICE) == 200
    assert await _status(two, BOB) == 403  # only the key that acknowledged


async def test_unmigrated_database_refuses_model_routes_with_503(pg_gateway):
    gw = await pg_gateway()
    resp = await gw.post("/v1/chat/completions", json=chat_body(), headers=ALICE)
    assert resp.status == 503 and (await resp.json())["error"]["code"] == "store_unavailable"


async def test_server_stopped_is_a_503_envelope_never_a_bypass_and_recovers(pg_gateway, pg_cluster):
    await migrate_store(PG_TERMS)
    one, two = await pg_gateway(), await pg_gateway()
    await one.post("/v1/terms/acknowledge", json={"version": VERSION}, headers=ALICE)
    pg_cluster.stop()
    try:
        for gw, who in ((two, ALICE), (two, BOB), (one, BOB)):
            resp = await gw.post("/v1/chat/completions", json=chat_body(), headers=who)
            body = await resp.json()
            assert resp.status == 503 and body["error"]["code"] == "store_unavailable"
            assert resp.headers["Retry-After"] == "5"
        ack = await two.post("/v1/terms/acknowledge", json={"version": VERSION}, headers=BOB)
        assert ack.status == 503
    finally:
        pg_cluster.start()
    assert await _recovered(two, ALICE)  # the pool replaces its dead connections once the server is back
    assert await _status(two, BOB) == 403


async def _recovered(gw, who, within_s: float = 30.0) -> bool:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if await _status(gw, who) == 200:
            print(f"recovered {within_s - (deadline - time.monotonic()):.1f} s after the restart")
            return True
        await asyncio.sleep(0.5)
    return False


async def test_unset_dsn_variable_fails_at_build_naming_the_variable(aiohttp_client, monkeypatch):
    monkeypatch.delenv(DSN_ENV, raising=False)
    cfg = GatewayConfig(GatewaySettings(terms=PG_TERMS), [MODEL], "http://127.0.0.1:9")
    with pytest.raises(ValueError, match=DSN_ENV):
        create_app(cfg, registry=CollectorRegistry(), keys=KeyRing())


async def test_legacy_sha256_row_moves_to_the_keyed_hash_on_first_verified_use(pg_gateway, pg_env):
    await migrate_store(PG_TERMS)
    async with await psycopg.AsyncConnection.connect(pg_env, autocommit=True) as conn:
        insert = "INSERT INTO acknowledgements (key_hash, terms_version) VALUES (%s, %s)"
        await conn.execute(insert, (legacy_hash("sk-alice"), VERSION))  # as a gateway before keyed hashes
    one, two = await pg_gateway(), await pg_gateway()
    assert await _status(one, ALICE) == 200  # no second acknowledgement asked of the client
    keyed = one.app[GATEWAY].keys.hash("sk-alice")
    assert keyed == two.app[GATEWAY].keys.hash("sk-alice") != legacy_hash("sk-alice")
    async with await psycopg.AsyncConnection.connect(pg_env) as conn:
        rows = await (await conn.execute("SELECT key_hash, terms_version FROM acknowledgements")).fetchall()
    assert rows == [(keyed, VERSION)]
    assert await _status(two, ALICE) == 200  # the other gateway, same secret, reads the moved row
    assert await _status(two, BOB) == 403


def test_keys_with_postgres_and_no_hash_secret_fail_at_build_naming_the_setting(monkeypatch):
    monkeypatch.setenv(DSN_ENV, "postgresql://u:p@192.0.2.1:1/db")
    monkeypatch.setenv(KEYS_ENV, "sk-alice")
    cfg = GatewayConfig(
        GatewaySettings(terms=PG_TERMS, auth=AuthSettings(api_keys_env=KEYS_ENV)),
        [MODEL],
        "http://127.0.0.1:9",
    )
    with pytest.raises(ValueError, match="hash_secret_env"):
        create_app(cfg, registry=CollectorRegistry())
