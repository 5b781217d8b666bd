"""Files only the gateway's own user may read: the SQLite store (key hashes) and the generated hash secret."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

FILE_MODE = 0o600
DIR_MODE = 0o700


def private_dir(path: Path) -> None:
    """Create the directory 0700 if it is missing; one that exists is the operator's and is left as it is."""
    if not path.is_dir():
        path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileExistsError):  # another gateway made it first
            path.mkdir(mode=DIR_MODE)


def private_file(path: Path) -> None:
    """Create the file 0600 if it is missing (the mode is set at creation: no moment of being readable)."""
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, FILE_MODE))
    restrict(path)


def restrict(path: Path) -> None:
    """Take group and other access away from a file we own (a store made before this rule was 0644)."""
    with contextlib.suppress(FileNotFoundError, PermissionError):
        if path.stat().st_mode & 0o077:
            os.chmod(path, FILE_MODE)


def publish_once(path: Path, data: bytes) -> bytes:
    """Write data to path unless another process already did; return what the file holds then.

    Written 0600 under a temporary name and linked into place, so a reader never sees it half-written and two
    gateways starting together agree on one content.
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)
    except FileExistsError:
        pass
    finally:
        tmp.unlink()
    return path.read_bytes()
