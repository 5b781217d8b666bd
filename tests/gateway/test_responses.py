"""Tier 1: POST /v1/responses through the gateway (admission, rewrite, images, disclaimer on answers and streams),
and the routes of stored responses refused; the openai SDK parses what comes back."""

from __future__ import annotations

import base64
import io
import json

import pytest
from openai import AsyncOpenAI, BadRequestError, NotFoundError
from PIL import Image

from serve import terms
from testkit.dicom_factory import data_url as dicom_url
from testkit.dicom_factory import dicom, radiograph16
from tests.conftest import ACK, MODEL

ROUTE = "/v1/responses"
SUFFIX = "\n\n" + terms.DISCLAIMER
TEXT = "".join(f"tok{i} " for i in range(8))  # the fake engine's answer
SCHEMA = {"type": "json_schema", "name": "finding", "schema": {"type": "object"}}
TOOLS = [{"type": "function", "name": "get_labs", "parameters": {"type": "object"}}]


def body(**extra):
    return {"model": MODEL, "input": "What is a pneumothorax?", **extra}


@pytest.fixture
async def sdk(gateway):
    """The openai SDK on the gateway, closed after the test (its pool must not outlive the event loop)."""
    client = AsyncOpenAI(
        base_url=str(gateway.make_url("/v1")), api_key="local", default_headers=ACK, max_retries=0
    )
    async with client:
        yield client


def events(raw: str) -> list[dict]:
    """The stream's events: each `event:` line must name its data's type."""
    out = []
    for frame in raw.strip().split("\n\n"):
        head, _, data = frame.partition("\ndata: ")
        event = json.loads(data)
        assert head == f"event: {event['type']}"
        out.append(event)
    return out


def png_url(w: int = 32, h: int = 32) -> str:
    buf = io.BytesIO()
    Image.new("RGB", (w, h), (40, 40, 40)).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


async def test_responses_without_ack_is_refused(gateway, script):
    resp = await gateway.post(ROUTE, json=body())
    assert resp.status == 403
    assert (await resp.json())["error"]["code"] == "terms_not_acknowledged"
    assert script.seen == []


async def test_the_sdk_gets_the_answer_with_the_disclaimer_appended_and_attached(gateway, sdk):
    raw = await sdk.responses.with_raw_response.create(model=MODEL, input="What is a pneumothorax?")
    answer = raw.parse()
    assert answer.output_text == TEXT + SUFFIX
    assert answer.model_extra["disclaimer"] == terms.DISCLAIMER
    assert raw.headers["x-disclaimer"] == terms.DISCLAIMER


async def test_disclaimer_opens_instructions_before_the_clients_own_and_store_is_off(gateway, script):
    resp = await gateway.post(ROUTE, json=body(instructions="Be brief.", store=True), headers=ACK)
    assert resp.status == 200
    sent = script.seen[-1]
    assert sent["instructions"] == terms.DISCLAIMER + "\n\nBe brief."
    assert sent["store"] is False and sent["input"] == "What is a pneumothorax?"


async def test_a_leading_developer_message_joins_the_instructions(gateway, script):
    items = [
        {"role": "developer", "content": [{"type": "input_text", "text": "Answer as a radiologist."}]},
        {"role": "user", "content": "Findings?"},
    ]
    assert (
        await gateway.post(ROUTE, json=body(input=items, instructions="Be brief."), headers=ACK)
    ).status == 200
    sent = script.seen[-1]
    assert sent["instructions"] == terms.DISCLAIMER + "\n\nBe brief.\n\nAnswer as a radiologist."
    assert sent["input"] == [{"role": "user", "content": "Findings?"}]


@pytest.mark.parametrize(
    ("extra", "param", "code"),
    [
        ({"previous_response_id": "resp_123"}, "previous_response_id", "previous_response_not_supported"),
        ({"conversation": "conv_123"}, "conversation", "conversation_not_supported"),
        ({"background": True}, "background", "background_not_supported"),
        ({"input": [{"type": "item_reference", "id": "msg_1"}]}, "input[0]", "item_reference_not_supported"),
    ],
)
async def test_what_needs_stored_responses_is_refused(gateway, script, extra, param, code):
    resp = await gateway.post(ROUTE, json=body(**extra), headers=ACK)
    assert resp.status == 400
    error = (await resp.json())["error"]
    assert (error["code"], error["param"], error["type"]) == (code, param, "invalid_request_error")
    assert "store" in error["message"]
    assert script.seen == []


async def test_the_sdk_raises_bad_request_for_previous_response_id(gateway, sdk):
    with pytest.raises(BadRequestError, match="previous_response_id"):
        await sdk.responses.create(model=MODEL, input="hi", previous_response_id="resp_1")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/responses/resp_1"),
        ("DELETE", "/v1/responses/resp_1"),
        ("POST", "/v1/responses/resp_1/cancel"),
        ("GET", "/v1/responses/resp_1/input_items"),
    ],
)
async def test_stored_response_routes_are_refused_with_an_envelope(gateway, script, method, path):
    assert (await gateway.request(method, path)).status == 403  # admitted as every model route first
    resp = await gateway.request(method, path, headers=ACK)
    assert resp.status == 404
    error = (await resp.json())["error"]
    assert error["code"] == "response_not_stored" and "store=false" in error["message"]
    assert script.seen == []


async def test_the_sdk_raises_not_found_for_retrieve(gateway, sdk):
    with pytest.raises(NotFoundError, match="keeps no responses"):
        await sdk.responses.retrieve("resp_1")


async def test_a_json_format_answer_is_byte_identical_with_the_disclaimer_beside_it(gateway, script):
    answer = await (await gateway.post(ROUTE, json=body(text={"format": SCHEMA}), headers=ACK)).json()
    assert answer["output"][0]["content"][0]["text"] == TEXT
    assert answer["disclaimer"] == terms.DISCLAIMER


async def test_a_function_call_answer_is_untouched(gateway, sdk):
    answer = await sdk.responses.create(model=MODEL, input="Labs?", tools=TOOLS)
    assert [item.type for item in answer.output] == ["function_call"]
    assert answer.output[0].arguments == '{"test":"potassium"}'
    assert answer.model_extra["disclaimer"] == terms.DISCLAIMER


async def test_an_answer_without_text_gets_a_message_holding_the_disclaimer(gateway, script, sdk):
    script.chunks = 0
    answer = await sdk.responses.create(model=MODEL, input="hi")
    assert answer.output_text == SUFFIX


async def test_stream_disclaimer_delta_comes_before_text_done_and_completed(gateway):
    resp = await gateway.post(ROUTE, json=body(stream=True), headers=ACK)
    assert resp.headers["X-Disclaimer"] == terms.DISCLAIMER
    got = events(await resp.text())
    kinds = [e["type"] for e in got]
    ours = kinds.index("response.output_text.done") - 1
    assert got[ours] == {**got[ours - 1], "delta": SUFFIX, "sequence_number": ours}
    assert kinds[-1] == "response.completed" and kinds.count("response.output_text.delta") == 9
    assert [e["sequence_number"] for e in got] == list(range(len(got)))  # renumbered after our event
    deltas = "".join(e["delta"] for e in got if e["type"] == "response.output_text.delta")
    assert deltas == TEXT + SUFFIX == got[ours + 1]["text"]
    assert got[ours + 2]["part"]["text"] == deltas and got[ours + 3]["item"]["content"][0]["text"] == deltas
    final = got[-1]["response"]
    assert final["output"][0]["content"][0]["text"] == deltas and final["disclaimer"] == terms.DISCLAIMER
    assert got[0]["response"]["disclaimer"] == terms.DISCLAIMER  # response.created: before any output


async def test_the_sdk_stream_helper_accumulates_the_final_text(gateway, sdk):
    async with sdk.responses.stream(model=MODEL, input="hi") as stream:
        deltas = [e.delta async for e in stream if e.type == "response.output_text.delta"]
        final = await stream.get_final_response()
    assert "".join(deltas) == final.output_text == TEXT + SUFFIX
    assert final.model_extra["disclaimer"] == terms.DISCLAIMER


async def test_a_stream_without_text_gets_a_disclaimer_message_the_sdk_accepts(gateway, script, sdk):
    script.chunks = 0
    async with sdk.responses.stream(model=MODEL, input="hi") as stream:
        kinds = [e.type async for e in stream]
        final = await stream.get_final_response()
    assert final.output_text == SUFFIX
    assert kinds.index("response.output_text.delta") < kinds.index("response.completed") == len(kinds) - 1


async def test_a_json_format_stream_passes_untouched_but_for_the_disclaimer_field(gateway, script):
    resp = await gateway.post(ROUTE, json=body(stream=True, text={"format": SCHEMA}), headers=ACK)
    got = events(await resp.text())
    assert "".join(e["delta"] for e in got if e["type"] == "response.output_text.delta") == TEXT
    assert got[-1]["response"]["output"][0]["content"][0]["text"] == TEXT
    assert got[-1]["response"]["disclaimer"] == terms.DISCLAIMER


async def test_a_function_call_stream_gets_no_text(gateway, sdk):
    async with sdk.responses.stream(model=MODEL, input="Labs?", tools=TOOLS) as stream:
        kinds = [e.type async for e in stream]
        final = await stream.get_final_response()
    assert "response.output_text.delta" not in kinds and final.output_text == ""
    assert final.model_extra["disclaimer"] == terms.DISCLAIMER


async def test_a_stream_cut_by_the_engine_ends_with_an_in_band_error(gateway, script):
    script.die_after = 4
    resp = await gateway.post(ROUTE, json=body(stream=True), headers=ACK)
    text = await resp.text()
    assert resp.status == 200 and '"response.completed"' not in text
    assert '"code":"engine_error"' in text and text.endswith("data: [DONE]\n\n")


async def test_engine_errors_pass_through(gateway, script):
    script.status = 400
    resp = await gateway.post(ROUTE, json=body(), headers=ACK)
    assert resp.status == 400 and (await resp.json())["error"]["message"] == "scripted engine error"


async def test_an_input_image_is_checked_and_forwarded_as_chat_images_are(make_gateway, script):
    gw = await make_gateway(images={"model_input_size": 224})
    dcm = dicom_url(dicom(radiograph16(512), bits_stored=12))
    parts = [
        {"type": "input_image", "image_url": dcm, "frame": 0},
        {"type": "input_text", "text": "Findings?"},
    ]
    resp = await gw.post(ROUTE, json=body(input=[{"role": "user", "content": parts}]), headers=ACK)
    assert resp.status == 200
    sent = script.seen[-1]["input"][0]["content"][0]
    assert sent.keys() == {"type", "image_url"} and sent["image_url"].startswith("data:image/jpeg;base64,")
    img = Image.open(io.BytesIO(base64.b64decode(sent["image_url"].partition(",")[2])))
    assert img.size == (224, 224)  # DICOM decoded, windowed and sized for the model, as in chat


async def test_a_png_input_image_reaches_the_engine_unchanged(gateway, script):
    url = png_url()
    items = [{"role": "user", "content": [{"type": "input_image", "image_url": url, "detail": "auto"}]}]
    assert (await gateway.post(ROUTE, json=body(input=items), headers=ACK)).status == 200
    assert script.seen[-1]["input"][0]["content"][0] == {
        "type": "input_image",
        "image_url": url,
        "detail": "auto",
    }


@pytest.mark.parametrize(
    ("part", "code"),
    [
        ({"type": "input_image", "image_url": "data:image/png;base64,!!!"}, "invalid_base64"),
        ({"type": "input_image", "image_url": "https://example.org/cxr.png"}, "remote_image_refused"),
        ({"type": "input_image", "file_id": "file-1"}, "unsupported_content_part"),
        ({"type": "input_file", "file_data": "data:application/pdf;base64,AAAA"}, "unsupported_content_part"),
    ],
)
async def test_bad_image_parts_are_400_envelopes_naming_the_part(gateway, script, part, code):
    items = [{"role": "user", "content": [part, {"type": "input_text", "text": "Findings?"}]}]
    resp = await gateway.post(ROUTE, json=body(input=items), headers=ACK)
    assert resp.status == 400
    error = (await resp.json())["error"]
    assert (error["code"], error["param"]) == (code, "input[0].content[0]")
    assert script.seen == []


async def test_metrics_count_the_route_and_its_tokens(gateway, registry):
    assert (await gateway.post(ROUTE, json=body(), headers=ACK)).status == 200
    assert (await gateway.post(ROUTE, json=body(stream=True), headers=ACK)).status == 200
    labels = {"route": ROUTE, "model": MODEL, "status": "200"}
    assert registry.get_sample_value("medgemma_gateway_requests_total", labels) == 2
    assert registry.get_sample_value("medgemma_gateway_prompt_tokens_total", {"model": MODEL}) == 10
    assert registry.get_sample_value("medgemma_gateway_completion_tokens_total", {"model": MODEL}) == 16
    ttft = registry.get_sample_value(
        "medgemma_gateway_time_to_first_token_seconds_count", {"route": ROUTE, "model": MODEL}
    )
    assert ttft == 1


async def test_a_body_over_the_limit_is_413_as_for_chat(make_gateway, script):
    gw = await make_gateway(max_body_bytes=2000)
    resp = await gw.post(ROUTE, json=body(input="x" * 3000), headers=ACK)
    assert resp.status == 413 and (await resp.json())["error"]["code"] == "request_too_large"
    assert script.seen == []
