"""The two ways to acknowledge the HAI-DEF terms: a header on every request, or once per API key."""

import sys

import httpx
from openai import OpenAI

from clients._common import API_KEY, BASE_URL, MODEL, TERMS_VERSION


def show_terms() -> dict:
    """GET /v1/terms needs no key: read the terms and restrictions before acknowledging."""
    terms = httpx.get(BASE_URL + "/terms").json()
    print(f"HAI-DEF Terms of Use, version {terms['version']}: {terms['terms_url']}")
    for restriction in terms["use_restrictions"]:
        print(" -", restriction)
    return terms


def per_request() -> str:
    """Stateless clients: the header travels with every request."""
    client = OpenAI(
        base_url=BASE_URL, api_key=API_KEY, default_headers={"HAI-DEF-Acknowledged": TERMS_VERSION}
    )
    out = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "Hi"}], max_tokens=8
    )
    return out.choices[0].message.content


def per_key(api_key: str) -> str:
    """Gateways with API keys: acknowledge once for the key; later requests need no header."""
    resp = httpx.post(
        BASE_URL + "/terms/acknowledge",
        json={"version": TERMS_VERSION},
        headers={"Authorization": f"Bearer {api_key}"},
    )
    resp.raise_for_status()
    print("acknowledged at", resp.json()["acknowledged_at"])
    client = OpenAI(base_url=BASE_URL, api_key=api_key)
    out = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "Hi"}], max_tokens=8
    )
    return out.choices[0].message.content


if __name__ == "__main__":
    show_terms()
    print(per_key(sys.argv[1]) if len(sys.argv) > 1 else per_request())
