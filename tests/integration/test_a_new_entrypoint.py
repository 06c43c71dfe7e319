"""CONTRIBUTING's recipe for a new entrypoint, followed by a tiny one: `tdb export`, the sources
as CSV on stdout. All of it is the command below plus the one line that adds it to the group;
its failures (a bad token, a store it cannot reach) are the runtime's outcomes, with the exit
statuses and `--json` problem documents every command has, without a line of error mapping."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path
from types import SimpleNamespace

import click
import pytest

from application.sources import ListSourcesQuery
from entrypoints.cli.main import commands
from entrypoints.commands import run, store_options, with_container
from entrypoints.container import Container
from entrypoints.operator import OPERATOR_MASKED
from tests.builders import SEED_BODY


@click.command("export", help="the sources as CSV")
@click.option("--token", help="act as this API key")
@store_options
@with_container()
async def export(container: Container, args: SimpleNamespace) -> None:
    actor = await container.authenticate()(args.token) if args.token else OPERATOR_MASKED
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(["id", "name", "source_type"])
    for s in (await container.list_sources()(ListSourcesQuery(actor=actor))).sources:
        writer.writerow([s.id, s.name, s.source_type])


def tdb_with_export(*args: str) -> int:
    group = commands()
    group.add_command(export)  # the line in entrypoints/tdb.py
    return run(group, list(args))


@pytest.fixture
def store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Path:
    monkeypatch.setenv("TDB_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.sqlite3'}")
    monkeypatch.setenv("TDB_CSV_ROOT", str(tmp_path))
    monkeypatch.delenv("TDB_TOKEN", raising=False)
    assert tdb_with_export("db", "upgrade") == 0  # a new entrypoint creates no store either
    capsys.readouterr()
    return tmp_path


def test_the_new_entrypoint_lists_sources_as_csv(
    store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    file = store / "orders.json"
    file.write_text(json.dumps(SEED_BODY))
    assert tdb_with_export("sources", "register", str(file), "--json") == 0
    source_id = json.loads(capsys.readouterr().out)["id"]
    assert tdb_with_export("export") == 0
    assert capsys.readouterr().out == f"id,name,source_type\n{source_id},orders,postgres\n"


def test_its_failures_are_the_runtimes_outcomes(
    store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert tdb_with_export("export", "--token", "tdbk_bogus_token") == 8
    assert capsys.readouterr().err == "error: authentication failed: unknown\n"
    assert tdb_with_export("export", "--token", "tdbk_bogus_token", "--json") == 8
    assert json.loads(capsys.readouterr().out)["type"] == "urn:tdb:problem:unauthorized"
