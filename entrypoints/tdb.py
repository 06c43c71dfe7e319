"""`tdb`: every entrypoint's commands under one name (the console script)."""

from __future__ import annotations

import sys
from collections.abc import Sequence

import click

from entrypoints.cli.main import commands
from entrypoints.commands import run
from entrypoints.http.command import serve
from entrypoints.mcp.command import mcp


def tdb() -> click.Group:
    """The management commands, `serve` and `mcp`."""
    group = commands()
    group.add_command(serve)
    group.add_command(mcp)
    return group


def main(argv: Sequence[str] | None = None) -> int:
    return run(tdb(), argv)


if __name__ == "__main__":
    sys.exit(main())
