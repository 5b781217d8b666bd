"""The two arms of the volume TTFT benchmark: an 85-slice CT as DICOM for the gateway, and the same slices rendered
by the client with the gateway's own functions, laid out as the gateway lays them out, for the engine directly;
and the paired statistics (ABBA order, bootstrap interval on the per-pair difference)."""

from __future__ import annotations

import base64
import random
import statistics
from typing import Any

import orjson

from serve.config import ImageSettings
from serve.gateway.rewrite.disclaimer import merge_system
from serve.imaging import series
from serve.imaging.volume_headers import ObjectHeader, read_headers
from serve.imaging.volume_slices import SliceTask, render

INSTRUCTION = (
    "You are an instructor teaching medical students. Please review the slices provided below carefully."
)
QUESTION = "\n\nFindings?"
DICOM_PREFIX = "data:application/dicom;base64,"


def dicom_urls(objects: list[bytes]) -> list[str]:
    return [DICOM_PREFIX + base64.b64encode(o).decode() for o in objects]


def request(model: str, messages: list[dict[str, Any]], max_tokens: int) -> bytes:
    """Streamed, greedy, usage asked for (the gateway asks the engine anyway; here both arms report it)."""
    body = {"model": model, "messages": messages, "max_tokens": max_tokens, "temperature": 0}
    return orjson.dumps({**body, "stream": True, "stream_options": {"include_usage": True}})


def gateway_body(model: str, urls: list[str], max_tokens: int) -> bytes:
    """Arm A: the series as one image_dicom part between the instruction and the question."""
    part = {"type": "image_dicom", "image_dicom": {"dicom_source": urls}}
    content = [{"type": "text", "text": INSTRUCTION}, part, {"type": "text", "text": QUESTION}]
    return request(model, [{"role": "user", "content": content}], max_tokens)


def direct_body(
    model: str, slice_urls: list[str], disclaimer: str, max_tokens: int, *, thinking: bool = False
) -> bytes:
    """Arm B: what the gateway sends the engine for arm A: each slice an image_url part followed by "SLICE k"
    (serve/gateway/rewrite/volumes.py), the disclaimer merged into a first system turn (request_body.finalize)."""
    parts: list[dict[str, Any]] = []
    for k, url in enumerate(slice_urls, 1):
        parts += [{"type": "image_url", "image_url": {"url": url}}, {"type": "text", "text": f"SLICE {k}"}]
    content = [{"type": "text", "text": INSTRUCTION}, *parts, {"type": "text", "text": QUESTION}]
    messages = merge_system([{"role": "user", "content": content}], disclaimer, thinking=thinking)
    return request(model, messages, max_tokens)


def rendered(urls: list[str], settings: ImageSettings) -> list[str]:
    """The sampled slices' data URLs as the gateway renders them (same header read, order, sample, recipe and
    encoder, called in this process): the engine gets the same pixels by either route."""
    starts = [url.index(",") + 1 for url in urls]
    found = read_headers(
        [(k, u, s, True) for k, (u, s) in enumerate(zip(urls, starts, strict=True))], settings
    )
    headers = [h for h in found if isinstance(h, ObjectHeader)]
    if len(headers) != len(urls):
        raise ValueError("a slice's header could not be read")
    slices = [s for h in headers for s in h.slices]
    modality = series.check_one_series(slices)
    ordered = series.order(slices)
    chosen = [ordered[i] for i in series.sample(len(ordered), settings.volumes.max_slices)]
    tasks = [SliceTask(urls[s.source], modality, offset=starts[s.source]) for s in chosen]
    return [render(task, settings).decode("ascii") for task in tasks]


def abba(rounds: int, arms: tuple[str, str] = ("gateway", "direct")) -> list[str]:
    """The send order: A B, B A, A B, ... (a drift over time weighs on both arms alike)."""
    return [name for k in range(rounds) for name in (arms if k % 2 == 0 else arms[::-1])]


def paired_difference(a: list[float], b: list[float], *, draws: int = 4000, seed: int = 0) -> dict[str, Any]:
    """Median of a[k] - b[k] over the pairs, with a percentile-bootstrap 95% interval (pairs resampled)."""
    if len(a) != len(b) or not a:
        raise ValueError("paired samples must be non-empty and of one length")
    diffs = [x - y for x, y in zip(a, b, strict=True)]
    rng = random.Random(seed)
    boot = sorted(statistics.median(rng.choices(diffs, k=len(diffs))) for _ in range(draws))
    low, high = boot[int(0.025 * (draws - 1))], boot[int(0.975 * (draws - 1))]
    return {"median": statistics.median(diffs), "ci95": [low, high], "pairs": len(diffs), "diffs": diffs}
