"""Tier 1: JSON nested deeper than the gateway can re-encode is the client's error (400), never a 500."""

import pytest

from tests.conftest import ACK, chat_body


def nested(depth: int) -> object:
    value: object = "leaf"
    for i in range(depth):
        value = [value] if i % 2 else {"k": value}
    return value


@pytest.mark.parametrize("where", ["top-level field", "message part"])
async def test_json_nested_300_deep_in_any_field_is_a_400_envelope(gateway, script, where):
    body = chat_body(metadata=nested(300))
    if where == "message part":
        body = chat_body()
        body["messages"][0]["content"] = [{"type": "text", "text": "hi", "extra": nested(300)}]
    resp = await gateway.post("/v1/chat/completions", json=body, headers=ACK)
    assert resp.status == 400
    error = (await resp.json())["error"]
    assert (error["type"], error["code"]) == ("invalid_request_error", "json_too_deep")
    assert script.seen == []


async def test_json_nested_within_the_limit_still_passes(gateway, script):
    resp = await gateway.post("/v1/chat/completions", json=chat_body(metadata=nested(200)), headers=ACK)
    assert resp.status == 200 and script.seen[-1]["metadata"] == nested(200)
