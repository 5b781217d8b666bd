"""Gateway CPU per slice for one CT volume, measured on the gateway's own code with real image workers: the main
process (JSON, planning, job traffic, the forwarded body) and the workers (decode, windows, resize, JPEG)."""

from __future__ import annotations

import asyncio
import base64
import io
import os
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import orjson
import pybase64
from PIL import Image
from pydicom.pixels import pixel_array

from benchmarks.core import procs
from serve import terms
from serve.config import GatewaySettings
from serve.gateway.rewrite import volumes
from serve.gateway.rewrite.data_urls import ScannedBytes
from serve.gateway.rewrite.images import ingest_images
from serve.gateway.rewrite.request_body import finalize, parse
from serve.imaging import dicom, normalise, recipes, shared_bytes, volume_headers, volume_slices
from serve.imaging.pool import ImagePool
from testkit.ct_series import ct_series

MODEL = "bench-model"
# What one socket read hands the body reader here (asyncio's and uvloop's read size).
RECEIPT_PIECE = 256 << 10


def request_body(objects: list[bytes]) -> bytes:
    urls = ["data:application/dicom;base64," + base64.b64encode(o).decode() for o in objects]
    part = {"type": "image_dicom", "image_dicom": {"dicom_source": urls}}
    content = [{"type": "text", "text": "Review the slices."}, part, {"type": "text", "text": "Findings?"}]
    return orjson.dumps({"model": MODEL, "messages": [{"role": "user", "content": content}], "stream": True})


def settings(workers: int, size: int, fmt: str = "jpeg") -> GatewaySettings:
    images = {"workers": workers, "model_input_size": size, "volumes": {"slice_format": fmt}}
    return GatewaySettings(images=images)


async def one_volume(raw: bytes, gs: GatewaySettings, pool: ImagePool) -> dict[str, float]:
    """Wall, main-process CPU and worker CPU of one request's parse, expansion and forwarded body, once its body is
    in; and apart, the main-process CPU of taking the body in (as admission/body.py does while the upload arrives,
    in pieces of RECEIPT_PIECE: the copy into the memory the workers read and the search for its data URLs; not on
    the request's path once the body is in)."""
    receipt0 = time.process_time()
    if shared_bytes.supported():
        body_in = ScannedBytes(len(raw))
        for at in range(0, len(raw), RECEIPT_PIECE):
            body_in.append(raw[at : at + RECEIPT_PIECE])
        raw = body_in  # type: ignore[assignment]
    receipt = time.process_time() - receipt0
    started, main0, all0 = time.perf_counter(), time.process_time(), procs.cpu_seconds(os.getpid())
    parsed = parse(raw, [MODEL], chat=True, budget=None)
    await ingest_images(parsed.images, gs.images, pool)
    body = finalize(parsed, terms.DISCLAIMER, chat=True).body
    wall, main = time.perf_counter() - started, time.process_time() - main0
    total = procs.cpu_seconds(os.getpid()) - all0  # clock ticks of 10 ms: a run is ~0.3 s, so +-3%
    if isinstance(raw, shared_bytes.SharedBytes):
        raw.close_file()
    return {
        "wall_s": wall,
        "main_cpu_s": main,
        "worker_cpu_s": max(total - main, 0.0),
        "receipt_cpu_s": receipt,
        "body_bytes": len(body) if isinstance(body, bytes) else sum(len(piece) for piece in body),
    }


async def measure(
    raw: bytes, slices: int, workers: int, size: int, rounds: int, fmt: str = "jpeg"
) -> dict[str, Any]:
    gs = settings(workers, size, fmt)
    pool = ImagePool(gs.images)
    await pool.start()
    try:
        await one_volume(raw, gs, pool)  # warm: tables cached in the workers, imports done
        runs = [await one_volume(raw, gs, pool) for _ in range(rounds)]
    finally:
        await pool.close()
    med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    cpu = med["main_cpu_s"] + med["worker_cpu_s"]
    return {
        "workers": workers,
        "slice_format": fmt,
        "size": size,
        "slices": slices,
        "wall_ms": med["wall_s"] * 1e3,
        "cpu_ms_per_slice": cpu / slices * 1e3,
        "main_ms_per_slice": med["main_cpu_s"] / slices * 1e3,
        "worker_ms_per_slice": med["worker_cpu_s"] / slices * 1e3,
        "receipt_ms_per_slice": med["receipt_cpu_s"] / slices * 1e3,
        "wall_over_cpu_per_worker": med["wall_s"] / (cpu / max(workers, 1)),
        "forwarded_bytes": int(med["body_bytes"]),
    }


def breakdown(obj: bytes, size: int, repeats: int = 40) -> dict[str, float]:
    """Each step of one slice's work, in one process (CPU ms, median), with what it replaced or could be."""
    text = base64.b64encode(obj).decode()
    prefix = text[: volume_headers.PREFIX_CHARS]
    header = volume_headers.read_headers([(0, prefix, 0, False)], settings(1, size).images)[0]
    assert isinstance(header, volume_headers.ObjectHeader) and header.layout is not None
    start, end = header.layout.ranges[0]
    cut, skip = volumes.base64_cut(text, start, end)
    frame_task = volume_slices.SliceTask(cut, "CT", 1.0, -1024.0, header.layout, skip, end - start)
    gs = settings(1, size).images
    data = base64.b64decode(text)
    ds = dicom.read(data)
    pixels = pixel_array(ds, index=0)
    table = volume_slices.ct_table(pixels.dtype.str, 1.0, -1024.0)
    rgbx = recipes.ct_rgbx(pixels, table, recipes.rescale(1.0, -1024.0))
    rgbx_img = Image.frombuffer("RGBX", pixels.shape[::-1], rgbx, "raw", "RGBX", 0, 1)
    rgb = rgbx_img.convert("RGB")
    small = normalise.shrink(rgb, size, Image.Resampling.BILINEAR)
    encoded = normalise.encode(small, "jpeg", 100)
    bmp = normalise.encode(small, "bmp", 100)
    steps: dict[str, Callable[[], object]] = {
        "phase 1: header from a 32 KiB prefix": lambda: volume_headers.read_headers(
            [(0, prefix, 0, False)], gs
        ),
        "base64 decode (pybase64)": lambda: pybase64.b64decode(text, validate=True),
        "base64 decode (stdlib, before)": lambda: base64.b64decode(text, validate=True),
        "pixels from the cut frame (phase 1's layout)": lambda: volume_slices.stored(frame_task, gs),
        "DICOM parse + pixels (whole object, before)": lambda: pixel_array(dicom.read(data), index=0),
        "three windows (LUT)": lambda: recipes.ct_rgbx(pixels, table, None),
        "RGBX to RGB (no longer done: BMP and JPEG take RGBX)": lambda: Image.frombuffer(
            "RGBX", pixels.shape[::-1], rgbx, "raw", "RGBX", 0, 1
        ).convert("RGB"),
        f"resize to {size}": lambda: normalise.shrink(rgb, size, Image.Resampling.BILINEAR),
        "BMP from RGBX (slice_format bmp)": lambda: normalise.encode(rgbx_img, "bmp", 100),
        "BMP by Pillow's writer from RGB (before)": lambda: rgb.save(io.BytesIO(), format="BMP"),
        "JPEG q100 4:4:4 from RGBX (slice_format jpeg, the default)": lambda: normalise.encode(
            rgbx_img, "jpeg", 100
        ),
        "JPEG q95 4:4:4 (not used)": lambda: normalise.encode(small, "jpeg", 95),
        "JPEG q75 4:2:0 (the notebook's)": lambda: small.save(io.BytesIO(), format="JPEG"),
        "base64 of the JPEG": lambda: encoded.data_url_bytes(),
        "base64 of the BMP": lambda: bmp.data_url_bytes(),
        "the whole slice job (render, default format)": lambda: volume_slices.render(frame_task, gs),
        "LUT build (once a series)": lambda: recipes.ct_table(np.dtype("<i2"), recipes.rescale(1.0, -1024.0)),
    }
    return {name: cpu_ms(fn, repeats) for name, fn in steps.items()}


def cpu_ms(fn: Callable[[], object], repeats: int) -> float:
    fn()
    samples = []
    for _ in range(repeats):
        started = time.process_time()
        fn()
        samples.append(time.process_time() - started)
    return statistics.median(samples) * 1e3


def run(
    slices: int, size: int, rounds: int, workers: tuple[int, ...], formats: tuple[str, ...] = ("jpeg",)
) -> dict[str, Any]:
    series = ct_series(slices, 512, seed=7)
    raw = request_body(series.objects)
    return {
        "request_bytes": len(raw),
        "runs": [asyncio.run(measure(raw, slices, w, size, rounds, f)) for f in formats for w in workers],
        "breakdown": breakdown(series.objects[slices // 2], size),
    }
