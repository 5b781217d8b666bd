"""The rolling-restart suite: its figures and gateway profiles (pure), the haproxy harness on a real haproxy, and
one whole rolling restart of real gateways on the fake engine (haproxy: the full install)."""

import asyncio
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from aiohttp import web

from benchmarks.core import records as R
from benchmarks.core.records import RequestRecord
from benchmarks.core.textload import Shape
from benchmarks.rolling import gateways, scenario, stats
from benchmarks.rolling.restart import Restart
from serve.config import load_config
from testkit import haproxy
from testkit.fake_engine import Script, create_fake_upstream

ROOT = Path(__file__).resolve().parents[2]
# Debian's haproxy comes with `make install` (these tests are also marked full), not the light install.
needs_haproxy = pytest.mark.skipif(
    haproxy.executable() is None, reason="haproxy not found (`make install` as root)"
)
SERVED = load_config(ROOT / "configs" / "cpu-demo.yaml").model.served_name


def rec(start, ok=True, error=None, status=200, ttft=0.1):
    return RequestRecord(start=start, ok=ok, error=error, status=status, ttft=ttft)


def restart(slot, began, ended, code=0):
    return Restart(slot, 1, 2, began, 0.5, 1.0, 2.0, ended - began, code, ended)


def test_consecutive_slot_restarts_make_one_window_and_requests_are_split_by_start():
    restarts = [restart("gw1", 10, 20), restart("gw2", 20, 31), restart("gw1", 50, 60)]
    spans = stats.windows(restarts)
    assert spans == [(10, 31), (50, 60)]
    assert stats.during(rec(15), spans) and stats.during(rec(31), spans) and not stats.during(rec(40), spans)


def test_figures_count_failures_cut_streams_and_ttft_by_phase():
    records = [
        rec(1, ttft=0.1),
        rec(2, ttft=0.2),
        rec(12, ttft=0.9),
        rec(13, ok=False, error=R.INCOMPLETE),
        rec(14, ok=False, error="http_502", status=502, ttft=None),
    ]
    fig = stats.figures(records, [restart("gw1", 10, 20), restart("gw2", 20, 25, code=None)], wall_s=30)
    assert fig["requests"] == 5 and fig["failed"] == 2 and fig["streams_cut"] == 1
    assert fig["errors"] == {R.INCOMPLETE: 1, "http_502": 1}
    assert fig["requests_during_restarts"] == 3
    assert fig["ttft_ms"]["steady"]["p50"] == pytest.approx(150.0)
    assert fig["ttft_ms"]["restarting"]["p99"] == pytest.approx(900.0)
    assert fig["old_exit_codes"] == [-1, 0]
    text = stats.markdown(fig, {"gw1": {"retries": 3, "redispatches": 1}})
    assert (
        "| 5 | 2 | 1 | 2 |" in text and "| gw2 |" in text and "http_502 1" in text and "3 on the same" in text
    )


def test_gateway_profile_binds_port_zero_with_its_own_store_and_drain(tmp_path):
    text = (ROOT / "configs" / "cpu-demo.yaml").read_text()
    base = yaml.safe_load(text)
    raw = gateways.profile(base, tmp_path / "a.sqlite3", {"delay_s": 3.0})
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(raw))
    gw = load_config(path).gateway
    assert gw.port == 0 and gw.terms.database == tmp_path / "a.sqlite3" and gw.drain.delay_s == 3.0
    assert base == yaml.safe_load(text)  # the base is left as it was


def test_port_is_read_from_the_gateway_log_line():
    line = "2026-12-05 07:00:00,000 INFO serve.gateway: gateway listening on http://127.0.0.1:43121\n"
    assert gateways.port_from_log("starting\n" + line) == 43121
    assert gateways.port_from_log("starting\n") is None


def _listening() -> socket.socket:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen()
    return s


@pytest.mark.full
@needs_haproxy
def test_haproxy_retries_a_taken_port_then_points_a_slot_elsewhere(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a relative work dir, as the benchmark's default --out gives
    taken, one, two = _listening(), _listening(), _listening()
    free = _listening()
    free_port = free.getsockname()[1]
    free.close()
    servers = {"gw1": one.getsockname()[1]}
    lb = haproxy.start(Path("lb"), servers, ports=[taken.getsockname()[1], free_port])
    try:
        assert lb.port == free_port and lb.url.endswith(f":{free_port}")
        lb.point("gw1", two.getsockname()[1])
        assert lb.servers()["gw1"].port == two.getsockname()[1]
        with pytest.raises(RuntimeError, match="No such server"):
            lb.point("gw9", 1)
    finally:
        assert lb.stop() == 0
        for s in (taken, one, two):
            s.close()


@pytest.fixture
def fake_engine() -> Iterator[str]:
    """The fake engine on its own event loop thread (the gateways are processes that call it while the test
    blocks), on port 0; streams last ~1.5 s (max_tokens chunks 50 ms apart), as the demo model's do."""
    app = create_fake_upstream(Script(model=SERVED, gap_s=0.05, honour_max_tokens=True, record=False))
    loop, ready = asyncio.new_event_loop(), threading.Event()
    runner = web.AppRunner(app, access_log=None)

    def serve() -> None:
        loop.run_until_complete(runner.setup())
        loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", 0).start())
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    assert ready.wait(10)
    yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)


@pytest.mark.full
@needs_haproxy
def test_rolling_restart_on_the_fake_engine_fails_no_request(fake_engine, tmp_path):
    launch = gateways.launcher(tmp_path, ROOT / "configs" / "cpu-demo.yaml", fake_engine, {"delay_s": 2.0})
    with scenario.stack(launch, tmp_path) as s:
        outcome = asyncio.run(scenario.run(s, SERVED, Shape(16, 30), concurrency=8, rolls=1, settle_s=3))
    fig = stats.figures(outcome.records, outcome.restarts, outcome.wall_s)
    assert fig["failed"] == 0, fig["errors"]
    assert [r.old_exit_code for r in outcome.restarts] == [0, 0]
    assert fig["requests_during_restarts"] >= 8
