"""Serving an ASGI app with uvicorn, one worker or several, as `tdb serve` does."""

from __future__ import annotations

import ctypes
import importlib.util
import logging
import os
import resource
import signal
import socket
import sys
import threading
import time
from typing import Any

import uvicorn
from uvicorn.supervisors.multiprocess import Process

from entrypoints import metrics
from entrypoints.http.protocol import GuardedHttpToolsProtocol
from entrypoints.logs import events

log = logging.getLogger("uvicorn.error")
STARTUP_FAILURE = 3
KEEP_ALIVE_TIMEOUT = 5
BACKLOG = 4096
# How often a worker that the kernel cannot tell of its supervisor's death (no prctl) looks
# whether the supervisor is still its parent.
SUPERVISOR_POLL = 0.5
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def stacks() -> dict[str, dict[str, Any]]:
    """The server stacks by name: `fast` (the default) and `pure`, for comparison only.

    fast: uvloop's event loop (where it installs: not on Windows) and the httptools parser,
    with tdb's read deadlines and connection cap (`protocol.py`). pure: asyncio's own loop
    and the pure-Python h11 parser, as uvicorn runs with nothing else installed, unguarded.
    """
    uvloop = importlib.util.find_spec("uvloop") is not None
    return {
        "fast": {"loop": "uvloop" if uvloop else "asyncio", "http": GuardedHttpToolsProtocol},
        "pure": {"loop": "asyncio", "http": "h11"},
    }


def serve(
    app: str,
    host: str,
    port: int,
    workers: int = 1,
    stack: str = "fast",
) -> None:
    """Serve the app named `module:attribute` until stopped; exit with 3 if it cannot start."""
    _raise_open_files_limit()
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        workers=workers,
        log_level="info",
        # The app logs each request itself, and every process configures its own log format
        # (entrypoints.logs): uvicorn's records go through it too.
        access_log=False,
        log_config=None,
        server_header=False,
        timeout_keep_alive=KEEP_ALIVE_TIMEOUT,
        # The kernel's queue of connections not yet accepted (capped by net.core.somaxconn): a
        # flood of connections overflows it, and a client whose SYN is dropped waits a second.
        backlog=BACKLOG,
        **stacks()[stack],
    )
    if config.workers == 1:
        server = uvicorn.Server(config)
        server.run()
        if not server.started:
            raise SystemExit(STARTUP_FAILURE)
        return
    _refuse_taken_port(host, port)
    _supervise(config, [_listener(host, port, config.backlog) for _ in range(config.workers)])


def _raise_open_files_limit() -> None:
    # Every connection is a file descriptor: take what the hard limit allows (the connection
    # cap stays below it, so that accept() never fails for want of one).
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def _refuse_taken_port(host: str, port: int) -> None:
    # The workers' sockets share their port (SO_REUSEPORT), so they would as well share it with
    # the listeners of another server already there (the kernel spreading connections over
    # both): a socket without SO_REUSEPORT cannot bind beside any listener, so try one first.
    if port == 0:
        return
    with socket.socket(_family(host), socket.SOCK_STREAM, socket.IPPROTO_TCP) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        _bind(probe, host, port)


def _listener(host: str, port: int, backlog: int) -> socket.socket:
    # One listening socket per worker, all on one port (SO_REUSEPORT): the kernel spreads new
    # connections evenly over them. With uvicorn's single shared socket, whichever worker wakes
    # first accepts every pending connection, and keep-alive clients then stay on that worker.
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only on sockets that say so, and without
    # it every keep-alive response waits ~40 ms for a delayed ACK.
    sock = socket.socket(_family(host), socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    _bind(sock, host, port)
    sock.listen(backlog)
    sock.set_inheritable(True)
    return sock


def _bind(sock: socket.socket, host: str, port: int) -> None:
    """Bind, or end the server with the startup failure status, saying why."""
    try:
        sock.bind((host, port))
    except OSError as exc:
        log.error("cannot listen on %s:%d: %s", host, port, exc)
        raise SystemExit(STARTUP_FAILURE) from None


class _Worker(Process):
    """One worker process, which stops (as on SIGTERM) when its supervisor dies.

    A supervisor killed with SIGKILL cannot stop its workers: left alone they would go on
    serving the port, beside the next server started on it.
    """

    def __init__(self, config: uvicorn.Config, sockets: list[socket.socket]) -> None:
        self.supervisor = os.getpid()
        super().__init__(config, sockets)

    def target(self, sockets: list[socket.socket] | None = None) -> None:  # in the worker
        _die_with(self.supervisor)
        super().target(sockets)


def _die_with(supervisor: int) -> None:
    """SIGTERM to this process when `supervisor`, its parent, is gone.

    Linux sends it on the parent's death (PR_SET_PDEATHSIG). Elsewhere, or when the parent
    died before the request was made, a thread that sees the parent change sends it.
    """
    if _parent_death_signal(signal.SIGTERM) and os.getppid() == supervisor:
        return
    threading.Thread(
        target=_watch_supervisor, args=(supervisor,), name="tdb-supervisor-watch", daemon=True
    ).start()


def _parent_death_signal(sig: signal.Signals) -> bool:
    """Ask the kernel for `sig` when the parent dies; False where it cannot be asked."""
    if sys.platform != "linux":
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


def _watch_supervisor(supervisor: int) -> None:
    while os.getppid() == supervisor:
        time.sleep(SUPERVISOR_POLL)
    events.warning("supervisor_gone", supervisor=supervisor, detail="stopping")
    os.kill(os.getpid(), signal.SIGTERM)


def _supervise(config: uvicorn.Config, sockets: list[socket.socket]) -> None:
    """Run one worker per socket until SIGINT or SIGTERM; replace a worker that dies or hangs."""
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    workers = [_Worker(config, [sock]) for sock in sockets]
    for worker in workers:
        worker.start()
    events.info("workers_started", workers=len(workers), pids=[w.pid for w in workers])
    while not stop.wait(0.5):
        for index, worker in enumerate(workers):
            if worker.is_alive(timeout=config.timeout_worker_healthcheck):
                continue
            alive = worker.process.is_alive()
            worker.kill()
            worker.process.join()
            metrics.worker_gone(worker.pid)
            if worker.process.exitcode == STARTUP_FAILURE:
                # It failed before serving: the next one would fail the same way.
                events.error("worker_failed_to_start", pid=worker.pid, detail="stopping")
                stop.set()
                break
            workers[index] = _Worker(config, [sockets[index]])
            workers[index].start()
            events.warning(
                "worker_replaced",
                pid=worker.pid,
                reason="unresponsive" if alive else "exited",
                exit_code=worker.process.exitcode,
                new_pid=workers[index].pid,
            )
    for worker in workers:
        worker.terminate()
    for worker in workers:
        worker.process.join()
        metrics.worker_gone(worker.pid)
