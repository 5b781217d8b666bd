"""The stream rewriter: frames relayed untouched, disclaimer chunk before the end, usage read and stripped."""

import json

from serve.gateway.rewrite.sse import StreamRewriter

D = "Verify independently."


def frame(obj) -> bytes:
    return b"data: " + json.dumps(obj, separators=(",", ":")).encode() + b"\n\n"


def chunk(content=None, finish=None, index=0):
    delta = {} if content is None else {"content": content}
    return frame(
        {
            "id": "c1",
            "object": "chat.completion.chunk",
            "created": 7,
            "model": "m",
            "choices": [{"index": index, "delta": delta, "finish_reason": finish}],
        }
    )


USAGE = frame(
    {
        "id": "c1",
        "object": "chat.completion.chunk",
        "created": 7,
        "model": "m",
        "choices": [],
        "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
    }
)
DONE = b"data: [DONE]\n\n"


def frames_of(data: bytes) -> list[bytes]:
    return [f for f in data.split(b"\n\n") if f]


def run(rewriter: StreamRewriter, parts: list[bytes]) -> bytes:
    return b"".join(rewriter.feed(p, float(i)) for i, p in enumerate(parts)) + rewriter.close()


def test_token_frames_pass_byte_for_byte_and_disclaimer_precedes_done():
    r = StreamRewriter(chat=True, disclaimer=D, append=True, strip_usage=True)
    out = run(r, [chunk(""), chunk("Hel"), chunk("lo"), chunk("", "stop"), USAGE, DONE])
    frames = frames_of(out)
    assert out.startswith(chunk("") + chunk("Hel") + chunk("lo") + chunk("", "stop"))
    assert frames[-1] == b"data: [DONE]"
    final = json.loads(frames[-2][6:])
    assert final["choices"][0]["delta"]["content"] == "\n\n" + D
    assert final["disclaimer"] == D and final["id"] == "c1" and final["model"] == "m"
    assert r.usage == {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}
    assert b'"usage"' not in out  # the client did not ask for usage: the frame we asked for is gone


def test_usage_frame_is_kept_after_the_disclaimer_when_client_asked():
    r = StreamRewriter(chat=True, disclaimer=D, append=True, strip_usage=False)
    frames = frames_of(run(r, [chunk("a"), chunk("", "stop"), USAGE, DONE]))
    assert json.loads(frames[-3][6:])["disclaimer"] == D
    assert frames[-2] == USAGE.strip()


def test_partial_frames_wait_for_their_end():
    r = StreamRewriter(chat=True, disclaimer=D, append=True, strip_usage=True)
    whole = chunk("x")
    assert r.feed(chunk("") + whole[:10], 0.0) == chunk("")
    assert r.feed(whole[10:], 1.0) == whole


def test_timing_counts_content_frames_only():
    r = StreamRewriter(chat=True, disclaimer=D, append=True, strip_usage=True)
    r.feed(chunk(""), 0.0)
    r.feed(chunk("a"), 1.0)
    r.feed(chunk("b") + chunk("c"), 3.0)
    assert r.first_token_at == 1.0 and r.last_token_at == 3.0
    assert r.gaps == [2.0, 0.0]


def test_stream_cut_before_done_ends_with_in_band_error():
    r = StreamRewriter(chat=True, disclaimer=D, append=True, strip_usage=True)
    out = run(r, [chunk("a")])
    frames = frames_of(out)
    assert json.loads(frames[-2][6:])["error"]["code"] == "engine_error"
    assert frames[-1] == b"data: [DONE]"


def test_one_disclaimer_chunk_per_finished_choice():
    r = StreamRewriter(chat=True, disclaimer=D, append=False, strip_usage=True)
    out = run(r, [chunk("a", index=0), chunk("b", index=1), chunk("", "stop", 0), chunk("", "stop", 1), DONE])
    finals = [json.loads(f[6:]) for f in frames_of(out) if b"disclaimer" in f]
    assert [f["choices"][0]["index"] for f in finals] == [0, 1]
    assert finals[0]["choices"][0]["delta"]["content"] == ""  # append off: the field only


def test_completion_streams_use_text_choices():
    r = StreamRewriter(chat=False, disclaimer=D, append=True, strip_usage=True)
    first = frame(
        {
            "id": "t",
            "object": "text_completion",
            "created": 1,
            "model": "m",
            "choices": [{"index": 0, "text": "x", "finish_reason": "length"}],
        }
    )
    final = json.loads(frames_of(run(r, [first, DONE]))[-2][6:])
    assert final["object"] == "text_completion" and final["choices"][0]["text"] == "\n\n" + D


def test_a_huge_frame_in_many_pieces_is_searched_once_not_once_per_piece(monkeypatch):
    """A 1 MB frame in 1 KB pieces: re-scanning the buffer per piece would search ~512 MB (quadratic)."""
    from serve.gateway.rewrite import sse

    searched = []
    real = sse.frame_end

    def counting(buf, start):
        searched.append(len(buf) - start)
        return real(buf, start)

    monkeypatch.setattr(sse, "frame_end", counting)
    big = chunk("x" * 1_000_000)
    stream = chunk("") + big + chunk("", "stop") + USAGE + DONE
    pieces = [stream[i : i + 1024] for i in range(0, len(stream), 1024)]
    r = StreamRewriter(chat=True, disclaimer=D, append=True, strip_usage=False)
    out = run(r, pieces)
    assert big in out and r.done and r.usage["total_tokens"] == 5
    assert sum(searched) <= len(stream) + 2 * len(pieces)


def test_frames_survive_every_split_point_including_between_the_two_newlines():
    stream = chunk("") + chunk("ab") + chunk("", "stop") + USAGE + DONE
    whole = run(StreamRewriter(chat=True, disclaimer=D, append=True, strip_usage=False), [stream])
    for i in range(1, len(stream)):
        for j in (i + 1, i + 7, len(stream)):
            r = StreamRewriter(chat=True, disclaimer=D, append=True, strip_usage=False)
            assert run(r, [stream[:i], stream[i:j], stream[j:]]) == whole, (i, j)
