"""Compare a prior and a current chest X-ray in one request: the prior image, the current image, then the text.

    python -m clients.longitudinal_cxr prior.png current.png ["question"]

The layout and default question are Google's, from the MedGemma 1.5 notebook
cxr_longitudinal_comparison_with_hugging_face (github.com/Google-Health/medgemma): both images in one user turn,
oldest first, then the question; greedy decoding, up to 300 new tokens. As in the notebook (its padding step is
off by default) the images go as they are; the gateway shrinks each to the model's input size. PNG, JPEG and
DICOM files (CR/DX) are accepted.
"""

from __future__ import annotations

import base64
import sys
from pathlib import Path
from typing import Any

from clients._common import MODEL, client, image_data_url

QUESTION = (
    "Compare the two above images. Is the pneumonia unchanged,\n"
    "worsened, or improved in the second image compared to the first image?\n"
)


def image_part(path: str) -> dict[str, Any]:
    if Path(path).suffix.lower() in (".dcm", ".dicom"):
        url = "data:application/dicom;base64," + base64.b64encode(Path(path).read_bytes()).decode()
    else:
        url = image_data_url(path)
    return {"type": "image_url", "image_url": {"url": url}}


def main(prior: str, current: str, question: str = QUESTION) -> str:
    content: list[Any] = [image_part(prior), image_part(current), {"type": "text", "text": question}]
    answer = client().chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": content}], temperature=0, max_tokens=300
    )
    print(answer.choices[0].message.content)
    return answer.choices[0].message.content or ""


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit('usage: python -m clients.longitudinal_cxr PRIOR CURRENT ["question"]')
    main(*sys.argv[1:])
