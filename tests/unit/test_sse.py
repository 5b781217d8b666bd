"""The stream rewriter: frames relayed untouched, the disclaimer before each finish and at the end, usage read."""

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


def chunks_of(data: bytes) -> list[dict]:
    return [json.loads(f[6:]) for f in frames_of(data) if f != b"data: [DONE]"]


def content_in_order(data: bytes) -> str:
    """The text the client reads, checking on the way that no choice gets content after its finish_reason."""
    text, finished = [], set()
    for chunk in chunks_of(data):
        for c in chunk["choices"]:
            piece = c["delta"].get("content") if "delta" in c else c.get("text")
            assert not (piece and c["index"] in finished), f"content after finish_reason: {chunk}"
            text.append(piece or "")
            if c.get("finish_reason"):
                finished.add(c["index"])
    return "".join(text)


def test_token_frames_pass_byte_for_byte_and_the_disclaimer_comes_before_the_finish():
    r = StreamRewriter(chat=True, disclaimer=D, append=True, strip_usage=True)
    out = run(r, [chunk(""), chunk("Hel"), chunk("lo"), chunk("", "stop"), USAGE, DONE])
    frames = frames_of(out)
    assert out.startswith(chunk("") + chunk("Hel") + chunk("lo"))
    ours = json.loads(frames[3][6:])
    assert (
        ours["choices"][0]["delta"]["content"] == "\n\n" + D and ours["choices"][0]["finish_reason"] is None
    )
    assert ours["disclaimer"] == D and ours["id"] == "c1" and ours["model"] == "m"
    assert frames[4] + b"\n\n" == chunk("", "stop")  # the engine's finish frame, untouched, after ours
    assert json.loads(frames[5][6:]) == {
        "id": "c1",
        "object": "chat.completion.chunk",
        "created": 7,
        "model": "m",
        "choices": [],
        "disclaimer": D,
    }
    assert frames[-1] == b"data: [DONE]" and len(frames) == 7
    assert content_in_order(out) == "Hello\n\n" + D
    assert r.usage == {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}
    assert b'"usage"' not in out  # the client did not ask for usage: the frame we asked for is gone


def test_a_last_token_sent_with_the_finish_reason_is_split_around_the_disclaimer():
    r = StreamRewriter(chat=True, disclaimer=D, append=True, strip_usage=True)
    out = run(r, [chunk(""), chunk("Hel"), chunk("lo", "length"), DONE])
    chunks = chunks_of(out)
    assert [c["choices"][0].get("finish_reason") for c in chunks[2:5]] == [None, None, "length"]
    assert chunks[2]["choices"][0]["delta"] == {"content": "lo"}
    assert chunks[4]["choices"][0]["delta"] == {} and chunks[4]["id"] == "c1"
    assert content_in_order(out) == "Hello\n\n" + D


def test_usage_frame_is_kept_after_the_disclaimer_when_client_asked():
    r = StreamRewriter(chat=True, disclaimer=D, append=True, strip_usage=False)
    frames = frames_of(run(r, [chunk("a"), chunk("", "stop"), USAGE, DONE]))
    final = json.loads(frames[-3][6:])
    assert final["disclaimer"] == D and final["choices"] == []
    assert (
        frames[-2] == USAGE.strip()
    )  # usage stays the last chunk: the openai SDK keeps the last chunk's usage


def test_a_machine_readable_stream_is_relayed_byte_for_byte_then_a_disclaimer_only_chunk():
    engine = [chunk(""), chunk('{"finding":'), chunk('"normal"}', "stop"), USAGE, DONE]
    r = StreamRewriter(chat=True, disclaimer=D, append=True, strip_usage=False, machine_readable=True)
    out = run(r, engine)
    assert (
        out
        == b"".join(engine[:3])
        + frame(
            {
                "id": "c1",
                "object": "chat.completion.chunk",
                "created": 7,
                "model": "m",
                "choices": [],
                "disclaimer": D,
            }
        )
        + USAGE
        + DONE
    )
    assert json.loads(content_in_order(out)) == {"finding": "normal"}


def test_append_off_keeps_the_content_and_ends_with_the_disclaimer_only_chunk():
    r = StreamRewriter(chat=True, disclaimer=D, append=False, strip_usage=True)
    out = run(r, [chunk("a", index=0), chunk("b", index=1), chunk("", "stop", 0), chunk("", "stop", 1), DONE])
    assert content_in_order(out) == "ab"
    finals = [c for c in chunks_of(out) if "disclaimer" in c]
    assert len(finals) == 1 and finals[0]["choices"] == []


def test_each_choice_gets_its_disclaimer_just_before_its_own_finish():
    r = StreamRewriter(chat=True, disclaimer=D, append=True, strip_usage=True)
    out = run(
        r, [chunk("a", index=0), chunk("b", index=1), chunk("", "stop", 1), chunk("c", "stop", 0), DONE]
    )
    order = [
        (c["choices"][0]["index"], c["choices"][0]["delta"].get("content"), c["choices"][0]["finish_reason"])
        for c in chunks_of(out)
        if c["choices"]
    ]
    assert order == [
        (0, "a", None),
        (1, "b", None),
        (1, "\n\n" + D, None),
        (1, "", "stop"),
        (0, "c", None),
        (0, "\n\n" + D, None),
        (0, None, "stop"),
    ]
    content_in_order(out)


def test_a_choice_that_ends_in_tool_calls_gets_no_text():
    call = {"index": 0, "id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    end = frame(
        {
            "id": "c1",
            "object": "chat.completion.chunk",
            "created": 7,
            "model": "m",
            "choices": [{"index": 0, "delta": {"tool_calls": [call]}, "finish_reason": "tool_calls"}],
        }
    )
    r = StreamRewriter(chat=True, disclaimer=D, append=True, strip_usage=True)
    out = run(r, [chunk(""), end, DONE])
    assert out.startswith(chunk("") + end) and content_in_order(out) == ""
    assert chunks_of(out)[-1]["disclaimer"] == D


def test_completion_streams_use_text_choices():
    r = StreamRewriter(chat=False, disclaimer=D, append=True, strip_usage=True)
    first = frame(
        {
            "id": "t",
            "object": "text_completion",
            "created": 1,
            "model": "m",
            "choices": [{"index": 0, "text": "x", "finish_reason": "length", "stop_reason": None}],
        }
    )
    out = run(r, [first, DONE])
    chunks = chunks_of(out)
    assert [c["choices"][0]["text"] for c in chunks[:3]] == ["x", "\n\n" + D, ""]
    assert [c["choices"][0]["finish_reason"] for c in chunks[:3]] == [None, None, "length"]
    assert chunks[3]["object"] == "text_completion" and chunks[3]["choices"] == []
    assert content_in_order(out) == "x\n\n" + D


def test_only_the_first_finish_and_usage_frames_are_parsed(monkeypatch):
    """The hot path: token frames are relayed as bytes, never parsed (one JSON parse per token would cost the
    gateway most of its throughput)."""
    from serve.gateway.rewrite import sse

    parsed = []
    real = sse._load
    monkeypatch.setattr(sse, "_load", lambda f: parsed.append(f) or real(f))
    tokens = [chunk(f"t{i}") for i in range(50)]
    r = StreamRewriter(chat=True, disclaimer=D, append=True, strip_usage=True)
    run(r, [chunk(""), *tokens, chunk("", "stop"), USAGE, DONE])
    assert len(parsed) == 3


def test_an_in_band_engine_error_ends_the_stream_without_a_disclaimer_after_it():
    error = b'data: {"error":{"message":"boom","type":"InternalServerError","param":null,"code":500}}\n\n'
    r = StreamRewriter(chat=True, disclaimer=D, append=True, strip_usage=True)
    out = run(r, [chunk("a"), error, DONE])
    assert out == chunk("a") + error + DONE


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
