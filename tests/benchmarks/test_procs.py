"""Process helpers of the capacity run: pinning, CPU accounting, start/ready/stop."""

import os
import sys

import pytest

from benchmarks.core import procs


def test_pinned_prefixes_taskset_when_asked(monkeypatch):
    monkeypatch.setattr(procs.shutil, "which", lambda name: "/usr/bin/taskset")
    assert procs.pinned(["x", "-y"], 1) == ["taskset", "-c", "1", "x", "-y"]
    assert procs.pinned(["x"], None) == ["x"]


@pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="needs /proc")
def test_cpu_seconds_of_this_process():
    sum(i * i for i in range(200_000))
    assert procs.cpu_seconds(os.getpid()) > 0


def test_a_child_that_dies_fails_fast_with_its_log(tmp_path):
    child = procs.start(
        "dies", [sys.executable, "-c", "print('boom'); raise SystemExit(3)"], cpu=None, log_dir=tmp_path
    )
    with pytest.raises(RuntimeError, match="boom"):
        procs.wait_ready(child, f"http://127.0.0.1:{procs.free_port()}/health", timeout_s=30)
    procs.stop(child)


def test_stop_ends_a_running_child(tmp_path):
    child = procs.start(
        "sleeper", [sys.executable, "-c", "import time; time.sleep(60)"], cpu=None, log_dir=tmp_path
    )
    procs.stop(child, grace_s=5)
    assert child.proc.poll() is not None


def test_wait_port_reads_back_the_port_a_child_announces(tmp_path):
    line = "INFO serve.gateway: gateway listening on http://127.0.0.1:41234"
    child = procs.start(
        "announces",
        [sys.executable, "-c", f"print({line!r}, flush=True); import time; time.sleep(60)"],
        cpu=None,
        log_dir=tmp_path,
    )
    try:
        assert procs.wait_port(child, "gateway listening on ", timeout_s=30) == 41234
    finally:
        procs.stop(child, grace_s=5)


def test_wait_port_fails_fast_when_the_child_exits_without_a_port(tmp_path):
    child = procs.start(
        "dies", [sys.executable, "-c", "print('boom'); raise SystemExit(3)"], cpu=None, log_dir=tmp_path
    )
    with pytest.raises(RuntimeError, match="boom"):
        procs.wait_port(child, "gateway listening on ", timeout_s=30)
