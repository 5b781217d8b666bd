"""The DICOMweb servers a gateway may fetch studies from (`gateway.images.dicomweb`), and the whole-slide recipe's
numbers. A policy apart from remote image URLs: a PACS lives on a private network, or on loopback."""

from __future__ import annotations

import itertools
import re
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator

from serve.config.base import Strict

NAME = r"[a-z0-9][a-z0-9_-]{0,62}"


class DicomwebServer(Strict):
    # How errors and logs name the server: never its URL's path, a study or a credential.
    name: str
    # The DICOMweb root (QIDO-RS and WADO-RS below it): a request's sources must start with it, e.g.
    # http://10.1.2.3:8042/dicom-web/studies/<study>/series/<series>. Private and loopback hosts are allowed.
    base_url: str
    # The Authorization header this gateway sends ("Bearer <token>" or "Basic <base64>"): named, never written
    # here. Neither set: no credential (the PACS admits the gateway by its address).
    authorization_env: str | None = None
    authorization_file: Path | None = None
    # The part's "access_credential" (a bearer token of the client's own) is sent instead of the configured one
    # (the PACS then decides per user). Off: a request carrying one is refused, never silently ignored.
    forward_client_credential: bool = False
    connect_timeout_s: float = Field(5.0, gt=0)
    # One response, whole (a 512x512 CT instance comes in ~10 ms on loopback; a WAN PACS is slower).
    timeout_s: float = Field(60.0, gt=0)
    # Requests in flight to this server for one content part (measured: BENCHMARKS.md, "Studies from a PACS").
    max_parallel: int = Field(8, gt=0, le=64)
    # One retrieved object; beyond it the source is refused (400 image_too_large) before it is all read.
    max_instance_bytes: int = Field(64 * 1024 * 1024, gt=0)
    # Everything retrieved for one content part (85 CT slices of 512x512 are ~45 MB): the same bound as a request
    # carrying the series inline (images.volumes.max_body_bytes), held until the slices are rendered.
    max_part_bytes: int = Field(256 * 1024 * 1024, gt=0)
    # A series' metadata (DICOM JSON of every instance: ~2 KB per CT instance here, ~1 MB for a whole slide).
    max_metadata_bytes: int = Field(64 * 1024 * 1024, gt=0)

    @field_validator("name")
    @classmethod
    def _plain_name(cls, name: str) -> str:
        if not re.fullmatch(NAME, name):
            raise ValueError(f"{name!r}: a server name is lower case letters, digits, '-' or '_'")
        return name

    @field_validator("base_url")
    @classmethod
    def _plain_root(cls, url: str) -> str:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{url!r} is not an http(s) URL")
        if parts.username or parts.password or parts.query or parts.fragment or "%" in url or "\\" in url:
            raise ValueError("base_url takes no user name, password, query, fragment or percent-encoding")
        return url.rstrip("/")

    @model_validator(mode="after")
    def _one_credential_source(self) -> DicomwebServer:
        if self.authorization_env and self.authorization_file:
            raise ValueError("name authorization_env or authorization_file, not both")
        return self


class WsiSettings(Strict):
    """Google's MedGemma 1.5 pathology notebook (EZ-WSI): patches from the pyramid level nearest 10x, non-
    overlapping, on tissue found on a low-magnification level, up to 125 sampled."""

    max_patches: int = Field(125, gt=0)
    patch_size: int = Field(896, gt=0, le=4096)  # level pixels; MedGemma's input size
    # EZ-WSI: pixel spacing (mm) = 0.01 / magnification, so 10x is 1 um per pixel and the tissue mask's 1.25x is 8.
    target_um_per_px: float = Field(1.0, gt=0)
    mask_um_per_px: float = Field(8.0, gt=0)
    # A patch is tissue when its mean grey level on the mask level lies in this range (EZ-WSI: 1/255 .. 0.8 of
    # white): bright glass is above it, black scanner padding below.
    min_luminance: int = Field(1, ge=0, le=255)
    max_luminance: int = Field(204, ge=0, le=255)
    # Patches read per image-worker job (the planning job reads the first batch): a slide's patches spread over
    # the workers, each job well within its time limit (~25 ms a patch here, ~0.5-1 s to open a slide).
    patches_per_job: int = Field(24, gt=0)


class DicomwebSettings(Strict):
    servers: list[DicomwebServer] = Field(default_factory=list)
    wsi: WsiSettings = WsiSettings()

    @model_validator(mode="after")
    def _distinct(self) -> DicomwebSettings:
        names = [s.name for s in self.servers]
        if len(set(names)) < len(names):
            raise ValueError("two DICOMweb servers share a name")
        roots = sorted(s.base_url + "/" for s in self.servers)
        for a, b in itertools.pairwise(roots):
            if b.startswith(a):
                raise ValueError(f"DICOMweb base URLs nest ({a} and {b}): a source would match both")
        return self


__all__ = ["DicomwebServer", "DicomwebSettings", "WsiSettings"]
