"""POST /tokenize and /detokenize, guarded as the model routes are, so clients can budget prompts."""

from __future__ import annotations

from aiohttp import web

from serve.gateway.dependencies import Gateway
from serve.gateway.rewrite.answers import Choices
from serve.gateway.rewrite.images import ingest_images
from serve.gateway.rewrite.tokenize_body import finalize_tokenize, parse_detokenize, parse_tokenize
from serve.gateway.routes.model import model_call, send
from serve.gateway.telemetry.records import Record


async def tokenize(request: web.Request) -> web.StreamResponse:
    return await model_call(request, route="/tokenize", forward=_tokenize)


async def detokenize(request: web.Request) -> web.StreamResponse:
    return await model_call(request, route="/detokenize", forward=_detokenize)


async def _tokenize(
    request: web.Request, gw: Gateway, rec: Record, raw: bytes, salt: str | None
) -> web.StreamResponse:
    parsed = parse_tokenize(raw, gw.cfg.models, budget=gw.cfg.image_budget)
    rec.model = parsed.model
    if parsed.images:  # checked and normalised as chat's: the count is of the image the engine would see
        await ingest_images(parsed.images, gw.settings.images, gw.image_pool)
    disclaimer = gw.settings.disclaimer
    prep = finalize_tokenize(parsed, disclaimer.text, thinking=disclaimer.thinking)
    return await send(request, gw, rec, prep, _answers(gw))


async def _detokenize(
    request: web.Request, gw: Gateway, rec: Record, raw: bytes, salt: str | None
) -> web.StreamResponse:
    prep = parse_detokenize(raw, gw.cfg.models, budget=gw.cfg.image_budget)
    rec.model = prep.model
    return await send(request, gw, rec, prep, _answers(gw))


def _answers(gw: Gateway) -> Choices:
    """Token answers have no choices: they get the `disclaimer` field (and header) like every answer, no more."""
    return Choices(False, gw.settings.disclaimer.text, gw.settings.disclaimer.append_to_output)
