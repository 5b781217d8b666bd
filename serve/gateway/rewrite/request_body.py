"""Validates what the gateway must read of a request body and rewrites it for the engine (pure)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from typing import Any

import orjson

from serve.gateway.errors import bad_request, model_not_found
from serve.gateway.rewrite import disclaimer as disc
from serve.gateway.rewrite.image_budget import ImageBudget, plan, too_large
from serve.gateway.rewrite.images import ImagePart, check_count, image_parts
from serve.gateway.rewrite.inline_media import Body, InlineMedia, cut, empty, restore_pieces
from serve.gateway.rewrite.volume_request import is_volume

# Keeps salts apart from any other use of the same key hash.
SALT_CONTEXT = b"medgemma-serve cache salt v1:"
# The constraints of vLLM 0.32's `structured_outputs` (vllm/sampling_params.py, StructuredOutputsParams).
STRUCTURED_KINDS = ("json", "regex", "choice", "grammar", "json_object", "structural_tag")
# Removed from vLLM, which now ignores them (vllm/entrypoints/serve/engine/protocol.py, _REMOVED_GUIDED_FIELDS);
# a client that sends one still means to parse the answer.
LEGACY_GUIDED = ("guided_json", "guided_regex", "guided_choice", "guided_grammar")


@dataclass(frozen=True)
class Parsed:
    body: dict[str, Any]
    model: str
    stream: bool
    images: list[ImagePart]  # checked (decoded) separately: that is blocking work
    machine_readable: bool = False  # see machine_readable()
    media: InlineMedia | None = None  # large data URLs kept out of the parse (inline_media.py)


@dataclass(frozen=True)
class Prepared:
    body: Body  # what goes to the engine
    model: str
    stream: bool
    strip_usage: bool  # we asked the engine for usage in a stream; the client did not
    machine_readable: bool = False  # the answer's content is the engine's, byte for byte (no appended text)


def parse_json(raw: bytes) -> dict[str, Any]:
    try:
        body = orjson.loads(raw if isinstance(raw, bytes | bytearray) else memoryview(raw))  # a shared body
    except orjson.JSONDecodeError as exc:
        raise bad_request(f"The request body is not valid JSON: {exc}.", code="invalid_json") from None
    if not isinstance(body, dict):
        raise bad_request("The request body must be a JSON object.", code="invalid_json")
    return body


def parse_document(raw: bytes) -> tuple[dict[str, Any], InlineMedia | None]:
    """parse_json of the body with its large data URLs cut out first (placeholders in their place)."""
    doc, media = cut(raw)
    return parse_json(doc), media


def check_model(body: dict[str, Any], served: list[str]) -> str:
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise bad_request("'model' is required and must be a string; GET /v1/models lists them.", "model")
    if model not in served:
        raise model_not_found(model, served)
    return model


def check_stream(body: dict[str, Any]) -> bool:
    stream = body.get("stream", False)
    if stream is None:
        return False
    if not isinstance(stream, bool):
        raise bad_request("'stream' must be true or false.", "stream")
    return stream


def check_messages(body: dict[str, Any]) -> list[dict[str, Any]]:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise bad_request("'messages' must be a non-empty list of message objects.", "messages")
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise bad_request(f"messages[{i}] must be an object with a string 'role'.", f"messages[{i}]")
        content = message.get("content")
        if content is not None and not isinstance(content, str | list):
            raise bad_request(
                f"messages[{i}].content must be a string or a list of parts.", f"messages[{i}].content"
            )
        if isinstance(content, list) and not all(isinstance(p, dict) for p in content):
            raise bad_request(f"messages[{i}].content parts must be objects.", f"messages[{i}].content")
    first = messages[0]
    if first["role"] in disc.SYSTEM_ROLES and not _text_only(first.get("content")):
        raise bad_request("A system message may contain only text parts.", "messages[0].content")
    return messages


def _text_only(content: Any) -> bool:
    if not isinstance(content, list):
        return True
    return all(p.get("type") == "text" and isinstance(p.get("text"), str) for p in content)


def ask_for_usage(body: dict[str, Any]) -> bool:
    """Streams always ask the engine for usage (token metrics); True if the client did not ask itself."""
    options = body.get("stream_options")
    if options is None:
        options = {}
    if not isinstance(options, dict):
        raise bad_request("'stream_options' must be an object.", "stream_options")
    if options.get("include_usage") is True:
        return False
    body["stream_options"] = {**options, "include_usage": True}
    return True


def parse(
    raw: bytes,
    served: list[str],
    *,
    chat: bool,
    max_images: int | None = None,
    budget: ImageBudget | None = None,
) -> Parsed:
    """Everything the gateway must read of a request, checked; refusals are 4xx GatewayErrors. With a `budget`
    (the gateway's), images are counted against the engine's limits with a volume's slices, before decoding."""
    body, media = parse_document(raw)
    if budget is not None and len(raw) > budget.max_body_bytes and not (chat and carries_volume(body)):
        raise too_large(
            len(raw), budget
        )  # first: only a volume request may be this large, whatever else it says
    model = check_model(body, served)
    stream = check_stream(body)
    images: list[ImagePart] = []
    if chat:
        images = image_parts(check_messages(body), media)
        if media is None and any(is_volume(item.part) for item in images):
            media = empty()  # the slices the gateway makes are held out of the JSON all the same
            images = [replace(item, media=media) for item in images]
        if budget is not None:
            images = plan(images, body, len(raw), budget)
        else:
            check_count(images, max_images)
    return Parsed(body, model, stream, images, machine_readable(body), media)


def carries_volume(body: dict[str, Any]) -> bool:
    """Whether any message holds a volume part (malformed messages are check_messages' to refuse)."""
    messages = body.get("messages")
    return isinstance(messages, list) and any(
        is_volume(part)
        for message in messages
        if isinstance(message, dict) and isinstance(message.get("content"), list)
        for part in message["content"]
        if isinstance(part, dict)
    )


def machine_readable(body: dict[str, Any]) -> bool:
    """True if the request asks for output a program parses: a non-text `response_format` (json_object,
    json_schema, structural_tag), any `structured_outputs` constraint (or a legacy guided_* field), or `tools`
    unless `tool_choice` is "none". Malformed values are vLLM's to refuse; here they only must not raise."""
    fmt = body.get("response_format")
    if isinstance(fmt, dict) and fmt.get("type") not in (None, "text"):
        return True
    constraints = body.get("structured_outputs")
    if isinstance(constraints, dict) and any(constraints.get(k) is not None for k in STRUCTURED_KINDS):
        return True
    if any(body.get(k) is not None for k in LEGACY_GUIDED):
        return True
    return bool(body.get("tools")) and body.get("tool_choice") != "none"


def finalize(
    parsed: Parsed, disclaimer: str, *, chat: bool, cache_salt: str | None = None, thinking: bool = False
) -> Prepared:
    """The body for the engine: the disclaimer merged into the system turn, usage asked for in streams, client
    media ids dropped, and the tenant's cache salt (see tenant_salt) in place of any the client sent."""
    body = parsed.body
    if chat:
        body["messages"] = disc.merge_system(body["messages"], disclaimer, thinking=thinking)
        drop_media_ids(body["messages"])
    if cache_salt is not None:
        body["cache_salt"] = cache_salt
    strip = ask_for_usage(body) if parsed.stream else False
    return Prepared(encode(body, parsed.media), parsed.model, parsed.stream, strip, parsed.machine_readable)


def drop_media_ids(messages: list[dict[str, Any]]) -> None:
    """Remove the 'uuid' of every content part. vLLM 0.32 takes a part's uuid as the image's identity in its
    multimodal and prefix caches instead of hashing the pixels (vllm/multimodal/processing/inputs.py,
    get_mm_hashes): a client naming another's uuid would be answered from that image. Without it vLLM hashes
    the image itself."""
    for message in messages:
        content = message.get("content")
        if isinstance(content, list):
            for part in content:
                part.pop("uuid", None)


def tenant_salt(key_hash: str | None) -> str | None:
    """The engine's prefix-cache salt for one API key, derived from the key's hash (never the key): requests of
    different keys never share cached prefixes, so response timing cannot reveal another tenant's prompts.
    None in local mode (no keys, one tenant): a client's own cache_salt then passes through as sent."""
    if key_hash is None:
        return None
    # 64 hex characters: vLLM takes at most 128 and none of '@', '/', '\\'.
    return hashlib.sha256(SALT_CONTEXT + key_hash.encode()).hexdigest()


def encode(body: dict[str, Any], media: InlineMedia | None = None) -> Body:
    """orjson parses 1024 levels deep but writes only 255: deeper input is the client's error, found here at no
    per-request cost (no depth walk). Data URLs cut from the request and left alone go back as they came, and
    with the images made here they are pieces of the body, not copied into one."""
    try:
        return restore_pieces(orjson.dumps(body), media)
    except orjson.JSONEncodeError:
        raise bad_request(
            "The request body nests arrays or objects too deeply (at most 255 levels).", code="json_too_deep"
        ) from None


def prepare(raw: bytes, served: list[str], disclaimer: str, *, chat: bool) -> Prepared:
    """parse + finalize, for callers with no images to decode (and for tests of the pure rewrite)."""
    return finalize(parse(raw, served, chat=chat), disclaimer, chat=chat)
