"""HAProxy in front of gateways, for tests and benchmarks: its config (pure), the process (foreground, current
user, loopback) and its runtime API over a unix socket (point a server slot at a new port, read server states)."""

from __future__ import annotations

import contextlib
import csv
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

BACKEND = "gateways"
BIND_CLASH = "cannot bind socket"  # haproxy's words when the frontend port is taken: pick another and retry
MAX_SOCKET_PATH = 100  # a unix socket path is at most 107 bytes (sun_path); longer work dirs use a short one


@dataclass(frozen=True)
class Checks:
    """Health checks on the gateway's /health, which answers 503 from the moment a drain starts. A draining
    gateway is DOWN after `fall` failures: within inter + fastinter (~0.75 s) when it answers promptly, well
    inside its drain delay (3-5 s), during which it still serves what reaches it. `rise` 2: a replacement gets
    traffic only after two healthy answers (its engine client is up, not just its socket)."""

    inter_ms: int = 500
    fastinter_ms: int = 250  # between checks while a state change is under way (first failure seen)
    fall: int = 2
    rise: int = 2
    timeout_ms: int = 2000  # a stalled answer counts as a failure after this


def config_text(port: int, servers: Mapping[str, int], admin_socket: Path, checks: Checks = Checks()) -> str:
    """The whole haproxy.cfg: one loopback frontend, one backend of `servers` (name -> port on 127.0.0.1).

    Retries: only `conn-failure` (the default), i.e. the connection to a gateway failed and not a byte of the
    request was sent (a gateway past its drain delay refuses connections). `empty-response` would also replay
    a POST that a crashed gateway may have started on the engine, so it is not used; nor are the others.
    `option http-server-close`: one request per server connection, so haproxy never holds an idle connection
    that a draining gateway closes just as a request is written on it (that request would end as an empty
    response, which is not safe to retry); a loopback connect per multi-second stream costs nothing.
    `option http-buffer-request` stays off (its default) and no compression filter is set: streams are relayed
    as the gateway writes them. `option http-no-delay`: without it haproxy holds small writes to fill packets,
    which added ~155 ms to the first token of every stream here (TTFT 53 ms direct, 210 ms through haproxy).
    """
    lines = [
        "global",
        f"    stats socket {admin_socket} mode 600 level admin",
        "    log stdout format raw local0 info",
        "    noreuseport  # with SO_REUSEPORT a second haproxy could share our port: a clash must fail the bind",
        "    hard-stop-after 15s",
        "    maxconn 4096",
        "",
        "defaults",
        "    mode http",
        "    log global",
        "    option httplog",
        "    option http-server-close",
        "    option http-no-delay  # each token frame is sent at once, not held to fill a packet",
        "    retries 3",
        "    retry-on conn-failure",
        "    option redispatch 1  # every retry goes to another gateway",
        "    timeout connect 2s",
        "    timeout client 30m",
        "    timeout server 30m  # silence allowed from a gateway: its longest engine wait (non-streamed total_s)",
        "    timeout http-request 15s",
        "    timeout http-keep-alive 60s",
        "    timeout queue 30s",
        f"    timeout check {checks.timeout_ms}ms",
        "",
        "frontend clients",
        f"    bind 127.0.0.1:{port}",
        f"    default_backend {BACKEND}",
        "",
        f"backend {BACKEND}",
        "    balance leastconn  # streams last seconds: spread open ones, not arrivals",
        "    option httpchk GET /health",
        "    http-check expect status 200",
        f"    default-server check inter {checks.inter_ms}ms fastinter {checks.fastinter_ms}ms"
        f" fall {checks.fall} rise {checks.rise}",
        *(f"    server {name} 127.0.0.1:{server_port}" for name, server_port in servers.items()),
        "",
    ]
    return "\n".join(lines)


@dataclass(frozen=True)
class ServerState:
    status: str  # UP, DOWN, "UP 1/2" (going down), "DOWN 1/2" (going up), MAINT, ...
    port: int
    retries: int  # requests retried after a failed connection (wretr)
    redispatches: int  # of which sent to another server (wredis)
    connect_errors: int  # econ
    response_errors: int  # eresp


def parse_stat(text: str) -> dict[str, ServerState]:
    """`show stat` CSV -> the backend's servers by name (the FRONTEND/BACKEND rows are left out)."""
    rows = csv.DictReader(text.removeprefix("# ").splitlines())
    return {
        row["svname"]: ServerState(
            status=row["status"],
            port=int(row["addr"].rpartition(":")[2]),
            retries=int(row["wretr"] or 0),
            redispatches=int(row["wredis"] or 0),
            connect_errors=int(row["econ"] or 0),
            response_errors=int(row["eresp"] or 0),
        )
        for row in rows
        if row.get("pxname") == BACKEND and row["svname"] not in ("FRONTEND", "BACKEND")
    }


class HAProxy:
    """A running haproxy; `start()` makes one. Every method is blocking (call it from a thread in async code)."""

    def __init__(self, proc: subprocess.Popen[bytes], port: int, admin_socket: Path, log: Path) -> None:
        self.proc, self.port, self.admin_socket, self.log = proc, port, admin_socket, log
        self.scratch: Path | None = None  # a short directory made for the socket, removed at stop

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self, line: str, timeout_s: float = 10.0) -> str:
        """One runtime API command; the answer text (haproxy closes the socket after it)."""
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(timeout_s)
            sock.connect(str(self.admin_socket))
            sock.sendall(line.encode() + b"\n")
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks).decode(errors="replace")

    def servers(self) -> dict[str, ServerState]:
        return parse_stat(self.command(f"show stat {BACKEND} 4 -1"))

    def point(self, server: str, port: int) -> None:
        """Send `server`'s traffic (and health checks) to 127.0.0.1:port; it takes requests once checks pass."""
        answer = self.command(f"set server {BACKEND}/{server} addr 127.0.0.1 port {port}")
        if "changed" not in answer:
            raise RuntimeError(f"haproxy refused the new address of {server}: {answer.strip()}")
        answer = self.command(f"set server {BACKEND}/{server} state ready")
        if answer.strip():
            raise RuntimeError(f"haproxy refused to enable {server}: {answer.strip()}")

    def wait_status(self, server: str, status: str, timeout_s: float, port: int | None = None) -> ServerState:
        """Poll until `server` is exactly `status` (and on `port`, when given)."""
        deadline = time.monotonic() + timeout_s
        while True:
            state = self.servers()[server]
            if state.status == status and port in (None, state.port):
                return state
            if self.proc.poll() is not None:
                raise RuntimeError(f"haproxy exited with {self.proc.returncode}:\n{tail(self.log)}")
            if time.monotonic() >= deadline:
                raise RuntimeError(
                    f"{server} still {state.status} on port {state.port} after {timeout_s:g} s"
                )
            time.sleep(0.05)

    def stop(self, grace_s: float = 20.0) -> int:
        """Soft stop (SIGUSR1: finish open connections, bounded by hard-stop-after), then SIGKILL."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGUSR1)
            try:
                self.proc.wait(grace_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self.scratch is not None:
            shutil.rmtree(self.scratch, ignore_errors=True)
        return self.proc.returncode


def executable() -> str | None:
    """Debian installs it in /usr/sbin, which a non-root PATH often lacks."""
    return shutil.which("haproxy") or shutil.which("haproxy", path="/usr/sbin:/usr/local/sbin")


def start(
    work: Path,
    servers: Mapping[str, int],
    checks: Checks = Checks(),
    timeout_s: float = 30.0,
    ports: Iterable[int] | None = None,
) -> HAProxy:
    """haproxy in the foreground (`-db`: no daemon, no chroot, the current user) on a free loopback port; a
    port taken between choosing and binding is retried with another (`ports`: the candidates, default five
    the kernel picks). Ready once its runtime API answers."""
    binary = executable()
    if binary is None:
        raise RuntimeError("haproxy not found: `make install` (as root) or `bash scripts/install-haproxy.sh`")
    work = work.resolve()  # haproxy reads a relative socket path as host:port
    work.mkdir(parents=True, exist_ok=True)
    candidates = list(ports) if ports is not None else [_unused_port() for _ in range(5)]
    cfg, admin, log = work / "haproxy.cfg", work / "admin.sock", work / "haproxy.log"
    scratch = Path(tempfile.mkdtemp(prefix="haproxy-")) if len(str(admin)) > MAX_SOCKET_PATH else None
    admin = admin if scratch is None else scratch / "admin.sock"
    for port in candidates:
        cfg.write_text(config_text(port, servers, admin, checks))
        with log.open("wb") as out:
            proc = subprocess.Popen([binary, "-db", "-f", str(cfg)], stdout=out, stderr=subprocess.STDOUT)
        lb = HAProxy(proc, port, admin, log)
        lb.scratch = scratch
        if _wait_up(lb, timeout_s):
            return lb
        if BIND_CLASH not in tail(log):
            raise RuntimeError(f"haproxy did not start (exit {proc.returncode}):\n{tail(log)}")
    raise RuntimeError(f"haproxy could bind none of the ports {candidates}:\n{tail(log)}")


def _wait_up(lb: HAProxy, timeout_s: float) -> bool:
    """True once the runtime API answers (every listener is bound by then); False if it exited first."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if lb.proc.poll() is not None:
            return False
        with contextlib.suppress(OSError):
            if "Name:" in lb.command("show info", timeout_s=2):
                return True
        time.sleep(0.05)
    lb.stop()
    raise RuntimeError(f"haproxy not ready after {timeout_s:g} s:\n{tail(lb.log)}")


def _unused_port() -> int:
    # Only a guess: haproxy cannot report a port it chose, so a clash at bind time is retried by start().
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def tail(log: Path, lines: int = 20) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""
