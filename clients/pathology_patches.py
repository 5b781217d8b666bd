"""Describe whole-slide pathology patches in one request: one text prompt, then the patches, one streamed answer.

    python -m clients.pathology_patches PATCH_OR_FOLDER ["colon, biopsy"] [MAX_PATCHES]

The layout and prompt are Google's, from the MedGemma 1.5 notebook high_dimensional_pathology_hugging_face
(github.com/Google-Health/medgemma): non-overlapping 896x896 tissue patches at ~10x, up to 125 of them sampled
at random, each a JPEG part after the text, greedy decoding, up to 2,000 new tokens. The tissue type and
procedure end the prompt. A folder holding more patches than MAX_PATCHES (125 by default) is sampled with a fixed
seed; the sample is sent in file-name order, so patches named by position keep their order. JPEG files at most
896 px a side go as they are; other files are converted as the notebook encodes its patches (RGB, JPEG at
Pillow's default quality, shrunk to 896 px if larger). The request must stay inside the gateway's 32 MiB body
limit: 125 of the synthetic test patches (testkit/pathology.py) are 92 KB each, 15 MB as base64. Each patch costs
MedGemma 259 prompt tokens: a 125-patch prompt is ~32.5k tokens.
"""

from __future__ import annotations

import base64
import io
import random
import sys
from pathlib import Path
from typing import Any

from PIL import Image

from clients._common import MODEL, client, print_stream

PROMPT = (
    "You are an instructor teaching medical students. For education purposes, provide a brief descriptive text "
    "for the set of pathology patches extracted from a pathology slide. Consider the tissue type and procedure "
    "(below) when deciding what to include in the descriptive text.\n{tissue}:"
)
MAX_PATCHES = 125  # the notebook's maximum_number_of_patches
PATCH_SIZE = 896  # MedGemma's input size, the notebook's patch size
SUFFIXES = {".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp"}


def patch_files(path: Path, limit: int = MAX_PATCHES, seed: int = 0) -> list[Path]:
    """One image, or a folder's images: at most `limit`, sampled with a fixed seed, in file-name order."""
    if path.is_file():
        return [path]
    files = sorted(p for p in path.iterdir() if p.suffix.lower() in SUFFIXES)
    if not files:
        raise SystemExit(f"{path}: no PNG, JPEG or TIFF patches in this folder")
    return sorted(random.Random(seed).sample(files, limit)) if len(files) > limit else files


def patch_data_url(path: Path) -> str:
    data = path.read_bytes()
    with Image.open(io.BytesIO(data)) as img:
        if img.format != "JPEG" or max(img.size) > PATCH_SIZE:
            rgb = img.convert("RGB")
            rgb.thumbnail((PATCH_SIZE, PATCH_SIZE))  # keeps the aspect ratio; never enlarges
            buf = io.BytesIO()
            rgb.save(buf, format="JPEG")  # Pillow's default quality (75), as the notebook writes its patches
            data = buf.getvalue()
    return "data:image/jpeg;base64," + base64.b64encode(data).decode()


def messages(paths: list[Path], tissue: str) -> list[Any]:
    content: list[dict[str, Any]] = [{"type": "text", "text": PROMPT.format(tissue=tissue)}]
    content += [{"type": "image_url", "image_url": {"url": patch_data_url(p)}} for p in paths]
    return [{"role": "user", "content": content}]


def main(path: str, tissue: str = "colon, biopsy", max_patches: str = str(MAX_PATCHES)) -> str:
    paths = patch_files(Path(path), int(max_patches))
    print(f"{len(paths)} patch(es), one request", flush=True)
    stream = client().chat.completions.create(
        model=MODEL, messages=messages(paths, tissue), temperature=0, max_tokens=2000, stream=True
    )
    return print_stream(stream)


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit('usage: python -m clients.pathology_patches PATCH_OR_FOLDER ["colon, biopsy"] [MAX_PATCHES]')
    main(*sys.argv[1:])
