"""A hard deadline around a blocking call, so that no connector makes its caller wait forever."""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from domain.errors import BackendUnavailable

T = TypeVar("T")

# Threads kept waiting for the next call; a thread beyond this many ends when its call does.
MAX_IDLE_THREADS = 32

_lock = threading.Lock()


class _Worker:
    """A daemon thread that runs calls one after another, and waits idle in between."""

    idle: list[_Worker] = []

    def __init__(self) -> None:
        self._calls: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        threading.Thread(target=self._serve, name="tdb-deadline", daemon=True).start()

    @classmethod
    def take(cls) -> _Worker:
        with _lock:
            if cls.idle:
                return cls.idle.pop()
        return cls()

    def submit(self, call: Callable[[], None]) -> None:
        self._calls.put(call)

    def _serve(self) -> None:
        while True:
            self._calls.get()()
            with _lock:
                if len(self.idle) >= MAX_IDLE_THREADS:
                    return
                self.idle.append(self)


# A forked child has none of its parent's threads: it must not hand calls to them.
os.register_at_fork(after_in_child=_Worker.idle.clear)


class Deadline:
    """When a piece of work must end, for the work to check as it goes.

    A thread cannot be stopped from outside: work that its caller gave up on would otherwise
    run to its end on an orphaned thread, burning CPU for nobody. Work that loops checks its
    deadline between steps and stops with `BackendUnavailable("timeout")` once it has passed
    or once the caller abandoned it.
    """

    def __init__(self, seconds: float, what: str) -> None:
        self.seconds = seconds
        self.what = what
        self._end = time.monotonic() + seconds
        self._abandoned = threading.Event()

    def abandon(self) -> None:
        """The caller stopped waiting: the work should stop at its next check."""
        self._abandoned.set()

    @property
    def expired(self) -> bool:
        return self._abandoned.is_set() or time.monotonic() >= self._end

    def check(self) -> None:
        """Raise `BackendUnavailable("timeout")` if the work should stop now."""
        if self.expired:
            raise self.timeout()

    def timeout(self) -> BackendUnavailable:
        return BackendUnavailable(
            "timeout", f"{self.what} gave no answer within {self.seconds:g} s"
        )


def call_with_deadline(work: Callable[[], T], seconds: float, what: str) -> T:
    """What `work()` returns or raises, or `BackendUnavailable("timeout")` after `seconds`.

    The work runs on a daemon thread (kept for later calls, which saves starting one each
    time). A thread cannot be killed, so work that overruns is abandoned, not stopped: it must
    carry its own, looser limits (socket and statement timeouts, bounded reads) so that it ends
    on its own soon after.
    """
    results: list[T] = []
    errors: list[BaseException] = []
    done = threading.Event()

    def run() -> None:
        threading.current_thread().name = f"tdb-deadline: {what}"
        try:
            results.append(work())
        except BaseException as exc:  # handed over to the caller's thread and re-raised there
            errors.append(exc)
        finally:
            done.set()

    _Worker.take().submit(run)
    done.wait(seconds)
    if errors:
        raise errors[0]
    if results:
        return results[0]
    raise BackendUnavailable("timeout", f"{what} gave no answer within {seconds:g} s")


class WorkerPool:
    """A fixed number of daemon threads that run deadline-bound work in turn.

    For CPU-bound work: more threads than this would answer no sooner (the GIL) and would slow
    every other request down. Few, long-lived threads also keep memory down: glibc gives each
    new thread a malloc arena of its own, and the large buffers a short-lived thread frees stay
    in its arena. Work whose caller gave up while it waited in the queue never starts; work
    already running stops at its next `Deadline.check`.
    """

    def __init__(self, workers: int, name: str) -> None:
        self._queue: queue.SimpleQueue[_Job[Any]] = queue.SimpleQueue()
        self._workers = workers
        self._name = name
        self._started = False
        self._lock = threading.Lock()
        # A forked child has none of its parent's threads: it starts its own on first use.
        os.register_at_fork(after_in_child=self._forget_threads)

    def _forget_threads(self) -> None:
        self._started = False
        self._lock = threading.Lock()
        self._queue = queue.SimpleQueue()

    def _start(self) -> None:
        # On first use, not at import: a process that never inspects a file has no such threads.
        with self._lock:
            if not self._started:
                for index in range(self._workers):
                    worker = threading.Thread(
                        target=self._serve, name=f"{self._name}-{index}", daemon=True
                    )
                    worker.start()
                self._started = True

    def call(self, work: Callable[[Deadline], T], seconds: float, what: str) -> T:
        """What `work(deadline)` returns or raises, or `BackendUnavailable("timeout")` once
        `seconds` have passed, waiting in the queue included."""
        if not self._started:
            self._start()
        job = _Job(work, Deadline(seconds, what))
        self._queue.put(job)
        if not job.done.wait(seconds):
            job.deadline.abandon()
            raise job.deadline.timeout()
        error, result = job.error, job.result
        # No reference cycle through this frame: an exception kept alive until the cyclic
        # collector runs would keep the sample its frames hold (megabytes) with it.
        del job
        if error is not None:
            try:
                raise error
            finally:
                del error
        return result  # type: ignore[return-value]

    def _serve(self) -> None:
        while True:
            job = self._queue.get()
            if job.deadline.expired:
                continue  # nobody waits for it any more
            try:
                job.result = job.work(job.deadline)
            except BackendUnavailable as exc:
                # An answer, not a bug: its traceback (and the data in its frames) is not kept.
                job.error = exc.with_traceback(None)
            except BaseException as exc:  # handed over to the caller's thread and re-raised there
                job.error = exc
            job.done.set()
            del job  # the work's data must not wait in this frame for the next job


class _Job(Generic[T]):
    def __init__(self, work: Callable[[Deadline], T], deadline: Deadline) -> None:
        self.work = work
        self.deadline = deadline
        self.done = threading.Event()
        self.result: T | None = None
        self.error: BaseException | None = None
