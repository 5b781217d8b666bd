"""Data URLs cut out of a body before its parse: resolved, the parse equals the plain parse; re-encoded, the body
equals the plain encode byte for byte."""

from __future__ import annotations

import base64
import json
import pickle
import random
from typing import Any

import orjson
import pytest

from serve.gateway.errors import GatewayError
from serve.gateway.rewrite import data_urls
from serve.gateway.rewrite.data_urls import Finder, ScannedBytes
from serve.gateway.rewrite.inline_media import CutText, as_worker_text, cut, deferred, resolve, restore_pieces
from serve.gateway.rewrite.request_body import encode, parse, parse_document
from serve.imaging import shared_bytes
from serve.imaging.volume_slices import SliceTask

SMALL = {"min_body": 0, "min_url": 64}  # thresholds low enough for small cases


def url(rng: random.Random, n: int, media: str = "application/dicom") -> str:
    return f"data:{media};base64," + base64.b64encode(rng.randbytes(n)).decode()


def resolved(value: Any, media: Any) -> Any:
    if isinstance(value, dict):
        return {resolve(k, media): resolved(v, media) for k, v in value.items()}
    if isinstance(value, list):
        return [resolved(v, media) for v in value]
    return resolve(value, media)


def lookalike(rng: random.Random) -> str:
    """Strings near the shape that must stay as the client sent them."""
    payload = base64.b64encode(rng.randbytes(rng.choice([10, 200]))).decode()
    return rng.choice(
        [
            f"data:image/png;base64,{payload}\\",  # ends in a backslash
            f'say "data:image/png;base64,{payload}"',  # escaped quotes around it
            f"data:image/png;base64,{payload}\u00e9",  # non-ASCII
            f"data:image/png,{payload}",  # no ;base64
            f"data:;base64,{payload}",  # no media type
            f'\\\\"data:image/png;base64,{payload}',  # backslashes before the quote
            "\x00 not a placeholder \x00",
            f"data:image/png;base64,{payload}\n{payload}",
            "héllo ✓ \u2028 emoji 🩻",
        ]
    )


def random_body(rng: random.Random) -> dict[str, Any]:
    parts: list[Any] = []
    for _ in range(rng.randint(1, 8)):
        kind = rng.random()
        if kind < 0.4:
            parts.append({"type": "image_url", "image_url": {"url": url(rng, rng.choice([10, 60, 400]))}})
        elif kind < 0.7:
            parts.append({"type": "text", "text": lookalike(rng)})
        else:
            sources = [url(rng, rng.choice([30, 300])) for _ in range(rng.randint(1, 3))]
            parts.append({"type": "image_dicom", "image_dicom": {"dicom_source": sources}})
    body = {"model": "m", "messages": [{"role": "user", "content": parts}]}
    if rng.random() < 0.3:
        body[url(rng, 100)] = [lookalike(rng), 1.5, None, True]  # a data URL as a key
    return body


@pytest.mark.parametrize("seed", range(200))
def test_the_cut_parse_resolved_equals_the_plain_parse_and_re_encodes_identically(seed: int) -> None:
    rng = random.Random(seed)
    body = random_body(rng)
    raw = json.dumps(body, ensure_ascii=rng.random() < 0.5, indent=rng.choice([None, 1])).encode()
    doc, media = cut(raw, **SMALL)
    parsed = orjson.loads(doc)
    assert resolved(parsed, media) == orjson.loads(raw)
    assert written(restore_pieces(orjson.dumps(parsed), media)) == orjson.dumps(orjson.loads(raw))
    assert len(doc) <= len(raw)


def arriving(rng: random.Random, size: int) -> list[int]:
    """Where the pieces of a body end as it arrives: single bytes to large chunks (every boundary the scan must
    carry across: inside `"data:`, the header, a backslash run, right before a closing quote)."""
    ends, end = [], 0
    while end < size:
        end = min(size, end + rng.choice([1, 1, 2, 3, 5, 6, 7, 64, 333, 4096]))
        ends.append(end)
    return ends


@pytest.mark.parametrize("seed", range(200))
def test_a_body_looked_through_as_it_arrives_finds_what_the_whole_body_does(seed: int) -> None:
    rng = random.Random(seed)
    raw = json.dumps(random_body(rng), ensure_ascii=rng.random() < 0.5, indent=rng.choice([None, 1])).encode()
    if rng.random() < 0.2:  # cut short: an unterminated string, invalid JSON
        raw = raw[: rng.randrange(len(raw))]
    whole, piecewise = Finder(64), Finder(64)
    whole.feed(raw, len(raw))
    for end in arriving(rng, len(raw)):
        piecewise.feed(raw, end)
    assert piecewise.spans == whole.spans


@pytest.mark.skipif(not shared_bytes.supported(), reason="needs memfd and /proc (Linux)")
def test_a_body_received_in_pieces_is_cut_without_a_second_scan() -> None:
    rng = random.Random(7)
    content = [{"type": "image_url", "image_url": {"url": url(rng, 2000)}} for _ in range(5)]
    raw = json.dumps({"model": "m", "messages": [{"role": "user", "content": content}], "u": lookalike(rng)})
    received = ScannedBytes(len(raw), min_url=64)
    done = 0
    for end in arriving(rng, len(raw)):
        received.append(raw.encode()[done:end])
        done = end
    assert data_urls.spans(received, 64) is received.finder.spans  # found as it came, not looked at again
    doc, media = cut(received, **SMALL)  # type: ignore[arg-type]
    assert media is not None and len(media.spans) == 5
    assert resolved(orjson.loads(doc), media) == orjson.loads(raw)


def test_only_large_data_url_values_are_cut_and_lookalikes_are_left() -> None:
    rng = random.Random(1)
    big, small = url(rng, 1000), url(rng, 10)
    escaped = json.dumps(f'"{big}"')  # the URL inside a text, between escaped quotes
    raw = f'{{"a": "{big}", "b": "{small}", "c": {escaped}, "d": "{big[:-1]}\\\\"}}'.encode()
    doc, media = cut(raw, **SMALL)
    assert media is not None and len(media.spans) == 1
    parsed = orjson.loads(doc)
    assert parsed["a"] != big and resolve(parsed["a"], media) == big
    assert parsed["b"] == small and parsed["c"] == f'"{big}"' and parsed["d"] == big[:-1] + "\\"


def test_small_bodies_are_not_cut() -> None:
    raw = json.dumps({"u": url(random.Random(2), 100_000)}).encode()
    assert cut(raw) == (raw, None)  # under the 1 MiB default
    doc, media = cut(raw, min_body=0)
    assert media is not None and len(doc) < 100


def test_a_client_string_shaped_like_a_placeholder_is_not_resolved() -> None:
    rng = random.Random(3)
    raw = json.dumps({"a": url(rng, 1000), "b": "\x00" + "0" * 16 + ":0\x00"}).encode()
    doc, media = cut(raw, **SMALL)
    parsed = orjson.loads(doc)
    assert resolve(parsed["b"], media) == parsed["b"]
    fake = parsed["a"].replace(":0\x00", ":7\x00")  # our token, an index that names no URL
    assert resolve(fake, media) == fake


def test_invalid_json_stays_invalid() -> None:
    rng = random.Random(4)
    for raw in (
        f'{{"a": "x"{url(rng, 1000)}"}}',  # a closing quote followed by the shape
        f'{{"a": "{url(rng, 1000)}" "b"}}',
        f'{{"a": "{url(rng, 1000)}',  # unterminated
    ):
        doc, _ = cut(raw.encode(), **SMALL)
        with pytest.raises(orjson.JSONDecodeError):
            orjson.loads(raw)
        with pytest.raises(orjson.JSONDecodeError):
            orjson.loads(doc)


def test_a_payload_that_is_not_utf8_is_refused_as_the_parser_would() -> None:
    raw = b'{"a": "data:image/png;base64,' + b"A" * 1000 + b'\xff"}'
    doc, media = cut(raw, **SMALL)
    with pytest.raises(GatewayError) as err:
        resolve(orjson.loads(doc)["a"], media)
    assert err.value.code == "invalid_json"


def written(body) -> bytes:  # type: ignore[no-untyped-def]
    """The bytes a body sends: itself, or its pieces one after another."""
    return body if isinstance(body, bytes) else b"".join(body)


def test_a_large_chat_request_parses_small_and_forwards_untouched_images_byte_for_byte() -> None:
    rng = random.Random(5)
    images = [url(rng, 300_000, "image/png") for _ in range(6)]
    content = [{"type": "text", "text": "look"}] + [
        {"type": "image_url", "image_url": {"url": u}} for u in images
    ]
    raw = orjson.dumps({"model": "m", "messages": [{"role": "user", "content": content}]})
    parsed = parse(raw, ["m"], chat=True)
    assert parsed.media is not None and len(parsed.media.spans) == 6
    body, _ = parse_document(raw)
    assert len(orjson.dumps(body)) < 2000
    body = encode(parsed.body, parsed.media)
    assert isinstance(body, list)  # sent as pieces: the images are never joined into one copy
    assert written(body) == orjson.dumps(orjson.loads(raw))


def test_a_deferred_url_slices_and_pickles_as_the_text_it_spells() -> None:
    rng = random.Random(6)
    text = url(rng, 5000)
    raw = json.dumps({"a": "x", "u": text}).encode()
    doc, media = cut(raw, **SMALL)
    held = deferred(orjson.loads(doc)["u"], media)
    assert isinstance(held, CutText) and len(held) == len(text)
    assert held[:40] == text[:40] and held[31:2000] == text[31:2000] and held[100:] == text[100:]
    assert pickle.loads(pickle.dumps(SliceTask(as_worker_text(held), "CT", offset=31))).text == text
    assert (
        deferred("plain", media) == "plain"
        and deferred(orjson.loads(doc)["u"], None) == orjson.loads(doc)["u"]
    )
