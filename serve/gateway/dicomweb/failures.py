"""What a DICOMweb failure becomes for the client: one OpenAI envelope per kind, naming the source and the server
by its configured name (never the URL, a UID or a credential). Pure.

- dicomweb_not_found 404: the server has no such study, series or instance.
- dicomweb_forbidden 403 when the server refused the CLIENT's forwarded credential (the client can act on it);
  502 when it refused the gateway's own (an operator's misconfiguration, not the client's fault).
- dicomweb_unreachable 502 (refused or broken connection, a 5xx answer), 504 (no answer in time).
- dicomweb_bad_response 502: an answer the gateway cannot use (a redirect, another 4xx, a malformed body).
"""

from __future__ import annotations

from serve.gateway.errors import GatewayError


def not_found(where: str, server: str, what: str) -> GatewayError:
    return GatewayError(
        404,
        f"{where}: the DICOMweb server {server!r} has no such {what} (check the UIDs).",
        "not_found_error",
        "dicomweb_not_found",
        where,
    )


def forbidden(where: str, server: str, whose: str) -> GatewayError:
    if whose == "client":
        return GatewayError(
            403,
            f"{where}: the DICOMweb server {server!r} refused the access_credential sent with the request.",
            "permission_error",
            "dicomweb_forbidden",
            where,
        )
    return GatewayError(
        502,
        f"{where}: the DICOMweb server {server!r} refused this gateway's credential; the operator must fix it.",
        "server_error",
        "dicomweb_forbidden",
        where,
    )


def unreachable(where: str, server: str, why: str, *, timeout: bool = False) -> GatewayError:
    return GatewayError(
        504 if timeout else 502,
        f"{where}: the DICOMweb server {server!r} {why}; retry later.",
        "server_error",
        "dicomweb_unreachable",
        where,
    )


def bad_response(where: str, server: str, why: str) -> GatewayError:
    return GatewayError(
        502,
        f"{where}: the DICOMweb server {server!r} gave an answer this gateway cannot use ({why}).",
        "server_error",
        "dicomweb_bad_response",
        where,
    )


def too_large(where: str, server: str, limit: int, *, whole_part: bool = False) -> GatewayError:
    what = "what the part names" if whole_part else "an object"
    return GatewayError(
        400,
        f"{where}: {what} on the DICOMweb server {server!r} is larger than this gateway's limit of "
        f"{limit} bytes{' for one part (ask for fewer slices)' if whole_part else ''}.",
        "invalid_request_error",
        "image_too_large",
        where,
    )


__all__ = ["bad_response", "forbidden", "not_found", "too_large", "unreachable"]
