"""Who may use a model route: API key (when keys are configured), then HAI-DEF terms acknowledgement."""

from __future__ import annotations

from dataclasses import dataclass

from serve import terms
from serve.config import TermsSettings
from serve.gateway.admission.api_keys import KeyRing, bearer_token, legacy_hash
from serve.gateway.errors import GatewayError, unauthorized
from serve.gateway.stores.base import AckStore


@dataclass(frozen=True)
class Client:
    key_hash: str | None  # None in local mode
    legacy_hash: str | None = None  # the key's plain SHA-256, which older gateways stored


def identify(keys: KeyRing, authorization: str | None) -> Client:
    """The caller's identity; with keys configured a missing or unknown bearer token is a 401."""
    if not keys.enabled:
        return Client(None)
    token = bearer_token(authorization)
    if token is None:
        raise unauthorized("This gateway needs an API key: send 'Authorization: Bearer <key>'.")
    key_hash = keys.verify(token)
    if key_hash is None:
        raise unauthorized("The API key is not valid for this gateway.")
    return Client(key_hash, legacy_hash(token))


async def acknowledgement(header: str | None, client: Client, store: AckStore, version: str) -> str | None:
    """None when acknowledged, else the refusal reason (a bounded label for metrics).

    A store that cannot be reached raises StoreUnavailable: the caller refuses, it never lets the client by.
    """
    if header is not None and header.strip() == version:
        return None
    if client.key_hash is not None and await key_acknowledged(client, store, version):
        return None
    return "outdated" if header else "missing"


async def key_acknowledged(client: Client, store: AckStore, version: str) -> bool:
    """Rows written under the key's plain SHA-256 (before keyed hashes) move to its keyed hash on the key's
    first verified use that misses, so its client need not acknowledge again."""
    assert client.key_hash is not None
    if await store.has(client.key_hash, version):
        return True
    if client.legacy_hash is None or not await store.rehash(client.legacy_hash, client.key_hash):
        return False
    return await store.has(client.key_hash, version)


def refusal(settings: TermsSettings, reason: str, keyed: bool) -> GatewayError:
    how = f"send the header '{terms.ACK_HEADER}: {settings.version}' with each request"
    if keyed:
        how += (
            f", or acknowledge once for your API key with POST /v1/terms/acknowledge "
            f'and the JSON body {{"version": "{settings.version}"}}'
        )
    stale = "The acknowledged terms version is not the current one. " if reason == "outdated" else ""
    message = (
        f"{stale}Use of this model requires acknowledging the Health AI Developer Foundations (HAI-DEF) "
        f"Terms of Use, version {settings.version}: {settings.url} , including the Prohibited Use Policy: "
        f"{settings.prohibited_use_url} . To acknowledge, {how}. GET /v1/terms returns the terms and "
        "the use restrictions."
    )
    return GatewayError(403, message, "permission_error", "terms_not_acknowledged")


def terms_document(settings: TermsSettings, disclaimer: str, keyed: bool) -> dict:
    """GET /v1/terms: what a client must know before it acknowledges (no key needed)."""
    return {
        "version": settings.version,
        "terms_url": settings.url,
        "prohibited_use_policy_url": settings.prohibited_use_url,
        "notice": terms.NOTICE,
        "use_restrictions": list(terms.RESTRICTIONS),
        "disclaimer": disclaimer,
        "not_a_clinical_product": "MedGemma is a developer tool, not a clinical product.",
        "acknowledge": {
            "header": f"{terms.ACK_HEADER}: {settings.version}",
            "per_key": "POST /v1/terms/acknowledge" if keyed else None,
        },
    }
