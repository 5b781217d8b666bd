"""Which Authorization header goes to a DICOMweb server: the client's own bearer token where the server is set to
forward it, else the gateway's, read from its environment variable or file at each use (a rotated secret takes
effect without a restart). Never logged, never in an error message."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Literal

from serve.config.dicomweb import DicomwebServer
from serve.gateway.errors import GatewayError

MAX_SECRET_BYTES = 64 * 1024


@dataclass(frozen=True)
class Credential:
    header: str | None  # the Authorization value, or None: the request goes without one
    whose: Literal["client", "gateway", "none"]

    def __repr__(self) -> str:  # a stray log line or traceback must not carry the secret
        return f"Credential(whose={self.whose!r})"


def credential(server: DicomwebServer, client_token: str | None) -> Credential:
    if client_token is not None and server.forward_client_credential:
        return Credential(f"Bearer {client_token}", "client")
    value = configured(server)
    return Credential(value, "gateway") if value else Credential(None, "none")


def configured(server: DicomwebServer) -> str | None:
    if server.authorization_env:
        value = os.environ.get(server.authorization_env, "").strip()
    elif server.authorization_file:
        try:
            with open(server.authorization_file, "rb") as f:  # a few bytes from the page cache
                value = f.read(MAX_SECRET_BYTES).decode("utf-8").strip()
        except (OSError, UnicodeDecodeError):
            value = ""
    else:
        return None
    if not value or any(c in value for c in "\r\n"):
        raise GatewayError(
            502,
            f"The credential this gateway uses for the DICOMweb server {server.name!r} is not set (its "
            "environment variable or file is empty or unreadable); the operator must set it.",
            "server_error",
            "dicomweb_forbidden",
        )
    return value


__all__ = ["Credential", "credential"]
