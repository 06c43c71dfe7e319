"""Worker processes for CPU-bound connector work (CSV type inference), bounded by a deadline.

In threads of the server, such work would hold the GIL against the event loop: every request,
`/healthz` included, would wait its turn behind it. In a process of its own it costs the loop
nothing. Each worker is a small `python -m adapters.connectors.workers` process that imports only
what the work needs (not the application, as a multiprocessing child re-importing the main
module would); jobs and answers cross its stdin and stdout, pickled. Work that overruns its
deadline is stopped for good: the worker is killed, and a fresh one takes the next job.
"""

from __future__ import annotations

import os
import pickle
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import IO, Any, TypeVar

from adapters.connectors.deadline import Deadline
from domain.errors import BackendUnavailable

T = TypeVar("T")


class _Worker:
    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "adapters.connectors.workers"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        self.jobs: IO[bytes] = self.process.stdin
        self.answers: IO[bytes] = self.process.stdout

    def kill(self) -> None:
        self.process.kill()
        self.process.wait()


class WorkerProcesses:
    """At most `workers` jobs at once, each in a worker process, each within its deadline.

    `work` must be picklable: a module-level function, or a `functools.partial` of one over
    picklable arguments (a bound method of a picklable object).
    """

    def __init__(self, workers: int) -> None:
        self._slots = threading.BoundedSemaphore(workers)
        self._idle: list[_Worker] = []
        self._lock = threading.Lock()
        # A forked child has none of its parent's workers.
        os.register_at_fork(after_in_child=self._idle.clear)

    def call(self, work: Callable[[Deadline], T], seconds: float, what: str) -> T:
        """What `work(deadline)` returns or raises, or `BackendUnavailable("timeout")` once
        `seconds` have passed, the wait for a free worker included."""
        deadline = Deadline(seconds, what)
        if not self._slots.acquire(timeout=seconds):
            raise deadline.timeout()
        try:
            return self._run(work, deadline)
        finally:
            self._slots.release()

    def _run(self, work: Callable[[Deadline], T], deadline: Deadline) -> T:
        worker = self._take()
        try:
            pickle.dump((work, deadline.end, deadline.seconds, deadline.what), worker.jobs)
            worker.jobs.flush()
            left = max(0.0, deadline.end - time.monotonic())
            ready, _, _ = select.select([worker.answers], [], [], left)
            if not ready:
                raise deadline.timeout()
            # Pickle, from our own child over its private pipe: nothing else writes there.
            ok, value = pickle.load(worker.answers)  # noqa: S301
        except BaseException:
            # Overran, died, or answered nonsense: it takes no other job.
            worker.kill()
            raise
        with self._lock:
            self._idle.append(worker)
        if ok:
            return value  # type: ignore[no-any-return]
        raise value

    def _take(self) -> _Worker:
        with self._lock:
            while self._idle:
                worker = self._idle.pop()
                if worker.process.poll() is None:
                    return worker
        return _Worker()


def _serve(jobs: IO[bytes], answers: IO[bytes]) -> None:
    """The worker's side: jobs from `jobs` until it closes, each answer to `answers`."""
    while True:
        try:
            work, end, seconds, what = pickle.load(jobs)  # noqa: S301 - from the server only
        except EOFError:  # the server closed our stdin: it is gone
            return
        answer: tuple[bool, Any]
        try:
            deadline = Deadline(seconds, what, end=end)
            deadline.check()
            answer = (True, work(deadline))
        except BackendUnavailable as exc:
            answer = (False, exc)
        except Exception as exc:  # a bug: its type and message go back, as a plain error
            answer = (False, RuntimeError(f"{type(exc).__name__}: {exc}"))
        pickle.dump(answer, answers)
        answers.flush()


if __name__ == "__main__":
    # In the server's process group, so that whatever stops the server's group stops its
    # workers too; Ctrl-C is the server's to handle, and the worker ends when the server does
    # (its stdin closes).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # Below the server in the scheduler's eyes: when the cores are busy, the server's requests
    # (and /healthz) run first, and inference takes the time that is left.
    os.nice(10)
    _serve(sys.stdin.buffer, sys.stdout.buffer)
