"""One engine child process: spawn it in its own process group, keep its last log lines, stop it for sure."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

log = logging.getLogger("serve.engine")


class EngineDied(RuntimeError):
    """The engine exited on its own; the message carries its exit code and last log lines."""


@dataclass
class Child:
    proc: asyncio.subprocess.Process
    tail: deque[str] = field(default_factory=lambda: deque(maxlen=40))
    reader: asyncio.Task[None] | None = None

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def returncode(self) -> int | None:
        return self.proc.returncode

    def died(self) -> EngineDied:
        lines = "\n".join(f"    {line}" for line in self.tail) or "    (no output)"
        return EngineDied(f"engine exited with code {self.returncode}; its last lines:\n{lines}")


async def spawn(argv: Sequence[str], env: Mapping[str, str] | None = None, *, echo: bool = True) -> Child:
    """Start argv in a new session (so the whole tree can be signalled) with stdout+stderr captured."""
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, **(env or {})},
        start_new_session=True,
    )
    child = Child(proc)
    child.reader = asyncio.create_task(_pump(child, echo))
    log.info("engine started, pid %d", proc.pid)
    return child


async def _pump(child: Child, echo: bool) -> None:
    assert child.proc.stdout is not None
    async for raw in child.proc.stdout:
        line = raw.decode(errors="replace").rstrip()
        child.tail.append(line)
        if echo:
            sys.stderr.write(f"[engine] {line}\n")


async def wait_exit(child: Child, poll_s: float = 0.1) -> int:
    """The child's exit code, as soon as it exits.

    Not proc.wait(): asyncio's wait() also waits for the child's pipes to close, and vLLM's engine-core and
    worker processes keep the API server's stdout open after it dies, so wait() would hang until they go.
    """
    while child.proc.returncode is None:
        await asyncio.sleep(poll_s)
    if child.reader is not None and not child.reader.done():
        await asyncio.wait({child.reader}, timeout=2.0)  # the last lines, for the error message
    return child.proc.returncode


async def terminate(child: Child, grace_s: float) -> int:
    """SIGTERM, wait up to grace_s, then SIGKILL; finally kill anything left in the child's process group."""
    if child.returncode is None:
        _signal(child.proc.pid, signal.SIGTERM, group=False)
        try:
            await asyncio.wait_for(wait_exit(child), grace_s)
        except TimeoutError:
            log.warning("engine ignored SIGTERM for %.0f s; sending SIGKILL", grace_s)
    _signal(child.proc.pid, signal.SIGKILL, group=True)  # the child, or its orphaned engine-core/workers
    return await wait_exit(child)


def _signal(pid: int, sig: signal.Signals, *, group: bool) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if group:
            os.killpg(pid, sig)  # the child leads its own session, so its pgid is its pid
        else:
            os.kill(pid, sig)
