"""A volume part becomes its slices' image parts. Phase 1 reads every object's header in the image workers (the
first bytes of each data URL; whole objects only for multi-frame or compressed ones), then the series is checked,
ordered and sampled here; phase 2 renders the sampled slices in the workers, a run of slices per job, with the
series-wide parameters (MR: a pass for the value range first). The slices replace the part in order, each
followed by "SLICE k"; their data URLs are held out of the JSON (inline_media.py) and spliced into the body."""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

from serve.config import ImageSettings
from serve.gateway.rewrite.image_jobs import on_pool, refused
from serve.gateway.rewrite.images import ImagePart
from serve.gateway.rewrite.inline_media import CutText, as_worker_text
from serve.gateway.rewrite.volume_request import VolumeSpec, is_volume, volume_spec
from serve.imaging import series, shared_bytes
from serve.imaging.errors import ImageRefused
from serve.imaging.pool import ImagePool
from serve.imaging.shared_bytes import SharedBytes
from serve.imaging.volume_headers import PREFIX_CHARS, ObjectHeader, read_headers
from serve.imaging.volume_slices import SliceTask, ranges_all, render_all, url_room

HEADER_JOBS_PER_WORKER = 2  # phase 1 in a few jobs per worker: 300 prefixes need no 300 round trips
MAX_HEADERS_PER_JOB = 64
# Phase 2: ~4 jobs per worker balance the workers' ends (a job is a few slices of ~3 ms); more only add the
# ~0.3 ms of pickling and scheduling each job costs. Bounded so one job stays well inside the job time limit.
SLICE_JOBS_PER_WORKER = 4
MAX_SLICES_PER_JOB = 16

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
        ranges = await in_runs(pool, ranges_all, tasks, wheres, settings.workers, spec.where)
        extremes = (min(low for low, _ in ranges), max(high for _, high in ranges))
        tasks = [replace(t, mr_range=extremes) for t in tasks]
    out = shared_output(chosen, settings) if item.media is not None else None
    if out is not None:  # each slice written in its place there by its worker: no pipe, no copy here
        tasks = [
            replace(t, out=(out.shared.ref, at, size))
            for t, (at, size) in zip(tasks, out.places, strict=True)
        ]
    try:
        urls = await in_runs(pool, render_all, tasks, wheres, settings.workers, spec.where)
    finally:
        if out is not None:
            out.shared.close_file()
    if out is not None:  # a length: written in place; bytes: too large for its place, sent back instead
        view = memoryview(out.shared)
        urls = [
            view[at : at + url] if isinstance(url, int) else url
            for url, (at, _) in zip(urls, out.places, strict=True)
        ]
    parts: list[dict[str, Any]] = []
    for k, url in enumerate(urls, 1):
        parts.append(image_part(item, url))
        if spec.labels:
            parts.append({"type": "text", "text": f"SLICE {k}"})
    return parts


def image_part(item: ImagePart, url: bytes | memoryview) -> dict[str, Any]:
    """An image the gateway made, as a content part: its data URL held out of the JSON when the request has a
    holder (every volume request has: request_body.parse), so it is never re-encoded nor copied here."""
    held = item.media.hold(url) if item.media is not None else bytes(url).decode("ascii")
    return {"type": "image_url", "image_url": {"url": held}}


@dataclass(frozen=True)
class SharedOutput:
    shared: SharedBytes
    places: list[tuple[int, int]]  # (start, room) of each slice's data URL


def shared_output(chosen: list[series.Slice], settings: ImageSettings) -> SharedOutput | None:
    """Room for the slices' data URLs, each its own place, where their size is bounded in advance (the model
    size; normalisation off sends full-size slices, back through the pipe)."""
    if not settings.normalize or not shared_bytes.supported():
        return None
    fmt = settings.volumes.slice_format
    sizes = [url_room(s.rows, s.columns, settings.model_input_size, fmt) for s in chosen]
    starts = list(itertools.accumulate(sizes, initial=0))
    shared = SharedBytes(starts[-1])
    shared_bytes.unmap_off_loop(shared)  # when the request is done with its slices, not on the event loop
    return SharedOutput(shared, list(zip(starts[:-1], sizes, strict=True)))


async def in_runs(
    pool: ImagePool, fn: Any, tasks: list[SliceTask], wheres: list[str], workers: int, where: str
) -> list[Any]:
    """`fn` over the tasks in runs of a few slices, one job per run; a slice's refusal names its object."""
    size = min(MAX_SLICES_PER_JOB, math.ceil(len(tasks) / (SLICE_JOBS_PER_WORKER * max(workers, 1))))
    runs = [tasks[i : i + size] for i in range(0, len(tasks), size)]
    results = [r for run in await on_pool(pool, fn, [(run,) for run in runs], where) for r in run]
    for result, at in zip(results, wheres, strict=True):
        if isinstance(result, ImageRefused):
            raise refused(at, result)
    return results


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
        h for chunk in await on_pool(pool, read_headers, [(c,) for c in chunks], spec.where) for h in chunk
    ]
    again = [k for k, header in enumerate(found) if header is None]
    if again:
        calls = [([(k, spec.sources[k].url, spec.sources[k].start, True)],) for k in again]
        for k, (header,) in zip(again, await on_pool(pool, read_headers, calls, spec.where), strict=True):
            found[k] = header
    headers = []
    for source, header in zip(spec.sources, found, strict=True):
        if not isinstance(header, ObjectHeader):  # a refusal (a whole object is never None)
            raise refused(
                source.where, header or ImageRefused("invalid_dicom", "the DICOM header cannot be read.")
            )
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
    `start` in it: base64 maps each 3 bytes to 4 characters. Phase 1 decoded strictly every character before
    `start` (the whole payload, or the prefix where Pixel Data begins), so no whitespace shifts the arithmetic;
    the worker's strict decode refuses any in the cut. A cut of a request's own bytes stays uncopied here."""
    first = start // 3
    lo, hi = offset + first * 4, offset - (-end // 3) * 4
    piece = text.part(lo, hi) if isinstance(text, CutText) else text[lo:hi]
    return as_worker_text(piece), start - first * 3


def where_of(s: series.Slice, spec: VolumeSpec) -> str:
    return spec.sources[s.source].where


@contextmanager
def naming(where: str) -> Iterator[None]:
    """The series checks' refusals as 400s naming the part."""
    try:
        yield
    except ImageRefused as refusal:
        raise refused(where, refusal) from None
