"""Which requests ask for machine-readable output (the disclaimer then stays out of the content)."""

import pytest

from serve.gateway.rewrite.request_body import machine_readable, prepare

TOOL = {"type": "function", "function": {"name": "get_labs", "parameters": {"type": "object"}}}
SCHEMA = {"name": "f", "schema": {"type": "object"}}


@pytest.mark.parametrize(
    "fields",
    [
        {"response_format": {"type": "json_object"}},
        {"response_format": {"type": "json_schema", "json_schema": SCHEMA}},
        {"response_format": {"type": "structural_tag", "format": {}}},
        {"structured_outputs": {"json": {"type": "object"}}},
        {"structured_outputs": {"regex": "[0-9]+"}},
        {"structured_outputs": {"choice": ["normal", "abnormal"]}},
        {"structured_outputs": {"grammar": "root ::= 'a'"}},
        {"structured_outputs": {"json_object": True}},
        {"structured_outputs": {"structural_tag": "{}"}},
        {"guided_json": {"type": "object"}},
        {"guided_choice": ["a", "b"]},
        {"tools": [TOOL]},
        {"tools": [TOOL], "tool_choice": "auto"},
        {"tools": [TOOL], "tool_choice": "required"},
        {"tools": [TOOL], "tool_choice": {"type": "function", "function": {"name": "get_labs"}}},
    ],
)
def test_requests_a_program_parses_are_machine_readable(fields):
    assert machine_readable({"model": "m", **fields})


@pytest.mark.parametrize(
    "fields",
    [
        {},
        {"response_format": {"type": "text"}},
        {"response_format": None},
        {"structured_outputs": None},
        {"structured_outputs": {"disable_any_whitespace": True}},  # an option, no constraint
        {"tools": [TOOL], "tool_choice": "none"},
        {"tools": []},
        {"response_format": "json"},  # malformed: vLLM refuses it; here it must not raise
        {"structured_outputs": ["json"]},
    ],
)
def test_plain_text_requests_are_not(fields):
    assert not machine_readable({"model": "m", **fields})


def test_the_flag_travels_to_the_prepared_request():
    raw = b'{"model":"m","prompt":"x","response_format":{"type":"json_object"}}'
    assert prepare(raw, ["m"], "D", chat=False).machine_readable
    assert not prepare(b'{"model":"m","prompt":"x"}', ["m"], "D", chat=False).machine_readable
