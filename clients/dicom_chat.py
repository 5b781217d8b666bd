"""Ask about a DICOM file through the gateway with the OpenAI SDK: the file goes as it is, the gateway decodes it.

    python -m clients.dicom_chat study/IM0001.dcm "Describe the findings." [--frame 12] [--base-url URL]

The object travels as a data URL, `data:application/dicom;base64,...`. The gateway reads only its pixels
(patient attributes are never parsed, logged or forwarded), applies the modality and VOI LUTs or window,
picks one frame (the middle one unless `frame` names another, counted from 0) and sends the model an image at
its input size. The HAI-DEF terms must be acknowledged first (GET /v1/terms says how); this example sends the
acknowledgement header with every request.
"""

from __future__ import annotations

import argparse
import base64
import os
import sys
from pathlib import Path
from typing import Any

from openai import OpenAI

ACK_HEADER = "HAI-DEF-Acknowledged"
TERMS_VERSION = "2024-11-15"  # the version GET /v1/terms reports


def image_part(dicom: bytes, frame: int | None = None) -> dict[str, Any]:
    """A chat content part carrying a DICOM Part 10 file; `frame` picks one frame of a multi-frame object."""
    spec: dict[str, Any] = {"url": "data:application/dicom;base64," + base64.b64encode(dicom).decode()}
    if frame is not None:
        spec["frame"] = frame  # a gateway extension: the OpenAI SDK passes unknown keys through
    return {"type": "image_url", "image_url": spec}


def ask(
    client: OpenAI,
    model: str,
    dicom: bytes,
    question: str,
    *,
    frame: int | None = None,
    max_tokens: int = 256,
) -> Any:
    content = [image_part(dicom, frame), {"type": "text", "text": question}]
    return client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": content}], max_tokens=max_tokens
    )


def connect(base_url: str) -> OpenAI:
    return OpenAI(
        base_url=base_url.rstrip("/") + "/v1",
        api_key=os.environ.get("MEDGEMMA_API_KEY", "local"),
        default_headers={ACK_HEADER: TERMS_VERSION},
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("dicom", type=Path, help="a DICOM Part 10 file (.dcm)")
    parser.add_argument("question", nargs="?", default="Describe the findings in this image.")
    parser.add_argument("--frame", type=int, default=None, help="frame of a multi-frame object, from 0")
    parser.add_argument("--base-url", default="http://127.0.0.1:8000", help="the gateway")
    parser.add_argument("--model", default=None, help="default: the first model the gateway serves")
    args = parser.parse_args(argv)
    client = connect(args.base_url)
    model = args.model or client.models.list().data[0].id
    answer = ask(client, model, args.dicom.read_bytes(), args.question, frame=args.frame)
    print(answer.choices[0].message.content)
    return 0


if __name__ == "__main__":
    sys.exit(main())
