"""The disclaimer rewrites, as pure functions."""

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
