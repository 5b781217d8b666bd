"""Bytes the gateway shares with its image workers instead of pickling them through a pipe: an anonymous memory
file (Linux memfd) the gateway maps, and a worker opens as /proc/<gateway pid>/fd/<fd> to read or write a range.
A CT volume's ~60 MB of base64 in and its rendered slices out then cross no pipe (pickling them cost ~1 ms a slice
on each side: BENCHMARKS.md, "CT and MR volumes"). The file has no name, so nothing can leak: its memory goes
with the last mapping, at the latest with the gateway process.

A worker finds a file by a Ref, its path and its identity (device, inode), and refuses any other file at that
path: once the gateway closes a file (its request ended), the descriptor number is reused, and a worker still
busy for the ended request (a cancelled job is stopped, but not at once) must never reach another request's
bytes, or any other file of the gateway's, under the old number."""

from __future__ import annotations

import contextlib
import mmap
import os
import queue
import sys
import threading
import time
from typing import Any, NamedTuple

NAME = "medgemma-serve"
# The unmapper looks this often at what it holds, and holds nothing longer (a holder that outlives that is a leak
# of its own: the mapping then goes with it, wherever that is).
UNMAP_POLL_S = 0.02
UNMAP_MAX_HOLD_S = 600.0


class Ref(NamedTuple):
    path: str
    device: int
    inode: int


def supported() -> bool:
    """memfd and a /proc to open it by (Linux): elsewhere bodies stay bytes and jobs carry their bytes."""
    return hasattr(os, "memfd_create") and os.path.isdir(f"/proc/{os.getpid()}/fd")


class SharedBytes(mmap.mmap):
    """A writable buffer of a fixed size that reads as bytes do (len, slices, find, re, memoryview). Workers reach
    it by `ref` until `close_file()`; the mapping (and every view of it) outlives that."""

    fd: int
    ref: Ref

    def __new__(cls, size: int) -> SharedBytes:
        fd = os.memfd_create(NAME, os.MFD_CLOEXEC)
        try:
            os.ftruncate(fd, size)  # sparse: pages are taken as they are written
            self = super().__new__(cls, fd, size)
            found = os.fstat(fd)
        except BaseException:
            os.close(fd)
            raise
        self.fd, self.ref = fd, Ref(f"/proc/{os.getpid()}/fd/{fd}", found.st_dev, found.st_ino)
        return self

    def close_file(self) -> None:
        """Workers can no longer open it; what the gateway holds of it stays readable."""
        if self.fd >= 0:
            fd, self.fd = self.fd, -1
            os.close(fd)

    def __del__(self) -> None:
        self.close_file()


class SharedText:
    """Characters [start, end) of a SharedBytes, pickled as where they are: in the worker they arrive as a view
    of the file mapped there (base64 is decoded from it in place: no copy, no str), nothing else crosses the pipe."""

    __slots__ = ("end", "ref", "start")

    def __init__(self, shared: SharedBytes, start: int, end: int) -> None:
        self.ref, self.start, self.end = shared.ref, start, end

    def __reduce__(self) -> tuple[Any, ...]:
        return read_text, (self.ref, self.start, self.end)


def opened(ref: Ref, flags: int) -> int:
    """A descriptor of the file `ref` names, never of another that took its number."""
    fd = os.open(ref.path, flags | os.O_CLOEXEC)
    found = os.fstat(fd)
    if (found.st_dev, found.st_ino) != (ref.device, ref.inode):
        os.close(fd)
        raise OSError("the shared bytes are gone: their request has ended")
    return fd


def read_text(ref: Ref, start: int, end: int) -> memoryview:
    """In a worker: a read-only view of [start, end) (the mapping lasts as long as the view). Base64 decoders take
    it as they take a str; anything not base64 in it is refused by their strict decode, as in a str."""
    fd = opened(ref, os.O_RDONLY)
    try:
        mapped = mmap.mmap(fd, 0, access=mmap.ACCESS_READ)
    finally:
        os.close(fd)
    if end > len(mapped):
        raise OSError(f"shared bytes end at {len(mapped)}, before {end}")
    return memoryview(mapped)[start:end]


def write(ref: Ref, start: int, *pieces: bytes) -> None:
    """In a worker: the pieces one after another from `start` of a SharedBytes the gateway made for it."""
    fd = opened(ref, os.O_WRONLY)
    try:
        for piece in pieces:
            view = memoryview(piece)
            while view:
                done = os.pwrite(fd, view, start)
                view, start = view[done:], start + done
    finally:
        os.close(fd)


def unmap_off_loop(shared: SharedBytes) -> None:
    """From now on a thread of its own holds `shared` too, and drops it once no one else does: the mapping then
    goes in that thread (munmap, without the GIL), not in the event loop where a request's last reference
    drops. Unmapping a CT volume's 60 MB body held the loop ~7 ms, its rendered slices ~4 ms."""
    _unmapper().put((time.monotonic(), shared))


_UNMAPPER: queue.SimpleQueue[tuple[float, SharedBytes]] | None = None
_UNMAPPER_LOCK = threading.Lock()


def _unmapper() -> queue.SimpleQueue[tuple[float, SharedBytes]]:
    global _UNMAPPER
    with _UNMAPPER_LOCK:
        if _UNMAPPER is None:
            _UNMAPPER = queue.SimpleQueue()
            threading.Thread(target=_unmap, args=(_UNMAPPER,), name="shared-bytes-unmap", daemon=True).start()
        return _UNMAPPER


def _unmap(arrivals: queue.SimpleQueue[tuple[float, SharedBytes]]) -> None:
    held: list[tuple[float, SharedBytes]] = []
    look = 0.0
    while True:
        with contextlib.suppress(queue.Empty):
            held.append(arrivals.get(timeout=max(0.0, look - time.monotonic()) if held else None))
        now = time.monotonic()
        if now >= look:
            held = _still_held(held, now - UNMAP_MAX_HOLD_S)  # the others are dropped, here
            look = now + UNMAP_POLL_S


def _still_held(held: list[tuple[float, SharedBytes]], since: float) -> list[tuple[float, SharedBytes]]:
    """Those someone else holds too: references to one counted here are its tuple's, `item`'s and the call's."""
    kept = []
    for entry in held:
        item = entry[1]
        if entry[0] > since and sys.getrefcount(item) > 3:
            kept.append(entry)
    return kept
