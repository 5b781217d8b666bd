"""Ask about a CT or MR series through the gateway: a folder of DICOM slices, or one multi-frame file, in; one
streamed answer out, the prompt laid out as Google's MedGemma 1.5 CT notebook lays it out (an instruction, the
slices, then the question; greedy, ~500 tokens).

    python -m clients.ct_volume path/to/series/ "Is there a liver lesion?" [--max-slices 85]
    python -m clients.ct_volume enhanced_ct.dcm "Describe the findings."

The objects travel as DICOM data URLs in one `image_dicom` content part; the gateway orders the slices along
the slice normal, samples `max_slices` evenly, applies the CT windows (or the MR normalisation) and sends the
model one image per slice, each followed by "SLICE k". A folder of more objects than `--upload-slices` is
sampled here first, by the gateway's own rule, so that only what the model will see is uploaded (300 slices of
512x512 are ~200 MB as base64; 85 are ~60 MB, within the gateway's limit for a request with a volume); `--rle`
re-encodes uncompressed slices losslessly first (the phantom's 525 kB slice became 125 kB).
"""

from __future__ import annotations

import argparse
import base64
import io
import sys
from pathlib import Path
from typing import Any

from pydicom import dcmread
from pydicom.uid import RLELossless

from clients._common import MODEL, client, print_stream
from serve.imaging.series import Slice, order, sample

# Google-Health/medgemma notebooks/high_dimensional_ct_hugging_face.ipynb, its `instruction`.
INSTRUCTION = (
    "You are an instructor teaching medical students. You are analyzing a contiguous block of CT slices from "
    "the center of the abdomen. Please review the slices provided below carefully."
)
QUESTION = "Describe the findings in these slices."
SLICES = 85  # the notebook's MAX_SLICE
ANSWER_TOKENS = 500


def series_files(path: Path) -> list[Path]:
    """The DICOM files of a folder (any names, no DICOMDIR), or the one file given."""
    if path.is_file():
        return [path]
    return sorted(p for p in path.iterdir() if p.is_file() and p.name.upper() != "DICOMDIR")


def presample(files: list[Path], count: int) -> list[Path]:
    """At most `count` of the files, picked from their headers (no pixels read) as the gateway would pick them."""
    if len(files) <= count:
        return files
    slices = []
    for k, path in enumerate(files):
        ds = dcmread(
            path,
            stop_before_pixels=True,
            specific_tags=["ImagePositionPatient", "ImageOrientationPatient", "InstanceNumber"],
        )
        position, orientation = ds.get("ImagePositionPatient"), ds.get("ImageOrientationPatient")
        slices.append(
            Slice(
                source=k,
                frame=0,
                modality="",
                series="",
                rows=0,
                columns=0,
                position=tuple(float(v) for v in position) if position else None,  # type: ignore[arg-type]
                orientation=tuple(float(v) for v in orientation) if orientation else None,
                instance=int(ds.InstanceNumber) if ds.get("InstanceNumber") is not None else None,
            )
        )
    ordered = order(slices)
    return [files[ordered[i].source] for i in sample(len(ordered), count)]


def rle(path: Path) -> bytes:
    """The object re-encoded as RLE Lossless (pylibjpeg-rle): the same pixels in ~1/2-1/4 of the bytes for CT,
    so less to upload and for the gateway to parse; objects already compressed go as they are."""
    ds = dcmread(path)
    if ds.file_meta.TransferSyntaxUID.is_compressed or int(ds.get("NumberOfFrames") or 1) > 1:
        return path.read_bytes()
    ds.compress(RLELossless)
    buf = io.BytesIO()
    ds.save_as(buf)
    return buf.getvalue()


def volume_part(files: list[Path], max_slices: int, *, compress: bool = False) -> dict[str, Any]:
    data = [rle(p) if compress else p.read_bytes() for p in files]
    urls = ["data:application/dicom;base64," + base64.b64encode(d).decode() for d in data]
    # A gateway extension: the OpenAI SDK sends content parts as given, so a dict of another type passes through.
    return {"type": "image_dicom", "image_dicom": {"dicom_source": urls, "max_slices": max_slices}}


def ask(
    path: Path, question: str, *, max_slices: int = SLICES, upload: int = SLICES, model: str = MODEL
) -> str:
    content = [
        {"type": "text", "text": INSTRUCTION},
        volume_part(presample(series_files(path), upload), max_slices),
        {"type": "text", "text": "\n\n" + question},
    ]
    stream = client(timeout=600).chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": content}],  # type: ignore[misc, list-item]
        max_tokens=ANSWER_TOKENS,
        temperature=0,  # greedy, as the notebook decodes
        stream=True,
    )
    return print_stream(stream)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("series", type=Path, help="a folder of DICOM slices, or one multi-frame DICOM file")
    parser.add_argument("question", nargs="?", default=QUESTION)
    parser.add_argument(
        "--max-slices", type=int, default=SLICES, help="slices the model sees (gateway default 85)"
    )
    parser.add_argument(
        "--upload-slices", type=int, default=SLICES, help="sample a larger folder to this first"
    )
    args = parser.parse_args(argv)
    ask(
        args.series,
        args.question,
        max_slices=args.max_slices,
        upload=max(args.upload_slices, args.max_slices),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
