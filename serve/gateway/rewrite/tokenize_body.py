"""Checks /tokenize and /detokenize requests (pure). Chat messages get chat's checks and rewrite, so the count
is of what the engine would be sent: the disclaimer's system turn and the checked images included."""

from __future__ import annotations

from serve.gateway.errors import bad_request
from serve.gateway.rewrite.image_budget import ImageBudget, plan
from serve.gateway.rewrite.images import ImagePart, image_parts
from serve.gateway.rewrite.request_body import (
    Parsed,
    Prepared,
    check_messages,
    check_model,
    finalize,
    parse_document,
    parse_json,
)


def parse_tokenize(raw: bytes, served: list[str], *, budget: ImageBudget | None = None) -> Parsed:
    """A prompt (as /v1/completions sends it) or chat messages (as /v1/chat/completions), never a stream. With
    the gateway's `budget`, the body size and the images are checked as chat's are, before any is decoded."""
    body, media = parse_document(raw)
    model = check_model(body, served)
    images: list[ImagePart] = []
    if "messages" in body:
        images = image_parts(check_messages(body), media)
    elif not isinstance(body.get("prompt"), str):
        raise bad_request(
            "/tokenize needs 'prompt' (a string) or 'messages' (as chat completions).", "prompt"
        )
    if budget is not None:
        images = plan(images, body, len(raw), budget)
    # machine_readable: the answer is token ids; only the `disclaimer` field is added to it.
    return Parsed(body, model, False, images, machine_readable=True, media=media)


def finalize_tokenize(parsed: Parsed, disclaimer: str, *, thinking: bool = False) -> Prepared:
    """Messages rewritten as for chat (no cache salt: tokenizing fills no cache); a prompt untouched."""
    return finalize(parsed, disclaimer, chat="messages" in parsed.body, thinking=thinking)


def parse_detokenize(raw: bytes, served: list[str], *, budget: ImageBudget | None = None) -> Prepared:
    """Token ids back to text: the model (with `budget`, the body size too) checked, the body passed as sent
    (vLLM checks the ids)."""
    body = parse_json(raw)
    model = check_model(body, served)
    if budget is not None:
        plan([], body, len(raw), budget)
    return Prepared(raw, model, False, False, machine_readable=True)
