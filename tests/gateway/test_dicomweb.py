"""Tier 1: volume parts with DICOMweb sources, against a scripted DICOMweb server: only the sampled instances are
retrieved, the same slices as inline reach the engine, the allow-list holds, each server failure is its envelope,
and no credential or patient attribute reaches a log line or the engine."""

import logging
import socket

import pytest

from testkit.ct_series import ct_series
from testkit.dicom_factory import data_url
from testkit.fake_dicomweb import Pacs
from testkit.fake_dicomweb import create_app as create_pacs
from tests.conftest import ACK
from tests.gateway.conftest import body, dicom_body, error_of, forwarded, volume_part

CHAT = "/v1/chat/completions"
TOKEN = "client-token-5c1f9e"  # must never be logged
SECRET = "Basic Z2F0ZXdheTpzZWNyZXQtOTk="  # the gateway's own credential, from the environment


@pytest.fixture
async def pacs(aiohttp_server):
    script = Pacs()
    server = await aiohttp_server(create_pacs(script))
    script.base = str(server.make_url("")).rstrip("/")
    return script


@pytest.fixture
def dicomweb_gateway(make_gateway, pacs, monkeypatch):
    monkeypatch.setenv("TEST_PACS_AUTH", SECRET)

    def make(*, context_len=None, max_images=None, **server):
        entry = {"name": "pacs", "base_url": pacs.base + "/dicom-web", **server}
        images = {"model_input_size": 64, "tokens_per_image": 67, "dicomweb": {"servers": [entry]}}
        return make_gateway(images=images, max_images=max_images, context_len=context_len)

    return make


async def test_a_series_by_reference_reaches_the_engine_as_the_same_slices_as_inline(
    dicomweb_gateway, pacs, script
):
    series = ct_series(30, 32, flat=True)
    pacs.add(series.objects)
    gw = await dicomweb_gateway()
    resp = await gw.post(CHAT, json=dicom_body(pacs.url(pacs.base), max_slices=10), headers=ACK)
    assert resp.status == 200, await resp.text()
    by_reference = forwarded(script)
    # Only the 10 sampled instances were retrieved, after one search and one metadata request.
    assert pacs.requests.count("instance") == 10 and pacs.requests[:2] == ["qido", "metadata"]
    resp = await gw.post(CHAT, json=body(volume_part(series.objects, max_slices=10)), headers=ACK)
    assert resp.status == 200
    assert forwarded(script) == by_reference  # byte for byte: one pipeline


async def test_named_instances_make_a_volume_of_those_slices(dicomweb_gateway, pacs, script):
    series = ct_series(8, 32, flat=True)
    pacs.add(series.objects)
    gw = await dicomweb_gateway()
    chosen = list(pacs.objects)[:3]
    urls = [f"{pacs.url(pacs.base)}/instances/{uid}" for uid in chosen]
    assert (await gw.post(CHAT, json=dicom_body(*urls), headers=ACK)).status == 200
    assert [p["text"] for p in forwarded(script) if p["type"] == "text"][1:-1] == [
        "SLICE 1",
        "SLICE 2",
        "SLICE 3",
    ]


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("http://127.0.0.2:{port}/dicom-web/studies/1/series/2", "dicomweb_server_not_allowed"),
        ("{base}/other-root/studies/1/series/2", "dicomweb_server_not_allowed"),
        ("{base}/dicom-web/studies/1/series/2/../../3", "invalid_dicomweb_url"),
        ("{base}/dicom-web/studies/1/series/2%2F3", "invalid_dicomweb_url"),
        ("{base}/dicom-web/studies/1/series/abc", "invalid_dicomweb_url"),
        ("{base}/dicom-web/studies/1", "invalid_dicomweb_url"),
        ("{base}/dicom-web/studies/1/series/2?x=1", "invalid_dicomweb_url"),
    ],
)
async def test_only_allow_listed_servers_and_plain_paths_are_fetched(dicomweb_gateway, pacs, url, code):
    gw = await dicomweb_gateway()
    port = pacs.base.rsplit(":", 1)[1]
    resp = await gw.post(CHAT, json=dicom_body(url.format(base=pacs.base, port=port)), headers=ACK)
    assert resp.status == 400 and (await error_of(resp))["code"] == code
    assert pacs.requests == []


async def test_without_configured_servers_a_reference_is_refused(make_gateway):
    gw = await make_gateway()
    resp = await gw.post(
        CHAT, json=dicom_body("https://pacs.example/dicom-web/studies/1/series/2"), headers=ACK
    )
    assert resp.status == 400 and (await error_of(resp))["code"] == "dicomweb_not_configured"


@pytest.mark.parametrize(
    ("status", "only", "expected", "code"),
    [
        (404, None, 404, "dicomweb_not_found"),
        (500, "metadata", 502, "dicomweb_unreachable"),
        (503, "instance", 502, "dicomweb_unreachable"),
        (302, "instance", 502, "dicomweb_bad_response"),
        (400, "qido", 502, "dicomweb_bad_response"),
        (403, None, 502, "dicomweb_forbidden"),  # the gateway's own credential: the operator's problem
    ],
)
async def test_each_server_failure_is_its_envelope(dicomweb_gateway, pacs, status, only, expected, code):
    pacs.add(ct_series(4, 16, flat=True).objects)
    pacs.status, pacs.fail_only = status, only
    gw = await dicomweb_gateway(authorization_env="TEST_PACS_AUTH")
    resp = await gw.post(CHAT, json=dicom_body(pacs.url(pacs.base)), headers=ACK)
    assert resp.status == expected, await resp.text()
    error = await error_of(resp)
    assert error["code"] == code and error["param"].endswith("dicom_source[0]")


async def test_a_refused_client_credential_is_a_403_and_the_token_is_forwarded_never_logged(
    dicomweb_gateway, pacs, caplog, access_log
):
    pacs.add(ct_series(4, 16, flat=True).objects)
    pacs.status = 401
    gw = await dicomweb_gateway(forward_client_credential=True, authorization_env="TEST_PACS_AUTH")
    with caplog.at_level(logging.DEBUG):
        resp = await gw.post(CHAT, json=dicom_body(pacs.url(pacs.base), access_credential=TOKEN), headers=ACK)
    assert resp.status == 403 and (await error_of(resp))["code"] == "dicomweb_forbidden"
    assert pacs.authorizations == [f"Bearer {TOKEN}"]
    text = caplog.text + str(access_log.lines()) + await resp.text()
    assert TOKEN not in text and SECRET not in text


async def test_the_gateway_credential_goes_when_the_client_sends_none(dicomweb_gateway, pacs, script):
    pacs.add(ct_series(3, 16, flat=True).objects)
    gw = await dicomweb_gateway(forward_client_credential=True, authorization_env="TEST_PACS_AUTH")
    assert (await gw.post(CHAT, json=dicom_body(pacs.url(pacs.base)), headers=ACK)).status == 200
    assert set(pacs.authorizations) == {SECRET}


async def test_a_client_credential_is_refused_where_the_server_does_not_forward_it(dicomweb_gateway, pacs):
    pacs.add(ct_series(3, 16, flat=True).objects)
    gw = await dicomweb_gateway()
    resp = await gw.post(CHAT, json=dicom_body(pacs.url(pacs.base), access_credential=TOKEN), headers=ACK)
    assert resp.status == 400 and (await error_of(resp))["code"] == "dicomweb_credential_not_accepted"
    assert TOKEN not in await resp.text() and pacs.requests == []


async def test_a_silent_server_is_a_504_and_a_refused_connection_a_502(dicomweb_gateway, pacs, make_gateway):
    pacs.add(ct_series(3, 16, flat=True).objects)
    pacs.delay_s = 2.0
    gw = await dicomweb_gateway(timeout_s=0.3)
    resp = await gw.post(CHAT, json=dicom_body(pacs.url(pacs.base)), headers=ACK)
    assert resp.status == 504 and (await error_of(resp))["code"] == "dicomweb_unreachable"
    with socket.socket() as closed:  # bound, never listening: connections to it are refused
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
        server = {"name": "gone", "base_url": f"http://127.0.0.1:{port}/dicom-web"}
        gone = await make_gateway(images={"dicomweb": {"servers": [server]}})
        resp = await gone.post(CHAT, json=dicom_body(f"{server['base_url']}/studies/1/series/2"), headers=ACK)
    assert resp.status == 502 and (await error_of(resp))["code"] == "dicomweb_unreachable"


async def test_an_oversized_or_broken_instance_is_refused(dicomweb_gateway, pacs):
    pacs.add(ct_series(3, 64, flat=True).objects)
    gw = await dicomweb_gateway(max_instance_bytes=4096)
    resp = await gw.post(CHAT, json=dicom_body(pacs.url(pacs.base)), headers=ACK)
    assert resp.status == 400 and (await error_of(resp))["code"] == "image_too_large"
    gw = await dicomweb_gateway(max_part_bytes=20_000)  # each object fits, the three together do not
    resp = await gw.post(CHAT, json=dicom_body(pacs.url(pacs.base)), headers=ACK)
    assert resp.status == 400 and (await error_of(resp))["code"] == "image_too_large"
    pacs.broken_body = True
    gw = await dicomweb_gateway()
    resp = await gw.post(CHAT, json=dicom_body(pacs.url(pacs.base)), headers=ACK)
    assert resp.status == 502 and (await error_of(resp))["code"] == "dicomweb_bad_response"


async def test_inline_and_reference_sources_do_not_mix_in_one_part(dicomweb_gateway, pacs):
    series = ct_series(2, 16, flat=True)
    pacs.add(series.objects)
    gw = await dicomweb_gateway()
    resp = await gw.post(CHAT, json=dicom_body(pacs.url(pacs.base), data_url(series.objects[0])), headers=ACK)
    assert resp.status == 400 and (await error_of(resp))["code"] == "invalid_volume"


async def test_patch_options_are_for_whole_slides_only(dicomweb_gateway, pacs):
    pacs.add(ct_series(2, 16, flat=True).objects)
    gw = await dicomweb_gateway()
    resp = await gw.post(CHAT, json=dicom_body(pacs.url(pacs.base), max_patches=4), headers=ACK)
    assert resp.status == 400 and (await error_of(resp))["code"] == "invalid_volume"
