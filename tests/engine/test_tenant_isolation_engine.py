"""Tier 3: on the real engine, a client's media `uuid` names an image in vLLM's caches, so the gateway drops it;
vLLM takes the per-key cache salt the gateway derives."""

import base64
import io
import re
import urllib.request
import uuid

import pytest
from PIL import Image

from serve.gateway.rewrite.request_body import tenant_salt

pytestmark = pytest.mark.engine


def image(value: int) -> str:
    buf = io.BytesIO()
    Image.new("RGB", (224, 224), (value, 255 - value, value // 2)).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def ask(client, model: str, url: str, media_id: str | None) -> None:
    part = {"type": "image_url", "image_url": {"url": url}}
    if media_id is not None:
        part["uuid"] = media_id
    client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": [part, {"type": "text", "text": "Findings?"}]}],
        max_tokens=1,
    )


def cache_hits(stack) -> float:
    """vLLM's multimodal processor cache hits. The random demo model's answers hardly depend on the image, so
    the cache, not the text, shows which image a request was answered from. Counted before each answer."""
    with urllib.request.urlopen(stack.engine_url + "/metrics", timeout=30) as resp:
        text = resp.read().decode()
    found = re.findall(r"^vllm:mm_cache_hits_total(?:\{[^}]*\})? (\S+)$", text, re.M)
    assert found, "vLLM no longer exports vllm:mm_cache_hits_total"
    return sum(float(v) for v in found)


def test_a_client_uuid_cannot_make_the_engine_answer_from_another_image(stack):
    engine, gateway, shared = stack.engine_client(), stack.client(), f"poison-{uuid.uuid4().hex}"
    dark, light = image(0), image(255)
    # Straight to the engine (what the gateway prevents): the uuid, not the pixels, names the cached image, so
    # the light image is answered from the dark one's processed pixels.
    ask(engine, stack.model, dark, shared)
    before = cache_hits(stack)
    ask(engine, stack.model, light, shared)
    assert cache_hits(stack) == before + 1
    # Through the gateway the uuid is dropped: the light image is processed from its own pixels (a miss) ...
    before = cache_hits(stack)
    ask(gateway, stack.model, light, shared)
    assert cache_hits(stack) == before
    # ... and the same image again is a hit: the counter does count what we think.
    ask(gateway, stack.model, light, None)
    assert cache_hits(stack) == before + 1


def test_the_engine_takes_the_per_key_cache_salt_the_gateway_derives(stack):
    engine = stack.engine_client()
    for key_hash in ("a" * 64, "b" * 64):
        out = engine.chat.completions.create(
            model=stack.model,
            messages=[{"role": "user", "content": "hi"}],
            max_tokens=2,
            extra_body={"cache_salt": tenant_salt(key_hash)},
        )
        assert out.choices[0].finish_reason in ("stop", "length")
