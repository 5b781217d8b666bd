"""The Responses API: POST /v1/responses through the model routes' admission, checks and forwarding; the routes of
stored responses refused, since the gateway stores none."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from serve.gateway.dependencies import Gateway
from serve.gateway.errors import GatewayError
from serve.gateway.rewrite import responses_body
from serve.gateway.rewrite.answers import Relay
from serve.gateway.rewrite.images import ingest_images
from serve.gateway.rewrite.request_body import Prepared
from serve.gateway.rewrite.responses_output import attach_to_response, token_usage
from serve.gateway.rewrite.responses_sse import ResponsesRelay
from serve.gateway.routes.model import model_call, send
from serve.gateway.telemetry.records import Record

ROUTE = "/v1/responses"
STORED = "/v1/responses/{response_id}"  # GET (retrieve) and DELETE
STORED_ROUTES = (  # (method, route template): the OpenAI routes that read stored responses
    ("GET", STORED),
    ("DELETE", STORED),
    ("POST", STORED + "/cancel"),
    ("GET", STORED + "/input_items"),
)


@dataclass(frozen=True)
class ResponsesAnswers:
    """How a Responses answer carries the disclaimer (rewrite/answers.py): see responses_output and responses_sse."""

    disclaimer: str
    append: bool

    def attach(self, answer: dict[str, Any], prep: Prepared) -> None:
        attach_to_response(
            answer, self.disclaimer, append=self.append, machine_readable=prep.machine_readable
        )

    def usage(self, answer: dict[str, Any]) -> dict[str, Any] | None:
        return token_usage(answer.get("usage"))

    def relay(self, prep: Prepared) -> Relay:
        return ResponsesRelay(self.disclaimer, append=self.append and not prep.machine_readable)


async def create(request: web.Request) -> web.StreamResponse:
    return await model_call(request, route=ROUTE, forward=_forward)


async def _forward(
    request: web.Request, gw: Gateway, rec: Record, raw: bytes, salt: str | None
) -> web.StreamResponse:
    parsed = responses_body.parse(raw, gw.cfg.models, budget=gw.cfg.image_budget)
    rec.model, rec.stream = parsed.model, parsed.stream
    if parsed.images:  # decoding and resizing: in the image worker processes, off the event loop
        await ingest_images(parsed.images, gw.settings.images, gw.image_pool)
    disclaimer = gw.settings.disclaimer
    prep = responses_body.finalize(parsed, disclaimer.text, cache_salt=salt, thinking=disclaimer.thinking)
    return await send(request, gw, rec, prep, ResponsesAnswers(disclaimer.text, disclaimer.append_to_output))


def stored_route(route: str) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """A handler for one route of stored responses: admitted like every model route (so it says nothing to a
    client that has not acknowledged the terms), then refused."""

    async def refuse(request: web.Request) -> web.StreamResponse:
        return await model_call(request, route=route, forward=_not_stored)

    return refuse


async def _not_stored(
    request: web.Request, gw: Gateway, rec: Record, raw: bytes, salt: str | None
) -> web.StreamResponse:
    raise GatewayError(
        404,
        f"No stored response can be read here: {responses_body.NOT_STORED}",
        "not_found_error",
        "response_not_stored",
    )
