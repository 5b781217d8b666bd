"""Property-based fuzzing of the request rewrite: no crash, one system turn first, later turns untouched."""

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from serve.gateway.errors import GatewayError
from serve.gateway.rewrite import disclaimer as disc
from serve.gateway.rewrite.request_body import prepare

D = "Outputs need independent verification."
text = st.text(max_size=40)
part = st.one_of(
    st.fixed_dictionaries({"type": st.just("text"), "text": text}),
    st.fixed_dictionaries({"type": st.just("image_url"), "image_url": st.fixed_dictionaries({"url": text})}),
    st.dictionaries(st.text(max_size=8), st.one_of(text, st.integers(), st.none()), max_size=3),
)
content = st.one_of(st.none(), text, st.lists(part, max_size=4), st.integers(), st.booleans())
role = st.sampled_from(["system", "developer", "user", "assistant", "tool", "x"])
message = st.fixed_dictionaries({"role": role}, optional={"content": content, "name": text})
alternating = st.integers(min_value=1, max_value=8).map(
    lambda n: [{"role": "user" if i % 2 == 0 else "assistant", "content": f"turn {i}"} for i in range(n)]
)
JUNK = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), text),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(text, inner, max_size=3)),
    max_leaves=10,
)


@settings(max_examples=300, deadline=None)
@given(st.lists(message, min_size=1, max_size=6))
def test_merge_never_crashes_and_keeps_a_single_leading_system_turn(messages):
    try:
        body = json.loads(
            prepare(json.dumps({"model": "m", "messages": messages}).encode(), ["m"], D, chat=True).body
        )
    except GatewayError as err:
        assert 400 <= err.status < 500
        return
    merged = body["messages"]
    assert merged[0]["role"] == "system" and merged[0]["content"].startswith(D)
    leading = 1 if messages[0]["role"] in disc.SYSTEM_ROLES else 0
    assert merged[1:] == messages[leading:]  # nothing after the system turn changes
    assert sum(m["role"] == "system" for m in merged) == 1 + sum(
        m["role"] == "system" for m in messages[leading:]
    )


@settings(max_examples=200, deadline=None)
@given(st.booleans(), st.one_of(st.none(), text), alternating)
def test_alternating_conversations_stay_alternating(with_system, system_text, turns):
    messages = ([{"role": "system", "content": system_text}] if with_system else []) + turns
    merged = disc.merge_system(messages, D)
    assert [m["role"] for m in merged[1:]] == [
        "user" if i % 2 == 0 else "assistant" for i in range(len(turns))
    ]
    assert [m["role"] for m in merged].count("system") == 1


@settings(max_examples=300, deadline=None)
@given(JUNK)
def test_any_json_body_is_either_prepared_or_a_4xx(body):
    for chat in (True, False):
        try:
            prepare(json.dumps(body).encode(), ["m"], D, chat=chat)
        except GatewayError as err:
            assert 400 <= err.status < 500 and isinstance(err.code, str)
