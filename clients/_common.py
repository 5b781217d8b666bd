"""What every example shares: where the gateway is and how a client acknowledges the HAI-DEF terms."""

from __future__ import annotations

import base64
import mimetypes
import os
from collections.abc import Iterable
from pathlib import Path

from openai import AsyncOpenAI, OpenAI
from openai.types.chat import ChatCompletionChunk

BASE_URL = os.environ.get("MEDGEMMA_BASE_URL", "http://127.0.0.1:8000/v1")
MODEL = os.environ.get("MEDGEMMA_MODEL", "demo-tiny-gemma3-random")  # "medgemma-1.5-4b-it" on a GPU box
API_KEY = os.environ.get("MEDGEMMA_API_KEY", "local")  # any string in local mode
TERMS_VERSION = "2024-11-15"
ACK = {"HAI-DEF-Acknowledged": TERMS_VERSION}


def client(**kw) -> OpenAI:
    """A stateless client acknowledges the terms on every request with one default header."""
    return OpenAI(base_url=BASE_URL, api_key=API_KEY, default_headers=ACK, **kw)


def async_client(**kw) -> AsyncOpenAI:
    return AsyncOpenAI(base_url=BASE_URL, api_key=API_KEY, default_headers=ACK, **kw)


def image_data_url(path: str | Path) -> str:
    """A local PNG or JPEG as the base64 data URL the OpenAI image_url part takes."""
    media = mimetypes.guess_type(str(path))[0] or "image/png"
    return f"data:{media};base64," + base64.b64encode(Path(path).read_bytes()).decode()


def print_stream(stream: Iterable[ChatCompletionChunk]) -> str:
    """Print a streamed answer's text as it arrives (the disclaimer ends it); returns the whole text."""
    text = []
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            text.append(chunk.choices[0].delta.content)
            print(chunk.choices[0].delta.content, end="", flush=True)
    print()
    return "".join(text)
