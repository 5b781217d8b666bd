"""Remote image URLs: only a strict `https://host/path` on the allow-list passes, so the gateway's URL parser
and vLLM's fetcher (urllib3 / aiohttp) cannot disagree on the host."""

import socket
from urllib.parse import urlsplit

import pytest
import yarl
from urllib3.util import parse_url

from serve.config import ConfigError, ImageSettings, load_config
from serve.gateway.errors import GatewayError
from serve.gateway.rewrite.remote_url import check_remote
from tests.conftest import ACK, MODEL
from tests.unit.test_command import CONFIGS

ALLOWED = ImageSettings(remote_hosts=["allowed.example"])
BYPASSES = [
    "https://attacker.example\\@allowed.example/x.png",  # urlsplit: allowed.example; urllib3: attacker.example
    "https://user@allowed.example/x.png",
    "https://allowed.example%2f@attacker.example/",
    "https://attacker.example%40allowed.example/",
    "https://allowed.example./x.png",  # trailing dot
    "https://[::1]/x.png",
    "https://[2606:4700::1111]/x.png",
    "https://allowed.exam\u0440le/x.png",  # a Cyrillic letter
    "https://allowed.example\\x.png",
    "https://allowed.example/x.png#frag",
    "https://allowed.example:0/x.png",
    "https://allowed.example:99999/x.png",
    "https://allowed.example/x y.png",
    "http://allowed.example/x.png",
    "https://allowed.example.attacker.example/x.png",
]
ACCEPTED = [
    "https://allowed.example/x.png",
    "https://ALLOWED.Example/x.png",
    "https://allowed.example:8443/cxr/1.png?size=896&sig=a%2Fb",
]


@pytest.fixture
def resolved(monkeypatch):
    """Every name resolves to a public address: only the URL checks can refuse. Records the names asked."""
    asked = []

    def fake(host, port, *args, **kwargs):
        asked.append(host)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", port))]

    monkeypatch.setattr(socket, "getaddrinfo", fake)
    return asked


@pytest.mark.parametrize("url", BYPASSES)
def test_urls_other_parsers_could_read_differently_are_refused(resolved, url):
    with pytest.raises(GatewayError) as refused:
        check_remote(url, "messages[0].content[0]", ALLOWED)
    assert refused.value.code == "remote_image_refused"
    assert refused.value.status == 400


@pytest.mark.parametrize("url", ACCEPTED)
def test_plain_https_urls_on_the_list_pass_and_every_parser_agrees_on_their_host(resolved, url):
    check_remote(url, "messages[0].content[0]", ALLOWED)
    assert resolved == ["allowed.example"]
    assert urlsplit(url).hostname == parse_url(url).hostname == yarl.URL(url).host == "allowed.example"


def test_a_listed_host_resolving_to_a_private_address_is_refused(monkeypatch):
    monkeypatch.setattr(socket, "getaddrinfo", lambda *a, **k: [(2, 1, 6, "", ("10.0.0.5", 443))])
    with pytest.raises(GatewayError, match="private"):
        check_remote("https://allowed.example/x.png", "m", ALLOWED)


@pytest.mark.parametrize(
    "host", ["https://allowed.example", "allowed.example.", "allowed.example:443", "[::1]"]
)
def test_the_allow_list_takes_plain_host_names_only(host):
    with pytest.raises(ValueError, match="plain host name"):
        ImageSettings(remote_hosts=[host])
    assert ImageSettings(remote_hosts=["Allowed.Example"]).remote_hosts == ["allowed.example"]


def test_remote_hosts_in_a_profile_are_checked_when_it_loads():
    with pytest.raises(ConfigError, match="remote_hosts"):
        load_config(CONFIGS / "cpu-demo.yaml", {"gateway": {"images": {"remote_hosts": ["a@b"]}}})


async def test_bypass_urls_never_reach_the_engine(make_gateway, script, resolved):
    gw = await make_gateway(images={"remote_hosts": ["allowed.example"]})
    for url in BYPASSES[:4]:
        part = {"type": "image_url", "image_url": {"url": url}}
        body = {"model": MODEL, "messages": [{"role": "user", "content": [part]}]}
        resp = await gw.post("/v1/chat/completions", json=body, headers=ACK)
        assert resp.status == 400, url
        assert (await resp.json())["error"]["code"] == "remote_image_refused"
    assert script.seen == []
