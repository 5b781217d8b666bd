"""Image parts of chat requests: found, checked (data URLs, remote hosts) and replaced by what the engine is
sent (serve/imaging decodes DICOM and rasters, windows and shrinks them)."""

from __future__ import annotations

import base64
import binascii
import ipaddress
import socket
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from serve.config import ImageSettings
from serve.gateway.errors import bad_request
from serve.imaging.errors import ImageRefused
from serve.imaging.normalise import Encoded
from serve.imaging.pipeline import convert

KNOWN_PART_TYPES = ("text", "image_url")


@dataclass(frozen=True)
class ImagePart:
    where: str  # e.g. "messages[1].content[0]" for error messages
    part: dict[str, Any]


def image_parts(messages: list[dict[str, Any]]) -> list[ImagePart]:
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
                    f"{where}: content part type {kind!r} is not supported; use 'text' or 'image_url'.",
                    where,
                    "unsupported_content_part",
                )
            if kind == "image_url":
                found.append(ImagePart(where, part))
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
    url = spec.get("url") if isinstance(spec, dict) else spec
    if not isinstance(url, str) or not url:
        raise bad_request(
            f"{item.where}: 'image_url.url' must be a data URL or an allowed https URL.",
            item.where,
            "invalid_image_url",
        )
    return url


def parse_data_url(url: str, where: str) -> tuple[str, bytes]:
    """(media type, decoded bytes) of a base64 data URL."""
    header, sep, payload = url.partition(",")
    if not sep or not header.startswith("data:") or not header.endswith(";base64"):
        raise bad_request(
            f"{where}: an image data URL reads 'data:image/png;base64,<data>'.", where, "invalid_image_url"
        )
    media = header[5:-7].lower()
    try:
        return media, base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise bad_request(f"{where}: the image data is not valid base64.", where, "invalid_base64") from None


def check_remote(url: str, where: str, settings: ImageSettings) -> None:
    """Remote URLs only for allow-listed https hosts that resolve to public addresses (no SSRF into the LAN)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise bad_request(f"{where}: image URLs must be base64 data URLs.", where, "invalid_image_url")
    if parts.scheme != "https" or parts.hostname not in settings.remote_hosts:
        raise bad_request(
            f"{where}: this gateway does not fetch remote images; send the image as a base64 data "
            "URL ('data:image/png;base64,...').",
            where,
            "remote_image_refused",
        )
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or 443, proto=socket.IPPROTO_TCP)
    except OSError:
        raise bad_request(
            f"{where}: the image host does not resolve.", where, "remote_image_refused"
        ) from None
    for info in infos:
        if not ipaddress.ip_address(info[4][0]).is_global:
            raise bad_request(
                f"{where}: the image host resolves to a private, loopback or link-local address.",
                where,
                "remote_image_refused",
            )


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


def ingest_images(parts: list[ImagePart], settings: ImageSettings) -> None:
    """Decode, check and (when configured) normalise every image part. Blocking: run it in a worker thread."""
    for item in parts:
        url, frame = image_url(item), requested_frame(item)
        if not url.startswith("data:"):
            if frame is not None:
                raise bad_request(
                    f"{item.where}: 'frame' applies only to DICOM data URLs.", item.where, "invalid_frame"
                )
            check_remote(url, item.where, settings)
            continue
        media, data = parse_data_url(url, item.where)
        try:
            encoded = convert(media, data, frame, settings)
        except ImageRefused as refusal:
            raise bad_request(f"{item.where}: {refusal.message}", item.where, refusal.code) from None
        if encoded is not None:
            forward_instead(item, encoded)
