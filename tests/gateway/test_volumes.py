"""Tier 1: CT and MR volumes through the gateway to the fake engine: what the engine is sent (one JPEG image part
per sampled slice, in order, at the model's size) and the 400s that name what is wrong with a series."""

import asyncio
import base64
import contextlib
import io
import json
import logging
import os
import time

import numpy as np
import psutil
import pytest
from PIL import Image
from pydicom import dcmread
from pydicom.data import get_testdata_file
from pydicom.uid import RLELossless

from serve.config import ImageSettings
from serve.gateway.rewrite.image_jobs import on_pool
from serve.imaging import recipes
from serve.imaging.pool import ImagePool
from testkit.ct_series import ct_series, enhanced, flat_hu, mr_series
from testkit.dicom_factory import data_url
from testkit.image_jobs import scripted
from tests.conftest import ACK
from tests.gateway.conftest import body, error_of, forwarded, images_of, volume_part

CHAT = "/v1/chat/completions"


def close(seen: list[int], expected: list[int], levels: int = 2) -> bool:
    return len(seen) == len(expected) and all(
        abs(a - b) <= levels for a, b in zip(seen, expected, strict=True)
    )


@pytest.mark.parametrize("fmt", ["bmp", "jpeg"])
async def test_a_shuffled_ct_series_reaches_the_engine_as_ordered_slices_with_labels(
    volume_gateway, script, fmt
):
    gw = await volume_gateway(volumes={"slice_format": fmt})
    series = ct_series(12, 64, flat=True)
    resp = await gw.post(CHAT, json=body(volume_part(series.objects)), headers=ACK)
    assert resp.status == 200
    content = forwarded(script)
    assert content[0]["text"] == "Review the slices." and content[-1]["text"] == "Findings?"
    slices = content[1:-1]
    assert [p["type"] for p in slices] == ["image_url", "text"] * 12
    assert [p["text"] for p in slices[1::2]] == [f"SLICE {k}" for k in range(1, 13)]
    red = [int(np.asarray(img)[..., 0].mean().round()) for img in images_of(slices, fmt)]
    hand = [int(recipes.window(np.array(flat_hu(k)), -1024, 1024)) for k in range(12)]
    # In order along the slice normal, each slice its own wide-window value: exact in BMP (uncompressed), within
    # JPEG's colour conversion (+-2) in JPEG.
    assert red == sorted(red) and (red == hand if fmt == "bmp" else close(red, hand))
    assert all(img.size == (64, 64) and img.mode == "RGB" for img in images_of(slices, fmt))


async def test_slices_are_shrunk_to_the_model_size_and_sampled_to_max_slices(volume_gateway, script):
    gw = await volume_gateway(model_input_size=224)
    series = ct_series(300, 256, shuffle=True)
    resp = await gw.post(CHAT, json=body(volume_part(series.objects, slice_labels=False)), headers=ACK)
    assert resp.status == 200
    images = images_of(forwarded(script))
    assert len(images) == 85 and all(img.size == (224, 224) for img in images)
    assert len(forwarded(script)) == 85 + 2  # no labels asked for


async def test_the_client_may_ask_for_fewer_slices(volume_gateway, script):
    gw = await volume_gateway()
    series = ct_series(40, 32, flat=True)
    resp = await gw.post(CHAT, json=body(volume_part(series.objects, max_slices=8)), headers=ACK)
    assert resp.status == 200
    red = [int(np.asarray(img)[..., 0].mean().round()) for img in images_of(forwarded(script))]
    picked = [round(i / 8 * 39) for i in range(1, 9)]  # the sampling formula, by hand
    assert close(red, [int(recipes.window(np.array(flat_hu(k)), -1024, 1024)) for k in picked])


async def test_gantry_tilt_and_oblique_stacks_are_ordered_along_their_normal(volume_gateway, script):
    gw = await volume_gateway()
    for series in (ct_series(10, 32, flat=True, tilt_deg=20), ct_series(10, 32, flat=True, oblique=True)):
        assert (await gw.post(CHAT, json=body(volume_part(series.objects)), headers=ACK)).status == 200
        red = [int(np.asarray(img)[..., 0].mean().round()) for img in images_of(forwarded(script))]
        assert red == sorted(red) and len(set(red)) == 10


async def test_an_mr_series_is_normalised_over_the_whole_series(volume_gateway, script):
    gw = await volume_gateway()
    series = mr_series(6, 32, flat=True)  # slice k holds 100 + 10 k
    assert (await gw.post(CHAT, json=body(volume_part(series.objects)), headers=ACK)).status == 200
    gray = [int(np.asarray(img)[..., 0].mean().round()) for img in images_of(forwarded(script))]
    assert close(gray, [round(10 * k / 50 * 255) for k in range(6)])  # 0..255 over the series, not per slice


@pytest.mark.parametrize("syntax", [None, RLELossless])
async def test_one_enhanced_multi_frame_object_is_a_volume(volume_gateway, script, syntax):
    gw = await volume_gateway()
    obj, _depth = enhanced(16, 48, syntax=syntax) if syntax else enhanced(16, 48)
    assert (await gw.post(CHAT, json=body(volume_part([obj])), headers=ACK)).status == 200
    images = images_of(forwarded(script))
    assert len(images) == 16 and all(img.size == (48, 48) for img in images)
    # The frames were stored shuffled; the lungs of the phantom grow towards the head, so after ordering the
    # dark (lung) area grows slice by slice overall.
    dark = [int((np.asarray(img)[..., 0] < 40).sum()) for img in images]
    assert dark[-1] > dark[0]


async def test_the_image_url_spelling_takes_a_multi_frame_object_or_more_objects(volume_gateway, script):
    gw = await volume_gateway()
    obj, _ = enhanced(5, 32, modality="MR")
    part = {"type": "image_url", "image_url": {"url": data_url(obj), "volume": {}}}
    resp = await gw.post(CHAT, json=body(part), headers=ACK)
    assert resp.status == 200 and len(images_of(forwarded(script))) == 5
    series = ct_series(4, 32, flat=True)
    urls = [data_url(o) for o in series.objects]
    part = {"type": "image_url", "image_url": {"url": urls[0], "volume": {"dicom_source": urls[1:]}}}
    assert (await gw.post(CHAT, json=body(part), headers=ACK)).status == 200
    assert len(images_of(forwarded(script))) == 4


async def test_pydicoms_own_ct_and_mr_files_make_volumes_in_several_transfer_syntaxes(volume_gateway, script):
    gw = await volume_gateway()
    for name in ("CT_small.dcm", "MR_small.dcm", "MR_small_RLE.dcm", "MR_small_jpeg_ls_lossless.dcm"):
        objects = stack_of(get_testdata_file(name), 3)
        resp = await gw.post(CHAT, json=body(volume_part(objects)), headers=ACK)
        assert resp.status == 200, (name, await resp.text())
        assert len(images_of(forwarded(script))) == 3


def stack_of(path, count) -> list[bytes]:
    """Copies of one bundled slice moved along its normal: a small series of real vendor headers."""
    objects = []
    for k in range(count):
        ds = dcmread(path)
        x, y, z = (float(v) for v in ds.ImagePositionPatient)
        ds.ImagePositionPatient = [x, y, z + 5.0 * k]
        buf = io.BytesIO()
        ds.save_as(buf)
        objects.append(buf.getvalue())
    return objects[::-1]


async def test_several_volumes_and_plain_images_keep_their_places(volume_gateway, script):
    gw = await volume_gateway()
    a, b = ct_series(3, 32, flat=True), mr_series(2, 32, flat=True)
    png = io.BytesIO()
    Image.new("RGB", (20, 20), (10, 200, 30)).save(png, format="PNG")
    plain = {"type": "image_url", "image_url": {"url": data_url(png.getvalue(), "image/png")}}
    resp = await gw.post(CHAT, json=body(volume_part(a.objects), plain, volume_part(b.objects)), headers=ACK)
    assert resp.status == 200
    kinds = [p["type"] if p["type"] == "image_url" else p["text"] for p in forwarded(script)]
    assert kinds == [
        "Review the slices.",
        *["image_url", "SLICE 1", "image_url", "SLICE 2", "image_url", "SLICE 3"],
        "image_url",
        *["image_url", "SLICE 1", "image_url", "SLICE 2"],
        "Findings?",
    ]


def other_series_object() -> bytes:
    return ct_series(1, 32, flat=True).objects[0]


@pytest.mark.parametrize(
    ("objects", "code", "names"),
    [
        (lambda: [*ct_series(3, 32, flat=True).objects, other_series_object()], "invalid_series", "series"),
        (
            lambda: (
                [
                    *ct_series(3, 32, flat=True, series_uid="1.2.3").objects,
                    *ct_series(2, 32, flat=True, tilt_deg=30, series_uid="1.2.3").objects[:1],
                ]
            ),
            "invalid_series",
            "Orientation",
        ),
        (
            lambda: [
                *ct_series(2, 32, series_uid="1.2.3").objects,
                *ct_series(2, 48, series_uid="1.2.3").objects,
            ],
            "invalid_series",
            "size",
        ),
        (
            lambda: [*ct_series(2, 32, flat=True, shuffle=False).objects] * 2,
            "invalid_series",
            "same position",
        ),
        (lambda: [*ct_series(2, 32).objects, *mr_series(2, 32).objects], "invalid_series", "modalities"),
    ],
)
async def test_bad_series_are_refused_with_a_400_naming_the_problem(
    volume_gateway, script, objects, code, names
):
    gw = await volume_gateway()
    resp = await gw.post(CHAT, json=body(volume_part(objects())), headers=ACK)
    assert resp.status == 400
    error = await error_of(resp)
    assert error["code"] == code and names in error["message"] and error["param"] == "messages[0].content[1]"
    assert not script.seen  # nothing reached the engine
    assert (await gw.post(CHAT, json=body(volume_part(ct_series(2, 32).objects)), headers=ACK)).status == 200


async def test_a_broken_object_is_named_by_its_index(volume_gateway, script):
    gw = await volume_gateway()
    objects = ct_series(4, 32).objects
    objects[2] = objects[2][:400]
    resp = await gw.post(CHAT, json=body(volume_part(objects)), headers=ACK)
    error = await error_of(resp)
    assert resp.status == 400 and error["param"] == "messages[0].content[1].image_dicom.dicom_source[2]"
    assert error["code"] in ("invalid_dicom", "dicom_no_pixel_data")


async def test_radiographs_keep_the_single_image_path(volume_gateway, script):
    gw = await volume_gateway()
    ds = dcmread(get_testdata_file("CT_small.dcm"))
    ds.Modality = "CR"
    buf = io.BytesIO()
    ds.save_as(buf)
    resp = await gw.post(CHAT, json=body(volume_part([buf.getvalue()])), headers=ACK)
    assert resp.status == 400 and (await error_of(resp))["code"] == "unsupported_modality"
    plain = {"type": "image_url", "image_url": {"url": data_url(buf.getvalue())}}
    assert (await gw.post(CHAT, json=body(plain), headers=ACK)).status == 200
    assert len(images_of(forwarded(script))) == 1


@pytest.mark.parametrize(
    ("settings", "options", "extra", "code"),
    [
        ({"max_images": 10}, {}, {}, "too_many_images"),  # 12 slices past limit-mm-per-prompt
        ({}, {"max_slices": 86}, {}, "too_many_images"),  # past the profile's 85
        ({"context_len": 67 * 12, "tokens_per_image": 67}, {}, {}, "context_budget_exceeded"),  # no room left
        ({"volumes": {"max_objects": 5}}, {}, {}, "too_many_objects"),
    ],
)
async def test_over_budget_volumes_are_refused_before_any_decoding(
    volume_gateway, script, settings, options, extra, code
):
    gw = await volume_gateway(**settings)
    resp = await gw.post(
        CHAT, json=body(volume_part(ct_series(12, 32).objects, **options), **extra), headers=ACK
    )
    assert resp.status == 400 and (await error_of(resp))["code"] == code
    assert not script.seen


async def test_a_max_tokens_past_the_context_left_is_the_engines_to_shorten_not_a_refusal(
    volume_gateway, script
):
    gw = await volume_gateway(context_len=67 * 12 + 100, tokens_per_image=67)
    resp = await gw.post(
        CHAT, json=body(volume_part(ct_series(12, 32).objects), max_tokens=2000), headers=ACK
    )
    assert resp.status == 200 and len(script.seen) == 1


async def test_a_multi_frame_object_past_the_image_limit_is_refused_once_its_header_is_read(
    volume_gateway, script
):
    gw = await volume_gateway(max_images=6)
    obj, _ = enhanced(12, 32)
    resp = await gw.post(CHAT, json=body(volume_part([obj])), headers=ACK)
    error = await error_of(resp)
    assert resp.status == 400 and error["code"] == "too_many_images" and "'max_slices': 6" in error["message"]
    assert (await gw.post(CHAT, json=body(volume_part([obj], max_slices=6)), headers=ACK)).status == 200


async def test_dicomweb_sources_are_refused_until_a_server_is_configured(volume_gateway, script):
    gw = await volume_gateway()
    part = {
        "type": "image_dicom",
        "image_dicom": {"dicom_source": ["https://pacs.example/dicom-web/studies/1"]},
    }
    resp = await gw.post(CHAT, json=body(part), headers=ACK)
    assert resp.status == 400 and (await error_of(resp))["code"] == "dicomweb_not_configured"


@pytest.mark.parametrize(
    ("spec", "param"),
    [
        ({"dicom_source": []}, "messages[0].content[1].image_dicom.dicom_source"),
        (
            {"dicom_source": ["data:image/png;base64,AAAA"]},
            "messages[0].content[1].image_dicom.dicom_source[0]",
        ),
        ({"dicom_source": ["x"], "slices": 3}, "messages[0].content[1].image_dicom.slices"),
        ({"dicom_source": ["data:application/dicom;base64,AAAA"], "max_slices": 0}, None),
    ],
)
async def test_malformed_volume_parts_are_invalid_volume(volume_gateway, script, spec, param):
    gw = await volume_gateway()
    resp = await gw.post(CHAT, json=body({"type": "image_dicom", "image_dicom": spec}), headers=ACK)
    error = await error_of(resp)
    assert resp.status == 400 and error["code"] == "invalid_volume"
    assert param is None or error["param"] == param


async def test_only_a_request_with_a_volume_may_exceed_max_body_bytes(volume_gateway, script):
    gw = await volume_gateway(max_body_bytes=1 << 20)
    series = ct_series(8, 128)  # ~260 kB of DICOM a slice
    assert (await gw.post(CHAT, json=body(volume_part(series.objects)), headers=ACK)).status == 200
    big = {"type": "text", "text": "x" * (2 << 20)}
    resp = await gw.post(CHAT, json=body(big), headers=ACK)
    assert resp.status == 413 and (await error_of(resp))["code"] == "request_too_large"


async def test_patient_attributes_of_a_series_reach_neither_the_engine_nor_the_logs(
    volume_gateway, script, caplog, access_log
):
    caplog.set_level(logging.DEBUG)
    gw = await volume_gateway()
    objects = []
    for raw in ct_series(3, 32).objects:
        ds = dcmread(io.BytesIO(raw))
        ds.PatientName, ds.PatientID = "CANARY^VOLUME^5E1D", "CANARY-VOL-77"
        buf = io.BytesIO()
        ds.save_as(buf)
        objects.append(buf.getvalue())
    ok = await gw.post(CHAT, json=body(volume_part(objects)), headers=ACK)
    broken = await gw.post(CHAT, json=body(volume_part([*objects[:2], objects[2][:-500]])), headers=ACK)
    assert ok.status == 200 and broken.status == 400
    seen = json.dumps(script.seen) + caplog.text + json.dumps(access_log.lines()) + await broken.text()
    assert "CANARY" not in seen
    assert all(
        b"CANARY" not in base64.b64decode(p["image_url"]["url"].partition(",")[2])
        for p in forwarded(script)
        if p["type"] == "image_url"
    )


async def test_the_gateway_wide_job_cap_refuses_a_volume_with_429(volume_gateway, script):
    gw = await volume_gateway(max_pending_jobs=5)
    resp = await gw.post(CHAT, json=body(volume_part(ct_series(12, 32).objects)), headers=ACK)
    assert resp.status == 429 and (await error_of(resp))["code"] == "too_many_image_jobs"
    assert resp.headers["Retry-After"]
    assert (await gw.post(CHAT, json=body(volume_part(ct_series(4, 32).objects)), headers=ACK)).status == 200


def slow_pid(settings) -> int:
    """A job that holds its worker a moment (run in a worker: pickled by name), so the next goes to the other."""
    time.sleep(0.2)
    return os.getpid()


async def test_volume_jobs_spread_over_the_workers_and_stop_with_their_request(tmp_path):
    pool = ImagePool(ImageSettings(workers=2))
    await pool.start()
    try:
        assert len(set(await on_pool(pool, slow_pid, [()] * 8, "w"))) == 2  # both workers took jobs
        marker = tmp_path / "worker.pid"
        job = asyncio.ensure_future(on_pool(pool, scripted, [("x", f"sleep:{marker}", None)] * 2, "w"))
        async with asyncio.timeout(60):
            while not marker.exists() or not marker.read_text():
                await asyncio.sleep(0.05)
        hung = int(marker.read_text())
        job.cancel()  # what a client that goes away does to its request
        with contextlib.suppress(asyncio.CancelledError):
            await job
        async with asyncio.timeout(60):
            while psutil.pid_exists(hung) and psutil.Process(hung).status() != psutil.STATUS_ZOMBIE:
                await asyncio.sleep(0.05)
        assert pool.pending == 0
    finally:
        await pool.close()


async def test_a_completion_past_the_body_limit_is_a_413_whatever_else_it_says(volume_gateway):
    """Only a chat request with a volume part may exceed max_body_bytes; the size is checked before the model."""
    gw = await volume_gateway(max_body_bytes=4096)
    resp = await gw.post("/v1/completions", json={"model": "x" * 8192, "prompt": "hi"}, headers=ACK)
    assert resp.status == 413 and (await error_of(resp))["code"] == "request_too_large"
