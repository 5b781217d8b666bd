"""Image parts of chat requests: checked at the gateway (media type, base64, Pillow decode, size limits)."""

from __future__ import annotations

import base64
import binascii
import io
import ipaddress
import socket
import warnings
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from PIL import Image, UnidentifiedImageError

from serve.config import ImageSettings
from serve.gateway.errors import GatewayError, bad_request

MEDIA_FORMATS = {"image/png": "PNG", "image/jpeg": "JPEG", "image/jpg": "JPEG", "image/webp": "WEBP"}
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
                raise bad_request(f"{where}: content part type {kind!r} is not supported; use 'text' or 'image_url'.",
                                  where, "unsupported_content_part")  # fmt: skip
            if kind == "image_url":
                found.append(ImagePart(where, part))
    return found


def check_count(parts: list[ImagePart], limit: int | None) -> None:
    if limit is not None and len(parts) > limit:
        raise bad_request(
            f"This model takes at most {limit} image(s) per request; this one has {len(parts)}.",
            parts[limit].where, "too_many_images",
        )  # fmt: skip


def image_url(item: ImagePart) -> str:
    spec = item.part.get("image_url")
    url = spec.get("url") if isinstance(spec, dict) else spec
    if not isinstance(url, str) or not url:
        raise bad_request(f"{item.where}: 'image_url.url' must be a data URL or an allowed https URL.", item.where,
                          "invalid_image_url")  # fmt: skip
    return url


def parse_data_url(url: str, where: str) -> tuple[str, bytes]:
    """(media type, decoded bytes) of a base64 data URL."""
    header, sep, payload = url.partition(",")
    if not sep or not header.startswith("data:") or not header.endswith(";base64"):
        raise bad_request(f"{where}: an image data URL reads 'data:image/png;base64,<data>'.", where,
                          "invalid_image_url")  # fmt: skip
    media = header[5:-7].lower()
    try:
        return media, base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise bad_request(f"{where}: the image data is not valid base64.", where, "invalid_base64") from None


def decode(media: str, data: bytes, where: str, settings: ImageSettings) -> Image.Image:
    """Open and fully decode with Pillow under our limits; a refusal names what is wrong."""
    if media not in MEDIA_FORMATS:
        raise bad_request(f"{where}: media type {media!r} is not an image this gateway takes "
                          f"({', '.join(sorted(MEDIA_FORMATS))}).", where, "unsupported_media_type")  # fmt: skip
    if len(data) > settings.max_image_bytes:
        raise bad_request(f"{where}: the image is {len(data)} bytes; the limit is {settings.max_image_bytes}.",
                          where, "image_too_large")  # fmt: skip
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
            _check_size(img.size, where, settings)
            img.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise _too_big(where, settings) from None
    except GatewayError:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise bad_request(f"{where}: the image cannot be decoded ({type(exc).__name__}: truncated or corrupt?).",
                          where, "invalid_image") from None  # fmt: skip
    if img.format != MEDIA_FORMATS[media]:
        raise bad_request(f"{where}: the data URL says {media} but the data is {img.format}.", where,
                          "media_type_mismatch")  # fmt: skip
    return img


def _check_size(size: tuple[int, int], where: str, settings: ImageSettings) -> None:
    w, h = size
    if w < 1 or h < 1 or max(w, h) > settings.max_side or w * h > settings.max_pixels:
        raise _too_big(where, settings, f"{w}x{h}")


def _too_big(where: str, settings: ImageSettings, dims: str = "too many pixels") -> GatewayError:
    return bad_request(f"{where}: image dimensions {dims} exceed this gateway's limits "
                       f"({settings.max_side} px a side, {settings.max_pixels} pixels).", where,
                       "image_dimensions")  # fmt: skip


def check_remote(url: str, where: str, settings: ImageSettings) -> None:
    """Remote URLs only for allow-listed https hosts that resolve to public addresses (no SSRF into the LAN)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise bad_request(f"{where}: image URLs must be base64 data URLs.", where, "invalid_image_url")
    if parts.scheme != "https" or parts.hostname not in settings.remote_hosts:
        raise bad_request(f"{where}: this gateway does not fetch remote images; send the image as a base64 data "
                          "URL ('data:image/png;base64,...').", where, "remote_image_refused")  # fmt: skip
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or 443, proto=socket.IPPROTO_TCP)
    except OSError:
        raise bad_request(
            f"{where}: the image host does not resolve.", where, "remote_image_refused"
        ) from None
    for info in infos:
        if not ipaddress.ip_address(info[4][0]).is_global:
            raise bad_request(f"{where}: the image host resolves to a private, loopback or link-local address.",
                              where, "remote_image_refused")  # fmt: skip


def check_images(parts: list[ImagePart], settings: ImageSettings) -> None:
    """Blocking (Pillow decodes): run it in a worker thread."""
    for item in parts:
        url = image_url(item)
        if url.startswith("data:"):
            decode(*parse_data_url(url, item.where), item.where, settings)
        else:
            check_remote(url, item.where, settings)
