"""The gateway's thinking switch: Google's instruction opens the one system turn, then the disclaimer, then the
client's own system text."""

import orjson

from serve.config import load_config
from serve.gateway.rewrite.disclaimer import THINKING_INSTRUCTION, merge_system
from serve.gateway.rewrite.request_body import finalize, parse
from tests.unit.test_command import CONFIGS

DISCLAIMER = "Not medical advice."
USER = {"role": "user", "content": "Findings?"}


def system_of(messages):
    assert sum(m["role"] == "system" for m in messages) == 1 and messages[0]["role"] == "system"
    return messages[0]["content"]


def test_thinking_puts_the_instruction_first_then_the_disclaimer_then_the_clients_text():
    own = {"role": "system", "content": "You are an expert radiologist."}
    merged = merge_system([own, USER], DISCLAIMER, thinking=True)
    assert system_of(merged) == f"{THINKING_INSTRUCTION}\n\n{DISCLAIMER}\n\nYou are an expert radiologist."
    assert merged[1:] == [USER]


def test_thinking_without_a_client_system_message():
    assert (
        system_of(merge_system([USER], DISCLAIMER, thinking=True))
        == f"{THINKING_INSTRUCTION}\n\n{DISCLAIMER}"
    )


def test_without_thinking_the_system_turn_is_unchanged():
    own = {"role": "developer", "content": [{"type": "text", "text": "Be brief."}]}
    assert system_of(merge_system([own, USER], DISCLAIMER)) == f"{DISCLAIMER}\n\nBe brief."
    assert THINKING_INSTRUCTION not in system_of(merge_system([USER], DISCLAIMER))


def test_a_client_that_writes_the_instruction_as_googles_notebooks_do_gets_it_first_once():
    own = {"role": "system", "content": f"{THINKING_INSTRUCTION} You are an expert radiologist."}
    expected = f"{THINKING_INSTRUCTION}\n\n{DISCLAIMER}\n\nYou are an expert radiologist."
    for thinking in (False, True):
        assert system_of(merge_system([own, USER], DISCLAIMER, thinking=thinking)) == expected


def test_finalize_sends_the_switched_system_turn_to_the_engine():
    raw = orjson.dumps({"model": "m", "messages": [USER]})
    body = orjson.loads(finalize(parse(raw, ["m"], chat=True), DISCLAIMER, chat=True, thinking=True).body)
    assert body["messages"][0]["content"].startswith(THINKING_INSTRUCTION + "\n\n" + DISCLAIMER)


def test_the_switch_is_off_by_default_and_set_in_the_profile():
    assert load_config(CONFIGS / "cpu-demo.yaml").gateway.disclaimer.thinking is False
    on = load_config(CONFIGS / "cpu-demo.yaml", {"gateway": {"disclaimer": {"thinking": True}}})
    assert on.gateway.disclaimer.thinking is True
