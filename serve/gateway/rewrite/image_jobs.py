"""A request's images on the image pool: one job per image, all in parallel, admitted all or none; the first
failure in the request's order answers for the request and cancels the other jobs."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from serve.gateway.admission.limits import RETRY_AFTER_S
from serve.gateway.errors import GatewayError, bad_request
from serve.imaging.errors import ImageRefused
from serve.imaging.normalise import Encoded
from serve.imaging.pool import ImagePool, PoolBusy, WorkerFailed

log = logging.getLogger("serve.gateway")


@dataclass(frozen=True)
class ImageJob:
    where: str  # the content part, e.g. "messages[1].content[0]"
    media: str
    payload: str  # base64: decoded in the worker, not on the event loop
    frame: int | None


async def run_jobs(jobs: list[ImageJob], pool: ImagePool) -> list[Encoded | None]:
    if not jobs:
        return []
    try:
        with pool.reserve(len(jobs)):
            tasks = [asyncio.ensure_future(run_one(job, pool)) for job in jobs]
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


async def run_one(job: ImageJob, pool: ImagePool) -> Encoded | None:
    try:
        return await pool.run(job.media, job.payload, job.frame)
    except ImageRefused as refusal:
        raise bad_request(f"{job.where}: {refusal.message}", job.where, refusal.code) from None
    except WorkerFailed as failure:
        log.warning("image job for %s failed: %s", job.where, failure)
        raise GatewayError(
            500,
            f"{job.where}: {failure}; the image was not at fault, retry the request.",
            "server_error",
            "image_worker_failed",
            job.where,
        ) from None
