"""A throwaway PostgreSQL cluster for tests: initdb on a temp dir, pg_ctl on a free loopback port."""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path


def server_bin() -> Path | None:
    """Debian keeps the server tools out of PATH, under /usr/lib/postgresql/<major>/bin."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if found:
        return Path(found[-1]).parent
    on_path = shutil.which("initdb")
    return Path(on_path).parent if on_path else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_as() -> str | None:
    """initdb refuses root: as root, run the server as `postgres` (Debian's package makes it) or nobody."""
    if os.geteuid() != 0:
        return None
    with contextlib.suppress(KeyError):
        return pwd.getpwnam("postgres").pw_name
    return "nobody"


@dataclass
class Cluster:
    bindir: Path
    datadir: Path
    port: int
    password: str
    user: str | None

    def _cmd(self, *argv: str) -> list[str]:
        return ["runuser", "-u", self.user, "--", *argv] if self.user else list(argv)

    def _run(self, *argv: str) -> None:
        subprocess.run(self._cmd(*argv), check=True, capture_output=True, text=True, timeout=120)

    def dsn(self, dbname: str = "postgres") -> str:
        return f"postgresql://postgres:{self.password}@127.0.0.1:{self.port}/{dbname}"

    def init(self) -> None:
        pwfile = self.datadir.parent / "pw"
        pwfile.write_text(self.password)
        self._chown(pwfile)
        self._run(
            str(self.bindir / "initdb"),
            "-D",
            str(self.datadir),
            "-U",
            "postgres",
            "--auth-host=scram-sha-256",
            "--auth-local=trust",
            f"--pwfile={pwfile}",
            "-E",
            "UTF8",
            "--no-sync",
        )
        pwfile.unlink()

    def start(self) -> None:
        opts = f"-c listen_addresses=127.0.0.1 -p {self.port} -c unix_socket_directories={self.datadir} -c fsync=off"
        self._run(
            str(self.bindir / "pg_ctl"),
            "-D",
            str(self.datadir),
            "-o",
            opts,
            "-w",
            "-t",
            "60",
            "-l",
            str(self.datadir / "server.log"),
            "start",
        )

    def stop(self) -> None:
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-m", "fast", "-w", "stop")

    def _chown(self, path: Path) -> None:
        if self.user:
            shutil.chown(path, self.user)


def make_cluster(bindir: Path) -> Cluster:
    # Not under pytest's tmp dirs: those are 0700 root, which the server's own user cannot enter.
    root = Path(tempfile.mkdtemp(prefix="medgemma-pg-"))
    cluster = Cluster(bindir, root / "data", free_port(), secrets.token_hex(12), run_as())
    cluster.datadir.mkdir()
    for path in (root, cluster.datadir):
        cluster._chown(path)
    return cluster
