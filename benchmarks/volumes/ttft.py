"""TTFT of an 85-slice CT volume on the CPU engine: sent as DICOM through the gateway vs the same slices rendered by
the client (the gateway's own functions) and sent straight to the engine; paired, interleaved ABBA. With
`--arms direct-bmp,direct-jpeg`: the engine's side of the slice format, the same slices straight to the engine as
BMP vs JPEG q100 4:4:4 (the default).

    flock /tmp/engine.lock python -m benchmarks.volumes.ttft [--pairs 8] [--arms gateway,direct] [--out bench-results]

Every request carries a fresh series (its own noise seed; both arms alike), so neither the prefix cache nor the
engine's encoder cache answers a request from an earlier one. Reports TTFT per arm, the per-pair difference
(gateway - direct) with a bootstrap 95% interval, prompt tokens per arm and the gateway's own time (access log).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

from benchmarks.core import stack
from benchmarks.core.report import machine_info
from benchmarks.core.sse import StreamParser
from benchmarks.pacs.reference import ACK, gateway_ms
from benchmarks.volumes import ttft_arms as arms
from serve.config.profile import Profile, load_config
from testkit.ct_series import ct_series


async def one(session: aiohttp.ClientSession, url: str, raw: bytes) -> dict[str, Any]:
    """TTFT: from the request's start to the first frame with output (the role-only frame does not count)."""
    parser, started = StreamParser(), time.perf_counter()
    async with session.post(url + "/v1/chat/completions", data=raw, headers=ACK) as resp:
        if resp.status != 200:
            raise RuntimeError(f"HTTP {resp.status}: {(await resp.text())[:300]}")
        async for data in resp.content.iter_any():
            parser.feed(data, time.perf_counter())
    if parser.error or parser.first_at is None:
        raise RuntimeError(f"no output: {parser.error!r}")
    return {
        "request_id": resp.headers.get("X-Request-Id"),
        "ttft_s": parser.first_at - started,
        "e2e_s": time.perf_counter() - started,
        "prompt_tokens": parser.prompt_tokens,
        "client_bytes": len(raw),
    }


# The direct arms' slice formats; None: the profile's own, as the gateway renders them.
DIRECT_FORMATS: dict[str, str | None] = {"direct": None, "direct-bmp": "bmp", "direct-jpeg": "jpeg"}


def body(name: str, seed: int, profile: Profile, max_tokens: int, size: int | None = None) -> bytes:
    """One fresh 85-slice series as arm `name` sends it (built before the clock starts). `size`: render a direct
    arm's slices at this model input size instead of the profile's (MedGemma's 896 leaves 512 px slices whole)."""
    urls = arms.dicom_urls(ct_series(profile.gateway.images.volumes.max_slices, 512, seed=seed).objects)
    model, disclaimer = profile.model.served_name, profile.gateway.disclaimer
    if name == "gateway":
        return arms.gateway_body(model, urls, max_tokens)
    images = profile.gateway.images
    if size is not None:
        images = images.model_copy(update={"model_input_size": size})
    fmt = DIRECT_FORMATS[name]
    if fmt is not None:
        images = images.model_copy(
            update={"volumes": images.volumes.model_copy(update={"slice_format": fmt})}
        )
    slices = arms.rendered(urls, images)
    return arms.direct_body(model, slices, disclaimer.text, max_tokens, thinking=disclaimer.thinking)


async def interleaved(
    profile: Profile, urls: dict[str, str], pairs: int, max_tokens: int, size: int | None = None
) -> list[dict[str, Any]]:
    """`urls`: the two arms, in the order A, B."""
    records, seed = [], 1000
    # A new connection per request, both arms alike: the engine's server drops idle keep-alive connections
    # after 5 s (uvicorn), and building the next series takes longer than that.
    connector = aiohttp.TCPConnector(force_close=True)
    async with aiohttp.ClientSession(
        connector=connector, timeout=aiohttp.ClientTimeout(total=900)
    ) as session:
        for (
            name,
            url,
        ) in urls.items():  # warm-up of each arm: worker imports and tables, the engine's first images
            seed += 1
            await one(session, url, body(name, seed, profile, max_tokens, size))
        for k, name in enumerate(arms.abba(pairs, tuple(urls))):  # type: ignore[arg-type]
            seed += 1
            raw = body(name, seed, profile, max_tokens, size)
            records.append({"pair": k // 2, "arm": name, **await one(session, urls[name], raw)})
            print(f"pair {k // 2} {name}: TTFT {records[-1]['ttft_s']:.2f} s", file=sys.stderr, flush=True)
    return records


def summary(
    records: list[dict[str, Any]], own: dict[str, float], names: tuple[str, str] = ("gateway", "direct")
) -> dict[str, Any]:
    for r in records:
        r["gateway_ms"] = own.get(r["request_id"]) if r["arm"] == "gateway" else None
    by = {name: sorted((r for r in records if r["arm"] == name), key=lambda r: r["pair"]) for name in names}
    out: dict[str, Any] = {"arms": {}}
    for name, mine in by.items():
        tokens = sorted({r["prompt_tokens"] for r in mine})
        spent = [r["gateway_ms"] for r in mine if r["gateway_ms"] is not None]
        out["arms"][name] = {
            "n": len(mine),
            "ttft_s_p50": statistics.median(r["ttft_s"] for r in mine),
            "ttft_s_min_max": [min(r["ttft_s"] for r in mine), max(r["ttft_s"] for r in mine)],
            "prompt_tokens": tokens,
            "client_mb": statistics.median(r["client_bytes"] for r in mine) / 1e6,
            "gateway_ms_p50": statistics.median(spent) if spent else None,
        }
    first, second = ([r["ttft_s"] for r in by[name]] for name in names)
    out["names"] = list(names)
    out["difference_s"] = arms.paired_difference(first, second)
    if names[0] != "gateway":
        return out
    # Outside the gateway's own clock (gateway_ms): the client's write before its handler runs, the forward to
    # the engine once called (the engine then reads the same rendered body in both arms), the socket hops.
    own_s = [(r["gateway_ms"] or 0.0) / 1e3 for r in by["gateway"]]
    out["beyond_gateway_ms_s"] = arms.paired_difference(
        [t - o for t, o in zip(first, own_s, strict=True)], second
    )
    return out


def markdown(result: dict[str, Any]) -> str:
    s, d = result["summary"], result["summary"]["difference_s"]
    lines = [
        "| arm | requests | client MB | prompt tokens | TTFT p50 s | TTFT min-max s | gateway ms p50 |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, a in s["arms"].items():
        own = "-" if a["gateway_ms_p50"] is None else f"{a['gateway_ms_p50']:.0f}"
        low, high = a["ttft_s_min_max"]
        tokens = ", ".join(str(t) for t in a["prompt_tokens"])
        lines.append(
            f"| {name} | {a['n']} | {a['client_mb']:.1f} | {tokens} | {a['ttft_s_p50']:.2f} | "
            f"{low:.2f}-{high:.2f} | {own} |"
        )
    low, high = d["ci95"]
    a, b = s.get("names", ["gateway", "direct"])
    lines += [
        "",
        f"Paired difference ({a} - {b}), median of {d['pairs']} pairs: "
        f"{d['median'] * 1e3:+.0f} ms [95% CI {low * 1e3:+.0f}, {high * 1e3:+.0f}]",
    ]
    if "beyond_gateway_ms_s" not in s:
        return "\n".join(lines)
    rest = s["beyond_gateway_ms_s"]
    low, high = rest["ci95"]
    lines.append(
        f"Of which outside the gateway's gateway_ms (upload, relay): {rest['median'] * 1e3:+.0f} ms "
        f"[95% CI {low * 1e3:+.0f}, {high * 1e3:+.0f}]"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pairs", type=int, default=8)
    parser.add_argument("--max-tokens", type=int, default=8)
    parser.add_argument("--out", type=Path, default=Path("bench-results"))
    parser.add_argument(
        "--arms", default="gateway,direct", choices=["gateway,direct", "direct-bmp,direct-jpeg"]
    )
    parser.add_argument(
        "--slice-size", type=int, help="the direct arms' model input size (default: the profile's)"
    )
    args = parser.parse_args(argv)
    names = tuple(args.arms.split(","))
    result: dict[str, Any] = {
        "machine": machine_info(),
        "pairs": args.pairs,
        "max_tokens": args.max_tokens,
        "slice_size": args.slice_size,
    }
    with tempfile.TemporaryDirectory() as work:
        running = stack.start(Path(work))  # the engine's URL is also the direct arm's
        try:
            profile = load_config(running.profile)
            urls = {name: running.gateway_url if name == "gateway" else running.engine_url for name in names}
            started = time.time()
            records = asyncio.run(interleaved(profile, urls, args.pairs, args.max_tokens, args.slice_size))
            result["wall_s"] = time.time() - started
            time.sleep(1.0)  # the access log is written by a thread
            own = gateway_ms(running.child.log)
        finally:
            stack.stop(running)
    result["machine_after"] = machine_info()["loadavg"]
    result["summary"], result["records"] = summary(records, own, names), records  # type: ignore[arg-type]
    print(markdown(result))
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"volume-ttft-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(result, indent=2))
    print(f"wrote {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
