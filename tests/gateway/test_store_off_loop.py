"""Tier 1: the SQLite store never blocks the event loop. Another process's write lock on the shared file
delays acknowledgements (then 503 store_unavailable, never a bypass), not streams, nor keys acknowledged
before."""

from __future__ import annotations

import asyncio
import sqlite3
import threading

import pytest
from prometheus_client import CollectorRegistry

from serve.config import GatewaySettings, TermsSettings
from serve.gateway.admission.api_keys import KeyRing
from serve.gateway.app import GatewayConfig, create_app
from serve.gateway.stores.base import StoreUnavailable
from serve.gateway.stores.sqlite import SqliteAckStore
from serve.gateway.stores.sqlite_thread import SqliteThread, wait_budget_ms
from tests.conftest import ACK, KEY_SECRET, MODEL, VERSION, chat_body

ALICE, BOB = {"Authorization": "Bearer sk-alice"}, {"Authorization": "Bearer sk-bob"}
ACKNOWLEDGE = {"version": VERSION}


@pytest.fixture
def gateway_on(aiohttp_client, engine, db, access_log):
    """A keyed gateway on the given store (so each test sets the store's lock timeout)."""

    async def make(store: SqliteAckStore):
        settings = GatewaySettings(terms=TermsSettings(database=db))
        cfg = GatewayConfig(settings, [MODEL], str(engine.make_url("")).rstrip("/"))
        keys = KeyRing(["sk-alice", "sk-bob"], secret=KEY_SECRET)
        app = create_app(cfg, registry=CollectorRegistry(), store=store, keys=keys, access_log=access_log)
        return await aiohttp_client(app)

    return make


@pytest.fixture
def write_lock(db):
    """Another process's writer on the same file: BEGIN IMMEDIATE holds the write lock until released."""
    holder = sqlite3.connect(db, isolation_level=None)

    def take() -> None:
        holder.execute("BEGIN IMMEDIATE")

    def release() -> None:
        if holder.in_transaction:
            holder.execute("ROLLBACK")

    yield take, release
    release()
    holder.close()


async def test_an_acknowledgement_waiting_for_the_lock_does_not_stall_streams(
    gateway_on, db, write_lock, script
):
    take, release = write_lock
    gw = await gateway_on(SqliteAckStore(db, timeout_s=60))
    take()
    ack = asyncio.create_task(gw.post("/v1/terms/acknowledge", json=ACKNOWLEDGE, headers=ALICE))
    script.chunks, script.gap_s = 10, 0.05  # a stream that needs the loop many times over half a second
    stream = await gw.post("/v1/chat/completions", json=chat_body(stream=True), headers={**ACK, **BOB})
    assert stream.status == 200 and "data: [DONE]" in await stream.text()
    assert not ack.done()  # the stream finished while the acknowledgement waited for the lock
    release()
    answer = await asyncio.wait_for(ack, 60)
    assert answer.status == 200 and (await answer.json())["acknowledged"] is True
    assert (await gw.post("/v1/chat/completions", json=chat_body(), headers=ALICE)).status == 200


async def test_a_lock_held_past_the_store_timeout_is_a_503_then_acknowledging_works(
    gateway_on, db, write_lock
):
    take, release = write_lock
    gw = await gateway_on(SqliteAckStore(db, timeout_s=0.2))
    take()
    refused = await gw.post("/v1/terms/acknowledge", json=ACKNOWLEDGE, headers=ALICE)
    assert refused.status == 503 and (await refused.json())["error"]["code"] == "store_unavailable"
    not_yet = await gw.post("/v1/chat/completions", json=chat_body(), headers=ALICE)
    assert not_yet.status == 403  # read while the lock is held: not acknowledged, and never let through
    release()
    assert (await gw.post("/v1/terms/acknowledge", json=ACKNOWLEDGE, headers=ALICE)).status == 200
    assert (await gw.post("/v1/chat/completions", json=chat_body(), headers=ALICE)).status == 200


async def test_keys_acknowledged_before_the_lock_are_admitted_while_it_is_held(gateway_on, db, write_lock):
    take, _ = write_lock
    first = await gateway_on(SqliteAckStore(db, timeout_s=0.2))
    assert (await first.post("/v1/terms/acknowledge", json=ACKNOWLEDGE, headers=ALICE)).status == 200
    take()
    second = await gateway_on(SqliteAckStore(db, timeout_s=0.2))  # opened while the lock is held
    assert (await first.post("/v1/chat/completions", json=chat_body(), headers=ALICE)).status == 200  # cached
    assert (await second.post("/v1/chat/completions", json=chat_body(), headers=ALICE)).status == 200  # read
    assert (await second.post("/v1/chat/completions", json=chat_body(), headers=BOB)).status == 403


async def test_close_waits_for_the_store_threads_and_later_calls_are_unavailable(db):
    before = set(threading.enumerate())
    store = SqliteAckStore(db, timeout_s=1)
    await store.acknowledge("ab" * 32, VERSION)
    assert await store.has("cd" * 32, VERSION) is False
    mine = set(threading.enumerate()) - before
    assert {t.name.split("_")[0] for t in mine} == {"ack-store-read", "ack-store-write"}
    await store.close()
    assert not any(t.is_alive() for t in mine)
    with pytest.raises(StoreUnavailable):
        await store.acknowledge("cd" * 32, VERSION)


def test_a_call_that_waited_in_line_past_its_deadline_is_refused_without_waiting_for_the_lock():
    assert wait_budget_ms(deadline=10.0, now=7.5) == 2500  # the lock may be waited for the rest of it
    assert wait_budget_ms(deadline=10.0, now=9.9999) == 1
    assert wait_budget_ms(deadline=10.0, now=10.0) is None
    assert wait_budget_ms(deadline=10.0, now=12.0) is None


async def test_a_call_stuck_behind_a_slow_one_is_answered_at_its_deadline_and_never_runs(tmp_path):
    worker = SqliteThread(tmp_path / "acks.sqlite3", "ack-store-test", timeout_s=0.2)
    stalled, ran = threading.Event(), []

    def slow(db: sqlite3.Connection) -> None:  # an fsync on a disk that has stopped answering
        stalled.wait(60)

    with pytest.raises(StoreUnavailable):
        await worker.call(slow)
    with pytest.raises(StoreUnavailable):
        await worker.call(lambda db: ran.append(db))  # in line behind it: answered, not run
    stalled.set()
    assert await worker.call(lambda db: db.execute("SELECT 1").fetchone()) == (1,)
    assert ran == []
    await worker.close()
