"""Shared fixtures: hypothesis profiles and a throwaway PostgreSQL database per test session."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg
import pytest
from hypothesis import HealthCheck, settings

from tests.fake_postgres import FakePostgres
from tests.helpers import throwaway_database
from tests.netguard import loopback_dns

# No DNS query leaves the machine, from this process or any Python process a test starts.
loopback_dns.install()
_NETGUARD = str(Path(loopback_dns.__file__).parent)
os.environ["PYTHONPATH"] = os.pathsep.join(
    [_NETGUARD, *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
)

settings.register_profile(
    "ci",
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=True,
)
settings.register_profile(
    "dev",
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))

DEFAULT_TEST_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def _admin_url() -> str:
    return os.environ.get("TDB_TEST_DATABASE_URL", DEFAULT_TEST_DATABASE_URL)


@pytest.fixture(scope="session")
def postgres_admin_url() -> str:
    """A reachable PostgreSQL server URL: fails under CI=true when it is not, skips elsewhere."""
    url = _admin_url()
    try:
        with psycopg.connect(url, connect_timeout=3):
            pass
    except psycopg.Error as exc:
        message = f"PostgreSQL at TDB_TEST_DATABASE_URL is unreachable: {exc}"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(message)
        pytest.skip(message)
    return url


@pytest.fixture(scope="session")
def postgres_url(postgres_admin_url: str) -> Iterator[str]:
    """A throwaway database created for this test session and dropped after it."""
    with throwaway_database(postgres_admin_url, "tdb_test") as url:
        yield url


@pytest.fixture(scope="session")
def orders_table(postgres_url: str) -> dict[str, Any]:
    """A real `public.orders` table, as in the API document, and the connection that reaches it."""
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(
            """
            CREATE TABLE IF NOT EXISTS public.orders (
                id integer PRIMARY KEY,
                customer_id integer,
                total numeric,
                status character varying,
                created_at timestamp without time zone
            )
            """
        )
    url = urlsplit(postgres_url)
    connection: dict[str, Any] = {
        "host": url.hostname or "127.0.0.1",
        "port": url.port or 5432,
        "dbname": url.path.lstrip("/"),
        "user": url.username or "postgres",
        "table": "orders",
        "schema": "public",
    }
    if url.password:
        connection["password"] = url.password
    return connection


@pytest.fixture
def fake_postgres() -> Iterator[FakePostgres]:
    """A fake PostgreSQL server on loopback (`tests/fake_postgres.py`), stopped after the test."""
    server = FakePostgres().start()
    try:
        yield server
    finally:
        server.stop()


DEFAULT_TEST_MYSQL_URL = "mysql://root@127.0.0.1:3306/test"


def _ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


@pytest.fixture(scope="session")
def mysql_admin() -> dict[str, Any]:
    """Where the MySQL/MariaDB server of TDB_TEST_MYSQL_URL is, as connection fields: fails
    under CI=true when it cannot be reached, skips elsewhere."""
    import pymysql

    parts = urlsplit(os.environ.get("TDB_TEST_MYSQL_URL", DEFAULT_TEST_MYSQL_URL))
    where = {
        "host": parts.hostname or "127.0.0.1",
        "port": parts.port or 3306,
        "user": parts.username or "root",
        "password": parts.password or "",
    }
    try:
        pymysql.connect(**where, connect_timeout=3).close()
    except pymysql.err.Error as exc:
        message = f"MySQL at TDB_TEST_MYSQL_URL is unreachable: {exc}"
        if _ci():
            pytest.fail(message)
        pytest.skip(message)
    return where


@pytest.fixture(scope="session")
def mysql_database(mysql_admin: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """A throwaway MySQL database for this test session, dropped after it: the connection
    fields that reach it (`dbname` included)."""
    import secrets

    import pymysql

    name = f"tdb_test_{secrets.token_hex(4)}"
    with pymysql.connect(**mysql_admin, autocommit=True) as conn, conn.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE `{name}`")
    try:
        yield {**mysql_admin, "dbname": name}
    finally:
        with pymysql.connect(**mysql_admin, autocommit=True) as conn, conn.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")


EXAMPLE_PLUGIN = Path(__file__).parent.parent / "examples" / "tdb-sqlite-connector"


@pytest.fixture(scope="session")
def example_plugin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example plug-in package (examples/), pip-installed once per session into a folder
    of its own: put it on PYTHONPATH (or sys.path) to have its entry point found."""
    import shutil
    import subprocess
    import sys

    target = tmp_path_factory.mktemp("plugins")
    # setuptools builds in the source tree: a copy keeps its leftovers out of the repository.
    build = tmp_path_factory.mktemp("plugin-build")
    source = shutil.copytree(
        EXAMPLE_PLUGIN, build / "source", ignore=shutil.ignore_patterns("build", "*.egg-info")
    )
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--target",
            str(target),
            str(source),
        ],
        check=True,
        capture_output=True,
        cwd=build,
        env={**os.environ, "TMPDIR": str(build)},
    )
    return target
