"""The `tdb` command line as a whole: help on every command, and a bad setting named."""

from __future__ import annotations

from pathlib import Path

import click
import pytest

from entrypoints.settings import Settings
from entrypoints.tdb import main, tdb


def _paths(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    paths = [prefix]
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            paths += _paths(command, (*prefix, name))
        else:
            paths.append((*prefix, name))
    return paths


@pytest.mark.parametrize("path", _paths(tdb()), ids=lambda p: " ".join(p) or "tdb")
def test_every_command_has_help(path: tuple[str, ...], capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*path, "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"Usage: {' '.join(('tdb', *path))} ")


@pytest.mark.parametrize("command", [["keys", "list"], ["serve", "--port", "0"]])
def test_a_bad_setting_names_its_variable(
    command: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("TDB_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.sqlite3'}")
    monkeypatch.setenv("TDB_CONNECT_TIMEOUT", "abc")
    assert main(command) == 2
    assert capsys.readouterr().err.startswith("error: TDB_CONNECT_TIMEOUT: ")
    assert not (tmp_path / "cli.sqlite3").exists()


def test_an_empty_denied_list_denies_nothing_and_other_empty_variables_are_not_given() -> None:
    settings = Settings.from_env({"TDB_DENIED_NETWORKS": "", "TDB_CONNECT_TIMEOUT": ""})
    assert settings.denied_networks == ""
    assert settings.connect_timeout == Settings().connect_timeout
    # The workers of `tdb serve` get their settings through the environment: the same list.
    assert Settings.from_env(settings.to_env()).denied_networks == ""
    assert Settings.from_env({}).denied_networks == Settings().denied_networks
