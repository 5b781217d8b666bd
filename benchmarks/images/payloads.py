"""The image benchmark's payloads and its offline figures: request bytes, bytes the gateway forwards, and the
gateway's CPU time per image, all measured on the gateway's own code (parse, ingest, finalize) in-process."""

from __future__ import annotations

import asyncio
import io
import json
import statistics
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from serve.config import ImageSettings
from serve.gateway.rewrite.images import ingest_images
from serve.gateway.rewrite.request_body import finalize, parse
from serve.imaging.pool import ImagePool
from serve.terms import DISCLAIMER
from testkit.dicom_factory import data_url, dicom, png16, radiograph16

QUESTION = "Describe the findings in this chest radiograph."
# One gateway per arm, each in front of the same engine: normalisation off, on with each forwarding format.
ARMS: dict[str, dict[str, Any]] = {
    "off": {"normalize": False},
    "on-jpeg": {"normalize": True, "forward_format": "jpeg"},
    "on-png": {"normalize": True, "forward_format": "png"},
}


@dataclass(frozen=True)
class Payload:
    name: str
    url: str  # the data URL a client sends


def payloads(size: int = 2048, small: int = 896) -> list[Payload]:
    """A 16-bit radiograph as PNG and as DICOM (12 bits stored, a window), and an 8-bit PNG at MedGemma's size."""
    film = radiograph16(size)
    eight = Image.fromarray((radiograph16(small, seed=1) >> 4).astype(np.uint8))
    return [
        Payload(f"png16-{size}", data_url(png16(film), "image/png")),
        Payload(f"dicom-{size}", data_url(dicom(film, bits_stored=12, WindowCenter=2048, WindowWidth=4096))),
        Payload(f"png8-{small}", data_url(_png(eight), "image/png")),
    ]


def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def request_body(model: str, url: str, max_tokens: int) -> dict[str, Any]:
    content = [{"type": "image_url", "image_url": {"url": url}}, {"type": "text", "text": QUESTION}]
    return {
        "model": model,
        "messages": [{"role": "user", "content": content}],
        "max_tokens": max_tokens,
        "stream": True,
        "ignore_eos": True,
    }


def forwarded(raw: bytes, model: str, settings: ImageSettings) -> tuple[bytes, float]:
    """(the body the gateway sends the engine, the CPU seconds its image work took, in-process)."""
    parsed = parse(raw, [model], chat=True, max_images=1)
    in_threads = ImagePool(settings.model_copy(update={"workers": 0}))  # this process's CPU, not a worker's
    start = time.process_time()
    asyncio.run(ingest_images(parsed.images, settings, in_threads))
    cpu = time.process_time() - start
    return finalize(parsed, DISCLAIMER, chat=True).body, cpu


def offline(payload: Payload, model: str, input_size: int, repeats: int = 5) -> dict[str, Any]:
    """Bytes in, bytes out and median gateway CPU per arm, for one payload."""
    raw = json.dumps(request_body(model, payload.url, 16)).encode()
    row: dict[str, Any] = {"request_bytes": len(raw), "arms": {}}
    for arm, options in ARMS.items():
        settings = ImageSettings(model_input_size=input_size, **options)
        runs = [forwarded(raw, model, settings) for _ in range(repeats)]
        row["arms"][arm] = {
            "forwarded_bytes": len(runs[0][0]),
            "gateway_image_cpu_ms": 1000 * statistics.median(cpu for _, cpu in runs),
        }
    return row
