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
