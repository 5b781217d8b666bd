"""The disclaimer rewrites, as pure functions."""

import orjson

from serve.gateway.rewrite import disclaimer as disc

D = "Not for clinical use."


def test_disclaimer_becomes_the_only_system_turn_when_client_sends_none():
    msgs = [{"role": "user", "content": "hi"}]
    assert disc.merge_system(msgs, D) == [{"role": "system", "content": D}, {"role": "user", "content": "hi"}]


def test_disclaimer_is_prepended_to_the_clients_system_message():
    msgs = [{"role": "system", "content": "You are a radiologist."}, {"role": "user", "content": "hi"}]
    merged = disc.merge_system(msgs, D)
    assert [m["role"] for m in merged] == ["system", "user"]
    assert merged[0]["content"] == D + "\n\nYou are a radiologist."


def test_system_text_parts_are_folded_into_one_string_the_template_reads_whole():
    parts = [{"type": "text", "text": "A"}, {"type": "text", "text": "B"}]
    merged = disc.merge_system([{"role": "system", "content": parts}, {"role": "user", "content": "q"}], D)
    assert merged[0]["content"] == D + "\n\nA\n\nB"


def test_developer_role_is_treated_as_the_system_turn():
    merged = disc.merge_system(
        [{"role": "developer", "content": "be brief"}, {"role": "user", "content": "q"}], D
    )
    assert merged[0] == {"role": "system", "content": D + "\n\nbe brief"}
    assert len(merged) == 2


def test_alternation_of_later_turns_is_kept():
    msgs = [
        {"role": "user", "content": "a"},
        {"role": "assistant", "content": "b"},
        {
            "role": "user",
            "content": [{"type": "text", "text": "c"}, {"type": "image_url", "image_url": {"url": "x"}}],
        },
    ]
    merged = disc.merge_system(msgs, D)
    assert merged[1:] == msgs
    assert sum(m["role"] == "system" for m in merged) == 1


def test_prefix_is_byte_stable_across_requests():
    a = disc.merge_system([{"role": "system", "content": "X"}, {"role": "user", "content": "1"}], D)
    b = disc.merge_system([{"role": "user", "content": "2"}], D)
    assert a[0]["content"].startswith(D) and b[0]["content"] == D


def test_client_messages_are_not_mutated():
    msgs = [{"role": "system", "content": "X"}, {"role": "user", "content": "1"}]
    disc.merge_system(msgs, D)
    assert msgs[0]["content"] == "X"


def test_json_answer_gets_field_and_appended_text():
    body = {"choices": [{"message": {"role": "assistant", "content": "answer"}}]}
    out = disc.attach_to_json(body, D, append=True)
    assert out["disclaimer"] == D
    assert out["choices"][0]["message"]["content"] == "answer\n\n" + D


def test_completion_text_gets_appended_and_append_off_keeps_output():
    assert (
        disc.attach_to_json({"choices": [{"text": "t"}]}, D, append=True)["choices"][0]["text"] == "t\n\n" + D
    )
    body = disc.attach_to_json({"choices": [{"text": "t"}]}, D, append=False)
    assert body["choices"][0]["text"] == "t" and body["disclaimer"] == D


def test_a_machine_readable_answer_keeps_its_content_byte_for_byte():
    content = '{"finding":"normal"}'
    body = {"choices": [{"message": {"role": "assistant", "content": content}, "finish_reason": "stop"}]}
    out = disc.attach_to_json(body, D, append=True, machine_readable=True)
    assert out["choices"][0]["message"]["content"] == content and out["disclaimer"] == D
    text = disc.attach_to_json({"choices": [{"text": "[1, 2]"}]}, D, append=True, machine_readable=True)
    assert text["choices"][0]["text"] == "[1, 2]"


def test_a_tool_call_choice_is_never_touched_whatever_the_request():
    call = {"id": "c", "type": "function", "function": {"name": "f", "arguments": '{"a":1}'}}
    named = {"message": {"role": "assistant", "content": None, "tool_calls": [call]}, "finish_reason": "stop"}
    auto = {
        "message": {"role": "assistant", "content": "", "tool_calls": [call]},
        "finish_reason": "tool_calls",
    }
    plain = {"message": {"role": "assistant", "content": "text"}, "finish_reason": "stop"}
    out = disc.attach_to_json({"choices": [named, auto, plain]}, D, append=True)
    assert [c["message"]["content"] for c in out["choices"]] == [None, "", "text\n\n" + D]
    assert out["choices"][0]["message"]["tool_calls"] == [call]


def test_the_disclaimer_only_chunk_has_no_choices():
    frame = disc.final_frame({"id": "x", "object": "chat.completion.chunk", "created": 1, "model": "m"}, D)
    assert frame.startswith(b"data: ") and frame.endswith(b"\n\n")
    assert orjson.loads(frame[6:]) == {
        "id": "x",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "m",
        "choices": [],
        "disclaimer": D,
    }


def test_a_finish_frame_without_output_is_kept_whole_after_the_disclaimer_chunk():
    chunk = {
        "id": "x",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "m",
        "choices": [{"index": 0, "delta": {"content": ""}, "logprobs": None, "finish_reason": "stop"}],
    }
    frame = disc.sse(chunk)
    out = disc.around_finish(frame, chunk, D, chat=True)
    assert out.endswith(frame) and out.count(b"data: ") == 2
    assert orjson.loads(out.split(b"\n\n")[0][6:])["choices"][0]["delta"]["content"] == "\n\n" + D


def test_a_finish_frame_with_output_is_split_keeping_usage_and_stop_reason():
    usage = {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3}
    chunk = {
        "id": "x",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "m",
        "usage": usage,
        "choices": [
            {
                "index": 0,
                "delta": {"content": "end"},
                "logprobs": {"content": []},
                "finish_reason": "stop",
                "stop_reason": 106,
            }
        ],
    }
    out = [
        orjson.loads(f[6:])
        for f in disc.around_finish(disc.sse(chunk), chunk, D, chat=True).split(b"\n\n")
        if f
    ]
    output, ours, finish = out
    assert output["choices"][0] == {
        "index": 0,
        "delta": {"content": "end"},
        "logprobs": {"content": []},
        "finish_reason": None,
        "stop_reason": None,
    }
    assert ours["choices"][0]["delta"]["content"] == "\n\n" + D
    assert finish["choices"][0] == {
        "index": 0,
        "delta": {},
        "logprobs": None,
        "finish_reason": "stop",
        "stop_reason": 106,
    }
    assert output["usage"] == finish["usage"] == usage  # cumulative counts: repeating them adds nothing
