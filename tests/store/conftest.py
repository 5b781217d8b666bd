"""A real PostgreSQL server per session (throwaway cluster) and a fresh database per test."""

from __future__ import annotations

import os
import shutil

import psycopg
import pytest

from tests.store.cluster import Cluster, make_cluster, server_bin


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects
def pytest_collection_modifyitems(config, items):
    """Every test on the real server is `full`: make test runs it (as root it installs PostgreSQL first);
    make test-fast, on the light install, leaves it out instead of skipping it."""
    for item in items:
        if "pg_cluster" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.full)


@pytest.fixture(scope="session")
def pg_cluster():
    bindir = server_bin()
    if bindir is None:
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL server tools not found: `make install` installs Debian's postgresql")
        pytest.skip("PostgreSQL server tools not found (`make install` as root installs them)")
    cluster = make_cluster(bindir)
    cluster.init()
    cluster.start()
    try:
        yield cluster
    finally:
        try:
            cluster.stop()
        finally:
            shutil.rmtree(cluster.datadir.parent, ignore_errors=True)


@pytest.fixture
def pg_dsn(pg_cluster: Cluster, request) -> str:
    """A database of its own for each test, so tests never see each other's acknowledgements."""
    name = "t_" + request.node.name.lower().replace("[", "_").replace("]", "")[:50]
    with psycopg.connect(pg_cluster.dsn(), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    return pg_cluster.dsn(name)
