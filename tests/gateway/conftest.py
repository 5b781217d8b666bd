"""Image requests at the gateway tier: a gateway for volumes, request bodies with DICOM parts, and what the fake
engine was sent (its content, its images) or the client got back (the error envelope)."""

from __future__ import annotations

import base64
import io

import pytest
from PIL import Image

from testkit.dicom_factory import data_url
from tests.conftest import MODEL

SMALL = {"model_input_size": 224}


@pytest.fixture
def volume_gateway(make_gateway):
    """A gateway with the engine's image limit and context (what a profile's vllm section gives)."""

    def make(*, max_images=None, context_len=None, max_body_bytes=32 << 20, **images):
        images = {**SMALL, **images}
        return make_gateway(
            images=images, max_images=max_images, context_len=context_len, max_body_bytes=max_body_bytes
        )

    return make


def dicom_part(*sources: str, **options) -> dict:
    """The gateway's `image_dicom` part: data URLs or DICOMweb addresses, and its options."""
    return {"type": "image_dicom", "image_dicom": {"dicom_source": list(sources), **options}}


def volume_part(objects, **options) -> dict:
    return dicom_part(*(data_url(o) for o in objects), **options)


def body(*parts, intro: str = "Review the slices.", **extra) -> dict:
    """A chat request: the intro, the parts, then the question (the layout of Google's CT notebook)."""
    content = [{"type": "text", "text": intro}, *parts, {"type": "text", "text": "Findings?"}]
    return {"model": MODEL, "messages": [{"role": "user", "content": content}], **extra}


def dicom_body(*sources: str, intro: str = "Review the slices.", **options) -> dict:
    """A chat request about one `image_dicom` part of these sources."""
    return body(dicom_part(*sources, **options), intro=intro)


def forwarded(script) -> list[dict]:
    """The content of the last user turn the fake engine was sent."""
    return script.seen[-1]["messages"][-1]["content"]


def images_of(content, fmt: str | None = None) -> list[Image.Image]:
    """The images forwarded, each in `fmt` if given, else as the gateway makes them: a volume's slices as BMP
    (images.volumes.slice_format), other images as JPEG."""
    found = []
    for part in content:
        if part["type"] == "image_url":
            header, _, payload = part["image_url"]["url"].partition(",")
            formats = [fmt] if fmt else ["bmp", "jpeg"]
            assert header in [f"data:image/{f};base64" for f in formats]
            found.append(Image.open(io.BytesIO(base64.b64decode(payload))))
    return found


async def error_of(resp) -> dict:
    return (await resp.json())["error"]
