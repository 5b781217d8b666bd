"""The thought reaches clients under vLLM 0.32's `reasoning` and the `reasoning_content` name clients also read."""

import json

from serve.gateway.rewrite.answers import Choices
from serve.gateway.rewrite.request_body import prepare
from serve.gateway.rewrite.sse import StreamRewriter

D = "Verify independently."


def frame(delta, finish=None) -> bytes:
    body = {
        "id": "c1",
        "object": "chat.completion.chunk",
        "created": 7,
        "model": "m",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return b"data: " + json.dumps(body, separators=(",", ":")).encode() + b"\n\n"


def deltas(out: bytes) -> list[dict]:
    chunks = [json.loads(f[6:]) for f in out.split(b"\n\n") if f.startswith(b"data: {")]
    return [c["choices"][0]["delta"] for c in chunks if c["choices"]]


def test_stream_reasoning_deltas_carry_both_names_and_content_stays_apart():
    rw = StreamRewriter(chat=True, disclaimer=D, append=True, strip_usage=False)
    out = b"".join(
        rw.feed(f, float(i))
        for i, f in enumerate(
            [
                frame({"role": "assistant", "content": ""}),
                frame({"reasoning": "look at the "}),
                frame({"reasoning": "lungs"}),
                frame({"content": "Clear."}),
                frame({"content": ""}, finish="stop"),
                b"data: [DONE]\n\n",
            ]
        )
    )
    got = deltas(out)
    thoughts = [d for d in got if "reasoning" in d]
    assert [d["reasoning"] for d in thoughts] == ["look at the ", "lungs"]
    assert all(d["reasoning_content"] == d["reasoning"] for d in thoughts)
    content = "".join(d.get("content") or "" for d in got)
    assert content == "Clear.\n\n" + D  # the disclaimer goes to the answer, never into the thought
    assert rw.first_token_at == 1.0  # the first thought token is the first token


def test_whole_answers_carry_both_names():
    answer = {
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "reasoning": "look", "content": "Clear."},
                "finish_reason": "stop",
            }
        ]
    }
    prep = prepare(
        json.dumps({"model": "m", "messages": [{"role": "user", "content": "hi"}]}).encode(),
        ["m"],
        D,
        chat=True,
    )
    Choices(chat=True, disclaimer=D, append=True).attach(answer, prep)
    message = answer["choices"][0]["message"]
    assert message["reasoning"] == message["reasoning_content"] == "look"
    assert message["content"] == "Clear.\n\n" + D


def test_a_literal_reasoning_key_inside_content_is_relayed_untouched():
    rw = StreamRewriter(chat=True, disclaimer=D, append=True, strip_usage=False)
    rw.feed(frame({"role": "assistant", "content": ""}), 0.0)
    token = frame({"content": '{"reasoning":"x"}'})
    assert rw.feed(token, 1.0) == token
