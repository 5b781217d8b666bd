"""Checks a /v1/responses request and rewrites it for the engine (pure): the disclaimer merged into `instructions`,
nothing stored in the engine, and images found for the same checks as chat's image parts."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from serve.gateway.errors import bad_request
from serve.gateway.rewrite import disclaimer as disc
from serve.gateway.rewrite.image_budget import ImageBudget, plan
from serve.gateway.rewrite.images import ImagePart
from serve.gateway.rewrite.inline_media import InlineMedia
from serve.gateway.rewrite.request_body import (
    Parsed,
    Prepared,
    check_model,
    check_stream,
    encode,
    machine_readable,
    parse_document,
)

# Content parts vLLM 0.32 reads as text or images (vllm/renderers/chat_utils.py, MM_PARSER_MAP).
TEXT_PARTS = ("input_text", "output_text", "text")
IMAGE_PARTS = ("input_image", "image_url")
# Input items whose `output` may be a list of content parts, which vLLM renders like a message's content.
TOOL_OUTPUTS = ("function_call_output", "custom_tool_call_output")
JSON_FORMATS = ("json_schema", "json_object")
NOT_STORED = (
    "this gateway keeps no responses: vLLM stores them in the engine, readable by every API key, so every "
    "request is sent with store=false. Send the earlier turns in 'input' instead."
)


def parse(raw: bytes, served: list[str], *, budget: ImageBudget | None = None) -> Parsed:
    """Everything the gateway must read of a Responses request, checked; refusals are 4xx GatewayErrors. With
    the gateway's `budget`, the body size and the images are checked as chat's are, before any is decoded."""
    body, media = parse_document(raw)
    model = check_model(body, served)
    stream = check_stream(body)
    refuse_stored_state(body)
    if not isinstance(body.get("instructions"), str | None):
        raise bad_request("'instructions' must be a string.", "instructions")
    items = check_input(body)
    images = [_as_chat_part(where, part, media) for where, part in image_parts(items)]
    # The answer's room is max_output_tokens here (plan() reads chat's max_tokens).
    answer = {"max_tokens": body.get("max_output_tokens")}
    images = plan(images, answer, len(raw), budget) if budget is not None else images
    return Parsed(body, model, stream, images, is_machine_readable(body), media)


def refuse_stored_state(body: dict[str, Any]) -> None:
    """What needs responses stored in the engine is refused; `store` itself is forced off in finalize()."""
    if body.get("previous_response_id") is not None:
        raise bad_request(
            f"'previous_response_id' is not supported: {NOT_STORED}",
            "previous_response_id",
            "previous_response_not_supported",
        )
    if body.get("conversation") is not None:
        raise bad_request(
            f"'conversation' is not supported: {NOT_STORED}", "conversation", "conversation_not_supported"
        )
    if body.get("background"):
        raise bad_request(
            f"'background' is not supported: its result could only be fetched later, and {NOT_STORED}",
            "background",
            "background_not_supported",
        )


def check_input(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The input items ([] for a string input), each an object."""
    given = body.get("input")
    if isinstance(given, str):
        return []
    if not isinstance(given, list) or not given:
        raise bad_request("'input' must be a string or a non-empty list of input items.", "input")
    for i, item in enumerate(given):
        if not isinstance(item, dict):
            raise bad_request(f"input[{i}] must be an object.", f"input[{i}]")
        if item.get("type") == "item_reference":
            raise bad_request(
                f"input[{i}]: 'item_reference' names a stored item; {NOT_STORED}",
                f"input[{i}]",
                "item_reference_not_supported",
            )
    if _is_system(given[0]) and not _text_only(given[0].get("content")):
        raise bad_request("A system or developer message may contain only text parts.", "input[0].content")
    return given


def image_parts(items: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(where, part) of every image part, after checking each content part is of a type this model takes."""
    for where, part in content_parts(items):
        kind = part.get("type")
        if kind in IMAGE_PARTS:
            if kind == "input_image" and part.get("file_id") is not None:
                raise bad_request(
                    f"{where}: 'file_id' is not supported (this gateway has no Files API); send the "
                    "image in 'image_url' as a data URL or an allowed https URL.",
                    where,
                    "unsupported_content_part",
                )
            yield where, part
        elif kind not in TEXT_PARTS:
            raise bad_request(
                f"{where}: content part type {kind!r} is not supported; use 'input_text' or "
                "'input_image' (vLLM 0.32 reads no files or audio for this model).",
                where,
                "unsupported_content_part",
            )


def content_parts(items: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every content part of messages and of tool outputs given as parts, with where it is."""
    for i, item in enumerate(items):
        key = "output" if item.get("type") in TOOL_OUTPUTS else "content"
        parts = item.get(key)
        if not isinstance(parts, list):
            continue
        for j, part in enumerate(parts):
            if not isinstance(part, dict):
                raise bad_request(f"input[{i}].{key}[{j}] must be an object.", f"input[{i}].{key}[{j}]")
            yield f"input[{i}].{key}[{j}]", part


def is_machine_readable(body: dict[str, Any]) -> bool:
    """Chat's rule (request_body.machine_readable: tools, structured outputs) or a JSON `text.format`."""
    text = body.get("text")
    fmt = text.get("format") if isinstance(text, dict) else None
    return machine_readable(body) or (isinstance(fmt, dict) and fmt.get("type") in JSON_FORMATS)


def finalize(
    parsed: Parsed, disclaimer: str, *, cache_salt: str | None = None, thinking: bool = False
) -> Prepared:
    """The body for the engine: one `instructions` (the disclaimer, the client's instructions, then its leading
    system or developer message, as chat's system turn is merged), store off, checked images in place, client
    media ids dropped, and the tenant's cache salt."""
    body = parsed.body
    items = body["input"] if isinstance(body["input"], list) else []
    _write_back_images(items, parsed.images)
    own = [body.get("instructions") or ""]
    if items and _is_system(items[0]):
        own.append(disc.system_text(items.pop(0).get("content")))
    text = disc.SEPARATOR.join(t for t in own if t)
    system = [{"role": "system", "content": text}] if text else []
    body["instructions"] = disc.merge_system(system, disclaimer, thinking=thinking)[0]["content"]
    body["store"] = False
    for _, part in content_parts(items):
        part.pop("uuid", None)  # as request_body.drop_media_ids: vLLM would take it as the image's identity
    if cache_salt is not None:
        body["cache_salt"] = cache_salt
    return Prepared(encode(body, parsed.media), parsed.model, parsed.stream, False, parsed.machine_readable)


def _as_chat_part(where: str, part: dict[str, Any], media: InlineMedia | None = None) -> ImagePart:
    """An input_image as the chat image part images.ingest_images checks (its `frame` our DICOM extension, as
    in chat's image_url); finalize() writes the checked URL back. Chat-shaped image_url parts are checked as
    they are."""
    if part.get("type") != "input_image":
        return ImagePart(where, part, media=media)
    spec = {"url": part.get("image_url"), **({"frame": part["frame"]} if "frame" in part else {})}
    return ImagePart(where, {"type": "image_url", "image_url": spec}, media=media)


def _write_back_images(items: list[dict[str, Any]], checked: list[ImagePart]) -> None:
    for (_, part), image in zip(image_parts(items), checked, strict=True):
        if image.part is not part:  # an input_image: its image_url is a string
            spec = image.part["image_url"]
            part["image_url"] = spec["url"] if isinstance(spec, dict) else spec
            part.pop("frame", None)


def _is_system(item: dict[str, Any]) -> bool:
    return item.get("type", "message") == "message" and item.get("role") in disc.SYSTEM_ROLES


def _text_only(content: Any) -> bool:
    return not isinstance(content, list) or all(
        isinstance(p, dict) and p.get("type") in TEXT_PARTS for p in content
    )
