"""DICOMweb sources in a volume part, read and checked (pure): the allow-listed server a URL names, the study,
series and instance UIDs, and the options only a reference has (the client's credential, whole-slide patches).

    {"type": "image_dicom", "image_dicom": {"dicom_source": ["https://pacs/dicom-web/studies/S/series/E"],
     "access_credential": "<bearer token>", "max_patches": 40, "patch_coordinates": [{"x_origin": 0, ...}]}}

The gateway never fetches the URL as given: it builds each request from the configured base URL and the UIDs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from serve.config.dicomweb import DicomwebServer, DicomwebSettings
from serve.gateway.errors import GatewayError, bad_request

OPTIONS = ("access_credential", "max_patches", "patch_coordinates")
# PS3.5 9.1: digits and dots, at most 64 characters (leading zeros, which some archives write, are let through).
UID = re.compile(r"[0-9]+(?:\.[0-9]+)*")
MAX_UID = 64
PATCH_KEYS = ("x_origin", "y_origin", "width", "height")  # Google's PatchBounds names
MAX_PATCH_SIDE = 4096  # a patch is resized to the model's input: larger ones would only cost decoding


@dataclass(frozen=True)
class DicomwebSource:
    where: str  # e.g. "messages[0].content[1].image_dicom.dicom_source[0]"
    url: str


@dataclass(frozen=True)
class Reference:
    where: str
    server: DicomwebServer
    study: str
    series: str
    instance: str | None  # None: the whole series


@dataclass(frozen=True)
class Patch:
    x: int  # in pixels of the level nearest the target magnification (~10x)
    y: int
    width: int
    height: int


@dataclass(frozen=True)
class RemoteOptions:
    credential: str | None  # the client's bearer token, only where the server forwards it
    max_patches: int | None  # None: as many as the slide and the request's room allow, up to wsi.max_patches
    patches: list[Patch] | None


def dicomweb_source(where: str, url: str) -> DicomwebSource:
    return DicomwebSource(where, url)


def references(sources: list[DicomwebSource], settings: DicomwebSettings) -> list[Reference]:
    """Each source's server and UIDs; one server and one series per part (a volume is one series)."""
    if not settings.servers:
        raise GatewayError(
            400,
            f"{sources[0].where}: DICOMweb sources need a DICOMweb server configured for this gateway, and "
            "none is; send the objects inline as 'data:application/dicom;base64,...' URLs.",
            "invalid_request_error",
            "dicomweb_not_configured",
            sources[0].where,
        )
    refs = [reference(source, settings) for source in sources]
    first = refs[0]
    for ref in refs[1:]:
        if (ref.server.name, ref.study, ref.series) != (first.server.name, first.study, first.series):
            raise bad_request(
                f"{ref.where}: the sources of one part name one series on one server; send each series as a "
                "part of its own.",
                ref.where,
                "invalid_volume",
            )
    if len(refs) > 1 and any(ref.instance is None for ref in refs):
        at = next(ref for ref in refs if ref.instance is None).where
        raise bad_request(
            f"{at}: name the series once, or its instances one by one, not both.", at, "invalid_volume"
        )
    return refs


def reference(source: DicomwebSource, settings: DicomwebSettings) -> Reference:
    parts = urlsplit(source.url)
    if parts.username or parts.password or parts.query or parts.fragment or "%" in source.url:
        raise invalid_url(source.where, "takes no user name, query, fragment or percent-encoding")
    for server in settings.servers:
        root = urlsplit(server.base_url)
        same_origin = (parts.scheme, parts.hostname, port_of(parts)) == (
            root.scheme,
            root.hostname,
            port_of(root),
        )
        if same_origin and parts.path.startswith(root.path.rstrip("/") + "/"):
            return Reference(source.where, server, *uids(parts.path[len(root.path.rstrip("/")) :], source))
    raise bad_request(
        f"{source.where}: the URL is not under a DICOMweb server this gateway is configured for "
        f"({', '.join(s.name for s in settings.servers)}).",
        source.where,
        "dicomweb_server_not_allowed",
    )


def port_of(parts: Any) -> int:
    try:
        return parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:  # a port outside 0..65535
        return -1


def uids(path: str, source: DicomwebSource) -> tuple[str, str, str | None]:
    """'/studies/S/series/E' or '/studies/S/series/E/instances/I' below the server's root."""
    steps = path.strip("/").split("/")
    if len(steps) not in (4, 6) or steps[0::2] != ["studies", "series", "instances"][: len(steps) // 2]:
        raise invalid_url(
            source.where,
            "must end in /studies/<study UID>/series/<series UID>, optionally /instances/<instance UID> "
            "(a volume or a slide is one series)",
        )
    found = steps[1::2]
    for uid in found:
        if len(uid) > MAX_UID or not UID.fullmatch(uid):
            raise invalid_url(source.where, "holds a UID that is not digits and dots (at most 64 characters)")
    return found[0], found[1], found[2] if len(found) == 3 else None


def invalid_url(where: str, why: str) -> GatewayError:
    return bad_request(f"{where}: a DICOMweb source URL {why}.", where, "invalid_dicomweb_url")


def remote_options(options: dict[str, Any], key: str, server: DicomwebServer, limit: int) -> RemoteOptions:
    """The reference-only options of a part (`key` names where they sit), checked."""
    credential = options.get("access_credential")
    if credential is not None:
        if not isinstance(credential, str) or not credential or any(c in credential for c in "\r\n"):
            raise bad_request(f"{key}.access_credential must be a bearer token.", f"{key}.access_credential")
        if not server.forward_client_credential:
            raise bad_request(
                f"{key}.access_credential: this gateway uses its own credential for the DICOMweb server "
                f"{server.name!r} and does not forward a client's.",
                f"{key}.access_credential",
                "dicomweb_credential_not_accepted",
            )
    count = options.get("max_patches")
    if count is not None and (
        isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= limit
    ):
        raise bad_request(
            f"{key}.max_patches must be a whole number from 1 to {limit}.",
            f"{key}.max_patches",
            "too_many_images",
        )
    return RemoteOptions(credential, count, patches_of(options.get("patch_coordinates"), key, limit))


def patches_of(raw: Any, key: str, limit: int) -> list[Patch] | None:
    if raw is None:
        return None
    at = f"{key}.patch_coordinates"
    if not isinstance(raw, list) or not raw:
        raise bad_request(f"{at} must be a non-empty list of patches.", at, "invalid_patch_coordinates")
    if len(raw) > limit:
        raise bad_request(f"{at}: {len(raw)} patches; at most {limit}.", at, "too_many_images")
    patches = []
    for k, item in enumerate(raw):
        values = [item.get(name) if isinstance(item, dict) else None for name in PATCH_KEYS]
        numbers = [v for v in values if isinstance(v, int) and not isinstance(v, bool)]
        if (
            len(numbers) < len(PATCH_KEYS)
            or set(item) - set(PATCH_KEYS)
            or min(numbers[:2]) < 0
            or not all(1 <= v <= MAX_PATCH_SIDE for v in numbers[2:])
        ):
            raise bad_request(
                f"{at}[{k}] must be {{'x_origin', 'y_origin', 'width', 'height'}} in whole pixels (origin from 0, "
                f"sides 1 to {MAX_PATCH_SIDE}).",
                f"{at}[{k}]",
                "invalid_patch_coordinates",
            )
        patches.append(Patch(*numbers))
    return patches


__all__ = [
    "OPTIONS",
    "DicomwebSource",
    "Patch",
    "Reference",
    "RemoteOptions",
    "dicomweb_source",
    "references",
]
