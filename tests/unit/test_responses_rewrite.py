"""Tier 1, pure: the /v1/responses request rewrite and the stream relay, piece by piece."""

from __future__ import annotations

import json

import orjson
import pytest

from serve.gateway.errors import GatewayError
from serve.gateway.rewrite import responses_body
from serve.gateway.rewrite.disclaimer import THINKING_INSTRUCTION
from serve.gateway.rewrite.responses_output import attach_to_response
from serve.gateway.rewrite.responses_sse import ResponsesRelay
from testkit.fake_engine import Script
from testkit.fake_responses import response_events, response_object

D = "Not medical advice."
MODEL = "m"


def prepared(body: dict, **kw) -> dict:
    parsed = responses_body.parse(orjson.dumps({"model": MODEL, **body}), [MODEL])
    return orjson.loads(responses_body.finalize(parsed, D, **kw).body)


def test_instructions_start_with_the_disclaimer_and_store_is_forced_off():
    sent = prepared({"input": "hi", "store": True, "instructions": "Be brief."}, cache_salt="s")
    assert sent == {
        "model": MODEL,
        "input": "hi",
        "store": False,
        "instructions": D + "\n\nBe brief.",
        "cache_salt": "s",
    }


def test_a_lone_system_message_becomes_the_instructions_and_media_ids_are_dropped():
    items = [
        {"type": "message", "role": "system", "content": "Radiologist."},
        {"role": "user", "content": [{"type": "input_text", "text": "hi", "uuid": "u1"}]},
    ]
    sent = prepared({"input": items})
    assert sent["instructions"] == D + "\n\nRadiologist."
    assert sent["input"] == [{"role": "user", "content": [{"type": "input_text", "text": "hi"}]}]


def test_thinking_puts_googles_instruction_before_the_disclaimer():
    assert prepared({"input": "hi"}, thinking=True)["instructions"] == THINKING_INSTRUCTION + "\n\n" + D


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"input": []}, "input"),
        ({"input": 3}, "input"),
        ({"input": ["x"]}, "input[0]"),
        ({"input": "x", "instructions": 3}, "instructions"),
        (
            {"input": [{"role": "system", "content": [{"type": "input_image", "image_url": "x"}]}]},
            "input[0].content",
        ),
        ({"input": [{"role": "user", "content": [{"type": "input_audio"}]}]}, "input[0].content[0]"),
        (
            {"input": [{"type": "function_call_output", "output": [{"type": "input_file"}]}]},
            "input[0].output[0]",
        ),
    ],
)
def test_malformed_input_is_a_400_naming_the_place(body, param):
    with pytest.raises(GatewayError) as err:
        responses_body.parse(orjson.dumps({"model": MODEL, **body}), [MODEL])
    assert (err.value.status, err.value.param) == (400, param)


def test_images_in_tool_outputs_are_found_for_checking():
    items = [
        {
            "type": "function_call_output",
            "call_id": "c",
            "output": [{"type": "input_image", "image_url": "u"}],
        }
    ]
    parsed = responses_body.parse(orjson.dumps({"model": MODEL, "input": items}), [MODEL])
    assert [(i.where, i.part) for i in parsed.images] == [
        ("input[0].output[0]", {"type": "image_url", "image_url": {"url": "u"}})
    ]


@pytest.mark.parametrize(
    ("extra", "readable"),
    [
        ({"text": {"format": {"type": "json_object"}}}, True),
        ({"text": {"format": {"type": "text"}}}, False),
        ({"tools": [{"type": "function", "name": "f"}]}, True),
        ({"tools": [{"type": "function", "name": "f"}], "tool_choice": "none"}, False),
        ({"structured_outputs": {"regex": "a+"}}, True),
    ],
)
def test_machine_readable_requests(extra, readable):
    assert responses_body.is_machine_readable({"input": "x", **extra}) is readable


def test_a_whole_answer_gets_the_text_and_the_field():
    answer = attach_to_response(response_object(Script(chunks=2), {"model": MODEL}), D, append=True)
    assert answer["output"][0]["content"][0]["text"] == "tok0 tok1 \n\n" + D and answer["disclaimer"] == D


def run(relay: ResponsesRelay, pieces: list[bytes]) -> bytes:
    out = b"".join(relay.feed(p, float(i)) for i, p in enumerate(pieces))
    return out + relay.close()


def test_a_stream_split_anywhere_gives_the_same_bytes():
    stream = b"".join(response_events(Script(chunks=3), {"model": MODEL}))
    whole = run(ResponsesRelay(D, append=True), [stream])
    assert run(ResponsesRelay(D, append=True), [stream[i : i + 7] for i in range(0, len(stream), 7)]) == whole
    events = [json.loads(f.partition(b"data: ")[2]) for f in whole.strip().split(b"\n\n")]
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    assert events[-1]["response"]["output"][0]["content"][0]["text"] == "tok0 tok1 tok2 \n\n" + D


def test_relay_keeps_usage_and_timing():
    relay = ResponsesRelay(D, append=True)
    run(relay, response_events(Script(chunks=3), {"model": MODEL}))
    assert relay.usage == {"prompt_tokens": 5, "completion_tokens": 3}
    assert relay.first_token_at is not None and len(relay.gaps) == 2


def test_a_stream_without_its_final_event_ends_in_band():
    frames = response_events(Script(chunks=3), {"model": MODEL})
    out = run(ResponsesRelay(D, append=True), frames[:-1])
    assert out.endswith(b"data: [DONE]\n\n") and b'"code":"engine_error"' in out


def test_an_engine_error_event_ends_the_stream_without_another():
    error = (
        b'event: error\ndata: {"type":"error","code":"x","message":"m","param":null,"sequence_number":2}\n\n'
    )
    frames = [*response_events(Script(chunks=3), {"model": MODEL})[:2], error]
    out = run(ResponsesRelay(D, append=True), frames)
    assert out.endswith(error)
