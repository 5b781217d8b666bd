"""A scripted DICOMweb server (aiohttp) for fast tests: QIDO-RS series search, WADO-RS metadata and instance
retrieval over objects held in memory, and the failures a real PACS shows (a status, a redirect, a truncated or
oversized body, silence). Records the requests and their Authorization headers."""

from __future__ import annotations

import asyncio
import io
import uuid
from dataclasses import dataclass, field

import orjson
from aiohttp import web
from pydicom import dcmread

ROOT = "/dicom-web"


@dataclass
class Pacs:
    objects: dict[str, bytes] = field(default_factory=dict)  # SOP Instance UID -> Part 10 bytes
    modality: str = "CT"
    study: str = ""
    series: str = ""
    status: int = 200  # non-200: every request answered with it
    fail_only: str | None = None  # "instance", "metadata" or "qido": the status applies there only
    delay_s: float = 0.0  # before each answer
    broken_body: bool = False  # instances: a multipart body cut before its closing boundary
    requests: list[str] = field(default_factory=list)  # "qido", "metadata", "instance"
    authorizations: list[str | None] = field(default_factory=list)

    def add(self, objects: list[bytes]) -> None:
        for obj in objects:
            ds = dcmread(io.BytesIO(obj), stop_before_pixels=True)
            self.objects[str(ds.SOPInstanceUID)] = obj
            self.study, self.series = str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID)

    def url(self, base: str) -> str:
        return f"{base}{ROOT}/studies/{self.study}/series/{self.series}"


PACS = web.AppKey("pacs", Pacs)


def metadata_of(obj: bytes) -> dict:
    ds = dcmread(io.BytesIO(obj), stop_before_pixels=True)
    return ds.to_json_dict(bulk_data_threshold=1 << 20, bulk_data_element_handler=lambda _: "")


async def answer(request: web.Request, kind: str) -> web.StreamResponse | None:
    pacs = request.app[PACS]
    pacs.requests.append(kind)
    pacs.authorizations.append(request.headers.get("Authorization"))
    if pacs.delay_s:
        await asyncio.sleep(pacs.delay_s)
    if pacs.status != 200 and pacs.fail_only in (None, kind):
        if 300 <= pacs.status < 400:
            raise web.HTTPFound("http://127.0.0.1:9/elsewhere")
        return web.json_response({"error": "scripted"}, status=pacs.status)
    return None


async def qido(request: web.Request) -> web.StreamResponse:
    pacs = request.app[PACS]
    if failed := await answer(request, "qido"):
        return failed
    known = (
        request.match_info["study"] == pacs.study and request.query.get("SeriesInstanceUID") == pacs.series
    )
    found = [{"00080060": {"vr": "CS", "Value": [pacs.modality]}}] if known else []
    return web.Response(body=orjson.dumps(found), content_type="application/dicom+json")


async def metadata(request: web.Request) -> web.StreamResponse:
    pacs = request.app[PACS]
    if failed := await answer(request, "metadata"):
        return failed
    one = request.match_info.get("instance")
    if request.match_info["series"] != pacs.series or (one is not None and one not in pacs.objects):
        return web.json_response({}, status=404)
    objects = [pacs.objects[one]] if one else list(pacs.objects.values())
    body = orjson.dumps([metadata_of(obj) for obj in objects])
    return web.Response(body=body, content_type="application/dicom+json")


async def instance(request: web.Request) -> web.StreamResponse:
    pacs = request.app[PACS]
    if failed := await answer(request, "instance"):
        return failed
    obj = pacs.objects.get(request.match_info["instance"])
    if obj is None:
        return web.json_response({}, status=404)
    boundary = uuid.uuid4().hex
    body = f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode() + obj
    body += b"" if pacs.broken_body else f"\r\n--{boundary}--\r\n".encode()
    return web.Response(
        body=body,
        headers={"Content-Type": f'multipart/related; type="application/dicom"; boundary={boundary}'},
    )


def create_app(pacs: Pacs) -> web.Application:
    app = web.Application(client_max_size=1 << 30)
    app[PACS] = pacs
    base = ROOT + "/studies/{study}/series"
    app.router.add_get(base, qido)
    app.router.add_get(base + "/{series}/metadata", metadata)
    app.router.add_get(base + "/{series}/instances/{instance}/metadata", metadata)
    app.router.add_get(base + "/{series}/instances/{instance}", instance)
    return app


__all__ = ["PACS", "Pacs", "create_app"]
