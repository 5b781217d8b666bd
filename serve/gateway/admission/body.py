"""Reads a request body before it takes a concurrency slot, within a deadline and a gateway-wide byte budget.

So many large or slow bodies can neither hold every slot nor exhaust memory.
"""

from __future__ import annotations

import asyncio

from aiohttp import StreamReader, web
from aiohttp.http_exceptions import HttpProcessingError

from serve.gateway.errors import GatewayError, bad_request
from serve.gateway.rewrite.data_urls import ScannedBytes
from serve.imaging import shared_bytes

RETRY_AFTER_S = "1"
# Larger bodies are copied into one buffer as they arrive: joining a CT volume's 60 MB at the end held the event
# loop ~35 ms at once. Smaller ones keep the join (one chunk: no copy at all). Where it can, that buffer is memory
# the image workers read a volume's slices from, so they are never pickled (serve/imaging/shared_bytes.py).
FILL_IN_PLACE_BYTES = 1 << 20
SHARED = shared_bytes.supported()


class BodyBudget:
    """Bytes of request bodies held across requests in flight. A body is counted before it is read (its
    Content-Length) or as it arrives (chunked), and until `release(len(body))` when its request ends."""

    def __init__(self, max_bytes: int, *, max_body_bytes: int, timeout_s: float) -> None:
        self.max_bytes, self.max_body_bytes, self.timeout_s = max_bytes, max_body_bytes, timeout_s
        self.held = 0

    async def read(self, request: web.BaseRequest) -> bytes:
        """The whole body, counted; 413 past max_body_bytes, 503 past the budget, 408 past the deadline."""
        declared = request.content_length
        if declared is not None:
            if declared > self.max_body_bytes:
                raise too_large(self.max_body_bytes)
            self._take(declared)
        try:
            if request.content.is_eof():  # the common case: the body came with its head, nothing to wait for
                return await self._read(request, declared)
            async with asyncio.timeout(self.timeout_s):
                return await self._read(request, declared)
        except BaseException as exc:
            if declared is not None:
                self.release(declared)
            if isinstance(exc, TimeoutError):
                raise body_timeout(self.timeout_s) from None
            if isinstance(exc, HttpProcessingError):
                raise bad_request(
                    f"The request body is malformed ({type(exc).__name__}).", code="invalid_body"
                ) from None
            raise

    def release(self, n: int) -> None:
        self.held -= n

    def _take(self, n: int) -> None:
        if self.held + n > self.max_bytes:
            raise buffer_full(self.max_bytes)
        self.held += n

    async def _read(self, request: web.BaseRequest, declared: int | None) -> bytes:
        content, chunks = request.content, []
        if declared is not None and declared >= FILL_IN_PLACE_BYTES:
            return await (_fill_shared(content, declared) if SHARED else _fill(content))
        if declared is not None:
            while chunk := await content.readany():
                chunks.append(chunk)
            return b"".join(chunks)
        size = 0
        try:  # chunked: counted as it arrives
            while chunk := await content.readany():
                size += len(chunk)
                if size > self.max_body_bytes:
                    raise too_large(self.max_body_bytes)
                self._take(len(chunk))
                chunks.append(chunk)
        except BaseException:
            self.release(sum(map(len, chunks)))
            raise
        return b"".join(chunks)


async def _fill(content: StreamReader) -> bytes:
    """The body in one growing buffer, each chunk copied in as it comes (bytearray(n) would zero, and so touch,
    all of it at once; growing reallocates in place)."""
    body = bytearray()
    while chunk := await content.readany():
        body += chunk
    # Typed bytes: every reader (orjson, the cut, len, slices, writelines) takes a bytearray as it takes bytes.
    return body  # type: ignore[return-value]


async def _fill_shared(content: StreamReader, declared: int) -> bytes:
    """As _fill, into shared memory of the declared size (aiohttp reads exactly Content-Length bytes), its data
    URLs found piece by piece as they arrive (the cut then has nothing left to scan). Its unmapping, when the
    request is done with it, is left to a thread (shared_bytes.unmap_off_loop)."""
    body = ScannedBytes(declared)
    shared_bytes.unmap_off_loop(body)
    while chunk := await content.readany():
        body.append(chunk)
    if body.filled != declared:  # not expected of aiohttp: then the body is what arrived, as bytes
        return bytes(body[: body.filled])
    return body  # type: ignore[return-value]  # reads as bytes do (shared_bytes.SharedBytes)


def release_body(body: bytes) -> None:
    """When its request ends: workers can no longer open a shared body (its memory goes with the last view)."""
    if isinstance(body, shared_bytes.SharedBytes):
        body.close_file()


def too_large(limit: int) -> GatewayError:
    return GatewayError(
        413,
        f"The request body is larger than this gateway's limit of {limit} bytes.",
        "invalid_request_error",
        "request_too_large",
        close=True,
    )


def buffer_full(limit: int) -> GatewayError:
    return GatewayError(
        503,
        f"The gateway holds its limit of {limit} bytes of request bodies in flight; retry shortly.",
        "server_error",
        "request_buffer_full",
        headers={"Retry-After": RETRY_AFTER_S},
        close=True,
    )


def body_timeout(timeout_s: float) -> GatewayError:
    return GatewayError(
        408,
        f"The request body did not arrive within {timeout_s:g} s.",
        "invalid_request_error",
        "request_body_timeout",
        close=True,
    )
