"""API keys: read from an environment variable or a file (never YAML), kept as keyed hashes (HMAC-SHA256),
compared in constant time."""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Mapping
from pathlib import Path

from serve.config import AuthSettings, ConfigError, GatewaySettings
from serve.gateway.admission.key_secret import hash_secret


def keyed_hash(secret: bytes, key: str) -> str:
    """What the gateway keeps of a key: its HMAC-SHA256 under the store's secret, never the key itself."""
    return hmac.new(secret, key.encode(), hashlib.sha256).hexdigest()


def legacy_hash(key: str) -> str:
    """The plain SHA-256 that gateways stored before keyed hashes; used only to move such rows (gate.py)."""
    return hashlib.sha256(key.encode()).hexdigest()


class KeyRing:
    """The configured keys as keyed hashes; empty means local mode (no keys, header acknowledgement only)."""

    def __init__(self, keys: list[str] | None = None, *, secret: bytes | None = None) -> None:
        keys = [k for k in keys or () if k]
        if keys and not secret:
            raise ValueError("a KeyRing with keys needs the secret its hashes are keyed with")
        self._secret = secret or b""
        self._hashes = tuple(keyed_hash(self._secret, k) for k in keys)

    @classmethod
    def from_settings(cls, settings: GatewaySettings, environ: Mapping[str, str] | None = None) -> KeyRing:
        """The profile's keys; a key source that is named but yields no key is a ConfigError, never local mode."""
        environ = os.environ if environ is None else environ
        keys = read_keys(settings.auth, environ)
        return cls(keys, secret=hash_secret(settings, environ)) if keys else cls()

    @property
    def enabled(self) -> bool:
        return bool(self._hashes)

    def __len__(self) -> int:
        return len(self._hashes)

    def hash(self, key: str) -> str:
        return keyed_hash(self._secret, key)

    def verify(self, key: str) -> str | None:
        """The key's hash if it is configured, else None; every stored hash is compared (no early exit)."""
        try:
            digest = self.hash(key)
        except UnicodeEncodeError:  # header bytes that are not UTF-8 (aiohttp keeps them as surrogates)
            return None
        found = False
        for known in self._hashes:
            found |= hmac.compare_digest(digest, known)
        return digest if found else None


def parse_keys(text: str, *, commas: bool) -> list[str]:
    """Keys one a line (and, with commas, also comma-separated), each trimmed; blank lines and lines that
    start with '#' once trimmed are skipped, so a comment never becomes a key, whatever it contains."""
    keys: list[str] = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keys += line.split(",") if commas else [line]
    return [k.strip() for k in keys if k.strip()]


def read_keys(auth: AuthSettings, environ: Mapping[str, str]) -> list[str]:
    """Keys from the named variable (commas or lines) and file (lines only: a key may hold a comma)."""
    keys: list[str] = []
    if auth.api_keys_env:
        keys += _required(
            parse_keys(environ.get(auth.api_keys_env, ""), commas=True),
            f"api_keys_env: the environment variable {auth.api_keys_env}",
        )
    if auth.api_keys_file:
        keys += _required(
            parse_keys(_read(auth.api_keys_file), commas=False), f"api_keys_file: {auth.api_keys_file}"
        )
    return keys


def _required(keys: list[str], source: str) -> list[str]:
    if not keys:
        raise ConfigError(
            f"gateway.auth.{source} holds no API key (unset, empty or only comments): refusing to start "
            "without keys. Provide the keys, or remove the setting to serve in local mode."
        )
    return keys


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"gateway.auth.api_keys_file: cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"gateway.auth.api_keys_file: {path} is not UTF-8 text") from None


def bearer_token(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None
