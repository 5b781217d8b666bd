"""Image parts of chat requests: found, checked (data URLs, remote hosts) and replaced by what the engine is
sent (serve/imaging decodes DICOM and rasters, windows and shrinks them)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from serve.config import ImageSettings
from serve.gateway.errors import bad_request
from serve.gateway.rewrite.image_jobs import ImageJob, run_jobs
from serve.gateway.rewrite.inline_media import InlineMedia, resolve
from serve.gateway.rewrite.remote_url import check_remote
from serve.imaging.normalise import Encoded
from serve.imaging.pool import ImagePool

if TYPE_CHECKING:
    from serve.gateway.rewrite.image_budget import Room
    from serve.gateway.rewrite.volume_request import VolumeSpec

# 'image_dicom': a CT or MR series the gateway expands into slices (serve/gateway/rewrite/volumes.py).
KNOWN_PART_TYPES = ("text", "image_url", "image_dicom")


@dataclass(frozen=True)
class ImagePart:
    where: str  # e.g. "messages[1].content[0]" for error messages
    part: dict[str, Any]
    # Volume parts: the list holding the part (its slices replace it there), the checked spec and the room the
    # request leaves it (serve/gateway/rewrite/image_budget.py).
    content: list[Any] | None = field(default=None, compare=False, repr=False)
    volume: VolumeSpec | None = None
    room: Room | None = None
    media: InlineMedia | None = field(default=None, compare=False, repr=False)  # resolves cut data URLs


def image_parts(messages: list[dict[str, Any]], media: InlineMedia | None = None) -> list[ImagePart]:
    """Every image part, after checking that each content part is of a type this model takes."""
    found = []
    for i, message in enumerate(messages):
        content = message.get("content")
        if not isinstance(content, list):
            continue
        for j, part in enumerate(content):
            where = f"messages[{i}].content[{j}]"
            kind = part.get("type")
            if kind not in KNOWN_PART_TYPES:
                raise bad_request(
                    f"{where}: content part type {kind!r} is not supported; use 'text', 'image_url' or "
                    "'image_dicom'.",
                    where,
                    "unsupported_content_part",
                )
            if kind in ("image_url", "image_dicom"):
                found.append(ImagePart(where, part, content, media=media))
    return found


def check_count(parts: list[ImagePart], limit: int | None) -> None:
    if limit is not None and len(parts) > limit:
        raise bad_request(
            f"This model takes at most {limit} image(s) per request; this one has {len(parts)}.",
            parts[limit].where,
            "too_many_images",
        )


def image_url(item: ImagePart) -> str:
    spec = item.part.get("image_url")
    url = resolve(spec.get("url") if isinstance(spec, dict) else spec, item.media)
    if not isinstance(url, str) or not url:
        raise bad_request(
            f"{item.where}: 'image_url.url' must be a data URL or an allowed https URL.",
            item.where,
            "invalid_image_url",
        )
    return url


def parse_data_url(url: str, where: str) -> tuple[str, str]:
    """(media type, base64 payload) of a data URL; the payload is decoded in an image worker."""
    header, sep, payload = url.partition(",")
    if not sep or not header.startswith("data:") or not header.endswith(";base64"):
        raise bad_request(
            f"{where}: an image data URL reads 'data:image/png;base64,<data>'.", where, "invalid_image_url"
        )
    return header[5:-7].lower(), payload


def requested_frame(item: ImagePart) -> int | None:
    """The client's choice of frame in a multi-frame DICOM: 'image_url': {'url': ..., 'frame': 3}, from 0."""
    spec = item.part.get("image_url")
    frame = spec.get("frame") if isinstance(spec, dict) else None
    if frame is not None and (isinstance(frame, bool) or not isinstance(frame, int) or frame < 0):
        raise bad_request(
            f"{item.where}: 'image_url.frame' must be a frame number from 0.", item.where, "invalid_frame"
        )
    return frame


def forward_instead(item: ImagePart, encoded: Encoded) -> None:
    """Rewrite the part in place: the body the engine is sent carries the normalised image, and no 'frame'."""
    spec = item.part.get("image_url")
    kept = {k: v for k, v in spec.items() if k not in ("url", "frame")} if isinstance(spec, dict) else {}
    item.part["image_url"] = {"url": encoded.data_url(), **kept}


async def ingest_images(parts: list[ImagePart], settings: ImageSettings, pool: ImagePool) -> None:
    """Decode, check and (when configured) normalise every image part: one job per image on the image pool; a
    volume part becomes its slices' image parts (serve/gateway/rewrite/volumes.py)."""
    from serve.gateway.rewrite import volumes  # it builds on this module's parts

    jobs, items = [], []
    volume_parts = [item for item in parts if volumes.is_volume(item.part)]
    for item in parts:
        if item in volume_parts:
            continue
        url, frame = image_url(item), requested_frame(item)
        if not url.startswith("data:"):
            if frame is not None:
                raise bad_request(
                    f"{item.where}: 'frame' applies only to DICOM data URLs.", item.where, "invalid_frame"
                )
            await asyncio.to_thread(check_remote, url, item.where, settings)  # DNS: blocking
            continue
        media, payload = parse_data_url(url, item.where)
        jobs.append(ImageJob(item.where, media, payload, frame))
        items.append(item)
    for item, encoded in zip(items, await run_jobs(jobs, pool), strict=True):
        if encoded is not None:
            forward_instead(item, encoded)
    await volumes.expand(volume_parts, settings, pool)
