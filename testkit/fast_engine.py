"""The fake engine's capacity twin: the same answers as testkit/fake_engine.py from a bare asyncio protocol.

aiohttp.web costs ~0.2 ms of CPU per request; sharing the harness core with the load generator, that alone
caps a capacity run below what a fast proxy can do. This server answers in a few tens of microseconds.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import uvloop

from testkit.fake_engine import Script, script_from_args, stream_frames, whole_answer

CHAT, COMPLETIONS = b"/v1/chat/completions", b"/v1/completions"
MAX_BODY = 64 * 1024 * 1024


def response(status: int, body: bytes, content_type: bytes = b"application/json") -> bytes:
    reason = {200: b"OK", 404: b"Not Found", 400: b"Bad Request", 413: b"Payload Too Large"}.get(
        status, b"Error"
    )
    head = b"HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n"
    return head % (status, reason, content_type, len(body)) + body


STREAM_HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"


def chunked(frame: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(frame), frame)


class Answers:
    """Response bytes per (path, model, stream, usage): a capacity run asks the same few things again."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self._cache: dict[tuple[Any, ...], Any] = {}

    def get(self, path: bytes, body: dict[str, Any]) -> bytes | list[bytes]:
        chat = path == CHAT
        usage = bool((body.get("stream_options") or {}).get("include_usage"))
        key = (chat, body.get("model"), bool(body.get("stream")), usage, self.script.tokens(body))
        if key not in self._cache:
            if body.get("stream"):
                self._cache[key] = [chunked(f) for f in stream_frames(self.script, body, chat)]
            else:
                self._cache[key] = response(200, json.dumps(whole_answer(self.script, body, chat)).encode())
        return self._cache[key]


class FastUpstream(asyncio.Protocol):
    """HTTP/1.1 keep-alive, one request at a time per connection (clients of a proxy do not pipeline)."""

    def __init__(self, answers: Answers) -> None:
        self.answers, self.buf, self.busy = answers, b"", False
        self.transport: asyncio.Transport | None = None
        self.task: asyncio.Task[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        if self.task is not None:
            self.task.cancel()

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if not self.busy:
            self._next()

    def _next(self) -> None:
        while not self.busy and self.transport is not None and not self.transport.is_closing():
            request = _split(self.buf)
            if request is None:
                return
            (method, path, body), self.buf = request
            self._answer(method, path, body)

    def _answer(self, method: bytes, path: bytes, raw: bytes) -> None:
        assert self.transport is not None
        if path == b"/too-large":
            self.transport.write(response(413, b"{}"))
            self.transport.close()
            return
        if method == b"GET":
            models = {"object": "list", "data": [{"id": self.answers.script.model, "object": "model"}]}
            found = {b"/health": b"", b"/v1/models": json.dumps(models).encode()}.get(path)
            self.transport.write(response(404, b"{}") if found is None else response(200, found))
            return
        try:
            body = json.loads(raw) if path in (CHAT, COMPLETIONS) else None
        except ValueError:
            body = None
        if not isinstance(body, dict):
            self.transport.write(response(404 if path not in (CHAT, COMPLETIONS) else 400, b"{}"))
            return
        answer = self.answers.get(path, body)
        if isinstance(answer, bytes):
            self.transport.write(answer)
            return
        self.busy = True
        self.task = asyncio.get_running_loop().create_task(self._stream(answer))

    async def _stream(self, frames: list[bytes]) -> None:
        assert self.transport is not None
        gap = self.answers.script.gap_s
        self.transport.write(STREAM_HEAD + frames[0])
        for frame in frames[1:]:
            if gap:
                await asyncio.sleep(gap)
            self.transport.write(frame)
        self.transport.write(b"0\r\n\r\n")
        self.busy, self.task = False, None
        self._next()


def _split(buf: bytes) -> tuple[tuple[bytes, bytes, bytes], bytes] | None:
    """One complete request off the front of `buf`: ((method, path, body), rest), or None for more bytes."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return None
    head = buf[:end].split(b"\r\n")
    method, path = head[0].split(b" ", 2)[:2]
    length = 0
    for line in head[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding":
            length = MAX_BODY + 1  # chunked request bodies are not spoken here: refused below
    start = end + 4
    if length > MAX_BODY:
        return (b"POST", b"/too-large", b""), b""
    if len(buf) < start + length:
        return None
    return (method, path.split(b"?", 1)[0], buf[start : start + length]), buf[start + length :]


async def serve(script: Script, host: str, port: int) -> None:
    answers = Answers(script)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: FastUpstream(answers), host, port, backlog=1024)
    bound = server.sockets[0].getsockname()[1]  # port 0: the one the system chose
    print(f"fast fake upstream on {host}:{bound}", flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    script, port = script_from_args(__doc__)
    uvloop.run(serve(script, "127.0.0.1", port))  # the cheaper loop: a capacity run's fake must not saturate


if __name__ == "__main__":
    main()
