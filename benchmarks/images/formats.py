"""PNG or JPEG for the normalised image? Bytes, gateway encode CPU, engine decode CPU and fidelity, measured.

    python -m benchmarks.images.formats [--size 896]

Fidelity is what the engine's processor makes of the forwarded image against what it makes of the original
(vLLM's image loader, then a Gemma 3 image processor at `size`), in 8-bit levels: max and mean |difference|.
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import sys
import time
from typing import Any

import numpy as np
from PIL import Image

from serve.imaging import normalise
from testkit.dicom_factory import radiograph16

FORMATS = {
    "png (level 1)": {"format": "PNG", "compress_level": 1},
    "jpeg q95 4:4:4": {"format": "JPEG", "quality": 95, "subsampling": 0},
    "jpeg q100 4:4:4": {"format": "JPEG", "quality": 100, "subsampling": 0},
}


def sources() -> dict[str, Image.Image]:
    rng = np.random.default_rng(1)
    texture = rng.random((1400, 1600, 3)) * 40 + np.linspace(0, 200, 1600)[None, :, None]
    return {
        "radiograph 2048 (gray)": Image.fromarray((radiograph16(2048) >> 4).astype(np.uint8)),
        "textured colour 1600x1400": Image.fromarray(texture.astype(np.uint8)),
    }


def cpu_ms(fn: Any, repeats: int = 5) -> tuple[Any, float]:
    times, out = [], None
    for _ in range(repeats):
        start = time.process_time()
        out = fn()
        times.append(time.process_time() - start)
    return out, 1000 * statistics.median(times)


def encoded(img: Image.Image, options: dict[str, Any]) -> bytes:
    buf = io.BytesIO()
    img.save(buf, **options)
    return buf.getvalue()


def measure(size: int) -> list[dict[str, Any]]:
    from transformers.models.gemma3 import Gemma3ImageProcessor
    from vllm.multimodal.media.image import ImageMediaIO

    loader = ImageMediaIO()
    processor = Gemma3ImageProcessor(size={"height": size, "width": size}, do_pan_and_scan=False)

    def view(data: bytes) -> np.ndarray:
        return processor(loader.load_bytes(data).media, return_tensors="np")["pixel_values"][0]

    rows = []
    for name, img in sources().items():
        reference = view(encoded(img, {"format": "PNG"}))
        small = normalise.shrink(normalise.to_rgb(img), size, Image.Resampling.BILINEAR)
        for label, options in FORMATS.items():
            data, encode_ms = cpu_ms(lambda o=options, s=small: encoded(s, o))
            _, decode_ms = cpu_ms(lambda d=data: loader.load_bytes(d).media)
            delta = np.abs(view(data) - reference) * 127.5
            rows.append(
                {
                    "image": name,
                    "format": label,
                    "bytes": len(data),
                    "encode_ms": encode_ms,
                    "engine_decode_ms": decode_ms,
                    "max_levels": float(delta.max()),
                    "mean_levels": float(delta.mean()),
                }
            )
    return rows


def table(rows: list[dict[str, Any]], size: int) -> str:
    lines = [
        f"Forwarding format at {size}x{size} (CPU ms, median of 5; fidelity vs the processor on the original):",
        "",
        "| image | format | bytes | gateway encode ms | engine decode ms | max levels | mean levels |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {r['image']} | {r['format']} | {r['bytes']:,} | {r['encode_ms']:.1f} | {r['engine_decode_ms']:.1f} "
        f"| {r['max_levels']:.0f} | {r['mean_levels']:.2f} |"
        for r in rows
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", type=int, default=896)
    parser.add_argument("--json", action="store_true", help="print the rows as JSON too")
    args = parser.parse_args(argv)
    rows = measure(args.size)
    if args.json:
        print(json.dumps(rows, indent=1))
    print(table(rows, args.size))
    return 0


if __name__ == "__main__":
    sys.exit(main())
