"""The multiprocess metrics directory of `tdb serve --workers N`: a killed server's is removed by
the next server, a live server's never."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from entrypoints import metrics


@pytest.fixture(autouse=True)
def _no_metrics_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    # make_multiprocess_dir names its directory in the environment: restored after each test
    # (set first, so that the monkeypatch records it), or later servers would inherit a
    # directory that is gone.
    monkeypatch.setenv(metrics.MULTIPROCESS_ENV, "")
    monkeypatch.delenv(metrics.MULTIPROCESS_ENV)


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_gone_servers_directory_is_removed_and_a_live_ones_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    gone = tmp_path / f"tdb-metrics-{_dead_pid()}-abc123"
    live = tmp_path / f"tdb-metrics-{os.getppid()}-def456"
    older_form = tmp_path / "tdb-metrics-k2j3x9a1"
    other = tmp_path / "something-else-1"
    dead_worker = _dead_pid()
    for path in (gone, live, older_form, other):
        path.mkdir()
        (path / f"counter_{dead_worker}.db").write_bytes(b"figures")

    made = metrics.make_multiprocess_dir()

    assert not gone.exists()
    assert live.exists()
    assert older_form.exists()
    assert other.exists()
    assert made.parent == tmp_path
    assert made.name.startswith(f"tdb-metrics-{os.getpid()}-")
    assert os.environ[metrics.MULTIPROCESS_ENV] == str(made)
    metrics.remove_multiprocess_dir(made)
    assert not made.exists()


def test_a_gone_servers_directory_is_kept_while_a_worker_still_writes_there(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A supervisor killed with SIGKILL, whose worker has not exited yet (it is about to).
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    in_use = tmp_path / f"tdb-metrics-{_dead_pid()}-abc123"
    in_use.mkdir()
    (in_use / f"counter_{_dead_pid()}.db").write_bytes(b"figures")
    (in_use / f"gauge_livesum_{os.getppid()}.db").write_bytes(b"figures")

    made = metrics.make_multiprocess_dir()

    assert in_use.exists()
    metrics.remove_multiprocess_dir(made)
