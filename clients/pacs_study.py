"""Ask about a study that lives in a PACS: the client sends only its DICOMweb address (no pixels), the gateway
retrieves the series from an allow-listed server and streams the answer. A CT or MR series goes through the
volume recipe (85 slices, Google's MedGemma 1.5 CT prompt layout); a whole slide (`--slide`) becomes tissue
patches at ~10x after the pathology notebook's prompt; a radiograph series becomes its images.

    python -m clients.pacs_study http://127.0.0.1:8042/dicom-web STUDY_UID SERIES_UID "Is there a liver lesion?"
    python -m clients.pacs_study http://127.0.0.1:8042/dicom-web STUDY_UID SERIES_UID --slide "colon, biopsy"

The server must be one the gateway's profile lists under `gateway.images.dicomweb.servers` (its `base_url`);
`--token` sends your own bearer token where that server is set to forward a client's credential.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from clients._common import MODEL, client, print_stream

# Google-Health/medgemma notebooks: high_dimensional_ct_hugging_face.ipynb and
# high_dimensional_pathology_hugging_face.ipynb (their instruction texts).
CT_INSTRUCTION = (
    "You are an instructor teaching medical students. You are analyzing a contiguous block of CT slices. "
    "Please review the slices provided below carefully."
)
SLIDE_PROMPT = (
    "You are an instructor teaching medical students. For education purposes, provide a brief descriptive text "
    "for the set of pathology patches extracted from a pathology slide. Consider the tissue type and procedure "
    "(below) when deciding what to include in the descriptive text.\n"
)
QUESTION = "Describe the findings."
ANSWER_TOKENS = 500


def study_part(
    url: str, *, max_slices: int | None, max_patches: int | None, token: str | None
) -> dict[str, Any]:
    """The gateway's volume part with a DICOMweb source (its `image_dicom` spelling, after Google's)."""
    options: dict[str, Any] = {"dicom_source": [url]}
    if max_slices is not None:
        options["max_slices"] = max_slices
    if max_patches is not None:
        options["max_patches"] = max_patches
    if token:
        options["access_credential"] = token
    return {"type": "image_dicom", "image_dicom": options}


def content(part: dict[str, Any], question: str, *, slide: bool) -> list[dict[str, Any]]:
    if slide:  # the notebook: one text (instruction and the tissue/procedure), then the patches
        return [{"type": "text", "text": SLIDE_PROMPT + question}, part]
    return [{"type": "text", "text": CT_INSTRUCTION}, part, {"type": "text", "text": "\n\n" + question}]


def ask(
    server: str,
    study: str,
    series: str,
    question: str = QUESTION,
    *,
    slide: bool = False,
    max_slices: int | None = None,
    max_patches: int | None = None,
    token: str | None = None,
    max_tokens: int = ANSWER_TOKENS,
    model: str = MODEL,
) -> str:
    url = f"{server.rstrip('/')}/studies/{study}/series/{series}"
    part = study_part(url, max_slices=max_slices, max_patches=max_patches, token=token)
    stream = client(timeout=600).chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": content(part, question, slide=slide)}],  # type: ignore[misc, list-item]
        max_tokens=max_tokens,
        temperature=0,  # greedy, as the notebooks decode
        stream=True,
    )
    return print_stream(stream)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("server", help="the DICOMweb root, as the gateway's profile lists it")
    parser.add_argument("study", help="Study Instance UID")
    parser.add_argument("series", help="Series Instance UID")
    parser.add_argument("question", nargs="?", default=QUESTION)
    parser.add_argument("--slide", action="store_true", help="a whole slide: the pathology prompt layout")
    parser.add_argument("--max-slices", type=int, help="CT/MR slices the model sees (gateway default 85)")
    parser.add_argument(
        "--max-patches", type=int, help="whole-slide patches (default: as many as fit, <= 125)"
    )
    parser.add_argument("--token", help="your bearer token for the PACS, where the gateway forwards it")
    parser.add_argument("--max-tokens", type=int, default=ANSWER_TOKENS)
    args = parser.parse_args(argv)
    ask(
        args.server,
        args.study,
        args.series,
        args.question,
        slide=args.slide,
        max_slices=args.max_slices,
        max_patches=args.max_patches,
        token=args.token,
        max_tokens=args.max_tokens,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
