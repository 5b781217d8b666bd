"""A whole-slide series (SM) on a DICOMweb server as up to N patch images: one image-worker job plans them (levels,
tissue, a sample of the tissue patches, or the client's own coordinates) and reads the first batch, then jobs of
`patches_per_job` read and encode the rest in parallel on the workers. The text before the part is the prompt; patches carry no labels, as in
Google's pathology notebook."""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from serve.config import ImageSettings
from serve.gateway.dicomweb import failures
from serve.gateway.dicomweb.credentials import Credential
from serve.gateway.dicomweb.request import Reference, RemoteOptions
from serve.gateway.errors import GatewayError, bad_request
from serve.gateway.rewrite.image_jobs import on_pool
from serve.gateway.rewrite.images import ImagePart
from serve.gateway.rewrite.volumes import image_part
from serve.imaging import wsi
from serve.imaging.pool import ImagePool
from serve.imaging.wsi_jobs import SlideRef, plan, read

# Job refusals that are the server's doing, by the code the worker gives them.
SERVER_CODES = (
    "dicomweb_not_found",
    "dicomweb_forbidden",
    "dicomweb_unreachable",
    "dicomweb_timeout",
    "dicomweb_bad_response",
)


async def patch_parts(
    item: ImagePart,
    ref: Reference,
    options: RemoteOptions,
    auth: Credential,
    settings: ImageSettings,
    pool: ImagePool,
) -> list[dict[str, Any]]:
    recipe = settings.dicomweb.wsi
    count = patch_count(item, options, recipe.max_patches)
    server = ref.server
    slide = SlideRef(
        server.base_url, ref.study, ref.series, auth.header, server.connect_timeout_s, server.timeout_s
    )
    asked = [wsi.Box(p.x, p.y, p.width, p.height) for p in options.patches] if options.patches else None
    with mapped(ref, auth):
        (laid_out,) = await on_pool(pool, plan, [(slide, recipe, count, asked)], ref.where)
        rest = laid_out.boxes[len(laid_out.first) :]
        read_jobs = [(slide, laid_out.level, batch) for batch in chunks(rest, recipe.patches_per_job)]
        read_urls = await on_pool(pool, read, read_jobs, ref.where) if read_jobs else []
        urls = laid_out.first + [url for batch in read_urls for url in batch]
    return [image_part(item, url) for url in urls]


def patch_count(item: ImagePart, options: RemoteOptions, limit: int) -> int:
    """The client's max_patches (or its coordinates) must fit the request's room; without either, as many as
    fit, up to the recipe's 125: on a small context (the CPU demo's 8,192 positions) a slide still works."""
    room = (
        [bound for bound in (item.room.images, item.room.context) if bound is not None] if item.room else []
    )
    fits = min([limit, *room])
    asked = len(options.patches) if options.patches else options.max_patches
    if asked is None:
        if fits < 1:
            raise room_error(item.where, 1, 0)
        return fits
    if asked > fits:
        raise room_error(item.where, asked, fits)
    return asked


def room_error(where: str, asked: int, fits: int) -> GatewayError:
    return bad_request(
        f"{where}: {asked} patches were asked for; this request's image limit and context leave room for "
        f"{fits} (ask for 'max_patches': {max(fits, 1)} or fewer).",
        where,
        "context_budget_exceeded",
    )


def chunks(boxes: list[wsi.Box], size: int) -> list[list[wsi.Box]]:
    """Even batches of at most `size` (8 and 7 per job finish sooner than 14 and 1)."""
    if not boxes:
        return []
    jobs = max(1, math.ceil(len(boxes) / size))
    per = math.ceil(len(boxes) / jobs)
    return [boxes[i : i + per] for i in range(0, len(boxes), per)]


@contextmanager
def mapped(ref: Reference, auth: Credential) -> Iterator[None]:
    """Worker refusals that describe the server (not the slide) as the DICOMweb envelopes."""
    try:
        yield
    except GatewayError as error:
        # The job's time limit (serve/imaging/pool.py words it "took longer"): reading tiles from a slow server.
        if error.code == "image_decode_failed" and "took longer" in error.message:
            raise failures.unreachable(
                ref.where,
                ref.server.name,
                "was too slow to read the slide within the job time limit",
                timeout=True,
            ) from None
        if error.code not in SERVER_CODES:
            raise
        where, name = ref.where, ref.server.name
        if error.code == "dicomweb_not_found":
            raise failures.not_found(where, name, "series") from None
        if error.code == "dicomweb_forbidden":
            raise failures.forbidden(where, name, auth.whose) from None
        if error.code == "dicomweb_bad_response":
            raise failures.bad_response(where, name, "an answer wsidicom could not read") from None
        timeout = error.code == "dicomweb_timeout"
        why = "did not answer in time" if timeout else "could not be reached or broke off its answer"
        raise failures.unreachable(where, name, why, timeout=timeout) from None


__all__ = ["patch_parts"]
