"""The thinnest usual aiohttp proxy, the reference our gateway is measured against in `benchmarks.capacity`.

aiohttp.web server, one pooled aiohttp client session; the request JSON is parsed and re-serialised (as any
gateway that reads the request must), the answer relayed as bytes, streams chunk by chunk. No terms check, no
disclaimer, no metrics, no logs: what is left is the frameworks' own cost per request. Our gateway shares the
server side but talks to the engine with its own client (serve/gateway/engine_client/http1.py), so it can cost less than this.

    python -m benchmarks.capacity.bare_proxy --port 9300 --upstream http://127.0.0.1:9100
"""

from __future__ import annotations

import argparse
import asyncio

import aiohttp
import orjson
from aiohttp import web

SESSION = web.AppKey("session", aiohttp.ClientSession)
UPSTREAM = web.AppKey("upstream", str)


async def forward(request: web.Request) -> web.StreamResponse:
    body = orjson.dumps(orjson.loads(await request.read()))
    session, url = request.app[SESSION], request.app[UPSTREAM] + request.path
    async with session.post(url, data=body, headers={"Content-Type": "application/json"}) as resp:
        if resp.content_type != "text/event-stream":
            return web.Response(status=resp.status, body=await resp.read(), content_type=resp.content_type)
        out = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await out.prepare(request)
        async for data in resp.content.iter_any():
            await out.write(data)
        await out.write_eof()
        return out


async def health(request: web.Request) -> web.Response:
    return web.Response(text="ok")


def create_app(upstream: str) -> web.Application:
    async def session(app: web.Application):
        app[SESSION] = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0), auto_decompress=False)
        yield
        await app[SESSION].close()

    app = web.Application()
    app[UPSTREAM] = upstream.rstrip("/")
    app.cleanup_ctx.append(session)
    app.router.add_post("/v1/chat/completions", forward)
    app.router.add_post("/v1/completions", forward)
    app.router.add_get("/health", health)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True)
    args = parser.parse_args()
    from benchmarks.core.aio import run

    async def serve() -> None:
        runner = web.AppRunner(create_app(args.upstream), access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", args.port, backlog=1024).start()
        print(f"bare proxy on 127.0.0.1:{args.port}", flush=True)
        await asyncio.Event().wait()

    run(serve())


if __name__ == "__main__":
    main()
