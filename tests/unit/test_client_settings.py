"""gateway.client: every client-side limit is in the profile, with defaults, and inconsistent values fail loudly."""

import pytest
from pydantic import ValidationError

from serve.config import GatewaySettings


def test_every_client_limit_has_a_default_and_can_be_set():
    client = GatewaySettings().client
    assert (
        client.header_timeout_s < client.idle_timeout_s
    )  # a head is tiny; idle keep-alive outlives LBs' 60 s
    assert client.max_buffered_body_bytes >= GatewaySettings().max_body_bytes
    assert GatewaySettings(client={"write_timeout_s": 5}).client.write_timeout_s == 5


def test_a_body_buffer_smaller_than_one_allowed_body_is_refused():
    with pytest.raises(ValidationError, match="max_buffered_body_bytes"):
        GatewaySettings(max_body_bytes=1000, client={"max_buffered_body_bytes": 999})


def test_unknown_client_keys_fail_naming_the_key():
    with pytest.raises(ValidationError, match="header_timeout"):
        GatewaySettings(client={"header_timeout": 5})
