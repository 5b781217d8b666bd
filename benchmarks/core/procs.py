"""Child processes of a benchmark run: started pinned to a core, awaited until ready (or until they say which
port they took), CPU-metered, stopped."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
GATEWAY_LISTENING = "gateway listening on "  # serve/gateway/server.py logs it once its socket is bound


def pinned(cmd: list[str], cpu: int | None) -> list[str]:
    """The command under `taskset -c <cpu>` (taskset execs it, so the pid is the program's own)."""
    if cpu is None or shutil.which("taskset") is None:
        return cmd
    return ["taskset", "-c", str(cpu), *cmd]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Child:
    name: str
    proc: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def start(
    name: str,
    cmd: list[str],
    *,
    cpu: int | None,
    log_dir: Path,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> Child:
    log_dir.mkdir(parents=True, exist_ok=True)
    log = log_dir / f"{name}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            pinned(cmd, cpu),
            cwd=cwd,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            start_new_session=True,  # its own process group: stopping it stops its workers too
        )
    return Child(name, proc, log)


def start_gateway(
    name: str,
    profile: Path,
    upstream: str,
    *,
    cpu: int | None,
    log_dir: Path,
    cwd: Path | None = None,
    timeout_s: float = 120.0,
) -> tuple[Child, str]:
    """`python -m serve gateway` on `profile` (its gateway.port 0: the gateway binds a free port and logs it) in
    front of `upstream`: (child, base URL) once /health answers. `cwd`: the checkout `python -m serve` imports (a
    side-by-side run of another tree). A gateway that does not come up is stopped before the error is raised."""
    cmd = [sys.executable, "-m", "serve", "gateway", "--profile", str(profile), "--upstream", upstream]
    child = start(name, cmd, cpu=cpu, log_dir=log_dir, cwd=cwd)
    try:
        url = f"http://127.0.0.1:{wait_port(child, GATEWAY_LISTENING, timeout_s)}"
        wait_ready(child, url + "/health", timeout_s)
    except BaseException:
        stop(child)
        raise
    return child, url


def wait_ready(child: Child, url: str, timeout_s: float = 120.0) -> None:
    """Poll `url` until it answers 200; a child that exits first fails fast with its last log lines."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if child.proc.poll() is not None:
            raise RuntimeError(f"{child.name} exited with {child.proc.returncode}:\n{child.tail()}")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.25)
    raise RuntimeError(f"{child.name} not ready at {url} after {timeout_s:.0f} s:\n{child.tail()}")


def listening_port(log_text: str, announcement: str) -> int | None:
    """The port a server announced in its log ("... on http://127.0.0.1:41234"), once it has."""
    found = re.search(re.escape(announcement) + r"\S*:(\d+)\b", log_text)
    return int(found.group(1)) if found else None


def wait_port(child: Child, announcement: str, timeout_s: float = 120.0) -> int:
    """Servers bind port 0 and log the port they got: read it back (no port picked first and bound later)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if child.proc.poll() is not None:
            raise RuntimeError(f"{child.name} exited with {child.proc.returncode}:\n{child.tail()}")
        port = listening_port(child.log.read_text(errors="replace"), announcement)
        if port is not None:
            return port
        time.sleep(0.1)
    raise RuntimeError(f"{child.name} did not say which port it listens on:\n{child.tail()}")


def stop(child: Child, grace_s: float = 10.0) -> None:
    """SIGTERM to the child's process group, then SIGKILL after the grace period."""
    if child.proc.poll() is not None:
        return
    _signal_group(child.pid, signal.SIGTERM)
    try:
        child.proc.wait(grace_s)
    except subprocess.TimeoutExpired:
        _signal_group(child.pid, signal.SIGKILL)
        child.proc.wait(5)


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, sig)  # the group we made with start_new_session: only this child and its own


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and all its live descendants (LiteLLM may run workers as children)."""
    return sum(_own_cpu(p) for p in [pid, *_descendants(pid)])


def _own_cpu(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime (fields 14, 15 of stat)


def _descendants(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        parent = todo.pop()
        for children in Path(f"/proc/{parent}/task").glob("*/children"):
            try:
                kids = [int(k) for k in children.read_text().split()]
            except OSError:
                continue
            found += kids
            todo += kids
    return found
