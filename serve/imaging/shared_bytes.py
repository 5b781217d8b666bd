"""Bytes the gateway shares with its image workers instead of pickling them through a pipe: an anonymous memory
file (Linux memfd) the gateway maps, and a worker opens as /proc/<gateway pid>/fd/<fd> to read or write a range.
A CT volume's ~60 MB of base64 in and ~90 MB of rendered slices out then cross no pipe (pickling them cost ~2 ms
a slice between both sides: BENCHMARKS.md, "CT and MR volumes"). The file has no name, so nothing can leak: its
memory goes with the last mapping, at the latest with the gateway process."""

from __future__ import annotations

import mmap
import os
from typing import Any

NAME = "medgemma-serve"


def supported() -> bool:
    """memfd and a /proc to open it by (Linux): elsewhere bodies stay bytes and jobs carry their bytes."""
    return hasattr(os, "memfd_create") and os.path.isdir(f"/proc/{os.getpid()}/fd")


class SharedBytes(mmap.mmap):
    """A writable buffer of a fixed size that reads as bytes do (len, slices, find, re, memoryview). `path` opens
    it from a worker while `close_file()` has not been called; the mapping (and every view of it) outlives that."""

    fd: int
    path: str

    def __new__(cls, size: int) -> SharedBytes:
        fd = os.memfd_create(NAME, os.MFD_CLOEXEC)
        try:
            os.ftruncate(fd, size)  # sparse: pages are taken as they are written
            self = super().__new__(cls, fd, size)
        except BaseException:
            os.close(fd)
            raise
        self.fd, self.path = fd, f"/proc/{os.getpid()}/fd/{fd}"
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

    __slots__ = ("end", "path", "start")

    def __init__(self, shared: SharedBytes, start: int, end: int) -> None:
        self.path, self.start, self.end = shared.path, start, end

    def __reduce__(self) -> tuple[Any, ...]:
        return read_text, (self.path, self.start, self.end)


def read_text(path: str, start: int, end: int) -> memoryview:
    """In a worker: a read-only view of [start, end) (the mapping lasts as long as the view). Base64 decoders take
    it as they take a str; anything not base64 in it is refused by their strict decode, as in a str."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        mapped = mmap.mmap(fd, 0, access=mmap.ACCESS_READ)
    finally:
        os.close(fd)
    if end > len(mapped):
        raise OSError(f"shared bytes end at {len(mapped)}, before {end}")
    return memoryview(mapped)[start:end]


def read(path: str, start: int, size: int) -> bytes:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        data = os.pread(fd, size, start)
    finally:
        os.close(fd)
    if len(data) != size:
        raise OSError(f"shared bytes ended at {start + len(data)}, {size} were expected")
    return data


def write(path: str, start: int, *pieces: bytes) -> None:
    """In a worker: the pieces one after another from `start` of a SharedBytes the gateway made for it."""
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    try:
        for piece in pieces:
            view = memoryview(piece)
            while view:
                done = os.pwrite(fd, view, start)
                view, start = view[done:], start + done
    finally:
        os.close(fd)
