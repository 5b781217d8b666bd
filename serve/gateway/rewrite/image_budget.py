"""What a request's images may cost, checked before any is decoded (pure): the engine's image limit
(limit-mm-per-prompt), its context (max-model-len) at tokens_per_image each, and the larger body limit that only
a volume earns. A volume part counts the slices it will expand to."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from serve.config.gateway import VolumeSettings
from serve.gateway.errors import GatewayError, bad_request
from serve.gateway.rewrite.images import ImagePart
from serve.gateway.rewrite.volume_request import VolumeSpec, is_volume, volume_spec


@dataclass(frozen=True)
class ImageBudget:
    max_images: int | None  # vLLM's limit-mm-per-prompt (None: no gateway check)
    context_len: int | None  # vLLM's max-model-len (None: the engine's own default decides)
    tokens_per_image: int
    volumes: VolumeSettings
    max_body_bytes: int  # a request without a volume part; one with a volume may reach volumes.max_body_bytes


@dataclass(frozen=True)
class Room:
    """The slices one volume part may expand to beside the rest of its request, by each bound (None: none)."""

    images: int | None
    context: int | None

    def check(self, spec: VolumeSpec, slices: int) -> None:
        """Once the headers give the exact count (a multi-frame object counted once until then)."""
        if self.images is not None and slices > self.images:
            raise over_room(spec, slices, self.images, "too_many_images", "image limit")
        if self.context is not None and slices > self.context:
            raise over_room(spec, slices, self.context, "context_budget_exceeded", "context")


def plan(images: list[ImagePart], body: dict[str, Any], size: int, budget: ImageBudget) -> list[ImagePart]:
    """The image parts, volume parts carrying their checked spec and the room they may expand into."""
    specs = [volume_spec(item, budget.volumes) if is_volume(item.part) else None for item in images]
    if size > budget.max_body_bytes and not any(specs):
        raise too_large(size, budget)
    counts = [spec.fewest_images if spec else 1 for spec in specs]
    check_images(images, counts, budget)
    reserve = answer_tokens(body)
    check_context(images, counts, reserve, budget)
    return [
        replace(item, volume=spec, room=room_for(sum(counts) - count, reserve, budget)) if spec else item
        for item, spec, count in zip(images, specs, counts, strict=True)
    ]


def check_images(images: list[ImagePart], counts: list[int], budget: ImageBudget) -> None:
    limit, total = budget.max_images, 0
    for item, count in zip(images, counts, strict=True):
        total += count
        if limit is not None and total > limit:
            raise too_many(sum(counts), limit, item.where)


def check_context(images: list[ImagePart], counts: list[int], reserve: int, budget: ImageBudget) -> None:
    if budget.context_len is None:
        return
    total = 0
    for item, count in zip(images, counts, strict=True):
        total += count
        if total * budget.tokens_per_image + reserve > budget.context_len:
            raise over_context(sum(counts), reserve, budget, item.where)


def room_for(others: int, reserve: int, budget: ImageBudget) -> Room:
    """How many slices one volume may expand to beside the request's `others` images."""
    images = budget.max_images - others if budget.max_images is not None else None
    context = None
    if budget.context_len is not None:
        context = (budget.context_len - reserve) // budget.tokens_per_image - others
    return Room(images, context)


def answer_tokens(body: dict[str, Any]) -> int:
    """The answer's room the check keeps: one token. vLLM 0.32 refuses only a prompt that fills the context and
    shortens a longer max_tokens to what is left (`get_max_tokens`, vllm/entrypoints/serve/utils/api_utils.py;
    tests/engine/test_multi_image_engine.py pins it), so the client's max_tokens is not counted: the gateway
    never refuses what the engine would answer."""
    return 1


def too_many(count: int, limit: int, where: str) -> GatewayError:
    return bad_request(
        f"This model takes at most {limit} image(s) per request; this one has {count} (a volume counts its "
        "slices: ask for fewer with 'max_slices').",
        where,
        "too_many_images",
    )


def over_context(count: int, reserve: int, budget: ImageBudget, where: str) -> GatewayError:
    return bad_request(
        f"{count} image(s) at {budget.tokens_per_image} tokens each"
        + (f" plus {reserve} token(s) of answer" if reserve else "")
        + f" exceed this model's context of {budget.context_len} tokens (before any text); send fewer images "
        "or slices ('max_slices').",
        where,
        "context_budget_exceeded",
    )


def over_room(spec: VolumeSpec, slices: int, room: int, code: str, bound: str) -> GatewayError:
    return bad_request(
        f"{spec.where}: the series gives {slices} slices; this request's {bound} leaves room for {room} "
        f"(ask for 'max_slices': {max(room, 1)} or fewer).",
        spec.where,
        code,
    )


def too_large(size: int, budget: ImageBudget) -> GatewayError:
    return GatewayError(
        413,
        f"The request body is {size} bytes, larger than this gateway's limit of {budget.max_body_bytes} bytes "
        f"(a request with a volume part may have {budget.volumes.max_body_bytes}).",
        "invalid_request_error",
        "request_too_large",
    )
