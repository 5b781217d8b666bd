"""Tier 3: several images in one prompt through the gateway to the CPU engine: a prior and a current chest X-ray,
and as many slide patches as the demo profile holds, each answered with the disclaimer; the engine's prompt token
count shows every image's tokens, and one patch past the budget is a 400."""

from __future__ import annotations

import base64
from functools import cache

import openai
import pytest

from serve import terms
from serve.config import load_config
from testkit.pathology import he_patch, jpeg_bytes
from testkit.radiographs import png_data_url, radiograph
from tests.engine.conftest import ANSWER_TOKENS, ROOT, streamed

pytestmark = pytest.mark.engine
PROFILE = load_config(ROOT / "configs" / "cpu-demo.yaml")  # the session stack's profile derives from it
PER_IMAGE = (
    PROFILE.gateway.images.tokens_per_image
)  # 64 soft tokens + <start_of_image>, <end_of_image>, "\n\n"
GOOGLE_MAX_PATCHES = 125  # the pathology notebook's maximum_number_of_patches
PATHOLOGY = "Provide a brief descriptive text for the set of pathology patches.\ncolon, biopsy:"
LONGITUDINAL = "Is the pneumonia unchanged, worsened, or improved in the second image compared to the first?"


@cache
def patch_url(i: int) -> str:
    # 896 px, as the notebook cuts them; the gateway shrinks each to the demo model's 224.
    return "data:image/jpeg;base64," + base64.b64encode(jpeg_bytes(he_patch(896, seed=i))).decode()


def image(url: str) -> dict:
    return {"type": "image_url", "image_url": {"url": url}}


def text(value: str) -> dict:
    return {"type": "text", "text": value}


def text_only_tokens(stack, prompt: str) -> int:
    out = stack.client().chat.completions.create(
        model=stack.model, messages=[{"role": "user", "content": [text(prompt)]}], max_tokens=1
    )
    return out.usage.prompt_tokens


def capacity(text_tokens: int) -> int:
    """Images one prompt holds on this profile: its image limit, and its context less the text and the answer."""
    fit = (PROFILE.vllm["max-model-len"] - text_tokens - ANSWER_TOKENS - 2) // PER_IMAGE
    return min(PROFILE.vllm["limit-mm-per-prompt"]["image"], fit)


def test_prior_then_current_chest_xray_gets_one_answer_with_the_disclaimer(stack):
    prior, current = png_data_url(radiograph(512, seed=1)), png_data_url(radiograph(512, seed=2))
    answer, prompt_tokens = streamed(stack, [image(prior), image(current), text(LONGITUDINAL)])
    assert answer.rstrip().endswith(terms.DISCLAIMER)
    # Both images reached the engine: two images' tokens on top of the same prompt without them.
    assert 2 * PER_IMAGE <= prompt_tokens - text_only_tokens(stack, LONGITUDINAL) <= 2 * PER_IMAGE + 2


def test_as_many_patches_as_the_demo_profile_holds_after_one_text_part(stack):
    base = text_only_tokens(stack, PATHOLOGY)
    count = min(capacity(base), GOOGLE_MAX_PATCHES)
    # The demo checkpoint has 8,192 positions: 125 patches (8,375 image tokens) cannot fit, the profile's limit can.
    assert count >= 85, f"the profile holds only {count} images per prompt"
    answer, prompt_tokens = streamed(stack, [text(PATHOLOGY), *(image(patch_url(i)) for i in range(count))])
    assert answer.rstrip().endswith(terms.DISCLAIMER)
    assert count * PER_IMAGE <= prompt_tokens - base <= count * PER_IMAGE + 2


def test_one_patch_past_the_budget_is_a_bad_request(stack):
    count = capacity(text_only_tokens(stack, PATHOLOGY)) + 1
    with pytest.raises(openai.BadRequestError):
        streamed(stack, [text(PATHOLOGY), *(image(patch_url(i)) for i in range(count))])
    answer, _ = streamed(stack, [text(PATHOLOGY), image(patch_url(0))])  # and the stack keeps serving
    assert answer.rstrip().endswith(terms.DISCLAIMER)


def test_the_engine_shortens_an_answer_the_context_cannot_hold(stack):
    """vLLM 0.32 refuses only a prompt that fills the context; a max_tokens past what is left is cut to fit
    (get_max_tokens), so a budget check at the gateway must not add the client's max_tokens to the images."""
    count = min(capacity(text_only_tokens(stack, PATHOLOGY)), GOOGLE_MAX_PATCHES)
    content = [text(PATHOLOGY), *(image(patch_url(i)) for i in range(count))]
    out = stack.engine_client().chat.completions.create(
        model=stack.model, messages=[{"role": "user", "content": content}], max_tokens=2000, temperature=0
    )
    assert out.usage.prompt_tokens + 2000 > PROFILE.vllm["max-model-len"]
    assert out.usage.prompt_tokens + out.usage.completion_tokens <= PROFILE.vllm["max-model-len"]
