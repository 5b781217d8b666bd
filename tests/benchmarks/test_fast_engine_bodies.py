"""The fast fake engine takes a large body in without its data URLs, however it is split on the way: the
request it answers is the one sent, each data URL an empty string, every other string as it was."""

import base64
import json
import random

import pytest

from testkit.fast_engine import Stripped, _split

TEXTS = ['say "data:x" here', 'a \\"data:y', "plain", "é ✓ 🩻"]


def sent(rng: random.Random) -> tuple[dict, bytes]:
    images = [
        {
            "type": "image_url",
            "image_url": {"url": "data:image/png;base64," + base64.b64encode(rng.randbytes(60_000)).decode()},
        }
        for _ in range(25)
    ]
    texts = [{"type": "text", "text": t} for t in TEXTS]
    doc = {"model": "m", "stream": True, "messages": [{"role": "user", "content": texts + images}]}
    body = json.dumps(doc, ensure_ascii=rng.random() < 0.5).encode()
    return doc, b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(
        body
    ) + body


@pytest.mark.parametrize("seed", range(40))
def test_a_large_body_arrives_without_its_data_urls_however_it_is_split(seed: int) -> None:
    rng = random.Random(seed)
    doc, request = sent(rng)
    at = rng.randint(1, 150)
    buf, large = bytearray(request[:at]), None
    while (large := Stripped.begin(buf)) is None:
        n = rng.randint(1, 100)
        buf += request[at : at + n]
        at += n
    while large.left:
        n = rng.choice([1, 2, 3, 5, 7, 4096, 65536])
        assert large.feed(request[at : at + n]) == b""
        at += n
    split = _split(large.request())
    assert split is not None
    (method, path, body), rest = split
    assert (method, path, rest) == (b"POST", b"/v1/chat/completions", bytearray())
    for part in doc["messages"][0]["content"]:
        if part["type"] == "image_url":
            part["image_url"]["url"] = ""
    assert json.loads(body) == doc
