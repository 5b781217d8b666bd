"""Locate anatomy on a chest X-ray: boxes as JSON ([y0, x0, y1, x1] on a 0-1000 grid), read with the SDK's
.parse(). A structured answer's content is the model's JSON alone; the disclaimer travels beside it.

    python -m clients.localize_cxr chest.png ["left lung"]

The prompt is Google's, from the MedGemma 1.5 notebook cxr_anatomy_localization_with_hugging_face
(github.com/Google-Health/medgemma), with one change: its fenced "Final Answer" list becomes a `response_format`
JSON schema the engine enforces, so no reasoning precedes the boxes. As in the notebook, the image is padded to a
square first (the grid is the square's) and the answer is greedy within ~1000 tokens.
"""

from __future__ import annotations

import base64
import io
import sys
from typing import Annotated, Literal, get_args

import openai
from PIL import Image
from pydantic import BaseModel, Field

from clients._common import MODEL, client

Anatomy = Literal[
    "right lung",
    "left lung",
    "heart",
    "trachea",
    "aortic arch",
    "spine",
    "right clavicle",
    "left clavicle",
    "right hemidiaphragm",
    "left hemidiaphragm",
]
PROMPT = """Instructions:
The following user query will require outputting bounding boxes. The format of bounding boxes coordinates is \
[y0, x0, y1, x1] where (y0, x0) must be top-left corner and (y1, x1) the bottom-right corner. This implies that \
x0 < x1 and y0 < y1. Always normalize the x and y coordinates the range [0, 1000], meaning that a bounding box \
starting at 15% of the image width would be associated with an x coordinate of 150. You MUST output a single \
parseable JSON object whose "boxes" list holds objects with a "box_2d" and a "label" key. Now answer to the user \
query.

Remember "left" refers to the patient's left side where the heart is and sometimes underneath an L in the upper \
right corner of the image.

Query:
Where is the {anatomy}? Answer:"""


class Box(BaseModel):
    # Bounded integers, four of them, and a closed set of labels: the grammar always ends, even on random weights.
    box_2d: list[Annotated[int, Field(ge=0, le=1000)]] = Field(min_length=4, max_length=4)
    label: Anatomy


class Localization(BaseModel):
    boxes: list[Box] = Field(min_length=1, max_length=4)


def padded_square(path: str) -> tuple[str, int, int, int]:
    """The image padded (black) to a square, as a PNG data URL; with the square's side and the (top, left) offset
    of the original inside it."""
    img = Image.open(path)
    img = img.convert("L") if img.mode in ("I;16", "I", "1", "P") else img
    side = max(img.size)
    top, left = (side - img.height) // 2, (side - img.width) // 2
    square = Image.new(img.mode, (side, side))
    square.paste(img, (left, top))
    buf = io.BytesIO()
    square.save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode(), side, top, left


def to_pixels(box: list[int], side: int, top: int, left: int) -> list[int]:
    """A 0-1000 box on the padded square as (y0, x0, y1, x1) pixels of the original image."""
    y0, x0, y1, x1 = (round(v * side / 1000) for v in box)
    return [y0 - top, x0 - left, y1 - top, x1 - left]


def main(image_path: str, anatomy: str = "right lung") -> Localization:
    if anatomy not in get_args(Anatomy):
        sys.exit(f"unknown anatomy {anatomy!r}; one of: {', '.join(get_args(Anatomy))}")
    url, side, top, left = padded_square(image_path)
    try:
        answer = client().chat.completions.parse(
            model=MODEL,
            messages=[
                {
                    "role": "user",
                    "content": [
                        {"type": "image_url", "image_url": {"url": url}},
                        {"type": "text", "text": PROMPT.format(anatomy=anatomy)},
                    ],
                }
            ],
            response_format=Localization,
            max_tokens=1000,  # the notebook's budget
            temperature=0,  # the notebook decodes greedily
        )
    except openai.LengthFinishReasonError:
        # Random demo weights can pad JSON with whitespace forever: start the engine with
        # --structured-outputs-config '{"backend": "xgrammar", "disable_any_whitespace": true}'.
        sys.exit("no boxes: the answer reached max_tokens before its JSON was complete")
    found = answer.choices[0].message.parsed
    if found is None:  # a refusal
        sys.exit(f"no boxes: {answer.choices[0].message.refusal or answer.choices[0].finish_reason}")
    for box in found.boxes:
        print(
            f"{box.label}: box_2d {box.box_2d} (pixels y0,x0,y1,x1 {to_pixels(box.box_2d, side, top, left)})"
        )
    print("disclaimer field:", answer.model_extra["disclaimer"])
    return found


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit("usage: python -m clients.localize_cxr IMAGE [ANATOMY]")
    main(*sys.argv[1:])
