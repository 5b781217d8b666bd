"""QIDO-RS and WADO-RS against one allow-listed server, with aiohttp on the event loop: the waiting is network I/O,
which needs no thread or process (decoding happens on the image workers). Per content part: at most
`max_parallel` requests in flight, connect and whole-answer timeouts, a size cap enforced as the body streams in,
no redirects (the allow-list names origins), every failure one envelope from failures.py."""

from __future__ import annotations

import asyncio
import logging
from types import TracebackType
from typing import Any

import aiohttp
import orjson

from serve.config.dicomweb import DicomwebServer
from serve.gateway.dicomweb import failures, multipart
from serve.gateway.dicomweb.credentials import Credential
from serve.gateway.dicomweb.request import Reference
from serve.gateway.errors import GatewayError

log = logging.getLogger("serve.gateway")
JSON = "application/dicom+json"
# As stored: no transcoding on the server (JPEG, JPEG 2000, RLE... are decoded by the image workers).
DICOM = 'multipart/related; type="application/dicom"; transfer-syntax=*'
QIDO_MAX_BYTES = 1 << 20
CHUNK = 1 << 16


class Fetcher:
    """`async with Fetcher(server, credential) as fetch:` one part's requests to one server."""

    def __init__(self, server: DicomwebServer, credential: Credential) -> None:
        self.server, self.credential = server, credential
        self._slots = asyncio.Semaphore(server.max_parallel)
        self._session: aiohttp.ClientSession | None = None
        self.received = 0  # bytes of every answer so far, bounded by server.max_part_bytes

    async def __aenter__(self) -> Fetcher:
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(
                total=self.server.timeout_s, sock_connect=self.server.connect_timeout_s
            ),
            connector=aiohttp.TCPConnector(limit=self.server.max_parallel),
            headers={"Authorization": self.credential.header} if self.credential.header else None,
        )
        return self

    async def __aexit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        if self._session is not None:
            await self._session.close()

    def series_url(self, ref: Reference) -> str:
        return f"{self.server.base_url}/studies/{ref.study}/series/{ref.series}"

    async def modality(self, ref: Reference) -> str:
        """QIDO-RS: the series' Modality; a series the server does not know is a 404."""
        url = f"{self.server.base_url}/studies/{ref.study}/series"
        query = {"SeriesInstanceUID": ref.series, "includefield": "00080060"}
        body, _ = await self.get(url, JSON, QIDO_MAX_BYTES, ref.where, "series", query)
        try:
            found = orjson.loads(body) if body.strip() else []
        except orjson.JSONDecodeError:
            raise failures.bad_response(
                ref.where, self.server.name, "a QIDO-RS answer that is not JSON"
            ) from None
        if not found:
            raise failures.not_found(ref.where, self.server.name, "series")
        try:
            return str(found[0]["00080060"]["Value"][0]).upper()
        except (LookupError, TypeError):
            raise failures.bad_response(
                ref.where, self.server.name, "a QIDO-RS answer without Modality"
            ) from None

    async def metadata(self, ref: Reference) -> bytes:
        """WADO-RS metadata (DICOM JSON, not parsed here: a large one is parsed on an image worker)."""
        url = self.series_url(ref) + (f"/instances/{ref.instance}" if ref.instance else "") + "/metadata"
        what = "instance" if ref.instance else "series"
        body, _ = await self.get(url, JSON, self.server.max_metadata_bytes, ref.where, what)
        return body

    async def instance(self, ref: Reference, instance: str) -> bytes:
        """WADO-RS: one instance as its Part 10 bytes."""
        url = f"{self.series_url(ref)}/instances/{instance}"
        body, content_type = await self.get(url, DICOM, self.server.max_instance_bytes, ref.where, "instance")
        try:
            return multipart.single(body, content_type)
        except multipart.MultipartError as exc:
            raise failures.bad_response(ref.where, self.server.name, str(exc)) from None

    async def get(
        self, url: str, accept: str, cap: int, where: str, what: str, query: dict[str, str] | None = None
    ) -> tuple[bytes, str]:
        assert self._session is not None, "use the Fetcher as an async context manager"
        name = self.server.name
        try:
            async with (
                self._slots,
                self._session.get(
                    url, params=query, headers={"Accept": accept}, allow_redirects=False
                ) as resp,
            ):
                self.check_status(resp.status, where, what)
                if (resp.content_length or 0) > cap:
                    raise failures.too_large(where, name, cap)
                body = await read_capped(resp, cap, where, name)
                self.received += len(body)
                if self.received > self.server.max_part_bytes:
                    raise failures.too_large(where, name, self.server.max_part_bytes, whole_part=True)
                return body, resp.headers.get("Content-Type", "")
        except GatewayError:
            raise
        except TimeoutError:
            log.warning("DICOMweb server %s did not answer in time", name)
            raise failures.unreachable(where, name, "did not answer in time", timeout=True) from None
        except aiohttp.ClientError as exc:
            log.warning("DICOMweb server %s unreachable (%s)", name, type(exc).__name__)
            raise failures.unreachable(where, name, "could not be reached or broke off its answer") from None

    def check_status(self, status: int, where: str, what: str) -> None:
        name = self.server.name
        if status == 200:
            return
        log.warning("DICOMweb server %s answered %d", name, status)
        if status in (204, 404):
            raise failures.not_found(where, name, what)
        if status in (401, 403):
            raise failures.forbidden(where, name, self.credential.whose)
        if status >= 500:
            raise failures.unreachable(where, name, f"failed (HTTP {status})")
        raise failures.bad_response(where, name, f"HTTP {status}")


async def read_capped(resp: aiohttp.ClientResponse, cap: int, where: str, server: str) -> bytes:
    """The body, refused as soon as it passes `cap` (a Content-Length may be absent or wrong)."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in resp.content.iter_chunked(CHUNK):
        size += len(chunk)
        if size > cap:
            raise failures.too_large(where, server, cap)
        chunks.append(chunk)
    return b"".join(chunks)


def json_list(body: bytes) -> list[dict[str, Any]]:
    found = orjson.loads(body)
    if not isinstance(found, list) or not all(isinstance(item, dict) for item in found):
        raise ValueError("DICOM JSON is a list of objects")
    return found


__all__ = ["Fetcher", "json_list"]
