"""The one error type the gateway originates, rendered as an OpenAI JSON envelope or as an in-band SSE frame."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field

import orjson
from aiohttp import web

log = logging.getLogger("serve.gateway")


@dataclass
class GatewayError(Exception):
    status: int
    message: str
    type: str
    code: str
    param: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    close: bool = False  # the connection cannot carry another request (its body was left unread)

    def envelope(self) -> dict:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}

    def to_response(self, headers: dict[str, str] | None = None) -> web.Response:
        resp = web.json_response(
            self.envelope(), status=self.status, headers={**self.headers, **(headers or {})}
        )
        if self.close:
            resp.force_close()
        return resp

    def to_sse(self) -> bytes:
        """Once a stream has begun the status line is gone: the error travels in-band, then [DONE]."""
        return b"data: " + orjson.dumps(self.envelope()) + b"\n\ndata: [DONE]\n\n"


def bad_request(message: str, param: str | None = None, code: str = "invalid_request") -> GatewayError:
    return GatewayError(400, message, "invalid_request_error", code, param)


def unauthorized(message: str) -> GatewayError:
    return GatewayError(
        401, message, "authentication_error", "invalid_api_key", headers={"WWW-Authenticate": "Bearer"}
    )


def model_not_found(model: str, served: list[str]) -> GatewayError:
    return GatewayError(
        404,
        f"The model {model!r} does not exist here; this gateway serves: {', '.join(served)}.",
        "not_found_error",
        "model_not_found",
        "model",
    )


def route_not_found(path: str) -> GatewayError:
    return GatewayError(
        404,
        f"Unknown route {path!r}. See GET /v1/terms and the README for the routes served.",
        "not_found_error",
        "route_not_found",
    )


def engine_unavailable(detail: str) -> GatewayError:
    return GatewayError(
        503,
        f"The model engine is not available ({detail}); retry shortly.",
        "server_error",
        "engine_unavailable",
        headers={"Retry-After": "5"},
    )


def engine_timeout(detail: str) -> GatewayError:
    return GatewayError(
        504, f"The model engine did not answer in time ({detail}).", "server_error", "engine_timeout"
    )


def engine_failed(detail: str) -> GatewayError:
    return GatewayError(
        502, f"The model engine failed while answering ({detail}).", "server_error", "engine_error"
    )


def store_unavailable() -> GatewayError:
    return GatewayError(
        503,
        "The acknowledgement store is not reachable, so acknowledgements cannot be checked; retry shortly.",
        "server_error",
        "store_unavailable",
        headers={"Retry-After": "5"},
    )


def shutting_down() -> GatewayError:
    """A request the gateway ends, or refuses, while it shuts down: another gateway behind the balancer takes it."""
    return GatewayError(
        503,
        "This gateway is shutting down; retry the request.",
        "server_error",
        "server_shutting_down",
        headers={"Retry-After": "1"},
        close=True,
    )


def internal_error() -> GatewayError:
    """A failure of the gateway itself: a bug, never the client's fault; the log has the details."""
    return GatewayError(
        500,
        "The gateway failed while handling this request; it is logged under this request's X-Request-Id.",
        "server_error",
        "internal_error",
    )


def unexpected(request_id: str, exc: BaseException) -> GatewayError:
    """Log one line for an exception no handler expected, and give the 500 the client sees. The line holds the
    type and where it was raised, never the message: messages can quote request content (a KeyError's key, a
    JSON error's input)."""
    log.error("request %s failed: unexpected %s%s", request_id, type(exc).__name__, _raised_at(exc))
    return internal_error()


def _raised_at(exc: BaseException) -> str:
    tb = exc.__traceback__
    if tb is None:
        return ""
    while tb.tb_next is not None:
        tb = tb.tb_next
    code = tb.tb_frame.f_code
    return f" at {os.path.basename(code.co_filename)}:{tb.tb_lineno} in {code.co_name}"
