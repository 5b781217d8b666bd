"""The engine supervisor with small stand-in children (not vLLM): fail fast, escalation, restarts."""

import asyncio
import os
import sys
import time

import pytest

from serve.config import EngineSettings, RestartPolicy
from serve.engine.process import EngineDied, spawn, terminate
from serve.engine.supervisor import EngineStartTimeout, Supervisor, wait_healthy

PY = sys.executable


def child(code: str) -> list[str]:
    return [PY, "-c", code]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def never(url: str) -> bool:
    return False


async def always(url: str) -> bool:
    return True


async def test_child_that_exits_fails_fast_with_its_last_lines():
    c = await spawn(
        child("import sys; print('loading weights'); print('CUDA out of memory'); sys.exit(3)"), echo=False
    )
    t0 = time.monotonic()
    with pytest.raises(EngineDied) as err:
        await wait_healthy(c, "http://x/health", timeout_s=60, probe=never, poll_s=0.05)
    assert time.monotonic() - t0 < 5
    assert "code 3" in str(err.value) and "CUDA out of memory" in str(err.value)


async def test_child_that_never_gets_healthy_times_out():
    c = await spawn(child("import time; time.sleep(30)"), echo=False)
    with pytest.raises(EngineStartTimeout):
        await wait_healthy(c, "http://x/health", timeout_s=0.3, probe=never, poll_s=0.05)
    await terminate(c, grace_s=2)


async def test_sigterm_is_escalated_to_sigkill_after_the_grace_period():
    code = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('up', flush=True); time.sleep(60)"
    c = await spawn(child(code), echo=False)
    while not c.tail:
        await asyncio.sleep(0.02)
    t0 = time.monotonic()
    rc = await terminate(c, grace_s=0.5)
    assert rc == -9 and 0.4 < time.monotonic() - t0 < 5


async def test_a_cooperative_child_stops_on_sigterm():
    c = await spawn(child("import time; print('up', flush=True); time.sleep(60)"), echo=False)
    while not c.tail:
        await asyncio.sleep(0.02)
    assert await terminate(c, grace_s=5) == -15


async def test_grandchildren_do_not_outlive_the_engine(tmp_path):
    pidfile = tmp_path / "grandchild.pid"
    code = (
        "import subprocess, sys, time; "
        "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); "
        f"open({str(pidfile)!r}, 'w').write(str(p.pid)); print('up', flush=True); time.sleep(60)"
    )
    c = await spawn(child(code), echo=False)
    while not c.tail:
        await asyncio.sleep(0.02)
    grandchild = int(pidfile.read_text())
    await terminate(c, grace_s=2)
    for _ in range(50):
        if not alive(grandchild):
            break
        await asyncio.sleep(0.05)
    assert not alive(grandchild)


async def test_crashed_engine_is_restarted_with_backoff_then_given_up(tmp_path):
    counter = tmp_path / "starts"
    code = f"import time; f = open({str(counter)!r}, 'a'); f.write('x'); f.close(); time.sleep(0.3)"
    settings = EngineSettings(restart=RestartPolicy(max_restarts=2, backoff_initial_s=0.1, backoff_max_s=0.2))
    sup = Supervisor(child(code), "http://x/health", settings, probe=always, echo=False)
    await sup.start()
    assert sup.state == "ready"
    await asyncio.wait_for(sup.wait(), 10)
    assert sup.state == "failed"
    assert counter.read_text() == "xxx"  # the first start and two restarts
    await sup.stop()


async def test_stop_ends_supervision_without_restart(tmp_path):
    sup = Supervisor(
        child("import time; time.sleep(60)"), "http://x/health", EngineSettings(), probe=always, echo=False
    )
    await sup.start()
    pid = sup.child.pid
    await sup.stop()
    assert sup.state == "stopped" and not alive(pid) and sup.restarts == 0


async def test_crash_is_restarted_even_when_a_grandchild_holds_the_log_pipe(tmp_path):
    """vLLM's engine core outlives a SIGKILLed API server for a moment and keeps its stdout open."""
    counter = tmp_path / "starts"
    code = (
        "import subprocess, sys, time; "
        f"open({str(counter)!r}, 'a').write('x'); "
        "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(30)']); "  # inherits stdout
        "time.sleep(0.3)"
    )
    settings = EngineSettings(restart=RestartPolicy(max_restarts=1, backoff_initial_s=0.1))
    sup = Supervisor(child(code), "http://x/health", settings, probe=always, echo=False)
    await sup.start()
    await asyncio.wait_for(sup.wait(), 20)
    assert counter.read_text() == "xx" and sup.state == "failed"  # restarted once, then gave up, no crash
    await sup.stop()
