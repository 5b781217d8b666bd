"""A scripted OpenAI-compatible engine stand-in: fixed token timing, scripted errors. For tests and capacity runs."""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from testkit import fake_responses


@dataclass
class Script:
    """How the fake answers; tests mutate it between requests."""

    chunks: int = 8  # content chunks per stream (and tokens per answer)
    gap_s: float = 0.0  # between stream chunks
    delay_s: float = 0.0  # before the answer starts (a slow or hung engine)
    status: int = 200  # non-200: answer with an engine-style error body
    die_after: int | None = None  # streams: drop the connection after this many content chunks
    healthy: bool = True
    model: str = "fake-model"
    seen: list[dict[str, Any]] = field(default_factory=list)  # bodies received (tests read them)
    headers: list[Any] = field(default_factory=list)  # case-insensitive header copies
    cancelled: int = 0  # answers whose client went away before the end
    record: bool = True
    honour_max_tokens: bool = False  # answer max_tokens (or max_completion_tokens) chunks instead of `chunks`

    def tokens(self, body: dict[str, Any]) -> int:
        asked = body.get("max_tokens") or body.get("max_completion_tokens")
        return asked if self.honour_max_tokens and isinstance(asked, int) and asked > 0 else self.chunks


SCRIPT = web.AppKey("script", Script)
MAX_BODY = 64 * 1024 * 1024  # image requests carry multi-megabyte data URLs, as they do to vLLM


def _chunk(rid: str, model: str, choices: list[dict[str, Any]], **extra: Any) -> bytes:
    body = {
        "id": rid,
        "object": "chat.completion.chunk",
        "created": 1,
        "model": model,
        "choices": choices,
        **extra,
    }
    return b"data: " + json.dumps(body, separators=(",", ":")).encode() + b"\n\n"


def _text_chunk(rid: str, model: str, choices: list[dict[str, Any]], **extra: Any) -> bytes:
    body = {"id": rid, "object": "text_completion", "created": 1, "model": model, "choices": choices, **extra}
    return b"data: " + json.dumps(body, separators=(",", ":")).encode() + b"\n\n"


def stream_frames(script: Script, body: dict[str, Any], chat: bool) -> list[bytes]:
    rid, model, n = "cmpl-fake", body.get("model", script.model), script.tokens(body)
    usage = {"prompt_tokens": 5, "completion_tokens": n, "total_tokens": 5 + n}
    if chat:
        frames = [_chunk(rid, model, [{"index": 0, "delta": {"role": "assistant", "content": ""}}])]
        frames += [_chunk(rid, model, [{"index": 0, "delta": {"content": f"tok{i} "}}]) for i in range(n)]
        frames.append(_chunk(rid, model, [{"index": 0, "delta": {"content": ""}, "finish_reason": "length"}]))
        make = _chunk
    else:
        frames = [_text_chunk(rid, model, [{"index": 0, "text": f"tok{i} "}]) for i in range(n)]
        frames.append(_text_chunk(rid, model, [{"index": 0, "text": "", "finish_reason": "length"}]))
        make = _text_chunk
    if (body.get("stream_options") or {}).get("include_usage"):
        frames.append(make(rid, model, [], usage=usage))
    return [*frames, b"data: [DONE]\n\n"]


def whole_answer(script: Script, body: dict[str, Any], chat: bool) -> dict[str, Any]:
    n = script.tokens(body)
    text = "".join(f"tok{i} " for i in range(n))
    usage = {"prompt_tokens": 5, "completion_tokens": n, "total_tokens": 5 + n}
    if chat:
        choice = {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "length"}
        kind = "chat.completion"
    else:
        choice, kind = {"index": 0, "text": text, "finish_reason": "length"}, "text_completion"
    return {
        "id": "cmpl-fake",
        "object": kind,
        "created": 1,
        "model": body.get("model"),
        "choices": [choice],
        "usage": usage,
    }


async def _generate(request: web.Request, chat: bool) -> web.StreamResponse:
    return await _answer(
        request, lambda s, b: whole_answer(s, b, chat), lambda s, b: stream_frames(s, b, chat)
    )


Whole = Callable[[Script, dict[str, Any]], dict[str, Any]]
Frames = Callable[[Script, dict[str, Any]], list[bytes]]


async def _answer(request: web.Request, whole: Whole, frames: Frames | None = None) -> web.StreamResponse:
    """Record the body, wait and fail as scripted, then answer whole or (with `stream`) frame by frame."""
    script = request.app[SCRIPT]
    body = await request.json()
    if script.record:
        script.seen.append(body)
        script.headers.append(request.headers.copy())
    if script.delay_s:
        try:
            await asyncio.sleep(script.delay_s)
        except (
            asyncio.CancelledError
        ):  # the gateway closed the connection (a server with handler_cancellation)
            script.cancelled += 1
            raise
    if script.status != 200:
        error = {
            "message": "scripted engine error",
            "type": "BadRequestError",
            "param": None,
            "code": script.status,
        }
        return web.json_response({"error": error}, status=script.status)
    if frames is None or not body.get("stream"):
        return web.json_response(whole(script, body))
    return await _stream(request, script, frames(script, body))


async def _stream(request: web.Request, script: Script, frames: list[bytes]) -> web.StreamResponse:
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await resp.prepare(request)
    try:
        for i, frame in enumerate(frames):
            if script.die_after is not None and i > script.die_after:
                request.transport.close()  # the engine dies mid-stream
                return resp
            await resp.write(frame)
            if script.gap_s and i < len(frames) - 1:
                await asyncio.sleep(script.gap_s)
    except (ConnectionResetError, asyncio.CancelledError):
        script.cancelled += 1
        raise
    await resp.write_eof()
    return resp


async def chat(request: web.Request) -> web.StreamResponse:
    return await _generate(request, chat=True)


async def completions(request: web.Request) -> web.StreamResponse:
    return await _generate(request, chat=False)


async def responses(request: web.Request) -> web.StreamResponse:
    return await _answer(request, fake_responses.response_object, fake_responses.response_events)


async def tokenize(request: web.Request) -> web.StreamResponse:
    return await _answer(request, fake_responses.tokenize_answer)


async def detokenize(request: web.Request) -> web.StreamResponse:
    return await _answer(request, fake_responses.detokenize_answer)


async def models(request: web.Request) -> web.Response:
    model = request.app[SCRIPT].model
    return web.json_response(
        {"object": "list", "data": [{"id": model, "object": "model", "owned_by": "fake"}]}
    )


async def health(request: web.Request) -> web.Response:
    return web.Response(status=200 if request.app[SCRIPT].healthy else 503)


async def metrics(request: web.Request) -> web.Response:
    return web.Response(text="# TYPE vllm:num_requests_running gauge\nvllm:num_requests_running 0.0\n")


def create_fake_upstream(script: Script | None = None) -> web.Application:
    app = web.Application(client_max_size=MAX_BODY)
    app[SCRIPT] = script or Script()
    app.router.add_post("/v1/chat/completions", chat)
    app.router.add_post("/v1/completions", completions)
    app.router.add_get("/v1/models", models)
    app.router.add_get("/health", health)
    app.router.add_get("/metrics", metrics)
    app.router.add_post("/v1/responses", responses)
    app.router.add_post("/tokenize", tokenize)
    app.router.add_post("/detokenize", detokenize)
    app.router.add_get("/version", models)  # an engine route the gateway must never expose
    return app


def script_from_args(description: str | None, argv: list[str] | None = None) -> tuple[Script, int]:
    """The command line both fake upstreams share: what to answer, and the port."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--port", type=int, default=9100)
    parser.add_argument("--chunks", type=int, default=16)
    parser.add_argument("--gap-ms", type=float, default=5.0)
    parser.add_argument("--model", default="fake-model")
    parser.add_argument("--honour-max-tokens", action="store_true", help="answer max_tokens chunks")
    args = parser.parse_args(argv)
    script = Script(
        chunks=args.chunks,
        gap_s=args.gap_ms / 1000,
        model=args.model,
        record=False,
        honour_max_tokens=args.honour_max_tokens,
    )
    return script, args.port


def main() -> None:
    script, port = script_from_args(__doc__)
    print(f"fake upstream on 127.0.0.1:{port} ({time.strftime('%X')})", flush=True)
    web.run_app(create_fake_upstream(script), host="127.0.0.1", port=port, access_log=None, print=None)


if __name__ == "__main__":
    main()
