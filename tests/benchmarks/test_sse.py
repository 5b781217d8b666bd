"""TTFT, ITL, usage and the disclaimer as the stream parser reads them, whatever the read boundaries."""

import json

import pytest

from benchmarks.core import records as R
from benchmarks.core.client import verdict
from benchmarks.core.records import RequestRecord
from benchmarks.core.sse import StreamParser


def frame(**chunk) -> bytes:
    return b"data: " + json.dumps(chunk).encode() + b"\n\n"


def content(text: str) -> bytes:
    return frame(choices=[{"index": 0, "delta": {"content": text}}])


ROLE = frame(choices=[{"index": 0, "delta": {"role": "assistant", "content": ""}}])
FINISH = frame(choices=[{"index": 0, "delta": {}, "finish_reason": "length"}])
USAGE = frame(choices=[], usage={"prompt_tokens": 7, "completion_tokens": 3})
DISCLAIMER = frame(choices=[{"index": 0, "delta": {"content": "\n\nNot advice."}}], disclaimer="Not advice.")
DONE = b"data: [DONE]\n\n"


def feed_all(parts: list[tuple[bytes, float]]) -> StreamParser:
    parser = StreamParser()
    for data, now in parts:
        parser.feed(data, now)
    return parser


def test_first_token_is_the_first_non_empty_content_and_gaps_follow():
    p = feed_all(
        [
            (ROLE, 1.0),
            (content("a"), 1.5),
            (content("b"), 1.7),
            (content("c") + FINISH, 2.0),
            (DISCLAIMER + USAGE + DONE, 2.1),
        ]
    )
    assert p.first_at == 1.5
    assert p.gaps == pytest.approx([0.2, 0.3])
    assert p.chunks == 3
    assert p.completion_tokens == 3 and p.prompt_tokens == 7
    assert p.disclaimer and p.done and p.error is None


def test_frames_split_anywhere_parse_the_same():
    body = ROLE + content("a") + content("b") + DISCLAIMER + USAGE + DONE
    for cut in range(1, len(body)):
        p = feed_all([(body[:cut], 1.0), (body[cut:], 2.0)])
        assert (p.chunks, p.completion_tokens, p.disclaimer, p.done) == (2, 3, True, True)


def test_chunks_arriving_together_have_a_zero_gap():
    p = feed_all([(content("a") + content("b"), 1.0)])
    assert p.gaps == [0.0]


def test_the_disclaimer_chunk_is_not_a_token():
    p = feed_all([(content("a"), 1.0), (DISCLAIMER, 5.0), (DONE, 5.0)])
    assert p.chunks == 1 and p.gaps == [] and p.last_at == 1.0


def test_in_band_error_is_kept():
    p = feed_all([(content("a"), 1.0), (frame(error={"message": "engine died"}) + DONE, 1.1)])
    assert p.error == {"message": "engine died"}


def test_legacy_completions_text_counts_as_content():
    p = feed_all([(frame(choices=[{"index": 0, "text": "x"}]) + DONE, 1.0)])
    assert p.chunks == 1


@pytest.mark.parametrize(
    ("error", "disclaimer", "expect", "ok", "why"),
    [
        (None, True, True, True, None),
        (None, False, True, False, R.MISSING_DISCLAIMER),
        (None, False, False, True, None),  # a bare engine owes no disclaimer
        (R.INCOMPLETE, True, True, False, R.INCOMPLETE),
    ],
)
def test_verdict(error, disclaimer, expect, ok, why):
    rec = verdict(RequestRecord(error=error, disclaimer=disclaimer), expect)
    assert (rec.ok, rec.error) == (ok, why)


def test_vllm_token_frames_take_the_fast_path_and_count_the_same():
    vllm = (
        b'data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,'
        b'"delta":{"content":"x"},"logprobs":null,"finish_reason":null}]}\n\n'
    )
    spaced = b'data: {"choices": [{"index": 0, "delta": {"content": "x"}}]}\n\n'  # parsed as JSON instead
    empty = b'data: {"choices":[{"index":0,"delta":{"content":""}}]}\n\n'
    p = feed_all([(vllm, 1.0), (spaced, 2.0), (empty, 3.0), (vllm, 4.0)])
    assert p.chunks == 3 and p.gaps == [1.0, 2.0]
