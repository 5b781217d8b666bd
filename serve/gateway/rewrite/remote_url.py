"""Remote image URLs: the one strict form the gateway lets through to the engine, and the host checks."""

from __future__ import annotations

import ipaddress
import re
import socket

from serve.config import ImageSettings
from serve.config.gateway import HOST_NAME
from serve.gateway.errors import GatewayError, bad_request

# Only `https://host[:port]/path[?query]`, in plain ASCII. The gateway checks the URL with one parser and vLLM
# fetches it with another (urllib3 / aiohttp): `https://evil\@allowed/` is host `allowed` to urllib's urlsplit
# and `evil` to urllib3. Rather than chase each disagreement (user-info, backslashes, percent-encoded or
# non-ASCII hosts, IP literals, fragments), a grammar this narrow leaves nothing to read two ways. The engine
# also gets the allow-list itself and follows no redirects (serve/engine/command.py).
_STRICT = re.compile(
    rf"https://(?P<host>{HOST_NAME})(?::(?P<port>[0-9]{{1,5}}))?(?P<rest>[/?][A-Za-z0-9\-._~!$&'()*+,;=:@/?%]*)?",
    re.IGNORECASE,
)


def refused(where: str, why: str) -> GatewayError:
    return bad_request(f"{where}: {why}", where, "remote_image_refused")


def strict_host(url: str, where: str) -> tuple[str, int]:
    """(lower-case host, port) of a URL in the strict form; anything else is refused."""
    found = _STRICT.fullmatch(url)
    port = int(found["port"]) if found and found["port"] else 443
    if found is None or not 0 < port < 65536:
        raise refused(
            where,
            "a remote image URL must be a plain 'https://host/path' (no user name, backslash, encoded or "
            "non-ASCII host, IP literal or fragment); or send the image as a base64 data URL.",
        )
    return found["host"].lower(), port


def check_remote(url: str, where: str, settings: ImageSettings) -> None:
    """Remote URLs only for allow-listed https hosts that resolve to public addresses (no SSRF into the LAN).

    The address check runs once here and vLLM resolves again when it fetches (DNS rebinding stays possible for
    whoever controls an allow-listed host's DNS): list only hosts you trust.
    """
    scheme = url.partition(":")[0].lower()
    if scheme not in ("http", "https"):
        raise bad_request(f"{where}: image URLs must be base64 data URLs.", where, "invalid_image_url")
    if scheme != "https" or not settings.remote_hosts:
        raise refused(
            where,
            "this gateway does not fetch remote images; send the image as a base64 data URL "
            "('data:image/png;base64,...').",
        )
    host, port = strict_host(url, where)
    if host not in settings.remote_hosts:
        raise refused(where, "the image host is not on this gateway's allow-list.")
    try:
        infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    except OSError:
        raise refused(where, "the image host does not resolve.") from None
    if not all(_public(str(info[4][0])) for info in infos):
        raise refused(where, "the image host resolves to a private, loopback or link-local address.")


def _public(address: str) -> bool:
    try:
        return ipaddress.ip_address(address.split("%", 1)[0]).is_global  # "%": an IPv6 zone (link-local)
    except ValueError:
        return False
