"""Against a real PACS (Debian's Orthanc with its DICOMweb plugin, one per module on loopback, loaded over STOW-RS
and by OrthancWSIDicomizer): CT, MR, CR and a whole slide by reference reach the fake engine as images; wrong UIDs,
a silent and a stopped server get their envelopes; no patient or study attribute reaches a log or the engine."""

import io
import json
import logging

import numpy as np
import pytest

from testkit import pacs_studies
from testkit.pacs_studies import CANARY
from tests.conftest import ACK
from tests.gateway.conftest import dicom_body, error_of, forwarded, images_of

pytestmark = pytest.mark.full
CHAT = "/v1/chat/completions"


@pytest.fixture(scope="module")
def pacs(tmp_path_factory):
    with pacs_studies.running(tmp_path_factory.mktemp("orthanc")) as loaded:
        yield loaded


@pytest.fixture
def pacs_gateway(make_gateway, pacs):
    def make(*, context_len=8192, max_images=100, **server):
        entry = {"name": "orthanc", "base_url": pacs.dicomweb_url, **server}
        images = {"model_input_size": 224, "tokens_per_image": 67, "dicomweb": {"servers": [entry]}}
        return make_gateway(images=images, max_images=max_images, context_len=context_len)

    return make


def body(*sources, **options) -> dict:
    return dicom_body(*sources, intro="Describe the study.", **options)


async def test_a_ct_series_by_reference_is_85_ordered_slices(pacs_gateway, pacs, script):
    gw = await pacs_gateway()
    resp = await gw.post(CHAT, json=body(pacs.studies.ct.url(pacs.dicomweb_url)), headers=ACK)
    assert resp.status == 200, await resp.text()
    content = forwarded(script)
    assert len(images_of(content)) == 85 and all(i.size == (224, 224) for i in images_of(content))
    assert [p["text"] for p in content if p["type"] == "text"][1:4] == ["SLICE 1", "SLICE 2", "SLICE 3"]


async def test_named_instances_an_mr_series_and_a_radiograph(pacs_gateway, pacs, script):
    gw = await pacs_gateway()
    ct = pacs.studies.ct.url(pacs.dicomweb_url)
    urls = [f"{ct}/instances/{uid}" for uid in pacs.studies.ct_instances[:5]]
    assert (await gw.post(CHAT, json=body(*urls), headers=ACK)).status == 200
    assert len(images_of(forwarded(script))) == 5
    assert (await gw.post(CHAT, json=body(pacs.studies.mr.url(pacs.dicomweb_url)), headers=ACK)).status == 200
    assert len(images_of(forwarded(script))) == 30
    resp = await gw.post(CHAT, json=body(pacs.studies.cr.url(pacs.dicomweb_url)), headers=ACK)
    assert resp.status == 200
    assert len(images_of(forwarded(script))) == 1 and len(forwarded(script)) == 3  # no slice label


async def test_a_whole_slide_is_tissue_patches_from_the_10x_level(pacs_gateway, pacs, script):
    gw = await pacs_gateway()
    slide = pacs.studies.slide.url(pacs.dicomweb_url)
    assert (await gw.post(CHAT, json=body(slide), headers=ACK)).status == 200
    patches = images_of(forwarded(script))
    assert 10 <= len(patches) <= 36  # the generated slide's 6 x 6 grid at 1 um/px, glass left out
    assert all(p.size == (224, 224) for p in patches)
    assert all(np.asarray(p.convert("L")).mean() < 215 for p in patches)  # stained tissue, not bright glass
    assert [p["type"] for p in forwarded(script)].count("text") == 2  # the prompt and the question only
    assert (await gw.post(CHAT, json=body(slide, max_patches=5), headers=ACK)).status == 200
    assert len(images_of(forwarded(script))) == 5


async def test_a_slide_takes_the_clients_patches_and_fits_the_room_left(pacs_gateway, pacs, script):
    gw = await pacs_gateway(context_len=8 * 67 + 1)  # 8 images and the answer's one token
    slide = pacs.studies.slide.url(pacs.dicomweb_url)
    assert (await gw.post(CHAT, json=body(slide), headers=ACK)).status == 200
    assert len(images_of(forwarded(script))) == 8  # as many as the context holds
    resp = await gw.post(CHAT, json=body(slide, max_patches=9), headers=ACK)
    assert resp.status == 400 and (await error_of(resp))["code"] == "context_budget_exceeded"
    boxes = [{"x_origin": 896 * k, "y_origin": 1792, "width": 896, "height": 896} for k in range(3)]
    assert (await gw.post(CHAT, json=body(slide, patch_coordinates=boxes), headers=ACK)).status == 200
    assert len(images_of(forwarded(script))) == 3
    outside = [{"x_origin": 5000, "y_origin": 0, "width": 896, "height": 896}]
    resp = await gw.post(CHAT, json=body(slide, patch_coordinates=outside), headers=ACK)
    assert resp.status == 400 and (await error_of(resp))["code"] == "invalid_patch_coordinates"


async def test_wrong_uids_are_404s(pacs_gateway, pacs):
    gw = await pacs_gateway()
    ct = pacs.studies.ct
    for url in (
        f"{pacs.dicomweb_url}/studies/{ct.study}/series/1.2.3.4",
        f"{pacs.dicomweb_url}/studies/9.9.9/series/{ct.series}",
        f"{ct.url(pacs.dicomweb_url)}/instances/1.2.3.4",
    ):
        resp = await gw.post(CHAT, json=body(url), headers=ACK)
        assert resp.status == 404 and (await error_of(resp))["code"] == "dicomweb_not_found", url


async def test_no_patient_or_study_attribute_reaches_a_log_or_the_engine(
    pacs_gateway, pacs, script, caplog, access_log
):
    gw = await pacs_gateway()
    studies = pacs.studies
    with caplog.at_level(logging.DEBUG):
        for series in (studies.ct, studies.cr, studies.slide):
            resp = await gw.post(CHAT, json=body(series.url(pacs.dicomweb_url), max_slices=4), headers=ACK)
            assert resp.status in (200, 400)
        await gw.post(CHAT, json=body(f"{pacs.dicomweb_url}/studies/1/series/2"), headers=ACK)
    sent = json.dumps(script.seen)
    assert CANARY not in sent and CANARY not in caplog.text and CANARY not in str(access_log.lines())
    # Nor is any UID: the requests name them, the logs do not.
    assert studies.ct.series not in caplog.text and studies.ct.series not in sent


async def test_a_silent_pacs_is_a_504_and_a_stopped_one_a_502_then_it_serves_again(
    pacs_gateway, pacs, script
):
    gw = await pacs_gateway(timeout_s=0.5)
    cr = body(pacs.studies.cr.url(pacs.dicomweb_url))
    with pacs.server.slow():
        resp = await gw.post(CHAT, json=body(pacs.studies.ct.url(pacs.dicomweb_url)), headers=ACK)
    assert resp.status == 504 and (await error_of(resp))["code"] == "dicomweb_unreachable"
    pacs.server.stop()
    try:
        resp = await gw.post(CHAT, json=cr, headers=ACK)
        assert resp.status == 502 and (await error_of(resp))["code"] == "dicomweb_unreachable"
    finally:
        pacs.server.start()
    assert (await gw.post(CHAT, json=cr, headers=ACK)).status == 200


def test_the_slide_is_a_pyramid_with_a_real_pixel_spacing(pacs):
    """What the recipe relies on: levels of 0.5, 1, 2 ... um per pixel (ImageType VOLUME, one per level)."""
    import urllib.request

    slide = pacs.studies.slide
    url = f"{slide.url(pacs.dicomweb_url)}/metadata"
    with urllib.request.urlopen(url, timeout=30) as resp:
        levels = json.load(io.TextIOWrapper(resp))
    spacings = sorted(
        round(float(item["52009229"]["Value"][0]["00289110"]["Value"][0]["00280030"]["Value"][0]) * 1000, 3)
        for item in levels
    )
    assert spacings == [0.5, 1.0, 2.0, 4.0, 8.0]
