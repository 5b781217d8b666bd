"""The one error type the gateway originates, rendered as an OpenAI JSON envelope or as an in-band SSE frame."""

from __future__ import annotations

from dataclasses import dataclass, field

import orjson
from aiohttp import web


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
