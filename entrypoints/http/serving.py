"""Serving an ASGI app with uvicorn, one worker or several, as `tdb serve` does."""

from __future__ import annotations

import socket

import uvicorn
from uvicorn.supervisors import Multiprocess


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
            raise SystemExit(3)
        return
    sock = config.bind_socket()
    # uvicorn leaves the shared socket's protocol at 0, so asyncio never sets TCP_NODELAY on the
    # connections it accepts and every keep-alive response waits ~40 ms for a delayed ACK.
    sock = socket.socket(sock.family, sock.type, socket.IPPROTO_TCP, fileno=sock.detach())
    Multiprocess(config, sockets=[sock]).run()
