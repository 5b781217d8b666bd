"""The ray launcher's teardown: processes a local head leaves behind are waited for, then killed."""

import subprocess
import sys

import psutil

from serve.scaleout.ray_backend import _descendants, _reap


def test_leftover_descendants_are_killed_after_the_grace_period():
    stubborn = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)",
        ]
    )
    quick = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        ours = [p for p in _descendants() if p.pid in {stubborn.pid, quick.pid}]
        _reap(ours, grace_s=0.5)
        assert stubborn.pid in {p.pid for p in ours}
        assert not psutil.pid_exists(stubborn.pid)  # killed and reaped: no zombie either
    finally:
        stubborn.kill()
        quick.wait()
