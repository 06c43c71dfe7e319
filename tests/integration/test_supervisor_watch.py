"""A worker whose supervisor is gone stops, even where the kernel cannot tell it (no prctl):
the watch `tdb serve`'s workers fall back on, in real processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from tests.helpers import running

# The watched process: it watches its parent, as a worker watches its supervisor.
WATCHER = (
    "import os\n"
    "from entrypoints.http.serving import _watch_supervisor\n"
    "print(os.getpid(), flush=True)\n"
    "_watch_supervisor(os.getppid())\n"
)
# Its parent starts it, says its pid, waits to be told to go (stdin closed), and exits.
PARENT = (
    "import subprocess, sys\n"
    f"child = subprocess.Popen([sys.executable, '-c', {WATCHER!r}], stdout=subprocess.PIPE)\n"
    "print(child.stdout.readline().decode().strip(), flush=True)\n"
    "sys.stdin.read()\n"
)


def test_a_watcher_stops_its_process_when_the_parent_is_gone() -> None:
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        start_new_session=True,
    )
    assert parent.stdout is not None
    assert parent.stdin is not None
    child = int(parent.stdout.readline())
    try:
        assert running(child)
        parent.stdin.close()  # the parent exits: the child is an orphan
        parent.wait(timeout=10)
        deadline = time.monotonic() + 10
        while running(child):
            assert time.monotonic() < deadline, "the orphan did not stop"
            time.sleep(0.05)  # polling /proc, bounded by the deadline
    finally:
        if running(child):
            os.kill(child, signal.SIGKILL)
