"""Tier 3: structured output and tool calls through the gateway on the real engine. The SDK parses them; the
disclaimer travels beside the content (top-level field, header, a final chunk), never inside it."""

import json
from typing import Literal

import pytest
from pydantic import BaseModel

from serve import terms

pytestmark = pytest.mark.engine
QUESTION = [{"role": "user", "content": "Is this chest X-ray normal? Answer in JSON."}]
ORDER = [{"role": "user", "content": "Order a potassium level."}]
TESTS = ["potassium", "sodium", "creatinine"]
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "order_lab",
            "description": "Order a laboratory test.",
            "parameters": {
                "type": "object",
                "properties": {"test": {"type": "string", "enum": TESTS}},
                "required": ["test"],
                "additionalProperties": False,
            },
        },
    }
]
NAMED = {"type": "function", "function": {"name": "order_lab"}}


class Finding(BaseModel):
    # Enums bound the grammar, so random weights finish the JSON (the test profile also disables free whitespace).
    finding: Literal["normal", "abnormal"]
    side: Literal["left", "right", "both", "none"]


def text_after_finish(chunks) -> list[str]:
    """Content that arrived for a choice after its finish_reason (must be none)."""
    finished, late = set(), []
    for chunk in chunks:
        for c in chunk.choices:
            if c.delta.content and c.index in finished:
                late.append(c.delta.content)
            if c.finish_reason:
                finished.add(c.index)
    return late


def test_the_sdk_parses_a_structured_answer_through_the_gateway(stack):
    raw = stack.client().chat.completions.with_raw_response.parse(
        model=stack.model, messages=QUESTION, response_format=Finding, max_tokens=64, temperature=0
    )
    out = raw.parse()
    choice = out.choices[0]
    assert choice.finish_reason == "stop", choice.message.content
    assert isinstance(choice.message.parsed, Finding)
    assert (
        json.loads(choice.message.content) == choice.message.parsed.model_dump()
    )  # pure JSON, nothing added
    assert out.model_extra["disclaimer"] == terms.DISCLAIMER
    assert raw.headers["x-disclaimer"] == terms.DISCLAIMER


def test_a_structured_stream_is_pure_json_and_ends_with_a_disclaimer_only_chunk(stack):
    with stack.client().chat.completions.stream(
        model=stack.model, messages=QUESTION, response_format=Finding, max_tokens=64, temperature=0
    ) as stream:
        chunks = [event.chunk for event in stream if event.type == "chunk"]
        final = stream.get_final_completion()
    assert final.choices[0].finish_reason == "stop"
    assert isinstance(final.choices[0].message.parsed, Finding)
    content = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert json.loads(content) == final.choices[0].message.parsed.model_dump()
    assert not text_after_finish(chunks)
    assert chunks[-1].choices == [] and chunks[-1].model_extra["disclaimer"] == terms.DISCLAIMER
    assert sum("disclaimer" in (c.model_extra or {}) for c in chunks) == 1


def test_a_named_tool_call_arrives_untouched_with_no_text(stack):
    out = stack.client().chat.completions.create(
        model=stack.model, messages=ORDER, tools=TOOLS, tool_choice=NAMED, max_tokens=64, temperature=0
    )
    message = out.choices[0].message
    assert out.choices[0].finish_reason == "stop"  # vLLM's word for a named tool call
    assert [call.function.name for call in message.tool_calls] == ["order_lab"]
    assert json.loads(message.tool_calls[0].function.arguments)["test"] in TESTS
    assert not message.content  # the engine's empty content, never the disclaimer
    assert out.model_extra["disclaimer"] == terms.DISCLAIMER


def test_a_streamed_tool_call_gets_no_text_and_a_disclaimer_only_chunk(stack):
    chunks = list(
        stack.client().chat.completions.create(
            model=stack.model,
            messages=ORDER,
            tools=TOOLS,
            tool_choice=NAMED,
            max_tokens=64,
            temperature=0,
            stream=True,
        )
    )
    calls = [t for c in chunks if c.choices for t in c.choices[0].delta.tool_calls or ()]
    arguments = "".join(t.function.arguments or "" for t in calls if t.function)
    assert json.loads(arguments)["test"] in TESTS
    assert not "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert chunks[-1].choices == [] and chunks[-1].model_extra["disclaimer"] == terms.DISCLAIMER


def test_a_plain_text_stream_gets_the_disclaimer_before_its_finish(stack):
    chunks = list(
        stack.client().chat.completions.create(
            model=stack.model,
            messages=QUESTION,
            max_tokens=16,
            stream=True,
            extra_body={"ignore_eos": True},  # the engine's finish chunk then carries the last token too
        )
    )
    assert not text_after_finish(chunks)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.endswith("\n\n" + terms.DISCLAIMER)
    ends = [c for c in chunks if c.choices and c.choices[0].finish_reason]
    assert len(ends) == 1 and ends[0].choices[0].finish_reason == "length"
    assert chunks[-1].choices == [] and chunks[-1].model_extra["disclaimer"] == terms.DISCLAIMER


def test_a_constrained_completion_keeps_its_text(stack):
    out = stack.client().completions.create(
        model=stack.model,
        prompt="The film is",
        max_tokens=8,
        extra_body={"structured_outputs": {"choice": ["normal", "abnormal"]}},
    )
    assert out.choices[0].text in ("normal", "abnormal")
    assert out.model_extra["disclaimer"] == terms.DISCLAIMER
