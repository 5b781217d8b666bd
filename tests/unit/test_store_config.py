"""The store choice in the profile and the migration order rule, without a database."""

import pytest
from pydantic import ValidationError

from serve.config import StoreSettings, TermsSettings
from serve.gateway.stores.factory import store_from_settings
from serve.gateway.stores.postgres_schema import MIGRATIONS, Migration, pending
from serve.gateway.stores.sqlite import SqliteAckStore


def test_sqlite_stays_the_default(tmp_path):
    store = store_from_settings(TermsSettings(database=tmp_path / "a.db"), environ={})
    assert isinstance(store, SqliteAckStore)


def test_postgres_without_dsn_env_is_refused_by_the_profile():
    with pytest.raises(ValidationError, match="dsn_env"):
        StoreSettings(kind="postgres")


def test_dsn_is_never_a_profile_key():
    with pytest.raises(ValidationError, match="extra"):
        StoreSettings.model_validate({"kind": "postgres", "dsn": "postgresql://u:secret@h/db"})


def test_postgres_store_is_built_without_touching_the_network():
    settings = TermsSettings(store=StoreSettings(kind="postgres", dsn_env="ACK_DSN"))
    store = store_from_settings(settings, environ={"ACK_DSN": "postgresql://u:p@192.0.2.1:1/db"})
    assert type(store).__name__ == "PostgresAckStore"  # constructed lazily: no connection attempted


def test_pending_migrations_come_in_version_order_and_skip_applied():
    steps = (Migration(3, "c", ()), Migration(1, "a", ()), Migration(2, "b", ()))
    assert [m.version for m in pending(set(), steps)] == [1, 2, 3]
    assert [m.version for m in pending({1, 3}, steps)] == [2]
    assert pending({m.version for m in MIGRATIONS}) == []


def test_migration_versions_are_unique_and_dense():
    assert [m.version for m in MIGRATIONS] == list(range(1, len(MIGRATIONS) + 1))
