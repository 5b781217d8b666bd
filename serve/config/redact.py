"""What is hidden before config or a command line is logged: environment values, secret-named keys and flags,
passwords in URLs and in `name=value` text. Pure functions; serve/config/profile.py and the launcher use them."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

REDACTED = "<redacted>"
# A name is secret when its LAST word is one of these: api-key, hf-token, db_password, aws_secret_access_key,
# clientSecret. Only the last word, so vLLM's `max-num-batched-tokens` or `long-prefill-token-threshold` and our
# own `dsn_env` or `hash_secret_file` (which name where a secret lives, not the secret) stay readable.
SECRET_WORDS = frozenset(
    {
        "apikey",
        "auth",
        "authorization",
        "cookie",
        "credential",
        "credentials",
        "dsn",
        "key",
        "keys",
        "passphrase",
        "passwd",
        "password",
        "passwords",
        "pwd",
        "secret",
        "secrets",
        "token",
    }
)

# scheme://user:password@host: the password goes, the user and host stay.
_URL_PASSWORD = re.compile(r"(?P<head>\b[a-zA-Z][a-zA-Z0-9+.-]*://[^:/?#@\s]*):(?P<pw>[^@/?#\s]*)@")
# name=value or name: value in free text (libpq keyword DSNs, query strings, JSON, headers). The value is a
# lookahead so that a pair whose name is not secret (`http://...`) does not swallow a secret pair inside it.
_NAME_VALUE = re.compile(
    r"(?P<name>[A-Za-z][A-Za-z0-9_.-]*)(?P<sep>\"?\s*[=:]\s*)"
    r"(?=(?P<value>\"[^\"]*\"|'[^']*'|(?:(?i:bearer|basic|token)\s+)?[^\s&;,'\"?#]+))"
)
_CAMEL = re.compile(r"([a-z0-9])([A-Z])")


def words(name: str) -> list[str]:
    return [w for w in re.split(r"[-_.\s]+", _CAMEL.sub(r"\1_\2", name).lower()) if w]


def is_secret_name(name: str) -> bool:
    parts = words(name)
    # "per key" is a unit (max_concurrent_per_key), not a key.
    return bool(parts) and parts[-1] in SECRET_WORDS and parts[-2:-1] != ["per"]


def is_env_name(name: str) -> bool:
    parts = words(name)
    return parts[-1:] in (["env"], ["environ"], ["environment"]) or parts[-2:] in (
        ["env", "vars"],
        ["environment", "variables"],
    )


def redact_text(text: str) -> str:
    """Passwords in URLs and values of secret-named `name=value` pairs; everything else unchanged."""
    text = _URL_PASSWORD.sub(rf"\g<head>:{REDACTED}@", text)
    out, pos = [], 0
    for match in _NAME_VALUE.finditer(text):
        value = match["value"]
        if (
            match.start() < pos
            or not is_secret_name(match["name"])
            or value.strip("\"'").startswith(REDACTED)
        ):
            continue
        quote = value[0] if value[0] in "\"'" else ""
        out += [text[pos : match.end()], quote, REDACTED, quote]
        pos = match.end() + len(value)
    return "".join(out) + text[pos:]


def redact_tree(value: Any) -> Any:
    """A JSON-like tree (a config dump) with environments, secret-named values and URL passwords hidden."""
    if isinstance(value, Mapping):
        return {key: _redact_item(str(key), item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [redact_tree(item) for item in value]
    if isinstance(value, str):
        return redact_text(value)
    return value


def _redact_item(name: str, value: Any) -> Any:
    # Every value of an environment is hidden whatever its variable's name: an environment is where a GPU box
    # keeps HF_TOKEN, and a name does not say whether its value is a secret. The names stay (what is set).
    if isinstance(value, Mapping) and is_env_name(name):
        return {key: REDACTED for key in value}
    if is_secret_name(name) and not isinstance(value, Mapping):  # a secret-named section: its keys decide
        return _wipe(value)
    return redact_tree(value)


def _wipe(value: Any) -> Any:
    """Every leaf hidden; booleans and nulls say only whether something is on or set."""
    if isinstance(value, list | tuple):
        return [_wipe(item) for item in value]
    if value is None or isinstance(value, bool):
        return value
    return REDACTED


def redact_argv(argv: Sequence[str]) -> list[str]:
    """A command line for the log: the values of secret-named flags (`--api-key X`, `--hf-token=X`, every value
    of a multi-valued one) hidden, JSON values redacted as trees, every other argument as text."""
    out: list[str] = []
    secret = False
    for arg in argv:
        if arg.startswith("--"):
            name, eq, value = arg[2:].partition("=")
            secret = is_secret_name(name)
            out.append(f"--{name}={_flag_value(value, secret)}" if eq else arg)
            secret = secret and not eq
        else:
            out.append(_flag_value(arg, secret))
    return out


def _flag_value(value: str, secret: bool) -> str:
    if secret:
        return REDACTED
    if value[:1] in ("{", "["):
        try:
            tree = json.loads(value)
        except ValueError:
            return redact_text(value)
        hidden = redact_tree(tree)
        return value if hidden == tree else json.dumps(hidden, separators=(",", ":"))
    return redact_text(value)
