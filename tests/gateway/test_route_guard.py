"""Every route the gateway serves is either on the short public list or refuses unacknowledged clients."""

import re

PUBLIC = {"/v1/terms", "/health", "/metrics", "/metrics/engine"}
KEY_ONLY = {"/v1/terms/acknowledge"}  # acknowledging is how a key becomes acknowledged


def routes(client):
    """(method, path) of every route; a path template's variables filled in (/v1/responses/{id} -> /v1/responses/x)."""
    return sorted(
        {
            (r.method, re.sub(r"{\w+}", "x", r.resource.canonical))
            for r in client.app.router.routes()
            if r.method != "HEAD"
        }
    )


async def test_every_non_public_route_refuses_an_unacknowledged_client(gateway, script):
    guarded = [(m, p) for m, p in routes(gateway) if p not in PUBLIC | KEY_ONLY]
    assert {p for _, p in guarded} >= {"/v1/chat/completions", "/v1/completions", "/v1/models"}
    for method, path in guarded:
        resp = await gateway.request(
            method, path, json={"model": "demo-model", "messages": [], "prompt": "x"}
        )
        assert resp.status == 403, (method, path)
    assert script.seen == []


async def test_with_keys_every_non_public_route_refuses_an_unknown_key(make_gateway, script):
    gw = await make_gateway(keys=["sk-real"])
    headers = {"Authorization": "Bearer sk-forged", "HAI-DEF-Acknowledged": "2024-11-15"}
    for method, path in routes(gw):
        if path in PUBLIC:
            continue
        resp = await gw.request(method, path, json={"version": "2024-11-15"}, headers=headers)
        assert resp.status == 401, (method, path)
    assert script.seen == []


async def test_public_list_is_exactly_what_is_served_without_credentials(gateway):
    for path in PUBLIC:
        assert (await gateway.get(path)).status == 200, path
