"""Image decoding off the event loop, measured: peak RSS of the gateway and its workers under two DICOM bombs,
and the ITL p99 of text streams while 4096x4096 JPEG 2000 DICOMs are posted beside them. Arms: the gateway of
the tree before the worker pool (--before-src, a `git archive` of it) and this tree's, interleaved per round.

    python -m benchmarks.images.stall --before-src /tmp/before --rounds 3 --window-s 10
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from benchmarks.core import client, procs
from benchmarks.core.stats import percentile
from benchmarks.core.workload import Workload, request_body
from testkit.dicom_bombs import deflate_bomb, j2k_bomb
from testkit.dicom_factory import dicom, radiograph16

REPO = Path(__file__).resolve().parents[2]
HEADERS = {"Content-Type": "application/json", "HAI-DEF-Acknowledged": "2024-11-15"}


def start_gateway(src: Path, name: str, work: Path, upstream: str, cpu: int) -> tuple[procs.Child, str]:
    """A gateway from `src` (its own code and configs/cpu-demo.yaml), pinned to `cpu` with its workers."""
    profile = yaml.safe_load((src / "configs/cpu-demo.yaml").read_text())
    gateway = profile.setdefault("gateway", {})
    gateway.update(port=0, access_log=False)
    gateway.setdefault("terms", {})["database"] = str(work / f"{name}-acks.sqlite3")
    path = work / f"{name}-profile.yaml"
    path.write_text(yaml.safe_dump(profile, sort_keys=False))
    return procs.start_gateway(name, path, upstream, cpu=cpu, log_dir=work, cwd=src)


def rss_mib(pid: int) -> float:
    total = 0
    for p in (pid, *procs._descendants(pid)):
        try:
            status = Path(f"/proc/{p}/status").read_text()
        except OSError:
            continue
        total += int(status.split("VmRSS:")[1].split()[0]) if "VmRSS:" in status else 0
    return total / 1024


def image_body(model: str, data: bytes) -> bytes:
    url = "data:application/dicom;base64," + base64.b64encode(data).decode()
    content = [{"type": "image_url", "image_url": {"url": url}}, {"type": "text", "text": "Findings?"}]
    return json.dumps(
        {"model": model, "messages": [{"role": "user", "content": content}], "max_tokens": 4}
    ).encode()


async def bomb(session: aiohttp.ClientSession, url: str, pid: int, body: bytes) -> dict[str, Any]:
    """Peak RSS (gateway + descendants, sampled every 5 ms) while one bomb request is answered."""
    base, peak, done = rss_mib(pid), 0.0, asyncio.Event()

    async def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, rss_mib(pid))
            await asyncio.sleep(0.005)

    sampler = asyncio.create_task(sample())
    start = time.perf_counter()
    async with session.post(url + "/v1/chat/completions", data=body, headers=HEADERS) as resp:
        answer = await resp.read()
    done.set()
    await sampler
    code = json.loads(answer).get("error", {}).get("code") if resp.status != 200 else "-"
    return {"status": resp.status, "code": code, "base": base, "peak": peak, "s": time.perf_counter() - start}


async def window(session, target, model, image: bytes, streams: int, seconds: float) -> dict[str, Any]:
    """`streams` text streams back to back, and one image poster, for `seconds`."""
    end, gaps, images = time.monotonic() + seconds, [], []
    text = Workload("text", model, 64, 64)

    async def streamer(k: int) -> None:
        i = k
        while time.monotonic() < end:
            _, body = request_body(text, i)
            record = await client.send(session, target, body, kind="text", headers=HEADERS)
            gaps.extend(record.itl)
            i += streams

    async def poster() -> None:
        body = image_body(model, image)
        while time.monotonic() < end:
            t = time.perf_counter()
            async with session.post(target.chat_url, data=body, headers=HEADERS) as resp:
                await resp.read()
            images.append((resp.status, time.perf_counter() - t))

    await asyncio.gather(*(streamer(k) for k in range(streams)), poster())
    return {"gaps": gaps, "images": images}


async def measure(args, gateways: dict[str, tuple[procs.Child, str]], model: str) -> dict[str, Any]:
    image = j2k_image(args.work, args.side)
    out: dict[str, Any] = {arm: {"bombs": {}, "gaps": [], "images": []} for arm in gateways}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=600)) as session:
        for name, body in (
            ("jpeg2000 20000x20000 in 64x64", j2k_bomb()),
            ("deflate 1 GiB", deflate_bomb(1 << 30)),
        ):
            payload = image_body(model, body)
            for arm, (child, url) in gateways.items():
                out[arm]["bombs"][name] = {"bytes": len(body), **await bomb(session, url, child.pid, payload)}
        arms = list(gateways)
        for r in range(args.rounds):
            for arm in arms[r % 2 :] + arms[: r % 2]:  # alternate which arm goes first
                target = client.Target(arm, gateways[arm][1], expect_disclaimer=True)
                got = await window(session, target, model, image, args.streams, args.window_s)
                out[arm]["gaps"] += got["gaps"]
                out[arm]["images"] += got["images"]
    return out


def j2k_image(work: Path, side: int) -> bytes:
    from pydicom.uid import JPEG2000Lossless

    path = work / f"j2k-{side}.dcm"
    if not path.exists():
        path.write_bytes(dicom(radiograph16(side), bits_stored=12, syntax=JPEG2000Lossless))
    return path.read_bytes()


def report(out: dict[str, Any]) -> str:
    lines = [
        "| bomb | arm | request bytes | status | code | RSS before MiB | peak RSS MiB | seconds |",
        "|---|---|---:|---:|---|---:|---:|---:|",
    ]
    for arm, got in out.items():
        for name, b in got["bombs"].items():
            lines.append(
                f"| {name} | {arm} | {b['bytes']:,} | {b['status']} | {b['code']} | {b['base']:.0f} | {b['peak']:.0f} | {b['s']:.2f} |"
            )
    lines += [
        "",
        "| arm | token gaps | ITL p50 ms | ITL p99 ms | ITL max ms | images posted | image ok | image p50 s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for arm, got in out.items():
        g, imgs = got["gaps"], got["images"]
        ok = [s for status, s in imgs if status == 200]
        lines.append(
            f"| {arm} | {len(g)} | {percentile(g, 50) * 1e3:.1f} | {percentile(g, 99) * 1e3:.1f} | {max(g) * 1e3:.1f} "
            f"| {len(imgs)} | {len(ok)} | {percentile(ok, 50) if ok else float('nan'):.2f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before-src", type=Path, required=True, help="the tree before the worker pool")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--window-s", type=float, default=10.0)
    parser.add_argument("--streams", type=int, default=16)
    parser.add_argument("--side", type=int, default=4096)
    parser.add_argument("--gateway-cpu", type=int, default=0)
    parser.add_argument("--harness-cpu", type=int, default=1)
    parser.add_argument("--work", type=Path, default=Path("/tmp/stall-bench"))
    args = parser.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    model = yaml.safe_load((REPO / "configs/cpu-demo.yaml").read_text())["model"]["served_name"]
    port = procs.free_port()
    engine_cmd = [
        sys.executable,
        "-m",
        "testkit.fast_engine",
        "--port",
        str(port),
        "--chunks",
        "100",
        "--gap-ms",
        "20",
        "--model",
        model,
    ]
    children = [procs.start("fast-engine", engine_cmd, cpu=args.harness_cpu, log_dir=args.work)]
    upstream = f"http://127.0.0.1:{port}"
    try:
        procs.wait_ready(children[0], upstream + "/health")
        gateways = {}
        for arm, src in (("before (thread)", args.before_src), ("after (workers)", REPO)):
            gateways[arm] = start_gateway(src, arm.split()[0], args.work, upstream, args.gateway_cpu)
            children.append(gateways[arm][0])
        print(report(asyncio.run(measure(args, gateways, model))))
    finally:
        for child in children:
            procs.stop(child)


if __name__ == "__main__":
    main()
