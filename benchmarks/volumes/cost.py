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
from PIL import Image
from pydicom.pixels import pixel_array

from benchmarks.core import procs
from serve import terms
from serve.config import GatewaySettings
from serve.gateway.rewrite.images import ingest_images
from serve.gateway.rewrite.request_body import finalize, parse
from serve.imaging import dicom, normalise, recipes, volume_slices
from serve.imaging.pool import ImagePool
from testkit.ct_series import ct_series

MODEL = "bench-model"


def request_body(objects: list[bytes]) -> bytes:
    urls = ["data:application/dicom;base64," + base64.b64encode(o).decode() for o in objects]
    part = {"type": "image_dicom", "image_dicom": {"dicom_source": urls}}
    content = [{"type": "text", "text": "Review the slices."}, part, {"type": "text", "text": "Findings?"}]
    return orjson.dumps({"model": MODEL, "messages": [{"role": "user", "content": content}], "stream": True})


def settings(workers: int, size: int) -> GatewaySettings:
    return GatewaySettings(images={"workers": workers, "model_input_size": size})


async def one_volume(raw: bytes, gs: GatewaySettings, pool: ImagePool) -> dict[str, float]:
    """Wall, main-process CPU and worker CPU of one request's parse, expansion and forwarded body."""
    budget = None
    started, main0, all0 = time.perf_counter(), time.process_time(), procs.cpu_seconds(os.getpid())
    parsed = parse(raw, [MODEL], chat=True, budget=budget)
    await ingest_images(parsed.images, gs.images, pool)
    body = finalize(parsed, terms.DISCLAIMER, chat=True).body
    wall, main = time.perf_counter() - started, time.process_time() - main0
    total = procs.cpu_seconds(os.getpid()) - all0  # clock ticks of 10 ms: a run is ~0.5 s, so +-2%
    return {
        "wall_s": wall,
        "main_cpu_s": main,
        "worker_cpu_s": max(total - main, 0.0),
        "body_bytes": len(body),
    }


async def measure(raw: bytes, slices: int, workers: int, size: int, rounds: int) -> dict[str, Any]:
    gs = settings(workers, size)
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
        "size": size,
        "slices": slices,
        "wall_ms": med["wall_s"] * 1e3,
        "cpu_ms_per_slice": cpu / slices * 1e3,
        "main_ms_per_slice": med["main_cpu_s"] / slices * 1e3,
        "worker_ms_per_slice": med["worker_cpu_s"] / slices * 1e3,
        "wall_over_cpu_per_worker": med["wall_s"] / (cpu / max(workers, 1)),
        "forwarded_bytes": int(med["body_bytes"]),
    }


def breakdown(obj: bytes, size: int, repeats: int = 40) -> dict[str, float]:
    """Each step of one slice's work, in one process (CPU ms, median)."""
    text = base64.b64encode(obj).decode()
    data = base64.b64decode(text)
    ds = dicom.read(data)
    pixels = pixel_array(ds, index=0)
    table = volume_slices.ct_table(pixels.dtype.str, 1.0, -1024.0)
    rgbx = recipes.ct_rgbx(pixels, table, recipes.rescale(1.0, -1024.0))
    rgb = Image.frombuffer("RGBX", pixels.shape[::-1], rgbx, "raw", "RGBX", 0, 1).convert("RGB")
    small = normalise.shrink(rgb, size, Image.Resampling.BILINEAR)
    encoded = normalise.encode(small, "jpeg", 100)
    steps: dict[str, Callable[[], object]] = {
        "base64 decode": lambda: base64.b64decode(text, validate=True),
        "DICOM parse + pixels": lambda: pixel_array(dicom.read(data), index=0),
        "three windows (LUT)": lambda: recipes.ct_rgbx(pixels, table, None),
        "RGBX to RGB": lambda: Image.frombuffer(
            "RGBX", pixels.shape[::-1], rgbx, "raw", "RGBX", 0, 1
        ).convert("RGB"),
        f"resize to {size}": lambda: normalise.shrink(rgb, size, Image.Resampling.BILINEAR),
        "JPEG q100 4:4:4": lambda: normalise.encode(small, "jpeg", 100),
        "JPEG q95 4:4:4 (not used)": lambda: normalise.encode(small, "jpeg", 95),
        "JPEG q75 4:2:0 (the notebook's)": lambda: small.save(io.BytesIO(), format="JPEG"),
        "base64 of the JPEG": lambda: encoded.data_url(),
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


def run(slices: int, size: int, rounds: int, workers: tuple[int, ...]) -> dict[str, Any]:
    series = ct_series(slices, 512, seed=7)
    raw = request_body(series.objects)
    return {
        "request_bytes": len(raw),
        "runs": [asyncio.run(measure(raw, slices, w, size, rounds)) for w in workers],
        "breakdown": breakdown(series.objects[slices // 2], size),
    }
