"""A volume part with DICOMweb sources, resolved: the series' Modality (QIDO-RS) routes it. CT or MR: the metadata
of every instance (WADO-RS, no pixels) is read on an image worker, the slices checked, ordered and sampled as for
inline DICOM, and only the sampled instances are retrieved; their bytes then go through the inline pipeline
(serve/gateway/rewrite/volumes.py) unchanged, so recipes, budgets and errors are the same. SM: whole-slide
patches (slides.py). Anything else (CR, DX, ...): each instance on today's single-image path."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

import pybase64

from serve.config import ImageSettings
from serve.gateway.dicomweb import failures, slides
from serve.gateway.dicomweb.client import Fetcher
from serve.gateway.dicomweb.credentials import credential
from serve.gateway.dicomweb.request import Reference, references, remote_options
from serve.gateway.errors import GatewayError, bad_request
from serve.gateway.rewrite import volumes
from serve.gateway.rewrite.image_jobs import on_pool
from serve.gateway.rewrite.images import ImagePart
from serve.gateway.rewrite.volume_request import InlineSource, VolumeSpec
from serve.imaging import series
from serve.imaging.dicomweb_jobs import InstanceHeader, decode_object, metadata_headers
from serve.imaging.pool import ImagePool

DATA_URL = "data:application/dicom;base64,"
VOLUME_MODALITIES = ("CT", "MR")
SLIDE = "SM"  # VL Whole Slide Microscopy


def is_remote(spec: VolumeSpec) -> bool:
    return bool(spec.references)


async def slices_of(
    item: ImagePart, spec: VolumeSpec, settings: ImageSettings, pool: ImagePool
) -> list[dict[str, Any]]:
    """The image (and text) parts that replace the volume part."""
    if spec.sources:
        raise bad_request(
            f"{spec.sources[0].where}: a part's sources are all inline DICOM or all DICOMweb references, not both.",
            spec.sources[0].where,
            "invalid_volume",
        )
    refs = references(list(spec.references), settings.dicomweb)
    first = refs[0]
    options = remote_options(*options_of(item), first.server, settings.dicomweb.wsi.max_patches)
    auth = credential(first.server, options.credential)
    async with Fetcher(first.server, auth) as fetch:
        if first.instance is None and (await fetch.modality(first)) == SLIDE:
            return await slides.patch_parts(item, first, options, auth, settings, pool)
        if options.patches is not None or options.max_patches is not None:
            raise bad_request(
                f"{spec.where}: 'patch_coordinates' and 'max_patches' apply to whole-slide series (SM) only.",
                spec.where,
                "invalid_volume",
            )
        bodies = await asyncio.gather(*(fetch.metadata(ref) for ref in refs))
        headers = await instance_headers(list(bodies), first, pool)
        modalities = {s.modality for header in headers for s in header.slices}
        if SLIDE in modalities:
            raise bad_request(
                f"{first.where}: a whole slide is named by its series URL, not by its instances.",
                first.where,
                "invalid_volume",
            )
        if modalities & set(VOLUME_MODALITIES):
            return await volume_parts(item, spec, first, headers, fetch, settings, pool)
        return await single_images(item, spec, first, headers, fetch, pool)


def options_of(item: ImagePart) -> tuple[dict[str, Any], str]:
    if item.part.get("type") == "image_dicom":
        return item.part["image_dicom"], f"{item.where}.image_dicom"
    return item.part["image_url"]["volume"], f"{item.where}.image_url.volume"


async def instance_headers(bodies: list[bytes], ref: Reference, pool: ImagePool) -> list[InstanceHeader]:
    try:
        (headers,) = await on_pool(pool, metadata_headers, [(bodies,)], ref.where)
    except GatewayError as error:
        if error.code == "dicomweb_bad_response":  # the server's answer, not the client's request
            raise failures.bad_response(
                ref.where, ref.server.name, "metadata that is not DICOM JSON"
            ) from None
        raise
    if not headers:
        raise failures.not_found(ref.where, ref.server.name, "instance")
    return list(headers)


async def volume_parts(
    item: ImagePart,
    spec: VolumeSpec,
    ref: Reference,
    headers: list[InstanceHeader],
    fetch: Fetcher,
    settings: ImageSettings,
    pool: ImagePool,
) -> list[dict[str, Any]]:
    """Single-frame series: only the slices the recipe samples are retrieved. A multi-frame object is retrieved
    whole (its frames are sampled from its own bytes, as inline)."""
    chosen = list(range(len(headers)))
    if all(header.frames == 1 for header in headers):
        slices = [header.slices[0] for header in headers]
        with volumes.naming(spec.where):
            series.check_one_series(slices)
            ordered = series.order(slices)
        chosen = [ordered[i].source for i in series.sample(len(ordered), spec.max_slices)]
        if item.room is not None:
            item.room.check(spec, len(chosen))
    if len(chosen) > settings.volumes.max_objects:
        raise bad_request(
            f"{spec.where}: the series has {len(chosen)} multi-frame objects; this gateway takes at most "
            f"{settings.volumes.max_objects} in one part.",
            spec.where,
            "too_many_objects",
        )
    objects = await asyncio.gather(*(data_url(fetch, ref, headers[k].instance) for k in chosen))
    inline = VolumeSpec(
        spec.where,
        [InlineSource(ref.where, url, len(DATA_URL)) for url in objects],
        spec.max_slices,
        spec.labels,
    )
    return await volumes.slices_of(replace(item, volume=inline), settings, pool)


async def data_url(fetch: Fetcher, ref: Reference, instance: str) -> str:
    """One instance as the inline pipeline takes it (base64 of ~0.5 MB: ~0.02 ms with pybase64, between two reads)."""
    return DATA_URL + pybase64.b64encode(await fetch.instance(ref, instance)).decode("ascii")


async def single_images(
    item: ImagePart,
    spec: VolumeSpec,
    ref: Reference,
    headers: list[InstanceHeader],
    fetch: Fetcher,
    pool: ImagePool,
) -> list[dict[str, Any]]:
    """Radiographs and other single images: each instance one image part, in Instance Number order."""
    ordered = sorted(headers, key=lambda h: (h.slices[0].instance is None, h.slices[0].instance or 0))
    if len(ordered) > spec.max_slices:
        raise bad_request(
            f"{spec.where}: the series holds {len(ordered)} images; this request takes at most "
            f"{spec.max_slices} ('max_slices').",
            spec.where,
            "too_many_images",
        )
    if item.room is not None:
        item.room.check(spec, len(ordered))
    objects = await asyncio.gather(*(fetch.instance(ref, header.instance) for header in ordered))
    encoded = await on_pool(pool, decode_object, [(data,) for data in objects], ref.where)
    return [volumes.image_part(item, e.data_url_bytes()) for e in encoded]


__all__ = ["is_remote", "slices_of"]
