"""Image jobs for tests of the worker pool, chosen by the payload: report the worker's pid, exit, crash or hang.
They run in worker processes, so they live in an importable module (jobs are pickled by name)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from serve.config import ImageSettings
from serve.imaging.normalise import Encoded


def scripted(media: str, payload: str, frame: int | None, settings: ImageSettings) -> Encoded:
    """'pid' answers with the worker's pid; 'exit', 'segv'; 'sleep:<file>' writes the pid to <file>, then hangs."""
    command, _, arg = payload.partition(":")
    if command == "exit":
        os._exit(3)
    if command == "segv":
        os.kill(os.getpid(), signal.SIGSEGV)
    if command == "sleep":
        Path(arg).write_text(str(os.getpid()))
        time.sleep(600)
    return Encoded("text/plain", str(os.getpid()).encode())
