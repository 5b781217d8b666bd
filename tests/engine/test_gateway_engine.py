"""Tier 3, through the gateway: the OpenAI SDK against the gateway in front of real vLLM."""

import re
import urllib.request

import openai
import pytest

from serve import terms
from tests.engine.images import png_data_url

pytestmark = pytest.mark.engine
QUESTION = [{"role": "user", "content": "Is this chest X-ray normal?"}]


def ttft_count(stack) -> float:
    with urllib.request.urlopen(stack.gateway_url + "/metrics", timeout=10) as resp:
        text = resp.read().decode()
    pattern = r'^medgemma_gateway_time_to_first_token_seconds_count\{model="%s",route="/v1/chat/completions"\} (\S+)$'
    found = re.search(pattern % re.escape(stack.model), text, re.M)
    return float(found.group(1)) if found else 0.0


def test_unacknowledged_client_is_refused(stack):
    with pytest.raises(openai.PermissionDeniedError) as err:
        stack.client(ack=False).chat.completions.create(model=stack.model, messages=QUESTION, max_tokens=4)
    assert err.value.status_code == 403 and err.value.code == "terms_not_acknowledged"
    assert terms.TERMS_URL in err.value.message


def test_text_chat_carries_the_disclaimer(stack):
    raw = stack.client().chat.completions.with_raw_response.create(
        model=stack.model, messages=QUESTION, max_tokens=8
    )
    out = raw.parse()
    assert out.choices[0].message.content.endswith(terms.DISCLAIMER)
    assert out.model_extra["disclaimer"] == terms.DISCLAIMER
    assert raw.headers["x-disclaimer"] == terms.DISCLAIMER


def test_image_chat_carries_the_disclaimer(stack):
    content = [
        {"type": "image_url", "image_url": {"url": png_data_url()}},
        {"type": "text", "text": "Findings?"},
    ]
    out = stack.client().chat.completions.create(
        model=stack.model, messages=[{"role": "user", "content": content}], max_tokens=8
    )
    assert out.choices[0].message.content.endswith(terms.DISCLAIMER) and out.usage.prompt_tokens > 64


def test_client_system_message_is_merged_not_duplicated(stack):
    msgs = [{"role": "system", "content": "You are a radiology assistant."}, *QUESTION]
    out = stack.client().chat.completions.create(model=stack.model, messages=msgs, max_tokens=4)
    assert out.choices[0].finish_reason in ("stop", "length")  # the Gemma template accepted one system turn


def test_stream_is_parsed_by_the_sdk_and_ends_with_the_disclaimer(stack):
    before = ttft_count(stack)
    stream = stack.client().chat.completions.create(
        model=stack.model, messages=QUESTION, max_tokens=16, stream=True, extra_body={"ignore_eos": True}
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.endswith("\n\n" + terms.DISCLAIMER)
    assert all(c.usage is None for c in chunks)  # the usage chunk the gateway asked for is not shown
    assert ttft_count(stack) == before + 1


def test_stream_usage_is_kept_when_the_client_asks(stack):
    stream = stack.client().chat.completions.create(
        model=stack.model,
        messages=QUESTION,
        max_tokens=8,
        stream=True,
        stream_options={"include_usage": True},
        extra_body={"ignore_eos": True},
    )
    chunks = list(stream)
    assert chunks[-1].usage.completion_tokens == 8


def test_completions_get_the_disclaimer_on_the_output(stack):
    out = stack.client().completions.create(model=stack.model, prompt="Water boils at", max_tokens=4)
    assert out.choices[0].text.endswith(terms.DISCLAIMER)


def test_unknown_model_is_not_found(stack):
    with pytest.raises(openai.NotFoundError):
        stack.client().chat.completions.create(model="gpt-4o", messages=QUESTION, max_tokens=4)


def test_engine_rejection_reaches_the_sdk_as_bad_request(stack):
    bad = [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}]  # Gemma needs alternation
    with pytest.raises(openai.BadRequestError):
        stack.client().chat.completions.create(model=stack.model, messages=bad, max_tokens=4)


def test_engine_metrics_are_reachable_through_the_gateway(stack):
    with urllib.request.urlopen(stack.gateway_url + "/metrics/engine", timeout=10) as resp:
        assert "vllm:time_to_first_token_seconds" in resp.read().decode()
