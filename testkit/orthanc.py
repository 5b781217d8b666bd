"""A real PACS for tests and benchmarks: Debian's Orthanc with its DICOMweb and WSI plugins, one per session on
loopback (its config is pure), loaded over STOW-RS, stopped cleanly. `slow()` delays every request it answers, so
a test can stop it while the gateway is mid-request."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psutil

BINARY = "/usr/sbin/Orthanc"
PLUGINS = "/usr/share/orthanc/plugins"
DICOMWEB_ROOT = "/dicom-web"
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 30.0  # SIGTERM takes ~4 s here
# Every request waits this long while the slow flag file exists; Orthanc runs its Lua under one lock, so the
# requests are also served one at a time.
SLOW_REQUEST_S = 0.3
FILTER = """function IncomingHttpRequestFilter(method, uri, ip, username, headers)
  local f = io.open("{flag}", "r")
  if f ~= nil then
    f:close()
    os.execute("sleep {delay}")
  end
  return true
end
"""


def installed() -> bool:
    return Path(BINARY).exists() and Path(PLUGINS, "libOrthancDicomWeb.so").exists()


def config(workdir: Path, port: int) -> dict:
    """Loopback-only in effect (Orthanc 1.10 binds 0.0.0.0 and has no bind address: RemoteAccessAllowed false
    refuses every client that is not local), no DICOM port, no HTTP compression (it made retrieval 3-5x slower),
    no authentication (the gateway's credential settings are tested with a header Orthanc ignores)."""
    return {
        "Name": "test-pacs",
        "StorageDirectory": str(workdir / "db"),
        "IndexDirectory": str(workdir / "db"),
        "HttpPort": port,  # 0: the kernel picks one; Orthanc logs "port: 0", so it is read from the socket
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": False,
        "DicomServerEnabled": False,
        "HttpCompressionEnabled": False,
        "Plugins": [f"{PLUGINS}/libOrthancDicomWeb.so", f"{PLUGINS}/libOrthancWSI.so"],
        "DicomWeb": {"Enable": True, "Root": f"{DICOMWEB_ROOT}/", "EnableWado": False},
        "LuaScripts": [str(workdir / "filter.lua")],
    }


@dataclass
class Orthanc:
    workdir: Path
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def dicomweb_url(self) -> str:
        return self.url + DICOMWEB_ROOT

    @property
    def log(self) -> Path:
        return self.workdir / "orthanc.log"

    def start(self) -> Orthanc:
        """Starts it (again on its former port after stop(): the stored studies stay)."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "filter.lua").write_text(
            FILTER.format(flag=self.workdir / "slow", delay=SLOW_REQUEST_S)
        )
        path = self.workdir / "orthanc.json"
        path.write_text(json.dumps(config(self.workdir, self.port)))
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [BINARY, str(path)], stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                tail = self.log.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"Orthanc exited (code {self.proc.returncode}):\n{tail}")
            self.port = self.port or listening_port(self.proc.pid)
            if self.port and self.answers():
                return
            time.sleep(0.05)
        raise RuntimeError("Orthanc did not answer /system in time")

    def answers(self) -> bool:
        try:
            with urllib.request.urlopen(self.url + "/system", timeout=2) as resp:
                return resp.status == 200
        except OSError:
            return False

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def kill(self) -> None:
        """A crash, not a shutdown: SIGKILL, so every open connection is reset at once (SIGTERM lets Orthanc
        finish the requests it already queued, which can take a slowed series to its end)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    @contextmanager
    def slow(self) -> Iterator[None]:
        flag = self.workdir / "slow"
        flag.touch()
        try:
            yield
        finally:
            flag.unlink(missing_ok=True)

    def store(self, objects: Iterable[bytes], batch: int = 64) -> None:
        """STOW-RS, `batch` Part 10 objects per request (each with its preamble and 'DICM')."""
        pending: list[bytes] = []
        for obj in objects:
            pending.append(obj)
            if len(pending) == batch:
                stow(self.dicomweb_url, pending)
                pending = []
        if pending:
            stow(self.dicomweb_url, pending)


def listening_port(pid: int) -> int:
    """The TCP port the process listens on, 0 while it has none yet."""
    try:
        for conn in psutil.Process(pid).net_connections(kind="tcp"):
            if conn.status == psutil.CONN_LISTEN:
                return int(conn.laddr.port)
    except psutil.Error:
        pass
    return 0


def stow(dicomweb_url: str, objects: list[bytes]) -> None:
    boundary = uuid.uuid4().hex
    body = b"".join(
        f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode() + obj + b"\r\n" for obj in objects
    )
    body += f"--{boundary}--\r\n".encode()
    request = urllib.request.Request(
        dicomweb_url + "/studies",
        data=body,
        method="POST",
        headers={
            "Content-Type": f'multipart/related; type="application/dicom"; boundary={boundary}',
            "Accept": "application/dicom+json",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=120) as resp:
            resp.read()
    except urllib.error.HTTPError as exc:
        raise RuntimeError(f"STOW-RS refused: HTTP {exc.code}: {exc.read()[:500]!r}") from None


def start(workdir: Path) -> Orthanc:
    if not installed():
        raise RuntimeError("Orthanc is not installed: run scripts/install-orthanc.sh (make install does)")
    return Orthanc(workdir).start()


def dicomize(
    orthanc: Orthanc, tiff: Path, dataset: Path, *, imaged_width_mm: float, imaged_height_mm: float
) -> None:
    """OrthancWSIDicomizer: a tiled JPEG TIFF pyramid -> a VL Whole Slide Microscopy series in Orthanc, tiles
    copied without re-encoding. The imaged size sets the pixel spacing; one instance per level (--max-size 0)."""
    binary = shutil.which("OrthancWSIDicomizer") or "/usr/bin/OrthancWSIDicomizer"
    subprocess.run(
        [
            binary,
            "--dataset",
            str(dataset),
            "--imaged-width",
            str(imaged_width_mm),
            "--imaged-height",
            str(imaged_height_mm),
            "--max-size",
            "0",
            "--orthanc",
            orthanc.url + "/",
            str(tiff),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )


__all__ = ["Orthanc", "config", "dicomize", "installed", "start", "stow"]
