"""The HTTP app over a real SQLite store, real connectors and a real PostgreSQL table."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from dependency_injector import providers
from litestar.testing import TestClient

from entrypoints.cli.main import main
from entrypoints.container import Container, build_container
from entrypoints.http.app import create_app
from entrypoints.operator import OPERATOR
from entrypoints.settings import Settings
from tests.helpers import loopback_resolver, on_app


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    (tmp_path / "data").mkdir()
    return Settings(
        database_url=f"sqlite:///{tmp_path / 'tdb.sqlite3'}",
        csv_root=tmp_path / "data",
        auth_cache_ttl=0,
        connect_timeout=2,
        statement_timeout=2,
    )


@pytest.fixture
def container(settings: Settings) -> Iterator[Container]:
    container = build_container(settings)
    # Registration resolves a source's host: names in the tests' bodies get no DNS query.
    container.resolver.override(providers.Object(loopback_resolver))
    yield container
    container.shutdown_resources()


@pytest.fixture
def client(container: Container) -> Iterator[TestClient[Any]]:
    with TestClient(create_app(container)) as client:
        yield client


Token = Callable[..., str]


@pytest.fixture
def make_token(container: Container, client: TestClient[Any]) -> Token:
    """Mint a key with these scopes (none: all of them) and return its token."""

    made = itertools.count(1)

    def make(*scopes: str, name: str | None = None) -> str:
        # One key that is not revoked holds a name: each unnamed one gets its own.
        name = name if name is not None else f"test-{next(made)}"
        return on_app(client, container.create_api_key(), name, scopes, OPERATOR).token

    return make


@pytest.fixture
def admin(make_token: Token) -> dict[str, str]:
    """Authorization headers of a key with every scope."""
    return {"Authorization": f"Bearer {make_token()}"}


@pytest.fixture
def tdb(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Any:
    """Run `tdb ARGS` in-process on a SQLite store in tmp_path: (code, stdout, stderr)."""
    monkeypatch.setenv("TDB_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.sqlite3'}")
    monkeypatch.setenv("TDB_CSV_ROOT", str(tmp_path / "data"))
    monkeypatch.delenv("TDB_TOKEN", raising=False)
    # Only `db upgrade` (and `serve`) create a store: the other commands refuse a missing one.
    assert main(["db", "upgrade"]) == 0, capsys.readouterr()
    capsys.readouterr()

    def run(*args: str) -> tuple[int, str, str]:
        code = main(list(args))
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run
