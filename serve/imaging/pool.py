"""Image jobs in worker processes: decoders hold the GIL, so a thread would stall every stream. A bounded pool
(pebble), a memory cap and a time limit per worker job; a worker that dies or overruns is replaced and its job
answered, never a dead gateway."""

from __future__ import annotations

import asyncio
import binascii
import ctypes
import multiprocessing
import os
import resource
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pybase64
from pebble import ProcessExpired, ProcessPool

from serve.config import ImageSettings
from serve.imaging.errors import ImageRefused
from serve.imaging.normalise import Encoded
from serve.imaging.pipeline import convert

# Never fork the gateway itself (uvloop, threads, open sockets): a fork server that imported only the imaging
# code forks each worker, so a replacement worker starts in milliseconds with the decoders already loaded.
START_METHOD = "forkserver"
PRELOAD = ["serve.imaging.pool", "openjpeg", "libjpeg", "rle", "pydicom.pixels.decoders.pylibjpeg"]
# mallopt(3) parameters, and what a worker keeps of the memory it frees (see keep_freed_memory).
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
MMAP_THRESHOLD_BYTES = 32 << 20  # glibc's own ceiling for its adaptive threshold on 64-bit
TRIM_BYTES = 64 << 20
WORKER_NICENESS = 10  # CFS weight 110 vs the loop's 1024
# A decoder that dies on a signal of its own died on the bytes it was given: the image is at fault.
DECODER_CRASHES = frozenset(
    {-signal.SIGSEGV, -signal.SIGBUS, -signal.SIGABRT, -signal.SIGFPE, -signal.SIGILL}
)

Job = Callable[[str, str, "int | None", ImageSettings], "Encoded | None"]


class WorkerFailed(Exception):
    """A worker died or failed for a reason that is not in the image: the gateway's fault, a 5xx."""


class PoolBusy(Exception):
    """More image jobs queued and running than the gateway holds."""


def decode_job(media: str, payload: str, frame: int | None, settings: ImageSettings) -> Encoded | None:
    """One image, in a worker: base64 to bytes to what the engine is sent (serve/imaging/pipeline.py)."""
    try:
        data = pybase64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise ImageRefused("invalid_base64", "the image data is not valid base64.") from None
    try:
        return convert(media, data, frame, settings)
    except MemoryError:
        raise ImageRefused(
            "image_too_large",
            f"decoding the image needs more than an image worker's {settings.worker_memory_mb} MiB.",
        ) from None


def init_worker(memory_bytes: int) -> None:
    """In each new worker, after the imports: the cap then counts image work only. RLIMIT_DATA, not RLIMIT_AS:
    the address space also counts reservations never touched (thread stacks, allocator arenas)."""
    resource.setrlimit(resource.RLIMIT_DATA, (memory_bytes, memory_bytes))
    # Image work is batch work beside the event loop's latency-bound work: on a shared core the kernel then
    # runs the loop as soon as it wakes, where at equal priority it waited for a worker's time slice.
    os.nice(WORKER_NICENESS)
    keep_freed_memory()


def keep_freed_memory() -> None:
    """glibc gives every block over 128 kB back to the kernel when freed, so each image's buffers (a CT slice: ~5
    MB in a dozen of them) are faulted in afresh: ~200 page faults and 0.44 ms of a 2.3 ms slice, measured. Kept
    in the worker's heap (up to TRIM_BYTES), they are reused: 1.96 ms (BENCHMARKS.md). Not glibc: left as is."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)
        libc.mallopt(M_TRIM_THRESHOLD, TRIM_BYTES)
    except (OSError, AttributeError):
        pass


def worker_pid() -> int:
    return os.getpid()


class ImagePool:
    """One per app. `workers: 0` runs jobs in the gateway's own threads (the 'before' arm of the benchmark)."""

    def __init__(self, settings: ImageSettings, job: Job = decode_job) -> None:
        self.settings, self.job = settings, job
        self.pending = 0
        self._pool: ProcessPool | None = None
        # Jobs wait here, not in pebble's pipe: a queued job then never reaches a worker once cancelled, and
        # the payloads of a CT series are not all copied into the pipe at once.
        self._free = asyncio.Semaphore(max(settings.workers, 1))

    async def start(self) -> None:
        """Starts every worker now, so the first request does not pay for it."""
        if self.settings.workers == 0 or self._pool is not None:
            return
        context = multiprocessing.get_context(START_METHOD)
        context.set_forkserver_preload(PRELOAD)
        cap = self.settings.worker_memory_mb << 20
        self._pool = ProcessPool(
            self.settings.workers, initializer=init_worker, initargs=(cap,), context=context
        )
        await asyncio.gather(*(self._submit(worker_pid) for _ in range(self.settings.workers)))

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            pool.stop()
            await asyncio.to_thread(pool.join, 10)

    @contextmanager
    def reserve(self, count: int) -> Iterator[None]:
        """Room for a request's `count` jobs, all or none: past the bound, refuse now rather than queue."""
        if self.pending + count > self.settings.max_pending_jobs:
            raise PoolBusy(
                f"the gateway is at its limit of {self.settings.max_pending_jobs} queued image jobs"
            )
        self.pending += count
        try:
            yield
        finally:
            self.pending -= count

    async def run(self, media: str, payload: str, frame: int | None) -> Encoded | None:
        """One image job; cancelling the caller cancels the job (and ends its worker if it had begun)."""
        result: Encoded | None = await self.call(self.job, media, payload, frame)
        return result

    async def call(self, fn: Callable[..., Any], *args: object) -> Any:
        """Any image job kind: `fn(*args, settings)` in a worker (a module-level function: jobs are pickled by
        name), with run()'s time limit, crash handling and cancellation. Volumes use it for their phases."""
        args = (*args, self.settings)
        if self._pool is None:
            return await asyncio.to_thread(fn, *args)
        try:
            async with self._free:
                return await self._submit(fn, *args)
        except TimeoutError:
            raise ImageRefused(
                "image_decode_failed",
                f"decoding the image took longer than this gateway's {self.settings.job_timeout_s} s.",
            ) from None
        except ProcessExpired as exc:
            if exc.exitcode in DECODER_CRASHES:
                raise ImageRefused("image_decode_failed", "the image crashed its decoder.") from None
            raise WorkerFailed(f"an image worker exited (code {exc.exitcode})") from None
        except (ImageRefused, asyncio.CancelledError):
            raise
        except Exception as exc:  # a bug in the job, not in the image
            raise WorkerFailed(f"an image worker failed ({type(exc).__name__})") from None

    def _submit(self, fn: Callable[..., object], *args: object) -> asyncio.Future:
        assert self._pool is not None
        future = self._pool.schedule(fn, args, timeout=self.settings.job_timeout_s)
        return asyncio.wrap_future(future)
