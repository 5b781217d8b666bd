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
SKIP_URLS_BYTES = 1 << 20  # larger bodies are taken in without their data URLs (Stripped)


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
        # bytearray: appending to bytes copies the whole buffer each time (~150 ms across a 30 MB body)
        self.answers, self.buf, self.busy = answers, bytearray(), False
        self.large: Stripped | None = None
        self.transport: asyncio.Transport | None = None
        self.task: asyncio.Task[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        if self.task is not None:
            self.task.cancel()

    def data_received(self, data: bytes) -> None:
        if self.large is not None:  # a large body on its way: taken in without its data URLs
            data = self.large.feed(data)
            if self.large.left:
                return
            self.buf, self.large = self.large.request(), None
        self.buf += data
        if self.large is None:
            self.large = Stripped.begin(self.buf)
            if self.large is not None:
                self.buf = bytearray()
                return
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


class Stripped:
    """A body over SKIP_URLS_BYTES taken in as it arrives, every `"data:...` string emptied on the way (found by
    memchr, never parsed nor held): the answers never depend on an image, and holding and parsing a CT volume's
    30 MB forwarded body held this loop ~50 ms (json and orjson alike), a stall every stream it serves then showed
    as the gateway's (benchmarks/volumes/itl.py)."""

    def __init__(self, method: bytes, path: bytes, length: int) -> None:
        self.method, self.path, self.left = method, path, length
        self.kept, self.tail, self.inside, self.escaped = bytearray(), b"", False, False

    @staticmethod
    def begin(buf: bytearray) -> Stripped | None:
        """For a request at the front of `buf` whose head is in and whose large body is not yet whole."""
        head = _head(buf)
        if head is None:
            return None
        method, path, length, start = head
        if length <= SKIP_URLS_BYTES or length > MAX_BODY or len(buf) >= start + length:
            return None
        large = Stripped(method, path, length)
        large.feed(bytes(buf[start:]))
        return large

    def feed(self, data: bytes) -> bytes:
        """What of `data` is past the body. A quote after a backslash is an escaped one: it neither opens nor
        closes (a run of backslashes before a quote is not looked into: JSON of this shape is not sent here)."""
        piece, rest = data[: self.left], data[self.left :]
        self.left -= len(piece)
        buf, at = self.tail + piece, 0
        self.tail = b""
        while True:
            if self.inside:
                end = buf.find(b'"', at)
                if end == -1:
                    self.escaped = buf[-1:] == b"\\"
                    break
                if (buf[end - 1 : end] if end else b"\\" if self.escaped else b"") == b"\\":
                    at, self.escaped = end + 1, False
                    continue
                self.inside, at = False, end  # the closing quote is kept
            else:
                start = buf.find(b'"data:', at)
                if start == -1:
                    keep = len(buf) if not self.left else max(at, len(buf) - 5)  # `"data` may be cut
                    self.kept += buf[at:keep]
                    self.tail = buf[keep:]
                    break
                self.kept += buf[at : start + 1]
                self.inside, at = self.kept[-2:-1] != b"\\", start + 1
        return rest

    def request(self) -> bytearray:
        head = b"%s %s HTTP/1.1\r\nContent-Length: %d\r\n\r\n" % (self.method, self.path, len(self.kept))
        return bytearray(head) + self.kept


def _head(buf: bytearray) -> tuple[bytes, bytes, int, int] | None:
    """(method, path, body length, where the body starts) of the request at the front of `buf`, once its head
    is in; a length past MAX_BODY for bodies not spoken here."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return None
    head = bytes(buf[:end]).split(b"\r\n")
    method, path = head[0].split(b" ", 2)[:2]
    length = 0
    for line in head[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding":
            length = MAX_BODY + 1  # chunked request bodies are not spoken here: refused below
    return method, path.split(b"?", 1)[0], length, end + 4


def _split(buf: bytearray) -> tuple[tuple[bytes, bytes, bytes], bytearray] | None:
    """One complete request off the front of `buf`: ((method, path, body), rest), or None for more bytes."""
    head = _head(buf)
    if head is None:
        return None
    method, path, length, start = head
    if length > MAX_BODY:
        return (b"POST", b"/too-large", b""), bytearray()
    if len(buf) < start + length:
        return None
    return (method, path, bytes(memoryview(buf)[start : start + length])), buf[start + length :]


async def serve(script: Script, host: str, port: int, bound: asyncio.Future[int] | None = None) -> None:
    """Serves until cancelled; `bound` (if given) gets the port listened on (port 0: the one the system chose)."""
    answers = Answers(script)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: FastUpstream(answers), host, port, backlog=1024)
    listening = server.sockets[0].getsockname()[1]
    print(f"fast fake upstream on {host}:{listening}", flush=True)
    if bound is not None:
        bound.set_result(listening)
    async with server:
        await server.serve_forever()


def main() -> None:
    script, port = script_from_args(__doc__)
    uvloop.run(serve(script, "127.0.0.1", port))  # the cheaper loop: a capacity run's fake must not saturate


if __name__ == "__main__":
    main()
