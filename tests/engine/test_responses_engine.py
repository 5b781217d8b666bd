"""Tier 3: the Responses API and /tokenize through the gateway in front of real vLLM: the openai SDK's
client.responses.create (whole and streamed) carries the disclaimer; /tokenize counts what the engine is sent."""

import json
import urllib.error
import urllib.request

import openai
import pytest

from serve import terms
from tests.engine.conftest import ACK_HEADERS
from tests.engine.images import png_data_url

pytestmark = pytest.mark.engine
SUFFIX = "\n\n" + terms.DISCLAIMER
QUESTION = "Is this chest X-ray normal?"
MESSAGES = [{"role": "user", "content": QUESTION}]


def post(url: str, body: dict, headers: dict | None = None) -> dict:
    req = urllib.request.Request(
        url, json.dumps(body).encode(), {"Content-Type": "application/json", **(headers or {})}
    )
    with urllib.request.urlopen(req, timeout=120) as resp:
        return json.loads(resp.read())


def test_responses_create_ends_with_the_disclaimer(stack):
    raw = stack.client().responses.with_raw_response.create(
        model=stack.model, input=QUESTION, instructions="Be brief.", max_output_tokens=8
    )
    answer = raw.parse()
    assert answer.output_text.endswith(SUFFIX) and len(answer.output_text) > len(SUFFIX)
    assert answer.model_extra["disclaimer"] == terms.DISCLAIMER
    assert raw.headers["x-disclaimer"] == terms.DISCLAIMER
    assert answer.instructions == terms.DISCLAIMER + "\n\nBe brief."  # vLLM echoes what it was sent
    assert answer.usage.input_tokens > len(terms.DISCLAIMER.split())


def test_streamed_events_parse_and_the_final_response_carries_the_disclaimer(stack):
    with stack.client().responses.stream(model=stack.model, input=QUESTION, max_output_tokens=8) as stream:
        events = list(stream)
        final = stream.get_final_response()
    kinds = [e.type for e in events]
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert kinds[0] == "response.created" and kinds[-1] == "response.completed"
    assert kinds.index("response.output_text.done") < kinds.index("response.completed")
    assert deltas == final.output_text and final.output_text.endswith(SUFFIX)
    assert final.model_extra["disclaimer"] == terms.DISCLAIMER
    numbers = [e.sequence_number for e in events]
    assert numbers == list(range(numbers[0], numbers[0] + len(numbers)))


def test_an_input_image_is_answered_with_the_disclaimer(stack):
    content = [
        {"type": "input_image", "image_url": png_data_url()},
        {"type": "input_text", "text": "Findings?"},
    ]
    answer = stack.client().responses.create(
        model=stack.model, input=[{"role": "user", "content": content}], max_output_tokens=8
    )
    assert answer.output_text.endswith(SUFFIX) and answer.usage.input_tokens > 64  # the image's tokens


def test_stored_responses_are_refused(stack):
    client = stack.client()
    with pytest.raises(openai.BadRequestError) as err:
        client.responses.create(model=stack.model, input=QUESTION, previous_response_id="resp_1")
    assert err.value.code == "previous_response_not_supported"
    with pytest.raises(openai.NotFoundError) as err:
        client.responses.retrieve("resp_1")
    assert err.value.code == "response_not_stored"


def test_tokenize_counts_the_messages_the_engine_is_sent(stack):
    body = {"model": stack.model, "messages": MESSAGES}
    via_gateway = post(stack.gateway_url + "/tokenize", body, ACK_HEADERS)
    rewritten = {**body, "messages": [{"role": "system", "content": terms.DISCLAIMER}, *MESSAGES]}
    assert via_gateway["tokens"] == post(stack.engine_url + "/tokenize", rewritten)["tokens"]
    bare = post(stack.engine_url + "/tokenize", body)["count"]
    assert via_gateway["count"] > bare + len(terms.DISCLAIMER.split()) // 2  # the disclaimer is counted
    assert via_gateway["disclaimer"] == terms.DISCLAIMER


def test_tokenize_a_prompt_and_detokenize_it_back(stack):
    prompt = {"model": stack.model, "prompt": "Water boils at 100 degrees."}
    counted = post(stack.gateway_url + "/tokenize", prompt, ACK_HEADERS)
    assert counted["tokens"] == post(stack.engine_url + "/tokenize", prompt)["tokens"]
    back = post(
        stack.gateway_url + "/detokenize", {"model": stack.model, "tokens": counted["tokens"]}, ACK_HEADERS
    )
    assert back["prompt"].endswith("Water boils at 100 degrees.")


def test_token_routes_refuse_an_unacknowledged_client(stack):
    with pytest.raises(urllib.error.HTTPError) as err:
        post(stack.gateway_url + "/tokenize", {"model": stack.model, "prompt": "x"})
    assert err.value.code == 403
