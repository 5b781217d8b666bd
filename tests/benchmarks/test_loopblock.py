"""The loop-blocking benchmark: its interleaved plan, port read-back, profile, summary, lock holder, and one
block against the in-process gateway (behaviour only, no timings)."""

from __future__ import annotations

import itertools
import random
import sqlite3
from pathlib import Path

import pytest
import yaml

from benchmarks.core.procs import listening_port
from benchmarks.loopblock.cli import REPO, gateway_profile
from benchmarks.loopblock.load import Arm, Locker, block
from benchmarks.loopblock.report import BASELINE, LOCKED, PHASES, plan, summarize, table
from serve.config import load_config
from tests.conftest import MODEL


def test_the_plan_runs_every_phase_every_round_and_interleaves_arms_and_phases():
    order = plan(3, ["before", "after"])
    assert len(order) == 3 * len(PHASES) * 2
    for r in range(3):
        blocks = [(arm, phase) for rr, arm, phase in order if rr == r]
        assert sorted(blocks) == sorted((a, p) for a in ("before", "after") for p in PHASES)
    firsts = [phase for r, _, phase in order[:: 2 * len(PHASES)]]
    assert firsts == list(PHASES)  # each round starts one phase later
    arm_firsts = [order[i][1] for i in range(0, len(order), 2)]
    assert set(arm_firsts) == {"before", "after"}  # neither arm always goes first
    assert plan(2, ["after"]) == [(0, "after", p) for p in PHASES] + [
        (1, "after", p) for p in PHASES[1:] + PHASES[:1]
    ]


def test_the_port_is_read_back_from_what_a_server_logs():
    log = "2026-12-05 INFO serve.gateway: gateway listening on http://127.0.0.1:41234\n"
    assert listening_port(log, "gateway listening on ") == 41234
    assert listening_port("fast fake upstream on 127.0.0.1:39001\n", "fast fake upstream on ") == 39001
    assert listening_port("starting...\n", "gateway listening on ") is None


def test_the_gateway_profile_is_a_valid_keyed_profile_on_a_free_port(tmp_path: Path):
    keys = tmp_path / "keys.txt"
    keys.write_text("sk-loopblock-000000\n")
    path = tmp_path / "profile.yaml"
    path.write_text(yaml.safe_dump(gateway_profile(REPO, tmp_path, keys)))
    profile = load_config(path)
    assert profile.gateway.port == 0 and profile.gateway.auth.api_keys_file == keys
    assert profile.gateway.terms.database == tmp_path / "acks.sqlite3"


def fake_block(arm: str, phase: str, gaps: list[float], acks=()) -> dict:
    return {
        "arm": arm,
        "phase": phase,
        "gaps": gaps,
        "waits": [max(gaps)],
        "streams_ok": 2,
        "streams_failed": 0,
        "acks": list(acks),
        "acks_skipped": 0,
    }


def test_the_summary_shows_a_stall_as_a_p99_step_and_noise_as_none():
    rng = random.Random(1)

    def gaps(n=2000):
        return [0.020 + rng.gauss(0, 0.001) for _ in range(n)]

    stalled = gaps()[:-100] + [3.0] * 100  # a loop blocked for seconds, 5% of the gaps
    blocks = [
        fake_block("before", BASELINE, gaps()),
        fake_block("before", LOCKED, stalled, acks=[(503, 5.0)] * 3),
        fake_block("after", BASELINE, gaps()),
        fake_block("after", LOCKED, gaps(), acks=[(503, 3.0), (200, 0.004)]),
    ]
    summary = summarize(blocks, draws=100)
    before, after = summary["before"][LOCKED], summary["after"][LOCKED]
    assert before["step_over_baseline"]["p99"]["ci95_ms"][0] > 1000
    low, high = after["step_over_baseline"]["p99"]["ci95_ms"]
    assert low < 0 < high
    assert after["acks"] == {"503": 1, "200": 1} and before["itl_ms"]["max"] == 3000.0
    text = table(summary)
    assert text.count("\n") == 1 + 4 and "| after | locked+acks |" in text


async def test_the_locker_holds_the_write_lock_until_told_to_let_go(tmp_path: Path):
    db = tmp_path / "acks.sqlite3"
    other = sqlite3.connect(db, isolation_level=None, timeout=0)
    other.execute("PRAGMA journal_mode=WAL")
    locker = await Locker.start(None, REPO)
    try:
        await locker.lock(db)
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            other.execute("BEGIN IMMEDIATE")
        await locker.unlock()
        other.execute("BEGIN IMMEDIATE")
        other.execute("ROLLBACK")
    finally:
        await locker.stop()
        other.close()


async def test_one_block_streams_and_acknowledges_through_the_gateway(make_gateway, db, script):
    from benchmarks.core import client

    script.chunks = 3
    keys = [f"sk-loopblock-{i:06d}" for i in range(200)]
    gw = await make_gateway(keys=keys)
    arm = Arm("after", str(gw.make_url("")).rstrip("/"), db, keys[0], itertools.islice(keys, 1, None))
    async with client.make_session(timeout_s=60) as session:
        got = await block(session, arm, model=MODEL, streams=2, window_s=0.3, ack_rate=20, locker=None)
    assert got["streams_ok"] >= 2 and got["streams_failed"] == 0 and len(got["gaps"]) >= 2 * 2
    assert got["acks"] and {status for status, _ in got["acks"]} == {200} and got["acks_skipped"] == 0
