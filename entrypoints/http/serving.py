"""Serving an ASGI app with uvicorn, one worker or several, as `tdb serve` does."""

from __future__ import annotations

import logging
import signal
import socket
import threading

import uvicorn
from uvicorn.supervisors.multiprocess import Process

log = logging.getLogger("uvicorn.error")
STARTUP_FAILURE = 3


def serve(app: str, host: str, port: int, workers: int = 1, access_log: bool = False) -> None:
    """Serve the app named `module:attribute` until stopped; exit with 3 if it cannot start."""
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        workers=workers,
        log_level="info",
        access_log=access_log,
        server_header=False,
    )
    if config.workers == 1:
        server = uvicorn.Server(config)
        server.run()
        if not server.started:
            raise SystemExit(STARTUP_FAILURE)
        return
    _supervise(config, [_listener(host, port, config.backlog) for _ in range(config.workers)])


def _listener(host: str, port: int, backlog: int) -> socket.socket:
    # One listening socket per worker, all on one port (SO_REUSEPORT): the kernel spreads new
    # connections evenly over them. With uvicorn's single shared socket, whichever worker wakes
    # first accepts every pending connection, and keep-alive clients then stay on that worker.
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only on sockets that say so, and without
    # it every keep-alive response waits ~40 ms for a delayed ACK.
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        log.error("cannot listen on %s:%d: %s", host, port, exc)
        raise SystemExit(STARTUP_FAILURE) from None
    sock.listen(backlog)
    sock.set_inheritable(True)
    return sock


def _supervise(config: uvicorn.Config, sockets: list[socket.socket]) -> None:
    """Run one worker per socket until SIGINT or SIGTERM; replace a worker that dies or hangs."""
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    workers = [Process(config, [sock]) for sock in sockets]
    for worker in workers:
        worker.start()
    log.info("Started %d workers on %s:%d", len(workers), config.host, config.port)
    while not stop.wait(0.5):
        for index, worker in enumerate(workers):
            if worker.is_alive(timeout=config.timeout_worker_healthcheck):
                continue
            worker.kill()
            worker.process.join()
            if worker.process.exitcode == STARTUP_FAILURE:
                # It failed before serving: the next one would fail the same way.
                log.error("Worker [%s] failed to start; stopping.", worker.pid)
                stop.set()
                break
            log.info("Worker [%s] died; starting another.", worker.pid)
            workers[index] = Process(config, [sockets[index]])
            workers[index].start()
    for worker in workers:
        worker.terminate()
    for worker in workers:
        worker.process.join()
