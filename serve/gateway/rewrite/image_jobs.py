"""A request's work on the image pool: jobs admitted all or none and run in parallel; the first failure in the
request's order answers for the request and cancels the other jobs (a gone client cancels them all, workers
included). Single images (one job each) and volumes (serve/gateway/rewrite/volumes.py) both go through here."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

from serve.gateway.admission.limits import RETRY_AFTER_S
from serve.gateway.errors import GatewayError, bad_request
from serve.imaging.errors import ImageRefused
from serve.imaging.normalise import Encoded
from serve.imaging.pool import ImagePool, PoolBusy, WorkerFailed

log = logging.getLogger("serve.gateway")
T = TypeVar("T")


@dataclass(frozen=True)
class ImageJob:
    where: str  # the content part, e.g. "messages[1].content[0]"
    media: str
    payload: str  # base64: decoded in the worker, not on the event loop
    frame: int | None


async def run_jobs(jobs: list[ImageJob], pool: ImagePool) -> list[Encoded | None]:
    """One job per single image."""
    return await all_or_none(
        pool, [partial(named, job.where, pool.run, job.media, job.payload, job.frame) for job in jobs]
    )


async def on_pool(
    pool: ImagePool, fn: Callable[..., Any], calls: Sequence[tuple[Any, ...]], where: str | Sequence[str]
) -> list[Any]:
    """`fn(*call, settings)` in a worker for every call, all or none; failures name `where` (one, or one per call)."""
    wheres = [where] * len(calls) if isinstance(where, str) else where
    jobs = [partial(named, at, pool.call, fn, *call) for call, at in zip(calls, wheres, strict=True)]
    return await all_or_none(pool, jobs)


async def all_or_none(pool: ImagePool, jobs: Sequence[Callable[[], Awaitable[T]]]) -> list[T]:
    """Each job's result, in order. Past the pool's bound on queued jobs the whole request is refused (429) before
    any job starts; jobs are made here, inside the reservation, so a refused one never exists."""
    if not jobs:
        return []
    try:
        with pool.reserve(len(jobs)):
            tasks = [asyncio.ensure_future(job()) for job in jobs]
            try:
                await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
            finally:  # a failure, or the client gone: nothing of this request keeps a worker busy
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
    except PoolBusy as busy:
        raise GatewayError(
            429,
            f"Too many requests: {busy}. Retry after a moment.",
            "rate_limit_error",
            "too_many_image_jobs",
            headers={"Retry-After": RETRY_AFTER_S},
        ) from None
    for task in tasks:
        if not task.cancelled() and (error := task.exception()) is not None:
            raise error
    return [task.result() for task in tasks]


async def named(where: str, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
    """`await fn(*args)`; a refusal as a 400 naming the content part, a worker's failure (not the data's) a 500."""
    try:
        return await fn(*args)
    except ImageRefused as refusal:
        raise refused(where, refusal) from None
    except WorkerFailed as failure:
        log.warning("image job for %s failed: %s", where, failure)
        raise GatewayError(
            500,
            f"{where}: {failure}; the data sent was not at fault: retry the request.",
            "server_error",
            "image_worker_failed",
            where,
        ) from None


def refused(where: str, refusal: ImageRefused) -> GatewayError:
    return bad_request(f"{where}: {refusal.message}", where, refusal.code)
