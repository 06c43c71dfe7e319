"""Checks that read the code rather than run it: layering, lint and types hold, or CI fails."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _run(tool: str, *args: str) -> subprocess.CompletedProcess[str]:
    executable = shutil.which(tool, path=str(Path(sys.executable).parent))
    assert executable, f"{tool} is not installed (pip install -e '.[test]')"
    return subprocess.run(
        [executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=300
    )


def test_import_contracts_hold() -> None:
    """domain imports nothing of ours; application only domain; adapters never entrypoints."""
    result = _run("lint-imports")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize("args", [("check", "."), ("format", "--check", ".")])
def test_ruff_is_clean(args: tuple[str, ...]) -> None:
    result = _run("ruff", *args)
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_is_clean() -> None:
    result = _run("mypy")
    assert result.returncode == 0, result.stdout + result.stderr


def _distribution(requirement: str) -> str:
    """The normalized distribution name of a requirement (`psycopg[binary]>=3.3` -> psycopg)."""
    name = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement.strip())
    assert name, requirement
    return re.sub(r"[-_.]+", "-", name.group()).lower()


def test_installs_take_the_versions_ci_tested_from_the_constraints() -> None:
    """The README's two commands install with `-c constraints.txt`, `.ci/run` runs its test
    command word for word, and the constraints pin every dependency, test tools included."""
    commands = [
        line
        for line in (ROOT / "README.md").read_text().splitlines()
        if line.startswith("python3 -m venv .venv")
    ]
    assert len(commands) == 2, commands
    assert all(" -c constraints.txt " in command for command in commands), commands
    test_command = next(command for command in commands if "pytest" in command)
    assert test_command in (ROOT / ".ci" / "run").read_text().splitlines()
    pinned = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version, f"not pinned to one version: {line!r}"
            pinned[_distribution(name)] = version
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = [*project["dependencies"], *project["optional-dependencies"]["test"]]
    assert {_distribution(r) for r in wanted} - set(pinned) == set()
