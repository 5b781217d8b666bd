"""Tenants share the engine's caches only by content: client media uuids are dropped, and with API keys each
key's requests carry its own prefix-cache salt, which the client cannot choose."""

import orjson
import pytest

from serve.gateway.rewrite.request_body import finalize, parse, tenant_salt
from tests.conftest import ACK, MODEL
from tests.gateway.test_images import data_url, png

IMAGE = data_url(png())


def body(**extra) -> dict:
    parts = [
        {"type": "image_url", "image_url": {"url": IMAGE}, "uuid": "shared-id"},
        {"type": "text", "text": "Findings?", "uuid": "t"},
    ]
    return {"model": MODEL, "messages": [{"role": "user", "content": parts}], **extra}


def engine_body(raw: dict, salt: str | None) -> dict:
    parsed = parse(orjson.dumps(raw), [MODEL], chat=True)
    return orjson.loads(finalize(parsed, "D", chat=True, cache_salt=salt).body)


def test_client_uuids_on_content_parts_never_reach_the_engine():
    sent = engine_body(body(), None)
    parts = [p for m in sent["messages"] for p in m["content"] if isinstance(m["content"], list)]
    assert parts and all("uuid" not in p for p in parts)
    assert parts[-2]["image_url"] == {"url": IMAGE}  # parse + finalize only: no image ingestion here


def test_with_keys_the_cache_salt_is_the_keys_whatever_the_client_sends():
    salt = tenant_salt("hash-of-key-a")
    assert engine_body(body(cache_salt="someone-elses"), salt)["cache_salt"] == salt
    assert engine_body(body(), salt)["cache_salt"] == salt


def test_the_salt_is_per_key_stable_and_reveals_neither_key_nor_hash():
    a, b = tenant_salt("hash-of-key-a"), tenant_salt("hash-of-key-b")
    assert a != b and a == tenant_salt("hash-of-key-a")
    assert "hash-of-key-a" not in a and len(a) <= 128 and not set(a) & set("@/\\\0")  # what vLLM accepts


def test_in_local_mode_no_salt_is_added_and_a_clients_own_passes():
    assert tenant_salt(None) is None
    assert "cache_salt" not in engine_body(body(), None)
    assert engine_body(body(cache_salt="mine"), None)["cache_salt"] == "mine"


@pytest.mark.parametrize("route", ["/v1/chat/completions", "/v1/completions"])
async def test_each_key_reaches_the_engine_with_its_own_salt(make_gateway, script, route):
    gw = await make_gateway(keys=["key-a", "key-b"])
    sent = (
        body(cache_salt="forged") if "chat" in route else {"model": MODEL, "prompt": "hi", "cache_salt": "x"}
    )
    for key in ("key-a", "key-b", "key-a"):
        headers = {**ACK, "Authorization": f"Bearer {key}"}
        assert (await gw.post(route, json=sent, headers=headers)).status == 200
    salts = [seen["cache_salt"] for seen in script.seen]
    assert salts[0] == salts[2] != salts[1] and "forged" not in salts and "x" not in salts
    assert all("key-a" not in s and "key-b" not in s for s in salts)
    if "chat" in route:
        assert all("uuid" not in p for s in script.seen for m in s["messages"] for p in m["content"])
