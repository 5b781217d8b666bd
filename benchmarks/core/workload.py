"""What each request asks (pure, given an image cache): varied medical text prompts, image+text, a mix."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from typing import Any, Protocol

KINDS = ("text", "image", "mix")
# Common clinical English; most words are one or two Gemma tokens. The prompt is sized by this ratio, and
# the report gives the engine's own prompt_tokens count from the usage chunk.
TOKENS_PER_WORD = 1.3
VOCABULARY = (
    "patient presents with acute chest pain shortness of breath fever cough history hypertension "
    "diabetes smoker denies nausea vomiting exam reveals tachycardia bilateral crackles reduced breath "
    "sounds left lower lobe consolidation effusion no pneumothorax heart size normal mediastinum midline "
    "trachea central lungs clear costophrenic angles sharp opacity nodule mass lesion infiltrate edema "
    "cardiomegaly atelectasis fracture rib spine degenerative changes prior study comparison stable "
    "interval improvement worsening recommend follow up imaging clinical correlation laboratory results "
    "white count elevated lactate creatinine troponin negative oxygen saturation percent room air blood "
    "pressure heart rate respiratory temperature medication allergy penicillin aspirin metformin "
    "lisinopril the and of in on with without for after before since days weeks months year old male "
    "female abdomen soft tender distended bowel liver spleen kidney bladder pelvis skin rash lesion "
    "margin border irregular smooth round oval dense calcified hypodense enhancing contrast scan film "
    "view frontal lateral portable upright supine"
)
WORDS = tuple(VOCABULARY.split())
IMAGE_QUESTION = "Describe the findings on this chest radiograph and list the main differential diagnoses."


class Images(Protocol):
    def data_url(self, size: int) -> str: ...


@dataclass(frozen=True)
class Workload:
    kind: str = "text"  # text | image | mix
    model: str = ""
    input_tokens: int = 256
    output_tokens: int = 64
    same_prompt: bool = False  # one prompt for all: lets the engine's prefix cache hit (off by default)
    image_sizes: tuple[int, ...] = (896, 2048)
    image_fraction: float = 0.5  # of requests in `mix`
    stream: bool = True
    seed: int = 0


def prompt_text(words: int, seed: int) -> str:
    """A prompt whose first words differ per seed, so two requests share no cached prefix."""
    rng = random.Random(seed)
    body = " ".join(rng.choice(WORDS) for _ in range(max(words - 3, 1)))
    return f"Case {seed}: {body}."


def item_kind(w: Workload, i: int) -> str:
    """The i-th request's item: "text" or "image-<size>"; deterministic, so targets get the same sequence."""
    if w.kind == "text":
        return "text"
    if w.kind == "mix" and random.Random(w.seed * 1_000_003 + i).random() >= w.image_fraction:
        return "text"
    return f"image-{w.image_sizes[i % len(w.image_sizes)]}"


def messages(w: Workload, i: int, images: Images | None) -> tuple[str, list[dict[str, Any]]]:
    kind = item_kind(w, i)
    seed = w.seed if w.same_prompt else w.seed * 1_000_003 + i
    if kind == "text":
        words = max(round(w.input_tokens / TOKENS_PER_WORD), 4)
        return kind, [{"role": "user", "content": prompt_text(words, seed)}]
    if images is None:
        raise ValueError("an image workload needs an image cache")
    size = int(kind.split("-", 1)[1])
    # Text first, then the image (vllm bench's order): the varied text ends the shared prefix before the
    # image, so the prefix cache cannot skip the image's tokens.
    text = IMAGE_QUESTION if w.same_prompt else f"Case {seed}. {IMAGE_QUESTION}"
    content = [
        {"type": "text", "text": text},
        {"type": "image_url", "image_url": {"url": images.data_url(size)}},
    ]
    return kind, [{"role": "user", "content": content}]


def request_body(w: Workload, i: int, images: Images | None = None) -> tuple[str, bytes]:
    """(item kind, JSON body) of the i-th request: fixed output length via ignore_eos + max_tokens."""
    kind, msgs = messages(w, i, images)
    body: dict[str, Any] = {
        "model": w.model,
        "messages": msgs,
        "max_tokens": w.output_tokens,
        "ignore_eos": True,
        "stream": w.stream,
    }
    if w.stream:
        body["stream_options"] = {"include_usage": True}
    return kind, json.dumps(body, separators=(",", ":")).encode()
