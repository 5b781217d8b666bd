"""The rolling restart: one gateway slot after the other, SIGTERM the old process, start its replacement, point
haproxy's slot at it, and go on only once haproxy has it UP and the old one has drained and exited."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any

from benchmarks.rolling.gateways import Gateway
from testkit.haproxy import HAProxy

Clock = Callable[[], float]


@dataclass
class Restart:
    """One slot's restart; times are seconds from the SIGTERM, `began`/`ended` on the run's clock."""

    slot: str
    old_port: int
    new_port: int
    began: float
    down_s: float  # haproxy's health checks have the old gateway DOWN: no new request goes to it
    replacement_ready_s: float  # the new gateway logged its port and its /health answered 200
    up_s: float  # haproxy has the slot UP on the new port: it takes traffic again
    old_exit_s: float  # the old gateway finished its streams and exited
    old_exit_code: int | None
    ended: float

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def restart(
    lb: HAProxy,
    slots: dict[str, Gateway],
    slot: str,
    launch: Callable[[str], Gateway],
    clock: Clock = time.perf_counter,
    timeout_s: float = 120.0,
    sig: signal.Signals = signal.SIGTERM,
) -> Restart:
    """Restart `slot` in place (`slots[slot]` becomes the replacement). Waits are bounded by `timeout_s`, the
    old process's exit by its drain (delay + in-flight streams) plus `timeout_s`. `sig` SIGKILL: the control
    run, a restart without a drain."""
    old = slots[slot]
    began = clock()
    os.kill(old.child.pid, sig)  # the process only, as Kubernetes or systemd's main-PID stop would
    with ThreadPoolExecutor(1) as pool:
        starting = pool.submit(launch, slot)  # the replacement starts while haproxy notices the drain
        # /health answers 503 from the SIGTERM on. The slot moves only once it is DOWN: moved earlier, a check
        # of the old address still under way could count for the new one.
        lb.wait_status(slot, "DOWN", timeout_s)
        down = clock()
        new = slots[slot] = starting.result()
    ready = clock()
    lb.point(slot, new.port)
    lb.wait_status(slot, "UP", timeout_s, port=new.port)
    up = clock()
    code = _wait_exit(old, timeout_s)
    exited = clock()
    return Restart(
        slot, old.port, new.port, began, down - began, ready - began, up - began, exited - began, code, exited
    )


def roll(
    lb: HAProxy,
    slots: dict[str, Gateway],
    launch: Callable[[str], Gateway],
    clock: Clock = time.perf_counter,
    timeout_s: float = 120.0,
    sig: signal.Signals = signal.SIGTERM,
) -> list[Restart]:
    """Every slot once, in order; the next starts only when the last is back UP and its old process is gone."""
    return [restart(lb, slots, slot, launch, clock, timeout_s, sig) for slot in list(slots)]


def _wait_exit(gateway: Gateway, timeout_s: float) -> int | None:
    """The old gateway's exit code; None if it was still running after the timeout (then it is killed)."""
    try:
        return gateway.child.proc.wait(timeout_s)
    except subprocess.TimeoutExpired:
        gateway.child.proc.kill()
        gateway.child.proc.wait(5)
        return None
