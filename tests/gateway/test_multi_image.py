"""Tier 1: many images in one prompt under the MedGemma 1.5 profile's own limits: a prior and a current chest
X-ray, 125 slide patches after one text part, each image one job on the image pool, all forwarded in order; one
image past the profile's limit-mm-per-prompt is a 400 before any image is decoded."""

import base64
import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from prometheus_client import CollectorRegistry

from serve.config import load_config
from serve.gateway.admission.api_keys import KeyRing
from serve.gateway.app import GatewayConfig, create_app
from serve.gateway.stores.sqlite import SqliteAckStore
from testkit.pathology import he_patch, jpeg_bytes
from testkit.radiographs import png_data_url, radiograph
from tests.conftest import ACK

CHAT = "/v1/chat/completions"
PROFILE = Path(__file__).resolve().parents[2] / "configs" / "medgemma-1.5-4b-it.yaml"
MODEL = "medgemma-1.5-4b-it"


@pytest.fixture
def profile_gateway(aiohttp_client, engine, db, access_log):
    """A gateway configured as `serve gateway --profile configs/medgemma-1.5-4b-it.yaml` is, before the fake engine."""

    async def make(**images):
        profile = load_config(PROFILE, {"gateway": {"terms": {"database": str(db)}, "images": images}})
        cfg = GatewayConfig.from_profile(profile, str(engine.make_url("")).rstrip("/"))
        app = create_app(
            cfg, registry=CollectorRegistry(), store=SqliteAckStore(db), keys=KeyRing(), access_log=access_log
        )
        return await aiohttp_client(app)

    return make


def patch_urls(count: int) -> list[str]:
    # Small distinct patches: within the model's input size and 8-bit, so the gateway forwards their bytes as
    # they are and the order can be checked byte for byte.
    return [
        "data:image/jpeg;base64," + base64.b64encode(jpeg_bytes(he_patch(48, seed=i))).decode()
        for i in range(count)
    ]


def image(url: str) -> dict:
    return {"type": "image_url", "image_url": {"url": url}}


def chat(content: list[dict]) -> dict:
    return {"model": MODEL, "messages": [{"role": "user", "content": content}], "max_tokens": 4}


def forwarded(script) -> list[dict]:
    return script.seen[-1]["messages"][-1]["content"]  # the gateway's disclaimer turn comes first


def test_the_profile_budgets_128_images_and_a_context_for_125_patches():
    profile = load_config(PROFILE)
    assert GatewayConfig.from_profile(profile, "http://engine").max_images == 128
    text_and_answer = 300 + 8192  # a long prompt text and the card's 8,192-token output limit
    assert 125 * profile.gateway.images.tokens_per_image + text_and_answer <= profile.vllm["max-model-len"]


async def test_prior_and_current_reach_the_engine_in_order_before_the_question(profile_gateway, script):
    gw = await profile_gateway()
    prior, current = png_data_url(radiograph(64, seed=1)), png_data_url(radiograph(64, seed=2))
    question = {"type": "text", "text": "Is the pneumonia unchanged, worsened, or improved?"}
    resp = await gw.post(CHAT, json=chat([image(prior), image(current), question]), headers=ACK)
    assert resp.status == 200, await resp.text()
    assert forwarded(script) == [image(prior), image(current), question]


async def test_125_patches_follow_the_text_in_order_one_image_job_each(profile_gateway, script):
    urls = patch_urls(125)
    prompt = {"type": "text", "text": "Describe the set of pathology patches.\ncolon, biopsy:"}
    body = chat([prompt, *map(image, urls)])
    # Admission is all or none, one job per image: a pool with room for 124 refuses the request outright.
    small = await profile_gateway(max_pending_jobs=124)
    resp = await small.post(CHAT, json=body, headers=ACK)
    assert resp.status == 429 and (await resp.json())["error"]["code"] == "too_many_image_jobs"
    assert script.seen == []
    gw = await profile_gateway(max_pending_jobs=125)
    resp = await gw.post(CHAT, json=body, headers=ACK)
    assert resp.status == 200, await resp.text()
    assert forwarded(script) == [prompt, *map(image, urls)]


async def test_large_patches_are_shrunk_to_the_model_input_in_order(profile_gateway, script):
    gw = await profile_gateway()
    shades = [(200, 60, 60), (60, 200, 60), (60, 60, 200)]
    urls = [png_data_url_rgb(noisy(1200, 1000, shade, seed)) for seed, shade in enumerate(shades)]
    resp = await gw.post(CHAT, json=chat([{"type": "text", "text": "?"}, *map(image, urls)]), headers=ACK)
    assert resp.status == 200, await resp.text()
    for part, shade in zip(forwarded(script)[1:], shades, strict=True):
        assert part["image_url"]["url"].startswith("data:image/jpeg;base64,")
        with Image.open(io.BytesIO(base64.b64decode(part["image_url"]["url"].partition(",")[2]))) as img:
            assert img.size == (896, 896)  # each side at most the profile's model_input_size
            mean = np.asarray(img.convert("RGB"), dtype=np.float32).mean(axis=(0, 1))
            assert np.abs(mean - shade).max() < 3


def noisy(width: int, height: int, shade: tuple[int, int, int], seed: int) -> Image.Image:
    # Noise, so a re-encoded copy is smaller than the PNG and the gateway forwards the copy.
    rng = np.random.default_rng(seed)
    pixels = np.asarray(shade, dtype=np.float32) + rng.normal(0, 20, (height, width, 3))
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


async def test_one_image_past_the_profile_limit_is_400_before_any_decoding(profile_gateway, script):
    gw = await profile_gateway()
    bad = "data:image/jpeg;base64,bm90IGFuIGltYWdl"  # never decoded: the count is checked first
    content = [{"type": "text", "text": "?"}, *map(image, patch_urls(128)), image(bad)]
    resp = await gw.post(CHAT, json=chat(content), headers=ACK)
    assert resp.status == 400
    error = (await resp.json())["error"]
    assert error["code"] == "too_many_images" and error["param"] == "messages[0].content[129]"
    assert "at most 128 image(s)" in error["message"] and "this one has 129" in error["message"]
    assert script.seen == []


def png_data_url_rgb(img: Image.Image) -> str:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()
