"""Large bodies parsed with their data URLs cut out (serve/gateway/rewrite/inline_media.py): what reaches the
engine is what the plain parse would have sent."""

from __future__ import annotations

import base64
import io

import orjson
from PIL import Image

from serve.gateway.rewrite import request_body
from testkit.ct_series import ct_series
from testkit.dicom_factory import data_url, dicom, radiograph16
from tests.conftest import ACK, MODEL
from tests.gateway.conftest import body, forwarded, images_of, volume_part
from tests.gateway.test_volumes import CHAT


def uncut(monkeypatch) -> None:
    monkeypatch.setattr(request_body, "cut", lambda raw: (raw, None))


async def test_a_large_inline_volume_and_a_small_one_both_reach_the_engine(
    volume_gateway, script, monkeypatch
):
    gw = await volume_gateway()
    large = body(volume_part(ct_series(12, 256, seed=1).objects))
    assert len(orjson.dumps(large)) > 2 << 20  # above the cut's 1 MiB
    resp = await gw.post(CHAT, json=large, headers=ACK)
    assert resp.status == 200
    cut_content = forwarded(script)
    assert len(images_of(cut_content)) == 12 and [p["text"] for p in cut_content[2:-1:2]][-1] == "SLICE 12"
    uncut(monkeypatch)  # the same request through the plain parse: the same slices reach the engine
    assert (await gw.post(CHAT, json=large, headers=ACK)).status == 200
    assert forwarded(script) == cut_content
    small = body(volume_part(ct_series(4, 32, seed=1).objects))
    assert (await gw.post(CHAT, json=small, headers=ACK)).status == 200
    assert len(images_of(forwarded(script))) == 4


async def test_a_single_dicom_image_above_the_cut_threshold_is_normalised(volume_gateway, script):
    gw = await volume_gateway()
    url = data_url(dicom(radiograph16(1024)))
    assert len(url) > 1 << 20
    part = {"type": "image_url", "image_url": {"url": url, "detail": "high"}}
    resp = await gw.post(CHAT, json=body(part), headers=ACK)
    assert resp.status == 200
    sent = forwarded(script)[1]["image_url"]
    assert sent["detail"] == "high"
    assert Image.open(io.BytesIO(base64.b64decode(sent["url"].partition(",")[2]))).size == (224, 224)


async def test_images_left_alone_reach_the_engine_byte_for_byte(volume_gateway, engine, script):
    gw = await volume_gateway(normalize=False)
    png = io.BytesIO()
    Image.effect_noise((700, 700), 64).convert("RGB").save(png, "PNG")
    url = "data:image/png;base64," + base64.b64encode(png.getvalue()).decode()
    parts = [
        {"type": "image_url", "image_url": {"url": url}},
        {"type": "image_url", "image_url": {"url": url}},
    ]
    sent = orjson.dumps(body(*parts))
    assert len(sent) > 1 << 20
    resp = await gw.post(CHAT, data=sent, headers={**ACK, "Content-Type": "application/json"})
    assert resp.status == 200
    content = forwarded(script)
    assert [p["image_url"]["url"] for p in content[1:3]] == [url, url]
    assert content[0]["text"] == "Review the slices." and script.seen[-1]["model"] == MODEL
