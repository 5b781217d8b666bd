"""Tier 3: MedGemma's thinking split end to end, the project's reasoning parser in the engine and the gateway in front.
The random demo model emits the markers only where the test-only logits processor scripts them (vllm_xargs.script,
tests/engine/conftest.py): <unused94>, "thought\\n", a thought, <unused95>, an answer."""

import json
import re
import subprocess
import sys
import time
import urllib.request
from typing import Literal

import pytest
import yaml
from openai import OpenAI
from pydantic import BaseModel

from serve import terms
from serve.gateway.rewrite.disclaimer import merge_system
from tests.engine.conftest import ACK_HEADERS, ROOT, Proc

pytestmark = pytest.mark.engine
QUESTION = [{"role": "user", "content": "Is this chest X-ray normal?"}]
START, END = 100, 101  # <unused94>, <unused95> in the Gemma 3 tokenizer
THOUGHT = "The lungs are clear."
ANSWER = "No acute findings."
SUFFIX = "\n\n" + terms.DISCLAIMER
WAIT_S = 60


def engine_post(stack, route: str, body: dict) -> dict:
    req = urllib.request.Request(
        stack.engine_url + route, json.dumps(body).encode(), {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=WAIT_S) as resp:
        return json.loads(resp.read())


def token_ids(stack, text: str) -> list[int]:
    """The engine's own tokenizer: the script is what the model would emit for this text."""
    return engine_post(
        stack, "/tokenize", {"model": stack.model, "prompt": text, "add_special_tokens": False}
    )["tokens"]


@pytest.fixture(scope="module")
def label_and_thought(stack) -> list[int]:
    return token_ids(stack, "thought\n" + THOUGHT)


@pytest.fixture(scope="module")
def script(stack, label_and_thought) -> list[int]:
    return [START, *label_and_thought, END, *token_ids(stack, ANSWER)]


def ask(client, model: str, script: list[int] | None = None, **kw):
    extra = {"vllm_xargs": {"script": script}} if script else {}
    budget = len(script) if script else 8  # the scripted answer ends exactly at max_tokens
    return client.chat.completions.create(
        model=model, messages=QUESTION, max_tokens=budget, extra_body=extra, **kw
    )


def reasoning_of(part) -> str | None:
    """vLLM 0.32 names the field `reasoning`; the gateway also sends it as `reasoning_content` (the older name
    many clients read): both must hold the same thought."""
    extra = part.model_extra or {}
    assert extra.get("reasoning_content") == extra.get("reasoning")
    return extra.get("reasoning")


def test_the_thought_comes_back_apart_and_the_disclaimer_goes_to_the_answer_only(
    stack, script, label_and_thought
):
    out = ask(stack.client(), stack.model, script)
    message = out.choices[0].message
    assert reasoning_of(message) == THOUGHT
    assert message.content == ANSWER + SUFFIX
    assert out.usage.completion_tokens_details.reasoning_tokens == len(label_and_thought)


def test_a_stream_sends_the_thought_then_the_answer(stack, script):
    chunks = list(ask(stack.client(), stack.model, script, stream=True))
    deltas = [c.choices[0].delta for c in chunks if c.choices]
    thought = "".join(reasoning_of(d) or "" for d in deltas)
    answer = "".join(d.content or "" for d in deltas)
    assert (thought, answer) == (THOUGHT, ANSWER + SUFFIX)
    first_answer = next(i for i, d in enumerate(deltas) if d.content)
    assert not any(reasoning_of(d) for d in deltas[first_answer:])
    assert "<unused9" not in thought + answer


def test_without_the_marker_there_is_no_reasoning(stack):
    message = ask(stack.client(), stack.model).choices[0].message
    assert reasoning_of(message) is None
    assert message.content.endswith(SUFFIX)


def test_a_marker_after_the_first_token_is_no_thought(stack, script):
    message = ask(stack.client(), stack.model, [*token_ids(stack, "Yes."), *script]).choices[0].message
    assert reasoning_of(message) is None and message.content.startswith("Yes.")


class Finding(BaseModel):
    finding: Literal["normal", "abnormal"]


def test_a_structured_answer_is_constrained_from_its_first_token(stack):
    """With the parser loaded, vLLM applies a grammar only once reasoning is over: the parser says it is over before
    the first token, so the JSON is whole (one free token would break it) and no thought can open."""
    out = stack.client().chat.completions.parse(
        model=stack.model, messages=QUESTION, response_format=Finding, max_tokens=32, temperature=0
    )
    choice = out.choices[0]
    assert choice.finish_reason == "stop" and isinstance(choice.message.parsed, Finding)
    assert reasoning_of(choice.message) is None


def test_a_structured_responses_answer_is_constrained_from_its_first_token(stack):
    """The Responses API reaches the engine without a reasoning decision; the parser's engine side makes the same
    one (straight to the engine: the route is vLLM's whichever gateway is in front)."""
    schema = {"type": "json_schema", "name": "finding", "schema": Finding.model_json_schema(), "strict": True}
    out = stack.engine_client().responses.create(
        model=stack.model, input="Is this chest X-ray normal?", text={"format": schema}, max_output_tokens=32
    )
    assert out.status == "completed", out.output_text
    Finding.model_validate_json(out.output_text)


class thinking_gateway:
    """A second gateway, thinking switched on, in front of the session's engine (port 0, read from its log)."""

    def __init__(self, stack, tmp) -> None:
        raw = yaml.safe_load((ROOT / "configs" / "cpu-demo.yaml").read_text())
        raw["gateway"] = {
            **raw.get("gateway", {}),
            "port": 0,
            "terms": {"database": str(tmp / "acks.sqlite3")},
            "disclaimer": {"thinking": True},
        }
        (tmp / "thinking.yaml").write_text(yaml.safe_dump(raw))
        argv = [
            "-m",
            "serve",
            "gateway",
            "--profile",
            str(tmp / "thinking.yaml"),
            "--upstream",
            stack.engine_url,
        ]
        self.proc = Proc([sys.executable, *argv])

    def __enter__(self) -> str:
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline and self.proc.popen.poll() is None:
            found = [
                re.search(r"gateway listening on (http://[\d.]+:\d+)", line) for line in list(self.proc.log)
            ]
            if any(found):
                return next(f for f in found if f).group(1)
            time.sleep(0.2)
        raise RuntimeError("the thinking gateway did not start:\n" + "\n".join(self.proc.log))

    def __exit__(self, *exc) -> None:
        self.proc.popen.terminate()
        try:
            self.proc.popen.wait(timeout=WAIT_S)
        except subprocess.TimeoutExpired:
            self.proc.popen.kill()


def test_the_switch_opens_the_system_turn_with_googles_instruction(stack, script, tmp_path):
    with thinking_gateway(stack, tmp_path) as url:
        client = OpenAI(
            base_url=url + "/v1", api_key="local", max_retries=0, timeout=120, default_headers=ACK_HEADERS
        )
        out = ask(client, stack.model, script)
    expected = merge_system(QUESTION, terms.DISCLAIMER, thinking=True)
    rendered = engine_post(stack, "/tokenize", {"model": stack.model, "messages": expected})
    plain = engine_post(
        stack, "/tokenize", {"model": stack.model, "messages": merge_system(QUESTION, terms.DISCLAIMER)}
    )
    assert out.usage.prompt_tokens == rendered["count"] > plain["count"]  # exactly what merge_system builds
    assert reasoning_of(out.choices[0].message) == THOUGHT
    assert out.choices[0].message.content == ANSWER + SUFFIX
