"""Several hosts on one machine for multi-host tests: network namespaces joined by veth pairs to one bridge.

The test's own process stays in the root namespace, which holds the bridge's address and so reaches every
host. Each host gets a default route via the bridge, so programs that find "their" address by routing (Ray does)
pick the host's address; IP forwarding stays as the machine has it (off here), so nothing leaves the bridge.
Everything made here is removed on exit, processes first, even when the test fails.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

SUBNET = "10.77.0"  # private, unrouted; 10.77.0.1 is the bridge (root namespace), hosts from .2


def available() -> str | None:
    """Why namespaces cannot be made here, or None when they can."""
    if shutil.which("ip") is None:
        return "iproute2's `ip` is not installed"
    if os.geteuid() != 0:
        return "making network namespaces needs root"
    return None


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


@dataclass
class Hosts:
    prefix: str
    addresses: dict[str, str] = field(default_factory=dict)  # role -> address
    links: dict[str, str] = field(default_factory=dict)  # role -> the root-namespace end of its cable

    def netns(self, role: str) -> str:
        return f"{self.prefix}-{role}"

    def run(self, role: str, argv: list[str]) -> list[str]:
        """argv as run on that host (`ip netns exec` execs it: the Popen pid is the program's)."""
        return ["ip", "netns", "exec", self.netns(role), *argv]

    def cut(self, role: str) -> None:
        """Unplug the host: its link goes down; its processes keep running, unreachable."""
        _ip("link", "set", self.links[role], "down")

    def pids(self, role: str) -> list[int]:
        out = subprocess.run(["ip", "netns", "pids", self.netns(role)], capture_output=True, text=True)
        return [int(p) for p in out.stdout.split()]


@contextlib.contextmanager
def hosts(*roles: str, prefix: str | None = None) -> Iterator[Hosts]:
    prefix = prefix or f"mg{os.getpid() % 10000}"
    made = Hosts(prefix)
    bridge = f"{prefix}br"
    try:
        _ip("link", "add", bridge, "type", "bridge")
        _ip("addr", "add", f"{SUBNET}.1/24", "dev", bridge)
        _ip("link", "set", bridge, "up")
        for n, role in enumerate(roles, start=2):
            _add_host(made, role, bridge, n)
        yield made
    finally:
        for role in made.addresses:
            _kill_all(made, role)
            with contextlib.suppress(subprocess.CalledProcessError):
                _ip("netns", "del", made.netns(role))
        with contextlib.suppress(subprocess.CalledProcessError):
            _ip("link", "del", bridge)


def _add_host(made: Hosts, role: str, bridge: str, n: int) -> None:
    ns, address = made.netns(role), f"{SUBNET}.{n}"
    outside, inside = f"{made.prefix}v{n}o", f"{made.prefix}v{n}i"  # interface names: 15 characters at most
    _ip("netns", "add", ns)
    made.addresses[role], made.links[role] = address, outside
    _ip("link", "add", outside, "type", "veth", "peer", "name", inside)
    _ip("link", "set", inside, "netns", ns)
    _ip("link", "set", outside, "master", bridge, "up")
    for args in (
        ("addr", "add", f"{address}/24", "dev", inside),
        ("link", "set", inside, "up"),
        ("link", "set", "lo", "up"),
        ("route", "add", "default", "via", f"{SUBNET}.1"),
    ):
        _ip("-n", ns, *args)


def _kill_all(made: Hosts, role: str, grace_s: float = 10.0) -> None:
    """SIGTERM every process in the namespace, then SIGKILL what is left after the grace period."""
    for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 5.0)):
        for pid in made.pids(role):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + wait_s
        while made.pids(role) and time.monotonic() < deadline:
            time.sleep(0.2)
