"""Tier 3, the engine itself: real vLLM on CPU, spoken to with the OpenAI SDK."""

import concurrent.futures
import re
import time
import urllib.request

import pytest

from tests.engine.images import png_data_url

pytestmark = pytest.mark.engine


def scrape(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as resp:
        return resp.read().decode()


def running(metrics_text: str) -> float:
    found = re.findall(r"^vllm:num_requests_running\{[^}]*\} ([0-9.e+]+)$", metrics_text, re.M)
    return sum(float(v) for v in found)


def test_engine_answers_text_chat(stack):
    out = stack.engine_client().chat.completions.create(
        model=stack.model,
        messages=[{"role": "user", "content": "Describe a normal chest X-ray."}],
        max_tokens=16,
    )
    assert out.choices[0].message.content and out.usage.completion_tokens > 0


def test_engine_streams_several_chunks(stack):
    stream = stack.engine_client().chat.completions.create(
        model=stack.model,
        messages=[{"role": "user", "content": "Hi"}],
        max_tokens=16,
        stream=True,
        extra_body={"ignore_eos": True},
    )
    texts = [c.choices[0].delta.content for c in stream if c.choices and c.choices[0].delta.content]
    assert len(texts) >= 4


def test_engine_answers_chat_with_png_data_url(stack):
    out = stack.engine_client().chat.completions.create(
        model=stack.model,
        max_tokens=8,
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "image_url", "image_url": {"url": png_data_url()}},
                    {"type": "text", "text": "What does this image show?"},
                ],
            }
        ],
    )
    assert out.usage.prompt_tokens > 64  # the tiny checkpoint turns one image into 64 tokens


def test_engine_lists_the_demo_model(stack):
    assert [m.id for m in stack.engine_client().models.list()] == [stack.model]


def test_engine_exposes_ttft_histogram(stack):
    assert "vllm:time_to_first_token_seconds_bucket" in scrape(stack.engine_url + "/metrics")


def test_sixteen_concurrent_requests_are_batched(stack):
    client = stack.engine_client()

    def one(i: int) -> int:
        out = client.chat.completions.create(
            model=stack.model,
            messages=[{"role": "user", "content": f"Question {i}"}],
            max_tokens=256,
            extra_body={"ignore_eos": True},
        )
        return out.usage.completion_tokens

    seen = 0.0
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        futures = [pool.submit(one, i) for i in range(16)]
        while not all(f.done() for f in futures):
            seen = max(seen, running(scrape(stack.engine_url + "/metrics")))
            time.sleep(0.05)
        assert [f.result() for f in futures] == [256] * 16
    assert seen > 1, "vllm:num_requests_running never exceeded 1: no continuous batching seen"
