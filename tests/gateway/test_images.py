"""Tier 1: image parts are checked at the gateway with Pillow before anything reaches the engine."""

import base64
import io

import pytest
from PIL import Image

from tests.conftest import ACK, MODEL

CHAT = "/v1/chat/completions"


def png(w=32, h=32, fmt="PNG") -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (w, h), (40, 40, 40)).save(buf, format=fmt)
    return buf.getvalue()


def data_url(data: bytes, media="image/png") -> str:
    return f"data:{media};base64," + base64.b64encode(data).decode()


def body_with(*urls, text="Findings?"):
    parts = [{"type": "image_url", "image_url": {"url": u}} for u in urls] + [{"type": "text", "text": text}]
    return {"model": MODEL, "messages": [{"role": "user", "content": parts}]}


def bomb_png() -> bytes:
    """A small file that claims 100k x 100k pixels: Pillow's decompression-bomb guard must stop it."""
    buf = io.BytesIO()
    Image.new("1", (20000, 20000)).save(buf, format="PNG")
    return buf.getvalue()


async def test_valid_png_reaches_the_engine_unchanged(gateway, script):
    url = data_url(png())
    assert (await gateway.post(CHAT, json=body_with(url), headers=ACK)).status == 200
    assert script.seen[-1]["messages"][1]["content"][0]["image_url"]["url"] == url


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("data:image/png;base64,!!!notbase64", "invalid_base64"),
        (data_url(b"hello", "text/plain"), "unsupported_media_type"),
        (data_url(png()[:60]), "invalid_image"),
        (data_url(b"\x89PNG\r\n\x1a\n" + b"\0" * 40), "invalid_image"),
        (data_url(png(fmt="JPEG"), "image/png"), "media_type_mismatch"),
        (data_url(png(20000, 1)), "image_dimensions"),
        ("data:image/png,rawbytes", "invalid_image_url"),
        ("https://example.org/cxr.png", "remote_image_refused"),
        ("http://169.254.169.254/latest/meta-data", "remote_image_refused"),
        ("file:///etc/passwd", "invalid_image_url"),
    ],
)
async def test_bad_images_are_400_envelopes_naming_the_part(gateway, script, url, code):
    resp = await gateway.post(CHAT, json=body_with(url), headers=ACK)
    assert resp.status == 400
    error = (await resp.json())["error"]
    assert error["code"] == code and error["param"] == "messages[0].content[0]"
    assert script.seen == []


async def test_decompression_bomb_is_refused(make_gateway, script):
    gw = await make_gateway(images={"max_side": 100_000, "max_pixels": 10**12})
    resp = await gw.post(CHAT, json=body_with(data_url(bomb_png())), headers=ACK)
    assert resp.status == 400 and (await resp.json())["error"]["code"] == "image_dimensions"


async def test_more_images_than_the_profile_allows_is_400(make_gateway, engine, registry, db, aiohttp_client):
    from serve.config import GatewaySettings, TermsSettings
    from serve.gateway.admission.api_keys import KeyRing
    from serve.gateway.app import GatewayConfig, create_app
    from serve.gateway.stores.sqlite import SqliteAckStore

    cfg = GatewayConfig(
        GatewaySettings(terms=TermsSettings(database=db)), [MODEL], str(engine.make_url("")), 1
    )
    gw = await aiohttp_client(create_app(cfg, registry=registry, store=SqliteAckStore(db), keys=KeyRing()))
    resp = await gw.post(CHAT, json=body_with(data_url(png()), data_url(png())), headers=ACK)
    assert resp.status == 400
    error = (await resp.json())["error"]
    assert error["code"] == "too_many_images" and "at most 1" in error["message"]


async def test_unsupported_part_type_is_400(gateway):
    body = {
        "model": MODEL,
        "messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}],
    }
    resp = await gateway.post(CHAT, json=body, headers=ACK)
    assert resp.status == 400 and (await resp.json())["error"]["code"] == "unsupported_content_part"


async def test_image_in_system_message_is_400(gateway):
    sys_msg = {"role": "system", "content": [{"type": "image_url", "image_url": {"url": data_url(png())}}]}
    body = {"model": MODEL, "messages": [sys_msg, {"role": "user", "content": "q"}]}
    assert (await gateway.post(CHAT, json=body, headers=ACK)).status == 400


async def test_allow_listed_host_resolving_to_loopback_is_refused(make_gateway):
    gw = await make_gateway(images={"remote_hosts": ["localhost"]})
    resp = await gw.post(CHAT, json=body_with("https://localhost/cxr.png"), headers=ACK)
    assert resp.status == 400 and "private, loopback" in (await resp.json())["error"]["message"]
