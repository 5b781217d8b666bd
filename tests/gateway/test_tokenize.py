"""Tier 1: /tokenize and /detokenize are guarded like the model routes; chat messages are counted as the engine
would be sent them (disclaimer and checked images included); every other engine route stays unreachable."""

from __future__ import annotations

import pytest

from serve import terms
from testkit.dicom_factory import data_url, dicom, radiograph16
from tests.conftest import ACK, MODEL

MESSAGES = [{"role": "user", "content": "How large is a pneumothorax here?"}]


@pytest.mark.parametrize("path", ["/tokenize", "/detokenize"])
async def test_token_routes_without_ack_are_refused(gateway, script, path):
    resp = await gateway.post(path, json={"model": MODEL, "prompt": "x", "tokens": [1]})
    assert resp.status == 403 and (await resp.json())["error"]["code"] == "terms_not_acknowledged"
    assert script.seen == []


async def test_a_prompt_is_counted_as_sent(gateway, script):
    sent = {"model": MODEL, "prompt": "Water boils at", "add_special_tokens": False}
    resp = await gateway.post("/tokenize", json=sent, headers=ACK)
    answer = await resp.json()
    assert script.seen[-1] == sent
    assert answer["count"] == 3 and answer["tokens"] == [5, 5, 2]
    assert answer["disclaimer"] == terms.DISCLAIMER and resp.headers["X-Disclaimer"] == terms.DISCLAIMER


async def test_messages_are_counted_with_the_disclaimer_the_engine_would_see(gateway, script):
    resp = await gateway.post("/tokenize", json={"model": MODEL, "messages": MESSAGES}, headers=ACK)
    assert resp.status == 200
    assert script.seen[-1]["messages"] == [{"role": "system", "content": terms.DISCLAIMER}, *MESSAGES]
    assert "cache_salt" not in script.seen[-1]
    # the fake counts one token per role and per word: the system turn adds 1 + the disclaimer's words
    assert (await resp.json())["count"] == 1 + len(terms.DISCLAIMER.split()) + 1 + 6


async def test_images_in_messages_are_checked_and_normalised_before_counting(make_gateway, script):
    gw = await make_gateway(images={"model_input_size": 224})
    image = {"type": "image_url", "image_url": {"url": data_url(dicom(radiograph16(512), bits_stored=12))}}
    messages = [{"role": "user", "content": [image, {"type": "text", "text": "Findings?"}]}]
    assert (
        await gw.post("/tokenize", json={"model": MODEL, "messages": messages}, headers=ACK)
    ).status == 200
    assert script.seen[-1]["messages"][1]["content"][0]["image_url"]["url"].startswith(
        "data:image/jpeg;base64,"
    )
    bad = [
        {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/png;base64,!!"}}]}
    ]
    resp = await gw.post("/tokenize", json={"model": MODEL, "messages": bad}, headers=ACK)
    assert resp.status == 400 and (await resp.json())["error"]["param"] == "messages[0].content[0]"


@pytest.mark.parametrize(
    ("sent", "status", "code"),
    [
        ({"model": MODEL}, 400, "invalid_request"),
        ({"model": "gpt-4", "prompt": "x"}, 404, "model_not_found"),
        ({"model": MODEL, "messages": []}, 400, "invalid_request"),
    ],
)
async def test_bad_tokenize_requests_are_envelopes(gateway, script, sent, status, code):
    resp = await gateway.post("/tokenize", json=sent, headers=ACK)
    assert resp.status == status and (await resp.json())["error"]["code"] == code
    assert script.seen == []


async def test_detokenize_passes_through(gateway, script):
    resp = await gateway.post("/detokenize", json={"model": MODEL, "tokens": [7, 9]}, headers=ACK)
    assert (await resp.json())["prompt"] == "t7 t9"
    assert script.seen[-1] == {"model": MODEL, "tokens": [7, 9]}


async def test_token_routes_are_counted_under_their_own_route(gateway, registry):
    await gateway.post("/tokenize", json={"model": MODEL, "prompt": "x"}, headers=ACK)
    await gateway.post("/detokenize", json={"model": MODEL, "tokens": [1]}, headers=ACK)
    for route in ("/tokenize", "/detokenize"):
        labels = {"route": route, "model": MODEL, "status": "200"}
        assert registry.get_sample_value("medgemma_gateway_requests_total", labels) == 1
    assert registry.get_sample_value("medgemma_gateway_prompt_tokens_total", {"model": MODEL}) is None


@pytest.mark.parametrize(
    ("method", "path"), [("GET", "/tokenizer_info"), ("GET", "/version"), ("POST", "/v1/embeddings")]
)
async def test_other_engine_routes_stay_unreachable(gateway, method, path):
    resp = await gateway.request(method, path, headers=ACK)
    assert resp.status == 404 and (await resp.json())["error"]["code"] == "route_not_found"


@pytest.mark.parametrize(
    ("path", "sent"), [("/tokenize", {"prompt": "x" * 3000}), ("/detokenize", {"tokens": [1] * 1500})]
)
async def test_a_body_over_the_limit_is_413_as_for_chat(make_gateway, script, path, sent):
    gw = await make_gateway(max_body_bytes=2000)
    resp = await gw.post(path, json={"model": MODEL, **sent}, headers=ACK)
    assert resp.status == 413 and (await resp.json())["error"]["code"] == "request_too_large"
    assert script.seen == []
