"""A generated corpus of bad requests (>= 300): each must get a 4xx OpenAI envelope, never a 5xx."""

from __future__ import annotations

import base64
import io
import json
from dataclasses import dataclass, field

from PIL import Image

ACK = {"HAI-DEF-Acknowledged": "2024-11-15"}


@dataclass(frozen=True)
class Bad:
    name: str
    body: bytes
    path: str = "/v1/chat/completions"
    headers: dict[str, str] = field(default_factory=dict)
    status: tuple[int, ...] = (400,)  # acceptable statuses (all 4xx)


def _png(w: int = 16, h: int = 16, fmt: str = "PNG", mode: str = "RGB") -> bytes:
    buf = io.BytesIO()
    Image.new(mode, (w, h)).save(buf, format=fmt)
    return buf.getvalue()


def _url(data: bytes, media: str = "image/png") -> str:
    return f"data:{media};base64," + base64.b64encode(data).decode()


def _chat(model: str, **extra) -> dict:
    body = {
        "model": model,
        "messages": [{"role": "user", "content": "Describe a chest X-ray."}],
        "max_tokens": 4,
    }
    return {**body, **extra}


def _image_chat(model: str, *urls: str) -> dict:
    parts = [{"type": "image_url", "image_url": {"url": u}} for u in urls] + [
        {"type": "text", "text": "Findings?"}
    ]
    return {"model": model, "messages": [{"role": "user", "content": parts}], "max_tokens": 4}


def _j(obj) -> bytes:
    return json.dumps(obj).encode()


WRONG_TYPES = [123, -1.5, "text", [], [1, "x"], {}, {"a": 1}, True]
FIELDS = [
    "model",
    "messages",
    "stream",
    "max_tokens",
    "temperature",
    "top_p",
    "n",
    "stop",
    "stream_options",
    "presence_penalty",
    "frequency_penalty",
    "seed",
    "logprobs",
    "top_logprobs",
    "response_format",
    "max_completion_tokens",
    "logit_bias",
    "user",
    "tools",
    "tool_choice",
    "min_tokens",
    "top_k",
]
# Values a field of that name may legitimately take; a "wrong type" equal to one of these is skipped.
VALID = {
    "stream": [True],
    "stop": ["text", [], [1, "x"]],
    "user": ["text"],
    "logit_bias": [{}],
    "tools": [[]],
    "tool_choice": ["text"],
    "response_format": [],
    # pydantic (in vLLM) reads true as 1 for integer fields; penalties take any value in [-2, 2].
    "max_tokens": [123, True],
    "max_completion_tokens": [123, True],
    "n": [123, True],
    "seed": [123, True],
    "temperature": [123, True],
    "top_p": [True],
    "presence_penalty": [True, -1.5],
    "frequency_penalty": [True, -1.5],
    "logprobs": [True],
    "top_logprobs": [True],
    "min_tokens": [True],
    "top_k": [123, True],
    "stream_options": [{}],
}


def corpus(
    model: str, max_model_len: int = 2048, body_limit: int = 32 * 1024 * 1024, max_images: int = 1
) -> list[Bad]:
    items: list[Bad] = []
    good = _j(_chat(model))
    # Malformed and truncated JSON.
    items += [Bad(f"truncated-{n}", good[:n]) for n in range(1, len(good) - 1, 3)]
    items += [
        Bad(f"malformed-{i}", raw)
        for i, raw in enumerate(
            [
                b"",
                b"{",
                b"}",
                b"null",
                b"[]",
                b"42",
                b'"str"',
                b"{'model': 1}",
                b'{"model": }',
                b"\xff\xfe\x00",
                b'{"model": "m",}',
                b"NaN",
                b'{"messages": [}',
            ]
        )
    ]
    # Wrong types for every field.
    for f in FIELDS:
        for i, value in enumerate(WRONG_TYPES):
            if value in VALID.get(f, []) or (f == "model" and value == "text"):
                continue
            items.append(Bad(f"type-{f}-{i}", _j({**_chat(model), f: value}), status=(400, 404, 422)))
    # Message-level types.
    for i, msg in enumerate(
        [
            1,
            "hi",
            [],
            {"content": "x"},
            {"role": 5, "content": "x"},
            {"role": "user", "content": 5},
            {"role": "user", "content": {"text": "x"}},
            {"role": "user", "content": [1, 2]},
            {"role": "user", "content": [{"type": "text"}]},
            {"role": "user", "content": [{"text": "x"}]},
        ]
    ):
        items.append(Bad(f"message-{i}", _j({"model": model, "messages": [msg], "max_tokens": 4})))
    # Missing required fields, empty and huge message lists.
    items += [
        Bad("no-model", _j({"messages": [{"role": "user", "content": "x"}]})),
        Bad("no-messages", _j({"model": model})),
        Bad("empty-object", b"{}"),
        Bad("empty-messages", _j({"model": model, "messages": []})),
        Bad("completions-no-prompt", _j({"model": model}), path="/v1/completions"),
        Bad("completions-prompt-type", _j({"model": model, "prompt": {"a": 1}}), path="/v1/completions"),
    ]
    for i, extra in enumerate(
        [
            {"prompt": {"a": 1}},
            {"prompt": [{}]},
            {"prompt": True},
            {"prompt": "x", "max_tokens": -1},
            {"prompt": "x", "temperature": "hot"},
            {"prompt": "x", "n": 0},
            {"prompt": "x", "echo": [1]},
            {"prompt": "x", "top_p": 3},
            {"prompt": "x", "stream": "no"},
            {"prompt": "x", "logprobs": -4},
            {"prompt": "x", "max_tokens": 10**7},
            {"prompt": [[1, "a"]]},
        ]
    ):
        items.append(Bad(f"completions-{i}", _j({"model": model, **extra}), path="/v1/completions"))
    huge = [{"role": "user" if i % 2 == 0 else "assistant", "content": "word " * 20} for i in range(2001)]
    items.append(Bad("huge-message-list", _j({"model": model, "messages": huge, "max_tokens": 4})))
    # Non-alternating roles and unknown roles (the engine's Gemma template refuses them).
    for i, roles in enumerate(
        [
            ["user", "user"],
            ["assistant", "user"],
            ["user", "assistant", "assistant"],
            ["system", "system", "user"],
            ["wizard"],
            ["tool"],
            ["user", "assistant", "system"],
        ]
    ):
        msgs = [{"role": r, "content": f"turn {k}"} for k, r in enumerate(roles)]
        items.append(Bad(f"roles-{i}", _j({"model": model, "messages": msgs, "max_tokens": 4})))
    # Unsupported content parts, too many images, bad image data.
    for kind in ("input_audio", "video_url", "file", "image", "audio_url", "refusal"):
        items.append(
            Bad(
                f"part-{kind}",
                _j(
                    {
                        "model": model,
                        "max_tokens": 4,
                        "messages": [{"role": "user", "content": [{"type": kind}]}],
                    }
                ),
            )
        )
    png = _png()
    for name, url in [
        ("past-the-image-limit", None),
        ("invalid-base64", "data:image/png;base64,@@@@"),
        ("not-base64-url", "data:image/png,raw"),
        ("text-media", _url(b"hello", "text/plain")),
        ("pdf-media", _url(b"%PDF-1.4", "application/pdf")),
        ("svg-media", _url(b"<svg/>", "image/svg+xml")),
        ("truncated-png", _url(png[: len(png) // 2])),
        ("corrupt-png", _url(png[:16] + b"\0" * 64)),
        ("truncated-jpeg", _url(_png(64, 64, "JPEG")[:200], "image/jpeg")),
        ("corrupt-jpeg", _url(b"\xff\xd8\xff" + b"\x00" * 50, "image/jpeg")),
        ("jpeg-as-png", _url(_png(fmt="JPEG"))),
        ("wide-image", _url(_png(20000, 1))),
        ("tall-image", _url(_png(1, 20000))),
        ("bomb", _url(_png(9000, 9000, mode="1"))),
        ("empty-image", _url(b"")),
        ("remote-https", "https://example.org/x.png"),
        ("remote-http", "http://example.org/x.png"),
        ("metadata-ip", "http://169.254.169.254/latest"),
        ("loopback", "http://127.0.0.1:8100/metrics"),
        ("file-url", "file:///etc/passwd"),
        ("ftp-url", "ftp://example.org/x.png"),
        ("empty-url", ""),
    ]:
        body = _image_chat(model, *[_url(png)] * (max_images + 1)) if url is None else _image_chat(model, url)
        items.append(Bad(f"image-{name}", _j(body)))
    items.append(
        Bad(
            "image-url-not-object",
            _j(
                {
                    "model": model,
                    "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": 5}]}],
                }
            ),
        )
    )
    # Bodies over the size limit.
    items.append(Bad("over-size-limit", b'{"model": "' + b"x" * (body_limit + 1024) + b'"}', status=(413,)))
    # Token and sampling values out of range (the engine validates most of these).
    for name, extra in [
        ("max-tokens-over-context", {"max_tokens": max_model_len * 10}),
        ("max-tokens-negative", {"max_tokens": -5}),
        ("max-completion-negative", {"max_completion_tokens": -1}),
        ("temperature-negative", {"temperature": -1}),
        ("top-p-over-1", {"top_p": 2}),
        ("top-p-negative", {"top_p": -0.5}),
        ("top-p-zero", {"top_p": 0}),
        ("n-zero", {"n": 0}),
        ("n-negative", {"n": -3}),
        ("presence-over", {"presence_penalty": 5}),
        ("frequency-under", {"frequency_penalty": -5}),
        ("top-k-negative", {"top_k": -7}),
        ("top-logprobs-huge", {"logprobs": True, "top_logprobs": 10_000}),
        ("min-tokens-negative", {"min_tokens": -2}),
        ("min-over-max", {"min_tokens": 50, "max_tokens": 4}),
        ("repetition-zero", {"repetition_penalty": 0}),
        ("logit-bias-bad", {"logit_bias": {"x": 1}}),
    ]:
        items.append(Bad(f"sampling-{name}", _j(_chat(model, **extra))))
    # Unknown models and routes, wrong methods.
    items += [
        Bad(f"unknown-model-{m}", _j(_chat(m)), status=(404,))
        for m in ("gpt-4o", "medgemma-27b-it", " ", "x" * 300)
    ]
    items += [
        Bad(f"route-{p}", b"{}", path=p, status=(404, 405))
        for p in (
            "/tokenizer_info",
            "/v1/rerank",
            "/pause",
            "/v1/embeddings",
            "/v1/audio/transcriptions",
            "/../v1/models",
        )
    ]
    # Header injection attempts and bad acknowledgement headers.
    for i, rid in enumerate(["a b", "x" * 300, "%0d%0aSet-Cookie:1", "<script>", "id;rm -rf /", "ünïcode"]):
        items.append(Bad(f"request-id-{i}", good, headers={"X-Request-Id": rid}))
    for i, ack in enumerate(["yes", "2024-11-14", "2024-11-15, 2099-01-01", "", "2024-11-15x"]):
        items.append(Bad(f"ack-{i}", good, headers={"HAI-DEF-Acknowledged": ack}, status=(403,)))
    return items
