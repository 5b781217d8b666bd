"""Tier 1: HAI-DEF acknowledgement by header and per key, API keys, persistence, version bumps."""

import asyncio
import json
import sqlite3

from serve import terms
from serve.gateway.admission.api_keys import legacy_hash
from serve.gateway.app import GATEWAY
from serve.gateway.stores.sqlite import SqliteAckStore
from tests.conftest import ACK, VERSION, chat_body

KEY = {"Authorization": "Bearer sk-alice"}


async def test_chat_without_ack_is_refused_with_actionable_403(gateway, script):
    resp = await gateway.post("/v1/chat/completions", json=chat_body())
    assert resp.status == 403
    error = (await resp.json())["error"]
    assert error["type"] == "permission_error" and error["code"] == "terms_not_acknowledged"
    for needle in (terms.TERMS_URL, terms.PROHIBITED_USE_URL, f"HAI-DEF-Acknowledged: {VERSION}"):
        assert needle in error["message"]
    assert script.seen == []  # nothing reached the engine


async def test_stream_without_ack_is_refused_before_streaming(gateway):
    resp = await gateway.post("/v1/chat/completions", json=chat_body(stream=True))
    assert resp.status == 403 and resp.content_type == "application/json"


async def test_wrong_version_in_header_is_refused_as_outdated(gateway, registry):
    resp = await gateway.post(
        "/v1/chat/completions", json=chat_body(), headers={"HAI-DEF-Acknowledged": "2023-01-01"}
    )
    assert resp.status == 403
    assert "not the current one" in (await resp.json())["error"]["message"]
    assert registry.get_sample_value("medgemma_gateway_terms_refusals_total", {"reason": "outdated"}) == 1


async def test_every_model_route_is_guarded(gateway):
    for method, path in (
        ("POST", "/v1/chat/completions"),
        ("POST", "/v1/completions"),
        ("GET", "/v1/models"),
    ):
        assert (await gateway.request(method, path, json={})).status == 403, path


async def test_terms_document_needs_no_key(make_gateway):
    gw = await make_gateway(keys=["sk-alice"])
    doc = await (await gw.get("/v1/terms")).json()
    assert doc["version"] == VERSION and doc["terms_url"] == terms.TERMS_URL
    assert doc["use_restrictions"] == list(terms.RESTRICTIONS)
    assert doc["disclaimer"] == terms.DISCLAIMER
    assert doc["acknowledge"]["per_key"] == "POST /v1/terms/acknowledge"


async def test_keys_configured_missing_or_unknown_key_is_401(make_gateway):
    gw = await make_gateway(keys=["sk-alice"])
    missing = await gw.post("/v1/chat/completions", json=chat_body(), headers=ACK)
    unknown = await gw.post(
        "/v1/chat/completions", json=chat_body(), headers={**ACK, "Authorization": "Bearer sk-eve"}
    )
    for resp in (missing, unknown):
        assert resp.status == 401 and (await resp.json())["error"]["code"] == "invalid_api_key"


async def test_per_key_acknowledgement_lets_the_key_through_and_persists(make_gateway, db):
    gw = await make_gateway(keys=["sk-alice", "sk-bob"])
    assert (await gw.post("/v1/chat/completions", json=chat_body(), headers=KEY)).status == 403
    ack = await gw.post("/v1/terms/acknowledge", json={"version": VERSION}, headers=KEY)
    assert ack.status == 200 and (await ack.json())["version"] == VERSION
    assert (await gw.post("/v1/chat/completions", json=chat_body(), headers=KEY)).status == 200
    bob = {"Authorization": "Bearer sk-bob"}
    assert (await gw.post("/v1/chat/completions", json=chat_body(), headers=bob)).status == 403
    restarted = SqliteAckStore(db)  # a new process reads the same file
    assert await restarted.has(gw.app[GATEWAY].keys.hash("sk-alice"), VERSION)
    stored = db.read_bytes().decode("latin-1")
    assert "sk-alice" not in stored  # only the hash is stored
    assert legacy_hash("sk-alice") not in stored  # and a keyed one: no plain SHA-256 to look up


async def test_acknowledgement_survives_an_app_restart(make_gateway):
    gw = await make_gateway(keys=["sk-alice"])
    await gw.post("/v1/terms/acknowledge", json={"version": VERSION}, headers=KEY)
    await gw.close()
    again = await make_gateway(keys=["sk-alice"])
    assert (await again.post("/v1/chat/completions", json=chat_body(), headers=KEY)).status == 200


async def test_terms_version_bump_invalidates_older_acknowledgements(make_gateway):
    gw = await make_gateway(keys=["sk-alice"])
    await gw.post("/v1/terms/acknowledge", json={"version": VERSION}, headers=KEY)
    await gw.close()
    bumped = await make_gateway(keys=["sk-alice"], terms={"version": "2027-01-01"})
    resp = await bumped.post("/v1/chat/completions", json=chat_body(), headers=KEY)
    assert resp.status == 403 and "2027-01-01" in (await resp.json())["error"]["message"]


async def test_acknowledging_a_wrong_version_is_400(make_gateway):
    gw = await make_gateway(keys=["sk-alice"])
    resp = await gw.post("/v1/terms/acknowledge", json={"version": "1999-01-01"}, headers=KEY)
    assert resp.status == 400 and (await resp.json())["error"]["code"] == "terms_version_mismatch"


async def test_per_key_acknowledgement_in_local_mode_says_use_the_header(gateway):
    resp = await gateway.post("/v1/terms/acknowledge", json={"version": VERSION})
    assert resp.status == 400 and "HAI-DEF-Acknowledged" in (await resp.json())["error"]["message"]


async def test_store_that_cannot_be_read_refuses_with_503_never_a_bypass(make_gateway, db):
    gw = await make_gateway(keys=["sk-alice"])
    await gw.post("/v1/terms/acknowledge", json={"version": VERSION}, headers=KEY)
    store = gw.app[GATEWAY].store
    await store.close()  # the store goes away under the running gateway
    fresh = {"Authorization": "Bearer sk-alice"}
    store._known.clear()
    resp = await gw.post("/v1/chat/completions", json=chat_body(), headers=fresh)
    assert resp.status == 503 and (await resp.json())["error"]["code"] == "store_unavailable"


async def test_acknowledgement_written_by_another_gateway_is_seen_at_once(make_gateway, db):
    first = await make_gateway(keys=["sk-alice"])
    second = await make_gateway(keys=["sk-alice"])  # same SQLite file, separate process-like app
    assert (await second.post("/v1/chat/completions", json=chat_body(), headers=KEY)).status == 403
    await first.post("/v1/terms/acknowledge", json={"version": VERSION}, headers=KEY)
    assert (await second.post("/v1/chat/completions", json=chat_body(), headers=KEY)).status == 200


async def test_legacy_sha256_acknowledgement_moves_to_the_keyed_hash_on_first_verified_use(make_gateway, db):
    old = SqliteAckStore(db)  # rows as a gateway from before keyed hashes wrote them
    for key in ("sk-alice", "sk-eve"):
        await old.acknowledge(legacy_hash(key), VERSION)
    await old.close()
    gw = await make_gateway(keys=["sk-alice"])
    assert (await gw.post("/v1/chat/completions", json=chat_body(), headers=KEY)).status == 200
    eve = {"Authorization": "Bearer sk-eve"}  # not a configured key: its row is neither honoured nor touched
    assert (await gw.post("/v1/chat/completions", json=chat_body(), headers=eve)).status == 401
    with sqlite3.connect(db) as conn:
        rows = {r[0] for r in conn.execute("SELECT key_hash FROM acknowledgements")}
    assert rows == {gw.app[GATEWAY].keys.hash("sk-alice"), legacy_hash("sk-eve")}


async def test_undecodable_authorization_header_is_a_401_envelope(make_gateway):
    gw = await make_gateway(keys=["sk-alice"])
    body = json.dumps(chat_body()).encode()
    for path, payload in (("/v1/chat/completions", body), ("/v1/terms/acknowledge", b'{"version": "x"}')):
        status, answer = await _raw_post(gw.server.host, gw.server.port, path, b"Bearer \xff\xfe", payload)
        assert status == 401, answer
        error = json.loads(answer)["error"]
        assert error["code"] == "invalid_api_key" and error["type"] == "authentication_error"
        assert set(error) == {"message", "type", "param", "code"}


async def _raw_post(host: str, port: int, path: str, authorization: bytes, body: bytes) -> tuple[int, bytes]:
    """The bytes as sent: HTTP clients refuse to put non-ASCII bytes in a header."""
    reader, writer = await asyncio.open_connection(host, port)
    head = f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nConnection: close\r\n"
    head += f"Content-Length: {len(body)}\r\n"
    writer.write(head.encode() + b"Authorization: " + authorization + b"\r\n\r\n" + body)
    raw = await reader.read()
    writer.close()
    status_line, _, rest = raw.partition(b"\r\n")
    return int(status_line.split()[1]), rest.partition(b"\r\n\r\n")[2]
