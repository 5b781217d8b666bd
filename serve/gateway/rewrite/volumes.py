"""A volume part becomes its slices' image parts. Phase 1 reads every object's header in the image workers (the
first bytes of each data URL; whole objects only for multi-frame ones), then the series is checked, ordered and
sampled here; phase 2 renders each sampled slice in a worker, one job per slice, with the series-wide parameters
(MR: a pass for the value range first). The slices replace the part in order, each followed by "SLICE k"."""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

from serve.config import ImageSettings
from serve.gateway.admission.limits import RETRY_AFTER_S
from serve.gateway.errors import GatewayError, bad_request
from serve.gateway.rewrite.images import ImagePart
from serve.gateway.rewrite.inline_media import CutText, as_worker_text
from serve.gateway.rewrite.volume_request import VolumeSpec, is_volume, volume_spec
from serve.imaging import series
from serve.imaging.errors import ImageRefused
from serve.imaging.pool import ImagePool, PoolBusy, WorkerFailed
from serve.imaging.volume_headers import PREFIX_CHARS, ObjectHeader, read_headers
from serve.imaging.volume_slices import SliceTask, render, value_range

log = logging.getLogger("serve.gateway")
HEADER_JOBS_PER_WORKER = 2  # phase 1 in a few jobs per worker: 300 prefixes need no 300 round trips
MAX_HEADERS_PER_JOB = 64

__all__ = ["expand", "is_volume"]


async def expand(parts: list[ImagePart], settings: ImageSettings, pool: ImagePool) -> None:
    """Every volume part of a request replaced, in its message, by its slices' parts."""
    expanded = [await slices_of(item, settings, pool) for item in parts]
    for item, new in zip(parts, expanded, strict=True):
        assert item.content is not None
        at = next(i for i, part in enumerate(item.content) if part is item.part)
        item.content[at : at + 1] = new


async def slices_of(item: ImagePart, settings: ImageSettings, pool: ImagePool) -> list[dict[str, Any]]:
    spec = item.volume or volume_spec(item, settings.volumes)
    from serve.gateway.dicomweb import resolve  # it builds on this module (it ends in slices_of again)

    if resolve.is_remote(spec):  # DICOMweb sources: retrieved, then through this same pipeline
        return await resolve.slices_of(item, spec, settings, pool)
    headers = await headers_of(spec, settings, pool)
    with naming(spec.where):
        slices = [s for header in headers for s in header.slices]
        modality = series.check_one_series(slices)
        ordered = series.order(slices)
    chosen = [ordered[i] for i in series.sample(len(ordered), spec.max_slices)]
    if item.room is not None:
        item.room.check(spec, len(chosen))
    tasks = [task_for(s, spec, headers[s.source], modality) for s in chosen]
    wheres = [where_of(s, spec) for s in chosen]
    if modality == "MR":  # Google's MR recipe: one min/max over the series sent
        ranges = await run_all(pool, value_range, [(t,) for t in tasks], wheres)
        extremes = (min(low for low, _ in ranges), max(high for _, high in ranges))
        tasks = [replace(t, mr_range=extremes) for t in tasks]
    urls = await run_all(pool, render, [(t,) for t in tasks], wheres)
    parts: list[dict[str, Any]] = []
    for k, url in enumerate(urls, 1):
        parts.append({"type": "image_url", "image_url": {"url": url}})
        if spec.labels:
            parts.append({"type": "text", "text": f"SLICE {k}"})
    return parts


async def headers_of(spec: VolumeSpec, settings: ImageSettings, pool: ImagePool) -> list[ObjectHeader]:
    """Each object's header from a prefix of its data URL; again from the whole object where the prefix ended
    before Pixel Data or the object holds several frames."""
    items = [
        (k, s.url[s.start : s.start + PREFIX_CHARS], 0, s.size <= PREFIX_CHARS)
        for k, s in enumerate(spec.sources)
    ]
    size = min(
        MAX_HEADERS_PER_JOB, math.ceil(len(items) / (HEADER_JOBS_PER_WORKER * max(settings.workers, 1)))
    )
    chunks = [items[i : i + size] for i in range(0, len(items), size)]
    found = [
        h for chunk in await run_all(pool, read_headers, [(c,) for c in chunks], spec.where) for h in chunk
    ]
    again = [k for k, header in enumerate(found) if header is None]
    if again:
        calls = [([(k, spec.sources[k].url, spec.sources[k].start, True)],) for k in again]
        for k, (header,) in zip(again, await run_all(pool, read_headers, calls, spec.where), strict=True):
            found[k] = header
    headers = []
    for source, header in zip(spec.sources, found, strict=True):
        if not isinstance(header, ObjectHeader):  # a refusal (a whole object is never None)
            refusal = header or ImageRefused("invalid_dicom", "the DICOM header cannot be read.")
            raise bad_request(f"{source.where}: {refusal.message}", source.where, refusal.code)
        headers.append(header)
    return headers


def task_for(s: series.Slice, spec: VolumeSpec, header: ObjectHeader, modality: str) -> SliceTask:
    source = spec.sources[s.source]
    if header.layout is None:  # the whole data URL goes, and the worker decodes from `start`: no copy here
        return SliceTask(as_worker_text(source.url), modality, offset=source.start)
    start, end = header.layout.ranges[s.frame]
    text, skip = base64_cut(source.url, start, end, source.start)
    return SliceTask(text, modality, s.slope, s.intercept, header.layout, skip, end - start)


def base64_cut(text: str | CutText, start: int, end: int, offset: int = 0) -> tuple[str, int]:
    """The base64 holding bytes [start, end) of what text[offset:] encodes, and how many decoded bytes precede
    `start` in it: base64 maps each 3 bytes to 4 characters (phase 1 decoded the whole payload strictly, so no
    whitespace shifts the arithmetic)."""
    first = start // 3
    return text[offset + first * 4 : offset - (-end // 3) * 4], start - first * 3


def where_of(s: series.Slice, spec: VolumeSpec) -> str:
    return spec.sources[s.source].where


@contextmanager
def naming(where: str) -> Iterator[None]:
    """The series checks' refusals as 400s naming the part."""
    try:
        yield
    except ImageRefused as refusal:
        raise bad_request(f"{where}: {refusal.message}", where, refusal.code) from None


async def run_all(
    pool: ImagePool, fn: Callable[..., Any], calls: list[tuple[Any, ...]], where: str | list[str]
) -> list[Any]:
    """`fn(*call)` for every call on the image pool, admitted all or none and all in parallel; the first
    failure answers for the volume and cancels the rest (a gone client cancels them all, workers included)."""
    wheres = where if isinstance(where, list) else [where] * len(calls)
    try:
        with pool.reserve(len(calls)):
            tasks = [
                asyncio.ensure_future(one(pool, fn, call, at)) for call, at in zip(calls, wheres, strict=True)
            ]
            try:
                await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
            finally:
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


async def one(pool: ImagePool, fn: Callable[..., Any], call: tuple[Any, ...], where: str) -> Any:
    try:
        return await pool.call(fn, *call)
    except ImageRefused as refusal:
        raise bad_request(f"{where}: {refusal.message}", where, refusal.code) from None
    except WorkerFailed as failure:
        log.warning("volume job for %s failed: %s", where, failure)
        raise GatewayError(
            500,
            f"{where}: {failure}; the series was not at fault, retry the request.",
            "server_error",
            "image_worker_failed",
            where,
        ) from None
