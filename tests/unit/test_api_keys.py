"""API keys: one parser for the variable and the file, fail-closed sources, keyed hashes and their secret."""

import hashlib
import stat

import pytest

from serve.__main__ import main
from serve.config import AuthSettings, ConfigError, GatewaySettings, StoreSettings, TermsSettings
from serve.gateway.admission.api_keys import KeyRing, keyed_hash, legacy_hash, parse_keys
from serve.gateway.admission.key_secret import GENERATED

ENV = "MEDGEMMA_TEST_KEYS"
SECRET_ENV = "MEDGEMMA_TEST_KEY_SECRET"
SECRET = "0123456789abcdef0123456789abcdef"


def settings(tmp_path, postgres: bool = False, **auth) -> GatewaySettings:
    store = StoreSettings(kind="postgres", dsn_env="DSN") if postgres else StoreSettings()
    terms = TermsSettings(database=tmp_path / ".state" / "acks.sqlite3", store=store)
    return GatewaySettings(auth=AuthSettings(**auth), terms=terms)


def ring(tmp_path, text: str, *, file: bool) -> KeyRing:
    if file:
        path = tmp_path / "keys.txt"
        path.write_text(text)
        return KeyRing.from_settings(settings(tmp_path, api_keys_file=path), environ={})
    return KeyRing.from_settings(settings(tmp_path, api_keys_env=ENV), environ={ENV: text})


def test_a_comment_line_with_a_comma_is_no_key():
    text = "# production keys for team alpha, beta\nsk-alpha-1\n"
    assert parse_keys(text, commas=False) == ["sk-alpha-1"]
    assert parse_keys(text, commas=True) == ["sk-alpha-1"]


def test_an_indented_comment_line_is_no_key():
    assert parse_keys("  # retired: sk-old\n\tsk-new  \n\n", commas=False) == ["sk-new"]


def test_a_key_in_the_file_may_hold_a_comma_the_variable_splits_on_commas():
    assert parse_keys("sk-a,b\n", commas=False) == ["sk-a,b"]
    assert parse_keys(" sk-a , sk-b,\nsk-c\n", commas=True) == ["sk-a", "sk-b", "sk-c"]


@pytest.mark.parametrize("file", [False, True], ids=["env", "file"])
def test_the_comment_words_are_not_valid_keys(tmp_path, file):
    keys = ring(tmp_path, "# production keys for team alpha, beta\n  # sk-indented\nsk-real\n", file=file)
    assert len(keys) == 1 and keys.verify("sk-real")
    for word in ("beta", "# sk-indented", "sk-indented", "# production keys for team alpha"):
        assert keys.verify(word) is None


@pytest.mark.parametrize("value", [None, "", "  \n", "# canary-comment-7f3a, x\n"])
def test_keys_variable_named_but_empty_refuses_naming_it_not_its_content(tmp_path, value):
    environ = {} if value is None else {ENV: value}
    with pytest.raises(ConfigError, match=ENV) as err:
        KeyRing.from_settings(settings(tmp_path, api_keys_env=ENV), environ=environ)
    assert "canary" not in str(err.value)


def test_keys_file_missing_or_only_comments_refuses_naming_it(tmp_path):
    path = tmp_path / "keys.txt"
    with pytest.raises(ConfigError, match=r"keys\.txt"):
        KeyRing.from_settings(settings(tmp_path, api_keys_file=path), environ={})
    path.write_text("# canary-comment-7f3a\n\n")
    with pytest.raises(ConfigError, match=r"keys\.txt") as err:
        KeyRing.from_settings(settings(tmp_path, api_keys_file=path), environ={})
    assert "canary" not in str(err.value)


def test_no_key_source_is_local_mode_as_before(tmp_path):
    keys = KeyRing.from_settings(settings(tmp_path), environ={ENV: "sk-ignored"})
    assert not keys.enabled
    assert not (tmp_path / ".state").exists()  # no secret made where no key is configured


def test_gateway_with_an_empty_keys_variable_exits_2_naming_it(tmp_path, monkeypatch, capsys):
    profile = tmp_path / "p.yaml"
    profile.write_text(
        "name: t\nmodel: {source: 'demo:tiny-gemma3', served_name: demo}\n"
        f"gateway: {{auth: {{api_keys_env: {ENV}}}, terms: {{database: {tmp_path / 'a.db'}}}}}\n"
    )
    for value in (None, "", "# canary-comment-7f3a"):
        if value is None:
            monkeypatch.delenv(ENV, raising=False)
        else:
            monkeypatch.setenv(ENV, value)
        assert main(["gateway", "--profile", str(profile), "--upstream", "http://127.0.0.1:9"]) == 2
        err = capsys.readouterr().err
        assert ENV in err and "canary" not in err


def test_keyed_hash_is_not_the_plain_sha256_and_depends_on_the_secret():
    assert (
        keyed_hash(b"s" * 16, "sk-alice")
        != hashlib.sha256(b"sk-alice").hexdigest()
        == legacy_hash("sk-alice")
    )
    assert keyed_hash(b"s" * 16, "sk-alice") != keyed_hash(b"t" * 16, "sk-alice")


def test_two_gateways_with_the_same_secret_agree(tmp_path):
    auth = {"api_keys_env": ENV, "hash_secret_env": SECRET_ENV}
    environ = {ENV: "sk-alice", SECRET_ENV: SECRET}
    one = KeyRing.from_settings(settings(tmp_path / "a", postgres=True, **auth), environ=environ)
    two = KeyRing.from_settings(settings(tmp_path / "b", postgres=True, **auth), environ=environ)
    assert one.verify("sk-alice") == two.verify("sk-alice") == keyed_hash(SECRET.encode(), "sk-alice")


def test_postgres_store_with_keys_and_no_secret_refuses(tmp_path):
    with pytest.raises(ConfigError, match="hash_secret_env"):
        KeyRing.from_settings(settings(tmp_path, postgres=True, api_keys_env=ENV), environ={ENV: "sk-a"})


@pytest.mark.parametrize("value", [None, "", "short-canary"])
def test_secret_variable_named_but_empty_or_short_refuses_naming_it_not_its_content(tmp_path, value):
    environ = {ENV: "sk-a"} | ({} if value is None else {SECRET_ENV: value})
    auth = {"api_keys_env": ENV, "hash_secret_env": SECRET_ENV}
    with pytest.raises(ConfigError, match=SECRET_ENV) as err:
        KeyRing.from_settings(settings(tmp_path, **auth), environ=environ)
    assert "canary" not in str(err.value)


def test_secret_file_is_read_and_trimmed(tmp_path):
    path = tmp_path / "secret"
    path.write_text(SECRET + "\n")
    keys = KeyRing.from_settings(settings(tmp_path, api_keys_env=ENV, hash_secret_file=path), {ENV: "sk-a"})
    assert keys.verify("sk-a") == keyed_hash(SECRET.encode(), "sk-a")


def test_sqlite_default_secret_is_generated_once_private_and_reused(tmp_path):
    one = KeyRing.from_settings(settings(tmp_path, api_keys_env=ENV), environ={ENV: "sk-a"})
    secret = tmp_path / ".state" / GENERATED
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    assert stat.S_IMODE(secret.parent.stat().st_mode) == 0o700
    again = KeyRing.from_settings(settings(tmp_path, api_keys_env=ENV), environ={ENV: "sk-a"})
    assert one.verify("sk-a") == again.verify("sk-a") == keyed_hash(secret.read_bytes().strip(), "sk-a")
    assert [p.name for p in secret.parent.iterdir()] == [GENERATED]  # no temporary file left behind


def test_undecodable_bearer_token_is_simply_not_a_key():
    assert KeyRing(["sk-a"], secret=b"s" * 16).verify("\udcff\udcfe") is None


def test_a_ring_with_keys_needs_its_secret():
    with pytest.raises(ValueError, match="secret"):
        KeyRing(["sk-a"])
