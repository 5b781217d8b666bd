"""API keys: loaded from an environment variable or a file (never YAML), hashed, compared in constant time."""

from __future__ import annotations

import hashlib
import hmac
import os
from pathlib import Path

from serve.config import AuthSettings


def hash_key(key: str) -> str:
    """What the gateway keeps of a key: its SHA-256, never the key itself."""
    return hashlib.sha256(key.encode()).hexdigest()


class KeyRing:
    """The configured keys as hashes; empty means local mode (no keys, header acknowledgement only)."""

    def __init__(self, keys: list[str] | None = None) -> None:
        self._hashes = tuple(hash_key(k) for k in keys or () if k)

    @classmethod
    def from_settings(cls, settings: AuthSettings, environ: dict[str, str] | None = None) -> KeyRing:
        environ = dict(os.environ if environ is None else environ)
        keys: list[str] = []
        if settings.api_keys_env:
            keys += _split(environ.get(settings.api_keys_env, ""))
        if settings.api_keys_file:
            keys += _split(Path(settings.api_keys_file).read_text())
        return cls(keys)

    @property
    def enabled(self) -> bool:
        return bool(self._hashes)

    def __len__(self) -> int:
        return len(self._hashes)

    def verify(self, key: str) -> str | None:
        """The key's hash if it is configured, else None; every stored hash is compared (no early exit)."""
        digest = hash_key(key)
        found = False
        for known in self._hashes:
            found |= hmac.compare_digest(digest, known)
        return digest if found else None


def _split(text: str) -> list[str]:
    return [k.strip() for k in text.replace(",", "\n").splitlines() if k.strip() and not k.startswith("#")]


def bearer_token(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None
